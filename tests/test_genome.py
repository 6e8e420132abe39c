import json
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

from tfnas.errors import MutationError, SearchSpaceError
from tfnas.genome import (
    IN,
    OUT,
    Downsample,
    Genome,
    Head,
    MicroSpace,
    MSNASSpace,
    analyze,
    chain_stage,
    get_space,
    mutations,
    parse_op_choice,
)
from tfnas.genome.costs import narrowest_channels

TASKS = [((16, 16, 1), 10), ((49, 10), 12), ((32, 32, 3), 10)]


def chain(*layers):
    return chain_stage(layers)


def conv(k=3, c=8, s=1, **kw):
    return {"op": "conv", "kernel": k, "channels": c, "stride": s, **kw}


def relabel(genome: Genome, seed: int) -> Genome:
    """The same architecture with renamed nodes inserted in another order."""
    rng = np.random.default_rng(seed)
    stages = []
    for g in genome.stages:
        names = [n for n in g.nodes if n not in (IN, OUT)]
        new = {
            n: f"x{int(i)}" for n, i in zip(names, rng.permutation(len(names)) + 100, strict=True)
        }
        h = nx.relabel_nodes(g, new)
        order = list(h.nodes)
        rng.shuffle(order)
        k = nx.DiGraph()
        k.add_nodes_from((n, h.nodes[n]) for n in order)
        edges = list(h.edges)
        rng.shuffle(edges)
        k.add_edges_from(edges)
        stages.append(k)
    return Genome(stages, genome.downsamples, genome.head,
                  input_shape=genome.input_shape, num_classes=genome.num_classes)  # fmt: skip


@pytest.mark.parametrize("space_cls", [MSNASSpace, MicroSpace])
@pytest.mark.parametrize("task", TASKS)
def test_random_genomes_valid_round_trip_and_in_space(space_cls, task):
    space = space_cls(*task)
    hashes = set()
    for seed in range(200):
        g = space.sample(seed)
        g.validate()
        space.check(g)
        text = g.to_json()
        back = Genome.from_json(text)
        assert back.to_json() == text
        assert back == g and back.canonical_hash() == g.canonical_hash()
        hashes.add(g.canonical_hash())
        costs = analyze(g)
        assert costs.params > 0 and costs.macs > 0
        assert costs.tensors[-1].shape == (task[1],)
    assert len(hashes) > 150  # sampling is diverse, and the hash tells genomes apart


def test_sampling_is_seeded():
    space = MicroSpace((16, 16, 1), 10)
    assert space.sample(3).to_json() == space.sample(3).to_json()
    assert space.sample(np.random.default_rng(3)).to_json() == space.sample(3).to_json()


@pytest.mark.parametrize("space_cls", [MSNASSpace, MicroSpace])
def test_canonical_hash_is_invariant_under_relabelling(space_cls):
    space = space_cls((16, 16, 1), 10)
    for seed in range(30):
        g = space.sample(seed)
        r = relabel(g, seed)
        assert r.to_json() != g.to_json()
        assert r.canonical_hash() == g.canonical_hash()


def test_canonical_hash_distinguishes_shared_from_split_branches():
    # a -> {b, c} versus a1 -> b, a2 -> c: same unrolled tree, different graphs.
    shared = nx.DiGraph()
    shared.add_nodes_from([IN, ("a", conv()), ("b", conv()), ("c", conv()), OUT])
    shared.add_edges_from([(IN, "a"), ("a", "b"), ("a", "c"), ("b", OUT), ("c", OUT)])
    split = nx.DiGraph()
    split.add_nodes_from([IN, ("a1", conv()), ("a2", conv()), ("b", conv()), ("c", conv()), OUT])
    split.add_edges_from([(IN, "a1"), (IN, "a2"), ("a1", "b"), ("a2", "c"), ("b", OUT), ("c", OUT)])
    g1 = Genome([shared], input_shape=(8, 8, 1), num_classes=2)
    g2 = Genome([split], input_shape=(8, 8, 1), num_classes=2)
    assert g1 != g2
    g3 = Genome([chain(conv(c=8))], input_shape=(8, 8, 1), num_classes=2)
    g4 = Genome([chain(conv(c=9))], input_shape=(8, 8, 1), num_classes=2)
    assert g3 != g4


@pytest.mark.parametrize("space_cls", [MSNASSpace, MicroSpace])
def test_mutations_return_valid_genomes_inside_the_space(space_cls):
    space = space_cls((16, 16, 1), 10)
    rng = np.random.default_rng(0)
    changed = 0
    g = space.sample(0)
    for _ in range(200):
        child = space.mutate(g, rng)
        child.validate()
        assert space.contains(child)
        changed += child != g
        g = child if rng.random() < 0.8 else space.sample(rng)
    assert changed >= 190  # a mutation almost always changes the architecture


