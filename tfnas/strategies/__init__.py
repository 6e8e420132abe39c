"""Search strategies: a keras-tuner Oracle per module around TF-free logic in ``core``.

``import tfnas.strategies`` stays free of TensorFlow; the oracles (which
import keras-tuner, and through it TensorFlow) load on first use.
"""

from importlib import import_module

from tfnas.strategies.core import (
    average_ranks,
    hybrid_scores,
    prune_edges,
    resource_scales,
    screen,
    tournament,
)
from tfnas.strategies.metagraph import (
    DEFAULT_THRESHOLDS,
    FamilyMember,
    MetaGraph,
    connectivity_penalty,
    iot_penalty,
)

_LAZY = {
    "NASOracle": "tfnas.strategies.base",
    "RandomSearchOracle": "tfnas.strategies.random_search",
    "AgingEvolutionOracle": "tfnas.strategies.aging_evolution",
    "MSNASOracle": "tfnas.strategies.msnas",
    "MicroNASOracle": "tfnas.strategies.micronas",
}
STRATEGIES = {
    "random": "RandomSearchOracle",
    "evolution": "AgingEvolutionOracle",
    "msnas": "MSNASOracle",
    "micronas": "MicroNASOracle",
}

__all__ = [
    "screen",
    "tournament",
    "average_ranks",
    "hybrid_scores",
    "prune_edges",
    "resource_scales",
    "MetaGraph",
    "FamilyMember",
    "connectivity_penalty",
    "iot_penalty",
    "DEFAULT_THRESHOLDS",
    "STRATEGIES",
    "get_strategy",
    *_LAZY,
]


def get_strategy(name: str):
    """The oracle class of a strategy name (``"random"``, ``"evolution"``, ``"msnas"`` or ``"micronas"``)."""
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy. Expected one of {sorted(STRATEGIES)}. Received: {name!r}"
        )
    return __getattr__(STRATEGIES[name])


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfnas.strategies' has no attribute {name!r}")
