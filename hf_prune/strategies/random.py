"""Random pruning: the baseline every paper reports (Dyn-Unc Table 2's first row)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..record import ScoreRecord
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


@dataclass
class RandomConfig(StrategyConfig):
    """Parameters of `random`.

    Args:
        seed (`int`, *optional*, defaults to 0): seed of `numpy.random.default_rng`.
    """

    seed: int = field(default=0, metadata={"help": "seed of the random subset"})

    def __post_init__(self):
        self.seed = int(self.seed)


@register_strategy
class RandomPruning(Strategy):
    """Random: every sample gets an i.i.d. uniform score from a generator seeded with `seed`; the highest are kept,
    so the kept set is a uniformly random subset of the right size (per class with `class_balanced=True`). The same
    seed gives the same subset on every machine.

    Fidelity: the papers' random baselines draw with their own (usually unseeded) generators; only the distribution
    (uniform without replacement) can agree, and does.

    Non-finite values: no recorded value is read: a sample seen with a NaN or infinite loss or logits is kept with
    the same probability as any other.

    Parameters: `RandomConfig` (`seed`).

    Example:

    ```python
    >>> get_strategy("random", seed=1).select(record, prune_ratio=0.3)
    ```
    """

    name = "random"
    summary = "Random baseline: a seeded uniformly random subset (needs no signal)."
    title = "Random pruning"
    description = "A uniformly random subset of the rows, drawn with a fixed seed: the baseline of every pruning paper."
    score_name = "a uniform random draw"
    keep = "high"
    requires = ()
    config_class = RandomConfig

    def compute(self, record: ScoreRecord) -> Scores:
        return Scores(np.random.default_rng(self.config.seed).random(record.num_samples))
