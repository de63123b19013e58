"""Per-sample weighted cross-entropy, the loss through which InfoBatch's 1/(1-r) rescaling reaches the gradient.

A model's own `loss` is already reduced over the batch, so the weights cannot be applied to it.
`DynamicPruningTrainer` (when the policy re-weights) and users of `DynamicPruningSampler` / `DynamicPruningDataset`
compute the cross-entropy from the logits with `reduction="none"`, multiply by the per-sample weights and reduce:

    loss = sum_i w_i * CE(logits_i, y_i) / N

with `N` the micro-batch size, or `num_items_in_batch` (the whole accumulated batch, as `Trainer` passes it when the
model takes loss kwargs). Weights of 1 give exactly `F.cross_entropy(logits, labels)` (label smoothing included).

Sequences (token logits `[batch, tokens, vocab]`, a causal LM): the sample is the sequence, its weight multiplies
every one of its target tokens, and the batch loss is rebuilt the way the model reduces it, over *tokens*:

    loss = sum_i w_i * sum_t CE_it / N_tokens = sum_i w_i * n_i * mean_loss_i / N_tokens

with `n_i` the target tokens of sequence `i`, `mean_loss_i` its per-sequence loss (what the record holds and the
policy scores) and `N_tokens` the target tokens of the micro-batch, or `num_items_in_batch` (which `Trainer` counts in
tokens for a causal LM). Weights of 1 give exactly the model's own token-averaged loss, so an epoch that prunes
nothing trains exactly as `Trainer` does. This departs from InfoBatch's per-sample mean (`sum_i w_i * mean_loss_i /
N_sequences`), which would weigh a short sequence's tokens more than a long one's and change the objective even at
weight 1: here the rescaling keeps the expected *token* loss of the full data, as the model's objective counts it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..sequence import TokenLosses


def weighted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    num_items_in_batch: int | torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    label_alignment: str | None = None,
) -> torch.Tensor:
    """`sum_i weights_i * CE_i / N` for hard class labels, or the token-level form for sequences (module docstring).

    Args:
        logits (`torch.Tensor` `[batch, classes]` or `[batch, tokens, vocab]`): model outputs.
        labels (`torch.Tensor` `[batch]` or `[batch, tokens]`): class (token) indices; `-100` is ignored (weight 0,
            not counted in `N`).
        weights (`torch.Tensor` `[batch]`, *optional*): per-sample (per-sequence) loss weights; ones if omitted.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): the denominator `N`; defaults to the number of
            labelled samples (target tokens) in this batch (a plain mean).
        label_smoothing (`float`, *optional*, defaults to 0.0): as in `F.cross_entropy`.
        label_alignment (`str`, *optional*): for token logits, `"next_token"` (a causal LM: logits[:, t] predict
            labels[:, t + 1]) or `"same_token"`; see `hf_prune.sequence`.
    """
    if logits.dim() == 3:
        if label_alignment is None:
            raise ValueError(
                f"Got token logits of shape {tuple(logits.shape)}: pass label_alignment='next_token' (a causal LM) or "
                "'same_token' (labels aligned with the logits) to weight them per sequence."
            )
        tokens = TokenLosses.from_logits(logits, labels, label_alignment, with_correct=False, keep_grad=True,
                                         label_smoothing=label_smoothing)  # fmt: skip
        return weighted_token_loss(tokens, weights, num_items_in_batch)
    if logits.dim() != 2:
        raise ValueError(
            f"Expected logits of shape [batch, classes] or [batch, tokens, vocab]; got {tuple(logits.shape)}."
        )
    labels = labels.view(-1).long()
    per_sample = F.cross_entropy(
        logits.float(), labels, reduction="none", ignore_index=-100, label_smoothing=label_smoothing
    )
    valid = labels != -100
    if weights is not None:
        weights = weights.to(device=per_sample.device, dtype=per_sample.dtype).view(-1)
        if weights.shape != per_sample.shape:
            raise ValueError(f"Got {weights.shape[0]} weights for a batch of {per_sample.shape[0]}.")
        per_sample = per_sample * weights
    denominator = num_items_in_batch if num_items_in_batch is not None else valid.sum().clamp(min=1)
    if isinstance(denominator, torch.Tensor):
        denominator = denominator.to(per_sample.device)
    return per_sample.sum() / denominator


def weighted_token_loss(
    tokens: TokenLosses, weights: torch.Tensor | None = None, num_items_in_batch: int | torch.Tensor | None = None
) -> torch.Tensor:
    """`sum_i weights_i * sum_t CE_it / N_tokens` from per-token losses that carry the graph (`TokenLosses` from
    logits with `keep_grad=True`, or a fused LM head's log-probabilities); see the module docstring.

    Args:
        tokens (`TokenLosses`): per-token losses `[batch, tokens]`, zero off target.
        weights (`torch.Tensor` `[batch]`, *optional*): per-sequence weights; ones if omitted.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): the denominator; defaults to the target tokens of
            this batch (clamped to 1: a batch without target tokens gives a differentiable 0).
    """
    per_sequence = tokens.loss.float().sum(dim=1)
    if weights is not None:
        weights = weights.to(device=per_sequence.device, dtype=per_sequence.dtype).view(-1)
        if weights.shape != per_sequence.shape:
            raise ValueError(f"Got {weights.shape[0]} weights for a batch of {per_sequence.shape[0]} sequences.")
        per_sequence = per_sequence * weights
    denominator = num_items_in_batch if num_items_in_batch is not None else tokens.target.sum().clamp(min=1)
    if isinstance(denominator, torch.Tensor):
        denominator = denominator.to(per_sequence.device)
    return per_sequence.sum() / denominator
