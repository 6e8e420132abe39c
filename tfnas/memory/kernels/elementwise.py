"""Kernel rules: elementwise, activation, arithmetic, comparison, logical, quantization.

Each rule says what one kernel's Prepare asks for (see :mod:`tfnas.memory.kernels`):
the temporary ``TfLiteTensor`` structs it allocates, in call order, its scratch
requests and its persistent buffers, and it refuses the type combinations that the
kernel rejects. Line references are to TFLM at commit 90b983c2, relative to
``tensorflow/lite/micro/kernels/``. The CMSIS-NN build uses ``cmsis_nn/add.cc``,
``cmsis_nn/mul.cc``, ``cmsis_nn/softmax.cc`` and ``cmsis_nn/maximum_minimum.cc``;
every other kernel here is the reference one on all targets.

A refusal names where TFLM fails: "Prepare" (``AllocateTensors`` fails) or
"Eval" (the model allocates but every ``Invoke`` fails with that error).

Init allocates one ``sizeof(OpData)`` (or nothing) for every kernel here, so
``init`` stays None (looked up in the compiled size table).
"""

from __future__ import annotations

import math
import struct

from tfnas.memory.kernels import KernelContext, KernelRequests, rule, temp_indices
from tfnas.tflite.model import Tensor

F32, I8, I16, I32, I64, U8, U32, BOOL = (
    "FLOAT32",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT32",
    "BOOL",
)


# --------------------------------------------------------------------------- helpers


def _f32(x: float) -> float:
    """``x`` rounded to a C ``float``."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _scale(t: Tensor) -> float:
    """``TfLiteTensor::params.scale`` (the first scale; 0 when not quantised)."""
    q = t.quantization
    return q.scale[0] if q is not None and q.is_quantized else 0.0


def _zp(t: Tensor) -> int:
    """``TfLiteTensor::params.zero_point`` (the first one; 0 when not quantised)."""
    q = t.quantization
    return int(q.zero_point[0]) if q is not None and q.is_quantized else 0


def _quantized(t: Tensor) -> bool:
    """Whether TFLM gives the tensor ``kTfLiteAffineQuantization``."""
    return t.quant_channels > 0


def _round_half_away(x: float) -> float:
    """``TfLiteRound``: round half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier_shift(m: float) -> int:
    """The shift ``QuantizeMultiplier`` returns for ``m`` (quantization_util.cc:53-93)."""
    if m == 0.0 or not math.isfinite(m):
        return 0
    q, shift = math.frexp(m)
    if _round_half_away(q * (1 << 31)) == (1 << 31):
        shift += 1
    return 0 if shift < -31 else shift


def _checked_log2(x: float) -> tuple[bool, int]:
    """``CheckedLog2`` (quantization_util.cc:395-404): (is a power of two, rounded log2)."""
    if x <= 0.0:
        return False, 0
    lg = _f32(_f32(math.log(x)) * _f32(1.0 / math.log(2.0)))
    rounded = _round_half_away(lg)
    return abs(lg - rounded) < 1e-3, int(rounded)


class _Op:
    """Tensors of one operator with checks that raise the kernel's refusals."""

    def __init__(self, k: KernelContext, kernel: str) -> None:
        self.k = k
        self.kernel = kernel

    def fail(self, stage: str, why: str) -> Exception:
        return self.k.refuse(f"{self.kernel} {stage}: {why}")

    def arity(self, n_in: int | None, n_out: int | None, where: str) -> None:
        """``TF_LITE_ENSURE_EQ(NumInputs/NumOutputs)`` (counts include absent -1 slots)."""
        if n_in is not None and len(self.k.op.inputs) != n_in:
            raise self.fail(
                "Prepare", f"needs {n_in} inputs, got {len(self.k.op.inputs)} ({where})"
            )
        if n_out is not None and len(self.k.op.outputs) != n_out:
            raise self.fail(
                "Prepare", f"needs {n_out} outputs, got {len(self.k.op.outputs)} ({where})"
            )

    def inp(self, i: int, where: str) -> Tensor:
        """Input ``i``; a missing one makes ``AllocateTempInputTensor`` return null."""
        t = self.k.input(i)
        if t is None:
            raise self.fail("Prepare", f"input {i} is missing ({where})")
        return t

    def out(self, i: int, where: str) -> Tensor:
        t = self.k.output(i)
        if t is None:
            raise self.fail("Prepare", f"output {i} is missing ({where})")
        return t

    def types(self, t: Tensor, allowed: tuple[str, ...], what: str, stage: str, where: str) -> None:
        if t.dtype not in allowed:
            raise self.fail(
                stage, f"{what} type {t.dtype} is not supported (only {'/'.join(allowed)}; {where})"
            )

    def same_type(self, a: Tensor, b: Tensor, what: str, stage: str, where: str) -> None:
        if a.dtype != b.dtype:
            raise self.fail(stage, f"{what} types differ: {a.dtype} vs {b.dtype} ({where})")

    def ensure(self, ok: bool, stage: str, why: str) -> None:
        if not ok:
            raise self.fail(stage, why)


