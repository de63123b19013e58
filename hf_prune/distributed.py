"""Collective sections that fail on every rank, and a bounded-memory gather of id-keyed rows to the main process.

**Agreement** (`raise_on_every_rank`). A rank that raises inside a collective section (a record write, the feature
pass, the clean-view pass) while the others wait in the next collective would hang the job until the NCCL timeout.
So such sections catch their own error, then every rank calls `raise_on_every_rank(error, ...)`: one small
all-reduce says whether any rank failed; if one did, the failing ranks re-raise their own error and the others raise
`CollectiveError` quoting it. Nobody is left waiting.

**Streaming to the main process** (`stream_rows_to_main`). At the end of an epoch each rank holds the rows it trained
on, sorted by sample id. Only the main process writes the record, so only it needs the rows, and it needs them in
id order to write the epoch row segment by segment. The id space `[0, n)` is cut into consecutive ranges; per range
every rank sends its rows of that range (padded to the largest rank's count) in one `torch.distributed.gather` to
rank 0:

```
ids      0 ............................................................... n
ranges   [ r0 ][  r1  ][ r2 ][   r3   ] ...        cut so that  W x max_rows(range) x row_bytes <= max_bytes
rank 0   ▓▓  ▓ ▓▓▓  ▓  ▓ ▓▓   ▓▓ ▓  ▓              and  range width <= max_span ids
rank 1    ▓ ▓▓  ▓ ▓▓  ▓▓  ▓ ▓  ▓▓  ▓▓
            │ gather(range r) ──> rank 0: rows of r from rank 0, 1, ... ──> write segment r of the epoch row
```

Peak extra memory per rank is one range's rows (`max_bytes / W` on a sender, `max_bytes` on the main process), not
O(n): each rank picks a range's rows out of its buffer when the range comes (`select`), and the range cuts come from
one all-reduce of a histogram of ids (4,096 buckets). `accelerate` has no gather to one
rank, so this uses `torch.distributed` directly (gloo and NCCL both implement `gather`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch


DEFAULT_MAX_BYTES = 8 * 2**20  # per range, on the main process
DEFAULT_MAX_SPAN = 2**20  # ids per range: bounds the main process's segment buffers
NUM_BUCKETS = 4096


class CollectiveError(RuntimeError):
    """Raised on the ranks that did not fail when another rank failed inside a collective section."""


def _world(accelerator) -> tuple[int, int]:
    if accelerator is None:
        return 1, 0
    return int(accelerator.num_processes), int(accelerator.process_index)


def raise_on_every_rank(error: BaseException | None, accelerator, what: str) -> None:
    """Ends a collective section: if any rank passes an error, every rank raises.

    Every rank must call it (it is a collective), with the exception it caught in the section or `None`.

    Args:
        error (`BaseException` or `None`): what this rank's part of the section raised.
        accelerator (`accelerate.Accelerator` or `None`): the processes; `None` or one process re-raises locally.
        what (`str`): the section, for the message of the other ranks (e.g. `"writing epoch 3 of the record"`).

    Raises:
        this rank's `error`, or `CollectiveError` quoting the failing ranks' errors.
    """
    world, rank = _world(accelerator)
    if world > 1:
        flag = torch.tensor([0 if error is None else 1], device=accelerator.device, dtype=torch.int32)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        failed = bool(flag.item())
    else:
        failed = error is not None
    if not failed:
        return
    if world > 1:
        messages: list = [None] * world
        torch.distributed.all_gather_object(messages, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    quoted = "; ".join(f"rank {r}: {m}" for r, m in enumerate(messages) if m is not None)
    raise CollectiveError(f"{what} failed on another process ({quoted}). Every process stops here.")


def _range_cuts(max_counts: np.ndarray, edges: np.ndarray, world: int, row_bytes: int, max_bytes: int, max_span: int):
    """Groups consecutive buckets into ranges whose padded gather fits `max_bytes` and whose width fits `max_span`."""
    cuts = [0]
    rows = 0
    for b in range(len(max_counts)):
        start = edges[cuts[-1]]
        if b > cuts[-1] and (world * (rows + max_counts[b]) * row_bytes > max_bytes or edges[b + 1] - start > max_span):
            cuts.append(b)
            rows = 0
        rows += int(max_counts[b])
    cuts.append(len(max_counts))
    return cuts


def stream_rows_to_main(
    accelerator,
    histogram: Callable[[torch.Tensor], torch.Tensor],
    select: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
    num_ids: int,
    row_bytes: int,
    device: torch.device | str = "cpu",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_span: int = DEFAULT_MAX_SPAN,
) -> Iterator[tuple[int, int, list[np.ndarray], list[np.ndarray]]]:
    """Streams every rank's id-keyed rows to the main process, one id range at a time, in id order.

    Every rank must iterate the generator to its end (each step is a collective); the ranges cover `[0, num_ids)`
    exactly, consecutively, on every rank.

    Args:
        accelerator (`accelerate.Accelerator` or `None`): the processes (`None`: this process alone).
        histogram (`Callable[[Tensor], Tensor]`): `histogram(edges)` -> this rank's number of rows per id bucket
            `[edges[b], edges[b+1])` (an upper bound is fine), int64 on `device`.
        select (`Callable[[int, int], tuple[Tensor, Tensor]]`): `select(start, stop)` -> this rank's rows with ids in
            `[start, stop)`: sorted unique int64 ids `[k]` and one packed uint8 row each `[k, row_bytes]`, on `device`.
        num_ids (`int`): the size of the id space.
        row_bytes (`int`): bytes per packed row (the same on every rank).
        device (`torch.device`): where this rank's rows live (and the collective's tensors).
        max_bytes (`int`, *optional*): bound of one range's gathered rows on the main process.
        max_span (`int`, *optional*): bound of one range's width in ids.

    Yields:
        `(start, stop, ids_per_rank, rows_per_rank)`: the range `[start, stop)` and, on the main process, the ids
        (int64 numpy) and rows (uint8 numpy `[k, row_bytes]`) every rank holds in it, in rank order; on the other
        processes the two lists are empty.
    """
    world, rank = _world(accelerator)
    num_buckets = max(1, min(NUM_BUCKETS, int(num_ids)))
    edges = np.linspace(0, int(num_ids), num_buckets + 1).round().astype(np.int64)
    counts = histogram(torch.as_tensor(edges, device=device)).to(device=device, dtype=torch.int64)
    if world > 1:
        torch.distributed.all_reduce(counts, op=torch.distributed.ReduceOp.MAX)
    max_counts = counts.cpu().numpy()
    width = 8 + row_bytes
    cuts = _range_cuts(max_counts, edges, world, width, max_bytes, max_span)
    # One send buffer (and, on rank 0, one receive buffer per rank) for all ranges, sliced per range: no allocation
    # churn across the ranges, so the allocator's high-water mark stays at one range's size.
    largest = max((int(max_counts[b0:b1].sum()) for b0, b1 in zip(cuts[:-1], cuts[1:])), default=0)
    send = recv = None
    if world > 1 and largest:
        send = torch.empty(largest, width, dtype=torch.uint8, device=device)
        recv = [torch.empty_like(send) for _ in range(world)] if rank == 0 else None
    for b0, b1 in zip(cuts[:-1], cuts[1:]):
        start, stop = int(edges[b0]), int(edges[b1])
        capacity = int(max_counts[b0:b1].sum())
        if world == 1:
            ids, rows = select(start, stop)
            yield start, stop, [ids.cpu().numpy()], [rows.cpu().numpy()]
            continue
        if capacity == 0:
            yield start, stop, [], []
            continue
        ids, rows = select(start, stop)
        k = ids.shape[0]
        if k > capacity or rows.shape != (k, row_bytes):
            raise RuntimeError(f"select({start}, {stop}) gave {k} rows of shape {tuple(rows.shape)}; at most {capacity}.")
        # one tensor per range: [capacity, 8 + B] bytes, id first, padding rows carry id -1
        packed = send[:capacity]
        packed[:k, :8] = ids.view(torch.uint8).view(k, 8)
        packed[k:, :8] = 255  # int64 -1, little or big endian
        packed[:k, 8:] = rows
        del ids, rows
        received = [buf[:capacity] for buf in recv] if rank == 0 else None
        torch.distributed.gather(packed, received, dst=0)
        if rank != 0:
            yield start, stop, [], []
            continue
        out_ids, out_rows = [], []
        for chunk in received:
            chunk = chunk.cpu().numpy()
            chunk_ids = np.ascontiguousarray(chunk[:, :8]).view(np.int64).reshape(-1)
            keep = chunk_ids >= 0
            out_ids.append(chunk_ids[keep])
            out_rows.append(chunk[keep, 8:])
        del received
        yield start, stop, out_ids, out_rows
