"""A zoo of tiny ``.tflite`` models that together exercise most TFLM builtin operators.

Each :class:`ZooEntry` builds one small model (a tf_keras model, or a ``tf.function`` of
raw TensorFlow ops with a fixed batch of 1) and says which variants the converter and
TFLM accept for it: ``float32``; ``int8`` (full-integer post-training quantization with
int8 inputs and outputs); and ``int16x8`` (16-bit activations, 8-bit weights, int16
inputs and outputs). Weights and the representative dataset (8 samples) come from fixed
seeds, so :func:`build` is deterministic.

Usage::

    python -m tests.op_zoo OUT_DIR [VARIANT...]   # every model, and OUT_DIR/zoo.json

:func:`generate_all` also runs the real TFLM host harness
(``.tflm-build/bin/host/tflm_arena``) on every model when it exists and drops the models
that fail to allocate or invoke, recording TFLM's message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

from tfnas._tf import keras, tf  # noqa: E402
from tfnas.tflite import read_model  # noqa: E402

__all__ = [
    "ZOO",
    "ZooEntry",
    "Input",
    "VARIANTS",
    "HARNESS",
    "build",
    "opcodes",
    "float_ops",
    "run_harness",
    "generate_all",
    "main",
]

VARIANTS = ("int8", "float32", "int16x8")
HARNESS = Path(__file__).resolve().parents[1] / ".tflm-build" / "bin" / "host" / "tflm_arena"
SAMPLES = 8


def _tflm_builtin_ops() -> frozenset[str]:
    """``TFLM_BUILTIN_OPS`` of tfnas.memory.kernels (read from its source if the import fails)."""
    try:
        from tfnas.memory.kernels import TFLM_BUILTIN_OPS

        return TFLM_BUILTIN_OPS
    except Exception:  # the memory package may be mid-edit; its op list is a plain literal
        import ast

        src = Path(__file__).resolve().parents[1] / "tfnas" / "memory" / "kernels" / "__init__.py"
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") == "TFLM_BUILTIN_OPS" for t in node.targets
            ):
                text = next(n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant))
                return frozenset(text.split())
        raise


TFLM_BUILTIN_OPS = _tflm_builtin_ops()


@dataclass(frozen=True)
class Input:
    """One model input: static shape (batch first), dtype and the range of its random data.

    A ``None`` dimension keeps the dimension dynamic in the signature only (the converter
    writes 1 in the tensor's shape and -1 in ``shape_signature``); a few ops (SHAPE,
    EXPAND_DIMS) are only emitted when their input's shape is not fully known.
    """

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    low: float = -1.0
    high: float = 1.0

    def spec(self) -> Any:
        """The ``tf.TensorSpec`` of this input."""
        return tf.TensorSpec(self.shape, getattr(tf, self.dtype))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One random sample with batch 1 (``None`` dimensions become 1)."""
        shape = tuple(1 if d is None else d for d in self.shape)
        if self.dtype == "bool":
            return rng.random(shape) < 0.5
        if self.dtype.startswith("int"):
            return rng.integers(int(self.low), int(self.high) + 1, shape).astype(self.dtype)
        return rng.uniform(self.low, self.high, shape).astype(self.dtype)


def F(*shape: int | None, low: float = -1.0, high: float = 1.0) -> Input:
    """A float32 input."""
    return Input(tuple(shape), "float32", low, high)


