"""`ScoreRecord`: per-sample training dynamics, one `[epochs, n]` array per signal, kept on disk.

Layout of a record folder::

    scores/
        record.json          # n, epochs, signals, dtype, metadata; rewritten atomically after each epoch
        p_target.npy         # float32 (or float16) [capacity, n]; rows >= num_epochs are not data
        loss.npy
        correct.npy
        labels.npy           # int64 [n], -1 where the label was never seen

Files are preallocated to their full size when created (`allocate_file`), so a full disk shows up before training
rather than in the middle of a run, and rows are written with ordinary file writes (`os.pwrite`), never through a
writable memory map: a disk that fills up anyway gives a clean `OSError` naming the file, never a SIGBUS. A row is
written whole (NaN where a sample was not seen that epoch), segment by segment (`EpochWriter`, fed by
`hf_prune.distributed.stream_rows_to_main`), and flushed *before* `record.json` is replaced, so a run that crashes
or fills the disk mid-epoch leaves the last complete epoch readable and nothing half-written. Nothing here needs
`[K, n]` in RAM: `signal()` returns a read-only memory map and `iter_epochs()` reads one row at a time.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .recording import SIGNAL_HELP, check_record_dtype


RECORD_FILE = "record.json"
LABELS_FILE = "labels.npy"
FORMAT_VERSION = 1
_COPY_CHUNK = 64 * 2**20


def _atomic_write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def allocate_file(path: str | os.PathLike, size: int) -> None:
    """Reserves `size` bytes of disk for an open-for-writing file `path`, so later writes cannot hit a full disk.

    Uses `posix_fallocate` where the OS and filesystem support it; elsewhere the file is only extended (writes then
    still fail cleanly, with `OSError`, since nothing is written through a memory map).

    Raises:
        `OSError` (`ENOSPC`) naming `path` and the size when the disk cannot hold it.
    """
    fd = os.open(path, os.O_RDWR)
    try:
        if hasattr(os, "posix_fallocate") and size > 0:
            try:
                os.posix_fallocate(fd, 0, size)
                return
            except OSError as err:
                if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                    raise OSError(
                        err.errno, f"Cannot reserve {size / 2**20:.1f} MiB for {path}: {err.strerror}", str(path)
                    ) from None
        os.ftruncate(fd, max(size, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def _write_npy_header(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """Writes a fresh `.npy` file's header (no data) and returns the data offset."""
    with open(path, "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        return f.tell()


def _npy_layout(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """`(data offset, shape, dtype)` of a C-ordered `.npy` file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        if fortran_order:
            raise ValueError(f"{path} must be a C-ordered array.")
        return f.tell(), tuple(shape), np.dtype(dtype)


def _create_npy(path: Path, dtype, shape: tuple[int, ...]) -> int:
    offset = _write_npy_header(path, np.dtype(dtype), shape)
    allocate_file(path, offset + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return offset


def _pwrite(fd: int, data: np.ndarray, offset: int, path: Path) -> None:
    view = memoryview(np.ascontiguousarray(data)).cast("B")
    while view.nbytes:
        try:
            written = os.pwrite(fd, view, offset)
        except OSError as err:
            raise OSError(err.errno, f"Writing the score record failed at {path}: {err.strerror}", str(path)) from None
        view, offset = view[written:], offset + written


def _pread(fd: int, out: np.ndarray, offset: int, path: Path) -> np.ndarray:
    view = memoryview(out).cast("B")
    while view.nbytes:
        got = os.preadv(fd, [view], offset) if hasattr(os, "preadv") else _pread_into(fd, view, offset)
        if got == 0:
            raise OSError(errno.EIO, f"{path} is truncated", str(path))
        view, offset = view[got:], offset + got
    return out


def _pread_into(fd: int, view: memoryview, offset: int) -> int:  # pragma: no cover - platforms without preadv
    data = os.pread(fd, view.nbytes, offset)
    view[: len(data)] = data
    return len(data)


class ScoreRecord:
    """Per-sample signals over epochs: `signal(name)` is an array `[num_epochs, num_samples]` (float32, or float16
    for records made with `record_dtype="float16"`; `iter_epochs` always yields float32 rows).

    NaN means the sample was not seen in that epoch (or its label was the ignore index). Sample ids are column
    positions, i.e. row positions in the *unpruned* training split. A record lives in a folder (memory-mapped, see the module docstring) or in
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
        dtype: str = "float32",
    ) -> ScoreRecord:
        """Creates an empty on-disk record in `path` (which must not hold another record) for writing.

        Every file is preallocated to its full size (`capacity_epochs` rows per signal), so a disk too small for the
        run fails here, with an `OSError` naming the file, instead of during training.

        Args:
            path (`str` or `os.PathLike`): the record folder (created).
            num_samples (`int`): `n`, the length of the unpruned split.
            signals (`Sequence[str]`): the signal names.
            capacity_epochs (`int`, *optional*, defaults to 1): rows to allocate per signal (grows when exceeded).
            metadata (`dict`, *optional*): provenance stored in `record.json`.
            dtype (`str`, *optional*, defaults to `"float32"`): `"float32"` or `"float16"` (half the disk; values
                such as `p_target` keep about 3 significant digits).
        """
        path = Path(path)
        if (path / RECORD_FILE).exists():
            raise FileExistsError(f"{path} already holds a score record; load it with `ScoreRecord.load` instead.")
        dtype = check_record_dtype(dtype)
        path.mkdir(parents=True, exist_ok=True)
        capacity = max(1, int(capacity_epochs))
        for name in signals:
            _create_npy(path / f"{name}.npy", dtype, (capacity, int(num_samples)))
        offset = _create_npy(path / LABELS_FILE, np.int64, (int(num_samples),))
        fd = os.open(path / LABELS_FILE, os.O_RDWR)
        try:
            chunk = np.full(min(int(num_samples), _COPY_CHUNK // 8), -1, dtype=np.int64)
            for start in range(0, int(num_samples), chunk.size):
                part = chunk[: min(chunk.size, int(num_samples) - start)]
                _pwrite(fd, part, offset + start * 8, path / LABELS_FILE)
            os.fsync(fd)
        finally:
            os.close(fd)
        record = cls.load_arrays(path, num_samples, signals, 0, metadata, writable=True)
        record._commit()
        return record

    @classmethod
    def load_arrays(cls, path: Path, num_samples: int, signals, num_epochs: int, metadata, writable: bool):
        """Opens the arrays of a record folder read-only memory-mapped (writes go through files, see `EpochWriter`)."""
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in signals}
        labels = np.load(path / LABELS_FILE, mmap_mode="r") if (path / LABELS_FILE).exists() else None
        return cls(num_samples, signals, arrays, num_epochs, labels=labels, metadata=metadata, path=path,
                   writable=writable)  # fmt: skip

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
        return cls.load_arrays(
            path, meta["num_samples"], meta["signals"], meta["num_epochs"], meta.get("metadata", {}), writable
        )

    @classmethod
    def verify(cls, path: str | os.PathLike) -> dict[str, Any]:
        """Checks that a record folder is complete and consistent (`record.json` readable, every signal file
        present with `n` columns and at least `num_epochs` rows of data, labels of length `n`) and returns the
        parsed `record.json`. Reads headers and sizes only.

        Raises:
            `ValueError` (or `FileNotFoundError`) saying what is missing or short.
        """
        path = Path(path)
        try:
            with open(path / RECORD_FILE) as f:
                meta = json.load(f)
            n, epochs, signals = int(meta["num_samples"]), int(meta["num_epochs"]), list(meta["signals"])
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} holds no score record (no {RECORD_FILE}).") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path / RECORD_FILE} is unreadable or incomplete ({err}).") from None
        for name in signals:
            file = path / f"{name}.npy"
            if not file.exists():
                raise ValueError(f"{path} is incomplete: {file.name} (signal {name!r}) is missing.")
            offset, shape, dtype = _npy_layout(file)
            if len(shape) != 2 or shape[1] != n or shape[0] < epochs:
                raise ValueError(f"{file} has shape {shape}; expected at least ({epochs}, {n}).")
            if file.stat().st_size < offset + epochs * n * dtype.itemsize:
                raise ValueError(f"{file} is truncated: it holds fewer than the {epochs} epochs record.json promises.")
        labels = path / LABELS_FILE
        if labels.exists():
            offset, shape, _ = _npy_layout(labels)
            if shape != (n,) or labels.stat().st_size < offset + n * 8:
                raise ValueError(f"{labels} is truncated or has shape {shape}; expected ({n},).")
        return meta

    @classmethod
    def copy(cls, src: str | os.PathLike, dst: str | os.PathLike) -> Path:
        """Copies the record folder `src` (verified first) to a new folder `dst`: preallocated files of the same
        capacity, holding the complete epochs only (rows past `num_epochs` are not copied). Returns `dst`."""
        src, dst = Path(src), Path(dst)
        meta = cls.verify(src)
        n, epochs = int(meta["num_samples"]), int(meta["num_epochs"])
        dst.mkdir(parents=True)
        for name in [*meta["signals"], None]:
            file = src / (f"{name}.npy" if name is not None else LABELS_FILE)
            if name is None and not file.exists():
                continue
            offset, shape, dtype = _npy_layout(file)
            new_offset = _create_npy(dst / file.name, dtype, shape)
            remaining = (epochs * n if name is not None else n) * dtype.itemsize
            with open(file, "rb") as fin, open(dst / file.name, "r+b") as fout:
                fin.seek(offset)
                fout.seek(new_offset)
                while remaining:
                    chunk = fin.read(min(remaining, _COPY_CHUNK))
                    fout.write(chunk)
                    remaining -= len(chunk)
                fout.flush()
                os.fsync(fout.fileno())
        shutil.copy2(src / RECORD_FILE, dst / RECORD_FILE)
        return dst

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
    def dtype(self) -> str:
        """Storage dtype of the signal values, `"float32"` or `"float16"`."""
        first = next(iter(self._arrays.values()), None)
        return str(np.dtype(first.dtype)) if first is not None else "float32"

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
        """Returns signal `name` as a read-only `[num_epochs, num_samples]` array (memory-mapped on disk) in the
        record's storage dtype (float32, or float16)."""
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
        file = self.path / f"{name}.npy"
        offset, _, dtype = _npy_layout(file)
        if dtype not in (np.float32, np.float16):
            raise ValueError(f"{file} must hold float32 or float16 values; got {dtype}.")
        row_bytes = self._num_samples * dtype.itemsize
        fd = os.open(file, os.O_RDONLY)
        try:
            for k in range(self._num_epochs):
                row = np.empty(self._num_samples, dtype=dtype)
                _pread(fd, row, offset + k * row_bytes, file)
                yield row if dtype == np.float32 else row.astype(np.float32)
        finally:
            os.close(fd)

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

    def _reload_arrays(self) -> None:
        self._arrays = {name: np.load(self.path / f"{name}.npy", mmap_mode="r") for name in self._signals}

    def _grow(self, min_capacity: int) -> None:
        """Replaces every signal file by a preallocated one of at least `min_capacity` rows (new inode: hard links
        from checkpoints keep the old file), copying the complete epochs with file reads and writes."""
        for name in self._signals:
            file = self.path / f"{name}.npy"
            offset, shape, dtype = _npy_layout(file)
            if shape[0] >= min_capacity:
                continue
            capacity = max(min_capacity, 2 * shape[0])
            tmp = self.path / f"{name}.npy.tmp"
            new_offset = _create_npy(tmp, dtype, (capacity, self._num_samples))
            remaining = self._num_epochs * self._num_samples * dtype.itemsize
            with open(file, "rb") as src, open(tmp, "r+b") as dst:
                src.seek(offset)
                dst.seek(new_offset)
                while remaining:
                    chunk = src.read(min(remaining, _COPY_CHUNK))
                    if not chunk:
                        raise OSError(errno.EIO, f"{file} is truncated", str(file))
                    try:
                        dst.write(chunk)
                    except OSError as err:
                        raise OSError(err.errno, f"Growing the score record failed at {tmp}: {err.strerror}",
                                      str(tmp)) from None  # fmt: skip
                    remaining -= len(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, file)
        self._reload_arrays()

    def epoch_writer(self, epoch: int) -> EpochWriter:
        """Starts writing epoch `epoch` (must be `num_epochs`, the next one) segment by segment; see `EpochWriter`."""
        self._check_writable()
        if epoch != self._num_epochs:
            raise ValueError(f"Epoch {epoch} written out of order: the record holds {self._num_epochs} epochs.")
        self._grow(epoch + 1)
        return EpochWriter(self, epoch)

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
            ids (`np.ndarray` of int64 `[m]`): sample ids seen this epoch (a repeated id keeps its first value).
            values (`dict[str, np.ndarray]`): signal name to `[m]` values aligned with `ids`. Every recorded
                signal must be present; samples not in `ids` get NaN.
            labels (`np.ndarray` of int64 `[m]`, *optional*): labels of `ids`, stored for class-balanced selection.
        """
        self._check_writable()
        missing = [name for name in self._signals if name not in values]
        if missing:
            raise ValueError(f"Signal(s) {missing} missing from the values written for epoch {epoch}.")
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        columns = np.stack([np.asarray(values[name], dtype=np.float32).reshape(-1) for name in self._signals], axis=1)
        if columns.shape[0] != ids.shape[0]:
            raise ValueError(f"Got {ids.shape[0]} ids but {columns.shape[0]} values per signal for epoch {epoch}.")
        lab = np.full(ids.shape[0], -1, np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
        writer = self.epoch_writer(epoch)
        try:
            writer.write(0, self._num_samples, [ids], [lab], [columns])
            writer.commit()
        finally:
            writer.close()

    def _header(self) -> dict[str, Any]:
        """What `record.json` holds: the format, the shape, the signals, the dtype and the metadata."""
        return {
            "format_version": FORMAT_VERSION,
            "num_samples": self._num_samples,
            "num_epochs": self._num_epochs,
            "signals": self._signals,
            "dtype": self.dtype,
            "metadata": self.metadata,
        }

    def _commit(self) -> None:
        try:
            _atomic_write_json(self.path / RECORD_FILE, self._header())
        except OSError as err:
            raise OSError(
                err.errno, f"Committing the score record failed at {self.path / RECORD_FILE}: {err.strerror}. It "
                f"still holds its earlier complete epochs.", str(self.path / RECORD_FILE)
            ) from None  # fmt: skip

    def commit_metadata(self) -> None:
        """Rewrites `record.json` (atomically) after a change of `metadata`."""
        self._check_writable()
        self._commit()

    def save(self, path: str | os.PathLike) -> Path:
        """Writes this record (complete epochs only) to a new folder `path` and returns it."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for name in self._signals:
            arr = self._arrays[name]
            dtype = arr.dtype if arr.dtype in (np.float32, np.float16) else np.float32
            np.save(tmp / f"{name}.npy", np.asarray(arr[: self._num_epochs], dtype=dtype))
        labels = self._labels if self._labels is not None else np.full(self._num_samples, -1, dtype=np.int64)
        np.save(tmp / LABELS_FILE, np.asarray(labels, dtype=np.int64))
        _atomic_write_json(tmp / RECORD_FILE, self._header())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        return path


