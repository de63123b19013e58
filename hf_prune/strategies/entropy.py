"""Prediction entropy of the final model: Coleman et al., "Selection via Proxy: Efficient Data Selection for Deep
Learning", ICLR 2020 (the "Entropy" baseline of Dyn-Unc's Table 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..citations import SELECTION_VIA_PROXY
from ..record import ScoreRecord
from ..stats import latest_seen, resolve_epoch
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


@dataclass
class EntropyConfig(StrategyConfig):
    """Parameters of `entropy`.

    Args:
        epoch (`int`, *optional*, defaults to -1): which epoch's model; -1 is the final one.
    """

    epoch: int = field(default=-1, metadata={"help": "which epoch's model (-1: the final one)"})

    def __post_init__(self):
        self.epoch = int(self.epoch)


@register_strategy
class Entropy(Strategy):
    """Entropy (Coleman et al. 2020, Sec. 3): the entropy of the predicted class distribution of the *final* model,
    ``H(x) = -sum_c p_c(x) log p_c(x)``, read from the recorded `entropy` signal at the last epoch (where the last
    epoch did not see a sample, its latest earlier epoch). Keeps the **highest** (most uncertain).

    Fidelity: the definition of the selection-via-proxy code (entropy of the proxy model's softmax); tested against a
    naive computation. Deliberate difference: the probabilities are the last training epoch's (train mode) unless the
    record was made with `record_clean_view=True` (theirs: a separate inference pass of the trained model).

    Non-finite values: where the chosen epoch saw the sample with a NaN or infinite loss or logits, its latest
    earlier finite entropy is used, as for an epoch that did not see it; with none, the sample has no score and is
    kept, not removed first (`Strategy.select`).

    Parameters: `EntropyConfig` (`epoch`).
    """

    name = "entropy"
    summary = "Entropy (Coleman et al. 2020): final model's prediction entropy; keeps the most uncertain."
    title = "Prediction entropy"
    citation = SELECTION_VIA_PROXY
    keep = "high"
    requires = ("entropy",)
    config_class = EntropyConfig

    def compute(self, record: ScoreRecord) -> Scores:
        epoch = resolve_epoch(record, self.config.epoch)
        return Scores(latest_seen(record, "entropy", epoch), {"entropy_epoch": epoch})
