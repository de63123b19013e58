"""The index-list file format: one config of a pruned split as parquet with a sorted `index` column, its checksum,
and reading a config back from a folder (verified against the card).

Columns of a list: `index` (int64, strictly increasing: row positions in the *unpruned* source split, the rows
**kept**), `score` (the method's score, float32 by default), `label` (int64, where known) and a content key where
the source has one (e.g. ImageNet's file name), which lets `load_pruned` remap the list onto a mirror that orders
the rows differently. `hf_prune.export.folder` writes whole folders (several configs, card, figures).

**Checksum.** `index_sha256` is the SHA-256 of the `index` column, in file order (sorted ascending), encoded as
little-endian int64: `hashlib.sha256(np.asarray(index, dtype="<i8").tobytes()).hexdigest()`. It covers the ids
only, not the scores or the other columns, so it identifies *which rows* a list keeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


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

    def full_scores(self) -> np.ndarray:
        """Every source row's score `[num_samples]` (float64): the kept rows' from this list, the others' from the
        optional `scores` config (written with `all_scores=True`), NaN where unknown."""
        n = self.num_samples
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
        full = self.path / data_file_for(SCORES_CONFIG)
        return pq.read_table(full) if full.exists() else None


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


_REPO_ID_RE = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def looks_like_repo_id(value: str) -> bool:
    return bool(_REPO_ID_RE.match(value)) and not value.startswith((".", "/"))
