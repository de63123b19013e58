"""Index-list folders: one run's pruned lists (one config per ratio) laid out as a Hub dataset repo.

Layout of a saved folder::

    README.md                                     # dataset card: YAML `configs:` + `pruning:` block, usage, method
    data/prune_25/train-00000-of-00001.parquet    # one config per ratio: rows KEPT, sorted by `index`
    data/prune_50/train-00000-of-00001.parquet
    data/scores/train-00000-of-00001.parquet      # optional (`all_scores=True`): every row's score
    images/score_histogram.png                    # optional (needs matplotlib)
    images/data_map.png                           # optional, when the record is given
    images/gallery_prune_25.png                   # optional, per config, when the source's images are given
    pruning_provenance.json                       # exact params and provenance, for `PruneResult.load`

The files of one config are described in `hf_prune.export.index_list`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa

from ..provenance import infer_source, jsonable, normalize_source, source_from_provenance
from ..sample_ids import row_fingerprint
from .cards import render_dataset_card
from .content import content_values, resolve_content_key
from .index_list import (
    CARD_FILE,
    FORMAT_VERSION,
    IMAGES_DIR,
    INDEX_COLUMN,
    LABEL_COLUMN,
    PROVENANCE_FILE,
    SCORE_COLUMN,
    SCORES_CONFIG,
    SPLIT,
    config_name_for,
    data_file_for,
    index_sha256,
    looks_like_repo_id,
    read_card_metadata,
    write_parquet,
)


logger = logging.getLogger(__name__)


def _draw(figure: str, path: Path, *args) -> bool:
    """Draws the figure `hf_prune.plots.<figure>` into `path`; False (nothing written) without matplotlib or data."""
    from .. import plots  # imported when a folder is drawn, not by everything that imports hf_prune.export

    try:
        return getattr(plots, figure)(*args, path=path) is not None
    except ImportError:
        return False


def gallery_path(config_name: str) -> str:
    """Where a folder keeps the gallery of one config: `images/gallery_<config>.png`."""
    return f"{IMAGES_DIR}/gallery_{config_name}.png"


def _draw_galleries(results, source_dataset, folder: Path, label_names) -> list[tuple[str, str]]:
    """Draws `images/gallery_<config>.png` of each result (`hf_prune.gallery.removed_gallery`: per class, removed and
    kept examples ordered by score) from the source split's images; returns `(config, path)` of those written.

    Nothing is drawn without matplotlib, without `source_dataset` or when it has no image column: the card then has
    no gallery section, and a log line says how to get one. A source whose images cannot be read (files on another
    machine) is warned about, and the list is saved without gallery.
    """
    if source_dataset is None:
        logger.info(
            "No gallery of removed examples in the card: pass `source_dataset=` (the unpruned split, with its images) "
            "to `save_results` / `PruneResult.save` / `push_to_hub` to draw images/gallery_<config>.png."
        )
        return []
    from ..gallery import image_column_of, removed_gallery  # imported when a gallery is drawn

    column = image_column_of(source_dataset)
    if column is None:
        logger.info(
            f"No gallery of removed examples in the card: the source dataset has no image column (columns "
            f"{source_dataset.column_names}; looked for image, img, pixel_values and `Image` features)."
        )
        return []
    drawn = []
    for r in results:
        name = config_name_for(r.prune_ratio)
        try:
            removed_gallery(
                r, source_dataset, folder / gallery_path(name), image_column=column, label_names=label_names
            )
        except ImportError:
            return drawn
        except (OSError, ValueError, TypeError) as e:
            logger.warning(
                f"Could not draw the gallery of {name} from the source's {column!r} column ({type(e).__name__}: {e}); "
                "the list is saved without it. Pass a `source_dataset` whose images can be read here, or `plot=False`."
            )
            return drawn
        drawn.append((name, gallery_path(name)))
    return drawn


def _on_record_rows(result, record, record_rows):
    """`result` as a selection over the record's own rows (for its data map), or None when they do not match."""
    if record is None:
        return None
    if record_rows is None:
        return result if record.num_samples == result.num_samples else None
    rows = np.asarray(record_rows, dtype=np.int64)
    if rows.size != record.num_samples:
        return None
    kept = np.searchsorted(rows, result.kept_ids)
    return SimpleNamespace(
        kept_ids=kept, scores=np.asarray(result.scores)[rows], prune_ratio=result.prune_ratio, method=result.method,
        num_samples=record.num_samples,
    )  # fmt: skip


# Arguments whose values are paths on the machine that ran: published as their last component only.
_PATH_KEYS = {"output_dir", "logging_dir", "resume_from_checkpoint", "cache_dir", "train_dir", "validation_dir"}


