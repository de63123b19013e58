"""Turning a resolved artefact into `PruneResult`s, with the artefact's citation, provenance and licence attached.

A **kept list** becomes one result: the listed files kept, every other source row removed. A **score artefact**
becomes one result per ratio, each selected from the published scores with hf_prune's own selection rules
(`hf_prune.selection`: `n - floor(r n)` kept, NaN removed first, ties to the lower id, `class_balanced`, CCS), so any
ratio can be chosen, now (`prune_ratio=[0.25, 0.5]`) or later (`select_imported`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..result import PruneResult
from ..selection import ccs_kept_ids, check_keep, check_ratio, select_kept_ids
from .artefact import KEPT, Artefact
from .resolve import Resolution


SELECTIONS = ("rank", "ccs")
SELECTION_KEYS = ("keep", "class_balanced", "selection", "hard_cutoff", "num_strata", "seed", "cutoff", "cutoff_keep")
IMPORTED = "imported"


def _licence_text(info) -> str:
    name = info.license_name or info.license
    return f"{name} ({info.license_link})" if info.license_link else name


def _imported_provenance(artefact: Artefact, resolution: Resolution, **extra: Any) -> dict[str, Any]:
    info = artefact.info
    return {
        "format": info.format,
        "artefact": artefact.identity(),
        "paper": info.paper,
        "license": info.license,
        "license_name": info.license_name,
        "license_link": info.license_link,
        "resolution": resolution.to_dict(artefact),
        **extra,
    }


def _method(artefact: Artefact, resolution: Resolution, method: str, title: str, description: str,
            score_name: str) -> dict[str, str]:  # fmt: skip
    """The card's method section: what the artefact is, which end is kept, and where the list comes from."""
    info = artefact.info
    origin = (
        f" Imported with hf_prune (`hf-prune import {info.format}`) from `{artefact.file}` (SHA-256 "
        f"`{artefact.sha256}`, {artefact.num_bytes:,} bytes), published with {info.paper} at <{info.url}>; "
        f"licence of the artefact: {_licence_text(info)}. {resolution.summary(artefact)}"
    )
    return {"name": method, "title": title, "description": description + origin, "score_name": score_name,
            "citation": info.citation}  # fmt: skip


def _aligned(values: np.ndarray, resolution: Resolution, fill: float | int, dtype) -> np.ndarray:
    """Per-entry `values` placed at their source rows, `fill` elsewhere."""
    matched = resolution.matched
    out = np.full(resolution.source.num_rows, fill, dtype=dtype)
    out[resolution.rows[matched]] = np.asarray(values)[matched]
    return out


def _labels(artefact: Artefact, resolution: Resolution) -> np.ndarray | None:
    if resolution.source.labels is not None:
        return resolution.source.labels
    if artefact.labels is not None:
        return _aligned(artefact.labels, resolution, -1, np.int64)
    return None


def kept_result(artefact: Artefact, resolution: Resolution, *, method: str, params: dict | None = None) -> PruneResult:
    """The fixed kept set of a published list, over the source's rows.

    `prune_ratio` is the fraction of the source's rows the list does not keep, rounded to 4 decimals (the card has
    the exact counts); `score` is 1 on kept rows and 0 elsewhere (the artefact has no scores).
    """
    if artefact.kind != KEPT:
        raise ValueError(f"{artefact.file} holds scores, not a kept list: use `score_results`.")
    n = resolution.source.num_rows
    kept = np.unique(resolution.rows[resolution.matched])
    if kept.size == n:
        raise ValueError(f"{artefact.file} keeps every one of the source's {n:,} rows: nothing is pruned.")
    scores = np.zeros(n)
    scores[kept] = 1.0
    info = artefact.info
    removed = n - kept.size
    description = (
        f"{info.description} This list keeps exactly the {kept.size:,} files of the published list and removes the "
        f"other {removed:,} of the source's {n:,} rows; `prune_ratio` is that fraction removed, rounded to 4 "
        "decimals."
    )
    provenance = {
        "method": _method(artefact, resolution, method, info.title, description, info.score_name),
        IMPORTED: _imported_provenance(artefact, resolution, kind=KEPT, kept=int(kept.size), removed=int(removed),
                                       keeps="the files in the published list"),  # fmt: skip
    }
    ratio = round(removed / n, 4)
    ratio = ratio if 0 < ratio < 1 else removed / n  # rounding must not make it 0 or 1
    return PruneResult(
        kept_ids=kept, scores=scores, prune_ratio=ratio, method=method,
        params={**(params or {}), "keep": "high", "class_balanced": False, "selection": "published"},
        num_samples=n, labels=_labels(artefact, resolution), provenance=provenance,
    )  # fmt: skip


def _kept_ids(scores, labels, ratio, keep, class_balanced, selection, hard_cutoff, num_strata, seed, cutoff,
              cutoff_keep) -> np.ndarray:  # fmt: skip
    if selection == "rank":
        return select_kept_ids(scores, ratio, keep=keep, labels=labels, class_balanced=class_balanced)
    return ccs_kept_ids(
        scores, ratio, keep=keep, hard_cutoff=hard_cutoff, num_strata=num_strata, seed=seed, labels=labels,
        class_balanced=class_balanced, cutoff_scores=cutoff, cutoff_keep=cutoff_keep,
    )  # fmt: skip


