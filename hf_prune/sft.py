"""trl's `SFTTrainer` with hf_prune's per-sequence record and dynamic pruning: `PruningSFTTrainer` and
`DynamicPruningSFTTrainer`, configured by `PruningSFTConfig` / `DynamicPruningSFTConfig` (both an `SFTConfig` and
hf_prune's arguments).

`PruningTrainer` and `DynamicPruningTrainer` call `super()` in every override, so they compose with `SFTTrainer` by
plain inheritance; `PruningSFTMixin`, in front of them, adapts what differs:

```
__init__            refuses packing and padding-free (several samples in one row: no per-sample loss), adds the
                    row position as `sample_id` before SFTTrainer tokenizes, truncates, filters and shuffles the
                    dataset (`.map` keeps the column; ids stay the rows of the dataset you passed), then SFTTrainer
_training_loss_and_outputs
                    SFTTrainer's compute_loss runs the fused LM head (per-token log-probabilities, entropy and top-1
                    hits, no [batch, tokens, vocab] logits); asking it for outputs would cost a second forward pass,
                    so the fused output is taken from the forward itself (a torch forward hook, for the step only)
_record_training_batch (PruningTrainer's)
                    one row per sequence from those per-token values (hf_prune.sequence): no logits, no extra pass
```

Completion-only and assistant-only losses (`completion_only_loss`, `assistant_only_loss`) set the prompt's labels to
-100 during preparation, so the recorded `loss` is the mean over the completion (assistant) tokens: the sequence's
share of SFTTrainer's own loss. Dynamic pruning with InfoBatch's weights rebuilds the loss from the same per-token
log-probabilities (`hf_prune.dynamic.loss.weighted_token_loss`, a token mean like SFTTrainer's `loss_type="nll"`).

trl is imported by this module only, never by `import hf_prune`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from trl import SFTConfig, SFTTrainer

from .config import PruningArguments
from .dynamic.base import POLICIES
from .dynamic_config import DynamicPruningArguments
from .dynamic_trainer import DynamicPruningTrainer
from .sample_ids import SAMPLE_ID_COLUMN, is_iterable_dataset, num_unpruned_samples
from .trainer import PruningTrainer


__all__ = [
    "DynamicPruningSFTConfig",
    "DynamicPruningSFTTrainer",
    "PruningSFTConfig",
    "PruningSFTMixin",
    "PruningSFTTrainer",
]


@dataclass
class PruningSFTConfig(PruningArguments, SFTConfig):
    """trl's `SFTConfig` with hf_prune's recording arguments (`record_signals`, `record_dtype`, ...): every field of
    both. `packing` and `padding_free` must stay `False` (see `PruningSFTTrainer`).

    Example:

    ```python
    >>> args = PruningSFTConfig(output_dir="sft", num_train_epochs=3, completion_only_loss=True,
    ...                         record_signals=["p_target", "loss", "correct", "num_tokens"])
    ```
    """


@dataclass
class DynamicPruningSFTConfig(DynamicPruningArguments, SFTConfig):
    """trl's `SFTConfig` with hf_prune's dynamic pruning arguments (`dynamic_policy`, `dynamic_prune_ratio`, ...).

    Example:

    ```python
    >>> args = DynamicPruningSFTConfig(output_dir="sft", num_train_epochs=3, dynamic_policy="infobatch",
    ...                                dynamic_prune_ratio=0.5)
    ```
    """


class PruningSFTMixin:
    """What `PruningTrainer` needs to change to record inside trl's `SFTTrainer` (see the module docstring); put it
    in front: `class PruningSFTTrainer(PruningSFTMixin, PruningTrainer, SFTTrainer)`."""

    config_class: type = PruningSFTConfig

    def __init__(self, model, args=None, data_collator=None, train_dataset=None, *rest, **kwargs):
        self._check_sft_args(args)
        if train_dataset is not None and not is_iterable_dataset(train_dataset):
            self._source_num_samples = num_unpruned_samples(train_dataset)
            if SAMPLE_ID_COLUMN not in (getattr(train_dataset, "column_names", None) or []):
                # Before SFTTrainer's preparation: its filter (fully masked rows after truncation) and shuffle move
                # rows, and the column rides through its `.map`s, so ids stay the rows of the dataset passed in.
                train_dataset = train_dataset.add_column(
                    SAMPLE_ID_COLUMN, np.arange(len(train_dataset), dtype=np.int64)
                )
        else:
            self._source_num_samples = None  # a stream carries its ids (checked by PruningTrainer)
        super().__init__(model, args, data_collator, train_dataset, *rest, **kwargs)

    def _check_sft_args(self, args) -> None:
        name = self.config_class.__name__
        if not isinstance(args, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs `{name}` (`from hf_prune.sft import {name}`: an SFTConfig with "
                f"hf_prune's arguments); got {type(args).__name__}. SFTTrainer would turn other arguments into a "
                "plain SFTConfig and drop the recording ones."
            )
        if args.packing or args.padding_free:
            what = "packing=True" if args.packing else "padding_free=True"
            raise ValueError(
                f"{what} is not supported by hf_prune's per-sample record: it concatenates several samples into one "
                f"row, so a row's loss is no sample's loss. Set packing=False and padding_free=False in `{name}`."
            )

    def _count_unpruned_samples(self, override: int | None) -> int:
        # SFTTrainer's preparation may drop rows (fully masked after truncation): the record keeps the length of the
        # dataset as it was passed, whose rows the ids are.
        count = super()._count_unpruned_samples(override)
        if override is None and self._source_num_samples is not None:
            count = max(count, self._source_num_samples)
        return count

    def _training_loss_and_outputs(self, model, inputs, num_items_in_batch=None):
        # SFTTrainer's compute_loss runs `model(**inputs, fused_lm_head=True)` and returns no outputs without a second
        # forward pass: take the fused output (per-token log_probs, label_mask, is_top1, entropy) from that forward.
        captured: list[Any] = []

        def keep_fused_output(module, args, kwargs, output):
            if kwargs.get("fused_lm_head"):
                captured.append(output)

        handle = self._fused_head_module().register_forward_hook(keep_fused_output, with_kwargs=True)
        try:
            # super(PruningTrainer, ...): the compute_loss of the trainer PruningTrainer is mixed into (SFTTrainer)
            loss = super(PruningTrainer, self).compute_loss(model, inputs, False, num_items_in_batch)
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError(
                "SFTTrainer's training step ran no fused-LM-head forward, so there are no per-token log-probabilities "
                "to record. PruningSFTTrainer records from SFTTrainer's own compute_loss; an override of it must call "
                "super().compute_loss."
            )
        return loss, captured[-1]

    def _fused_head_module(self):
        """The module SFTTrainer gave the fused LM head (the base model of a PEFT model)."""
        model = self.accelerator.unwrap_model(self.model)
        return model.get_base_model() if hasattr(model, "get_base_model") else model


class PruningSFTTrainer(PruningSFTMixin, PruningTrainer, SFTTrainer):
    """trl's `SFTTrainer` that records per-sequence training dynamics into a `ScoreRecord`, as `PruningTrainer` does.

    Everything `SFTTrainer` takes, it takes (and `PruningTrainer`'s `clean_view_dataset`, `record_metadata`); `args`
    must be a `PruningSFTConfig`. Each epoch it records, for every training sequence, its mean loss over its target
    tokens (the completion only, with `completion_only_loss`), `p_target = exp(-loss)`, the token accuracy
    (`correct`), `num_tokens` and `entropy` (see `hf_prune.sequence`), from SFTTrainer's own fused forward: no
    logits, no extra pass. Sample ids are the rows of the `train_dataset` you pass (or its `sample_id` column).
    `packing=True` and `padding_free=True` are refused: they put several samples into one row.

    Example:

    ```python
    >>> from hf_prune.sft import PruningSFTConfig, PruningSFTTrainer
    >>> args = PruningSFTConfig(output_dir="sft", num_train_epochs=3, max_length=512)
    >>> trainer = PruningSFTTrainer(model=model, args=args, train_dataset=prompt_completion_ds,
    ...                             processing_class=tokenizer)
    >>> trainer.train()
    >>> trainer.score_record.signal("loss")          # [epochs, sequences]: completion-token mean losses
    ```
    """


class DynamicPruningSFTTrainer(PruningSFTMixin, DynamicPruningTrainer, SFTTrainer):
    """trl's `SFTTrainer` that re-selects its training sequences every epoch with a dynamic pruning policy, as
    `DynamicPruningTrainer` does, scoring sequences by their mean token loss; `args` must be a
    `DynamicPruningSFTConfig`. InfoBatch's weights multiply each kept sequence's token losses in a token-mean loss
    (`hf_prune.dynamic.loss`); with those weights the loss is the weighted negative log-likelihood, so a policy with
    weights refuses `loss_type` other than `"nll"` and an MoE router auxiliary loss (`router_aux_loss_coef=0.0`).

    Example:

    ```python
    >>> from hf_prune.sft import DynamicPruningSFTConfig, DynamicPruningSFTTrainer
    >>> args = DynamicPruningSFTConfig(output_dir="sft", num_train_epochs=3, dynamic_policy="infobatch",
    ...                                dynamic_prune_ratio=0.5)
    >>> DynamicPruningSFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer).train()
    ```
    """

    config_class = DynamicPruningSFTConfig

    def __init__(self, model, args=None, *rest, **kwargs):
        super().__init__(model, args, *rest, **kwargs)
        if self._policy_reweights(args) and getattr(self, "aux_loss_enabled", False):
            raise ValueError(
                f"dynamic_policy={args.dynamic_policy!r} re-weights each sequence's loss, which hf_prune rebuilds as "
                f"a weighted negative log-likelihood without {type(self.model).__name__}'s router auxiliary loss: "
                "set router_aux_loss_coef=0.0, or use a policy without loss weights (`hf-prune strategies`)."
            )

    @staticmethod
    def _policy_reweights(args) -> bool:
        return bool(POLICIES.get(args.dynamic_policy).reweights)

    def _check_sft_args(self, args) -> None:
        super()._check_sft_args(args)
        if self._policy_reweights(args) and args.loss_type != "nll":
            raise ValueError(
                f"dynamic_policy={args.dynamic_policy!r} re-weights each sequence's loss, which hf_prune rebuilds as "
                f"a weighted negative log-likelihood (loss_type='nll'); loss_type={args.loss_type!r} would be "
                "silently replaced. Set loss_type='nll', or use a policy without loss weights (`hf-prune strategies`)."
            )
