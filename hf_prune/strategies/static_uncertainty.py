"""Static (single-window) uncertainty: Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets
with Training Dynamics", EMNLP 2020, as compared against in Dyn-Unc's Table 7 ("[36] (only 1)")."""

from __future__ import annotations

import numpy as np

from ..record import ScoreRecord
from ._signals import nan_std, resolve_epoch
from .base import Strategy, register_strategy


@register_strategy
class StaticUncertainty(Strategy):
    """Static uncertainty (Swayamdipta et al. 2020): the std of the target probability over *one* window of the
    first epochs, ``U(x) = std_{k=start..start+J-1} P_k(x)`` (ddof = 1, i.e. Dyn-Unc's Eq. 2 for the single window
    `k = start`). Keeps the **highest** (most variable).

    Dyn-Unc's Table 7 compares with this method taking "the first five or six epochs"; hence `window=5`. With a
    complete record the ranking does not depend on `ddof` (every sample has the same number of epochs).

    Args:
        window (`int`, *optional*, defaults to 5): number of epochs `J` in the window (at least 2).
        start (`int`, *optional*, defaults to 0): first epoch of the window.
        signal (`str`, *optional*, defaults to `"p_target"`): the recorded signal.
        ddof (`int`, *optional*, defaults to 1): delta degrees of freedom of the std (Swayamdipta's code uses 0).
    """

    name = "static_uncertainty"
    summary = "Static uncertainty (Swayamdipta et al. 2020): std of p_target over the first epochs; keeps high."
    keep = "high"
    requires = ("p_target",)

    def __init__(self, window: int = 5, start: int = 0, signal: str = "p_target", ddof: int = 1):
        if int(window) < 2:
            raise ValueError(f"window must be >= 2 (a std needs two epochs); got {window}.")
        super().__init__(window=int(window), start=int(start), signal=signal, ddof=int(ddof))
        self.requires = (signal,)

    def score(self, record: ScoreRecord) -> np.ndarray:
        start, window = self.params["start"], self.params["window"]
        resolve_epoch(record, start, "start")
        if start + window > record.num_epochs:
            raise ValueError(
                f"The window epochs {start}...{start + window - 1} go beyond the record's {record.num_epochs} epochs; "
                "use a smaller `window` or `start`."
            )
        return nan_std(record, self.params["signal"], start, start + window, ddof=self.params["ddof"])
