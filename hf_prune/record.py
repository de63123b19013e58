"""`ScoreRecord`: per-sample training dynamics, one `[epochs, n]` array per signal, kept on disk.

Layout of a record folder::

    scores/
        record.json          # n, epochs, signals, dtype, metadata, checksums; rewritten atomically after each epoch
        p_target.npy         # float32 (or float16) [capacity, n]; rows >= num_epochs are not data
        loss.npy
        correct.npy
        nonfinite.npy        # uint8 [capacity, ceil(n / 8)]: per epoch, a bit per sample seen with NaN/inf values
        labels.npy           # int64 [n], -1 where the label was never seen

Files are preallocated to their full size when created (`allocate_file`), so a full disk shows up before training
rather than in the middle of a run, and rows are written with ordinary file writes (`os.pwrite`), never through a
writable memory map: a disk that fills up anyway gives a clean `OSError` naming the file, never a SIGBUS. A row is
written whole (NaN where a sample was not seen that epoch), segment by segment (`EpochWriter`, fed by
`hf_prune.distributed.stream_rows_to_main`), and flushed *before* `record.json` is replaced, so a run that crashes
or fills the disk mid-epoch leaves the last complete epoch readable and nothing half-written. Nothing here needs
`[K, n]` in RAM: `signal()` returns a read-only memory map and `iter_epochs()` reads one row at a time.

**Integrity.** Every committed row of every array file has a SHA-256 checksum in `record.json`, computed while the
row is written (the segments go by in order, so no second read), and so has the labels array. Labels change only at
a commit: an epoch that learns new labels writes them to `labels.npy.pending.tmp`, which replaces `labels.npy` right
after `record.json` (a crash in between is rolled forward on the next load: the pending file matches the committed
checksum). `ScoreRecord.load` verifies the structure always (JSON, every `.npy` header, dtype, shape and size) and the
checksums in the mode asked (`verify="auto"`, `"full"` or `"fast"`, see `ScoreRecord.load`); every error is a
`RecordIntegrityError` naming the file, what is wrong, the last good epoch and how to read or keep the good epochs
(`ScoreRecord.load(path, num_epochs=k)`, `ScoreRecord.repair(path)`, which moves the damaged folder aside).

**Non-finite values.** A sample seen with a NaN or infinite loss or logits is not "unseen": its signal values are
NaN (so every statistic leaves that epoch out, as for an unseen epoch) and its bit in `nonfinite.npy` is set
(`ScoreRecord.nonfinite(epoch)`); `metadata["epoch_num_nonfinite"]` counts them per epoch (from the first epoch that
had one) and `epoch_num_seen` counts them as seen.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .recording import SIGNAL_HELP, check_record_dtype


logger = logging.getLogger(__name__)  # not transformers': `hf-prune` runs without it

RECORD_FILE = "record.json"
LABELS_FILE = "labels.npy"
NONFINITE_FILE = "nonfinite.npy"
# The labels of an epoch that learned new ones, until they replace labels.npy just after the commit (`.tmp`: never
# copied into checkpoints).
LABELS_PENDING_FILE = "labels.npy.pending.tmp"
FORMAT_VERSION = 2
CHECKSUM_ALGORITHM = "sha256"
VERIFY_MODES = ("auto", "full", "fast")
# verify="auto" checks every checksum while the committed arrays hold at most this much (about half a second of
# SHA-256 on one core), and beyond it a deterministic subset of epochs of about AUTO_SAMPLE_BYTES.
AUTO_FULL_BYTES = 1 << 30
AUTO_SAMPLE_BYTES = 256 << 20
_COPY_CHUNK = 64 * 2**20
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


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
    """`(data offset, shape, dtype)` of a C-ordered `.npy` file.

    Raises:
        `ValueError` naming the file when it is not a readable `.npy` file (bad magic string, damaged header).
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read(f)
            offset = f.tell()
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable .npy file ({err}).") from None
    except Exception as err:  # noqa: BLE001 - numpy raises ValueError, SyntaxError... for a damaged header
        text = str(err)
        if "EOF" in text:
            what = "it is cut short inside its header"
        elif "magic" in text:
            what = "its magic string is damaged"
        else:
            what = "its header is damaged"
        raise ValueError(f"{path} is not a readable .npy file: {what} ({err}).") from None
    if fortran_order:
        raise ValueError(f"{path} must be a C-ordered array.")
    return offset, tuple(int(s) for s in shape), np.dtype(dtype)


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


def _new_hash():
    return hashlib.new(CHECKSUM_ALGORITHM)


def _digest(data: np.ndarray) -> str:
    h = _new_hash()
    h.update(memoryview(np.ascontiguousarray(data)).cast("B"))
    return h.hexdigest()


def _hash_file_range(path: Path, offset: int, nbytes: int) -> str:
    """Checksum of `nbytes` bytes of `path` from `offset`, read in chunks."""
    h = _new_hash()
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = np.empty(min(max(nbytes, 1), _COPY_CHUNK), dtype=np.uint8)
        done = 0
        while done < nbytes:
            part = buf[: min(buf.size, nbytes - done)]
            _pread(fd, part, offset + done, path)
            h.update(part)
            done += part.size
    finally:
        os.close(fd)
    return h.hexdigest()


def _map_rows(file: Path, dtype: np.dtype, offset: int, rows: int, width: int) -> np.ndarray:
    """A read-only memory map of `rows` rows of `width` items (an empty array when there is nothing to map)."""
    if rows * width == 0:
        out = np.zeros((rows, width), dtype=dtype)
        out.flags.writeable = False
        return out
    return np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=(rows, width))


def _packed_width(n: int) -> int:
    return (int(n) + 7) // 8


def _pack_ids(ids: np.ndarray, n: int) -> np.ndarray:
    """The bit row (`np.packbits` order) with the bits of `ids` set."""
    packed = np.zeros(_packed_width(n), dtype=np.uint8)
    if ids.size:
        np.bitwise_or.at(packed, ids >> 3, (0x80 >> (ids & 7)).astype(np.uint8))
    return packed


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _aside_path(path: Path, tag: str) -> Path:
    dest = path.with_name(f"{path.name}.{tag}-{_stamp()}")
    k = 1
    while dest.exists():
        dest = path.with_name(f"{path.name}.{tag}-{_stamp()}-{k}")
        k += 1
    return dest


@dataclass
class RecordProblem:
    """One thing wrong with a record folder: the file, what is wrong with it (a sentence naming the file), and how
    many epochs of it are intact from the start (`None` when the problem is not about epochs: labels, record.json)."""

    file: Path
    what: str
    good_epochs: int | None


