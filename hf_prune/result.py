"""`PruneResult`: which samples a strategy keeps, why (scores, params) and from what (provenance)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


RESULT_FILE = "pruning.json"
SAMPLE_ID_COLUMN = "sample_id"


@dataclass
class PruneResult:
    """The outcome of a pruning strategy.

    Args:
        kept_ids (`np.ndarray` of int64):
            Sorted ids of the samples *kept* (row positions in the unpruned training split).
        scores (`np.ndarray` of float64 `[num_samples]`):
            The method's score for every sample (NaN where it had none).
        prune_ratio (`float`):
            Fraction of samples *removed* (0.25 keeps 75 %).
        method (`str`):
            Registered name of the strategy.
        params (`dict`):
            The exact parameters of the strategy and selection (window, keep, class_balanced...).
        num_samples (`int`):
            Length of the unpruned split the ids index into.
        labels (`np.ndarray` of int64 `[num_samples]`, *optional*):
            Class labels per sample, where known.
        provenance (`dict`):
            Where the scores came from (record metadata: model, epochs, dataset fingerprint, source...).

    Example:

    ```python
    >>> result = get_strategy("dyn_unc", window=10).select(record, prune_ratio=0.25)
    >>> pruned_train = result.apply(train_dataset)      # train_dataset.select(result.kept_ids)
    >>> result.save("dyn_unc_25")
    ```
    """

    kept_ids: np.ndarray
    scores: np.ndarray
    prune_ratio: float
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    num_samples: int | None = None
    labels: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.kept_ids = np.asarray(self.kept_ids, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.num_samples is None:
            self.num_samples = int(self.scores.shape[0])
        if self.kept_ids.size and np.any(np.diff(self.kept_ids) <= 0):
            self.kept_ids = np.unique(self.kept_ids)
        if self.kept_ids.size and (self.kept_ids[0] < 0 or self.kept_ids[-1] >= self.num_samples):
            raise ValueError(f"kept_ids must lie in [0, {self.num_samples}).")

    @property
    def num_kept(self) -> int:
        return int(self.kept_ids.size)

    @property
    def removed_ids(self) -> np.ndarray:
        """Sorted ids of the samples removed."""
        mask = np.ones(self.num_samples, dtype=bool)
        mask[self.kept_ids] = False
        return np.flatnonzero(mask).astype(np.int64)

    def keep_mask(self) -> np.ndarray:
        """Boolean `[num_samples]`, True where kept."""
        mask = np.zeros(self.num_samples, dtype=bool)
        mask[self.kept_ids] = True
        return mask

    def apply(self, dataset):
        """Returns the pruned view `dataset.select(kept_ids)` of the *unpruned* split the scores came from.

        A `sample_id` column (the original row position) is added first if the dataset has none, so a
        `PruningTrainer` trained on the pruned view keeps recording against the original ids.

        Raises:
            `ValueError` if the dataset's length differs from the record's (it is not the split that was scored).
        """
        if len(dataset) != self.num_samples:
            raise ValueError(
                f"The dataset has {len(dataset)} rows but this result indexes a split of {self.num_samples} rows. "
                "Apply it to the same, unpruned training split that the score record was made on."
            )
        column_names = getattr(dataset, "column_names", None)
        if column_names is not None and SAMPLE_ID_COLUMN not in column_names:
            dataset = dataset.add_column(SAMPLE_ID_COLUMN, np.arange(len(dataset), dtype=np.int64))
        if hasattr(dataset, "select"):
            return dataset.select(self.kept_ids)
        import torch.utils.data

        return torch.utils.data.Subset(dataset, self.kept_ids.tolist())

    # ------------------------------------------------------------------ persistence

    def _meta(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "prune_ratio": self.prune_ratio,
            "params": self.params,
            "num_samples": self.num_samples,
            "num_kept": self.num_kept,
            "provenance": self.provenance,
        }

    def save(self, save_directory: str | os.PathLike) -> Path:
        """Writes `pruning.json` plus `kept_ids.npy`, `scores.npy` (and `labels.npy`) to `save_directory`."""
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "kept_ids.npy", self.kept_ids)
        np.save(path / "scores.npy", self.scores)
        if self.labels is not None:
            np.save(path / "labels.npy", np.asarray(self.labels, dtype=np.int64))
        with open(path / RESULT_FILE, "w") as f:
            json.dump(self._meta(), f, indent=2, default=str)
        return path

    @classmethod
    def load(cls, save_directory: str | os.PathLike) -> PruneResult:
        """Reads a result written by `save`."""
        path = Path(save_directory)
        if not (path / RESULT_FILE).exists():
            raise FileNotFoundError(f"No pruning result in {path} (missing {RESULT_FILE}).")
        with open(path / RESULT_FILE) as f:
            meta = json.load(f)
        labels = np.load(path / "labels.npy") if (path / "labels.npy").exists() else None
        return cls(
            kept_ids=np.load(path / "kept_ids.npy"),
            scores=np.load(path / "scores.npy"),
            prune_ratio=meta["prune_ratio"],
            method=meta["method"],
            params=meta.get("params", {}),
            num_samples=meta["num_samples"],
            labels=labels,
            provenance=meta.get("provenance", {}),
        )

    def __repr__(self) -> str:
        return (
            f"PruneResult(method={self.method!r}, prune_ratio={self.prune_ratio}, kept={self.num_kept}/"
            f"{self.num_samples}, params={self.params})"
        )
