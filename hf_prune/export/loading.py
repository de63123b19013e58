"""`load_pruned`: apply a published index list to a source split, with the checks a bare `.select` skips.

Strict where rows could be wrong: the list is checked against its card (`read_index_list`), the source named in the
card is compared with the one loaded (repo id, config, split, revision, where both are known), and the rows are
checked by content key, row fingerprint or `datasets` fingerprint; a mismatch is an error unless `force=True`. A
warning is for what cannot be checked, and says what was not.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..provenance import infer_source, normalize_source
from ..sample_ids import row_fingerprint, row_fingerprint_matches
from .content import content_key_columns, content_values
from .hub import fetch_index_folder
from .index_list import IndexList, read_index_list


class SourceMismatchWarning(UserWarning):
    """A list was applied although something about its source could not be checked, or differed and `force=True`
    was passed: the selected rows may be the wrong ones (the message says what was and was not verified)."""


# `datasets` caches a split loaded from the Hub under `<namespace>___<snake_case name>/<config>/<version>/<commit>/`.
_HUB_CACHE_DIR = re.compile(r"[/\\]([^/\\]+)[/\\][^/\\]+[/\\]\d+\.\d+\.\d+[/\\][0-9a-f]{40}[/\\][^/\\]+\.arrow$")


def _cache_key(repo_id: str) -> str:
    """The folder name `datasets` caches `repo_id` under (`load.py`: the name part in snake case)."""
    from datasets.naming import camelcase_to_snakecase

    parts = repo_id.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    return "___".join(parts)


def _loaded_source(source_dataset, source, source_revision: str | None) -> dict:
    """What is known of the split that was loaded: `source=` as given, else what the dataset says about itself (its
    split, config, and, for a split loaded from the Hub, the commit and the repo's cache folder name)."""
    known = {k: v for k, v in infer_source(source_dataset).items() if k in ("split", "config", "revision")}
    for cache_file in getattr(source_dataset, "cache_files", None) or []:
        match = _HUB_CACHE_DIR.search(str(cache_file.get("filename", "")))
        if match:
            known["repo_key"] = match.group(1)
            break
    if source is not None:
        given = normalize_source(source, 0) if not isinstance(source, dict) else dict(source)
        known.update({k: v for k, v in given.items() if k in ("repo_id", "config", "split", "revision") and v})
    if source_revision is not None:
        known["revision"] = source_revision
    return known


def _compare_source(index_list: IndexList, loaded: dict, where: str, force: bool) -> bool:
    """Compares the source the card names with the one loaded (where both are known); a mismatch raises unless
    `force`. Returns whether the repo id could be compared."""
    card = index_list.source
    mismatches = []
    repo = card.get("repo_id")
    if repo and loaded.get("repo_id") and loaded["repo_id"] != repo:
        mismatches.append(f"made on {repo!r}, you loaded {loaded['repo_id']!r}")
    elif repo and not loaded.get("repo_id") and loaded.get("repo_key") and loaded["repo_key"] != _cache_key(repo):
        mismatches.append(f"made on {repo!r}, you loaded a split cached as {loaded['repo_key']!r}")
    for key in ("config", "split", "revision"):
        made, got = card.get(key), loaded.get(key)
        if key == "config":  # `datasets` names the only config of a repo "default"
            made, got = (None if v in (None, "default") else v for v in (made, got))
        if made is not None and got is not None and str(made) != str(got):
            mismatches.append(f"made on {key} {made!r}" + (f" of {repo}" if repo else "") + f", you loaded {got!r}")
    if mismatches:
        message = (
            f"{where}: the card's `pruning.source` names another source than the one loaded ({'; '.join(mismatches)}): "
            "its ids may select other rows than the ones scored. Load the split the card names"
        )
        if not force:
            raise ValueError(message + ", or pass `force=True` if you know the rows are the same, in the same order.")
        warnings.warn(message + ". Applied anyway (force=True).", SourceMismatchWarning, stacklevel=3)
    return bool(repo and (loaded.get("repo_id") or loaded.get("repo_key")))


def _remap(index_list: IndexList, source_dataset, where: str) -> np.ndarray | None:
    """Row positions in `source_dataset` of the list's rows, found by content key; `None` when the source has no
    such column (or the list has no content key). Column-wise in Arrow: ImageNet-size sources take a second."""
    key = index_list.content_key
    if key is None or index_list.content is None or content_key_columns(source_dataset, key) is None:
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
    source=None,
    verify: bool = True,
):
    """Applies a pruned index list to the unpruned source split and returns the pruned `datasets.Dataset`.

    The list is untrusted input, checked before it is used (`read_index_list`): the card's fields, every path inside
    the folder or snapshot, the ids' type, range, order, count and checksum (`index_sha256`, required unless
    `verify=False`). Then, strict wherever the rows could be wrong (each an error unless `force=True`, which warns):

    * the source the card names (`pruning.source`: repo id, config, split, revision) is compared with the one loaded,
      where both are known (`source=` / `source_revision=`, else what the dataset says: its split, config, and for a
      split loaded from the Hub, its commit and cache folder);
    * where the list has a content key (e.g. file names) and the source that column, the rows are matched by content,
      which remaps the ids onto a mirror that orders (or counts) the rows differently;
    * otherwise the ids are row positions: the source's row count must equal the one the list was made on, and its
      rows must match the row fingerprint the list carries (lists saved with `source_dataset=`, or made from a
      `PruningTrainer` record), else its `datasets` fingerprint. A list that carries neither is applied with a
      warning that only the row count could be checked.

    The same rows can be taken with nothing but `datasets`, either way reading no image:
    `source.select(keep)`, or `source.filter(lambda i: np.isin(i, keep), with_indices=True, batched=True,
    batch_size=None, input_columns=[])` (within 2x of `select` at ImageNet scale, `bench/results/filter.md`).

    Args:
        source_dataset (`datasets.Dataset` or `datasets.IterableDataset`):
            The *unpruned* split the list indexes (e.g. `load_dataset("ILSVRC/imagenet-1k", split="train")`). A
            streamed split is filtered by row position (batched, `input_columns=[]`: the images of dropped rows are
            never decoded) in one pass over the whole stream; its row count is checked when the stream ends.
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
            Apply the list although the source differs from the one the card names, or its rows fail the row
            fingerprint or `datasets` fingerprint check, or a stream has another length (a warning instead of an
            error).
        source (`str`, `tuple` or `dict`, *optional*):
            The source you loaded, as in `PruneResult.save`: a repo id, `(repo_id, split[, revision])`, `(repo_id,
            config, split, revision)` or a dict; compared with the card's `pruning.source`.
        verify (`bool`, *optional*, defaults to `True`):
            Require and check the list's checksum; `verify=False` applies a list without one, with a warning.

    Returns:
        `datasets.Dataset`: `source_dataset.select(kept rows)` (an `IterableDataset` for a streamed source).

    Raises:
        `ValueError`: the list fails its checks (the message names the file and the card field), or the source is
            not the one the card names, has another row count, other rows than the ones scored (row fingerprint or
            fingerprint) or, by content key, lacks rows the list needs; a stream that ends early (raised when it
            ends). The message says what differs and how to proceed.

    Example:

    ```python
    >>> from datasets import load_dataset
    >>> from hf_prune import load_pruned
    >>> full = load_dataset("ILSVRC/imagenet-1k", split="train")
    >>> train = load_pruned(full, "org/imagenet-1k-dyn-unc", config="prune_25")
    ```
    """
    folder = fetch_index_folder(repo_or_path, config=config, revision=revision, token=token)
    index_list = read_index_list(folder, config, verify=verify)
    src = index_list.source
    where = f"{repo_or_path} [{index_list.config_name}]"
    repo_compared = _compare_source(index_list, _loaded_source(source_dataset, source, source_revision), where, force)
    if not hasattr(source_dataset, "__len__"):
        return _filter_stream(source_dataset, index_list, where, force)
    n_src = len(source_dataset)
    expected = index_list.num_samples
    rows = _remap(index_list, source_dataset, where)
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
        _check_rows(index_list, source_dataset, where, force, repo_compared)
    elif n_src != expected:
        warnings.warn(
            f"{where}: the source has {n_src:,} rows, the list was made on {expected:,}; all {rows.size:,} kept rows "
            f"were found by {index_list.content_key!r} and remapped.",
            SourceMismatchWarning,
            stacklevel=2,
        )
    return source_dataset.select(rows)


