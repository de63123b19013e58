"""Dynamic policies against independent re-implementations of their *authors' code* (InfoBatch's `infobatch.py`,
RS2's `UniformNoReplacement`, SeTa's `seta.py`), on inputs where the rules differ from simpler readings; and
InfoBatch inside `DynamicPruningTrainer`: varying epoch lengths, `max_steps`, the LR schedule ending at its end value,
resume, and no host synchronisation in the training step."""

import math

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from hf_prune import DynamicPruningArguments, DynamicPruningTrainer
from hf_prune.dynamic import DynamicPruningSampler, get_policy, num_kept
from hf_prune.dynamic.seta import kmeans_1d, seta_window
from tests.trainer_utils import collate, small_image_dataset


def transformers_model(seed: int = 0):
    """A tiny timm ViT (no batch norm: InfoBatch's epochs can end on a batch of one sample) whose checkpoints
    round-trip through `TimmWrapperForImageClassification`."""
    from hf_prune.models import build_timm_classifier

    torch.manual_seed(seed)
    return build_timm_classifier("test_vit", num_labels=10, in_chans=1, img_size=28, patch_size=7)


# ------------------------------------------------------------------------------ InfoBatch: the authors' rule


def official_infobatch_run(losses, num_epochs, prune_ratio, delta=0.875):
    """InfoBatch's `IBSampler.reset` + `InfoBatch.prune` / `no_prune` / `update`, as their code behaves: scores start
    at 3.0 (float32); epoch e uses counter e + 1 and prunes iff e + 1 <= num_epochs * delta; mean in float32; strictly
    below it is well-learned; int(keep * n_wl) of them kept (keep = clamp(1 - r, 0.1, 1)) at weight 1 / keep; the
    trained samples' scores become their loss. Returns per epoch (trained count, {weight: count}, n_wl)."""
    n = losses.shape[0]
    scores = torch.full((n,), 3.0)
    keep = min(1.0, max(0.1, 1.0 - prune_ratio))
    rng = np.random.RandomState(0)
    out = []
    for epoch in range(num_epochs):
        if epoch + 1 > num_epochs * delta:
            trained, weights, n_wl = np.arange(n), {1.0: n}, 0
        else:
            well = (scores < scores.mean()).numpy()
            w_ids = np.flatnonzero(well)
            k = int(keep * len(w_ids))
            drawn = rng.choice(w_ids, k, replace=False)
            trained = np.concatenate([np.flatnonzero(~well), drawn])
            weights = {1.0: int((~well).sum())}
            if k:
                weights[1 / keep] = k
            n_wl = len(w_ids)
        scores[torch.from_numpy(trained)] = torch.from_numpy(losses[trained]).float()
        out.append((len(trained), weights, n_wl))
    return out


def hf_infobatch_run(losses, num_epochs, prune_ratio, delta=0.875):
    n = losses.shape[0]
    sampler = DynamicPruningSampler(get_policy("infobatch", prune_ratio=prune_ratio, num_epochs=num_epochs,
                                               delta=delta), n, seed=0)  # fmt: skip
    out = []
    for epoch in range(num_epochs):
        sampler.set_epoch(epoch)
        ids = sampler.indices()
        w = sampler.loss_weights(ids).numpy()
        values, counts = np.unique(w, return_counts=True)
        out.append((ids.size, dict(zip(values.tolist(), counts.tolist())), sampler.selection.info))
        sampler.update(ids, losses[ids])
    return out


def two_level_table(n_low=4028, n_high=972, seed=0):
    losses = np.concatenate([np.full(n_low, 0.1), np.full(n_high, 2.0)]).astype(np.float32)
    return losses[np.random.default_rng(seed).permutation(losses.size)]


