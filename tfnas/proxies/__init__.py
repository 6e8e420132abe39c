"""Zero-shot indicators of an untrained network (MicroNAS, after TE-NAS).

Two indicators are computed on the tf_keras model built from a genome, at
initialisation, with no training:

* :func:`ntk_condition_number`: κ = λmax / λmin of the neural tangent kernel
  Θ = J·Jᵀ on one minibatch, where row ``i`` of ``J`` is the gradient of the
  summed logits of sample ``i`` with respect to every kernel (conv, depthwise
  and dense kernels; not BatchNorm, not biases). A well-conditioned kernel
  (small κ) trains fast and evenly (Chen, Gong, Wang, "Neural Architecture
  Search on ImageNet in Four GPU Hours", ICLR 2021). A singular Θ gives
  ``inf``.
* :func:`activation_patterns` and :func:`count_linear_regions`: every ReLU
  output is binarised by its sign; a set of inputs that share one pattern lies
  in one linear region of the network, so the number of distinct patterns over
  a set of inputs counts the linear regions it touches (TE-NAS).

How tfnas applies them to its inputs (see docs/search.md for the reasons):

* BatchNorm is evaluated with its initial statistics (inference mode, an
  identity at initialisation), so each row of ``J`` depends on one sample only
  and the per-sample gradients are computed exactly in one forward and one
  backward pass (:func:`per_sample_kernel_gradients`), not 32.
* Whole-network patterns over real images are almost all distinct (a 28x28
  image touches thousands of ReLUs), so the count saturates at the number of
  samples. The region indicator therefore counts patterns per ReLU layer over
  every (sample, position) point: the pattern of a point is its sign vector
  across the layer's channels, and the layer's count is how many of the
  ``2**channels`` patterns the data realises. The indicator is
  ``sum(log2(count))`` over the ReLU layers: the log of the number of regions
  of the layer-wise partition, which a one-channel bottleneck or a dead layer
  cuts down. Pooling, addition and concatenation add no boundary; only ReLUs
  count (BatchNorm and ReLU are what the converter folds into each conv).

:func:`zero_shot` runs both on a genome with the median of κ over three
initialisation seeds, and :func:`hardware_indicators` adds MACs, the modelled
latency and the genome estimate of planned bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from tfnas._tf import keras, tf
from tfnas.genome import Genome, analyze
from tfnas.genome.costs import narrowest_channels
from tfnas.model import build_model
from tfnas.model.builder import reseed

__all__ = [
    "ZeroShot",
    "zero_shot",
    "ntk_condition_number",
    "per_sample_kernel_gradients",
    "kernel_gram",
    "activation_patterns",
    "count_linear_regions",
    "region_score",
    "hardware_indicators",
]

_KERNEL_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _kernel_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if isinstance(layer, _KERNEL_LAYERS)]


def per_sample_kernel_gradients(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    """Per-sample gradients of each sample's summed outputs with respect to every kernel.

    The model must not couple samples (BatchNorm in inference mode, as here),
    so that the gradient of the batch's summed outputs with respect to a
    layer's pre-activation holds each sample's own gradient. A kernel's
    per-sample gradient is then the product of the layer's input patches and
    that gradient, summed over positions.

    Returns
    -------
    list of numpy arrays
        One ``(batch, kernel_size)`` array per kernel layer.
    """
    layers = _kernel_layers(model)
    if not layers:
        raise ValueError(
            "The model has no conv, depthwise or dense kernels to differentiate. "
            f"Received: layers {[type(layer).__name__ for layer in model.layers]}"
        )
    probes = getattr(model, "_tfnas_gradient_probe", None)
    if probes is None:  # built once per model: re-initialised seeds reuse it
        probes = keras.Model(
            model.inputs, [[layer.input, layer.output] for layer in layers] + [model.output]
        )
        model._tfnas_gradient_probe = probes
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        *pairs, out = probes(x, training=False)
        tape.watch([p[1] for p in pairs])
        total = tf.reduce_sum(out)
    outputs = [p[1] for p in pairs]
    grads = tape.gradient(total, outputs)
    rows = []
    for layer, (inp, out_t), g in zip(layers, pairs, grads, strict=True):
        if g is None:
            g = tf.zeros_like(out_t)
        act = getattr(layer, "activation", None)
        if act is keras.activations.relu:
            g = g * tf.cast(out_t > 0, g.dtype)  # back through a fused ReLU
        elif act is not None and act is not keras.activations.linear:
            raise ValueError(
                f"Layer {layer.name!r} ends in {getattr(act, '__name__', act)}; the NTK needs "
                "the logits. Expected a model built with logits=True. Received: activation="
                f"{getattr(act, '__name__', act)}"
            )
        rows.append(_layer_sample_grads(layer, inp, g).numpy().reshape(len(x), -1))
    return rows


def _layer_sample_grads(layer, inputs, grad):
    if isinstance(layer, keras.layers.Dense):
        return tf.einsum("nd,nu->ndu", inputs, grad)
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    patches = tf.image.extract_patches(
        inputs, [1, kh, kw, 1], [1, sh, sw, 1], [1, 1, 1, 1], layer.padding.upper()
    )
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        n, ho, wo, _ = patches.shape
        c = inputs.shape[-1]
        patches = tf.reshape(patches, (n, ho, wo, kh * kw, c))
        return tf.einsum("nhwkc,nhwc->nkc", patches, grad)
    return tf.einsum("nhwp,nhwk->npk", patches, grad)


def kernel_gram(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The empirical NTK Θ = J·Jᵀ over the kernels (float64, ``(batch, batch)``)."""
    theta = np.zeros((len(x), len(x)))
    for rows in per_sample_kernel_gradients(model, x):
        rows = rows.astype(np.float64)
        theta += rows @ rows.T
    return theta