class RecordIntegrityError(ValueError):
    """A record folder that fails verification: a file missing, unreadable, truncated, or a committed epoch (or the
    labels) that does not match its checksum.

    Attributes:
        path (`Path`): the record folder.
        file (`Path`): the first damaged file.
        problems (`list[RecordProblem]`): everything found.
        good_epochs (`int` or `None`): epochs `0 ... good_epochs - 1` are intact in every file (`None`: unknown,
            `record.json` itself is damaged).
        num_epochs (`int` or `None`): the epochs `record.json` commits.
    """

    def __init__(self, path: Path, problems: list[RecordProblem], good_epochs: int | None, num_epochs: int | None):
        self.path = Path(path)
        self.problems = list(problems)
        self.file = self.problems[0].file
        self.good_epochs = good_epochs
        self.num_epochs = num_epochs
        super().__init__(self._message())

    def _message(self) -> str:
        found = "; ".join(p.what for p in self.problems[:4])
        if len(self.problems) > 4:
            found += f"; and {len(self.problems) - 4} more problem(s)"
        path, k, K = self.path, self.good_epochs, self.num_epochs
        where = f"'{path}'"
        labels_bad = any(p.file.name == LABELS_FILE for p in self.problems)
        if k is None:
            fix = (
                f"{RECORD_FILE} holds the record's shape and checksums, so nothing in {path} can be trusted without it. "
                "Nothing was changed. A training run's checkpoints hold copies of its record "
                "(`<output_dir>/checkpoint-N/score_record`, which `ScoreRecord.load` reads), and "
                "`train(resume_from_checkpoint=True)` resumes from the newest intact one."
            )
        else:
            labels_note = " with every label unknown (-1; the labels are damaged)" if labels_bad else ""
            if k >= (K or 0):
                good = f"Every epoch's values match their checksums (epochs 0-{k - 1})" if k else "No epoch is recorded"
                fix = f"{good}; only the labels are damaged." if labels_bad else f"{good}."
            elif k > 0:
                fix = (
                    f"Epochs 0-{k - 1} are intact (the last good epoch is {k - 1}); read them with "
                    f"`ScoreRecord.load({where}, num_epochs={k})`."
                )
            else:
                fix = "No epoch is intact (the first one is damaged)."
            fix += (
                f" `ScoreRecord.repair({where})` moves this folder aside to `{path.name}.damaged-<time>` (nothing is "
                f"deleted) and puts a copy of the {k} intact epoch(s) in its place{labels_note}; a training run's "
                "checkpoints (`<output_dir>/checkpoint-N/score_record`) may hold intact copies, and "
                "`train(resume_from_checkpoint=True)` skips checkpoints whose record fails verification."
            )
        return f"The score record in {path} fails verification: {found}. {fix}"


def _row_files(signals: Sequence[str], n: int, dtype: np.dtype | None, with_mask: bool):
    """`(file name, signal name or None, expected dtype, width)` of every `[capacity, width]` array of a record."""
    files = [(f"{name}.npy", name, dtype, int(n)) for name in signals]
    if with_mask:
        files.append((NONFINITE_FILE, None, np.dtype(np.uint8), _packed_width(n)))
    return files


def _read_meta(path: Path) -> dict[str, Any]:
    """Parses and checks `record.json` (types, names that stay inside the folder)."""
    meta_file = path / RECORD_FILE
    if not meta_file.exists():
        raise FileNotFoundError(
            f"No score record in {path} (missing {RECORD_FILE}): {path} holds no score record. A `PruningTrainer` run "
            "writes one to `<output_dir>/scores`; pass that folder."
        )
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        what = f"{meta_file} is unreadable or incomplete (truncated or edited: {err})"
        raise RecordIntegrityError(path, [RecordProblem(meta_file, what, None)], None, None) from None
    problem = None
    if not isinstance(meta, dict):
        problem = "it is not a JSON object"
    else:
        n, K, signals = meta.get("num_samples"), meta.get("num_epochs"), meta.get("signals")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            problem = f"num_samples is {n!r}, not a count"
        elif not isinstance(K, int) or isinstance(K, bool) or K < 0:
            problem = f"num_epochs is {K!r}, not a count"
        elif not isinstance(signals, list) or not all(isinstance(s, str) and _NAME.match(s) for s in signals):
            problem = f"signals is {signals!r}, not a list of signal names"
        elif meta.get("dtype", "float32") not in ("float32", "float16"):
            problem = f"dtype is {meta.get('dtype')!r}, not float32 or float16"
        elif not isinstance(meta.get("metadata", {}), dict):
            problem = "metadata is not a JSON object"
        elif meta.get("checksums") is not None and not isinstance(meta["checksums"], dict):
            problem = "checksums is not a JSON object"
    if problem is not None:
        what = f"{meta_file} is incomplete or edited ({problem})"
        raise RecordIntegrityError(path, [RecordProblem(meta_file, what, None)], None, None)
    return meta


