"""Every static strategy against an independent, loop-by-loop reading of its paper's definition, on small synthetic
records; the planted-structure test of Dyn-Unc (paper Sec. 3.3); bad inputs."""

import math
import statistics

import numpy as np
import pytest
import torch

from hf_prune import ScoreRecord, compute_signals, get_strategy, list_strategies
from hf_prune.selection import rank


K, N, C = 9, 60, 4


def synthetic_logits(seed, K=K, n=N, C=C):
    """Logits that drift towards the label with noise, so correctness flips and margins change sign."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=n)
    logits = rng.normal(size=(K, n, C))
    drift = np.linspace(-0.5, 2.5, K)[:, None] * rng.uniform(-1, 1, n)[None, :]  # some are never learned
    logits[:, np.arange(n), labels] += drift
    return logits.astype(np.float32), labels


def record_from_logits(logits, labels, nan_frac=0.0, seed=0):
    """A record whose signals come from the library's own `compute_signals` (as `PruningTrainer` records them)."""
    names = ["p_target", "loss", "correct", "margin", "logit_margin", "entropy", "el2n"]
    arrays = {name: np.empty(logits.shape[:2], dtype=np.float32) for name in names}
    for k in range(logits.shape[0]):
        values = compute_signals(torch.from_numpy(logits[k]), torch.from_numpy(labels), names).numpy()
        for i, name in enumerate(names):
            arrays[name][k] = values[:, i]
    if nan_frac:
        mask = np.random.default_rng(seed).random(logits.shape[:2]) < nan_frac
        for a in arrays.values():
            a[mask] = np.nan
    return ScoreRecord.from_arrays(arrays, labels=labels)


def softmax(z):
    e = [math.exp(v - max(z)) for v in z]
    return [v / sum(e) for v in e]


def seen_values(record, signal, i, epochs=None):
    arr = record.signal(signal)
    epochs = range(record.num_epochs) if epochs is None else epochs
    return [float(arr[k, i]) for k in epochs if not math.isnan(arr[k, i])]


def assert_scores(actual, expected, rtol=1e-6, atol=1e-7):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(actual), np.isinf(expected))
    ok = np.isfinite(expected)
    np.testing.assert_allclose(actual[ok], expected[ok], rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def run():
    logits, labels = synthetic_logits(0)
    return logits, labels, record_from_logits(logits, labels)


@pytest.fixture(scope="module")
def holey_run():
    logits, labels = synthetic_logits(1)
    return logits, labels, record_from_logits(logits, labels, nan_frac=0.2, seed=3)


# ------------------------------------------------------------------------------------------------ the registry


def test_registry_lists_every_method_with_a_summary():
    expected = {"random", "dyn_unc", "static_uncertainty", "forgetting", "entropy", "el2n", "grand", "cartography",
                "aum", "moderate", "ssp", "ccs"}  # fmt: skip
    listed = list_strategies()
    assert expected <= set(listed)
    assert all(summary and "\n" not in summary for summary in listed.values())


def test_every_docstring_states_paper_and_kept_end():
    from hf_prune.strategies import get_strategy_class

    for name in list_strategies():
        cls = get_strategy_class(name)
        doc = cls.__doc__ or ""
        if name == "random":
            assert "highest are kept" in doc
            continue
        assert any(str(year) in doc for year in range(2015, 2026)), f"{name}: no paper year in the docstring"
        if name != "ccs":  # CCS samples across strata; its docstring defines the hard end instead
            assert "**highest**" in doc or "**lowest**" in doc, f"{name}: docstring does not say which end it keeps"


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="Known strategies:.*dyn_unc.*forgetting"):
        get_strategy("forgeting")


def test_missing_signal_names_the_trainer_argument(run):
    record = ScoreRecord.from_arrays({"p_target": np.random.rand(5, 10)})
    for name, signal in [("forgetting", "correct"), ("el2n", "el2n"), ("aum", "logit_margin"), ("entropy", "entropy")]:
        with pytest.raises(ValueError, match=rf"`{name}` needs.*'{signal}'.*record_signals"):
            get_strategy(name).select(record, 0.5)


