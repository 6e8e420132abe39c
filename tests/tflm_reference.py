"""The real TFLM interpreter (tflite-micro package) as an oracle for planned bytes.

``print_allocations`` writes from C++, so it runs in a subprocess; one process
serves a whole batch of models, each printing exactly one head line, in order.
"""

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import sys
from tflite_micro.python.tflite_micro import runtime
for path in sys.argv[1:]:
    runtime.Interpreter.from_bytes(open(path, "rb").read()).print_allocations()
"""


def tflm_heads(paths: list[Path]) -> dict[str, int]:
    """Planned (head) bytes the real TFLM reports for each model file."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = result.stdout + "\n" + result.stderr
    heads = [int(line.split()[-2]) for line in text.splitlines() if "allocation head" in line]
    assert result.returncode == 0 and len(heads) == len(paths), text[-2000:]
    return {str(p): head for p, head in zip(paths, heads, strict=True)}
