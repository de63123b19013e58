"""Dataset cartography: Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets with Training
Dynamics", EMNLP 2020, Sec. 2."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..citations import CARTOGRAPHY
from ..record import ScoreRecord
from ..stats import data_map_coordinates
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


REGIONS = ("ambiguous", "easy", "hard")


@dataclass
class CartographyConfig(StrategyConfig):
    """Parameters of `cartography`.

    Args:
        region (`str`, *optional*, defaults to `"ambiguous"`): which region to keep: `"ambiguous"`, `"easy"` or
            `"hard"`.
        epochs (`int`, *optional*): use the first `epochs` epochs (the paper maps the early epochs); defaults to all.
    """

    region: str = field(default="ambiguous", metadata={"help": "region kept: ambiguous, easy or hard"})
    epochs: int | None = field(default=None, metadata={"help": "use the first N epochs (default: all)"})

    def __post_init__(self):
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}; got {self.region!r}.")
        self.epochs = None if self.epochs is None else int(self.epochs)


@register_strategy
class Cartography(Strategy):
    """Dataset cartography (Swayamdipta et al. 2020): each sample's *confidence* (mean `p_target` over epochs,
    Eq. 1), *variability* (its std, Eq. 2) and *correctness* (fraction of epochs right) place it in a region:

    * `"ambiguous"` (default, the paper's best subset): score = variability, keeps the **highest**;
    * `"easy"` (easy-to-learn): score = confidence, keeps the **highest**;
    * `"hard"` (hard-to-learn): score = confidence, keeps the **lowest**.

    Fidelity to the authors' code (`allenai/cartography`, `compute_train_dy_metrics`): the same confidence (mean) and
    variability (`np.std`, ddof = 0) of the gold-label probability over the recorded epochs. Deliberate difference:
    epochs that did not see a sample are left out of its mean and std.

    Non-finite values: epochs in which the sample's loss or logits were NaN or infinite are left out of its
    confidence, variability and correctness, as unseen epochs are. A sample with no finite epoch has no
    coordinates; it is kept, not removed first, whatever the region (`Strategy.select`).

    Parameters: `CartographyConfig` (`region`, `epochs`).
    """

    name = "cartography"
    summary = "Dataset cartography (Swayamdipta et al. 2020): keep ambiguous (high variability) by default."
    title = "Dataset cartography"
    citation = CARTOGRAPHY
    keep = "high"
    requires = ("p_target",)
    config_class = CartographyConfig

    def direction(self) -> str:
        return "low" if self.config.region == "hard" else "high"

    def compute(self, record: ScoreRecord) -> Scores:
        coords = data_map_coordinates(record, self.config.epochs)
        return Scores(coords["variability"] if self.config.region == "ambiguous" else coords["confidence"])