def ntk_condition_number(model: keras.Model, x: np.ndarray) -> float:
    """κ = λmax / λmin of the NTK of ``model`` on the batch ``x``; ``inf`` if singular.

    Θ counts as singular when λmin is not above ``batch * eps(float32) * λmax``
    (below that, float32 gradients cannot resolve it) or is not finite.

    Examples
    --------
    A linear model ``f(x) = w·x`` has ``J = X``: for ``X = [[1, 0], [1, 1]]``,
    Θ = [[1, 1], [1, 2]] and κ = (3 + √5) / (3 - √5) ≈ 6.854.
    """
    theta = kernel_gram(model, x)
    if not np.all(np.isfinite(theta)):
        return math.inf
    eig = np.linalg.eigvalsh(theta)
    top, bottom = float(eig[-1]), float(eig[0])
    if top <= 0 or bottom <= len(x) * float(np.finfo(np.float32).eps) * top:
        return math.inf
    return top / bottom


def _relu_outputs(model: keras.Model) -> list:
    outs = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.ReLU):
            outs.append(layer.output)
        elif getattr(layer, "activation", None) is keras.activations.relu:
            outs.append(layer.output)
    return outs


def activation_patterns(
    model: keras.Model, x: np.ndarray, batch_size: int = 256
) -> list[np.ndarray]:
    """Sign patterns of every ReLU output: one boolean ``(batch, ...)`` array per ReLU layer."""
    outs = _relu_outputs(model)
    if not outs:
        return []
    probe = getattr(model, "_tfnas_relu_probe", None)
    if probe is None:
        probe = keras.Model(model.inputs, outs)
        model._tfnas_relu_probe = probe
    chunks = []
    for start in range(0, len(x), batch_size):
        got = probe(tf.convert_to_tensor(x[start : start + batch_size], tf.float32), training=False)
        got = got if isinstance(got, list | tuple) else [got]
        chunks.append([g.numpy() > 0 for g in got])
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def count_linear_regions(model: keras.Model, x: np.ndarray) -> int:
    """Distinct whole-network ReLU patterns over the samples ``x`` (TE-NAS's count).

    On inputs along a line, dense enough that no region is skipped, this is the
    number of linear regions the line crosses (distinct ones).
    """
    return _joint_count(activation_patterns(model, x), len(x))


def region_score(model: keras.Model, x: np.ndarray) -> float:
    """``sum(log2(count))`` of per-layer channel patterns over (sample, position) points.

    See the module docstring; 0 for a network without ReLUs.
    """
    return _layer_score(activation_patterns(model, x))