def _unary(k: KernelContext, kernel: str, where: str) -> tuple[_Op, Tensor, Tensor]:
    """The common head of one-in/one-out Prepares: temps are (input 0, output 0)."""
    o = _Op(k, kernel)
    return o, o.inp(0, where), o.out(0, where)


def _binary(k: KernelContext, kernel: str, where: str) -> tuple[_Op, Tensor, Tensor, Tensor]:
    """Two-input/one-output Prepares: temps are (input 0, input 1, output 0)."""
    o = _Op(k, kernel)
    return o, o.inp(0, where), o.inp(1, where), o.out(0, where)


_IO = (("in", 0), ("out", 0))
_IIO = (("in", 0), ("in", 1), ("out", 0))


def _same_shape_and_float(o: _Op, inp: Tensor, out: Tensor, f: str) -> None:
    """The checks of CEIL/ROUND/EXP Prepare: float32, equal types, bytes and dims."""
    o.types(inp, (F32,), "input", "Prepare", f)
    o.same_type(out, inp, "output and input", "Prepare", f)
    o.ensure(
        out.nbytes == inp.nbytes and tuple(out.shape) == tuple(inp.shape),
        "Prepare",
        f"output shape {out.shape} differs from input shape {inp.shape} ({f})",
    )


# --------------------------------------------------------------------------- arithmetic


@rule("ADD")
def add(k: KernelContext) -> KernelRequests:
    """ADD: temps in1, in2, out; no buffers (add_common.cc:81-114, cmsis_nn/add.cc:288-338)."""
    if k.cmsis:
        f = "cmsis_nn/add.cc"
        o, a, b, out = _binary(k, "ADD", f + ":294-302")
        o.same_type(a, out, "input 1 and output", "Prepare", f + ":304")
        o.types(a, (F32, I32, I16, I8), "input", "Prepare", f + ":305-309")
        o.ensure(
            a.dtype == b.dtype,
            "Prepare",
            f"Hybrid models are not supported on TFLite Micro ({a.dtype} + {b.dtype}; {f}:310)",
        )
        if a.dtype == I16:
            o.ensure(
                _zp(a) == 0 and _zp(b) == 0 and _zp(out) == 0,
                "Prepare",
                f"int16 needs zero points 0 ({f}:313-317)",
            )
        int32_lines = f + ":325-330"
    else:
        f = "add_common.cc"
        o, a, b, out = _binary(k, "ADD", f + ":86-94")
        int32_lines = f + ":102-108"
    if out.dtype in (I8, I16):
        # TFLITE_CHECK_NE aborts (add_common.cc:42); the CMSIS copy does not check.
        o.ensure(_quantized(out), "Prepare", f"{out.dtype} output is not quantized")
    if out.dtype == I32:
        o.ensure(
            not _quantized(a) and not _quantized(b),
            "Prepare",
            f"int32 ADD needs unquantized inputs ({int32_lines})",
        )
    o.types(out, (F32, I32, I8, I16), "output", "Eval", "add.cc:83/155/188")
    return KernelRequests(temp_tensors=temp_indices(k, *_IIO))


@rule("SUB")
def sub(k: KernelContext) -> KernelRequests:
    """SUB: temps in1, in2, out (sub_common.cc:36-115)."""
    o, a, b, out = _binary(k, "SUB", "sub_common.cc:88-96")
    if out.dtype == I32:
        o.ensure(
            not (_quantized(a) or _quantized(b) or _quantized(out)),
            "Prepare",
            "int32 SUB needs unquantized tensors (sub_common.cc:101-108)",
        )
    o.types(out, (F32, I32, I8, I16), "output", "Eval", "sub.cc:97/169/196")
    return KernelRequests(temp_tensors=temp_indices(k, *_IIO))


