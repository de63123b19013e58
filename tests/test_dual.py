"""DUAL (Cho et al., ICML 2025) against an independent re-implementation of the authors' code
(`exp_cifar/importance_evaluation.py`: `dual`; `exp_cifar/data_subset.py`: `beta_sampling`), NaN handling against a
naive loop, and bad inputs."""

import math

import numpy as np
import pytest
import torch

from hf_prune import ScoreRecord, get_strategy
from hf_prune.strategies.dual import beta_log_pdf, beta_parameters


def official_dual(target_probs, window_size=10):
    """Their `dual`: for each window of `window_size` epochs, 10 * std (ddof 1) * (1 - mean); mean over windows."""
    preds = torch.tensor(target_probs, dtype=torch.float64)
    terms = []
    for i in range(preds.size(0) - window_size + 1):
        w = preds[i : i + window_size]
        terms.append(w.std(dim=0) * 10 * (1 - w.mean(dim=0)))
    return torch.stack(terms).mean(dim=0).numpy()


def official_beta_sampling(prune_rate, c_d, target_probs, mask, score, seed):
    """Their `beta_sampling` with the first 30 epochs' mean probability (as their README and paper describe), drawn
    from a seeded `RandomState` (theirs is the unseeded global one)."""
    from scipy.stats import beta

    n = target_probs.shape[-1]
    pred_mean = torch.tensor(target_probs)[:30].mean(axis=0).numpy()
    subset_n = int((1 - prune_rate) * n)
    anchor = pred_mean[mask[-10:]].mean()
    y_b = 15 * (1 - anchor) * (1 - prune_rate**c_d)
    y_a = 16 - y_b
    joint = beta.pdf(pred_mean, y_a, y_b) * score
    return np.random.RandomState(seed).choice(n, p=joint / joint.sum(), size=subset_n, replace=False)


def dynamics(K=32, n=1000, seed=0):
    """Target probabilities that drift up at per-sample speeds with noise: easy, hard and uncertain samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(K)[:, None] / K
    speed = rng.uniform(0.0, 4.0, n)
    p = 1 / (1 + np.exp(-(speed * 6 * t - 3 + rng.normal(0, 0.5, n))))
    return np.clip(p + rng.normal(0, 0.08, (K, n)), 0, 1).astype(np.float32)


def test_score_is_the_authors_dual_over_the_first_T_epochs():
    p = dynamics()
    record = ScoreRecord.from_arrays({"p_target": p})
    scores = get_strategy("dual").score(record)  # T = 30, J = 10: 21 windows, epochs 30 and 31 unused
    np.testing.assert_allclose(scores * 10, official_dual(p[:30]), rtol=1e-6)
    np.testing.assert_allclose(get_strategy("dual", epochs=None, window=5).score(record) * 10,
                               official_dual(p, 5), rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("ratio", [0.5, 0.7, 0.75])
def test_beta_sampling_draws_the_authors_kept_ids(ratio):
    """Same seed, same ids: anchor, Beta(alpha, beta), weights and the without-replacement draw all agree."""
    p = dynamics(seed=1)
    record = ScoreRecord.from_arrays({"p_target": p})
    result = get_strategy("dual", seed=3).select(record, ratio)
    score = official_dual(p[:30])
    expected = official_beta_sampling(ratio, 4, p, np.argsort(score, kind="stable"), score, seed=3)
    assert int((1 - ratio) * 1000) == 1000 - math.floor(ratio * 1000)  # where the kept counts agree
    np.testing.assert_array_equal(result.kept_ids, np.sort(expected))
    assert result.params["selection"] == "beta" and result.params["alpha"] + result.params["beta"] == 16


def test_kept_count_is_one_more_than_the_authors_where_their_float_product_truncates():
    record = ScoreRecord.from_arrays({"p_target": dynamics(seed=1)})
    assert int((1 - 0.8) * 1000) == 199  # their int((1 - prune_rate) * n)
    assert get_strategy("dual").select(record, 0.8).num_kept == 200


def test_beta_shifts_towards_easier_samples_as_more_is_pruned():
    p = dynamics(seed=2)
    record = ScoreRecord.from_arrays({"p_target": p})
    pbar = p[:30].mean(0)
    kept_means = [pbar[get_strategy("dual").select(record, r).kept_ids].mean() for r in (0.6, 0.9)]
    assert kept_means[0] < kept_means[1]
    modes = [(a - 1) / (a + b - 2) for a, b in (beta_parameters(0.3, r, 4) for r in (0.3, 0.6, 0.9))]
    assert modes[0] < modes[1] < modes[2]  # the Beta's peak moves to easier samples as r grows
    ranked = get_strategy("dual").select(record, 0.9, selection="rank")
    assert pbar[ranked.kept_ids].mean() < kept_means[1]  # plain top-DUAL keeps harder samples
    a, b = beta_parameters(0.2, 0.9, 4)
    from scipy.stats import beta as scipy_beta

    x = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(np.exp(beta_log_pdf(x, a, b)), scipy_beta.pdf(x, a, b), rtol=1e-9)


def test_nan_epochs_use_the_seen_ones_like_a_naive_loop():
    p = dynamics(K=14, n=60, seed=4).astype(np.float64)
    p[np.random.default_rng(5).random(p.shape) < 0.25] = np.nan
    record = ScoreRecord.from_arrays({"p_target": p.astype(np.float32)})
    scores = get_strategy("dual", epochs=12, window=4).score(record)
    p32 = p.astype(np.float32).astype(np.float64)
    for i in range(60):
        terms = []
        for k in range(12 - 4 + 1):
            vals = [v for v in p32[k : k + 4, i] if not math.isnan(v)]
            if len(vals) >= 2:
                mean = sum(vals) / len(vals)
                std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
                terms.append(std * (1 - mean))
        expected = sum(terms) / len(terms) if terms else math.nan
        if math.isnan(expected):
            assert math.isnan(scores[i])
        else:
            assert scores[i] == pytest.approx(expected, rel=1e-9)


def test_class_balanced_sampling_keeps_every_class_share():
    p = dynamics(seed=6)
    labels = np.repeat(np.arange(4), [400, 300, 200, 100])
    record = ScoreRecord.from_arrays({"p_target": p}, labels=labels)
    result = get_strategy("dual").select(record, 0.6, class_balanced=True)
    assert np.bincount(labels[result.kept_ids]).tolist() == [160, 120, 80, 40]


def test_too_few_positive_weights_are_completed_by_rank():
    p = dynamics(seed=7)
    p[:, :700] = 1.0  # constant: zero DUAL score, zero weight
    record = ScoreRecord.from_arrays({"p_target": p})
    result = get_strategy("dual").select(record, 0.2)  # 800 to keep, only 300 positive weights
    assert result.num_kept == 800 and set(range(700, 1000)) <= set(result.kept_ids)


def test_bad_inputs_get_clear_errors():
    record = ScoreRecord.from_arrays({"p_target": dynamics(K=12)})
    with pytest.raises(ValueError, match="needs that many recorded epochs"):
        get_strategy("dual").select(record, 0.5)
    with pytest.raises(ValueError, match="sampling must be 'beta'"):
        get_strategy("dual", sampling="uniform")
    with pytest.raises(ValueError, match="epochs \\(5\\) must be >= window"):
        get_strategy("dual", epochs=5)
    with pytest.raises(ValueError, match="selection must be one of"):
        get_strategy("forgetting").select(ScoreRecord.from_arrays({"correct": np.ones((3, 5))}), 0.2, selection="beta")