def I32(*shape: int | None, low: int = 0, high: int = 3) -> Input:
    """An int32 input with values in ``[low, high]``."""
    return Input(tuple(shape), "int32", low, high)


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model.

    Attributes
    ----------
    name : str
        Key in :data:`ZOO`.
    builder : callable
        ``builder(rng) -> obj``: a tf_keras model or a callable of tf ops taking the inputs
        positionally (a ``tf.Module`` when it owns variables). ``rng`` seeds constants;
        Keras initialisers are seeded by :func:`build`.
    inputs : tuple of Input
        The inputs, in call order.
    variants : tuple of str
        Variants the converter and TFLM accept for this model.
    refused : dict
        Variant -> why it is left out (converter refusal or TFLM failure, as found).
    float_io : bool
        Keep float32 inputs and outputs in quantized variants (QUANTIZE/DEQUANTIZE edges).
    resource_variables : bool
        Convert with ``experimental_enable_resource_variables``.
    expect : tuple of str
        Opcodes this entry is meant to produce; :func:`generate_all` records those the
        converter did not emit as ``missing_expected``.
    handmade : bool
        ``builder(rng, variant) -> bytes`` writes the flatbuffer itself (for operators no
        TensorFlow graph converts to: L2_POOL_2D, SVDF).
    """

    name: str
    builder: Callable[[np.random.Generator], Any]
    inputs: tuple[Input, ...]
    variants: tuple[str, ...] = VARIANTS
    refused: dict[str, str] = field(default_factory=dict)
    float_io: bool = False
    resource_variables: bool = False
    expect: tuple[str, ...] = ()
    handmade: bool = False


ZOO: dict[str, ZooEntry] = {}


def _entry(
    name: str,
    *inputs: Input,
    expect: Sequence[str] = (),
    refused: dict[str, str] | None = None,
    float_io: bool = False,
    resource_variables: bool = False,
    handmade: bool = False,
) -> Callable[[Callable[[np.random.Generator], Any]], Callable[[np.random.Generator], Any]]:
    """Register a builder in :data:`ZOO`; ``refused`` names variants left out and why."""
    refused = dict(refused or {})

    def register(builder: Callable[[np.random.Generator], Any]) -> Callable:
        if name in ZOO:
            raise ValueError(f"Two zoo entries named {name}.")
        ZOO[name] = ZooEntry(
            name,
            builder,
            tuple(inputs),
            tuple(v for v in VARIANTS if v not in refused),
            refused,
            float_io,
            resource_variables,
            tuple(expect),
            handmade,
        )
        return builder

    return register


def _const(rng: np.random.Generator, *shape: int, low: float = -1.0, high: float = 1.0) -> Any:
    """A seeded float32 constant."""
    return tf.constant(rng.uniform(low, high, shape).astype(np.float32))


def _model(inputs: Sequence[Any], outputs: Any) -> Any:
    """A functional tf_keras model."""
    return keras.Model(list(inputs) if len(inputs) > 1 else inputs[0], outputs)


def _inp(*shape: int) -> Any:
    """A Keras input with batch 1."""
    return keras.Input(shape, batch_size=1)


L = keras.layers
#: TFLM's messages (host build of commit 90b983c2) for the variants it refuses.
_NO_INT16 = "TFLM: {op} has no int16 kernel ({msg})"
_FLOAT_ONLY = "TFLM: {op} has only a float32 kernel ({msg})"


# --------------------------------------------------------------------------- Keras models


@_entry(
    "conv_pool",
    F(1, 8, 8, 3),
    expect=(
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ),
)
def _conv_pool(rng: np.random.Generator) -> Any:
    x = inp = _inp(8, 8, 3)
    x = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dense(5)(x)
    return _model([inp], L.Softmax()(x))


@_entry("activations", F(1, 4, 4, 3), expect=("RELU", "RELU6", "LOGISTIC", "TANH", "CONCATENATION"))
def _activations(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    outs = [
        L.ReLU()(inp),
        L.ReLU(max_value=6.0)(inp),
        L.Activation("sigmoid")(inp),
        L.Activation("tanh")(inp),
    ]
    return _model([inp], L.Concatenate()(outs))


@_entry("leaky_relu", F(1, 4, 4, 3), expect=("LEAKY_RELU",))
def _leaky_relu(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model([inp], L.LeakyReLU(0.2)(inp))


@_entry("prelu", F(1, 4, 4, 3), expect=("PRELU",))
def _prelu(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model(
        [inp], L.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2])(inp)
    )


@_entry("elu", F(1, 4, 4, 3), expect=("ELU",))
def _elu(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model([inp], L.ELU()(inp))


@_entry("hard_swish", F(1, 4, 4, 3, low=-4.0, high=4.0), expect=("HARD_SWISH",))
def _hard_swish(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model([inp], L.Lambda(lambda x: x * tf.nn.relu6(x + 3.0) / 6.0)(inp))


@_entry("transpose_conv", F(1, 4, 4, 3), expect=("TRANSPOSE_CONV",))
def _transpose_conv(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model([inp], L.Conv2DTranspose(4, 3, strides=2, padding="same")(inp))


@_entry("upsample_nearest", F(1, 4, 4, 3), expect=("RESIZE_NEAREST_NEIGHBOR",))
def _upsample_nearest(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model([inp], L.UpSampling2D(2, interpolation="nearest")(inp))


@_entry(
    "upsample_bilinear",
    F(1, 4, 4, 3),
    expect=("RESIZE_BILINEAR",),
    refused={
        "int16x8": _NO_INT16.format(
            op="RESIZE_BILINEAR", msg="invoke: 'Output type is 7, requires float or int8.'"
        )
    },
)
def _upsample_bilinear(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model([inp], L.UpSampling2D(2, interpolation="bilinear")(inp))


@_entry("lstm", F(1, 6, 4), expect=("UNIDIRECTIONAL_SEQUENCE_LSTM",))
def _lstm(rng: np.random.Generator) -> Any:
    inp = _inp(6, 4)
    return _model([inp], L.LSTM(5, unroll=False, return_sequences=True)(inp))


@_entry("attention", F(1, 6, 4), expect=("FULLY_CONNECTED", "BATCH_MATMUL", "SOFTMAX"))
def _attention(rng: np.random.Generator) -> Any:
    inp = _inp(6, 4)
    q, k, v = L.Dense(8)(inp), L.Dense(8)(inp), L.Dense(8)(inp)
    scores = L.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True) * 0.35)([q, k])
    weights = L.Softmax(axis=-1)(scores)
    out = L.Lambda(lambda t: tf.matmul(t[0], t[1]))([weights, v])
    return _model([inp], L.Dense(4)(out))


@_entry("dense3d", F(1, 6, 4), expect=("FULLY_CONNECTED",))
def _dense3d(rng: np.random.Generator) -> Any:
    inp = _inp(6, 4)
    return _model([inp], L.Dense(3, activation="relu")(L.Dense(5)(inp)))


@_entry("conv1d_dilated", F(1, 12, 4), expect=("CONV_2D", "RESHAPE"))
def _conv1d_dilated(rng: np.random.Generator) -> Any:
    inp = _inp(12, 4)
    x = L.Conv1D(4, 3, dilation_rate=2, padding="same", activation="relu")(inp)
    return _model([inp], L.Conv1D(3, 3, dilation_rate=2, padding="valid")(x))


@_entry("pad_crop", F(1, 6, 6, 3), expect=("PAD", "STRIDED_SLICE"))
def _pad_crop(rng: np.random.Generator) -> Any:
    inp = _inp(6, 6, 3)
    x = L.ZeroPadding2D(((1, 2), (2, 1)))(inp)
    x = L.Conv2D(3, 1)(x)
    return _model([inp], L.Cropping2D(((1, 0), (2, 1)))(x))


@_entry("reduce_mean_sum", F(1, 4, 4, 3), expect=("MEAN", "SUM"))
def _reduce_mean_sum(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    outs = [L.GlobalAveragePooling2D()(inp), L.Lambda(lambda x: tf.reduce_sum(x, axis=[1, 2]))(inp)]
    return _model([inp], outs)


@_entry(
    "reduce_max_min",
    F(1, 4, 4, 3),
    expect=("REDUCE_MAX", "REDUCE_MIN"),
    refused={
        "int16x8": _NO_INT16.format(
            op="REDUCE_MAX", msg="invoke: 'Only float32 and int8 types are supported.'"
        )
    },
)
def _reduce_max_min(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    outs = [L.GlobalMaxPooling2D()(inp), L.Lambda(lambda x: tf.reduce_min(x, axis=[1, 2]))(inp)]
    return _model([inp], outs)


@_entry("log_softmax", F(1, 10), expect=("LOG_SOFTMAX",))
def _log_softmax(rng: np.random.Generator) -> Any:
    inp = _inp(10)
    return _model([inp], L.Lambda(lambda x: tf.nn.log_softmax(x))(inp))


@_entry("residual_add", F(1, 4, 4, 3), expect=("CONV_2D", "ADD"))
def _residual_add(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    x = L.Conv2D(3, 3, padding="same")(inp)
    return _model([inp], L.ReLU()(L.Add()([x, inp])))


@_entry(
    "squeeze_excite",
    F(1, 4, 4, 8),
    expect=("MEAN", "FULLY_CONNECTED", "LOGISTIC", "MUL", "ADD", "HARD_SWISH"),
)
def _squeeze_excite(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 8)
    s = L.GlobalAveragePooling2D(keepdims=True)(inp)
    s = L.Dense(2, activation="relu")(s)
    s = L.Dense(8, activation="sigmoid")(s)
    x = L.Multiply()([inp, s])
    x = L.Add()([x, inp])
    return _model([inp], L.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) / 6.0)(x))


@_entry(
    "quant_io",
    F(1, 4, 4, 3),
    float_io=True,
    expect=("QUANTIZE", "DEQUANTIZE", "CONV_2D"),
    refused={"float32": "float I/O edges only exist in quantized models"},
)
def _quant_io(rng: np.random.Generator) -> Any:
    inp = _inp(4, 4, 3)
    return _model([inp], L.Conv2D(2, 3, activation="relu")(inp))


# --------------------------------------------------------------------- raw tf.functions


def _fn(f: Callable[..., Any]) -> Callable[[np.random.Generator], Any]:
    """A builder for a function of the inputs only (no seeded constants)."""
    return lambda rng: f


def _register_fn(name: str, f: Callable[..., Any], *inputs: Input, **kw: Any) -> None:
    """Register a function of the inputs only."""
    _entry(name, *inputs, **kw)(_fn(f))


_register_fn(
    "pack_unpack",
    lambda x: tf.stack([u * 2.0 for u in tf.unstack(x, axis=1)][::-1], 2),
    F(1, 3, 4),
    expect=("UNPACK", "PACK", "MUL"),
)
_GATHER16 = {
    "int16x8": _NO_INT16.format(
        op="GATHER", msg="prepare: 'Type INT16 is not supported by gather.'"
    )
}
_register_fn(
    "gather",
    lambda x: tf.gather(x, [3, 0, 2], axis=1),
    F(1, 4, 5),
    expect=("GATHER",),
    refused=_GATHER16,
)
_register_fn(
    "gather_indices",
    lambda x, i: tf.gather(x, i, axis=1),
    F(1, 4, 5),
    I32(2),
    expect=("GATHER",),
    refused=_GATHER16,
)
_register_fn(
    "gather_nd",
    lambda x: tf.gather_nd(x, [[0, 1], [0, 3]]),
    F(1, 4, 5),
    expect=("GATHER_ND",),
    refused={
        "int16x8": _NO_INT16.format(
            op="GATHER_ND", msg="prepare: 'Params of type INT16 are not supported by gather_nd.'"
        )
    },
)
_register_fn("split", lambda x: tf.split(x, 2, axis=2), F(1, 3, 4), expect=("SPLIT",))
_register_fn("split_v", lambda x: tf.split(x, [1, 3, 2], axis=2), F(1, 3, 6), expect=("SPLIT_V",))
_register_fn("cumsum", lambda x: tf.cumsum(x, axis=1), F(1, 6, 2), expect=("CUMSUM",))
_register_fn(
    "compare",
    lambda x, y: [
        tf.cast(c, tf.float32)
        for c in (x > y, x >= y, x < y, x <= y, tf.equal(x, y), tf.not_equal(x, y))
    ],
    F(1, 8),
    F(1, 8),
    expect=("GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL", "CAST"),
)
# tf.where with equal shapes becomes SELECT (which TFLM lacks); a broadcast operand keeps
# SELECT_V2.
_register_fn(
    "select_v2",
    lambda x, y: [tf.where(x > y, x, 0.5), tf.where(x < y, y[:, :1], x)],
    F(1, 8),
    F(1, 8),
    expect=("SELECT_V2", "GREATER", "LESS"),
)
# logical_not feeding a select would be folded into swapped operands: feed an AND instead.
_register_fn(
    "logical",
    lambda x, y, b: (
        tf.cast(
            tf.logical_or(tf.logical_and(x > 0, y < 0), tf.logical_and(tf.logical_not(b), x > y)),
            tf.float32,
        )
        * x
    ),
    F(1, 8),
    F(1, 8),
    Input((1, 8), "bool"),
    expect=("LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "CAST"),
)
_register_fn(
    "reduce_all",
    lambda x: tf.cast(tf.reduce_all(x > -0.5, axis=1), tf.float32),
    F(1, 4, 3),
    expect=("REDUCE_ALL", "CAST"),
)
_register_fn(
    "cast", lambda x: tf.cast(tf.cast(x * 4.0, tf.int32) + 1, tf.float32), F(1, 8), expect=("CAST",)
)
_register_fn(
    "cast_int", lambda i: tf.cast(i, tf.float32) * 0.5, I32(1, 8, low=-5, high=5), expect=("CAST",)
)
# The harness invokes on zero inputs: divisors are constants (a zero divisor fails FLOOR_DIV).
_DIVISOR = [[1.5, -2.0, 0.75, 3.0, -1.25, 2.5, 1.0, -0.5]]
_register_fn(
    "floor_div_mod",
    lambda x: [tf.math.floordiv(x, _DIVISOR), tf.math.floormod(x, _DIVISOR)],
    F(1, 8, low=-4, high=4),
    expect=("FLOOR_DIV", "FLOOR_MOD"),
)
# No int32 models: TFLM's FLOOR_DIV and FLOOR_MOD run float32 only ("Type 'INT32' is not
# supported by FLOOR_DIV." at invoke).
_register_fn("div", lambda x, y: x / y, F(1, 8), F(1, 8, low=0.5, high=2.0), expect=("DIV",))
_register_fn("sub_mul", lambda x, y: (x - y) * y, F(1, 8), F(1, 8), expect=("SUB", "MUL"))
_register_fn("square", lambda x: tf.square(x), F(1, 8), expect=("SQUARE",))
_register_fn(
    "squared_difference",
    lambda x, y: tf.math.squared_difference(x, y),
    F(1, 8),
    F(1, 8),
    expect=("SQUARED_DIFFERENCE",),
)
_register_fn(
    "maximum_minimum",
    lambda x, y: [tf.maximum(x, y), tf.minimum(x, y)],
    F(1, 8),
    F(1, 8),
    expect=("MAXIMUM", "MINIMUM"),
)
_register_fn(
    "add_n", lambda x, y, z: tf.add_n([x, y, z]), F(1, 8), F(1, 8), F(1, 8), expect=("ADD_N",)
)
_register_fn(
    "tanh_logistic", lambda x: [tf.tanh(x), tf.sigmoid(x)], F(1, 8), expect=("TANH", "LOGISTIC")
)
_register_fn("leaky_relu_fn", lambda x: tf.nn.leaky_relu(x, 0.1), F(1, 8), expect=("LEAKY_RELU",))
_register_fn("elu_fn", lambda x: tf.nn.elu(x), F(1, 8), expect=("ELU",))
_register_fn(
    "l2_normalize",
    lambda x: tf.math.l2_normalize(x, axis=-1),
    F(1, 2, 8),
    expect=("L2_NORMALIZATION",),
)

_POSITIVE = {"rsqrt", "sqrt", "log"}
_FLOAT_ELEMENTWISE = "invoke: 'elementwise.cc:201 input->type != expected_type ({t} != FLOAT32)'"
_UNARY_REFUSED = {
    "exp": {
        v: _FLOAT_ONLY.format(
            op="EXP", msg=f"prepare: 'exp.cc:41 input->type != kTfLiteFloat32 ({t} != FLOAT32)'"
        )
        for v, t in (("int8", "INT8"), ("int16x8", "INT16"))
    },
    "log": {
        v: _FLOAT_ONLY.format(op="LOG", msg=_FLOAT_ELEMENTWISE.format(t=t))
        for v, t in (("int8", "INT8"), ("int16x8", "INT16"))
    },
    "sqrt": {"int8": _FLOAT_ONLY.format(op="SQRT", msg=_FLOAT_ELEMENTWISE.format(t="INT8"))},
}
for _op, _f in {
    "rsqrt": tf.math.rsqrt,
    "sqrt": tf.sqrt,
    "exp": tf.exp,
    "log": tf.math.log,
    "sin": tf.sin,
    "cos": tf.cos,
    "abs": tf.abs,
    "neg": tf.negative,
    "ceil": tf.math.ceil,
    "floor": tf.floor,
    "round": tf.round,
}.items():
    _register_fn(
        f"unary_{_op}",
        (lambda g: lambda x: g(x))(_f),
        F(1, 8, low=0.1 if _op in _POSITIVE else -2.0, high=2.0),
        expect=(_op.upper(),),
        refused=_UNARY_REFUSED.get(_op),
    )

_register_fn(
    "arg_max_min",
    lambda x: [
        tf.argmax(x, axis=-1, output_type=tf.int32),
        tf.argmin(x, axis=-1, output_type=tf.int32),
    ],
    F(1, 3, 8),
    expect=("ARG_MAX", "ARG_MIN"),
)
_register_fn(
    "space_depth",
    lambda x: tf.nn.depth_to_space(tf.nn.space_to_depth(x, 2) * 2.0, 2),
    F(1, 4, 4, 2),
    expect=("SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "MUL"),
)
_register_fn(
    "space_batch",
    lambda x: tf.compat.v1.batch_to_space_nd(
        tf.space_to_batch_nd(x, [2, 2], [[0, 0], [0, 0]]) * 2.0, [2, 2], [[0, 0], [0, 0]]
    ),
    F(1, 4, 4, 2),
    expect=("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"),
    refused={
        "int16x8": _NO_INT16.format(
            op="SPACE_TO_BATCH_ND", msg="invoke: 'Type INT16 (7) not supported.'"
        )
    },
)
_register_fn("reverse", lambda x: tf.reverse(x, axis=[1]), F(1, 5, 3), expect=("REVERSE_V2",))
_MIRROR16 = {"int16x8": _NO_INT16.format(op="MIRROR_PAD", msg="invoke fails, no message")}
_register_fn(
    "mirror_pad",
    lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]], mode="REFLECT"),
    F(1, 4, 4, 2),
    expect=("MIRROR_PAD",),
    refused=_MIRROR16,
)
_register_fn(
    "mirror_pad_symmetric",
    lambda x: tf.pad(x, [[0, 0], [1, 1], [0, 2]], mode="SYMMETRIC"),
    F(1, 4, 3),
    expect=("MIRROR_PAD",),
    refused=_MIRROR16,
)
_register_fn(
    "padv2",
    lambda x: tf.pad(x, [[0, 0], [1, 1], [2, 0]], constant_values=0.5),
    F(1, 4, 3),
    expect=("PADV2",),
    refused={
        "int16x8": "TFLM: PADV2 prepare: 'pad_common.cc:60 input->type != "
        "constant_values->type (7 != 1)' (the converter leaves the pad value "
        "float32 in 16x8 models)"
    },
)
_register_fn("pad", lambda x: tf.pad(x, [[0, 0], [1, 1], [2, 0]]), F(1, 4, 3), expect=("PAD",))
_register_fn(
    "transpose", lambda x: tf.transpose(x, [0, 2, 3, 1]), F(1, 2, 3, 4), expect=("TRANSPOSE",)
)
_register_fn(
    "broadcast_to", lambda x: tf.broadcast_to(x, [3, 2, 4]), F(1, 1, 4), expect=("BROADCAST_TO",)
)
_register_fn(
    "fill",
    lambda x: tf.fill([2, 3], x[0]),
    F(1),
    expect=("FILL",),
    refused={
        "int16x8": _NO_INT16.format(
            op="FILL",
            msg="invoke: 'Fill only currently supports float32 for input 1, got <garbage>.'",
        )
    },
)
_register_fn("zeros_like", lambda x: tf.raw_ops.ZerosLike(x=x), F(1, 6), expect=("ZEROS_LIKE",))
_register_fn(
    "broadcast_args",
    lambda a, b: tf.broadcast_dynamic_shape(a, b),
    Input((3,), "int32", 1, 1),
    Input((3,), "int32", 4, 4),
    expect=("BROADCAST_ARGS",),
)
_register_fn("slice", lambda x: tf.slice(x, [0, 1, 0], [1, 2, 3]), F(1, 4, 4), expect=("SLICE",))
_register_fn("strided_slice", lambda x: x[:, 1::2, ::-1], F(1, 6, 4), expect=("STRIDED_SLICE",))
_register_fn("shape", lambda x: tf.shape(x), F(None, 4), expect=("SHAPE",))
_register_fn("expand_dims", lambda x: tf.expand_dims(x, 1), F(None, 4), expect=("EXPAND_DIMS",))
# With a static shape SQUEEZE becomes RESHAPE; two unknown dimensions keep it.
_register_fn("squeeze", lambda x: tf.squeeze(x, 1), F(None, 1, None), expect=("SQUEEZE",))
_register_fn(
    "dynamic_update_slice",
    lambda x, u, i: _xla().dynamic_update_slice(x, u, tf.stack([0, i[0], 0])),
    F(1, 4, 4),
    F(1, 2, 2),
    I32(1, low=0, high=2),
    expect=("DYNAMIC_UPDATE_SLICE",),
)


@_entry("embedding_lookup", I32(3, low=0, high=9), expect=("EMBEDDING_LOOKUP",))
def _embedding_lookup(rng: np.random.Generator) -> Any:
    table = _const(rng, 10, 4)

    # The converter replaces a function implementing "embedding_matmul" by EMBEDDING_LOOKUP.
    @tf.function(experimental_implements="embedding_matmul")
    def embed(table: Any, ids: Any) -> Any:
        hot = tf.cast(tf.equal(tf.expand_dims(ids, -1), tf.range(10)), tf.float32)
        return tf.matmul(hot, table)

    return lambda ids: embed(table, ids)


@_entry("while_loop", F(1, 4), expect=("WHILE", "LESS", "ADD", "MUL"))
def _while_loop(rng: np.random.Generator) -> Any:
    def f(x: Any) -> Any:
        _, y = tf.while_loop(
            lambda i, y: i < 3, lambda i, y: (i + 1, y * 0.5 + 1.0), [tf.constant(0), x]
        )
        return y

    return f


@_entry("cond", F(1, 4), F(1), expect=("IF", "GREATER"))
def _cond(rng: np.random.Generator) -> Any:
    return lambda x, p: tf.cond(p[0] > 0.0, lambda: x * 2.0, lambda: x - 1.0)


class _Accumulator(tf.Module):
    """A module with a resource variable: VAR_HANDLE, READ/ASSIGN_VARIABLE and CALL_ONCE."""

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self.state = tf.Variable(rng.uniform(-1, 1, (1, 4)).astype(np.float32))

    def __call__(self, x: Any) -> Any:
        self.state.assign(self.state * 0.5 + x)
        return self.state.read_value()


_NO_RESOURCES = (
    "TFLM: VAR_HANDLE prepare: 'VAR_HANDLE requires resource variables. Please "
    "create ResourceVariables and pass it to the interpreter.' (tflm_arena builds "
    "its MicroInterpreter without MicroResourceVariables)"
)


@_entry(
    "resource_variable",
    F(1, 4),
    resource_variables=True,
    expect=("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"),
    refused=dict.fromkeys(VARIANTS, _NO_RESOURCES),
)
def _resource_variable(rng: np.random.Generator) -> Any:
    return _Accumulator(rng)


@_entry("seeded_mix", F(1, 8), expect=("FULLY_CONNECTED", "MUL", "ADD", "RSQRT"))
def _seeded_mix(rng: np.random.Generator) -> Any:
    w, b = _const(rng, 8, 6), _const(rng, 6)
    return lambda x: tf.math.rsqrt(tf.square(tf.matmul(x, w) + b) + 1.0) * x[:, :6]


# ------------------------------------------------------------- handmade flatbuffers


@dataclass(frozen=True)
class _T:
    """A tensor of a handmade model: constant when ``data`` is given."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None
    scale: float | None = None
    zero_point: int = 0
    variable: bool = False