def test_unknown_parameter_is_refused():
    with pytest.raises(TypeError, match="accepts"):
        get_strategy("forgetting", window=3)


# ------------------------------------------------------------------------------------------------ naive fidelity


def test_random_is_seeded_and_uniform():
    record = ScoreRecord.from_arrays({"p_target": np.zeros((2, 40))}, labels=np.arange(40) % 4)
    a = get_strategy("random", seed=7).select(record, 0.5)
    b = get_strategy("random", seed=7).select(record, 0.5)
    np.testing.assert_array_equal(a.kept_ids, b.kept_ids)
    kept_counts = np.zeros(40)
    for seed in range(300):
        kept_counts[get_strategy("random", seed=seed).select(record, 0.5).kept_ids] += 1
    # Each sample kept with probability 1/2: 300 draws -> mean 150, std ~8.7; 5 sigma bounds.
    assert kept_counts.min() > 150 - 45 and kept_counts.max() < 150 + 45
    balanced = get_strategy("random", seed=3).select(record, 0.5, class_balanced=True)
    assert np.bincount(record.labels[balanced.kept_ids]).tolist() == [5, 5, 5, 5]


@pytest.mark.parametrize("window,start", [(5, 0), (3, 2), (2, 0)])
def test_static_uncertainty_matches_naive(holey_run, window, start):
    _, _, record = holey_run
    expected = []
    for i in range(record.num_samples):
        values = seen_values(record, "p_target", i, range(start, start + window))
        expected.append(statistics.stdev(values) if len(values) >= 2 else float("nan"))
    assert_scores(get_strategy("static_uncertainty", window=window, start=start).score(record), expected)


def test_static_uncertainty_is_first_dyn_unc_window(run):
    _, _, record = run
    first = ScoreRecord.from_arrays({"p_target": record.signal("p_target")[:6]})  # K = J + 1: one window
    assert_scores(
        get_strategy("static_uncertainty", window=5).score(record), get_strategy("dyn_unc", window=5).score(first)
    )


@pytest.mark.parametrize("fixture", ["run", "holey_run"])
def test_forgetting_matches_naive(request, fixture):
    _, _, record = request.getfixturevalue(fixture)
    expected = []
    for i in range(record.num_samples):
        acc = seen_values(record, "correct", i)
        if not acc:
            expected.append(float("nan"))
        elif max(acc) < 1:
            expected.append(float("inf"))  # never learned: most forgettable (Toneva et al.)
        else:
            expected.append(sum(1 for a, b in zip(acc, acc[1:]) if a == 1 and b == 0))
    scores = get_strategy("forgetting").score(record)
    assert_scores(scores, expected)
    assert np.isinf(scores).any() and (scores[np.isfinite(scores)] > 0).any()


def test_forgetting_keeps_never_learned_first():
    correct = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 0, 1]], dtype=np.float32).T  # [epochs, n]
    # sample 0: 1->0->1->1 one event; 1: never learned; 2: 0->0->0->1 none; 3: 1->1->0->1 one event
    result = get_strategy("forgetting").select(ScoreRecord.from_arrays({"correct": correct}), 0.5)
    assert result.scores.tolist() == [1.0, float("inf"), 0.0, 1.0]
    assert result.kept_ids.tolist() == [0, 1]  # inf first, then the tie 0 vs 3 goes to the lower id


def test_entropy_matches_naive_final_model(holey_run):
    logits, labels, record = holey_run
    expected = []
    for i in range(record.num_samples):
        k = max([k for k in range(record.num_epochs) if not math.isnan(record.signal("entropy")[k, i])], default=None)
        if k is None:
            expected.append(float("nan"))
            continue
        p = softmax([float(v) for v in logits[k, i]])
        expected.append(-sum(q * math.log(q) for q in p))
    assert_scores(get_strategy("entropy").score(record), expected, rtol=1e-5)


