"""A dynamic pruning run's state in a checkpoint folder, independent of any training loop: the sampler (epoch,
selection), the policy's score table and what the loop keeps beside them (timings, the epoch log), so a resumed run
draws the same selections as an uninterrupted one. `DynamicPruningTrainer` writes it to
`checkpoint-N/dynamic_pruning/` (`hf_prune.run_record.CHECKPOINT_DYNAMIC_DIR`).

```
<folder>/state.json    {"sampler": plain values, "policy": name, params, seed..., + what the loop adds}
<folder>/arrays.npz    policy.<table> (the score table), selection_ids, selection_weights
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .sampler import DynamicPruningSampler


__all__ = ["has_sampler_state", "load_sampler_state", "save_sampler_state"]

STATE_FILE = "state.json"
ARRAYS_FILE = "arrays.npz"


def has_sampler_state(folder: str | Path) -> bool:
    """Whether `folder` holds a state written by `save_sampler_state`."""
    return (Path(folder) / STATE_FILE).exists()


def save_sampler_state(folder: str | Path, sampler: DynamicPruningSampler, **extra: Any) -> None:
    """Writes `sampler`'s state (selection, epoch, the policy's table) and the JSON-able `extra` entries to `folder`.

    Args:
        folder (`str` or `Path`): created if missing.
        sampler (`DynamicPruningSampler`): the same on every rank, so one process writes it.
        **extra: JSON-able values kept beside it (e.g. `timing=`, `epoch_log=`), returned by `load_sampler_state`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = sampler.state_dict()
    policy = state.pop("policy")
    arrays = {f"policy.{k}": v for k, v in policy.pop("tables").items()}
    for key in ("selection_ids", "selection_weights"):
        value = state.pop(key)
        if value is not None:
            arrays[key] = value
    np.savez(folder / ARRAYS_FILE, **arrays)
    with open(folder / STATE_FILE, "w") as f:
        json.dump({"sampler": state, "policy": policy, **extra}, f, indent=2, default=float)


def load_sampler_state(folder: str | Path, sampler: DynamicPruningSampler) -> dict[str, Any]:
    """Restores `sampler` from `folder` (refused when the run's seed, dataset, period or ratio differ) and returns the
    `extra` entries saved with it."""
    folder = Path(folder)
    with open(folder / STATE_FILE) as f:
        meta = json.load(f)
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    policy = {**meta.pop("policy"), "tables": {k[7:]: v for k, v in arrays.items() if k.startswith("policy.")}}
    state = {
        **meta.pop("sampler"),
        "selection_ids": arrays.get("selection_ids"),
        "selection_weights": arrays.get("selection_weights"),
        "policy": policy,
    }
    sampler.load_state_dict(state)
    return meta
