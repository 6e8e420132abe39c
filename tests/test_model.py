import numpy as np
import pytest

from tfnas._tf import keras
from tfnas.genome import MicroSpace, MSNASSpace, analyze
from tfnas.model import build_model


def keras_macs(model: keras.Model) -> int:
    """MACs from the built layers alone (independent of tfnas.genome.costs)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            _, h, w, _ = layer.output_shape
            total += kh * kw * cin * mult * h * w
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output_shape
            total += kh * kw * cin * cout * h * w
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += cin * cout
    return int(total)


def check_genome(genome, x):
    model = build_model(genome)
    costs = analyze(genome)
    assert model.count_params() == costs.params
    assert keras_macs(model) == costs.macs
    y = model.predict_on_batch(x)
    assert y.shape == (len(x), genome.num_classes)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    layers = {layer.name: layer for layer in model.layers}
    for key, shape in costs.node_shapes.items():
        stage, node = key.split("/")
        relus = [n for n in layers if n.startswith(f"{stage}_{node}_") and n.endswith("_relu")]
        if relus:  # conv-like nodes: the last ReLU is the node's output
            assert tuple(layers[relus[-1]].output_shape[1:]) == shape, key
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            producer = layer.inbound_nodes[0].inbound_layers
            assert isinstance(producer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D), (
                layer.name
            )
            assert layer.momentum == 0.9
    keras.backend.clear_session()


def run_space(space, count):
    x = np.random.default_rng(0).normal(size=(2, *space.input_shape)).astype(np.float32)
    for seed in range(count):
        check_genome(space.sample(seed), x)


@pytest.mark.parametrize("space_cls", [MSNASSpace, MicroSpace])
@pytest.mark.parametrize("shape", [(12, 12, 2), (49, 10)])
def test_sampled_genomes_materialise(space_cls, shape):
    kwargs = {"max_blocks": 4, "max_channels": 32} if space_cls is MicroSpace else {"nodes": 4}
    run_space(space_cls(shape, 7, **kwargs), 12)


@pytest.mark.slow
@pytest.mark.parametrize("space_cls", [MSNASSpace, MicroSpace])
def test_200_genomes_per_space_materialise(space_cls):
    run_space(space_cls((16, 16, 1), 10), 200)


@pytest.mark.slow
@pytest.mark.parametrize("space_cls", [MSNASSpace, MicroSpace])
def test_200_one_d_genomes_per_space_materialise(space_cls):
    run_space(space_cls((49, 10), 12), 200)


def test_build_is_deterministic_and_named_after_nodes():
    g = MSNASSpace((8, 8, 1), 4, stages=2, nodes=3).sample(2)
    a, b = build_model(g, seed=7), build_model(g, seed=7)
    assert [w.name for w in a.weights] == [w.name for w in b.weights]
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    c = build_model(g, seed=8)
    assert any(
        not np.array_equal(x, y) for x, y in zip(a.get_weights(), c.get_weights(), strict=True)
    )
    names = {layer.name for layer in a.layers}
    for s, graph in enumerate(g.stages):
        for node in graph.nodes:
            if graph.nodes[node].get("op") in ("conv", "sepconv"):
                assert any(n.startswith(f"s{s}_{node}_") for n in names)


def test_build_for_another_task():
    g = MSNASSpace((16, 16, 1), 10, stages=2, nodes=3).sample(0)
    model = build_model(g, input_shape=(32, 32, 3), num_classes=4)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 4)
    assert model.count_params() == analyze(g, input_shape=(32, 32, 3), num_classes=4).params
