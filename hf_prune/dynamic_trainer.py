"""`DynamicPruningTrainer`: a `PruningTrainer` that re-selects its training data every epoch with a dynamic pruning
policy (Raju et al. 2021's policies, InfoBatch, RS2, SeTa; `hf_prune.dynamic`), configured by
`DynamicPruningArguments`.

```
_begin_epoch(e) (every rank; PruningTrainer calls it at each epoch start)
    scoring="pass" and a new selection is due: forward pass over the whole train set (eval mode, no grad,
        PruningTrainer._forward_pass), losses gathered across ranks and de-duplicated by id ──> sampler.update
        (timed: "scoring_s")
    sampler.set_epoch(e) ──> the epoch's selection, identical on every rank; its loss weights go to the device once
_run_epoch(e): the epoch's own number of batches and optimizer steps (varying-length policies, hf_prune.dynamic.plan)
training steps: the sampler's k_e indices, sharded by accelerate; compute_loss applies InfoBatch's weights per
    sample by indexing a device weight table with the batch's sample ids (no host synchronisation); a sequence's
    weight multiplies each of its target tokens, the batch loss stays a token mean (hf_prune.dynamic.loss)
_end_epoch_extras(e) (every rank)
    Recorder.gather(signals=["loss"]): (id, label, loss) of every rank, de-duplicated ──> scoring="train_loss":
        sampler.update(ids, loss)                                                                        ("train_s")
    main process: _extra_record_rows(e) ──> the record row of epoch e gets the "selected" mask (1 selected, 0 not)
_save_checkpoint_extras: sampler + policy table + timings + epoch log ──> checkpoint-N/dynamic_pruning/
    (hf_prune.dynamic.checkpoint); train(resume_from_checkpoint) restores them, so the resumed run draws the same
    selections as an uninterrupted one
```

Varying epoch lengths (InfoBatch as published, RS2, SeTa): `Trainer` computes the steps per epoch, `max_steps` and
the LR schedule once, from `len(train_dataloader)`. Four overrides hand those decisions to an `EpochPlan`
(`hf_prune.dynamic.plan`, which explains the plan): `set_initial_training_values` plans every epoch from the policy's
bound (with `max_steps` set the run is a step budget instead: epochs run until `max_steps` and nothing is planned),
`_run_epoch` runs each epoch for exactly its own batches and refines `state.max_steps`, `create_scheduler` runs the
LR schedule over the steps taken (`EpochShareLR`), and `_init_training_state` finds the epoch and the steps done in
it from the checkpoint's epoch log when resuming.
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from .dynamic import SELECTED_SIGNAL, DynamicPolicy, DynamicPruningSampler, get_policy, weighted_cross_entropy
from .dynamic.checkpoint import has_sampler_state, load_sampler_state, save_sampler_state
from .dynamic.loss import weighted_token_loss
from .dynamic.plan import EpochPlan, EpochShareLR
from .dynamic_config import DynamicPruningArguments
from .recording import Recorder, logits_of
from .run_record import CHECKPOINT_DYNAMIC_DIR
from .sample_ids import is_iterable_dataset, sample_ids_of
from .trainer import PruningTrainer


__all__ = ["DynamicPruningArguments", "DynamicPruningTrainer"]

logger = logging.get_logger(__name__)


class DynamicPruningTrainer(PruningTrainer):
    """A `PruningTrainer` that trains every epoch on the samples a dynamic pruning policy selects for it.

    Everything `PruningTrainer` takes, it takes; `args` must be `DynamicPruningArguments`. Each epoch the policy
    (`args.dynamic_policy`, built with `get_policy` from `args.policy_params()`) selects the samples from its score
    table (the latest losses, from a scoring pass or the training steps), identically on every rank; the train
    sampler yields only those, each selected sample exactly once per epoch across ranks. The record holds a per-epoch
    `selected` row and, in its metadata under `"dynamic"`, the policy, its parameters and per-epoch training / scoring
    seconds. Beyond `PruningTrainer`'s telemetry it logs `pruning/kept`, `pruning/kept_fraction`,
    `pruning/ever_selected_fraction` and `pruning/scoring_seconds`.

    Fixed-length policies keep one epoch length (a multiple of `world_size x per_device_train_batch_size` with
    `dynamic_round_to_batches`). InfoBatch (as published), RS2 and SeTa vary it: every epoch runs exactly its own
    batches, `max_steps` is planned up front and refined as epochs are drawn, and the LR schedule runs over the steps
    actually taken (see the module docstring). `resume_from_checkpoint` reproduces an uninterrupted run's selections.

    Attributes:
        policy (`DynamicPolicy`): the policy.
        dynamic_sampler (`DynamicPruningSampler`): the train sampler (`_get_train_sampler` returns it).
        dynamic_timing (`list[dict]`): per epoch `{"epoch", "train_s", "scoring_s", "num_selected"}`, also written to
            the score record's metadata under `"dynamic"`.
        epoch_plan (`EpochPlan`): the planned steps per epoch and the log of the epochs run (varying lengths).

    Example:

    ```python
    >>> from hf_prune import DynamicPruningArguments, DynamicPruningTrainer
    >>> args = DynamicPruningArguments(output_dir="run", num_train_epochs=10, dynamic_policy="infobatch",
    ...                                dynamic_prune_ratio=0.5, dataloader_drop_last=True)
    >>> trainer = DynamicPruningTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collate_fn)
    >>> output = trainer.train()
    >>> output.metrics["train_samples_trained"]      # fewer than 10 * len(train_ds)
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        args = self.args
        dataset = self.train_dataset
        if is_iterable_dataset(dataset) or not hasattr(dataset, "__len__"):
            raise ValueError(
                "Dynamic pruning selects rows of a map-style train dataset; got an IterableDataset. Pass the "
                "`datasets.Dataset` itself (or use `hf_prune.dynamic.DynamicPruningDataset` in your own loop)."
            )
        if getattr(args, "train_sampling_strategy", "random") not in (None, "random"):
            logger.warning(
                f"dynamic_policy={args.dynamic_policy!r} replaces the train sampler: train_sampling_strategy="
                f"{args.train_sampling_strategy!r} is ignored."
            )
        self.policy: DynamicPolicy = get_policy(args.dynamic_policy, **args.policy_params())
        n = len(dataset)
        # Positions (what the sampler yields) -> sample ids (what the recorder and the record use).
        self.sample_ids = sample_ids_of(dataset)
        self.position_of = np.full(int(max(self.num_samples, self.sample_ids.max() + 1)), -1, dtype=np.int64)
        self.position_of[self.sample_ids] = np.arange(n)
        world = self.accelerator.num_processes
        # Each selected sample once per epoch: a loader pads (several processes) or drops (`drop_last`) unless the
        # epoch is a whole number of distributed batches, so the sampler fits every epoch to W x B then. On one
        # process without drop_last nothing is padded or dropped: the policy keeps its own counts (its authors').
        fit = args.dynamic_round_to_batches and (world > 1 or args.dataloader_drop_last)
        self.dynamic_sampler = DynamicPruningSampler(
            self.policy,
            num_samples=n,
            seed=args.data_seed if args.data_seed is not None else args.seed,
            pruning_period=args.pruning_period,
            multiple_of=world * args.per_device_train_batch_size if fit else 1,
        )
        self.dynamic_timing: list[dict[str, Any]] = []
        self.epoch_plan = EpochPlan(args.gradient_accumulation_steps)
        self._varying = not self.policy.fixed_length
        self._epoch_start: float | None = None
        self._scoring_s = 0.0
        self._ever_trained: np.ndarray | None = None
        # InfoBatch's loss weights indexed by sample id, on the training device (rebuilt once per selection).
        self._id_weights: torch.Tensor | None = None
        self._id_weights_of: Any = None

    def _check_args(self) -> None:
        # This trainer needs the policy's arguments, not only the recording ones.
        if not isinstance(self.args, DynamicPruningArguments):
            raise TypeError(
                f"DynamicPruningTrainer needs `DynamicPruningArguments` (`from hf_prune import "
                f"DynamicPruningArguments`, with dynamic_policy=...); got {type(self.args).__name__}. To train "
                "without dynamic pruning use `PruningTrainer`."
            )

    @property
    def _uses_train_losses(self) -> bool:
        return self.args.dynamic_scoring == "train_loss" and self.policy.uses_scores

    # ------------------------------------------------------------------ Trainer overrides

    def _get_train_sampler(self, train_dataset=None):
        # Trainer's RandomSampler is replaced by a DynamicPruningSampler that yields only the epoch's selection. It is
        # identical on every rank (seed, epoch, gathered score table) and fitted to whole distributed batches, so
        # accelerate's BatchSamplerShard deals each selected sample to exactly one rank once per epoch (see
        # DynamicPruningSampler for the cross-rank contract).
        return self.dynamic_sampler

    def set_initial_training_values(self, args, dataloader):
        # Trainer plans steps per epoch and max_steps once from len(dataloader); a varying-length policy's epochs are
        # planned one by one from its bound instead (EpochPlan.make), or run as a step budget with max_steps.
        values = super().set_initial_training_values(args, dataloader)
        if not self._varying:
            return values
        num_train_epochs, steps_per_epoch, num_examples, _, total_batch, batches, max_steps = values
        if args.max_steps > 0:  # a step budget: as many epochs as it takes
            self.epoch_plan.planned = None
            samples = args.max_steps * total_batch
            return sys.maxsize, steps_per_epoch, num_examples, samples, total_batch, batches, max_steps
        if float(args.num_train_epochs) != int(num_train_epochs):
            raise ValueError(
                f"dynamic_policy={self.policy.name!r} gives every epoch its own length, so it needs a whole number of "
                f"epochs (num_train_epochs={args.num_train_epochs}) or a step budget (max_steps)."
            )
        first, samples = self.epoch_plan.make(self.dynamic_sampler, int(num_train_epochs), lambda: len(dataloader))
        plan = self.epoch_plan
        return num_train_epochs, plan.planned[0], num_examples, samples, total_batch, first, plan.total_steps

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint,
                             trial):  # fmt: skip
        # Trainer finds the resumed epoch as global_step // steps_per_epoch; with epochs of their own length it comes
        # from the checkpoint's epoch log (each epoch's first step and length).
        epochs_trained, steps_trained = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        if self._varying and resume_from_checkpoint is not None:
            position = self.epoch_plan.resume_position(self.state.global_step, not self.args.ignore_data_skip)
            if position is not None:
                epochs_trained, steps_trained = position
                self._refine_max_steps()
        return epochs_trained, steps_trained

    def _run_epoch(self, *args, **kwargs):
        # Trainer runs every epoch for the batches it counted once; a varying-length policy's epoch runs exactly its
        # own (len(train_dataloader) once its selection is drawn): no empty optimizer step, the last gradient-
        # accumulation group complete, state.epoch ending on a whole number, and state.max_steps refined.
        if self._varying:
            bound = inspect.signature(super()._run_epoch).bind(*args, **kwargs)
            a = bound.arguments
            batches = len(a["train_dataloader"])
            updates = self.epoch_plan.start_epoch(a["epoch"], self.state.global_step, batches)
            a["steps_in_epoch"], a["num_update_steps_per_epoch"] = batches, updates
            self._refine_max_steps()
            args, kwargs = bound.args, bound.kwargs
        return super()._run_epoch(*args, **kwargs)

    def _refine_max_steps(self) -> None:
        total = self.epoch_plan.max_steps()
        if total is not None:
            self.state.max_steps = total

    def create_scheduler(self, num_training_steps, optimizer=None):
        # The schedule Trainer builds spans the planned steps; with epochs of their own length it is re-timed so that
        # epoch e covers its planned share in the steps it takes and the last step lands on the end value.
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if self._varying and self.epoch_plan.planned is not None and not isinstance(scheduler, EpochShareLR):
            if self._created_lr_scheduler and isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                self.lr_scheduler = EpochShareLR(scheduler, self.epoch_plan.virtual_step)
            else:  # only a schedule Trainer built from lr_scheduler_type (a LambdaLR) can be re-timed
                logger.warning(
                    f"dynamic_policy={self.policy.name!r} varies the epoch length, but the LR scheduler was not built "
                    "by Trainer from lr_scheduler_type: it steps once per optimizer step over the planned total and "
                    "may not reach its end value at the last step."
                )
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # InfoBatch: the model's loss is already a batch mean, so the per-sample 1/(1-r) weights are applied to a
        # cross-entropy recomputed from the logits with reduction="none" (hf_prune.dynamic.loss); the batch is
        # recorded here, as PruningTrainer.compute_loss would (from the same per-token losses for token logits).
        ids = self._step_sample_ids
        if ids is None or not model.training or not self.dynamic_sampler.weighted:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels, alignment = self._record_labels_of(inputs)  # before Trainer's compute_loss, which may pop them
        _, outputs = self._training_loss_and_outputs(model, inputs, num_items_in_batch)
        loss, tokens = self._weighted_loss(ids, outputs, labels, num_items_in_batch, alignment)
        if not self.record_clean_view:  # as PruningTrainer.compute_loss: with a clean pass, that pass records
            if tokens is not None and not self.args.label_smoothing_factor:
                self.recorder.add_tokens(ids, tokens)  # the loss's own per-token pass, detached: what `add` computes
            else:
                self._record_training_batch(ids, outputs, labels, alignment)
        return (loss, outputs) if return_outputs else loss

    # ------------------------------------------------------------------ PruningTrainer's extension points

    def _begin_run(self, checkpoint: str | None) -> None:
        # A fresh policy table, or the checkpoint's: a resumed run draws the same selections as an uninterrupted one.
        super()._begin_run(checkpoint)
        self._ever_trained = None
        self.dynamic_sampler.reset()
        self.dynamic_timing = []
        self.epoch_plan.reset()
        saved = Path(checkpoint) / CHECKPOINT_DYNAMIC_DIR if checkpoint else None
        if saved is not None and has_sampler_state(saved):
            extra = load_sampler_state(saved, self.dynamic_sampler)
            self.dynamic_timing = list(extra.get("timing", []))
            self.epoch_plan.load_state_dict(extra.get("epoch_log", {}))

    def _begin_epoch(self, epoch: int) -> None:
        # Scores (when due) and selects the samples of `epoch`, before Trainer sets the epoch and iterates. Every rank
        # runs it (the scoring pass gathers).
        super()._begin_epoch(epoch)
        self._scoring_s = 0.0
        sampler = self.dynamic_sampler
        if self.args.dynamic_scoring == "pass" and self.policy.uses_scores and sampler.needs_selection(epoch):
            start = time.perf_counter()
            ids, labels, losses = self._scoring_pass()
            sampler.update(self.position_of[ids], losses, labels)
            self._scoring_s = time.perf_counter() - start
        sampler.set_epoch(epoch)
        self._epoch_start = time.perf_counter()

    def _end_epoch_extras(self, epoch: int) -> None:
        # Feeds the epoch's training losses to the policy (dynamic_scoring="train_loss") and notes its timing. The
        # table is the same on every rank: (id, label, loss) of every rank's rows, gathered and de-duplicated by id.
        super()._end_epoch_extras(epoch)
        train_s = time.perf_counter() - self._epoch_start if self._epoch_start is not None else float("nan")
        self._epoch_start = None
        if self._uses_train_losses:
            ids, labels, values = self.recorder.gather(self.accelerator, signals=["loss"])
            if len(ids):
                pos = self.position_of[ids]
                ok = pos >= 0
                self.dynamic_sampler.update(pos[ok], np.asarray(values["loss"])[ok], np.asarray(labels)[ok])
        selection = self.dynamic_sampler.selection
        self.dynamic_timing.append(
            {
                "epoch": int(epoch),
                "train_s": round(float(train_s), 4),
                "scoring_s": round(float(self._scoring_s), 4),
                "num_selected": int(selection.ids.size) if selection is not None else 0,
            }
        )
        self._scoring_s = 0.0

    def _record_signals(self) -> list[str]:
        # The record holds each epoch's selection mask beside the recorded signals.
        return [*super()._record_signals(), SELECTED_SIGNAL]

    def _extra_record_rows(self, epoch: int) -> dict[str, np.ndarray]:
        # `selected`: 1 for the samples of the epoch's selection, 0 for the others, NaN outside the dataset.
        n = self.position_of.shape[0]
        selected = np.full(n, np.nan, dtype=np.float32)
        sampler = self.dynamic_sampler
        if sampler.epoch == epoch and sampler.selection is not None:
            selected[self.sample_ids] = 0.0
            selected[self.sample_ids[sampler.selection.ids]] = 1.0
        return {**super()._extra_record_rows(epoch), SELECTED_SIGNAL: selected}

    def _extra_record_metadata(self) -> dict[str, Any]:
        # How the run selected, for `selection_counts`, cards and benchmarks.
        sampler = self.dynamic_sampler
        dynamic = {
            "policy": self.policy.name,
            "params": self.policy.params,
            "scoring": self.args.dynamic_scoring,
            "pruning_period": sampler.pruning_period,
            "num_kept_per_epoch": sampler.num_keep,
            "varying_length": self._varying,
            "num_samples": sampler.num_samples,
            "seed": sampler.seed,
            "epochs": self.dynamic_timing,
        }
        return {**super()._extra_record_metadata(), "dynamic": dynamic}

    def _extra_pruning_logs(self, trained: int) -> dict[str, float]:
        # The epoch's kept count, the share of samples ever selected so far and the scoring pass's time.
        logs = super()._extra_pruning_logs(trained)
        timing = self.dynamic_timing[-1] if self.dynamic_timing else {}
        if self._ever_trained is None:
            self._ever_trained = np.zeros(self.num_samples, dtype=bool)
        selection = self.dynamic_sampler.selection
        if selection is not None:
            chosen = np.asarray(self.sample_ids[selection.ids], dtype=np.int64)
            self._ever_trained[chosen[(chosen >= 0) & (chosen < self.num_samples)]] = True
        kept = int(timing.get("num_selected", trained))
        logs["pruning/kept"] = kept
        logs["pruning/kept_fraction"] = round(kept / self.num_samples, 6)
        logs["pruning/ever_selected_fraction"] = round(float(self._ever_trained.mean()), 6)
        logs["pruning/scoring_seconds"] = round(float(timing.get("scoring_s", 0.0)), 4)
        return logs

    def _save_checkpoint_extras(self, checkpoint: Path) -> None:
        # The sampler's state is the same on every rank: the main process writes it.
        super()._save_checkpoint_extras(checkpoint)
        if self.accelerator.is_main_process:
            save_sampler_state(checkpoint / CHECKPOINT_DYNAMIC_DIR, self.dynamic_sampler, timing=self.dynamic_timing,
                               epoch_log=self.epoch_plan.state_dict())  # fmt: skip

    def _pruning_card_kwargs(self) -> dict[str, Any]:
        # The model card says which policy pruned the training data.
        args = self.args
        dynamic = {"policy": args.dynamic_policy, "prune_ratio": args.dynamic_prune_ratio,
                   "pruning_period": args.pruning_period}  # fmt: skip
        return {**super()._pruning_card_kwargs(), "dynamic": dynamic}

    # ------------------------------------------------------------------ scoring pass and loss weights

    def _scoring_pass(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raju et al.'s checkpoint observation: the loss of every training sample under the current model.

        Uses `clean_view_dataset` (eval transform) when the trainer has one, else the train dataset; eval mode, no
        grad, the eval batch size, sharded across ranks and gathered (de-duplicated by id) like the recorder.

        Returns:
            `(ids, labels, losses)`, the same on every rank.
        """
        dataset = self.clean_view_dataset if self.clean_view_dataset is not None else self.train_dataset
        recorder = Recorder(["loss"])
        self._forward_pass(dataset, recorder, "Dynamic pruning scoring")
        ids, labels, values = recorder.gather(self.accelerator, device=self.args.device)
        return ids, labels, values["loss"]

    def _loss_weights_by_id(self, device) -> torch.Tensor:
        """The current selection's loss weights indexed by *sample id*, on `device`: built on the host once per
        selection, so the training step only indexes it."""
        sampler = self.dynamic_sampler
        selection = sampler.selection
        if self._id_weights is None or self._id_weights_of is not selection or self._id_weights.device != device:
            table = torch.ones(self.position_of.shape[0], dtype=torch.float32)
            table[torch.from_numpy(self.sample_ids)] = sampler.weight_table("cpu")
            self._id_weights, self._id_weights_of = table.to(device), selection
        return self._id_weights

    def _weighted_loss(self, ids: torch.Tensor, outputs, labels: torch.Tensor, num_items_in_batch,
                       alignment: str | None = None):  # fmt: skip
        """Per-sample weighted cross-entropy of a training micro-batch (InfoBatch's rescaling), see
        `hf_prune.dynamic.loss`: from `[batch, classes]` logits, or per sequence from token logits (or a fused LM
        head's per-token log-probabilities), as a token mean like the model's own loss.

        The weights are looked up on the device (`_loss_weights_by_id`): no host synchronisation. The reduction
        follows `Trainer`'s own rule: a mean over the micro-batch (then divided by the accumulation steps by
        `Trainer`) unless `Trainer` passes `num_items_in_batch` to models that take it, in which case the sum is
        divided by it (and multiplied by the number of processes with `average_tokens_across_devices`, as
        `Trainer.compute_loss` does).
        """
        smoothing = float(self.args.label_smoothing_factor or 0.0)
        # without smoothing (and without a clean pass) the step's record reuses these per-token losses
        signals = () if smoothing or self.record_clean_view else self.recorder.signals
        tokens = self._token_losses_of(outputs, labels, alignment, keep_grad=True, label_smoothing=smoothing,
                                       with_correct="correct" in signals, with_entropy="entropy" in signals)  # fmt: skip
        device = tokens.loss.device if tokens is not None else logits_of(outputs).device
        table = self._loss_weights_by_id(device)
        weights = table[ids.to(table.device, non_blocking=True).long()]
        scaled = getattr(self, "loss_is_scaled_for_ga", None)
        if scaled is None:  # Trainer.training_step's own rule
            scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
                self.compute_loss_func is not None
            )
        denominator = num_items_in_batch if scaled else None
        if tokens is not None:
            loss = weighted_token_loss(tokens, weights, num_items_in_batch=denominator)
        else:
            loss = weighted_cross_entropy(logits_of(outputs), labels, weights, num_items_in_batch=denominator,
                                          label_smoothing=smoothing)  # fmt: skip
        if scaled and num_items_in_batch is None:
            loss = loss / self.current_gradient_accumulation_steps
        elif scaled and self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        return loss, tokens
