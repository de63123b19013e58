"""`load_pruned`: apply a published index list to a source split, with the checks a bare `.select` skips."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..provenance import infer_source
from ..sample_ids import row_fingerprint
from .content import content_values
from .hub import fetch_index_folder
from .index_list import IndexList, read_index_list


class SourceMismatchWarning(UserWarning):
    """The source split matches the list's row count and ids, but not the revision or fingerprint it was scored on:
    the selected rows may be the wrong ones (see the message for what was and was not verified)."""


def _remap(index_list: IndexList, source_dataset, where: str) -> np.ndarray | None:
    """Row positions in `source_dataset` of the list's rows, found by content key; `None` when the source has no
    such column (or the list has no content key). Column-wise in Arrow: ImageNet-size sources take a second."""
    key = index_list.content_key
    if key is None or index_list.content is None or key not in (source_dataset.column_names or []):
        return None
    source_keys = content_values(source_dataset, key)
    wanted = index_list.content
    index = index_list.index
    # Same layout (the common case): the keys already line up at the listed ids.
    if len(source_keys) == index_list.num_samples and (not index.size or index[-1] < len(source_keys)):
        if pc.all(pc.equal(source_keys.take(pa.array(index)), wanted)).as_py():
            return index
    duplicates = len(source_keys) - pc.count_distinct(source_keys).as_py()
    if duplicates:
        raise ValueError(
            f"{where}: the source's {key!r} column has {duplicates} duplicate values, so it cannot remap the list."
        )
    positions = pc.index_in(wanted, value_set=source_keys)
    missing = positions.null_count
    if missing:
        example = wanted[pc.index(pc.is_null(positions), True).as_py()].as_py()
        raise ValueError(
            f"{where}: {missing} of the list's {len(wanted)} rows are not in the source (by {key!r}, e.g. "
            f"{example!r}): this source is not the split the list was made on."
        )
    return np.sort(positions.to_numpy().astype(np.int64))


def load_pruned(
    source_dataset,
    repo_or_path: str | os.PathLike,
    config: str | None = None,
    revision: str | None = None,
    *,
    token: str | None = None,
    source_revision: str | None = None,
    force: bool = False,
):
    """Applies a pruned index list to the unpruned source split and returns the pruned `datasets.Dataset`.

    Checks, in order: the list's own checksum (`index_sha256` in the card) and order; then, where the list has a
    content key (e.g. file names) and the source has that column, the rows are matched by content, which remaps the
    ids onto a mirror that orders (or counts) the rows differently. Otherwise the ids are row positions, so: the
    source's row count must equal the one the list was made on, every id must be in bounds, and where the list
    carries the scored split's row fingerprint (lists made from a `PruningTrainer` record) the source's rows must
    match it (a shuffled or re-ordered copy is refused: it would give the wrong rows). A different source revision,
    or a different `datasets` fingerprint where no row fingerprint can be checked, warns (`SourceMismatchWarning`)
    and says what could not be verified.

    The same rows can be taken with nothing but `datasets`, either way reading no image:
    `source.select(keep)`, or `source.filter(lambda i: np.isin(i, keep), with_indices=True, batched=True,
    batch_size=None, input_columns=[])` (within 2x of `select` at ImageNet scale, `bench/results/filter.md`).

    Args:
        source_dataset (`datasets.Dataset` or `datasets.IterableDataset`):
            The *unpruned* split the list indexes (e.g. `load_dataset("ILSVRC/imagenet-1k", split="train")`). A
            streamed split is filtered by row position (batched, `input_columns=[]`: the images of dropped rows are
            never decoded), with a warning that its row count cannot be checked.
        repo_or_path (`str` or `os.PathLike`):
            A folder written by `PruneResult.save`, or a Hub dataset repo id.
        config (`str`, *optional*):
            Which list (e.g. `"prune_50"`); defaults to the repo's default config.
        revision (`str`, *optional*):
            Revision (branch, tag, commit) of the index-list repo.
        token (`str`, *optional*):
            Hub token for private repos.
        source_revision (`str`, *optional*):
            The revision of the source you loaded, compared with the one recorded in the card; by default the commit
            a split loaded from the Hub with `load_dataset` was cached at.
        force (`bool`, *optional*, defaults to `False`):
            Apply the list although the source's rows fail the row-fingerprint check (a warning instead of an error).

    Returns:
        `datasets.Dataset`: `source_dataset.select(kept rows)` (an `IterableDataset` for a streamed source).

    Raises:
        `ValueError`: the list fails its checksum, or the source has another row count, ids out of bounds, other rows
            than the ones scored (row fingerprint) or, by content key, rows the list needs but the source lacks. The
            message says what differs.

    Example:

    ```python
    >>> from datasets import load_dataset
    >>> from hf_prune import load_pruned
    >>> full = load_dataset("ILSVRC/imagenet-1k", split="train")
    >>> train = load_pruned(full, "org/imagenet-1k-dyn-unc", config="prune_25")
    ```
    """
    folder = fetch_index_folder(repo_or_path, config=config, revision=revision, token=token)
    index_list = read_index_list(folder, config)
    src = index_list.source
    where = f"{repo_or_path} [{index_list.config_name}]"
    if not hasattr(source_dataset, "__len__"):
        # A streamed source (`load_dataset(..., streaming=True)`): no row count to check, no `select`. The filter sees
        # only each batch's row positions (`input_columns=[]`), so no image is decoded for the rows it drops.
        keep = index_list.index
        warnings.warn(
            f"{where}: the source is streamed, so its row count cannot be checked against the list's "
            f"{index_list.num_samples:,} rows; make sure it is the same split, unshuffled.",
            SourceMismatchWarning,
            stacklevel=2,
        )
        return source_dataset.filter(
            lambda i: np.isin(i, keep, assume_unique=True), with_indices=True, batched=True, input_columns=[]
        )
    n_src = len(source_dataset)
    expected = index_list.num_samples
    rows = _remap(index_list, source_dataset, where)
    by_content = rows is not None  # every kept row was found by its content key
    agree = "row count and ids agree" if rows is None else f"the rows were matched by {index_list.content_key!r}"
    if rows is None:
        if n_src != expected:
            raise ValueError(
                f"{where}: the source dataset has {n_src:,} rows but the list was made on {expected:,} rows of "
                f"{src.get('repo_id') or 'its source'} (split {src.get('split')!r}, revision "
                f"{src.get('revision') or 'unknown'}); a difference of {n_src - expected:+,}. Load the same split "
                "(and revision) the list was made on."
            )
        rows = index_list.index
        if rows.size and (rows[0] < 0 or rows[-1] >= n_src):
            raise ValueError(f"{where}: ids span [{rows[0]}, {rows[-1]}] but the source has only {n_src:,} rows.")
    elif n_src != expected:
        warnings.warn(
            f"{where}: the source has {n_src:,} rows, the list was made on {expected:,}; all {rows.size:,} kept rows "
            f"were found by {index_list.content_key!r} and remapped.",
            SourceMismatchWarning,
            stacklevel=2,
        )
    recorded_rev = src.get("revision")
    if source_revision is None:
        source_revision = infer_source(source_dataset).get("revision")  # the commit a Hub split was loaded at
    if source_revision is not None and recorded_rev is not None and source_revision != recorded_rev:
        warnings.warn(
            f"{where}: the list was made on revision {recorded_rev!r} of {src.get('repo_id')}, you loaded "
            f"{source_revision!r}; {agree}, but the rows' content may differ.",
            SourceMismatchWarning,
            stacklevel=2,
        )
    if not by_content:
        _check_rows(index_list, source_dataset, where, force)
    return source_dataset.select(rows)


def _check_rows(index_list: IndexList, source_dataset, where: str, force: bool) -> None:
    """Ids are row positions here: checks the source's rows are the scored ones, as far as the list allows."""
    _, provenance = index_list.saved_params_and_provenance()
    scored = ((provenance or {}).get("record") or {}).get("dataset_row_fingerprint")
    if scored:
        current = row_fingerprint(source_dataset)
        if current is not None and current != scored:
            message = (
                f"{where}: the source's rows are not the ones that were scored (row fingerprint {current}, the list's "
                f"{scored}): the row count agrees, but rows moved (a shuffled or re-ordered copy, another mirror, or "
                "another revision), so selecting by index would return the WRONG rows. Load the split the list was "
                "made on, or use a list saved with a content key (`content_key=`, e.g. file names), which is matched "
                "by content."
            )
            if not force:
                raise ValueError(message + " Pass `force=True` only if you know the rows are the same.")
            warnings.warn(message + " Applied anyway (force=True).", SourceMismatchWarning, stacklevel=3)
        return
    recorded_fp = index_list.source.get("fingerprint")
    fingerprint = getattr(source_dataset, "_fingerprint", None)
    if recorded_fp and fingerprint and recorded_fp != fingerprint:
        warnings.warn(
            f"{where}: the source's `datasets` fingerprint {fingerprint} differs from the one recorded ({recorded_fp}) "
            "and this list carries no content key or row fingerprint to check the rows with. The row count agrees. "
            "If the source is the same data loaded from another cache, or with a transform, this is harmless; if its "
            "rows are in another order (a shuffled copy, another mirror), the ids select the WRONG rows.",
            SourceMismatchWarning,
            stacklevel=3,
        )
