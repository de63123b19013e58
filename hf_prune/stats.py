"""Streaming per-sample statistics over a record's epochs, shared by strategies, dynamic analysis and plots.

Each function reads one epoch row `[n]` at a time (`ScoreRecord.iter_epochs`), so memory is a few `[n]` float64
arrays whatever the number of epochs: ImageNet-21K records (n = 14.2 M, K = 90) are never held as `[K, n]`.
NaN (a sample not seen in an epoch) is skipped: statistics are over the epochs that saw the sample, and a sample
never seen gets NaN.
"""

from __future__ import annotations

import numpy as np

from .record import ScoreRecord


def resolve_epoch(record: ScoreRecord, epoch: int, what: str = "epoch") -> int:
    """Turns a (possibly negative, Python-style) epoch index into a row of `record`, with a clear error."""
    K = record.num_epochs
    if K == 0:
        raise ValueError("The record holds no complete epoch yet.")
    e = int(epoch)
    if not -K <= e < K:
        raise ValueError(
            f"{what}={epoch} is outside the record's {K} epochs (valid: 0 ... {K - 1}, or -1 for the last)."
        )
    return e % K


def _rows(record: ScoreRecord, signal: str, start: int, stop: int):
    for k, row in enumerate(record.iter_epochs(signal)):
        if k >= stop:
            return
        if k >= start:
            yield k, row


def latest_seen(record: ScoreRecord, signal: str, epoch: int) -> np.ndarray:
    """`signal` at row `epoch`; where a sample was not seen then, its value at the latest earlier epoch that saw it."""
    e = resolve_epoch(record, epoch)
    out = np.full(record.num_samples, np.nan)
    for _, row in _rows(record, signal, 0, e + 1):
        row = np.asarray(row, dtype=np.float64)
        seen = ~np.isnan(row)
        out[seen] = row[seen]
    return out


def epoch_moments(record: ScoreRecord, signal: str, start: int = 0, stop: int | None = None):
    """`(count, mean, M2)` of `signal` over rows `start ... stop-1`, NaN skipped (Welford's update, float64)."""
    stop = record.num_epochs if stop is None else stop
    n = record.num_samples
    count = np.zeros(n)
    mean = np.zeros(n)
    m2 = np.zeros(n)
    for _, row in _rows(record, signal, start, stop):
        row = np.asarray(row, dtype=np.float64)
        seen = ~np.isnan(row)
        x = np.where(seen, row, 0.0)
        count += seen
        delta = np.where(seen, x - mean, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean += np.where(seen, delta / np.maximum(count, 1), 0.0)
        m2 += np.where(seen, delta * (x - mean), 0.0)
    return count, mean, m2


def nan_mean(record: ScoreRecord, signal: str, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Mean of `signal` over rows `start ... stop-1` per sample, NaN where never seen."""
    count, mean, _ = epoch_moments(record, signal, start, stop)
    mean[count == 0] = np.nan
    return mean


def nan_std(record: ScoreRecord, signal: str, start: int = 0, stop: int | None = None, ddof: int = 1) -> np.ndarray:
    """Std of `signal` over rows `start ... stop-1` per sample (NaN where seen fewer than `ddof + 1` times)."""
    count, _, m2 = epoch_moments(record, signal, start, stop)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.maximum(m2, 0.0) / (count - ddof))
    std[count < ddof + 1] = np.nan
    return std


def data_map_coordinates(
    record: ScoreRecord, epochs: int | None = None, signal: str = "p_target"
) -> dict[str, np.ndarray]:
    """The coordinates of a data map (Swayamdipta et al. 2020, Sec. 2) over the first `epochs` epochs (all by
    default), NaN-aware:

    * `confidence`: mean over epochs of `signal` (Eq. 1);
    * `variability`: its std, ddof = 0 (Eq. 2);
    * `correctness`: fraction of the epochs that saw the sample in which it was classified correctly, and
      `correct_epochs`, their number (both NaN when the record has no `correct` signal).
    """
    stop = record.num_epochs if epochs is None else min(int(epochs), record.num_epochs)
    count, mean, m2 = epoch_moments(record, signal, 0, stop)
    with np.errstate(invalid="ignore", divide="ignore"):
        variability = np.sqrt(np.maximum(m2, 0.0) / count)
    mean[count == 0] = np.nan
    variability[count == 0] = np.nan
    if record.has_signal("correct"):
        seen, right = epoch_moments(record, "correct", 0, stop)[:2]
        correct_epochs = np.rint(seen * right)
        correctness = np.where(seen > 0, right, np.nan)
    else:
        correct_epochs = correctness = np.full(record.num_samples, np.nan)
    return {"confidence": mean, "variability": variability, "correctness": correctness, "correct_epochs": correct_epochs}


def selection_counts(record: ScoreRecord, signal: str = "selected", pruning_period: int = 1) -> tuple[np.ndarray, int]:
    """How often each sample was selected (1.0 in `signal`) over the record's epochs `0, T_p, 2 T_p, ...`, and out of
    how many epochs, streamed one epoch row at a time."""
    period = int(pruning_period)
    if period < 1:
        raise ValueError(f"pruning_period must be >= 1; got {period}.")
    counts = np.zeros(record.num_samples, dtype=np.int64)
    rows = 0
    for k, row in enumerate(record.iter_epochs(signal)):
        if k % period == 0:
            counts += np.asarray(row) > 0.5
            rows += 1
    return counts, rows
