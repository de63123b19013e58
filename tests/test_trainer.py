"""PruningTrainer on one process: model paths, completeness, drop-in use, clean view, resume, bad inputs."""

import shutil

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from hf_prune import (
    DynamicPruningArguments,
    DynamicPruningTrainer,
    PruningArguments,
    PruningTrainer,
    ScoreRecord,
    get_strategy,
)
from tests.trainer_utils import collate, small_image_dataset, timm_model, transformers_model


def make_args(tmp_path, **kw):
    defaults = dict(
        output_dir=str(tmp_path / "run"), num_train_epochs=3, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0,
        dataloader_num_workers=0, use_cpu=True,
    )  # fmt: skip
    defaults.update(kw)
    return (DynamicPruningArguments if "dynamic_policy" in defaults else PruningArguments)(**defaults)


@pytest.mark.parametrize("make_model", [timm_model, transformers_model], ids=["timm", "transformers"])
def test_records_every_sample_every_epoch(tmp_path, make_model):
    ds = small_image_dataset(67)
    args = make_args(tmp_path, record_signals=["p_target", "loss", "correct", "el2n"], gradient_accumulation_steps=2)
    trainer = PruningTrainer(model=make_model(), args=args, train_dataset=ds, data_collator=collate)
    trainer.train()
    record = trainer.score_record
    assert (record.num_samples, record.num_epochs) == (67, 3)
    p, loss, correct = record.signal("p_target"), record.signal("loss"), record.signal("correct")
    assert not np.isnan(p).any()
    assert ((p > 0) & (p <= 1)).all()
    np.testing.assert_allclose(loss, -np.log(p), rtol=1e-4)
    assert set(np.unique(correct)) <= {0.0, 1.0}
    np.testing.assert_array_equal(record.labels, ds.with_format(None)["label"])
    assert record.metadata["model"]["class"] == type(trainer.model).__name__
    assert record.metadata["dataset_fingerprint"] == trainer.train_dataset._fingerprint
    assert ScoreRecord.load(tmp_path / "run" / "scores").num_epochs == 3


def test_drop_last_leaves_unseen_samples_nan(tmp_path):
    ds = small_image_dataset(67)
    args = make_args(tmp_path, num_train_epochs=2, dataloader_drop_last=True)
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    trainer.train()
    p = trainer.score_record.signal("p_target")
    assert [int((~np.isnan(row)).sum()) for row in p] == [64, 64]  # 8 batches of 8; 3 samples dropped each epoch


def test_drop_in_with_plain_training_arguments(tmp_path):
    ds = small_image_dataset(30)
    args = TrainingArguments(output_dir=str(tmp_path / "plain"), num_train_epochs=2, per_device_train_batch_size=8,
                             report_to=[], remove_unused_columns=False, save_strategy="no", use_cpu=True)  # fmt: skip
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    trainer.train()
    assert trainer.score_record.signals == ["p_target", "loss", "correct"]
    record = trainer.score_record
    assert (record.num_samples, record.num_epochs) == (30, 2) and not np.isnan(record.signal("p_target")).any()
    # Trainer's own loop ran: its state counts the steps of 2 epochs of ceil(30 / 8) batches, and evaluation works
    assert trainer.state.global_step == 2 * 4 and trainer.state.epoch == pytest.approx(2.0)
    assert "eval_loss" in trainer.evaluate(eval_dataset=ds)


def test_same_training_as_plain_trainer(tmp_path):
    """Recording must not change training: same seed, same final weights as `Trainer`."""
    ds = small_image_dataset(40)
    args = make_args(tmp_path, num_train_epochs=2)
    pruning = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    pruning.train()
    plain_args = make_args(tmp_path, num_train_epochs=2, output_dir=str(tmp_path / "plain"))
    plain = Trainer(model=timm_model(), args=plain_args, train_dataset=ds, data_collator=collate)
    plain.train()
    for a, b in zip(pruning.model.state_dict().values(), plain.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_sample_id_survives_remove_unused_columns(tmp_path):
    """A pre-processed dataset with extra columns: remove_unused_columns drops them but keeps sample_id."""
    import datasets

    base = small_image_dataset(20).with_format(None)
    pixels = np.stack([np.asarray(x, dtype=np.float32)[None] / 255 for x in base["image"]])
    ds = datasets.Dataset.from_dict({"pixel_values": pixels, "labels": base["label"], "note": ["x"] * 20})
    args = make_args(tmp_path, num_train_epochs=1, remove_unused_columns=True)
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds.with_format("torch"))
    trainer.train()
    assert not np.isnan(trainer.score_record.signal("p_target")).any()


