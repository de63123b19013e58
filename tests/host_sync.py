"""Counting host synchronisations: a context manager for tests of per-step code paths.

A host transfer (`Tensor.item()`, `.cpu()`, `.tolist()`, `.numpy()`, `torch.cuda.synchronize()`) inside a training step
blocks the host until the device catches up; on a GPU one per step costs a few percent of throughput. This wraps
those entry points (and nothing else) while the block runs and records where each call came from, so a test can
assert that a code path makes none:

```python
from tests.host_sync import count_host_syncs

with count_host_syncs() as syncs:
    recorder.add(ids, logits, labels)
assert syncs.calls == [], syncs.report()
```

`only_during` narrows counting to the dynamic extent of given methods (e.g. `Trainer.training_step`), so that
per-epoch work in the same block (logging, the epoch-end gather) does not count.
"""

from __future__ import annotations

import contextlib
import functools
import traceback
from dataclasses import dataclass, field

import torch


WRAPPED = (
    (torch.Tensor, "item"),
    (torch.Tensor, "cpu"),
    (torch.Tensor, "tolist"),
    (torch.Tensor, "numpy"),
    (torch.cuda, "synchronize"),
)


@dataclass
class HostSyncs:
    calls: list[tuple[str, str]] = field(default_factory=list)  # (what, where)
    _depth: int = 0
    _gated: bool = False

    @property
    def counting(self) -> bool:
        return not self._gated or self._depth > 0

    def report(self) -> str:
        return "\n".join(f"{what} at\n{where}" for what, where in self.calls[:5])


@contextlib.contextmanager
def count_host_syncs(only_during: tuple[tuple[type, str], ...] = ()):
    """Counts host transfers made while the block runs (or, with `only_during`, while one of those methods runs)."""
    syncs = HostSyncs(_gated=bool(only_during))
    originals = []

    def wrap(owner, name, fn, gate=False):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if gate:
                syncs._depth += 1
                try:
                    return fn(*args, **kwargs)
                finally:
                    syncs._depth -= 1
            if syncs.counting:
                where = "".join(traceback.format_stack(limit=8)[:-1])
                syncs.calls.append((f"{getattr(owner, '__name__', owner)}.{name}", where))
            return fn(*args, **kwargs)

        originals.append((owner, name, fn))
        setattr(owner, name, wrapper)

    for owner, name in WRAPPED:
        wrap(owner, name, getattr(owner, name))
    for owner, name in only_during:
        wrap(owner, name, owner.__dict__[name], gate=True)
    try:
        yield syncs
    finally:
        for owner, name, fn in reversed(originals):
            setattr(owner, name, fn)
