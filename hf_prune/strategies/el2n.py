"""EL2N: Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in Training",
NeurIPS 2021."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..citations import DATA_DIET
from ..record import ScoreRecord
from ..stats import latest_seen, resolve_epoch
from .base import Scores, Strategy, as_records, register_strategy
from .config import StrategyConfig


def default_early_epoch(num_epochs: int) -> int:
    """The row of "an early epoch": 10 % into training, as epoch 20 of 200 in Paul et al. and epoch 30 of 300 in
    the Dyn-Unc paper; `ceil(0.1 K) - 1`, at least 0."""
    return max(0, math.ceil(0.1 * num_epochs) - 1)


@dataclass
class EL2NConfig(StrategyConfig):
    """Parameters of `el2n`.

    Args:
        epoch (`int`, *optional*): the epoch row `t`; defaults to `ceil(0.1 K) - 1` (10 % into training). Where that
            epoch did not see a sample, its latest earlier epoch is used.
    """

    epoch: int | None = field(default=None, metadata={"help": "epoch row t (default: 10% into training)"})

    def __post_init__(self):
        self.epoch = None if self.epoch is None else int(self.epoch)


@register_strategy
class EL2N(Strategy):
    """EL2N (Paul et al. 2021, Eq. 2): the L2 norm of the error vector early in training,
    ``EL2N(x) = E_runs || p(x; theta_t) - onehot(y) ||_2``, averaged over independent runs when several records
    are given (`select([record_1, record_2, ...], ...)`; the Dyn-Unc paper averages ten runs at epoch 30).
    Keeps the **highest** (hardest).

    Fidelity to the data-diet code (`scores.py`, `get_lord_error_fn`; `get_mean_score.py`): the same norm and the same
    mean over runs of each run's norm. Deliberate differences: the probabilities are the training step's (train mode,
    augmented inputs) unless the record was made with `record_clean_view=True` (theirs: eval mode, un-augmented, at a
    saved checkpoint); where the chosen epoch did not see a sample its latest earlier epoch is used.

    Non-finite values: where epoch `t` saw the sample with a NaN or infinite loss or logits, its latest earlier
    finite error norm is used, as for an epoch that did not see it; a run with none up to `t` leaves the mean over
    runs undefined, and a sample without a score that a record saw non-finite is kept, not removed first
    (`Strategy.select`).

    Parameters: `EL2NConfig` (`epoch`).
    """

    name = "el2n"
    summary = "EL2N (Paul et al. 2021): ||softmax - onehot|| at an early epoch, mean over runs; keeps the hardest."
    title = "EL2N"
    citation = DATA_DIET
    keep = "high"
    requires = ("el2n",)
    multi_record = True
    config_class = EL2NConfig

    def epoch_of(self, record: ScoreRecord) -> int:
        e = self.config.epoch
        return default_early_epoch(record.num_epochs) if e is None else resolve_epoch(record, e)

    def compute(self, record: ScoreRecord | Sequence[ScoreRecord]) -> Scores:
        records = as_records(record, self)
        epochs = [self.epoch_of(r) for r in records]
        values = np.mean([latest_seen(r, "el2n", e) for r, e in zip(records, epochs)], axis=0)
        return Scores(values, {"el2n_epochs": epochs, "num_runs": len(records)})