def _flatbuffer(
    tensors: Sequence[_T],
    opcode: str,
    inputs: Sequence[int],
    outputs: Sequence[int],
    options_type: str,
    options: Any,
) -> bytes:
    """A one-operator, one-subgraph model; the model's inputs are the non-constant,
    non-variable operator inputs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    buffers = [schema.BufferT()]
    tensor_objs = []
    for i, t in enumerate(tensors):
        obj = schema.TensorT()
        obj.shape = list(t.shape)
        obj.type = getattr(schema.TensorType, t.dtype.upper())
        obj.name = f"t{i}"
        obj.isVariable = t.variable
        if t.data is not None:
            buf = schema.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(t.data, t.dtype).tobytes(), np.uint8)
            buffers.append(buf)
            obj.buffer = len(buffers) - 1
        if t.scale is not None:
            obj.quantization = schema.QuantizationParametersT()
            obj.quantization.scale = [float(t.scale)]
            obj.quantization.zeroPoint = [int(t.zero_point)]
        tensor_objs.append(obj)
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = list(inputs), list(outputs)
    op.builtinOptionsType = getattr(schema.BuiltinOptions, options_type)
    op.builtinOptions = options
    code = schema.OperatorCodeT()
    code.builtinCode = getattr(schema.BuiltinOperator, opcode)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    sg = schema.SubGraphT()
    sg.tensors, sg.operators = tensor_objs, [op]
    sg.inputs = [
        i for i in inputs if i >= 0 and tensors[i].data is None and not tensors[i].variable
    ]
    sg.outputs = list(outputs)
    model = schema.ModelT()
    model.version, model.description = 3, "tfnas op zoo (handmade)"
    model.operatorCodes, model.subgraphs, model.buffers = [code], [sg], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@_entry(
    "l2_pool",
    expect=("L2_POOL_2D",),
    handmade=True,
    refused={
        v: "TFLM: L2_POOL_2D has only a float32 kernel (prepare checks the input type "
        "is kTfLiteFloat32); no converter path either"
        for v in ("int8", "int16x8")
    },
)
def _l2_pool(rng: np.random.Generator, variant: str) -> bytes:
    from ai_edge_litert import schema_py_generated as schema

    opts = schema.Pool2DOptionsT()
    opts.padding = schema.Padding.VALID
    opts.strideW = opts.strideH = opts.filterWidth = opts.filterHeight = 2
    return _flatbuffer(
        [_T((1, 4, 4, 2)), _T((1, 2, 2, 2))], "L2_POOL_2D", [0], [1], "Pool2DOptions", opts
    )


@_entry(
    "svdf",
    expect=("SVDF",),
    handmade=True,
    refused={"int16x8": "TFLM: SVDF Prepare accepts float32 or int8 inputs only (svdf_common.cc)"},
)
def _svdf(rng: np.random.Generator, variant: str) -> bytes:
    """SVDF with batch 1, 4 inputs, 6 filters of rank 2 (3 units) and a memory of 5."""
    from ai_edge_litert import schema_py_generated as schema

    batch, n_in, rank, n_filters, memory = 1, 4, 2, 6, 5
    units = n_filters // rank
    wf = rng.uniform(-1, 1, (n_filters, n_in))
    wt = rng.uniform(-1, 1, (n_filters, memory))
    bias = rng.uniform(-1, 1, (units,))
    if variant == "float32":
        tensors = [
            _T((batch, n_in)),
            _T((n_filters, n_in), data=wf.astype(np.float32)),
            _T((n_filters, memory), data=wt.astype(np.float32)),
            _T((units,), data=bias.astype(np.float32)),
            _T((batch, memory * n_filters), variable=True),
            _T((batch, units)),
        ]
    else:  # int8 input/output, int8 feature weights, int16 time weights and state
        s_in, s_wf, s_wt, s_state, s_out = 1 / 128, 1 / 127, 1 / 32767, 1 / 1024, 1 / 16
        tensors = [
            _T((batch, n_in), "int8", scale=s_in),
            _T((n_filters, n_in), "int8", np.round(wf / s_wf).astype(np.int8), s_wf),
            _T((n_filters, memory), "int16", np.round(wt / s_wt).astype(np.int16), s_wt),
            _T(
                (units,),
                "int32",
                np.round(bias / (s_state * s_wt)).astype(np.int32),
                s_state * s_wt,
            ),
            _T((batch, memory * n_filters), "int16", scale=s_state, variable=True),
            _T((batch, units), "int8", scale=s_out),
        ]
    opts = schema.SVDFOptionsT()
    opts.rank = rank
    opts.fusedActivationFunction = schema.ActivationFunctionType.RELU
    return _flatbuffer(tensors, "SVDF", [0, 1, 2, 3, 4], [5], "SVDFOptions", opts)


# ------------------------------------------------------------------------- conversion


def _xla() -> Any:
    """TensorFlow's xla op wrappers (XlaDynamicUpdateSlice becomes DYNAMIC_UPDATE_SLICE)."""
    from tensorflow.compiler.tf2xla.python import xla

    return xla