@rule("MUL")
def mul(k: KernelContext) -> KernelRequests:
    """MUL: temps in1, in2, out (mul_common.cc:38-100; the CMSIS build uses the same Prepare)."""
    o, a, b, out = _binary(k, "MUL", "mul_common.cc:42-50")
    o.arity(2, 1, "mul_common.cc:52-53")
    o.same_type(a, b, "input", "Prepare", "mul_common.cc:55")
    if out.dtype in (I8, I16) and a.dtype == I16:
        o.ensure(
            _zp(a) == 0 and _zp(b) == 0 and _zp(out) == 0,
            "Prepare",
            "int16 needs zero points 0 (mul_common.cc:72-76)",
        )
    o.types(a, (I8, I16, I32, F32), "input", "Eval", "mul.cc:45-58, cmsis_nn/mul.cc:113-130")
    return KernelRequests(temp_tensors=temp_indices(k, *_IIO))


@rule("DIV")
def div(k: KernelContext) -> KernelRequests:
    """DIV: temps in1, in2, out (div.cc:73-106)."""
    o, a, b, out = _binary(k, "DIV", "div.cc:78-86")
    o.same_type(a, b, "input", "Prepare", "div.cc:49")
    o.same_type(a, out, "input and output", "Prepare", "div.cc:50")
    if out.dtype == I32:
        o.ensure(
            not (_quantized(a) or _quantized(b)),
            "Prepare",
            "int32 DIV needs unquantized inputs (div.cc:94-100)",
        )
    o.types(out, (F32, I32, I8), "output", "Eval", "div.cc:195-207")
    return KernelRequests(temp_tensors=temp_indices(k, *_IIO))


@rule("SQUARED_DIFFERENCE")
def squared_difference(k: KernelContext) -> KernelRequests:
    """SQUARED_DIFFERENCE: temps in1, in2, out (squared_difference.cc:85-154)."""
    f = "squared_difference.cc"
    o = _Op(k, "SQUARED_DIFFERENCE")
    o.arity(2, 1, f + ":91-92")
    a, b, out = o.inp(0, f + ":96-98"), o.inp(1, f + ":99-101"), o.out(0, f + ":102-104")
    o.same_type(a, b, "input", "Prepare", f + ":106")
    if a.dtype == I8:
        o.ensure(
            all(-128 <= _zp(t) <= 127 for t in (a, b, out)),
            "Prepare",
            f"int8 zero points must be in [-128, 127] ({f}:115-126)",
        )
    elif a.dtype == I16:
        o.ensure(
            _zp(a) == 0 and _zp(b) == 0 and _zp(out) == 0,
            "Prepare",
            f"int16 needs zero points 0 ({f}:136-138)",
        )
    # Prepare sets the type of the temporary output only (f:107); Eval dispatches on the
    # output's own type.
    o.types(out, (F32, I32, I8, I16), "output", "Eval", f + ":243-258")
    return KernelRequests(temp_tensors=temp_indices(k, *_IIO))


@rule("FLOOR_DIV", "FLOOR_MOD")
def floor_div_mod(k: KernelContext) -> KernelRequests:
    """FLOOR_DIV / FLOOR_MOD: temps in1, in2, out; float32 only (floor_div.cc:34-66, floor_mod.cc:39-71)."""
    f = "floor_div.cc" if k.op.opcode == "FLOOR_DIV" else "floor_mod.cc"
    o = _Op(k, k.op.opcode)
    o.arity(2, 1, f)
    a, b, out = o.inp(0, f), o.inp(1, f), o.out(0, f)
    o.same_type(a, b, "input", "Prepare", f)
    o.same_type(a, out, "input and output", "Prepare", f)
    o.types(a, (F32,), "input", "Eval", f + " Eval")
    return KernelRequests(temp_tensors=temp_indices(k, *_IIO))


@rule("ADD_N")
def add_n(k: KernelContext) -> KernelRequests:
    """ADD_N: temps in0, out, in1..; a pointer array scratch; int8 OpData in Prepare.

    add_n.cc:49-138. Float: one scratch of ``sizeof(float*) * n`` (:85-87). Int8:
    ``AllocatePersistentBuffer(sizeof(OpData))`` (10 int32 fields, 40 bytes on every ABI,
    :36-47, :91-92), then a scratch of ``sizeof(int8_t*) * n`` (:97-100).
    """
    o = _Op(k, "ADD_N")
    n = len(k.op.inputs)
    o.ensure(n >= 2, "Prepare", f"needs at least 2 inputs, got {n} (add_n.cc:51)")
    o.arity(None, 1, "add_n.cc:52")
    first, out = o.inp(0, "add_n.cc:55-57"), o.out(0, "add_n.cc:58-60")
    o.same_type(out, first, "output and input", "Prepare", "add_n.cc:63")
    for i in range(1, n):
        t = o.inp(i, "add_n.cc:65-66")
        o.ensure(
            tuple(t.shape) == tuple(first.shape),
            "Prepare",
            f"input {i} shape {t.shape} differs from {first.shape} (add_n.cc:67)",
        )
        o.same_type(first, t, "input", "Prepare", "add_n.cc:68")
        if first.dtype == I8:
            o.ensure(
                _zp(t) == _zp(first) and _scale(t) == _scale(first),
                "Prepare",
                "int8 inputs need one scale and zero point (add_n.cc:71-76)",
            )
    o.types(out, (F32, I8), "output", "Prepare", "add_n.cc:124-128")
    temps = (k.input_index(0), k.output_index(0), *k.op.inputs[1:])
    scratch = (k.target.pointer_bytes * n,)
    persistent = (k.target.struct_bytes("OpData@add_n.cc"),) if out.dtype == I8 else ()
    return KernelRequests(scratch=scratch, persistent=persistent, temp_tensors=temps)


