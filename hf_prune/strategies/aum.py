"""AUM: Pleiss, Zhang, Elenberg, Weinberger, "Identifying Mislabeled Data using the Area Under the Margin Ranking",
NeurIPS 2020."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..citations import AUM as AUM_CITATION
from ..record import ScoreRecord
from ..stats import nan_mean
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


@dataclass
class AUMConfig(StrategyConfig):
    """Parameters of `aum`.

    Args:
        start (`int`, *optional*, defaults to 0): first epoch averaged.
        stop (`int`, *optional*): one past the last epoch averaged; defaults to all recorded epochs.
    """

    start: int = field(default=0, metadata={"help": "first epoch averaged"})
    stop: int | None = field(default=None, metadata={"help": "one past the last epoch averaged (default: all)"})

    def __post_init__(self):
        self.start = int(self.start)
        self.stop = None if self.stop is None else int(self.stop)


@register_strategy
class AUM(Strategy):
    """Area Under the Margin (Pleiss et al. 2020, Eq. 1-2): the margin at epoch `t` is the assigned (label) logit
    minus the largest other logit, ``M_t(x, y) = z_y^(t)(x) - max_{i != y} z_i^(t)(x)`` (the recorded
    `logit_margin`), and ``AUM(x, y) = (1/T) sum_{t=1..T} M_t(x, y)`` averages it over the epochs that saw the
    sample. Low AUM means hard or mislabeled.

    Keeps the **lowest** by default, i.e. the hard samples, like the other difficulty scores (as Zheng et al. 2023
    use AUM for pruning); `keep="high"` instead removes the likely-mislabeled first. With `ccs`, AUM's hard cutoff
    removes the lowest-AUM (mislabeled) samples before stratified sampling.

    Parameters: `AUMConfig` (`start`, `stop`).
    """

    name = "aum"
    summary = "Area under the margin (Pleiss et al. 2020): mean logit margin over epochs; keeps the low (hard)."
    title = "Area Under the Margin (AUM)"
    citation = AUM_CITATION
    keep = "low"
    requires = ("logit_margin",)
    config_class = AUMConfig

    def compute(self, record: ScoreRecord) -> Scores:
        start, stop = self.config.start, self.config.stop
        stop = record.num_epochs if stop is None else min(stop, record.num_epochs)
        if not 0 <= start < stop:
            raise ValueError(f"AUM epochs [{start}, {stop}) are empty for a {record.num_epochs}-epoch record.")
        return Scores(nan_mean(record, "logit_margin", start, stop))