def _check_rows(index_list: IndexList, source_dataset, where: str, force: bool, repo_compared: bool) -> None:
    """Ids are row positions here: checks the source's rows are the scored ones, as far as the list allows (row
    fingerprint, else `datasets` fingerprint); warns, naming what was not checked, when it carries neither."""
    _, provenance = index_list.saved_params_and_provenance()
    scored = ((provenance or {}).get("record") or {}).get("dataset_row_fingerprint")
    field = "pruning_provenance.json: record.dataset_row_fingerprint"
    if not scored and index_list.source.get("row_fingerprint"):
        scored, field = index_list.source["row_fingerprint"], "pruning.source.row_fingerprint"
    matches = row_fingerprint_matches(scored, source_dataset) if scored else None
    if matches is not None:
        if not matches:
            _refuse(
                f"{where}: the source's rows are not the ones that were scored (row fingerprint "
                f"{row_fingerprint(source_dataset)}, the list's `{field}` {scored}): the row count agrees, but rows "
                "differ or moved (another dataset of the same length, a shuffled or re-ordered copy, another mirror "
                "or revision), so selecting by index would return the WRONG rows. Load the split the list was made "
                "on, or use a list saved with a content key (`content_key=`, e.g. file names), which is matched by "
                "content.",
                force,
            )
        return
    recorded_fp = index_list.source.get("fingerprint")
    fingerprint = getattr(source_dataset, "_fingerprint", None)
    if recorded_fp and fingerprint:
        if recorded_fp != fingerprint:
            _refuse(
                f"{where}: the source's `datasets` fingerprint {fingerprint} differs from the card's "
                f"`pruning.source.fingerprint` {recorded_fp}, and the list carries no content key or row fingerprint "
                "to check the rows with (the row count agrees). The same data loaded from another cache, or with a "
                "transform or format set, is harmless; if its rows are in another order (a shuffled copy, another "
                "mirror), or it is another dataset of the same length, the ids select the WRONG rows. Load the split "
                "the list was made on without transforms, or re-save the list with `source_dataset=` (which records "
                "a row fingerprint that transforms do not change).",
                force,
            )
        return
    not_checked = ["the rows' content and order (the list carries no content key, row fingerprint or fingerprint)"]
    if not repo_compared:
        not_checked.append("the source's repo id (not known for the loaded split; pass `source=` to compare it)")
    warnings.warn(
        f"{where}: only the row count ({index_list.num_samples:,}) and the ids' range were checked; not checked: "
        f"{'; '.join(not_checked)}. If this is another dataset of the same length, or a shuffled copy, the rows are "
        "WRONG. A list saved with `source_dataset=` or `content_key=` can be checked.",
        SourceMismatchWarning,
        stacklevel=3,
    )


