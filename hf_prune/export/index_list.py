"""Index-list files: a pruned split as a folder laid out like a Hub dataset repo, written and read back.

Layout of a saved folder (one run, one or more ratios)::

    README.md                                     # dataset card: YAML `configs:` + `pruning:` block, usage, method
    data/prune_25/train-00000-of-00001.parquet    # one config per ratio: rows KEPT, sorted by `index`
    data/prune_50/train-00000-of-00001.parquet
    data/scores/train-00000-of-00001.parquet      # optional (`all_scores=True`): every row's score
    images/score_histogram.png                    # optional (needs matplotlib)
    pruning_provenance.json                       # exact params and provenance, for `PruneResult.load`

Columns of a list: `index` (int64, strictly increasing: row positions in the *unpruned* source split, the rows
**kept**), `score` (the method's score, float32 by default), `label` (int64, where known) and a content key where
the source has one (e.g. ImageNet's file name), which lets `load_pruned` remap the list onto a mirror that orders
the rows differently.

**Checksum.** `index_sha256` is the SHA-256 of the `index` column, in file order (sorted ascending), encoded as
little-endian int64: `hashlib.sha256(np.asarray(index, dtype="<i8").tobytes()).hexdigest()`. It covers the ids
only, not the scores or the other columns, so it identifies *which rows* a list keeps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


if TYPE_CHECKING:
    from ..result import PruneResult


logger = logging.getLogger(__name__)

INDEX_COLUMN = "index"
SCORE_COLUMN = "score"
LABEL_COLUMN = "label"
SPLIT = "train"
CARD_FILE = "README.md"
PROVENANCE_FILE = "pruning_provenance.json"
DATA_DIR = "data"
IMAGES_DIR = "images"
SCORES_CONFIG = "scores"
FORMAT_VERSION = 1
CHECKSUM_DEFINITION = "sha256 of the sorted `index` column encoded as little-endian int64 bytes"


def index_sha256(index: Sequence[int] | np.ndarray) -> str:
    """SHA-256 (hex) of an index list: the ids in the given (sorted) order as little-endian int64 bytes.

    Args:
        index (`np.ndarray` or sequence of `int`):
            The kept ids, sorted ascending as they are stored.

    Example:

    ```python
    >>> import numpy as np
    >>> from hf_prune.export import index_sha256
    >>> index_sha256(np.array([0, 2, 5])) == index_sha256([0, 2, 5])
    True
    ```
    """
    return hashlib.sha256(np.ascontiguousarray(index, dtype="<i8").tobytes()).hexdigest()


def config_name_for(prune_ratio: float) -> str:
    """Config name of the list for `prune_ratio` (fraction removed): `0.25 -> "prune_25"`, `0.125 -> "prune_12p5"`."""
    pct = round(float(prune_ratio) * 100, 6)
    text = str(int(pct)) if pct == int(pct) else f"{pct:g}".replace(".", "p")
    return f"prune_{text}"


def data_file_for(config_name: str) -> str:
    """Path, inside the folder, of the parquet file of config `config_name`."""
    return f"{DATA_DIR}/{config_name}/{SPLIT}-00000-of-00001.parquet"


def _write_parquet(path: Path, columns: dict[str, np.ndarray | list], score_dtype: str) -> None:
    arrays, encodings = {}, {}
    for name, values in columns.items():
        if name == INDEX_COLUMN:
            arrays[name] = pa.array(np.asarray(values, dtype=np.int64))
            encodings[name] = "DELTA_BINARY_PACKED"  # sorted ids: ~2 bits per id at ImageNet density
        elif name == SCORE_COLUMN:
            arrays[name] = pa.array(np.asarray(values, dtype=score_dtype))
            encodings[name] = "BYTE_STREAM_SPLIT"  # separates exponent bytes (compressible) from mantissas
        elif name == LABEL_COLUMN:
            arrays[name] = pa.array(np.asarray(values, dtype=np.int64))
        else:
            arrays[name] = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(arrays),
        path,
        compression="zstd",
        compression_level=3,
        use_dictionary=[n for n in arrays if n not in encodings],
        column_encoding=encodings,
    )


@dataclass
class IndexList:
    """One config of a saved index list, as read from disk (checksum verified).

    Attributes:
        config_name (`str`): the config read (e.g. `"prune_25"`).
        index (`np.ndarray` of int64): sorted kept ids.
        scores (`np.ndarray` or `None`): score per kept id.
        labels (`np.ndarray` or `None`): label per kept id.
        content (`pyarrow.Array` of strings or `None`): content key per kept id (e.g. file names).
        entry (`dict`): this config's entry of the card's `pruning.lists` (prune_ratio, kept, index_sha256...).
        pruning (`dict`): the card's whole `pruning:` block (method, source, model, epochs...).
        path (`Path`): the folder.
    """

    config_name: str
    index: np.ndarray
    scores: np.ndarray | None
    labels: np.ndarray | None
    content: pa.Array | None
    entry: dict[str, Any]
    pruning: dict[str, Any]
    path: Path
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.pruning.get("source") or {})

    @property
    def content_key(self) -> str | None:
        return self.pruning.get("content_key")

    @property
    def num_samples(self) -> int:
        return int(self.source["num_rows"])

    def to_result(self) -> PruneResult:
        """This list as a `PruneResult` (scores and labels of rows not kept are NaN / -1 unless the folder has the
        optional `scores` config written with `all_scores=True`)."""
        from ..result import PruneResult

        n = self.num_samples
        scores = np.full(n, np.nan, dtype=np.float64)
        if self.scores is not None:
            scores[self.index] = self.scores
        labels = None
        if self.labels is not None:
            labels = np.full(n, -1, dtype=np.int64)
            labels[self.index] = self.labels
        full = self.path / data_file_for(SCORES_CONFIG)
        if full.exists():
            table = pq.read_table(full)
            ids = table[INDEX_COLUMN].to_numpy()
            scores[ids] = table[SCORE_COLUMN].to_numpy()
            if LABEL_COLUMN in table.column_names:
                labels = np.full(n, -1, dtype=np.int64) if labels is None else labels
                labels[ids] = table[LABEL_COLUMN].to_numpy()
        saved = (self.provenance.get("lists") or {}).get(self.config_name, {})
        provenance = saved.get("provenance")
        if provenance is None:
            provenance = {k: self.pruning.get(k) for k in ("source", "model", "epochs", "seed") if k in self.pruning}
        return PruneResult(
            kept_ids=self.index,
            scores=scores,
            prune_ratio=float(self.entry["prune_ratio"]),
            method=str(self.pruning["method"]),
            params=dict(saved.get("params", self.pruning.get("params") or {})),
            num_samples=n,
            labels=labels,
            provenance=provenance,
        )


def read_card_metadata(folder: str | os.PathLike) -> dict[str, Any]:
    """The YAML metadata of `folder/README.md` as a dict (raises if the folder is not an hf_prune index list)."""
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a saved index list: it has no {CARD_FILE}. Write one with `PruneResult.save(dir)`."
        )
    data = DatasetCard.load(card_path).data.to_dict()
    if not isinstance(data.get("pruning"), dict) or not isinstance(data["pruning"].get("lists"), dict):
        raise ValueError(
            f"{card_path} has no `pruning:` block with `lists:` in its YAML: it was not written by hf_prune "
            "(`PruneResult.save`), or its metadata was edited."
        )
    return data


def list_configs(metadata: dict[str, Any]) -> tuple[list[str], str | None]:
    """Names of the index-list configs in a card's metadata, and the default one (or `None`)."""
    names = list(metadata["pruning"]["lists"])
    default = None
    for config in metadata.get("configs") or []:
        if config.get("default") and config.get("config_name") in names:
            default = config["config_name"]
    if default is None and len(names) == 1:
        default = names[0]
    return names, default


