"""Per-sample full-network gradient norms, for GraNd as Paul et al. define it (every parameter, not the last layer).

``GraNd(x) = || grad_theta CE(f(x; theta), y) ||_2`` over *all* trainable parameters, with the model in eval mode
(batch-norm running statistics, no dropout) on the un-augmented inputs, as the data-diet code computes it
(`data_diet/scores.py`, `get_grad_norm_fn`). `per_sample_grad_norms(trainer)` runs one pass over the training split
through the trainer's dataloader machinery (sharded across processes, ids gathered like `hf_prune.features`) and
computes the per-sample gradients of a micro-batch at once with `torch.func` (`vmap` of `grad`).

Cost: one forward and backward per sample, and `chunk_size x num_parameters` floats of memory for the per-sample
gradients of one chunk. That is cheap for small models (a 0.3 M-parameter Swin or a ResNet-18 on a GPU), heavy for
large ones: at ResNet-50 (25 M parameters) a chunk of 8 holds 0.8 GB. Models whose forward `vmap` cannot trace fall
back to one backward pass per sample. For large models the last-layer GraNd (`get_strategy("grand")` with
`features=`) is the cheap alternative.

```python
>>> from hf_prune.grad_norms import per_sample_grad_norms
>>> norms = per_sample_grad_norms(trainer, dataset=train_eval_view)       # [n], NaN where unseen
>>> get_strategy("grand", grad_norms=[norms_run0, norms_run1]).select(record, prune_ratio=0.5)
```
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .recording import logits_of
from .sample_ids import LABEL_COLUMNS, SAMPLE_ID_COLUMN


def _call_args(model: torch.nn.Module, inputs: dict) -> tuple[tuple, dict]:
    """`(args, kwargs)` of a forward call: timm-style modules take the image tensor, transformers models keywords."""
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        PreTrainedModel = ()
    if not isinstance(model, PreTrainedModel) and "pixel_values" in inputs:
        return (inputs["pixel_values"],), {}
    return (), dict(inputs)


def batch_grad_norms(model: torch.nn.Module, inputs: dict, labels: torch.Tensor, chunk_size: int = 16) -> torch.Tensor:
    """`|| grad_theta CE(f(x_i), y_i) ||_2` over every trainable parameter, for each sample `i` of a batch.

    Args:
        model (`torch.nn.Module`): evaluated as it is (put it in eval mode for the authors' setting).
        inputs (`dict`): the batch's model inputs (tensors with the batch as first dimension).
        labels (`torch.Tensor` `[batch]`): hard class labels.
        chunk_size (`int`, *optional*, defaults to 16): samples whose gradients are held at once.

    Returns:
        `torch.Tensor` `[batch]` (float32, on the model's device).
    """
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def loss_of(p, sample, label):
        args, kwargs = _call_args(model, {k: v.unsqueeze(0) for k, v in sample.items()})
        out = torch.func.functional_call(model, (p, buffers), args, kwargs)
        return F.cross_entropy(logits_of(out).float(), label.view(1))

    def norm_of(grads):
        return torch.sqrt(sum(g.float().pow(2).flatten(1).sum(1) for g in grads.values()))

    per_sample = torch.func.vmap(torch.func.grad(loss_of), in_dims=(None, 0, 0))
    out = []
    for start in range(0, labels.shape[0], chunk_size):
        chunk = {k: v[start : start + chunk_size] for k, v in inputs.items()}
        y = labels[start : start + chunk_size]
        try:
            out.append(norm_of(per_sample(params, chunk, y)))
        except RuntimeError:  # a forward vmap cannot trace (in-place ops, data-dependent control flow)
            out.append(_loop_norms(model, chunk, y))
    return torch.cat(out) if out else torch.zeros(0)


def _loop_norms(model, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for i in range(labels.shape[0]):
        with torch.enable_grad():
            args, kwargs = _call_args(model, {k: v[i : i + 1] for k, v in inputs.items()})
            out = model(*args, **kwargs)
            loss = F.cross_entropy(logits_of(out).float(), labels[i : i + 1])
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        norms.append(torch.sqrt(sum(g.float().pow(2).sum() for g in grads if g is not None)))
    return torch.stack(norms)


def per_sample_grad_norms(
    trainer,
    dataset=None,
    model: torch.nn.Module | None = None,
    chunk_size: int = 16,
    num_samples: int | None = None,
    output_path: str | os.PathLike | None = None,
) -> np.ndarray:
    """One pass over the training split computing every sample's full-network gradient norm (GraNd of one run).

    Runs on every process (it gathers); every process returns the same array.

    Args:
        trainer (`PruningTrainer`): gives the dataloader (`sample_id_dataloader`: eval batch size, collator,
            sharding, ids carried beside the items), the accelerator and, unless `model` is given, the model
            (evaluated in eval mode).
        dataset (`datasets.Dataset`, *optional*): the training split with the *eval* transform; defaults to
            `trainer.train_dataset`.
        model (`torch.nn.Module`, *optional*): score this model instead (e.g. a checkpoint at initialisation or at an
            early epoch: Paul et al. score at initialisation or after a few epochs, averaged over 10 runs).
        chunk_size (`int`, *optional*, defaults to 16): samples whose gradients are held in memory at once.
        num_samples (`int`, *optional*): rows of the unpruned split; defaults to the trainer's `num_samples`.
        output_path (`str`, *optional*): also save the array there (`.npy`), for `get_strategy("grand",
            grad_norms=[...])`.

    Returns:
        `np.ndarray` `[n]` float64, NaN for samples the pass did not see.
    """
    accelerator = trainer.accelerator
    dataset = trainer.train_dataset if dataset is None else dataset
    n = int(num_samples or getattr(trainer, "num_samples", None) or len(dataset))
    model = (model if model is not None else accelerator.unwrap_model(trainer.model)).to(accelerator.device)
    was_training = model.training
    model.eval()
    norms = np.full(n, np.nan)
    try:
        # Not `get_eval_dataloader`: with persistent workers it hands back Trainer's cached eval loader.
        for batch in trainer.sample_id_dataloader(dataset, "Gradient norms"):
            batch = trainer._prepare_inputs(batch)
            ids = batch.pop(SAMPLE_ID_COLUMN).long().view(-1)
            labels = next((batch.pop(k) for k in LABEL_COLUMNS if k in batch), None)
            for key in LABEL_COLUMNS:
                batch.pop(key, None)
            if labels is None:
                raise ValueError("The batches carry no labels: GraNd needs the hard class label of every sample.")
            values = batch_grad_norms(model, batch, labels.long().view(-1), chunk_size)
            if accelerator.num_processes > 1:
                ids = accelerator.gather(accelerator.pad_across_processes(ids, dim=0, pad_index=-1))
                values = accelerator.gather(accelerator.pad_across_processes(values, dim=0))
            ids_np, values_np = ids.cpu().numpy(), values.double().cpu().numpy()
            valid = ids_np >= 0
            norms[ids_np[valid]] = values_np[valid]
    finally:
        model.train(was_training)
    if output_path is not None and accelerator.is_main_process:
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        np.save(output_path, norms)
    accelerator.wait_for_everyone()
    return norms
