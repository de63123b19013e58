"""`PruningArguments`: `TrainingArguments` plus what `PruningTrainer` records and how it prunes dynamically.

Like trl's configs it only adds fields to `TrainingArguments`, each with `metadata={"help": ...}` (so
`HfArgumentParser` gives every recipe a `--help` for them), checks them in `__post_init__` with messages that say
what to do, and round-trips to JSON through `TrainingArguments.to_json_string`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .dynamic import list_policies
from .dynamic.trainer_hooks import SCORING_MODES, num_epochs_of, policy_from_args
from .recording import DEFAULT_SIGNALS, check_record_dtype, check_signals
from .selection import check_ratio


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
    - **record_dtype** -- `"float32"` (default) or `"float16"` storage of the recorded values (half the disk).
    - **overwrite_score_record** -- start a new record although `<output_dir>/<score_record_dir>` holds one (the old
      one is moved aside to `<score_record_dir>.old-<time>`, never deleted). Without it such a run is refused.
    - **dyn_unc_window** -- the Dyn-Unc window `J` you will score this record with; checked against the number of
      epochs before training starts (Dyn-Unc needs `J < epochs`).

    Dynamic pruning (`hf_prune.dynamic`; off unless `dynamic_policy` is set):

    - **dynamic_policy** -- `random_dynamic`, `uncertainty_ema`, `epsilon_greedy`, `ucb`, `infobatch`, `rs2` or
      `seta`.
    - **dynamic_prune_ratio** -- fraction of the train set *removed* in each pruned epoch, in [0, 1) (InfoBatch: of
      its below-mean-loss samples; SeTa: by its random stage).
    - **pruning_period** -- `T_p`: epochs between re-selections (Raju et al. use 10).
    - **dynamic_scoring** -- `"pass"`: a forward pass over the whole train set at each re-selection (Raju et al.;
      its time counts); `"train_loss"`: the free training losses of the samples seen (unseen keep their last score).
    - **dynamic_alpha**, **dynamic_epsilon**, **dynamic_c** -- EMA weight (Eq. 2), exploration share (epsilon-greedy),
      variance weight (UCB, Eq. 4).
    - **dynamic_class_balanced** -- rank within every class (EMA-based policies).
    - **infobatch_delta**, **infobatch_max_ratio** -- InfoBatch: share of the epochs that prune, bound on `r`.
    - **infobatch_fixed_budget** -- InfoBatch with one epoch length for every epoch (a departure from the paper).
    - **seta_num_groups**, **seta_window_scale**, **seta_delta** -- SeTa: loss groups `G`, window share, share of
      the epochs that prune.

    InfoBatch (as published), RS2 and SeTa train a different number of samples each epoch: `PruningTrainer` gives
    every epoch its own steps, plans `max_steps` from the policy and runs the LR schedule over the steps taken (see
    `hf_prune.dynamic.trainer_hooks`).
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
    record_dtype: str = field(
        default="float32",
        metadata={
            "help": "Storage dtype of the recorded values: float32, or float16 (half the disk and the epoch-end "
            "traffic; p_target keeps about 3 significant digits)."
        },
    )
    overwrite_score_record: bool = field(
        default=False,
        metadata={
            "help": "Start a new score record even though output_dir already holds one. The old record is moved aside "
            "to <score_record_dir>.old-<time> (never deleted). Without this flag such a run is refused before training."
        },
    )
    dyn_unc_window: int | None = field(
        default=None,
        metadata={
            "help": "The Dyn-Unc window J you will score this record with; checked against num_train_epochs before "
            "training starts (Dyn-Unc needs J < epochs, and J >= 2)."
        },
    )

    # ---- dynamic pruning (hf_prune.dynamic) ----
    dynamic_policy: str | None = field(
        default=None,
        metadata={
            "help": "Dynamic pruning policy re-selecting the training subset during training: random_dynamic, "
            "uncertainty_ema, epsilon_greedy, ucb (Raju et al. 2021), infobatch (Qin et al. 2024), rs2 (Okanovic et "
            "al. 2024) or seta (Zhou et al. 2025). None trains on all data."
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
    infobatch_fixed_budget: bool = field(
        default=False,
        metadata={
            "help": "infobatch: keep one epoch length for every epoch (remove floor(ratio * n) samples each epoch, "
            "re-weighted) instead of InfoBatch's own rule (prune ratio r of the below-mean-loss samples, full first "
            "and last epochs). A departure from the paper."
        },
    )
    seta_num_groups: int = field(default=5, metadata={"help": "seta: number of loss groups G (k-means), >= 1."})
    seta_window_scale: float = field(
        default=0.9, metadata={"help": "seta: share of the groups in the sliding window, in (0, 1]."}
    )
    seta_delta: float = field(
        default=0.875, metadata={"help": "seta: pruning stops at epoch floor(delta * num_train_epochs), in (0, 1]."}
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
        # "p_target,loss" and ["p_target,loss"] (what HfArgumentParser makes of `--record_signals p_target,loss`)
        items = [self.record_signals] if isinstance(self.record_signals, str) else list(self.record_signals)
        self.record_signals = [s.strip() for item in items for s in str(item).split(",") if s.strip()]
        self.record_signals = check_signals(self.record_signals)
        if self.record_num_samples is not None and self.record_num_samples <= 0:
            raise ValueError(f"record_num_samples must be positive; got {self.record_num_samples}.")
        self.record_dtype = check_record_dtype(self.record_dtype)
        if self.dyn_unc_window is not None:
            check_window_fits(self.dyn_unc_window, None if self.max_steps > 0 else self.num_train_epochs)
        if self.dynamic_policy is not None:
            # Raises clear errors for a bad policy, ratio, period or scoring mode; adds the "loss" signal that
            # dynamic_scoring="train_loss" feeds to the policy.
            self.record_signals = _check_dynamic_args(self)
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > 1 and self.world_size == 1:
            # Unconnected processes would each write the same score record.
            raise ValueError(
                f"{launched} processes were launched (WORLD_SIZE={launched}) but these arguments run them unconnected "
                "(world_size=1). On a machine without a GPU pass `use_cpu=True` (`--use_cpu`) so they join one "
                "gloo process group."
            )


def _check_dynamic_args(args: PruningArguments) -> list[str]:
    """Validates the dynamic pruning fields; returns `record_signals` with `"loss"` added where
    `dynamic_scoring="train_loss"` needs it."""
    if args.dynamic_policy not in list_policies():
        raise ValueError(
            f"Unknown dynamic_policy {args.dynamic_policy!r}; choose from {sorted(list_policies())} (or None for no "
            "dynamic pruning)."
        )
    check_ratio(args.dynamic_prune_ratio, "dynamic_prune_ratio")
    if (
        isinstance(args.pruning_period, bool)
        or int(args.pruning_period) != args.pruning_period
        or args.pruning_period < 1
    ):
        raise ValueError(
            f"pruning_period must be an integer >= 1 (the number of epochs between two selections, T_p); got "
            f"{args.pruning_period!r}."
        )
    if args.dynamic_scoring not in SCORING_MODES:
        raise ValueError(
            f"dynamic_scoring must be 'pass' (a scoring pass over the train set every pruning_period epochs) or "
            f"'train_loss' (the training losses of the samples seen); got {args.dynamic_scoring!r}."
        )
    policy = policy_from_args(args, num_epochs_of(args))  # the policy checks its own parameters (alpha, c, delta)
    if policy.selects_every_epoch and args.pruning_period != 1:
        raise ValueError(
            f"dynamic_policy={args.dynamic_policy!r} draws a new selection every epoch (its rule counts them); use "
            f"pruning_period=1, got {args.pruning_period}."
        )
    signals = list(args.record_signals)
    if args.dynamic_scoring == "train_loss" and "loss" not in signals:
        signals.append("loss")
    return signals


def check_window_fits(window, num_epochs: float | None) -> None:
    """Refuses a Dyn-Unc window `J` that the run's `num_epochs` cannot score (Eq. 3 needs `2 <= J <= K - 1`).

    `num_epochs=None` (a run bounded by `max_steps`) checks `J` alone; `PruningTrainer` checks it again once Trainer
    knows the number of epochs.
    """
    if isinstance(window, bool) or int(window) != window or window < 2:
        raise ValueError(f"dyn_unc_window must be an integer >= 2 (a std needs two epochs); got {window!r}.")
    if num_epochs is None:
        return
    epochs = int(math.ceil(num_epochs))
    if window < epochs:
        return
    if epochs >= 3:
        fix = f"use a window between 2 and {epochs - 1}, or train for at least {int(window) + 1} epochs"
    else:
        fix = f"train for at least {int(window) + 1} epochs (any window needs at least 3)"
    raise ValueError(
        f"dyn_unc_window={window} needs more epochs than num_train_epochs={num_epochs}: Dyn-Unc averages K - J "
        f"windows of J epochs, so J must be below the number of epochs K. Refused before training: {fix}."
    )
