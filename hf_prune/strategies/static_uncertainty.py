"""Static (single-window) uncertainty: Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets
with Training Dynamics", EMNLP 2020, as compared against in Dyn-Unc's Table 7 ("[36] (only 1)")."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..citations import CARTOGRAPHY
from ..record import ScoreRecord
from ..stats import nan_std, resolve_epoch
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


@dataclass
class StaticUncertaintyConfig(StrategyConfig):
    """Parameters of `static_uncertainty`.

    Args:
        window (`int`, *optional*, defaults to 5): number of epochs `J` in the window (at least 2).
        start (`int`, *optional*, defaults to 0): first epoch of the window.
        signal (`str`, *optional*, defaults to `"p_target"`): the recorded signal.
        ddof (`int`, *optional*, defaults to 1): delta degrees of freedom of the std (Swayamdipta's code uses 0).
    """

    window: int = field(default=5, metadata={"help": "epochs in the window (at least 2)"})
    start: int = field(default=0, metadata={"help": "first epoch of the window"})
    signal: str = field(default="p_target", metadata={"help": "the recorded signal"})
    ddof: int = field(default=1, metadata={"help": "delta degrees of freedom of the std"})

    def __post_init__(self):
        self.window, self.start, self.ddof = int(self.window), int(self.start), int(self.ddof)
        if self.window < 2:
            raise ValueError(f"window must be >= 2 (a std needs two epochs); got {self.window}.")


@register_strategy
class StaticUncertainty(Strategy):
    """Static uncertainty (Swayamdipta et al. 2020): the std of the target probability over *one* window of the
    first epochs, ``U(x) = std_{k=start..start+J-1} P_k(x)`` (ddof = 1, i.e. Dyn-Unc's Eq. 2 for the single window
    `k = start`). Keeps the **highest** (most variable).

    Dyn-Unc's Table 7 compares with this method taking "the first five or six epochs"; hence `window=5`. With a
    complete record the ranking does not depend on `ddof` (every sample has the same number of epochs).

    Fidelity: no authors' code for this baseline exists (Dyn-Unc's paper describes it in one sentence); tested against
    the definition above, and equal to the first window of `dyn_unc`.

    Non-finite values: epochs in which the sample's loss or logits were NaN or infinite are left out of the
    window's std, as unseen epochs are; with fewer than `ddof + 1` finite epochs the score is undefined and the
    sample is kept, not removed first (`Strategy.select`).

    Parameters: `StaticUncertaintyConfig` (`window`, `start`, `signal`, `ddof`).
    """

    name = "static_uncertainty"
    summary = "Static uncertainty (Swayamdipta et al. 2020): std of p_target over the first epochs; keeps high."
    title = "Static uncertainty"
    citation = CARTOGRAPHY
    keep = "high"
    requires = ("p_target",)
    config_class = StaticUncertaintyConfig

    def required_signals(self) -> tuple[str, ...]:
        return (self.config.signal,)

    def compute(self, record: ScoreRecord) -> Scores:
        c = self.config
        resolve_epoch(record, c.start, "start")
        if c.start + c.window > record.num_epochs:
            raise ValueError(
                f"The window epochs {c.start}...{c.start + c.window - 1} go beyond the record's {record.num_epochs} "
                "epochs; use a smaller `window` or `start`."
            )
        return Scores(nan_std(record, c.signal, c.start, c.start + c.window, ddof=c.ddof))
