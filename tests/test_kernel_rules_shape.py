"""Golden cases for the pooling, reduction, shape and control-flow kernel rules.

Each expected value is read off TFLM's source at commit 90b983c2; the comments
give the file:line (under tensorflow/lite/micro/kernels/ unless stated).
"""

from __future__ import annotations

import math
import types

import pytest

from tfnas.errors import UnsupportedModelError
from tfnas.memory.kernels import RULES, KernelRequests, kernel_requests
from tfnas.memory.targets import get_target
from tfnas.tflite.model import DTYPE_SIZES, Operator, Quantization, Subgraph, Tensor

HOST, CM, CMSIS = "host", "cortex-m", "cortex-m-cmsis"
ALL = (HOST, CM, CMSIS)


def tensor(
    index: int,
    shape: tuple[int, ...],
    dtype: str = "INT8",
    scale: float | None = None,
    zero_point: int = 0,
    const: bool = False,
) -> Tensor:
    """A tensor; int8/int16 get scale 0.5 unless told otherwise."""
    if scale is None and dtype in ("INT8", "INT16"):
        scale = 0.5
    quant = None if scale is None else Quantization((scale,), (zero_point,))
    return Tensor(
        index=index,
        name=f"t{index}",
        shape=tuple(shape),
        dtype=dtype,
        buffer=index + 1 if const else 0,
        nbytes=math.prod(shape) * DTYPE_SIZES.get(dtype, 0),
        is_constant=const,
        quantization=quant,
    )


def run(
    opcode: str,
    tensors: list[Tensor],
    inputs: tuple[int, ...],
    outputs: tuple[int, ...],
    target: str = HOST,
    **options,
) -> KernelRequests:
    op = Operator(
        index=0,
        opcode=opcode,
        builtin_code=0,
        inputs=inputs,
        outputs=outputs,
        options=types.MappingProxyType(options),
    )
    sg = Subgraph(0, "main", tuple(tensors), (op,), (), ())
    return kernel_requests(sg, op, get_target(target))


MINE = """AVERAGE_POOL_2D MAX_POOL_2D L2_POOL_2D MEAN SUM REDUCE_MAX REDUCE_MIN REDUCE_ALL
ARG_MAX ARG_MIN CUMSUM BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND DEPTH_TO_SPACE SPACE_TO_DEPTH
BROADCAST_ARGS BROADCAST_TO CONCATENATION EMBEDDING_LOOKUP EXPAND_DIMS FILL GATHER GATHER_ND
MIRROR_PAD PAD PADV2 PACK UNPACK RESHAPE SQUEEZE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR
REVERSE_V2 SHAPE SLICE STRIDED_SLICE SPLIT SPLIT_V TRANSPOSE DYNAMIC_UPDATE_SLICE IF WHILE
CALL_ONCE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE""".split()


def test_every_opcode_has_a_rule() -> None:
    assert [m for m in MINE if m not in RULES] == []


# --------------------------------------------------------------------------- pooling


def _pool(dtype: str = "INT8", c: int = 8, out_scale: float | None = None) -> list[Tensor]:
    return [tensor(0, (1, 8, 8, c), dtype), tensor(1, (1, 4, 4, c), dtype, scale=out_scale)]


@pytest.mark.parametrize("target", (HOST, CM))
@pytest.mark.parametrize("opcode", ("AVERAGE_POOL_2D", "MAX_POOL_2D"))
def test_reference_pooling(opcode: str, target: str) -> None:
    # pooling_common.cc:59-64: input then output; no scratch, no persistent.
    r = run(opcode, _pool(), (0,), (1,), target)
    assert (r.scratch, r.persistent, r.temp_tensors, r.init) == ((), (), (0, 1), None)


@pytest.mark.parametrize("dtype", ("INT8", "INT16"))
def test_cmsis_average_pool_quantized(dtype: str) -> None:
    # cmsis_nn/pooling.cc:161 PoolingPrepare (in, out), :165-168 in, out again;
    # :180-188 arm_avgpool_s{8,16}_get_buffer_size = 4 * ch (DSP, *_get_buffer_sizes_*.c:55-59).
    r = run("AVERAGE_POOL_2D", _pool(dtype, c=24), (0,), (1,), CMSIS)
    assert r.temp_tensors == (0, 1, 0, 1)
    assert r.scratch == (96,)


