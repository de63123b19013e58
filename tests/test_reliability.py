"""Issue 9: no record is ever lost, silently empty or mis-keyed. One test (or a few) per numbered case of the issue,
each of which failed before the fix; real processes where the case is about processes (`kill -9` of a child training
process, a second concurrent run, a real 2-process `torchrun`, a real full tmpfs). The README's "Reliability: what
survives what" table is read off these tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from transformers import default_data_collator

from hf_prune import PruneResult, PruningArguments, PruningTrainer, ScoreRecord, get_strategy
from hf_prune.data import ImageTransform
from tests.conftest import REPO_ROOT, run_torchrun
from tests.trainer_utils import collate, small_image_dataset, timm_model


try:
    from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (fixture registration)
except ImportError:  # pragma: no cover
    from hub_fixtures import hub, run_with_hub  # noqa: F401


def make_args(tmp_path, **kw):
    defaults = dict(
        output_dir=str(tmp_path / "run"), num_train_epochs=2, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0,
        dataloader_num_workers=0, use_cpu=True,
    )  # fmt: skip
    defaults.update(kw)
    return PruningArguments(**defaults)


def train(tmp_path, ds=None, collator=collate, resume=None, **kw):
    trainer = PruningTrainer(model=timm_model(), args=make_args(tmp_path, **kw), train_dataset=ds or
                             small_image_dataset(24), data_collator=collator)  # fmt: skip
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def snapshot(path):
    """Every file of a record folder, by name, as bytes (to prove it was not touched)."""
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def raw_images(n):
    return small_image_dataset(n).with_format(None)


# ---------------------------------------------------------------------------------------------------- case 1


def vit_guide_transform(batch):
    """The HF "fine-tune ViT" guide's transform: `inputs = processor(...); inputs["labels"] = ...; return inputs`."""
    inputs = {"pixel_values": [torch.as_tensor(np.asarray(img, np.float32)[None] / 255) for img in batch["image"]]}
    inputs["labels"] = batch["label"]
    return inputs


@pytest.mark.parametrize("how", ["with_transform", "set_transform"])
def test_case1_transform_returning_a_new_dict_records_every_sample(tmp_path, how):
    """Case 1: the ids must not live inside the user's item, where such a transform drops them."""
    raw = raw_images(24)
    labels = list(raw["label"])
    if how == "with_transform":
        ds = raw.with_transform(vit_guide_transform)
    else:
        ds = raw
        ds.set_transform(vit_guide_transform)
    trainer = train(tmp_path, ds, collator=default_data_collator)
    record = trainer.score_record
    assert record.num_epochs == 2 and not np.isnan(record.signal("p_target")).any()
    np.testing.assert_array_equal(record.labels, labels)
    kept = get_strategy("random", seed=0).select(record, prune_ratio=0.5).kept_ids
    assert len(kept) == 12


