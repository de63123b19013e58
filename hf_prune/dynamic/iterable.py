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
    moves to epoch `e`, iterating yields that epoch's selection in the sampler's order, and `update(ids, losses)`
    feeds the policy. `len()` is the current epoch's number of samples (constant for fixed-length policies).

    Cross-rank contract: every process builds the view with the same arguments and yields the *same* sequence
    (seed, epoch and score table decide it). `accelerator.prepare(DataLoader(view, batch_size=B))` wraps it in
    accelerate's `IterableDatasetShard`, which reads the stream on every rank and gives rank `r` items
    `[r*B, (r+1)*B)` of each chunk of `W*B`; `DataLoaderShard.set_epoch` reaches this view's `set_epoch`. E.g. 2 ranks,
    B = 4, 56 selected ids `[17, 4, 88, 60, 9, 31, 70, 2, ...]`: rank 0 gets `[17, 4, 88, 60]`, rank 1
    `[9, 31, 70, 2]`, and so on: each selected sample once, as 56 is a multiple of 8 (pass
    `multiple_of=W*B`). Otherwise the last chunk is completed from the *first* ids of the epoch (duplicates that the
    recorder de-duplicates by id). With `num_workers > 0`, worker `w` of `m` streams positions `w, w + m, ...` of the
    epoch's order, so across workers each id still comes once (use `multiple_of = m * W * B` to avoid padding).

    Args:
        dataset (`datasets.Dataset` or map-style dataset): the *unpruned* training split.
        policy (`DynamicPolicy`, *optional*): the selection rule; or pass `sampler`.
        seed (`int`, *optional*, defaults to 0): same on every rank.
        sampler (`DynamicPruningSampler`, *optional*): an existing sampler to drive this view.
        add_loss_weight (`bool`, *optional*, defaults to `True`): add the `loss_weight` column (InfoBatch weights,
            1.0 for other policies).
        fetch_size (`int`, *optional*, defaults to 256): rows read per `dataset[ids]` call.
        **sampler_kwargs: `pruning_period`, `multiple_of`, `shuffle` for the sampler built from `policy`.

    Example:

    ```python
    >>> from hf_prune.dynamic import DynamicPruningDataset, get_policy
    >>> view = DynamicPruningDataset(train_ds, get_policy("infobatch", prune_ratio=0.3, num_epochs=10), seed=0,
    ...                              multiple_of=accelerator.num_processes * 64)
    >>> loader = accelerator.prepare(DataLoader(view, batch_size=64, collate_fn=collate))
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
        **sampler_kwargs,
    ):
        if (policy is None) == (sampler is None):
            raise ValueError("Pass exactly one of `policy` or `sampler`.")
        self.dataset = dataset
        self.sampler = sampler or DynamicPruningSampler(policy, len(dataset), seed=seed, **sampler_kwargs)
        if self.sampler.num_samples != len(dataset):
            raise ValueError(
                f"The sampler indexes {self.sampler.num_samples} samples but the dataset has {len(dataset)}."
            )
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

    @property
    def policy(self) -> DynamicPolicy:
        return self.sampler.policy

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def update(self, ids, losses, labels=None) -> None:
        """See `DynamicPruningSampler.update`: feed losses gathered from all ranks."""
        self.sampler.update(ids, losses, labels)

    def collect(self, ids, losses) -> None:
        """See `DynamicPruningSampler.collect`: keep a step's losses on the device."""
        self.sampler.collect(ids, losses)

    def end_epoch(self, accelerator=None) -> None:
        """See `DynamicPruningSampler.end_epoch`: one gather per epoch feeds the policy."""
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

    def __iter__(self) -> Iterator[dict]:
        order = self.sampler.indices()
        info = torch.utils.data.get_worker_info()
        if info is not None and info.num_workers > 1:
            order = order[info.id :: info.num_workers]
        weights = self.sampler.loss_weights(order).numpy() if self.add_loss_weight else None
        for j, (idx, row) in enumerate(self._rows(order)):
            if not isinstance(row, Mapping):
                raise TypeError(f"DynamicPruningDataset needs dataset items to be dicts; got {type(row).__name__}.")
            row = dict(row)
            row.setdefault(SAMPLE_ID_COLUMN, idx)
            if weights is not None:
                row[LOSS_WEIGHT_COLUMN] = float(weights[j])
            yield row
