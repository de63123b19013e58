"""Sample ids: added as the row position when absent, kept when present, carried through collators that drop
unknown keys, refused where they cannot be known (a stream without ids), and the length of the unpruned split."""

import datasets
import numpy as np
import pytest
import torch

from hf_prune.sample_ids import (
    SAMPLE_ID_COLUMN,
    IndexedDataset,
    KeepSampleIdCollator,
    add_sample_ids,
    check_has_labels,
    num_unpruned_samples,
    sample_ids_of,
)


def test_added_as_row_position_when_absent_and_kept_when_present():
    ds = datasets.Dataset.from_dict({"x": [10, 11, 12], "label": [0, 1, 0]})
    with_ids = add_sample_ids(ds)
    assert with_ids[SAMPLE_ID_COLUMN] == [0, 1, 2] and with_ids.features[SAMPLE_ID_COLUMN].dtype == "int64"
    pruned = with_ids.select([2, 0])
    assert add_sample_ids(pruned)[SAMPLE_ID_COLUMN] == [2, 0]  # a pruned view keeps the original ids
    assert sample_ids_of(pruned).tolist() == [2, 0] and sample_ids_of(ds).tolist() == [0, 1, 2]
    assert num_unpruned_samples(pruned) == 3  # max id + 1
    assert num_unpruned_samples(pruned, override=10) == 10
    assert add_sample_ids(None) is None


def test_torch_datasets_are_wrapped_and_streams_need_the_column():
    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"x": i, "labels": i}

    wrapped = add_sample_ids(Rows())
    assert isinstance(wrapped, IndexedDataset) and wrapped[1] == {"x": 1, "labels": 1, SAMPLE_ID_COLUMN: 1}
    assert num_unpruned_samples(wrapped) == 2

    class Tuples(Rows):
        def __getitem__(self, i):
            return (i, i)

    with pytest.raises(TypeError, match="items to be dicts"):
        add_sample_ids(Tuples())[0]
    stream = datasets.Dataset.from_dict({"x": [1, 2], "label": [0, 1]}).to_iterable_dataset()
    with pytest.raises(ValueError, match="IterableDataset without a `sample_id` column"):
        add_sample_ids(stream)


def test_collator_wrapper_keeps_ids_when_the_collator_drops_them():
    def drops_unknown_keys(features):
        return {"labels": torch.tensor([f["labels"] for f in features])}

    collate = KeepSampleIdCollator(drops_unknown_keys)
    batch = collate([{"labels": 3, SAMPLE_ID_COLUMN: 7}, {"labels": 4, SAMPLE_ID_COLUMN: 2}])
    assert batch[SAMPLE_ID_COLUMN].tolist() == [7, 2] and batch["labels"].tolist() == [3, 4]
    assert "sample_id" not in collate([{"labels": 1}])  # nothing to carry: the collator's own output


def test_label_column_check():
    check_has_labels(datasets.Dataset.from_dict({"labels": [1]}))
    with pytest.raises(ValueError, match="no label column"):
        check_has_labels(datasets.Dataset.from_dict({"y": [1]}), "train dataset")
    check_has_labels(np.zeros(3))  # not a datasets.Dataset: nothing to check here