def _select(scores: np.ndarray, labels, cutoff, ratio: float, params: dict, method: str,
            provenance: dict) -> PruneResult:  # fmt: skip
    """One result: selection over the rows that have a score (all of them, or the covered ones of a partial import)."""
    ratio = check_ratio(ratio)
    n = scores.size
    covered = np.flatnonzero(~np.isnan(scores))
    on = (lambda a: a) if covered.size == n else (lambda a: None if a is None else np.asarray(a)[covered])
    local = _kept_ids(
        on(scores), on(labels), ratio, params["keep"], params["class_balanced"], params["selection"],
        params.get("hard_cutoff", 0.0), params.get("num_strata", 50), params.get("seed", 0), on(cutoff),
        params.get("cutoff_keep"),
    )  # fmt: skip
    provenance = dict(provenance)
    if covered.size < n:
        provenance["subset"] = {
            "num_rows": int(covered.size), "num_source_rows": int(n),
            "description": f"the {covered.size:,} source rows the artefact has scores for",
        }  # fmt: skip
    return PruneResult(kept_ids=covered[local], scores=scores, prune_ratio=ratio, method=method, params=dict(params),
                       num_samples=n, labels=labels, provenance=provenance)  # fmt: skip


def _selection_params(keep: str, class_balanced: bool, selection: str, hard_cutoff: float, num_strata: int,
                      seed: int) -> dict:  # fmt: skip
    check_keep(keep)
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}; got {selection!r}.")
    params: dict[str, Any] = {"keep": keep, "class_balanced": bool(class_balanced), "selection": selection}
    if selection == "ccs":
        params.update(hard_cutoff=float(hard_cutoff), num_strata=int(num_strata), seed=int(seed))
    return params


def score_results(
    artefact: Artefact,
    resolution: Resolution,
    prune_ratio: float | Sequence[float],
    *,
    score: str,
    method: str,
    title: str,
    description: str,
    score_name: str,
    keep: str = "high",
    class_balanced: bool = False,
    selection: str = "rank",
    hard_cutoff: float = 0.0,
    num_strata: int = 50,
    seed: int = 0,
    cutoff: str | None = None,
    cutoff_keep: str | None = None,
    params: dict | None = None,
) -> PruneResult | list[PruneResult]:
    """Results selected from one of the artefact's scores over the source's rows, one per ratio.

    Args:
        artefact, resolution: the parsed artefact and where its entries are in the source.
        prune_ratio (`float` or sequence of `float`): fraction(s) removed; a sequence gives a list of results (one
            config each when saved together).
        score (`str`): which of `artefact.scores` to select by.
        method, title, description, score_name (`str`): what the card says (`description` must say which end is
            kept and why).
        keep (`str`, *optional*, defaults to `"high"`): keep the `"high"` or `"low"` scores.
        class_balanced (`bool`, *optional*, defaults to `False`): remove the same fraction from every class (the
            source's labels).
        selection (`str`, *optional*, defaults to `"rank"`): `"rank"` or `"ccs"` (coverage-centric sampling).
        hard_cutoff, num_strata, seed: CCS parameters (see `hf_prune.selection.ccs_kept_ids`).
        cutoff (`str`, *optional*): CCS only: another of the artefact's scores whose hard end the hard cutoff removes
            (the CCS code cuts by `accumulated_margin`, lowest first); default: `score`.
        cutoff_keep (`str`, *optional*): the hard end of `cutoff`.
        params (`dict`, *optional*): more parameters to record.
    """
    if artefact.kind == KEPT:
        raise ValueError(f"{artefact.file} is a list of kept files with no scores: use `kept_result`.")
    if score not in artefact.scores:
        raise ValueError(f"{artefact.file} has no score {score!r}; it has {sorted(artefact.scores)}.")
    selection_params = _selection_params(keep, class_balanced, selection, hard_cutoff, num_strata, seed)
    scores = _aligned(artefact.scores[score], resolution, np.nan, np.float64)
    cut = None
    if selection == "ccs":
        cutoff = cutoff or score
        if cutoff not in artefact.scores:
            raise ValueError(f"{artefact.file} has no score {cutoff!r} to cut by; it has {sorted(artefact.scores)}.")
        if cutoff != score:
            cut = _aligned(artefact.scores[cutoff], resolution, np.nan, np.float64)
        selection_params.update(cutoff=cutoff, cutoff_keep=check_keep(cutoff_keep or keep))
    keeps = f"the {'highest' if keep == 'high' else 'lowest'} `{score}`"
    provenance = {
        "method": _method(artefact, resolution, method, title, description, score_name),
        IMPORTED: _imported_provenance(artefact, resolution, kind="scores", score=score, keeps=keeps),
    }
    all_params = {**(params or {}), "score": score, **selection_params}
    labels = _labels(artefact, resolution)
    ratios = [prune_ratio] if np.ndim(prune_ratio) == 0 else list(prune_ratio)
    if not ratios:
        raise ValueError("Give at least one prune_ratio (the fraction of rows removed).")
    results = [_select(scores, labels, cut, r, all_params, method, provenance) for r in ratios]
    return results[0] if np.ndim(prune_ratio) == 0 else results