def test_infobatch_trains_2986_at_half_with_weight_two_as_the_authors_code():
    """The issue's numbers: 5,000 samples, r = 0.5 -> 2,986 trained per pruned epoch (972 above the mean at weight 1,
    2,014 of the 4,028 well-learned at weight 2), the first and the annealing epochs full at weight 1."""
    losses = two_level_table()
    ours, theirs = hf_infobatch_run(losses, 10, 0.5), official_infobatch_run(losses, 10, 0.5)
    assert [t[0] for t in theirs] == [5000] + [2986] * 7 + [5000] * 2  # floor(0.875 * 10) = 8: epochs 8, 9 full
    for (count, weights, _), (o_count, o_weights, _) in zip(ours, theirs):
        assert count == o_count
        assert weights == pytest.approx(o_weights)
    assert ours[1][1] == {1.0: 972, 2.0: 2014}


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7, 0.9, 0.95])
def test_infobatch_counts_and_weights_equal_the_authors_on_a_skewed_table(ratio):
    """A right-skewed loss table: equal counts where r |W| is an integer, one more kept well-learned sample where it
    is not (hf_prune's n - floor(r n) against their int((1 - r) n): the documented difference), same weights."""
    losses = np.random.default_rng(0).lognormal(0.0, 1.7, 5000).astype(np.float32)
    ours, theirs = hf_infobatch_run(losses, 8, ratio), official_infobatch_run(losses, 8, ratio)
    r = min(ratio, 0.9)
    for epoch, ((count, weights, info), (o_count, o_weights, n_wl)) in enumerate(zip(ours, theirs)):
        if epoch in (0, 7):
            assert count == o_count == 5000 and weights == {1.0: 5000}
            continue
        assert info["num_well_learned"] == n_wl
        exact = math.isclose(r * n_wl, round(r * n_wl))
        assert count - o_count == (0 if exact else 1) or int((1 - r) * n_wl) == n_wl - math.floor(r * n_wl)
        assert sorted(weights) == pytest.approx(sorted(o_weights))  # 1 and 1 / (1 - r)
        assert weights[1.0] == o_weights[1.0]  # every sample at or above the mean is trained at weight 1


def test_infobatch_annealing_weights_are_reset_where_the_authors_code_keeps_them():
    """delta * num_epochs = 8.75 is not an integer: their `iterations == stop_prune + 1` never holds, so the last
    pruned epoch's weights stay on during annealing (a bug); hf_prune trains annealing epochs at weight 1."""
    losses = two_level_table()
    ours = hf_infobatch_run(losses, 10, 0.5, delta=0.875)
    assert ours[8][1] == {1.0: 5000} and ours[9][1] == {1.0: 5000}


def test_fixed_budget_departure_keeps_one_length():
    losses = two_level_table()
    sampler = DynamicPruningSampler(get_policy("infobatch", prune_ratio=0.5, num_epochs=10, fixed_budget=True), 5000)
    lengths = []
    for epoch in range(10):
        sampler.set_epoch(epoch)
        lengths.append(len(sampler))
        sampler.update(sampler.indices(), losses[sampler.indices()])
    assert lengths == [2500] * 10


# ------------------------------------------------------------------------------ RS2: the authors' rounds


def official_rs2_rounds(n, fraction, seed, rounds):
    """RS2's `UniformNoReplacement.select`: np.random.seed(seed) once, then per call reshuffle (in place) when the
    previous round wrapped or ended at n, else advance with end = (end + size) mod (n + 1)."""
    size = round(n * fraction)
    rs = np.random.RandomState(seed)
    perm, start, end, out = np.arange(n), None, None, []
    for _ in range(rounds):
        if start is None or end < start or end == n:
            start, end = 0, size
            rs.shuffle(perm)
        else:
            start, end = end, (end + size) % (n + 1)
        out.append(perm[start:end].copy() if start < end else np.concatenate([perm[start:], perm[:end]]))
    return out


@pytest.mark.parametrize("n,ratio", [(10, 0.7), (50, 0.7), (50, 0.6), (50, 0.9), (200, 0.5), (120, 0.75)])
def test_rs2_rounds_are_the_authors_rounds(n, ratio):
    """Same seed, same rounds, including the wrap round one sample short that reuses the permutation's head."""
    size = num_kept(n, ratio)
    assert size == round(n * (1 - ratio))  # where their rounding and ours agree
    sampler = DynamicPruningSampler(get_policy("rs2", prune_ratio=ratio), n, seed=7)
    rounds = official_rs2_rounds(n, 1 - ratio, 7, 12)
    for epoch, expected in enumerate(rounds):
        sampler.set_epoch(epoch)
        np.testing.assert_array_equal(np.sort(sampler.selection.ids), np.sort(expected))
        assert sampler.max_selected(epoch) == expected.size  # planned exactly before training
    sizes = [r.size for r in rounds]
    if n == 10:
        assert sizes[:5] == [3, 3, 3, 2, 3]  # 3 rounds of 3, the wrap round of 2, then a new permutation
    # coverage: within a pass every sample appears before any appears twice
    first_pass = np.concatenate(rounds[: math.ceil(n / size)])
    assert set(first_pass.tolist()) == set(range(n))


