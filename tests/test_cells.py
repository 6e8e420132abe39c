"""The NAS-Bench-201 cell space: genotypes, supernets, costs by hand."""

import itertools

import networkx as nx
import numpy as np
import pytest

from tfnas.errors import SearchSpaceError
from tfnas.genome import CELL_EDGES, CELL_OPS, CellSpace, Genome, analyze, get_space


def test_hand_computed_costs_of_one_conv_edge():
    sp = CellSpace((8, 8, 1), 10, channels=(4,), cells=1)
    g = sp.genome(["none", "none", "none", "conv3x3", "none", "none"])
    # stem 3x3 1->4 on 8x8, edge 0->3 3x3 4->4 on 8x8, classifier 4->10.
    assert analyze(g).macs == 9 * 1 * 4 * 64 + 9 * 4 * 4 * 64 + 4 * 10
    # params: conv kernels + 4 BN params per channel, classifier with bias.
    assert analyze(g).params == (36 + 16) + (144 + 16) + (40 + 10)


def test_genotype_round_trip_and_json():
    sp = CellSpace((16, 16, 1), 5, channels=(4, 8), cells=2)
    for seed in range(40):
        g = sp.sample(seed)
        ops = sp.genotype(g)
        assert sp.genome(ops) == g
        back = Genome.from_json(g.to_json())
        assert sp.genotype(back) == ops
        assert sp.contains(back)


def test_connected_genotypes_match_an_independent_count():
    sp = CellSpace((8, 8, 1), 3, channels=(2,))
    expected = 0
    for ops in itertools.product(CELL_OPS, repeat=6):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(4))
        graph.add_edges_from(e for e, o in zip(CELL_EDGES, ops, strict=True) if o != "none")
        expected += nx.has_path(graph, 0, 3)
    assert len(sp.genotypes()) == expected
    with pytest.raises(SearchSpaceError, match="cell output receives nothing"):
        sp.genome(["conv3x3", "conv3x3", "none", "none", "none", "none"])


def test_supernet_holds_every_op_and_is_outside_the_space():
    sp = CellSpace((8, 8, 1), 3, channels=(4,))
    net = sp.supernet()
    edge_nodes = [n for n in net.stages[0] if "_e" in n]
    # 6 edges x 3 ops with a node (the two convs and the pool); skip is a plain edge.
    assert len(edge_nodes) == 18
    assert not sp.contains(net)
    assert analyze(net).macs > analyze(sp.genome(["conv3x3"] * 6)).macs


def test_mutation_changes_the_network():
    sp = CellSpace((8, 8, 1), 3, channels=(4,))
    g = sp.sample(0)
    for seed in range(20):
        child = sp.mutate(g, seed)
        diff = [a != b for a, b in zip(sp.genotype(g), sp.genotype(child), strict=True)]
        assert sum(diff) >= 1 and child != g and sp.contains(child)


def test_bad_settings_and_foreign_genomes():
    with pytest.raises(SearchSpaceError, match="stem_stride must be 1 or 2"):
        CellSpace((8, 8, 1), 3, stem_stride=3)
    with pytest.raises(SearchSpaceError, match="Unknown cell ops"):
        CellSpace((8, 8, 1), 3, ops=("conv5x5",))
    with pytest.raises(SearchSpaceError, match="A cell has 6 edges"):
        CellSpace((8, 8, 1), 3).genome(["skip"])
    other = get_space("micro", (8, 8, 1), 3).sample(0)
    with pytest.raises(SearchSpaceError, match="not a network of this cell space"):
        CellSpace((8, 8, 1), 3).genotype(other)


def test_estimate_orders_are_topological_on_every_space():
    # Every op's inputs exist before it runs, over many seeded genomes (a hoisted merge
    # of a chained n-input ADD once ran before its second input's producer).
    from tfnas.genome import MicroSpace, MSNASSpace
    from tfnas.memory import estimate_memory

    spaces = [CellSpace((16, 16, 1), 10, channels=(4, 8), cells=2),
              MicroSpace((16, 16, 1), 10, max_blocks=4, max_channels=24),
              MSNASSpace((16, 16, 1), 10, stages=2, nodes=5, channels=(8, 16))]  # fmt: skip
    for space in spaces:
        for seed in range(150):
            est = estimate_memory(space.sample(seed))
            made = {0}
            for op in est.ops:
                assert set(op.inputs) <= made, (space.name, seed, op)
                made.update(op.outputs)


def _deployed(genome, seed):
    import numpy as np

    from tfnas._tf import keras
    from tfnas.compress import to_tflite
    from tfnas.model import build_model
    from tfnas.tuner.tuner import deploy_order

    shape = genome.input_shape
    data = np.random.default_rng(seed).uniform(0, 1, size=(8, *shape)).astype(np.float32)
    converted = to_tflite(build_model(genome, seed=seed), "int8", data, calibration_samples=8)
    keras.backend.clear_session()
    return converted, deploy_order(converted, genome), data


def _outputs(tflite, data):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    results = []
    for sample in data:
        q = np.clip(np.round(sample / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[None])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).copy())
    return np.stack(results)


def test_genome_estimate_is_exact_on_deployed_cell_models():
    # The converter interleaves a cell's parallel edges in its own order (16 of 30 matched the
    # estimate as converted); tfnas deploys the estimate's order, so the arena equals the
    # estimate on all, never larger than the converter's, with bit-identical outputs.
    from tfnas.memory import estimate_memory, plan_memory
    from tfnas.tflite import read_model

    space = CellSpace((16, 16, 1), 10, channels=(4, 8), cells=1)
    reordered = 0
    for seed in range(12):
        genome = space.sample(seed)
        converted, deployed, data = _deployed(genome, seed)
        estimate = estimate_memory(genome)
        assert plan_memory(deployed).planned_bytes == estimate.planned_bytes, seed
        assert plan_memory(deployed).planned_bytes <= plan_memory(converted).planned_bytes
        ops = read_model(deployed).main.operators
        assert [op.opcode for op in ops] == [op.opcode for op in estimate.ops]
        outputs = [t for op in ops for t in op.outputs]
        assert outputs == sorted(outputs)  # output tensors numbered in execution order
        assert np.array_equal(_outputs(deployed, data[:4]), _outputs(converted, data[:4]))
        reordered += deployed != converted
    assert reordered >= 3  # the converter's order really differed on some


def test_renumbered_flatbuffer_keeps_names_and_signatures():
    from ai_edge_litert.interpreter import Interpreter

    from tfnas.tflite import read_model

    space = CellSpace((16, 16, 1), 10, channels=(4, 8), cells=1)
    converted, deployed, data = _deployed(
        space.sample(7), 7
    )  # seed 7: the converter's order differs
    assert deployed != converted
    before, after = read_model(converted).main, read_model(deployed).main

    def named(sg):  # each op's output tensor name and shape, by op position
        return sorted((op.opcode, sg.tensors[op.outputs[0]].name, sg.tensors[op.outputs[0]].shape)
                      for op in sg.operators)  # fmt: skip

    assert named(before) == named(after)
    assert [after.tensors[t].name for t in after.outputs] == [
        before.tensors[t].name for t in before.outputs
    ]
    runners = []
    for model in (converted, deployed):
        runner = Interpreter(model_content=model).get_signature_runner()
        q = np.zeros((1, 16, 16, 1), np.int8)
        runners.append(next(iter(runner(**{next(iter(runner.get_input_details())): q}).values())))
    assert np.array_equal(*runners)
