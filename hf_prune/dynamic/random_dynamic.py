"""Random dynamic pruning (Raju et al., "Accelerating Deep Learning with Dynamic Data Pruning", 2021, Sec. 4).

Every selection epoch draws `k = n - floor(prune_ratio * n)` samples uniformly at random without replacement. It needs
no scores, so no scoring pass is run for it. Raju et al. find it beats static scores at aggressive pruning rates,
because of the "sometimes" samples that matter only at some points of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import DynamicPolicy, PolicyConfig, Selection, register_policy


@dataclass
class RandomDynamicConfig(PolicyConfig):
    """Parameters of `random_dynamic`.

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction of samples removed per epoch, in [0, 1).
    """


@register_policy
class RandomDynamic(DynamicPolicy):
    """Uniform random selection at every selection epoch (Raju et al. 2021's "random dynamic" baseline).

    Parameters: `RandomDynamicConfig` (`prune_ratio`).
    """

    name = "random_dynamic"
    summary = "Uniformly random subset at every selection epoch; no scores needed (Raju et al. 2021)."
    config_class = RandomDynamicConfig
    uses_scores = False

    def _select(self, epoch: int, num_keep: int, rng: np.random.Generator) -> Selection:
        return Selection(rng.choice(self.num_samples, size=num_keep, replace=False))
