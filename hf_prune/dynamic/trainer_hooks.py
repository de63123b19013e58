"""The adapter between `PruningTrainer` and a `DynamicPruningSampler`: the only module of `hf_prune.dynamic` that knows
`transformers.Trainer`.

```
on_epoch_begin(e) (every rank)
    scoring="pass" and a new selection is due: forward pass over the whole train set (eval mode, no grad),
        losses gathered across ranks and de-duplicated by id ──> sampler.update        (timed: "scoring_s")
    sampler.set_epoch(e) ──> the epoch's selection, identical on every rank; its loss weights go to the device once
_run_epoch(e): the epoch's own number of batches and optimizer steps (varying-length policies)
training steps: the sampler's k_e indices, sharded by accelerate; compute_loss applies InfoBatch weights per
    sample by indexing the device weight table with the batch's sample ids (no host synchronisation)
on_epoch_end(e) (every rank), inside PruningTrainer._end_recording_epoch
    Recorder.gather(signals=["loss"]): (id, label, loss) of every rank, de-duplicated ──> scoring="train_loss":
        sampler.update(ids, loss)                                                                        ("train_s")
    main process: record_rows(e) ──> the record row of epoch e gets the "selected" mask (1 selected, 0 not)
_save_checkpoint: sampler + policy table + timings + epoch log ──> checkpoint-N/dynamic_pruning/ ;
    train(resume_from_checkpoint) restores them, so the resumed run draws the same selections as an uninterrupted one
```

Varying epoch lengths (InfoBatch as published, RS2, SeTa). `Trainer` computes the steps per epoch, `max_steps` and
the LR schedule once, from `len(train_dataloader)`. Here, through four small overrides of `PruningTrainer`:

* `set_initial_training_values`: the *plan*. Before training, every epoch's length is bounded by
  `policy.max_selected(e)` (exact for RS2, `n` for InfoBatch, the random-stage size for SeTa), counted in batches
  through the run's own dataloader; `max_steps` is the plan's total `sum_e P_e`, an upper bound of the steps taken.
  (InfoBatch's authors estimate nothing: their count per epoch depends on the losses. Exact are the number of
  epochs and, once an epoch is drawn, its length.) With `max_steps` set by the user the run is a step budget
  instead: epochs run until `max_steps`, the schedule spans exactly `max_steps` and nothing is planned.
* `_run_epoch`: each epoch runs exactly its own batches (`len(train_dataloader)` once its selection is drawn):
  no empty optimizer step, the last gradient-accumulation group is complete, `state.epoch` ends on a whole number,
  and `state.max_steps` is refined to `steps so far + this epoch + the plan of the epochs left` (exact from the
  last pruned epoch on, equal to the steps taken at the end).
* `create_scheduler`: the LR schedule of `lr_scheduler_type` is built over the planned total and epoch `e` covers its
  planned share `[V_e, V_e + P_e]` in the `L_e` steps it actually takes (step `j` of the epoch is at
  `V_e + j P_e / L_e`). For InfoBatch (every epoch planned at full length) this is the authors' epoch-indexed
  schedule (at the start of epoch `e` the schedule is at `e / C`), without their code's one-epoch lag; for RS2
  (lengths known exactly) it is the plain step schedule over the exact total. The last step lands on the
  schedule's end value.
* `_init_training_state`: on resume, the epoch and the steps done in it come from the checkpoint's epoch log (each
  epoch's first step and length), not from `global_step // steps_per_epoch`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from ..recording import Recorder, logits_of
from ..sample_ids import SAMPLE_ID_COLUMN, is_iterable_dataset, sample_ids_of
from .analysis import SELECTED_SIGNAL
from .base import DynamicPolicy, get_policy
from .loss import weighted_cross_entropy
from .sampler import DynamicPruningSampler


logger = logging.get_logger(__name__)

SCORING_MODES = ("pass", "train_loss")
CHECKPOINT_DYNAMIC_DIR = "dynamic_pruning"


def policy_from_args(args, num_epochs: int | None = None) -> DynamicPolicy:
    """Builds the policy named by `args.dynamic_policy` from the `PruningArguments` dynamic fields."""
    name = args.dynamic_policy
    params: dict[str, Any] = {"prune_ratio": args.dynamic_prune_ratio}
    if name in ("uncertainty_ema", "epsilon_greedy", "ucb"):
        params["alpha"] = args.dynamic_alpha
        params["class_balanced"] = bool(getattr(args, "dynamic_class_balanced", False))
    if name == "epsilon_greedy":
        params["epsilon"] = args.dynamic_epsilon
    if name == "ucb":
        params["c"] = args.dynamic_c
    if name == "infobatch":
        params.update(delta=args.infobatch_delta, max_ratio=args.infobatch_max_ratio, num_epochs=num_epochs,
                      fixed_budget=bool(getattr(args, "infobatch_fixed_budget", False)))  # fmt: skip
    if name == "seta":
        params.update(num_groups=getattr(args, "seta_num_groups", 5), window_scale=getattr(args, "seta_window_scale", 0.9),
                      delta=getattr(args, "seta_delta", 0.875), num_epochs=num_epochs)  # fmt: skip
    return get_policy(name, **params)


def num_epochs_of(args) -> int | None:
    """The run's number of epochs, when `args` fix it (not with `max_steps`)."""
    return None if args.max_steps > 0 else max(1, int(math.ceil(args.num_train_epochs)))


