"""`DynamicPruningSampler`: a `torch.utils.data.Sampler` that yields each epoch's dynamically selected samples.

```
 epoch e ──set_epoch(e)──> selection epoch p = e - e % pruning_period
                            │  p == e: policy.select(p, k, rng(seed, p))  (same table, same rng -> same ids everywhere)
                            │          fitted to whole distributed batches: a multiple of W x B (`fit_to_batches`)
                            │  p <  e: keep the selection made at p (Raju et al.'s Algorithm 1: T_p epochs per subset)
                            v
                 ids of the selection, shuffled by rng(seed, e) ──> k_e indices (a multiple of W x B)
                            │
       accelerate BatchSamplerShard: batches of B, rank r takes batches r, r + W, r + 2W, ...: all full, none padded
                            │
 per step: loss_weights(ids) indexes a device tensor built once per selection (no host synchronisation);
           collect(ids, losses) appends device tensors
 end of epoch: end_epoch(accelerator) gathers them once ──> checks each selected id came exactly once
               ──> update(ids, losses) ──> identical table on every rank
```
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..selection import fit_to_batches, num_kept
from .base import DynamicPolicy, Selection


def _as_numpy(x, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype).reshape(-1)


def process_world_size() -> int:
    """The number of processes of the default `torch.distributed` group (1 when none is initialised)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_world_size())
    return 1


