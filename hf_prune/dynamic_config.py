"""`DynamicPruningArguments`: `PruningArguments` plus the dynamic pruning policy that `DynamicPruningTrainer` runs.

As trl's configs (`DPOConfig` over `TrainingArguments`), it only adds fields, each with `metadata={"help": ...}`, checks
them in `__post_init__` and round-trips to JSON. The fields are the ones every policy shares; a policy's own
parameters go into `dynamic_policy_kwargs` (a dict, or a JSON string on the command line, as `TrainingArguments`'s
`lr_scheduler_kwargs`), validated against that policy's config dataclass (`hf_prune.dynamic.base.PolicyConfig`), so
adding a policy touches its own module only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .config import PruningArguments
from .dynamic import POLICIES, list_policies
from .selection import check_ratio


__all__ = ["SCORING_MODES", "DynamicPruningArguments"]

SCORING_MODES = ("pass", "train_loss")

# Parameters every policy config takes that come from other arguments, not from `dynamic_policy_kwargs`.
_FROM_OTHER_ARGUMENTS = {
    "prune_ratio": "it is `dynamic_prune_ratio`",
    "num_epochs": "it is filled from `num_train_epochs`",
}


@dataclass
class DynamicPruningArguments(PruningArguments):
    """`PruningArguments` plus the dynamic pruning policy that `DynamicPruningTrainer` runs (Raju et al. 2021's
    policies, InfoBatch, RS2, SeTa): the training subset is re-selected during training.

    - **dynamic_policy** -- `random_dynamic`, `uncertainty_ema`, `epsilon_greedy`, `ucb`, `infobatch`, `rs2` or
      `seta` (`hf_prune.dynamic.list_policies()`).
    - **dynamic_prune_ratio** -- fraction of the train set *removed* in each pruned epoch, in [0, 1) (InfoBatch: of
      its below-mean-loss samples; SeTa: by its random stage).
    - **pruning_period** -- `T_p`: epochs between re-selections (Raju et al. use 10).
    - **dynamic_scoring** -- `"pass"`: a forward pass over the whole train set at each re-selection (Raju et al.;
      its time counts); `"train_loss"`: the free training losses of the samples seen (unseen keep their last score).
    - **dynamic_policy_kwargs** -- the policy's own parameters, checked against its config: `alpha`,
      `class_balanced` (EMA policies), `epsilon` (`epsilon_greedy`), `c` (`ucb`), `delta`, `max_ratio`,
      `fixed_budget` (`infobatch`), `num_groups`, `window_scale`, `delta`, `max_ratio` (`seta`). `num_epochs` is
      filled from `num_train_epochs` for the policies that take it.
    - **dynamic_round_to_batches** -- fit every epoch's count to a multiple of `world_size x per_device batch` when
      the loader would otherwise pad (more than one process) or drop (`dataloader_drop_last`) samples, so every
      selected sample is used exactly once per epoch (see `DynamicPruningSampler`).

    InfoBatch (as published), RS2 and SeTa train a different number of samples each epoch: `DynamicPruningTrainer`
    gives every epoch its own steps, plans `max_steps` from the policy and runs the LR schedule over the steps taken
    (see `hf_prune.dynamic.plan`).

    Example:

    ```python
    >>> from hf_prune import DynamicPruningArguments
    >>> args = DynamicPruningArguments(output_dir="run", num_train_epochs=10, dynamic_policy="ucb",
    ...                                dynamic_prune_ratio=0.5, dynamic_policy_kwargs={"c": 2.0})
    >>> args.policy_params()
    {'prune_ratio': 0.5, 'c': 2.0}
    ```
    """

    dynamic_policy: str | None = field(
        default=None,
        metadata={
            "help": "Dynamic pruning policy re-selecting the training subset during training: random_dynamic, "
            "uncertainty_ema, epsilon_greedy, ucb (Raju et al. 2021), infobatch (Qin et al. 2024), rs2 (Okanovic et "
            "al. 2024) or seta (Zhou et al. 2025). Required."
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
    dynamic_policy_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "The policy's own parameters, as a dict or a JSON string, e.g. '{\"c\": 2.0}' for ucb, "
            "'{\"alpha\": 0.8, \"class_balanced\": true}' for the EMA policies, '{\"fixed_budget\": true}' for "
            "infobatch, '{\"num_groups\": 5, \"window_scale\": 0.9}' for seta. Unknown keys are refused with the "
            "accepted ones; num_epochs comes from num_train_epochs."
        },
    )
    dynamic_round_to_batches: bool = field(
        default=True,
        metadata={
            "help": "Fit every epoch's count to a multiple of world_size x per_device_train_batch_size when the loader "
            "would otherwise pad (several processes) or drop (dataloader_drop_last) samples, so every selected sample "
            "is used exactly once per epoch."
        },
    )

    @classmethod
    def _refuse_moved_arguments(cls, unknown: dict[str, Any]) -> None:
        # The policy-specific fields of earlier versions (dynamic_c, infobatch_delta, seta_num_groups...) are keys of
        # dynamic_policy_kwargs now: say which key, with the value given.
        moved = {k: v for k, v in unknown.items() if k.startswith(("dynamic_", "infobatch_", "seta_"))}
        if moved:
            keys = {name.split("_", 1)[1]: value for name, value in moved.items()}  # dynamic_c -> c, seta_delta -> delta
            raise TypeError(
                f"{cls.__name__} has no {', '.join(moved)}: a policy's own parameters go into "
                f"`dynamic_policy_kwargs`, e.g. dynamic_policy_kwargs={keys!r} (on the command line: "
                f"--dynamic_policy_kwargs '{json.dumps(keys, default=str)}')."
            )

    def __post_init__(self):
        super().__post_init__()
        if self.dynamic_policy is None:
            raise ValueError(
                f"DynamicPruningArguments needs `dynamic_policy`, one of {sorted(list_policies())}. To train without "
                "dynamic pruning use `PruningArguments` with `PruningTrainer`."
            )
        if self.dynamic_policy not in list_policies():
            raise ValueError(
                f"Unknown dynamic_policy {self.dynamic_policy!r}; choose from {sorted(list_policies())}."
            )
        check_ratio(self.dynamic_prune_ratio, "dynamic_prune_ratio")
        period = self.pruning_period
        if isinstance(period, bool) or int(period) != period or period < 1:
            raise ValueError(
                f"pruning_period must be an integer >= 1 (the number of epochs between two selections, T_p); got "
                f"{period!r}."
            )
        if self.dynamic_scoring not in SCORING_MODES:
            raise ValueError(
                f"dynamic_scoring must be 'pass' (a scoring pass over the train set every pruning_period epochs) or "
                f"'train_loss' (the training losses of the samples seen); got {self.dynamic_scoring!r}."
            )
        self.dynamic_policy_kwargs = self._parsed_policy_kwargs()
        # The policy's config checks its own parameters (alpha, c, delta...) with messages that say what to do.
        policy_class = POLICIES.get(self.dynamic_policy)
        policy_class.config_class.from_dict(self.policy_params())
        if policy_class.selects_every_epoch and self.pruning_period != 1:
            raise ValueError(
                f"dynamic_policy={self.dynamic_policy!r} draws a new selection every epoch (its rule counts them); "
                f"use pruning_period=1, got {self.pruning_period}."
            )
        if self.dynamic_scoring == "train_loss" and "loss" not in self.record_signals:
            self.record_signals = [*self.record_signals, "loss"]  # the losses train_loss scoring feeds the policy

    def _parsed_policy_kwargs(self) -> dict[str, Any]:
        """`dynamic_policy_kwargs` as a dict (a JSON string from the command line is parsed), its keys checked."""
        kwargs = self.dynamic_policy_kwargs
        if kwargs is None:
            return {}
        if isinstance(kwargs, str):
            try:
                kwargs = json.loads(kwargs) if kwargs.strip() else {}
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"dynamic_policy_kwargs must be a JSON object, e.g. '{{\"c\": 2.0}}'; got {kwargs!r} ({err})."
                ) from None
        if not isinstance(kwargs, dict):
            raise ValueError(f"dynamic_policy_kwargs must be a dict (or a JSON object); got {kwargs!r}.")
        fields = POLICIES.get(self.dynamic_policy).config_class.field_names()
        accepted = [f for f in fields if f not in _FROM_OTHER_ARGUMENTS]
        for key, why in _FROM_OTHER_ARGUMENTS.items():
            if key in kwargs:
                raise ValueError(f"dynamic_policy_kwargs must not hold {key!r}: {why}.")
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ValueError(
                f"dynamic_policy_kwargs has unknown key(s) {unknown} for dynamic_policy={self.dynamic_policy!r}; it "
                f"accepts {accepted or 'none'}."
            )
        return dict(kwargs)

    def policy_num_epochs(self) -> int | None:
        """The run's number of epochs as policies with an annealing tail take it (`num_epochs`): `num_train_epochs`
        rounded up, or `None` for a step budget (`max_steps`)."""
        return None if self.max_steps > 0 else max(1, int(math.ceil(self.num_train_epochs)))

    def policy_params(self) -> dict[str, Any]:
        """The keyword parameters of `get_policy(dynamic_policy, **params)`: `prune_ratio` (`dynamic_prune_ratio`),
        `dynamic_policy_kwargs`, and `num_epochs` (`policy_num_epochs()`) where the policy's config takes it."""
        params: dict[str, Any] = {"prune_ratio": self.dynamic_prune_ratio, **(self.dynamic_policy_kwargs or {})}
        if "num_epochs" in POLICIES.get(self.dynamic_policy).config_class.field_names():
            params["num_epochs"] = self.policy_num_epochs()
        return params

    def pruning_arguments(self, **changes: Any) -> PruningArguments:
        """The same arguments without dynamic pruning: a `PruningArguments` for a full-data run to compare with.

        Args:
            **changes: fields to change, as `dataclasses.replace` (e.g. `output_dir=`); every field is re-checked.
        """
        names = [f for f, spec in PruningArguments.__dataclass_fields__.items() if spec.init]
        return PruningArguments(**{**{name: getattr(self, name) for name in names}, **changes})
