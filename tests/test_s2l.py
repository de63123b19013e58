"""S2L (Yang et al., NeurIPS 2024) against independent readings of its definition: Algorithm 1's per-cluster counts
(and the water-filling property they must have), the authors' code's draws (BigML-CS-UCLA/S2L at 2bc84dd,
`schedules/s2l.py`, re-written from its behaviour), scikit-learn's k-means on planted loss trajectories; and how
unseen or non-finite epochs, class balance, epochs, large records and exports are handled."""

import warnings

import numpy as np
import pytest

from hf_prune import PruneResult, ScoreRecord, get_strategy, list_strategies
from hf_prune.strategies import s2l as s2l_module
from hf_prune.strategies import strategy_info
from hf_prune.strategies.base import NonFiniteRecordWarning
from hf_prune.strategies.s2l import S2LConfig, fill_missing, s2l_sample, select_epochs


SIZES = [400, 150, 60, 20, 5]
T = 6


def planted(sizes=SIZES, seed=0, noise=0.05):
    """Loss trajectories of `len(sizes)` well-separated kinds (learned fast, never learned, flat, forgotten, noisy),
    shuffled: `(X [n, T], truth [n])`."""
    rng = np.random.default_rng(seed)
    curves = [np.linspace(3, 0.1, T), np.linspace(3, 2.5, T), np.full(T, 1.0), np.linspace(0.5, 3, T),
              np.array([3, 0, 3, 0, 3, 0.0])]  # fmt: skip
    X = np.concatenate([curves[c] + noise * rng.normal(size=(s, T)) for c, s in enumerate(sizes)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    perm = rng.permutation(X.shape[0])
    return X[perm], truth[perm]


def record_of(X, labels=None, nonfinite=None):
    return ScoreRecord.from_arrays({"loss": np.asarray(X, dtype=np.float32).T}, labels=labels, nonfinite=nonfinite)


# ------------------------------------------------------------------------------------------------ references


def paper_counts(sizes, budget):
    """Algorithm 1 of the paper, counts only: clusters by size (ties: lower id), each takes min(|C_k|, R_k) with
    R_k = floor((B - |S|) / (K - k + 1))."""
    order = sorted(range(len(sizes)), key=lambda c: (sizes[c], c))
    counts, left = [0] * len(sizes), budget
    for visited, c in enumerate(order):
        share = left // (len(order) - visited)
        counts[c] = min(sizes[c], share)
        left -= counts[c]
    return counts


def is_water_filling(counts, sizes, budget):
    """The independent characterisation of "as evenly as possible": the counts add up to the budget, and for some
    level t every cluster below its size holds t or t + 1 while every cluster taken whole is no larger than t + 1."""
    counts, sizes = np.asarray(counts), np.asarray(sizes)
    if counts.sum() != min(budget, sizes.sum()) or (counts > sizes).any():
        return False
    partial = counts < sizes
    if not partial.any():
        return True
    t = counts[partial].min()
    return bool(np.isin(counts[partial], [t, t + 1]).all() and (sizes[~partial] <= t + 1).all())


def authors_rule(assignment, budget, seed):
    """The authors' selection once faiss has assigned the clusters (`faiss_kmeans_selection` after `index.search`),
    re-written from its behaviour: cluster ids and sizes from `np.unique`; clusters of more than two samples visited
    by `np.argsort` of the sizes, each taking `budget // clusters left`, whole if it is no larger, else
    `np.random.choice(members, share, replace=False)`; what is left drawn from the pooled clusters of one or two. Their
    generator is numpy's global one (unseeded there; seeded here)."""
    np.random.seed(seed)
    ids, sizes = np.unique(assignment, return_counts=True)
    visit = [c for c in np.argsort(sizes) if sizes[c] > 2]
    out = []
    for done, c in enumerate(visit):
        share = budget // (len(visit) - done)
        members = np.where(assignment == ids[c])[0]
        if len(members) > share:
            out.append(np.random.choice(members, share, replace=False))
            budget -= share
        else:
            out.append(members)
            budget -= len(members)
    if budget > 0:
        pool = np.where(np.isin(assignment, ids[sizes <= 2]))[0]
        out.append(np.random.choice(pool, budget, replace=False))
    return np.concatenate(out)


def skewed_assignment(rng, num_clusters, n):
    """Cluster ids with sizes from a heavy-tailed draw (several clusters of one or two samples, some ties)."""
    weights = rng.pareto(1.2, num_clusters) + 0.01
    sizes = np.maximum(1, np.round(weights / weights.sum() * n)).astype(int)
    ids = rng.permutation(np.arange(100, 100 + num_clusters))  # not 0 ... k-1: any integers
    return rng.permutation(np.repeat(ids, sizes))


# ------------------------------------------------------------------------------------------------ Algorithm 1


@pytest.mark.parametrize("seed", range(6))
def test_counts_are_algorithm_1_and_as_even_as_possible(seed):
    rng = np.random.default_rng(seed)
    assignment = skewed_assignment(rng, int(rng.integers(3, 30)), int(rng.integers(50, 600)))
    ids, sizes = np.unique(assignment, return_counts=True)
    for budget in sorted({0, 1, 7, assignment.size // 3, assignment.size // 2, assignment.size - 1, assignment.size}):
        chosen = s2l_sample(assignment, budget, np.random.RandomState(seed))
        assert chosen.size == budget and np.unique(chosen).size == budget
        counts = [int((assignment[chosen] == c).sum()) for c in ids]
        assert counts == paper_counts(sizes.tolist(), budget)
        assert is_water_filling(counts, sizes, budget)


@pytest.mark.parametrize("seed", range(6))
def test_same_ids_as_the_authors_code_on_the_same_clusters(seed):
    rng = np.random.default_rng(100 + seed)
    while True:  # sizes without ties: their np.argsort is not stable, so ties may be visited in another order
        assignment = skewed_assignment(rng, int(rng.integers(4, 25)), int(rng.integers(80, 500)))
        sizes = np.unique(assignment, return_counts=True)[1]
        if np.unique(sizes).size == sizes.size:
            break
    big = int(sizes[sizes > 2].sum())
    for budget in sorted({5, assignment.size // 4, big - 1, min(big + 1, assignment.size)}):
        ours = s2l_sample(assignment, budget, np.random.RandomState(seed), min_cluster_size=3)
        theirs = authors_rule(assignment, budget, seed)
        np.testing.assert_array_equal(ours, theirs)  # the same draws, in the same order


def test_tiny_clusters_are_kept_whole_by_the_paper_and_set_aside_by_the_code():
    assignment = np.array([0] * 50 + [1] * 30 + [2] + [3, 3])
    paper = s2l_sample(assignment, 20, np.random.RandomState(0))
    assert np.bincount(assignment[paper]).tolist() == [9, 8, 1, 2]
    code = s2l_sample(assignment, 20, np.random.RandomState(0), min_cluster_size=3)
    assert np.bincount(assignment[code], minlength=4).tolist() == [10, 10, 0, 0]
    # when the big clusters cannot fill the budget, the set-aside ones fill it
    code = s2l_sample(assignment, 82, np.random.RandomState(0), min_cluster_size=3)
    counts = np.bincount(assignment[code], minlength=4).tolist()
    assert counts[:2] == [50, 30] and counts[2] + counts[3] == 2  # 2 drawn from the pooled 3


# ------------------------------------------------------------------------------------------------ clustering


def test_clusters_agree_with_scikit_learn_kmeans_where_they_are_clear():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    from sklearn.metrics import adjusted_rand_score

    X, truth = planted()
    scores = get_strategy("s2l", num_clusters=5).score(record_of(X))
    reference = sklearn_cluster.KMeans(n_clusters=5, n_init=10, random_state=0).fit_predict(X)
    assert adjusted_rand_score(reference, scores) == 1.0
    assert adjusted_rand_score(truth, scores) == 1.0
    # the score is the cluster numbered by size: 0 is the smallest (the 5 noisy ones), 4 the biggest
    assert np.array_equal(np.bincount(scores.astype(int)), sorted(SIZES))


def test_select_on_planted_trajectories():
    X, truth = planted()
    strategy = get_strategy("s2l", num_clusters=5, seed=3)
    result = strategy.select(record_of(X), prune_ratio=0.8)
    n = X.shape[0]
    assert result.num_kept == n - int(np.floor(0.8 * n))
    kept_per_truth = np.bincount(truth[result.kept_ids], minlength=5).tolist()
    assert kept_per_truth == paper_counts(SIZES, result.num_kept) == [34, 34, 34, 20, 5]
    assert result.params["cluster_kept"] == [5, 20, 34, 34, 34] and result.params["selection"] == "s2l"
    assert result.provenance["cluster_sizes"] == sorted(SIZES) and result.provenance["num_clusters_used"] == 5
    assert result.provenance["s2l_epochs"] == list(range(T))
    again = get_strategy("s2l", num_clusters=5, seed=3).select(record_of(X), prune_ratio=0.8)
    np.testing.assert_array_equal(again.kept_ids, result.kept_ids)
    other = get_strategy("s2l", num_clusters=5, seed=4).select(record_of(X), prune_ratio=0.8)
    assert not np.array_equal(other.kept_ids, result.kept_ids)
    with pytest.raises(ValueError, match=r"selection must be one of \('s2l',\)"):
        strategy.select(record_of(X), prune_ratio=0.8, selection="rank")


def test_registered_with_its_paper_and_defaults():
    assert "s2l" in list_strategies()
    info = strategy_info("s2l")
    assert info["parameters"]["num_clusters"]["default"] == 100 and info["requires"] == ["loss"]
    assert "yang2024smalltolarge" in info["citation"] and "NeurIPS 2024" in get_strategy("s2l").__doc__
    assert S2LConfig.from_strings({"epochs": "[0, 2]", "num_clusters": "7"}) == S2LConfig(
        epochs=[0, 2], num_clusters=7
    )
    record = ScoreRecord.from_arrays({"p_target": np.random.rand(3, 10)})
    with pytest.raises(ValueError, match=r"`s2l` needs signal\(s\) \['loss'\].*record_signals"):
        get_strategy("s2l").select(record, 0.5)
    assert get_strategy("s2l", signal="p_target").select(record, 0.5).num_kept == 5


def test_config_checks_say_what_to_do():
    with pytest.raises(ValueError, match="num_clusters must be >= 1 \\(the paper uses 100\\)"):
        S2LConfig(num_clusters=0)
    with pytest.raises(ValueError, match="missing must be one of .*'zero' is the authors' code"):
        S2LConfig(missing="drop")
    with pytest.raises(ValueError, match="min_cluster_size must be >= 1"):
        S2LConfig(min_cluster_size=0)
    with pytest.raises(ValueError, match="epochs must be None, an int"):
        S2LConfig(epochs="all")


def test_more_clusters_than_samples_and_the_default_k():
    X, _ = planted(sizes=[20, 10])
    result = get_strategy("s2l").select(record_of(X), prune_ratio=0.5)  # K = 100 > 30 trajectories
    assert result.provenance["num_clusters_used"] <= 30 and result.num_kept == 15


# ------------------------------------------------------------------------------------------------ epochs


def test_epochs_pick_the_trajectory_points():
    assert select_epochs(6, None) == [0, 1, 2, 3, 4, 5]
    assert select_epochs(6, 2) == [0, 1]
    assert select_epochs(6, [1, 3, 5]) == [1, 3, 5]
    with pytest.raises(ValueError, match="epochs=9 needs that many recorded epochs; the record has 6"):
        select_epochs(6, 9)
    with pytest.raises(ValueError, match=r"strictly increasing list .* in \[0, 5\]; \[7\] are not recorded"):
        select_epochs(6, [1, 7])
    with pytest.raises(ValueError, match="strictly increasing"):
        select_epochs(6, [3, 1])
    X, _ = planted()
    result = get_strategy("s2l", num_clusters=5, epochs=[0, 1, 3]).select(record_of(X), 0.5)
    assert result.provenance["s2l_epochs"] == [0, 1, 3]


# ------------------------------------------------------------------------------------------------ NaN, non-finite


def test_fill_missing_by_definition():
    block = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [1, 2, 3, 4, 5], [np.nan] * 5])
    filled, scored, holey = fill_missing(block, "interpolate")
    np.testing.assert_array_equal(filled[0], [1, 1, 2, 3, 3])  # linear inside, constant at the ends
    assert scored.tolist() == [True, True, False] and holey.tolist() == [True, False, False]
    _, scored, _ = fill_missing(block, "exclude")
    assert scored.tolist() == [False, True, False]
    filled, scored, _ = fill_missing(block, "zero")  # the authors' losses[isnan] = 0
    assert scored.all() and filled[0].tolist() == [0, 1, 0, 3, 0] and not filled[2].any()


def test_unseen_epochs_are_interpolated_and_never_seen_samples_go_first():
    X, truth = planted()
    X = X.copy()
    holey = np.flatnonzero(truth == 2)[:10]  # flat trajectories with one epoch missing
    X[holey, 2] = np.nan
    never = np.flatnonzero(truth == 0)[:3]
    X[never] = np.nan
    result = get_strategy("s2l", num_clusters=5).select(record_of(X), prune_ratio=0.5)
    scores = result.scores
    flat = scores[np.flatnonzero(truth == 2)[10]]
    assert (scores[holey] == flat).all()  # interpolated, still in their cluster
    assert np.isnan(scores[never]).all() and not np.isin(never, result.kept_ids).any()
    assert result.provenance["trajectories_filled"] == 10 and result.provenance["no_trajectory"] == 3
    excluded = get_strategy("s2l", num_clusters=5, missing="exclude").score(record_of(X))
    assert np.isnan(excluded[holey]).all()
    zero = get_strategy("s2l", num_clusters=5, missing="zero").score(record_of(X))
    assert not np.isnan(zero).any()


def test_samples_seen_only_with_non_finite_loss_are_kept():
    X, truth = planted()
    X = X.copy()
    diverged = np.flatnonzero(truth == 0)[:4]
    X[diverged] = np.nan
    nonfinite = np.zeros((T, X.shape[0]), dtype=bool)
    nonfinite[:, diverged] = True
    with pytest.warns(NonFiniteRecordWarning, match="4 sample"):
        result = get_strategy("s2l", num_clusters=5).select(record_of(X, nonfinite=nonfinite), prune_ratio=0.9)
    assert np.isin(diverged, result.kept_ids).all()
    assert result.num_kept == X.shape[0] - int(np.floor(0.9 * X.shape[0]))
    assert result.provenance["nonfinite"] == {"samples": 4, "unscored_kept": 4}


def test_a_budget_beyond_the_clustered_samples_is_filled_by_never_seen_ones():
    X, _ = planted(sizes=[60, 40])
    X = X.copy()
    X[:30] = np.nan  # 30 of 100 never seen
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = get_strategy("s2l", num_clusters=2).select(record_of(X), prune_ratio=0.1)
    assert result.num_kept == 90 and np.isin(np.arange(30, 100), result.kept_ids).all()


def test_mostly_unseen_records_are_refused():
    X = np.full((10, T), np.nan)
    X[:3] = 1.0
    with pytest.raises(ValueError, match="7 of 10 samples have no score"):
        get_strategy("s2l", num_clusters=2).select(record_of(X), prune_ratio=0.5)


# ------------------------------------------------------------------------------------------------ class balance


def test_class_balanced_removes_the_same_fraction_from_each_class():
    X, truth = planted()
    labels = np.arange(X.shape[0]) % 3
    result = get_strategy("s2l", num_clusters=5).select(record_of(X, labels=labels), 0.6, class_balanced=True)
    counts = np.bincount(labels)
    assert np.bincount(labels[result.kept_ids]).tolist() == (counts - np.floor(0.6 * counts)).astype(int).tolist()
    for c in range(3):  # inside each class, Algorithm 1 over the (global) clusters
        members = labels == c
        kept = np.isin(np.arange(X.shape[0]), result.kept_ids) & members
        sizes = [int((members & (truth == t)).sum()) for t in range(5)]
        assert np.bincount(truth[kept], minlength=5).tolist() == paper_counts(sizes, int(kept.sum()))
    with pytest.raises(ValueError, match="class_balanced=True needs labels"):
        get_strategy("s2l", num_clusters=5).select(record_of(X), 0.6, class_balanced=True)


# ------------------------------------------------------------------------------------------------ scale, export


def test_large_records_go_through_a_memory_map(monkeypatch):
    X, _ = planted()
    in_memory = get_strategy("s2l", num_clusters=5).select(record_of(X), 0.7)
    monkeypatch.setattr(s2l_module, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(s2l_module, "CHUNK", 100)  # several blocks
    on_disk = get_strategy("s2l", num_clusters=5).select(record_of(X), 0.7)
    np.testing.assert_array_equal(on_disk.kept_ids, in_memory.kept_ids)
    np.testing.assert_array_equal(on_disk.scores, in_memory.scores)


def test_exported_list_and_card(tmp_path):
    pytest.importorskip("matplotlib")
    X, _ = planted()
    result = get_strategy("s2l", num_clusters=5).select(record_of(X, labels=np.arange(X.shape[0]) % 2), 0.5)
    folder = result.save(tmp_path / "list", source=("org/src", "train", "main"))
    assert (folder / "images/score_histogram.png").stat().st_size > 1000
    text = (folder / "README.md").read_text()
    assert "SmallToLarge (S2L)" in text and "yang2024smalltolarge" in text
    loaded = PruneResult.load(folder)
    np.testing.assert_array_equal(loaded.kept_ids, result.kept_ids)
    assert loaded.params["cluster_kept"] == result.params["cluster_kept"]
