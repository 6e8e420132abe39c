"""The NAS-Bench-201 cell space: genotypes, supernets, costs by hand."""

import itertools

import networkx as nx
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
