"""Zero-shot proxies: κ and region counts against hand-computed values and autodiff."""

import math

import numpy as np
import pytest

from tfnas._tf import keras, tf
from tfnas.genome import get_space
from tfnas.genome.costs import narrowest_channels
from tfnas.model import build_model
from tfnas.proxies import (
    count_linear_regions,
    hardware_indicators,
    ntk_condition_number,
    per_sample_kernel_gradients,
    region_score,
    zero_shot,
)


def _linear(w):
    inp = keras.Input((2,))
    layer = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inp, layer(inp))
    layer.kernel.assign(np.array(w, dtype=np.float32).reshape(2, 1))
    return model


def test_kappa_of_a_linear_model_is_the_hand_computed_value():
    # f(x) = w.x: J = X, Theta = X X^T = [[1, 1], [1, 2]], eigenvalues (3 -+ sqrt 5) / 2.
    x = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    kappa = ntk_condition_number(_linear([0.3, -0.7]), x)
    assert kappa == pytest.approx((3 + math.sqrt(5)) / (3 - math.sqrt(5)), rel=1e-6)


def test_kappa_of_a_two_layer_relu_network_by_hand():
    # f(x) = v * relu(u * x) with scalars u = 2, v = 3, inputs 1 and 2 (both active):
    # df/du = v * x, df/dv = u * x, so J = [[3, 2], [6, 4]] is rank one: singular -> inf;
    # with a third input of -1 (inactive) the row is 0 and Theta stays singular too.
    inp = keras.Input((1,))
    hidden = keras.layers.Dense(1, use_bias=False, activation="relu")
    out = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inp, out(hidden(inp)))
    hidden.kernel.assign([[2.0]])
    out.kernel.assign([[3.0]])
    x = np.array([[1.0], [2.0]], dtype=np.float32)
    rows = np.concatenate(per_sample_kernel_gradients(model, x), axis=1)
    np.testing.assert_allclose(rows, [[3.0, 2.0], [6.0, 4.0]])
    assert ntk_condition_number(model, x) == math.inf


def test_duplicate_samples_make_the_ntk_singular():
    x = np.array([[1.0, 2.0], [1.0, 2.0], [0.5, 0.1]], dtype=np.float32)
    assert ntk_condition_number(_linear([1.0, 1.0]), x) == math.inf


@pytest.mark.parametrize("space,kwargs", [
    ("micro", {"max_blocks": 3, "max_channels": 12, "max_dense": 2}),
    ("msnas", {"stages": 2, "nodes": 3, "channels": [4, 8]}),
    ("cell", {"channels": [4, 8], "stem_stride": 2}),
])  # fmt: skip
def test_per_sample_gradients_equal_autodiff_jacobian(space, kwargs):
    sp = get_space(space, (16, 16, 1), 5, **kwargs)
    rng = np.random.default_rng(0)
    x = rng.random((6, 16, 16, 1), dtype=np.float32)
    for seed in range(3):
        model = build_model(sp.sample(seed), seed=seed, logits=True)
        kernels = [v for v in model.trainable_variables if "kernel" in v.name]
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(model(x, training=False), axis=1)
        jac = tape.jacobian(y, kernels)
        expected = np.concatenate([j.numpy().reshape(len(x), -1) for j in jac], axis=1)
        got = np.concatenate(per_sample_kernel_gradients(model, x), axis=1)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def _relu_line_model():
    # One hidden ReLU layer on a scalar input with breakpoints at 0, 1 and 2.
    inp = keras.Input((1,))
    hidden = keras.layers.Dense(3, activation="relu")
    model = keras.Model(inp, keras.layers.Dense(1)(hidden(inp)))
    hidden.kernel.assign([[1.0, 1.0, 1.0]])
    hidden.bias.assign([0.0, -1.0, -2.0])
    return model


def test_region_count_of_a_1d_relu_network():
    model = _relu_line_model()
    line = np.linspace(-1.0, 3.0, 401, dtype=np.float32).reshape(-1, 1)
    assert count_linear_regions(model, line) == 4
    assert region_score(model, line) == pytest.approx(2.0)  # log2(4)
    inside = np.linspace(1.1, 1.9, 50, dtype=np.float32).reshape(-1, 1)
    assert count_linear_regions(model, inside) == 1
    assert region_score(model, inside) == 0.0


def test_region_count_of_a_two_layer_1d_network():
    # relu(x) then relu(relu(x) - 1): second layer switches at x = 1 -> 3 regions on [-1, 2].
    inp = keras.Input((1,))
    first = keras.layers.Dense(1, activation="relu")
    second = keras.layers.Dense(1, activation="relu")
    model = keras.Model(inp, keras.layers.Dense(1)(second(first(inp))))
    first.kernel.assign([[1.0]])
    first.bias.assign([0.0])
    second.kernel.assign([[1.0]])
    second.bias.assign([-1.0])
    line = np.linspace(-1.0, 2.0, 301, dtype=np.float32).reshape(-1, 1)
    assert count_linear_regions(model, line) == 3
    assert region_score(model, line) == pytest.approx(2.0)  # 2 patterns per layer


def test_zero_shot_median_over_seeds_equals_fresh_builds():
    sp = get_space("micro", (12, 12, 1), 4, max_blocks=2, max_channels=8, max_dense=1)
    genome = sp.sample(4)
    x = np.random.default_rng(1).random((32, 12, 12, 1), dtype=np.float32)
    z = zero_shot(genome, x, seeds=(0, 1, 2))
    fresh = [ntk_condition_number(build_model(genome, seed=s, logits=True), x) for s in (0, 1, 2)]
    np.testing.assert_allclose(z.ntk_conds, fresh, rtol=1e-4)
    assert z.ntk_cond == pytest.approx(float(np.median(fresh)), rel=1e-4)
    assert z.joint_regions <= 32 and z.regions > 0


def test_zero_shot_rejects_wrong_shapes():
    genome = get_space("micro", (12, 12, 1), 4, max_blocks=1).sample(0)
    with pytest.raises(ValueError, match=r"Proxy samples must have shape \(n, 12, 12, 1\)"):
        zero_shot(genome, np.zeros((8, 12, 12)))
    with pytest.raises(ValueError, match="at least two samples"):
        zero_shot(genome, np.zeros((1, 12, 12, 1)))


def test_hardware_indicators_agree_with_analytic_costs():
    from tfnas.genome import analyze
    from tfnas.memory.estimate import estimate_memory
    from tfnas.objectives.latency import _genome_macs_by_kind

    sp = get_space("micro", (16, 16, 1), 5, max_blocks=3, max_channels=16)
    for seed in range(20):
        g = sp.sample(seed)
        hw = hardware_indicators(g)
        assert hw["macs"] == analyze(g).macs == sum(_genome_macs_by_kind(g).values())
        assert hw["planned_bytes"] == estimate_memory(g).planned_bytes
        assert hw["width"] == narrowest_channels(g) >= 1
        assert hw["latency_ms"] > 0
