"""`PruningTrainer`: a `transformers.Trainer` that records per-sample training dynamics every epoch.

```
sampler ──> SampleIdDataset: (sample_id, item) ──> SampleIdCollator: user's collator, then batch["sample_id"]
      training_step pops sample_id; compute_loss: logits + labels --> Recorder.add (on device, no_grad, no sync)
      on_epoch_end (all ranks): rows checked on every rank --> stream_rows_to_main --> main: EpochWriter (pwrite)
      _save_checkpoint: record + each rank's rows of the epoch in progress into checkpoint-N/, *then* Trainer's save
      train(resume_from_checkpoint=...): the checkpoint's record is verified before the live record is touched
```

Language models: token logits `[batch, tokens, vocab]` give one row per sequence (`hf_prune.sequence`), the labels
aligned as the model's own loss aligns them (`label_alignment`: inferred from a transformers model, or given). The
training step's loss and outputs come from `_training_loss_and_outputs` and are recorded by `_record_training_batch`;
a trainer whose parent builds no logits (trl's `SFTTrainer`, a fused LM head: `hf_prune.sft`) overrides those two.
`PruningTrainer` calls `super()` everywhere, so it mixes into any `Trainer` subclass: `class X(PruningTrainer, T)`.

Subclasses change the run through small extension points that `PruningTrainer` calls unconditionally and that do
nothing here: `_begin_run(checkpoint)`, `_begin_epoch(epoch)`, `_end_epoch_extras(epoch)`, `_extra_record_rows(epoch)`,
`_extra_record_metadata()`, `_record_signals()`, `_extra_pruning_logs(trained)`, `_save_checkpoint_extras(checkpoint)`
and `_pruning_card_kwargs()`; `DynamicPruningTrainer` (`hf_prune.dynamic_trainer`) is built on them. Forward passes
outside training (the clean view, a subclass's scoring pass) go through `_forward_pass`.

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

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from .config import PruningArguments
from .distributed import raise_on_every_rank
from .dyn_unc_window import check_dyn_unc_window
from .models import TimmModuleForImageClassification, is_plain_timm_module
from .provenance import infer_source
from .record import ScoreRecord
from .recording import DEFAULT_SIGNALS, Recorder, logits_of
from .run_record import RunRecord, score_record_path
from .sample_ids import (
    DATASET_LABEL_COLUMNS,
    SAMPLE_ID_COLUMN,
    SampleIdCollator,
    SampleIdDataset,
    check_stream_ids,
    is_iterable_dataset,
    num_unpruned_samples,
    row_fingerprint,
    sample_id_range,
)
from .sequence import (
    TokenLosses,
    check_label_alignment,
    check_sequence_signals,
    fused_token_losses,
    label_alignment_of,
    require_label_alignment,
)
from .trainer_hub import create_pruning_model_card, push_checkpoint_without_record, push_without_record
from .version import __version__


__all__ = ["PruningArguments", "PruningTrainer"]

logger = logging.get_logger(__name__)


class _RecordingCallback(TrainerCallback):
    """Hands epoch boundaries to the trainer's recorder; every process runs these (they gather)."""

    def __init__(self, trainer: PruningTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        window = getattr(args, "dyn_unc_window", None)
        if window is not None and args.max_steps > 0:  # Trainer knows the number of epochs only now
            check_dyn_unc_window(window, state.num_train_epochs, name="dyn_unc_window", epochs_name="num_train_epochs")

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        epoch = int(math.floor(state.epoch + 1e-6)) if state.epoch else 0
        self.trainer._align_record_to_epoch(epoch)
        view = getattr(self.trainer, "_train_view", None)
        if view is not None:
            view.set_epoch(epoch)  # shared memory: loader workers, persistent ones included, see it
        # Before Trainer calls set_epoch and iterates (a subclass draws the epoch's data here).
        self.trainer._begin_epoch(epoch)
        try:  # a stream's loader has no length
            batches = len(train_dataloader) if train_dataloader is not None else None
        except TypeError:
            batches = None
        if batches:
            # room for the epoch's rows up front (after _begin_epoch: the epoch's length), so that the recorder does
            # not reallocate mid-epoch
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
    (`label_names`, then `labels` / `label`); a label of -100 is recorded as NaN. A language model (token logits
    `[batch, tokens, vocab]`, token labels with -100 on padding and prompt) is recorded per sequence: mean token loss,
    `p_target = exp(-loss)`, token accuracy as `correct`, `num_tokens` (see `hf_prune.sequence`). The record is
    written to `<output_dir>/<score_record_dir>` after every epoch and into every checkpoint;
    `train(resume_from_checkpoint=...)` continues it.

    Every epoch it also logs, through `Trainer.log` (so TensorBoard, W&B... see them with `report_to`),
    `pruning/recorded_samples`, `pruning/samples_trained_per_second` (samples actually trained, not the dataset's
    length) and `pruning/clean_view_seconds` with `record_clean_view`. `push_to_hub` leaves the record out of the model
    repo (`score_record_repo_id=` publishes it to a dataset repo of its own) and the model card says what the model was
    trained on (`pruned_list=`). Dynamic pruning (a policy re-selecting the data every epoch) is
    `DynamicPruningTrainer` with `DynamicPruningArguments`.

    Args:
        clean_view_dataset (`datasets.Dataset`, *optional*):
            The training split with the *eval* transform, for `args.record_clean_view`; same rows as the train set.
        record_metadata (`dict`, *optional*):
            Extra JSON-able metadata for the record (e.g. the method parameters a recipe will score with, or the rows
            of the full split a subset came from); `hf-prune select` reads `strategy_params` from it.
        label_alignment (`str`, *optional*):
            For a model with token logits: `"next_token"` (logits[:, t] are scored against labels[:, t + 1], a causal
            LM) or `"same_token"` (labels[:, t]: token classification, masked LM, encoder-decoder). Inferred from a
            transformers model's `loss_type` when not given (`hf_prune.sequence.label_alignment_of`); needed only for
            a model that does not say (a plain `nn.Module` returning token logits).
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

    def __init__(self, *args, clean_view_dataset=None, record_metadata: dict[str, Any] | None = None,
                 label_alignment: str | None = None, **kwargs):  # fmt: skip
        model = kwargs.get("model", args[0] if args else None)
        if is_plain_timm_module(model):
            # `timm.create_model(...)` takes an image tensor, Trainer calls `model(pixel_values=..., labels=...)`:
            # give it the image-classifier interface (the module itself is trained, as `trainer.model.model`)
            logger.info(f"Wrapping the timm {type(model).__name__} as TimmModuleForImageClassification.")
            wrapped = TimmModuleForImageClassification(model)
            if "model" in kwargs:
                kwargs["model"] = wrapped
            else:
                args = (wrapped, *args[1:])
        super().__init__(*args, **kwargs)
        self._check_args()
        if self.args.dataloader_pin_memory and self.args.device.type == "cpu":
            # Trainer's default pins memory; on a CPU-only run torch then warns that nothing can be pinned
            self.args.dataloader_pin_memory = False
        self.record_metadata = dict(record_metadata or {})
        self._epoch_started: float | None = None
        self._clean_view_seconds = 0.0
        self._samples_trained = 0
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
            self.num_samples = self._count_unpruned_samples(override)
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
        # How token logits line up with the labels (None: one prediction per sample, or a model that does not say).
        self.label_alignment = check_label_alignment(label_alignment) or label_alignment_of(self.model)
        if self.label_alignment is not None:
            check_sequence_signals(self.recorder.signals)  # before training, with the supported signals named
        self._run_record: RunRecord | None = None  # the record this run writes; set up by `train`
        self._trained_rows = 0  # samples this process trained on in the epoch in progress (for the epoch-end check)
        self._step_sample_ids: torch.Tensor | None = None
        self._train_view: SampleIdDataset | None = None  # the training loader's view (augmentation epoch)
        self.add_callback(_RecordingCallback(self))

    def _count_unpruned_samples(self, override: int | None) -> int:
        """The length of the unpruned split the sample ids index (`record_num_samples` when set). A parent trainer
        that prepares the dataset itself, and may drop rows of it (trl's `SFTTrainer`), is given the count of the
        dataset as passed in its subclass (`hf_prune.sft`)."""
        return num_unpruned_samples(self.train_dataset, override)

    def _check_args(self) -> None:
        """Refuses arguments this trainer cannot honour (a subclass that can honour them overrides it)."""
        if getattr(self.args, "dynamic_policy", None) is not None:
            raise TypeError(
                f"{type(self).__name__} does not prune dynamically, but its arguments set dynamic_policy="
                f"{self.args.dynamic_policy!r}. Use `DynamicPruningTrainer` (`from hf_prune import "
                "DynamicPruningTrainer`) with these `DynamicPruningArguments`."
            )

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
        """`<output_dir>/<score_record_dir>`, where the run's record lives."""
        return score_record_path(self.args)

    @property
    def score_record(self) -> ScoreRecord:
        """The run's `ScoreRecord` (read-only, memory-mapped), as of the last complete epoch."""
        return ScoreRecord.load(self.score_record_path)

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
        seed = None
        if is_training and getattr(self.args, "reproducible_augmentation", True):
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        wrapped = SampleIdDataset(inner, keep_keys=keep, augmentation_seed=seed)
        if is_training:
            self._train_view = wrapped  # on_epoch_begin hands it the epoch (its augmentation seeds)
        # The sampler sees the dataset itself (lengths for group_by_length, the dynamic sampler's positions).
        inner_sampler = (lambda _view: sampler_fn(inner)) if sampler_fn is not None else None
        return self._get_dataloader(wrapped, description, batch_size, inner_sampler, is_training)

    # ------------------------------------------------------------------ Trainer overrides

    def _set_signature_columns_if_needed(self):
        # `remove_unused_columns` keeps only the model's forward arguments; `sample_id` must survive it.
        super()._set_signature_columns_if_needed()
        if SAMPLE_ID_COLUMN not in self._signature_columns:
            self._signature_columns.append(SAMPLE_ID_COLUMN)

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        # Set up (or restore) the record before Trainer's loop starts; the loop itself is untouched.
        run_record = RunRecord(self.args, self.accelerator, self.recorder, self.num_samples, self._record_signals(),
                               self.train_dataset)  # fmt: skip
        checkpoint = run_record.resolve_checkpoint(resume_from_checkpoint)
        self._check_ranks_train_the_same_data(run_record)
        window = getattr(self.args, "dyn_unc_window", None)
        if window is not None and self.args.max_steps <= 0:
            check_dyn_unc_window(window, self.args.num_train_epochs, name="dyn_unc_window",
                                 epochs_name="num_train_epochs")  # fmt: skip
        self._run_record = run_record
        self._trained_rows = run_record.prepare(checkpoint, metadata=self._record_metadata)
        try:
            self._begin_run(checkpoint)
            output = super().train(resume_from_checkpoint=checkpoint, trial=trial, **kwargs)
            run_record.finish()
        finally:
            run_record.release_lock()
        # Trainer's train_samples_per_second counts len(dataset) per epoch; a pruned run trains fewer.
        runtime = output.metrics.get("train_runtime")
        output.metrics["train_samples_trained"] = self._samples_trained
        if runtime:
            output.metrics["train_samples_trained_per_second"] = round(self._samples_trained / runtime, 3)
        return output

    def _check_ranks_train_the_same_data(self, run_record: RunRecord) -> None:
        """Before the first step: every process must hold the same training rows, in the same order (one object
        all-gather of each rank's `row_fingerprint`). Raises on every rank, naming the likely cause and the fix."""
        if self.accelerator.num_processes == 1:
            return
        from accelerate.utils import gather_object

        dataset = self.train_dataset
        if is_iterable_dataset(dataset):
            mine = None  # a stream has no rows to compare up front; its ids are checked per epoch (labels)
        else:
            # the record's own fingerprint where it has one (computed once per run, reused for the metadata)
            mine = run_record.dataset_row_fingerprint() or row_fingerprint(dataset)
            mine = mine or f"{type(dataset).__name__} of {len(dataset)} rows"
        prints = gather_object([mine])
        if len(set(prints)) > 1:
            shown = ", ".join(f"rank {r}: {p}" for r, p in enumerate(prints))
            raise ValueError(
                f"The ranks train on different data ({shown}): each process built its own training split and they "
                "differ, so the record would key one rank's rows by another's ids. The usual cause is an unseeded "
                "split or shuffle, e.g. the image-classification example's `train_test_split(0.15)` when the data has "
                "no validation split: pass `seed=` (`train_test_split(0.15, seed=training_args.seed)`, "
                "`.shuffle(seed=...)`), or build the split once and load the same one on every rank."
            )

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
        # The training step's own logits feed the recorder (no extra forward pass); outside training, or when the
        # clean-view pass records instead, this is Trainer's compute_loss.
        ids = self._step_sample_ids
        if ids is None or not model.training or self.record_clean_view:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels, alignment = self._record_labels_of(inputs)  # before Trainer's compute_loss, which may pop them
        loss, outputs = self._training_loss_and_outputs(model, inputs, num_items_in_batch)
        self._record_training_batch(ids, outputs, labels, alignment)
        return (loss, outputs) if return_outputs else loss

    def _training_loss_and_outputs(self, model, inputs, num_items_in_batch=None):
        """The training step's `(loss, outputs)`: the parent trainer's `compute_loss` with its outputs, which
        `_record_training_batch` reads. A parent that would need an extra forward pass to return outputs (trl's
        `SFTTrainer`) is given another way in its subclass (`hf_prune.sft`)."""
        return super().compute_loss(model, inputs, True, num_items_in_batch)

    def _record_training_batch(self, ids: torch.Tensor, outputs, labels: torch.Tensor, alignment: str | None) -> None:
        """Records a training (micro-)batch from its model outputs: logits, or per-token log-probabilities of a
        fused LM head (`hf_prune.sequence.fused_token_losses`). On the device, no host synchronisation."""
        tokens = fused_token_losses(outputs)
        if tokens is not None:
            self.recorder.add_tokens(ids, tokens)
        else:
            self.recorder.add(ids, logits_of(outputs), labels, alignment)

    def _token_losses_of(self, outputs, labels: torch.Tensor, alignment: str | None, *, keep_grad: bool = False,
                         label_smoothing: float = 0.0, with_correct: bool = False,
                         with_entropy: bool = False) -> TokenLosses | None:  # fmt: skip
        """Per-token losses of a training batch with token logits (or a fused LM head's log-probabilities), `None`
        for `[batch, classes]` logits. With `keep_grad` the losses carry the graph (a re-weighted training loss);
        `with_correct` / `with_entropy` add the per-token statistics a record needs."""
        tokens = fused_token_losses(outputs)
        if tokens is not None:
            return tokens
        logits = logits_of(outputs)
        if logits.dim() != 3:
            return None
        alignment = require_label_alignment(alignment, logits)
        return TokenLosses.from_logits(logits, labels, alignment, with_correct=with_correct, with_entropy=with_entropy,
                                       keep_grad=keep_grad, label_smoothing=label_smoothing)  # fmt: skip

    def _save_checkpoint(self, model, trial):
        # The record (complete epochs) and every rank's rows of the epoch in progress go into the checkpoint *before*
        # Trainer saves it and rotates older checkpoints away (save_total_limit), so the newest checkpoint is never
        # one without a record while the last one with a record is already deleted.
        checkpoint = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        error = None
        try:
            self._run_record.save_to_checkpoint(checkpoint, self._trained_rows)
            self._save_checkpoint_extras(checkpoint)
        except Exception as err:  # noqa: BLE001 - re-raised on every rank just below
            error = err
        raise_on_every_rank(error, self.accelerator, f"saving the score record into {checkpoint}")
        # a full disk inside Trainer's own save surfaces as torch's "unexpected pos" / "basic_ios::clear": one OSError
        # naming the checkpoint and the free space instead (resume_from_checkpoint=True skips such a checkpoint)
        with self._run_record.checkpoint_save_errors(checkpoint):
            super()._save_checkpoint(model, trial)

    # ------------------------------------------------------------------ recording

    def _labels_of(self, inputs) -> torch.Tensor:
        for name in (*self.label_names, "labels", "label"):
            if name in inputs:
                return inputs[name]
        raise ValueError(
            f"The training batch has no labels (keys: {list(inputs)}; looked for "
            f"{[*self.label_names, 'labels', 'label']}). PruningTrainer records signals against the hard class label "
            "(or the token labels of a language model), read from the batch as Trainer reads it: make the collator "
            "return `labels` (e.g. `DataCollatorForLanguageModeling(tokenizer, mlm=False)` for a causal LM), or name "
            "your label key in `label_names`."
        )

    def _record_labels_of(self, inputs) -> tuple[torch.Tensor, str | None]:
        """The batch's labels and how the logits line up with them: a collator's pre-shifted `shift_labels`
        (context or sequence parallelism, padding-free) are already aligned with the logits."""
        if "shift_labels" in inputs:
            return inputs["shift_labels"], "same_token"
        return self._labels_of(inputs), self.label_alignment

    # ------------------------------------------------------------------ extension points (no-ops here)

    def _begin_run(self, checkpoint: str | None) -> None:
        """Called by `train` on every rank once the record is ready, before Trainer's loop: a fresh run, or one
        resuming from `checkpoint`."""
        self._samples_trained = 0

    def _begin_epoch(self, epoch: int) -> None:
        """Called on every rank at the start of `epoch`, before Trainer sets the sampler's epoch and iterates."""

    def _end_epoch_extras(self, epoch: int) -> None:
        """Called on every rank at the end of `epoch`, once its rows are checked and before they are written."""

    def _extra_record_rows(self, epoch: int) -> dict[str, np.ndarray]:
        """Whole rows `[n]` to write beside the recorded signals for `epoch` (main process; names from
        `_record_signals`)."""
        return {}

    def _extra_record_metadata(self) -> dict[str, Any]:
        """Entries merged into the record's metadata at every epoch end (main process)."""
        return {}

    def _record_signals(self) -> list[str]:
        """The signals the record holds: the recorded ones, plus those of `_extra_record_rows`."""
        return list(self.recorder.signals)

    def _extra_pruning_logs(self, trained: int) -> dict[str, float]:
        """`pruning/...` entries added to the epoch's telemetry (`trained`: samples trained, all processes)."""
        return {}

    def _save_checkpoint_extras(self, checkpoint: Path) -> None:
        """Writes a subclass's state into `checkpoint` (every rank calls it, before Trainer saves the checkpoint)."""

    def _pruning_card_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for `create_pruning_model_card` (e.g. `dynamic=`: how the data was pruned)."""
        return {}

    def _record_metadata(self) -> dict[str, Any]:
        model = self.accelerator.unwrap_model(self.model) if self.model is not None else None
        config = getattr(model, "config", None)
        ds = self.train_dataset
        return {
            "num_samples": self.num_samples,
            "signals": self.recorder.signals,
            "record_dtype": self.recorder.dtype,
            "dataset_fingerprint": getattr(ds, "_fingerprint", None),
            "dataset_row_fingerprint": self._run_record.dataset_row_fingerprint(),
            **{f"dataset_{key}": value for key, value in _source_of(ds).items() if key != "fingerprint"},
            "dataset_num_rows": len(ds) if hasattr(ds, "__len__") else None,
            "label_names": self._label_class_names(),
            "model": {
                "class": type(model).__name__ if model is not None else None,
                "name_or_path": getattr(config, "_name_or_path", None) or None,
                "architecture": getattr(config, "architecture", None),
                "num_parameters": int(sum(p.numel() for p in model.parameters())) if model is not None else None,
            },
            "clean_view": self.record_clean_view,
            "world_size": self.accelerator.num_processes,
            "total_train_batch_size": self._run_record.total_train_batch_size,
            "seed": self.args.seed,
            "num_train_epochs": self.args.num_train_epochs,
            "args": json.loads(self.args.to_json_string()),
            "hf_prune_version": __version__,
            **self.record_metadata,
        }

    # ---- epochs

    def _align_record_to_epoch(self, epoch: int) -> None:
        # Epoch k of training is row k of the record. After resuming from a checkpoint taken on an epoch's last
        # step (before its end), Trainer starts at the next epoch: close the restored epoch first.
        while self._run_record.recorded_epochs < epoch:
            self._end_recording_epoch()

    def _end_recording_epoch(self) -> None:
        epoch = self._run_record.recorded_epochs
        train_seconds = time.perf_counter() - self._epoch_started if self._epoch_started is not None else None
        self._epoch_started = None
        if self.record_clean_view:
            started = time.perf_counter()
            self._clean_view_pass()
            self._clean_view_seconds = time.perf_counter() - started
        raise_on_every_rank(self._check_epoch_rows(epoch), self.accelerator, f"checking epoch {epoch}'s rows")
        self._end_epoch_extras(epoch)
        self._run_record.write_epoch(  # every rank's rows, through the main process, into the record's next row
            extra_rows=self._extra_record_rows, extra_metadata=self._extra_record_metadata
        )
        self.log_pruning_metrics(epoch, train_seconds)
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

    # ------------------------------------------------------------------ Hub (hf_prune.trainer_hub)

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
        # Trainer uploads all of output_dir, which holds the score record: the same flow, with the record left out.
        return push_without_record(
            self, commit_message, blocking, token, revision, private, score_record_repo_id, **kwargs
        )

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Trainer pushes output_dir (and the checkpoint, with hub_strategy="checkpoint") at every save: the same
        # uploads, without the record and its checkpoint copies.
        push_checkpoint_without_record(self, checkpoint_folder)

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
        # Trainer's card cannot say what the model was trained on: a pruned list, a dynamic policy, a subset.
        create_pruning_model_card(
            self, language, license, tags, model_name, finetuned_from, tasks, dataset_tags, dataset, dataset_args,
            pruned_list=pruned_list, index_repo_id=index_repo_id, full_data_metrics=full_data_metrics,
            score_record_repo_id=score_record_repo_id, **self._pruning_card_kwargs(),
        )  # fmt: skip

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
        record = self._run_record.record if self._run_record is not None else None
        if record is not None and self.recorder.signals:
            row = np.asarray(record.signal(self.recorder.signals[0])[epoch])
            recorded = int(np.isfinite(row).sum())
        logs: dict[str, float] = {"pruning/recorded_samples": recorded}  # counts stay ints in console logs
        nonfinite = self._run_record.last_epoch_num_nonfinite if self._run_record is not None else None
        if nonfinite is not None:  # seen with a NaN/inf loss or logits: recorded as such, not as unseen
            logs["pruning/nonfinite_samples"] = int(nonfinite)
        if self.record_clean_view:
            logs["pruning/clean_view_seconds"] = round(self._clean_view_seconds, 4)
        # `train_samples_trained` counts distinct samples: a distributed sampler's padding repeats a few per epoch
        self._samples_trained += self._distinct_trained(epoch, trained, record)
        if train_seconds:
            logs["pruning/samples_trained_per_second"] = round(trained / train_seconds, 3)
        logs.update(self._extra_pruning_logs(trained))
        # Trainer.log resets control.should_log; at an epoch end that would swallow Trainer's own epoch log (loss).
        should_log = self.control.should_log
        self.log(dict(logs))
        self.control.should_log = should_log
        return logs

    def _label_class_names(self) -> list[str] | None:
        """The class names of the train dataset's label column when it is a `datasets.ClassLabel` (the column Trainer
        reads: `label_names`, then the usual label columns), for the record and the lists exported from it."""
        features = getattr(self.train_dataset, "features", None) or {}
        for name in (*self.label_names, *DATASET_LABEL_COLUMNS):
            names = getattr(features.get(name), "names", None)
            if names:
                return [str(n) for n in names]
        return None

    def _distinct_trained(self, epoch: int, trained: int, record: ScoreRecord | None) -> int:
        """Distinct samples trained in `epoch` (every process gets the same number): the ids the record wrote for the
        epoch when it records from the training step, else `trained` bounded by the dataset's length."""
        if self.record_clean_view or is_iterable_dataset(self.train_dataset):
            size = len(self.train_dataset) if hasattr(self.train_dataset, "__len__") else trained
            return min(trained, size)
        seen = trained
        if record is not None:
            counts = record.metadata.get("epoch_num_seen") or []
            seen = int(counts[epoch]) if epoch < len(counts) else trained
        if self.accelerator.num_processes > 1:  # only the main process holds the record
            from accelerate.utils import broadcast

            seen = int(broadcast(torch.tensor([seen], dtype=torch.long, device=self.accelerator.device)).item())
        return seen

    # ------------------------------------------------------------------ forward passes outside training

    def _clean_view_pass(self) -> None:
        """The authors' variant: predictions on the un-augmented training set, model in eval mode."""
        self.recorder.reset()
        self._forward_pass(self.clean_view_dataset, self.recorder, "Clean view")

    @torch.no_grad()
    def _forward_pass(self, dataset, recorder: Recorder, description: str) -> None:
        """One pass of the model over `dataset` (eval mode, no grad, the eval batch size, sharded across ranks as
        Trainer's eval loop): every batch's logits and labels go to `recorder`, keyed by sample id. The model's mode
        is restored after it. Every rank calls it; an error on one rank is raised on all of them (no hang).

        Args:
            dataset: a map-style dataset of the training rows (ids as `sample_id_dataloader` gives them).
            recorder (`Recorder`): receives `(ids, logits, labels)` of every batch, on the device.
            description (`str`): the pass, for Trainer's logs and the error message (e.g. `"Clean view"`).
        """
        model = self.model_wrapped if self.model_wrapped is not None else self.model
        was_training = model.training
        model.eval()
        error = None
        try:
            # Not `get_eval_dataloader`: with persistent workers it would hand back the cached eval loader.
            for batch in self.sample_id_dataloader(dataset, description):
                batch = self._prepare_inputs(batch)
                ids = batch.pop(SAMPLE_ID_COLUMN)
                labels, alignment = self._record_labels_of(batch)
                with self.autocast_smart_context_manager():
                    outputs = model(**batch)
                recorder.add(ids, logits_of(outputs), labels, alignment)
        except Exception as err:  # noqa: BLE001 - a map-style eval loader holds no collective: safe to stop here
            error = err
        finally:
            model.train(was_training)
        raise_on_every_rank(error, self.accelerator, f"the {description.lower()} pass")

def _source_of(dataset) -> dict[str, Any]:
    """Split, config and Hub revision of a `datasets.Dataset`, for the record's provenance (exports read them)."""
    try:
        return infer_source(dataset)
    except Exception:  # provenance is best effort; never fail a training run for it
        return {}
