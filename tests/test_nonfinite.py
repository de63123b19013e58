"""Issue 17, case 4: a sample seen with a NaN or infinite loss or logits is not "unseen". Before, a NaN-logit step
stored that batch as NaN (the value meaning "not seen this epoch") while `epoch_num_seen` counted it, and Dyn-Unc
removed exactly those samples first, silently. Now the record keeps them as seen-and-non-finite (a bit per sample and
epoch in `nonfinite.npy`, `epoch_num_nonfinite`), and every static strategy leaves those epochs out of its maths and
never removes a sample first because of them.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from hf_prune import ScoreRecord, get_strategy
from hf_prune.recording import SIGNALS, Recorder, compute_signals
from hf_prune.strategies.base import NonFiniteRecordWarning
from tests.host_sync import count_host_syncs


N, C, BATCH, EPOCHS = 64, 4, 8, 4
ALWAYS = np.arange(0, 4)  # NaN logits in every epoch: no method can score them
ONCE = np.arange(4, 8)  # NaN logits in epoch 1 only


def nan_logits(logits: torch.Tensor, rows) -> torch.Tensor:
    logits = logits.clone()
    logits[rows] = float("nan")
    return logits


def write_epoch_like_the_trainer(record: ScoreRecord, epoch: int, recorder: Recorder) -> None:
    """What `RunRecord.write_epoch` does with one process: select, pack, unpack, write, commit."""
    writer = record.epoch_writer(epoch)
    try:
        for start, stop in ((0, N // 2), (N // 2, N)):  # two segments
            ids, packed = recorder.select_rows(start, stop)
            labels, values = recorder.unpack_rows(packed.numpy())
            writer.write(start, stop, [ids.numpy()], [labels], [values], signals=recorder.signals)
        writer.commit()
    finally:
        writer.close()


def recorded(tmp_path, dtype="float32", epochs=EPOCHS, seed=0):
    """A record of every signal, trained on random logits batch by batch through `Recorder.add`, with NaN logits for
    `ALWAYS` in every epoch and for `ONCE` in epoch 1; ids 60-63 are never seen in epoch 2 (unseen, not non-finite)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(N) % C
    record = ScoreRecord.create(tmp_path / "scores", N, list(SIGNALS), capacity_epochs=epochs, dtype=dtype)
    recorder = Recorder(list(SIGNALS), dtype=dtype)
    base = torch.randn(N, C, generator=gen)
    for epoch in range(epochs):
        recorder.reset()
        order = torch.randperm(N, generator=gen)
        for b in range(0, N, BATCH):
            ids = order[b : b + BATCH]
            if epoch == 2:
                ids = ids[ids < 60]
            logits = base[ids] + 0.7 * torch.randn(ids.shape[0], C, generator=gen)
            bad = torch.isin(ids, torch.as_tensor(ALWAYS)) | (epoch == 1) & torch.isin(ids, torch.as_tensor(ONCE))
            recorder.add(ids, nan_logits(logits, bad), labels[ids])
        write_epoch_like_the_trainer(record, epoch, recorder)
    return ScoreRecord.load(tmp_path / "scores")


# ---------------------------------------------------------------------------------------------------- recording


def test_compute_signals_nans_a_non_finite_sample_whole_and_keeps_finite_masked_classes():
    inf, nan = float("inf"), float("nan")
    logits = torch.tensor([[1.0, 2.0, 0.5], [nan, 1.0, 2.0], [0.0, inf, 0.0], [-inf, 0.0, 1.0], [0.0, -inf, 1.0]])
    values = compute_signals(logits, torch.tensor([0, 0, 0, 0, 0]), list(SIGNALS))
    assert torch.isfinite(values[[0, 4]]).all()  # a masked class (-inf logit elsewhere) is a finite sample
    assert torch.isnan(values[1:4]).all()  # NaN logit, +inf logit, -inf target logit (infinite loss): all NaN
    # `correct` used to say 1.0 or 0.0 for NaN logits (argmax of NaN)
    assert torch.isnan(compute_signals(logits[1:2], torch.tensor([0]), ["correct"])).all()


