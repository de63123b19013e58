"""Selection rules shared by every strategy: ratio, direction, ties, NaN/inf, class balance, CCS, params/provenance."""

import json
import math

import numpy as np
import pytest

from hf_prune import ScoreRecord, get_strategy
from hf_prune.selection import ccs_kept_ids, num_removed, rank, select_kept_ids


def naive_select(scores, ratio, keep):
    """Sort by (NaN last, better score first, lower id first) with Python's sort; keep the first n - floor(r n)."""
    n = len(scores)
    sign = -1 if keep == "high" else 1
    order = sorted(
        range(n), key=lambda i: (math.isnan(scores[i]), 0 if math.isnan(scores[i]) else sign * scores[i], i)
    )
    return sorted(order[: n - num_removed(n, ratio)])


@pytest.mark.parametrize("keep", ["high", "low"])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.3, 0.5, 0.9])
def test_select_matches_naive_with_ties_nan_and_inf(keep, ratio):
    rng = np.random.default_rng(int(ratio * 100))
    scores = rng.integers(0, 5, size=50).astype(float)  # many ties
    scores[rng.choice(50, 6, replace=False)] = np.nan
    scores[rng.choice(50, 3, replace=False)] = np.inf
    scores[rng.choice(50, 2, replace=False)] = -np.inf
    assert select_kept_ids(scores, ratio, keep=keep).tolist() == naive_select(scores.tolist(), ratio, keep)


def test_nan_is_removed_before_infinite_scores_in_both_directions():
    scores = np.array([np.nan, np.inf, 1.0, -np.inf])
    assert rank(scores, "high").tolist() == [1, 2, 3, 0]
    assert rank(scores, "low").tolist() == [3, 2, 1, 0]


def test_class_balanced_removes_the_same_fraction_per_class():
    labels = np.repeat([0, 1, 2], [40, 20, 10])
    scores = np.where(labels == 0, 10.0, 0.0) + np.random.default_rng(0).random(70)
    kept = select_kept_ids(scores, 0.5, labels=labels, class_balanced=True)
    assert np.bincount(labels[kept]).tolist() == [20, 10, 5]
    unbalanced = select_kept_ids(scores, 0.5)
    assert np.bincount(labels[unbalanced], minlength=3).tolist() == [35, 0, 0]
    with pytest.raises(ValueError, match="needs labels"):
        select_kept_ids(scores, 0.5, class_balanced=True)


def test_keep_overrides_the_method_direction():
    p = np.random.default_rng(1).random((12, 30)).astype(np.float32)
    record = ScoreRecord.from_arrays({"p_target": p})
    high = get_strategy("dyn_unc", window=5).select(record, 0.5)
    low = get_strategy("dyn_unc", window=5).select(record, 0.5, keep="low")
    assert not set(high.kept_ids) & set(low.kept_ids)
    assert low.params["keep"] == "low"
    with pytest.raises(ValueError, match="keep must be"):
        get_strategy("dyn_unc", window=5).select(record, 0.5, keep="middle")


def test_same_inputs_same_ids():
    p = np.round(np.random.default_rng(2).random((12, 200)), 1).astype(np.float32)  # heavy ties
    record = ScoreRecord.from_arrays(
        {"p_target": p, "correct": (p > 0.5).astype(np.float32)}, labels=np.arange(200) % 7
    )
    for name in ("dyn_unc", "forgetting", "cartography", "static_uncertainty"):
        a = get_strategy(name).select(record, 0.3, class_balanced=True)
        b = get_strategy(name).select(record, 0.3, class_balanced=True)
        np.testing.assert_array_equal(a.kept_ids, b.kept_ids)


