"""Golden cases of TFLM's greedy_memory_planner_test.cc and an overlap invariant."""

import random

import pytest

from tfnas.memory.planner import BufferSpec, GreedyPlanner, find_overlaps, greedy_plan


def _plan(*specs):
    planner = GreedyPlanner()
    for size, first, last in specs:
        planner.add_buffer(size, first, last)
    return planner.plan()


def test_greedy_basics():
    plan = _plan((10, 0, 1), (20, 2, 3))
    assert plan.offsets == (0, 0)
    assert plan.arena_bytes == 20
    assert find_overlaps(plan.buffers, plan.offsets) == []


def test_greedy_medium():
    plan = _plan((10, 0, 1), (20, 1, 2), (30, 2, 3), (40, 3, 4), (50, 0, 1))
    assert plan.offsets == (50, 70, 40, 0, 0)
    assert plan.arena_bytes == 90
    assert find_overlaps(plan.buffers, plan.offsets) == []


def test_overlap_case():
    plan = _plan((100, 0, 1), (50, 2, 3), (20, 1, 2))
    assert plan.arena_bytes == 120
    assert find_overlaps(plan.buffers, plan.offsets) == []


def test_person_detection_case():
    sizes = [
        (9216, 0, 29), (3, 28, 29), (256, 27, 28), (2304, 26, 27), (2304, 25, 26),
        (2304, 24, 25), (1152, 23, 24), (4608, 22, 23), (4608, 21, 22), (4608, 20, 21),
        (4608, 19, 20), (4608, 18, 19), (4608, 17, 18), (4608, 16, 17), (4608, 15, 16),
        (4608, 14, 15), (4608, 13, 14), (4608, 12, 13), (2304, 11, 12), (9216, 10, 11),
        (9216, 9, 10), (9216, 8, 9), (4608, 7, 8), (18432, 6, 7), (18432, 5, 6),
        (18432, 4, 5), (9216, 3, 4), (36864, 2, 3), (18432, 1, 2), (18432, 0, 1),
    ]  # fmt: skip
    plan = _plan(*sizes)
    assert find_overlaps(plan.buffers, plan.offsets) == []
    assert plan.arena_bytes < 241027
    # The busiest step (buffers 0, 27 and 28) needs 64,512 bytes: the plan is optimal.
    assert plan.arena_bytes == 9216 + 36864 + 18432


def test_small_scratch_capacity():
    planner = GreedyPlanner(max_buffers=40 // 40)
    planner.add_buffer(100, 0, 1)
    with pytest.raises(ValueError, match="Too many buffers for the planner"):
        planner.add_buffer(50, 2, 3)


def test_equal_sizes_later_buffer_goes_first():
    # Both live at once: the later one is placed first, at offset 0.
    plan = greedy_plan([BufferSpec(16, 0, 1), BufferSpec(16, 0, 1)])
    assert plan.offsets == (16, 0)


def test_offline_offsets_are_kept():
    plan = greedy_plan([BufferSpec(10, 0, 1, offline_offset=30), BufferSpec(20, 0, 1)])
    assert plan.offsets == (30, 0)
    assert plan.arena_bytes == 40


def test_invalid_buffer_is_rejected():
    with pytest.raises(ValueError, match="Received: size=-1"):
        GreedyPlanner().add_buffer(-1, 0, 1)


def test_empty_plan():
    assert greedy_plan([]).arena_bytes == 0


@pytest.mark.parametrize("seed", range(300))
def test_random_plans_never_overlap(seed):
    rng = random.Random(seed)
    steps = rng.randint(1, 30)
    buffers = []
    for _ in range(rng.randint(1, 40)):
        first = rng.randint(0, steps)
        buffers.append(BufferSpec(16 * rng.randint(1, 64), first, rng.randint(first, steps)))
    plan = greedy_plan(buffers)
    assert find_overlaps(buffers, plan.offsets) == []
    assert plan.arena_bytes == max(o + b.size for o, b in zip(plan.offsets, buffers, strict=True))
    live_peak = max(
        sum(b.size for b in buffers if b.first <= s <= b.last) for s in range(steps + 1)
    )
    assert plan.arena_bytes >= live_peak
    assert plan.arena_bytes <= sum(b.size for b in buffers)