def test_cmsis_average_pool_float_and_max_pool() -> None:
    # cmsis_nn/pooling.cc:170: no scratch for float32, temps still taken twice.
    r = run("AVERAGE_POOL_2D", _pool("FLOAT32"), (0,), (1,), CMSIS)
    assert (r.temp_tensors, r.scratch) == ((0, 1, 0, 1), ())
    # cmsis_nn/pooling.cc:153-158: MaxPrepare is PoolingPrepare only.
    r = run("MAX_POOL_2D", _pool("INT8"), (0,), (1,), CMSIS)
    assert (r.temp_tensors, r.scratch) == ((0, 1), ())


def test_pooling_refusals() -> None:
    # pooling_common.cc:70-76: int8 pooling keeps its scale.
    with pytest.raises(UnsupportedModelError, match="scale"):
        run("AVERAGE_POOL_2D", _pool(out_scale=0.25), (0,), (1,))
    # pooling_common.cc:85-88.
    with pytest.raises(UnsupportedModelError, match="INT32"):
        run("MAX_POOL_2D", _pool("INT32"), (0,), (1,))
    # lite/kernels/internal/reference/integer_ops/pooling.h:32-33: 4-D only (DCHECK aborts).
    ts = [tensor(0, (1, 8, 8)), tensor(1, (1, 4, 8))]
    with pytest.raises(UnsupportedModelError, match="4-D"):
        run("AVERAGE_POOL_2D", ts, (0,), (1,), CMSIS)


def test_l2_pool() -> None:
    # l2_pool_2d.cc:46-51 output then input; :82-83 dims copy = 4 + 4 * 4.
    r = run("L2_POOL_2D", _pool("FLOAT32"), (0,), (1,))
    assert (r.temp_tensors, r.persistent) == ((1, 0), (20,))
    with pytest.raises(UnsupportedModelError, match="float32 only"):  # l2_pool_2d.cc:71
        run("L2_POOL_2D", _pool("INT8"), (0,), (1,))


# --------------------------------------------------------------------------- reductions


def _reduce(dtype: str, out_scale: float | None = None) -> list[Tensor]:
    return [
        tensor(0, (1, 4, 4, 8), dtype),
        tensor(1, (2,), "INT32", const=True),
        tensor(2, (1, 8), dtype, scale=out_scale),
    ]


@pytest.mark.parametrize("target", ALL)
def test_mean_int8(target: str) -> None:
    # reduce_common.cc:226-228 in/out/axis; :239-250 scratch 4*out, 4*rank, 4*num_axis;
    # :252-254 PrepareSimple: :40 in, :50 axis, :55 out (int8 only).
    r = run("MEAN", _reduce("INT8"), (0, 1), (2,), target)
    assert r.scratch == (32, 16, 8)
    assert r.temp_tensors == (0, 2, 1, 0, 1, 2)


def test_sum_int16_and_mean_float() -> None:
    # int16: accumulator scratch, but PrepareSimple takes no output (reduce_common.cc:54).
    r = run("SUM", _reduce("INT16"), (0, 1), (2,))
    assert (r.scratch, r.temp_tensors) == ((32, 16, 8), (0, 2, 1, 0, 1))
    # float32: no accumulator (reduce_common.cc:238).
    r = run("MEAN", _reduce("FLOAT32"), (0, 1), (2,))
    assert (r.scratch, r.temp_tensors) == ((16, 8), (0, 2, 1, 0, 1))


def test_reduce_max() -> None:
    # reduce_common.cc:198 PrepareSimple (in, axis, out for int8), :202-204 in, out, axis;
    # :211-215 scratch 4*rank, 4*num_axis.
    r = run("REDUCE_MAX", _reduce("INT8"), (0, 1), (2,))
    assert (r.scratch, r.temp_tensors) == ((16, 8), (0, 1, 2, 0, 2, 1))
    r = run("REDUCE_MIN", _reduce("FLOAT32"), (0, 1), (2,))
    assert (r.scratch, r.temp_tensors) == ((16, 8), (0, 1, 0, 2, 1))


