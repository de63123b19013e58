"""Turning a score per sample into the kept ids: ratio, direction, ties, NaNs and class balance.

The rules, shared by every strategy:

* `prune_ratio` is the fraction *removed*; `floor(prune_ratio * n)` samples go (so `0.25` of ImageNet-1K's
  1,281,167 keeps 960,876).
* `keep="high"` keeps the highest scores, `keep="low"` the lowest.
* Ties are broken by sample id: among equal scores the lower id is kept. The same inputs always give the same
  ids, on every machine.
* A NaN score (a sample the method could not score, e.g. never seen) ranks below every real score, so such
  samples are removed first, whatever the direction. Infinite scores are real scores (`forgetting` gives
  never-learned samples `+inf`) and rank at their end, ahead of NaN.
* `class_balanced=True` applies the same rule inside every class, removing `floor(prune_ratio * n_c)` of
  class `c`, so each class keeps the same fraction (up to rounding).
* `selection="ccs"` replaces "keep the top of the ranking" by coverage-centric stratified sampling
  (`ccs_kept_ids`, Zheng et al. 2023) over the same scores; the kept count is the same.
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
    nan = np.isnan(scores)
    key = -scores if keep == "high" else scores.copy()
    key[nan] = 0.0
    ids = np.arange(scores.shape[0])
    # lexsort sorts by the last key first: real scores before NaN, then by key ascending, then by id ascending.
    return np.lexsort((ids, key, nan))


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


def ccs_kept_ids(
    scores: np.ndarray,
    prune_ratio: float,
    keep: str = "high",
    hard_cutoff: float = 0.0,
    num_strata: int = 50,
    seed: int = 0,
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
) -> np.ndarray:
    """Coverage-centric coreset selection (CCS; Zheng, Liu, Li, Prakash, "Coverage-centric Coreset Selection for
    High Pruning Rates", ICLR 2023, Algorithm 1) over any score.

    The *hard* end of the scores is the end the method would keep (`keep`): for `keep="high"` the highest scores
    are the hardest. Steps, with budget `m = n - floor(prune_ratio * n)`:

    1. Remove the `floor(hard_cutoff * n)` hardest samples (likely mislabeled) and every NaN score.
    2. Split the remaining score range into `num_strata` strata of equal width.
    3. Repeatedly take the stratum with the fewest samples (ties: lower stratum index), keep
       `min(|B|, floor(m / #strata left))` samples drawn uniformly at random from it (seeded), drop it from the
       pool and reduce `m` by what was kept.

    The number kept is exactly `n - floor(prune_ratio * n)`, as for every selection in this module.

    Args:
        scores (`np.ndarray` `[n]`): one score per sample.
        prune_ratio (`float`): fraction removed, in [0, 1).
        keep (`str`, *optional*, defaults to `"high"`): which end of the scores is the hard end.
        hard_cutoff (`float`, *optional*, defaults to 0.0): fraction `beta` of the hardest samples removed first;
            must not exceed `prune_ratio`.
        num_strata (`int`, *optional*, defaults to 50): number of strata `k` (the paper uses 50).
        seed (`int`, *optional*, defaults to 0): seed of the sampling inside strata.
        labels (`np.ndarray` `[n]`, *optional*): class labels, required when `class_balanced=True`.
        class_balanced (`bool`, *optional*, defaults to `False`): run CCS inside every class with its own budget.

    Returns:
        Sorted int64 kept ids.
    """
    ratio = check_prune_ratio(prune_ratio)
    if keep not in ("high", "low"):
        raise ValueError(f"keep must be 'high' or 'low'; got {keep!r}.")
    beta = float(hard_cutoff)
    if not 0.0 <= beta <= ratio:
        raise ValueError(
            f"hard_cutoff must be in [0, prune_ratio={ratio}]: the hardest fraction removed is part of the pruned "
            f"fraction. Got {hard_cutoff}."
        )
    if int(num_strata) < 1:
        raise ValueError(f"num_strata must be >= 1; got {num_strata}.")
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    rng = np.random.default_rng(seed)
    if not class_balanced:
        return np.sort(_ccs_group(np.arange(n), scores, ratio, keep, beta, int(num_strata), rng)).astype(np.int64)
    if labels is None:
        raise ValueError("class_balanced=True needs labels, but none were given.")
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}; expected ({n},), one per score.")
    kept = [
        _ccs_group(np.flatnonzero(labels == c), scores, ratio, keep, beta, int(num_strata), rng)
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(kept)).astype(np.int64)


def _ccs_group(members, scores, ratio, keep, beta, num_strata, rng) -> np.ndarray:
    n = members.size
    budget = n - num_removed(n, ratio)
    order = rank_for_keeping(scores[members], keep)  # hardest first, NaN last
    valid = order[~np.isnan(scores[members][order])]
    pool = valid[num_removed(n, beta) :]
    if pool.size < budget:
        raise ValueError(
            f"CCS cannot keep {budget} of {n} samples: only {pool.size} remain after the hard cutoff and NaN scores. "
            "Lower hard_cutoff."
        )
    values = scores[members][pool]
    lo, hi = float(values.min()) if values.size else 0.0, float(values.max()) if values.size else 0.0
    if hi > lo:
        stratum = np.minimum(((values - lo) / (hi - lo) * num_strata).astype(np.int64), num_strata - 1)
    else:
        stratum = np.zeros(values.size, dtype=np.int64)
    strata = [np.sort(pool[stratum == s]) for s in range(num_strata)]
    sizes = np.array([s.size for s in strata])
    kept = []
    remaining = budget
    for left, s in enumerate(np.lexsort((np.arange(num_strata), sizes))):
        take = min(int(sizes[s]), remaining // (num_strata - left))
        if take:
            kept.append(rng.choice(strata[s], size=take, replace=False))
        remaining -= take
    kept = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    return members[kept]