def test_rs2_replays_from_the_seed_whatever_the_call_order():
    a = get_policy("rs2", prune_ratio=0.6)
    a.reset(30, seed=3)
    late = a.round(9, 12).copy()
    b = get_policy("rs2", prune_ratio=0.6)
    b.reset(30, seed=3)
    for i in range(10):
        last = b.round(i, 12)
    np.testing.assert_array_equal(late, last)


# ------------------------------------------------------------------------------ SeTa: the authors' rule


@pytest.mark.parametrize(
    "groups,scale,starts",
    [
        (5, 0.9, [(0, 5), (1, 5), (0, 4), (1, 5), (0, 4)]),  # w = round(4.5) = 4 (half to even)
        (10, 0.5, [(0, 10), (1, 6), (2, 7), (3, 8), (4, 9), (5, 10), (0, 5)]),
        (5, 0.5, [(0, 5), (1, 3), (2, 4), (3, 5), (0, 2)]),  # w = round(2.5) = 2
        (3, 0.5, [(0, 3), (1, 3), (0, 2)]),  # w = round(1.5) = 2
    ],
)
def test_seta_window_is_the_authors_slide_easy2hard(groups, scale, starts):
    def official(num_group, it, ws):
        if it == 0:
            return 0, num_group
        w = round(num_group * ws)
        start = it % (num_group - w + 1)
        return start, start + w

    for it, expected in enumerate(starts):
        assert seta_window(groups, scale, it) == official(groups, it, scale) == expected


def test_seta_groups_are_a_kmeans_at_least_as_good_as_sklearns():
    """Their groups come from scikit-learn's KMeans(random_state=0) (one k-means++ start); ours from Lloyd's
    algorithm with several deterministic starts. Both are local optima: on separated clusters the groups are
    identical, and on skewed loss tables ours has an inertia no higher than theirs (at G = 5 the group, as an
    easy-to-hard rank, agrees for 91-100 % of the samples)."""
    from sklearn.cluster import KMeans

    def fit(values, k):
        km = KMeans(n_clusters=k, random_state=0).fit(values[:, None])
        order = np.argsort([values[km.labels_ == c].mean() for c in range(k)])
        return np.argsort(order)[km.labels_], km.inertia_

    def inertia(values, labels):
        return sum(((values[labels == c] - values[labels == c].mean()) ** 2).sum() for c in np.unique(labels))

    rng = np.random.default_rng(0)
    separated = np.concatenate([rng.normal(c, 0.05, 200) for c in (0.1, 1.0, 2.0, 3.5, 5.0)])
    np.testing.assert_array_equal(kmeans_1d(separated, 5), fit(separated, 5)[0])
    for values in (rng.lognormal(0.0, 1.0, 5000), rng.gamma(2.0, 1.0, 5000), rng.lognormal(0.0, 1.7, 5000)):
        for k in (5, 10):
            ours = kmeans_1d(values, k)
            theirs, their_inertia = fit(values, k)
            assert inertia(values, ours) <= their_inertia * (1 + 1e-6)
            if k == 5:
                assert (ours == theirs).mean() > 0.9


def official_seta_selection(losses, subset, epoch, num_groups, window_scale):
    """`kmeans_group` + `slide_easy2hard` given the random subset (clusters from our k-means, so the rule is what is
    compared): groups sorted by mean score, all at epoch 0, else the cyclic window."""
    values = losses[subset]
    if values.max() == values.min():
        c = math.ceil(subset.size / num_groups)
        groups = [subset[i : i + c] for i in range(0, subset.size, c)]
    else:
        labels = kmeans_1d(values, num_groups)
        groups = [subset[labels == g] for g in range(labels.max() + 1)]
        groups = sorted((g for g in groups if g.size), key=lambda g: float(losses[g].mean()))
    if epoch == 0:
        return np.concatenate(groups)
    w = round(len(groups) * window_scale)
    start = epoch % (len(groups) - w + 1)
    return np.concatenate(groups[start : start + w])


def test_seta_selection_follows_the_authors_three_steps():
    n, ratio, G, ws = 1000, 0.3, 5, 0.6
    losses = np.random.default_rng(1).lognormal(0, 1, n)
    policy = get_policy("seta", prune_ratio=ratio, num_groups=G, window_scale=ws, num_epochs=10)
    policy.reset(n)
    m = num_kept(n, ratio)
    for epoch in range(10):
        rng = np.random.default_rng(epoch)
        subset = np.random.default_rng(epoch).permutation(n)[:m]  # the policy's random stage, same generator
        sel = policy.select(epoch, m, rng)
        if epoch >= 8:  # floor(0.875 * 10): partial annealing, a random subset of m, no groups
            np.testing.assert_array_equal(np.sort(sel.ids), np.sort(subset))
        elif epoch == 0:  # no loss yet: every group, i.e. the whole random subset
            np.testing.assert_array_equal(np.sort(sel.ids), np.sort(subset))
        else:
            expected = official_seta_selection(losses, subset, epoch, G, ws)
            np.testing.assert_array_equal(np.sort(sel.ids), np.sort(expected))
            assert sel.ids.size < m and sel.weights is None  # the window drops groups; no rescaling
        policy.observe(np.arange(n), losses)