def _callable(obj: Any) -> Callable[..., Any]:
    """Call ``obj`` with positional inputs (a Keras model takes a list for several)."""
    if isinstance(obj, keras.Model):
        return lambda *xs: obj(list(xs) if len(xs) > 1 else xs[0])
    return obj


def _dataset(entry: ZooEntry, seed: int) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The representative dataset: ``SAMPLES`` random samples from a fixed seed."""

    def gen() -> Iterator[list[np.ndarray]]:
        rng = np.random.default_rng(seed + 1)
        for _ in range(SAMPLES):
            yield [inp.sample(rng) for inp in entry.inputs]

    return gen


def build(name: str, variant: str, seed: int = 0) -> bytes:
    """Build zoo model ``name`` as ``variant`` (int8, float32 or int16x8); return the flatbuffer.

    Raises whatever the converter raises when it refuses the model.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}; expected one of {VARIANTS}.")
    entry = ZOO[name]
    if entry.handmade:
        if variant not in entry.variants:
            raise ValueError(f"{name} is not written as {variant}: {entry.refused.get(variant)}")
        return entry.builder(np.random.default_rng(seed), variant)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    obj = entry.builder(np.random.default_rng(seed))
    call = _callable(obj)
    concrete = tf.function(lambda *xs: call(*xs)).get_concrete_function(
        *[inp.spec() for inp in entry.inputs]
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], obj)
    if entry.resource_variables:
        converter.experimental_enable_resource_variables = True
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _dataset(entry, seed)
        if variant == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            io_type = tf.int16
        if not entry.float_io and any(inp.dtype == "float32" for inp in entry.inputs):
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
    return bytes(converter.convert())