def naive_ccs_allocation(stratum_sizes, budget):
    """Algorithm 1 of Zheng et al. (2023): smallest stratum first, min(|B|, floor(m / |strata left|))."""
    sizes = dict(enumerate(stratum_sizes))
    taken = {}
    m = budget
    while sizes:
        s = min(sizes, key=lambda i: (sizes[i], i))
        take = min(sizes[s], m // len(sizes))
        taken[s] = take
        m -= take
        del sizes[s]
    return [taken[i] for i in range(len(stratum_sizes))]


@pytest.mark.parametrize("seed", range(4))
def test_ccs_follows_algorithm_1(seed):
    rng = np.random.default_rng(seed)
    n, ratio, beta, k = 500, [0.3, 0.5, 0.7, 0.9][seed], [0.0, 0.05, 0.1, 0.2][seed], [5, 10, 50, 7][seed]
    scores = rng.gamma(2.0, size=n)  # skewed: strata of very different sizes
    kept = ccs_kept_ids(scores, ratio, keep="high", hard_cutoff=beta, num_strata=k, seed=seed)
    budget = n - num_removed(n, ratio)
    assert kept.size == budget and np.all(np.diff(kept) > 0)
    # 1. the floor(beta n) hardest (highest, for keep="high") are gone
    hardest = sorted(range(n), key=lambda i: (-scores[i], i))[: num_removed(n, beta)]
    assert not set(hardest) & set(kept.tolist())
    # 2. equal-width strata over the rest (top widened by 1e-4 |max|, as the authors' max * 1.0001); kept per
    # stratum = the water-filling allocation
    rest = sorted(set(range(n)) - set(hardest))
    lo, hi = min(scores[rest]), max(scores[rest])
    width = (hi + 1e-4 * abs(hi) - lo) / k
    stratum = {i: min(int((scores[i] - lo) / width), k - 1) for i in rest}
    sizes = [sum(1 for i in rest if stratum[i] == s) for s in range(k)]
    kept_per_stratum = [sum(1 for i in kept.tolist() if stratum[i] == s) for s in range(k)]
    assert kept_per_stratum == naive_ccs_allocation(sizes, budget)


def official_ccs(scores, coreset_num, cutoff_scores=None, mis_num=0, stratas=50):
    """The CCS authors' `Coreset.py` (`mislabel_mask`, then `stratified_sampling`), computed in float64: drop the
    `mis_num` lowest `cutoff_scores`; strata [min + k step, min + (k + 1) step) with step = (1.0001 max - min) / 50;
    budgets from the smallest stratum up, min(count, rest // strata left); a random share of each. Returns the
    selected original positions, each remaining sample's stratum (-1: in none) and the budgets."""
    import torch

    idx = torch.arange(len(scores))
    score = torch.tensor(scores, dtype=torch.float64)
    if cutoff_scores is not None:
        idx = torch.tensor(cutoff_scores).argsort(stable=True)[mis_num:]
        score = score[idx]
    lo, hi = score.min(), score.max() * 1.0001
    step = (hi - lo) / stratas
    masks = [(score >= lo + k * step) & (score < lo + (k + 1) * step) for k in range(stratas)]
    counts = torch.tensor([int(m.sum()) for m in masks])
    budgets, rest = torch.zeros(stratas, dtype=torch.long), coreset_num
    for i, s in enumerate(torch.argsort(counts).tolist()):
        budgets[s] = min(int(counts[s]), rest // (stratas - i))
        rest -= int(budgets[s])
    stratum = torch.full((len(scores),), -1)
    selected = []
    for k, m in enumerate(masks):
        stratum[idx[m]] = k
        pool = idx[m]
        selected += pool[torch.randperm(pool.shape[0])][: budgets[k]].tolist()
    return np.array(selected), stratum.numpy(), budgets.numpy()


def kept_per_stratum(kept, stratum, k=50):
    return np.bincount(stratum[kept] + 1, minlength=k + 1)[1:]


def test_ccs_budgets_equal_the_authors_with_a_never_learned_stratum():
    """50,000 samples, 5,000 never learned (AUM -5, a stratum of their own), keep 60 %: every stratum keeps the
    authors' budget (at 58 % their int(0.58 n) = 28,999 is one below our n - floor(0.42 n) = 29,000; the never-learned
    stratum keeps 580 in both)."""
    rng = np.random.default_rng(0)
    aum = np.concatenate([np.full(5000, -5.0), rng.uniform(-4.6, 10.0, 45000)])[rng.permutation(50000)]
    for ratio, official_num in ((0.4, int(0.6 * 50000)), (0.42, int(0.58 * 50000))):  # their --coreset-ratio
        _, stratum, budgets = official_ccs(aum, official_num)
        kept = ccs_kept_ids(aum, ratio, keep="low", hard_cutoff=0.0)
        ours = kept_per_stratum(kept, stratum)
        never = aum == -5.0
        if ratio == 0.4:
            np.testing.assert_array_equal(ours, budgets)
        else:
            assert ours.sum() - budgets.sum() == 1 and np.abs(ours - budgets).max() == 1
        assert never[kept].sum() == budgets[stratum[never][0]] == (600 if ratio == 0.4 else 580)
    # with beta = 0.1 the hard cutoff (lowest AUM) removes all 5,000 first, in both
    selected, stratum, budgets = official_ccs(aum, 30000, cutoff_scores=aum, mis_num=5000)
    kept = ccs_kept_ids(aum, 0.4, keep="low", hard_cutoff=0.1)
    np.testing.assert_array_equal(kept_per_stratum(kept, stratum), budgets)
    assert not (aum[kept] == -5.0).any() and not (aum[selected] == -5.0).any()


def test_ccs_with_infinite_scores_does_not_break_its_strata():
    """Forgetting's never-learned samples score +inf. The authors' code cannot stratify that (the width becomes inf
    and it selects nothing); here the +inf samples form a stratum of their own, the finite strata are unchanged,
    and the hard cutoff (the high end is hard for forgetting) removes the never-learned first."""
    rng = np.random.default_rng(1)
    forgetting = np.concatenate([np.full(500, np.inf), rng.integers(0, 20, 4500).astype(float)])
    forgetting = forgetting[rng.permutation(5000)]
    official, _, _ = official_ccs(forgetting, 2500)
    assert official.size == 0  # their rule: nothing at all
    kept = ccs_kept_ids(forgetting, 0.5, keep="high", num_strata=50)
    assert kept.size == 2500
    # 20 integer values -> 20 non-empty finite strata + the inf stratum: 2500 // 21 = 119 each, remainder to the last
    assert np.isinf(forgetting[kept]).sum() in (119, 120)
    assert np.bincount(forgetting[kept][np.isfinite(forgetting[kept])].astype(int)).min() >= 119
    # beta = 0.1 = the never-learned share: all of them go
    kept = ccs_kept_ids(forgetting, 0.5, keep="high", hard_cutoff=0.1)
    assert np.isfinite(forgetting[kept]).all()


def test_ccs_over_forgetting_counts_never_learned_as_the_authors_code():
    """The `ccs` strategy over forgetting uses never_learned="zero" like the authors' code: never-learned and
    unforgettable samples share the lowest stratum; per-stratum kept counts equal their budgets."""
    rng = np.random.default_rng(2)
    K, n = 12, 600
    correct = (rng.random((K, n)) < np.linspace(0.05, 1.0, n)).astype(np.float32)
    correct[:, :60] = 0.0  # never learned
    correct[:, 60:200] = 1.0  # unforgettable
    record = ScoreRecord.from_arrays({"correct": correct}, labels=np.zeros(n, dtype=np.int64))
    result = get_strategy("ccs", score="forgetting", hard_cutoff=0.0).select(record, 0.5)
    scores = result.scores
    assert result.params["score_params"]["never_learned"] == "zero"
    assert (scores[:200] == 0).all() and np.isfinite(scores).all()
    _, stratum, budgets = official_ccs(scores, 300)
    np.testing.assert_array_equal(kept_per_stratum(result.kept_ids, stratum), budgets)
    assert set(stratum[:200].tolist()) == {0}  # never-learned share stratum 0 with the unforgettable


def test_ccs_cutoff_by_another_score_as_the_authors_aum_cutoff():
    rng = np.random.default_rng(3)
    K, n = 10, 400
    logits = rng.normal(size=(K, n))
    record = ScoreRecord.from_arrays(
        {"p_target": rng.random((K, n)).astype(np.float32), "logit_margin": logits.astype(np.float32)},
        labels=np.zeros(n, dtype=np.int64),
    )
    aum = get_strategy("aum").score(record)
    strategy = get_strategy("ccs", score="dyn_unc", score_params={"window": 3}, cutoff="aum", hard_cutoff=0.1)
    result = strategy.select(record, 0.5)
    assert not set(np.argsort(aum, kind="stable")[:40]) & set(result.kept_ids)  # the 10 % lowest AUM are gone
    _, stratum, budgets = official_ccs(result.scores, 200, cutoff_scores=aum, mis_num=40)
    np.testing.assert_array_equal(kept_per_stratum(result.kept_ids, stratum), budgets)
    assert result.params["cutoff"] == "aum" and "logit_margin" in strategy.required_signals()


def test_ccs_is_seeded_and_checks_its_cutoff():
    scores = np.random.default_rng(0).random(100)
    a = ccs_kept_ids(scores, 0.5, hard_cutoff=0.1, seed=3)
    assert a.tolist() == ccs_kept_ids(scores, 0.5, hard_cutoff=0.1, seed=3).tolist()
    assert a.tolist() != ccs_kept_ids(scores, 0.5, hard_cutoff=0.1, seed=4).tolist()
    with pytest.raises(ValueError, match="hard_cutoff must be in"):
        ccs_kept_ids(scores, 0.2, hard_cutoff=0.3)


def test_ccs_as_selection_mode_on_any_strategy_class_balanced():
    p = np.random.default_rng(3).random((12, 90)).astype(np.float32)
    labels = np.arange(90) % 3
    record = ScoreRecord.from_arrays({"p_target": p}, labels=labels)
    result = get_strategy("dyn_unc", window=5).select(
        record, 0.4, class_balanced=True, selection="ccs", hard_cutoff=0.1, num_strata=4, seed=1
    )
    assert np.bincount(labels[result.kept_ids]).tolist() == [18, 18, 18]
    assert result.params == {"window": 5, "signal": "p_target", "keep": "high", "class_balanced": True,
                             "selection": "ccs", "hard_cutoff": 0.1, "num_strata": 4, "seed": 1}  # fmt: skip
    for c in range(3):  # within each class the 10% most uncertain (the hard end for Dyn-Unc) are removed
        members = np.flatnonzero(labels == c)
        top = members[np.argsort(-result.scores[members], kind="stable")[:3]]
        assert not set(top) & set(result.kept_ids)


def test_params_and_provenance_are_exact_and_json_ready(tmp_path):
    p = np.random.default_rng(4).random((6, 20)).astype(np.float32)
    record = ScoreRecord.from_arrays({"p_target": p}, labels=np.arange(20) % 2, metadata={"model": {"class": "X"}})
    record = ScoreRecord.load(record.save(tmp_path / "scores"))
    result = get_strategy("static_uncertainty", window=3, start=1).select(record, 0.25, class_balanced=True)
    assert result.params == {"window": 3, "start": 1, "signal": "p_target", "ddof": 1, "keep": "high",
                             "class_balanced": True, "selection": "rank"}  # fmt: skip
    assert result.provenance["record"] == {"model": {"class": "X"}}
    assert result.provenance["num_epochs"] == 6 and result.provenance["record_path"] == str(tmp_path / "scores")
    json.dumps({"params": result.params, "provenance": result.provenance})


# ------------------------------------------------------------------------------------------------ one rule each


def test_rule_ratio_is_the_fraction_removed_and_checked_once():
    from hf_prune.selection import check_ratio

    assert check_ratio(0.25) == 0.25 and check_ratio(0) == 0.0
    for bad in (1.0, -0.1, float("nan"), 1.5):
        with pytest.raises(ValueError, match="fraction of samples \\*removed\\*"):
            check_ratio(bad)
    for bad in ("half", None, True):
        with pytest.raises(TypeError, match="must be a number"):
            check_ratio(bad, "dynamic_prune_ratio")
    # the same check guards static strategies and dynamic policies
    from hf_prune.dynamic import get_policy

    with pytest.raises(ValueError, match="fraction of samples"):
        get_policy("ucb", prune_ratio=1.0)
    with pytest.raises(ValueError, match="fraction of samples"):
        get_strategy("random").select(ScoreRecord.from_arrays({"p": np.zeros((1, 4))}), 1.0)


def test_rule_kept_count_is_n_minus_floor_rn_rounded_up_to_whole_batches():
    from hf_prune.selection import num_kept

    assert num_kept(1_281_167, 0.25) == 960_876
    assert num_kept(10, 0.3) == 7  # 0.3 * 10 = 2.9999999999999996 still removes 3
    assert num_kept(101, 0.5) == 51 and num_kept(101, 0.5, multiple_of=8) == 56
    assert num_kept(101, 0.0, multiple_of=8) == 101  # never above n
    for n in range(1, 40):
        for r in (0.0, 0.1, 0.25, 0.5, 0.9, 0.99):
            assert num_kept(n, r) == n - math.floor(r * n + 1e-9) >= 1
    with pytest.raises(ValueError, match="positive"):
        num_kept(0, 0.5)


def test_rule_ranking_direction_and_nan_position():
    scores = np.array([0.5, np.nan, 2.0, -1.0, np.inf])
    assert rank(scores, "high").tolist() == [4, 2, 0, 3, 1]  # NaN last: removed first
    assert rank(scores, "low").tolist() == [3, 0, 2, 4, 1]
    assert rank(scores, "high", nan="first").tolist() == [1, 4, 2, 0, 3]  # NaN first: explored first
    with pytest.raises(ValueError, match="nan must be"):
        rank(scores, nan="middle")


def test_rule_ties_lower_id_or_a_seeded_permutation():
    ties = np.zeros(6)
    assert rank(ties).tolist() == [0, 1, 2, 3, 4, 5]
    a = rank(ties, rng=np.random.default_rng(3))
    assert a.tolist() == rank(ties, rng=np.random.default_rng(3)).tolist()  # same seed, same order on every rank
    assert sorted(a.tolist()) == list(range(6)) and a.tolist() != list(range(6))


def naive_top_per_class(scores, labels, quota, keep, nan):
    kept = []
    for c in sorted(set(labels.tolist())):
        members = [i for i in range(len(scores)) if labels[i] == c]
        sign = -1 if keep == "high" else 1
        members.sort(
            key=lambda i: (
                math.isnan(scores[i]) == (nan == "last"),
                0 if math.isnan(scores[i]) else sign * scores[i],
                i,
            )
        )
        kept += members[: quota[c]]
    return sorted(kept)


@pytest.mark.parametrize("nan", ["last", "first"])
@pytest.mark.parametrize("keep", ["high", "low"])
def test_rule_class_balance_in_one_sort_matches_a_loop_over_classes(keep, nan):
    from hf_prune.selection import class_quotas_by_ratio, class_quotas_by_total, top_per_class

    rng = np.random.default_rng(7)
    labels = rng.integers(-1, 6, size=300)  # -1 (unknown) is a class of its own
    scores = rng.integers(0, 4, size=300).astype(float)
    scores[rng.choice(300, 30, replace=False)] = np.nan
    classes, counts = np.unique(labels, return_counts=True)
    for quota in (class_quotas_by_ratio(counts, 0.3), class_quotas_by_total(counts, 101, classes)):
        got = np.sort(top_per_class(scores, labels, quota, keep=keep, nan=nan))
        expected = naive_top_per_class(scores, labels, dict(zip(classes.tolist(), quota.tolist())), keep, nan)
        assert got.tolist() == expected
    assert class_quotas_by_total(counts, 101, classes).sum() == 101
    assert (class_quotas_by_ratio(counts, 0.3) == counts - np.floor(0.3 * counts)).all()