class TrainerDynamicPruning:
    """Runs a dynamic pruning policy inside `PruningTrainer` (built by it when `args.dynamic_policy` is set).

    Attributes:
        sampler (`DynamicPruningSampler`): what `PruningTrainer._get_train_sampler` returns.
        timing (`list[dict]`): per epoch `{"epoch", "train_s", "scoring_s", "num_selected"}`, also written to the
            score record's metadata under `"dynamic"`.
    """

    def __init__(self, trainer):
        args = trainer.args
        dataset = trainer.train_dataset
        if is_iterable_dataset(dataset) or not hasattr(dataset, "__len__"):
            raise ValueError(
                "Dynamic pruning selects rows of a map-style train dataset; got an IterableDataset. Pass the "
                "`datasets.Dataset` itself (or use `hf_prune.dynamic.DynamicPruningDataset` in your own loop)."
            )
        if args.dynamic_scoring not in SCORING_MODES:
            raise ValueError(f"dynamic_scoring must be one of {SCORING_MODES}; got {args.dynamic_scoring!r}.")
        if getattr(args, "train_sampling_strategy", "random") not in (None, "random"):
            logger.warning(
                f"dynamic_policy={args.dynamic_policy!r} replaces the train sampler: train_sampling_strategy="
                f"{args.train_sampling_strategy!r} is ignored."
            )
        self.trainer = trainer
        self.scoring = args.dynamic_scoring
        self.policy = policy_from_args(args, num_epochs_of(args))
        n = len(dataset)
        # Positions (what the sampler yields) -> sample ids (what the recorder and the record use).
        self.sample_ids = sample_ids_of(dataset)
        self.position_of = np.full(int(max(trainer.num_samples, self.sample_ids.max() + 1)), -1, dtype=np.int64)
        self.position_of[self.sample_ids] = np.arange(n)
        world = trainer.accelerator.num_processes
        self.sampler = DynamicPruningSampler(
            self.policy,
            num_samples=n,
            seed=args.data_seed if args.data_seed is not None else args.seed,
            pruning_period=args.pruning_period,
            multiple_of=world * args.per_device_train_batch_size if args.dynamic_round_to_batches else 1,
        )
        self.timing: list[dict[str, Any]] = []
        self._epoch_start: float | None = None
        self._scoring_s = 0.0
        # Varying epoch lengths: planned optimizer steps per epoch, and {epoch: {"start_step", "steps"}} as run.
        self.varying = not self.policy.fixed_length
        self.plan: list[int] | None = None
        self.epoch_log: dict[int, dict[str, int]] = {}
        # InfoBatch's loss weights indexed by sample id, on the training device (rebuilt once per selection).
        self._id_weights: torch.Tensor | None = None
        self._id_weights_of: Any = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def record_signals(self) -> list[str]:
        """Extra signals the score record holds for dynamic pruning."""
        return [SELECTED_SIGNAL]

    def metadata(self) -> dict[str, Any]:
        return {
            "policy": self.policy.name,
            "params": self.policy.params,
            "scoring": self.scoring,
            "pruning_period": self.sampler.pruning_period,
            "num_kept_per_epoch": self.sampler.num_keep,
            "varying_length": self.varying,
            "num_samples": self.sampler.num_samples,
            "seed": self.sampler.seed,
            "epochs": self.timing,
        }

    def start(self, checkpoint: str | None) -> None:
        """Called by `PruningTrainer.train`: fresh state, or the state saved in `checkpoint`."""
        saved = Path(checkpoint) / CHECKPOINT_DYNAMIC_DIR if checkpoint else None
        self.sampler.reset()
        self.timing = []
        self.epoch_log = {}
        if saved is not None and (saved / "state.json").exists():
            self.load(saved)

    def begin_epoch(self, epoch: int) -> None:
        """Scores (when due) and selects the samples of `epoch`. Every rank calls it (the pass gathers)."""
        self._scoring_s = 0.0
        if self.scoring == "pass" and self.policy.uses_scores and self.sampler.needs_selection(epoch):
            start = time.perf_counter()
            ids, labels, losses = self._scoring_pass()
            self.sampler.update(self.position_of[ids], losses, labels)
            self._scoring_s = time.perf_counter() - start
        self.sampler.set_epoch(epoch)
        self._epoch_start = time.perf_counter()

    @property
    def uses_train_losses(self) -> bool:
        """Whether `end_epoch` needs the epoch's gathered training losses (`dynamic_scoring="train_loss"`)."""
        return self.scoring == "train_loss" and self.policy.uses_scores

    def end_epoch(self, epoch: int, table=None) -> None:
        """Feeds the epoch's training losses to the policy (every rank) and notes the epoch's timing.

        `table` is `Recorder.gather(accelerator, signals=["loss"])`'s `(ids, labels, {"loss": values})`: the (id, loss)
        pairs of every sample seen this epoch, identical on every rank; needed only when `uses_train_losses`.
        """
        train_s = time.perf_counter() - self._epoch_start if self._epoch_start is not None else float("nan")
        self._epoch_start = None
        if self.uses_train_losses and table is not None and len(table[0]):
            ids, labels, values = table
            pos = self.position_of[ids]
            ok = pos >= 0
            self.sampler.update(pos[ok], np.asarray(values["loss"])[ok], np.asarray(labels)[ok])
        self.timing.append(
            {
                "epoch": int(epoch),
                "train_s": round(float(train_s), 4),
                "scoring_s": round(float(self._scoring_s), 4),
                "num_selected": int(self.sampler.selection.ids.size) if self.sampler.selection is not None else 0,
            }
        )
        self._scoring_s = 0.0

    def record_rows(self, epoch: int) -> dict[str, np.ndarray]:
        """The whole rows `[n]` the score record holds next to the recorded signals for `epoch` (main process):
        `selected` is 1 for the samples selected, 0 for those not, NaN outside the dataset."""
        n = self.position_of.shape[0]
        selected = np.full(n, np.nan, dtype=np.float32)
        if self.sampler.epoch == epoch and self.sampler.selection is not None:
            selected[self.sample_ids] = 0.0
            selected[self.sample_ids[self.sampler.selection.ids]] = 1.0
        return {SELECTED_SIGNAL: selected}

    # ------------------------------------------------------------------ loss

    @property
    def weighted(self) -> bool:
        return self.sampler.weighted

    def weights_by_id(self, device) -> torch.Tensor:
        """The current selection's loss weights indexed by *sample id*, on `device`: built on the host once per
        selection, so the training step only indexes it."""
        selection = self.sampler.selection
        if self._id_weights is None or self._id_weights_of is not selection or self._id_weights.device != device:
            table = torch.ones(self.position_of.shape[0], dtype=torch.float32)
            table[torch.from_numpy(self.sample_ids)] = self.sampler.weight_table("cpu")
            self._id_weights, self._id_weights_of = table.to(device), selection
        return self._id_weights

    def weighted_loss(self, ids: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch):
        """Per-sample weighted cross-entropy of a training micro-batch (InfoBatch's rescaling), see `loss.py`.

        The weights are looked up on the device (`weights_by_id`): no host synchronisation. The reduction follows
        `Trainer`'s own rule: a mean over the micro-batch (then divided by the accumulation steps by `Trainer`) unless
        `Trainer` passes `num_items_in_batch` to models that take it, in which case the sum is divided by it (and
        multiplied by the number of processes with `average_tokens_across_devices`, as `Trainer.compute_loss` does).
        """
        trainer = self.trainer
        table = self.weights_by_id(logits.device)
        weights = table[ids.to(table.device, non_blocking=True).long()]
        scaled = getattr(trainer, "loss_is_scaled_for_ga", None)
        if scaled is None:  # Trainer.training_step's own rule
            scaled = (trainer.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
                trainer.compute_loss_func is not None
            )
        loss = weighted_cross_entropy(
            logits,
            labels,
            weights,
            num_items_in_batch=num_items_in_batch if scaled else None,
            label_smoothing=float(trainer.args.label_smoothing_factor or 0.0),
        )
        if scaled and num_items_in_batch is None:
            loss = loss / trainer.current_gradient_accumulation_steps
        elif scaled and trainer.args.average_tokens_across_devices:
            loss = loss * trainer.accelerator.num_processes
        return loss

    # ------------------------------------------------------------------ varying epoch lengths

    def _update_steps(self, num_batches: int) -> int:
        ga = self.trainer.args.gradient_accumulation_steps
        return max(num_batches // ga + int(num_batches % ga > 0), 1)  # Trainer's own count

    def initial_training_values(self, args, dataloader, values: tuple) -> tuple:
        """`Trainer.set_initial_training_values` for varying-length policies: `max_steps` from the plan (see the
        module docstring); unchanged for fixed-length ones."""
        if not self.varying:
            return values
        num_train_epochs, _, num_examples, _, total_batch, _, max_steps = values
        if args.max_steps > 0:  # a step budget: as many epochs as it takes
            self.plan = None
            epochs = sys.maxsize
            return epochs, values[1], num_examples, args.max_steps * total_batch, total_batch, values[5], max_steps
        if float(args.num_train_epochs) != int(num_train_epochs):
            raise ValueError(
                f"dynamic_policy={self.policy.name!r} gives every epoch its own length, so it needs a whole number of "
                f"epochs (num_train_epochs={args.num_train_epochs}) or a step budget (max_steps)."
            )
        plan, batches, samples = [], [], 0
        for epoch in range(int(num_train_epochs)):
            bound = self.sampler.max_selected(epoch)
            with self.sampler.assume_length(bound):
                batches.append(len(dataloader))
            plan.append(self._update_steps(batches[-1]))
            samples += bound
        self.plan = plan
        return num_train_epochs, plan[0], num_examples, samples, total_batch, batches[0], int(sum(plan))

    def epoch_lengths(self, epoch: int, dataloader, steps_in_epoch: int, num_update_steps: int) -> tuple[int, int]:
        """`(batches, optimizer steps)` of `epoch` once its selection is drawn; logs its first step (kept from the
        checkpoint when resuming inside it) and refines `state.max_steps`."""
        if not self.varying:
            return steps_in_epoch, num_update_steps
        state = self.trainer.state
        batches = len(dataloader)
        updates = self._update_steps(batches)
        self.epoch_log.setdefault(int(epoch), {"start_step": int(state.global_step), "steps": updates})
        self._refine_max_steps()
        return batches, updates

    def _refine_max_steps(self) -> None:
        if self.plan is None or not self.epoch_log:
            return
        last = max(self.epoch_log)
        entry = self.epoch_log[last]
        self.trainer.state.max_steps = entry["start_step"] + entry["steps"] + int(sum(self.plan[last + 1 :]))

    def resume_position(self, global_step: int, epochs_trained: int, steps_in_epoch: int) -> tuple[int, int]:
        """`(epochs_trained, batches to skip in that epoch)` at `global_step`, from the restored epoch log."""
        if not self.varying or not self.epoch_log:
            return epochs_trained, steps_in_epoch
        ga = self.trainer.args.gradient_accumulation_steps
        skip = not self.trainer.args.ignore_data_skip
        for epoch in sorted(self.epoch_log):
            start, steps = self.epoch_log[epoch]["start_step"], self.epoch_log[epoch]["steps"]
            if start <= global_step < start + steps:
                self._refine_max_steps()
                return epoch, (global_step - start) * ga if skip else 0
        self._refine_max_steps()
        return max(self.epoch_log) + 1, 0

    def virtual_step(self, step: float) -> float:
        """Where the run's LR schedule is after `step` optimizer steps: epoch `e`'s steps cover its planned share of
        the schedule (identity for fixed-length policies, a step budget, and epochs that ran as planned)."""
        if self.plan is None or not self.epoch_log:
            return step
        planned_before = 0
        for epoch in sorted(self.epoch_log):
            planned = self.plan[epoch] if epoch < len(self.plan) else self.epoch_log[epoch]["steps"]
            start, steps = self.epoch_log[epoch]["start_step"], self.epoch_log[epoch]["steps"]
            if step <= start + steps:
                return float(sum(self.plan[:epoch]) + (step - start) * planned / steps)
            planned_before = sum(self.plan[: epoch + 1])
            last_end = start + steps
        return float(planned_before + step - last_end)

    def wrap_scheduler(self, scheduler, created: bool):
        """The trainer's LR scheduler, stepping through `virtual_step` for varying-length policies. Only schedulers
        `Trainer` built from `lr_scheduler_type` (a `LambdaLR`) can be re-timed; others are left as they are."""
        if not self.varying or self.plan is None or isinstance(scheduler, EpochShareLR):
            return scheduler
        if not created or not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            logger.warning(
                f"dynamic_policy={self.policy.name!r} varies the epoch length, but the LR scheduler was not built by "
                "Trainer from lr_scheduler_type: it steps once per optimizer step over the planned total and may not "
                "reach its end value at the last step."
            )
            return scheduler
        return EpochShareLR(scheduler, self.virtual_step)

    # ------------------------------------------------------------------ scoring pass

    @torch.no_grad()
    def _scoring_pass(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raju et al.'s checkpoint observation: the loss of every training sample under the current model.

        Uses `clean_view_dataset` (eval transform) when the trainer has one, else the train dataset; eval mode,
        no grad, the eval batch size, sharded across ranks and gathered (de-duplicated by id) like the recorder.
        """
        trainer = self.trainer
        dataset = trainer.clean_view_dataset if trainer.clean_view_dataset is not None else trainer.train_dataset
        # Not `get_eval_dataloader`: with persistent workers it would hand back the cached eval loader.
        loader = trainer.sample_id_dataloader(dataset, "Dynamic pruning scoring")
        model = trainer.model_wrapped if trainer.model_wrapped is not None else trainer.model
        was_training = model.training
        model.eval()
        recorder = Recorder(["loss"])
        try:
            for batch in loader:
                batch = trainer._prepare_inputs(batch)
                ids = batch.pop(SAMPLE_ID_COLUMN)
                batch.pop("loss_weight", None)
                labels = trainer._labels_of(batch)
                with trainer.autocast_smart_context_manager():
                    outputs = model(**batch)
                recorder.add(ids, logits_of(outputs), labels)
        finally:
            model.train(was_training)
        ids, labels, values = recorder.gather(trainer.accelerator, device=trainer.args.device)
        return ids, labels, values["loss"]

    # ------------------------------------------------------------------ checkpoints

    def save(self, folder: str | Path) -> None:
        """Writes the sampler (selection, epoch), the policy's table and the timings to `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = self.sampler.state_dict()
        policy = state.pop("policy")
        arrays = {f"policy.{k}": v for k, v in policy.pop("tables").items()}
        for key in ("selection_ids", "selection_weights"):
            value = state.pop(key)
            if value is not None:
                arrays[key] = value
        np.savez(folder / "arrays.npz", **arrays)
        epoch_log = {str(k): v for k, v in self.epoch_log.items()}
        with open(folder / "state.json", "w") as f:
            json.dump({"sampler": state, "policy": policy, "timing": self.timing, "epoch_log": epoch_log}, f, indent=2,
                      default=float)  # fmt: skip

    def load(self, folder: str | Path) -> None:
        folder = Path(folder)
        with open(folder / "state.json") as f:
            meta = json.load(f)
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        policy = {**meta["policy"], "tables": {k[7:]: v for k, v in arrays.items() if k.startswith("policy.")}}
        state = {
            **meta["sampler"],
            "selection_ids": arrays.get("selection_ids"),
            "selection_weights": arrays.get("selection_weights"),
            "policy": policy,
        }
        self.sampler.load_state_dict(state)
        self.timing = list(meta.get("timing", []))
        self.epoch_log = {int(k): dict(v) for k, v in meta.get("epoch_log", {}).items()}


class EpochShareLR(torch.optim.lr_scheduler.LambdaLR):
    """A `LambdaLR` that evaluates another `LambdaLR`'s factors at `position(step)` instead of at `step`: how a
    schedule built over the planned steps runs over the steps actually taken (see the module docstring).

    Args:
        scheduler (`torch.optim.lr_scheduler.LambdaLR`): the schedule `Trainer` built (its optimizer and factors).
        position (`Callable[[float], float]`): optimizer steps taken -> position in that schedule.
    """

    def __init__(self, scheduler: torch.optim.lr_scheduler.LambdaLR, position):
        self.inner_lambdas = list(scheduler.lr_lambdas)
        self.position = position
        factors = [lambda step, f=f: f(self.position(step)) for f in self.inner_lambdas]
        super().__init__(scheduler.optimizer, factors)

    def state_dict(self):
        # The factors and the position function are rebuilt by the trainer; only the step count is state.
        state = super().state_dict()
        state.pop("inner_lambdas", None)
        state.pop("position", None)
        return state
