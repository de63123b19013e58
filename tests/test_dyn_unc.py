"""Dyn-Unc against an independent, loop-by-loop reading of Eq. (2)-(3) of He et al. (arXiv:2306.05175)."""

import math

import numpy as np
import pytest

from hf_prune import DynUncAccumulator, ScoreRecord, dyn_unc_scores, get_strategy


def naive_dyn_unc(p, J):
    """Eq. (2): U_k = sqrt(sum_j (P_{k+j} - mean)^2 / (J - 1)); Eq. (3): U = sum_{k=0}^{K-J-1} U_k / (K - J)."""
    K, n = p.shape
    out = []
    for i in range(n):
        total = 0.0
        for k in range(K - J):  # k = 0 ... K-J-1
            window = [float(p[k + j, i]) for j in range(J)]
            mean = sum(window) / J
            total += math.sqrt(sum((w - mean) ** 2 for w in window) / (J - 1))
        out.append(total / (K - J))
    return np.array(out)


def official_coreset(p, window, fraction):
    """The authors' `ImageNet/get_coreset.py`: per sample a ring buffer of `window` zeros; epoch files in order; only
    non-zero probabilities shift in; for epoch idx with window-1 <= idx <= K-2 the unbiased std (times 10) of the
    buffer is recorded; the score is their mean; keep the last int(n * fraction) of the ascending argsort."""
    import torch

    K, n = p.shape
    buffer = torch.zeros(window, n, dtype=torch.float64)
    stds = []
    for idx in range(K):
        row = torch.tensor(p[idx], dtype=torch.float64)
        seen = row != 0
        buffer[:, seen] = torch.cat([buffer[1:, seen], row[seen].unsqueeze(0)])
        if window - 1 <= idx <= K - 2:
            stds.append(buffer.std(dim=0) * 10)
    score = torch.stack(stds).mean(dim=0).numpy()
    return score, np.sort(np.argsort(score, kind="stable")[-int(n * fraction) :])


@pytest.mark.parametrize("K,J", [(12, 10), (15, 3), (30, 10), (20, 5)])
def test_kept_sets_equal_the_authors_coreset_script(K, J):
    """Same scores (up to their factor 10) and the same kept ids at 25 / 50 / 70 % removed (where their
    int(n * fraction) equals n - floor(r n); where r n is not an integer theirs keeps one fewer)."""
    p = np.random.default_rng(K + J).random((K, 400)).astype(np.float32)
    record = ScoreRecord.from_arrays({"p_target": p})
    for ratio, fraction in ((0.25, 0.75), (0.5, 0.5), (0.7, 0.3)):
        score, kept = official_coreset(p, J, fraction)
        result = get_strategy("dyn_unc", window=J).select(record, ratio)
        np.testing.assert_allclose(result.scores * 10, score, rtol=1e-5)
        np.testing.assert_array_equal(result.kept_ids, kept)


@pytest.mark.parametrize("K,J", [(12, 10), (15, 3), (7, 2), (30, 10)])
def test_matches_naive_equations(K, J):
    p = np.random.default_rng(K * 100 + J).random((K, 23)).astype(np.float32)
    np.testing.assert_allclose(dyn_unc_scores(p, J), naive_dyn_unc(p, J), rtol=1e-5, atol=1e-6)


def test_last_epoch_is_in_no_window():
    rng = np.random.default_rng(0)
    p = rng.random((12, 9)).astype(np.float32)
    changed = p.copy()
    changed[-1] = rng.random(9)  # the K-th epoch only enters the window starting at K-J, which Eq. 3 excludes
    np.testing.assert_allclose(dyn_unc_scores(p, 5), dyn_unc_scores(changed, 5))
    changed[-2] = rng.random(9)
    assert not np.allclose(dyn_unc_scores(p, 5), dyn_unc_scores(changed, 5))