def test_reduce_refusals() -> None:
    # reduce_common.cc:187-189: min/max Eval has no int16 case (fails at Invoke).
    with pytest.raises(UnsupportedModelError, match="int8 only"):
        run("REDUCE_MAX", _reduce("INT16"), (0, 1), (2,))
    # reduce_common.cc:174-176: int8 min/max needs equal scales.
    with pytest.raises(UnsupportedModelError, match="scale"):
        run("REDUCE_MIN", _reduce("INT8", out_scale=0.25), (0, 1), (2,))
    # reduce_common.cc:52: axis must be int32.
    bad = _reduce("INT8")
    bad[1] = tensor(1, (2,), "INT64", const=True)
    with pytest.raises(UnsupportedModelError, match="int32"):
        run("MEAN", bad, (0, 1), (2,))
    # reduce_common.cc:345-348: MEAN has no int32 Eval.
    with pytest.raises(UnsupportedModelError, match="INT32"):
        run("MEAN", _reduce("INT32"), (0, 1), (2,))


def test_reduce_all() -> None:
    # reduce_common.cc:265-267 in/out/axis, :270 PrepareSimple (in, axis), :278-282 scratch.
    r = run("REDUCE_ALL", _reduce("BOOL"), (0, 1), (2,))
    assert (r.scratch, r.temp_tensors) == ((16, 8), (0, 2, 1, 0, 1))


def test_arg_max() -> None:
    ts = [tensor(0, (1, 10), "FLOAT32"), tensor(1, (1,), "INT32", const=True)]
    # arg_min_max.cc:110-116: no Init, no Prepare.
    r = run("ARG_MAX", [*ts, tensor(2, (1,), "INT32")], (0, 1), (2,))
    assert r == KernelRequests()
    # arg_min_max.cc:83-87: int64 output fails in Eval.
    with pytest.raises(UnsupportedModelError, match="int32"):
        run("ARG_MIN", [*ts, tensor(2, (1,), "INT64")], (0, 1), (2,))


def test_cumsum() -> None:
    ts = [tensor(0, (2, 5)), tensor(1, (), "INT32", const=True), tensor(2, (2, 5))]
    # cumsum.cc:54, :56, :67 temps; :72-74 OpData (9 x 4 bytes) for int8 only.
    r = run("CUMSUM", ts, (0, 1), (2,))
    assert (r.temp_tensors, r.persistent) == ((0, 1, 2), (36,))
    ts = [tensor(0, (2, 5), "FLOAT32"), ts[1], tensor(2, (2, 5), "FLOAT32")]
    assert run("CUMSUM", ts, (0, 1), (2,), CM).persistent == ()


# --------------------------------------------------------------------------- shape ops


def test_concatenation() -> None:
    ts = [tensor(i, (1, 4, 4, 2)) for i in range(3)] + [tensor(3, (1, 4, 4, 6))]
    # concatenation.cc:136-140 input 0 and output, :166-167 every input again.
    r = run("CONCATENATION", ts, (0, 1, 2), (3,), axis=3)
    assert (r.temp_tensors, r.scratch, r.persistent) == ((0, 3, 0, 1, 2), (), ())
    # concatenation.cc:180-186: int8 inputs must share the output scale.
    ts[1] = tensor(1, (1, 4, 4, 2), scale=0.25)
    with pytest.raises(UnsupportedModelError, match="rescale"):
        run("CONCATENATION", ts, (0, 1, 2), (3,), axis=3)


def test_concatenation_limits() -> None:
    ts = [tensor(i, (1, 2)) for i in range(11)] + [tensor(11, (1, 22))]
    with pytest.raises(UnsupportedModelError, match="at most 10"):  # concatenation.cc:157-158
        run("CONCATENATION", ts, tuple(range(11)), (11,), axis=1)
    ts = [tensor(0, (1, 2)), tensor(1, (1, 2)), tensor(2, (1, 4))]
    with pytest.raises(UnsupportedModelError, match="activation"):  # concatenation.cc:147
        run("CONCATENATION", ts, (0, 1), (2,), axis=1, fused_activation_function=1)


@pytest.mark.parametrize("target", ALL)
def test_reshape_takes_no_shape_temp(target: str) -> None:
    ts = [tensor(0, (1, 4, 4, 2)), tensor(1, (2,), "INT32", const=True), tensor(2, (1, 32))]
    # reshape_common.cc:35-40: input 0 and output 0 only.
    r = run("RESHAPE", ts, (0, 1), (2,), target)
    assert (r.temp_tensors, r.persistent) == ((0, 2), ())
    with pytest.raises(UnsupportedModelError, match="element counts"):  # :78
        run("RESHAPE", [ts[0], ts[1], tensor(2, (1, 31))], (0, 1), (2,), target)


