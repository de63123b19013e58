"""`DynamicPruningSampler`: a `torch.utils.data.Sampler` that yields each epoch's dynamically selected samples.

```
 epoch e ──set_epoch(e)──> selection epoch p = e - e % pruning_period
                            │  p == e: policy.select(p, k, rng(seed, p))  (same table, same rng -> same ids everywhere)
                            │  p <  e: keep the selection made at p (Raju et al.'s Algorithm 1: T_p epochs per subset)
                            v
                 ids of the selection, shuffled by rng(seed, e) ──> k_e indices (k_e = k for fixed-length policies;
                            │                                      InfoBatch, RS2, SeTa: the epoch's own count)
       accelerate BatchSamplerShard: batches of B, rank r takes batches r, r + W, r + 2W, ...
                            │
 per step: loss_weights(ids) indexes a device tensor built once per selection (no host synchronisation);
           collect(ids, losses) appends device tensors
 end of epoch: end_epoch(accelerator) gathers them once ──> update(ids, losses) ──> identical table on every rank
```
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..selection import num_kept
from .base import DynamicPolicy, Selection


def _as_numpy(x, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype).reshape(-1)


class DynamicPruningSampler(torch.utils.data.Sampler[int]):
    """Yields the samples a `DynamicPolicy` selects for the current epoch, the same on every process.

    The sampler is deterministic: the indices of epoch `e` are a function of (`seed`, `e`, the policy's score table)
    only. Build it with the same arguments on every rank and feed `update` with values gathered from all ranks
    (e.g. `Recorder.gather` or `accelerator.gather`), and every rank holds the same table, draws the same selection
    and yields the same order, with no broadcast. Hand it to a `DataLoader` and `accelerator.prepare` the loader as
    usual: accelerate's `BatchSamplerShard` then deals the batches out (rank `r` takes batches `r, r + W, ...`).

    Cross-rank contract, worked example: `n = 101` samples, `prune_ratio = 0.5`, 2 processes, batch size 4.

    - `k = n - floor(0.5 * n) = 51`, rounded up to `multiple_of = 2 * 4 = 8`: `len(sampler) == 56` in *every* epoch,
      so `Trainer`'s steps per epoch (7 per rank), `max_steps` and LR schedule are right.
    - Epoch 3 on both ranks: the policy selects 56 ids from the same table with `rng(seed, 3)` and both ranks shuffle
      them with the same `rng(seed, 3)`, e.g. `[17, 4, 88, 60, 9, ...]`. accelerate cuts that list into 14 batches of
      4; rank 0 takes batches 0, 2, ..., 12 and rank 1 takes 1, 3, ..., 13. 56 is a multiple of 8, so nothing is
      padded or dropped: every selected sample is used exactly once in the epoch, on exactly one rank.
    - Without the rounding (`multiple_of=1`, `k = 51`): 12 full batches and one of 3. accelerate's `even_batches`
      completes the last round from the start of the epoch's order: rank 0's last batch is the 3 leftovers plus the
      1st id, rank 1's is the 2nd to 5th ids. The first `8 * ceil(51 / 8) - 51 = 5` ids of the epoch's order are used
      twice; `Recorder.gather` de-duplicates them by id (first occurrence kept), and `update` takes one value per id.
      The same holds where `k` cannot be rounded (`prune_ratio = 0`: `k = n = 101`, the first 3 ids repeat).
      With `dataloader_drop_last=True` instead, the last `k mod 8` ids of the order are skipped rather than repeated.
    - Epoch 4 with `pruning_period = 2`: a new selection is drawn at epoch 4 (4 % 2 == 0); epoch 5 reuses it in the
      new order `rng(seed, 5)`.

    Varying-length policies (InfoBatch as published, RS2, SeTa) select a different number of samples each epoch:
    `len(sampler)` is the current epoch's count after `set_epoch` (before it, `policy.max_selected(0)`), and the
    kept count is not rounded to `multiple_of` (their rules fix it); with `W` processes accelerate completes the last
    round of batches with the epoch's first samples (the recorder de-duplicates them), or drops the remainder with
    `drop_last`.

    Args:
        policy (`DynamicPolicy`): the selection rule, e.g. `get_policy("ucb", prune_ratio=0.5)`.
        num_samples (`int`): length of the dataset (positions `0 .. n-1` are what the sampler yields).
        seed (`int`, *optional*, defaults to 0): must be the same on every process.
        pruning_period (`int`, *optional*, defaults to 1): `T_p`, epochs between re-selections (Raju et al. use 10).
        multiple_of (`int`, *optional*, defaults to 1): round the kept count of fixed-length policies up to a
            multiple of this (use `world_size * per_device_batch_size` for exactly-once use across ranks with no
            padding).
        shuffle (`bool`, *optional*, defaults to `True`): shuffle the selection each epoch (else ascending ids).

    Example (a plain Accelerate loop, with no host synchronisation per step: the weights are a device tensor and
    the losses are gathered once per epoch):

    ```python
    >>> from hf_prune.dynamic import DynamicPruningSampler, get_policy
    >>> sampler = DynamicPruningSampler(get_policy("infobatch", prune_ratio=0.5, num_epochs=epochs), len(train))
    >>> loader = accelerator.prepare(DataLoader(train, batch_size=64, sampler=sampler))
    >>> for epoch in range(epochs):
    ...     sampler.set_epoch(epoch)                   # the epoch's selection; len(loader) follows it
    ...     for batch in loader:
    ...         losses = F.cross_entropy(model(batch["x"]), batch["y"], reduction="none")
    ...         weights = sampler.loss_weights(batch["sample_id"])  # InfoBatch's 1/(1-r); ones otherwise
    ...         accelerator.backward((weights * losses).mean())
    ...         sampler.collect(batch["sample_id"], losses)         # kept on the device
    ...     sampler.end_epoch(accelerator)             # one gather; the policy sees every rank's losses
    ```
    """

    def __init__(
        self,
        policy: DynamicPolicy,
        num_samples: int,
        seed: int = 0,
        pruning_period: int = 1,
        multiple_of: int = 1,
        shuffle: bool = True,
    ):
        if not isinstance(policy, DynamicPolicy):
            raise TypeError(f"policy must be a DynamicPolicy (see `hf_prune.dynamic.get_policy`); got {type(policy)}.")
        if int(pruning_period) < 1:
            raise ValueError(f"pruning_period must be >= 1 (epochs between re-selections); got {pruning_period}.")
        if int(multiple_of) < 1:
            raise ValueError(f"multiple_of must be >= 1; got {multiple_of}.")
        if policy.selects_every_epoch and int(pruning_period) != 1:
            raise ValueError(
                f"The {policy.name} policy selects anew every epoch (its rule counts selections); use "
                f"pruning_period=1, got {pruning_period}."
            )
        self.policy = policy
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        if policy.num_samples != self.num_samples or policy.seed != self.seed:
            policy.reset(self.num_samples, self.seed)
        self.pruning_period = int(pruning_period)
        self.multiple_of = int(multiple_of)
        self.shuffle = bool(shuffle)
        multiple = self.multiple_of if policy.fixed_length else 1
        self.num_keep = num_kept(self.num_samples, policy.prune_ratio, multiple)
        self.epoch: int | None = None
        self.selection: Selection | None = None
        self.selection_epoch: int | None = None
        self._weights: np.ndarray | None = None
        self._device_weights: dict[str, torch.Tensor] = {}
        self._assumed_length: int | None = None
        self._collected: list[tuple[torch.Tensor, torch.Tensor]] = []

    def reset(self) -> None:
        """Forgets the epoch, the selection and the policy's scores (a fresh run)."""
        self.policy.reset(self.num_samples, self.seed)
        self.epoch, self.selection, self.selection_epoch = None, None, None
        self._weights, self._device_weights, self._collected = None, {}, []

    # ------------------------------------------------------------------ epochs

    def selection_epoch_of(self, epoch: int) -> int:
        """The epoch whose selection `epoch` trains on: `epoch - epoch % pruning_period`."""
        return int(epoch) - int(epoch) % self.pruning_period

    def needs_selection(self, epoch: int) -> bool:
        """Whether `set_epoch(epoch)` will draw a new selection (so fresh scores should be observed first)."""
        return self.selection is None or self.selection_epoch != self.selection_epoch_of(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Moves to `epoch`, selecting anew at the start of every pruning period. Idempotent for the same epoch."""
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0; got {epoch}.")
        self.epoch = epoch
        if self.needs_selection(epoch):
            start = self.selection_epoch_of(epoch)
            self._set_selection(start, self.policy.select(start, self.num_keep, self._rng(start, 0)))

    def _rng(self, epoch: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(epoch), stream])

    def _set_selection(self, epoch: int, selection: Selection) -> None:
        self.selection, self.selection_epoch = selection, int(epoch)
        self._device_weights = {}
        if selection.weights is None:
            self._weights = None
        else:
            self._weights = np.ones(self.num_samples, dtype=np.float32)
            self._weights[selection.ids] = selection.weights

    def indices(self) -> np.ndarray:
        """The current epoch's indices, in the order `__iter__` yields them."""
        if self.epoch is None:
            self.set_epoch(0)
        ids = self.selection.ids
        return ids[self._rng(self.epoch, 1).permutation(ids.size)] if self.shuffle else ids.copy()

    def __iter__(self) -> Iterator[int]:
        yield from self.indices().tolist()

    def __len__(self) -> int:
        if self._assumed_length is not None:
            return self._assumed_length
        if self.selection is not None:
            return int(self.selection.ids.size)
        return self.policy.max_selected(0, self.num_keep)

    def max_selected(self, epoch: int) -> int:
        """Before training: the number of samples `epoch` will yield (fixed-length policies) or an upper bound."""
        return self.policy.max_selected(self.selection_epoch_of(epoch), self.num_keep)

    @contextlib.contextmanager
    def assume_length(self, length: int):
        """Inside the block `len(sampler)` is `length`: counts a loader's batches for an epoch of that many samples
        (how `PruningTrainer` plans the steps of epochs not drawn yet)."""
        previous, self._assumed_length = self._assumed_length, int(length)
        try:
            yield self
        finally:
            self._assumed_length = previous

    # ------------------------------------------------------------------ scores and weights

    def update(self, ids, losses, labels=None) -> None:
        """Feeds per-sample losses (of any subset of samples) to the policy's score table.

        Pass values gathered from *all* processes so every rank's table stays identical. Repeated ids (e.g. the
        padding duplicates of a distributed loader) are reduced to one value each, the last one given. `labels`
        (class per id) feed class-balanced selection.
        """
        ids = _as_numpy(ids, np.int64)
        losses = _as_numpy(losses, np.float64)
        if ids.shape != losses.shape:
            raise ValueError(f"Got {ids.shape[0]} ids but {losses.shape[0]} losses; pass one loss per id.")
        # keep the last occurrence of each id
        rev_unique, rev_index = np.unique(ids[::-1], return_index=True)
        if labels is not None:
            labels = _as_numpy(labels, np.int64)[::-1][rev_index]
        self.policy.observe(rev_unique, losses[::-1][rev_index], labels)

    @property
    def weighted(self) -> bool:
        """True when the current selection carries loss weights (InfoBatch)."""
        return self._weights is not None

    def weight_table(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The dense `[num_samples]` float32 loss weights of the current selection on `device`, built once per
        selection (ones when the policy does not re-weight)."""
        if self.epoch is None:
            self.set_epoch(0)
        key = str(device)
        if key not in self._device_weights:
            dense = self._weights if self._weights is not None else np.ones(self.num_samples, dtype=np.float32)
            self._device_weights = {key: torch.from_numpy(dense.copy()).to(device)}
        return self._device_weights[key]

    def loss_weights(self, ids=None) -> torch.Tensor:
        """Loss weights of `ids` (sample positions) for the current epoch, float32.

        1 for every sample unless the policy re-weights (InfoBatch: `1 / (1 - r)` for the kept well-learned ones).
        For a tensor `ids` this indexes `weight_table(ids.device)`, so the training step makes no host
        synchronisation; `ids=None` gives the dense `[num_samples]` vector.
        """
        if ids is None:
            return self.weight_table("cpu").clone()
        if isinstance(ids, torch.Tensor):
            return self.weight_table(ids.device)[ids.long()]
        pos = _as_numpy(ids, np.int64)
        return self.weight_table("cpu")[torch.from_numpy(pos)]

    def collect(self, ids: torch.Tensor, losses: torch.Tensor) -> None:
        """Keeps one step's sample positions and per-sample losses on their device, for `end_epoch` (no host
        synchronisation)."""
        self._collected.append((ids.detach().reshape(-1).long(), losses.detach().reshape(-1).float()))

    def end_epoch(self, accelerator=None) -> None:
        """Gathers what `collect` kept from every process (one all-gather) and feeds it to `update`. Every process
        must call it."""
        if self._collected:
            ids = torch.cat([i for i, _ in self._collected])
            losses = torch.cat([v.to(ids.device) for _, v in self._collected])
        else:
            device = accelerator.device if accelerator is not None else "cpu"
            ids, losses = torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, device=device)
        self._collected = []
        if accelerator is not None and accelerator.num_processes > 1:
            ids = accelerator.gather(accelerator.pad_across_processes(ids, dim=0, pad_index=-1))
            losses = accelerator.gather(accelerator.pad_across_processes(losses, dim=0))
        keep = ids >= 0
        self.update(ids[keep], losses[keep])

    # ------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue with the same selection sequence: epoch, selection, the policy's table."""
        sel = self.selection
        return {
            "seed": self.seed,
            "num_samples": self.num_samples,
            "pruning_period": self.pruning_period,
            "num_keep": self.num_keep,
            "epoch": self.epoch,
            "selection_epoch": self.selection_epoch,
            "selection_ids": None if sel is None else sel.ids.copy(),
            "selection_weights": None if sel is None or sel.weights is None else sel.weights.copy(),
            "selection_info": None if sel is None else sel.info,
            "policy": self.policy.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "num_samples", "pruning_period", "num_keep"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"The saved dynamic pruning state has {key}={state[key]} but this run has {getattr(self, key)}; "
                    "resume with the same seed, dataset, pruning period, prune ratio, batch size and world size."
                )
        self.policy.load_state_dict(state["policy"])
        self.epoch = state["epoch"]
        if state["selection_ids"] is None:
            self.selection, self.selection_epoch, self._weights = None, None, None
        else:
            sel = Selection(state["selection_ids"], state["selection_weights"], info=state["selection_info"])
            self._set_selection(state["selection_epoch"], sel)