def test_streaming_equals_batch_and_reads_record_from_disk(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.random((20, 50)).astype(np.float32)
    acc = DynUncAccumulator(50, window=4)
    for row in p:
        acc.update(row)
    record = ScoreRecord.create(tmp_path / "rec", 50, ["p_target"], capacity_epochs=3)
    for k in range(20):
        record.write_epoch(k, np.arange(50), {"p_target": p[k]})
    strategy_scores = get_strategy("dyn_unc", window=4).score(ScoreRecord.load(tmp_path / "rec"))
    np.testing.assert_allclose(acc.result(), naive_dyn_unc(p, 4), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(strategy_scores, acc.result(), rtol=1e-12)


def test_select_keeps_highest_uncertainty_and_ratio_means_removed():
    rng = np.random.default_rng(2)
    p = rng.random((12, 100)).astype(np.float32)
    result = get_strategy("dyn_unc", window=10).select(ScoreRecord.from_arrays({"p_target": p}), prune_ratio=0.25)
    scores = naive_dyn_unc(p, 10)
    assert result.num_kept == 75 and result.kept_ids.dtype == np.int64
    assert np.all(np.diff(result.kept_ids) > 0)
    np.testing.assert_array_equal(result.kept_ids, np.sort(np.argsort(-scores, kind="stable")[:75]))
    assert result.prune_ratio == 0.25 and result.method == "dyn_unc" and result.params["window"] == 10
    assert set(result.removed_ids) == set(range(100)) - set(result.kept_ids)


def test_imagenet_rounding_keeps_960876():
    from hf_prune.selection import num_removed

    assert 1_281_167 - num_removed(1_281_167, 0.25) == 960_876
    assert num_removed(10, 0.3) == 3


def test_ties_broken_by_lower_id_and_nan_removed_first():
    p = np.zeros((4, 6), dtype=np.float32)
    p[:, 0] = [0, 1, 0, 1]  # uncertain
    p[:, 5] = [0, 1, 0, 1]  # same score as sample 0
    p[:, 3] = np.nan  # never seen: NaN score
    result = get_strategy("dyn_unc", window=2).select(ScoreRecord.from_arrays({"p_target": p}), prune_ratio=0.5)
    assert np.isnan(result.scores[3])
    # keep 3 of 6: samples 0 and 5 (highest), then the lowest id among the zero-score ties (1); 3 (NaN) goes first
    np.testing.assert_array_equal(result.kept_ids, [0, 1, 5])


@pytest.mark.parametrize("nan_epoch", [2, 6])  # before any window is complete, and after several
def test_nan_windows_use_seen_epochs_only(nan_epoch):
    p = np.random.default_rng(3).random((10, 5)).astype(np.float32)
    p[nan_epoch, 1] = np.nan
    scores = dyn_unc_scores(p, 3)
    # sample 1: each window's std over its seen epochs, windows starting 0..6 (K-J = 7)
    windows = [p[k : k + 3, 1] for k in range(7)]
    expected = np.mean([np.std(w[~np.isnan(w)], ddof=1) for w in windows])
    np.testing.assert_allclose(scores[1], expected, rtol=1e-5)
    np.testing.assert_allclose(np.delete(scores, 1), np.delete(naive_dyn_unc(np.nan_to_num(p), 3), 1), rtol=1e-5)


def test_class_balanced_keeps_same_fraction_per_class():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1, 2], [40, 40, 20])
    p = rng.random((6, 100)).astype(np.float32)
    p[:, labels == 2] *= 0.01  # class 2 has tiny uncertainty: unbalanced selection would drop it
    record = ScoreRecord.from_arrays({"p_target": p}, labels=labels)
    unbalanced = get_strategy("dyn_unc", window=3).select(record, 0.5)
    balanced = get_strategy("dyn_unc", window=3).select(record, 0.5, class_balanced=True)
    assert np.sum(labels[unbalanced.kept_ids] == 2) == 0
    assert [np.sum(labels[balanced.kept_ids] == c) for c in range(3)] == [20, 20, 10]


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_prune_ratio(ratio):
    record = ScoreRecord.from_arrays({"p_target": np.random.rand(12, 10)})
    with pytest.raises(ValueError, match=r"fraction of samples \*removed\*"):
        get_strategy("dyn_unc").select(record, ratio)


def test_window_at_or_above_epochs():
    record = ScoreRecord.from_arrays({"p_target": np.random.rand(10, 10)})
    with pytest.raises(ValueError, match="window=10 needs more epochs than the recorded epochs \\(10\\)"):
        get_strategy("dyn_unc", window=10).select(record, 0.25)
    with pytest.raises(ValueError, match="window must be an integer >= 2"):
        get_strategy("dyn_unc", window=1)


def test_missing_signal_names_the_trainer_argument():
    record = ScoreRecord.from_arrays({"loss": np.random.rand(12, 10)})
    with pytest.raises(ValueError, match=r"record_signals=\[\.\.\., 'p_target'\]"):
        get_strategy("dyn_unc").select(record, 0.25)


def test_class_balanced_without_labels():
    record = ScoreRecord.from_arrays({"p_target": np.random.rand(12, 10)})
    with pytest.raises(ValueError, match="class_balanced=True needs labels"):
        get_strategy("dyn_unc", window=3).select(record, 0.25, class_balanced=True)
