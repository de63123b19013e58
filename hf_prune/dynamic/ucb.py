"""Upper-confidence-bound selection (Raju et al. 2021, Sec. 3.2.3).

Alongside the EMA of the loss (Eq. 2) each sample keeps a running variance (Eq. 3), starting at zero::

    var(x)   = (1 - alpha) * var_previous(x) + alpha * (s_uncertainty(x) - s_previous_ema(x)) ** 2   (3)
    s_ucb(x) = s_ema(x) + c * var(x)                                                               (4)

and the `k` samples with the highest `s_ucb` are kept, so samples whose loss swings between observations are
revisited even when their mean loss is low.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import register_policy
from .uncertainty_ema import EmaConfig, EmaScores


@dataclass
class UCBConfig(EmaConfig):
    """Parameters of `ucb`.

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction of samples removed per epoch, in [0, 1).
        alpha (`float`, *optional*, defaults to 0.8): EMA weight of the newest loss, in (0, 1].
        class_balanced (`bool`, *optional*, defaults to `False`): rank within each class (see `EmaScores`).
        c (`float`, *optional*, defaults to 1.0): weight of the variance in the score, >= 0 (the paper finds
            the result insensitive to it).

    Example:

    ```python
    >>> from hf_prune.dynamic import get_policy
    >>> from hf_prune.dynamic.ucb import UCBConfig
    >>> get_policy("ucb", config=UCBConfig(prune_ratio=0.5, c=2.0)).params
    {'prune_ratio': 0.5, 'alpha': 0.8, 'class_balanced': False, 'c': 2.0}
    ```
    """

    c: float = field(default=1.0, metadata={"help": "weight c of the running variance (Eq. 4), >= 0"})

    def __post_init__(self):
        super().__post_init__()
        self.c = float(self.c)
        if not self.c >= 0.0:
            raise ValueError(f"c must be >= 0 (the weight of the variance in Eq. 4); got {self.c}.")


@register_policy
class UCB(EmaScores):
    """Keeps the `k` highest `s_ema + c * var` (Raju et al. 2021, Eq. 3-4).

    Parameters: `UCBConfig` (`prune_ratio`, `alpha`, `class_balanced`, `c`).
    """

    name = "ucb"
    summary = "Highest EMA loss + c * running variance (Raju et al. 2021, Eq. 3-4)."
    config_class = UCBConfig

    def scores(self):
        self._check_ready()
        return self._tables["ema"] + self.config.c * self._tables["var"]
