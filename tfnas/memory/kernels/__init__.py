"""Per-kernel memory rules: what each TFLM kernel allocates while preparing.

For one operator on one target, :func:`kernel_requests` returns a
:class:`KernelRequests`: the persistent buffers its Init allocates (OpData),
the scratch buffers, persistent buffers and temporary tensors its Prepare asks
for, and whether all of that is modelled exactly. Each kernel family has a
short module here (``conv``, ``elementwise``, ``shape``, ``pool_reduce``,
``control``, ``recurrent``) whose rule functions are registered with
:func:`rule`; the rules were derived by reading the kernels of TFLM at commit
90b983c2 (reference and CMSIS-NN), not fitted to measurements.

OpData and builtin-params sizes come from ``tflm_sizes.json``, produced by
``tools/tflm_kernel_sizes.py``, which compiles each kernel's own struct for each
ABI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tfnas.errors import UnsupportedModelError
from tfnas.memory.targets import Target
from tfnas.tflite.model import Operator, Subgraph, Tensor

__all__ = [
    "KernelContext",
    "KernelRequests",
    "kernel_requests",
    "check_supported",
    "rule",
    "temp_indices",
    "RULES",
    "default_requests",
    "TFLM_BUILTIN_OPS",
    "TFLM_CUSTOM_OPS",
]

#: Builtin operators with a TFLM kernel at commit 90b983c2 (every builtin
#: ``MicroMutableOpResolver::Add*``).
TFLM_BUILTIN_OPS = frozenset(
    """ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL
    BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION
    CONV_2D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE
    ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD
    FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF
    L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOG_SOFTMAX
    LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC MAX_POOL_2D MAXIMUM MEAN MINIMUM
    MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE
    REDUCE_ALL REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX
    SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE
    SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
    UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE""".split()
)
#: Custom operators TFLM's resolver registers at that commit (``AddCustom`` in
#: ``micro_mutable_op_resolver.h``). They run, but tfnas has no rules for them:
#: their numbers are bounded, never exact.
TFLM_CUSTOM_OPS = frozenset(
    """CIRCULAR_BUFFER TFLM_DECODE TFLite_Detection_PostProcess SignalDelay SignalEnergy
    SignalFftAutoScale SignalFilterBank SignalFilterBankLog SignalFilterBankSquareRoot
    SignalFilterBankSpectralSubtraction SignalFramer SignalIrfft SignalOverlapAdd SignalPCAN
    SignalRfft SignalStacker SignalWindow""".split()
)
_RUNNABLE_TYPES = frozenset(
    {"FLOAT32", "INT8", "INT16", "INT32", "INT64", "UINT8", "BOOL", "RESOURCE"}
)


@dataclass(frozen=True)
class KernelContext:
    """One operator of one subgraph, seen from its kernel on one target."""

    sg: Subgraph
    op: Operator
    target: Target

    def tensor(self, index: int) -> Tensor | None:
        """The subgraph tensor ``index``, or None for an absent (-1) tensor."""
        return self.sg.tensors[index] if 0 <= index < len(self.sg.tensors) else None

    def input(self, i: int) -> Tensor | None:
        """The operator's ``i``-th input, or None when absent or optional (-1)."""
        return self.tensor(self.op.inputs[i]) if i < len(self.op.inputs) else None

    def output(self, i: int) -> Tensor | None:
        """The operator's ``i``-th output, or None when absent."""
        return self.tensor(self.op.outputs[i]) if i < len(self.op.outputs) else None

    def input_index(self, i: int) -> int:
        """Subgraph index of input ``i`` (-1 when absent)."""
        return self.op.inputs[i] if i < len(self.op.inputs) else -1

    def output_index(self, i: int) -> int:
        """Subgraph index of output ``i`` (-1 when absent)."""
        return self.op.outputs[i] if i < len(self.op.outputs) else -1

    @property
    def dtype(self) -> str | None:
        """Type of input 0 (the type most kernels dispatch on)."""
        t = self.input(0)
        return t.dtype if t is not None else None

    @property
    def cmsis(self) -> bool:
        """Whether the target's kernels are CMSIS-NN (for ops that have one)."""
        return self.target.cmsis_nn

    def option(self, name: str, default=0):
        """A builtin option of the operator (as read from the flatbuffer)."""
        return self.op.options.get(name, default)

    def refuse(self, why: str) -> UnsupportedModelError:
        """An error saying that TFLM refuses this operator on this target."""
        return UnsupportedModelError(
            f"operator {self.op.index} ({self.op.name}) of subgraph {self.sg.index} on "
            f"{self.target.name}: {why}"
        )


