"""Dynamic data pruning: per-epoch selection policies and the sampler / `IterableDataset` that apply them.

Policies (registered by name, `get_policy(name, **params)`, `list_policies()`):

- `random_dynamic`: uniform random subset each selection epoch (Raju et al. 2021).
- `uncertainty_ema`: highest EMA of the per-sample loss (Raju et al. 2021, Eq. 1-2), `alpha`.
- `epsilon_greedy`: `(1 - epsilon) k` by EMA loss plus `epsilon k` at random (Raju et al. 2021), `alpha`, `epsilon`.
- `ucb`: EMA loss plus `c` times its running variance (Raju et al. 2021, Eq. 3-4), `alpha`, `c`.
- `infobatch`: random pruning at ratio `r` of the below-mean-loss samples with 1/(1-r) loss rescaling, full data in
  the first epoch and the annealing tail (Qin et al., ICLR 2024), `delta`, `num_epochs`, `max_ratio`,
  `fixed_budget`; its epochs vary in length.
- `rs2`: a fresh random subset each epoch, without replacement across rounds (Okanovic et al., ICLR 2024).
- `seta`: random pruning, 1-D k-means loss groups, an easy-to-hard sliding window (Zhou et al., CVPR 2025),
  `num_groups`, `window_scale`, `delta`, `num_epochs`; its epochs vary in length.

`prune_ratio` is the fraction of samples *removed* per epoch (0.5 trains on half); for InfoBatch it is the fraction
of the below-mean-loss samples removed, for SeTa the fraction removed by its random stage.

In `DynamicPruningTrainer`: `DynamicPruningArguments(dynamic_policy="ucb", dynamic_prune_ratio=0.5, pruning_period=1,
dynamic_scoring="train_loss", dynamic_policy_kwargs={"c": 1.0})`. In your own Accelerate loop: `DynamicPruningSampler`
or `DynamicPruningDataset`. Each policy's parameters are a config dataclass registered with it (`UCBConfig`,
`InfoBatchConfig`...; `get_policy(name, config=...)`).

The selection analysis (`selection_counts`, `plot_selection_histogram`, `static_result_from_selection`,
`selection_groups`) is imported on first use: it reaches the plotting and result modules, which training does not
need.
"""

import importlib
import pkgutil
from typing import TYPE_CHECKING

from ..selection import num_kept
from .base import (
    POLICIES,
    SELECTED_SIGNAL,
    DynamicPolicy,
    PolicyConfig,
    Selection,
    get_policy,
    is_policy,
    list_policies,
    register_policy,
)
from .epsilon_greedy import EpsilonGreedy, EpsilonGreedyConfig
from .infobatch import InfoBatch, InfoBatchConfig
from .iterable import LOSS_WEIGHT_COLUMN, DynamicPruningDataset
from .loss import weighted_cross_entropy
from .random_dynamic import RandomDynamic, RandomDynamicConfig
from .rs2 import RS2, RS2Config
from .sampler import DynamicPruningSampler
from .seta import SeTa, SeTaConfig
from .ucb import UCB, UCBConfig
from .uncertainty_ema import EmaConfig, EmaScores, UncertaintyEMA, UncertaintyEMAConfig


# Every other module of this package is a policy: importing it runs its `@register_policy`, so adding a policy is adding
# its module (the names above are shortcuts; `get_policy` reaches every registered one).
_NOT_POLICIES = {"analysis", "base", "checkpoint", "iterable", "loss", "plan", "sampler"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_POLICIES:
        importlib.import_module(f"{__name__}.{_module.name}")


# public name -> submodule, imported on first use (`selection_groups` lives with the plots)
_LAZY = {
    "plot_selection_histogram": ".analysis",
    "selection_counts": ".analysis",
    "static_result_from_selection": ".analysis",
    "selection_groups": "..plots",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from ..plots import selection_groups
    from .analysis import plot_selection_histogram, selection_counts, static_result_from_selection


__all__ = [
    "LOSS_WEIGHT_COLUMN",
    "POLICIES",
    "RS2",
    "SELECTED_SIGNAL",
    "UCB",
    "DynamicPolicy",
    "DynamicPruningDataset",
    "DynamicPruningSampler",
    "EmaConfig",
    "EmaScores",
    "EpsilonGreedy",
    "EpsilonGreedyConfig",
    "InfoBatch",
    "InfoBatchConfig",
    "PolicyConfig",
    "RS2Config",
    "RandomDynamic",
    "RandomDynamicConfig",
    "SeTa",
    "SeTaConfig",
    "Selection",
    "UCBConfig",
    "UncertaintyEMA",
    "UncertaintyEMAConfig",
    "get_policy",
    "is_policy",
    "list_policies",
    "num_kept",
    "plot_selection_histogram",
    "register_policy",
    "selection_counts",
    "selection_groups",
    "static_result_from_selection",
    "weighted_cross_entropy",
]