# --------------------------------------------------------------------------- comparisons


_COMPARE_TYPES = {
    "EQUAL": (BOOL, F32, I32, I64, I8),
    "NOT_EQUAL": (BOOL, F32, I32, I64, I8),
    "GREATER": (F32, I32, I64, I8, I16),
    "GREATER_EQUAL": (F32, I32, I64, I8),
    "LESS": (F32, I32, I64, I8),
    "LESS_EQUAL": (F32, I32, I64, I8),
}


@rule(*_COMPARE_TYPES)
def comparison(k: KernelContext) -> KernelRequests:
    """Comparisons: temps in1, in2 only, no output (comparisons.cc:549-591)."""
    o = _Op(k, k.op.opcode)
    a = o.inp(0, "comparisons.cc:555-557")
    o.inp(1, "comparisons.cc:558-560")
    o.types(a, _COMPARE_TYPES[k.op.opcode], "input", "Eval", "comparisons.cc Eval switch")
    return KernelRequests(temp_tensors=(k.input_index(0), k.input_index(1)))


# --------------------------------------------------------------------------- logical


@rule("LOGICAL_AND", "LOGICAL_OR")
def logical_binary(k: KernelContext) -> KernelRequests:
    """LOGICAL_AND / LOGICAL_OR: no Init, no Prepare (logical.cc:30-36), no type check."""
    return KernelRequests()


# --------------------------------------------------------------------------- unary math


@rule("SIN", "COS", "LOG", "SQRT", "SQUARE", "LOGICAL_NOT")
def generic_unary(k: KernelContext) -> KernelRequests:
    """GenericPrepare: temps in, out; float32 (bool for LOGICAL_NOT) (elementwise.cc:79-99)."""
    o, inp, out = _unary(k, k.op.opcode, "elementwise.cc:83-88")
    o.arity(1, 1, "elementwise.cc:81-82")
    o.same_type(inp, out, "input and output", "Prepare", "elementwise.cc:89")
    allowed = (BOOL,) if k.op.opcode == "LOGICAL_NOT" else (F32,)
    o.types(inp, allowed, "input", "Prepare", "elementwise.cc:90-94")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("ABS", "RSQRT")
def abs_rsqrt(k: KernelContext) -> KernelRequests:
    """PrepareAbsRsqrt: temps in, out (elementwise.cc:103-166)."""
    f = "elementwise.cc"
    o, inp, out = _unary(k, k.op.opcode, f + ":107-110")
    o.arity(1, 1, f + ":105-106")
    o.same_type(inp, out, "input and output", "Prepare", f + ":111")
    # The supported-type check at :112-116 never fails: PrepareAbsRsqrt's first
    # template parameter is unnamed, so ``IsSupportedType(input->type)`` casts the
    # type to a function pointer (non-null) instead of calling the predicate; int16
    # RSQRT runs (measured). Eval takes float32, int8 and int16 for both ops.
    o.types(inp, (F32, I8, I16), "input", "Eval", f + ":235-255, RsqrtEval")
    if inp.dtype == I8 or (inp.dtype == I16 and _quantized(inp)):
        o.ensure(
            _quantized(inp) and _quantized(out),
            "Prepare",
            f"{inp.dtype} input and output must be quantized ({f}:130-145)",
        )
        if inp.dtype == I16:
            o.ensure(
                _zp(inp) == 0 and _zp(out) == 0,
                "Prepare",
                f"int16 needs zero points 0 ({f}:148-151)",
            )
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("CEIL", "ROUND", "EXP")
def ceil_round_exp(k: KernelContext) -> KernelRequests:
    """CEIL / ROUND / EXP: temps in, out; float32 and identical shapes.

    ceil.cc:30-51, round.cc:29-51, exp.cc:30-52.
    """
    f = {"CEIL": "ceil.cc:30-51", "ROUND": "round.cc:29-51", "EXP": "exp.cc:30-52"}[k.op.opcode]
    o, inp, out = _unary(k, k.op.opcode, f)
    o.arity(1, 1, f)
    _same_shape_and_float(o, inp, out, f)
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("FLOOR", "NEG")
def floor_neg(k: KernelContext) -> KernelRequests:
    """FLOOR / NEG: no Init, no Prepare; float32 only in Eval (floor.cc:29-46, neg.cc:30-55)."""
    o = _Op(k, k.op.opcode)
    inp = o.inp(0, "Eval")
    o.types(
        inp, (F32,), "input", "Eval", "floor.cc:32" if k.op.opcode == "FLOOR" else "neg.cc:35-47"
    )
    return KernelRequests()


