"""Materialise a genome as a tf_keras functional model.

Layer names derive from node ids (``s{stage}_{node}_{part}``), so a layer can
be traced back to its genome node; weights are initialised from seeds derived
from those names, so the same genome and seed always give the same model.
Every BatchNorm directly follows a convolution (TF-MOT can only quantize that
pattern) and uses a momentum of 0.9 by default, which suits short proxy
training (0.99 leaves the moving statistics near their initial values and the
int8 model at chance accuracy).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from tfnas._tf import keras
from tfnas.genome import OUT, Genome

__all__ = ["build_model", "reseed"]


def _init_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31


def reseed(model: keras.Model, seed: int) -> None:
    """Re-initialise every kernel of a model from :func:`build_model` as ``seed`` would.

    After ``reseed(model, s)`` the kernels equal those of ``build_model(genome,
    seed=s)`` (BatchNorm and biases keep their initial values), without
    building the model again.
    """
    for layer in model.layers:
        for attr in ("kernel", "depthwise_kernel"):
            var = getattr(layer, attr, None)
            if var is not None:
                init = keras.initializers.GlorotUniform(seed=_init_seed(seed, layer.name))
                var.assign(init(var.shape, dtype=var.dtype))


class _Builder:
    def __init__(self, one_d: bool, seed: int, bn_momentum: float) -> None:
        self.one_d, self.seed, self.momentum = one_d, seed, bn_momentum

    def init(self, name: str) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=_init_seed(self.seed, name))

    def kernel(self, k: int) -> tuple[int, int]:
        return (k, 1) if self.one_d else (k, k)

    def stride(self, s: int) -> tuple[int, int]:
        # On a width of 1, 'same' padding keeps the width at 1 for any stride, and TF's CPU
        # depthwise kernel only supports equal strides: use (s, s) in 1-D too.
        return (s, s)

    def bn_relu(self, x, name: str):
        x = keras.layers.BatchNormalization(momentum=self.momentum, name=f"{name}_bn")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x)

    def conv(self, x, channels: int, kernel: int, stride: int, name: str):
        x = keras.layers.Conv2D(channels, self.kernel(kernel), self.stride(stride), padding="same",
                                use_bias=False, kernel_initializer=self.init(name), name=name)(x)  # fmt: skip
        return self.bn_relu(x, name)

    def dwconv(self, x, kernel: int, stride: int, name: str):
        x = keras.layers.DepthwiseConv2D(self.kernel(kernel), self.stride(stride), padding="same",
                                         use_bias=False, depthwise_initializer=self.init(name),
                                         name=name)(x)  # fmt: skip
        return self.bn_relu(x, name)

    def node(self, x, attrs: dict, name: str):
        op = attrs["op"]
        if op == "conv":
            return self.conv(x, attrs["channels"], attrs["kernel"], attrs["stride"], f"{name}_conv")
        if op == "sepconv":
            x = self.dwconv(x, attrs["kernel"], attrs["stride"], f"{name}_dw")
            return self.conv(x, attrs["channels"], 1, 1, f"{name}_pw")
        if op == "dwconv":
            return self.dwconv(x, attrs["kernel"], attrs["stride"], f"{name}_dw")
        if op in ("maxpool", "avgpool"):
            layer = keras.layers.MaxPooling2D if op == "maxpool" else keras.layers.AveragePooling2D
            return layer(self.kernel(attrs["kernel"]), self.stride(attrs["stride"]), padding="same",
                         name=f"{name}_{op}")(x)  # fmt: skip
        return x  # identity

    def downsample(self, x, op: str, channels: int | None, index: int):
        name = f"down{index}"
        wide = x.shape[2] > 1
        window = (2, 2) if wide else (2, 1)
        if op == "maxpool":
            return keras.layers.MaxPooling2D(window, window, padding="valid", name=name)(x)
        if op == "avgpool":
            return keras.layers.AveragePooling2D(window, window, padding="valid", name=name)(x)
        if op == "conv":
            return self.conv(x, channels or x.shape[-1], 3, 2, f"{name}_conv")
        return x


def build_model(
    genome: Genome,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    seed: int = 0,
    bn_momentum: float = 0.9,
    name: str = "tfnas_model",
    logits: bool = False,
) -> keras.Model:
    """Build the tf_keras functional model of ``genome``.

    Parameters
    ----------
    genome:
        The architecture.
    input_shape, num_classes:
        The task (defaults: the genome's own); another task reuses the same
        structure, as when a searched architecture is transferred.
    seed:
        Seed of every weight initialiser (combined with the layer name).
    bn_momentum:
        BatchNorm momentum.
    name:
        The model's name.
    logits:
        End in the classifier's logits instead of its softmax (the zero-shot
        proxies differentiate the logits); the weights are the same.

    Returns
    -------
    keras.Model
        Input ``(batch, *input_shape)`` float32; output ``(batch, num_classes)``
        softmax probabilities (or logits).

    Raises
    ------
    SearchSpaceError
        If the genome is not valid for ``input_shape``.
    """
    shape = tuple(genome.input_shape if input_shape is None else input_shape)
    classes = genome.num_classes if num_classes is None else num_classes
    genome.validate(shape)
    b = _Builder(len(shape) == 2, seed, bn_momentum)
    inputs = keras.Input(shape=shape, name="input")
    x = keras.layers.Reshape((shape[0], 1, shape[1]), name="to_2d")(inputs) if b.one_d else inputs
    for s, graph in enumerate(genome.stages):
        tensors = {"in": x}
        for node, sources, merge in genome.stage_steps(s):
            preds = [tensors[p] for p in sources]
            if len(preds) == 1:
                merged = preds[0]
            elif merge == "add":
                merged = keras.layers.Add(name=f"s{s}_{node}_add")(preds)
            else:
                merged = keras.layers.Concatenate(axis=-1, name=f"s{s}_{node}_concat")(preds)
            tensors[node] = (
                merged if node == OUT else b.node(merged, graph.nodes[node], f"s{s}_{node}")
            )
        x = tensors[OUT]
        if s < len(genome.downsamples):
            d = genome.downsamples[s]
            x = b.downsample(x, d.op, d.channels, s)
    if genome.head.pool == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    else:
        x = keras.layers.Flatten(name="head_pool")(x)
    for i, units in enumerate(genome.head.hidden):
        x = keras.layers.Dense(units, activation="relu", kernel_initializer=b.init(f"dense{i}"),
                               name=f"dense{i}")(x)  # fmt: skip
    outputs = keras.layers.Dense(classes, activation=None if logits else "softmax",
                                 kernel_initializer=b.init("classifier"), name="classifier")(x)  # fmt: skip
    return keras.Model(inputs, outputs, name=name)
