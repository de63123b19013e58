"""Forgetting events: Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural Network
Learning", ICLR 2019."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..citations import FORGETTING
from ..record import ScoreRecord
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


def forgetting_counts(record: ScoreRecord, signal: str = "correct") -> np.ndarray:
    """Per-sample number of forgetting events (correct at one presentation, wrong at the next); `+inf` for samples
    never classified correctly, NaN for samples never seen. Streams the epochs."""
    n = record.num_samples
    prev = np.full(n, np.nan)
    count = np.zeros(n)
    learned = np.zeros(n, dtype=bool)
    seen_any = np.zeros(n, dtype=bool)
    for row in record.iter_epochs(signal):
        row = np.asarray(row, dtype=np.float64)
        seen = ~np.isnan(row)
        correct = seen & (row > 0.5)
        count += seen & (prev > 0.5) & ~correct
        prev[seen] = row[seen]
        learned |= correct
        seen_any |= seen
    count[~learned] = np.inf
    count[~seen_any] = np.nan
    return count


@dataclass
class ForgettingConfig(StrategyConfig):
    """Parameters of `forgetting`.

    Args:
        signal (`str`, *optional*, defaults to `"correct"`): the recorded 0/1 correctness signal.
    """

    signal: str = field(default="correct", metadata={"help": "the recorded 0/1 correctness signal"})


@register_strategy
class Forgetting(Strategy):
    """Forgetting (Toneva et al. 2019, Sec. 2): the number of *forgetting events*, transitions from correctly to
    incorrectly classified between consecutive presentations of a sample,
    ``F(x) = sum_k 1[acc_{k-1}(x) = 1 and acc_k(x) = 0]``, over the recorded epochs (a presentation = an epoch that
    saw the sample). Samples never classified correctly (never learned) count, as in the paper, as
    forgotten infinitely often, so their score is `+inf`. Keeps the **highest** (most forgettable); the
    unforgettable (score 0) go first.

    Parameters: `ForgettingConfig` (`signal`).
    """

    name = "forgetting"
    summary = "Forgetting events (Toneva et al. 2019): correct->wrong flips, never-learned = inf; keeps high."
    title = "Forgetting events"
    citation = FORGETTING
    keep = "high"
    requires = ("correct",)
    config_class = ForgettingConfig

    def required_signals(self) -> tuple[str, ...]:
        return (self.config.signal,)

    def compute(self, record: ScoreRecord) -> Scores:
        return Scores(forgetting_counts(record, self.config.signal))