@rule("CAST")
def cast(k: KernelContext) -> KernelRequests:
    """CAST: temps in, out (cast.cc:28-45); the type pairs come from Eval (cast.cc:53-115)."""
    o, inp, out = _unary(k, "CAST", "cast.cc:34-39")
    o.arity(1, 1, "cast.cc:29-30")
    o.types(inp, (I8, I16, I32, U32, F32, BOOL), "input", "Eval", "cast.cc:89-113")
    o.types(out, (I8, I16, I32, U32, F32), "output", "Eval", "cast.cc:56-77")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("ZEROS_LIKE")
def zeros_like(k: KernelContext) -> KernelRequests:
    """ZEROS_LIKE: temps in, out (zeros_like.cc:28-44); Eval types int64/int32/int8/float32."""
    o, inp, _out = _unary(k, "ZEROS_LIKE", "zeros_like.cc:33-38")
    o.arity(1, 1, "zeros_like.cc:31-32")
    o.types(inp, (I64, I32, I8, F32), "input", "Eval", "zeros_like.cc:60-78")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("SELECT_V2")
def select_v2(k: KernelContext) -> KernelRequests:
    """SELECT_V2: temps condition, x, y, out (select.cc:75-122)."""
    f = "select.cc"
    o = _Op(k, "SELECT_V2")
    o.arity(3, 1, f + ":78-79")
    # No null checks after AllocateTemp*: a missing tensor crashes Prepare.
    cond, x = o.inp(0, f + ":82-83"), o.inp(1, f + ":85-86")
    y, out = o.inp(2, f + ":88-89"), o.out(0, f + ":91-92")
    o.types(cond, (BOOL,), "condition", "Prepare", f + ":95")
    o.same_type(x, y, "x and y", "Prepare", f + ":96")
    scalars = all(math.prod(t.shape) == 1 for t in (cond, x, y, out))
    same = tuple(cond.shape) == tuple(x.shape) == tuple(y.shape)
    if not same and not scalars:
        o.ensure(
            _broadcastable(cond.shape, x.shape, y.shape, out.shape),
            "Prepare",
            f"shapes {cond.shape}, {x.shape}, {y.shape} -> {out.shape} do not broadcast "
            f"({f}:45-73)",
        )
    o.types(x, (F32, I8, I16), "x", "Eval", f + ":162-178")
    return KernelRequests(temp_tensors=temp_indices(k, ("in", 0), ("in", 1), ("in", 2), ("out", 0)))


def _broadcastable(*shapes: tuple[int, ...]) -> bool:
    """``CheckBroadcastShape`` (select.cc:45-73); the last shape is the output."""
    *ins, out = (tuple(s) for s in shapes)
    rank = max(len(s) for s in ins)
    if rank != len(out):
        return False
    for i in range(rank):
        dims = [s[len(s) - 1 - i] if i < len(s) else 1 for s in ins]
        top = 0 if min(dims) == 0 else max(dims)
        if any(d not in (1, top) for d in dims) or out[rank - 1 - i] != top:
            return False
    return True


# --------------------------------------------------------------------------- activations


@rule("RELU")
def relu(k: KernelContext) -> KernelRequests:
    """RELU: temps in, out (activations_common.cc:88-112)."""
    f = "activations_common.cc"
    o, inp, out = _unary(k, "RELU", f + ":93-98")
    if inp.dtype == I16:
        o.ensure(
            _zp(inp) == 0 and _zp(out) == 0,
            "Prepare",
            f"int16 needs zero points 0 ({f}:103-104)",
        )
    o.types(inp, (F32, I8, I16), "input", "Eval", "activations.cc:47-75")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("RELU6")
