"""AUM: Pleiss, Zhang, Elenberg, Weinberger, "Identifying Mislabeled Data using the Area Under the Margin Ranking",
NeurIPS 2020."""

from __future__ import annotations

import numpy as np

from ..record import ScoreRecord
from ._signals import nan_mean
from .base import Strategy, register_strategy


@register_strategy
class AUM(Strategy):
    """Area Under the Margin (Pleiss et al. 2020, Eq. 1-2): the margin at epoch `t` is the assigned (label) logit
    minus the largest other logit, ``M_t(x, y) = z_y^(t)(x) - max_{i != y} z_i^(t)(x)`` (the recorded
    `logit_margin`), and ``AUM(x, y) = (1/T) sum_{t=1..T} M_t(x, y)`` averages it over the epochs that saw the
    sample. Low AUM means hard or mislabeled.

    Keeps the **lowest** by default, i.e. the hard samples, like the other difficulty scores (as Zheng et al. 2023
    use AUM for pruning); `keep="high"` instead removes the likely-mislabeled first. With `ccs`, AUM's hard cutoff
    removes the lowest-AUM (mislabeled) samples before stratified sampling.

    Args:
        start (`int`, *optional*, defaults to 0): first epoch averaged.
        stop (`int`, *optional*): one past the last epoch averaged; defaults to all recorded epochs.
    """

    name = "aum"
    summary = "Area under the margin (Pleiss et al. 2020): mean logit margin over epochs; keeps the low (hard)."
    keep = "low"
    requires = ("logit_margin",)

    def __init__(self, start: int = 0, stop: int | None = None):
        super().__init__(start=int(start), stop=None if stop is None else int(stop))

    def score(self, record: ScoreRecord) -> np.ndarray:
        stop = record.num_epochs if self.params["stop"] is None else min(self.params["stop"], record.num_epochs)
        if not 0 <= self.params["start"] < stop:
            raise ValueError(
                f"AUM epochs [{self.params['start']}, {stop}) are empty for a {record.num_epochs}-epoch record."
            )
        return nan_mean(record, "logit_margin", self.params["start"], stop)
