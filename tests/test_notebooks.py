"""The Colab notebooks in ``notebooks/``: generated, stripped, and run headless.

Each notebook is executed with nbclient on its small settings
(``TFNAS_NOTEBOOK_SMALL=1``, as ``tools/notebooks.py`` describes); a cell that
raises, or an assertion in a notebook that fails, fails the test. They train
models, so they run with the slow tests (CI runs those too).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]


def test_the_four_notebooks_exist_and_match_their_generator():
    assert NAMES == [
        "01_quickstart",
        "02_custom_data_and_constraints",
        "03_msnas_family",
        "04_inspect_tflite",
    ]
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "notebooks.py"), "--check"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_is_stripped_with_a_colab_badge_and_an_install_cell(path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    first = "".join(cells[0]["source"])
    badge = f"colab.research.google.com/github/tfnas/tfnas/blob/main/notebooks/{path.name}"
    assert cells[0]["cell_type"] == "markdown" and badge in first
    install = "".join(cells[1]["source"])
    assert 'if "google.colab" in sys.modules:' in install and "%pip install" in install
    assert "TFNAS_NOTEBOOK_SMALL" in "".join(cells[2]["source"])


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_headless(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TFNAS_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TFNAS_NOTEBOOK_DIR", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    text = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    assert "small settings" in text
    # No TensorFlow, absl or CUDA start-up logging reaches the reader.
    for noise in ("absl::InitializeLog", "cuda", "oneDNN", "cpu_feature_guard"):
        assert noise not in text, noise
    written = {p.name for p in (tmp_path / path.stem).rglob("*")}
    expected = {
        "01_quickstart": {"pareto.png", "best.tflite", "tfnas_digits.ino", "model_data.h"},
        "02_custom_data_and_constraints": {"motion.npz", "report.json"},
        "03_msnas_family": {"metagraph.json", "MSNet-0.tflite", "MSNet-3.tflite"},
        "04_inspect_tflite": {"cell.tflite", "cell_reordered.tflite", "timeline.png"},
    }[path.stem]
    assert expected <= written, expected - written
