"""The memory model against the real TFLM numbers in ../shared/tflm (35 models, 3 builds)."""

import json
from pathlib import Path

import pytest

from tfnas.errors import UnsupportedModelError
from tfnas.memory import plan_memory

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TFLM = SHARED / "tflm"
BUILDS = {"x86_64": "host", "eabi32": "cortex-m", "eabi32_cmsis": "cortex-m-cmsis"}

pytestmark = pytest.mark.skipif(
    not (TFLM / "truth").is_dir(), reason=f"shared TFLM truth not found at {TFLM}"
)


def _cases():
    if not (TFLM / "truth").is_dir():
        return []
    return [
        pytest.param(build, path.stem, id=f"{build}-{path.stem}")
        for build in BUILDS
        for path in sorted((TFLM / "truth" / build).glob("*.json"))
    ]


@pytest.mark.parametrize(("build", "stem"), _cases())
def test_plan_matches_tflm(build, stem):
    truth = json.loads((TFLM / "truth" / build / f"{stem}.json").read_text())
    model = TFLM / "models" / truth["model"]
    if truth.get("allocate_tensors_ok") is False:
        with pytest.raises(UnsupportedModelError, match="FULLY_CONNECTED"):
            plan_memory(model, BUILDS[build])
        return
    plan = plan_memory(model, BUILDS[build])
    assert plan.planned_bytes == truth["head_bytes"]
    assert [(b.size, b.first, b.last, b.offset) for b in plan.buffers] == [
        (b["size"], b["first"], b["last"], b["offset"]) for b in truth["planner_buffers"]
    ]
    assert plan.persistent_bytes == truth["tail_bytes"]
    assert plan.arena_bytes == truth["arena_used_bytes"]
    assert [(a.label, a.op, a.size, a.align, a.tail_after) for a in plan.allocations] == [
        (a["label"], a["op"], a["size"], a["align"], a["tail_after"])
        for a in truth["persistent_allocations"]
    ]
    if truth.get("min_arena_bytes_multiple_of_16") is not None:
        assert plan.min_arena_bytes == truth["min_arena_bytes_multiple_of_16"]
    else:
        assert plan.min_arena_bytes >= plan.arena_bytes


def test_cmsis_scratch_requests_match_requested_bytes():
    for path in sorted((TFLM / "truth" / "eabi32_cmsis").glob("*.json")):
        truth = json.loads(path.read_text())
        if truth.get("allocate_tensors_ok") is False:
            continue
        plan = plan_memory(TFLM / "models" / truth["model"], "cortex-m-cmsis")
        mine = [(b.op, b.bytes) for b in plan.buffers if b.kind == "scratch"]
        theirs = [
            (b["op_index_in_subgraph"], b["requested_bytes"])
            for b in truth["planner_buffers"]
            if b["kind"] == "scratch"
        ]
        assert mine == theirs, truth["model"]