def choose_config(metadata: dict[str, Any], config: str | None, where: str) -> str:
    names, default = list_configs(metadata)
    if config is None:
        if default is None:
            raise ValueError(f"{where} holds several index lists {names}; pass `config=` to pick one.")
        return default
    if config not in names:
        raise ValueError(f"{where} has no index list {config!r}; it has {names}.")
    return config


def config_data_patterns(metadata: dict[str, Any], config_name: str) -> list[str]:
    """The `data_files` paths (glob patterns) of `config_name`'s train split in the card's `configs:`."""
    for config in metadata.get("configs") or []:
        if config.get("config_name") != config_name:
            continue
        data_files = config.get("data_files")
        if isinstance(data_files, str):
            return [data_files]
        patterns = []
        for item in data_files or []:
            if isinstance(item, str):
                patterns.append(item)
            elif item.get("split", SPLIT) == SPLIT:
                paths = item.get("path")
                patterns.extend([paths] if isinstance(paths, str) else list(paths or []))
        return patterns
    return [data_file_for(config_name)]


def read_index_list(folder: str | os.PathLike, config: str | None = None) -> IndexList:
    """Reads one config of a saved index list and verifies it against its card.

    Args:
        folder (`str` or `os.PathLike`):
            A folder written by `PruneResult.save` / `save_results` (or a downloaded snapshot of such a repo).
        config (`str`, *optional*):
            Which list (e.g. `"prune_50"`); defaults to the card's default config.

    Raises:
        `ValueError`: the `index` column is not sorted and unique, or its checksum or length differs from the card's.
    """
    folder = Path(folder)
    metadata = read_card_metadata(folder)
    config = choose_config(metadata, config, str(folder))
    pruning = metadata["pruning"]
    entry = dict(pruning["lists"][config])
    files = sorted({p for pattern in config_data_patterns(metadata, config) for p in folder.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"{folder}: the data files of config {config!r} are missing.")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    index = table[INDEX_COLUMN].to_numpy().astype(np.int64, copy=False)
    where = f"{folder} [{config}]"
    if index.size > 1 and not (np.diff(index) > 0).all():
        raise ValueError(f"{where}: the `index` column is not strictly increasing; it was not written by hf_prune.")
    if int(entry.get("kept", index.size)) != index.size:
        raise ValueError(f"{where}: the card says {entry['kept']} rows are kept but the data has {index.size}.")
    digest = index_sha256(index)
    if entry.get("index_sha256") and digest != entry["index_sha256"]:
        raise ValueError(
            f"{where}: index checksum mismatch: the card says index_sha256={entry['index_sha256']} but the data "
            f"hashes to {digest} ({CHECKSUM_DEFINITION}). The list was modified or the files belong to another list."
        )
    content_key = pruning.get("content_key")
    provenance = {}
    if (folder / PROVENANCE_FILE).is_file():
        with open(folder / PROVENANCE_FILE) as f:
            provenance = json.load(f)
    return IndexList(
        config_name=config,
        index=index,
        scores=table[SCORE_COLUMN].to_numpy() if SCORE_COLUMN in table.column_names else None,
        labels=table[LABEL_COLUMN].to_numpy() if LABEL_COLUMN in table.column_names else None,
        content=(table[content_key].combine_chunks() if content_key and content_key in table.column_names else None),
        entry=entry,
        pruning=pruning,
        path=folder,
        provenance=provenance,
    )


def normalize_source(source: Any, num_samples: int) -> dict[str, Any]:
    """`source=` as given by a user (a repo id, a `(repo_id, split[, revision])` or `(repo_id, config, split,
    revision)` tuple, or a dict) as the card's `source` mapping."""
    fields = ("repo_id", "config", "split", "revision", "num_rows", "fingerprint")
    out: dict[str, Any] = dict.fromkeys(fields)
    if source is None:
        pass
    elif isinstance(source, str):
        out["repo_id"] = source
    elif isinstance(source, dict):
        unknown = set(source) - set(fields)
        if unknown:
            raise ValueError(f"Unknown `source` keys {sorted(unknown)}; use {list(fields)}.")
        out.update(source)
    elif isinstance(source, (tuple, list)):
        if len(source) == 4:
            out.update(zip(("repo_id", "config", "split", "revision"), source))
        elif 1 <= len(source) <= 3:
            out.update(zip(("repo_id", "split", "revision"), source))
        else:
            raise ValueError(f"`source` tuple must be (repo_id, split[, revision]) or 4 long; got {source!r}.")
    else:
        raise TypeError(f"`source` must be a repo id, a tuple or a dict; got {type(source).__name__}.")
    if out["num_rows"] is not None and int(out["num_rows"]) != num_samples:
        raise ValueError(f"`source` says num_rows={out['num_rows']} but the result indexes {num_samples} rows.")
    out["num_rows"] = int(num_samples)
    return out


_HUB_CACHE_PATH = re.compile(r"[/\\]\d+\.\d+\.\d+[/\\]([0-9a-f]{40})[/\\][^/\\]+\.arrow$")


def infer_source(dataset) -> dict[str, Any]:
    """What a `datasets.Dataset` says about where it came from: its split, its config and, for a split loaded from
    the Hub with `load_dataset`, the commit it was loaded at (`datasets` caches it under `.../<version>/<commit>/`).
    The repo id is not inferred: the cache folder holds a normalized name, not the id."""
    found: dict[str, Any] = {}
    split = getattr(dataset, "split", None)
    if split is not None:
        found["split"] = str(split)
    info = getattr(dataset, "info", None)
    if info is not None and getattr(info, "config_name", None):
        found["config"] = info.config_name
    for cache_file in getattr(dataset, "cache_files", None) or []:
        match = _HUB_CACHE_PATH.search(str(cache_file.get("filename", "")))
        if match:
            found["revision"] = match.group(1)
            break
    fingerprint = getattr(dataset, "_fingerprint", None)
    if fingerprint:
        found["fingerprint"] = fingerprint
    return found


def source_from_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    """What a result's provenance knows about its source split (record metadata written by `PruningTrainer`)."""
    found: dict[str, Any] = {}
    if isinstance(provenance.get("source"), dict):
        found.update({k: v for k, v in provenance["source"].items() if v is not None})
    record = provenance.get("record") or {}
    for key, names in {
        "repo_id": ("dataset_name", "dataset_repo_id"),
        "config": ("dataset_config", "dataset_config_name"),
        "split": ("dataset_split",),
        "revision": ("dataset_revision",),
        "fingerprint": ("dataset_fingerprint",),
    }.items():
        for name in names:
            if found.get(key) is None and record.get(name) is not None:
                found[key] = record[name]
    return found


def content_values(dataset, content_key: str) -> pa.Array:
    """Per-row content keys of `dataset[content_key]` as an Arrow string array (read column-wise, no Python loop);
    for an `Image` / `Audio` / `Video` column, the base name of each file's `path`, read without decoding."""
    import pyarrow.compute as pc

    if content_key not in dataset.column_names:
        raise ValueError(f"The dataset has no column {content_key!r} to use as content key ({dataset.column_names}).")
    feature = dataset.features[content_key]
    column = dataset.select_columns([content_key])
    is_file = type(feature).__name__ in ("Image", "Audio", "Video")
    if is_file:
        column = column.cast_column(content_key, type(feature)(decode=False))
    values = column.with_format("arrow")[:][content_key].combine_chunks()
    if is_file:
        values = pc.replace_substring_regex(pc.struct_field(values, "path"), pattern=r"^.*[/\\]", replacement="")
    elif not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    missing = values.null_count + (pc.sum(pc.equal(values, "")).as_py() or 0)
    if missing:
        raise ValueError(
            f"{missing} rows have no value in content key {content_key!r}; pick a column set on every row."
        )
    return values


def _check_results(results: Sequence[PruneResult]) -> list[PruneResult]:
    from ..result import PruneResult

    results = list(results)
    if not results:
        raise ValueError("No results to save.")
    for r in results:
        if not isinstance(r, PruneResult):
            raise TypeError(f"Expected PruneResult objects; got {type(r).__name__}.")
    first = results[0]
    for r in results[1:]:
        if r.num_samples != first.num_samples or r.method != first.method:
            raise ValueError(
                "Results saved together must come from one run: same method and split length; got "
                f"{first.method}/{first.num_samples} and {r.method}/{r.num_samples}."
            )
    names = [config_name_for(r.prune_ratio) for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"Two results have the same prune_ratio ({names}); save each ratio once.")
    return results


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _is_replaceable(folder: Path) -> bool:
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()):
        return True
    try:
        read_card_metadata(folder)
        return True
    except (FileNotFoundError, ValueError):
        return False