class DynamicPruningSampler(torch.utils.data.Sampler[int]):
    """Yields the samples a `DynamicPolicy` selects for the current epoch, the same on every process, each selected
    sample exactly once per epoch across all processes.

    The sampler is deterministic: the indices of epoch `e` are a function of (`seed`, `e`, the policy's score table)
    only. Build it with the same arguments on every rank and feed `update` with values gathered from all ranks
    (`end_epoch(accelerator)` does), and every rank holds the same table, draws the same selection and yields the same
    order, with no broadcast. Hand it to a `DataLoader` and `accelerator.prepare` the loader as usual: accelerate's
    `BatchSamplerShard` then deals the batches out (rank `r` takes batches `r, r + W, ...`).

    **Exactly once.** A distributed loader can only give every rank the same number of steps by repeating samples
    (accelerate's `even_batches`) or by dropping them (`drop_last`), unless the epoch holds a whole number of
    distributed batches. So the sampler fits every epoch's selection to a multiple of `W x B` (`W` processes, the
    loader's per-device batch size `B`, given as `batch_size`; `W` is read from `torch.distributed`): the policy's
    count is rounded up by at most `W B - 1` samples (drawn at random from the samples it left out, seeded, with
    the largest weight of the selection for a re-weighting policy), or, where that would exceed `n` (InfoBatch's full
    epochs, `prune_ratio=0`), down by `n mod W B` samples drawn at random. The epoch's `selection` is the fitted one
    (the record's `selected` row, `len(sampler)`). Then every batch on every rank is full, nothing is padded or
    dropped, `drop_last` either way, and `end_epoch` checks it: every selected id collected exactly once.

    Cross-rank contract, worked example: `n = 101` samples, `prune_ratio = 0.5`, 2 processes, `batch_size=4`.

    - `k = n - floor(0.5 * n) = 51`, fitted to a multiple of `2 * 4 = 8`: `len(sampler) == 56` in *every* epoch,
      so `Trainer`'s steps per epoch (7 per rank), `max_steps` and LR schedule are right.
    - Epoch 3 on both ranks: the policy selects 56 ids from the same table with `rng(seed, 3)` and both ranks shuffle
      them with the same `rng(seed, 3)`, e.g. `[17, 4, 88, 60, 9, ...]`. accelerate cuts that list into 14 batches of
      4; rank 0 takes batches 0, 2, ..., 12 and rank 1 takes 1, 3, ..., 13: every selected sample is used exactly
      once in the epoch, on exactly one rank.
    - InfoBatch's full first epoch: `k = 101` cannot be rounded up, so 5 samples (`101 mod 8`) sit this epoch out:
      96 samples, 12 batches per rank... as `drop_last` would, but chosen at random and recorded as not selected.
    - Without `batch_size` (`k = 51` unfitted) accelerate would complete the last round of batches from the start of
      the epoch's order and train 5 samples twice; on more than one process the sampler refuses to run so.
    - Epoch 4 with `pruning_period = 2`: a new selection is drawn at epoch 4 (4 % 2 == 0); epoch 5 reuses it in the
      new order `rng(seed, 5)`.

    Varying-length policies (InfoBatch as published, RS2, SeTa) select a different number of samples each epoch:
    `len(sampler)` is the current epoch's (fitted) count after `set_epoch`, before it `max_selected(0)`.

    Args:
        policy (`DynamicPolicy`): the selection rule, e.g. `get_policy("ucb", prune_ratio=0.5)`.
        num_samples (`int`): length of the dataset (positions `0 .. n-1` are what the sampler yields).
        seed (`int`, *optional*, defaults to 0): must be the same on every process.
        pruning_period (`int`, *optional*, defaults to 1): `T_p`, epochs between re-selections (Raju et al. use 10).
        multiple_of (`int`, *optional*): fit every epoch to a multiple of this instead of `world_size * batch_size`
            (`PruningTrainer` passes its total batch; `1` turns the fitting off: the policy's own counts, as its
            authors' code, with a single process).
        shuffle (`bool`, *optional*, defaults to `True`): shuffle the selection each epoch (else ascending ids).
        batch_size (`int`, *optional*): the per-device batch size of the `DataLoader` this sampler feeds. Pass it:
            with it every epoch is a whole number of distributed batches (see above). Without it (and without
            `multiple_of`) nothing is fitted, which is exact on one process without `drop_last`, and refused on
            several.
        world_size (`int`, *optional*): the number of processes; defaults to `torch.distributed`'s world size at the
            first `set_epoch` (create the `Accelerator` first).

    Example (a plain Accelerate loop, with no host synchronisation per step: the weights are a device tensor and
    the losses are gathered once per epoch):

    ```python
    >>> from hf_prune.dynamic import DynamicPruningSampler, get_policy
    >>> policy = get_policy("infobatch", prune_ratio=0.5, num_epochs=epochs)
    >>> sampler = DynamicPruningSampler(policy, len(train), batch_size=64)     # the DataLoader's batch size
    >>> loader = accelerator.prepare(DataLoader(train, batch_size=64, sampler=sampler))
    >>> for epoch in range(epochs):
    ...     sampler.set_epoch(epoch)                   # the epoch's selection; len(loader) follows it
    ...     for batch in loader:
    ...         losses = F.cross_entropy(model(batch["x"]), batch["y"], reduction="none")
    ...         weights = sampler.loss_weights(batch["sample_id"])  # InfoBatch's 1/(1-r); ones otherwise
    ...         accelerator.backward((weights * losses).mean())
    ...         sampler.collect(batch["sample_id"], losses)         # kept on the device
    ...     sampler.end_epoch(accelerator)             # one gather; checks exactly-once; feeds the policy
    ```
    """

    def __init__(
        self,
        policy: DynamicPolicy,
        num_samples: int,
        seed: int = 0,
        pruning_period: int = 1,
        multiple_of: int | None = None,
        shuffle: bool = True,
        *,
        batch_size: int | None = None,
        world_size: int | None = None,
    ):
        if not isinstance(policy, DynamicPolicy):
            raise TypeError(f"policy must be a DynamicPolicy (see `hf_prune.dynamic.get_policy`); got {type(policy)}.")
        if int(pruning_period) < 1:
            raise ValueError(f"pruning_period must be >= 1 (epochs between re-selections); got {pruning_period}.")
        for name, value in (("multiple_of", multiple_of), ("batch_size", batch_size), ("world_size", world_size)):
            if value is not None and (isinstance(value, bool) or int(value) != value or int(value) < 1):
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
        if multiple_of is not None and batch_size is not None:
            raise ValueError(
                "Pass batch_size (the sampler fits every epoch to world_size x batch_size) or multiple_of, not both."
            )
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
        self.shuffle = bool(shuffle)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.world_size = None if world_size is None else int(world_size)
        self._multiple_of = None if multiple_of is None else int(multiple_of)
        self.epoch: int | None = None
        self.selection: Selection | None = None
        self.selection_epoch: int | None = None
        self._weights: np.ndarray | None = None
        self._device_weights: dict[str, torch.Tensor] = {}
        self._assumed_length: int | None = None
        self._collected: list[tuple[torch.Tensor, torch.Tensor]] = []

    # ------------------------------------------------------------------ fitting to whole batches

    @property
    def multiple_of(self) -> int:
        """The unit every epoch's length is a multiple of: `multiple_of` if given, else `world_size * batch_size`,
        else 1 (nothing fitted; refused on more than one process, where it would repeat samples)."""
        if self._multiple_of is not None:
            return self._multiple_of
        world = self.world_size if self.world_size is not None else process_world_size()
        if self.batch_size is not None:
            return world * self.batch_size
        if world > 1:
            raise ValueError(
                f"DynamicPruningSampler runs on {world} processes but does not know the batch size, so accelerate "
                "would complete the epoch's last round of batches with repeated samples. Pass "
                "`batch_size=<the DataLoader's per-device batch size>`: every epoch is then a whole number of "
                "distributed batches and each selected sample is used exactly once."
            )
        return 1

    @property
    def num_keep(self) -> int:
        """The count the policy starts from: `n - floor(prune_ratio * n)`, fitted to whole batches for fixed-length
        policies (varying-length ones fit their own count after selecting)."""
        keep = num_kept(self.num_samples, self.policy.prune_ratio)
        return fit_to_batches(keep, self.num_samples, self.multiple_of) if self.policy.fixed_length else keep

    def fit(self, count: int) -> int:
        """`count` fitted to a whole number of distributed batches (`hf_prune.selection.fit_to_batches`)."""
        return fit_to_batches(count, self.num_samples, self.multiple_of)

    def _fit_selection(self, epoch: int, selection: Selection) -> Selection:
        size = int(selection.ids.size)
        target = self.fit(size)
        if target == size:
            return selection
        rng = self._rng(epoch, 2)  # a stream of its own: the policy's draw (0) and the order (1) are unchanged
        info = {**(selection.info or {}), "fitted_from": size}
        weights = selection.weights
        if target > size:
            pool = np.setdiff1d(np.arange(self.num_samples), selection.ids, assume_unique=True)
            extra = rng.choice(pool, size=target - size, replace=False)
            ids = np.concatenate([selection.ids, extra])
            if weights is not None:  # InfoBatch: the left-out samples are pruned well-learned ones, kept at 1/(1-r)
                weights = np.concatenate([weights, np.full(extra.size, weights.max(), dtype=np.float32)])
        else:
            keep = np.sort(rng.choice(size, size=target, replace=False))
            ids = selection.ids[keep]
            weights = None if weights is None else weights[keep]
        return Selection(ids, weights, info=info)

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
            selection = self.policy.select(start, self.num_keep, self._rng(start, 0))
            self._set_selection(start, self._fit_selection(start, selection))

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
        return self.max_selected(0)

    def max_selected(self, epoch: int) -> int:
        """Before training: the number of samples `epoch` will yield (fixed-length policies) or an upper bound,
        fitted to whole batches (`fit_to_batches` is monotone, so the fitted bound bounds the fitted count)."""
        return self.fit(self.policy.max_selected(self.selection_epoch_of(epoch), self.num_keep))

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
        """Gathers what `collect` kept from every process (one all-gather), checks that it is the epoch's selection,
        each id exactly once, and feeds it to `update`. Every process must call it.

        Raises:
            `RuntimeError`: a sample was trained twice in the epoch, or one outside the epoch's selection (the
                `DataLoader`'s batch size differs from the sampler's `batch_size`, or the loader is not fed by this
                sampler). The same on every process (the check runs on gathered values). Selected samples that were
                never collected (a loop that stopped early) only warn.
        """
        if self._collected:
            ids = torch.cat([i for i, _ in self._collected])
            losses = torch.cat([v.to(ids.device) for _, v in self._collected])
        else:
            device = accelerator.device if accelerator is not None else "cpu"
            ids, losses = torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, device=device)
        collected = bool(self._collected)
        self._collected = []
        if accelerator is not None and accelerator.num_processes > 1:
            ids = accelerator.gather(accelerator.pad_across_processes(ids, dim=0, pad_index=-1))
            losses = accelerator.gather(accelerator.pad_across_processes(losses, dim=0))
            collected = bool((ids >= 0).any())
        keep = ids >= 0
        ids, losses = ids[keep], losses[keep]
        if collected:
            self.check_epoch_ids(ids)
        self.update(ids, losses)

    def check_epoch_ids(self, ids) -> None:
        """Checks that `ids` (every sample trained this epoch, gathered from all processes) hold each id of the
        epoch's selection once: raises on a repeated id or one outside the selection, warns on selected ids missing."""
        if self.selection is None:
            return
        ids = _as_numpy(ids, np.int64)
        unique, counts = np.unique(ids, return_counts=True)
        selected = self.selection.ids
        repeated = int((counts > 1).sum())
        foreign = int(np.setdiff1d(unique, selected, assume_unique=True).size)
        missing = int(np.setdiff1d(selected, unique, assume_unique=True).size)
        where = f"Epoch {self.epoch}: {ids.size} samples trained for a selection of {selected.size}"
        if repeated or foreign:
            raise RuntimeError(
                f"{where}: {repeated} trained more than once, {foreign} not selected. Each selected sample must be "
                f"used exactly once per epoch: give the sampler the DataLoader's per-device batch size "
                f"(`batch_size=`; now {self.batch_size}, fitting to multiples of {self._multiple_of_or_none()}), and "
                "feed the loader from this sampler (`DataLoader(dataset, batch_size=B, sampler=sampler)`)."
            )
        if missing:
            warnings.warn(
                f"{where}: {missing} selected samples were not trained (did the loop stop early, or "
                "`drop_last` drop a partial batch? Pass the DataLoader's batch size as `batch_size=`).",
                stacklevel=3,
            )

    def _multiple_of_or_none(self):
        try:
            return self.multiple_of
        except ValueError:
            return None

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
