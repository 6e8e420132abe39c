import itertools
import subprocess
import sys

import numpy as np
import pytest

from tfnas.objectives import (
    DEVICES,
    Constraints,
    dominates,
    get_device,
    hypervolume,
    pareto_front,
    scalarise,
)

MINMIN = [("a", "min"), ("b", "min")]


def pts(*pairs, keys=("a", "b")):
    return [dict(zip(keys, p, strict=True)) for p in pairs]


def test_pareto_front_by_hand():
    points = [
        {"acc": 0.9, "ram": 10},
        {"acc": 0.8, "ram": 5},
        {"acc": 0.7, "ram": 8},
        {"acc": 0.9, "ram": 10},
    ]
    assert pareto_front(points, [("acc", "max"), ("ram", "min")]) == [0, 1, 3]
    assert (
        dominates((1, 1), (1, 2))
        and not dominates((1, 2), (2, 1))
        and not dominates((1, 1), (1, 1))
    )


def test_hypervolume_2d_staircase_by_hand():
    # Rectangles to (4, 4) from (1,3), (2,2), (3,1): staircase area 1*1 + 1*2 + 1*3 = 6.
    assert hypervolume(pts((1, 3), (2, 2), (3, 1)), MINMIN, {"a": 4, "b": 4}) == pytest.approx(6.0)
    # A dominated point and a point outside the reference add nothing.
    more = pts((1, 3), (2, 2), (3, 1), (3, 3), (5, 0))
    assert hypervolume(more, MINMIN, {"a": 4, "b": 4}) == pytest.approx(6.0)


def test_hypervolume_with_a_maximised_objective():
    points = [{"acc": 0.9, "ram": 10}]
    hv = hypervolume(points, [("acc", "max"), ("ram", "min")], {"acc": 0.0, "ram": 20})
    assert hv == pytest.approx(0.9 * 10)


def test_hypervolume_3d_by_hand():
    # Boxes [0,2]x[0,2]x[1,2] and [0,2]x[1,2]x[0,2]: 4 + 4 - overlap 2 = 6.
    keys = ("a", "b", "c")
    objectives = [(k, "min") for k in keys]
    points = pts((0, 0, 1), (0, 1, 0), keys=keys)
    assert hypervolume(
        points, objectives, dict(zip(keys, (2, 2, 2), strict=True))
    ) == pytest.approx(6.0)
    single = pts((0, 0, 0), keys=keys)
    assert hypervolume(
        single, objectives, dict(zip(keys, (1, 2, 3), strict=True))
    ) == pytest.approx(6.0)


def test_hypervolume_4d_against_monte_carlo_and_monotone():
    rng = np.random.default_rng(0)
    keys = ("a", "b", "c", "d")
    objectives = [(k, "min") for k in keys]
    reference = dict.fromkeys(keys, 1.0)
    for _ in range(3):
        vectors = rng.uniform(0, 1, size=(12, 4))
        points = [dict(zip(keys, v, strict=True)) for v in vectors]
        exact = hypervolume(points, objectives, reference)
        samples = rng.uniform(0, 1, size=(200_000, 4))
        covered = np.zeros(len(samples), dtype=bool)
        for v in vectors:
            covered |= np.all(samples >= v, axis=1)
        assert exact == pytest.approx(covered.mean(), abs=0.005)
        # Adding points never lowers the hypervolume; removing a front point lowers it.
        for k in range(1, len(points)):
            assert (
                hypervolume(points[:k], objectives, reference)
                <= hypervolume(points[: k + 1], objectives, reference) + 1e-12
            )
        front = pareto_front(points, objectives)
        without = [p for i, p in enumerate(points) if i != front[0]]
        assert hypervolume(without, objectives, reference) < exact


def test_hypervolume_ignores_point_order():
    points = pts((1, 3), (2, 2), (3, 1), (0.5, 3.5))
    values = {
        hypervolume(list(p), MINMIN, {"a": 4, "b": 4}) for p in itertools.permutations(points)
    }
    assert len({round(v, 12) for v in values}) == 1


def test_constraints_violations_and_arena_metric():
    c = Constraints(max_arena_bytes=2500, max_weights_bytes=4500, max_macs=30_000_000)
    metrics = {"planned_bytes": 3000, "arena_bytes": 9000, "weights_bytes": 4500, "macs": 1_000_000}
    assert c.violations(metrics) == {"planned_bytes": pytest.approx(0.2)}
    assert not c.feasible(metrics)
    total = Constraints(max_arena_bytes=10_000, arena="total")
    assert total.feasible(metrics) and total.bounds() == {"arena_bytes": 10_000}
    assert Constraints.from_dict(c.to_dict()) == c
    with pytest.raises(
        ValueError, match="arena must be 'planned', 'total' or 'min'. Received: arena='head'"
    ):
        Constraints(arena="head")
    with pytest.raises(ValueError, match="max_macs must be positive or None. Received: max_macs=0"):
        Constraints(max_macs=0)


def test_device_budgets():
    assert set(DEVICES) >= {
        "arduino-nano-33-ble-sense", "stm32f446re", "stm32f746zg", "stm32h743", "esp32-s3", "raspberry-pi-pico"
    }  # fmt: skip
    f446 = get_device("stm32f446re").budget(ram_headroom=0.25, flash_headroom=0.5)
    assert f446.max_arena_bytes == 98_304 and f446.max_flash_bytes == 262_144
    assert f446.arena == "total" and f446.target == "cortex-m-cmsis"
    h743 = get_device("stm32h743").budget(ram_headroom=32 * 1024)
    assert h743.max_arena_bytes == 512 * 1024 - 32 * 1024  # the largest contiguous block, not 1 MB
    with pytest.raises(
        ValueError,
        match="ram_headroom as a fraction must be in \\[0, 1\\). Received: ram_headroom=1.5",
    ):
        get_device("stm32f446re").budget(ram_headroom=1.5)
    with pytest.raises(ValueError, match="Unknown device.*Received: 'uno'"):
        get_device("uno")


def test_scalarise_by_hand():
    objectives = [("val_accuracy", "max"), ("planned_bytes", "min")]
    scales = {"planned_bytes": 2500}
    m = {"val_accuracy": 0.9, "planned_bytes": 2000}
    assert scalarise(m, objectives, [1.0, 1.0], scales) == pytest.approx(0.1 + 0.8)
    c = Constraints(max_arena_bytes=2500)
    over = {"val_accuracy": 0.95, "planned_bytes": 3000}
    assert scalarise(over, objectives, [1.0, 1.0], scales, c) == pytest.approx(
        0.05 + 1.2 + 10 * 0.2
    )
    assert scalarise(m, objectives, [1.0, 1.0], scales, c) < scalarise(
        over, objectives, [1.0, 1.0], scales, c
    )
    with pytest.raises(
        ValueError, match="One weight per objective is needed. Received: 1 weights for 2 objectives"
    ):
        scalarise(m, objectives, [1.0], scales)


def test_objectives_do_not_import_tensorflow():
    code = "import sys, tfnas.objectives; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