def opcodes(model: bytes) -> list[str]:
    """Sorted distinct opcodes of all subgraphs of a flatbuffer."""
    m = read_model(model)
    return sorted({op.opcode for sg in m.subgraphs for op in sg.operators})


def float_ops(model: bytes) -> list[str]:
    """Opcodes (other than QUANTIZE) that read a non-constant float32 tensor.

    In a quantized variant these are the operators the converter left in float (it keeps
    an operator in float, between DEQUANTIZE and QUANTIZE, when it has no integer kernel).
    """
    m = read_model(model)
    found = set()
    for sg in m.subgraphs:
        for op in sg.operators:
            if op.opcode == "QUANTIZE":
                continue
            for i in op.inputs:
                t = sg.tensors[i] if 0 <= i < len(sg.tensors) else None
                if t is not None and t.dtype == "FLOAT32" and not t.is_constant:
                    found.add(op.opcode)
    return sorted(found)


def run_harness(path: Path, harness: Path = HARNESS, timeout: float = 60.0) -> tuple[bool, str]:
    """Allocate and invoke ``path`` once on the real TFLM host build; (ok, why not)."""
    try:
        proc = subprocess.run(
            [str(harness), str(path), "--no-min"], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    line = next((s for s in proc.stdout.splitlines()[::-1] if s.startswith("{")), "")
    try:
        result = json.loads(line)
    except json.JSONDecodeError:
        result = {}
    if result.get("allocate_ok") and result.get("invoke_ok"):
        return True, ""
    stage = "allocate" if not result.get("allocate_ok") else "invoke"
    err = " | ".join(s.strip() for s in proc.stderr.splitlines() if s.strip())
    return False, f"{stage} failed (rc {proc.returncode}): {err[:600]}"


def generate_all(
    out_dir: str | os.PathLike,
    variants: Sequence[str] = VARIANTS,
    seed: int = 0,
    harness: str | os.PathLike | None | bool = True,
    names: Sequence[str] | None = None,
) -> list[tuple[Path, list[str]]]:
    """Write every zoo model that converts (and runs on TFLM) to ``out_dir``.

    Each file is ``NAME.VARIANT.tflite``. Variants an entry lists as refused are skipped,
    as are models the converter refuses, models with an opcode TFLM lacks and, when the
    host harness exists (``harness=True`` looks for it, a path names it, None/False skips
    the check), models that TFLM fails to allocate or invoke. ``out_dir/zoo.json`` lists
    the kept models with their opcodes and every skipped one with the reason.

    Returns
    -------
    list of (path, opcodes)
        The kept models.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if harness is True:
        harness = HARNESS if HARNESS.exists() else None
    harness_path = Path(harness) if harness else None
    kept: list[tuple[Path, list[str]]] = []
    models: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    start = time.monotonic()
    for name in names or ZOO:
        entry = ZOO[name]
        for variant in variants:
            if variant not in entry.variants:
                why = entry.refused.get(variant, "not listed for this entry")
                skipped.append({"name": name, "variant": variant, "reason": why})
                continue
            try:
                data = build(name, variant, seed)
            except Exception as exc:  # the converter refusing is a fact to record
                msg = " ".join(str(exc).split())
                skipped.append(
                    {
                        "name": name,
                        "variant": variant,
                        "reason": f"converter: {type(exc).__name__}: {msg[:400]}",
                    }
                )
                continue
            codes = opcodes(data)
            missing = [c for c in codes if c not in TFLM_BUILTIN_OPS]
            if missing:
                skipped.append(
                    {"name": name, "variant": variant, "reason": f"opcodes TFLM lacks: {missing}"}
                )
                continue
            path = out / f"{name}.{variant}.tflite"
            path.write_bytes(data)
            if harness_path is not None:
                ok, why = run_harness(path, harness_path)
                if not ok:
                    path.unlink()
                    skipped.append(
                        {
                            "name": name,
                            "variant": variant,
                            "reason": f"TFLM: {why}",
                            "opcodes": codes,
                        }
                    )
                    continue
            kept.append((path, codes))
            record = {
                "file": path.name,
                "name": name,
                "variant": variant,
                "opcodes": codes,
                "bytes": len(data),
            }
            if variant != "float32":
                record["float_ops"] = float_ops(data)
            if missed := sorted(set(entry.expect) - set(codes)):
                record["missing_expected"] = missed
            models.append(record)
    covered = sorted({c for _, codes in kept for c in codes})
    per_variant = {
        v: sorted({c for m in models if m["variant"] == v for c in m["opcodes"]}) for v in variants
    }
    integer = {
        v: sorted(
            {
                c
                for m in models
                if m["variant"] == v
                for c in m["opcodes"]
                if c not in m["float_ops"]
            }
        )
        for v in variants
        if v != "float32"
    }
    listing = {
        "seed": seed,
        "harness": str(harness_path) if harness_path else None,
        "seconds": round(time.monotonic() - start, 1),
        "covered": covered,
        "covered_per_variant": per_variant,
        "integer_covered_per_variant": integer,
        "uncovered": sorted(TFLM_BUILTIN_OPS - set(covered)),
        "models": models,
        "skipped": skipped,
    }
    (out / "zoo.json").write_text(json.dumps(listing, indent=1) + "\n")
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.op_zoo OUT_DIR [VARIANT...]``: write the zoo and zoo.json."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__)
        return 2
    out_dir, variants = args[0], tuple(args[1:]) or VARIANTS
    start = time.monotonic()
    kept = generate_all(out_dir, variants)
    listing = json.loads((Path(out_dir) / "zoo.json").read_text())
    print(
        f"{len(kept)} models, {len(listing['covered'])} builtins covered "
        f"in {time.monotonic() - start:.0f} s"
    )
    for v, codes in listing["covered_per_variant"].items():
        integer = listing["integer_covered_per_variant"].get(v)
        print(f"  {v}: {len(codes)}" + (f" ({len(integer)} run in integer)" if integer else ""))
    for s in listing["skipped"]:
        print(f"  skipped {s['name']}.{s['variant']}: {s['reason'][:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