def _epochs_to_check(K: int, epoch_bytes: int, mode: str) -> list[int]:
    """The committed epochs whose checksums a mode verifies (see `ScoreRecord.load`)."""
    if mode == "fast" or K == 0:
        return []
    if mode == "full" or K * epoch_bytes <= AUTO_FULL_BYTES:
        return list(range(K))
    count = int(min(K, max(2, AUTO_SAMPLE_BYTES // max(1, epoch_bytes))))
    picked = {int(round(x)) for x in np.linspace(0, K - 1, count)} | {K - 1}
    return sorted(picked)


def _describe_epochs(epochs: Sequence[int]) -> str:
    """`[0, 1, 2, 5, 9]` -> `"0-2, 5, 9"`."""
    parts, run = [], []
    for e in epochs:
        if run and e == run[-1] + 1:
            run.append(e)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [e]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(parts) if parts else "none"


def _inspect(path: Path, mode: str = "auto", num_epochs: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verifies a record folder (see `ScoreRecord.load`); returns `(record.json, report)` or raises
    `RecordIntegrityError` (`FileNotFoundError` without `record.json`)."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}; got {mode!r}.")
    started = time.perf_counter()
    path = Path(path)
    meta = _read_meta(path)
    n, committed, signals = meta["num_samples"], meta["num_epochs"], list(meta["signals"])
    K = committed
    if num_epochs is not None:
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, (int, np.integer)) or not 0 <= num_epochs <= K:
            raise ValueError(f"num_epochs must be an integer in [0, {K}] (the record commits {K} epochs); got "
                             f"{num_epochs!r}.")  # fmt: skip
        K = int(num_epochs)
    dtype = np.dtype(meta.get("dtype", "float32"))
    checksums = meta.get("checksums") or {}
    sums_by_file = checksums.get("epochs") or {}
    if checksums and checksums.get("algorithm", CHECKSUM_ALGORITHM) != CHECKSUM_ALGORITHM:
        raise ValueError(f"{path / RECORD_FILE} uses checksums {checksums.get('algorithm')!r}; this hf_prune reads "
                         f"{CHECKSUM_ALGORITHM!r}.")  # fmt: skip
    with_mask = "nonfinite_from_epoch" in meta or (path / NONFINITE_FILE).exists()
    problems: list[RecordProblem] = []
    layouts: dict[str, tuple[Path, int, int, int]] = {}  # file name -> (file, offset, row bytes, rows readable)
    for fname, signal, expected, width in _row_files(signals, n, dtype, with_mask):
        file = path / fname
        label = f" (signal {signal!r})" if signal else " (the non-finite mask)"
        if not file.exists():
            problems.append(RecordProblem(file, f"{path} is incomplete: {fname}{label} is missing", 0))
            continue
        try:
            offset, shape, got = _npy_layout(file)
        except ValueError as err:
            problems.append(RecordProblem(file, str(err).rstrip("."), 0))
            continue
        if signal is not None and got not in (np.float32, np.float16):
            problems.append(RecordProblem(file, f"{file} holds {got} values, not float32 or float16", 0))
            continue
        if got != expected:
            problems.append(RecordProblem(file, f"{file} holds {got} values; record.json says {expected}", 0))
            continue
        if len(shape) != 2 or shape[1] != width:
            problems.append(RecordProblem(file, f"{file} has shape {shape}; expected (capacity, {width})", 0))
            continue
        row_bytes = width * got.itemsize
        size = file.stat().st_size
        readable = min(shape[0], (size - offset) // row_bytes if row_bytes else shape[0])
        if shape[0] < K:
            what = f"{file} has room for {shape[0]} epochs but record.json commits {K}"
            problems.append(RecordProblem(file, what, max(0, readable)))
        elif readable < K:
            what = f"{file} is truncated: it holds {max(0, readable)} complete epoch(s) of the {K} record.json commits"
            problems.append(RecordProblem(file, what, max(0, readable)))
        layouts[fname] = (file, offset, row_bytes, max(0, int(readable)))
    labels_file = path / LABELS_FILE
    pending = path / LABELS_PENDING_FILE
    labels_sum = checksums.get("labels")
    labels_source: Path | None = labels_file if labels_file.exists() else None
    labels_checked = False
    if labels_source is None and labels_sum:
        problems.append(RecordProblem(labels_file, f"{path} is incomplete: {LABELS_FILE} is missing", None))
    if labels_source is not None:
        try:
            offset, shape, got = _npy_layout(labels_file)
            if got != np.int64 or shape != (n,):
                problems.append(RecordProblem(labels_file, f"{labels_file} holds {got} {shape}; expected int64 ({n},)",
                                              None))  # fmt: skip
            elif labels_file.stat().st_size < offset + n * 8:
                problems.append(RecordProblem(labels_file, f"{labels_file} is truncated: it holds fewer than {n} "
                                              "labels", None))  # fmt: skip
            elif labels_sum and (mode != "fast" or pending.exists()):
                labels_checked = True
                if _hash_file_range(labels_file, offset, n * 8) != labels_sum:
                    rolled = None
                    if pending.exists():  # a crash between the commit and the replace: the pending file is current
                        try:
                            p_offset, p_shape, p_dtype = _npy_layout(pending)
                            if p_shape == (n,) and p_dtype == np.int64 and _hash_file_range(pending, p_offset,
                                                                                            n * 8) == labels_sum:
                                rolled = pending
                        except (OSError, ValueError):
                            rolled = None
                    if rolled is not None:
                        labels_source = rolled
                    else:
                        what = f"{labels_file} does not match its checksum in record.json (edited or damaged)"
                        problems.append(RecordProblem(labels_file, what, None))
        except ValueError as err:
            problems.append(RecordProblem(labels_file, str(err).rstrip("."), None))
    epoch_bytes = sum(rb for _, _, rb, _ in layouts.values())
    epochs = _epochs_to_check(K, epoch_bytes, mode)
    missing_sums: set[int] = set()
    buffers: dict[str, np.ndarray] = {}

    def first_bad(fname: str, candidates) -> int | None:
        file, offset, row_bytes, readable = layouts[fname]
        sums = sums_by_file.get(fname) or []
        buf = buffers.setdefault(fname, np.empty(row_bytes, dtype=np.uint8))
        fd = os.open(file, os.O_RDONLY)
        try:
            for e in candidates:
                if e >= readable:
                    return e
                expected_sum = sums[e] if e < len(sums) else None
                if expected_sum is None:
                    missing_sums.add(e)
                    continue
                _pread(fd, buf, offset + e * row_bytes, file)
                if _digest(buf) != expected_sum:
                    return e
        finally:
            os.close(fd)
        return None

    for fname in layouts:
        bad = first_bad(fname, [e for e in epochs if e < layouts[fname][3]])
        if bad is not None:
            file = layouts[fname][0]
            problems.append(RecordProblem(file, f"{file}: epoch {bad} does not match its checksum in record.json "
                                          "(edited or damaged)", bad))  # fmt: skip
    if problems:
        # The last good epoch, whatever the mode: every file's rows are checked from the start up to the first bad one.
        good = K
        for p in problems:
            if p.good_epochs is not None:
                good = min(good, p.good_epochs)
        for fname in layouts:
            if good == 0:
                break
            bad = first_bad(fname, range(min(good, layouts[fname][3])))
            if bad is not None and bad < good:
                if not any(p.file.name == fname and p.good_epochs == bad for p in problems):
                    file = layouts[fname][0]
                    problems.append(RecordProblem(file, f"{file}: epoch {bad} does not match its checksum in "
                                                  "record.json (edited or damaged)", bad))  # fmt: skip
                good = bad
        earliest: dict[Path, RecordProblem] = {}
        for p in problems:  # one problem per file: its earliest damage
            kept = earliest.get(p.file)
            if kept is None or (p.good_epochs is not None and (kept.good_epochs is None or p.good_epochs < kept.good_epochs)):
                earliest[p.file] = p
        problems = sorted(earliest.values(),
                          key=lambda p: (p.good_epochs is None, p.good_epochs if p.good_epochs is not None else 0))
        raise RecordIntegrityError(path, problems, good, committed)
    checked = sorted(set(epochs) - missing_sums)
    unchecked = []
    if not checksums:
        unchecked.append(
            f"no checksums (written by an older hf_prune, format_version {meta.get('format_version', 1)}): only the "
            "structure (record.json, every .npy header, dtype, shape and size) was verified"
        )
    else:
        if missing_sums:
            unchecked.append(f"epochs {_describe_epochs(sorted(missing_sums))} have no checksums (recorded by an "
                             "older hf_prune)")  # fmt: skip
        rest = sorted(set(range(K)) - set(epochs))
        if rest:
            why = "verify='fast'" if mode == "fast" else f"verify='auto' over {AUTO_FULL_BYTES >> 20} MiB"
            unchecked.append(f"epochs {_describe_epochs(rest)} not checksummed ({why}; pass verify='full')")
        if labels_source is not None and not labels_checked:
            unchecked.append("labels not checksummed (verify='fast')")
    report = {
        "mode": mode,
        "num_epochs": K,
        "checked_epochs": checked,
        "labels_checked": labels_checked,
        "labels_file": labels_source.name if labels_source is not None else None,
        "unchecked": "; ".join(unchecked) or None,
        "seconds": round(time.perf_counter() - started, 4),
    }
    return meta, report


class ScoreRecord:
    """Per-sample signals over epochs: `signal(name)` is an array `[num_epochs, num_samples]` (float32, or float16
    for records made with `record_dtype="float16"`; `iter_epochs` always yields float32 rows).

    NaN means the sample was not seen in that epoch, its label was the ignore index, or it was seen with a NaN or
    infinite loss or logits (then `nonfinite(epoch)` says so). Sample ids are column positions, i.e. row positions in
    the *unpruned* training split. A record lives in a folder (memory-mapped, checksummed, see the module docstring)
    or in memory (`from_arrays`).

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
        nonfinite: np.ndarray | None = None,
        checksums: dict[str, list[str | None]] | None = None,
        labels_checksum: str | None = None,
        nonfinite_from_epoch: int = 0,
    ):
        self._num_samples = int(num_samples)
        self._signals = list(signals)
        self._arrays = dict(arrays)
        self._num_epochs = int(num_epochs)
        self._labels = labels
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.path = Path(path) if path is not None else None
        self._writable = writable
        self._nonfinite = nonfinite  # packed bits [rows, ceil(n / 8)], or None: not tracked
        self._nonfinite_from = int(nonfinite_from_epoch)
        self._checksums = checksums  # file name -> per-epoch checksum (None: not known), or None: no checksums
        self._labels_checksum = labels_checksum
        self.verification: dict[str, Any] | None = None  # what `load` checked (see `ScoreRecord.load`)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        metadata: dict | None = None,
        nonfinite: np.ndarray | None = None,
    ) -> ScoreRecord:
        """Builds an in-memory record from arrays made elsewhere.

        Args:
            arrays (`dict[str, np.ndarray]`):
                Signal name to a `[num_epochs, num_samples]` array (e.g. `{"p_target": p}`); all the same shape.
            labels (`np.ndarray` of shape `[num_samples]`, *optional*):
                Integer class labels, needed for class-balanced selection.
            metadata (`dict`, *optional*):
                Free-form provenance (model, epochs, dataset...) that results and exports carry along.
            nonfinite (`np.ndarray` of bool `[num_epochs, num_samples]`, *optional*):
                Where a sample was seen with NaN or infinite values (its signal values there should be NaN); without
                it the record does not tell non-finite from unseen.
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
        packed = None
        metadata = dict(metadata or {})
        if nonfinite is not None:
            mask = np.asarray(nonfinite, dtype=bool)
            if mask.shape != first:
                raise ValueError(f"`nonfinite` has shape {mask.shape}; expected {first}, like the signals.")
            packed = np.packbits(mask, axis=1) if mask.size else np.zeros((num_epochs, _packed_width(num_samples)),
                                                                          np.uint8)  # fmt: skip
            counts = mask.sum(axis=1).astype(int).tolist()
            if any(counts):
                metadata["epoch_num_nonfinite"] = counts
        return cls(num_samples, list(data), data, num_epochs, labels=labels, metadata=metadata, nonfinite=packed)

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
        bad = [s for s in signals if not _NAME.match(str(s))]
        if bad:
            raise ValueError(f"Signal names {bad} cannot name files; use letters, digits and underscores.")
        path.mkdir(parents=True, exist_ok=True)
        capacity = max(1, int(capacity_epochs))
        n = int(num_samples)
        for fname, _, file_dtype, width in _row_files(signals, n, np.dtype(dtype), True):
            _create_npy(path / fname, file_dtype, (capacity, width))
        labels_sum = _write_unknown_labels(path / LABELS_FILE, n)
        record = cls.load_arrays(path, num_samples, signals, 0, metadata, writable=True)
        record._checksums = {fname: [] for fname, *_ in _row_files(signals, n, None, True)}
        record._labels_checksum = labels_sum
        record._commit()
        return record

    @classmethod
    def load_arrays(
        cls,
        path: Path,
        num_samples: int,
        signals,
        num_epochs: int,
        metadata,
        writable: bool,
        meta: dict | None = None,
        labels_file: str | None = None,
    ):
        """Opens the arrays of a record folder read-only memory-mapped (writes go through files, see `EpochWriter`).
        Maps at most the rows each file holds, so a file cut short after the committed epochs still opens."""
        path = Path(path)
        n = int(num_samples)
        meta = meta or {}
        arrays = {name: _map_whole(path / f"{name}.npy", n) for name in signals}
        labels_path = path / (labels_file or LABELS_FILE)
        labels = None
        if labels_path.exists():
            offset, _, _ = _npy_layout(labels_path)
            labels = _map_rows(labels_path, np.dtype(np.int64), offset, 1, n).reshape(n)
        nonfinite = None
        if (path / NONFINITE_FILE).exists():
            nonfinite = _map_whole(path / NONFINITE_FILE, _packed_width(n))
        checksums = meta.get("checksums") or {}
        sums = None
        if checksums:
            sums = {fname: list(checksums.get("epochs", {}).get(fname) or [])[:num_epochs]
                    for fname, *_ in _row_files(signals, n, None, nonfinite is not None)}  # fmt: skip
        return cls(num_samples, signals, arrays, num_epochs, labels=labels, metadata=metadata, path=path,
                   writable=writable, nonfinite=nonfinite, checksums=sums, labels_checksum=checksums.get("labels"),
                   nonfinite_from_epoch=int(meta.get("nonfinite_from_epoch", 0)))  # fmt: skip

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        writable: bool = False,
        verify: str = "auto",
        num_epochs: int | None = None,
    ) -> ScoreRecord:
        """Opens a record folder (e.g. `run/scores`) memory-mapped, after verifying it; nothing else is read into RAM
        until used.

        Args:
            path (`str` or `os.PathLike`): the record folder.
            writable (`bool`, *optional*, defaults to `False`): open for writing more epochs (`PruningTrainer`).
            verify (`str`, *optional*, defaults to `"auto"`): what is checked. The structure always: `record.json`
                parses and is consistent, every `.npy` file has its magic string, a readable header, the dtype, the
                shape and the size the committed epochs need. Then the checksums of the committed epochs:
                `"full"`: every epoch of every array, and the labels; `"auto"`: the same while the committed arrays
                hold at most 1 GiB (`AUTO_FULL_BYTES`, about half a second), beyond that the labels, the last epoch
                and evenly spaced epochs, about 256 MiB (`AUTO_SAMPLE_BYTES`); `"fast"`: no checksum. What was and
                was not checked is in `record.verification` (and logged when something was left out). Records
                written before checksums existed load with the structure checked, and `verification` says so.
            num_epochs (`int`, *optional*): open only the first `num_epochs` committed epochs (read-only), e.g. the
                intact ones of a damaged record (`RecordIntegrityError` says how many).

        Raises:
            `FileNotFoundError` without `record.json`; `RecordIntegrityError` (a `ValueError`) naming the damaged
            file, what is wrong, the last good epoch and how to read or keep the good ones.
        """
        path = Path(path)
        if writable and num_epochs is not None:
            raise ValueError(
                "num_epochs opens a read-only prefix of a record. To continue writing from the intact epochs of a "
                f"damaged record, `ScoreRecord.repair('{path}')` first (it moves the damaged folder aside)."
            )
        meta, report = _inspect(path, verify, num_epochs)
        labels_file = report["labels_file"]
        if labels_file == LABELS_PENDING_FILE and writable:
            os.replace(path / LABELS_PENDING_FILE, path / LABELS_FILE)  # finish the interrupted commit
            labels_file = LABELS_FILE
        K = report["num_epochs"]
        record = cls.load_arrays(path, meta["num_samples"], list(meta["signals"]), K, meta.get("metadata", {}),
                                 writable, meta=meta, labels_file=labels_file)  # fmt: skip
        if K < meta["num_epochs"]:
            record._truncate_metadata(K)
        record.verification = report
        if report["unchecked"]:
            log = logger.warning if not meta.get("checksums") else logger.info
            log(f"Score record {path}: verified {verify!r} in {report['seconds']:.3f} s; {report['unchecked']}.")
        return record

    @classmethod
    def verify(cls, path: str | os.PathLike, mode: str = "auto", num_epochs: int | None = None) -> dict[str, Any]:
        """Checks a record folder without opening it and returns the parsed `record.json` (see `load` for `mode`:
        the structure always, then the committed epochs' checksums). Reads headers and sizes, then at most the
        rows the mode checksums, one row at a time.

        Raises:
            `FileNotFoundError` without `record.json`; `RecordIntegrityError` (a `ValueError`) naming what is missing,
            short, unreadable or not matching its checksum, the last good epoch and how to recover.
        """
        return _inspect(Path(path), mode, num_epochs)[0]

    @classmethod
    def copy(
        cls, src: str | os.PathLike, dst: str | os.PathLike, num_epochs: int | None = None, verify: str = "auto"
    ) -> Path:
        """Copies the record folder `src` (verified first, see `load`) to a new folder `dst`: preallocated files of
        the same capacity, holding the complete epochs only (rows past `num_epochs` are not copied), with their
        checksums. Returns `dst`.

        Args:
            num_epochs (`int`, *optional*): copy only the first `num_epochs` committed epochs.
            verify (`str`, *optional*, defaults to `"auto"`): how `src` is verified (`"auto"`, `"full"`, `"fast"`).
        """
        src, dst = Path(src), Path(dst)
        meta, report = _inspect(src, verify, num_epochs)
        labels = src / report["labels_file"] if report["labels_file"] else None
        _copy_record(src, dst, meta, report["num_epochs"], labels)
        return dst

    @classmethod
    def repair(cls, path: str | os.PathLike) -> Path | None:
        """Keeps the intact epochs of a damaged record folder, deleting nothing: verifies `path` in full, and if it
        fails, moves it aside to `<path>.damaged-<time>` and writes a copy of its intact epochs (the longest prefix
        whose every file matches its checksums) in its place; damaged labels become unknown (-1). Returns the folder
        the damaged record was moved to, or `None` when the record is intact.

        Raises:
            `RecordIntegrityError` when `record.json` itself is unreadable (nothing to keep: use a checkpoint's copy).
        """
        path = Path(path)
        try:
            _inspect(path, "full")
            logger.info(f"Score record {path} is intact; nothing to repair.")
            return None
        except RecordIntegrityError as err:
            if err.good_epochs is None:
                raise
            good, damage = err.good_epochs, err
        meta = json.loads((path / RECORD_FILE).read_text())
        labels_ok = not any(p.file.name == LABELS_FILE for p in damage.problems) and (path / LABELS_FILE).exists()
        tmp = path.with_name(path.name + ".repair-tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        note = {"repaired_from": None, "repair": f"kept epochs 0-{good - 1}" if good else "kept no epoch"}
        if not labels_ok:
            note["repair"] += "; labels reset to unknown (-1)"
        _copy_record(path, tmp, meta, good, path / LABELS_FILE if labels_ok else None, extra_metadata=note)
        aside = _aside_path(path, "damaged")
        os.replace(path, aside)
        meta_tmp = json.loads((tmp / RECORD_FILE).read_text())
        meta_tmp["metadata"]["repaired_from"] = str(aside)
        _atomic_write_json(tmp / RECORD_FILE, meta_tmp)
        os.replace(tmp, path)
        logger.warning(
            f"Score record {path} failed verification ({damage.problems[0].what}); the damaged folder was moved to "
            f"{aside} (nothing deleted) and {path} now holds its {good} intact epoch(s)."
        )
        return aside

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

    # ---- non-finite values

    @property
    def tracks_nonfinite(self) -> bool:
        """Whether this record tells a sample seen with non-finite values from an unseen one (records written before
        hf_prune tracked them, and `from_arrays` without `nonfinite=`, do not)."""
        return self._nonfinite is not None

    @property
    def epoch_num_nonfinite(self) -> list[int | None]:
        """Per epoch, the samples seen with a NaN or infinite loss or logits (their values are NaN there); `None` for
        epochs recorded before this was tracked."""
        counts = self.metadata.get("epoch_num_nonfinite") or []
        start = self._nonfinite_from if self._nonfinite is not None else self._num_epochs
        return [None if e < start else int(counts[e] or 0) if e < len(counts) else 0 for e in range(self._num_epochs)]

    @property
    def has_nonfinite(self) -> bool:
        """Whether any epoch saw a sample with non-finite values."""
        return any(self.epoch_num_nonfinite)

    def nonfinite(self, epoch: int) -> np.ndarray:
        """Bool `[n]`: the samples seen in `epoch` (negative: from the end) with a NaN or infinite loss or logits.
        Their signal values are NaN, like those of unseen samples; this is what tells them apart."""
        K = self._num_epochs
        e = int(epoch)
        if not -K <= e < K:
            raise ValueError(f"epoch={epoch} is outside the record's {K} epochs.")
        if self._nonfinite is None:
            return np.zeros(self._num_samples, dtype=bool)
        return np.unpackbits(np.asarray(self._nonfinite[e % K]), count=self._num_samples).astype(bool)

    def iter_nonfinite(self) -> Iterator[np.ndarray]:
        """Yields `nonfinite(epoch)` for every epoch, one bool row `[n]` at a time."""
        for e in range(self._num_epochs):
            yield self.nonfinite(e)

    def ever_nonfinite(self) -> np.ndarray:
        """Bool `[n]`: the samples seen with non-finite values in at least one epoch (streamed, `n / 8` bytes)."""
        if self._nonfinite is None or not self.has_nonfinite:
            return np.zeros(self._num_samples, dtype=bool)
        acc = np.zeros(_packed_width(self._num_samples), dtype=np.uint8)
        for e in range(self._num_epochs):
            acc |= np.asarray(self._nonfinite[e])
        return np.unpackbits(acc, count=self._num_samples).astype(bool)

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

    def _row_file_names(self) -> list[str]:
        return [fname for fname, *_ in _row_files(self._signals, self._num_samples, None, self._nonfinite is not None)]

    def _reload_arrays(self) -> None:
        self._arrays = {name: _map_whole(self.path / f"{name}.npy", self._num_samples) for name in self._signals}
        if (self.path / NONFINITE_FILE).exists():
            self._nonfinite = _map_whole(self.path / NONFINITE_FILE, _packed_width(self._num_samples))

    def _reload_labels(self) -> None:
        file = self.path / LABELS_FILE
        offset, _, _ = _npy_layout(file)
        self._labels = _map_rows(file, np.dtype(np.int64), offset, 1, self._num_samples).reshape(self._num_samples)

    def _truncate_metadata(self, k: int) -> None:
        for key in ("epoch_num_seen", "epoch_num_nonfinite"):
            if isinstance(self.metadata.get(key), list):
                self.metadata[key] = self.metadata[key][:k]

    def _ensure_nonfinite_file(self) -> None:
        """A record written before non-finite values were tracked gets its mask file when it is written again: the
        epochs it already holds are marked unknown (`nonfinite_from_epoch`)."""
        if (self.path / NONFINITE_FILE).exists():
            return
        capacity = _npy_layout(self.path / f"{self._signals[0]}.npy")[1][0] if self._signals else 1
        _create_npy(self.path / NONFINITE_FILE, np.uint8, (capacity, _packed_width(self._num_samples)))
        self._nonfinite_from = self._num_epochs
        self._nonfinite = _map_whole(self.path / NONFINITE_FILE, _packed_width(self._num_samples))
        if self._checksums is not None:
            self._checksums[NONFINITE_FILE] = [None] * self._num_epochs

    def _grow(self, min_capacity: int) -> None:
        """Replaces every array file by a preallocated one of at least `min_capacity` rows (new inode: hard links
        from checkpoints keep the old file), copying the complete epochs with file reads and writes. The bytes of
        the complete epochs are unchanged, so are their checksums."""
        for fname in self._row_file_names():
            file = self.path / fname
            offset, shape, dtype = _npy_layout(file)
            if shape[0] >= min_capacity:
                continue
            capacity = max(min_capacity, 2 * shape[0])
            tmp = self.path / f"{fname}.tmp"
            new_offset = _create_npy(tmp, dtype, (capacity, shape[1]))
            _copy_bytes(file, offset, tmp, new_offset, self._num_epochs * shape[1] * dtype.itemsize,
                        "Growing the score record")  # fmt: skip
            os.replace(tmp, file)
        self._reload_arrays()

    def epoch_writer(self, epoch: int) -> EpochWriter:
        """Starts writing epoch `epoch` (must be `num_epochs`, the next one) segment by segment; see `EpochWriter`."""
        self._check_writable()
        if epoch != self._num_epochs:
            raise ValueError(f"Epoch {epoch} written out of order: the record holds {self._num_epochs} epochs.")
        self._ensure_nonfinite_file()
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
                signal must be present; samples not in `ids` get NaN. A seen sample with an infinite value, or a NaN
                one while its label is known, is recorded as seen with non-finite values (see `nonfinite`).
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
        """What `record.json` holds: the format, the shape, the signals, the dtype, the metadata and the checksums."""
        header = {
            "format_version": FORMAT_VERSION,
            "num_samples": self._num_samples,
            "num_epochs": self._num_epochs,
            "signals": self._signals,
            "dtype": self.dtype,
            "metadata": self.metadata,
        }
        if self._nonfinite is not None:
            header["nonfinite_from_epoch"] = self._nonfinite_from
        if self._checksums is not None:
            header["checksums"] = {
                "algorithm": CHECKSUM_ALGORITHM,
                "epochs": {fname: list(sums[: self._num_epochs]) for fname, sums in self._checksums.items()},
                "labels": self._labels_checksum,
            }
        return header

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
        """Writes this record (complete epochs only, one row at a time, with checksums) to a new folder `path` and
        returns it.

        Raises:
            `OSError` naming the file when the disk is full (nothing is left at `path`; `<path>.partial` is removed).
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        K, n = self._num_epochs, self._num_samples
        try:
            sums: dict[str, list[str | None]] = {}
            for name in self._signals:
                arr = self._arrays[name]
                dtype = arr.dtype if arr.dtype in (np.float32, np.float16) else np.dtype(np.float32)
                sums[f"{name}.npy"] = _write_rows(tmp / f"{name}.npy", dtype, n, (arr[k] for k in range(K)), K)
            if self._nonfinite is not None:
                sums[NONFINITE_FILE] = _write_rows(tmp / NONFINITE_FILE, np.dtype(np.uint8), _packed_width(n),
                                                   (self._nonfinite[k] for k in range(K)), K)  # fmt: skip
            labels = self._labels if self._labels is not None else np.full(n, -1, dtype=np.int64)
            labels = np.ascontiguousarray(labels, dtype=np.int64)
            _write_rows(tmp / LABELS_FILE, np.dtype(np.int64), n, iter([labels]), None)
            header = self._header()
            header["checksums"] = {"algorithm": CHECKSUM_ALGORITHM, "epochs": sums, "labels": _digest(labels)}
            if self._nonfinite is not None:
                header["nonfinite_from_epoch"] = self._nonfinite_from
            _atomic_write_json(tmp / RECORD_FILE, header)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise OSError(err.errno, f"Saving the score record to {path} failed: {err.strerror or err}",
                          err.filename or str(path)) from None  # fmt: skip
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        return path


def _map_whole(file: Path, width: int) -> np.ndarray:
    """A read-only map of every complete row a `[capacity, width]` file holds."""
    offset, shape, dtype = _npy_layout(file)
    row_bytes = width * dtype.itemsize
    rows = shape[0] if not row_bytes else min(shape[0], max(0, (file.stat().st_size - offset) // row_bytes))
    return _map_rows(file, dtype, offset, int(rows), width)


def _write_unknown_labels(file: Path, n: int) -> str:
    """Creates `labels.npy` with every label unknown (-1); returns its checksum."""
    offset = _create_npy(file, np.int64, (n,))
    h = _new_hash()
    fd = os.open(file, os.O_RDWR)
    try:
        chunk = np.full(min(max(n, 1), _COPY_CHUNK // 8), -1, dtype=np.int64)
        for start in range(0, n, chunk.size):
            part = chunk[: min(chunk.size, n - start)]
            _pwrite(fd, part, offset + start * 8, file)
            h.update(part)
        os.fsync(fd)
    finally:
        os.close(fd)
    return h.hexdigest()


def _write_rows(file: Path, dtype: np.dtype, width: int, rows, count: int | None) -> list[str]:
    """Writes a fresh `.npy` file of `count` rows of `width` items (`None`: one 1-D row) from an iterator of rows;
    returns the checksum of every row."""
    shape = (width,) if count is None else (count, width)
    offset = _create_npy(file, dtype, shape)
    row_bytes = width * dtype.itemsize
    sums = []
    fd = os.open(file, os.O_RDWR)
    try:
        for k, row in enumerate(rows):
            row = np.ascontiguousarray(np.asarray(row, dtype=dtype).reshape(width))
            _pwrite(fd, row, offset + k * row_bytes, file)
            sums.append(_digest(row))
        os.fsync(fd)
    finally:
        os.close(fd)
    return sums


def _copy_bytes(src: Path, src_offset: int, dst: Path, dst_offset: int, nbytes: int, what: str) -> None:
    """Copies `nbytes` from `src` to an existing `dst`, flushing it; errors name the file."""
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        fin.seek(src_offset)
        fout.seek(dst_offset)
        while nbytes:
            chunk = fin.read(min(nbytes, _COPY_CHUNK))
            if not chunk:
                raise OSError(errno.EIO, f"{src} is truncated", str(src))
            try:
                fout.write(chunk)
            except OSError as err:
                raise OSError(err.errno, f"{what} failed at {dst}: {err.strerror}", str(dst)) from None
            nbytes -= len(chunk)
        try:
            fout.flush()
            os.fsync(fout.fileno())
        except OSError as err:
            raise OSError(err.errno, f"{what} failed at {dst}: {err.strerror}", str(dst)) from None


def _copy_record(src: Path, dst: Path, meta: dict, k: int, labels: Path | None, extra_metadata=None) -> None:
    """Writes to a new folder `dst` the first `k` epochs of the (verified) record `src` whose `record.json` is `meta`:
    files of the same capacity, checksums carried over; `labels=None` writes every label unknown (-1)."""
    n, signals = int(meta["num_samples"]), list(meta["signals"])
    with_mask = (src / NONFINITE_FILE).exists() or "nonfinite_from_epoch" in meta
    record_dtype = np.dtype(meta.get("dtype", "float32"))
    dst.mkdir(parents=True)
    try:
        for fname, _, dtype, width in _row_files(signals, n, record_dtype, with_mask):
            try:
                offset, shape, dtype = _npy_layout(src / fname)
            except (OSError, ValueError):  # missing or unreadable (only a repair keeps no epoch of it): a fresh file
                if k:
                    raise
                offset, shape = None, (max(1, int(meta.get("num_epochs", 1))), width)
            new_offset = _create_npy(dst / fname, dtype, shape)
            if offset is not None:
                _copy_bytes(src / fname, offset, dst / fname, new_offset, k * shape[1] * dtype.itemsize,
                            "Copying the score record")  # fmt: skip
        if labels is not None:
            offset, _, _ = _npy_layout(labels)
            new_offset = _create_npy(dst / LABELS_FILE, np.int64, (n,))
            _copy_bytes(labels, offset, dst / LABELS_FILE, new_offset, n * 8, "Copying the score record")
            labels_sum = (meta.get("checksums") or {}).get("labels")
        else:
            labels_sum = _write_unknown_labels(dst / LABELS_FILE, n)
    except OSError as err:
        raise OSError(err.errno, f"Copying the score record {src} to {dst} failed: {err.strerror or err}",
                      err.filename or str(dst)) from None  # fmt: skip
    header = dict(meta)
    header["num_epochs"] = int(k)
    metadata = dict(header.get("metadata") or {})
    for key in ("epoch_num_seen", "epoch_num_nonfinite"):
        if isinstance(metadata.get(key), list):
            metadata[key] = metadata[key][:k]
    metadata.update(extra_metadata or {})
    header["metadata"] = metadata
    checksums = header.get("checksums")
    if checksums:
        header["checksums"] = {
            "algorithm": checksums.get("algorithm", CHECKSUM_ALGORITHM),
            "epochs": {fname: list(sums or [])[:k] for fname, sums in (checksums.get("epochs") or {}).items()},
            "labels": labels_sum if labels_sum else None,
        }
    elif labels is None:
        header["checksums"] = None
    try:
        _atomic_write_json(dst / RECORD_FILE, header)
    except OSError as err:
        raise OSError(err.errno, f"Copying the score record failed at {dst / RECORD_FILE}: {err.strerror}",
                      str(dst / RECORD_FILE)) from None  # fmt: skip


class LabelConflictError(ValueError):
    """A sample id arrived with a label other than the one the record holds for it: ids do not identify rows."""


class EpochWriter:
    """Writes one epoch row of an on-disk `ScoreRecord`, in consecutive id segments, then commits it.

    Segments must cover `[0, n)` in order (`write(start, stop, ...)` with `start` = the previous `stop`); each
    segment is assembled in a small buffer (NaN where no sample was seen) and written with `os.pwrite`, so a full
    disk raises `OSError` (naming the file) and leaves the committed epochs untouched. Each row's checksum is computed
    from the segments as they go by. Labels are checked against the ones the record holds: a sample id that comes back
    with another label raises `LabelConflictError` (its ids do not identify rows, e.g. stream positions after
    `.shuffle()`); new labels go to a pending file that replaces `labels.npy` at the commit.

    A seen sample whose values hold an infinite value, or a NaN while its label is known (a NaN or infinite loss or
    logits: `Recorder` NaNs the whole row), is recorded as seen with non-finite values: NaN in every recorded signal,
    its bit set in the epoch's `nonfinite.npy` row, counted in `num_nonfinite` (and in `num_seen`).

    Built by `ScoreRecord.epoch_writer(epoch)`; `PruningTrainer` feeds it from `stream_rows_to_main`.
    """

    def __init__(self, record: ScoreRecord, epoch: int):
        self.record = record
        self.epoch = epoch
        self.num_seen = 0
        self.num_nonfinite = 0
        self._next = 0
        self._committed = False
        self._rows: dict[str, np.ndarray] = {}
        self._fds: dict[str, int] = {}
        self._layout: dict[str, tuple[int, np.dtype]] = {}
        self._hashes = {name: _new_hash() for name in record.signals}
        self._flagged: list[np.ndarray] = []
        self._pending_fd: int | None = None
        self._pending_offset = 0
        self._labels_hash = None
        path = record.path
        self._files = {name: path / f"{name}.npy" for name in record.signals}
        self._files["__labels__"] = path / LABELS_FILE
        self._files["__nonfinite__"] = path / NONFINITE_FILE
        try:
            for name, file in self._files.items():
                offset, _, dtype = _npy_layout(file)
                self._layout[name] = (offset, dtype)
                self._fds[name] = os.open(file, os.O_RDONLY if name == "__labels__" else os.O_RDWR)
        except BaseException:
            self.close()
            raise

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
            if names:
                # As stored: a finite float32 value beyond float16's range is infinite in a float16 record.
                with np.errstate(over="ignore"):
                    values = values.astype(self._layout[names[0]][1] if names[0] in self._layout else np.float32)
                # Column by column: numpy's row-wise reductions over a few columns are slow at n = 10^6.
                nonfinite = ~np.isfinite(values[:, 0])
                for j in range(1, values.shape[1]):
                    nonfinite |= ~np.isfinite(values[:, j])
                if nonfinite.any():
                    rows = np.flatnonzero(nonfinite)
                    rows = rows[(labels[rows] >= 0) | np.isinf(values[rows]).any(axis=1)]  # not an ignored label
                    values[rows] = np.nan
                    self._flagged.append(ids[rows])
                    self.num_nonfinite += int(rows.size)
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
            segment = np.ascontiguousarray(segment)
            _pwrite(self._fds[name], segment, offset + (self.epoch * record.num_samples + start) * dtype.itemsize,
                    self._files[name])  # fmt: skip
            self._hashes[name].update(memoryview(segment).cast("B"))
        if ids.size or self._pending_fd is not None:
            self._write_labels(start, width, local, labels)
        self.num_seen += int(ids.size)
        self._next = stop

    def _write_labels(self, start: int, width: int, local: np.ndarray, labels: np.ndarray) -> None:
        offset, _ = self._layout["__labels__"]
        fd, file = self._fds["__labels__"], self._files["__labels__"]
        stored = _pread(fd, np.empty(width, dtype=np.int64), offset + start * 8, file)
        merged = stored
        if local.size:
            known = labels >= 0
            clash = known & (stored[local] >= 0) & (stored[local] != labels)
            if clash.any():
                i = int(np.flatnonzero(clash)[0])
                raise LabelConflictError(
                    f"Sample id {start + int(local[i])} was recorded with label {int(stored[local[i]])} in an earlier "
                    f"epoch and arrives with label {int(labels[i])} in epoch {self.epoch} ({int(clash.sum())} such ids "
                    f"in [{start}, {start + width})): the sample ids do not identify rows of one split. Ids must be row "
                    "positions of the unpruned split (not positions in a shuffled stream; add them before "
                    "`.shuffle()`), and the dataset must not change between epochs or on resume."
                )
            merged = stored.copy()
            merged[local[known]] = labels[known]
            if self._pending_fd is None and (merged != stored).any():
                self._start_pending(start)
        if self._pending_fd is not None:
            pending = self.record.path / LABELS_PENDING_FILE
            _pwrite(self._pending_fd, merged, self._pending_offset + start * 8, pending)
            self._labels_hash.update(memoryview(np.ascontiguousarray(merged)).cast("B"))

    def _start_pending(self, upto: int) -> None:
        """New labels this epoch: they go to a pending copy of `labels.npy` (the ids before `upto` copied as they
        are), which replaces it at the commit, so the committed labels never change in place."""
        record = self.record
        pending = record.path / LABELS_PENDING_FILE
        self._pending_offset = _create_npy(pending, np.int64, (record.num_samples,))
        self._pending_fd = os.open(pending, os.O_RDWR)
        self._labels_hash = _new_hash()
        offset, _ = self._layout["__labels__"]
        chunk = max(1, _COPY_CHUNK // 8)
        for lo in range(0, upto, chunk):
            part = _pread(self._fds["__labels__"], np.empty(min(chunk, upto - lo), np.int64), offset + lo * 8,
                          self._files["__labels__"])  # fmt: skip
            _pwrite(self._pending_fd, part, self._pending_offset + lo * 8, pending)
            self._labels_hash.update(part)

    def commit(self) -> None:
        """Fills the rest of the row with NaN, writes the non-finite mask row, flushes every file, then replaces
        `record.json` (the commit point, with the epoch's checksums); new labels replace `labels.npy` right after."""
        record = self.record
        n = record.num_samples
        try:
            if self._next < n:
                self.write(self._next, n, [], [], [])
            flagged = np.concatenate(self._flagged) if self._flagged else np.zeros(0, np.int64)
            mask_row = _pack_ids(flagged, n)
            offset, _ = self._layout["__nonfinite__"]
            _pwrite(self._fds["__nonfinite__"], mask_row, offset + self.epoch * mask_row.size,
                    self._files["__nonfinite__"])  # fmt: skip
            fds = dict(self._fds)
            if self._pending_fd is not None:
                fds["__pending__"] = self._pending_fd
            for name, fd in fds.items():
                if name == "__labels__":
                    continue
                try:
                    os.fsync(fd)
                except OSError as err:
                    file = self._files.get(name, record.path / LABELS_PENDING_FILE)
                    raise OSError(err.errno, f"Flushing the score record failed at {file}: {err.strerror}",
                                  str(file)) from None  # fmt: skip
            if self._pending_fd is not None:
                labels_sum = self._labels_hash.hexdigest()
            elif record._labels_checksum is not None:
                labels_sum = record._labels_checksum
            else:  # a record written before checksums: its labels, as they are
                offset, _ = self._layout["__labels__"]
                labels_sum = _hash_file_range(self._files["__labels__"], offset, n * 8)
            self._commit_state(labels_sum, mask_row)
            if self._pending_fd is not None:
                os.close(self._pending_fd)
                self._pending_fd = None
                os.replace(record.path / LABELS_PENDING_FILE, record.path / LABELS_FILE)
                record._reload_labels()
        finally:
            self.close()

    def _commit_state(self, labels_sum: str, mask_row: np.ndarray) -> None:
        record, epoch = self.record, self.epoch
        saved = (
            {k: list(v) for k, v in record._checksums.items()} if record._checksums is not None else None,
            record._labels_checksum,
            {k: record.metadata[k] for k in ("epoch_num_seen", "epoch_num_nonfinite") if k in record.metadata},
        )
        sums = record._checksums
        if sums is None:  # a record written before checksums: the epochs it holds have none
            sums = {fname: [None] * epoch for fname in record._row_file_names()}
        for name in record.signals:
            rows = sums.setdefault(f"{name}.npy", [])
            del rows[epoch:]
            rows.extend([None] * (epoch - len(rows)))
            rows.append(self._hashes[name].hexdigest())
        rows = sums.setdefault(NONFINITE_FILE, [])
        del rows[epoch:]
        rows.extend([None] * (epoch - len(rows)))
        rows.append(_digest(mask_row))
        record._checksums = sums
        record._labels_checksum = labels_sum
        seen = record.metadata.setdefault("epoch_num_seen", [])
        del seen[epoch:]
        seen.append(self.num_seen)
        counts = record.metadata.get("epoch_num_nonfinite")
        if counts is not None or self.num_nonfinite:
            counts = list(counts or [])[:epoch]
            counts += [None if e < record._nonfinite_from else 0 for e in range(len(counts), epoch)]
            counts.append(self.num_nonfinite)
            record.metadata["epoch_num_nonfinite"] = counts
        record._num_epochs = epoch + 1
        try:
            record._commit()
        except OSError:
            record._num_epochs = epoch
            record._checksums, record._labels_checksum, meta = saved
            for key in ("epoch_num_seen", "epoch_num_nonfinite"):
                if key in meta:
                    record.metadata[key] = meta[key]
                else:
                    record.metadata.pop(key, None)
            raise
        self._committed = True

    def close(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}
        if self._pending_fd is not None:
            try:
                os.close(self._pending_fd)
            except OSError:
                pass
            self._pending_fd = None
            if not self._committed:
                (self.record.path / LABELS_PENDING_FILE).unlink(missing_ok=True)

    def __del__(self):
        self.close()