class LabelConflictError(ValueError):
    """A sample id arrived with a label other than the one the record holds for it: ids do not identify rows."""


class EpochWriter:
    """Writes one epoch row of an on-disk `ScoreRecord`, in consecutive id segments, then commits it.

    Segments must cover `[0, n)` in order (`write(start, stop, ...)` with `start` = the previous `stop`); each
    segment is assembled in a small buffer (NaN where no sample was seen) and written with `os.pwrite`, so a full
    disk raises `OSError` (naming the file) and leaves the committed epochs untouched. Labels are checked against
    the ones the record holds: a sample id that comes back with another label raises `LabelConflictError` (its ids do
    not identify rows, e.g. stream positions after `.shuffle()`).

    Built by `ScoreRecord.epoch_writer(epoch)`; `PruningTrainer` feeds it from `stream_rows_to_main`.
    """

    def __init__(self, record: ScoreRecord, epoch: int):
        self.record = record
        self.epoch = epoch
        self.num_seen = 0
        self._next = 0
        self._rows: dict[str, np.ndarray] = {}
        self._fds: dict[str, int] = {}
        self._layout: dict[str, tuple[int, np.dtype]] = {}
        path = record.path
        for name in [*record.signals, "__labels__"]:
            file = path / (LABELS_FILE if name == "__labels__" else f"{name}.npy")
            offset, _, dtype = _npy_layout(file)
            self._layout[name] = (offset, dtype)
            self._fds[name] = os.open(file, os.O_RDWR)
        self._files = {name: path / (LABELS_FILE if name == "__labels__" else f"{name}.npy") for name in self._fds}

    def set_row(self, name: str, row: np.ndarray) -> None:
        """Gives the whole row `[n]` of a signal that does not come through `write` (e.g. dynamic pruning's
        `selected` mask); its values are written segment by segment with the others."""
        if name not in self.record.signals:
            raise ValueError(f"{name!r} is not a signal of this record ({self.record.signals}).")
        row = np.asarray(row)
        if row.shape != (self.record.num_samples,):
            raise ValueError(f"Row {name!r} has shape {row.shape}; expected ({self.record.num_samples},).")
        self._rows[name] = row

    def write(self, start: int, stop: int, ids, labels, values, signals: Sequence[str] | None = None) -> None:
        """Writes the ids in `[start, stop)`.

        Args:
            start, stop (`int`): the segment; `start` must be where the previous segment stopped.
            ids (list of int64 arrays): per source (rank), the ids in the segment, each array without repeats; a
                repeated id across sources keeps the *first* source's value.
            labels (list of int arrays): matching labels (-1 = unknown).
            values (list of `[k, len(signals)]` arrays): matching values.
            signals (`Sequence[str]`, *optional*): the columns of `values`; defaults to the record's signals that
                have no `set_row`.
        """
        record = self.record
        if start != self._next or not start <= stop <= record.num_samples:
            raise ValueError(
                f"Segment [{start}, {stop}) does not follow [0, {self._next}) within [0, {record.num_samples})."
            )
        names = list(signals) if signals is not None else [s for s in record.signals if s not in self._rows]
        ids = np.concatenate([np.asarray(i, np.int64).reshape(-1) for i in ids]) if len(ids) else np.zeros(0, np.int64)
        if ids.size:
            labels = np.concatenate([np.asarray(x).reshape(-1) for x in labels]).astype(np.int64)
            values = np.concatenate([np.asarray(v).reshape(-1, len(names)) for v in values])
            if ids.min() < start or ids.max() >= stop:
                raise ValueError(
                    f"Sample ids must lie in [0, {record.num_samples}); got [{ids.min()}, {ids.max()}] in segment "
                    f"[{start}, {stop}). The train dataset and the record disagree on length: ids are row positions "
                    "in the unpruned train split."
                )
            ids, first = np.unique(ids, return_index=True)  # first source wins
            labels, values = labels[first], values[first]
        else:
            labels, values = np.zeros(0, np.int64), np.zeros((0, len(names)))
        local = ids - start
        width = stop - start
        for name in record.signals:
            offset, dtype = self._layout[name]
            if name in self._rows:
                segment = np.asarray(self._rows[name][start:stop], dtype=dtype)
            elif name in names:
                segment = np.full(width, np.nan, dtype=dtype)
                segment[local] = values[:, names.index(name)]
            else:
                raise ValueError(f"Signal {name!r} missing from the values written for epoch {self.epoch}.")
            _pwrite(self._fds[name], segment, offset + (self.epoch * record.num_samples + start) * dtype.itemsize,
                    self._files[name])  # fmt: skip
        if ids.size:
            self._write_labels(start, width, local, labels)
        self.num_seen += int(ids.size)
        self._next = stop

    def _write_labels(self, start: int, width: int, local: np.ndarray, labels: np.ndarray) -> None:
        offset, _ = self._layout["__labels__"]
        fd, file = self._fds["__labels__"], self._files["__labels__"]
        stored = _pread(fd, np.empty(width, dtype=np.int64), offset + start * 8, file)
        known = labels >= 0
        clash = known & (stored[local] >= 0) & (stored[local] != labels)
        if clash.any():
            i = int(np.flatnonzero(clash)[0])
            raise LabelConflictError(
                f"Sample id {start + int(local[i])} was recorded with label {int(stored[local[i]])} in an earlier epoch "
                f"and arrives with label {int(labels[i])} in epoch {self.epoch} ({int(clash.sum())} such ids in "
                f"[{start}, {start + width})): the sample ids do not identify rows of one split. Ids must be row "
                "positions of the unpruned split (not positions in a shuffled stream; add them before `.shuffle()`), "
                "and the dataset must not change between epochs or on resume."
            )
        stored[local[known]] = labels[known]
        _pwrite(fd, stored, offset + start * 8, file)

    def commit(self) -> None:
        """Fills the rest of the row with NaN, flushes every file, then replaces `record.json` (the commit point)."""
        if self._next < self.record.num_samples:
            self.write(self._next, self.record.num_samples, [], [], [])
        for name, fd in self._fds.items():
            try:
                os.fsync(fd)
            except OSError as err:
                raise OSError(err.errno, f"Flushing the score record failed at {self._files[name]}: {err.strerror}",
                              str(self._files[name])) from None  # fmt: skip
        record = self.record
        epochs = record.metadata.setdefault("epoch_num_seen", [])
        del epochs[self.epoch :]
        epochs.append(self.num_seen)
        record._num_epochs = self.epoch + 1
        try:
            record._commit()
        except OSError:
            record._num_epochs = self.epoch
            del epochs[self.epoch :]
            raise
        finally:
            self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}

    def __del__(self):
        self.close()