def test_el2n_matches_naive_and_averages_over_runs():
    runs = [synthetic_logits(10 + r) for r in range(3)]
    labels = runs[0][1]
    records = [record_from_logits(logits, labels) for logits, _ in runs]
    epoch = 2
    expected = []
    for i in range(N):
        norms = []
        for logits, _ in runs:
            p = softmax([float(v) for v in logits[epoch, i]])
            norms.append(math.sqrt(sum((q - (c == labels[i])) ** 2 for c, q in enumerate(p))))
        expected.append(sum(norms) / len(norms))
    strategy = get_strategy("el2n", epoch=epoch)
    assert_scores(strategy.score(records), expected, rtol=1e-5)
    result = strategy.select(records, 0.25)
    assert len(result.provenance["runs"]) == 3 and result.provenance["el2n_epochs"] == [2, 2, 2]
    np.testing.assert_array_equal(result.kept_ids, np.sort(rank(np.array(expected), "high")[:45]))


def test_el2n_default_epoch_is_ten_percent_in():
    from hf_prune.strategies.el2n import default_early_epoch

    assert default_early_epoch(300) == 29 and default_early_epoch(200) == 19 and default_early_epoch(9) == 0


def test_grand_averages_each_runs_norm_over_runs():
    """GraNd over runs = the mean of each run's ||p - y|| sqrt(1 + ||h||^2) (the paper's E over runs, the data-diet
    code's `get_mean_score` over per-run scores), not the mean error times one run's feature factor."""
    torch.manual_seed(1)
    n, d, runs = 40, 5, 3
    labels = torch.randint(0, C, (n,))
    records, feats, expected = [], [], np.zeros(n)
    for _ in range(runs):
        h = torch.randn(n, d) * (1 + 2 * torch.rand(n, 1))  # feature norms differ from run to run
        head = torch.nn.Linear(d, C)
        norms = []
        for i in range(n):
            head.zero_grad()
            torch.nn.functional.cross_entropy(head(h[i : i + 1]), labels[i : i + 1]).backward()
            norms.append(math.sqrt(float(head.weight.grad.pow(2).sum() + head.bias.grad.pow(2).sum())))
        expected += np.array(norms) / runs
        with torch.no_grad():
            records.append(record_from_logits(head(h).numpy()[None], labels.numpy()))
        feats.append(h.numpy())
    scores = get_strategy("grand", features=feats).score(records)
    assert_scores(scores, expected, rtol=1e-5)
    err = np.mean([r.signal("el2n")[0] for r in records], axis=0)
    one_factor = err * np.sqrt(1 + (feats[0] ** 2).sum(1))  # the old rule
    assert not np.allclose(one_factor, expected, rtol=1e-2)
    with pytest.raises(ValueError, match="that run.s own penultimate features"):
        get_strategy("grand", features=feats[0]).score(records)
    # full-network mode: stored per-run norms, averaged the same way (NaN where a run did not score a sample)
    runs_norms = [np.random.default_rng(r).random(n) for r in range(runs)]
    runs_norms[1][:5] = np.nan
    full = get_strategy("grand", grad_norms=runs_norms).score(records)
    assert_scores(full, np.nanmean(np.stack(runs_norms), axis=0))
    assert get_strategy("grand", grad_norms=runs_norms).required_signals() == ()


def test_grand_equals_autograd_last_layer_gradient_norm():
    """With penultimate features, GraNd must equal the true per-sample gradient norm of the loss w.r.t. (W, b)."""
    torch.manual_seed(0)
    n, d = 30, 7
    h = torch.randn(n, d)
    head = torch.nn.Linear(d, C)
    labels = torch.randint(0, C, (n,))
    expected = []
    for i in range(n):
        head.zero_grad()
        torch.nn.functional.cross_entropy(head(h[i : i + 1]), labels[i : i + 1]).backward()
        expected.append(math.sqrt(float(head.weight.grad.pow(2).sum() + head.bias.grad.pow(2).sum())))
    with torch.no_grad():
        logits = head(h).numpy()[None]
    record = record_from_logits(logits, labels.numpy())
    assert_scores(get_strategy("grand", features=h.numpy()).score(record), expected, rtol=1e-5)
    # Without features: the bias-gradient norm ||p - y||, i.e. EL2N of that epoch.
    assert_scores(get_strategy("grand").score(record), record.signal("el2n")[0])