def test_recorder_add_with_nan_logits_makes_no_host_synchronisation():
    recorder = Recorder(list(SIGNALS))
    logits = nan_logits(torch.randn(BATCH, C), [1, 2])
    with count_host_syncs() as syncs:
        recorder.add(torch.arange(BATCH), logits, torch.arange(BATCH) % C)
    assert syncs.calls == [], syncs.report()
    ids, labels, values = recorder.local_rows()
    assert labels.tolist() == (torch.arange(BATCH) % C).tolist()  # the label is kept: seen, not ignored
    assert torch.isnan(values[[1, 2]]).all() and torch.isfinite(values[[0, 3]]).all()


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_nan_logit_step_is_recorded_as_seen_and_non_finite_not_unseen(tmp_path, dtype):
    record = recorded(tmp_path, dtype=dtype)
    assert record.tracks_nonfinite
    assert record.metadata["epoch_num_seen"] == [N, N, 60, N]  # non-finite samples were seen
    assert record.epoch_num_nonfinite == [4, 8, 4, 4]
    assert record.metadata["epoch_num_nonfinite"] == [4, 8, 4, 4]
    np.testing.assert_array_equal(np.flatnonzero(record.nonfinite(1)), np.arange(8))
    np.testing.assert_array_equal(np.flatnonzero(record.nonfinite(2)), ALWAYS)  # 60-63: unseen, not flagged
    assert np.isnan(record.signal("p_target")[2, 60:]).all()
    for name in SIGNALS:
        assert np.isnan(record.signal(name)[1, :8]).all() and np.isfinite(record.signal(name)[1, 8:]).all()
    np.testing.assert_array_equal(np.flatnonzero(record.ever_nonfinite()), np.arange(8))
    assert record.labels[:8].tolist() == (np.arange(8) % C).tolist()
    assert ScoreRecord.load(tmp_path / "scores", verify="full").has_nonfinite
    # kept by copies and saves
    again = ScoreRecord.load(record.save(tmp_path / "saved"), verify="full")
    np.testing.assert_array_equal(again.nonfinite(1), record.nonfinite(1))
    assert again.epoch_num_nonfinite == record.epoch_num_nonfinite


def test_a_float16_overflow_is_non_finite_too(tmp_path):
    record = ScoreRecord.create(tmp_path / "r", 4, ["logit_margin"], dtype="float16")
    record.write_epoch(0, np.arange(4), {"logit_margin": np.array([1.0, 7e4, 2.0, np.inf])}, labels=np.arange(4))
    assert np.flatnonzero(record.nonfinite(0)).tolist() == [1, 3] and record.epoch_num_nonfinite == [2]
    assert np.isnan(record.signal("logit_margin")[0, [1, 3]]).all()


def test_ignored_labels_and_unseen_samples_are_not_non_finite(tmp_path):
    record = ScoreRecord.create(tmp_path / "r", 5, ["p_target"])
    recorder = Recorder(["p_target"])
    recorder.add(torch.tensor([0, 1, 2]), torch.randn(3, 3), torch.tensor([0, -100, 2]))  # id 1: ignore index
    ids, labels, values = recorder.local_rows()
    writer = record.epoch_writer(0)
    writer.write(0, 5, [ids.numpy()], [labels.numpy()], [values.numpy()])
    writer.commit()
    assert not record.nonfinite(0).any() and record.epoch_num_nonfinite == [0]
    assert "epoch_num_nonfinite" not in record.metadata  # a clean run's metadata is as before


# ---------------------------------------------------------------------------------------------------- strategies


CASES = [
    ("dyn_unc", {"window": 2}, {}),
    ("static_uncertainty", {"window": 2}, {}),
    ("forgetting", {}, {}),
    ("cartography", {"region": "ambiguous"}, {}),
    ("cartography", {"region": "easy"}, {}),
    ("cartography", {"region": "hard"}, {}),
    ("aum", {}, {}),
    ("aum", {}, {"keep": "high"}),
    ("entropy", {}, {}),
    ("el2n", {}, {}),
    ("grand", {}, {}),
    ("dual", {"window": 2, "epochs": None, "sampling": "rank"}, {}),
    ("dual", {"window": 2, "epochs": None}, {}),  # Beta sampling
    ("dual", {"window": 2, "epochs": None}, {"class_balanced": True}),
    ("dyn_unc", {"window": 2}, {"class_balanced": True}),
    ("dyn_unc", {"window": 2}, {"selection": "ccs", "hard_cutoff": 0.1, "num_strata": 4}),
    ("ccs", {"score": "dyn_unc", "score_params": {"window": 2}, "num_strata": 4}, {}),
    ("random", {}, {}),
    ("s2l", {"num_clusters": 4}, {}),
    ("s2l", {"num_clusters": 4}, {"class_balanced": True}),
]


@pytest.fixture(scope="module")
def nonfinite_record(tmp_path_factory):
    return recorded(tmp_path_factory.mktemp("nonfinite"))


