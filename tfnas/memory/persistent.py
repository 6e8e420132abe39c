"""The persistent tail of TFLM's arena, and the smallest arena that works.

TFLM's ``SingleArenaBufferAllocator`` grows persistent allocations down from the
end of the arena (the tail) and temporary ones up from the start (the head).
:func:`simulate_allocation` replays ``MicroInterpreter::AllocateTensors`` step
by step on a target: allocator objects, eval tensors, node structs, builtin
params (parse), kernel OpData (Init), kernel Prepare allocations with their
temporary tensors, scratch handles, variable buffers, the planner's temporary
arrays, and the input/output tensors. It returns every tail allocation in order
and the smallest 16-byte multiple arena with which every step fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tfnas.memory.kernels import KernelRequests
from tfnas.memory.lifetimes import align_up
from tfnas.memory.planner import PER_BUFFER_BYTES
from tfnas.memory.targets import Target
from tfnas.tflite.model import Model

__all__ = ["PersistentAllocation", "AllocationTrace", "simulate_allocation"]

_MAX_SCRATCH_PER_OP = 12
# Allowances for sizes the compiled tables lack: larger than any builtin-params
# struct (TfLiteUnidirectionalSequenceLSTMParams and TfLiteReshapeParams are
# under 48 bytes on every target) and than any kernel OpData in TFLM (the
# CMSIS-NN LSTM's is under 1 KB).
_PARAMS_BOUND = 128
_INIT_BOUND = 2048


@dataclass(frozen=True)
class PersistentAllocation:
    """One tail allocation: ``size`` bytes at ``align``; ``tail_after`` is the tail then."""

    label: str
    op: int
    size: int
    align: int
    tail_after: int


@dataclass(frozen=True)
class AllocationTrace:
    """Result of replaying ``AllocateTensors`` on one target.

    ``peak_prepare_bytes`` is the largest tail plus temporary head seen before the
    planner arena is claimed (prepare and allocation-info phases). ``unmodelled``
    says which sizes were unknown; ``bound_bytes`` is the allowance added for
    them, so that ``persistent_bytes + bound_bytes`` stays an upper bound.
    """

    allocations: tuple[PersistentAllocation, ...]
    persistent_bytes: int
    min_arena_bytes: int
    peak_prepare_bytes: int
    unmodelled: tuple[str, ...] = ()
    bound_bytes: int = 0


class _Arena:
    def __init__(self, target: Target) -> None:
        self.t = target
        self.tail = 0
        self.allocs: list[PersistentAllocation] = []
        self.need = 0  # smallest arena seen so far
        self.reasons: list[str] = []
        self.bound = 0  # extra bytes allowed for what is not modelled

    def unknown(self, reason: str, bound: int) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.bound += bound

    def persistent(self, label: str, size: int, align: int, op: int = -1) -> None:
        self.tail = align_up(self.tail + size, align)
        self.allocs.append(PersistentAllocation(label, op, size, align, self.tail))

    def struct(self, label: str, name: str, count: int = 1, op: int = -1) -> None:
        size, align = self.t.sizes[name]
        self.persistent(label, size * count, align, op)

    def temp_tensor(self, temp: int, model_tensor) -> tuple[int, int]:
        """Allocate a temporary TfLiteTensor (and its quantisation) above ``temp``.

        Returns the new temp end and the end of the bytes that must survive
        until the tensor is released: the whole struct, and the scale and
        zero-point pointers of its quantisation (``DeallocateTempTfLiteTensor``
        reads the latter; the zero-point array itself is not read again).
        """
        size, align = self.t.sizes["TfLiteTensor"]
        temp = align_up(temp, align) + size
        guard = temp
        channels = model_tensor.quant_channels
        if channels:
            qsize, qalign = self.t.sizes["TfLiteAffineQuantization"]
            start = align_up(temp, qalign)
            guard = start + 2 * self.t.pointer_bytes
            temp = align_up(start + qsize, 4) + 4 + 4 * channels
        return temp, guard


def simulate_allocation(
    model: Model,
    target: Target,
    kernels: Sequence[Sequence[KernelRequests]],
    head_bytes: int,
    planned_buffer_count: int,
) -> AllocationTrace:
    """Replay TFLM's allocation of ``model`` on ``target``.

    Parameters
    ----------
    model : Model
        The parsed model.
    target : Target
        Struct sizes and kernel tables of the build.
    kernels : sequence of sequence of KernelRequests
        ``kernels[s][i]`` is what operator ``i`` of subgraph ``s`` asks for.
    head_bytes : int
        The planned (head) size from the greedy planner.
    planned_buffer_count : int
        How many buffers the planner places (tensors plus scratch).

    Returns
    -------
    AllocationTrace
    """
    a = _Arena(target)
    sizes = target.sizes
    req_size, _ = sizes["ScratchBufferRequest"]
    a.struct("SingleArenaBufferAllocator_object", "SingleArenaBufferAllocator")
    a.struct("GreedyMemoryPlanner_object", "GreedyMemoryPlanner")
    a.struct("MicroAllocator_object", "MicroAllocator")
    a.struct("MicroBuiltinDataAllocator_object", "MicroBuiltinDataAllocator")
    resizable = req_size * _MAX_SCRATCH_PER_OP
    a.need = max(a.need, a.tail + resizable)
    a.struct("SubgraphAllocations_array", "SubgraphAllocations", len(model.subgraphs))
    for sg in model.subgraphs:
        a.struct("TfLiteEvalTensor_array", "TfLiteEvalTensor", len(sg.tensors))
    for sg in model.subgraphs:
        a.struct("NodeAndRegistration_array", "NodeAndRegistration", len(sg.operators))
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode == "CUSTOM":
                continue  # custom operators parse their own options in Init
            try:
                params = target.params_struct(op.opcode)
            except KeyError:
                a.unknown(
                    f"{op.opcode}: size of its builtin options on {target.name}", _PARAMS_BOUND
                )
                continue
            if params is not None:
                a.persistent("builtin_op_params(parse)", params[0], params[1], op.index)
    for si, sg in enumerate(model.subgraphs):
        for op in sg.operators:
            init = kernels[si][op.index].init
            if init is None:
                init = target.op_data(op.opcode)
            if init is None:
                a.unknown(f"{op.name}: size of its Init OpData on {target.name}", _INIT_BOUND)
                continue
            for size in init:
                a.persistent("kernel_persistent", size, 16, op.index)
    requests = 0
    peak = 0
    for si, sg in enumerate(model.subgraphs):
        for op in sg.operators:
            req = kernels[si][op.index]
            temp = guard = resizable
            for t in req.temp_tensors:
                temp, guard = a.temp_tensor(temp, sg.tensors[t])
            for size in req.temp_bytes:
                temp = guard = align_up(temp, 16) + size
            # A temporary must fit below the tail as it is when it is taken. A
            # persistent buffer is only checked against the head, so it may land
            # on live temporaries: the arena works as long as it spares the bytes
            # read again (``guard``), as measured on the real TFLM.
            a.need = max(a.need, a.tail + temp)
            for size in req.persistent:
                a.persistent("kernel_persistent", size, 16, op.index)
                if temp > resizable:
                    a.need = max(a.need, a.tail + guard)
            for t in req.temp_after:
                temp, guard = a.temp_tensor(temp, sg.tensors[t])
            if req.temp_after:
                a.need = max(a.need, a.tail + temp)
            peak = max(peak, a.tail + temp)
            requests += len(req.scratch)
            resizable = req_size * (requests + _MAX_SCRATCH_PER_OP)
    if requests:
        a.struct("ScratchBufferHandle_array", "ScratchBufferHandle", requests)
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.is_variable:
                a.persistent("variable_tensor_buffer", t.nbytes, 16)
    # CommitStaticMemoryPlan: allocation info and planner arrays in temp space.
    st_size, st_align = sizes["size_t"]
    ai_size, ai_align = sizes["AllocationInfo"]
    n_alloc = sum(len(sg.tensors) for sg in model.subgraphs) + requests
    temp = align_up(resizable, st_align) + st_size * len(model.subgraphs)
    temp = align_up(temp, ai_align) + ai_size * n_alloc
    peak = max(peak, a.tail + temp)
    planner = align_up(temp, 16) + PER_BUFFER_BYTES * planned_buffer_count
    a.need = max(a.need, align_up(a.tail, 16) + planner, align_up(head_bytes, 16) + a.tail)
    ptr_size, _ = sizes["pointer"]
    for group in (model.main.inputs, model.main.outputs):
        a.persistent("interpreter_io_tensor_ptr_array", ptr_size * len(group), 16)
        for ti in group:
            tensor = model.main.tensors[ti]
            a.struct("persistent_TfLiteTensor(io)", "TfLiteTensor")
            if tensor.quant_channels:
                a.struct("persistent_TfLiteTensor_quantization(io)", "TfLiteAffineQuantization")
                a.persistent(
                    "persistent_TfLiteTensor_quantization(io)", 4 + 4 * tensor.quant_channels, 4
                )
    a.need = max(a.need, align_up(head_bytes, 16) + a.tail)
    return AllocationTrace(
        allocations=tuple(a.allocs),
        persistent_bytes=a.tail,
        min_arena_bytes=align_up(a.need, 16),
        peak_prepare_bytes=peak,
        unmodelled=tuple(a.reasons),
        bound_bytes=a.bound,
    )