def test_each_micro_mutation_applies_somewhere():
    space = MicroSpace((16, 16, 1), 10)
    for name in space.mutation_names:
        fn = getattr(mutations, name)
        ok = 0
        for seed in range(40):
            try:
                child = fn(space.sample(seed), space, np.random.default_rng(seed))
            except MutationError:
                continue
            child.validate()
            ok += 1
        assert ok > 0, name


def test_mutation_reports_why_it_cannot_apply():
    space = MicroSpace((8, 8, 1), 10)
    g = Genome(
        [chain({"op": "dwconv", "kernel": 3, "stride": 1})], input_shape=(8, 8, 1), num_classes=10
    )
    rng = np.random.default_rng(0)
    with pytest.raises(MutationError, match="single node 'n0' and cannot lose it"):
        mutations.remove_node(g, space, rng)
    with pytest.raises(MutationError, match="no nodes with channels"):
        mutations.change_channels(g, space, rng)
    with pytest.raises(MutationError, match="no removable edges"):
        mutations.remove_edge(g, space, rng)


def test_mutation_that_would_break_shapes_is_reported():
    space = MicroSpace((8, 8, 1), 10)
    # n0 -> add <- in, both 1 channel; changing n0's channels breaks the add.
    g = chain(conv(c=1))
    g.remove_edge("n0", OUT)
    g.add_node("add", op="identity", merge="add")
    g.add_edges_from([("n0", "add"), (IN, "add"), ("add", OUT)])
    genome = Genome([g], input_shape=(8, 8, 1), num_classes=10)
    with pytest.raises(
        MutationError, match="change_channels would make the genome invalid: .*adds inputs"
    ):
        mutations.change_channels(genome, space, np.random.default_rng(0))


# ------------------------------------------------------------------ analytic costs


def test_costs_by_hand_2d():
    # 8x8x1 -> conv3x3(4) -> maxpool -> sepconv3x3(6) -> gap -> dense(5) -> 3 classes
    s0 = chain(conv(3, 4))
    s1 = chain({"op": "sepconv", "kernel": 3, "channels": 6, "stride": 1})
    g = Genome(
        [s0, s1], [Downsample("maxpool")], Head("gap", (5,)), input_shape=(8, 8, 1), num_classes=3
    )
    c = analyze(g)
    conv_p = 9 * 1 * 4 + 4 * 4
    sep_p = 9 * 4 + 4 * 4 + 4 * 6 + 4 * 6
    dense_p = 6 * 5 + 5 + 5 * 3 + 3
    assert c.params == conv_p + sep_p + dense_p == 52 + 100 + 53
    assert c.macs == 9 * 4 * 64 + (9 * 4 + 4 * 6) * 16 + 6 * 5 + 5 * 3
    assert c.node_shapes == {
        "s0/n0": (8, 8, 4),
        "s0/out": (8, 8, 4),
        "s1/n0": (4, 4, 6),
        "s1/out": (4, 4, 6),
    }
    assert [t.bytes for t in c.tensors] == [64, 256, 64, 64, 96, 6, 5, 3, 3]


def test_costs_by_hand_1d_concat_and_strided_conv_downsample():
    # 49x10 (1-D): stage with two 1x1/3x1 convs concatenated; strided conv downsample to 7.
    s0 = nx.DiGraph()
    s0.add_nodes_from([IN, ("a", conv(1, 4)), ("b", conv(3, 2)), OUT])
    s0.add_edges_from([(IN, "a"), (IN, "b"), ("a", OUT), ("b", OUT)])
    s1 = chain({"op": "avgpool", "kernel": 3, "stride": 2})
    g = Genome(
        [s0, s1], [Downsample("conv", 7)], Head("flatten"), input_shape=(49, 10), num_classes=2
    )
    c = analyze(g)
    assert c.node_shapes["s0/out"] == (49, 1, 6)
    assert c.node_shapes["s1/n0"] == (13, 1, 7)  # conv: ceil(49/2)=25, pool: ceil(25/2)=13
    params = (10 * 4 + 16) + (3 * 10 * 2 + 8) + (3 * 6 * 7 + 28) + (13 * 7 * 2 + 2)
    assert c.params == params
    assert c.macs == 49 * 10 * 4 + 49 * 3 * 10 * 2 + 25 * 3 * 6 * 7 + 13 * 7 * 2


