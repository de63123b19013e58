"""Upper-confidence-bound selection (Raju et al. 2021, Sec. 3.2.3).

Alongside the EMA of the loss (Eq. 2) each sample keeps a running variance (Eq. 3), starting at zero::

    var(x)   = (1 - alpha) * var_previous(x) + alpha * (s_uncertainty(x) - s_previous_ema(x)) ** 2   (3)
    s_ucb(x) = s_ema(x) + c * var(x)                                                               (4)

and the `k` samples with the highest `s_ucb` are kept, so samples whose loss swings between observations are
revisited even when their mean loss is low.
"""

from __future__ import annotations

from .base import register_policy
from .uncertainty_ema import EmaScores


@register_policy
class UCB(EmaScores):
    """Keeps the `k` highest `s_ema + c * var` (Raju et al. 2021, Eq. 3-4).

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction of samples removed per epoch, in [0, 1).
        alpha (`float`, *optional*, defaults to 0.8): EMA weight of the newest loss, in (0, 1].
        c (`float`, *optional*, defaults to 1.0): weight of the variance in the score, >= 0 (the paper finds
            the result insensitive to it).
        class_balanced (`bool`, *optional*, defaults to `False`): rank within each class (see `EmaScores`).
    """

    name = "ucb"
    summary = "Highest EMA loss + c * running variance (Raju et al. 2021, Eq. 3-4)."

    def __init__(self, prune_ratio: float = 0.5, alpha: float = 0.8, c: float = 1.0, class_balanced: bool = False):
        super().__init__(prune_ratio, alpha, class_balanced)
        c = float(c)
        if not c >= 0.0:
            raise ValueError(f"c must be >= 0 (the weight of the variance in Eq. 4); got {c}.")
        self.c = c

    @property
    def params(self):
        return {**super().params, "c": self.c}

    def scores(self):
        self._check_ready()
        return self._tables["ema"] + self.c * self._tables["var"]
