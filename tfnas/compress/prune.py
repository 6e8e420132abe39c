"""Pruning: TF-MOT magnitude pruning and structured (whole-channel) pruning.

Magnitude pruning zeroes single weights; a TFLite model keeps its dense
tensors, so flash, RAM and latency on a microcontroller do not change (only a
compressed download shrinks). Structured pruning removes whole channels from
the genome, so the rebuilt model really is smaller in every respect.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow_model_optimization as tfmot

from tfnas._tf import keras
from tfnas.genome import IN, OUT, Genome, stage_order
from tfnas.genome.genome import clone_stages

__all__ = [
    "pruning_schedule",
    "prune_magnitude",
    "sparsity",
    "channel_importance",
    "prune_channels",
]


def pruning_schedule(
    steps: int, target_sparsity: float, *, initial_sparsity: float = 0.0, updates: int = 10
) -> tfmot.sparsity.keras.PolynomialDecay:
    """A polynomial schedule that reaches ``target_sparsity`` within ``steps``.

    TF-MOT's default ``frequency=100`` silently prunes nothing in a short proxy
    training run; here the mask is updated ``updates`` times over the first
    80% of the steps, whatever their number.
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(
            f"target_sparsity must be in [0, 1). Received: target_sparsity={target_sparsity}"
        )
    if steps < 1:
        raise ValueError(f"Pruning needs at least one training step. Received: steps={steps}")
    end = max(1, int(steps * 0.8))
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=initial_sparsity,
        final_sparsity=target_sparsity,
        begin_step=0,
        end_step=end,
        frequency=max(1, end // updates),
    )


def prune_magnitude(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    target_sparsity: float = 0.5,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """Fine-tune ``model`` with magnitude pruning and return it stripped.

    The returned model has plain layers (pruning wrappers removed) whose
    prunable kernels are ``target_sparsity`` zeros.
    """
    steps = epochs * math.ceil(len(x) / batch_size)
    schedule = pruning_schedule(steps, target_sparsity)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(
        keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", ["accuracy"]
    )
    pruned.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])  # fmt: skip
    return tfmot.sparsity.keras.strip_pruning(pruned)


def sparsity(model: keras.Model) -> float:
    """Fraction of zeros over the kernels TF-MOT prunes: Conv2D and Dense.

    TF-MOT leaves depthwise kernels dense, so they are not counted.
    """
    zeros = total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense) and not isinstance(
            layer, keras.layers.DepthwiseConv2D
        ):
            value = layer.kernel.numpy()
            zeros += int(np.sum(value == 0))
            total += value.size
    return zeros / total if total else 0.0


def channel_importance(genome: Genome, model: keras.Model) -> dict[tuple[int, str], np.ndarray]:
    """L1 norm of every output channel of every conv and separable-conv node.

    Keys are ``(stage, node)``; values hold one norm per output channel of the
    node's last convolution (the pointwise one of a separable conv), scaled by
    the absolute BatchNorm gamma that follows it.
    """
    layers = {layer.name: layer for layer in model.layers}
    scores = {}
    for s, graph in enumerate(genome.stages):
        for node in stage_order(graph):
            op = graph.nodes[node]["op"]
            if op not in ("conv", "sepconv"):
                continue
            name = f"s{s}_{node}_{'conv' if op == 'conv' else 'pw'}"
            kernel = layers[name].kernel.numpy()
            gamma = np.abs(layers[f"{name}_bn"].gamma.numpy())
            scores[(s, node)] = np.abs(kernel).sum(axis=(0, 1, 2)) * gamma
    return scores


def prune_channels(genome: Genome, model: keras.Model, fraction: float) -> Genome:
    """Remove the ``fraction`` of lowest-importance channels, globally, from ``genome``.

    Channel scores (:func:`channel_importance`) are normalised by their node's
    mean so that nodes of different scale compete fairly; the lowest
    ``fraction`` of all channels are removed, and each node keeps at least one.
    Nodes whose channels reach an add merge keep their width (an add needs
    equal channels). The result is a smaller genome to rebuild and fine-tune.

    Raises
    ------
    ValueError
        If ``fraction`` is not in [0, 1).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1). Received: fraction={fraction}")
    scores = channel_importance(genome, model)
    locked = _locked(genome)
    pool = [(v / (v.mean() + 1e-12), key) for key, v in scores.items() if key not in locked]
    if not pool or fraction == 0:
        return genome.copy()
    everything = np.concatenate([v for v, _ in pool])
    threshold = np.quantile(everything, fraction)
    stages = clone_stages(genome)
    for normalised, (s, node) in pool:
        keep = max(1, int(np.sum(normalised > threshold)))
        stages[s].nodes[node]["channels"] = keep
    return Genome(stages, genome.downsamples, genome.head,
                  input_shape=genome.input_shape, num_classes=genome.num_classes)  # fmt: skip


def _channel_sources(genome: Genome, stage: int, node: str) -> set[tuple[int, str]]:
    """The conv nodes whose ``channels`` fix the channel count of ``node``'s output."""
    graph = genome.stages[stage]
    if node == IN:
        if stage == 0 or genome.downsamples[stage - 1].channels is not None:
            return set()
        return _channel_sources(genome, stage - 1, OUT)
    if node != OUT and graph.nodes[node]["op"] in ("conv", "sepconv"):
        return {(stage, node)}
    return set().union(*(_channel_sources(genome, stage, p) for p in graph.predecessors(node)))


def _locked(genome: Genome) -> set[tuple[int, str]]:
    """Nodes whose width must stay: their channels reach an add merge."""
    locked: set[tuple[int, str]] = set()
    for s, graph in enumerate(genome.stages):
        for node in stage_order(graph):
            if graph.nodes[node].get("merge") == "add":
                for pred in graph.predecessors(node):
                    locked |= _channel_sources(genome, s, pred)
    return locked