def test_narrowest_channels_is_the_bottleneck_cut_by_hand():
    def width(*stages, downsamples=(), shape=(8, 8, 1)):
        g = Genome(list(stages), list(downsamples), input_shape=shape, num_classes=3)
        return narrowest_channels(g)

    # a chain: its narrowest layer (the 1-channel image input does not count)
    assert width(chain(conv(3, 5), conv(3, 1), conv(3, 12))) == 1
    assert width(chain(conv(3, 5), conv(3, 4), conv(3, 12))) == 4
    # a depthwise conv on the input keeps the input's channels: a cut of 3 on RGB
    assert (
        width(chain({"op": "dwconv", "kernel": 3, "stride": 1}, conv(3, 8)), shape=(8, 8, 3)) == 3
    )
    # parallel branches add up: 1 + 2 channels concatenated, then a 6-channel conv
    s = nx.DiGraph()
    s.add_nodes_from([IN, ("a", conv(3, 1)), ("b", conv(1, 2)), ("c", conv(3, 6)), OUT])
    s.add_edges_from([(IN, "a"), (IN, "b"), ("a", "c"), ("b", "c"), ("c", OUT)])
    assert width(chain(conv(3, 4)), s, downsamples=[Downsample("none")]) == 3
    # a skip around a 1-channel conv: the 4 channels of the stage input still pass
    r = nx.DiGraph()
    r.add_nodes_from([IN, ("n", conv(3, 1)), ("m", conv(3, 4)),
                      ("add", {"op": "identity", "merge": "add"}), OUT])  # fmt: skip
    r.add_edges_from([(IN, "n"), ("n", "m"), ("m", "add"), (IN, "add"), ("add", OUT)])
    assert width(chain(conv(3, 4)), r, downsamples=[Downsample("maxpool")]) == 4


def test_cost_of_transferred_task():
    g = MSNASSpace((16, 16, 1), 10, stages=2, nodes=3).sample(1)
    own, other = analyze(g), analyze(g, input_shape=(32, 32, 3), num_classes=4)
    assert other.macs > own.macs and other.tensors[-1].shape == (4,)


# --------------------------------------------------------------- validation errors


def make(stage, **kw):
    kw.setdefault("input_shape", (8, 8, 1))
    kw.setdefault("num_classes", 10)
    return Genome([stage], **kw)


def test_error_cycle():
    g = chain(conv(), conv())
    g.add_edge("n1", "n0")
    with pytest.raises(
        SearchSpaceError, match=r"Stage 0 has a cycle.*n0 -> n1 -> n0 through node 'n0'"
    ):
        make(g)


def test_error_node_without_inputs():
    g = chain(conv())
    g.add_node("n5", **conv())
    g.add_edge("n5", OUT)
    with pytest.raises(SearchSpaceError, match="node 'n5' in stage 0 has no inputs"):
        make(g)


def test_error_unreachable_node():
    g = chain(conv())
    g.add_node("a", **conv())
    g.add_node("z", **conv())
    g.add_edges_from([("z", "a"), ("a", OUT)])
    with pytest.raises(
        SearchSpaceError,
        match="node 'a' in stage 0 is unreachable from the stage input.*inputs \\['z'\\]",
    ):
        make(g)


def test_error_dangling_node():
    g = chain(conv())
    g.add_node("n7", **conv())
    g.add_edge(IN, "n7")
    with pytest.raises(SearchSpaceError, match="node 'n7' in stage 0 is dangling"):
        make(g)


def test_error_unknown_op():
    with pytest.raises(
        SearchSpaceError, match="node 'n0' in stage 0 has an unknown op.*Received: op='lstm'"
    ):
        make(chain({"op": "lstm"}))


@pytest.mark.parametrize(
    "attrs,match",
    [
        (
            conv(k=4),
            "node 'n0' in stage 0: kernel is out of range. Expected one of \\[1, 3, 5, 7\\]. Received: kernel=4",
        ),
        (
            conv(c=0),
            "channels is out of range. Expected 1 <= channels <= 2048. Received: channels=0",
        ),
        (conv(s=3), "stride is out of range. Expected one of \\[1, 2\\]. Received: stride=3"),
        ({"op": "dwconv", "kernel": 1, "stride": 1}, "kernel is out of range.*Received: kernel=1"),
        (
            {"op": "conv", "kernel": 3, "stride": 1},
            "takes parameters \\['kernel', 'channels', 'stride'\\].*missing=\\['channels'\\]",
        ),
        (conv(merge="mul"), "unknown merge.*Received: merge='mul'"),
    ],
)
def test_error_parameter_out_of_range(attrs, match):
    with pytest.raises(SearchSpaceError, match=match):
        make(chain(attrs))


def test_error_spatial_size_reaches_zero():
    stages = [chain(conv()) for _ in range(3)]
    with pytest.raises(
        SearchSpaceError,
        match=r"Downsample 1 \(maxpool\) reduces the spatial size to zero.*input \(1, 1\) -> output \(0, 1\)",
    ):
        Genome(stages, [Downsample(), Downsample()], input_shape=(2, 2, 1), num_classes=2)