def relu6(k: KernelContext) -> KernelRequests:
    """RELU6: only the input is a temp (activations_common.cc:114-139)."""
    o = _Op(k, "RELU6")
    inp = o.inp(0, "activations_common.cc:120-122")
    # The six range checks (:128, :133) cannot fail: FloatToQuantizedType clamps.
    o.types(inp, (F32, I8, I16), "input", "Eval", "activations.cc:95-123")
    return KernelRequests(temp_tensors=(k.input_index(0),))


@rule("LEAKY_RELU")
def leaky_relu(k: KernelContext) -> KernelRequests:
    """LEAKY_RELU: temps in, out (leaky_relu_common.cc:31-76)."""
    f = "leaky_relu_common.cc"
    o, inp, out = _unary(k, "LEAKY_RELU", f + ":37-42")
    o.arity(1, 1, f + ":35-36")
    o.same_type(inp, out, "input and output", "Prepare", f + ":43")
    o.types(inp, (F32, I8, I16), "input", "Eval", "leaky_relu.cc:60-87")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("ELU")
def elu(k: KernelContext) -> KernelRequests:
    """ELU: temps in, out (elu.cc:82-118); the int8 LUT lives in Init's OpData."""
    o, inp, out = _unary(k, "ELU", "elu.cc:87-92")
    o.arity(1, 1, "elu.cc:85-86")
    o.same_type(inp, out, "input and output", "Prepare", "elu.cc:93")
    o.types(inp, (F32, I8), "input", "Eval", "elu.cc:125-141")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("PRELU")
def prelu(k: KernelContext) -> KernelRequests:
    """PRELU: temps input, alpha, out (prelu_common.cc:83-108)."""
    f = "prelu_common.cc"
    o, inp, alpha, out = _binary(k, "PRELU", f + ":89-94")
    if out.dtype == I16:
        o.ensure(
            alpha.dtype == I8,
            "Prepare",
            f"int16 PRELU needs int8 alpha, got {alpha.dtype} ({f}:99-102)",
        )
    o.types(inp, (F32, I8, I16), "input", "Eval", "prelu.cc:44-77")
    return KernelRequests(temp_tensors=temp_indices(k, *_IIO))


@rule("HARD_SWISH")
def hard_swish(k: KernelContext) -> KernelRequests:
    """HARD_SWISH: temps in, out (hard_swish_common.cc:32-84)."""
    f = "hard_swish_common.cc"
    o, inp, out = _unary(k, "HARD_SWISH", f + ":41-46")
    o.arity(1, 1, f + ":38-39")
    if inp.dtype == I8:
        hires = _f32(_f32(1.0 / 128.0) * _scale(inp))
        out_scale = _scale(out)
        mult = _f32(hires / out_scale) if out_scale != 0.0 else math.inf
        o.ensure(
            quantize_multiplier_shift(mult) <= 0,
            "Prepare",
            f"input_scale/128 / output_scale must be < 1 ({f}:53-68)",
        )
    o.types(inp, (F32, I8), "input", "Eval", "hard_swish.cc:45-62")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


def _pot_check(o: _Op, inp: Tensor, out: Tensor, f: str) -> None:
    """The int16 checks of LOGISTIC and TANH: zero points 0, output scale 2^-15."""
    o.ensure(_zp(inp) == 0 and _zp(out) == 0, "Prepare", f"int16 needs zero points 0 ({f})")
    pot, lg = _checked_log2(_scale(out))
    o.ensure(pot and lg == -15, "Prepare", f"int16 output scale must be 2^-15 ({f})")


@rule("LOGISTIC")
def logistic(k: KernelContext) -> KernelRequests:
    """LOGISTIC: temps in, out; no lookup table (logistic_common.cc:32-117)."""
    f = "logistic_common.cc"
    o, inp, out = _unary(k, "LOGISTIC", f + ":37-42")
    o.same_type(inp, out, "input and output", "Prepare", f + ":44")
    if inp.dtype == I8:
        o.ensure(_zp(out) == -128, "Prepare", f"int8 output zero point must be -128 ({f}:46-47)")
    elif inp.dtype == I16:
        _pot_check(o, inp, out, f + ":70-71, :101-104")
    o.types(inp, (F32, I16, I8), "input", "Eval", "logistic.cc:47-101")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("TANH")
