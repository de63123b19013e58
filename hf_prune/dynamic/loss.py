"""Per-sample weighted cross-entropy, the loss through which InfoBatch's 1/(1-r) rescaling reaches the gradient.

A model's own `loss` is already reduced over the batch, so the weights cannot be applied to it.
`DynamicPruningTrainer` (when the policy re-weights) and users of `DynamicPruningSampler` / `DynamicPruningDataset`
compute the cross-entropy from the logits with `reduction="none"`, multiply by the per-sample weights and reduce:

    loss = sum_i w_i * CE(logits_i, y_i) / N

with `N` the micro-batch size, or `num_items_in_batch` (the whole accumulated batch, as `Trainer` passes it when the
model takes loss kwargs). Weights of 1 give exactly `F.cross_entropy(logits, labels)` (label smoothing included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    num_items_in_batch: int | torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """`sum_i weights_i * CE_i / N` for hard class labels.

    Args:
        logits (`torch.Tensor` `[batch, classes]`): model outputs.
        labels (`torch.Tensor` `[batch]`): class indices; `-100` is ignored (weight 0, not counted in `N`).
        weights (`torch.Tensor` `[batch]`, *optional*): per-sample loss weights; ones if omitted.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): the denominator `N`; defaults to the number of
            labelled samples in this batch (a plain mean).
        label_smoothing (`float`, *optional*, defaults to 0.0): as in `F.cross_entropy`.
    """
    if logits.dim() != 2:
        raise ValueError(f"Expected logits of shape [batch, classes]; got {tuple(logits.shape)}.")
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