def test_squeeze_expand_dims() -> None:
    # squeeze.cc:34-35.
    r = run("SQUEEZE", [tensor(0, (1, 1, 8)), tensor(1, (8,))], (0,), (1,))
    assert r.temp_tensors == (0, 1)
    # expand_dims.cc:92-99 input, axis, output.
    ts = [tensor(0, (4, 8)), tensor(1, (), "INT32", const=True), tensor(2, (4, 1, 8))]
    assert run("EXPAND_DIMS", ts, (0, 1), (2,)).temp_tensors == (0, 1, 2)
    # expand_dims.cc:102-103: the axis must be constant.
    ts[1] = tensor(1, (), "INT32")
    with pytest.raises(UnsupportedModelError, match="constant"):
        run("EXPAND_DIMS", ts, (0, 1), (2,))


@pytest.mark.parametrize("target", ALL)
def test_mirror_pad(target: str) -> None:
    ts = [
        tensor(0, (1, 8, 8, 3)),
        tensor(1, (4, 2), "INT32", const=True),
        tensor(2, (1, 10, 10, 3)),
    ]
    # mirror_pad.cc:175-179 temps; :196-201 two scratch buffers of 4 * rank(input).
    r = run("MIRROR_PAD", ts, (0, 1), (2,), target)
    assert (r.temp_tensors, r.scratch) == ((0, 1, 2), (16, 16))
    # mirror_pad.cc:137-157: no int16 case in Eval (fails at Invoke).
    ts16 = [tensor(0, (1, 8, 8, 3), "INT16"), ts[1], tensor(2, (1, 10, 10, 3), "INT16")]
    with pytest.raises(UnsupportedModelError, match="Eval fails"):
        run("MIRROR_PAD", ts16, (0, 1), (2,), target)


@pytest.mark.parametrize("target", ALL)
def test_pad(target: str) -> None:
    ts = [
        tensor(0, (1, 8, 8, 3)),
        tensor(1, (4, 2), "INT32", const=True),
        tensor(2, (1, 10, 10, 3)),
        tensor(3, (), "INT8", const=True),
    ]
    # pad_common.cc:39-50: input, paddings, [constant value], output.
    r = run("PAD", ts[:3], (0, 1), (2,), target)
    assert (r.temp_tensors, r.scratch, r.persistent) == ((0, 1, 2), (), ())
    r = run("PADV2", ts, (0, 1, 3), (2,), target)
    assert r.temp_tensors == (0, 1, 3, 2)
    # An absent (-1) third input allocates nothing (micro_context.cc:32-40).
    assert run("PADV2", ts, (0, 1, -1), (2,), target).temp_tensors == (0, 1, 2)
    # pad_common.cc:74: paddings are read as int32.
    bad = [ts[0], tensor(1, (4, 2), "INT64", const=True), ts[2]]
    with pytest.raises(UnsupportedModelError, match="int32"):
        run("PAD", bad, (0, 1), (2,), target)


def test_strided_slice_slice_split() -> None:
    ts = [tensor(0, (1, 8, 8))] + [tensor(i, (3,), "INT32", const=True) for i in (1, 2, 3)]
    ts.append(tensor(4, (1, 4, 8)))
    # strided_slice_common.cc:36-44: input, begin, end, strides, output.
    assert run("STRIDED_SLICE", ts, (0, 1, 2, 3), (4,)).temp_tensors == (0, 1, 2, 3, 4)
    # slice.cc:53-63: input, begin, size, output.
    assert run("SLICE", ts[:3] + [ts[4]], (0, 1, 2), (3,)).temp_tensors == (0, 1, 2, 3)
    # split.cc:72: the axis (input 0) only.
    ts = [
        tensor(0, (), "INT32", const=True),
        tensor(1, (1, 8)),
        tensor(2, (1, 4)),
        tensor(3, (1, 4)),
    ]
    assert run("SPLIT", ts, (0, 1), (2, 3)).temp_tensors == (0,)
    # split_v.cc:81: the axis (input 2) only.
    ts = [tensor(0, (1, 8)), tensor(1, (2,), "INT32", const=True)]
    ts += [tensor(2, (), "INT32", const=True), tensor(3, (1, 4)), tensor(4, (1, 4))]
    assert run("SPLIT_V", ts, (0, 1, 2), (3, 4)).temp_tensors == (2,)


