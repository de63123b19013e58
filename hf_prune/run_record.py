"""`RunRecord`: the score record of one training run, in its output folder and in its checkpoints.

`PruningTrainer` holds one. Its life, with the folders it touches::

    <output_dir>/
        scores/                    the live `ScoreRecord`; the main process writes a row after every epoch
        scores.lock                held while training (an advisory `flock`, released by the OS if the process dies)
        scores.old-<time>/         a record moved aside (`overwrite_score_record=True`, or a resume from an earlier
                                   checkpoint of a complete run): no record is ever deleted
        checkpoint-N/
            score_record/          the record as of checkpoint N (arrays hard-linked where the filesystem allows)
            score_record_partial/  rank<r>.pt: each rank's rows of the epoch in progress; meta.json: world and batch

* `prepare` (before training): takes the lock, checks a checkpoint's record against this run (complete, same
  signals, samples, dtype, rows, a compatible total batch size) *before anything is touched*, then installs the
  checkpoint's copy or creates a new record, and gives each rank back its rows of the epoch in progress;
* `write_epoch` (every epoch end, every rank): streams every rank's rows to the main process, which writes the row;
* `save_to_checkpoint` (before Trainer saves a checkpoint): the record and every rank's rows of the epoch in progress;
* `finish` marks the record complete; `release_lock` lets the folder go.

`resolve_checkpoint(True)` resumes from the newest *complete* checkpoint (`checkpoint_problem`: Trainer's files whole,
the record verified, every rank's rows there) and logs the ones it skips; `checkpoint_save_errors` turns a checkpoint
save that fails on a full disk (torch's `unexpected pos`, `basic_ios::clear`...) into one `OSError` naming the folder.

The main process alone touches the files; every step that can fail there is raised on every rank
(`hf_prune.distributed.raise_on_every_rank`), so no rank is left waiting in a collective.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import socket
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from .distributed import raise_on_every_rank, stream_rows_to_main
from .record import RECORD_FILE, ScoreRecord
from .recording import Recorder
from .sample_ids import SAMPLE_ID_COLUMN, row_fingerprint, row_fingerprint_matches


__all__ = ["CHECKPOINT_DYNAMIC_DIR", "CHECKPOINT_PARTIAL_DIR", "CHECKPOINT_RECORD_DIR", "RunRecord",
           "checkpoint_problem", "checkpoint_save_errors", "score_record_path"]  # fmt: skip

logger = logging.get_logger(__name__)

CHECKPOINT_RECORD_DIR = "score_record"
CHECKPOINT_PARTIAL_DIR = "score_record_partial"
# `DynamicPruningTrainer`'s sampler and policy state (`hf_prune.dynamic.checkpoint`); named here, beside the record's
# folders, so that the Hub side leaves every folder hf_prune writes into a checkpoint out of a model repo.
CHECKPOINT_DYNAMIC_DIR = "dynamic_pruning"
PARTIAL_META_FILE = "meta.json"


def score_record_path(args) -> Path:
    """Where a run with `args` keeps its score record: `<output_dir>/<score_record_dir>` (`scores` by default)."""
    return Path(args.output_dir) / getattr(args, "score_record_dir", "scores")


class RunRecord:
    """The score record of one training run: where it lives, its lock, and its copies in checkpoints.

    Args:
        args (`TrainingArguments`): the run's arguments (`output_dir`, `score_record_dir`, `overwrite_score_record`,
            the batch sizes, the number of epochs).
        accelerator (`accelerate.Accelerator`): the run's processes; the main process writes the files.
        recorder (`Recorder`): this process's rows of the epoch in progress.
        num_samples (`int`): `n`, the length of the unpruned split the ids index.
        signals (`list[str]`): the record's signals (the recorder's, then the rows a dynamic policy adds).
        train_dataset: the training dataset (its row count and row fingerprint identify the data of a resumed run).

    Example:

    ```python
    >>> run_record = RunRecord(args, accelerator, recorder, num_samples=60_000, signals=["p_target"],
    ...                        train_dataset=train_ds)
    >>> trained = run_record.prepare(run_record.resolve_checkpoint(True), metadata=lambda: {})
    >>> ...  # every epoch, every rank: run_record.write_epoch()
    >>> run_record.finish(); run_record.release_lock()
    ```
    """

    def __init__(self, args, accelerator, recorder: Recorder, num_samples: int, signals: list[str], train_dataset):
        self.args = args
        self.accelerator = accelerator
        self.recorder = recorder
        self.num_samples = int(num_samples)
        self.signals = list(signals)
        self.train_dataset = train_dataset
        self._row_fingerprint: str | None | bool = False  # not computed yet
        self.record: ScoreRecord | None = None  # writable, on the main process, while training
        self.recorded_epochs = 0
        # Samples of the epoch written last that were seen with a NaN/inf loss or logits (main process; else None).
        self.last_epoch_num_nonfinite: int | None = None
        self._lock_fd: int | None = None

    @property
    def path(self) -> Path:
        """`<output_dir>/<score_record_dir>`."""
        return score_record_path(self.args)

    @property
    def total_train_batch_size(self) -> int:
        """Samples per optimizer step over all processes; a resumed run must keep it (see `_check_partial_rows`)."""
        args = self.args
        return self.accelerator.num_processes * args.per_device_train_batch_size * args.gradient_accumulation_steps

    def dataset_row_fingerprint(self) -> str | None:
        """`hf_prune.sample_ids.row_fingerprint` of the training dataset when it is the unpruned split itself (only
        that split identifies the rows the ids index; a view carrying `sample_id` does not), else `None`."""
        if self._row_fingerprint is not False:  # one pass over every row per run, not one per caller
            return self._row_fingerprint
        ds = self.train_dataset
        columns = getattr(ds, "column_names", None) or []
        unpruned = SAMPLE_ID_COLUMN not in columns and hasattr(ds, "__len__") and len(ds) == self.num_samples
        self._row_fingerprint = row_fingerprint(ds) if unpruned else None
        return self._row_fingerprint

    # ------------------------------------------------------------------ before training

    def resolve_checkpoint(self, resume_from_checkpoint: str | bool | None) -> str | None:
        """The checkpoint to resume from, refused as Trainer would refuse it, but *before* the record is touched.

        `True` takes the newest *complete* checkpoint in `output_dir` (see `checkpoint_problem`: `trainer_state.json`
        readable, model weights and Trainer's torch files whole, the score record verified, every rank's rows of the
        epoch in progress there) and logs every newer one it skips, with the reason: a save cut short by `SIGTERM`,
        `kill -9` or a full disk leaves such a folder. The main process decides and tells the others (one broadcast).
        An explicit path must hold a finished save too; its record is checked later by `prepare`.
        """
        if resume_from_checkpoint is None or resume_from_checkpoint is False:
            return None
        if resume_from_checkpoint is True:
            return self._newest_complete_checkpoint()
        if not os.path.isdir(resume_from_checkpoint):
            raise ValueError(f"Can't find a valid checkpoint at {resume_from_checkpoint}")
        problem = checkpoint_problem(resume_from_checkpoint, check_record=False)
        if problem is not None:
            raise ValueError(
                f"Can't resume from {resume_from_checkpoint}: {problem}. Nothing was changed. Resume from an earlier "
                "checkpoint, or pass `resume_from_checkpoint=True` to take the newest complete one."
            )
        return str(resume_from_checkpoint)

    def _newest_complete_checkpoint(self) -> str:
        output_dir = self.args.output_dir
        accelerator = self.accelerator
        chosen, skipped, error = None, [], None
        if accelerator.is_main_process:
            try:
                chosen, skipped = newest_complete_checkpoint(output_dir)
            except Exception as err:  # noqa: BLE001 - told to every rank just below
                error = f"{type(err).__name__}: {err}"
        if accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            shared = broadcast_object_list([chosen, skipped, error], from_process=0)
            chosen, skipped, error = shared
        if error is not None:
            raise RuntimeError(f"Looking for a checkpoint to resume from in {output_dir} failed: {error}")
        if chosen is None:
            why = ""
            if skipped:
                why = ": every checkpoint is incomplete (" + "; ".join(f"{name}: {reason}" for name, reason in
                                                                     skipped) + ")"  # fmt: skip
            raise ValueError(f"No valid checkpoint found in output directory ({output_dir}){why}")
        if accelerator.is_main_process:
            for name, reason in skipped:
                logger.warning(f"Not resuming from {name}: {reason}. Resuming from {chosen} instead.")
        return chosen

    def prepare(self, checkpoint: str | None, metadata: Callable[[], dict[str, Any]]) -> int:
        """Sets up the record this run writes, on every process (a collective). The main process takes the lock,
        verifies `checkpoint`'s record, then installs it or creates a new record; every process then takes back its
        rows of the checkpoint's epoch in progress. On any error the lock is released and every process raises.

        Args:
            checkpoint (`str`, *optional*): from `resolve_checkpoint`; `None` starts a new record.
            metadata (`Callable[[], dict]`): the metadata of a new record (called only when one is created).

        Returns:
            `int`: the samples this process had trained in the checkpoint's epoch in progress (0 without one).
        """
        accelerator = self.accelerator
        error = None
        if accelerator.is_main_process:
            try:
                self._acquire_lock()
                saved = self._verify_checkpoint(checkpoint) if checkpoint else None
                self._install(saved, metadata)
                if checkpoint and saved is None:
                    self._skip_epochs_before(checkpoint)
            except Exception as err:  # noqa: BLE001 - re-raised on every rank just below
                error = err
        try:
            raise_on_every_rank(error, accelerator, "preparing the score record")
        except BaseException:
            self.release_lock()
            raise
        with open(self.path / RECORD_FILE) as f:
            self.recorded_epochs = json.load(f)["num_epochs"]
        self.record = ScoreRecord.load(self.path, writable=True) if accelerator.is_main_process else None
        self.recorder.reset()
        trained, error = 0, None
        try:
            if checkpoint is not None and (Path(checkpoint) / CHECKPOINT_PARTIAL_DIR).is_dir():
                trained = self._load_partial_rows(Path(checkpoint) / CHECKPOINT_PARTIAL_DIR)
        except Exception as err:  # noqa: BLE001 - re-raised on every rank just below
            error = err
        try:
            raise_on_every_rank(error, accelerator, f"loading the rows of the epoch in progress from {checkpoint}")
        except BaseException:
            self.release_lock()
            raise
        return trained

    def _acquire_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            return
        path = self.path
        lock = path.with_name(path.name + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RuntimeError(
                f"{path} is in use by another training run ({holder}): two runs must not write one score record. Wait "
                "for it to finish, or give this run another `output_dir` (or `score_record_dir`)."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.ctime()}".encode(), 0)
        self._lock_fd = fd

    def release_lock(self) -> None:
        """Releases `<score_record_dir>.lock` (a no-op where this process holds none)."""
        if self._lock_fd is None:
            return
        import fcntl

        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._lock_fd = None

    def _verify_checkpoint(self, checkpoint: str) -> Path | None:
        """Checks the checkpoint's record against this run; returns its folder (`None`: start a new record, as asked
        with `overwrite_score_record`). Raises before anything is touched."""
        saved = Path(checkpoint) / CHECKPOINT_RECORD_DIR
        fresh = "pass `overwrite_score_record=True` to start a new record from this checkpoint (the epochs before it "
        fresh += "stay NaN; the current record is moved aside)"
        if not (saved / RECORD_FILE).exists():
            if getattr(self.args, "overwrite_score_record", False):
                return None
            raise ValueError(
                f"{checkpoint} has no score record ({CHECKPOINT_RECORD_DIR}/{RECORD_FILE}): it was not written by "
                f"PruningTrainer, or its save was interrupted. Nothing was changed. Resume from an earlier checkpoint "
                f"that has one, or {fresh}."
            )
        try:
            meta = ScoreRecord.verify(saved)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"The score record of {checkpoint} is damaged ({err}). Nothing was changed. Resume from an earlier "
                f"checkpoint, or {fresh}."
            ) from None
        problems = []
        if meta["signals"] != self.signals:
            problems.append(f"signals {meta['signals']} (this run records {self.signals})")
        if int(meta["num_samples"]) != self.num_samples:
            problems.append(f"{meta['num_samples']} samples (this run's split has {self.num_samples})")
        stored = meta.get("metadata", {})
        dtype = meta.get("dtype", "float32")
        if dtype != self.recorder.dtype:
            problems.append(f"record_dtype {dtype!r} (this run: {self.recorder.dtype!r})")
        rows_now = len(self.train_dataset) if hasattr(self.train_dataset, "__len__") else None
        rows_then = stored.get("dataset_num_rows")
        if rows_then is not None and rows_now is not None and rows_then != rows_now:
            problems.append(f"a train dataset of {rows_then} rows (this one has {rows_now})")
        saved_fp, now_fp = stored.get("dataset_row_fingerprint"), self.dataset_row_fingerprint()
        if saved_fp and now_fp and row_fingerprint_matches(saved_fp, self.train_dataset, current=now_fp) is False:
            problems.append(
                f"other rows (row fingerprint {saved_fp}, this train dataset's is {now_fp}: shuffled, re-selected or "
                "another split?)"
            )
        if problems:
            raise ValueError(
                f"Cannot resume the score record of {checkpoint}: it was made with " + "; ".join(problems) + ". A "
                "record is keyed by row position, so resuming on other data would mix samples. Resume with the same "
                "dataset and arguments, or start a new run in another output_dir. Nothing was changed."
            )
        partial = Path(checkpoint) / CHECKPOINT_PARTIAL_DIR
        if partial.is_dir():
            self._check_partial_rows(partial, checkpoint)
        return saved

    def _check_partial_rows(self, partial: Path, checkpoint: str) -> None:
        # Every saved rank's rows must be there, and the total batch size must be the same: Trainer maps a global
        # step to a point of the epoch through it.
        meta_file = partial / PARTIAL_META_FILE
        files = sorted(partial.glob("rank*.pt"))
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {"world_size": len(files)}
        world = int(meta["world_size"])
        missing = [f"rank{r}.pt" for r in range(world) if not (partial / f"rank{r}.pt").exists()]
        if missing:
            raise ValueError(
                f"{checkpoint} is incomplete: the rows of the epoch in progress of {missing} are missing (its save was "
                "interrupted). Resume from an earlier checkpoint. Nothing was changed."
            )
        now = self.accelerator.num_processes
        saved_total = meta.get("total_train_batch_size")
        total = self.total_train_batch_size
        if (saved_total is not None and saved_total != total) or (saved_total is None and world != now):
            was = f"{saved_total} samples per optimizer step" if saved_total is not None else f"{world} processes"
            raise ValueError(
                f"{checkpoint} was saved by a run with {was} ({world} processes); this run takes {total} per step "
                f"({now} x {self.args.per_device_train_batch_size} x {self.args.gradient_accumulation_steps} "
                "accumulation). Trainer would map the checkpoint's global step to another point of the epoch, so the "
                "record's epoch in progress could not be completed. Resume with the same total batch size (processes "
                "x per_device_train_batch_size x gradient_accumulation_steps); the number of processes may change. "
                "Nothing was changed."
            )

    def _install(self, saved: Path | None, metadata: Callable[[], dict[str, Any]]) -> None:
        """Makes `path` the record this run continues (the checkpoint's copy) or a new one. A record that is there
        already is moved aside when complete (or when asked to overwrite), never deleted; a fresh run onto an
        existing record is refused unless `overwrite_score_record=True`."""
        path = self.path
        if saved is not None:
            tmp = path.with_name(path.name + ".resume-tmp")
            if tmp.exists():
                shutil.rmtree(tmp)
            # A real copy (the resumed run rewrites rows past the checkpoint); verified just before, and the copy is
            # verified again when opened for writing.
            ScoreRecord.copy(saved, tmp, verify="fast")
            if path.exists():
                if _is_complete_record(path):
                    _move_aside(path, "it is complete; resuming from an earlier checkpoint rewrites it")
                else:
                    shutil.rmtree(path)  # the interrupted run's record: everything it holds is in `saved` or redone
            os.replace(tmp, path)
            return
        if (path / RECORD_FILE).exists():
            if not getattr(self.args, "overwrite_score_record", False):
                raise FileExistsError(
                    f"{path} already holds a score record ({_describe_record(path)}). Nothing was changed. Resume it "
                    "with `train(resume_from_checkpoint=...)`, train into another `output_dir`, or pass "
                    "`overwrite_score_record=True` (`--overwrite_score_record`) to move it aside and start a new one."
                )
            _move_aside(path, "overwrite_score_record=True")
        elif path.exists():
            shutil.rmtree(path)  # no record.json: the leftovers of a record that was never committed
        capacity = int(math.ceil(self.args.num_train_epochs)) if self.args.max_steps <= 0 else 1
        ScoreRecord.create(path, self.num_samples, self.signals, capacity, metadata(), self.recorder.dtype)

    def _skip_epochs_before(self, checkpoint: str) -> None:
        """A new record started from a checkpoint that had none: the epochs before the checkpoint's epoch in progress
        are written empty (NaN, nothing to recover), so that its saved rows land in their own epoch."""
        meta_file = Path(checkpoint) / CHECKPOINT_PARTIAL_DIR / PARTIAL_META_FILE
        if not meta_file.exists():
            return  # no rows of an epoch in progress: the trainer aligns the record to Trainer's epoch when it starts
        record = ScoreRecord.load(self.path, writable=True)
        for epoch in range(int(json.loads(meta_file.read_text()).get("recorded_epochs", 0))):
            record.epoch_writer(epoch).commit()

    def _load_partial_rows(self, partial: Path) -> int:
        """Each rank takes back its own rows of the epoch in progress; after a change of world size the main
        process takes every saved rank's rows (the epoch-end de-duplication keeps each sample once). Returns the
        samples trained in them."""
        meta_file = partial / PARTIAL_META_FILE
        files = sorted(partial.glob("rank*.pt"), key=lambda p: int(p.stem[4:]))
        world = json.loads(meta_file.read_text())["world_size"] if meta_file.exists() else len(files)
        if world == self.accelerator.num_processes:
            files = [partial / f"rank{self.accelerator.process_index}.pt"]
        elif not self.accelerator.is_main_process:
            files = []
        trained = 0
        for file in files:
            if not file.exists():
                continue
            state = torch.load(file, weights_only=True)
            before = self.recorder.num_rows
            self.recorder.load_state_dict(state, device=self.args.device, append=True)
            trained += int(state.get("trained", self.recorder.num_rows - before))
        return trained

    # ------------------------------------------------------------------ while training

    def write_epoch(
        self,
        extra_rows: Callable[[int], dict[str, np.ndarray]] | None = None,
        extra_metadata: Callable[[], dict[str, Any]] | None = None,
    ) -> int:
        """Writes the recorder's rows as the next epoch of the record and returns that epoch. Every process calls it
        (a collective): every rank's rows stream to the main process (`stream_rows_to_main`), which writes the epoch
        row segment by segment. The main process's errors (a full disk, a label conflict) are raised on every rank,
        after the stream is drained.

        Args:
            extra_rows (`Callable[[int], dict]`, *optional*): whole rows `[n]` written beside the recorded signals
                (a dynamic policy's `selected`), called with the epoch on the main process.
            extra_metadata (`Callable[[], dict]`, *optional*): entries merged into the record's metadata (main
                process).
        """
        accelerator = self.accelerator
        epoch = self.recorded_epochs
        writer, error = None, None
        if accelerator.is_main_process:
            try:
                writer = self.record.epoch_writer(epoch)
                for name, row in (extra_rows(epoch) if extra_rows is not None else {}).items():
                    writer.set_row(name, row)
                if extra_metadata is not None:
                    self.record.metadata.update(extra_metadata())
            except Exception as err:  # noqa: BLE001 - re-raised on every rank below
                error = err
        recorder = self.recorder
        stream = stream_rows_to_main(
            accelerator, recorder.id_histogram, recorder.select_rows, self.num_samples, recorder.packed_row_bytes,
            device=accelerator.device,
        )  # fmt: skip
        for start, stop, rank_ids, rank_rows in stream:
            if writer is None or error is not None:
                continue  # keep taking part in the collective
            try:
                unpacked = [recorder.unpack_rows(rows) for rows in rank_rows]
                writer.write(start, stop, rank_ids, [u[0] for u in unpacked], [u[1] for u in unpacked],
                             signals=recorder.signals)  # fmt: skip
            except Exception as err:  # noqa: BLE001
                error = err
        if writer is not None:
            try:
                if error is None:
                    writer.commit()
            except Exception as err:  # noqa: BLE001
                error = err
            finally:
                writer.close()
        raise_on_every_rank(error, accelerator, f"writing epoch {epoch} of the score record")
        self.recorded_epochs += 1
        self.last_epoch_num_nonfinite = writer.num_nonfinite if writer is not None else None
        if self.last_epoch_num_nonfinite:
            logger.warning(
                f"Epoch {epoch}: {self.last_epoch_num_nonfinite} sample(s) were trained with a NaN or infinite loss or "
                "logits. The record keeps them as seen with non-finite values (NaN values, `nonfinite.npy`; "
                "`ScoreRecord.nonfinite(epoch)`), not as unseen; every static strategy leaves those epochs out of its "
                "maths and never removes a sample first because of them. Many such samples mean the training diverged "
                "(lower the learning rate, use gradient clipping or bf16)."
            )
        return epoch

    def save_to_checkpoint(self, checkpoint: Path, trained_rows: int) -> None:
        """Writes the record (complete epochs; main process) and this process's rows of the epoch in progress into
        `checkpoint`. Call it on every process *before* Trainer saves the checkpoint and rotates older ones away.

        Args:
            checkpoint (`Path`): the checkpoint folder.
            trained_rows (`int`): the samples this process has trained in the epoch in progress.

        Raises:
            `OSError` naming the checkpoint and the file when the disk is full (see `checkpoint_save_errors`).
        """
        is_main = self.accelerator.is_main_process
        partial = checkpoint / CHECKPOINT_PARTIAL_DIR
        with checkpoint_save_errors(checkpoint, "the score record"):
            partial.mkdir(parents=True, exist_ok=True)
            if is_main and self.record is not None:
                _link_record(self.record.path, checkpoint / CHECKPOINT_RECORD_DIR)
            state = self.recorder.state_dict()
            state["trained"] = trained_rows
            rank_file = partial / f"rank{self.accelerator.process_index}.pt"
            torch.save(state, rank_file.with_suffix(".tmp"))
            os.replace(rank_file.with_suffix(".tmp"), rank_file)
            if is_main:
                meta = {
                    "world_size": self.accelerator.num_processes,
                    "per_device_train_batch_size": self.args.per_device_train_batch_size,
                    "gradient_accumulation_steps": self.args.gradient_accumulation_steps,
                    "total_train_batch_size": self.total_train_batch_size,
                    "recorded_epochs": self.recorded_epochs,
                }
                meta_tmp = partial / (PARTIAL_META_FILE + ".tmp")
                meta_tmp.write_text(json.dumps(meta, indent=2))
                os.replace(meta_tmp, partial / PARTIAL_META_FILE)

    @staticmethod
    def checkpoint_save_errors(checkpoint: str | os.PathLike, what: str = "the checkpoint"):
        """`checkpoint_save_errors` (a context manager): wrap Trainer's own checkpoint save in it, so that a full
        disk surfaces as one `OSError` naming the checkpoint instead of torch's `unexpected pos`."""
        return checkpoint_save_errors(checkpoint, what)

    def finish(self) -> None:
        """Marks the record complete (training ended normally): a later resume from an earlier checkpoint moves it
        aside rather than replacing it."""
        if self.record is not None:
            self.record.metadata["complete"] = True
            self.record.commit_metadata()


def _is_complete_record(path: Path) -> bool:
    try:
        return bool(json.loads((path / RECORD_FILE).read_text()).get("metadata", {}).get("complete"))
    except (OSError, ValueError):
        return False


def _describe_record(path: Path) -> str:
    try:
        meta = json.loads((path / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return "unreadable record.json"
    state = "complete" if meta.get("metadata", {}).get("complete") else "not marked complete"
    return f"{meta.get('num_epochs')} epochs of {meta.get('num_samples')} samples, {state}"


def _move_aside(path: Path, why: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = path.with_name(f"{path.name}.old-{stamp}")
    k = 1
    while dest.exists():
        dest = path.with_name(f"{path.name}.old-{stamp}-{k}")
        k += 1
    os.replace(path, dest)
    logger.warning(f"The score record in {path} was moved aside to {dest} ({why}); it was not deleted.")
    return dest


def _link_record(src: Path, dst: Path) -> None:
    """Copies a record folder into a checkpoint, hard-linking the big arrays where the filesystem allows.

    Links are safe because record arrays are append-only: rows below `num_epochs` are never rewritten, growing
    replaces the file (new inode), and the checkpoint's own `record.json` fixes how many rows it holds.
    """
    tmp = dst.with_name(dst.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for item in src.iterdir():
        if item.name == RECORD_FILE or item.suffix == ".tmp":
            continue
        if item.name.startswith("labels"):
            shutil.copy2(item, tmp / item.name)  # small; a copy keeps the checkpoint's labels its own
            continue
        try:
            os.link(item, tmp / item.name)
        except OSError:
            shutil.copy2(item, tmp / item.name)
    shutil.copy2(src / RECORD_FILE, tmp / RECORD_FILE)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)


# ---------------------------------------------------------------------------------------------- complete checkpoints

_CHECKPOINT_DIR = re.compile(rf"^{re.escape(PREFIX_CHECKPOINT_DIR)}-(\d+)$")
TRAINER_STATE_FILE = "trainer_state.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")


def newest_complete_checkpoint(output_dir: str | os.PathLike) -> tuple[str | None, list[tuple[str, str]]]:
    """`(path, skipped)`: the checkpoint with the highest step in `output_dir` for which `checkpoint_problem` finds
    nothing (`None` if there is none), and `(name, reason)` of every newer one passed over."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None, []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := _CHECKPOINT_DIR.match(p.name)) and p.is_dir()]
    skipped = []
    for _, checkpoint in sorted(found, key=lambda item: -item[0]):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return str(checkpoint), skipped
        skipped.append((checkpoint.name, problem))
    return None, skipped


def checkpoint_problem(checkpoint: str | os.PathLike, check_record: bool = True) -> str | None:
    """Why `checkpoint` cannot be resumed from (a sentence), or `None` when its save finished.

    A save that `SIGTERM`, `kill -9` or a full disk cut short leaves one of these (Trainer writes `trainer_state.json`
    last, after the weights, optimizer, scheduler and RNG state; `PruningTrainer` writes the record and every rank's
    rows first). Checked from headers and sizes, without loading tensors:

    * `trainer_state.json` is there and parses, with a `global_step`;
    * model weights are there (safetensors: the header parses and the file is as long as it says; torch zip files:
      the central directory is readable; sharded: every shard of the index), or an FSDP / DeepSpeed folder;
    * `optimizer.pt`, `scheduler.pt`, `scaler.pt`, `rng_state*.pth`, where present, are whole;
    * with `check_record`: the score record passes `ScoreRecord.verify` (`verify="auto"`), and every rank's rows of
      the epoch in progress are there and whole.
    """
    checkpoint = Path(checkpoint)
    state = checkpoint / TRAINER_STATE_FILE
    if not state.is_file():
        return f"no {TRAINER_STATE_FILE} (its save did not finish: Trainer writes that file last)"
    try:
        step = json.loads(state.read_text())["global_step"]
        if not isinstance(step, int):
            raise ValueError(f"global_step is {step!r}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{TRAINER_STATE_FILE} is unreadable or incomplete ({type(err).__name__}: {err}; its save did not finish)"
    problem = _weights_problem(checkpoint)
    if problem is not None:
        return problem
    for file in [*(checkpoint / name for name in _TORCH_FILES), *sorted(checkpoint.glob("rng_state*.pth"))]:
        if file.is_file():
            problem = _torch_file_problem(file)
            if problem is not None:
                return problem
    if not check_record:
        return None
    saved = checkpoint / CHECKPOINT_RECORD_DIR
    if (saved / RECORD_FILE).exists():
        try:
            ScoreRecord.verify(saved)
        except (OSError, ValueError) as err:
            first = str(err).split(". ")[0]
            return f"its score record fails verification ({first})"
    partial = checkpoint / CHECKPOINT_PARTIAL_DIR
    if partial.is_dir():
        meta_file = partial / PARTIAL_META_FILE
        try:
            world = int(json.loads(meta_file.read_text())["world_size"]) if meta_file.exists() else None
        except (OSError, ValueError, KeyError, TypeError) as err:
            return f"{CHECKPOINT_PARTIAL_DIR}/{PARTIAL_META_FILE} is unreadable ({err})"
        files = [partial / f"rank{r}.pt" for r in range(world)] if world else sorted(partial.glob("rank*.pt"))
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            return f"the rows of the epoch in progress of {missing} are missing from {CHECKPOINT_PARTIAL_DIR}"
        for file in files:
            problem = _torch_file_problem(file)
            if problem is not None:
                return problem
    return None


def _weights_problem(checkpoint: Path) -> str | None:
    for index_name in _WEIGHT_INDEXES:
        index = checkpoint / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                return f"{index_name} is unreadable ({err})"
            for shard in shards:
                file = checkpoint / shard
                if not file.is_file():
                    return f"the weight shard {shard} named in {index_name} is missing"
                problem = _safetensors_problem(file) if shard.endswith(".safetensors") else _torch_file_problem(file)
                if problem is not None:
                    return problem
            return None
    for name in _WEIGHT_FILES:
        file = checkpoint / name
        if file.is_file():
            return _safetensors_problem(file) if name.endswith(".safetensors") else _torch_file_problem(file)
    others = [p.name for p in checkpoint.iterdir()]
    if any("pytorch_model_fsdp" in name or name.startswith("global_step") for name in others):
        return None  # FSDP sharded state / DeepSpeed: their own loaders check them
    adapters = [p for p in checkpoint.iterdir() if p.is_dir() and any((p / f).is_file() for f in _WEIGHT_FILES[2:])]
    if adapters:
        return None
    return f"no model weights ({' / '.join(_WEIGHT_FILES[:2])}): its save did not finish"


def _safetensors_problem(file: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header with every tensor's byte range, then the data."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{file.name} is truncated ({size} bytes)"
            length = int.from_bytes(head, "little")
            if 8 + length > size:
                return f"{file.name} is truncated (its header needs {8 + length} bytes, the file has {size})"
            header = json.loads(f.read(length))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        return f"{file.name} is unreadable ({type(err).__name__}: {err})"
    if 8 + length + end > size:
        return f"{file.name} is truncated ({size} of {8 + length + end} bytes)"
    return None


def _torch_file_problem(file: Path) -> str | None:
    """`torch.save` files are zip archives (a legacy pickle is only checked to be non-empty)."""
    try:
        size = file.stat().st_size
        if size == 0:
            return f"{file.name} is empty"
        with open(file, "rb") as f:
            magic = f.read(4)
        if magic == b"PK\x03\x04":
            with zipfile.ZipFile(file) as archive:
                archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        return f"{file.name} is truncated or damaged ({type(err).__name__}: {err})"
    return None


# ---------------------------------------------------------------------------------------------- failed saves

# What torch, safetensors and the C++ streams say when a write fails (a full disk, most often).
_WRITE_FAILURE = re.compile(
    r"no space left|unexpected pos|basic_ios::clear|iostream error|file write failed|failed writing|"
    r"PytorchStreamWriter|StorageFull|os error 28|disk quota|\bErrno 28\b|ENOSPC|EDQUOT|input/output error",
    re.IGNORECASE,
)


@contextlib.contextmanager
def checkpoint_save_errors(checkpoint: str | os.PathLike, what: str = "the checkpoint"):
    """Turns a checkpoint save that fails to write (a full disk, a quota, an I/O error) into one `OSError` naming
    the checkpoint folder, what was being saved, the file where known, the free space, and what to do. torch reports
    a full disk as `RuntimeError: ... unexpected pos ...` or `basic_ios::clear: iostream error`, safetensors as
    `StorageFull`; those are translated, any other error passes through unchanged.

    `PruningTrainer` runs its own record save (`RunRecord.save_to_checkpoint`) and Trainer's `_save_checkpoint` in
    it.

    Example:

    ```python
    >>> with checkpoint_save_errors(checkpoint):
    ...     super()._save_checkpoint(model, trial)
    ```
    """
    try:
        yield
    except Exception as err:  # noqa: BLE001 - translated below, or re-raised unchanged
        if getattr(err, "hf_prune_checkpoint", None) is not None:
            raise  # already translated (nested wrappers)
        write_error = isinstance(err, OSError) and not isinstance(err, (FileNotFoundError, IsADirectoryError))
        if not write_error and not _WRITE_FAILURE.search(f"{type(err).__name__}: {err}"):
            raise
        raise _save_error(Path(checkpoint), what, err) from None


def _save_error(checkpoint: Path, what: str, err: Exception) -> OSError:
    code = getattr(err, "errno", None)
    text = f"{type(err).__name__}: {err}".strip()
    space = _free_space(checkpoint)
    if code is None:
        full = re.search(r"no space left|StorageFull|os error 28|Errno 28|ENOSPC", text, re.IGNORECASE)
        code = errno.ENOSPC if full or (space is not None and space < 2**20) else errno.EIO
    filename = getattr(err, "filename2", None) or getattr(err, "filename", None)  # a copy's destination, else the file
    where = f" at {filename}" if filename and str(checkpoint) not in str(err) else ""
    disk = f" {space / 2**20:.1f} MiB are free on that disk." if space is not None else ""
    likely = " The disk is probably full." if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)) else ""
    first = text.splitlines()[0] if text else type(err).__name__
    if len(first) > 300:
        first = first[:300] + "..."
    error = OSError(
        code,
        f"Saving {what} into checkpoint {checkpoint} failed{where} ({first}).{likely}{disk} The checkpoint is "
        "incomplete; `train(resume_from_checkpoint=True)` skips it and resumes from the newest complete one. Free some "
        "space (or lower `save_total_limit`), then resume.",
        str(filename or checkpoint),
    )
    error.hf_prune_checkpoint = str(checkpoint)
    return error


def _free_space(path: Path) -> int | None:
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None
