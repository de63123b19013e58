"""Self-supervised prototypes: Sorscher, Geirhos, Shekhar, Ganguli, Morcos, "Beyond neural scaling laws: beating
power law scaling via data pruning", NeurIPS 2022, Sec. 6."""

from __future__ import annotations

import numpy as np

from ..features import describe_features, resolve_features
from ..kmeans import minibatch_kmeans, nearest_centre
from ..record import ScoreRecord
from .base import Strategy, register_strategy


@register_strategy
class SelfSupervisedPrototypes(Strategy):
    """Self-Supervised Prototypes (Sorscher et al. 2022, Sec. 6): k-means with `k` clusters on (self-supervised)
    embeddings; a sample's difficulty is the distance to its nearest centroid,
    ``s(x) = min_j || f(x) - mu_j ||`` (cosine geometry by default: rows and centroids L2-normalised, so
    ``s = sqrt(2 - 2 cos)``). Keeps the **highest** (farthest, hardest), the paper's rule for large datasets.

    Clustering is mini-batch k-means in torch (`hf_prune.kmeans`) over the on-disk features, so ImageNet-size
    features never need float32 in RAM.

    Args:
        features (`str`, `np.ndarray` or `FeatureStore`, *optional*): a feature folder or an `[n, d]` array, ideally
            from a self-supervised `feature_model`; defaults to `<run>/features` next to the record.
        num_clusters (`int`, *optional*): `k`; defaults to the number of classes in the record (or 10 without labels).
        normalize (`bool`, *optional*, defaults to `True`): cosine geometry (spherical k-means).
        per_class (`bool`, *optional*, defaults to `False`): cluster each class separately into `num_clusters`.
        batch_size (`int`, *optional*, defaults to 4096): k-means mini-batch size.
        max_iter (`int`, *optional*, defaults to 100): k-means steps.
        seed (`int`, *optional*, defaults to 0): k-means seed.
    """

    name = "ssp"
    summary = "Self-supervised prototypes (Sorscher et al. 2022): k-means distance to nearest centroid; keeps far."
    keep = "high"
    requires = ()

    def __init__(
        self,
        features=None,
        num_clusters: int | None = None,
        normalize: bool = True,
        per_class: bool = False,
        batch_size: int = 4096,
        max_iter: int = 100,
        seed: int = 0,
    ):
        super().__init__(
            features=describe_features(features),
            num_clusters=None if num_clusters is None else int(num_clusters),
            normalize=bool(normalize),
            per_class=bool(per_class),
            batch_size=int(batch_size),
            max_iter=int(max_iter),
            seed=int(seed),
        )
        self._features = features
        self._used = None

    def score(self, record: ScoreRecord) -> np.ndarray:
        store = resolve_features(self._features, record, self.name)
        self._used = store
        labels = record.labels
        p = self.params
        k = p["num_clusters"] or (int(np.unique(labels[labels >= 0]).size) if labels is not None else 10)
        groups = [np.flatnonzero(store.seen)]
        if p["per_class"]:
            if labels is None:
                raise ValueError("`ssp` with per_class=True needs class labels; the record has none.")
            groups = [np.flatnonzero(store.seen & (labels == c)) for c in np.unique(labels[labels >= 0])]
        self._k = k
        out = np.full(record.num_samples, np.nan)
        for rows in groups:
            if rows.size == 0:
                continue
            centres = minibatch_kmeans(
                store.features, min(k, rows.size), batch_size=p["batch_size"], max_iter=p["max_iter"],
                normalize=p["normalize"], seed=p["seed"], rows=rows,
            )  # fmt: skip
            if rows.size == store.num_samples:
                _, dist = nearest_centre(store.features, centres, normalize=p["normalize"])
            else:
                _, dist = nearest_centre(_Rows(store.features, rows), centres, normalize=p["normalize"])
            out[rows] = dist
        return out

    def provenance(self) -> dict:
        if self._used is None:
            return {}
        return {"features": self._used.describe(), "num_clusters_used": self._k}


class _Rows:
    """A row subset of a (memory-mapped) array that reads lazily, slice by slice."""

    def __init__(self, array, rows: np.ndarray):
        self.array, self.rows = array, rows
        self.shape = (rows.size, array.shape[1])

    def __getitem__(self, item):
        return self.array[self.rows[item]]
