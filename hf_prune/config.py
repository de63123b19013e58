"""`PruningArguments`: `TrainingArguments` plus what `PruningTrainer` records.

Like trl's configs it only adds fields to `TrainingArguments`, each with `metadata={"help": ...}` (so
`HfArgumentParser` gives every recipe a `--help` for them), checks them in `__post_init__` with messages that say
what to do, and round-trips to JSON through `TrainingArguments.to_json_string`. Dynamic pruning has arguments of its
own, `hf_prune.dynamic_config.DynamicPruningArguments` (a subclass), for `DynamicPruningTrainer`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from .dyn_unc_window import check_dyn_unc_window
from .recording import DEFAULT_SIGNALS, check_record_dtype, check_signals


# Prefixes of the arguments that belong to dynamic pruning (`DynamicPruningArguments`), for a clear error when they
# reach a class without them.
DYNAMIC_ARGUMENT_PREFIXES = ("dynamic_", "pruning_period", "infobatch_", "seta_")


@dataclass
class PruningArguments(TrainingArguments):
    """`TrainingArguments` plus what `PruningTrainer` records.

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

    Dynamic pruning is `DynamicPruningArguments` (a subclass adding `dynamic_policy`, `dynamic_prune_ratio`,
    `pruning_period`, `dynamic_scoring`, `dynamic_policy_kwargs`, `dynamic_round_to_batches`) with
    `DynamicPruningTrainer`.
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
    reproducible_augmentation: bool = field(
        default=True,
        metadata={
            "help": "Read every training batch with torch's, numpy's and Python's random generators seeded from (seed, "
            "epoch, the batch's sample ids), so random augmentation in an epoch does not depend on the loader worker "
            "or on a resume in the middle of the epoch (a resumed run then records what an uninterrupted one does). "
            "One seeding per batch; batched transforms stay batched."
        },
    )
    dyn_unc_window: int | None = field(
        default=None,
        metadata={
            "help": "The Dyn-Unc window J you will score this record with; checked against num_train_epochs before "
            "training starts (Dyn-Unc needs J < epochs, and J >= 2)."
        },
    )

    def __new__(cls, *args: Any, **kwargs: Any):
        # A dataclass's generated __init__ would answer an argument it lacks with a bare "unexpected keyword
        # argument"; a dynamic pruning argument gets the class that takes it instead (see `_refuse_moved_arguments`).
        cls._refuse_moved_arguments({k: v for k, v in kwargs.items() if k not in cls.__dataclass_fields__})
        return super().__new__(cls)

    @classmethod
    def _refuse_moved_arguments(cls, unknown: dict[str, Any]) -> None:
        """Raises a `TypeError` naming where the arguments in `unknown` (name -> value) live, if hf_prune knows; else
        returns (and the dataclass's `__init__` refuses them as usual)."""
        dynamic = [k for k in unknown if k.startswith(DYNAMIC_ARGUMENT_PREFIXES)]
        if dynamic:
            raise TypeError(
                f"{cls.__name__} has no {', '.join(dynamic)}: dynamic pruning has arguments and a trainer of its own. "
                "Use `DynamicPruningArguments` with `DynamicPruningTrainer` (`from hf_prune import "
                "DynamicPruningArguments, DynamicPruningTrainer`); policy parameters go into `dynamic_policy_kwargs`."
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
            self.dyn_unc_window = check_dyn_unc_window(
                self.dyn_unc_window, None if self.max_steps > 0 else self.num_train_epochs, name="dyn_unc_window",
                epochs_name="num_train_epochs",
            )
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > 1 and self.world_size == 1:
            # Unconnected processes would each write the same score record.
            raise ValueError(
                f"{launched} processes were launched (WORLD_SIZE={launched}) but these arguments run them unconnected "
                "(world_size=1). On a machine without a GPU pass `use_cpu=True` (`--use_cpu`) so they join one "
                "gloo process group."
            )

