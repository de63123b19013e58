"""Clients users actually write (issue 17, case 7): a bare `timm.create_model(...)` as the model, the HF examples'
`shuffle(seed).select(range(m))` subset idiom with `to_source_rows`."""

import datasets
import numpy as np
import pytest

from hf_prune import PruneResult, PruningArguments, PruningTrainer
from hf_prune.models import TimmModuleForImageClassification
from hf_prune.sample_ids import source_rows_of
from tests.trainer_utils import collate, small_image_dataset, timm_model


@pytest.mark.slow
def test_a_bare_timm_module_trains_and_records(tmp_path):
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10, in_chans=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = PruningArguments(output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=8, report_to=[],
                            remove_unused_columns=False, save_strategy="no", use_cpu=True, learning_rate=1e-2)  # fmt: skip
    trainer = PruningTrainer(model=model, args=args, train_dataset=small_image_dataset(24), data_collator=collate)
    assert isinstance(trainer.model, TimmModuleForImageClassification) and trainer.model.model is model
    trainer.train()
    record = trainer.score_record
    assert (record.num_epochs, record.num_samples) == (2, 24) and not np.isnan(record.signal("p_target")).any()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # the user's module trained


def test_to_source_rows_takes_the_shuffled_subset_idiom():
    full = datasets.Dataset.from_dict({"x": list(range(100)), "label": [i % 3 for i in range(100)]})
    train = full.shuffle(seed=42).select(range(10))  # run_image_classification.py's --max_train_samples
    rows = source_rows_of(train)
    assert sorted(rows) != list(rows)  # not increasing: refused before
    result = PruneResult(kept_ids=[0, 2, 5], scores=np.arange(10.0), prune_ratio=0.7, method="random")
    published = result.to_source_rows(rows, len(full), "10 rows shuffled with seed 42")
    assert list(published.kept_ids) == sorted(rows[[0, 2, 5]])
    assert sorted(full.select(published.kept_ids)["x"]) == sorted(train.select([0, 2, 5])["x"])  # the same rows
    np.testing.assert_array_equal(published.scores[rows], np.arange(10.0))
    assert "range" not in published.provenance["subset"]
    with pytest.raises(ValueError, match="names a full-split position twice"):
        result.to_source_rows(np.r_[rows[:9], rows[0]], len(full))
    with pytest.raises(ValueError, match=r"in \[0, 100\)"):
        result.to_source_rows(np.r_[rows[:9], 100], len(full))
    np.testing.assert_array_equal(source_rows_of(full), np.arange(100))


@pytest.mark.slow
def test_an_exported_list_keeps_the_sources_class_label(tmp_path):
    from hf_prune import get_strategy

    ds = small_image_dataset(24)
    names = [f"class {i}" for i in range(10)]
    ds = ds.cast_column("label", datasets.ClassLabel(names=names))
    ds.set_transform(small_image_dataset(1).format["format_kwargs"]["transform"])
    ds = ds.rename_column("label", "fine_label")  # CIFAR-100's label name: found as Trainer would find it
    args = PruningArguments(output_dir=str(tmp_path / "run"), num_train_epochs=3, per_device_train_batch_size=8,
                            report_to=[], remove_unused_columns=False, save_strategy="no", use_cpu=True,
                            label_names=["fine_label"])  # fmt: skip
    def collate_fine(rows):  # the HF example's collate_fn reading --label_column_name
        return collate([{**r, "label": r["fine_label"]} for r in rows])

    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate_fine)
    trainer.train()
    result = get_strategy("dyn_unc", window=2).select(trainer.score_record, prune_ratio=0.5)
    folder = result.save(tmp_path / "list", source=("zalando-datasets/fashion_mnist", "train"))
    loaded = datasets.load_dataset("parquet", data_files=str(next(folder.glob("data/*/*.parquet"))))["train"]
    assert loaded.features["label"].names == names
