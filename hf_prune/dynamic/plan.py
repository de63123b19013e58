"""Epochs of their own length (InfoBatch as published, RS2, SeTa), independent of any training loop: the *plan* of
optimizer steps per epoch made before training, the *epoch log* of what each epoch ran, and `EpochShareLR`, the LR
schedule over the steps actually taken. `DynamicPruningTrainer` drives them from `Trainer`'s hooks; a loop of your
own can use them the same way.

```
before training   plan:      P_e = steps(batches(sampler.max_selected(e)))    for e = 0 .. E-1; max_steps = sum P_e
epoch e drawn     log:       {start_step, steps L_e}  (kept from the checkpoint when resuming inside e)
                  max_steps: steps so far + L_e + sum_{e' > e} P_e'   (exact from the last pruned epoch on)
LR schedule       step j of epoch e sits at V_e + j P_e / L_e,  V_e = sum_{e' < e} P_e'   (EpochShareLR)
resume at step s  the epoch e with start_e <= s < start_e + L_e, and (s - start_e) x grad. accumulation batches done
```

`Trainer` computes the steps per epoch, `max_steps` and the LR schedule once, from `len(train_dataloader)`; with these
pieces every epoch runs exactly its own batches (no empty optimizer step, no truncated epoch, the last gradient-
accumulation group complete), `max_steps` ends equal to the steps taken, and the schedule reaches its end value at the
last step. For InfoBatch (every epoch planned at full length) the schedule is the authors' epoch-indexed one (at the
start of epoch `e` it is at `e / E`), without their code's one-epoch lag; for RS2 (lengths known exactly) it is the
plain step schedule over the exact total. The plan bounds each epoch by `DynamicPruningSampler.max_selected(e)`: exact
for RS2, `n` for InfoBatch, the random-stage size for SeTa, each fitted to whole distributed batches as the sampler
fits the epochs it draws. (InfoBatch's authors estimate nothing: their count per epoch depends on the losses. Exact
are the number of epochs and, once an epoch is drawn, its length.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


__all__ = ["EpochPlan", "EpochShareLR"]


class EpochPlan:
    """The planned optimizer steps of every epoch and the log of the epochs run, for epochs of varying length.

    Args:
        gradient_accumulation_steps (`int`, *optional*, defaults to 1): batches per optimizer step.

    Attributes:
        planned (`list[int]` or `None`): planned optimizer steps per epoch (`None`: no plan, e.g. a step budget).
        epoch_log (`dict[int, dict]`): `{epoch: {"start_step", "steps"}}` of the epochs drawn so far.

    Example:

    ```python
    >>> from hf_prune.dynamic.plan import EpochPlan
    >>> plan = EpochPlan(gradient_accumulation_steps=1)
    >>> plan.planned = [8, 8, 8]                       # e.g. InfoBatch: every epoch bounded by the full data
    >>> plan.start_epoch(0, global_step=0, num_batches=8), plan.start_epoch(1, global_step=8, num_batches=5)
    (8, 5)
    >>> plan.max_steps(), plan.virtual_step(8 + 5)     # 8 + 5 + 8 steps; epoch 1's 5 steps cover 8 of the schedule
    (21, 16.0)
    ```
    """

    def __init__(self, gradient_accumulation_steps: int = 1):
        self.gradient_accumulation_steps = int(gradient_accumulation_steps)
        self.planned: list[int] | None = None
        self.epoch_log: dict[int, dict[str, int]] = {}

    def update_steps(self, num_batches: int) -> int:
        """Optimizer steps of an epoch of `num_batches` batches, `Trainer`'s own count (at least 1)."""
        ga = self.gradient_accumulation_steps
        return max(num_batches // ga + int(num_batches % ga > 0), 1)

    def make(self, sampler, num_epochs: int, count_batches: Callable[[], int]) -> tuple[int, int]:
        """Plans `num_epochs` epochs: epoch `e` at its bound `sampler.max_selected(e)` samples, counted in batches by
        `count_batches()` while `len(sampler)` is that bound (so the run's own loader counts them: drop_last, world
        size and batch size included).

        Returns:
            `(batches of epoch 0, samples of the whole plan)`; `planned` holds the steps per epoch.
        """
        planned, first, samples = [], None, 0
        for epoch in range(int(num_epochs)):
            bound = sampler.max_selected(epoch)
            with sampler.assume_length(bound):
                batches = count_batches()
            first = batches if first is None else first
            planned.append(self.update_steps(batches))
            samples += bound
        self.planned = planned
        return first, samples

    @property
    def total_steps(self) -> int | None:
        """The planned optimizer steps of the whole run (`None` without a plan)."""
        return None if self.planned is None else int(sum(self.planned))

    def reset(self) -> None:
        """Forgets the epochs run (a fresh run; the plan is remade by `make`)."""
        self.epoch_log = {}

    def start_epoch(self, epoch: int, global_step: int, num_batches: int) -> int:
        """Logs `epoch` as starting at `global_step` with `num_batches` batches (an epoch already logged, resumed
        inside, keeps its entry) and returns its optimizer steps."""
        steps = self.update_steps(num_batches)
        self.epoch_log.setdefault(int(epoch), {"start_step": int(global_step), "steps": steps})
        return steps

    def max_steps(self) -> int | None:
        """The run's steps as known now: the steps up to the end of the last epoch drawn plus the plan of the epochs
        left (`None` without a plan or before the first epoch)."""
        if self.planned is None or not self.epoch_log:
            return None
        last = max(self.epoch_log)
        entry = self.epoch_log[last]
        return entry["start_step"] + entry["steps"] + int(sum(self.planned[last + 1 :]))

    def resume_position(self, global_step: int, skip_batches: bool = True) -> tuple[int, int] | None:
        """`(epoch, batches already done in it)` at `global_step`, from the epoch log (`None` when it is empty);
        `skip_batches=False` (Trainer's `ignore_data_skip`) restarts the epoch's data from its first batch."""
        if not self.epoch_log:
            return None
        for epoch in sorted(self.epoch_log):
            start, steps = self.epoch_log[epoch]["start_step"], self.epoch_log[epoch]["steps"]
            if start <= global_step < start + steps:
                return epoch, (global_step - start) * self.gradient_accumulation_steps if skip_batches else 0
        return max(self.epoch_log) + 1, 0

    def virtual_step(self, step: float) -> float:
        """Where the run's LR schedule is after `step` optimizer steps: epoch `e`'s steps cover its planned share of
        the schedule (identity without a plan and for epochs that ran as planned)."""
        if self.planned is None or not self.epoch_log:
            return step
        planned_before = 0
        for epoch in sorted(self.epoch_log):
            planned = self.planned[epoch] if epoch < len(self.planned) else self.epoch_log[epoch]["steps"]
            start, steps = self.epoch_log[epoch]["start_step"], self.epoch_log[epoch]["steps"]
            if step <= start + steps:
                return float(sum(self.planned[:epoch]) + (step - start) * planned / steps)
            planned_before = sum(self.planned[: epoch + 1])
            last_end = start + steps
        return float(planned_before + step - last_end)

    def state_dict(self) -> dict[str, Any]:
        """The epoch log as JSON-able values (the plan is remade from the arguments when training resumes)."""
        return {str(k): dict(v) for k, v in self.epoch_log.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch_log = {int(k): dict(v) for k, v in state.items()}


class EpochShareLR(torch.optim.lr_scheduler.LambdaLR):
    """A `LambdaLR` that evaluates another `LambdaLR`'s factors at `position(step)` instead of at `step`: how a
    schedule built over the planned steps runs over the steps actually taken (see the module docstring).

    Args:
        scheduler (`torch.optim.lr_scheduler.LambdaLR`): the schedule `Trainer` built (its optimizer and factors).
        position (`Callable[[float], float]`): optimizer steps taken -> position in that schedule
            (`EpochPlan.virtual_step`).
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
