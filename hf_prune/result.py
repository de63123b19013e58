"""`PruneResult`: which samples a strategy keeps, why (scores, params) and from what (provenance)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .export.folder import save_results
from .export.hub import fetch_index_folder, push_results_to_hub
from .export.index_list import read_index_list
from .sample_ids import SAMPLE_ID_COLUMN


__all__ = ["SAMPLE_ID_COLUMN", "PruneResult"]


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
    >>> result.save("dyn_unc_25", source=("ILSVRC/imagenet-1k", "train"))   # parquet + dataset card
    >>> PruneResult.load("dyn_unc_25").kept_ids                             # or a Hub repo id
    >>> result.push_to_hub("org/imagenet-1k-dyn-unc-25")
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

    def save(self, save_directory: str | os.PathLike, source: Any = None, **kwargs: Any) -> Path:
        """Writes this list to a folder laid out as a Hub dataset repo: parquet under `data/<config>/` (rows kept,
        sorted `index`, `score`, `label`), a `README.md` dataset card with a `pruning:` block, optionally a score
        histogram. See `hf_prune.export.save_results` for the layout, the checksum and every option.

        Args:
            save_directory (`str` or `os.PathLike`):
                Folder to write (replaced atomically if it holds an earlier index list).
            source (`str`, `tuple` or `dict`, *optional*):
                The source split: repo id, `(repo_id, split[, revision])` or a dict; fills in the provenance.
            kwargs:
                Passed to `save_results` (`content_key=`, `source_dataset=`, `all_scores=`, `license=`...).

        Returns:
            `Path`: the folder.
        """
        return save_results([self], save_directory, source, **kwargs)

    @classmethod
    def load(
        cls,
        path_or_repo_id: str | os.PathLike,
        config: str | None = None,
        revision: str | None = None,
        token: str | None = None,
    ) -> PruneResult:
        """Reads a list written by `save` (or pushed with `push_to_hub`) back, verifying its checksum.

        Scores and labels of rows *not kept* are NaN / -1 unless the folder was saved with `all_scores=True`.

        Args:
            path_or_repo_id (`str` or `os.PathLike`):
                A saved folder or a Hub dataset repo id.
            config (`str`, *optional*):
                Which ratio (e.g. `"prune_50"`) of a folder with several; defaults to the default config.
            revision (`str`, *optional*):
                Revision of the Hub repo.
            token (`str`, *optional*):
                Hub token for private repos.
        """
        folder = fetch_index_folder(path_or_repo_id, config=config, revision=revision, token=token)
        index_list = read_index_list(folder, config)
        params, provenance = index_list.saved_params_and_provenance()
        return cls(
            kept_ids=index_list.index,
            scores=index_list.full_scores(),
            prune_ratio=float(index_list.entry["prune_ratio"]),
            method=str(index_list.pruning["method"]),
            params=params,
            num_samples=index_list.num_samples,
            labels=index_list.full_labels(),
            provenance=provenance,
        )

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        token: str | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
        source: Any = None,
        *,
        tag: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Publishes this list as a Hub dataset repo (`create_repo(repo_type="dataset")` + `upload_folder`, one
        commit) and returns the commit URL. Token and folder are validated first: nothing is half-pushed.

        Args:
            repo_id (`str`):
                Dataset repo id, e.g. `"org/imagenet-1k-dyn-unc-25"`.
            private (`bool`, *optional*, defaults to `False`):
                Visibility of a new repo.
            token (`str`, *optional*):
                Hub token; defaults to the logged-in one / `HF_TOKEN`.
            revision (`str`, *optional*):
                Branch to commit to (created if missing).
            commit_message (`str`, *optional*):
                Commit message.
            source (`str`, `tuple` or `dict`, *optional*):
                The source split, filling in or overriding the provenance, e.g.
                `("ILSVRC/imagenet-1k", "train", "<revision>")`.
            tag (`str`, *optional*):
                Tag the commit (e.g. `"v1.0"`).
            kwargs:
                Passed to `save` (`content_key=`, `source_dataset=`, `license=`...).

        Returns:
            `str`: the commit URL.

        Example:

        ```python
        >>> result.push_to_hub("org/imagenet-1k-dyn-unc-25", source=("ILSVRC/imagenet-1k", "train", "main"))
        ```
        """
        return push_results_to_hub(
            [self], repo_id, private, token, revision, commit_message, tag=tag, source=source, **kwargs
        )

    def __repr__(self) -> str:
        return (
            f"PruneResult(method={self.method!r}, prune_ratio={self.prune_ratio}, kept={self.num_kept}/"
            f"{self.num_samples}, params={self.params})"
        )
