"""`PruningTrainer`: a `transformers.Trainer` that records per-sample training dynamics every epoch.

```
train dataset --(sample_id column)--> collator keeps sample_id --> training_step pops it
      compute_loss: logits + labels --> Recorder.add (on device, no_grad)
      on_epoch_end (all ranks): Recorder.gather --> main process: ScoreRecord.write_epoch (atomic)
      _save_checkpoint: record + each rank's un-gathered rows go into checkpoint-N/
      train(resume_from_checkpoint=...): record and rows come back, so the record equals an uninterrupted run's
```
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import logging

from .config import PruningArguments
from .dynamic.trainer_hooks import TrainerDynamicPruning
from .provenance import infer_source
from .record import RECORD_FILE, ScoreRecord
from .recording import DEFAULT_SIGNALS, Recorder, logits_of
from .sample_ids import (
    SAMPLE_ID_COLUMN,
    KeepSampleIdCollator,
    add_sample_ids,
    check_has_labels,
    is_iterable_dataset,
    num_unpruned_samples,
)
from .version import __version__


__all__ = ["PruningArguments", "PruningTrainer"]

logger = logging.get_logger(__name__)

CHECKPOINT_RECORD_DIR = "score_record"
CHECKPOINT_PARTIAL_DIR = "score_record_partial"


class _RecordingCallback(TrainerCallback):
    """Hands epoch boundaries to the trainer's recorder; every process runs these (they gather)."""

    def __init__(self, trainer: PruningTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        epoch = int(math.floor(state.epoch + 1e-6)) if state.epoch else 0
        self.trainer._align_record_to_epoch(epoch)
        if getattr(self.trainer, "_dynamic", None) is not None:
            # Before Trainer calls set_epoch and iterates: run the scoring pass if due, draw the epoch's selection.
            self.trainer._dynamic.begin_epoch(epoch)

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer._end_recording_epoch()


class PruningTrainer(Trainer):
    """A drop-in `transformers.Trainer` that records per-sample training dynamics into a `ScoreRecord`.

    Everything `Trainer` takes, it takes; `args` may be a `PruningArguments` (a plain `TrainingArguments` records
    the default signals). Each epoch it records, for every training sample seen, the signals in
    `args.record_signals` computed from the logits of the training step itself (no extra forward pass), gathered
    across processes and keyed by `sample_id` (the row position in the unpruned train split, added if absent).
    The record is written to `<output_dir>/<score_record_dir>` after every epoch and into every checkpoint;
    `train(resume_from_checkpoint=...)` continues it.

    Args:
        clean_view_dataset (`datasets.Dataset`, *optional*):
            The training split with the *eval* transform, for `args.record_clean_view`; same rows as the train set.
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

    def __init__(self, *args, clean_view_dataset=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.train_dataset is None:
            raise ValueError("PruningTrainer needs a `train_dataset`: it records per-sample dynamics of training.")
        check_has_labels(self.train_dataset, "train dataset")
        self.train_dataset = add_sample_ids(self.train_dataset, "train dataset")
        signals = getattr(self.args, "record_signals", DEFAULT_SIGNALS)
        self.record_clean_view = bool(getattr(self.args, "record_clean_view", False))
        if self.record_clean_view and clean_view_dataset is None:
            raise ValueError(
                "record_clean_view=True needs `clean_view_dataset`: the training split with the eval transform."
            )
        if clean_view_dataset is not None:
            check_has_labels(clean_view_dataset, "clean view dataset")
        self.clean_view_dataset = add_sample_ids(clean_view_dataset, "clean view dataset")
        self.num_samples = (
            None
            if is_iterable_dataset(self.train_dataset) and getattr(self.args, "record_num_samples", None) is None
            else num_unpruned_samples(self.train_dataset, getattr(self.args, "record_num_samples", None))
        )
        if self.num_samples is None:
            raise ValueError("Training on an IterableDataset: set `record_num_samples` to the unpruned split's length.")
        self.data_collator = KeepSampleIdCollator(self.data_collator)
        self.recorder = Recorder(signals)
        self._record: ScoreRecord | None = None
        self._recorded_epochs = 0
        self._step_sample_ids: torch.Tensor | None = None
        self.add_callback(_RecordingCallback(self))
        # Dynamic pruning (hf_prune.dynamic): the per-epoch sampler, its policy and InfoBatch's loss weights.
        self._dynamic = None
        if getattr(self.args, "dynamic_policy", None) is not None:
            self._dynamic = TrainerDynamicPruning(self)

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
        checkpoint = resume_from_checkpoint
        if isinstance(checkpoint, bool):
            checkpoint = get_last_checkpoint(self.args.output_dir) if checkpoint else None
        self._prepare_record(checkpoint)
        if self._dynamic is not None:
            self._dynamic.start(checkpoint)  # fresh policy table, or the checkpoint's (same selections on resume)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)

    def training_step(self, model, inputs, num_items_in_batch=None):
        # The model must not see `sample_id`; compute_loss picks it up from here.
        self._step_sample_ids = inputs.pop(SAMPLE_ID_COLUMN, None)
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
        # A checkpoint carries the record (complete epochs) and every rank's rows of the epoch in progress, so
        # that resuming from it reproduces an uninterrupted run's record.
        super()._save_checkpoint(model, trial)
        checkpoint = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.accelerator.is_main_process and self._record is not None:
            _link_record(self._record.path, checkpoint / CHECKPOINT_RECORD_DIR)
        if self._dynamic is not None and self.accelerator.is_main_process:
            self._dynamic.save(checkpoint / "dynamic_pruning")  # identical on every rank: the main one writes it
        partial = checkpoint / CHECKPOINT_PARTIAL_DIR
        partial.mkdir(parents=True, exist_ok=True)
        torch.save(self.recorder.state_dict(), partial / f"rank{self.accelerator.process_index}.pt")
        self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------ recording

    def _labels_of(self, inputs) -> torch.Tensor:
        for name in (*self.label_names, "labels", "label"):
            if name in inputs:
                return inputs[name]
        raise ValueError(
            f"The training batch has no labels (keys: {list(inputs)}). PruningTrainer records signals against the "
            "hard class label: make the collator return `labels`."
        )

    def _record_metadata(self) -> dict[str, Any]:
        model = self.accelerator.unwrap_model(self.model) if self.model is not None else None
        config = getattr(model, "config", None)
        ds = self.train_dataset
        return {
            "num_samples": self.num_samples,
            "signals": self.recorder.signals,
            "dataset_fingerprint": getattr(ds, "_fingerprint", None),
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
            "seed": self.args.seed,
            "num_train_epochs": self.args.num_train_epochs,
            "args": json.loads(self.args.to_json_string()),
            "hf_prune_version": __version__,
        }

    def _prepare_record(self, checkpoint: str | None) -> None:
        path = self.score_record_path
        saved = Path(checkpoint) / CHECKPOINT_RECORD_DIR if checkpoint else None
        if self.accelerator.is_main_process:
            if path.exists():
                shutil.rmtree(path)
            if saved is not None and (saved / RECORD_FILE).exists():
                # A real copy (not links): the resumed run rewrites rows past the checkpoint.
                shutil.copytree(saved, path)
            else:
                if saved is not None:
                    logger.warning(f"{checkpoint} has no score record; the record starts empty from this point.")
                capacity = int(math.ceil(self.args.num_train_epochs)) if self.args.max_steps <= 0 else 1
                signals = self.recorder.signals + (self._dynamic.record_signals if self._dynamic is not None else [])
                ScoreRecord.create(path, self.num_samples, signals, capacity, self._record_metadata())
        self.accelerator.wait_for_everyone()
        with open(path / RECORD_FILE) as f:
            self._recorded_epochs = json.load(f)["num_epochs"]
        self._record = ScoreRecord.load(path, writable=True) if self.accelerator.is_main_process else None
        self.recorder.reset()
        partial = Path(checkpoint) / CHECKPOINT_PARTIAL_DIR / f"rank{self.accelerator.process_index}.pt" if checkpoint else None
        if partial is not None and partial.exists():
            self.recorder.load_state_dict(torch.load(partial, weights_only=True), device=self.args.device)

    def _align_record_to_epoch(self, epoch: int) -> None:
        # Epoch k of training is row k of the record. After resuming from a checkpoint taken on an epoch's last
        # step (before its end), Trainer starts at the next epoch: close the restored epoch first.
        while self._recorded_epochs < epoch:
            self._end_recording_epoch()

    def _end_recording_epoch(self) -> None:
        if self.record_clean_view:
            self._clean_view_pass()
        ids, labels, values = self.recorder.gather(self.accelerator)
        if self._dynamic is not None:
            # Feeds the gathered losses to the policy (train_loss scoring) and adds the epoch's `selected` mask.
            known = self._record.labels if self._record is not None else None
            ids, labels, values = self._dynamic.end_epoch(self._recorded_epochs, ids, labels, values, known)
            if self._record is not None:
                self._record.metadata["dynamic"] = self._dynamic.metadata()
        if self.accelerator.is_main_process:
            self._record.write_epoch(self._recorded_epochs, ids, values, labels)
        self._recorded_epochs += 1
        self.recorder.reset()
        self.accelerator.wait_for_everyone()

    @torch.no_grad()
    def _clean_view_pass(self) -> None:
        """The authors' variant: predictions on the un-augmented training set, model in eval mode."""
        self.recorder.reset()
        model = self.model_wrapped if self.model_wrapped is not None else self.model
        was_training = model.training
        model.eval()
        dataloader = self.get_eval_dataloader(self.clean_view_dataset)
        for batch in dataloader:
            batch = self._prepare_inputs(batch)
            ids = batch.pop(SAMPLE_ID_COLUMN)
            labels = self._labels_of(batch)
            with self.autocast_smart_context_manager():
                outputs = model(**batch)
            self.recorder.add(ids, logits_of(outputs), labels)
        model.train(was_training)


def _source_of(dataset) -> dict[str, Any]:
    """Split, config and Hub revision of a `datasets.Dataset`, for the record's provenance (exports read them)."""
    try:
        return infer_source(dataset)
    except Exception:  # provenance is best effort; never fail a training run for it
        return {}


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