# ------------------------------------------------------------------------------ InfoBatch inside PruningTrainer


def infobatch_args(tmp_path, **kw):
    defaults = dict(
        output_dir=str(tmp_path / "run"), num_train_epochs=5, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True,
        dataloader_num_workers=0, dynamic_policy="infobatch", dynamic_prune_ratio=0.5, lr_scheduler_type="linear",
        logging_strategy="no",
    )  # fmt: skip
    defaults.update(kw)
    return DynamicPruningArguments(**defaults)


def official_counts_from_record(record, ratio, num_epochs, delta=0.875):
    """The authors' per-epoch count, replayed on the losses the run recorded (their scores: the latest loss)."""
    loss = np.asarray(record.signal("loss"))
    n = loss.shape[1]
    scores = np.full(n, 3.0, dtype=np.float32)
    keep = min(1.0, max(0.1, 1 - ratio))
    out = []
    for epoch in range(num_epochs):
        if epoch + 1 > num_epochs * delta:
            out.append((n, n))
        else:
            well = (torch.from_numpy(scores) < torch.from_numpy(scores).mean()).numpy()
            n_wl = int(well.sum())
            out.append(((n - n_wl) + int(keep * n_wl), (n - n_wl) + n_wl - math.floor(ratio * n_wl)))
        seen = ~np.isnan(loss[epoch])
        scores[seen] = loss[epoch][seen]
    return out


def test_trainer_runs_infobatch_epochs_of_their_own_length(tmp_path):
    n, batch = 61, 8
    ds = small_image_dataset(n)
    trainer = DynamicPruningTrainer(model=transformers_model(), args=infobatch_args(tmp_path), train_dataset=ds,
                                    data_collator=collate)  # fmt: skip
    out = trainer.train()
    record = trainer.score_record
    selected = np.asarray(record.signal("selected"))
    counts = selected.sum(1).astype(int).tolist()
    # per-epoch trained counts: the authors' rule on the same losses (up to their int((1 - r) n) rounding)
    for count, (theirs, ours_rule) in zip(counts, official_counts_from_record(record, 0.5, 5)):
        assert count == ours_rule and abs(count - theirs) <= 1
    assert counts[0] == counts[4] == n and all(c < n for c in counts[1:4])  # floor(0.875 * 5) = 4: epoch 4 full
    np.testing.assert_array_equal(~np.isnan(record.signal("loss")), selected == 1)  # trained exactly those
    # each epoch its own steps, max_steps refined to the steps taken, the linear schedule ends at 0 at the last step
    log = trainer.epoch_plan.epoch_log
    assert [log[e]["steps"] for e in range(5)] == [math.ceil(c / batch) for c in counts]
    assert out.global_step == trainer.state.max_steps == sum(math.ceil(c / batch) for c in counts)
    assert trainer.lr_scheduler.get_last_lr() == [0.0, 0.0]
    assert trainer.state.epoch == 5.0
    # InfoBatch's epoch-indexed schedule: at the start of epoch e the schedule is at e / 5 of the planned total
    plan = trainer.epoch_plan.planned
    assert plan == [math.ceil(n / batch)] * 5
    for e in range(5):
        assert trainer.epoch_plan.virtual_step(log[e]["start_step"]) == pytest.approx(e * plan[0])