def tanh(k: KernelContext) -> KernelRequests:
    """TANH: temps in (TanhPrepare), then in, out again (CalculateArithmeticOpData).

    tanh.cc:134-148 allocates input 0, then calls CalculateArithmeticOpData
    (tanh.cc:49-132), which allocates input 0 and output 0 once more.
    """
    f = "tanh.cc"
    o, inp, out = _unary(k, "TANH", f + ":140-142, :54-59")
    o.arity(1, 1, f + ":52-53")
    o.same_type(inp, out, "input and output", "Prepare", f + ":61")
    if inp.dtype == I16:
        _pot_check(o, inp, out, f + ":89-90, :123-126")
    o.types(inp, (F32, I16, I8), "input", "Eval", "tanh.cc:159-190")
    return KernelRequests(temp_tensors=temp_indices(k, ("in", 0), ("in", 0), ("out", 0)))


@rule("L2_NORMALIZATION")
def l2_normalization(k: KernelContext) -> KernelRequests:
    """L2_NORMALIZATION: temps in, out (l2norm.cc:36-73)."""
    f = "l2norm.cc"
    o, inp, out = _unary(k, "L2_NORMALIZATION", f + ":49-54")
    o.arity(1, 1, f + ":44-45")
    o.ensure(len(inp.shape) <= 4, "Prepare", f"input rank {len(inp.shape)} > 4 ({f}:55)")
    o.types(out, (F32, I8), "output", "Prepare", f + ":57-58")
    o.same_type(inp, out, "input and output", "Prepare", f + ":59")
    act = k.option("fused_activation_function", 0)
    o.ensure(act == 0, "Prepare", f"fused activations are not supported ({f}:68)")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


# --------------------------------------------------------------------------- softmax


@rule("SOFTMAX")
def softmax(k: KernelContext) -> KernelRequests:
    """SOFTMAX: temps in, out; two 513-entry int16 LUTs for int16 input.

    softmax_common.cc:145-166 (reference), cmsis_nn/softmax.cc:44-87 (CMSIS); both
    call CalculateSoftmaxParams, whose InitializeLutForInt16 allocates
    ``2 * LUTSize<int16_t>()`` = 1026 bytes twice for int16 input
    (softmax_common.cc:36-46; common.h:670-679).
    """
    f = "softmax_common.cc"
    o = _Op(k, "SOFTMAX")
    o.arity(1, 1, f + ":148-149")
    inp = o.inp(0, f + ":150-151")
    o.ensure(len(inp.shape) >= 1, "Prepare", f"input needs rank >= 1 ({f}:152)")
    out = o.out(0, f + ":153-154")
    if k.cmsis:
        c = "cmsis_nn/softmax.cc"
        o.ensure(
            inp.dtype == out.dtype or (inp.dtype == I8 and out.dtype == I16),
            "Prepare",
            f"input {inp.dtype} and output {out.dtype} are not supported together ({c}:55-59)",
        )
        o.types(inp, (F32, I16, I8), "input", "Prepare", c + ":60-64")
    if out.dtype == I16:
        o.ensure(
            inp.dtype in (I8, I16),
            "Prepare",
            f"int16 output needs int8/int16 input ({f}:48-50)",
        )
    else:
        o.same_type(inp, out, "input and output", "Prepare", f + ":52")
    if inp.dtype == I16:
        o.ensure(
            _zp(out) == 0 and _zp(inp) == 0,
            "Prepare",
            f"int16 needs zero points 0 ({f}:57, :91-92)",
        )
        o.ensure(
            abs(_scale(out) - _f32(1.0 / 32768)) <= _f32(0.001 / 32768),
            "Prepare",
            f"int16 output scale must be 1/32768 ({f}:93-94)",
        )
    elif inp.dtype == I8 and out.dtype == I16:
        o.ensure(
            _zp(out) == -32768 and abs(_scale(out) - 1.0 / 65536) <= _f32(0.001 / 65536),
            "Prepare",
            f"int8->int16 output needs zero point -32768 and scale 1/65536 ({f}:98-100)",
        )
    elif inp.dtype == I8:
        o.ensure(
            _zp(out) == -128 and _scale(out) == 1.0 / 256,
            "Prepare",
            f"int8 output needs zero point -128 and scale 1/256 ({f}:102-104)",
        )
    else:
        o.types(inp, (F32,), "input", "Prepare", f + ":133-134")
    if inp.dtype == I8:
        _check_softmax_scaling(o, inp, float(k.option("beta", 1.0)), f + ":122-125")
    persistent = (1026, 1026) if inp.dtype == I16 else ()
    return KernelRequests(persistent=persistent, temp_tensors=temp_indices(k, *_IO))