@pytest.mark.parametrize(("method", "params", "select"), CASES, ids=lambda v: str(v) if isinstance(v, str) else None)
def test_no_strategy_removes_a_sample_first_because_of_non_finite_epochs(nonfinite_record, method, params, select):
    record = nonfinite_record
    strategy = get_strategy(method, **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = strategy.select(record, prune_ratio=0.25, **select)
    scores = result.scores
    if method == "random":
        assert not [w for w in caught if issubclass(w.category, NonFiniteRecordWarning)]
        return
    held = np.isnan(scores) & record.ever_nonfinite()
    assert set(ALWAYS) <= set(np.flatnonzero(held))  # never finite: no method can score them...
    assert set(np.flatnonzero(held)) <= set(result.kept_ids)  # ...and none of them is removed
    assert np.isfinite(scores[8:]).all() or method == "forgetting"  # forgetting: +inf for the never learned
    assert result.provenance["nonfinite"] == {"samples": 8, "unscored_kept": int(held.sum())}
    (warned,) = [w for w in caught if issubclass(w.category, NonFiniteRecordWarning)]
    assert "8 sample(s) were seen with a NaN or infinite loss or logits" in str(warned.message)


def test_the_issue_case_dyn_unc_kept_what_it_used_to_remove_first(nonfinite_record):
    """With K = 4 and J = 2, a NaN at epoch 1 leaves both of Eq. 3's windows with one value: U is undefined. Without
    the mask (what the record held before), those samples had the lowest rank and were removed first."""
    record = nonfinite_record
    arrays = {name: np.asarray(record.signal(name)) for name in record.signals}
    blind = ScoreRecord.from_arrays(arrays, labels=record.labels)  # NaN without the non-finite mask
    removed_before = np.setdiff1d(np.arange(N), get_strategy("dyn_unc", window=2).select(blind, 0.25).kept_ids)
    assert set(range(8)) <= set(removed_before)
    with pytest.warns(NonFiniteRecordWarning):
        kept = get_strategy("dyn_unc", window=2).select(record, 0.25).kept_ids
    assert set(range(8)) <= set(kept) and len(kept) == N - N // 4
    masked = ScoreRecord.from_arrays(arrays, labels=record.labels, nonfinite=np.stack(list(record.iter_nonfinite())))
    with pytest.warns(NonFiniteRecordWarning):
        np.testing.assert_array_equal(get_strategy("dyn_unc", window=2).select(masked, 0.25).kept_ids, kept)


def test_a_sample_with_some_finite_epochs_is_scored_from_them(nonfinite_record):
    """The maths leave non-finite epochs out, as unseen ones: AUM of `ONCE` is the mean of its finite margins."""
    record = nonfinite_record
    margins = np.asarray(record.signal("logit_margin"), dtype=np.float64)
    with pytest.warns(NonFiniteRecordWarning):
        scores = get_strategy("aum").select(record, 0.25).scores
    np.testing.assert_allclose(scores[ONCE], np.nanmean(margins[:, ONCE], axis=0), rtol=1e-6)
    with pytest.warns(NonFiniteRecordWarning):
        counts = get_strategy("forgetting").select(record, 0.25).scores
    correct = np.asarray(record.signal("correct"))[:, ONCE]
    finite = [c[~np.isnan(c)] for c in correct.T]  # presentations: the finite epochs, in order
    expected = [np.inf if not (f > 0.5).any() else float(((f[:-1] > 0.5) & (f[1:] < 0.5)).sum()) for f in finite]
    np.testing.assert_array_equal(counts[ONCE], expected)


def test_a_diverged_record_is_refused_with_the_reason(tmp_path):
    """Every sample non-finite from epoch 1 on (a diverged run): nothing can be scored; the error says why."""
    p = np.random.default_rng(0).random((4, 20))
    p[1:] = np.nan
    mask = np.zeros((4, 20), dtype=bool)
    mask[1:] = True
    record = ScoreRecord.from_arrays({"p_target": p}, labels=np.arange(20) % 2, nonfinite=mask)
    assert record.epoch_num_nonfinite == [0, 20, 20, 20]
    with pytest.raises(ValueError, match="no sample has score.*20 of them were seen only with a NaN or infinite"):
        get_strategy("dyn_unc", window=2).select(record, prune_ratio=0.25)


# ---------------------------------------------------------------------------------------------------- end to end


class NanOnceModel(torch.nn.Module):
    """A tiny classifier whose *returned* logits are NaN on one training step (its loss stays finite, so training
    goes on: the case of a logits overflow that the loss scaler skips)."""

    def __init__(self, poison_call: int):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
        self.poison_call, self.calls = poison_call, 0

    def forward(self, pixel_values, labels=None):
        logits = self.net(pixel_values)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        if self.training:
            self.calls += 1
            if self.calls == self.poison_call:
                out["logits"] = torch.full_like(logits, float("nan"))
        return out


def test_a_nan_logit_step_in_pruning_trainer(tmp_path, caplog):
    from hf_prune import PruningArguments, PruningTrainer
    from tests.trainer_utils import collate, small_image_dataset

    args = PruningArguments(
        output_dir=str(tmp_path / "run"), num_train_epochs=3, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True,
    )  # fmt: skip
    trainer = PruningTrainer(model=NanOnceModel(poison_call=5), args=args, train_dataset=small_image_dataset(24),
                             data_collator=collate)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="hf_prune.run_record"):
        trainer.train()
    record = trainer.score_record
    assert record.metadata["epoch_num_seen"] == [24, 24, 24] and record.epoch_num_nonfinite == [0, 8, 0]
    poisoned = np.flatnonzero(record.nonfinite(1))
    assert poisoned.size == 8 and np.isnan(record.signal("p_target")[1, poisoned]).all()
    assert "Epoch 1: 8 sample(s) were trained with a NaN or infinite loss or logits" in caplog.text
    assert trainer._run_record.last_epoch_num_nonfinite == 0  # the last epoch written was clean
    with pytest.warns(NonFiniteRecordWarning):
        kept = get_strategy("dyn_unc", window=2).select(record, prune_ratio=0.25).kept_ids
    assert set(poisoned) <= set(kept)
