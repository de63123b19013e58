"""hf_prune.dynamic: policy maths against naive references, the sampler's contract (constant length, determinism,
pruning period, state), InfoBatch's unbiasedness on a toy problem, the IterableDataset view, selection analysis, and
bad inputs. DynamicPruningTrainer integration (single process: lengths, record, weights, resume) is at the end; the
2-process torchrun test is in test_dynamic_distributed.py."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hf_prune import DynamicPruningArguments, DynamicPruningTrainer, PruningArguments, PruningTrainer, ScoreRecord
from hf_prune.dynamic import POLICIES as REGISTRY
from hf_prune.dynamic import (
    DynamicPolicy,
    DynamicPruningDataset,
    DynamicPruningSampler,
    PolicyConfig,
    Selection,
    get_policy,
    list_policies,
    num_kept,
    plot_selection_histogram,
    register_policy,
    selection_counts,
    selection_groups,
    static_result_from_selection,
    weighted_cross_entropy,
)
from tests.trainer_utils import collate, small_image_dataset, timm_model


POLICIES = ["random_dynamic", "uncertainty_ema", "epsilon_greedy", "ucb", "infobatch", "rs2", "seta"]
# Policies with one length for every epoch (InfoBatch only with its fixed-budget departure).
FIXED = {"random_dynamic": {}, "uncertainty_ema": {}, "epsilon_greedy": {}, "ucb": {},
         "infobatch": {"num_epochs": 6, "fixed_budget": True}}  # fmt: skip
VARYING = {"infobatch": {"num_epochs": 6}, "rs2": {}, "seta": {"num_epochs": 6}}


def observations(n=40, rounds=6, seed=0):
    """Per round: a random subset of ids and their losses (like training losses of the samples seen)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        ids = np.sort(rng.choice(n, size=rng.integers(n // 2, n + 1), replace=False))
        out.append((ids, rng.gamma(2.0, 1.0, size=ids.size)))
    return out


def naive_ema_var(n, obs, alpha):
    """Raju et al. Eq. 2-3, one sample at a time: first observation sets the EMA, variance starts at 0."""
    ema, var = [None] * n, [0.0] * n
    for ids, losses in obs:
        for i, s in zip(ids.tolist(), losses.tolist()):
            if ema[i] is None:
                ema[i] = s
            else:
                var[i] = (1 - alpha) * var[i] + alpha * (s - ema[i]) ** 2
                ema[i] = alpha * s + (1 - alpha) * ema[i]
    return np.array([np.nan if e is None else e for e in ema]), np.array(var)


def test_registry_lists_every_policy_and_rejects_unknowns():
    assert sorted(list_policies()) == sorted(POLICIES)
    with pytest.raises(ValueError, match="Unknown dynamic policy 'nope'"):
        get_policy("nope")
    with pytest.raises(TypeError, match="unknown parameter"):
        get_policy("ucb", epsilon=0.1)


@pytest.mark.parametrize("name", POLICIES)
def test_policies_are_configured_like_strategies(name):
    """Each policy has a config dataclass registered with it: keywords and config build the same policy, the checks
    live in the config, and the parameters round-trip through JSON."""
    cls = REGISTRY.get(name)
    config_class = cls.config_class
    assert issubclass(config_class, PolicyConfig) and config_class is not PolicyConfig
    assert all(f.metadata.get("help") for f in dataclasses.fields(config_class))
    params = {"prune_ratio": 0.3, **{k: v for k, v in FIXED.get(name, VARYING.get(name, {})).items()}}
    by_keywords = get_policy(name, **params)
    by_config = get_policy(name, config=config_class(**params))
    assert by_keywords.config == by_config.config == cls(**params).config
    assert by_keywords.params == by_config.config.to_dict() and by_keywords.prune_ratio == 0.3
    assert config_class.from_json_string(json.dumps(by_keywords.params)) == by_keywords.config
    assert set(REGISTRY.parameters(name)) == set(config_class.field_names())
    with pytest.raises(TypeError, match="either a config or keyword parameters"):
        get_policy(name, config=config_class(), prune_ratio=0.3)
    with pytest.raises(ValueError, match="prune_ratio must be in \\[0, 1\\)"):
        config_class(prune_ratio=1.0)
    other = next(n for n in REGISTRY.names() if REGISTRY.get(n).config_class is not config_class)
    with pytest.raises(TypeError, match=f"{cls.__name__} takes a {config_class.__name__}"):
        cls(REGISTRY.get(other).config_class())


@pytest.mark.parametrize("alpha", [0.8, 0.3])
def test_ema_and_ucb_match_naive_equations(alpha):
    n, obs = 40, observations()
    ema_ref, var_ref = naive_ema_var(n, obs, alpha)
    ucb = get_policy("ucb", prune_ratio=0.5, alpha=alpha, c=2.5)
    unc = get_policy("uncertainty_ema", prune_ratio=0.5, alpha=alpha)
    for p in (ucb, unc):
        p.reset(n)
        for ids, losses in obs:
            p.observe(ids, losses)
    np.testing.assert_allclose(unc.scores(), ema_ref, rtol=1e-12)
    np.testing.assert_allclose(ucb.scores(), ema_ref + 2.5 * var_ref, rtol=1e-12)
    # selection: the k highest scores (all seen here), whatever the tie-break
    rng = np.random.default_rng(0)
    for p, ref in ((unc, ema_ref), (ucb, ema_ref + 2.5 * var_ref)):
        k = num_kept(n, 0.5)
        ref = np.where(np.isnan(ref), np.inf, ref)  # never-observed samples are explored first
        chosen = p.select(0, k, rng).ids
        assert set(chosen) == set(np.argsort(-ref, kind="stable")[:k])


def test_epsilon_greedy_splits_greedy_and_random():
    n, k, eps = 200, 100, 0.2
    p = get_policy("epsilon_greedy", prune_ratio=0.5, epsilon=eps)
    p.reset(n)
    losses = np.linspace(0, 1, n)
    p.observe(np.arange(n), losses)
    top = set(range(n - 80, n))  # (1 - 0.2) * 100 = 80 greedy
    picks = [p.select(e, k, np.random.default_rng(e)).ids for e in range(200)]
    for ids in picks:
        assert top <= set(ids) and len(ids) == k
    rest_counts = np.bincount(np.concatenate(picks), minlength=n)[: n - 80]
    # 20 of the remaining 120 uniformly: expected 200 * 20 / 120 = 33.3 picks each
    assert abs(rest_counts.mean() - 200 * 20 / 120) < 1e-9
    assert rest_counts.min() > 10 and rest_counts.max() < 60


@pytest.mark.parametrize("name", ["uncertainty_ema", "epsilon_greedy", "ucb"])
def test_class_balanced_selection_keeps_every_class_share(name):
    n, k = 103, 40
    labels = np.repeat(np.arange(4), [50, 30, 20, 3])
    losses = np.where(labels == 0, 10.0, 0.0) + np.random.default_rng(0).random(n)  # class 0 has every top loss
    plain, balanced = get_policy(name, prune_ratio=0.5), get_policy(name, prune_ratio=0.5, class_balanced=True)
    for p in (plain, balanced):
        p.reset(n)
        p.observe(np.arange(n), losses, labels)
    greedy = 36 if name == "epsilon_greedy" else 40  # epsilon = 0.1: 36 ranked, 4 at random
    top_plain = plain.select(0, k, np.random.default_rng(0)).ids
    assert (labels[top_plain] == 0).sum() >= greedy  # the plain top-k is (nearly) all class 0
    chosen = balanced.select(0, k, np.random.default_rng(0)).ids
    if name != "epsilon_greedy":
        # quotas 40 * (50, 30, 20, 3) / 103 = (19.4, 11.7, 7.8, 1.2) -> (19, 12, 8, 1)
        np.testing.assert_array_equal(np.bincount(labels[chosen], minlength=4), [19, 12, 8, 1])
        for c in range(4):  # within a class: the highest losses
            members = np.flatnonzero(labels == c)
            quota = (labels[chosen] == c).sum()
            assert set(chosen[labels[chosen] == c]) == set(members[np.argsort(-losses[members])[:quota]])
    else:
        assert (np.bincount(labels[chosen], minlength=4)[1:] > 0).all()


def test_unseen_samples_are_explored_first_and_ties_random():
    p = get_policy("uncertainty_ema", prune_ratio=0.5)
    p.reset(10)
    p.observe(np.arange(5), np.full(5, 100.0))
    assert set(p.select(0, 5, np.random.default_rng(0)).ids) == set(range(5, 10))


@pytest.mark.parametrize("name", FIXED)
def test_sampler_length_constant_no_repeats_and_deterministic(name):
    params = FIXED[name]
    n, rng = 101, np.random.default_rng(1)
    samplers = [DynamicPruningSampler(get_policy(name, prune_ratio=0.7, **params), n, seed=3, multiple_of=8)
                for _ in range(2)]  # fmt: skip
    lengths, orders = set(), []
    for epoch in range(6):
        epoch_orders = []
        losses = rng.gamma(2.0, 1.0, size=n)
        for s in samplers:
            s.set_epoch(epoch)
            idx = s.indices()
            assert len(set(idx.tolist())) == idx.size  # no sample twice in an epoch
            lengths.add(len(s))
            lengths.add(idx.size)
            epoch_orders.append(idx.tolist())
            seen = np.sort(idx)
            s.update(seen, losses[seen])
        assert epoch_orders[0] == epoch_orders[1]  # same seed, same updates -> same order
        orders.append(epoch_orders[0])
    assert lengths == {num_kept(n, 0.7, 8)} == {32}  # 101 - 70 = 31, rounded up to 32
    assert len({tuple(sorted(o)) for o in orders}) > 1
    other = DynamicPruningSampler(get_policy(name, prune_ratio=0.7, **params), n, seed=4, multiple_of=8)
    other.set_epoch(0)
    assert other.indices().tolist() != orders[0]


@pytest.mark.parametrize("name", VARYING)
def test_varying_length_policies_report_each_epochs_length(name):
    """len(sampler) follows the epoch's selection, never exceeds the bound planned before training, ignores
    multiple_of, and the sequence is deterministic."""
    n, rng = 101, np.random.default_rng(1)
    samplers = [DynamicPruningSampler(get_policy(name, prune_ratio=0.5, **VARYING[name]), n, seed=3, multiple_of=8)
                for _ in range(2)]  # fmt: skip
    bounds = [samplers[0].max_selected(e) for e in range(6)]
    assert len(samplers[0]) == bounds[0]  # before the first selection
    lengths = []
    for epoch in range(6):
        losses = rng.gamma(2.0, 1.0, size=n)
        orders = []
        for s in samplers:
            s.set_epoch(epoch)
            idx = s.indices()
            assert len(s) == idx.size <= bounds[epoch] and len(set(idx.tolist())) == idx.size
            orders.append(idx.tolist())
            s.update(np.arange(n), losses)
        assert orders[0] == orders[1]
        lengths.append(len(samplers[0]))
    if name == "rs2":
        assert lengths == bounds  # exact
    else:
        assert len(set(lengths)) > 1
    with samplers[0].assume_length(7):
        assert len(samplers[0]) == 7
    assert len(samplers[0]) == lengths[-1]


@pytest.mark.parametrize("name", ["rs2", "seta"])
def test_policies_that_count_selections_refuse_a_pruning_period(name):
    with pytest.raises(ValueError, match="pruning_period=1"):
        DynamicPruningSampler(get_policy(name, prune_ratio=0.5), 50, pruning_period=2)


def test_pruning_period_keeps_selection_and_reshuffles():
    s = DynamicPruningSampler(get_policy("ucb", prune_ratio=0.5), 50, seed=0, pruning_period=3)
    sels, orders = [], []
    for epoch in range(6):
        assert s.needs_selection(epoch) == (epoch % 3 == 0)
        s.set_epoch(epoch)
        s.set_epoch(epoch)  # idempotent (Trainer and accelerate both call it)
        sels.append(s.selection.ids.tolist())
        orders.append(s.indices().tolist())
        s.update(np.arange(50), np.random.default_rng(epoch).random(50))
    assert sels[0] == sels[1] == sels[2] and sels[3] == sels[4] == sels[5] and sels[0] != sels[3]
    assert orders[0] != orders[1]


def test_sampler_state_round_trip_gives_same_sequence():
    def run(n_epochs, state=None, start=0):
        s = DynamicPruningSampler(get_policy("epsilon_greedy", prune_ratio=0.6), 60, seed=7)
        if state is not None:
            s.load_state_dict(state)
        out = []
        for epoch in range(start, n_epochs):
            s.set_epoch(epoch)
            out.append(s.indices().tolist())
            s.update(np.arange(60), np.random.default_rng(epoch).random(60))
        return out, s.state_dict()

    full, _ = run(6)
    first, state = run(3)
    rest, _ = run(6, state=state, start=3)
    assert first + rest == full
    with pytest.raises(ValueError, match="resume with the same seed"):
        DynamicPruningSampler(get_policy("epsilon_greedy", prune_ratio=0.6), 60, seed=8).load_state_dict(state)


def test_infobatch_weights_keep_expected_gradient_on_toy_problem():
    """E[sum_kept w_i grad l_i] = sum_i grad l_i: checked by Monte Carlo on a logistic-regression toy problem, in
    pruned, early (some samples unscored) and annealing epochs; dropping the weights is visibly biased."""
    torch.manual_seed(0)
    n, d, classes = 60, 5, 3
    x, y = torch.randn(n, d), torch.randint(0, classes, (n,))
    w = torch.randn(d, classes, requires_grad=True)

    def grad_of(ids, weights):
        w.grad = None
        loss = weighted_cross_entropy(x[ids] @ w, y[ids], weights, num_items_in_batch=1)  # a plain weighted sum
        loss.backward()
        return w.grad.clone()

    full = grad_of(torch.arange(n), None)
    losses = F.cross_entropy(x @ w, y, reduction="none").detach().numpy()
    # InfoBatch as published, in a pruned epoch: unbiased, and biased without the weights
    policy = get_policy("infobatch", prune_ratio=0.5, num_epochs=8)
    policy.reset(n)
    policy.observe(np.arange(n), losses)
    draws, mean_w, mean_unw = 2000, torch.zeros_like(full), torch.zeros_like(full)
    for t in range(draws):
        sel = policy.select(3, num_kept(n, 0.5), np.random.default_rng(t))
        mean_w += grad_of(torch.from_numpy(sel.ids), torch.from_numpy(sel.weights)) / draws
        mean_unw += grad_of(torch.from_numpy(sel.ids), None) / draws
    err, bias = (mean_w - full).norm() / full.norm(), (mean_unw - full).norm() / full.norm()
    assert err < 0.05 and bias > 4 * err and bias > 0.1, (err, bias)
    # the fixed-budget departure: every epoch unbiased too, including early (some samples unscored) and annealing
    policy = get_policy("infobatch", prune_ratio=0.3, num_epochs=8, delta=0.75, fixed_budget=True)
    policy.reset(n)
    partial = np.arange(n)[: n // 2]
    for observed, epoch in ((np.arange(n), 0), (partial, 0), (np.arange(n), 7)):
        policy.reset(n)
        policy.observe(observed, losses[observed])
        draws = 2000
        mean_w = torch.zeros_like(full)
        mean_unw = torch.zeros_like(full)
        for t in range(draws):
            sel = policy.select(epoch, num_kept(n, 0.3), np.random.default_rng(t))
            ids = torch.from_numpy(sel.ids)
            mean_w += grad_of(ids, torch.from_numpy(sel.weights)) / draws
            mean_unw += grad_of(ids, None) / draws
        err = (mean_w - full).norm() / full.norm()
        bias = (mean_unw - full).norm() / full.norm()
        assert err < 0.05, (epoch, err)
        assert bias > 4 * err and bias > 0.1, (epoch, bias)  # the test tells a biased estimator apart
    # in a pruned epoch, kept below-mean samples carry 1/(1-r) and the others 1
    policy.reset(n)
    policy.observe(np.arange(n), losses)
    sel = policy.select(1, num_kept(n, 0.3), np.random.default_rng(0))
    below = losses[sel.ids] < losses.mean()
    r = sel.info["r"]
    assert sel.info["num_well_learned"] == int((losses < losses.mean()).sum())
    np.testing.assert_allclose(sel.weights[below], 1 / (1 - r), rtol=1e-6)
    np.testing.assert_allclose(sel.weights[~below], 1.0)
    assert sel.info["annealing"] is False and policy.select(6, 42, np.random.default_rng(0)).info["annealing"]


def test_weighted_cross_entropy_reduces_to_plain_ce():
    logits, labels = torch.randn(7, 4), torch.randint(0, 4, (7,))
    torch.testing.assert_close(weighted_cross_entropy(logits, labels), F.cross_entropy(logits, labels))
    torch.testing.assert_close(
        weighted_cross_entropy(logits, labels, label_smoothing=0.1),
        F.cross_entropy(logits, labels, label_smoothing=0.1),
    )
    w = torch.rand(7)
    ref = (w * F.cross_entropy(logits, labels, reduction="none")).sum() / 10
    torch.testing.assert_close(weighted_cross_entropy(logits, labels, w, num_items_in_batch=10), ref)


def test_iterable_view_with_dataloader_and_accelerate():
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    ds = small_image_dataset(37)
    view = DynamicPruningDataset(ds, get_policy("infobatch", prune_ratio=0.5, num_epochs=4), seed=0, batch_size=4)
    assert len(view) == 36  # InfoBatch's first epoch is the full data, fitted to whole batches: 37 -> 36
    accelerator = Accelerator(cpu=True)

    def collate_view(rows):
        batch = collate(rows)
        batch["sample_id"] = torch.tensor([r["sample_id"] for r in rows])
        batch["loss_weight"] = torch.tensor([r["loss_weight"] for r in rows])
        return batch

    loader = accelerator.prepare(DataLoader(view, batch_size=4, collate_fn=collate_view))
    epochs = []
    for epoch in range(3):
        loader.set_epoch(epoch)
        ids, weights = [], []
        for batch in loader:
            ids += batch["sample_id"].tolist()
            weights += batch["loss_weight"].tolist()
            view.collect(batch["sample_id"], torch.rand(len(batch["sample_id"])))
        view.end_epoch(accelerator)
        assert view.sampler.epoch == epoch  # accelerate's set_epoch reached the view
        assert ids == view.sampler.indices().tolist() and len(view) == len(ids)
        np.testing.assert_allclose(weights, view.loss_weights(torch.tensor(ids)).numpy())
        assert not np.isnan(view.policy.scores()[ids]).any()  # end_epoch fed every trained sample's loss
        epochs.append(ids)
    assert len(epochs[1]) < 36 and max(weights) == 2.0  # epoch 1 pruned half the below-mean samples, weight 2
    assert all(len(ids) % 4 == 0 for ids in epochs)
    # worker sharding: 2 workers together still yield every id once
    loader = DataLoader(view, batch_size=4, collate_fn=collate_view, num_workers=2)
    ids = [i for b in loader for i in b["sample_id"].tolist()]
    assert sorted(ids) == sorted(view.sampler.indices().tolist())


def test_selection_counts_histogram_and_static_result(tmp_path):
    rng = np.random.default_rng(0)
    always, never = np.arange(10), np.arange(10, 20)
    rows = rng.random((8, 50)) < 0.5
    rows[:, always], rows[:, never] = True, False
    record = ScoreRecord.from_arrays(
        {"selected": rows.astype(np.float32)}, labels=np.arange(50) % 5, metadata={"dynamic": {"pruning_period": 2}}
    )
    counts, total = selection_counts(record)
    assert total == 4  # epochs 0, 2, 4, 6 drew a selection
    np.testing.assert_array_equal(counts, rows[::2].sum(0))
    assert selection_counts(record, pruning_period=1)[1] == 8
    groups = selection_groups(counts, total)
    assert set(always) <= set(groups["always"]) and set(never) <= set(groups["never"])
    plot_selection_histogram(record, tmp_path / "hist.png")
    assert (tmp_path / "hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = static_result_from_selection(record, prune_ratio=0.3)
    assert result.num_kept == 35 and set(always) <= set(result.kept_ids) and not set(never) & set(result.kept_ids)
    assert result.method == "dynamic_selection_frequency" and result.params["num_selections"] == 4
    result.save(tmp_path / "static")


def make_args(tmp_path, **kw):
    defaults = dict(
        output_dir=str(tmp_path / "run"), num_train_epochs=3, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0,
        dataloader_num_workers=0, use_cpu=True, dynamic_policy="ucb", dynamic_prune_ratio=0.5,
    )  # fmt: skip
    defaults.update(kw)
    return DynamicPruningArguments(**defaults)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"dynamic_prune_ratio": 1.0}, "dynamic_prune_ratio must be in \\[0, 1\\)"),
        ({"dynamic_prune_ratio": -0.1}, "dynamic_prune_ratio must be in \\[0, 1\\)"),
        ({"pruning_period": 0}, "pruning_period must be an integer >= 1"),
        ({"dynamic_policy": "ucbb"}, "Unknown dynamic_policy 'ucbb'"),
        ({"dynamic_scoring": "eval"}, "dynamic_scoring must be 'pass'"),
        ({"dynamic_policy_kwargs": {"alpha": 0.0}}, "alpha must be in \\(0, 1\\]"),
        ({"dynamic_policy": "epsilon_greedy", "dynamic_policy_kwargs": {"epsilon": 2.0}},
         "epsilon must be in \\[0, 1\\]"),
        ({"dynamic_policy": "rs2", "pruning_period": 2}, "use pruning_period=1"),
        ({"dynamic_policy": "seta", "dynamic_policy_kwargs": {"window_scale": 0.0}}, "window_scale must be in"),
        ({"dynamic_policy": "infobatch", "dynamic_policy_kwargs": {"delta": 0.0}}, "delta must be in"),
    ],
)
def test_bad_arguments_get_clear_errors(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        make_args(tmp_path, **kw)


def test_train_loss_scoring_adds_the_loss_signal(tmp_path):
    assert make_args(tmp_path, record_signals=["p_target"], dynamic_scoring="train_loss").record_signals == [
        "p_target",
        "loss",
    ]
    assert make_args(tmp_path, record_signals=["p_target"], dynamic_scoring="pass").record_signals == ["p_target"]


def test_each_trainer_refuses_the_other_ones_arguments(tmp_path):
    ds = small_image_dataset(16)
    with pytest.raises(TypeError, match="PruningTrainer does not prune dynamically.*Use `DynamicPruningTrainer`"):
        PruningTrainer(model=timm_model(), args=make_args(tmp_path), train_dataset=ds, data_collator=collate)
    plain = PruningArguments(output_dir=str(tmp_path / "plain"), report_to=[], use_cpu=True)
    with pytest.raises(TypeError, match="DynamicPruningTrainer needs `DynamicPruningArguments`.*got PruningArguments"):
        DynamicPruningTrainer(model=timm_model(), args=plain, train_dataset=ds, data_collator=collate)


def test_a_new_policy_is_one_class_and_its_config(tmp_path, monkeypatch):
    """Adding a policy touches its own module only: registered with its config, it is validated by
    `DynamicPruningArguments` (its own keys in `dynamic_policy_kwargs`) and run by `DynamicPruningTrainer`."""
    monkeypatch.setattr(REGISTRY, "_classes", dict(REGISTRY._classes))  # registered for this test only

    @dataclasses.dataclass
    class EveryOtherConfig(PolicyConfig):
        offset: int = dataclasses.field(default=0, metadata={"help": "first sample kept, 0 or 1"})

        def __post_init__(self):
            super().__post_init__()
            if self.offset not in (0, 1):
                raise ValueError(f"offset must be 0 or 1; got {self.offset}.")

    @register_policy
    class EveryOther(DynamicPolicy):
        name, summary, config_class, uses_scores = "every_other", "every other sample", EveryOtherConfig, False

        def _select(self, epoch, num_keep, rng):
            return Selection(np.arange(self.config.offset, self.num_samples, 2)[:num_keep])

    with pytest.raises(ValueError, match=r"unknown key\(s\) \['c'\].*it accepts \['offset'\]"):
        make_args(tmp_path, dynamic_policy="every_other", dynamic_policy_kwargs={"c": 1.0})
    with pytest.raises(ValueError, match="offset must be 0 or 1"):
        make_args(tmp_path, dynamic_policy="every_other", dynamic_policy_kwargs={"offset": 2})
    args = make_args(tmp_path, dynamic_policy="every_other", dynamic_policy_kwargs={"offset": 1}, num_train_epochs=1)
    trainer = DynamicPruningTrainer(model=timm_model(), args=args, train_dataset=small_image_dataset(32),
                                    data_collator=collate)  # fmt: skip
    trainer.train()
    selected = np.asarray(trainer.score_record.signal("selected"))[0]
    assert selected.tolist() == [0.0, 1.0] * 16  # the odd samples: 16 = 2 batches of 8
    assert trainer.score_record.metadata["dynamic"]["params"] == {"prune_ratio": 0.5, "offset": 1}


def test_trainer_constant_steps_record_and_timing(tmp_path):
    ds = small_image_dataset(101)
    args = make_args(tmp_path, dynamic_policy="epsilon_greedy", dynamic_scoring="pass", pruning_period=2)
    trainer = DynamicPruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    out = trainer.train()
    # one process, no drop_last: nothing is padded or dropped, so the policy keeps its own count, 101 - 50 = 51
    assert len(trainer.get_train_dataloader()) == 7  # 6 batches of 8 and one of 3
    assert out.global_step == 3 * 7
    record = trainer.score_record
    selected = record.signal("selected")
    assert selected.shape == (3, 101) and (selected.sum(1) == 51).all()
    np.testing.assert_array_equal(selected[0], selected[1])  # pruning_period = 2
    np.testing.assert_array_equal(~np.isnan(record.signal("loss")), selected == 1)  # trained on exactly those
    timing = record.metadata["dynamic"]["epochs"]
    assert [t["epoch"] for t in timing] == [0, 1, 2]
    assert timing[0]["scoring_s"] > 0 and timing[1]["scoring_s"] == 0 and timing[2]["scoring_s"] > 0
    assert all(t["train_s"] > 0 for t in timing)
    assert record.metadata["dynamic"]["policy"] == "epsilon_greedy"


def test_trainer_applies_infobatch_weights_in_compute_loss(tmp_path):
    ds = small_image_dataset(40)
    args = make_args(tmp_path, dynamic_policy="infobatch", dynamic_prune_ratio=0.25, num_train_epochs=4)
    trainer = DynamicPruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    sampler = trainer.dynamic_sampler
    sampler.update(np.arange(40), np.linspace(0.1, 4.0, 40) ** 2)
    sampler.set_epoch(1)
    assert sampler.weighted
    ids = torch.arange(8)
    batch = collate([ds[i] for i in range(8)])
    model = trainer.model.train()
    trainer._step_sample_ids = ids
    trainer.current_gradient_accumulation_steps = 1
    loss = trainer.compute_loss(model, dict(batch))
    trainer._step_sample_ids = None
    logits = model(pixel_values=batch["pixel_values"]).logits
    weights = sampler.loss_weights(ids)
    assert not torch.allclose(weights, torch.ones(8))
    expected = (weights * F.cross_entropy(logits, batch["labels"], reduction="none")).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)


def test_resume_mid_run_gives_the_same_selections(tmp_path):
    ds = small_image_dataset(61)
    kw = dict(dynamic_policy="ucb", dynamic_scoring="train_loss", num_train_epochs=4, per_device_train_batch_size=8)
    full = DynamicPruningTrainer(model=timm_model(), args=make_args(tmp_path / "a", **kw), train_dataset=ds,
                                 data_collator=collate)  # fmt: skip
    full.train()
    expected = np.asarray(full.score_record.signal("selected"))
    # 61 - 30 = 31 -> 32 kept: 4 steps per epoch. Checkpoint at step 6 (mid epoch 1) and step 8 (end of epoch 1).
    args = make_args(tmp_path / "b", save_strategy="steps", save_steps=2, **kw)
    first = DynamicPruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    first.train()
    np.testing.assert_array_equal(np.asarray(first.score_record.signal("selected")), expected)
    for step in (6, 8):
        resumed = DynamicPruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
        resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "run" / f"checkpoint-{step}"))
        np.testing.assert_array_equal(np.asarray(resumed.score_record.signal("selected")), expected)
        assert resumed.state.global_step == 16
        assert math.isfinite(resumed.score_record.metadata["dynamic"]["epochs"][-1]["train_s"])


def test_weighted_steps_leave_the_record_to_the_clean_pass(tmp_path, monkeypatch):
    """With `record_clean_view` the clean pass records every epoch and the training steps record nothing, InfoBatch's
    weighted steps included (they build their own loss, so they record themselves otherwise)."""
    from hf_prune.recording import Recorder

    in_training = []
    original = Recorder.add

    def counting(self, *args, **kwargs):
        in_training.append(trainer.model.training)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Recorder, "add", counting)
    args = make_args(tmp_path, dynamic_policy="infobatch", record_clean_view=True)
    trainer = DynamicPruningTrainer(model=timm_model(), args=args, train_dataset=small_image_dataset(32, train_transform=True),
                                    clean_view_dataset=small_image_dataset(32, train_transform=False), data_collator=collate)  # fmt: skip
    trainer.train()
    assert np.asarray(trainer.score_record.signal("selected"))[1].sum() < 32  # epoch 1 pruned, so weighted
    assert in_training and not any(in_training)
