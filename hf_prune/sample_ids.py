"""Sample ids and labels: how a training row keeps its identity on its way from the dataset to the recorder.

A **sample id** is the row position of a sample in the *unpruned* training split, as int64. It is what every score
record, selection and published index list is keyed by. This module owns the id column's name, the label column
names, and the mechanics that carry ids from the dataset to the recorder *beside* the user's item, so that no
transform, collator or dataset class of the user's can drop them:

```
sampler ── position i ──> SampleIdDataset[i] = SampleIdItem(sample_id, dataset[i])   (the user's transform: inside)
                              │ a batch of SampleIdItems
                              v
                          SampleIdCollator: ids = [item.sample_id ...]; batch = user_collator([item.item ...])
                                            batch["sample_id"] = ids                  (after the user's collator)
```

* `datasets.Dataset`: the id of row position `i` is `i`, or the raw `sample_id` column (read *without* the dataset's
  transform) for a pruned view that carries it.
* torch map-style datasets: the row position.
* streams (`IterableDataset`): a stream has no row positions, so it must carry a `sample_id` column itself; it is
  checked before training (`check_stream_ids`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch


SAMPLE_ID_COLUMN = "sample_id"

# The names `Trainer` and its default collators treat as the label of a batch, in the order they are looked up.
LABEL_COLUMNS = ("labels", "label", "label_ids")
# Label columns of raw Hub datasets that image recipes recognise besides those (CIFAR-100's fine labels).
DATASET_LABEL_COLUMNS = (*LABEL_COLUMNS, "fine_label")

# How to give a stream its ids; the order matters: indices drawn after `.shuffle()` are positions in the shuffled
# order, not rows, so they would key the record wrongly.
STREAM_ID_FIX = (
    "Add the row position of the unpruned split as `sample_id` (int64) on the *unshuffled* dataset, before "
    "`.shuffle()`, splitting or streaming, e.g. `ds = ds.map(lambda _, i: {'sample_id': i}, with_indices=True)` on "
    "the `datasets.Dataset` and then `ds.to_iterable_dataset(...).shuffle(...)`. Indices added after `.shuffle()` "
    "are positions in the shuffled order, not rows, and would key the record to the wrong samples."
)


def is_iterable_dataset(dataset) -> bool:
    """True for streaming datasets (`datasets.IterableDataset` or a torch `IterableDataset`)."""
    return isinstance(dataset, torch.utils.data.IterableDataset)


def _is_hf_dataset(dataset) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        return False
    return isinstance(dataset, datasets.Dataset)


class SampleIdItem(NamedTuple):
    """One dataset item and its sample id, as `SampleIdDataset` yields it and `SampleIdCollator` takes it apart."""

    sample_id: int
    item: Any


class SampleIdDataset(torch.utils.data.Dataset):
    """A map-style view of `dataset` whose item `i` is `SampleIdItem(sample_id_of(i), dataset[i])`.

    The id rides beside the item, so whatever `dataset[i]` returns (a new dict from a `set_transform`, a tuple, a
    tensor) the id survives; `SampleIdCollator` re-attaches it after the user's collator. Batched reads
    (`__getitems__`, which `datasets.Dataset` implements) stay batched, so batched transforms see whole batches.

    Args:
        dataset (map-style dataset): a `datasets.Dataset` or any dataset with `__len__` and `__getitem__`.
        keep_keys (`Sequence[str]`, *optional*): when given, dict items keep only these keys (Trainer's
            `remove_unused_columns` for datasets that are not `datasets.Dataset`, which it applies to the items).
        augmentation_seed (`int`, *optional*): when given, every batch of items is read with torch's, numpy's and
            Python's global random generators seeded from `(augmentation_seed, epoch, the batch's sample ids)`
            (`set_epoch`), and restored afterwards: a random augmentation (`ImageTransform(train=True)`, any
            torchvision transform, a `set_transform` that draws from those generators) then gives a batch the same
            views in a given epoch whatever the loader worker that reads it, or a resume in the middle of the epoch
            (which replays the same batches). Batched reads stay batched (one generator state per batch, not per
            item: the cost is one seeding per batch). The epoch lives in shared memory, so persistent loader workers
            see `set_epoch` too.

    Example:

    ```python
    >>> view = SampleIdDataset(train_ds)          # train_ds.set_transform(fn) may return a brand-new dict
    >>> view[3].sample_id, sorted(view[3].item)
    (3, ['labels', 'pixel_values'])
    ```
    """

    def __init__(self, dataset, keep_keys: Sequence[str] | None = None, augmentation_seed: int | None = None):
        if is_iterable_dataset(dataset):
            raise TypeError("SampleIdDataset wraps map-style datasets; streams carry `sample_id` themselves.")
        self.dataset = dataset
        self.keep_keys = None if keep_keys is None else frozenset(keep_keys)
        self.augmentation_seed = None if augmentation_seed is None else int(augmentation_seed)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_() if augmentation_seed is not None else None
        columns = getattr(dataset, "column_names", None) if _is_hf_dataset(dataset) else None
        # A pruned view carries the original ids in a column; read it raw (no transform, arrow-backed, nothing
        # materialised per rank), because the dataset's own transform may drop it.
        self._id_view = (
            dataset.with_format("numpy", columns=[SAMPLE_ID_COLUMN])
            if columns is not None and SAMPLE_ID_COLUMN in columns
            else None
        )

    def __len__(self) -> int:
        return len(self.dataset)

    def ids_of(self, positions: Sequence[int]) -> list[int]:
        """The sample ids of row positions `positions`."""
        if self._id_view is None:
            return [int(p) for p in positions]
        return [int(i) for i in self._id_view[list(positions)][SAMPLE_ID_COLUMN]]

    def _filter(self, item):
        if self.keep_keys is None or not isinstance(item, Mapping):
            return item
        return {k: v for k, v in item.items() if k in self.keep_keys}

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentation the items get (with `augmentation_seed`; every worker sees it)."""
        if self._epoch is not None:
            self._epoch[0] = int(epoch)

    @contextlib.contextmanager
    def _seeded(self, sample_ids: Sequence[int]):
        """The global generators seeded from (seed, epoch, these sample ids), restored afterwards."""
        key = 0
        for i in sample_ids:  # order-sensitive: the same batch in the same order
            key = augmentation_seed_of(key, len(sample_ids), int(i))
        seed = augmentation_seed_of(self.augmentation_seed, int(self._epoch[0]), key)
        with torch.random.fork_rng(devices=[]):
            np_state, py_state = np.random.get_state(), random.getstate()
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            try:
                yield
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)

    def __getitem__(self, index) -> SampleIdItem:
        sample_id = self.ids_of([index])[0]
        if self.augmentation_seed is None:
            return SampleIdItem(sample_id, self._filter(self.dataset[index]))
        with self._seeded([sample_id]):
            return SampleIdItem(sample_id, self._filter(self.dataset[index]))

    def __getitems__(self, indices) -> list[SampleIdItem]:
        ids = self.ids_of(indices)
        getitems = getattr(self.dataset, "__getitems__", None)
        with self._seeded(ids) if self.augmentation_seed is not None else contextlib.nullcontext():
            items = getitems(list(indices)) if getitems is not None else [self.dataset[i] for i in indices]
        return [SampleIdItem(i, self._filter(item)) for i, item in zip(ids, items)]


def augmentation_seed_of(seed: int, epoch: int, sample_id: int) -> int:
    """A 63-bit seed for the augmentation of `sample_id` in `epoch` of a run seeded `seed` (splitmix64 of the three):
    well spread, the same on every machine, no two of a run's (epoch, sample) pairs in practice alike."""
    mask = (1 << 64) - 1
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9 + int(sample_id) * 0x94D049BB133111EB) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) >> 1


class SampleIdCollator:
    """Wraps a data collator so that the batch gets `sample_id` (an int64 tensor) after the collator has run.

    It takes a list of `SampleIdItem`s (from `SampleIdDataset`) or of dicts with a `sample_id` key (streams); the
    wrapped collator sees the items without ids, so it may drop or rename keys as it likes. Anything else passes
    through unchanged (e.g. an eval dataset's items).

    Args:
        collator (`Callable[[list], dict]`): the user's (or `Trainer`'s default) collator.
    """

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        if not features:
            return self.collator(features)
        first = features[0]
        if isinstance(first, SampleIdItem):
            ids = [f.sample_id for f in features]
            batch = self.collator([f.item for f in features])
        elif isinstance(first, Mapping) and SAMPLE_ID_COLUMN in first:
            ids = [f[SAMPLE_ID_COLUMN] for f in features]
            batch = self.collator([{k: v for k, v in f.items() if k != SAMPLE_ID_COLUMN} for f in features])
        else:
            return self.collator(features)
        if not isinstance(batch, (dict, Mapping)) or not hasattr(batch, "__setitem__"):
            raise TypeError(
                f"The data collator returned a {type(batch).__name__}; PruningTrainer needs a dict-like batch (as "
                "Trainer's models take) to add `sample_id` to."
            )
        batch[SAMPLE_ID_COLUMN] = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        return batch


# Kept for code written against the first release.
KeepSampleIdCollator = SampleIdCollator


def check_stream_ids(dataset, name: str = "train dataset") -> None:
    """Refuses a stream whose items cannot carry a `sample_id`, before any training step.

    A `datasets.IterableDataset` with known columns must list `sample_id`; otherwise (columns unknown after a
    `.map`, or a torch `IterableDataset`) the first item is read and must be a dict with a `sample_id`.

    Raises:
        `ValueError` naming the fix (`STREAM_ID_FIX`).
    """
    columns = getattr(dataset, "column_names", None)
    if columns is not None:
        if SAMPLE_ID_COLUMN not in columns:
            raise ValueError(f"The {name} is an IterableDataset without a `{SAMPLE_ID_COLUMN}` column. {STREAM_ID_FIX}")
        return
    try:
        first = next(iter(dataset))
    except StopIteration:
        raise ValueError(f"The {name} is an empty stream.") from None
    if not isinstance(first, Mapping) or SAMPLE_ID_COLUMN not in first:
        what = f"keys {sorted(first)}" if isinstance(first, Mapping) else f"a {type(first).__name__}"
        raise ValueError(
            f"The {name} is an IterableDataset whose items ({what}) have no `{SAMPLE_ID_COLUMN}`: a stream has no row "
            f"positions, so it must carry the ids itself. {STREAM_ID_FIX}"
        )


def sample_id_range(dataset) -> tuple[int, int] | None:
    """`(min, max)` sample id of a map-style dataset (`None` when empty), without materialising row positions."""
    n = len(dataset)
    if n == 0:
        return None
    columns = getattr(dataset, "column_names", None) if _is_hf_dataset(dataset) else None
    if columns is not None and SAMPLE_ID_COLUMN in columns:
        ids = sample_ids_of(dataset)
        return int(ids.min()), int(ids.max())
    return 0, n - 1


def num_unpruned_samples(dataset, override: int | None = None) -> int:
    """Length of the unpruned split the ids index: `override`, else `max(len(dataset), max(sample_id) + 1)`."""
    if override is not None:
        return int(override)
    span = sample_id_range(dataset)
    if span is None:
        raise ValueError("The train dataset is empty.")
    return int(max(len(dataset), span[1] + 1))


def sample_ids_of(dataset) -> np.ndarray:
    """The `sample_id` of every row of a map-style dataset (its row positions when it has no such column)."""
    columns = getattr(dataset, "column_names", None) if _is_hf_dataset(dataset) else None
    if columns is not None and SAMPLE_ID_COLUMN in columns:
        return np.asarray(dataset.with_format("numpy", columns=[SAMPLE_ID_COLUMN])[SAMPLE_ID_COLUMN], dtype=np.int64)
    return np.arange(len(dataset), dtype=np.int64)


def _canonical(value):
    """A JSON-able, machine-independent form of one cell: image/audio structs by content (or file name), bytes hashed."""
    if isinstance(value, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Mapping):
        if "bytes" in value and "path" in value:  # datasets' Image / Audio storage: content, not where it was cached
            if value["bytes"] is not None:
                return _canonical(value["bytes"])
            return os.path.basename(str(value["path"]))
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def source_rows_of(dataset) -> np.ndarray:
    """The positions in its underlying table of each row of a `datasets.Dataset` view, in the view's order: what
    `PruneResult.to_source_rows` needs for a run trained on `full.shuffle(seed=s).select(range(m))` (the HF
    examples' `max_train_samples` idiom) or any other `select`/`shuffle`/`train_test_split` view of the full split.

    Example:

    ```python
    >>> train = full_train.shuffle(seed=42).select(range(10_000))
    >>> result.to_source_rows(source_rows_of(train), len(full_train), "10,000 rows shuffled with seed 42")
    ```
    """
    if not _is_hf_dataset(dataset):
        raise TypeError(f"source_rows_of needs a datasets.Dataset view; got {type(dataset).__name__}.")
    indices = getattr(dataset, "_indices", None)
    if indices is None:
        return np.arange(len(dataset), dtype=np.int64)
    return np.asarray(indices.column(0).to_numpy(), dtype=np.int64)


ROW_FINGERPRINT_VERSION = "rows3"
# Earlier versions still understood by `row_fingerprint_matches`: "rows2" hashed list cells through their JSON form.
LEGACY_ROW_FINGERPRINT_VERSIONS = ("rows2",)


def row_fingerprint(dataset, num_rows: int = 32) -> str | None:
    """A fingerprint of a `datasets.Dataset`'s *rows*, in order: every row's content, read column-wise from Arrow
    without decoding an image, plus the full content of `num_rows` rows at fixed, evenly spaced positions.

    Every row counts: a label changed anywhere, two rows swapped (same label or not), a row added, dropped or moved
    (`shuffle`, `select`, another split, an unseeded `train_test_split`) changes it. Per row it hashes the raw value
    of every column, except that an image or audio cell (a `{bytes, path}` struct) counts by its file name and its
    byte length, not its bytes (hashing ImageNet's 140 GB of JPEGs is not cheap); the sampled rows add their bytes.
    Unlike `Dataset._fingerprint` it does not change with `set_transform` / `with_transform` / `with_format` (the
    same rows, another augmentation), nor with where a cache put the files. About 1-2 s per million rows of an
    Arrow-backed dataset (`bench/bench_fingerprint.py`). `None` for datasets that are not a `datasets.Dataset`.

    Text and tokenized datasets are hashed column-wise too: strings as they are, list cells (`input_ids`, chat
    `messages` as a list of `{role, content}` structs, nested lists) element by element with each element's
    position and each list's length, vectorised over the whole column (a million rows of 512 tokens in seconds).

    The value is `"rows3:<hex>"`. Fingerprints stored by earlier versions are still understood by
    `row_fingerprint_matches`: `"rows2:"` (list cells hashed through their JSON form; the same value as `"rows3"`
    for datasets without list columns) and 16 hex digits (sampled rows only).
    """
    return _row_fingerprint(dataset, num_rows, ROW_FINGERPRINT_VERSION)


def _row_fingerprint(dataset, num_rows: int, version: str) -> str | None:
    if not _is_hf_dataset(dataset):
        return None
    legacy = version != ROW_FINGERPRINT_VERSION
    digest = hashlib.sha256()
    digest.update(_sampled_row_fingerprint(dataset, num_rows).encode())
    table = getattr(dataset.data, "table", dataset.data)
    hashes = np.zeros(table.num_rows, dtype=np.uint64)
    columns = []
    for name in table.column_names:
        column = table.column(name)
        columns.append(f"{name}:{column.type}")
        hashes = _mix(hashes, _column_row_hashes(column, legacy))
    indices = getattr(dataset, "_indices", None)
    if indices is not None:  # a select / shuffle / split view: the rows in the view's order
        hashes = hashes[np.asarray(indices.column(0).to_numpy(), dtype=np.int64)]
    digest.update(json.dumps({"num_rows": int(hashes.size), "columns": columns}).encode())
    digest.update(hashes.tobytes())
    return f"{version}:{digest.hexdigest()[:32]}"


def row_fingerprint_matches(stored: str | None, dataset, current: str | None = None) -> bool | None:
    """Whether `dataset` has the rows that `stored` (a `row_fingerprint`) was computed from; `None` when it cannot be
    told (nothing stored, or not a `datasets.Dataset`). Fingerprints of earlier versions are compared as they were
    computed then (`"rows2:"`, or sampled rows only). `current`: `row_fingerprint(dataset)` if the caller has it
    already."""
    if not stored or not _is_hf_dataset(dataset):
        return None
    stored = str(stored)
    if stored.startswith(f"{ROW_FINGERPRINT_VERSION}:"):
        return (current or row_fingerprint(dataset)) == stored
    for version in LEGACY_ROW_FINGERPRINT_VERSIONS:
        if stored.startswith(f"{version}:"):
            return _row_fingerprint(dataset, 32, version) == stored
    return _sampled_row_fingerprint(dataset) == stored


def _sampled_row_fingerprint(dataset, num_rows: int = 32) -> str:
    """The length and the raw content of `num_rows` rows at evenly spaced positions (first and last included): the
    fingerprint of earlier versions, and the deep-content part of `row_fingerprint`."""
    n = len(dataset)
    positions = sorted({int(p) for p in np.linspace(0, max(n - 1, 0), num=min(num_rows, n))}) if n else []
    rows = dataset.with_format("arrow", columns=None)[positions].to_pylist() if positions else []
    payload = json.dumps({"num_rows": n, "positions": positions, "rows": _canonical(rows)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_FNV_PRIME = np.uint64(0x100000001B3)


def _mix(hashes: np.ndarray, other: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (hashes * _FNV_PRIME) ^ other


def _column_row_hashes(column, legacy: bool = False) -> np.ndarray:
    """One uint64 per row of an Arrow (chunked) column, from its values (see `row_fingerprint`; `legacy`: list cells
    through their JSON form, as `"rows2"` fingerprints were computed)."""
    chunks = column.chunks if hasattr(column, "chunks") else [column]
    parts = [_array_row_hashes(chunk, legacy) for chunk in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _array_row_hashes(array, legacy: bool = False) -> np.ndarray:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_struct(kind):
        names = [kind.field(i).name for i in range(kind.num_fields)]
        hashes = np.zeros(len(array), dtype=np.uint64)
        for i, name in enumerate(names):
            child = array.field(i)
            if {"bytes", "path"} <= set(names) and name == "bytes":  # an Image / Audio cell: its length, not its bytes
                child = pc.binary_length(child)
            elif {"bytes", "path"} <= set(names) and name == "path":  # its file name, not where a cache put it
                child = pc.replace_substring_regex(child, pattern=r"^.*[/\\\\]", replacement="")
            hashes = _mix(hashes, _array_row_hashes(child, legacy))
        return _mix(hashes, _null_hashes(array))
    if pa.types.is_dictionary(kind):
        array = array.cast(kind.value_type)
        kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = array.to_numpy(zero_copy_only=False)
        return pd.util.hash_array(np.asarray(values), categorize=False) ^ _null_hashes(array)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) or \
            pa.types.is_large_binary(kind):  # fmt: skip
        values = array.to_numpy(zero_copy_only=False)
        return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)
    if not legacy and (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return _list_row_hashes(array)
    # nested types other than lists, temporal types: through their JSON form (slower, but rare for training data)
    values = [json.dumps(_canonical(v), sort_keys=True, default=str) for v in array.to_pylist()]
    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over a uint64 array, in place (a well-spread 64-bit mix, a few vector passes)."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _list_row_hashes(array) -> np.ndarray:
    """One uint64 per list cell, vectorised: every element's hash (recursively, so lists of structs or of lists
    too) mixed with its position in the cell, summed per cell (modulo 2**64), then mixed with the cell's length and
    whether it is null. Order-sensitive through the positions; no Python loop over rows or elements."""
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)  # into `array.values`
    lo, hi = int(offsets[0]), int(offsets[-1])
    elements = _array_row_hashes(array.values.slice(lo, hi - lo)) if hi > lo else np.zeros(0, dtype=np.uint64)
    lengths = np.diff(offsets)
    if array.null_count:  # a null cell counts as null whatever its slot holds (Arrow allows a non-empty one)
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        lengths = np.where(valid, lengths, 0)
    longest = int(lengths.max()) if lengths.size else 0
    position_hashes = _splitmix(np.arange(1, longest + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    positions = np.arange(hi - lo, dtype=np.int64) - np.repeat(offsets[:-1] - lo, np.diff(offsets))
    mixed = _splitmix(elements ^ position_hashes[np.minimum(positions, max(longest - 1, 0))])
    sums = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(mixed, dtype=np.uint64)])
    cells = sums[offsets[1:] - lo] - sums[offsets[:-1] - lo]
    if array.null_count:
        cells = np.where(valid, cells, np.uint64(0))
    return _mix(cells, _splitmix(lengths.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019))) ^ _null_hashes(array)


def _null_hashes(array) -> np.ndarray:
    if array.null_count == 0:
        return np.zeros(len(array), dtype=np.uint64)
    import pyarrow.compute as pc

    return np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
