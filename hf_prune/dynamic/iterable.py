"""`DynamicPruningDataset`: an `IterableDataset` view of a map-style dataset that streams each epoch's selection."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch

from ..sample_ids import SAMPLE_ID_COLUMN
from .base import DynamicPolicy
from .sampler import DynamicPruningSampler


LOSS_WEIGHT_COLUMN = "loss_weight"


class DynamicPruningDataset(torch.utils.data.IterableDataset):
    """Streams the rows a dynamic policy selects for the current epoch, with `sample_id` and `loss_weight` added.

    It wraps a `datasets.Dataset` (or any map-style dataset of dicts) and a `DynamicPruningSampler`; `set_epoch(e)`
    moves to epoch `e`, iterating yields that epoch's selection in the sampler's order, `collect(ids, losses)` keeps a
    step's losses and `end_epoch(accelerator)` feeds the policy (checking that each selected sample came once).
    `len()` is the current epoch's number of samples.

    **Exactly once, across processes and loader workers.** Pass the `DataLoader`'s per-device `batch_size`: every
    epoch is then fitted to a multiple of `W x B` (see `DynamicPruningSampler`), and the stream is dealt to loader
    workers in whole chunks of `W x B` rows (worker `w` of `m` streams chunks `w, w + m, ...`), so every batch any
    worker makes is full. accelerate's default for an `IterableDataset` (the main process reads the stream and
    dispatches `W` batches per step, `dispatch_batches=True`) and its per-process sharding (`dispatch_batches=False`,
    `IterableDatasetShard`) then give each rank `B` distinct rows per step, with nothing padded or dropped, whether
    `drop_last` is set or not.

    **Persistent workers.** Loader workers hold a copy of this view made when they started. The epoch's order and
    weights therefore live in shared memory, written by `set_epoch` in the main process and read by every worker
    when it starts streaming an epoch, so `persistent_workers=True` trains each epoch's own selection.

    Cross-rank contract: every process builds the view with the same arguments and holds the *same* sequence (seed,
    epoch and score table decide it). E.g. 2 ranks, `batch_size=4`, 56 selected ids `[17, 4, 88, 60, 9, 31, 70, 2,
    ...]`: rank 0 gets `[17, 4, 88, 60]`, rank 1 `[9, 31, 70, 2]`, and so on.

    Args:
        dataset (`datasets.Dataset` or map-style dataset): the *unpruned* training split.
        policy (`DynamicPolicy`, *optional*): the selection rule; or pass `sampler`.
        seed (`int`, *optional*, defaults to 0): same on every rank.
        sampler (`DynamicPruningSampler`, *optional*): an existing sampler to drive this view.
        add_loss_weight (`bool`, *optional*, defaults to `True`): add the `loss_weight` column (InfoBatch weights,
            1.0 for other policies).
        fetch_size (`int`, *optional*, defaults to 256): rows read per `dataset[ids]` call.
        batch_size (`int`, *optional*): the `DataLoader`'s per-device batch size (see above); passed to the sampler
            built from `policy`.
        **sampler_kwargs: `pruning_period`, `multiple_of`, `shuffle`, `world_size` for the sampler built from
            `policy`.

    Example:

    ```python
    >>> from hf_prune.dynamic import DynamicPruningDataset, get_policy
    >>> view = DynamicPruningDataset(train_ds, get_policy("infobatch", prune_ratio=0.3, num_epochs=10), batch_size=64)
    >>> loader = accelerator.prepare(DataLoader(view, batch_size=64, collate_fn=collate, num_workers=2,
    ...                                         persistent_workers=True))
    >>> for epoch in range(10):
    ...     loader.set_epoch(epoch)   # reaches view.set_epoch
    ...     for batch in loader:
    ...         per_sample = F.cross_entropy(model(batch["pixel_values"]), batch["labels"], reduction="none")
    ...         accelerator.backward((batch["loss_weight"] * per_sample).mean())   # weights carried in the batch
    ...         view.collect(batch["sample_id"], per_sample)   # stays on the device
    ...     view.end_epoch(accelerator)                        # one gather per epoch feeds the policy
    ```
    """

    def __init__(
        self,
        dataset,
        policy: DynamicPolicy | None = None,
        seed: int = 0,
        sampler: DynamicPruningSampler | None = None,
        add_loss_weight: bool = True,
        fetch_size: int = 256,
        batch_size: int | None = None,
        **sampler_kwargs,
    ):
        if (policy is None) == (sampler is None):
            raise ValueError("Pass exactly one of `policy` or `sampler`.")
        if sampler is not None and (batch_size is not None or sampler_kwargs):
            raise ValueError("Pass `batch_size` and the sampler's arguments to the sampler you give, not to the view.")
        self.dataset = dataset
        self.sampler = sampler or DynamicPruningSampler(
            policy, len(dataset), seed=seed, batch_size=batch_size, **sampler_kwargs
        )
        n = self.sampler.num_samples
        if n != len(dataset):
            raise ValueError(f"The sampler indexes {n} samples but the dataset has {len(dataset)}.")
        columns = getattr(dataset, "column_names", None)
        if columns is not None and SAMPLE_ID_COLUMN in columns:
            ids = np.asarray(dataset.with_format("numpy")[SAMPLE_ID_COLUMN])
            if not np.array_equal(ids, np.arange(len(dataset))):
                raise ValueError(
                    "The dataset's `sample_id` column is not its row position: it is a pruned view. Dynamic pruning "
                    "selects from the whole, unpruned split; pass that instead."
                )
        self.add_loss_weight = add_loss_weight
        self.fetch_size = max(1, int(fetch_size))
        # The epoch as loader workers see it, in shared memory (see "Persistent workers" above):
        # header = [epoch, length, chunk], then the epoch's order and each position's loss weight.
        self._header = torch.full((3,), -1, dtype=torch.int64).share_memory_()
        self._order = torch.zeros(n, dtype=torch.int64).share_memory_()
        self._weights = torch.ones(n, dtype=torch.float32).share_memory_()

    @property
    def policy(self) -> DynamicPolicy:
        return self.sampler.policy

    def set_epoch(self, epoch: int) -> None:
        """Moves to `epoch` and publishes its order and weights to the loader workers (main process)."""
        self.sampler.set_epoch(epoch)
        order = self.sampler.indices()
        size = order.size
        self._order[:size] = torch.from_numpy(order)
        self._weights[:size] = self.sampler.loss_weights(order)
        self._header[:] = torch.tensor([int(epoch), size, self.sampler.multiple_of])

    def update(self, ids, losses, labels=None) -> None:
        """See `DynamicPruningSampler.update`: feed losses gathered from all ranks."""
        self.sampler.update(ids, losses, labels)

    def collect(self, ids, losses) -> None:
        """See `DynamicPruningSampler.collect`: keep a step's losses on the device."""
        self.sampler.collect(ids, losses)

    def end_epoch(self, accelerator=None) -> None:
        """See `DynamicPruningSampler.end_epoch`: one gather per epoch checks exactly-once and feeds the policy."""
        self.sampler.end_epoch(accelerator)

    def loss_weights(self, ids=None) -> torch.Tensor:
        return self.sampler.loss_weights(ids)

    def __len__(self) -> int:
        return len(self.sampler)

    def _rows(self, ids: np.ndarray) -> Iterator[dict]:
        getitems = getattr(self.dataset, "__getitems__", None)
        is_hf = hasattr(self.dataset, "column_names") and hasattr(self.dataset, "select")
        for start in range(0, ids.size, self.fetch_size):
            chunk = ids[start : start + self.fetch_size].tolist()
            if is_hf:
                batch = self.dataset[chunk]
                keys = list(batch)
                rows = [{k: batch[k][i] for k in keys} for i in range(len(chunk))]
            elif getitems is not None:
                rows = getitems(chunk)
            else:
                rows = [self.dataset[i] for i in chunk]
            yield from zip(chunk, rows)

    def _epoch_stream(self) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's order and weights as published by `set_epoch`, this worker's whole chunks of it."""
        info = torch.utils.data.get_worker_info()
        if int(self._header[0]) < 0:
            if info is not None:  # a worker of a loader whose epoch was never set: the same draw, computed here
                order = self.sampler.indices()
                weights = self.sampler.loss_weights(order).numpy()
                chunk = self.sampler.multiple_of
            else:
                self.set_epoch(0)
        if int(self._header[0]) >= 0:
            size, chunk = int(self._header[1]), int(self._header[2])
            order = self._order[:size].numpy().copy()
            weights = self._weights[:size].numpy().copy()
        if info is not None and info.num_workers > 1:
            # whole chunks of W x B rows per worker: every batch a worker makes is full
            starts = np.arange(0, order.size, chunk)[info.id :: info.num_workers]
            mine = (starts[:, None] + np.arange(chunk)[None, :]).reshape(-1) if starts.size else np.zeros(0, int)
            mine = mine[mine < order.size]
            order, weights = order[mine], weights[mine]
        return order, weights

    def __iter__(self) -> Iterator[dict]:
        order, weights = self._epoch_stream()
        for j, (idx, row) in enumerate(self._rows(order)):
            if not isinstance(row, Mapping):
                raise TypeError(f"DynamicPruningDataset needs dataset items to be dicts; got {type(row).__name__}.")
            row = dict(row)
            row.setdefault(SAMPLE_ID_COLUMN, idx)
            if self.add_loss_weight:
                row[LOSS_WEIGHT_COLUMN] = float(weights[j])
            yield row
