"""Turning one score per sample into the samples kept: the rules every static strategy *and* every dynamic policy
share, each decided in exactly one place.

* **Ratio** (`check_ratio`): `prune_ratio` is the fraction *removed*, a number in [0, 1).
* **Kept count** (`num_kept`): `n - floor(prune_ratio * n)` (so `0.25` of ImageNet-1K's 1,281,167 keeps 960,876),
  optionally rounded *up* to a multiple (whole distributed batches), never above `n`. The authors' codes of several
  methods keep `floor((1 - r) n)` instead, which is one less whenever `r n` is not an integer; hf_prune keeps the
  larger count everywhere.
* **Ranking** (`rank`): from first-kept to first-removed. `keep="high"` keeps the highest scores, `"low"` the
  lowest. Infinite scores are real scores and rank at their end. A NaN score (a sample the method could not score)
  ranks last (`nan="last"`: removed first; static strategies) or first (`nan="first"`: explored first; dynamic
  policies, whose unseen samples have no loss yet).
* **Ties**: among equal scores the lower sample id is kept (deterministic, the same everywhere), or, when a seeded
  generator is given, the order of a random permutation drawn from it (dynamic policies, whose selections must not
  favour low ids epoch after epoch).
* **Class balance** (`top_per_class`): the same ranking inside every class, with a quota per class, in one sort of
  `O(n log n)` however many classes. Static selections remove `floor(prune_ratio * n_c)` from every class `c`
  (`class_quotas_by_ratio`); dynamic ones split an exact total `k` in proportion to class sizes, the remainder
  going to the largest fractional parts (`class_quotas_by_total`). Label `-1` (unknown) is a class of its own.
  `group_by_label` groups samples by class with the same single sort, for per-class computations (Moderate's
  centres, SSP's per-class k-means, DUAL's per-class draws).
* **Coverage** (`ccs_kept_ids`): coverage-centric stratified sampling (Zheng et al. 2023) instead of a ranking, with
  the authors' strata and infinite scores in strata of their own.
"""

from __future__ import annotations

import math

import numpy as np