def test_case1_an_epoch_that_records_less_than_it_trained_raises(tmp_path):
    """Case 1's safety net: if rows get lost anyway (here an override that skips recording), training stops."""

    class Skips(PruningTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return super(PruningTrainer, self).compute_loss(model, inputs, return_outputs, num_items_in_batch)

    trainer = Skips(model=timm_model(), args=make_args(tmp_path), train_dataset=small_image_dataset(24),
                    data_collator=collate)  # fmt: skip
    with pytest.raises(RuntimeError, match="trained on 24 samples but recorded 0"):
        trainer.train()
    assert ScoreRecord.load(tmp_path / "run" / "scores").num_epochs == 0  # nothing half-written


# ---------------------------------------------------------------------------------------------------- case 2


def test_case2_label_column_named_like_cifar100_and_ignore_index(tmp_path):
    """Case 2: a `fine_label` column (CIFAR-100, the HF example's --label_column_name) trains as with Trainer; labels
    of -100 (the ignore index) are recorded as NaN instead of crashing the run."""
    raw = raw_images(24).rename_column("label", "fine_label")
    raw = raw.add_column("coarse_label", [y // 5 for y in raw["fine_label"]])
    raw = raw.add_column("ignored", [i < 5 for i in range(24)])
    image = ImageTransform(28, in_chans=1)

    def transform(batch):
        return image(batch)

    raw.set_transform(transform)

    def collate_fn(examples):  # the example's collator, with an ignore index for 5 rows
        labels = [-100 if e["ignored"] else e["fine_label"] for e in examples]
        return {"pixel_values": torch.stack([e["pixel_values"] for e in examples]), "labels": torch.tensor(labels)}

    trainer = train(tmp_path, raw, collator=collate_fn)
    record = trainer.score_record
    p = record.signal("p_target")
    assert np.isnan(p[:, :5]).all() and not np.isnan(p[:, 5:]).any()
    assert (record.labels[:5] == -1).all()
    np.testing.assert_array_equal(record.labels[5:], raw.with_format(None)["fine_label"][5:])


# ---------------------------------------------------------------------------------------------------- case 3


def test_case3_stream_without_ids_is_refused_with_the_right_fix(tmp_path):
    stream = raw_images(16).to_iterable_dataset()
    with pytest.raises(ValueError, match=r"before `\.shuffle\(\)`.*positions in the shuffled order"):
        PruningTrainer(model=timm_model(), args=make_args(tmp_path, max_steps=2, record_num_samples=16),
                       train_dataset=stream, data_collator=collate)  # fmt: skip


def test_case3_ids_added_after_shuffle_are_caught(tmp_path):
    """Indices added after `.shuffle()` are stream positions: the same id comes back with another sample's label in
    the next epoch, which the record refuses instead of mixing samples."""
    image = ImageTransform(28, in_chans=1)

    def pixels(batch):
        return {"pixel_values": [x.numpy() for x in image(batch)["pixel_values"]], "label": batch["label"]}

    stream = raw_images(32).to_iterable_dataset(num_shards=4).shuffle(seed=0, buffer_size=32)
    stream = stream.map(lambda _, i: {"sample_id": i}, with_indices=True).map(pixels, batched=True, batch_size=8)
    trainer = PruningTrainer(model=timm_model(), args=make_args(tmp_path, max_steps=12, record_num_samples=32),
                             train_dataset=stream, data_collator=collate)  # fmt: skip
    with pytest.raises(ValueError, match=r"recorded with label \d+ in an earlier epoch and arrives with label"):
        trainer.train()
    assert ScoreRecord.load(tmp_path / "run" / "scores").num_epochs == 1  # the first epoch, nothing mixed into it


# ---------------------------------------------------------------------------------------------------- case 4


@pytest.fixture
def finished_run(tmp_path):
    """A complete 3-epoch run of 24 rows (3 steps per epoch) with checkpoints at steps 4 and 8."""
    trainer = train(tmp_path, num_train_epochs=3, save_strategy="steps", save_steps=4)
    return tmp_path / "run", trainer


def test_case4_resume_without_a_checkpoint_leaves_the_record_alone(tmp_path):
    train(tmp_path)  # no checkpoints
    scores = tmp_path / "run" / "scores"
    before = snapshot(scores)
    with pytest.raises(ValueError, match="No valid checkpoint found in output directory"):
        train(tmp_path, resume=True)
    with pytest.raises(ValueError, match="Can't find a valid checkpoint at .*checkpoint-99"):
        train(tmp_path, resume=str(tmp_path / "run" / "checkpoint-99"))
    assert snapshot(scores) == before


@pytest.mark.parametrize("damage", ["missing", "truncated", "unreadable"])
def test_case4_a_bad_checkpoint_record_is_refused_before_anything_is_touched(finished_run, tmp_path, damage):
    run, _ = finished_run
    saved = run / "checkpoint-8" / "score_record"
    if damage == "missing":
        shutil.rmtree(saved)
    elif damage == "truncated":  # a kill or a full disk while it was copied
        path = saved / "p_target.npy"
        data = path.read_bytes()
        path.unlink()  # (a hard link: write a new file, the live record keeps its own)
        path.write_bytes(data[: len(data) // 3])
    else:
        (saved / "record.json").write_text('{"num_samples": 24, "num_ep')
    before = snapshot(run / "scores")
    match = {"missing": "has no score record", "truncated": "is damaged", "unreadable": "is damaged"}[damage]
    with pytest.raises(ValueError, match=match + ".*Nothing was changed"):
        train(tmp_path, num_train_epochs=3, save_strategy="steps", save_steps=4, resume=str(run / "checkpoint-8"))
    assert snapshot(run / "scores") == before


def test_case4_starting_over_from_a_checkpoint_without_record_keeps_the_old_one_aside(finished_run, tmp_path):
    run, first = finished_run
    expected = np.array(first.score_record.signal("p_target"))
    shutil.rmtree(run / "checkpoint-8" / "score_record")
    train(tmp_path, num_train_epochs=3, save_strategy="no", overwrite_score_record=True,
          resume=str(run / "checkpoint-8"))  # fmt: skip
    aside = [p for p in run.iterdir() if p.name.startswith("scores.old-")]
    assert len(aside) == 1
    np.testing.assert_array_equal(ScoreRecord.load(aside[0]).signal("p_target"), expected)
    p = ScoreRecord.load(run / "scores").signal("p_target")
    assert np.isnan(p[:2]).all() and not np.isnan(p[2]).any()  # honest: epochs before the checkpoint are unknown


def run_worker(config, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "fault_worker.py"), json.dumps(config)],
                          env=env, capture_output=True, text=True, timeout=timeout)  # fmt: skip


def worker_record(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: 40 rows, 3 epochs, batch 8 (5 steps per epoch), checkpoints every 3 steps, in a child process."""
    out = tmp_path_factory.mktemp("reference") / "run"
    return worker_record(run_worker({"output_dir": str(out), "n": 40, "epochs": 3, "save_steps": 3}))


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [{"kill_after_rotation": 3, "save_total_limit": 1}, {"kill_at_step": 8}],
    ids=["kill-9-after-trainer-rotated-checkpoints", "kill-9-mid-epoch"],
)
def test_case4_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, uninterrupted, fault):
    """`kill -9` of a child training process, then `train(resume_from_checkpoint=True)` in a new process. The first
    fault point is where, before the fix, the newest checkpoint had no record while `save_total_limit=1` had already
    deleted the one that had: the resumed run wiped the complete record and restarted it with NaN epochs."""
    config = {"output_dir": str(tmp_path / "run"), "n": 40, "epochs": 3, "save_steps": 3, **fault}
    killed = run_worker(config)
    assert killed.returncode == -9, killed.stderr[-3000:]
    survived = ScoreRecord.load(tmp_path / "run" / "scores")  # the last complete epoch is readable after the kill
    assert survived.num_epochs >= 1 and not np.isnan(survived.signal("p_target")).any()
    resumed = worker_record(run_worker({**config, "kill_after_rotation": None, "kill_at_step": None, "resume": True}))
    assert resumed["num_epochs"] == 3
    np.testing.assert_allclose(resumed["p_target"], uninterrupted["p_target"], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- case 5


def test_case5_a_second_run_into_the_same_folder_is_refused_or_moves_the_record_aside(tmp_path):
    first = train(tmp_path)
    before = snapshot(tmp_path / "run" / "scores")
    with pytest.raises(FileExistsError, match="already holds a score record .*overwrite_score_record=True"):
        train(tmp_path, num_train_epochs=1)
    assert snapshot(tmp_path / "run" / "scores") == before
    expected = np.array(first.score_record.signal("p_target"))
    second = train(tmp_path, num_train_epochs=1, overwrite_score_record=True)
    assert second.score_record.num_epochs == 1
    (aside,) = [p for p in (tmp_path / "run").iterdir() if p.name.startswith("scores.old-")]
    np.testing.assert_array_equal(ScoreRecord.load(aside).signal("p_target"), expected)


@pytest.mark.slow
def test_case5_a_concurrent_second_run_is_refused_while_the_first_one_trains(tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    config = {"output_dir": str(tmp_path / "run"), "n": 40, "epochs": 2, "started_file": str(started),
              "release_file": str(release)}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    first = subprocess.Popen([sys.executable, str(REPO_ROOT / "tests" / "fault_worker.py"), json.dumps(config)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.time() + 120
        while not started.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert started.exists(), first.communicate()[1][-3000:]
        second = run_worker({**config, "started_file": None, "release_file": None})
        release.touch()
        assert second.returncode != 0 and "is in use by another training run (pid" in second.stderr
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-3000:]
    record = ScoreRecord.load(tmp_path / "run" / "scores")
    assert record.num_epochs == 2 and not np.isnan(record.signal("p_target")).any()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith("scores.old-")]


# ---------------------------------------------------------------------------------------------------- case 6


def faults_under_torchrun(tmp_path, mode, timeout=300):
    out = tmp_path / mode
    proc = run_torchrun("dist_faults_worker.py", mode, str(out), cwd=tmp_path, timeout=timeout, master_port=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = [json.loads((tmp_path / f"{mode}.rank{r}.json").read_text()) for r in range(2)]
    for r in results:
        assert "crashed" not in r, r["crashed"]
    return results, tmp_path / f"{mode}.run"


@pytest.mark.slow
def test_case6_resume_with_another_world_size(tmp_path):
    """A 2-process run (batch 4 per process) checkpointed mid-epoch, resumed by one process: with the same total
    batch (8) every rank's partial rows are merged and the record is complete; with another total batch it is refused
    before anything is touched."""
    results, run = faults_under_torchrun(tmp_path, "checkpoint")
    assert results[0]["num_epochs"] == 3
    full = ScoreRecord.load(run / "scores")
    expected = np.array(full.signal("p_target"))
    ds = small_image_dataset(48)

    def resume(batch):
        args = make_args(tmp_path, output_dir=str(run), num_train_epochs=3, per_device_train_batch_size=batch)
        trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
        trainer.train(resume_from_checkpoint=str(run / "checkpoint-9"))
        return trainer

    before = snapshot(run / "scores")
    with pytest.raises(ValueError, match=r"2 processes\).*this run takes 4 per step.*same total batch size"):
        resume(4)
    assert snapshot(run / "scores") == before
    record = resume(8).score_record
    assert record.num_epochs == 3
    p = record.signal("p_target")
    assert not np.isnan(p).any()  # epoch 1: 24 rows from the two ranks' checkpoint files + 24 trained after resuming
    np.testing.assert_array_equal(p[0], expected[0])
    (aside,) = [x for x in run.iterdir() if x.name.startswith("scores.old-")]  # the complete record: kept aside
    np.testing.assert_array_equal(ScoreRecord.load(aside).signal("p_target"), expected)


def test_case6_resume_on_a_shuffled_copy_is_refused(finished_run, tmp_path):
    run, _ = finished_run
    before = snapshot(run / "scores")
    shuffled = raw_images(24).shuffle(seed=1)
    shuffled.set_transform(ImageTransform(28, in_chans=1))
    with pytest.raises(ValueError, match="other rows .*shuffled, re-selected or another split"):
        train(tmp_path, shuffled, num_train_epochs=3, save_strategy="steps", save_steps=4,
              resume=str(run / "checkpoint-8"))  # fmt: skip
    assert snapshot(run / "scores") == before


# ---------------------------------------------------------------------------------------------------- case 7


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); test_record.py covers ENOSPC with a fake")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_case7_disk_full_mid_run_is_a_clean_error_with_the_last_epoch_intact(small_tmpfs):
    """A real 4 MiB tmpfs fills up during epoch 1 (16 steps per epoch); before the fix the process died of SIGBUS
    writing the memory-mapped row."""
    config = {"output_dir": str(small_tmpfs / "run"), "n": 1024, "batch": 64, "epochs": 3, "fill_disk_at_step": 20}
    proc = run_worker(config)
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    assert "OSError" in proc.stderr and "No space left on device" in proc.stderr
    assert str(small_tmpfs / "run" / "scores") in proc.stderr  # names the path
    record = ScoreRecord.load(small_tmpfs / "run" / "scores")
    assert record.num_epochs == 1 and not np.isnan(record.signal("p_target")[0]).any()


# ---------------------------------------------------------------------------------------------------- case 8


@pytest.mark.slow
def test_case8_bad_input_in_a_collective_section_raises_on_every_rank(tmp_path):
    """Ids beyond the record (record write), beyond the feature file (feature pass), and a corrupt row that only one
    rank reads (feature pass): each raises on both processes of a real 2-process torchrun; before the fix the main
    process raised alone and the other one waited in the next collective until the timeout."""
    results, _ = faults_under_torchrun(tmp_path, "bad_input", timeout=150)
    for rank in results:
        assert "record holds 20 samples" in rank["record"] and "record_num_samples" in rank["record"]
        assert "outside [0, 22)" in rank["features"]
    assert results[1]["corrupt_row"] == "ValueError: cannot decode the image of row 13"
    assert results[0]["corrupt_row"].startswith("CollectiveError: the feature pass failed on another process (rank 1")


# ---------------------------------------------------------------------------------------------------- case 9


def test_case9_clean_view_and_feature_passes_never_take_the_cached_eval_loader(tmp_path):
    from hf_prune.features import extract_features

    train_ds, clean = small_image_dataset(30, train_transform=True), small_image_dataset(30)
    evaluation = small_image_dataset(40).select(range(30, 40))
    args = make_args(tmp_path, record_clean_view=True, dataloader_num_workers=1, dataloader_persistent_workers=True)
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=train_ds, clean_view_dataset=clean,
                             eval_dataset=evaluation, data_collator=collate,
                             compute_metrics=lambda p: {"rows": len(p.label_ids)})  # fmt: skip
    trainer.train()
    assert trainer.evaluate()["eval_rows"] == 10
    store = extract_features(trainer, dataset=clean)
    assert store.seen.all() and store.num_samples == 30
    assert trainer.evaluate()["eval_rows"] == 10
    assert not np.isnan(trainer.score_record.signal("p_target")).any()


# ---------------------------------------------------------------------------------------------------- case 10


RECORD_METHODS = ["dyn_unc", "static_uncertainty", "forgetting", "cartography", "aum", "entropy", "el2n"]
SIGNALS = ("p_target", "loss", "correct", "margin", "logit_margin", "entropy", "el2n")


@pytest.mark.parametrize("method", RECORD_METHODS)
def test_case10_empty_or_mostly_empty_records_raise_in_every_strategy(method):
    params = {"window": 2} if method in ("dyn_unc", "static_uncertainty") else {}
    empty = ScoreRecord.from_arrays({s: np.full((4, 20), np.nan) for s in SIGNALS}, labels=np.arange(20) % 2)
    with pytest.raises(ValueError, match="no sample has score"):
        get_strategy(method, **params).select(empty, prune_ratio=0.25)
    rng = np.random.default_rng(0)
    mostly = {s: rng.random((4, 20)) for s in SIGNALS}
    for s in SIGNALS:
        mostly[s][:, :12] = np.nan  # 12 of 20 samples never seen
    with pytest.raises(ValueError, match="12 of 20 samples have no score"):
        get_strategy(method, **params).select(ScoreRecord.from_arrays(mostly), prune_ratio=0.25)


def test_case10_prune_result_validates_what_it_is_given():
    scores = np.arange(6.0)
    with pytest.raises(TypeError, match=r"boolean mask.*np\.flatnonzero\(mask\)"):
        mask = np.array([True, False, True, True, False, False])
        PruneResult(kept_ids=mask, scores=scores, prune_ratio=0.5, method="m")
    with pytest.raises(ValueError, match=r"non-integer value\(s\), e\.g\. 1\.5"):
        PruneResult(kept_ids=[1.5, 3.0], scores=scores, prune_ratio=0.5, method="m")
    with pytest.raises(ValueError, match=r"1 repeated id\(s\), e\.g\. 3"):
        PruneResult(kept_ids=[3, 1, 3], scores=scores, prune_ratio=0.5, method="m")
    with pytest.raises(ValueError, match="scores has 5 entries for num_samples=6"):
        PruneResult(kept_ids=[1], scores=scores[:5], prune_ratio=0.5, method="m", num_samples=6)
    assert PruneResult(kept_ids=[3.0, 1.0], scores=scores, prune_ratio=0.5, method="m").kept_ids.tolist() == [1, 3]


def test_case10_apply_selects_by_sample_id_and_refuses_other_rows(tmp_path):
    trainer = train(tmp_path, num_train_epochs=4)
    result = get_strategy("dyn_unc", window=2).select(trainer.score_record, prune_ratio=0.5)
    raw = raw_images(24)
    pruned = result.apply(raw)
    assert pruned["sample_id"] == result.kept_ids.tolist()
    # the shuffled split: same length, other rows -> refused (before: silently the wrong rows)
    with pytest.raises(ValueError, match="rows differ from the ones that were scored"):
        result.apply(raw.shuffle(seed=0))
    with pytest.warns(UserWarning, match="Applied anyway"):
        result.apply(raw.shuffle(seed=0), force=True)
    # a shuffled view that carries the ids: selected by id, whatever its order or length
    view = raw.add_column("sample_id", np.arange(24)).shuffle(seed=0).select(range(20))
    with pytest.raises(ValueError, match="kept ids are not in the dataset's `sample_id` column"):
        result.apply(view)
    full_view = raw.add_column("sample_id", np.arange(24)).shuffle(seed=0)
    picked = result.apply(full_view)
    assert sorted(picked["sample_id"]) == result.kept_ids.tolist()
    assert picked["label"] == [raw["label"][i] for i in picked["sample_id"]]


def test_case10_load_pruned_refuses_a_reordered_source_and_says_what_warnings_mean(tmp_path):
    from hf_prune import load_pruned
    from hf_prune.export import SourceMismatchWarning

    trainer = train(tmp_path, num_train_epochs=4)
    result = get_strategy("dyn_unc", window=2).select(trainer.score_record, prune_ratio=0.5)
    raw = raw_images(24)
    folder = result.save(tmp_path / "list", source=("org/fmnist", "train"))
    assert load_pruned(raw, folder)["label"] == [raw["label"][i] for i in result.kept_ids]
    with pytest.raises(ValueError, match="not the ones that were scored.*WRONG rows"):
        load_pruned(raw.shuffle(seed=0), folder)
    # A list without a row fingerprint (made elsewhere): a `datasets` fingerprint mismatch is refused, saying what it
    # cannot tell apart; force=True applies it with that warning.
    bare = PruneResult(result.kept_ids, result.scores, 0.5, "dyn_unc", num_samples=24,
                       provenance={"source": {"repo_id": "org/fmnist", "fingerprint": "abc"}})  # fmt: skip
    folder = bare.save(tmp_path / "bare")
    with pytest.raises(ValueError, match="harmless; if its rows are in another order .*WRONG rows.*force=True"):
        load_pruned(raw.shuffle(seed=0), folder)
    with pytest.warns(SourceMismatchWarning, match="harmless; if its rows are in another order .*WRONG rows"):
        load_pruned(raw.shuffle(seed=0), folder, force=True)


# ---------------------------------------------------------------------------------------------------- case 11


def test_case11_push_rolls_back_after_a_transport_error(hub):
    hub.server.drop_connections.append(("POST", "/commit/"))  # the connection drops during the commit
    proc = run_with_hub(
        hub,
        """
        import json, numpy as np
        from hf_prune import ScoreRecord, get_strategy
        from hf_prune.export import HubPushError
        record = ScoreRecord.from_arrays({"p_target": np.random.default_rng(0).random((5, 40))})
        result = get_strategy("dyn_unc", window=2).select(record, prune_ratio=0.5)
        out = {}
        try:
            result.push_to_hub("testuser/dropped", plot=False)
        except Exception as err:
            out["error"] = f"{type(err).__name__}: {err}"
            out["cause"] = type(err.__cause__).__name__
        import os
        os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there
        from huggingface_hub import constants
        constants.ENDPOINT = "http://127.0.0.1:9"
        try:
            result.push_to_hub("testuser/unreachable", plot=False)
        except Exception as err:
            out["unreachable"] = f"{type(err).__name__}: {err}"
        print(json.dumps(out))
        """,
        timeout=120,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["error"].startswith("HubPushError: Pushing") and "RemoteProtocolError" in out["error"]
    assert "was removed again" in out["error"] and out["cause"] == "RemoteProtocolError"
    assert not hub.server.repo_exists("testuser/dropped", "dataset")
    assert out["unreachable"].startswith("HubPushError: Could not reach the Hub")
    assert "Nothing was pushed" in out["unreachable"]


# ---------------------------------------------------------------------------------------------------- case 12


def test_case12_dyn_unc_window_is_checked_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"dyn_unc_window=10 needs more epochs than num_train_epochs \(2\).*least 11"):
        make_args(tmp_path, dyn_unc_window=10, num_train_epochs=2)
    with pytest.raises(ValueError, match="Use a window between 2 and 4"):
        make_args(tmp_path, dyn_unc_window=5, num_train_epochs=5)
    # with max_steps the number of epochs is known when Trainer starts: checked then, before the first step
    trainer = PruningTrainer(model=timm_model(), args=make_args(tmp_path, dyn_unc_window=5, max_steps=4),
                             train_dataset=small_image_dataset(8), data_collator=collate)  # fmt: skip
    with pytest.raises(ValueError, match=r"needs more epochs than num_train_epochs \(4\)"):
        trainer.train()
    assert trainer.state.global_step == 0
    # the strategy's own message never suggests a window that is itself invalid
    record = ScoreRecord.from_arrays({"p_target": np.random.default_rng(0).random((2, 10))})
    with pytest.raises(ValueError, match="No window fits fewer than 3 epochs: train for at least 11") as caught:
        get_strategy("dyn_unc", window=10).select(record, prune_ratio=0.5)
    assert "<= 2" not in str(caught.value)
    record = ScoreRecord.from_arrays({"p_target": np.random.default_rng(0).random((5, 10))})
    with pytest.raises(ValueError, match="Use a window between 2 and 4"):
        get_strategy("dyn_unc", window=5).select(record, prune_ratio=0.5)


# ---------------------------------------------------------------------------------------------------- the HF example


@pytest.mark.slow
def test_the_transformers_image_classification_example_pattern(tmp_path):
    """transformers' examples/pytorch/image-classification/run_image_classification.py, with `Trainer` swapped for
    `PruningTrainer`: an image folder loaded with `imagefolder`, a model and image processor from a local folder
    (`from_pretrained`), `set_transform` adding `pixel_values`, its `collate_fn` reading `--label_column_name`
    (CIFAR-100's `fine_label` here) and `--remove_unused_columns False`."""
    from datasets import load_dataset
    from PIL import Image
    from torchvision.transforms import (
        CenterCrop,
        Compose,
        Normalize,
        RandomHorizontalFlip,
        RandomResizedCrop,
        Resize,
        ToTensor,
    )
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageClassification,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    # a local image folder: train/<class>/*.png, validation/<class>/*.png (Fashion-MNIST rows, 3 classes)
    raw = raw_images(200)
    count = {}
    for image, label in zip(raw["image"], raw["label"]):
        if label > 2 or count.get(label, 0) >= 12:
            continue
        split = "train" if count.get(label, 0) < 9 else "validation"
        folder = tmp_path / "images" / split / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(image, np.uint8)).convert("RGB").save(folder / f"{count.get(label, 0)}.png")
        count[label] = count.get(label, 0) + 1
    # a tiny local model folder, as `--model_name_or_path ./tiny-vit`
    model_dir = tmp_path / "tiny-vit"
    torch.manual_seed(0)
    ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                        num_labels=2)).save_pretrained(model_dir)  # fmt: skip
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(model_dir)

    # --- the example, from here on ---
    label_column_name = "fine_label"
    dataset = load_dataset("imagefolder", data_dir=str(tmp_path / "images")).rename_column("label", label_column_name)
    labels = dataset["train"].features[label_column_name].names
    label2id = {name: str(i) for i, name in enumerate(labels)}
    id2label = {str(i): name for i, name in enumerate(labels)}

    def collate_fn(examples):
        pixel_values = torch.stack([example["pixel_values"] for example in examples])
        labels = torch.tensor([example[label_column_name] for example in examples])
        return {"pixel_values": pixel_values, "labels": labels}

    model = AutoModelForImageClassification.from_pretrained(
        model_dir, num_labels=len(labels), label2id=label2id, id2label=id2label, ignore_mismatched_sizes=True
    )
    image_processor = AutoImageProcessor.from_pretrained(model_dir)
    size = (image_processor.size["height"], image_processor.size["width"])
    normalize = Normalize(mean=image_processor.image_mean, std=image_processor.image_std)
    _train_transforms = Compose([RandomResizedCrop(size), RandomHorizontalFlip(), ToTensor(), normalize])
    _val_transforms = Compose([Resize(size), CenterCrop(size), ToTensor(), normalize])

    def train_transforms(example_batch):
        example_batch["pixel_values"] = [_train_transforms(img.convert("RGB")) for img in example_batch["image"]]
        return example_batch

    def val_transforms(example_batch):
        example_batch["pixel_values"] = [_val_transforms(img.convert("RGB")) for img in example_batch["image"]]
        return example_batch

    dataset["train"].set_transform(train_transforms)
    dataset["validation"].set_transform(val_transforms)
    training_args = PruningArguments(
        output_dir=str(tmp_path / "out"), remove_unused_columns=False, num_train_epochs=3,
        per_device_train_batch_size=4, learning_rate=2e-4, report_to=[], save_strategy="no", use_cpu=True,
        seed=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = PruningTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["validation"],
        compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, axis=1) == p.label_ids).mean())},
        processing_class=image_processor,
        data_collator=collate_fn,
    )
    trainer.train()
    metrics = trainer.evaluate()
    # --- end of the example ---
    assert "eval_accuracy" in metrics
    record = trainer.score_record
    assert (record.num_samples, record.num_epochs) == (27, 3) and not np.isnan(record.signal("p_target")).any()
    np.testing.assert_array_equal(record.labels, dataset["train"].with_format(None)[label_column_name])
    result = get_strategy("dyn_unc", window=2).select(record, prune_ratio=1 / 3)
    pruned = result.apply(dataset["train"])
    assert len(pruned) == 18 and pruned.with_format(None)["sample_id"] == result.kept_ids.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same rows, another transform: no complaint
        result.apply(load_dataset("imagefolder", data_dir=str(tmp_path / "images"))["train"].rename_column(
            "label", label_column_name))  # fmt: skip
