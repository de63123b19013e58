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
from ..selection import group_by_label
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


CHUNK = 16384  # rows per step: [16384, 768] float64 is 100 MB
MEDIAN_BLOCK = 2**25  # values per block of the per-class median (256 MB of float64)


def class_centre_distances(store, labels: np.ndarray, centre: str = "median") -> np.ndarray:
    """Euclidean distance of every sample's features to the centre of its class, streamed in chunks.

    `centre="median"` is the coordinate-wise median of the class's features (the authors' `get_median`), read one
    class at a time (in column blocks for very large classes); `"mean"` needs one pass and `[C, d]` float64 sums.
    Samples without features or label get NaN.
    """
    feats, seen = store.features, store.seen
    n, d = feats.shape
    labels = np.asarray(labels)
    valid = seen & (labels >= 0)
    classes, order, starts = group_by_label(labels, np.flatnonzero(valid))
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
        for i in range(classes.size):
            members = order[starts[i] : starts[i + 1]]
            cols = max(1, MEDIAN_BLOCK // max(1, members.size))
            for c0 in range(0, d, cols):
                block = np.asarray(feats[members, c0 : c0 + cols], dtype=np.float64)
                centres[i, c0 : c0 + cols] = torch.from_numpy(np.median(block, axis=0))
    else:
        raise ValueError(f"centre must be 'median' or 'mean'; got {centre!r}.")
    dist = np.full(n, np.nan)
    for start in range(0, n, CHUNK):
        ok = valid[start : start + CHUNK]
        x = torch.from_numpy(np.asarray(feats[start : start + CHUNK][ok], dtype=np.float64))
        pos = torch.from_numpy(np.searchsorted(classes, labels[start : start + CHUNK][ok]))
        block = dist[start : start + CHUNK]
        block[ok] = (x - centres[pos]).norm(dim=1).numpy()
    return dist


def rank_band_scores(values: np.ndarray) -> np.ndarray:
    """How far each value's *rank* lies from the median rank, as a fraction of the count: keeping the lowest keeps
    the central rank band (the authors' `get_prune_idx`), whatever the skew of the values.

    With `m` finite values ranked `0 .. m-1` (ties: lower position first) and `a = 2 rank - (m - 1)`, the score is
    `(2|a| - [a > 0]) / (2m)`: symmetric in rank, and when an odd number is removed the odd one out is removed
    *below* the band. NaN stays NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    rows = np.flatnonzero(~np.isnan(values))
    m = rows.size
    if m:
        pos = np.empty(m, dtype=np.int64)
        pos[np.lexsort((rows, values[rows]))] = np.arange(m)
        a = 2 * pos - (m - 1)
        out[rows] = (2 * np.abs(a) - (a > 0)) / (2.0 * m)
    return out


@dataclass
class ModerateConfig(StrategyConfig):
    """Parameters of `moderate`.

    Args:
        features (`str`, `np.ndarray` or `FeatureStore`, *optional*): a feature folder or an `[n, d]` array; defaults
            to `<run>/features` next to the record's `<run>/scores`.
        centre (`str`, *optional*, defaults to `"median"`): class centre, the coordinate-wise `"median"` (the
            authors' code) or the `"mean"`.
        median (`str`, *optional*, defaults to `"global"`): rank the distances over the whole dataset (`"global"`,
            as the authors' code) or inside each class (`"class"`: every class keeps its own central band).
    """

    features: Any = field(default=None, metadata={"help": "feature folder (default: RUN_DIR/features)"})
    centre: str = field(default="median", metadata={"help": "class centre: median (authors' code) or mean"})
    median: str = field(default="global", metadata={"help": "rank distances over all samples (global) or per class"})

    def __post_init__(self):
        if self.centre not in ("mean", "median"):
            raise ValueError(f"centre must be 'median' or 'mean'; got {self.centre!r}.")
        if self.median not in ("global", "class"):
            raise ValueError(f"median must be 'global' or 'class'; got {self.median!r}.")


@register_strategy
class Moderate(Strategy):
    """Moderate-DS (Xia et al. 2023, Sec. 3): with `f(x)` the features and `c_y` the centre of class `y`,
    ``d(x) = || f(x) - c_y ||_2``, and the samples whose distance is closest to the *median* distance are kept. As in
    the authors' code (`selection.py`, `get_prune_idx`), "closest" is measured in rank: all distances are ranked
    together and the central rank band is kept, so removing the fraction `r` removes `r/2` of the samples below the
    median and `r/2` above it however skewed the distances (a band of values, `|d - median|`, would cut mostly the
    long tail). The score is the distance of `d(x)`'s rank from the median rank (`rank_band_scores`); keeps the
    **lowest**. The class centre is the coordinate-wise median of the class's features, as in their `get_median`.

    Deliberate differences from the authors' code: the kept count is `n - floor(r n)` (theirs is `hi - lo` with
    `lo = round(n (1 - s) / 2)`, `hi = round(n (1 + s) / 2)` rounded half to even, `s = 1 - r`, which can differ by
    one); when an odd number is removed the extra one is removed below the band; ties in distance go to the lower
    sample id (their `argsort` is unstable); samples without features or label are removed first.

    Needs per-sample features (`hf_prune.features.extract_features`) and labels.

    Non-finite values: the score comes from features (a pass of its own), not from the record's signals, so the
    record's epochs with NaN or infinite loss or logits do not enter it. A sample with no score (no features or
    label) that the record saw with non-finite values is kept, not removed first (`Strategy.select`).

    Parameters: `ModerateConfig` (`features`, `centre`, `median`).
    """

    name = "moderate"
    summary = "Moderate-DS (Xia et al. 2023): distance to class centre in feature space; keeps the central rank band."
    title = "Moderate coreset (Moderate-DS)"
    citation = MODERATE
    keep = "low"
    requires = ()
    config_class = ModerateConfig

    def compute(self, record: ScoreRecord) -> Scores:
        labels = record.labels
        if labels is None:
            raise ValueError("`moderate` needs class labels; the record has none (pass `labels=` to from_arrays).")
        labels = np.asarray(labels)
        store = resolve_features(self.config.features, record, self.name)
        dist = class_centre_distances(store, labels, self.config.centre)
        provenance = {"features": store.describe(), "centre": self.config.centre}
        if self.config.median == "global":
            return Scores(rank_band_scores(dist), provenance)
        out = np.full_like(dist, np.nan)
        classes, order, starts = group_by_label(labels, np.flatnonzero(~np.isnan(dist)))
        for i in range(classes.size):
            members = order[starts[i] : starts[i + 1]]
            out[members] = rank_band_scores(dist[members])
        return Scores(out, provenance)
