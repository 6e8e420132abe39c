"""Genomes (DAG architectures), search spaces, mutations and analytic costs.

This package never imports TensorFlow.
"""

from tfnas.genome import mutations
from tfnas.genome.cells import CELL_EDGES, CELL_OPS, CellSpace
from tfnas.genome.costs import GenomeCosts, TensorCost, analyze
from tfnas.genome.genome import IN, OUT, SCHEMA_VERSION, Downsample, Genome, Head, stage_order
from tfnas.genome.ops import NODE_OPS, parse_op_choice
from tfnas.genome.spaces import SPACES, MicroSpace, MSNASSpace, SearchSpace, chain_stage, get_space

SPACES["cell"] = CellSpace

__all__ = [
    "Genome",
    "Downsample",
    "Head",
    "IN",
    "OUT",
    "SCHEMA_VERSION",
    "stage_order",
    "NODE_OPS",
    "parse_op_choice",
    "SearchSpace",
    "MSNASSpace",
    "MicroSpace",
    "CellSpace",
    "CELL_OPS",
    "CELL_EDGES",
    "SPACES",
    "get_space",
    "chain_stage",
    "GenomeCosts",
    "TensorCost",
    "analyze",
    "mutations",
]