def scrub_paths(value: Any, key: str | None = None) -> Any:
    """A copy of JSON-able `value` with machine paths reduced to their last component: the values of path arguments
    (`output_dir`, `logging_dir`...) and any absolute path. Published provenance names runs, not home folders."""
    if isinstance(value, dict):
        return {k: scrub_paths(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_paths(v, key) for v in value]
    if isinstance(value, str) and value and (key in _PATH_KEYS or os.path.isabs(value) or value.startswith("~")):
        return Path(value).name
    return value


def _is_result(value) -> bool:
    return all(hasattr(value, a) for a in ("kept_ids", "scores", "prune_ratio", "method", "num_samples"))


def _check_results(results) -> list:
    results = [results] if _is_result(results) else list(results)
    if not results:
        raise ValueError("No results to save.")
    for r in results:
        if not _is_result(r):
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
    results,
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
    license_name: str | None = None,
    license_link: str | None = None,
    label_names: Sequence[str] | None = None,
    record_rows: np.ndarray | None = None,
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
            The unpruned source split, to read `content_key` from (and its fingerprint when `source` has none), and
            whose images the card's gallery shows (see `plot`).
        content_key (`str`, *optional*):
            A column of the source that identifies a row whatever the mirror (e.g. a file name, or an `Image`
            column, whose file base names are used; a text column's values are hashed, see
            `hf_prune.export.content`). `"auto"` picks the text column(s) of a text dataset. Stored as a column of
            the lists.
        content (sequence of `str`, *optional*):
            The content key of every source row, when there is no `source_dataset` at hand (needs `content_key`).
        include_labels (`bool`, *optional*, defaults to `True`):
            Write a `label` column where the results know the labels.
        all_scores (`bool`, *optional*, defaults to `False`):
            Also write a `scores` config with every row's score, so `PruneResult.load` restores removed rows' scores.
        score_dtype (`str`, *optional*, defaults to `"float32"`):
            Storage type of the scores (`"float32"` or `"float64"`); float32 keeps an ImageNet list under 4 MB.
        license (`str`, *optional*, defaults to `"other"`):
            License of the list, for the card. With `"other"`, `license_name` and `license_link` say which one (by
            default: the source dataset's license, linked to the source's page).
        license_name, license_link (`str`, *optional*):
            The card's `license_name` / `license_link` for `license="other"`.
        label_names (sequence of `str`, *optional*):
            Class names of the `label` column, stored as a `ClassLabel` feature; defaults to the source dataset's
            `ClassLabel` names or the results' `provenance["label_names"]`.
        record_rows (`np.ndarray`, *optional*):
            For results mapped to the full split (`PruneResult.to_source_rows`) whose `record` covers only the rows
            the run trained on: the full-split position of each record row, to draw the data map.
        task_categories (sequence of `str`, *optional*, defaults to `("image-classification",)`):
            For the card.
        pretty_name (`str`, *optional*):
            Title of the card.
        plot (`bool`, *optional*, defaults to `True`):
            Draw `images/score_histogram.png` (skipped without matplotlib) and, when `source_dataset` has an image
            column, `images/gallery_<config>.png` per config: per class, the removed and the kept examples ordered by
            score (`hf_prune.gallery.removed_gallery`; at most 10 classes, those with the largest share removed).
            Without images there is no gallery (an INFO log line says how to get one) and the card has no section
            for it.
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
    results = _check_results(results)
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
    if source_dataset is not None and (rows_fp := row_fingerprint(source_dataset)) is not None:
        src["row_fingerprint"] = rows_fp  # lets `load_pruned` check a consumer's rows, whatever its transforms
    if src.get("repo_id") and not looks_like_repo_id(str(src["repo_id"])):
        # a local folder: name it, but never publish the machine path or offer it to `load_dataset` as a repo id
        src["local_name"] = Path(str(src["repo_id"])).name
        src["repo_id"] = None
    if repo_id is not None and not looks_like_repo_id(repo_id):
        raise ValueError(f"repo_id must be a Hub repo id such as 'my-org/my-list', not a path; got {repo_id!r}.")
    if label_names is None:
        label_names = first.provenance.get("label_names")
        feature = source_dataset.features.get(LABEL_COLUMN) if source_dataset is not None else None
        label_names = label_names or (list(feature.names) if hasattr(feature, "names") else None)
    if not src.get("repo_id") and not src.get("local_name"):
        logger.warning(
            "The index list does not say which dataset its ids index (no source repo id in the results' provenance). "
            "Pass `source=(repo_id, split, revision)` so the card can show how to apply it."
        )
    if source_dataset is not None and content is None:
        content_key = resolve_content_key(source_dataset, content_key)  # "auto": the text column(s), if any
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
            write_parquet(tmp / data_file_for(name), columns, score_dtype, label_names=label_names)
            scored = int((r.provenance.get("subset") or {}).get("num_rows", n))
            lists[name] = {
                "prune_ratio": float(r.prune_ratio),
                "kept": r.num_kept,
                "removed": scored - r.num_kept,
                "index_sha256": index_sha256(ids),
                "data_files": data_file_for(name),
            }
            provenance_lists[name] = {"params": jsonable(r.params), "provenance": scrub_paths(jsonable(r.provenance))}
        if all_scores:
            columns = {INDEX_COLUMN: np.arange(n, dtype=np.int64), SCORE_COLUMN: first.scores}
            if include_labels and first.labels is not None:
                columns[LABEL_COLUMN] = np.asarray(first.labels)
            write_parquet(tmp / data_file_for(SCORES_CONFIG), columns, score_dtype, label_names=label_names)
        with open(tmp / PROVENANCE_FILE, "w") as f:
            json.dump({"format_version": FORMAT_VERSION, "lists": provenance_lists}, f, indent=2, sort_keys=True)
        images = []
        if plot and _draw("score_histogram", tmp / IMAGES_DIR / "score_histogram.png", results):
            images.append(("Histogram of the scores of kept and removed rows", f"{IMAGES_DIR}/score_histogram.png"))
        on_record = _on_record_rows(first, record, record_rows)
        if (
            plot
            and on_record is not None
            and record.has_signal("p_target")
            and _draw("data_map", tmp / IMAGES_DIR / "data_map.png", record, on_record)
        ):
            images.append(("Data map: mean p(y|x) over epochs against the score, removed rows in red", f"{IMAGES_DIR}/data_map.png"))
        galleries = _draw_galleries(results, source_dataset, tmp, label_names) if plot else []
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
            galleries=galleries,
            extra_tags=list(extra_tags),
            license_name=license_name,
            license_link=license_link,
            label_names=label_names,
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
