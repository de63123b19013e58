"""The index-list file format: one config of a pruned split as parquet with a sorted `index` column, its checksum,
and reading a config back from a folder (verified against the card).

Columns of a list: `index` (int64, strictly increasing: row positions in the *unpruned* source split, the rows
**kept**), `score` (the method's score, float32 by default), `label` (int64, where known) and a content key where
the source has one (e.g. ImageNet's file name), which lets `load_pruned` remap the list onto a mirror that orders
the rows differently. `hf_prune.export.folder` writes whole folders (several configs, card, figures).

**Checksum.** `index_sha256` is the SHA-256 of the `index` column, in file order (sorted ascending), encoded as
little-endian int64: `hashlib.sha256(np.asarray(index, dtype="<i8").tobytes()).hexdigest()`. It covers the ids
only, not the scores or the other columns, so it identifies *which rows* a list keeps.

**Reading is checked before it allocates.** A folder or a Hub repo holding a list is untrusted input: its card's
fields are validated (`check_card_metadata`), every path it names is resolved and must stay inside the folder (or the
snapshot), and each data file's parquet footer (row count, column types) is checked against the card before the
`index` column is read; then the ids' range, order and checksum (`hf_prune.export.untrusted`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .untrusted import (
    MAX_CARD_BYTES,
    MAX_JSON_BYTES,
    allowed_roots,
    check_config_name,
    check_count,
    check_fingerprint,
    check_fits_in_memory,
    check_method_name,
    check_name,
    check_ratio,
    check_relative_path,
    check_repo_id,
    check_revision,
    check_sha256,
    check_split,
    file_inside,
    files_matching,
    is_repo_id,
    read_bounded,
)


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


def write_parquet(
    path: Path, columns: dict[str, np.ndarray | list], score_dtype: str, label_names: Sequence[str] | None = None
) -> None:
    """Writes one list file; with `label_names`, the `label` column is typed as a `datasets.ClassLabel` (schema
    metadata that `load_dataset` reads), so consumers see class names."""
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
    table = pa.table(arrays)
    dtypes = {"float": "float32", "double": "float64"}
    features = {name: {"dtype": dtypes.get(str(a.type), str(a.type)), "_type": "Value"} for name, a in arrays.items()}
    if label_names and LABEL_COLUMN in arrays:
        features[LABEL_COLUMN] = {"names": [str(n) for n in label_names], "_type": "ClassLabel"}
    info = {"info": {"features": features}}
    table = table.replace_schema_metadata({b"huggingface": json.dumps(info).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=3,
        use_dictionary=[n for n in arrays if n not in encodings],
        column_encoding=encodings,
    )


class UnverifiedIndexListWarning(UserWarning):
    """An index list was read with `verify=False`: its checksum (`index_sha256`) was not checked against its card."""


@dataclass
class IndexList:
    """One config of a saved index list, as read from disk (checked against its card).

    Attributes:
        config_name (`str`): the config read (e.g. `"prune_25"`).
        index (`np.ndarray` of int64): sorted kept ids.
        scores (`np.ndarray` or `None`): score per kept id.
        labels (`np.ndarray` or `None`): label per kept id.
        content (`pyarrow.Array` of strings or `None`): content key per kept id (e.g. file names).
        entry (`dict`): this config's entry of the card's `pruning.lists` (prune_ratio, kept, index_sha256...).
        pruning (`dict`): the card's whole `pruning:` block (method, source, model, epochs...), validated.
        path (`Path`): the folder.
        provenance (`dict`): `pruning_provenance.json`, where the folder has one.
        scores_files (list of `Path`): the data files of the optional `scores` config (every row's score).
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
    scores_files: list[Path] = field(default_factory=list)

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.pruning.get("source") or {})

    @property
    def content_key(self) -> str | None:
        return self.pruning.get("content_key")

    @property
    def num_samples(self) -> int:
        return int(self.source["num_rows"])

    def full_scores(self) -> np.ndarray:
        """Every source row's score `[num_samples]` (float64): the kept rows' from this list, the others' from the
        optional `scores` config (written with `all_scores=True`), NaN where unknown."""
        n = self.num_samples
        check_fits_in_memory(8 * n, f"{n:,} scores", f"{self.path}/{CARD_FILE}", _ROWS_FIX)
        scores = np.full(n, np.nan, dtype=np.float64)
        if self.scores is not None:
            scores[self.index] = self.scores
        table = self._all_scores_table()
        if table is not None:
            scores[table[INDEX_COLUMN].to_numpy()] = table[SCORE_COLUMN].to_numpy()
        return scores

    def full_labels(self) -> np.ndarray | None:
        """Every source row's label `[num_samples]` (int64, -1 where unknown), or `None` if the list has none."""
        labels = None
        if self.labels is not None:
            labels = np.full(self.num_samples, -1, dtype=np.int64)
            labels[self.index] = self.labels
        table = self._all_scores_table()
        if table is not None and LABEL_COLUMN in table.column_names:
            labels = np.full(self.num_samples, -1, dtype=np.int64) if labels is None else labels
            labels[table[INDEX_COLUMN].to_numpy()] = table[LABEL_COLUMN].to_numpy()
        return labels

    def saved_params_and_provenance(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The exact params and provenance saved with this list (`pruning_provenance.json`), falling back to what
        the card's `pruning:` block says."""
        saved = (self.provenance.get("lists") or {}).get(self.config_name, {})
        provenance = saved.get("provenance")
        if provenance is None:
            provenance = {k: self.pruning.get(k) for k in ("source", "model", "epochs", "seed") if k in self.pruning}
        return dict(saved.get("params", self.pruning.get("params") or {})), provenance

    def _all_scores_table(self):
        if not self.scores_files:
            return None
        where = f"{self.path} [{SCORES_CONFIG}]"
        n = self.num_samples
        index, table = _read_checked(self.scores_files, n, n, None, f"configs.{SCORES_CONFIG}", where)
        if SCORE_COLUMN not in table.column_names:
            raise ValueError(
                f"{where}: the `{SCORES_CONFIG}` config has no `{SCORE_COLUMN}` column; it is not hf_prune's."
            )
        return table.append_column(INDEX_COLUMN, pa.array(index))


_ROWS_FIX = (
    "The card's `pruning.source.num_rows` is wrong, or the split is too large to hold per-row arrays here: use "
    "`load_pruned` / `read_index_list`, which hold the kept ids only."
)


def _missing(where: str, field: str, fix: str) -> ValueError:
    return ValueError(f"{where}: `{field}` is missing. {fix}")


_SOURCE_CHECKS = {
    "repo_id": check_repo_id,
    "revision": check_revision,
    "config": check_config_name,
    "split": check_split,
    "fingerprint": check_fingerprint,
    "row_fingerprint": check_fingerprint,
    "local_name": check_name,
}


def check_source(source: dict[str, Any], field: str, where: str, require_rows: bool = True) -> int | None:
    """Checks a list's source split (`repo_id` by the Hub's grammar, `revision`, `config`, `split`, `fingerprint`,
    `local_name`, and `num_rows` in `[0, 10^10]`, required unless `require_rows=False`); returns `num_rows`."""
    if source.get("num_rows") is None:
        if require_rows:
            raise _missing(where, f"{field}.num_rows", "The card must give the source split's row count.")
    else:
        check_count(source["num_rows"], f"{field}.num_rows", where)
    for key, check in _SOURCE_CHECKS.items():
        if source.get(key) is not None:
            check(source[key], f"{field}.{key}", where)
    return source.get("num_rows")


def check_card_metadata(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Validates what hf_prune reads from a card's YAML before any of it is used, and returns it.

    The `pruning:` block: `method` (a strategy name), `lists` (config name -> `prune_ratio` in [0, 1), `kept` <=
    `num_rows`, `index_sha256` as 64 hex digits when present), `source` (`num_rows` an integer in [0, 10^10];
    `repo_id` by the Hub's repo-id grammar, `revision` a git revision, `config` / `split` by `datasets`' rules,
    `fingerprint`, `local_name`), `content_key` (a column name), `params` / `subset` (mappings); `configs:` (config
    names, `data_files` paths relative to the folder: no absolute path, URL or `..`).

    Raises:
        `ValueError`: naming `where` (the card's path or repo) and the field, with the fix.
    """
    not_ours = "It was not written by hf_prune (`PruneResult.save`), or its metadata was edited."
    pruning = data.get("pruning")
    if not isinstance(pruning, dict) or not isinstance(pruning.get("lists"), dict) or not pruning["lists"]:
        raise ValueError(f"{where} has no `pruning:` block with `lists:` in its YAML: {not_ours[3:]}")
    check_method_name(pruning.get("method"), "pruning.method", where)
    source = pruning.get("source")
    if not isinstance(source, dict):
        raise _missing(where, "pruning.source", "The card must say which split the ids index (`num_rows` at least).")
    num_rows = check_source(source, "pruning.source", where)
    for name, entry in pruning["lists"].items():
        check_config_name(name, "pruning.lists", where)
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: `pruning.lists.{name}` must be a mapping (prune_ratio, kept, index_sha256).")
        if entry.get("prune_ratio") is None:
            raise _missing(where, f"pruning.lists.{name}.prune_ratio", not_ours)
        check_ratio(entry["prune_ratio"], f"pruning.lists.{name}.prune_ratio", where)
        if entry.get("kept") is None:
            raise _missing(where, f"pruning.lists.{name}.kept", not_ours)
        check_count(entry["kept"], f"pruning.lists.{name}.kept", where, upper=num_rows)
        if entry.get("index_sha256") is not None:
            check_sha256(entry["index_sha256"], f"pruning.lists.{name}.index_sha256", where)
        if entry.get("data_files") is not None:
            check_relative_path(entry["data_files"], f"pruning.lists.{name}.data_files", where)
    content_key = pruning.get("content_key")
    if content_key is not None:
        check_name(content_key, "pruning.content_key", where, max_len=256)
        if content_key in (INDEX_COLUMN, SCORE_COLUMN, LABEL_COLUMN):
            raise ValueError(
                f"{where}: `pruning.content_key` is {content_key!r}, a list column; it is not hf_prune's."
            )
    for key in ("params", "subset", "training"):
        if pruning.get(key) is not None and not isinstance(pruning[key], dict):
            raise ValueError(f"{where}: `pruning.{key}` must be a mapping; got {type(pruning[key]).__name__}.")
    configs = data.get("configs")
    if configs is not None and not isinstance(configs, list):
        raise ValueError(f"{where}: `configs` must be a list of configs; got {type(configs).__name__}.")
    for i, config in enumerate(configs or []):
        if not isinstance(config, dict):
            raise ValueError(f"{where}: `configs[{i}]` must be a mapping with `config_name` and `data_files`.")
        check_config_name(config.get("config_name"), f"configs[{i}].config_name", where)
        for pattern in _patterns(config.get("data_files"), f"configs[{i}].data_files", where, all_splits=True):
            check_relative_path(pattern, f"configs[{i}].data_files", where)
    return data


def read_card_metadata(folder: str | os.PathLike) -> dict[str, Any]:
    """The YAML metadata of `folder/README.md` as a dict, validated by `check_card_metadata` (raises if the folder is
    not an hf_prune index list, or if the card is a link that leaves the folder)."""
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a saved index list: it has no {CARD_FILE}. Write one with `PruneResult.save(dir)`."
        )
    real = file_inside(folder, card_path, CARD_FILE, str(folder))
    text = read_bounded(real, MAX_CARD_BYTES, CARD_FILE, str(folder)).decode("utf-8", errors="replace")
    try:
        data = DatasetCard(text, ignore_metadata_errors=False).data.to_dict()
    except Exception as err:  # YAML errors and the card data's own checks
        raise ValueError(f"{card_path}: its YAML metadata cannot be read ({type(err).__name__}: {err}).") from err
    return check_card_metadata(data, str(card_path))


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


def _patterns(data_files: Any, field: str, where: str, all_splits: bool = False) -> list[str]:
    """The paths of a config's `data_files` (a string, a list of strings, or a list of `{split, path}`), of the
    train split unless `all_splits`."""
    if isinstance(data_files, str):
        return [data_files]
    if not isinstance(data_files, list):
        raise ValueError(f"{where}: `{field}` must be a path or a list of paths / {{split, path}}.")
    patterns = []
    for item in data_files:
        if isinstance(item, str):
            patterns.append(item)
        elif isinstance(item, dict):
            if not all_splits and item.get("split", SPLIT) != SPLIT:
                continue
            paths = item.get("path")
            paths = [paths] if isinstance(paths, str) else paths
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise ValueError(f"{where}: `{field}` has an entry whose `path` is not a path or a list of paths.")
            patterns.extend(paths)
        else:
            raise ValueError(f"{where}: `{field}` must be a path or a list of paths / {{split, path}}.")
    return patterns


def config_data_patterns(metadata: dict[str, Any], config_name: str) -> list[str]:
    """The `data_files` paths (glob patterns, checked relative paths) of `config_name`'s train split in the card's
    `configs:`."""
    for i, config in enumerate(metadata.get("configs") or []):
        if config.get("config_name") == config_name:
            field = f"configs[{i}].data_files"
            patterns = _patterns(config.get("data_files"), field, "the card")
            return [check_relative_path(p, field, "the card") for p in patterns]
    return [data_file_for(config_name)]


def config_data_files(
    folder: str | os.PathLike, metadata: dict[str, Any], config_name: str, roots=None
) -> dict[str, Path]:
    """`config_name`'s data files in `folder`, `{path relative to the folder: real path}`: each pattern of the card
    matched inside the folder, every match a regular file that stays inside it (`untrusted.files_matching`)."""
    folder = Path(folder)
    roots = allowed_roots(folder) if roots is None else roots
    where = f"{folder}/{CARD_FILE}"
    field = f"configs[{config_name}].data_files"
    files = {}
    for pattern in config_data_patterns(metadata, config_name):
        files.update(files_matching(folder, pattern, field, where, roots))
    return dict(sorted(files.items()))


def _open_parquet(path: Path, where: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{where}: {path.name} is not a readable parquet file ({err}).") from err


def _read_checked(files, expected_rows, num_rows, content_key, field, where) -> tuple[np.ndarray, pa.Table]:
    """Reads a list's files after checking each footer (row count, column types) against the card: the `index`
    column first (integers, no nulls, in `[0, num_rows)`, strictly increasing), then the others."""
    parquet = [_open_parquet(f, where) for f in files]
    rows = sum(p.metadata.num_rows for p in parquet)
    if rows != expected_rows:
        raise ValueError(
            f"{where}: the card says `{field}` holds {expected_rows:,} rows but its data files hold {rows:,} "
            f"({', '.join(f.name for f in files)}): the files belong to another list or were modified."
        )
    types = {LABEL_COLUMN: (pa.types.is_integer, "integers")}
    types[SCORE_COLUMN] = (lambda t: pa.types.is_floating(t) or pa.types.is_integer(t), "numbers")
    if content_key:
        types[content_key] = (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "strings")
    columns = []
    for f, p in zip(files, parquet):
        schema = p.schema_arrow
        if INDEX_COLUMN not in schema.names:
            raise ValueError(f"{where}: {f.name} has no `{INDEX_COLUMN}` column ({schema.names}); it is not a list.")
        index_type = schema.field(INDEX_COLUMN).type
        if not pa.types.is_integer(index_type):
            raise ValueError(
                f"{where}: {f.name}: the `{INDEX_COLUMN}` column holds {index_type}, not integers: ids are row "
                "positions, so floats are never truncated and strings never parsed. Write the ids as int64."
            )
        for name, (ok, what) in types.items():
            if name in schema.names and not ok(schema.field(name).type):
                raise ValueError(
                    f"{where}: {f.name}: the `{name}` column holds {schema.field(name).type}, not {what}."
                )
        columns.append([n for n in schema.names if n in types])
    check_fits_in_memory(8 * rows, f"{rows:,} ids", where, "The list is larger than this machine can hold.")
    chunks = [p.read(columns=[INDEX_COLUMN])[INDEX_COLUMN] for p in parquet]
    nulls = sum(c.null_count for c in chunks)
    if nulls:
        raise ValueError(
            f"{where}: the `{INDEX_COLUMN}` column has {nulls:,} null id(s); every kept row needs its id."
        )
    try:  # a safe cast: uint64 ids past int64 are refused, never wrapped
        parts = [c.cast(pa.int64()).to_numpy() for c in chunks]
    except pa.ArrowInvalid as err:
        raise ValueError(f"{where}: the `{INDEX_COLUMN}` column holds ids past int64 ({err}).") from err
    index = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= num_rows):
        raise ValueError(
            f"{where}: ids span [{index.min():,}, {index.max():,}] but the card's `pruning.source.num_rows` is "
            f"{num_rows:,}: an id is out of range (the list belongs to another split, or was modified)."
        )
    if index.size > 1 and not (np.diff(index) > 0).all():
        raise ValueError(
            f"{where}: the `{INDEX_COLUMN}` column is not strictly increasing; it was not written by hf_prune."
        )
    shared = [n for n in columns[0] if all(n in c for c in columns)] if columns else []
    table = pa.concat_tables([p.read(columns=shared) for p in parquet]) if shared else pa.table({})
    return index, table


def read_index_list(folder: str | os.PathLike, config: str | None = None, *, verify: bool = True) -> IndexList:
    """Reads one config of a saved index list and checks it against its card before anything large is allocated.

    In order: the card's fields (`check_card_metadata`); the config's data files (every path inside the folder, or
    inside the snapshot and its cache blobs, no link that leaves it); each parquet footer (the row count must be the
    card's `kept`, `index` an integer column, `score` numbers, `label` integers, the content key strings); then the
    ids (no nulls, in `[0, num_rows)`, strictly increasing) and their checksum against `index_sha256`.

    Args:
        folder (`str` or `os.PathLike`):
            A folder written by `PruneResult.save` / `save_results` (or a downloaded snapshot of such a repo).
        config (`str`, *optional*):
            Which list (e.g. `"prune_50"`); defaults to the card's default config.
        verify (`bool`, *optional*, defaults to `True`):
            Require the card's `index_sha256` and check the ids against it. `verify=False` reads a list without one
            (or with a wrong one) and warns (`UnverifiedIndexListWarning`) that the checksum was not checked; the
            other checks still run.

    Raises:
        `ValueError`: a card field is missing or malformed, a path leaves the folder, or the data disagree with the
            card (row count, column type, nulls, range, order, checksum); the message names the file and the field.
        `FileNotFoundError`: the card or the config's data files are missing.
    """
    folder = Path(folder)
    roots = allowed_roots(folder)
    metadata = read_card_metadata(folder)
    config = choose_config(metadata, config, str(folder))
    pruning = metadata["pruning"]
    entry = dict(pruning["lists"][config])
    files = list(config_data_files(folder, metadata, config, roots).values())
    if not files:
        raise FileNotFoundError(f"{folder}: the data files of config {config!r} are missing.")
    where = f"{folder} [{config}]"
    content_key = pruning.get("content_key")
    index, table = _read_checked(
        files, entry["kept"], pruning["source"]["num_rows"], content_key, f"pruning.lists.{config}.kept", where
    )
    digest = index_sha256(index)
    if not verify:
        warnings.warn(
            f"{where}: verify=False: the ids were not checked against the card's `pruning.lists.{config}.index_sha256` "
            "(their count, range and order were).",
            UnverifiedIndexListWarning,
            stacklevel=2,
        )
    elif entry.get("index_sha256") is None:
        raise ValueError(
            f"{where}: the card has no `pruning.lists.{config}.index_sha256`, so the ids cannot be checked against it. "
            "Re-save the list with hf_prune (which writes it), or pass `verify=False` to use it unchecked."
        )
    elif digest != entry["index_sha256"]:
        raise ValueError(
            f"{where}: index checksum mismatch: the card says index_sha256={entry['index_sha256']} but the data "
            f"hashes to {digest} ({CHECKSUM_DEFINITION}). The list was modified or the files belong to another list."
        )
    provenance = _read_provenance(folder, roots)
    scores_files = []
    if any(c.get("config_name") == SCORES_CONFIG for c in metadata.get("configs") or []):
        scores_files = list(config_data_files(folder, metadata, SCORES_CONFIG, roots).values())
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
        scores_files=scores_files,
    )


def _read_provenance(folder: Path, roots) -> dict[str, Any]:
    """`pruning_provenance.json`, checked: inside the folder, bounded, a mapping whose `lists` map config names to
    `{params: {...}, provenance: {...}}`."""
    path = folder / PROVENANCE_FILE
    if not path.exists() and not path.is_symlink():
        return {}
    real = file_inside(folder, path, PROVENANCE_FILE, str(folder), roots)
    try:
        provenance = json.loads(read_bounded(real, MAX_JSON_BYTES, PROVENANCE_FILE, str(folder)))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); restore it or delete it.") from err
    lists = provenance.get("lists") if isinstance(provenance, dict) else None
    if not isinstance(lists, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("params", {}), dict) and isinstance(v.get("provenance", {}), dict)
        for v in lists.values()
    ):
        raise ValueError(
            f"{path}: `lists` must map config names to {{params: {{...}}, provenance: {{...}}}}; restore the file or "
            "delete it (the card's `pruning:` block is used then)."
        )
    return provenance


def looks_like_repo_id(value: str) -> bool:
    """Whether `value` is a Hub repo id by `huggingface_hub`'s grammar (`namespace/name` or `name`, ASCII letters,
    digits, `- _ .`)."""
    return is_repo_id(value)
