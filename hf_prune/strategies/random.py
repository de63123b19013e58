"""Random pruning: the baseline every paper reports (Dyn-Unc Table 2's first row)."""

from __future__ import annotations

import numpy as np

from ..record import ScoreRecord
from .base import Strategy, register_strategy


@register_strategy
class RandomPruning(Strategy):
    """Random: every sample gets an i.i.d. uniform score from a generator seeded with `seed`; the highest are kept,
    so the kept set is a uniformly random subset of the right size (per class with `class_balanced=True`). The same
    seed gives the same subset on every machine.

    Args:
        seed (`int`, *optional*, defaults to 0): seed of `numpy.random.default_rng`.

    Example:

    ```python
    >>> get_strategy("random", seed=1).select(record, prune_ratio=0.3)
    ```
    """

    name = "random"
    summary = "Random baseline: a seeded uniformly random subset (needs no signal)."
    keep = "high"
    requires = ()

    def __init__(self, seed: int = 0):
        super().__init__(seed=int(seed))

    def score(self, record: ScoreRecord) -> np.ndarray:
        return np.random.default_rng(self.params["seed"]).random(record.num_samples)
