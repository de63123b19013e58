"""`PruneResult`: which samples a strategy keeps, why (scores, params) and from what (provenance)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .export.folder import save_results
from .export.hub import fetch_index_folder, push_results_to_hub
from .export.index_list import read_index_list
from .sample_ids import SAMPLE_ID_COLUMN, row_fingerprint, row_fingerprint_matches
from .selection import check_ratio


__all__ = ["SAMPLE_ID_COLUMN", "DatasetMismatchWarning", "PruneResult"]


class DatasetMismatchWarning(UserWarning):
    """`PruneResult.apply(..., force=True)` on a dataset whose rows differ from the ones that were scored."""


def _as_ids(values, name: str = "kept_ids") -> np.ndarray:
    """`values` as sorted, unique int64 sample ids; refuses masks, non-integers and repeats instead of guessing."""
    arr = np.asarray(values)
    if arr.dtype == bool:
        raise TypeError(
            f"{name} is a boolean mask; PruneResult takes the ids of the kept samples: pass `np.flatnonzero(mask)`."
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of sample ids; got shape {arr.shape}.")
    if arr.size and arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ValueError(
                f"{name} must hold integer sample ids; got {int(bad.sum())} non-integer value(s), e.g. "
                f"{arr[bad][0].item()!r}. Nothing is truncated or rounded."
            )
    elif arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer sample ids; got dtype {arr.dtype}.")
    ids = np.sort(arr.astype(np.int64))
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if repeated.size:
        raise ValueError(
            f"{name} holds {repeated.size} repeated id(s), e.g. {int(repeated[0])}: a selection keeps each sample "
            "once. De-duplicate upstream (`np.unique`) if that is what you mean."
        )
    return ids


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
        self.kept_ids = _as_ids(self.kept_ids)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.scores.ndim != 1:
            raise ValueError(f"scores must be one score per sample, 1-D; got shape {self.scores.shape}.")
        if self.num_samples is None:
            self.num_samples = int(self.scores.shape[0])
        if isinstance(self.num_samples, bool) or int(self.num_samples) != self.num_samples or self.num_samples < 0:
            raise ValueError(f"num_samples must be a non-negative integer; got {self.num_samples!r}.")
        self.num_samples = int(self.num_samples)
        if self.scores.shape != (self.num_samples,):
            raise ValueError(
                f"scores has {self.scores.shape[0]} entries for num_samples={self.num_samples}: give one score per "
                "sample of the unpruned split (NaN where there is none)."
            )
        if self.kept_ids.size and (self.kept_ids[0] < 0 or self.kept_ids[-1] >= self.num_samples):
            raise ValueError(f"kept_ids must lie in [0, {self.num_samples}).")
        self.prune_ratio = check_ratio(self.prune_ratio)
        if self.labels is not None:
            self.labels = np.asarray(self.labels)
            if self.labels.shape != (self.num_samples,):
                raise ValueError(f"labels has shape {self.labels.shape}; expected ({self.num_samples},).")

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

    def apply(self, dataset, force: bool = False):
        """Returns the pruned view of `dataset`: its rows whose sample id is kept.

        * A dataset with a `sample_id` column (a view made by an earlier `apply`, or any dataset carrying the
          original row positions): the rows whose `sample_id` is in `kept_ids`, in the dataset's order. Every kept
          id must be there.
        * Otherwise `dataset` must be the unpruned split that was scored: same length, and for a `datasets.Dataset`
          the same rows (checked against the row fingerprint the record stored; `set_transform` and formats do not
          matter, `shuffle` or `select` do). Then `dataset.select(kept_ids)`, with a `sample_id` column added so a
          `PruningTrainer` trained on the view keeps recording against the original ids.

        Args:
            dataset (`datasets.Dataset` or a map-style torch dataset): the split to prune.
            force (`bool`, *optional*, defaults to `False`): apply despite a row-fingerprint mismatch, with a
                `DatasetMismatchWarning` instead of an error (e.g. a copy whose rows are known to be the same).

        Raises:
            `ValueError` if the dataset is not the scored split (length, rows) or lacks kept ids.
        """
        column_names = getattr(dataset, "column_names", None)
        if column_names is not None and SAMPLE_ID_COLUMN in column_names:
            return self._apply_by_sample_id(dataset)
        if len(dataset) != self.num_samples:
            raise ValueError(
                f"The dataset has {len(dataset)} rows but this result indexes a split of {self.num_samples} rows. "
                "Apply it to the same, unpruned training split that the score record was made on."
            )
        record = self.provenance.get("record") or {}
        scored = record.get("dataset_row_fingerprint")
        current = row_fingerprint(dataset) if scored else None
        if scored and current and row_fingerprint_matches(scored, dataset) is False:
            message = (
                f"This dataset's rows differ from the ones that were scored (row fingerprint {current}, scored "
                f"{scored}): same length, but shuffled, re-selected or another split, so `select(kept_ids)` would "
                "pick the wrong rows. Apply the result to the split the record was made on (before any shuffle), or "
                "add a `sample_id` column holding each row's position in that split."
            )
            if not force:
                raise ValueError(message + " Pass `force=True` only if you know the rows are the same.")
            warnings.warn(message + " Applied anyway (force=True).", DatasetMismatchWarning, stacklevel=2)
        if column_names is not None:
            dataset = dataset.add_column(SAMPLE_ID_COLUMN, np.arange(len(dataset), dtype=np.int64))
        if hasattr(dataset, "select"):
            return dataset.select(self.kept_ids)
        import torch.utils.data

        return torch.utils.data.Subset(dataset, self.kept_ids.tolist())

    def _apply_by_sample_id(self, dataset):
        ids = np.asarray(dataset.with_format("numpy", columns=[SAMPLE_ID_COLUMN])[SAMPLE_ID_COLUMN], dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_samples):
            raise ValueError(
                f"The dataset's `{SAMPLE_ID_COLUMN}` column spans [{ids.min()}, {ids.max()}], outside this result's "
                f"split of {self.num_samples} rows: it does not hold row positions of the split that was scored."
            )
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"The dataset's `{SAMPLE_ID_COLUMN}` column repeats ids (e.g. {int(unique[counts > 1][0])}); each row "
                "must carry its own position in the scored split."
            )
        keep = np.isin(ids, self.kept_ids)
        missing = self.kept_ids.size - int(keep.sum())
        if missing:
            raise ValueError(
                f"{missing} of the {self.kept_ids.size} kept ids are not in the dataset's `{SAMPLE_ID_COLUMN}` column: "
                "it is a view that lacks kept samples. Apply the result to the full split (or a view holding them)."
            )
        return dataset.select(np.flatnonzero(keep))

    def to_source_rows(self, rows, num_source_rows: int, description: str | None = None) -> PruneResult:
        """The same selection with ids in the *full* source split, for a run that trained on part of it.

        A run on a subset (`--max_train_samples`, a held-out validation share) records rows `0 ... m-1`; published
        ids must be positions in the full split. `rows[i]` is the full-split position of training row `i`. The
        result keeps its `prune_ratio` (the share of the *subset* removed); rows outside the subset get NaN scores
        and are not kept, and `provenance["subset"]` says which rows the run saw.

        Args:
            rows (`np.ndarray` of int `[num_samples]`): the full-split position of each trained row, any order, no
                position twice (e.g. `shuffle(seed=s).select(range(m))`'s rows: `np.random.default_rng(s)`'s
                permutation's first `m`, or `dataset._indices` of such a view; see `source_rows_of`).
            num_source_rows (`int`): rows of the full split.
            description (`str`, *optional*): how the rows were chosen, for the card (e.g. "the first 10,000 rows").

        Example:

        ```python
        >>> import numpy as np
        >>> from hf_prune import PruneResult
        >>> r = PruneResult(kept_ids=[0, 2], scores=[0.9, 0.1, 0.8], prune_ratio=1 / 3, method="random")
        >>> r.to_source_rows(np.array([10, 11, 12]), 100, "rows 10-12").kept_ids
        array([10, 12])
        ```
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.shape != (self.num_samples,):
            raise ValueError(f"`rows` must give the source position of each of the {self.num_samples} rows.")
        if rows.size and (rows.min() < 0 or rows.max() >= num_source_rows):
            raise ValueError(
                f"`rows` must be positions in the full split, in [0, {num_source_rows}); got [{rows.min()}, "
                f"{rows.max()}]."
            )
        if np.unique(rows).size != rows.size:
            raise ValueError(
                "`rows` names a full-split position twice: each trained row must come from its own source row (a "
                "subset made with `select`/`shuffle`, not with repeats)."
            )
        scores = np.full(num_source_rows, np.nan)
        scores[rows] = self.scores
        labels = None
        if self.labels is not None:
            labels = np.full(num_source_rows, -1, dtype=np.int64)
            labels[rows] = self.labels
        subset = {"num_rows": int(self.num_samples), "num_source_rows": int(num_source_rows)}
        if description:
            subset["description"] = description
        if rows.size and np.all(np.diff(rows) == 1):
            subset["range"] = [int(rows[0]), int(rows[-1]) + 1]
        provenance = {**self.provenance, "subset": subset}
        record = self.provenance.get("record")
        if isinstance(record, dict) and {"dataset_row_fingerprint", "dataset_fingerprint"} & set(record):
            # the scored rows' fingerprints belong to the subset, not to the full split these ids now index: left in
            # the record, a consumer's full split would be checked against the subset's fingerprint
            record = dict(record)
            if "dataset_row_fingerprint" in record:
                subset["row_fingerprint"] = record.pop("dataset_row_fingerprint")
            if "dataset_fingerprint" in record:
                subset["fingerprint"] = record.pop("dataset_fingerprint")
            provenance["record"] = record
        return PruneResult(
            kept_ids=np.sort(rows[self.kept_ids]), scores=scores, prune_ratio=self.prune_ratio, method=self.method,
            params=dict(self.params), num_samples=num_source_rows, labels=labels, provenance=provenance,
        )  # fmt: skip

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
        *,
        verify: bool = True,
    ) -> PruneResult:
        """Reads a list written by `save` (or pushed with `push_to_hub`) back, checked against its card.

        A folder or repo is untrusted input: its card's fields are validated, every path stays inside the folder or
        snapshot, the ids are checked (integer type, no nulls, in range, strictly increasing, count and checksum as
        the card says) before the per-row arrays (`[num_samples]` scores and labels) are allocated, and those must fit
        in memory. The method's text for cards comes from hf_prune's own registry (a method it does not know keeps
        its text as escaped plain text); repo ids and revisions in the provenance are checked against the Hub's
        grammar.

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
            verify (`bool`, *optional*, defaults to `True`):
                Require the card's `index_sha256` and check the ids against it; `verify=False` reads a list without
                one and warns that the checksum was not checked.

        Raises:
            `ValueError`: the card, the provenance file or the data are malformed or disagree (the message names the
                file and the field). `FileNotFoundError`: no such folder or repo, or missing data files.
        """
        from .export.cards import trusted_provenance
        from .export.untrusted import check_fits_in_memory

        folder = fetch_index_folder(path_or_repo_id, config=config, revision=revision, token=token)
        index_list = read_index_list(folder, config, verify=verify)
        n = index_list.num_samples
        check_fits_in_memory(
            17 * n, f"{n:,} rows' scores, labels and mask", f"{folder} [{index_list.config_name}]",
            "Use `load_pruned` or `hf_prune.export.read_index_list`, which hold the kept ids only.",
        )  # fmt: skip
        params, provenance = index_list.saved_params_and_provenance()
        method = str(index_list.pruning["method"])
        provenance = trusted_provenance(provenance, method, f"{folder}/pruning_provenance.json")
        return cls(
            kept_ids=index_list.index,
            scores=index_list.full_scores(),
            prune_ratio=float(index_list.entry["prune_ratio"]),
            method=method,
            params=params,
            num_samples=n,
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
        overwrite: bool = False,
        **kwargs: Any,
    ) -> str:
        """Publishes this list as a Hub dataset repo (`create_repo(repo_type="dataset")` + one `create_commit` made
        against the branch head it was prepared on) and returns the commit URL. Token and folder are validated first:
        nothing is half-pushed, and a concurrent commit makes the push fail instead of being overwritten.

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
            overwrite (`bool`, *optional*, defaults to `False`):
                Replace a *different* list on the branch (another method, other ids under the same config, no config
                in common, another source split); without it such a push is refused, naming what is there
                (`push_folder_to_hub`).
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
            [self], repo_id, private, token, revision, commit_message, tag=tag, overwrite=overwrite, source=source,
            **kwargs,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"PruneResult(method={self.method!r}, prune_ratio={self.prune_ratio}, kept={self.num_kept}/"
            f"{self.num_samples}, params={self.params})"
        )
