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

import json
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import logging

from .record import RECORD_FILE, ScoreRecord
from .recording import DEFAULT_SIGNALS, Recorder, check_signals
from .result import SAMPLE_ID_COLUMN


logger = logging.get_logger(__name__)

CHECKPOINT_RECORD_DIR = "score_record"
CHECKPOINT_PARTIAL_DIR = "score_record_partial"
LABEL_COLUMNS = ("label", "labels", "label_ids")


@dataclass
class PruningArguments(TrainingArguments):
    """`TrainingArguments` plus what `PruningTrainer` records.

    Recording:

    - **record_signals** -- which per-sample signals to record each epoch.
    - **record_clean_view** -- also run a clean pass (eval transform, eval mode, no grad) each epoch and record
      from it instead of the training step, as in the Dyn-Unc authors' code. Costs one forward pass per epoch.
    - **score_record_dir** -- where the record goes, relative to `output_dir`.
    - **record_num_samples** -- length of the unpruned split, when training on a pruned view that carries
      `sample_id` already.

    Dynamic pruning (`hf_prune.dynamic`; off unless `dynamic_policy` is set):

    - **dynamic_policy** -- `random_dynamic`, `uncertainty_ema`, `epsilon_greedy`, `ucb` or `infobatch`.
    - **dynamic_prune_ratio** -- fraction of the train set *removed* in each pruned epoch, in [0, 1).
    - **pruning_period** -- `T_p`: epochs between re-selections (Raju et al. use 10).
    - **dynamic_scoring** -- `"pass"`: a forward pass over the whole train set at each re-selection (Raju et al.;
      its time counts); `"train_loss"`: the free training losses of the samples seen (unseen keep their last score).
    - **dynamic_alpha**, **dynamic_epsilon**, **dynamic_c** -- EMA weight (Eq. 2), exploration share (epsilon-greedy),
      variance weight (UCB, Eq. 4).
    - **dynamic_class_balanced** -- rank within every class (EMA-based policies).
    - **infobatch_delta**, **infobatch_max_ratio** -- InfoBatch: share of the epochs that prune, bound on `r`.
    - **dynamic_round_to_batches** -- round the kept count up to a multiple of `world_size x per_device batch`, so
      every selected sample is used exactly once per epoch with no padding.
    """

    record_signals: list[str] = field(
        default_factory=lambda: list(DEFAULT_SIGNALS),
        metadata={
            "help": "Per-sample signals recorded every epoch, from the training step's own logits. Choose from "
            "p_target, loss, correct, margin, logit_margin, entropy, el2n."
        },
    )
    record_clean_view: bool = field(
        default=False,
        metadata={
            "help": "Record from an extra clean pass over `clean_view_dataset` (eval transform, eval mode, no grad) "
            "at the end of every epoch instead of from the training step. Costs one forward pass per epoch."
        },
    )
    score_record_dir: str = field(
        default="scores", metadata={"help": "Folder of the score record, relative to output_dir."}
    )
    record_num_samples: int | None = field(
        default=None,
        metadata={
            "help": "Number of rows of the unpruned train split. Only needed when the train dataset is already a "
            "pruned view carrying a `sample_id` column; defaults to max(sample_id) + 1 there, else len(dataset)."
        },
    )

    # ---- dynamic pruning (hf_prune.dynamic) ----
    dynamic_policy: str | None = field(
        default=None,
        metadata={
            "help": "Dynamic pruning policy re-selecting the training subset during training: random_dynamic, "
            "uncertainty_ema, epsilon_greedy, ucb (Raju et al. 2021) or infobatch (Qin et al. 2024). None trains on "
            "all data."
        },
    )
    dynamic_prune_ratio: float = field(
        default=0.5,
        metadata={"help": "Fraction of the train set *removed* in each pruned epoch, in [0, 1): 0.5 trains on half."},
    )
    pruning_period: int = field(
        default=1, metadata={"help": "T_p: epochs between two selections of the dynamic policy (>= 1)."}
    )
    dynamic_scoring: str = field(
        default="train_loss",
        metadata={
            "help": "Where dynamic scores come from: 'pass' (a forward pass over the whole train set at every "
            "re-selection, as Raju et al.; its time counts) or 'train_loss' (the per-sample training losses of the "
            "samples seen, free; unseen samples keep their last score)."
        },
    )
    dynamic_alpha: float = field(
        default=0.8, metadata={"help": "EMA weight of the newest loss (Raju et al. Eq. 2-3), in (0, 1]."}
    )
    dynamic_epsilon: float = field(
        default=0.1, metadata={"help": "epsilon_greedy: share of the kept samples drawn at random, in [0, 1]."}
    )
    dynamic_c: float = field(default=1.0, metadata={"help": "ucb: weight c of the running variance (Eq. 4), >= 0."})
    dynamic_class_balanced: bool = field(
        default=False,
        metadata={
            "help": "uncertainty_ema / epsilon_greedy / ucb: rank within every class so each keeps its share of the "
            "selection (an addition to Raju et al.; stops a loss ranking from dropping whole classes early on)."
        },
    )
    infobatch_delta: float = field(
        default=0.875,
        metadata={"help": "infobatch: pruning stops at epoch floor(delta * num_train_epochs) (annealing), in (0, 1]."},
    )
    infobatch_max_ratio: float = field(
        default=0.9,
        metadata={"help": "infobatch: upper bound of the ratio r pruned from the below-mean-loss samples, in (0, 1)."},
    )
    dynamic_round_to_batches: bool = field(
        default=True,
        metadata={
            "help": "Round the per-epoch kept count up to a multiple of world_size x per_device_train_batch_size, so "
            "every selected sample is used exactly once per epoch (no padding duplicates across ranks)."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.record_signals, str):
            self.record_signals = [s.strip() for s in self.record_signals.split(",") if s.strip()]
        self.record_signals = check_signals(self.record_signals)
        if self.record_num_samples is not None and self.record_num_samples <= 0:
            raise ValueError(f"record_num_samples must be positive; got {self.record_num_samples}.")
        if self.dynamic_policy is not None:
            from .dynamic.trainer_hooks import check_dynamic_args

            # Raises clear errors for a bad policy, ratio, period or scoring mode; adds the "loss" signal that
            # dynamic_scoring="train_loss" feeds to the policy.
            self.record_signals = check_dynamic_args(self)
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > 1 and self.world_size == 1:
            # Unconnected processes would each write the same score record.
            raise ValueError(
                f"{launched} processes were launched (WORLD_SIZE={launched}) but these arguments run them unconnected "
                "(world_size=1). On a machine without a GPU pass `use_cpu=True` (`--use_cpu`) so they join one "
                "gloo process group."
            )


class _KeepSampleIdCollator:
    """Wraps a data collator so that `sample_id` reaches the batch even if the user's collator drops extra keys."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        if not features or not isinstance(features[0], Mapping) or SAMPLE_ID_COLUMN not in features[0]:
            return self.collator(features)
        ids = torch.tensor([int(f[SAMPLE_ID_COLUMN]) for f in features], dtype=torch.long)
        batch = self.collator([{k: v for k, v in f.items() if k != SAMPLE_ID_COLUMN} for f in features])
        batch[SAMPLE_ID_COLUMN] = ids
        return batch


class _IndexedDataset(torch.utils.data.Dataset):
    """A map-style torch dataset of dicts, with the row position added as `sample_id`."""

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


def _logits_of(outputs) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    # Tuples: (loss, logits, ...) when a loss was computed, else (logits, ...).
    return outputs[1] if len(outputs) > 1 and outputs[0].dim() == 0 else outputs[0]


def _with_sample_id(dataset, name: str):
    """Adds `sample_id` (row position) to a dataset that lacks it; checks it has labels."""
    if dataset is None:
        return None
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        datasets = None
    if datasets is not None and isinstance(dataset, datasets.IterableDataset):
        if dataset.column_names is not None and SAMPLE_ID_COLUMN not in dataset.column_names:
            raise ValueError(
                f"The {name} is an IterableDataset without a `{SAMPLE_ID_COLUMN}` column. Add the row position of "
                "the unpruned split as `sample_id` (int64) before streaming, e.g. with `.map(..., with_indices=True)`."
            )
        return dataset
    if datasets is not None and isinstance(dataset, datasets.Dataset):
        if not any(c in dataset.column_names for c in LABEL_COLUMNS):
            raise ValueError(
                f"The {name} has no label column (looked for {list(LABEL_COLUMNS)} in {dataset.column_names}). "
                "PruningTrainer records signals against the hard class label: rename your label column to 'label'."
            )
        if SAMPLE_ID_COLUMN in dataset.column_names:
            return dataset
        return dataset.add_column(SAMPLE_ID_COLUMN, np.arange(len(dataset), dtype=np.int64))
    return _IndexedDataset(dataset)


def _num_unpruned_samples(dataset, override: int | None) -> int:
    if override is not None:
        return int(override)
    if isinstance(dataset, _IndexedDataset):
        return len(dataset)
    if len(dataset) == 0:
        raise ValueError("The train dataset is empty.")
    ids = np.asarray(dataset.with_format("numpy")[SAMPLE_ID_COLUMN])
    return int(max(len(dataset), ids.max() + 1))


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
        self.train_dataset = _with_sample_id(self.train_dataset, "train dataset")
        signals = getattr(self.args, "record_signals", DEFAULT_SIGNALS)
        self.record_clean_view = bool(getattr(self.args, "record_clean_view", False))
        if self.record_clean_view and clean_view_dataset is None:
            raise ValueError(
                "record_clean_view=True needs `clean_view_dataset`: the training split with the eval transform."
            )
        self.clean_view_dataset = _with_sample_id(clean_view_dataset, "clean view dataset")
        self.num_samples = (
            None
            if isinstance(self.train_dataset, torch.utils.data.IterableDataset)
            and getattr(self.args, "record_num_samples", None) is None
            else _num_unpruned_samples(self.train_dataset, getattr(self.args, "record_num_samples", None))
        )
        if self.num_samples is None:
            raise ValueError("Training on an IterableDataset: set `record_num_samples` to the unpruned split's length.")
        self.data_collator = _KeepSampleIdCollator(self.data_collator)
        self.recorder = Recorder(signals)
        self._record: ScoreRecord | None = None
        self._recorded_epochs = 0
        self._step_sample_ids: torch.Tensor | None = None
        self.add_callback(_RecordingCallback(self))
        # Dynamic pruning (hf_prune.dynamic): the per-epoch sampler, its policy and InfoBatch's loss weights.
        self._dynamic = None
        if getattr(self.args, "dynamic_policy", None) is not None:
            from .dynamic.trainer_hooks import TrainerDynamicPruning

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
            loss = self._dynamic.weighted_loss(ids, _logits_of(outputs), labels, num_items_in_batch)
        if not self.record_clean_view:
            self.recorder.add(ids, _logits_of(outputs), labels)
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
        from . import __version__

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
            self.recorder.add(ids, _logits_of(outputs), labels)
        model.train(was_training)


def _source_of(dataset) -> dict[str, Any]:
    """Split, config and Hub revision of a `datasets.Dataset`, for the record's provenance (exports read them)."""
    try:
        from .export.index_list import infer_source

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