def _refuse(message: str, force: bool) -> None:
    if not force:
        raise ValueError(message + " Pass `force=True` only if you know the rows are the same.")
    warnings.warn(message + " Applied anyway (force=True).", SourceMismatchWarning, stacklevel=4)


def _filter_stream(stream, index_list: IndexList, where: str, force: bool):
    """A streamed source (`load_dataset(..., streaming=True)`), filtered by row position in one pass over the whole
    stream: the filter sees only each batch's row positions (`input_columns=[]`), so no image is decoded for the
    rows it drops; the row count is checked against the list's when the stream ends (an error unless `force`)."""
    from datasets import IterableDataset

    keep, expected = index_list.index, index_list.num_samples
    warnings.warn(
        f"{where}: the source is streamed: its row count is checked against the list's {expected:,} when the stream "
        "ends (an error if it differs), but the order of its rows cannot be checked; make sure it is the split the "
        "list was made on, unshuffled.",
        SourceMismatchWarning,
        stacklevel=3,
    )
    features = stream.features
    raw = stream.decode(False) if features is not None else stream  # decoded once, by the consumer

    def kept_rows():
        seen = [0]

        def keep_positions(indices):
            if len(indices):
                seen[0] = int(indices[-1]) + 1
            if seen[0] > expected and not force:
                raise ValueError(
                    f"{where}: the streamed source has more than the {expected:,} rows the list was made on: it is "
                    "another split. Stream the split the list was made on, or pass `force=True`."
                )
            return np.isin(indices, keep, assume_unique=True)

        yield from raw.filter(keep_positions, with_indices=True, batched=True, input_columns=[])
        if seen[0] != expected:
            reached = int(np.searchsorted(keep, seen[0]))
            message = (
                f"{where}: the streamed source had {seen[0]:,} rows, but the list was made on {expected:,}: "
                f"{reached:,} of its {keep.size:,} kept rows were returned. It is another split, or the stream was cut."
            )
            if not force:
                raise ValueError(message + " Stream the split the list was made on, or pass `force=True`.")
            warnings.warn(message + " Accepted (force=True).", SourceMismatchWarning, stacklevel=2)

    return IterableDataset.from_generator(kept_rows, features=features)
