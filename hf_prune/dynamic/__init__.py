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

In `PruningTrainer`: `PruningArguments(dynamic_policy="ucb", dynamic_prune_ratio=0.5, pruning_period=1,
dynamic_scoring="train_loss")`. In your own Accelerate loop: `DynamicPruningSampler` or `DynamicPruningDataset`.
"""

from ..plots import selection_groups
from ..selection import num_kept
from . import epsilon_greedy, infobatch, random_dynamic, rs2, seta, ucb, uncertainty_ema  # noqa: F401  (register)
from .analysis import SELECTED_SIGNAL, plot_selection_histogram, selection_counts, static_result_from_selection
from .base import POLICIES, DynamicPolicy, Selection, get_policy, is_policy, list_policies, register_policy
from .epsilon_greedy import EpsilonGreedy
from .infobatch import InfoBatch
from .iterable import LOSS_WEIGHT_COLUMN, DynamicPruningDataset
from .loss import weighted_cross_entropy
from .random_dynamic import RandomDynamic
from .rs2 import RS2
from .sampler import DynamicPruningSampler
from .seta import SeTa
from .ucb import UCB
from .uncertainty_ema import EmaScores, UncertaintyEMA


__all__ = [
    "LOSS_WEIGHT_COLUMN",
    "POLICIES",
    "SELECTED_SIGNAL",
    "UCB",
    "DynamicPolicy",
    "DynamicPruningDataset",
    "DynamicPruningSampler",
    "EmaScores",
    "EpsilonGreedy",
    "InfoBatch",
    "RS2",
    "RandomDynamic",
    "SeTa",
    "Selection",
    "UncertaintyEMA",
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