def test_cartography_matches_naive(holey_run):
    _, _, record = holey_run
    conf, var = [], []
    for i in range(record.num_samples):
        v = seen_values(record, "p_target", i)
        conf.append(statistics.fmean(v) if v else float("nan"))
        var.append(statistics.pstdev(v) if v else float("nan"))
    assert_scores(get_strategy("cartography").score(record), var)
    assert_scores(get_strategy("cartography", region="easy").score(record), conf)
    hard = get_strategy("cartography", region="hard").select(record, 0.5)
    assert hard.params["keep"] == "low"
    kept_conf = np.array(conf)[hard.kept_ids]
    assert np.nanmax(kept_conf) <= np.nanmin(np.delete(np.array(conf), hard.kept_ids))


def test_aum_matches_naive(holey_run):
    logits, labels, record = holey_run
    expected = []
    for i in range(record.num_samples):
        margins = []
        for k in range(record.num_epochs):
            if math.isnan(record.signal("p_target")[k, i]):
                continue
            z = [float(v) for v in logits[k, i]]
            assigned = z[labels[i]]
            margins.append(assigned - max(v for c, v in enumerate(z) if c != labels[i]))
        expected.append(sum(margins) / len(margins) if margins else float("nan"))
    assert_scores(get_strategy("aum").score(record), expected, rtol=1e-5, atol=1e-5)
    assert get_strategy("aum").select(record, 0.3).params["keep"] == "low"


def official_moderate_distances(features, labels):
    """The authors' `get_median` + `get_distance`: Euclidean distance to the coordinate-wise median of the class."""
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    centres = {c: np.median(features[labels == c], axis=0) for c in np.unique(labels)}
    return np.array([np.linalg.norm(f - centres[y]) for f, y in zip(features, labels)])


def official_moderate_removed(distance, rate):
    """The authors' `get_prune_idx`: ids outside the central rank band [round(n (0.5 - s/2)), round(n (0.5 + s/2)))
    of the global distance ranking, s the kept fraction ("selection ratio")."""
    order = np.argsort(distance, kind="stable")
    lo, hi = round(distance.shape[0] * (0.5 - rate / 2)), round(distance.shape[0] * (0.5 + rate / 2))
    return np.concatenate([order[:lo], order[hi:]])