@pytest.mark.parametrize("schedule,end", [("cosine", 0.0), ("cosine_with_min_lr", 2e-4)])
def test_trainer_schedule_reaches_its_end_value_at_the_last_step(tmp_path, schedule, end):
    ds = small_image_dataset(45)
    kwargs = {"lr_scheduler_kwargs": {"min_lr": end}} if end else {}
    args = infobatch_args(tmp_path, num_train_epochs=4, lr_scheduler_type=schedule, warmup_steps=2,
                          dynamic_policy="seta", dynamic_policy_kwargs={"num_groups": 3}, **kwargs)  # fmt: skip
    lrs = []

    class LearningRates(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            lrs.append(optimizer.param_groups[0]["lr"])

    trainer = DynamicPruningTrainer(model=transformers_model(), args=args, train_dataset=ds, data_collator=collate,
                                    callbacks=[LearningRates()])  # fmt: skip
    trainer.train()
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(end, abs=1e-12)
    assert len(lrs) == trainer.state.global_step == trainer.state.max_steps
    assert lrs[-1] > end and max(lrs) <= 1e-3 + 1e-12  # no step beyond the schedule
    assert lrs[0] == pytest.approx(0.0) and lrs[1] == pytest.approx(5e-4)  # 2 warmup steps, in the full epoch 0


def test_trainer_with_max_steps_runs_a_step_budget(tmp_path):
    ds = small_image_dataset(45)
    args = infobatch_args(tmp_path, max_steps=17, num_train_epochs=1)
    trainer = DynamicPruningTrainer(model=transformers_model(), args=args, train_dataset=ds, data_collator=collate)
    out = trainer.train()
    assert out.global_step == trainer.state.max_steps == 17
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0
    assert trainer.epoch_plan.planned is None and len(trainer.epoch_plan.epoch_log) >= 3


def test_fractional_epochs_are_refused_for_varying_lengths(tmp_path):
    ds = small_image_dataset(20)
    trainer = DynamicPruningTrainer(model=transformers_model(), args=infobatch_args(tmp_path, num_train_epochs=2.5),
                                    train_dataset=ds, data_collator=collate)  # fmt: skip
    with pytest.raises(ValueError, match="whole number of epochs"):
        trainer.train()


def test_resume_reproduces_the_uninterrupted_infobatch_run(tmp_path):
    ds = small_image_dataset(61)
    full = DynamicPruningTrainer(model=transformers_model(), train_dataset=ds, data_collator=collate,
                                 args=infobatch_args(tmp_path / "a", save_strategy="steps", save_steps=1))  # fmt: skip
    full.train()
    expected_selected = np.asarray(full.score_record.signal("selected"))
    expected_loss = np.asarray(full.score_record.signal("loss"))
    log = full.epoch_plan.epoch_log
    # a checkpoint inside the first pruned epoch, and one on the last step of the second
    inside = log[1]["start_step"] + 2
    at_end = log[2]["start_step"] + log[2]["steps"]
    for step in (inside, at_end):
        resumed = DynamicPruningTrainer(model=transformers_model(), train_dataset=ds, data_collator=collate,
                                        args=infobatch_args(tmp_path / f"b{step}"))  # fmt: skip
        resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "run" / f"checkpoint-{step}"))
        np.testing.assert_array_equal(np.asarray(resumed.score_record.signal("selected")), expected_selected)
        np.testing.assert_allclose(np.asarray(resumed.score_record.signal("loss")), expected_loss, rtol=1e-5)
        assert resumed.state.global_step == full.state.global_step == resumed.state.max_steps
        assert resumed.epoch_plan.epoch_log == log
        assert resumed.lr_scheduler.get_last_lr() == full.lr_scheduler.get_last_lr() == [0.0, 0.0]


def test_infobatch_training_step_makes_no_host_synchronisation(tmp_path, monkeypatch):
    """The per-step path (Trainer.training_step -> compute_loss -> InfoBatch weights -> recorder) never moves a
    tensor to the host: `Tensor.item/.cpu/.tolist/.numpy` and `torch.cuda.synchronize` are counted and must stay 0."""
    ds = small_image_dataset(40)
    trainer = DynamicPruningTrainer(model=transformers_model(), args=infobatch_args(tmp_path, num_train_epochs=4),
                                    train_dataset=ds, data_collator=collate)  # fmt: skip
    sampler = trainer.dynamic_sampler
    sampler.update(np.arange(40), np.linspace(0.1, 4.0, 40) ** 2)
    sampler.set_epoch(1)
    assert sampler.weighted
    model = trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    batches = []
    for ids in np.array_split(sampler.indices(), 4):
        batches.append({**collate([ds[int(i)] for i in ids]), "sample_id": torch.from_numpy(ids)})
    trainer.training_step(model, dict(batches[0]))  # the first step builds the epoch's device weight table
    calls = []

    def counting(name, original):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    for name in ("item", "cpu", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch.cuda, "synchronize", counting("synchronize", torch.cuda.synchronize))
    for b in batches[1:]:
        loss = trainer.training_step(model, dict(b))
    monkeypatch.undo()
    assert calls == []
    assert torch.isfinite(loss)
