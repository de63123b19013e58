"""`ScoreRecord`: per-sample training dynamics, one `[epochs, n]` array per signal, kept on disk.

Layout of a record folder::

    scores/
        record.json          # n, epochs, signals, metadata; rewritten atomically after each epoch
        p_target.npy         # float32 [capacity, n], memory-mapped; rows >= num_epochs are not data
        loss.npy
        correct.npy
        labels.npy           # int64 [n], -1 where the label was never seen

A row is written whole (NaN where a sample was not seen that epoch) and flushed *before* `record.json`
is replaced, so a run that crashes mid-epoch leaves the last complete epoch readable and nothing
half-written. Nothing here needs `[K, n]` in RAM: `signal()` returns a read-only memory map.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .recording import SIGNAL_HELP


RECORD_FILE = "record.json"
LABELS_FILE = "labels.npy"
FORMAT_VERSION = 1

def _atomic_write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ScoreRecord:
    """Per-sample signals over epochs: `signal(name)` is a float32 array `[num_epochs, num_samples]`.

    NaN means the sample was not seen in that epoch. Sample ids are column positions, i.e. row positions in
    the *unpruned* training split. A record lives in a folder (memory-mapped, see the module docstring) or in
    memory (`from_arrays`).

    Example:

    ```python
    >>> import numpy as np
    >>> from hf_prune import ScoreRecord
    >>> record = ScoreRecord.from_arrays({"p_target": np.random.rand(12, 100)}, labels=np.arange(100) % 10)
    >>> record.num_epochs, record.num_samples
    (12, 100)
    >>> record.signal("p_target").shape
    (12, 100)
    ```
    """

    def __init__(
        self,
        num_samples: int,
        signals: Sequence[str],
        arrays: Mapping[str, np.ndarray],
        num_epochs: int,
        labels: np.ndarray | None = None,
        metadata: dict | None = None,
        path: str | os.PathLike | None = None,
        writable: bool = False,
    ):
        self._num_samples = int(num_samples)
        self._signals = list(signals)
        self._arrays = dict(arrays)
        self._num_epochs = int(num_epochs)
        self._labels = labels
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.path = Path(path) if path is not None else None
        self._writable = writable

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        metadata: dict | None = None,
    ) -> ScoreRecord:
        """Builds an in-memory record from arrays made elsewhere.

        Args:
            arrays (`dict[str, np.ndarray]`):
                Signal name to a `[num_epochs, num_samples]` array (e.g. `{"p_target": p}`); all the same shape.
            labels (`np.ndarray` of shape `[num_samples]`, *optional*):
                Integer class labels, needed for class-balanced selection.
            metadata (`dict`, *optional*):
                Free-form provenance (model, epochs, dataset...) that results and exports carry along.
        """
        if not arrays:
            raise ValueError("`arrays` is empty: pass at least one signal, e.g. {'p_target': array_K_by_n}.")
        shapes = {name: np.shape(a) for name, a in arrays.items()}
        first = next(iter(shapes.values()))
        if len(first) != 2 or any(s != first for s in shapes.values()):
            raise ValueError(f"Every signal must be a 2-D [num_epochs, num_samples] array of one shape; got {shapes}.")
        data = {name: np.asarray(a, dtype=np.float32) for name, a in arrays.items()}
        num_epochs, num_samples = first
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (num_samples,):
                raise ValueError(
                    f"`labels` has shape {labels.shape} but the signals have {num_samples} samples; "
                    "pass one label per sample (column)."
                )
        return cls(num_samples, list(data), data, num_epochs, labels=labels, metadata=metadata)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        num_samples: int,
        signals: Sequence[str],
        capacity_epochs: int = 1,
        metadata: dict | None = None,
    ) -> ScoreRecord:
        """Creates an empty on-disk record in `path` (which must not hold another record) for writing."""
        path = Path(path)
        if (path / RECORD_FILE).exists():
            raise FileExistsError(f"{path} already holds a score record; load it with `ScoreRecord.load` instead.")
        path.mkdir(parents=True, exist_ok=True)
        capacity = max(1, int(capacity_epochs))
        arrays = {
            name: np.lib.format.open_memmap(path / f"{name}.npy", mode="w+", dtype=np.float32, shape=(capacity, num_samples))
            for name in signals
        }
        labels = np.lib.format.open_memmap(path / LABELS_FILE, mode="w+", dtype=np.int64, shape=(num_samples,))
        labels[:] = -1
        labels.flush()
        record = cls(num_samples, signals, arrays, 0, labels=labels, metadata=metadata, path=path, writable=True)
        record._commit()
        return record

    @classmethod
    def load(cls, path: str | os.PathLike, writable: bool = False) -> ScoreRecord:
        """Opens a record folder (e.g. `run/scores`) memory-mapped; nothing is read into RAM until used."""
        path = Path(path)
        meta_file = path / RECORD_FILE
        if not meta_file.exists():
            raise FileNotFoundError(
                f"No score record in {path} (missing {RECORD_FILE}). A `PruningTrainer` run writes one to "
                "`<output_dir>/scores`; pass that folder."
            )
        with open(meta_file) as f:
            meta = json.load(f)
        mode = "r+" if writable else "r"
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode=mode) for name in meta["signals"]}
        labels = np.load(path / LABELS_FILE, mmap_mode=mode) if (path / LABELS_FILE).exists() else None
        return cls(
            meta["num_samples"],
            meta["signals"],
            arrays,
            meta["num_epochs"],
            labels=labels,
            metadata=meta.get("metadata", {}),
            path=path,
            writable=writable,
        )

    # ------------------------------------------------------------------ reading

    @property
    def num_samples(self) -> int:
        """Number of samples `n` (columns): the length of the unpruned training split."""
        return self._num_samples

    @property
    def num_epochs(self) -> int:
        """Number of complete epochs recorded `K` (rows)."""
        return self._num_epochs

    @property
    def signals(self) -> list[str]:
        """Names of the recorded signals."""
        return list(self._signals)

    @property
    def labels(self) -> np.ndarray | None:
        """Integer labels `[n]` (-1 where unknown), or `None` if the record has none."""
        if self._labels is None:
            return None
        labels = np.asarray(self._labels)
        return None if (labels < 0).all() else labels

    def has_signal(self, name: str) -> bool:
        return name in self._arrays

    def require(self, *names: str, method: str | None = None) -> None:
        """Raises a clear error if any signal in `names` was not recorded."""
        missing = [n for n in names if n not in self._arrays]
        if missing:
            who = f"`{method}` needs" if method else "Needed"
            raise ValueError(
                f"{who} signal(s) {missing} but this record has only {self._signals}. Record them by training with "
                f"`PruningArguments(record_signals=[..., {', '.join(repr(m) for m in missing)}])` "
                f"(known signals: {sorted(SIGNAL_HELP)})."
            )

    def signal(self, name: str) -> np.ndarray:
        """Returns signal `name` as a read-only `[num_epochs, num_samples]` float32 array (memory-mapped on disk)."""
        self.require(name)
        view = self._arrays[name][: self._num_epochs]
        if isinstance(view, np.ndarray) and view.flags.writeable:
            view = view.view()
            view.flags.writeable = False
        return view

    def iter_epochs(self, name: str) -> Iterator[np.ndarray]:
        """Yields signal `name` one epoch (a fresh float32 row `[n]`) at a time, for streaming computations.

        On disk, rows are read with plain file reads rather than through the memory map, so a pass over a
        `[K, n]` record keeps one row resident, not the whole file (memory-mapped pages count as the process's RSS).
        """
        self.require(name)
        if self.path is None:
            arr = self._arrays[name]
            for k in range(self._num_epochs):
                yield np.array(arr[k], dtype=np.float32)
            return
        with open(self.path / f"{name}.npy", "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(f)
            if fortran_order or dtype != np.float32:
                raise ValueError(f"{name}.npy must be a C-ordered float32 array; got {dtype}, fortran={fortran_order}.")
            offset, row_bytes = f.tell(), self._num_samples * 4
            for k in range(self._num_epochs):
                row = np.empty(self._num_samples, dtype=np.float32)
                f.seek(offset + k * row_bytes)
                if f.readinto(memoryview(row).cast("B")) != row_bytes:
                    raise OSError(f"{self.path / name}.npy is truncated at epoch {k}.")
                yield row

    def __repr__(self) -> str:
        where = f", path='{self.path}'" if self.path else ""
        return (
            f"ScoreRecord(num_samples={self._num_samples}, num_epochs={self._num_epochs}, "
            f"signals={self._signals}{where})"
        )

    # ------------------------------------------------------------------ writing

    def _check_writable(self) -> None:
        if self.path is None or not self._writable:
            raise RuntimeError("This record is read-only; open it with `ScoreRecord.load(path, writable=True)`.")

    def _grow(self, min_capacity: int) -> None:
        for name in self._signals:
            old = self._arrays[name]
            if old.shape[0] >= min_capacity:
                continue
            capacity = max(min_capacity, 2 * old.shape[0])
            tmp = self.path / f"{name}.npy.tmp"
            new = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(capacity, self._num_samples))
            new[: self._num_epochs] = old[: self._num_epochs]
            new.flush()
            del new, old
            os.replace(tmp, self.path / f"{name}.npy")
            self._arrays[name] = np.load(self.path / f"{name}.npy", mmap_mode="r+")

    def write_epoch(
        self,
        epoch: int,
        ids: np.ndarray,
        values: Mapping[str, np.ndarray],
        labels: np.ndarray | None = None,
    ) -> None:
        """Writes epoch `epoch` (must be `num_epochs`, i.e. the next one) and commits it.

        Args:
            epoch (`int`): index of the epoch being written; must equal `self.num_epochs`.
            ids (`np.ndarray` of int64 `[m]`): unique sample ids seen this epoch.
            values (`dict[str, np.ndarray]`): signal name to `[m]` values aligned with `ids`. Every recorded
                signal must be present; samples not in `ids` get NaN.
            labels (`np.ndarray` of int64 `[m]`, *optional*): labels of `ids`, stored for class-balanced selection.
        """
        self._check_writable()
        if epoch != self._num_epochs:
            raise ValueError(f"Epoch {epoch} written out of order: the record holds {self._num_epochs} epochs.")
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self._num_samples):
            raise ValueError(
                f"Sample ids must lie in [0, {self._num_samples}); got [{ids.min()}, {ids.max()}]. The train dataset "
                "and the record disagree on length: ids are row positions in the unpruned train split."
            )
        self._grow(epoch + 1)
        row = np.empty(self._num_samples, dtype=np.float32)
        for name in self._signals:
            if name not in values:
                raise ValueError(f"Signal {name!r} missing from the values written for epoch {epoch}.")
            row.fill(np.nan)
            row[ids] = values[name]
            self._arrays[name][epoch] = row
            self._arrays[name].flush()
        if labels is not None and self._labels is not None:
            self._labels[ids] = labels
            self._labels.flush()
        self._num_epochs = epoch + 1
        self._commit()

    def _header(self) -> dict[str, Any]:
        """What `record.json` holds: the format, the shape, the signals and the metadata."""
        return {
            "format_version": FORMAT_VERSION,
            "num_samples": self._num_samples,
            "num_epochs": self._num_epochs,
            "signals": self._signals,
            "metadata": self.metadata,
        }

    def _commit(self) -> None:
        _atomic_write_json(self.path / RECORD_FILE, self._header())

    def save(self, path: str | os.PathLike) -> Path:
        """Writes this record (complete epochs only) to a new folder `path` and returns it."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for name in self._signals:
            np.save(tmp / f"{name}.npy", np.asarray(self._arrays[name][: self._num_epochs], dtype=np.float32))
        labels = self._labels if self._labels is not None else np.full(self._num_samples, -1, dtype=np.int64)
        np.save(tmp / LABELS_FILE, np.asarray(labels, dtype=np.int64))
        _atomic_write_json(tmp / RECORD_FILE, self._header())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        return path
