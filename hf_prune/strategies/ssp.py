"""Self-supervised prototypes: Sorscher, Geirhos, Shekhar, Ganguli, Morcos, "Beyond neural scaling laws: beating
power law scaling via data pruning", NeurIPS 2022, Sec. 6."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..citations import SSP
from ..features import resolve_features
from ..kmeans import kmeans, nearest_centre
from ..record import ScoreRecord
from ..selection import group_by_label
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


@dataclass
class SSPConfig(StrategyConfig):
    """Parameters of `ssp`.

    Args:
        features (`str`, `np.ndarray` or `FeatureStore`, *optional*): a feature folder or an `[n, d]` array, ideally
            from a self-supervised `feature_model`; defaults to `<run>/features` next to the record.
        num_clusters (`int`, *optional*): `k`; defaults to the number of classes in the record (or 10 without labels).
        normalize (`bool`, *optional*, defaults to `True`): cosine geometry (spherical k-means).
        per_class (`bool`, *optional*, defaults to `False`): cluster each class separately into `num_clusters`.
        num_iter (`int`, *optional*, defaults to 20): Lloyd iterations of k-means.
        max_points_per_centre (`int`, *optional*, defaults to 256): k-means runs on a sample of at most `k` times this
            many rows (faiss's default), then assigns every row.
        seed (`int`, *optional*, defaults to 0): k-means seed.
    """

    features: Any = field(default=None, metadata={"help": "feature folder (default: RUN_DIR/features)"})
    num_clusters: int | None = field(default=None, metadata={"help": "k (default: the number of classes)"})
    normalize: bool = field(default=True, metadata={"help": "cosine geometry (spherical k-means)"})
    per_class: bool = field(default=False, metadata={"help": "cluster each class separately"})
    num_iter: int = field(default=20, metadata={"help": "Lloyd iterations of k-means"})
    max_points_per_centre: int = field(default=256, metadata={"help": "k-means sample: at most k x this many rows"})
    seed: int = field(default=0, metadata={"help": "k-means seed"})

    def __post_init__(self):
        self.num_clusters = None if self.num_clusters is None else int(self.num_clusters)
        if self.num_clusters is not None and self.num_clusters < 1:
            raise ValueError(f"num_clusters must be >= 1; got {self.num_clusters}.")
        self.normalize, self.per_class = bool(self.normalize), bool(self.per_class)
        self.num_iter, self.seed = int(self.num_iter), int(self.seed)
        self.max_points_per_centre = int(self.max_points_per_centre)


@register_strategy
class SelfSupervisedPrototypes(Strategy):
    """Self-Supervised Prototypes (Sorscher et al. 2022, Sec. 6): k-means with `k` clusters on (self-supervised)
    embeddings; a sample's difficulty is the distance to its nearest centroid,
    ``s(x) = min_j || f(x) - mu_j ||`` (cosine geometry by default: rows and centroids L2-normalised, so
    ``s = sqrt(2 - 2 cos)``). Keeps the **highest** (farthest, hardest), the paper's rule for large datasets.

    Clustering is k-means in torch (`hf_prune.kmeans`: Lloyd on a sample of at most 256 rows per centre, as faiss
    does, then every row assigned), reading the on-disk features chunk by chunk.

    Fidelity: given the centroids, the score is exactly the paper's distance to the nearest one (tested); the
    centroids come from this k-means (faiss's recipe: Lloyd on a sample after k-means++) where Sorscher et al. ran
    faiss k-means on SwAV embeddings, so the clusters agree only up to k-means' own variability. No pruning code of
    theirs is public.

    Non-finite values: the score comes from features (a pass of its own), not from the record's signals, so the
    record's epochs with NaN or infinite loss or logits do not enter it. A sample with no score (no features) that
    the record saw with non-finite values is kept, not removed first (`Strategy.select`).

    Parameters: `SSPConfig` (`features`, `num_clusters`, `normalize`, `per_class`, `num_iter`,
    `max_points_per_centre`, `seed`).
    """

    name = "ssp"
    summary = "Self-supervised prototypes (Sorscher et al. 2022): k-means distance to nearest centroid; keeps far."
    title = "Self-supervised prototypes (SSP)"
    citation = SSP
    keep = "high"
    requires = ()
    config_class = SSPConfig

    def compute(self, record: ScoreRecord) -> Scores:
        store = resolve_features(self.config.features, record, self.name)
        labels = record.labels
        c = self.config
        k = c.num_clusters or (int(np.unique(labels[labels >= 0]).size) if labels is not None else 10)
        groups = [np.flatnonzero(store.seen)]
        if c.per_class:
            if labels is None:
                raise ValueError("`ssp` with per_class=True needs class labels; the record has none.")
            labels = np.asarray(labels)
            classes, order, starts = group_by_label(labels, np.flatnonzero(store.seen & (labels >= 0)))
            groups = [order[starts[i] : starts[i + 1]] for i in range(classes.size)]
        out = np.full(record.num_samples, np.nan)
        for rows in groups:
            if rows.size == 0:
                continue
            centres = kmeans(
                store.features, min(k, rows.size), num_iter=c.num_iter, max_points_per_centre=c.max_points_per_centre,
                normalize=c.normalize, seed=c.seed, rows=rows,
            )  # fmt: skip
            if rows.size == store.num_samples:
                _, dist = nearest_centre(store.features, centres, normalize=c.normalize)
            else:
                _, dist = nearest_centre(_Rows(store.features, rows), centres, normalize=c.normalize)
            out[rows] = dist
        return Scores(out, {"features": store.describe(), "num_clusters_used": k})


class _Rows:
    """A row subset of a (memory-mapped) array that reads lazily, slice by slice."""

    def __init__(self, array, rows: np.ndarray):
        self.array, self.rows = array, rows
        self.shape = (rows.size, array.shape[1])

    def __getitem__(self, item):
        return self.array[self.rows[item]]
