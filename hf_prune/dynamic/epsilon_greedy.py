"""Epsilon-greedy selection on the EMA uncertainty (Raju et al. 2021, Sec. 3.2.2).

At every selection epoch, `round((1 - epsilon) * k)` samples are the highest by `s_ema` (Eq. 2) and the other
`k - round((1 - epsilon) * k)` are drawn uniformly at random from the remaining samples, so poorly estimated samples
keep being explored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Selection, register_policy
from .uncertainty_ema import EmaConfig, EmaScores


@dataclass
class EpsilonGreedyConfig(EmaConfig):
    """Parameters of `epsilon_greedy`.

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction of samples removed per epoch, in [0, 1).
        alpha (`float`, *optional*, defaults to 0.8): EMA weight of the newest loss, in (0, 1].
        class_balanced (`bool`, *optional*, defaults to `False`): the greedy part ranks within each class.
        epsilon (`float`, *optional*, defaults to 0.1): share of the kept samples chosen at random, in [0, 1].
    """

    epsilon: float = field(default=0.1, metadata={"help": "share of the kept samples drawn at random, in [0, 1]"})

    def __post_init__(self):
        super().__post_init__()
        self.epsilon = float(self.epsilon)
        if not (0.0 <= self.epsilon <= 1.0):
            raise ValueError(
                f"epsilon must be in [0, 1] (the share of kept samples drawn at random); got {self.epsilon}."
            )


@register_policy
class EpsilonGreedy(EmaScores):
    """`(1 - epsilon) k` samples by highest EMA loss plus `epsilon k` uniformly from the rest (Raju et al. 2021).

    Parameters: `EpsilonGreedyConfig` (`prune_ratio`, `alpha`, `class_balanced`, `epsilon`).
    """

    name = "epsilon_greedy"
    summary = "(1-eps)k highest EMA loss + eps*k uniformly from the rest (Raju et al. 2021, Sec. 3.2.2)."
    config_class = EpsilonGreedyConfig

    def _select(self, epoch, num_keep, rng):
        greedy = int(round((1.0 - self.config.epsilon) * num_keep))
        top = self._top(greedy, rng) if greedy else np.zeros(0, dtype=np.int64)
        mask = np.ones(self.num_samples, dtype=bool)
        mask[top] = False
        rest = np.flatnonzero(mask)
        explore = rng.choice(rest, size=num_keep - greedy, replace=False) if num_keep > greedy else rest[:0]
        return Selection(np.concatenate([top, explore]), info={"greedy": greedy})