@dataclass(frozen=True)
class KernelRequests:
    """Memory one kernel asks for while initialising and preparing one operator.

    Attributes
    ----------
    init : tuple of int or None
        Bytes of each persistent buffer Init allocates (its OpData), in order.
        None means "the OpData of this opcode on this target", looked up in the
        compiled size table.
    scratch : tuple of int
        Bytes of each ``RequestScratchBufferInArena`` call in Prepare, in order.
    persistent : tuple of int
        Bytes of each ``AllocatePersistentBuffer`` call in Prepare, in order.
    temp_tensors : tuple of int
        Subgraph tensor indices Prepare allocates as temporary ``TfLiteTensor``
        structs (``AllocateTempInputTensor`` and friends), in order; an index
        may repeat when Prepare allocates the same tensor twice.
    temp_bytes : tuple of int
        Raw ``AllocateTemp`` sizes in Prepare, taken after ``temp_tensors`` (rare).
    temp_after : tuple of int
        Temporary tensors Prepare allocates *after* its persistent buffers
        (order matters for the smallest arena: a temporary must fit below the
        tail as it is when it is taken; a persistent buffer is only checked
        against the head).
    unmodelled : tuple of str
        Why this operator's numbers are not exact (empty when they are). When
        non-empty, ``bound_bytes`` is added to the smallest-arena bound.
    bound_bytes : int
        A safe extra allowance for what is not modelled.
    """

    init: tuple[int, ...] | None = None
    scratch: tuple[int, ...] = ()
    persistent: tuple[int, ...] = ()
    temp_tensors: tuple[int, ...] = ()
    temp_bytes: tuple[int, ...] = ()
    temp_after: tuple[int, ...] = ()
    unmodelled: tuple[str, ...] = field(default=())
    bound_bytes: int = 0


Rule = Callable[[KernelContext], KernelRequests]
#: opcode -> rule function; filled by the family modules.
RULES: dict[str, Rule] = {}


def rule(*opcodes: str) -> Callable[[Rule], Rule]:
    """Register a rule function for one or more opcodes."""

    def register(fn: Rule) -> Rule:
        for code in opcodes:
            if code in RULES:
                raise ValueError(f"Two kernel rules for {code}.")
            RULES[code] = fn
        return fn

    return register


def temp_indices(k: KernelContext, *spec: tuple[str, int]) -> tuple[int, ...]:
    """Temp-tensor indices for ``("in" | "out", position)`` calls, in allocation order.

    Absent (-1) tensors are skipped: ``AllocateTempInputTensor`` returns null for
    them without allocating.
    """
    found = (k.input_index(i) if kind == "in" else k.output_index(i) for kind, i in spec)
    return tuple(i for i in found if k.tensor(i) is not None)


def check_supported(sg: Subgraph, op: Operator, target: Target) -> None:
    """Raise UnsupportedModelError for what no TFLM kernel runs (opcode, type, shape)."""
    where = f"operator {op.index} ({op.name}) of subgraph {sg.index}"
    if op.opcode == "CUSTOM" and op.custom_code not in TFLM_CUSTOM_OPS:
        raise UnsupportedModelError(
            f"{where} is a custom operator that TFLM does not ship; the firmware needs a "
            f"kernel registered for {op.custom_code!r}, which tfnas cannot size."
        )
    if op.opcode not in TFLM_BUILTIN_OPS and op.opcode != "CUSTOM":
        raise UnsupportedModelError(f"{where}: TFLM has no kernel for {op.opcode}.")
    for i in (*op.inputs, *op.outputs):
        t = sg.tensors[i] if 0 <= i < len(sg.tensors) else None
        if t is None:
            continue
        if t.dtype not in _RUNNABLE_TYPES:
            raise UnsupportedModelError(
                f"{where}: tensor {t.index} has type {t.dtype}, which TFLM kernels do not run "
                "(float16 or other weights must be converted to int8 or float32)."
            )
        if any(d < 0 for d in t.shape):
            raise UnsupportedModelError(
                f"{where}: tensor {t.index} has a dynamic shape {t.shape}; TFLM needs static shapes."
            )


def default_requests(k: KernelContext) -> KernelRequests:
    """What tfnas assumes for a kernel it has no rule for: not exact, bounded.

    The allowance is 4 KB plus four bytes per byte of the operator's tensors
    (constants included). Every kernel of TFLM at our commit stays below it:
    the largest Prepare allocations are int32 copies of a tensor (scratch of
    reductions, per-channel arrays, CMSIS-NN im2col buffers) and the largest
    Init struct (the CMSIS-NN LSTM's OpData) is under 1 KB.
    """
    tensors = [t for i in (*k.op.inputs, *k.op.outputs) if (t := k.tensor(i)) is not None]
    return KernelRequests(
        temp_tensors=temp_indices(
            k,
            *(("in", i) for i in range(len(k.op.inputs))),
            *(("out", i) for i in range(len(k.op.outputs))),
        ),
        unmodelled=(f"{k.op.name}: no rule for what its kernel allocates",),
        bound_bytes=4096 + 4 * sum(t.nbytes for t in tensors),
    )


def kernel_requests(sg: Subgraph, op: Operator, target: Target) -> KernelRequests:
    """Return what ``op``'s kernel asks for while initialising and preparing on ``target``.

    Raises
    ------
    UnsupportedModelError
        If TFLM would refuse the operator on this target.
    """
    check_supported(sg, op, target)
    k = KernelContext(sg, op, target)
    return RULES.get(op.opcode, default_requests)(k)


# Register the family rules (imported for their side effect).
from tfnas.memory.kernels import (  # noqa: E402, F401
    control,
    conv,
    elementwise,
    pool_reduce,
    recurrent,
    shape,
)
