"""Streaming reductions over a record's epochs, shared by the record-based strategies.

Each reads one epoch row `[n]` at a time (`ScoreRecord.iter_epochs`), so memory is a few `[n]` float64 arrays
whatever the number of epochs. NaN (a sample not seen in an epoch) is skipped: statistics are over the epochs that
saw the sample, and a sample never seen gets NaN.
"""

from __future__ import annotations

import numpy as np

from ..record import ScoreRecord


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


def latest_seen(record: ScoreRecord, signal: str, epoch: int) -> np.ndarray:
    """`signal` at row `epoch`; where a sample was not seen then, its value at the latest earlier epoch that saw it."""
    e = resolve_epoch(record, epoch)
    arr = record.signal(signal)
    out = np.asarray(arr[e], dtype=np.float64).copy()
    k = e
    missing = np.isnan(out)
    while missing.any() and k > 0:
        k -= 1
        row = np.asarray(arr[k], dtype=np.float64)
        out[missing] = row[missing]
        missing = np.isnan(out)
    return out


def epoch_moments(record: ScoreRecord, signal: str, start: int = 0, stop: int | None = None):
    """`(count, mean, M2)` of `signal` over rows `start ... stop-1`, NaN skipped (Welford's update, float64)."""
    stop = record.num_epochs if stop is None else stop
    arr = record.signal(signal)
    n = record.num_samples
    count = np.zeros(n)
    mean = np.zeros(n)
    m2 = np.zeros(n)
    for k in range(start, stop):
        row = np.asarray(arr[k], dtype=np.float64)
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
