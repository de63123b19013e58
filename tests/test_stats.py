"""Streaming statistics over a record's epochs against naive per-sample loops, NaN for unseen epochs, epoch
indexing, and selection counts, on in-memory and on-disk records."""

import math
import statistics

import numpy as np
import pytest

from hf_prune import ScoreRecord
from hf_prune.stats import epoch_moments, latest_seen, nan_mean, nan_std, resolve_epoch, selection_counts


@pytest.fixture(params=["memory", "disk"])
def record(request, tmp_path):
    rng = np.random.default_rng(0)
    p = rng.random((7, 40)).astype(np.float32)
    p[rng.random(p.shape) < 0.2] = np.nan
    p[:, 0] = np.nan  # never seen
    p[1:, 1] = np.nan  # seen once
    selected = (rng.random((7, 40)) < 0.5).astype(np.float32)
    rec = ScoreRecord.from_arrays({"p_target": p, "selected": selected})
    return rec if request.param == "memory" else ScoreRecord.load(rec.save(tmp_path / "scores"))


def seen(record, i, start=0, stop=None):
    arr = record.signal("p_target")
    return [float(arr[k, i]) for k in range(start, stop or record.num_epochs) if not math.isnan(arr[k, i])]


def test_mean_std_and_moments_match_naive(record):
    mean, std0, std1 = nan_mean(record, "p_target", 1, 6), nan_std(record, "p_target", 1, 6, ddof=0), nan_std(
        record, "p_target", 1, 6
    )
    count = epoch_moments(record, "p_target", 1, 6)[0]
    for i in range(record.num_samples):
        values = seen(record, i, 1, 6)
        assert count[i] == len(values)
        if not values:
            assert np.isnan(mean[i]) and np.isnan(std0[i])
            continue
        assert mean[i] == pytest.approx(statistics.fmean(values))
        assert std0[i] == pytest.approx(statistics.pstdev(values), abs=1e-12)
        if len(values) > 1:
            assert std1[i] == pytest.approx(statistics.stdev(values), abs=1e-12)
        else:
            assert np.isnan(std1[i])


def test_latest_seen_and_epoch_indexing(record):
    last = latest_seen(record, "p_target", -1)
    for i in range(record.num_samples):
        values = seen(record, i)
        assert (np.isnan(last[i]) and not values) or last[i] == pytest.approx(values[-1])
    assert resolve_epoch(record, -1) == record.num_epochs - 1
    with pytest.raises(ValueError, match="outside the record's 7 epochs"):
        resolve_epoch(record, 7)


def test_selection_counts_every_period(record):
    rows = np.asarray(record.signal("selected"))
    assert selection_counts(record)[0].tolist() == rows.sum(0).astype(int).tolist()
    counts, total = selection_counts(record, pruning_period=3)
    assert total == 3 and counts.tolist() == rows[::3].sum(0).astype(int).tolist()
