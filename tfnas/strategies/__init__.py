"""Search strategies: a keras-tuner Oracle per module around TF-free logic in ``core``.

``import tfnas.strategies`` stays free of TensorFlow; the oracles (which
import keras-tuner, and through it TensorFlow) load on first use.
"""

from importlib import import_module

from tfnas.genome.laws import SamplingLaw
from tfnas.strategies.core import (
    average_ranks,
    hybrid_scores,
    prune_edges,
    resource_scales,
    screen,
    tournament,
)
from tfnas.strategies.law_design import (
    LawSet,
    cluster_laws,
    decade_windows,
    design_laws,
    design_windows,
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
    "SamplingLawOracle": "tfnas.strategies.laws",
}
STRATEGIES = {
    "random": "RandomSearchOracle",
    "evolution": "AgingEvolutionOracle",
    "msnas": "MSNASOracle",
    "micronas": "MicroNASOracle",
    "laws": "SamplingLawOracle",
}

#: Oracle settings a config's ``strategy_options`` may name, per strategy (kept equal to the
#: oracles' keyword arguments by a test, and readable without importing keras-tuner).
COMMON_OPTIONS = ("max_rejections", "max_consecutive_failed_trials", "proxy_weights", "proxy_pool",
                  "halving", "lease_seconds")  # fmt: skip
STRATEGY_OPTIONS = {
    "random": (),
    "evolution": ("population_size", "sample_size", "objectives"),
    "msnas": (
        "alpha",
        "beta_decay",
        "lambda_connectivity",
        "lambda_macs",
        "lambda_params",
        "lambda_arena",
        "performance",
    ),  # fmt: skip
    "micronas": ("pool", "prune"),
    "laws": ("laws", "metric", "metric_range", "windows", "design"),
}

__all__ = [
    "strategy_options",
    "STRATEGY_OPTIONS",
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
    "SamplingLaw",
    "LawSet",
    "design_laws",
    "design_windows",
    "decade_windows",
    "cluster_laws",
    "STRATEGIES",
    "get_strategy",
    *_LAZY,
]


def strategy_options(name: str) -> set[str]:
    """Names ``strategy_options`` may hold for strategy ``name``."""
    return {*COMMON_OPTIONS, *STRATEGY_OPTIONS[name]}


def get_strategy(name: str):
    """The oracle class of a strategy name (``"random"``, ``"evolution"``, ``"msnas"``, ``"micronas"`` or ``"laws"``)."""
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy. Expected one of {sorted(STRATEGIES)}. Received: {name!r}"
        )
    return __getattr__(STRATEGIES[name])


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfnas.strategies' has no attribute {name!r}")
