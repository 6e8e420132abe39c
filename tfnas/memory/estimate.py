"""Planned arena bytes straight from a genome, before training or conversion.

The estimate mirrors what the TFLite converter emits for a model built by
:func:`tfnas.model.build_model`:

- BatchNorm and ReLU fused into the convolution; a separable conv split into a
  depthwise and a 1x1 conv; a RESHAPE for a 1-D input and for a flatten head;
  an int8 MEAN (with its scratch buffers) for global average pooling; the
  classifier as FULLY_CONNECTED then SOFTMAX;
- ops in the builder's order, except that a concatenation or add comes right
  after its last input is produced;
- one op for repeated weightless ops (the converter eliminates common
  subexpressions): two concatenations or adds of the same inputs, or two pools
  of the same input with the same window, are one tensor;
- requantize (QUANTIZE) ops on concatenation inputs whose scale is already
  tied to another concatenation; after quantization-aware training, where each
  tensor keeps its learned range, on every input whose requantize the converter
  cannot fold into the producing op. One QUANTIZE serves every concatenation
  that needs the same tensor at the same scale.

The requantize rule is a heuristic. In the converted models we inspected,
a concatenation kept the calibrated range of its own output (the widest of its
inputs' ranges), so which inputs need requantizing depends on which branch has
the widest activations, and the genome does not say that. ``docs/benchmarks.md`` states how
often the estimate is exact and its margins.

The activation tensors then go through the same lifetime rules and greedy
planner as a real flatbuffer. Nothing here imports TensorFlow; an estimate
takes a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tfnas.genome import OUT, Genome
from tfnas.memory.lifetimes import align_up
from tfnas.memory.planner import BufferSpec, greedy_plan

__all__ = ["EstimatedOp", "GenomeEstimate", "estimate_memory", "match_order"]


@dataclass(frozen=True)
class EstimatedOp:
    """One operator the converter is expected to emit."""

    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    scratch: tuple[int, ...] = ()


@dataclass(frozen=True)
class GenomeEstimate:
    """Predicted flatbuffer graph and its planned bytes.

    Attributes
    ----------
    planned_bytes:
        Predicted TFLM head (reference kernels).
    tensor_bytes:
        Bytes of each activation tensor (index = tensor id; 0 is the input).
    ops:
        The predicted operators in execution order.
    peak_op:
        Operator at which the live bytes peak.
    """

    planned_bytes: int
    tensor_bytes: tuple[int, ...]
    ops: tuple[EstimatedOp, ...]
    peak_op: int


class _Graph:
    def __init__(self, element_bytes: int) -> None:
        self.sizes: list[int] = []
        self.ops: list[EstimatedOp] = []
        self.element_bytes = element_bytes
        self.common: dict[tuple, int] = {}

    def tensor(self, shape: Sequence[int]) -> int:
        self.sizes.append(math.prod(shape) * self.element_bytes)
        return len(self.sizes) - 1

    def op(
        self, opcode: str, inputs: Sequence[int], shape: Sequence[int], scratch=(), *, same=None
    ) -> int:
        """Append an operator; return its output tensor.

        ``same`` marks an operator without weights (a merge or a pool) by its
        parameters: the converter eliminates common subexpressions, so a second
        one with the same opcode, inputs and parameters is the first one.
        """
        key = (opcode, tuple(inputs), tuple(shape), same)
        if same is not None and key in self.common:
            return self.common[key]
        out = self.tensor(shape)
        self.ops.append(EstimatedOp(opcode, tuple(inputs), (out,), tuple(scratch)))
        if same is not None:
            self.common[key] = out
        return out


def estimate_memory(
    genome: Genome,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    quantization: str = "ptq",
    element_bytes: int = 1,
) -> GenomeEstimate:
    """Predict the converted model's operators and TFLM planned bytes.

    Parameters
    ----------
    genome:
        The architecture.
    input_shape, num_classes:
        The task (defaults: the genome's own).
    quantization:
        ``"ptq"`` (post-training) or ``"qat"`` (quantization-aware training,
        which adds requantize ops before concatenations).
    element_bytes:
        1 for int8 activations, 2 for int16x8, 4 for float32.

    Returns
    -------
    GenomeEstimate

    Raises
    ------
    ValueError
        If ``quantization`` is not ``"ptq"`` or ``"qat"``.
    SearchSpaceError
        If the genome is not valid for ``input_shape``.
    """
    if quantization not in ("ptq", "qat"):
        raise ValueError(
            f"quantization must be 'ptq' or 'qat'. Received: quantization={quantization!r}"
        )
    shape_in = tuple(genome.input_shape if input_shape is None else input_shape)
    classes = genome.num_classes if num_classes is None else num_classes
    genome.validate(shape_in)
    g = _Graph(element_bytes)
    shape = genome.spatial_input_shape(shape_in)
    x = g.tensor(shape_in)
    if len(shape_in) == 2:
        x = g.op("RESHAPE", [x], shape)
    for s, graph in enumerate(genome.stages):
        merged_shapes, out_shapes = genome.stage_shapes(s, shape)
        tensors = {"in": x}
        for node, sources, merge in genome.stage_steps(s):
            preds = [tensors[p] for p in sources]
            if len(preds) == 1:
                merged = preds[0]
            elif merge == "add":
                # The converter lowers an n-input Add to a chain of binary ADDs, in input order.
                merged = g.op("ADD", preds[:2], merged_shapes[node], same="add")
                for extra in preds[2:]:
                    merged = g.op("ADD", [merged, extra], merged_shapes[node], same="add")
            else:
                merged = g.op("CONCATENATION", preds, merged_shapes[node], same="concat")
            if node == OUT:
                tensors[OUT] = merged
                continue
            attrs, out = graph.nodes[node], out_shapes[node]
            op = attrs["op"]
            if op == "conv":
                merged = g.op("CONV_2D", [merged], out)
            elif op == "sepconv":
                dw_shape = (*out[:2], merged_shapes[node][2])
                dw = g.op("DEPTHWISE_CONV_2D", [merged], dw_shape)
                merged = g.op("CONV_2D", [dw], out)
            elif op == "dwconv":
                merged = g.op("DEPTHWISE_CONV_2D", [merged], out)
            elif op in ("maxpool", "avgpool"):
                opcode = "MAX_POOL_2D" if op == "maxpool" else "AVERAGE_POOL_2D"
                merged = g.op(opcode, [merged], out, same=(attrs["kernel"], attrs["stride"]))
            tensors[node] = merged
        x, shape = tensors[OUT], out_shapes[OUT]
        if s < len(genome.downsamples):
            d = genome.downsamples[s]
            new = genome.downsample_shape(s, shape)
            opcode = {"maxpool": "MAX_POOL_2D", "avgpool": "AVERAGE_POOL_2D", "conv": "CONV_2D"}
            if d.op in opcode:
                x = g.op(opcode[d.op], [x], new)
            shape = new
    if genome.head.pool == "gap":
        # int8 MEAN (reference kernels): temp sums per output element, plus index arrays.
        scratch = (4 * shape[2], 4 * 4, 4 * 2) if element_bytes in (1, 2) else (4 * 4, 4 * 2)
        x = g.op("MEAN", [x], (shape[2],), scratch)
        features = shape[2]
    else:
        features = math.prod(shape)
        x = g.op("RESHAPE", [x], (features,))
    for units in (*genome.head.hidden, classes):
        x = g.op("FULLY_CONNECTED", [x], (units,))
    g.op("SOFTMAX", [x], (classes,))
    _hoist_concatenations(g)
    if element_bytes < 4:
        _insert_requantize(g, every_input=quantization == "qat")
    return _plan(g)


def _hoist_concatenations(g: _Graph) -> None:
    """Move each merge op to right after the op producing its last input.

    The converter emits a model's ops in the order the builder created them,
    except that a CONCATENATION or ADD comes as soon as all its inputs exist
    (before independent sibling branches created earlier in the builder).
    """
    producer = {t: i for i, op in enumerate(g.ops) for t in op.outputs}
    order: list[int] = []
    for i, op in enumerate(g.ops):
        if op.opcode not in ("CONCATENATION", "ADD"):
            order.append(i)
            continue
        # After the producer of its input that runs last *now*: an input made by a merge
        # hoisted earlier sits before ops created before that merge.
        at = max((order.index(producer[t]) + 1 for t in op.inputs if t in producer), default=0)
        while at < len(order) and g.ops[order[at]].opcode in ("CONCATENATION", "ADD"):
            at += 1  # merges hoisted to the same place keep their creation order
        order.insert(at, i)
    g.ops = [g.ops[i] for i in order]


_SAME_SCALE = ("CONCATENATION", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE")


def _is_pooled(g: _Graph, producer: dict[int, int], t: int) -> bool:
    return t in producer and g.ops[producer[t]].opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D")


def _insert_requantize(g: _Graph, every_input: bool) -> None:
    """Add the QUANTIZE ops the converter puts on concatenation inputs.

    int8 CONCATENATION needs one scale for all its inputs and its output, and
    int8 pooling keeps its input's scale. Walking the concatenations from the
    last one back, each claims the scale of its output and of every input not
    yet claimed (through pooling, the pooled tensor too); an input already
    claimed by another concatenation is requantized by a QUANTIZE placed right
    after the op that produced it. The model input and pooled tensors anchor
    scales (the input's is fixed by calibration, a pool keeps its input's):
    they are never requantized, and a concatenation that takes one shares its
    scale. After quantization-aware training see :func:`_qat_requantize`.
    """
    producer = {t: i for i, op in enumerate(g.ops) for t in op.outputs}
    if every_input:
        _place_requantize(g, producer, _qat_requantize(g, producer))
        return
    claimed: dict[int, int] = {}

    def claim(t: int, group: int) -> None:
        while t not in claimed:
            claimed[t] = group
            op = g.ops[producer[t]] if t in producer else None
            if op is None or op.opcode not in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
                return
            t = op.inputs[0]

    requantize: list[tuple[int, int, int]] = []  # (concat op, input position, scale group)
    model_input = 0  # its scale is fixed by calibration: it anchors every group it joins
    for i in reversed(range(len(g.ops))):
        op = g.ops[i]
        if op.opcode != "CONCATENATION":
            continue
        out = op.outputs[0]
        anchors = [t for t in op.inputs if t == model_input or _is_pooled(g, producer, t)]
        group = claimed.get(out, claimed.get(anchors[0], anchors[0]) if anchors else i)
        claim(out, group)
        for pos, t in enumerate(op.inputs):
            if t in anchors:
                continue
            if claimed.get(t, group) != group:
                requantize.append((i, pos, group))
            else:
                claim(t, group)
    _place_requantize(g, producer, requantize)


def _qat_requantize(g: _Graph, producer: dict[int, int]) -> list[tuple[int, int, int]]:
    """Concatenation inputs requantized after quantization-aware training.

    Every tensor has its own learned range, so every input of a concatenation
    needs its scale changed. The converter then folds a requantize into the
    op producing the tensor when that op has weights (not a pool, reshape or
    concatenation) and the concatenation is its only consumer: that op simply
    writes the concatenation's scale.
    """
    uses: dict[int, int] = {}
    for op in g.ops:
        for t in op.inputs:
            uses[t] = uses.get(t, 0) + 1
    sites = []
    for i, op in enumerate(g.ops):
        if op.opcode != "CONCATENATION":
            continue
        for pos, t in enumerate(op.inputs):
            source = g.ops[producer[t]].opcode if t in producer else None
            folded = source not in (None, *_SAME_SCALE) and uses[t] == 1
            if not folded:
                sites.append((i, pos, i))
    return sites


def _place_requantize(
    g: _Graph, producer: dict[int, int], requantize: list[tuple[int, int, int]]
) -> None:
    """Insert a QUANTIZE after the producer of each (concat op, input position, scale group)."""
    if not requantize:
        return
    after: dict[int, list[EstimatedOp]] = {}
    inputs = {i: list(op.inputs) for i, op in enumerate(g.ops)}
    done: dict[tuple[int, int], int] = {}  # one QUANTIZE per tensor and target scale
    for i, pos, group in sorted(requantize):
        t = g.ops[i].inputs[pos]
        if (t, group) not in done:
            done[t, group] = q = g.tensor((g.sizes[t] // g.element_bytes,))
            after.setdefault(producer.get(t, -1), []).append(EstimatedOp("QUANTIZE", (t,), (q,)))
        inputs[i][pos] = done[t, group]
    ops = list(after.get(-1, []))
    for i, op in enumerate(g.ops):
        ops.append(EstimatedOp(op.opcode, tuple(inputs[i]), op.outputs, op.scratch))
        ops += after.get(i, [])
    g.ops = ops


def _plan(g: _Graph) -> GenomeEstimate:
    steps = len(g.ops)
    first = {0: 0}
    last = {0: 0}
    for i, op in enumerate(g.ops):
        for t in op.inputs:
            last[t] = i
        for t in op.outputs:
            first.setdefault(t, i)
            last.setdefault(t, i)
    output = g.ops[-1].outputs[0]
    last[output] = steps - 1
    # Tensors are numbered as the converter numbers them: the input, then each op's outputs in
    # execution order (TFLM's planner breaks ties between equal sizes by that number).
    numbered = list(dict.fromkeys([0, *(t for op in g.ops for t in op.outputs)]))
    buffers = [BufferSpec(align_up(g.sizes[t], 16), first[t], last[t]) for t in numbered]
    for i, op in enumerate(g.ops):
        buffers += [BufferSpec(align_up(size, 16), i, i) for size in op.scratch]
    plan = greedy_plan(buffers)
    live = [0] * steps
    for b in buffers:
        for step in range(b.first, b.last + 1):
            live[step] += b.size
    return GenomeEstimate(
        planned_bytes=plan.arena_bytes,
        tensor_bytes=tuple(g.sizes),
        ops=tuple(g.ops),
        peak_op=max(range(steps), key=live.__getitem__),
    )


def match_order(model, estimate: GenomeEstimate) -> list[int] | None:
    """The flatbuffer's operators in the estimate's order, or None if the graphs differ.

    The converter does not always emit a model's operators in the order the
    estimate predicts (on NAS-Bench-201 cells it interleaves parallel edges
    differently). Running the converted model's operators in the estimate's
    order makes the deployed arena equal the estimate, whatever order the
    converter chose. This finds that order: it walks the estimate's operators
    and maps each to the unused flatbuffer operator with the same opcode,
    output size and (mapped) inputs, backtracking when twins (say two 1x1
    convolutions of one tensor) were mapped the wrong way round. A complete
    mapping is an isomorphism of the two graphs, so the order it gives is
    topological and plans exactly as the estimate does.

    Parameters
    ----------
    model : Model, bytes or path-like
        The converted flatbuffer.
    estimate : GenomeEstimate
        :func:`estimate_memory` of the genome it was built from.

    Returns
    -------
    list of int or None
        ``order[k]`` is the flatbuffer operator to run at step ``k``
        (see :func:`tfnas.tflite.writer.reorder_operators`); ``None`` when the
        flatbuffer holds other operators than predicted.
    """
    from tfnas.tflite.model import read_model

    sg = read_model(model).main
    if len(sg.operators) != len(estimate.ops) or len(sg.inputs) != 1:
        return None
    planned = {t.index for t in sg.tensors if not t.is_constant and not t.is_variable}
    ops = [
        (op.opcode, tuple(sorted(t for t in op.inputs if t in planned)), tuple(op.outputs))
        for op in sg.operators
    ]
    nbytes = {t.index: t.nbytes for t in sg.tensors}
    by_kind: dict[tuple[str, int], list[int]] = {}
    for i, (opcode, _, outs) in enumerate(ops):
        by_kind.setdefault((opcode, sum(nbytes[t] for t in outs)), []).append(i)
    mapped: dict[int, int] = {0: sg.inputs[0]}  # estimate tensor -> flatbuffer tensor
    used: set[int] = set()
    order: list[int] = []
    budget = [10_000]  # backtracking steps; cells need a handful

    def place(k: int) -> bool:
        if k == len(estimate.ops):
            return True
        budget[0] -= 1
        if budget[0] < 0:
            return False
        e = estimate.ops[k]
        want = tuple(sorted(mapped[t] for t in e.inputs if t in mapped))
        size = sum(estimate.tensor_bytes[t] for t in e.outputs)
        for i in by_kind.get((e.opcode, size), []):
            if i in used or ops[i][1] != want or len(ops[i][2]) != len(e.outputs):
                continue
            used.add(i)
            order.append(i)
            mapped.update(zip(e.outputs, ops[i][2], strict=True))
            if place(k + 1):
                return True
            used.discard(i)
            order.pop()
            for t in e.outputs:
                mapped.pop(t, None)
        return False

    if (
        len(estimate.ops) > 900
    ):  # deeper than the recursion limit allows; keep the converter's order
        return None
    return order if place(0) else None
