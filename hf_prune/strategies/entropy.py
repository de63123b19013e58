"""Prediction entropy of the final model: Coleman et al., "Selection via Proxy: Efficient Data Selection for Deep
Learning", ICLR 2020 (the "Entropy" baseline of Dyn-Unc's Table 2)."""

from __future__ import annotations

import numpy as np

from ..record import ScoreRecord
from ._signals import latest_seen
from .base import Strategy, register_strategy


@register_strategy
class Entropy(Strategy):
    """Entropy (Coleman et al. 2020, Sec. 3): the entropy of the predicted class distribution of the *final* model,
    ``H(x) = -sum_c p_c(x) log p_c(x)``, read from the recorded `entropy` signal at the last epoch (where the last
    epoch did not see a sample, its latest earlier epoch). Keeps the **highest** (most uncertain).

    Args:
        epoch (`int`, *optional*, defaults to -1): which epoch's model; -1 is the final one.
    """

    name = "entropy"
    summary = "Entropy (Coleman et al. 2020): final model's prediction entropy; keeps the most uncertain."
    keep = "high"
    requires = ("entropy",)

    def __init__(self, epoch: int = -1):
        super().__init__(epoch=int(epoch))

    def score(self, record: ScoreRecord) -> np.ndarray:
        return latest_seen(record, "entropy", self.params["epoch"])