def _check_softmax_scaling(o: _Op, inp: Tensor, beta: float, where: str) -> None:
    """PreprocessSoftmaxScaling aborts unless beta * input scale * 2^26 > 1.

    quantization_util.cc:282-318: the multiplier min(beta * scale * 2^(31-5), 2^31-1)
    goes to QuantizeMultiplierGreaterThanOne, whose TFLITE_CHECK_GT(m, 1) aborts the
    program (a tiny input scale, as after calibrating near-constant logits).
    """
    multiplier = min(beta * _scale(inp) * float(1 << 26), float((1 << 31) - 1))
    o.ensure(
        multiplier > 1.0,
        "Prepare",
        f"int8 input scale {_scale(inp):.3g} times beta is at most 2^-26, and TFLM aborts "
        f"(QuantizeMultiplierGreaterThanOne, quantization_util.cc:109; {where})",
    )


@rule("LOG_SOFTMAX")
def log_softmax(k: KernelContext) -> KernelRequests:
    """LOG_SOFTMAX: temps in, out; int8 allocates its OpData in Prepare.

    log_softmax.cc:46-103. ``sizeof(LogSoftmaxOpData)`` (:29-37): five 4-byte fields
    then two ``size_t``: 40 bytes on a 64-bit host, 28 on 32-bit ARM.
    """
    f = "log_softmax.cc"
    o, inp, out = _unary(k, "LOG_SOFTMAX", f + ":51-56")
    o.arity(1, 1, f + ":49-50")
    o.same_type(inp, out, "input and output", "Prepare", f + ":57")
    o.ensure(
        tuple(inp.shape) == tuple(out.shape),
        "Prepare",
        f"input and output shapes differ ({f}:59)",
    )
    persistent: tuple[int, ...] = ()
    if inp.dtype == I8:
        persistent = (k.target.struct_bytes("LogSoftmaxOpData"),)
        _check_softmax_scaling(o, inp, 1.0, f + ":75-79")
        o.ensure(
            _scale(out) == 16.0 / 256 and _zp(out) == 127,
            "Prepare",
            f"int8 output needs scale 1/16 and zero point 127 ({f}:72-73)",
        )
    o.types(inp, (F32, I8), "input", "Eval", f + ":112-139")
    return KernelRequests(persistent=persistent, temp_tensors=temp_indices(k, *_IO))


# --------------------------------------------------------------------------- min / max


@rule("MAXIMUM", "MINIMUM")
def maximum_minimum(k: KernelContext) -> KernelRequests:
    """MAXIMUM / MINIMUM: no Init, no Prepare (maximum_minimum.cc, cmsis_nn/maximum_minimum.cc)."""
    o = _Op(k, k.op.opcode)
    out = o.out(0, "Eval")
    o.types(
        out,
        (F32, I8, I16, I32, I64),
        "output",
        "Eval",
        "maximum_minimum.cc Eval, cmsis_nn/maximum_minimum.cc:56-84",
    )
    return KernelRequests()


# --------------------------------------------------------------------------- quantization


_QUANTIZE_PAIRS = {
    F32: (I8, I16),
    I32: (I8, I16),
    I16: (I8, I16, I32),
    I8: (I8, U8, I16, I32),
    U8: (I8,),
}


@rule("QUANTIZE")
def quantize(k: KernelContext) -> KernelRequests:
    """QUANTIZE: temps in, out (quantize_common.cc:31-90)."""
    f = "quantize_common.cc"
    o, inp, out = _unary(k, "QUANTIZE", f + ":41-44")
    o.arity(1, 1, f + ":36-37")
    o.ensure(_quantized(out), "Prepare", f"output must be quantized ({f}:48-53)")
    o.ensure(
        out.quant_channels == 1,
        "Prepare",
        f"output must be per-tensor quantized, got {out.quant_channels} scales ({f}:54)",
    )
    o.types(inp, (F32, I32, I16, I8, U8), "input", "Prepare", f + ":56-59")
    o.types(out, (I8, I16, I32, U8), "output", "Prepare", f + ":60-63")
    o.ensure(
        out.dtype in _QUANTIZE_PAIRS[inp.dtype],
        "Eval",
        f"{inp.dtype} -> {out.dtype} is not supported ({f}:99-234)",
    )
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))


@rule("DEQUANTIZE")
def dequantize(k: KernelContext) -> KernelRequests:
    """DEQUANTIZE: temps in, out (dequantize_common.cc:28-56)."""
    f = "dequantize_common.cc"
    o, inp, out = _unary(k, "DEQUANTIZE", f + ":38-41")
    o.arity(1, 1, f + ":32-33")
    o.types(inp, (I8, I16, U8), "input", "Prepare", f + ":43-45")
    o.types(out, (F32,), "output", "Prepare", f + ":46")
    return KernelRequests(temp_tensors=temp_indices(k, *_IO))
