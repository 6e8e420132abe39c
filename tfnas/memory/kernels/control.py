"""Kernel rules: control flow and resource variables.

Read from TFLM at commit 90b983c2 (``tensorflow/lite/micro/``; kernel files are
in ``kernels/``).

Control flow (IF, WHILE, CALL_ONCE). Their Prepare does not prepare the
branch or body subgraphs: ``MicroInterpreterGraph::PrepareSubgraphs``
(micro_interpreter_graph.cc:136-180) prepares every operator of every subgraph,
in subgraph order, whatever refers to them, and resets temporaries after each
operator. So the subgraphs' own kernels are costed by their own rules; the
control-flow kernels themselves only allocate their Init OpData (two ints for
IF and WHILE, an int and a bool for CALL_ONCE) and, for IF, a temporary for the
condition tensor.

Resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE). They need a
``MicroResourceVariables`` object, which the plain
``MicroInterpreter(model, resolver, arena, size)`` used by TFLM's examples, by
our generated firmware and by the measurement harness does not have: its
``resource_variables`` argument defaults to nullptr (micro_interpreter.h:56-59,
micro_interpreter.cc:46-58) and nothing creates one. Then VAR_HANDLE fails in
Prepare (var_handle.cc:52-58) and READ_VARIABLE / ASSIGN_VARIABLE fail in Eval
(read_variable.cc:68-74, assign_variable.cc:115-121), so any model with them is
refused.

For an application that does pass one (``MicroResourceVariables::Create(allocator,
n)``, micro_resource_variable.cc:30-42), the costs would be: at creation, two
persistent (tail) buffers of ``sizeof(MicroResourceVariables)`` (a pointer and
two ints: 16 bytes on 64-bit, 12 on 32-bit) and ``n * sizeof(MicroResourceVariable)``
(three pointers, a size_t and an int8: 40 bytes each on 64-bit, 20 on 32-bit);
then in each ASSIGN_VARIABLE Prepare whose resource id is already known (the
VAR_HANDLE in the same subgraph was prepared earlier) and whose variable has no
buffer yet, one persistent buffer of the assigned tensor's bytes
(assign_variable.cc:82-86 -> micro_resource_variable.cc:83-114).
"""

from __future__ import annotations

from tfnas.memory.kernels import KernelContext, KernelRequests, rule


@rule("IF")
def if_op(k: KernelContext) -> KernelRequests:
    """IF (if.cc:46-86): one temporary, the condition (input 0).

    The subgraph-index and input/output-count checks (if.cc:74-84) need the
    other subgraphs, which a rule does not see.
    """
    if not k.op.inputs:
        raise k.refuse("IF needs a condition input (if.cc:53)")
    cond = k.input(0)
    if cond is None:
        raise k.refuse("the condition input is missing (if.cc:60)")
    if cond.dtype != "BOOL" or cond.num_elements != 1:
        raise k.refuse(
            f"the condition must be one bool, not {cond.dtype}{list(cond.shape)} (if.cc:61-62)"
        )
    return KernelRequests(temp_tensors=(k.input_index(0),))


@rule("WHILE")
def while_op(k: KernelContext) -> KernelRequests:
    """WHILE (while.cc:44-75): no temporaries, nothing allocated in Prepare."""
    if len(k.op.inputs) != len(k.op.outputs):
        raise k.refuse("WHILE needs as many outputs as inputs (while.cc:69)")
    return KernelRequests()


@rule("CALL_ONCE")
def call_once(k: KernelContext) -> KernelRequests:
    """CALL_ONCE (call_once.cc:44-61): no temporaries, nothing allocated in Prepare."""
    if k.op.inputs or k.op.outputs:
        raise k.refuse("CALL_ONCE takes no inputs or outputs (call_once.cc:51-52)")
    return KernelRequests()


@rule("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")
def resource_variable(k: KernelContext) -> KernelRequests:
    """Refused: the plain MicroInterpreter has no MicroResourceVariables (see the module)."""
    where = {
        "VAR_HANDLE": "its Prepare fails (var_handle.cc:52-58)",
        "READ_VARIABLE": "its Eval fails (read_variable.cc:68-74)",
        "ASSIGN_VARIABLE": "its Eval fails (assign_variable.cc:115-121)",
    }[k.op.opcode]
    raise k.refuse(
        "resource variables need a MicroResourceVariables object, which MicroInterpreter "
        f"does not create (micro_interpreter.cc:46-58); {where}"
    )
