"""Dataset cartography: Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets with Training
Dynamics", EMNLP 2020, Sec. 2."""

from __future__ import annotations

import numpy as np

from ..record import ScoreRecord
from ._signals import epoch_moments, nan_mean
from .base import Strategy, register_strategy


REGIONS = ("ambiguous", "easy", "hard")


def cartography_map(record: ScoreRecord, epochs: int | None = None, signal: str = "p_target") -> dict[str, np.ndarray]:
    """The three coordinates of a data map over the first `epochs` epochs (all by default), NaN-aware:

    * `confidence` = mean over epochs of `p_target` (Eq. 1),
    * `variability` = its std, ddof = 0 (Eq. 2),
    * `correctness` = fraction of epochs classified correctly (needs the `correct` signal; NaN if not recorded).
    """
    stop = record.num_epochs if epochs is None else min(int(epochs), record.num_epochs)
    count, mean, m2 = epoch_moments(record, signal, 0, stop)
    with np.errstate(invalid="ignore", divide="ignore"):
        variability = np.sqrt(np.maximum(m2, 0.0) / count)
    mean[count == 0] = np.nan
    variability[count == 0] = np.nan
    if record.has_signal("correct"):
        correctness = nan_mean(record, "correct", 0, stop)
    else:
        correctness = np.full(record.num_samples, np.nan)
    return {"confidence": mean, "variability": variability, "correctness": correctness}


@register_strategy
class Cartography(Strategy):
    """Dataset cartography (Swayamdipta et al. 2020): each sample's *confidence* (mean `p_target` over epochs,
    Eq. 1), *variability* (its std, Eq. 2) and *correctness* (fraction of epochs right) place it in a region:

    * `"ambiguous"` (default, the paper's best subset): score = variability, keeps the **highest**;
    * `"easy"` (easy-to-learn): score = confidence, keeps the **highest**;
    * `"hard"` (hard-to-learn): score = confidence, keeps the **lowest**.

    Args:
        region (`str`, *optional*, defaults to `"ambiguous"`): which region to keep.
        epochs (`int`, *optional*): use the first `epochs` epochs (the paper maps the early epochs); defaults to all.
    """

    name = "cartography"
    summary = "Dataset cartography (Swayamdipta et al. 2020): keep ambiguous (high variability) by default."
    keep = "high"
    requires = ("p_target",)

    def __init__(self, region: str = "ambiguous", epochs: int | None = None):
        if region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}; got {region!r}.")
        super().__init__(region=region, epochs=None if epochs is None else int(epochs))
        self.keep = "low" if region == "hard" else "high"

    def score(self, record: ScoreRecord) -> np.ndarray:
        m = cartography_map(record, self.params["epochs"])
        return m["variability"] if self.params["region"] == "ambiguous" else m["confidence"]
