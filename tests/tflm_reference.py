"""The real TFLM interpreter (tflite-micro package) as an oracle for planned bytes.

``print_allocations`` writes from C++, so it runs in a subprocess; one process
serves a whole batch of models.
"""

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import sys
from tflite_micro.python.tflite_micro import runtime
for path in sys.argv[1:]:
    print("MODEL", path, flush=True)
    interp = runtime.Interpreter.from_bytes(open(path, "rb").read())
    interp.print_allocations()
    sys.stdout.flush()
"""


def tflm_heads(paths: list[Path]) -> dict[str, int]:
    """Planned (head) bytes the real TFLM reports for each model file."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    heads, current = {}, None
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        if line.startswith("MODEL "):
            current = line.split(" ", 1)[1]
        elif "allocation head" in line and current is not None:
            heads[current] = int(line.split()[-2])
    missing = [str(p) for p in paths if str(p) not in heads]
    assert not missing, f"TFLM reported no head for {missing}: {result.stderr[-2000:]}"
    return heads