def skewed_features(n=5000, d=4, classes=3, seed=0):
    """Features whose distance to the class median is strongly right-skewed (lognormal radii)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * rng.lognormal(0.0, 1.2, size=(n, 1)), rng.integers(0, classes, n)


def test_moderate_keeps_the_authors_central_rank_band_on_skewed_distances():
    """At 25 % removed the authors' code removes 625 of 5,000 below the median distance and 625 above, however skewed;
    a value band |d - median| (hf_prune before) removes far fewer below."""
    feats, labels = skewed_features()
    record = ScoreRecord.from_arrays({"p_target": np.zeros((1, 5000), np.float32)}, labels=labels)
    result = get_strategy("moderate", features=feats).select(record, 0.25)
    dist = official_moderate_distances(feats, labels)
    removed = official_moderate_removed(dist, 0.75)
    np.testing.assert_array_equal(np.sort(removed), result.removed_ids)
    median = np.median(dist)
    assert (dist[removed] < median).sum() == 625 == (dist[removed] > median).sum()
    value_band = rank(np.abs(dist - median), "low")[3750:]
    assert (dist[value_band] < median).sum() < 400  # the long tail takes most of a value band's cut
    for ratio in (0.1, 0.5, 0.9):  # r n even: the same kept set as theirs
        kept = get_strategy("moderate", features=feats).select(record, ratio).kept_ids
        np.testing.assert_array_equal(kept, np.setdiff1d(np.arange(5000), official_moderate_removed(dist, 1 - ratio)))


def test_moderate_centre_is_the_coordinate_median_and_odd_removals_go_below(run):
    _, labels, record = run
    feats = np.random.default_rng(5).normal(size=(N, 6)) ** 3  # skewed coordinates: median != mean
    dist = official_moderate_distances(feats, labels)
    scores = get_strategy("moderate", features=feats).score(record)
    a = 2 * np.argsort(np.argsort(dist, kind="stable")) - (N - 1)  # twice the signed rank distance to the median
    np.testing.assert_allclose(scores, (2 * np.abs(a) - (a > 0)) / (2 * N))
    result = get_strategy("moderate", features=feats).select(record, 0.25)  # 15 removed: 8 below, 7 above
    order = np.argsort(dist, kind="stable")
    np.testing.assert_array_equal(np.sort(np.concatenate([order[:8], order[-7:]])), result.removed_ids)
    mean_centre = get_strategy("moderate", features=feats, centre="mean").score(record)
    assert not np.allclose(mean_centre, scores)
    per_class = get_strategy("moderate", features=feats, median="class").select(record, 0.5, class_balanced=True)
    for c in range(C):  # each class keeps its own central band
        members = np.flatnonzero(labels == c)
        ranks = np.argsort(np.argsort(dist[members], kind="stable"))
        kept = np.isin(members, per_class.kept_ids)
        m, k = members.size, kept.sum()
        lo = (m - k + 1) // 2
        assert set(ranks[kept]) == set(range(lo, lo + k))


def test_moderate_reads_float16_feature_folder(tmp_path, run):
    from hf_prune.features import save_features

    _, labels, record = run
    feats = np.random.default_rng(6).normal(size=(N, 5)).astype(np.float32)
    store = save_features(tmp_path / "feats", feats)
    assert store.features.dtype == np.float16 and isinstance(store.features, np.memmap)
    dist = official_moderate_distances(feats.astype(np.float16).astype(np.float64), labels)
    result = get_strategy("moderate", features=str(tmp_path / "feats")).select(record, 0.3)
    np.testing.assert_array_equal(np.sort(official_moderate_removed(dist, 0.7)), result.removed_ids)
    assert result.params["features"] == str(tmp_path / "feats")
    assert result.provenance["features"]["shape"] == [N, 5]


def test_ssp_distance_to_nearest_centroid_matches_naive(run):
    from hf_prune.kmeans import kmeans

    _, _, record = run
    rng = np.random.default_rng(7)
    feats = np.concatenate(
        [rng.normal(loc=c, scale=0.3, size=(N // 4, 3)) for c in np.eye(3, 3).tolist() + [[-1, -1, 0]]]
    )
    strategy = get_strategy("ssp", features=feats, num_clusters=4, num_iter=30, seed=1)
    scores = strategy.score(record)
    centres = kmeans(feats, 4, num_iter=30, normalize=True, seed=1).numpy()
    expected = []
    for f in feats:
        u = f / math.sqrt(sum(v * v for v in f))
        expected.append(min(math.sqrt(sum((u[j] - c[j]) ** 2 for j in range(3))) for c in centres))
    assert_scores(scores, expected, rtol=1e-5, atol=1e-6)
    result = strategy.select(record, 0.25)
    assert scores[result.kept_ids].min() >= scores[result.removed_ids].max()  # keeps the farthest
    assert result.provenance["num_clusters_used"] == 4


def test_features_of_the_wrong_length_are_refused(run):
    _, _, record = run
    for name in ("moderate", "ssp", "grand"):
        with pytest.raises(ValueError, match=rf"features have {N - 1} rows but the record has {N} samples"):
            get_strategy(name, features=np.zeros((N - 1, 3))).select(record, 0.2)


def test_feature_methods_without_features_say_how_to_get_them(run):
    _, _, record = run
    with pytest.raises(ValueError, match="extract_features"):
        get_strategy("moderate").select(record, 0.2)


def test_single_record_methods_refuse_several(run):
    _, _, record = run
    with pytest.raises(ValueError, match="scores one record"):
        get_strategy("forgetting").select([record, record], 0.2)


def test_ccs_strategy_wraps_any_score(run):
    _, _, record = run
    result = get_strategy("ccs", score="forgetting", hard_cutoff=0.1, num_strata=5).select(record, 0.5)
    assert result.num_kept == N // 2
    assert result.params["score"] == "forgetting" and result.params["hard_cutoff"] == 0.1
    # the CCS authors' code counts never-learned samples as 0 forgetting events
    forgetting = get_strategy("forgetting", never_learned="zero").score(record)
    np.testing.assert_array_equal(result.scores, forgetting)
    toneva = get_strategy("forgetting").score(record)
    assert np.isinf(toneva).any() and (forgetting[np.isinf(toneva)] == 0).all()
    hardest = rank(forgetting, "high")[: int(0.1 * N)]
    assert not set(hardest) & set(result.kept_ids)
    default = get_strategy("ccs").select(record, 0.05)  # AUM; beta defaults to min(0.1, ratio)
    assert default.params["hard_cutoff"] == 0.05 and default.params["keep"] == "low"


# ------------------------------------------------------------------------------------------------ planted structure


def planted_dynamics(seed=0, per_group=50, K=30):
    """Four kinds of samples (paper Sec. 3.3): easy (learned at once), uncertain (p_target oscillates around 0.5
    throughout), hard-but-learnable (learned late, then stable) and mislabeled (never learned)."""
    rng = np.random.default_rng(seed)
    t = np.arange(K)[:, None]
    noise = lambda: rng.normal(0, 0.02, size=(K, per_group))  # noqa: E731
    easy = np.clip(0.97 + noise(), 0, 1)
    uncertain = np.clip(0.5 + 0.3 * np.sign(np.sin(t * 1.7 + rng.random(per_group) * 6)) + noise(), 0, 1)
    onset = rng.integers(8, 14, size=per_group)
    hard = np.clip(0.05 + 0.9 / (1 + np.exp(-(t - onset[None, :]) * 1.2)) + noise(), 0, 1)
    mislabeled = np.clip(0.03 + noise(), 0, 1)
    p = np.concatenate([easy, uncertain, hard, mislabeled], axis=1).astype(np.float32)
    groups = np.repeat(["easy", "uncertain", "hard", "mislabeled"], per_group)
    return ScoreRecord.from_arrays({"p_target": p, "correct": (p > 0.5).astype(np.float32)}), groups


def test_dyn_unc_removes_easy_and_mislabeled_first_and_keeps_uncertain():
    record, groups = planted_dynamics()
    result = get_strategy("dyn_unc", window=10).select(record, prune_ratio=0.5)
    removed = groups[result.removed_ids]
    kept = groups[result.kept_ids]
    assert set(removed) == {"easy", "mislabeled"}  # exactly the stable ones go at 50%
    assert (kept == "uncertain").sum() == 50 and (kept == "hard").sum() == 50
    # ranking: uncertain > hard-learnable > {easy, mislabeled}
    means = {g: result.scores[groups == g].mean() for g in ("easy", "uncertain", "hard", "mislabeled")}
    assert means["uncertain"] > means["hard"] > max(means["easy"], means["mislabeled"])
    # At 25% every removed sample is easy or mislabeled, and no uncertain one goes even at 70%.
    assert set(groups[get_strategy("dyn_unc", window=10).select(record, 0.25).removed_ids]) <= {"easy", "mislabeled"}
    assert "uncertain" not in set(groups[get_strategy("dyn_unc", window=10).select(record, 0.7).removed_ids])


def test_planted_structure_contrasts_with_other_methods():
    record, groups = planted_dynamics(seed=1)
    # Forgetting: never-learned (mislabeled) is kept as most forgettable, unlike Dyn-Unc.
    forgetting = get_strategy("forgetting").select(record, 0.5)
    assert (groups[forgetting.kept_ids] == "mislabeled").sum() == 50
    # Static (first 5 epochs) uncertainty cannot see the hard samples' late transition.
    static = get_strategy("static_uncertainty", window=5).select(record, 0.5)
    assert (groups[static.kept_ids] == "hard").sum() < 50