def select_imported(
    result: PruneResult,
    prune_ratio: float,
    *,
    keep: str | None = None,
    class_balanced: bool | None = None,
    selection: str | None = None,
    hard_cutoff: float | None = None,
    num_strata: int | None = None,
    seed: int | None = None,
    cutoff_scores: np.ndarray | None = None,
) -> PruneResult:
    """Another selection from an imported result's published scores: another ratio, class-balanced, CCS...

    Arguments left `None` keep the result's own. Works on a result just imported or loaded back with
    `PruneResult.load` from a folder saved with `all_scores=True` (otherwise only the kept rows have scores).

    Args:
        result (`PruneResult`): a result of `import_memorization`, `import_score_csv` or `import_ccs_scores`.
        prune_ratio (`float`): fraction removed, in [0, 1).
        cutoff_scores (`np.ndarray`, *optional*): for CCS with a hard cutoff by another score than the one selected
            (`cutoff=` at import), that score per source row.

    Example:

    ```python
    >>> r25 = import_score_csv("ImageNet-1K_EL2N-20-models.csv", train, prune_ratio=0.25)
    >>> r50 = select_imported(r25, 0.5, class_balanced=True)
    ```
    """
    imported = result.provenance.get(IMPORTED) or {}
    if not imported:
        raise ValueError("`select_imported` re-selects lists made by hf_prune.importers; this result is not one.")
    if imported.get("kind") == KEPT:
        raise ValueError(
            f"{imported['artefact']['file']} is a published list of kept files with no scores: it is one fixed "
            "subset and cannot be re-selected at another ratio."
        )
    scores = np.asarray(result.scores, dtype=np.float64)
    expected = int((result.provenance.get("subset") or {}).get("num_rows", result.num_samples))
    if int((~np.isnan(scores)).sum()) < expected:
        raise ValueError(
            f"This list carries the scores of its {result.num_kept:,} kept rows only, not of the {expected:,} rows "
            "the artefact scores: it was saved without `all_scores=True`. Re-import the artefact, or load a list "
            "saved with `publish_options` (which keeps every row's score)."
        )
    old = result.params

    def given(value, key, default):
        return old.get(key, default) if value is None else value

    params = _selection_params(
        given(keep, "keep", "high"), given(class_balanced, "class_balanced", False),
        given(selection, "selection", "rank"), given(hard_cutoff, "hard_cutoff", 0.0),
        given(num_strata, "num_strata", 50), given(seed, "seed", 0),
    )  # fmt: skip
    params = {**{k: v for k, v in old.items() if k not in SELECTION_KEYS}, **params}
    if params["selection"] == "ccs":
        cutoff = old.get("cutoff") or old.get("score")
        params.update(cutoff=cutoff, cutoff_keep=old.get("cutoff_keep") or params["keep"])
        if cutoff != old.get("score") and cutoff_scores is None:
            raise ValueError(
                f"This list was selected with a hard cutoff by `{cutoff}`, which it does not store: pass its scores "
                "as `cutoff_scores=` (or re-import the artefact)."
            )
    provenance = {k: v for k, v in result.provenance.items() if k != "subset"}
    return _select(scores, result.labels, cutoff_scores, prune_ratio, params, result.method, provenance)


def publish_options(result: PruneResult | Sequence[PruneResult], source_dataset=None) -> dict[str, Any]:
    """Keyword arguments for `result.save` / `result.push_to_hub` / `save_results` of an imported list: the
    artefact's licence, tags, every row's score for score artefacts (`all_scores`), and the source's file names as
    content key (so `load_pruned` remaps the list onto a copy of the source in another row order).

    Args:
        result (`PruneResult` or a list of them): imported results (one artefact).
        source_dataset (`datasets.Dataset`, *optional*): the source the result was imported onto; needed for the
            content key and the class names.

    Example:

    ```python
    >>> result.save("imagenet-1k-dyn-unc-75", source=("ILSVRC/imagenet-1k", "train"), **publish_options(result, train))
    ```
    """
    first = result if isinstance(result, PruneResult) else list(result)[0]
    imported = first.provenance.get(IMPORTED)
    if not imported:
        raise ValueError("`publish_options` is for lists made by hf_prune.importers; this result is not one.")
    options: dict[str, Any] = {
        "license": imported["license"],
        "extra_tags": ["imported", imported["format"]],
        # published scores: every row's, so that `PruneResult.load` + `select_imported` can choose any other ratio
        "all_scores": imported.get("kind") != KEPT,
    }
    if imported["license"] == "other":
        options.update(license_name=imported.get("license_name"), license_link=imported.get("license_link"))
    if source_dataset is not None:
        options.update(source_dataset=source_dataset, content_key=imported["resolution"]["source_column"])
    return options