def _distinct_rows(bits: np.ndarray) -> int:
    return len({row.tobytes() for row in np.packbits(bits, axis=1)})


def _joint_count(patterns: list[np.ndarray], n: int) -> int:
    if not patterns:
        return 1
    return _distinct_rows(np.concatenate([p.reshape(n, -1) for p in patterns], axis=1))


def _layer_score(patterns: list[np.ndarray]) -> float:
    return float(sum(math.log2(_distinct_rows(p.reshape(-1, p.shape[-1]))) for p in patterns))


@dataclass(frozen=True)
class ZeroShot:
    """Zero-shot indicators of one genome.

    Attributes
    ----------
    ntk_cond:
        Median κ over the initialisation seeds (``inf`` when singular).
    ntk_conds:
        κ per seed.
    regions:
        :func:`region_score` on the region samples (first seed).
    joint_regions:
        :func:`count_linear_regions` on the same samples (saturates at their number).
    seconds:
        Wall time of the whole computation.
    """

    ntk_cond: float
    ntk_conds: tuple[float, ...]
    regions: float
    joint_regions: int
    seconds: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ntk_conds"] = list(self.ntk_conds)
        return d


def zero_shot(
    genome: Genome,
    x: np.ndarray,
    *,
    batch_size: int = 32,
    region_samples: int = 64,
    seeds: Sequence[int] = (0, 1, 2),
) -> ZeroShot:
    """κ (median over ``seeds``) and the region indicators of ``genome`` on samples ``x``.

    Parameters
    ----------
    genome:
        The architecture; its tf_keras model is built once and re-initialised per seed.
    x:
        Real training inputs of the genome's input shape; the first
        ``batch_size`` give the NTK minibatch and the first ``region_samples``
        the region points.
    batch_size:
        NTK minibatch (MicroNAS found 16-32 best).
    region_samples:
        Samples whose (sample, position) points the region indicator uses.
    seeds:
        Initialisation seeds (the weights equal ``build_model(genome, seed=s)``'s).

    Raises
    ------
    ValueError
        If ``x`` has fewer than two samples or the wrong shape.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != len(genome.input_shape) + 1 or tuple(x.shape[1:]) != tuple(genome.input_shape):
        raise ValueError(
            f"Proxy samples must have shape (n, {', '.join(map(str, genome.input_shape))}). "
            f"Received: x.shape={x.shape}"
        )
    if len(x) < 2 or not seeds:
        raise ValueError(
            "The NTK needs at least two samples and one seed. "
            f"Received: {len(x)} samples, seeds={list(seeds)}"
        )
    start = time.perf_counter()
    model = build_model(genome, seed=int(seeds[0]), logits=True)
    conds = []
    regions = joint = None
    for i, seed in enumerate(seeds):
        if i:
            reseed(model, int(seed))
        conds.append(ntk_condition_number(model, x[:batch_size]))
        if regions is None:
            patterns = activation_patterns(model, x[:region_samples])
            regions = _layer_score(patterns)
            joint = _joint_count(patterns, len(x[:region_samples]))
    keras.backend.clear_session()
    return ZeroShot(float(np.median(conds)), tuple(conds), float(regions), int(joint),
                    time.perf_counter() - start)  # fmt: skip


def hardware_indicators(genome: Genome, device: str | None = None, *, quantization: str = "ptq",
                        kernels: str = "optimized", calibration=None) -> dict[str, float]:  # fmt: skip
    """MACs, parameters, the bottleneck width (``width``, :func:`narrowest_channels`), modelled latency
    (ms, with ``calibration`` if given) and the genome estimate of planned bytes."""
    from tfnas.memory.estimate import estimate_memory
    from tfnas.objectives.latency import DEFAULT_LATENCY_DEVICE, estimate_genome_latency

    costs = analyze(genome)
    estimate = estimate_memory(genome, quantization=quantization)
    latency = estimate_genome_latency(
        genome,
        device or DEFAULT_LATENCY_DEVICE,
        kernels=kernels,
        estimate=estimate,
        calibration=calibration,
    )
    return {
        "macs": float(costs.macs),
        "params": float(costs.params),
        "width": float(narrowest_channels(genome)),
        "latency_ms": latency,
        "planned_bytes": float(estimate.planned_bytes),
    }