def save_results(
    results: PruneResult | Sequence[PruneResult],
    save_directory: str | os.PathLike,
    source: Any = None,
    *,
    repo_id: str | None = None,
    source_dataset=None,
    content_key: str | None = None,
    content: Sequence[str] | None = None,
    include_labels: bool = True,
    all_scores: bool = False,
    score_dtype: str = "float32",
    license: str = "other",
    task_categories: Sequence[str] = ("image-classification",),
    pretty_name: str | None = None,
    plot: bool = True,
    record=None,
    extra_tags: Sequence[str] = (),
) -> Path:
    """Writes one or several ratios of one run to a folder laid out as a Hub dataset repo (see the module docstring).

    Each result becomes a config named after its ratio (`prune_25` ...); the first is the default config, so
    `load_dataset(folder_or_repo, split="train")["index"]` reads it. The folder is replaced atomically; an existing
    folder that is not an hf_prune index list is never overwritten.

    Args:
        results (`PruneResult` or list of `PruneResult`):
            The lists to write, all from one run (same method and split length).
        save_directory (`str` or `os.PathLike`):
            Folder to write.
        source (`str`, `tuple` or `dict`, *optional*):
            The split the ids index into: a repo id, `(repo_id, split[, revision])`, `(repo_id, config, split,
            revision)` or a dict with keys `repo_id, config, split, revision, fingerprint`. Fills in or overrides what
            the results' provenance knows.
        repo_id (`str`, *optional*):
            The repo the folder will be pushed to, used in the card's snippets (`push_folder_to_hub` fills it in).
        source_dataset (`datasets.Dataset`, *optional*):
            The unpruned source split, to read `content_key` from (and its fingerprint when `source` has none).
        content_key (`str`, *optional*):
            A column of the source that identifies a row whatever the mirror (e.g. a file name, or an `Image`
            column, whose file base names are used). Stored as a column of the lists.
        content (sequence of `str`, *optional*):
            The content key of every source row, when there is no `source_dataset` at hand (needs `content_key`).
        include_labels (`bool`, *optional*, defaults to `True`):
            Write a `label` column where the results know the labels.
        all_scores (`bool`, *optional*, defaults to `False`):
            Also write a `scores` config with every row's score, so `PruneResult.load` restores removed rows' scores.
        score_dtype (`str`, *optional*, defaults to `"float32"`):
            Storage type of the scores (`"float32"` or `"float64"`); float32 keeps an ImageNet list under 4 MB.
        license (`str`, *optional*, defaults to `"other"`):
            License of the list, for the card.
        task_categories (sequence of `str`, *optional*, defaults to `("image-classification",)`):
            For the card.
        pretty_name (`str`, *optional*):
            Title of the card.
        plot (`bool`, *optional*, defaults to `True`):
            Draw `images/score_histogram.png` (skipped without matplotlib).
        record (`ScoreRecord`, *optional*):
            The record the results were selected from; with `plot`, also draws its data map with the removed rows of
            the first result (`images/data_map.png`, Dyn-Unc Fig. 2) for the card.
        extra_tags (sequence of `str`, *optional*):
            More card tags.

    Returns:
        `Path`: the folder.

    Example:

    ```python
    >>> from hf_prune.export import save_results
    >>> r25 = strategy.select(record, prune_ratio=0.25)
    >>> r50 = strategy.select(record, prune_ratio=0.5)
    >>> save_results([r25, r50], "imagenet-dyn-unc", source=("ILSVRC/imagenet-1k", "train", "main"))
    ```
    """
    from ..result import PruneResult
    from .cards import plot_data_map, plot_score_histogram, render_dataset_card

    results = _check_results([results] if isinstance(results, PruneResult) else results)
    if score_dtype not in ("float32", "float64"):
        raise ValueError(f"score_dtype must be 'float32' or 'float64'; got {score_dtype!r}.")
    first = results[0]
    n = first.num_samples
    # What is known about the source, weakest first: the results' provenance, the source dataset, `source=`.
    src = source_from_provenance(first.provenance)
    if source_dataset is not None:
        if len(source_dataset) != n:
            raise ValueError(f"`source_dataset` has {len(source_dataset)} rows; the results index {n}.")
        src.update(infer_source(source_dataset))
    src.update({k: v for k, v in normalize_source(source, n).items() if v is not None})
    src = normalize_source({k: v for k, v in src.items() if k != "num_rows"}, n)
    src["split"] = src["split"] or SPLIT
    if not src.get("repo_id"):
        logger.warning(
            "The index list does not say which dataset its ids index (no source repo id in the results' provenance). "
            "Pass `source=(repo_id, split, revision)` so the card can show how to apply it."
        )
    if content is not None or source_dataset is not None and content_key is not None:
        if content_key is None:
            raise ValueError("`content` needs `content_key=` (the column name to store it under).")
        if content is None:
            content = content_values(source_dataset, content_key)
        content = pa.array(content, type=pa.string()) if not isinstance(content, pa.Array) else content
        if len(content) != n:
            raise ValueError(f"`content` has {len(content)} values; the results index {n} rows.")
        if content_key in (INDEX_COLUMN, SCORE_COLUMN, LABEL_COLUMN):
            raise ValueError(f"content_key {content_key!r} clashes with a list column; rename it.")
    elif content_key is not None:
        raise ValueError("`content_key` needs `source_dataset=` (or `content=`) to read the keys from.")

    save_directory = Path(save_directory)
    if not _is_replaceable(save_directory):
        raise FileExistsError(f"{save_directory} exists and is not an hf_prune index list; refusing to overwrite it.")
    save_directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{save_directory.name}.", dir=save_directory.parent))
    try:
        lists, provenance_lists = {}, {}
        for r in results:
            name = config_name_for(r.prune_ratio)
            ids = r.kept_ids
            columns: dict[str, Any] = {INDEX_COLUMN: ids, SCORE_COLUMN: r.scores[ids]}
            if include_labels and r.labels is not None:
                columns[LABEL_COLUMN] = np.asarray(r.labels)[ids]
            if content is not None:
                columns[content_key] = content.take(pa.array(ids))
            _write_parquet(tmp / data_file_for(name), columns, score_dtype)
            lists[name] = {
                "prune_ratio": float(r.prune_ratio),
                "kept": r.num_kept,
                "removed": n - r.num_kept,
                "index_sha256": index_sha256(ids),
                "data_files": data_file_for(name),
            }
            provenance_lists[name] = {"params": _jsonable(r.params), "provenance": _jsonable(r.provenance)}
        if all_scores:
            columns = {INDEX_COLUMN: np.arange(n, dtype=np.int64), SCORE_COLUMN: first.scores}
            if include_labels and first.labels is not None:
                columns[LABEL_COLUMN] = np.asarray(first.labels)
            _write_parquet(tmp / data_file_for(SCORES_CONFIG), columns, score_dtype)
        with open(tmp / PROVENANCE_FILE, "w") as f:
            json.dump({"format_version": FORMAT_VERSION, "lists": provenance_lists}, f, indent=2, sort_keys=True)
        images = []
        if plot and plot_score_histogram(results, tmp / IMAGES_DIR / "score_histogram.png"):
            images.append(("Histogram of the scores of kept and removed rows", f"{IMAGES_DIR}/score_histogram.png"))
        if plot and record is not None and plot_data_map(record, first, tmp / IMAGES_DIR / "data_map.png"):
            images.append(("Data map: mean vs std of p_target, removed rows in red", f"{IMAGES_DIR}/data_map.png"))
        card = render_dataset_card(
            results,
            lists,
            src,
            repo_id=repo_id,
            content_key=content_key,
            all_scores=all_scores,
            license=license,
            task_categories=list(task_categories),
            pretty_name=pretty_name,
            images=images,
            extra_tags=list(extra_tags),
        )
        card.save(tmp / CARD_FILE)
        os.chmod(tmp, 0o755)
        if save_directory.exists():
            old = save_directory.with_name(f".{save_directory.name}.old-{os.getpid()}")
            os.replace(save_directory, old)
            os.replace(tmp, save_directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, save_directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return save_directory


_REPO_ID_RE = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def looks_like_repo_id(value: str) -> bool:
    return bool(_REPO_ID_RE.match(value)) and not value.startswith((".", "/"))
