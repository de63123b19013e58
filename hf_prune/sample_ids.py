"""Sample ids and labels: how a training row keeps its identity on its way from the dataset to the recorder.

A **sample id** is the row position of a sample in the *unpruned* training split, as int64. It is what every score
record, selection and published index list is keyed by. This module owns the id column's name, the label column
names, adding ids to a dataset that has none, and the collator wrapper that keeps ids in the batch when a user's
collator drops unknown keys.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


SAMPLE_ID_COLUMN = "sample_id"

# The names `Trainer` and its default collators treat as the label of a batch, in the order they are looked up.
LABEL_COLUMNS = ("labels", "label", "label_ids")
# Label columns of raw Hub datasets that image recipes recognise besides those (CIFAR-100's fine labels).
DATASET_LABEL_COLUMNS = (*LABEL_COLUMNS, "fine_label")


def is_iterable_dataset(dataset) -> bool:
    """True for streaming datasets (`datasets.IterableDataset` or a torch `IterableDataset`)."""
    return isinstance(dataset, torch.utils.data.IterableDataset)


class IndexedDataset(torch.utils.data.Dataset):
    """A map-style torch dataset of dicts, with the row position added to every item as `sample_id`.

    Args:
        dataset (map-style dataset): returns a dict per row.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        item = self.dataset[idx]
        if not isinstance(item, Mapping):
            raise TypeError(
                "PruningTrainer needs dataset items to be dicts (e.g. {'pixel_values': ..., 'labels': ...}) so it "
                f"can add `sample_id`; got {type(item).__name__}."
            )
        return {**item, SAMPLE_ID_COLUMN: idx}


def add_sample_ids(dataset, name: str = "dataset"):
    """Returns `dataset` with a `sample_id` per row: the row position, unless the dataset carries the column already.

    * `datasets.Dataset`: a `sample_id` column (int64) is added when absent.
    * `datasets.IterableDataset`: must carry the column itself (a stream has no row positions); refused otherwise.
    * any other map-style dataset of dicts: wrapped in `IndexedDataset`.

    Args:
        dataset: the training (or clean-view, feature) dataset; `None` passes through.
        name (`str`, *optional*): how error messages call it.
    """
    if dataset is None:
        return None
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        if dataset.column_names is not None and SAMPLE_ID_COLUMN not in dataset.column_names:
            raise ValueError(
                f"The {name} is an IterableDataset without a `{SAMPLE_ID_COLUMN}` column. Add the row position of "
                "the unpruned split as `sample_id` (int64) before streaming, e.g. with `.map(..., with_indices=True)`."
            )
        return dataset
    if isinstance(dataset, datasets.Dataset):
        if SAMPLE_ID_COLUMN in dataset.column_names:
            return dataset
        return dataset.add_column(SAMPLE_ID_COLUMN, np.arange(len(dataset), dtype=np.int64))
    if is_iterable_dataset(dataset):
        return dataset
    return IndexedDataset(dataset)


def check_has_labels(dataset, name: str = "dataset") -> None:
    """Raises a clear error when a `datasets.Dataset` has none of the label columns in `LABEL_COLUMNS`."""
    columns = getattr(dataset, "column_names", None)
    if isinstance(columns, list) and not any(c in columns for c in LABEL_COLUMNS):
        raise ValueError(
            f"The {name} has no label column (looked for {list(LABEL_COLUMNS)} in {columns}). "
            "PruningTrainer records signals against the hard class label: rename your label column to 'label'."
        )


def num_unpruned_samples(dataset, override: int | None = None) -> int:
    """Length of the unpruned split the ids index: `override`, else `max(len(dataset), max(sample_id) + 1)`."""
    if override is not None:
        return int(override)
    if isinstance(dataset, IndexedDataset):
        return len(dataset)
    if len(dataset) == 0:
        raise ValueError("The train dataset is empty.")
    ids = np.asarray(dataset.with_format("numpy")[SAMPLE_ID_COLUMN])
    return int(max(len(dataset), ids.max() + 1))


def sample_ids_of(dataset) -> np.ndarray:
    """The `sample_id` of every row of a map-style dataset (its row positions when it has no such column)."""
    columns = getattr(dataset, "column_names", None)
    if columns is not None and SAMPLE_ID_COLUMN in columns:
        return np.asarray(dataset.with_format("numpy")[SAMPLE_ID_COLUMN], dtype=np.int64)
    return np.arange(len(dataset), dtype=np.int64)


class KeepSampleIdCollator:
    """Wraps a data collator so that `sample_id` reaches the batch even if the wrapped collator drops extra keys.

    Args:
        collator (`Callable[[list[dict]], dict]`): the user's (or `Trainer`'s default) collator.
    """

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        if not features or not isinstance(features[0], Mapping) or SAMPLE_ID_COLUMN not in features[0]:
            return self.collator(features)
        ids = torch.tensor([int(f[SAMPLE_ID_COLUMN]) for f in features], dtype=torch.long)
        batch = self.collator([{k: v for k, v in f.items() if k != SAMPLE_ID_COLUMN} for f in features])
        batch[SAMPLE_ID_COLUMN] = ids
        return batch