def test_embedding_lookup_prepare_allocations() -> None:
    ts = [tensor(0, (3,), "INT32"), tensor(1, (10, 4), "FLOAT32", const=True)]
    ts.append(tensor(2, (3, 4), "FLOAT32"))
    # embedding_lookup.cc:102-103 dims copy (4 + 4 * 2), then :54 OpData {float; size_t}.
    assert run("EMBEDDING_LOOKUP", ts, (0, 1), (2,), HOST).persistent == (12, 16)
    r = run("EMBEDDING_LOOKUP", ts, (0, 1), (2,), CM)
    assert (r.persistent, r.temp_tensors) == ((12, 8), (0, 1, 2))


def test_gather_dims_copy() -> None:
    ts = [tensor(0, (10, 4), "FLOAT32"), tensor(1, (3,), "INT32"), tensor(2, (3, 4), "FLOAT32")]
    # gather.cc:108-115 temps; :167-168 dims copy of the output (4 + 4 * 2).
    r = run("GATHER", ts, (0, 1), (2,))
    assert (r.temp_tensors, r.persistent) == ((0, 1, 2), (12,))
    # gather_nd.cc:93-94 likewise.
    ts[1] = tensor(1, (3, 1), "INT32")
    assert run("GATHER_ND", ts, (0, 1), (2,)).persistent == (12,)


def test_depth_to_space_and_transpose() -> None:
    ts = [tensor(0, (1, 4, 4, 8)), tensor(1, (1, 8, 8, 2))]
    # depth_to_space.cc:47-50 temps, :83-84 dims copy (4 + 4 * 4).
    r = run("DEPTH_TO_SPACE", ts, (0,), (1,))
    assert (r.temp_tensors, r.persistent) == ((0, 1), (20,))
    # transpose.h:30-33 input, perm, output; cmsis_nn/transpose.cc reuses TransposePrepare.
    ts = [tensor(0, (1, 4, 8)), tensor(1, (3,), "INT32", const=True), tensor(2, (1, 8, 4))]
    for target in ALL:
        r = run("TRANSPOSE", ts, (0, 1), (2,), target)
        assert (r.temp_tensors, r.scratch, r.persistent) == ((0, 1, 2), (), ())


def test_no_prepare_kernels() -> None:
    # pack.cc:113 / unpack.cc:108: no Prepare; shape.cc:38-43 allocates nothing.
    ts = [tensor(0, (4,)), tensor(1, (4,)), tensor(2, (2, 4))]
    assert run("PACK", ts, (0, 1), (2,)) == KernelRequests()
    ts = [tensor(0, (1, 4, 4)), tensor(1, (3,), "INT32")]
    assert run("SHAPE", ts, (0,), (1,)) == KernelRequests()
    # shape.cc:50-53: int64 output fails in Eval.
    with pytest.raises(UnsupportedModelError, match="int32"):
        run("SHAPE", [ts[0], tensor(1, (3,), "INT64")], (0,), (1,))


# --------------------------------------------------------------------------- control flow


def test_control_flow() -> None:
    ts = [tensor(0, (), "BOOL"), tensor(1, (4,), "FLOAT32"), tensor(2, (4,), "FLOAT32")]
    # if.cc:57-58: the condition is the only temporary.
    r = run("IF", ts, (0, 1), (2,), then_subgraph_index=1, else_subgraph_index=2)
    assert r == KernelRequests(temp_tensors=(0,))
    # while.cc:44-75, call_once.cc:44-61: nothing allocated in Prepare.
    assert run("WHILE", ts[1:], (1,), (2,)) == KernelRequests()
    assert run("CALL_ONCE", [], (), (), init_subgraph_index=1) == KernelRequests()
    # if.cc:61: the condition must be bool.
    with pytest.raises(UnsupportedModelError, match="bool"):
        run("IF", [tensor(0, (), "INT32"), *ts[1:]], (0, 1), (2,))


@pytest.mark.parametrize("opcode", ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"))
def test_resource_variables_are_refused(opcode: str) -> None:
    # micro_interpreter.h:56-59: resource_variables defaults to nullptr;
    # var_handle.cc:52-58 (Prepare), read_variable.cc:68-74, assign_variable.cc:115-121 (Eval).
    ts = [tensor(0, (), "RESOURCE"), tensor(1, (4,), "FLOAT32")]
    ins, outs = {"VAR_HANDLE": ((), (0,)), "READ_VARIABLE": ((0,), (1,))}.get(opcode, ((0, 1), ()))
    with pytest.raises(UnsupportedModelError, match="MicroResourceVariables"):
        run(opcode, ts, ins, outs)
