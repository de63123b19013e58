"""Moderate coreset: Xia, Liu, Yu, Shen, Han, Liu, "Moderate Coreset: A Universal Method of Data Selection for
Real-world Data-efficient Deep Learning", ICLR 2023."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..citations import MODERATE
from ..features import resolve_features
from ..record import ScoreRecord
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


CHUNK = 16384  # rows per step: [16384, 768] float64 is 100 MB


def class_centre_distances(store, labels: np.ndarray, centre: str = "mean") -> np.ndarray:
    """Euclidean distance of every sample's features to the centre of its class, streamed in chunks.

    `centre="mean"` needs one pass and `[C, d]` float64 sums; `"median"` (the coordinate-wise median, as in the
    authors' code) reads one class at a time. Samples without features or label get NaN.
    """
    feats, seen = store.features, store.seen
    n, d = feats.shape
    labels = np.asarray(labels)
    valid = seen & (labels >= 0)
    classes = np.unique(labels[valid])
    centres = torch.zeros(classes.size, d, dtype=torch.float64)
    if centre == "mean":
        counts = torch.zeros(classes.size, dtype=torch.float64)
        for start in range(0, n, CHUNK):
            ok = valid[start : start + CHUNK]
            x = torch.from_numpy(np.asarray(feats[start : start + CHUNK][ok], dtype=np.float64))
            pos = torch.from_numpy(np.searchsorted(classes, labels[start : start + CHUNK][ok]))
            centres.index_add_(0, pos, x)
            counts += torch.bincount(pos, minlength=classes.size).double()
        centres /= counts.clamp(min=1).unsqueeze(1)
    elif centre == "median":
        for i, c in enumerate(classes):
            members = np.flatnonzero(valid & (labels == c))
            centres[i] = torch.from_numpy(np.median(np.asarray(feats[members], dtype=np.float64), axis=0))
    else:
        raise ValueError(f"centre must be 'mean' or 'median'; got {centre!r}.")
    dist = np.full(n, np.nan)
    for start in range(0, n, CHUNK):
        ok = valid[start : start + CHUNK]
        x = torch.from_numpy(np.asarray(feats[start : start + CHUNK][ok], dtype=np.float64))
        pos = torch.from_numpy(np.searchsorted(classes, labels[start : start + CHUNK][ok]))
        block = dist[start : start + CHUNK]
        block[ok] = (x - centres[pos]).norm(dim=1).numpy()
    return dist


@dataclass
class ModerateConfig(StrategyConfig):
    """Parameters of `moderate`.

    Args:
        features (`str`, `np.ndarray` or `FeatureStore`, *optional*): a feature folder or an `[n, d]` array; defaults
            to `<run>/features` next to the record's `<run>/scores`.
        centre (`str`, *optional*, defaults to `"mean"`): class centre, `"mean"` (the paper's) or `"median"`
            (coordinate-wise, the authors' code).
        median (`str`, *optional*, defaults to `"global"`): the median of all distances (`"global"`, as the paper)
            or of each class's own distances (`"class"`).
    """

    features: Any = field(default=None, metadata={"help": "feature folder (default: RUN_DIR/features)"})
    centre: str = field(default="mean", metadata={"help": "class centre: mean or median"})
    median: str = field(default="global", metadata={"help": "median of all distances (global) or per class"})

    def __post_init__(self):
        if self.centre not in ("mean", "median"):
            raise ValueError(f"centre must be 'mean' or 'median'; got {self.centre!r}.")
        if self.median not in ("global", "class"):
            raise ValueError(f"median must be 'global' or 'class'; got {self.median!r}.")


@register_strategy
class Moderate(Strategy):
    """Moderate-DS (Xia et al. 2023, Sec. 3): with `f(x)` the features and `c_y` the centre of class `y`,
    ``d(x) = || f(x) - c_y ||_2``; the samples whose distance is closest to the median distance are kept:
    score ``s(x) = | d(x) - median_x' d(x') |``, keeps the **lowest**. Removing the fraction `r` thus removes about
    `r/2` of the closest and `r/2` of the farthest samples, the band the authors' code cuts.

    Needs per-sample features (`hf_prune.features.extract_features`) and labels.

    Parameters: `ModerateConfig` (`features`, `centre`, `median`).
    """

    name = "moderate"
    summary = "Moderate-DS (Xia et al. 2023): distance to class centre in feature space; keeps those near the median."
    title = "Moderate coreset (Moderate-DS)"
    citation = MODERATE
    keep = "low"
    requires = ()
    config_class = ModerateConfig

    def compute(self, record: ScoreRecord) -> Scores:
        labels = record.labels
        if labels is None:
            raise ValueError("`moderate` needs class labels; the record has none (pass `labels=` to from_arrays).")
        store = resolve_features(self.config.features, record, self.name)
        dist = class_centre_distances(store, np.asarray(labels), self.config.centre)
        provenance = {"features": store.describe()}
        if self.config.median == "global":
            return Scores(np.abs(dist - np.nanmedian(dist)), provenance)
        out = np.full_like(dist, np.nan)
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            if np.isfinite(dist[members]).any():
                out[members] = np.abs(dist[members] - np.nanmedian(dist[members]))
        return Scores(out, provenance)
