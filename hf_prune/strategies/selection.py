"""Turning a score per sample into the kept ids: ratio, direction, ties, NaNs and class balance.

The rules, shared by every strategy:

* `prune_ratio` is the fraction *removed*; `floor(prune_ratio * n)` samples go (so `0.25` of ImageNet-1K's
  1,281,167 keeps 960,876).
* `keep="high"` keeps the highest scores, `keep="low"` the lowest.
* Ties are broken by sample id: among equal scores the lower id is kept. The same inputs always give the same
  ids, on every machine.
* A NaN score (a sample the method could not score, e.g. never seen) ranks below every real score, so such
  samples are removed first, whatever the direction.
* `class_balanced=True` applies the same rule inside every class, removing `floor(prune_ratio * n_c)` of
  class `c`, so each class keeps the same fraction (up to rounding).
"""

from __future__ import annotations

import math

import numpy as np


def check_prune_ratio(prune_ratio: float) -> float:
    """Returns `prune_ratio` as a float, or raises a clear error if it is not in [0, 1)."""
    try:
        ratio = float(prune_ratio)
    except (TypeError, ValueError):
        raise TypeError(f"prune_ratio must be a number in [0, 1); got {prune_ratio!r}.") from None
    if not (0.0 <= ratio < 1.0) or math.isnan(ratio):
        raise ValueError(
            f"prune_ratio must be in [0, 1): it is the fraction of samples *removed* (0.25 keeps 75%). Got {ratio}."
        )
    return ratio


def num_removed(n: int, prune_ratio: float) -> int:
    """`floor(prune_ratio * n)`, robust to float error (0.3 * 10 is 2.9999999999999996)."""
    return int(math.floor(prune_ratio * n + 1e-9))


def rank_for_keeping(scores: np.ndarray, keep: str = "high") -> np.ndarray:
    """Sample positions ordered from first-kept to first-removed (deterministic, NaN last)."""
    if keep not in ("high", "low"):
        raise ValueError(f"keep must be 'high' or 'low'; got {keep!r}.")
    scores = np.asarray(scores, dtype=np.float64)
    key = -scores if keep == "high" else scores.copy()
    key[np.isnan(key)] = np.inf
    ids = np.arange(scores.shape[0])
    # lexsort sorts by the last key first: by key ascending, then by id ascending.
    return np.lexsort((ids, key))


def select_kept_ids(
    scores: np.ndarray,
    prune_ratio: float,
    keep: str = "high",
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
) -> np.ndarray:
    """Returns the sorted int64 ids kept when removing `prune_ratio` of the samples by `scores`.

    Args:
        scores (`np.ndarray` `[n]`): one score per sample; NaN is removed first.
        prune_ratio (`float`): fraction removed, in [0, 1).
        keep (`str`, *optional*, defaults to `"high"`): keep the `"high"` or the `"low"` scores.
        labels (`np.ndarray` `[n]`, *optional*): class labels, required when `class_balanced=True`.
        class_balanced (`bool`, *optional*, defaults to `False`): remove the same fraction from every class.
    """
    ratio = check_prune_ratio(prune_ratio)
    scores = np.asarray(scores)
    n = scores.shape[0]
    if not class_balanced:
        order = rank_for_keeping(scores, keep)
        kept = order[: n - num_removed(n, ratio)]
        return np.sort(kept).astype(np.int64)
    if labels is None:
        raise ValueError(
            "class_balanced=True needs labels, but none were given. Records from `PruningTrainer` store them; for "
            "`ScoreRecord.from_arrays` pass `labels=`."
        )
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}; expected ({n},), one per score.")
    kept = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = rank_for_keeping(scores[members], keep)
        kept.append(members[order[: members.size - num_removed(members.size, ratio)]])
    return np.sort(np.concatenate(kept)).astype(np.int64)
