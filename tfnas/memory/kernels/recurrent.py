"""Kernel rules: recurrent kernels (see tfnas.memory.kernels).

UNIDIRECTIONAL_SEQUENCE_LSTM on the reference kernel
(``unidirectional_sequence_lstm.cc``, ``lstm_eval.cc``, ``lstm_eval_common.cc``)
and on CMSIS-NN (``cmsis_nn/unidirectional_sequence_lstm.cc``), TFLM commit
90b983c2. Init allocates only its OpData (``init=None``).
"""

from __future__ import annotations

import math

from tfnas.memory.kernels import KernelContext, KernelRequests, rule
from tfnas.memory.kernels.conv import fc_per_channel_persistent

_F32, _I8, _I16 = "FLOAT32", "INT8", "INT16"
_CELL_BYTES = {_F32: 4, _I16: 2}  # TfLiteTypeGetSize of the cell state type

# lstm_shared.h:24-67
_INPUT = 0
_WEIGHTS = range(1, 9)  # input-to-{input,forget,cell,output}, recurrent-to-{...}
_BIASES = range(12, 16)
_ABSENT = (*range(9, 12), 16, 17, *range(20, 24))  # peephole, projection, layer norm
_HIDDEN, _CELL = 18, 19
# PrepareGateParametersInteger (lstm_eval_common.cc:247-290): gates in the order
# forget, input, cell, output; each gate's input and recurrent weights.
_GATES = ((2, 6), (1, 5), (3, 7), (4, 8))


@rule("UNIDIRECTIONAL_SEQUENCE_LSTM")
def unidirectional_sequence_lstm(k: KernelContext) -> KernelRequests:
    """unidirectional_sequence_lstm.cc:43-96; cmsis_nn/unidirectional_sequence_lstm.cc:335-422."""
    if len(k.op.outputs) != 1 or len(k.op.inputs) != 24:
        raise k.refuse(
            "UNIDIRECTIONAL_SEQUENCE_LSTM takes 24 inputs and 1 output "
            "(unidirectional_sequence_lstm.cc:45-46)."
        )
    # LstmTensors (lstm_eval.cc:31-39): the 24 inputs in order (absent ones
    # allocate nothing), then the output.
    temps = tuple(i for i in k.op.inputs if i >= 0 and k.tensor(i) is not None)
    if k.output_index(0) >= 0 and k.output(0) is not None:
        temps += (k.output_index(0),)

    # ValidateTensorStatus (lstm_eval.cc:55-103).
    t = [k.input(i) for i in range(24)]
    inp, hidden, cell, out = t[_INPUT], t[_HIDDEN], t[_CELL], k.output(0)
    if inp is None or hidden is None or cell is None or out is None:
        raise k.refuse(
            "LSTM input, hidden state, cell state and output are required (lstm_eval.cc:58-70)."
        )
    if not hidden.is_variable or not cell.is_variable:
        raise k.refuse("LSTM hidden and cell states must be variable tensors (lstm_eval.cc:61-68).")
    if hidden.dtype != inp.dtype or out.dtype != inp.dtype:
        raise k.refuse(
            "LSTM hidden state and output must have the input's type (lstm_eval.cc:64-73)."
        )
    if any(t[i] is None for i in (*_WEIGHTS, *_BIASES)):
        raise k.refuse(
            "TFLM's LSTM needs all eight weights and four biases (no CIFG; lstm_eval.cc:76-88)."
        )
    if len({t[i].dtype for i in _WEIGHTS}) != 1 or len({t[i].dtype for i in _BIASES}) != 1:
        raise k.refuse("LSTM weights (or biases) have mixed types (lstm_eval.cc:76-88).")
    if any(t[i] is not None for i in _ABSENT):
        raise k.refuse(
            "TFLM's LSTM has no peephole, projection or layer-norm variant (lstm_eval.cc:89-101)."
        )
    if k.cmsis and not all(t[i].is_constant for i in (*_WEIGHTS, *_BIASES)):
        raise k.refuse(
            "CMSIS-NN LSTM needs constant weights and biases "
            "(cmsis_nn/unidirectional_sequence_lstm.cc:353-362)."
        )

    # CreateLstmSizeInfo (lstm_eval_common.cc:26-38) and ValidateTensorSize (:58-101).
    if len(inp.shape) != 3 or len(hidden.shape) < 2:
        raise k.refuse("LSTM input must be 3-D and its hidden state at least 2-D.")
    time_major = bool(k.option("time_major", False))
    batch = inp.shape[1] if time_major else inp.shape[0]
    input_dim = inp.shape[2]
    state = hidden.shape[1]
    shapes_ok = (
        all(tuple(t[i].shape) == (state, input_dim) for i in range(1, 5))
        and all(tuple(t[i].shape) == (state, state) for i in range(5, 9))
        and all(tuple(t[i].shape) == (state,) for i in _BIASES)
        and math.prod(hidden.shape) == batch * state
        and math.prod(cell.shape) == batch * state
        and len(out.shape) == 3
        and out.shape[0] == inp.shape[0]
        and out.shape[1] == inp.shape[1]
        and out.shape[2] == state
    )
    if not shapes_ok:
        raise k.refuse("LSTM tensor shapes do not agree (lstm_eval_common.cc:58-101).")

    cell_type = cell.dtype
    if cell_type not in _CELL_BYTES:
        raise k.refuse(
            f"Cell state type {cell_type} not supported: the quantized LSTM needs an int16 "
            "cell state (unidirectional_sequence_lstm.cc:79-85)."
        )
    persistent: tuple[int, ...] = ()
    if cell_type == _I16:
        # CreateGateParams (lstm_eval_common.cc:104-143) runs
        # CalculateOpDataFullyConnected on each gate's input and recurrent
        # weights; per-channel weights each get a multiplier and a shift array.
        where = "fully_connected_common.cc:99-116 via lstm_eval_common.cc:130-140"
        for w_in, w_rec in _GATES:
            persistent += fc_per_channel_persistent(k, inp.dtype, inp, t[w_in], where)
            persistent += fc_per_channel_persistent(k, hidden.dtype, hidden, t[w_rec], where)
    buffers = 4
    if k.cmsis and inp.dtype in (_I8, _I16) and cell_type == _I16:
        # CMSIS_NN_PortOpData (:117-144): eight kernel-sum arrays of state_dimension
        # int32 (int8 activations) or int64 (int16 activations); then 3 buffers (:397-407).
        word = 4 if inp.dtype == _I8 else 8
        persistent += (state * word,) * 8
        buffers = 3
    # unidirectional_sequence_lstm.cc:87-94, cmsis_nn/...:412-419.
    scratch = (batch * state * _CELL_BYTES[cell_type],) * buffers
    return KernelRequests(scratch=scratch, persistent=persistent, temp_tensors=temps)