def test_error_unknown_schema_version():
    data = json.loads(MicroSpace((8, 8, 1), 10).sample(0).to_json())
    data["schema_version"] = 99
    with pytest.raises(
        SearchSpaceError,
        match="Unknown genome schema version. Expected schema_version=1. Received: schema_version=99",
    ):
        Genome.from_json(json.dumps(data))


@pytest.mark.parametrize(
    "text,match",
    [
        ("{not json", "Malformed genome JSON"),
        ("[1, 2]", "A genome must be a JSON object. Received: list"),
        ('{"schema_version": 1}', "required key is missing. Received: missing key 'stages'"),
        (b"\xff\xfe", "Malformed genome JSON"),
    ],
)
def test_error_malformed_json(text, match):
    with pytest.raises(SearchSpaceError, match=match):
        Genome.from_json(text)


def test_error_edge_to_unknown_node():
    data = json.loads(MicroSpace((8, 8, 1), 10).sample(0).to_json())
    data["stages"][0]["edges"].append(["n0", "ghost"])
    with pytest.raises(SearchSpaceError, match="edge to an unknown node.*unknown 'ghost'"):
        Genome.from_json(json.dumps(data))


def test_error_merge_shape_mismatches():
    g = nx.DiGraph()
    g.add_nodes_from([IN, ("a", conv(s=2)), ("b", conv()), OUT])
    g.add_edges_from([(IN, "a"), (IN, "b"), ("a", OUT), ("b", OUT)])
    with pytest.raises(
        SearchSpaceError,
        match=r"node 'out' in stage 0 merges inputs of different spatial sizes.*a \(4, 4\), b \(8, 8\)",
    ):
        make(g)
    g = chain(conv(c=3), {"op": "identity", "merge": "add"})
    g.add_edge(IN, "n1")
    with pytest.raises(
        SearchSpaceError,
        match="node 'n1' in stage 0 adds inputs with different channel counts.*in 1, n0 3",
    ):
        make(g)


def test_error_task_and_modules():
    with pytest.raises(
        SearchSpaceError, match=r"input_shape must be .*Received: input_shape=\(8, 0, 1\)"
    ):
        make(chain(conv()), input_shape=(8, 0, 1))
    with pytest.raises(
        SearchSpaceError, match="num_classes is out of range.*Received: num_classes=1"
    ):
        make(chain(conv()), num_classes=1)
    with pytest.raises(SearchSpaceError, match="needs 0 downsamples. Received: 1 downsamples"):
        make(chain(conv()), downsamples=[Downsample()])
    with pytest.raises(
        SearchSpaceError, match="Downsample 0 has an unknown op.*Received: op='stride3'"
    ):
        Genome(
            [chain(conv()), chain(conv())],
            [Downsample("stride3")],
            input_shape=(8, 8, 1),
            num_classes=2,
        )
    with pytest.raises(SearchSpaceError, match="Head has an unknown pool.*Received: pool='max'"):
        make(chain(conv()), head=Head("max"))
    with pytest.raises(
        SearchSpaceError, match="Head hidden layer 0: units is out of range.*Received: units=0"
    ):
        make(chain(conv()), head=Head("gap", (0,)))


def test_error_space_choices():
    with pytest.raises(SearchSpaceError, match="Unknown op choice.*Received: 'conv2x3'"):
        parse_op_choice("conv2x3")
    with pytest.raises(
        SearchSpaceError, match="has a kernel that sepconv does not allow.*Received: kernel=1"
    ):
        parse_op_choice("sepconv1x1")
    with pytest.raises(SearchSpaceError, match="Unknown search space.*Received: 'darts'"):
        get_space("darts", (8, 8, 1), 10)
    with pytest.raises(SearchSpaceError, match="reduces the spatial size to zero"):
        MSNASSpace((4, 4, 1), 10, stages=4)
    space = MSNASSpace((8, 8, 1), 10, stages=2)
    with pytest.raises(SearchSpaceError, match="Genome is for another task"):
        space.check(MSNASSpace((16, 16, 1), 10, stages=2).sample(0))


def test_parse_op_choice():
    assert parse_op_choice("sepconv3x3") == {"op": "sepconv", "kernel": 3}
    assert parse_op_choice("dwconv7x7") == {"op": "dwconv", "kernel": 7}
    assert parse_op_choice("identity") == {"op": "identity"}


def test_space_config_round_trip():
    for space in (
        MSNASSpace((8, 8, 1), 10, stages=2, nodes=4),
        MicroSpace((49, 10), 12, max_blocks=4),
    ):
        clone = type(space).from_config(json.loads(json.dumps(space.get_config())))
        assert clone.get_config() == space.get_config()
        assert clone.sample(5).to_json() == space.sample(5).to_json()


def test_genome_package_does_not_import_tensorflow():
    code = "import sys, tfnas.genome; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