def test_clean_view_records_eval_mode_predictions(tmp_path):
    train = small_image_dataset(30, train_transform=True)
    clean = small_image_dataset(30, train_transform=False)
    args = make_args(tmp_path, num_train_epochs=2, record_clean_view=True)
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=train, clean_view_dataset=clean,
                             data_collator=collate)  # fmt: skip
    trainer.train()
    last = trainer.score_record.signal("p_target")[-1]
    model = trainer.model.eval()
    batch = collate([clean[i] for i in range(30)])
    with torch.no_grad():
        probs = model(pixel_values=batch["pixel_values"]).logits.softmax(-1)
    expected = probs[torch.arange(30), batch["labels"]].numpy()
    np.testing.assert_allclose(last, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("save_steps", [7, 9], ids=["mid-epoch", "epoch-last-step"])
def test_resume_equals_uninterrupted(tmp_path, save_steps):
    # 67 samples, batch 8 -> 9 steps per epoch; checkpoint-7 is mid-epoch 0, checkpoint-9 is epoch 0's last step
    # (saved before on_epoch_end), checkpoint-14 mid-epoch 1.
    ds = small_image_dataset(67)
    args = make_args(tmp_path, num_train_epochs=3, save_strategy="steps", save_steps=save_steps)
    full = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    full.train()
    expected = {s: np.array(full.score_record.signal(s)) for s in ("p_target", "loss", "correct")}
    checkpoint = tmp_path / "run" / f"checkpoint-{2 * save_steps}"
    assert (checkpoint / "score_record" / "record.json").exists()
    shutil.rmtree(tmp_path / "run" / "scores")

    resumed = PruningTrainer(model=timm_model(seed=1), args=args, train_dataset=ds, data_collator=collate)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    record = resumed.score_record
    assert record.num_epochs == 3
    for name, values in expected.items():
        np.testing.assert_allclose(record.signal(name), values, rtol=1e-5, atol=1e-6, err_msg=name)


def test_float16_record_and_resume(tmp_path):
    ds = small_image_dataset(40)
    args = make_args(tmp_path, num_train_epochs=2, record_dtype="float16", save_strategy="steps", save_steps=3)
    full = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    full.train()
    record = full.score_record
    assert record.dtype == "float16" and record.metadata["record_dtype"] == "float16"
    expected = np.array(record.signal("p_target"), dtype=np.float32)
    assert not np.isnan(expected).any()
    resumed = PruningTrainer(model=timm_model(seed=1), args=args, train_dataset=ds, data_collator=collate)
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-6"))  # mid-epoch 1
    np.testing.assert_allclose(resumed.score_record.signal("p_target"), expected, rtol=2e-3, atol=1e-4)
    wrong = make_args(tmp_path, num_train_epochs=2, record_dtype="float32")
    with pytest.raises(ValueError, match="record_dtype 'float16' .this run: 'float32'."):
        PruningTrainer(model=timm_model(), args=wrong, train_dataset=ds, data_collator=collate).train(
            resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-6")
        )


def test_record_feeds_dyn_unc_and_apply(tmp_path):
    ds = small_image_dataset(40)
    trainer = PruningTrainer(model=timm_model(), args=make_args(tmp_path, num_train_epochs=4), train_dataset=ds,
                             data_collator=collate)  # fmt: skip
    trainer.train()
    result = get_strategy("dyn_unc", window=2).select(trainer.score_record, prune_ratio=0.25)
    pruned = result.apply(ds)
    assert len(pruned) == 30
    assert pruned.with_format(None)["sample_id"] == result.kept_ids.tolist()
    with pytest.raises(ValueError, match="40 rows"):
        result.apply(ds.select(range(10)))
    # Training on the pruned view keeps recording against the original ids.
    args = make_args(tmp_path, num_train_epochs=1, output_dir=str(tmp_path / "pruned"), record_num_samples=40)
    again = PruningTrainer(model=timm_model(), args=args, train_dataset=pruned, data_collator=collate)
    again.train()
    seen = ~np.isnan(again.score_record.signal("p_target")[0])
    np.testing.assert_array_equal(np.flatnonzero(seen), result.kept_ids)


def test_bad_inputs(tmp_path):
    import datasets

    no_labels = datasets.Dataset.from_dict({"pixel_values": np.zeros((4, 1, 28, 28), dtype=np.float32)})
    trainer = PruningTrainer(model=timm_model(), args=make_args(tmp_path), train_dataset=no_labels.with_format("torch"))
    with pytest.raises(ValueError, match="training batch has no labels .*name your label key in `label_names`"):
        trainer.train()  # labels are read from the batch, as Trainer reads them: refused at the first step
    with pytest.raises(ValueError, match="Unknown signal"):
        make_args(tmp_path, record_signals=["p_target", "confidence"])
    with pytest.raises(ValueError, match="clean_view_dataset"):
        PruningTrainer(model=timm_model(), args=make_args(tmp_path, record_clean_view=True),
                       train_dataset=small_image_dataset(8), data_collator=collate)  # fmt: skip
    with pytest.raises(ValueError, match="needs a `train_dataset`"):
        PruningTrainer(model=timm_model(), args=make_args(tmp_path))


@pytest.mark.parametrize(
    "extra",
    [{}, {"record_signals": ["p_target", "loss", "correct", "margin", "entropy", "el2n"]},
     {"dynamic_policy": "ucb", "dynamic_prune_ratio": 0.5},
     {"dynamic_policy": "infobatch", "dynamic_prune_ratio": 0.5, "num_train_epochs": 3}],
    ids=["default-signals", "all-softmax-signals", "dynamic-ucb", "dynamic-infobatch-weights"],
)  # fmt: skip
def test_no_host_synchronisation_in_the_per_step_recording_path(tmp_path, extra):
    """Issue 10: recording adds no host transfer to a training step (`.item/.cpu/.tolist/.numpy`,
    `cuda.synchronize`): counted inside `training_step` (Trainer's own step included), per-epoch work excluded."""
    from tests.host_sync import count_host_syncs

    ds = small_image_dataset(32)
    args = make_args(tmp_path, **{"num_train_epochs": 2, "logging_steps": 1000, **extra})
    trainer_class = DynamicPruningTrainer if "dynamic_policy" in extra else PruningTrainer
    trainer = trainer_class(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    with count_host_syncs(only_during=((PruningTrainer, "training_step"),)) as syncs:
        trainer.train()
    if extra.get("dynamic_policy") == "infobatch":  # epoch 1 prunes, its kept samples weighted 1/(1-r) on the device
        assert np.nansum(trainer.score_record.signal("selected")[1]) < 32
    else:
        assert trainer.state.global_step == (4 if extra.get("dynamic_policy") else 8)
    assert trainer.score_record.num_epochs == args.num_train_epochs and syncs.calls == [], syncs.report()

    # the counter sees a transfer where there is one: the test can fail
    class Leaky(PruningTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            inputs["labels"].tolist()
            return super().compute_loss(model, inputs, *args, **kwargs)

    with count_host_syncs(only_during=((PruningTrainer, "training_step"),)) as probe:
        Leaky(model=timm_model(), args=make_args(tmp_path / "leaky", num_train_epochs=1), train_dataset=ds,
              data_collator=collate).train()  # fmt: skip
    assert [what for what, _ in probe.calls] == ["Tensor.tolist"] * 4


def test_no_pin_memory_warning_on_cpu(tmp_path, recwarn):
    """Trainer pins memory by default; on a CPU-only run torch then warns that nothing can be pinned."""
    args = TrainingArguments(str(tmp_path), num_train_epochs=1, per_device_train_batch_size=8, report_to=[],
                             remove_unused_columns=False, save_strategy="no", use_cpu=True)  # fmt: skip
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=small_image_dataset(16),
                             data_collator=collate)  # fmt: skip
    trainer.train()
    assert not [w for w in recwarn if "pin_memory" in str(w.message)]
    assert trainer.args.dataloader_pin_memory is False