def check_ratio(value: float, name: str = "prune_ratio") -> float:
    """Returns `value` as a float in [0, 1), or raises a clear error (ratios are the fraction of samples *removed*)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number in [0, 1); got {value!r}.")
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in [0, 1); got {value!r}.") from None
    if math.isnan(ratio) or not (0.0 <= ratio < 1.0):
        raise ValueError(
            f"{name} must be in [0, 1): it is the fraction of samples *removed* (0.25 removes a quarter and keeps "
            f"75%). Got {ratio}."
        )
    return ratio


def check_keep(keep: str) -> str:
    """Returns `keep` if it is `"high"` or `"low"`, else raises."""
    if keep not in ("high", "low"):
        raise ValueError(f"keep must be 'high' or 'low'; got {keep!r}.")
    return keep


def num_removed(n: int, prune_ratio: float) -> int:
    """`floor(prune_ratio * n)`, robust to float error (`0.3 * 10` is 2.9999999999999996)."""
    return int(math.floor(prune_ratio * n + 1e-9))


def num_kept(n: int, prune_ratio: float, multiple_of: int = 1) -> int:
    """Samples kept: `n - floor(prune_ratio * n)`, rounded *up* to a multiple of `multiple_of`, at most `n`.

    Rounding up to `world_size * per_device_batch_size` makes every batch on every rank full, so distributed samplers
    never pad with duplicates. It keeps at most `multiple_of - 1` extra samples.
    """
    if n <= 0:
        raise ValueError(f"The number of samples must be positive; got {n}.")
    keep = n - num_removed(n, prune_ratio)
    multiple_of = max(1, int(multiple_of))
    return min(n, int(math.ceil(keep / multiple_of)) * multiple_of)


def fit_to_batches(count: int, n: int, multiple_of: int) -> int:
    """`count` samples of `n` fitted to whole distributed batches: the smallest multiple of `multiple_of` that is
    at least `count`, or, where that exceeds `n`, the largest multiple of `multiple_of` that is at most `n`.

    With `multiple_of = world_size * per_device_batch_size` every rank gets the same number of full batches, so a
    distributed loader neither pads with repeated samples nor drops a partial batch (`drop_last`) of an epoch of this
    length. It adds at most `multiple_of - 1` samples, or removes at most `n mod multiple_of` (only where the epoch
    would hold nearly all `n`, e.g. InfoBatch's full epochs). Monotone in `count`.

    Example:

    ```python
    >>> from hf_prune.selection import fit_to_batches
    >>> fit_to_batches(51, 101, 8), fit_to_batches(101, 101, 8), fit_to_batches(51, 101, 1)
    (56, 96, 51)
    ```
    """
    count, n, multiple_of = int(count), int(n), max(1, int(multiple_of))
    if multiple_of == 1:
        return count
    if multiple_of > n:
        raise ValueError(
            f"world_size x batch_size = {multiple_of} exceeds the {n} samples: no epoch can give every process a "
            "full batch. Use a smaller batch size (or fewer processes)."
        )
    up = int(math.ceil(count / multiple_of)) * multiple_of
    return up if up <= n else (n // multiple_of) * multiple_of


def _sort_keys(scores: np.ndarray, keep: str, nan: str, rng: np.random.Generator | None):
    """`(tie, key, nan_rank)` for `np.lexsort` (last key sorts first)."""
    check_keep(keep)
    if nan not in ("first", "last"):
        raise ValueError(f"nan must be 'first' or 'last'; got {nan!r}.")
    scores = np.asarray(scores, dtype=np.float64)
    is_nan = np.isnan(scores)
    key = -scores if keep == "high" else scores.copy()
    key[is_nan] = 0.0
    nan_rank = is_nan if nan == "last" else ~is_nan
    tie = np.arange(scores.shape[0]) if rng is None else rng.permutation(scores.shape[0])
    return tie, key, nan_rank


def rank(
    scores: np.ndarray, keep: str = "high", nan: str = "last", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Sample positions ordered from first-kept to first-removed.

    Args:
        scores (`np.ndarray` `[n]`): one score per sample; `inf` is a real score, NaN means "no score".
        keep (`str`, *optional*, defaults to `"high"`): keep the `"high"` or the `"low"` end.
        nan (`str`, *optional*, defaults to `"last"`): NaN ranks `"last"` (removed first) or `"first"`.
        rng (`np.random.Generator`, *optional*): break ties by a permutation drawn from it; by default the lower
            position comes first.
    """
    tie, key, nan_rank = _sort_keys(scores, keep, nan, rng)
    return np.lexsort((tie, key, nan_rank))


def class_quotas_by_ratio(counts: np.ndarray, prune_ratio: float) -> np.ndarray:
    """Per-class kept counts when every class loses `floor(prune_ratio * n_c)` of its `n_c` samples."""
    counts = np.asarray(counts, dtype=np.int64)
    return counts - np.floor(prune_ratio * counts + 1e-9).astype(np.int64)


def class_quotas_by_total(counts: np.ndarray, total: int, classes: np.ndarray | None = None) -> np.ndarray:
    """Per-class kept counts summing exactly to `total`, in proportion to the class sizes `counts`: class `c` gets
    `floor(total * n_c / n)`, and the remainder goes one each to the largest fractional parts (ties: lower class)."""
    counts = np.asarray(counts, dtype=np.int64)
    classes = np.arange(counts.size) if classes is None else np.asarray(classes)
    exact = total * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    extra = int(total) - int(quota.sum())
    quota[np.lexsort((classes, -(exact - quota)))[:extra]] += 1
    return quota


def group_by_label(labels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(classes, order, starts)`: `rows` grouped by `labels[rows]` with one stable sort (`O(n log n)` whatever the
    number of classes): class `classes[c]` holds `order[starts[c]:starts[c + 1]]`, in ascending row order."""
    order = rows[np.argsort(labels[rows], kind="stable")]
    classes, counts = np.unique(labels[order], return_counts=True)
    return classes, order, np.concatenate([[0], np.cumsum(counts)])


def top_per_class(
    scores: np.ndarray,
    labels: np.ndarray,
    quotas,
    keep: str = "high",
    nan: str = "last",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The first `quota_c` samples of every class `c` in the `rank` order, in one `O(n log n)` sort.

    Args:
        scores (`np.ndarray` `[n]`), keep, nan, rng: as in `rank`, applied inside every class.
        labels (`np.ndarray` `[n]`): class of every sample.
        quotas (`Callable[[classes, counts], np.ndarray]` or `np.ndarray`): how many to keep per class, aligned
            with `np.unique(labels)`, or a function of the classes and their sizes giving them (see
            `class_quotas_by_ratio`, `class_quotas_by_total`).

    Returns:
        Unsorted int64 positions of the kept samples.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.shape != scores.shape:
        raise ValueError(f"labels has shape {labels.shape}; expected {scores.shape}, one per score.")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = np.asarray(quotas(classes, counts) if callable(quotas) else quotas, dtype=np.int64)
    if quota.shape != classes.shape:
        raise ValueError(f"Got {quota.size} class quotas for {classes.size} classes.")
    tie, key, nan_rank = _sort_keys(scores, keep, nan, rng)
    order = np.lexsort((tie, key, nan_rank, inverse))  # by class, then the ranking inside it
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    cls = inverse[order]
    position_in_class = np.arange(order.size) - start[cls]
    return order[position_in_class < quota[cls]].astype(np.int64)


def select_kept_ids(
    scores: np.ndarray,
    prune_ratio: float,
    keep: str = "high",
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
) -> np.ndarray:
    """Returns the sorted int64 ids kept when removing `prune_ratio` of the samples by `scores` (the static rule:
    NaN removed first, ties to the lower id).

    Args:
        scores (`np.ndarray` `[n]`): one score per sample; NaN is removed first.
        prune_ratio (`float`): fraction removed, in [0, 1).
        keep (`str`, *optional*, defaults to `"high"`): keep the `"high"` or the `"low"` scores.
        labels (`np.ndarray` `[n]`, *optional*): class labels, required when `class_balanced=True`.
        class_balanced (`bool`, *optional*, defaults to `False`): remove `floor(prune_ratio * n_c)` from every class.

    Example:

    ```python
    >>> import numpy as np
    >>> from hf_prune.selection import select_kept_ids
    >>> select_kept_ids(np.array([0.1, 0.9, np.nan, 0.5]), prune_ratio=0.5)
    array([1, 3])
    ```
    """
    ratio = check_ratio(prune_ratio)
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    if not class_balanced:
        kept = rank(scores, keep)[: n - num_removed(n, ratio)] if n else np.zeros(0, dtype=np.int64)
        return np.sort(kept).astype(np.int64)
    if labels is None:
        raise ValueError(
            "class_balanced=True needs labels, but none were given. Records from `PruningTrainer` store them; for "
            "`ScoreRecord.from_arrays` pass `labels=`."
        )
    kept = top_per_class(scores, labels, lambda _, counts: class_quotas_by_ratio(counts, ratio), keep)
    return np.sort(kept)


def ccs_kept_ids(
    scores: np.ndarray,
    prune_ratio: float,
    keep: str = "high",
    hard_cutoff: float = 0.0,
    num_strata: int = 50,
    seed: int = 0,
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
    cutoff_scores: np.ndarray | None = None,
    cutoff_keep: str | None = None,
) -> np.ndarray:
    """Coverage-centric coreset selection (CCS; Zheng, Liu, Lai, Prakash, "Coverage-centric Coreset Selection for
    High Pruning Rates", ICLR 2023, Algorithm 1) over any score.

    The *hard* end of the scores is the end the method would keep (`keep`): for `keep="high"` the highest scores
    are the hardest. Steps, with budget `m = n - floor(prune_ratio * n)`:

    1. Remove every NaN score, then the `floor(hard_cutoff * n)` hardest samples (likely mislabeled): hardest by
       `cutoff_scores` at their hard end `cutoff_keep` when given (the authors' code always cuts the lowest AUM,
       whatever score it stratifies), else by `scores`.
    2. Split the remaining *finite* score range into `num_strata` strata of equal width, as the authors' code does:
       `lo = min`, `hi = max + 1e-4 |max|` (their `max * 1.0001`), stratum `j = [lo + j w, lo + (j + 1) w)` with
       `w = (hi - lo) / num_strata`. Samples scoring `+inf` form one more stratum, and `-inf` another (forgetting
       gives never-learned samples `+inf`): they get a stratum's share of the budget like any group of equal scores.
    3. Take the strata in increasing size (ties: lower stratum index) and keep `min(|B|, floor(m / #strata left))`
       samples drawn uniformly at random from each (seeded), reducing `m` by what was kept.

    Deliberate differences from the authors' code (`core/data/Coreset.py`): the budget is `n - floor(r n)` rather
    than `int((1 - r) n)` (one more sample when `r n` is not an integer); `hi` adds `1e-4 |max|` so a maximum <= 0
    stays in the top stratum (their `max * 1.0001` drops it); infinite scores get their own stratum (their code
    selects nothing at all when a score is infinite, since the width becomes infinite); ties between stratum sizes
    go to the lower index (their `torch.argsort` leaves them unspecified); and the draw uses numpy's seeded
    generator instead of the global torch one.

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
        cutoff_scores (`np.ndarray` `[n]`, *optional*): the scores ranking the hard cutoff; defaults to `scores`.
        cutoff_keep (`str`, *optional*): the hard end of `cutoff_scores`; defaults to `keep`.

    Returns:
        Sorted int64 kept ids.
    """
    ratio = check_ratio(prune_ratio)
    check_keep(keep)
    cutoff_keep = check_keep(cutoff_keep or keep)
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
    cut = scores if cutoff_scores is None else np.asarray(cutoff_scores, dtype=np.float64)
    if cut.shape != scores.shape:
        raise ValueError(f"cutoff_scores has shape {cut.shape}; expected {scores.shape}, one per score.")
    rng = np.random.default_rng(seed)
    args = (scores, cut, ratio, keep, cutoff_keep, beta, int(num_strata), rng)
    if not class_balanced:
        return np.sort(_ccs_group(np.arange(n), *args)).astype(np.int64)
    if labels is None:
        raise ValueError("class_balanced=True needs labels, but none were given.")
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}; expected ({n},), one per score.")
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    kept = [_ccs_group(members, *args) for members in np.split(order, bounds)]
    return np.sort(np.concatenate(kept)).astype(np.int64)


def ccs_strata(values: np.ndarray, num_strata: int) -> np.ndarray:
    """The CCS stratum of every value (see `ccs_kept_ids`, step 2): `0 .. num_strata - 1` over the finite range,
    `num_strata` for `+inf` and `num_strata + 1` for `-inf`."""
    values = np.asarray(values, dtype=np.float64)
    stratum = np.where(values > 0, num_strata, num_strata + 1).astype(np.int64)  # the infinite ones
    finite = np.isfinite(values)
    if finite.any():
        v = values[finite]
        lo, top = float(v.min()), float(v.max())
        width = (top + 1e-4 * abs(top) - lo) / num_strata
        if width > 0:
            stratum[finite] = np.clip(np.floor((v - lo) / width), 0, num_strata - 1).astype(np.int64)
        else:  # every finite value equal
            stratum[finite] = 0
    return stratum


def _ccs_group(members, scores, cut, ratio, keep, cutoff_keep, beta, num_strata, rng) -> np.ndarray:
    n = members.size
    budget = n - num_removed(n, ratio)
    valid = members[~np.isnan(scores[members]) & ~np.isnan(cut[members])]
    order = valid[rank(cut[valid], cutoff_keep)]  # hardest first
    pool = np.sort(order[num_removed(n, beta) :])
    if pool.size < budget:
        raise ValueError(
            f"CCS cannot keep {budget} of {n} samples: only {pool.size} remain after the hard cutoff and NaN scores. "
            "Lower hard_cutoff."
        )
    stratum = ccs_strata(scores[pool], num_strata)
    sizes = np.bincount(stratum, minlength=num_strata + 2)
    present = np.concatenate([np.arange(num_strata), np.flatnonzero(sizes[num_strata:]) + num_strata])
    by_stratum = np.argsort(stratum, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    kept = []
    remaining = budget
    for left, s in enumerate(present[np.lexsort((present, sizes[present]))]):
        take = min(int(sizes[s]), remaining // (present.size - left))
        if take:
            kept.append(rng.choice(pool[by_stratum[starts[s] : starts[s + 1]]], size=take, replace=False))
        remaining -= take
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
