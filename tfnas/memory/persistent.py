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
    planner arena is claimed (prepare and allocation-info phases).
    """

    allocations: tuple[PersistentAllocation, ...]
    persistent_bytes: int
    min_arena_bytes: int
    peak_prepare_bytes: int


class _Arena:
    def __init__(self, target: Target) -> None:
        self.t = target
        self.tail = 0
        self.allocs: list[PersistentAllocation] = []
        self.need = 0  # smallest arena seen so far

    def persistent(self, label: str, size: int, align: int, op: int = -1) -> None:
        self.tail = align_up(self.tail + size, align)
        self.allocs.append(PersistentAllocation(label, op, size, align, self.tail))

    def struct(self, label: str, name: str, count: int = 1, op: int = -1) -> None:
        size, align = self.t.sizes[name]
        self.persistent(label, size * count, align, op)

    def temp_tensor(self, temp: int, model_tensor) -> int:
        """Allocate a temporary TfLiteTensor (and its quantisation) above ``temp``."""
        size, align = self.t.sizes["TfLiteTensor"]
        temp = align_up(temp, align) + size
        channels = model_tensor.quant_channels
        if channels:
            qsize, qalign = self.t.sizes["TfLiteAffineQuantization"]
            temp = align_up(temp, qalign) + qsize
            temp = align_up(temp, 4) + 4 + 4 * channels
        return temp


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
            params = target.params_struct(op.opcode)
            if params is not None:
                a.persistent("builtin_op_params(parse)", params[0], params[1], op.index)
    for sg in model.subgraphs:
        for op in sg.operators:
            size = target.op_data_bytes(op.opcode)
            if size:
                a.persistent("kernel_persistent", size, 16, op.index)
    requests = 0
    peak = 0
    for si, sg in enumerate(model.subgraphs):
        for op in sg.operators:
            req = kernels[si][op.index]
            temp = resizable
            for t in req.temp_tensors:
                temp = a.temp_tensor(temp, sg.tensors[t])
            a.need = max(a.need, a.tail + temp)
            for size in req.persistent:
                a.persistent("kernel_persistent", size, 16, op.index)
            for t in req.temp_after:
                temp = a.temp_tensor(temp, sg.tensors[t])
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
    )
