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
    sample. Low AUM means hard or mislabeled. Which end is kept is the result's `keep`: `"low"` (the default) keeps
    the lowest AUM, as the CCS paper's AUM baseline; `"high"` removes the likely-mislabeled first, as Pleiss et al.
    use AUM.

    What each end means (Pleiss et al. Sec. 3): a **low** (negative) AUM is a sample whose label the network keeps
    voting against, which the AUM authors identify as *mislabeled* and remove (their `subset` keeps the highest
    AUM); a **high** AUM is an easy, clean sample.

    - `keep="low"` (the default) keeps the **lowest** AUM first: the hardest samples, mislabeled ones included. This is
      the monotonic "AUM" baseline of the CCS paper (Zheng et al. 2023; their code ranks AUM ascending with
      `--data-score-descending 0`) and of the Dyn-Unc comparison.
    - `keep="high"` keeps the highest AUM: it removes the likely-mislabeled first, which is how Pleiss et al. use
      AUM (data cleaning, not pruning).
    - With `ccs`, AUM's hard end is the low end, so CCS's hard cutoff removes the lowest-AUM (mislabeled) samples
      before stratified sampling, as in the CCS authors' code.

    Fidelity: equal to the mean of the logit margins of the authors' `AUMCalculator` when there is one presentation
    per epoch (theirs averages every minibatch presentation, so it also works with several). Deliberate difference:
    epochs that did not see a sample (NaN) are left out of its mean. The CCS authors' code uses a different "AUM":
    the margin of *probabilities*, summed over presentations.

    Non-finite values: the margins of epochs in which the sample's loss or logits were NaN or infinite are left out
    of its mean (an infinite logit gives no margin, not an infinite one). A sample with no finite margin has no
    AUM; it is kept, not removed first, whichever end `keep` names (`Strategy.select`): a non-finite output is no
    evidence of a mislabel.

    Parameters: `AUMConfig` (`start`, `stop`).
    """

    name = "aum"
    summary = "Area under the margin (Pleiss et al. 2020): mean logit margin; keeps low = hard/mislabeled (CCS use)."
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
