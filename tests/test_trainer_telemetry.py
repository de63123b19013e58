"""PruningTrainer's telemetry goes through `Trainer.log`: read back from a real TensorBoard event file
(`report_to="tensorboard"`), for a static run and a dynamic one; `train()`'s metrics count the samples trained."""

import numpy as np
import pytest

from hf_prune import DynamicPruningArguments, DynamicPruningTrainer, PruningArguments, PruningTrainer
from tests.trainer_utils import collate, small_image_dataset, timm_model


def scalars(logdir) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(logdir.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {logdir}"
    values: dict[str, list[float]] = {}
    for path in files:
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            values.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return values


def make_args(tmp_path, **kw):
    defaults = dict(
        output_dir=str(tmp_path / "run"), num_train_epochs=2, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=["tensorboard"], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0,
        use_cpu=True, logging_strategy="epoch",
    )  # fmt: skip
    return (DynamicPruningArguments if "dynamic_policy" in kw else PruningArguments)(**{**defaults, **kw})


def test_static_run_logs_recorded_samples_and_real_throughput(tmp_path):
    pytest.importorskip("tensorboard")
    ds = small_image_dataset(40)
    trainer = PruningTrainer(model=timm_model(), args=make_args(tmp_path), train_dataset=ds, data_collator=collate)
    output = trainer.train()
    values = scalars(tmp_path / "run")
    assert values["train/pruning/recorded_samples"] == [40.0, 40.0]
    assert len(values["train/pruning/samples_trained_per_second"]) == 2
    assert all(v > 0 for v in values["train/pruning/samples_trained_per_second"])
    assert "train/pruning/kept" not in values  # no dynamic policy, nothing pruned
    assert len(values["train/loss"]) == 2  # Trainer's own epoch logs still come through
    assert output.metrics["train_samples_trained"] == 80
    assert output.metrics["train_samples_trained_per_second"] > 0


def test_dynamic_run_logs_kept_selection_and_scoring_time(tmp_path):
    pytest.importorskip("tensorboard")
    ds = small_image_dataset(40)
    args = make_args(tmp_path, num_train_epochs=3, dynamic_policy="ucb", dynamic_prune_ratio=0.5,
                     dynamic_scoring="pass", dynamic_round_to_batches=False)  # fmt: skip
    trainer = DynamicPruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate,
                                    clean_view_dataset=small_image_dataset(40))  # fmt: skip
    output = trainer.train()
    values = scalars(tmp_path / "run")
    kept = values["train/pruning/kept"]
    assert kept == [20.0, 20.0, 20.0] and values["train/pruning/kept_fraction"] == [0.5, 0.5, 0.5]
    assert values["train/pruning/recorded_samples"] == [20.0, 20.0, 20.0]  # what was trained, not len(dataset)
    ever = values["train/pruning/ever_selected_fraction"]
    assert ever[0] == 0.5 and all(b >= a for a, b in zip(ever, ever[1:])) and ever[-1] <= 1.0
    assert all(s > 0 for s in values["train/pruning/scoring_seconds"])  # a scoring pass every epoch (period 1)
    # Trainer's own train_samples_per_second counts len(dataset) per epoch; ours counts the 60 samples trained.
    assert output.metrics["train_samples_trained"] == 60
    np.testing.assert_allclose(
        output.metrics["train_samples_trained_per_second"], 60 / output.metrics["train_runtime"], rtol=0.01
    )
