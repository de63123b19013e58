"""`PruningTrainer`: a `transformers.Trainer` that records per-sample training dynamics every epoch.

```
sampler ──> SampleIdDataset: (sample_id, item) ──> SampleIdCollator: user's collator, then batch["sample_id"]
      training_step pops sample_id; compute_loss: logits + labels --> Recorder.add (on device, no_grad, no sync)
      on_epoch_end (all ranks): rows checked on every rank --> stream_rows_to_main --> main: EpochWriter (pwrite)
      _save_checkpoint: record + each rank's rows of the epoch in progress into checkpoint-N/, *then* Trainer's save
      train(resume_from_checkpoint=...): the checkpoint's record is verified before the live record is touched
```

What can go wrong, and what happens (each case is tested, see the README's "Reliability" section):

* a transform, collator or dataset class that drops `sample_id`: cannot happen, ids ride beside the item;
* an epoch whose recorded rows differ from what it trained: an error on every rank;
* a second run on the same folder: refused (a lock while training, an existing record unless
  `overwrite_score_record=True`, which moves the old record aside, never deletes it);
* resuming: from a missing, half-written or foreign checkpoint record, a changed dataset or another total batch
  size: refused before anything is touched; another world size with the same total batch: every rank's rows are merged;
* a full disk: files are preallocated, rows written with `os.pwrite`: a clean `OSError` naming the file, the last
  complete epoch intact;
* an error on one rank inside a collective section (record write, clean-view pass): raised on every rank, no hang.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import logging
from transformers.utils.hub import PushInProgress

from .config import PruningArguments, check_window_fits
from .distributed import raise_on_every_rank, stream_rows_to_main
from .dynamic.trainer_hooks import TrainerDynamicPruning
from .export.model_card import pruning_card_section
from .provenance import infer_source
from .record import RECORD_FILE, ScoreRecord
from .recording import DEFAULT_SIGNALS, Recorder, logits_of
from .sample_ids import (
    SAMPLE_ID_COLUMN,
    SampleIdCollator,
    SampleIdDataset,
    check_stream_ids,
    is_iterable_dataset,
    num_unpruned_samples,
    row_fingerprint,
    sample_id_range,
)
from .version import __version__


__all__ = ["PruningArguments", "PruningTrainer"]

logger = logging.get_logger(__name__)

CHECKPOINT_RECORD_DIR = "score_record"
CHECKPOINT_PARTIAL_DIR = "score_record_partial"
PARTIAL_META_FILE = "meta.json"


class _RecordingCallback(TrainerCallback):
    """Hands epoch boundaries to the trainer's recorder; every process runs these (they gather)."""

    def __init__(self, trainer: PruningTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        window = getattr(args, "dyn_unc_window", None)
        if window is not None and args.max_steps > 0:  # Trainer knows the number of epochs only now
            check_window_fits(window, state.num_train_epochs)

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        epoch = int(math.floor(state.epoch + 1e-6)) if state.epoch else 0
        self.trainer._align_record_to_epoch(epoch)
        if getattr(self.trainer, "_dynamic", None) is not None:
            # Before Trainer calls set_epoch and iterates: run the scoring pass if due, draw the epoch's selection.
            self.trainer._dynamic.begin_epoch(epoch)
        try:  # a stream's loader has no length
            batches = len(train_dataloader) if train_dataloader is not None else None
        except TypeError:
            batches = None
        if batches:
            # room for the epoch's rows up front (after the selection: its length), so that the recorder does not
            # reallocate mid-epoch
            self.trainer.recorder.reserve(batches * args.per_device_train_batch_size)
        self.trainer._epoch_started = time.perf_counter()  # samples trained per second: training steps only

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer._end_recording_epoch()


class PruningTrainer(Trainer):
    """A drop-in `transformers.Trainer` that records per-sample training dynamics into a `ScoreRecord`.

    Everything `Trainer` takes, it takes; `args` may be a `PruningArguments` (a plain `TrainingArguments` records
    the default signals). Each epoch it records, for every training sample seen, the signals in
    `args.record_signals` computed from the logits of the training step itself (no extra forward pass), keyed by
    `sample_id` (the row position in the unpruned train split, or the dataset's `sample_id` column). Ids travel
    beside the dataset's items, so transforms that return new dicts (`set_transform`, `with_transform`), collators
    that drop keys and datasets of tuples all work. Labels are read from the batch as Trainer reads them
    (`label_names`, then `labels` / `label`); a label of -100 is recorded as NaN. The record is written to
    `<output_dir>/<score_record_dir>` after every epoch and into every checkpoint; `train(resume_from_checkpoint=...)`
    continues it.

    Every epoch it also logs, through `Trainer.log` (so TensorBoard, W&B... see them with `report_to`),
    `pruning/recorded_samples`, `pruning/samples_trained_per_second` (samples actually trained, not the dataset's
    length), `pruning/clean_view_seconds` with `record_clean_view`, and for dynamic runs `pruning/kept`,
    `pruning/kept_fraction`, `pruning/ever_selected_fraction` and `pruning/scoring_seconds`. `push_to_hub` leaves the
    record out of the model repo (`score_record_repo_id=` publishes it to a dataset repo of its own) and the model
    card says what the model was trained on (`pruned_list=`, a dynamic policy).

    Args:
        clean_view_dataset (`datasets.Dataset`, *optional*):
            The training split with the *eval* transform, for `args.record_clean_view`; same rows as the train set.
        record_metadata (`dict`, *optional*):
            Extra JSON-able metadata for the record (e.g. the method parameters a recipe will score with, or the rows
            of the full split a subset came from); `hf-prune select` reads `strategy_params` from it.
        **kwargs: passed to `transformers.Trainer`.

    Example:

    ```python
    >>> from hf_prune import PruningArguments, PruningTrainer, get_strategy
    >>> args = PruningArguments(output_dir="run", num_train_epochs=30, record_signals=["p_target", "loss", "correct"])
    >>> trainer = PruningTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collate_fn)
    >>> trainer.train()
    >>> result = get_strategy("dyn_unc", window=10).select(trainer.score_record, prune_ratio=0.25)
    >>> pruned = result.apply(train_ds)
    ```
    """

    def __init__(self, *args, clean_view_dataset=None, record_metadata: dict[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.record_metadata = dict(record_metadata or {})
        self._epoch_started: float | None = None
        self._clean_view_seconds = 0.0
        self._samples_trained = 0
        self._ever_trained = None
        if self.train_dataset is None:
            raise ValueError("PruningTrainer needs a `train_dataset`: it records per-sample dynamics of training.")
        signals = getattr(self.args, "record_signals", DEFAULT_SIGNALS)
        self.record_clean_view = bool(getattr(self.args, "record_clean_view", False))
        if self.record_clean_view and clean_view_dataset is None:
            raise ValueError(
                "record_clean_view=True needs `clean_view_dataset`: the training split with the eval transform."
            )
        override = getattr(self.args, "record_num_samples", None)
        if is_iterable_dataset(self.train_dataset):
            check_stream_ids(self.train_dataset, "train dataset")  # before training, with the fix in the message
            if override is None:
                raise ValueError(
                    "Training on an IterableDataset: set `record_num_samples` to the unpruned split's length."
                )
            self.num_samples = int(override)
        else:
            self.num_samples = num_unpruned_samples(self.train_dataset, override)
        self._check_ids_fit(self.train_dataset, "train dataset")
        if clean_view_dataset is not None:
            if is_iterable_dataset(clean_view_dataset):
                raise ValueError(
                    "clean_view_dataset must be a map-style dataset (the train split's rows with the eval transform), "
                    "not a stream."
                )
            self._check_ids_fit(clean_view_dataset, "clean view dataset")
        self.clean_view_dataset = clean_view_dataset
        self.data_collator = SampleIdCollator(self.data_collator)
        self.recorder = Recorder(signals, dtype=getattr(self.args, "record_dtype", "float32"))
        self._record: ScoreRecord | None = None
        self._recorded_epochs = 0
        self._trained_rows = 0  # samples this process trained on in the epoch in progress (for the epoch-end check)
        self._step_sample_ids: torch.Tensor | None = None
        self._lock_fd: int | None = None
        self.add_callback(_RecordingCallback(self))
        # Dynamic pruning (hf_prune.dynamic): the per-epoch sampler, its policy and InfoBatch's loss weights.
        self._dynamic = None
        if getattr(self.args, "dynamic_policy", None) is not None:
            self._dynamic = TrainerDynamicPruning(self)

    def _check_ids_fit(self, dataset, name: str) -> None:
        # Refused here, on every rank alike, rather than by the main process alone at the end of the first epoch.
        span = None if is_iterable_dataset(dataset) or not hasattr(dataset, "__len__") else sample_id_range(dataset)
        if span is not None and (span[0] < 0 or span[1] >= self.num_samples):
            raise ValueError(
                f"The {name} has sample ids in [{span[0]}, {span[1]}] but the record holds {self.num_samples} "
                "samples (ids are row positions of the unpruned split). Set `record_num_samples` to the length of the "
                "unpruned split, at least the largest id + 1."
            )

    # ------------------------------------------------------------------ paths

    @property
    def score_record_path(self) -> Path:
        return Path(self.args.output_dir) / getattr(self.args, "score_record_dir", "scores")

    @property
    def score_record(self) -> ScoreRecord:
        """The run's `ScoreRecord` (read-only, memory-mapped), as of the last complete epoch."""
        return ScoreRecord.load(self.score_record_path)

    @property
    def dynamic_pruning(self):
        """The `TrainerDynamicPruning` driving `args.dynamic_policy` (its `sampler`, `policy`, `timing`), or None."""
        return self._dynamic

    # ------------------------------------------------------------------ dataloaders

    def get_train_dataloader(self):
        # Trainer's own training dataloader, over a view that carries each item's sample id beside it.
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        return self.sample_id_dataloader(
            self.train_dataset, "Training", self._train_batch_size, self._get_train_sampler, is_training=True
        )

    def sample_id_dataloader(self, dataset, description: str, batch_size: int | None = None, sampler_fn=None,
                             is_training: bool = False):  # fmt: skip
        """Trainer's dataloader over `dataset` (collator, workers, sharding, `remove_unused_columns`) whose batches
        carry `sample_id`, whatever the dataset's transform or the collator drop. Never cached: unlike
        `get_eval_dataloader` with `dataloader_persistent_workers=True`, it cannot hand back another pass's loader.

        Args:
            dataset: a map-style dataset (ids: row positions, or its raw `sample_id` column) or a stream carrying
                `sample_id`.
            description (`str`): for Trainer's logs.
            batch_size (`int`, *optional*): defaults to the eval batch size.
            sampler_fn (`Callable`, *optional*): defaults to Trainer's eval sampler (sequential, sharded by
                accelerate).
            is_training (`bool`, *optional*): a training loader (worker seeding).
        """
        batch_size = self.args.eval_batch_size if batch_size is None else batch_size
        if sampler_fn is None and not is_training:
            sampler_fn = self._get_eval_sampler
        if is_iterable_dataset(dataset):
            return self._get_dataloader(dataset, description, batch_size, sampler_fn, is_training)
        import datasets

        inner, keep = dataset, None
        if isinstance(dataset, datasets.Dataset):
            inner = self._remove_unused_columns(dataset, description=description)  # as Trainer does, column-wise
        elif self.args.remove_unused_columns:
            self._set_signature_columns_if_needed()
            keep = self._signature_columns  # as Trainer's RemoveColumnsCollator does, item-wise
        wrapped = SampleIdDataset(inner, keep_keys=keep)
        # The sampler sees the dataset itself (lengths for group_by_length, the dynamic sampler's positions).
        inner_sampler = (lambda _view: sampler_fn(inner)) if sampler_fn is not None else None
        return self._get_dataloader(wrapped, description, batch_size, inner_sampler, is_training)

    # ------------------------------------------------------------------ Trainer overrides

    def _set_signature_columns_if_needed(self):
        # `remove_unused_columns` keeps only the model's forward arguments; `sample_id` must survive it.
        super()._set_signature_columns_if_needed()
        if SAMPLE_ID_COLUMN not in self._signature_columns:
            self._signature_columns.append(SAMPLE_ID_COLUMN)

    def _get_train_sampler(self, train_dataset=None):
        # Dynamic pruning swaps Trainer's RandomSampler for a DynamicPruningSampler that yields only the epoch's
        # selection. Its length is the same every epoch, because Trainer computes the steps per epoch, max_steps and
        # the LR schedule once from len(dataloader). It is identical on every rank (seed, epoch, gathered score table)
        # and a multiple of world_size x batch, so accelerate's BatchSamplerShard deals each selected sample to
        # exactly one rank once per epoch. See DynamicPruningSampler for the cross-rank contract.
        if self._dynamic is not None:
            return self._dynamic.sampler
        return super()._get_train_sampler(train_dataset)

    # Varying epoch lengths (InfoBatch as published, RS2, SeTa): Trainer plans steps per epoch, max_steps and the LR
    # schedule once from len(dataloader). These four overrides hand those decisions to the dynamic pruning hooks
    # (hf_prune.dynamic.trainer_hooks explains the plan); for every other run they return Trainer's own values.

    def set_initial_training_values(self, args, dataloader):
        values = super().set_initial_training_values(args, dataloader)
        if self._dynamic is not None:
            values = self._dynamic.initial_training_values(args, dataloader, values)
        return values

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint,
                             trial):  # fmt: skip
        epochs_trained, steps_trained = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        if self._dynamic is not None and resume_from_checkpoint is not None:
            epochs_trained, steps_trained = self._dynamic.resume_position(
                self.state.global_step, epochs_trained, steps_trained
            )
        return epochs_trained, steps_trained

    def _run_epoch(self, *args, **kwargs):
        if self._dynamic is not None:
            bound = inspect.signature(super()._run_epoch).bind(*args, **kwargs)
            a = bound.arguments
            a["steps_in_epoch"], a["num_update_steps_per_epoch"] = self._dynamic.epoch_lengths(
                a["epoch"], a["train_dataloader"], a["steps_in_epoch"], a["num_update_steps_per_epoch"]
            )
            args, kwargs = bound.args, bound.kwargs
        return super()._run_epoch(*args, **kwargs)

    def create_scheduler(self, num_training_steps, optimizer=None):
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if self._dynamic is not None:
            self.lr_scheduler = self._dynamic.wrap_scheduler(scheduler, self._created_lr_scheduler)
        return self.lr_scheduler

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        # Set up (or restore) the record before Trainer's loop starts; the loop itself is untouched.
        checkpoint = self._resolve_checkpoint(resume_from_checkpoint)
        window = getattr(self.args, "dyn_unc_window", None)
        if window is not None and self.args.max_steps <= 0:
            check_window_fits(window, self.args.num_train_epochs)
        self._prepare_record(checkpoint)
        try:
            if self._dynamic is not None:
                self._dynamic.start(checkpoint)  # fresh policy table, or the checkpoint's (same selections on resume)
            self._samples_trained, self._ever_trained = 0, None
            output = super().train(resume_from_checkpoint=checkpoint, trial=trial, **kwargs)
            self._finish_record()
        finally:
            self._release_lock()
        # Trainer's train_samples_per_second counts len(dataset) per epoch; a pruned run trains fewer.
        runtime = output.metrics.get("train_runtime")
        output.metrics["train_samples_trained"] = self._samples_trained
        if runtime:
            output.metrics["train_samples_trained_per_second"] = round(self._samples_trained / runtime, 3)
        return output

    def training_step(self, model, inputs, num_items_in_batch=None):
        # The model must not see `sample_id`; compute_loss picks it up from here.
        ids = inputs.pop(SAMPLE_ID_COLUMN, None)
        if ids is None:
            raise ValueError(
                f"A training batch arrived without `{SAMPLE_ID_COLUMN}` (keys: {list(inputs)}). PruningTrainer's "
                "training dataloader adds it; an override of `get_train_dataloader` must build its loader with "
                "`self.sample_id_dataloader(...)` and keep `self.data_collator`."
            )
        self._step_sample_ids = ids
        self._trained_rows += ids.shape[0]  # a shape, not a value: no host synchronisation
        try:
            return super().training_step(model, inputs, num_items_in_batch)
        finally:
            self._step_sample_ids = None

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = {k: v for k, v in inputs.items() if k != SAMPLE_ID_COLUMN}
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = self._step_sample_ids
        weighted = ids is not None and model.training and self._dynamic is not None and self._dynamic.weighted
        if not weighted and (ids is None or not model.training or self.record_clean_view):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = self._labels_of(inputs)
        loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        if weighted:
            # InfoBatch: the model's loss is already a batch mean, so the per-sample 1/(1-r) weights are applied to
            # a cross-entropy recomputed from the logits with reduction="none" (hf_prune.dynamic.loss).
            loss = self._dynamic.weighted_loss(ids, logits_of(outputs), labels, num_items_in_batch)
        if not self.record_clean_view:
            self.recorder.add(ids, logits_of(outputs), labels)
        return (loss, outputs) if return_outputs else loss

    def _save_checkpoint(self, model, trial):
        # The record (complete epochs) and every rank's rows of the epoch in progress go into the checkpoint *before*
        # Trainer saves it and rotates older checkpoints away (save_total_limit), so the newest checkpoint is never
        # one without a record while the last one with a record is already deleted.
        checkpoint = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        error = None
        try:
            self._save_record_to_checkpoint(checkpoint)
        except Exception as err:  # noqa: BLE001 - re-raised on every rank just below
            error = err
        raise_on_every_rank(error, self.accelerator, f"saving the score record into {checkpoint}")
        super()._save_checkpoint(model, trial)

    # ------------------------------------------------------------------ recording

    def _labels_of(self, inputs) -> torch.Tensor:
        for name in (*self.label_names, "labels", "label"):
            if name in inputs:
                return inputs[name]
        raise ValueError(
            f"The training batch has no labels (keys: {list(inputs)}; looked for "
            f"{[*self.label_names, 'labels', 'label']}). PruningTrainer records signals against the hard class label, read from the batch as Trainer reads "
            "it: make the collator return `labels`, or name your label key in `label_names`."
        )

    def _record_signals(self) -> list[str]:
        return self.recorder.signals + (self._dynamic.record_signals if self._dynamic is not None else [])

    def _total_train_batch(self) -> int:
        args = self.args
        return self.accelerator.num_processes * args.per_device_train_batch_size * args.gradient_accumulation_steps

    def _record_metadata(self) -> dict[str, Any]:
        model = self.accelerator.unwrap_model(self.model) if self.model is not None else None
        config = getattr(model, "config", None)
        ds = self.train_dataset
        return {
            "num_samples": self.num_samples,
            "signals": self.recorder.signals,
            "record_dtype": self.recorder.dtype,
            "dataset_fingerprint": getattr(ds, "_fingerprint", None),
            "dataset_row_fingerprint": self._row_fingerprint(),
            **{f"dataset_{key}": value for key, value in _source_of(ds).items() if key != "fingerprint"},
            "dataset_num_rows": len(ds) if hasattr(ds, "__len__") else None,
            "model": {
                "class": type(model).__name__ if model is not None else None,
                "name_or_path": getattr(config, "_name_or_path", None) or None,
                "architecture": getattr(config, "architecture", None),
                "num_parameters": int(sum(p.numel() for p in model.parameters())) if model is not None else None,
            },
            "clean_view": self.record_clean_view,
            "world_size": self.accelerator.num_processes,
            "total_train_batch_size": self._total_train_batch(),
            "seed": self.args.seed,
            "num_train_epochs": self.args.num_train_epochs,
            "args": json.loads(self.args.to_json_string()),
            "hf_prune_version": __version__,
            **self.record_metadata,
        }

    def _row_fingerprint(self) -> str | None:
        # Only the unpruned split itself identifies the rows the ids index; a view carrying `sample_id` does not.
        ds = self.train_dataset
        columns = getattr(ds, "column_names", None) or []
        if SAMPLE_ID_COLUMN in columns or not hasattr(ds, "__len__") or len(ds) != self.num_samples:
            return None
        return row_fingerprint(ds)

    # ---- before training: the checkpoint, the lock, the live record

    def _resolve_checkpoint(self, resume_from_checkpoint) -> str | None:
        """The checkpoint to resume from, refused (as Trainer would) *before* the record is touched."""
        if resume_from_checkpoint is None or resume_from_checkpoint is False:
            return None
        if resume_from_checkpoint is True:
            output_dir = self.args.output_dir
            last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
            if last is None:
                raise ValueError(f"No valid checkpoint found in output directory ({output_dir})")
            return last
        if not os.path.isdir(resume_from_checkpoint):
            raise ValueError(f"Can't find a valid checkpoint at {resume_from_checkpoint}")
        return str(resume_from_checkpoint)

    def _prepare_record(self, checkpoint: str | None) -> None:
        accelerator = self.accelerator
        error = None
        if accelerator.is_main_process:
            try:
                self._acquire_lock()
                saved = self._verify_checkpoint(checkpoint) if checkpoint else None
                self._install_record(saved)
                if checkpoint and saved is None:
                    self._skip_epochs_before(checkpoint)
            except Exception as err:  # noqa: BLE001 - re-raised on every rank just below
                error = err
        try:
            raise_on_every_rank(error, accelerator, "preparing the score record")
        except BaseException:
            self._release_lock()
            raise
        path = self.score_record_path
        with open(path / RECORD_FILE) as f:
            self._recorded_epochs = json.load(f)["num_epochs"]
        self._record = ScoreRecord.load(path, writable=True) if accelerator.is_main_process else None
        self.recorder.reset()
        self._trained_rows = 0
        error = None
        try:
            if checkpoint is not None and (Path(checkpoint) / CHECKPOINT_PARTIAL_DIR).is_dir():
                self._load_partial_rows(Path(checkpoint) / CHECKPOINT_PARTIAL_DIR)
        except Exception as err:  # noqa: BLE001 - re-raised on every rank just below
            error = err
        try:
            raise_on_every_rank(error, accelerator, f"loading the rows of the epoch in progress from {checkpoint}")
        except BaseException:
            self._release_lock()
            raise

    def _acquire_lock(self) -> None:
        """Holds `<output_dir>/<score_record_dir>.lock` while training (released by the OS if the process dies)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            return
        path = self.score_record_path
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

    def _release_lock(self) -> None:
        if self._lock_fd is None:
            return
        import fcntl

        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._lock_fd = None

    def _verify_checkpoint(self, checkpoint: str) -> Path:
        """Checks the checkpoint's record against this run; returns its folder. Raises before anything is touched."""
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
        if meta["signals"] != self._record_signals():
            problems.append(f"signals {meta['signals']} (this run records {self._record_signals()})")
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
        saved_fp, now_fp = stored.get("dataset_row_fingerprint"), self._row_fingerprint()
        if saved_fp and now_fp and saved_fp != now_fp:
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
            self._check_partial_geometry(partial, checkpoint)
        return saved

    def _check_partial_geometry(self, partial: Path, checkpoint: str) -> None:
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
        total = self._total_train_batch()
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

    def _install_record(self, saved: Path | None) -> None:
        """Makes `score_record_path` the record this run continues (the checkpoint's copy) or a new one. A record
        that is there already is moved aside when complete (or when asked to overwrite), never deleted; a fresh run
        onto an existing record is refused unless `overwrite_score_record=True`."""
        path = self.score_record_path
        if saved is not None:
            tmp = path.with_name(path.name + ".resume-tmp")
            if tmp.exists():
                shutil.rmtree(tmp)
            ScoreRecord.copy(saved, tmp)  # a real copy: the resumed run rewrites rows past the checkpoint
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
        metadata = self._record_metadata()
        ScoreRecord.create(path, self.num_samples, self._record_signals(), capacity, metadata, self.recorder.dtype)

    def _skip_epochs_before(self, checkpoint: str) -> None:
        """A new record started from a checkpoint that had none: the epochs before the checkpoint's epoch in progress
        are written empty (NaN, nothing to recover), so that its saved rows land in their own epoch."""
        meta_file = Path(checkpoint) / CHECKPOINT_PARTIAL_DIR / PARTIAL_META_FILE
        if not meta_file.exists():
            return  # no rows of an epoch in progress: `_align_record_to_epoch` fills the gap when Trainer starts
        record = ScoreRecord.load(self.score_record_path, writable=True)
        for epoch in range(int(json.loads(meta_file.read_text()).get("recorded_epochs", 0))):
            writer = record.epoch_writer(epoch)
            writer.commit()

    def _load_partial_rows(self, partial: Path) -> None:
        """Each rank takes back its own rows of the epoch in progress; after a change of world size the main
        process takes every saved rank's rows (the epoch-end de-duplication keeps each sample once)."""
        meta_file = partial / PARTIAL_META_FILE
        files = sorted(partial.glob("rank*.pt"), key=lambda p: int(p.stem[4:]))
        world = json.loads(meta_file.read_text())["world_size"] if meta_file.exists() else len(files)
        if world == self.accelerator.num_processes:
            files = [partial / f"rank{self.accelerator.process_index}.pt"]
        elif not self.accelerator.is_main_process:
            files = []
        for file in files:
            if not file.exists():
                continue
            state = torch.load(file, weights_only=True)
            before = self.recorder.num_rows
            self.recorder.load_state_dict(state, device=self.args.device, append=True)
            self._trained_rows += int(state.get("trained", self.recorder.num_rows - before))

    def _finish_record(self) -> None:
        if self._record is not None:
            self._record.metadata["complete"] = True
            self._record.commit_metadata()

    # ---- checkpoints

    def _save_record_to_checkpoint(self, checkpoint: Path) -> None:
        is_main = self.accelerator.is_main_process
        partial = checkpoint / CHECKPOINT_PARTIAL_DIR
        partial.mkdir(parents=True, exist_ok=True)
        if is_main and self._record is not None:
            _link_record(self._record.path, checkpoint / CHECKPOINT_RECORD_DIR)
        if self._dynamic is not None and is_main:
            self._dynamic.save(checkpoint / "dynamic_pruning")  # identical on every rank: the main one writes it
        state = self.recorder.state_dict()
        state["trained"] = self._trained_rows
        rank_file = partial / f"rank{self.accelerator.process_index}.pt"
        torch.save(state, rank_file.with_suffix(".tmp"))
        os.replace(rank_file.with_suffix(".tmp"), rank_file)
        if is_main:
            meta = {
                "world_size": self.accelerator.num_processes,
                "per_device_train_batch_size": self.args.per_device_train_batch_size,
                "gradient_accumulation_steps": self.args.gradient_accumulation_steps,
                "total_train_batch_size": self._total_train_batch(),
                "recorded_epochs": self._recorded_epochs,
            }
            (partial / PARTIAL_META_FILE).write_text(json.dumps(meta, indent=2))

    # ---- epochs

    def _align_record_to_epoch(self, epoch: int) -> None:
        # Epoch k of training is row k of the record. After resuming from a checkpoint taken on an epoch's last
        # step (before its end), Trainer starts at the next epoch: close the restored epoch first.
        while self._recorded_epochs < epoch:
            self._end_recording_epoch()

    def _end_recording_epoch(self) -> None:
        epoch = self._recorded_epochs
        train_seconds = time.perf_counter() - self._epoch_started if self._epoch_started is not None else None
        self._epoch_started = None
        if self.record_clean_view:
            started = time.perf_counter()
            self._clean_view_pass()
            self._clean_view_seconds = time.perf_counter() - started
        raise_on_every_rank(self._check_epoch_rows(epoch), self.accelerator, f"checking epoch {epoch}'s rows")
        if self._dynamic is not None:
            # The policy's score table is the same on every rank: (id, label, loss) triples of every rank's rows.
            table = None
            if self._dynamic.uses_train_losses:
                table = self.recorder.gather(self.accelerator, signals=["loss"])
            self._dynamic.end_epoch(epoch, table)
        self._write_epoch(epoch)
        self.log_pruning_metrics(epoch, train_seconds)
        self._recorded_epochs += 1
        self.recorder.reset()
        self._trained_rows = 0

    def _check_epoch_rows(self, epoch: int) -> Exception | None:
        """What is wrong with this rank's rows of `epoch` (or None). Once per epoch: host transfers are fine here."""
        if not self.record_clean_view and self.recorder.num_rows != self._trained_rows:
            return RuntimeError(
                f"Epoch {epoch}: this process trained on {self._trained_rows} samples but recorded "
                f"{self.recorder.num_rows}. The record would be incomplete or mis-keyed, so training stops. (An override "
                "of `compute_loss` or `training_step` must call `super()`, which records the batch.)"
            )
        ids = self.recorder.rows()[0]
        if ids.numel():
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.num_samples:
                return ValueError(
                    f"Epoch {epoch}: sample ids span [{low}, {high}] but the record holds {self.num_samples} samples "
                    "(ids are row positions of the unpruned split). Set `record_num_samples` to that split's length."
                )
        return None

    def _write_epoch(self, epoch: int) -> None:
        """Streams every rank's rows to the main process, which writes the epoch row segment by segment. The main
        process's errors (a full disk, a label conflict) are raised on every rank, after the stream is drained."""
        accelerator = self.accelerator
        writer, error = None, None
        if accelerator.is_main_process:
            try:
                writer = self._record.epoch_writer(epoch)
                if self._dynamic is not None:
                    for name, row in self._dynamic.record_rows(epoch).items():
                        writer.set_row(name, row)
                    self._record.metadata["dynamic"] = self._dynamic.metadata()
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
                unpacked = [self.recorder.unpack_rows(rows) for rows in rank_rows]
                writer.write(start, stop, rank_ids, [u[0] for u in unpacked], [u[1] for u in unpacked],
                             signals=self.recorder.signals)  # fmt: skip
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

    # ------------------------------------------------------------------ Hub

    def _hub_ignore_patterns(self) -> list[str]:
        # Trainer's own patterns, plus the record and its checkpoint copies: a model repo gets the model, not the
        # record (publish that with `score_record_repo_id=`, or a pruned list with `hf-prune push`).
        # (fnmatch: `*` also matches `/`; the checkpoint folder is uploaded on its own with hub_strategy="checkpoint")
        record = getattr(self.args, "score_record_dir", "scores").strip("/")
        ours = [CHECKPOINT_RECORD_DIR, CHECKPOINT_PARTIAL_DIR, "dynamic_pruning"]
        return ["_*", f"{PREFIX_CHECKPOINT_DIR}-*", f"{record}/*", *[f"{d}/*" for d in ours], *[f"*/{d}/*" for d in ours]]

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        *,
        score_record_repo_id: str | None = None,
        **kwargs,
    ):
        """`Trainer.push_to_hub`, except that the score record stays out of the model repo and the model card says
        how the model's training set was pruned (`create_model_card`).

        Args:
            score_record_repo_id (`str`, *optional*):
                A dataset repo to publish the score record to (its own repo, not the model's), e.g. to score it later
                with other strategies.
            kwargs: as `Trainer.push_to_hub`, plus `pruned_list=` / `index_repo_id=` / `full_data_metrics=` for the
                card (see `create_model_card`).
        """
        from huggingface_hub import HfApi

        # Trainer's own flow (save, card, one upload), with the record left out of the upload.
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        model_name = kwargs.pop("model_name", None)
        if model_name is None and self.args.should_save:
            model_name = (self.args.hub_model_id or self.args.output_dir).rstrip("/").split("/")[-1]
        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None:
            self.init_hf_repo(token=token, private=private)
        self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        record_url = None
        if score_record_repo_id is not None:
            api = HfApi(token=token)
            api.create_repo(score_record_repo_id, repo_type="dataset", private=private, exist_ok=True)
            record_url = api.upload_folder(
                repo_id=score_record_repo_id, repo_type="dataset", folder_path=str(self.score_record_path),
                path_in_repo="scores", commit_message="Score record (hf_prune PruningTrainer)",
            )  # fmt: skip
        self.create_model_card(model_name=model_name, score_record_repo_id=score_record_repo_id, **kwargs)
        self._finish_current_push()
        commit = HfApi(token=token).upload_folder(
            repo_id=self.hub_model_id, folder_path=self.args.output_dir, commit_message=commit_message,
            run_as_future=not blocking, ignore_patterns=self._hub_ignore_patterns(),
            revision=revision if revision is not None else self.args.hub_revision,
        )  # fmt: skip
        if record_url is not None:
            logger.info(f"Score record pushed to {score_record_repo_id}: {record_url}")
        return commit

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Trainer pushes output_dir (and the checkpoint) at every save with hub_strategy="every_save"/"checkpoint":
        # the same uploads here, without the record. Model files are copied as Trainer copies them.
        from huggingface_hub import HfApi
        from transformers.trainer_utils import HubStrategy
        from transformers.utils import CONFIG_NAME, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME

        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        if not self.args.hub_always_push and self.push_in_progress is not None and not self.push_in_progress.is_done():
            return
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        output_dir = self.args.output_dir
        files = [CONFIG_NAME, WEIGHTS_NAME, SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME]
        index = Path(checkpoint_folder) / SAFE_WEIGHTS_INDEX_NAME
        if index.is_file():
            files += sorted(set(json.loads(index.read_text())["weight_map"].values()))
        for name in files:
            if (Path(checkpoint_folder) / name).is_file():
                shutil.copy(Path(checkpoint_folder) / name, Path(output_dir) / name)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        message = f"Training in progress, step {self.state.global_step}"
        api = HfApi(token=self.args.hub_token)
        jobs = [api.upload_folder(repo_id=self.hub_model_id, folder_path=output_dir, commit_message=message,
                                  run_as_future=True, ignore_patterns=self._hub_ignore_patterns(),
                                  revision=self.args.hub_revision)]  # fmt: skip
        if self.args.hub_strategy in (HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS):
            path_in_repo = "last-checkpoint" if self.args.hub_strategy == HubStrategy.CHECKPOINT else Path(checkpoint_folder).name
            jobs.append(api.upload_folder(repo_id=self.hub_model_id, folder_path=checkpoint_folder,
                                          path_in_repo=path_in_repo, commit_message=message + ", checkpoint",
                                          run_as_future=True, ignore_patterns=self._hub_ignore_patterns()[2:],
                                          revision=self.args.hub_revision))  # fmt: skip
        if self.push_in_progress is None or self.push_in_progress.is_done():
            self.push_in_progress = PushInProgress(jobs)
        else:
            self.push_in_progress.jobs.extend(jobs)

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        *,
        pruned_list=None,
        index_repo_id: str | None = None,
        full_data_metrics: dict[str, float] | None = None,
        score_record_repo_id: str | None = None,
    ) -> None:
        """Trainer's model card (`TrainingSummary`: hyperparameters, results, framework versions) with what it cannot
        know about pruning: a "Trained on a pruned dataset" section (list link, method, ratio, kept count), the
        `dataset-pruning` / `hf-prune` / method tags, the source dataset and the list in `datasets:`. A model built
        from config reads "trained from scratch", not "fine-tuned version of []".

        Args:
            pruned_list (`PruneResult`, *optional*): the list the training set was made with (`result.apply(ds)`).
            index_repo_id (`str`, *optional*): the Hub dataset repo of that list.
            full_data_metrics (`dict`, *optional*): the same metrics for full-data training, for a comparison table.
            score_record_repo_id (`str`, *optional*): where the score record was published.
            Other arguments: as `Trainer.create_model_card`.
        """
        from huggingface_hub import ModelCard
        from transformers.modelcard import TrainingSummary

        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        name_or_path = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
        if finetuned_from is None and name_or_path and not os.path.isdir(name_or_path):
            finetuned_from = name_or_path
        source = None
        if pruned_list is not None:
            source = (pruned_list.provenance.get("source") or {}).get("repo_id")
        source = source or self.record_metadata.get("dataset_repo_id")
        if dataset is None and source:
            dataset = [source]
        if dataset_tags is None and (dataset is not None or not getattr(self.train_dataset, "builder_name", None)):
            # Trainer names the dataset after its builder; a dataset built in memory has none ("the None dataset")
            dataset_tags = dataset if dataset is not None else []
        dynamic = None
        if self._dynamic is not None:
            dynamic = {"policy": self.args.dynamic_policy, "prune_ratio": self.args.dynamic_prune_ratio,
                       "pruning_period": self.args.pruning_period}  # fmt: skip
        metrics = {k.removeprefix("eval_"): v for k, v in (self.state.log_history or [{}])[-1].items() if k.startswith("eval_")}
        section, extra_tags, extra_datasets = pruning_card_section(
            pruned_list=pruned_list, index_repo_id=index_repo_id, dynamic=dynamic,
            num_trained=len(self.train_dataset) if hasattr(self.train_dataset, "__len__") else None,
            num_samples=self.num_samples, record_repo_id=score_record_repo_id,
            full_data_metrics=full_data_metrics, metrics=metrics,
        )  # fmt: skip
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        tags += [t for t in extra_tags if t not in tags]
        summary = TrainingSummary.from_trainer(
            self, language=language, license=license, tags=tags, model_name=model_name, finetuned_from=finetuned_from,
            tasks=tasks, dataset_tags=dataset_tags, dataset=dataset, dataset_args=dataset_args,
        )  # fmt: skip
        if not finetuned_from:
            summary.finetuned_from = None  # from_trainer reads "" as a base model: "fine-tuned version of []"
        card = ModelCard(summary.to_model_card())
        card.data.datasets = list(dict.fromkeys([*(card.data.datasets or []), *extra_datasets])) or None
        heading = "\n## Model description"
        text = card.text
        card.text = text.replace(heading, "\n" + section + heading, 1) if heading in text else text + "\n" + section
        card.save(os.path.join(self.args.output_dir, "README.md"))

    # ------------------------------------------------------------------ telemetry

    def log_pruning_metrics(self, epoch: int, train_seconds: float | None) -> dict[str, float]:
        """Logs epoch `epoch`'s pruning telemetry through `Trainer.log` (every `report_to` integration sees it).

        Every process calls it (one small all-reduce of the samples trained). `pruning/recorded_samples` is read
        from the epoch row the main process wrote (other processes log the samples trained instead; only the main
        process reports to TensorBoard and the like).

        Args:
            epoch (`int`): the epoch just written to the record.
            train_seconds (`float`, *optional*): wall time of the epoch's training steps.

        Returns:
            `dict`: what was logged (`pruning/...` keys).
        """
        trained = self._trained_rows  # this process's samples, padding duplicates of distributed samplers included
        if self.accelerator.num_processes > 1:
            total = torch.tensor([trained], dtype=torch.long, device=self.accelerator.device)
            trained = int(self.accelerator.reduce(total, reduction="sum").item())
        recorded = trained
        if self._record is not None and self.recorder.signals:
            row = np.asarray(self._record.signal(self.recorder.signals[0])[epoch])
            recorded = int(np.isfinite(row).sum())
        logs: dict[str, float] = {"pruning/recorded_samples": recorded}  # counts stay ints in console logs
        if self.record_clean_view:
            logs["pruning/clean_view_seconds"] = round(self._clean_view_seconds, 4)
        self._samples_trained += trained
        if train_seconds:
            logs["pruning/samples_trained_per_second"] = round(trained / train_seconds, 3)
        if self._dynamic is not None:
            timing = self._dynamic.timing[-1] if self._dynamic.timing else {}
            if self._ever_trained is None:
                self._ever_trained = np.zeros(self.num_samples, dtype=bool)
            selection = getattr(self._dynamic.sampler, "selection", None)
            if getattr(selection, "ids", None) is not None:
                chosen = np.asarray(self._dynamic.sample_ids[selection.ids], dtype=np.int64)
                self._ever_trained[chosen[(chosen >= 0) & (chosen < self.num_samples)]] = True
            kept = int(timing.get("num_selected", trained))
            logs["pruning/kept"] = kept
            logs["pruning/kept_fraction"] = round(kept / self.num_samples, 6)
            logs["pruning/ever_selected_fraction"] = round(float(self._ever_trained.mean()), 6)
            logs["pruning/scoring_seconds"] = round(float(timing.get("scoring_s", 0.0)), 4)
        # Trainer.log resets control.should_log; at an epoch end that would swallow Trainer's own epoch log (loss).
        should_log = self.control.should_log
        self.log(dict(logs))
        self.control.should_log = should_log
        return logs

    @torch.no_grad()
    def _clean_view_pass(self) -> None:
        """The authors' variant: predictions on the un-augmented training set, model in eval mode."""
        self.recorder.reset()
        model = self.model_wrapped if self.model_wrapped is not None else self.model
        was_training = model.training
        model.eval()
        error = None
        try:
            for batch in self.sample_id_dataloader(self.clean_view_dataset, "Clean view"):
                batch = self._prepare_inputs(batch)
                ids = batch.pop(SAMPLE_ID_COLUMN)
                labels = self._labels_of(batch)
                with self.autocast_smart_context_manager():
                    outputs = model(**batch)
                self.recorder.add(ids, logits_of(outputs), labels)
        except Exception as err:  # noqa: BLE001 - a map-style eval loader holds no collective: safe to stop here
            error = err
        finally:
            model.train(was_training)
        raise_on_every_rank(error, self.accelerator, "the clean-view pass")


def _source_of(dataset) -> dict[str, Any]:
    """Split, config and Hub revision of a `datasets.Dataset`, for the record's provenance (exports read them)."""
    try:
        return infer_source(dataset)
    except Exception:  # provenance is best effort; never fail a training run for it
        return {}


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
            shutil.copy2(item, tmp / item.name)  # labels are updated in place
            continue
        try:
            os.link(item, tmp / item.name)
        except OSError:
            shutil.copy2(item, tmp / item.name)
    shutil.copy2(src / RECORD_FILE, tmp / RECORD_FILE)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
