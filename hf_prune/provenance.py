"""Provenance: where a training split came from (repo, config, split, revision, row count, fingerprint), and turning
metadata into plain JSON for records, index lists and cards.

The *source* of a pruned list is a mapping with the keys of `SOURCE_FIELDS`; `normalize_source` accepts what users
type (`"ILSVRC/imagenet-1k"`, `("ILSVRC/imagenet-1k", "train", "<commit>")`, a dict) and `infer_source` reads what a
`datasets.Dataset` knows about itself.
"""

from __future__ import annotations

import json
import re
from typing import Any


SOURCE_FIELDS = ("repo_id", "config", "split", "revision", "num_rows", "fingerprint")

_HUB_CACHE_PATH = re.compile(r"[/\\]\d+\.\d+\.\d+[/\\]([0-9a-f]{40})[/\\][^/\\]+\.arrow$")


def jsonable(value: Any) -> Any:
    """A JSON-able deep copy of `value`: numpy scalars and arrays become Python numbers and lists, anything else
    unknown its `str`. Used for everything written to `record.json`, `pruning_provenance.json` and card YAML."""

    def default(obj):
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if hasattr(obj, "item"):
            return obj.item()
        return str(obj)

    return json.loads(json.dumps(value, default=default))


def normalize_source(source: Any, num_samples: int) -> dict[str, Any]:
    """`source=` as given by a user as the card's `source` mapping (keys `SOURCE_FIELDS`).

    Args:
        source (`str`, `tuple`, `dict` or `None`): a repo id, `(repo_id, split[, revision])`,
            `(repo_id, config, split, revision)`, or a dict with keys from `SOURCE_FIELDS`.
        num_samples (`int`): rows of the split the ids index; a different `num_rows` in `source` is refused.
    """
    out: dict[str, Any] = dict.fromkeys(SOURCE_FIELDS)
    if source is None:
        pass
    elif isinstance(source, str):
        out["repo_id"] = source
    elif isinstance(source, dict):
        unknown = set(source) - set(SOURCE_FIELDS)
        if unknown:
            raise ValueError(f"Unknown `source` keys {sorted(unknown)}; use {list(SOURCE_FIELDS)}.")
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


def infer_source(dataset) -> dict[str, Any]:
    """What a `datasets.Dataset` says about where it came from: its split, its config, its fingerprint and, for a
    split loaded from the Hub with `load_dataset`, the commit it was loaded at (`datasets` caches it under
    `.../<version>/<commit>/`). The repo id is not inferred: the cache folder holds a normalized name, not the id."""
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
