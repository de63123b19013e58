"""EL2N: Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in Training",
NeurIPS 2021."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..record import ScoreRecord
from ._signals import latest_seen
from .base import Strategy, as_records, register_strategy


def default_early_epoch(num_epochs: int) -> int:
    """The row of "an early epoch": 10 % into training, as epoch 20 of 200 in Paul et al. and epoch 30 of 300 in
    the Dyn-Unc paper; `ceil(0.1 K) - 1`, at least 0."""
    return max(0, math.ceil(0.1 * num_epochs) - 1)


@register_strategy
class EL2N(Strategy):
    """EL2N (Paul et al. 2021, Eq. 2): the L2 norm of the error vector early in training,
    ``EL2N(x) = E_runs || p(x; theta_t) - onehot(y) ||_2``, averaged over independent runs when several records
    are given (`select([record_1, record_2, ...], ...)`; the Dyn-Unc paper averages ten runs at epoch 30).
    Keeps the **highest** (hardest).

    Args:
        epoch (`int`, *optional*): the epoch row `t`; defaults to `ceil(0.1 K) - 1` (10 % into training). Where that
            epoch did not see a sample, its latest earlier epoch is used.
    """

    name = "el2n"
    summary = "EL2N (Paul et al. 2021): ||softmax - onehot|| at an early epoch, mean over runs; keeps the hardest."
    keep = "high"
    requires = ("el2n",)
    multi_record = True

    def __init__(self, epoch: int | None = None):
        super().__init__(epoch=None if epoch is None else int(epoch))
        self._epochs_used: list[int] = []

    def epoch_of(self, record: ScoreRecord) -> int:
        e = self.params["epoch"]
        return default_early_epoch(record.num_epochs) if e is None else e

    def score(self, record: ScoreRecord | Sequence[ScoreRecord]) -> np.ndarray:
        records = as_records(record, self)
        self._epochs_used = [self.epoch_of(r) for r in records]
        return np.mean([latest_seen(r, "el2n", e) for r, e in zip(records, self._epochs_used)], axis=0)

    def provenance(self) -> dict:
        return {"el2n_epochs": list(self._epochs_used), "num_runs": len(self._epochs_used)}
