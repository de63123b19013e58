"""Per-example score CSVs: a file name and a score per row, such as Sorscher et al.'s ImageNet-1K metric scores.

Sorscher, Geirhos, Shekhar, Ganguli and Morcos (NeurIPS 2022) released one CSV per pruning metric for ImageNet-1K
(`ImageNet-1K_EL2N-20-models.csv`, `ImageNet-1K_memorization.csv`, `ImageNet-1K_self-supervised-prototypes.csv`...)
in `rgeirhos/dataset-pruning-metrics`, all oriented so that a **high score means keeping the example is
beneficial** (they reversed the metrics that are naturally the other way round, e.g. the prototype similarities).

The reader is strict and generic: comma-separated (or `delimiter=`), a header detected when the first row holds no
number, the file-name column and the score column found by header name or position, every row with the same number
of fields, every score a finite number, every file name non-empty and given once.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..citations import DATA_DIET, SSP
from ..result import PruneResult
from .artefact import (
    SCORES,
    Artefact,
    ArtefactInfo,
    first_failing,
    format_error,
    read_bytes,
    text_lines,
    with_citation,
)
from .build import score_results
from .memorization_npz import FELDMAN_ZHANG
from .resolve import resolve_artefact


FORMAT = "score-csv"
NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
LABEL = r"^[0-9]{1,9}$"
FILE_HEADERS = ("file_name", "filename", "file", "image", "image_name", "image_id", "image_path", "path", "name", "id")
SCORE_HEADERS = ("score", "value", "metric")
LABEL_HEADERS = ("label", "class", "target")

# Which paper each of Sorscher et al.'s metric files rests on (their README), for the card's citation.
METRIC_PAPERS = {"el2n": DATA_DIET, "memorization": FELDMAN_ZHANG, "influence": FELDMAN_ZHANG,
                 "forgetting": FELDMAN_ZHANG, "prototypes": SSP}  # fmt: skip

INFO = ArtefactInfo(
    format=FORMAT,
    title="Per-example pruning scores",
    paper="Sorscher, Geirhos, Shekhar, Ganguli, Morcos (2022), Beyond neural scaling laws: beating power law "
    "scaling via data pruning",
    citation=SSP,
    url="https://github.com/rgeirhos/dataset-pruning-metrics",
    license="apache-2.0",
    license_link="https://github.com/rgeirhos/dataset-pruning-metrics/blob/main/LICENSE",
    description=(
        "Per-example pruning scores released as a CSV of file names and scores. In Sorscher et al.'s release every "
        "metric is oriented so that a high score means keeping the example is beneficial."
    ),
)


def _is_number(text: str) -> bool:
    """A number, finite or not (`nan`, `-inf` count: a row holding one is data, refused later, not a header)."""
    text = text.strip()
    return re.match(NUMBER, text) is not None or re.match(r"^[+-]?(nan|inf|infinity)$", text, re.I) is not None


def _pick(header: list[str], given: str | int | None, known: Sequence[str], what: str, file: str) -> int | None:
    """Index of the column `given` (a header name or a position), else of the first header in `known`."""
    lowered = [h.strip().lower() for h in header]
    if isinstance(given, int):
        if not 0 <= given < len(header):
            raise format_error(file, "the header", f"a {what} column at position {given}", f"{len(header)} columns")
        return given
    if given is not None:
        if given not in header and given.lower() not in lowered:
            raise format_error(file, "the header", f"a {what} column named {given!r}", ",".join(header))
        return header.index(given) if given in header else lowered.index(given.lower())
    return next((lowered.index(k) for k in known if k in lowered), None)


def _columns(first: list[str], file: str, file_column, score_column, label_column):
    """`(has_header, header, file index, score index, label index or None)` from the first row."""
    has_header = not any(_is_number(f) for f in first)
    if not has_header:
        given_columns = {"file_column": file_column, "score_column": score_column, "label_column": label_column}
        for name, given in given_columns.items():
            if isinstance(given, str):
                raise format_error(file, "line 1", f"a header naming the columns, as {name}={given!r} names one",
                                   ",".join(first))  # fmt: skip
        fi = 0 if file_column is None else file_column
        si = 1 if score_column is None else score_column
        if len(first) != 2 and (file_column is None or score_column is None):
            raise format_error(file, "line 1", "2 fields, file name then score (or pass file_column= and "
                               "score_column= as positions)", ",".join(first))  # fmt: skip
        for index in (fi, si, label_column):
            if index is not None and not 0 <= index < len(first):
                raise format_error(file, "line 1", f"a column at position {index}", f"{len(first)} fields")
        return False, None, fi, si, label_column
    header = [h.strip() for h in first]
    fi = _pick(header, file_column, FILE_HEADERS, "file name", file)
    si = _pick(header, score_column, SCORE_HEADERS, "score", file)
    li = _pick(header, label_column, LABEL_HEADERS, "label", file)
    rest = [i for i in range(len(header)) if i not in (fi, si, li)]
    if fi is None and si is not None and len(rest) == 1:
        fi = rest[0]
    elif si is None and fi is not None and len(rest) == 1:
        si = rest[0]
    elif fi is None and si is None and len(header) == 2:
        fi, si = 0, 1
    if fi is None or si is None or fi == si:
        raise format_error(file, "the header", "a file-name column and a score column (pass file_column= and "
                           "score_column= to name them)", ",".join(header))  # fmt: skip
    return True, header, fi, si, li


def read_score_csv(
    path: str | os.PathLike,
    *,
    file_column: str | int | None = None,
    score_column: str | int | None = None,
    label_column: str | int | None = None,
    delimiter: str = ",",
    info: ArtefactInfo | None = None,
) -> Artefact:
    """Parses a per-example score CSV strictly.

    Args:
        path (`str` or `os.PathLike`): the CSV.
        file_column, score_column, label_column (`str` or `int`, *optional*): the columns, by header name or
            position. By default: a header is detected (the first row holds no number); with a header, the file
            column is the one named like a file (`file_name`, `image`, `path`...), the score column the one named
            `score` (or the other one of two), the label column one named `label` / `class` / `target` if any;
            without a header, exactly two fields per row, file name then score.
        delimiter (`str`, *optional*, defaults to `","`): the field separator.
        info (`ArtefactInfo`, *optional*): who published the scores (paper, citation, URL, licence) for the card;
            defaults to Sorscher et al.'s release. Pass your own for a CSV from elsewhere.

    Returns:
        `Artefact` of kind `"scores"` with one score named after the score column (`"score"` without a header).

    Raises:
        `ArtefactFormatError` naming the line and what was expected: a row with another number of fields, an empty
        file name, a score that is not a finite number, a label that is not an integer, bad quoting.
    """
    data, file, sha256 = read_bytes(path)
    text = "\n".join(text_lines(data, file)) + "\n"
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        first = next(reader)
        has_header, header, fi, si, li = _columns(first, file, file_column, score_column, label_column)
        width = len(first)
        names, scores, labels, lines = [], [], [], []
        rows = reader if has_header else itertools.chain([first], reader)
        for row in rows:
            line = reader.line_num
            if len(row) != width:
                expected = f"{width} fields, as " + ("the header" if has_header else "line 1")
                raise format_error(file, f"line {line}", expected, delimiter.join(row) if row else "an empty line")
            names.append(row[fi].strip())
            scores.append(row[si].strip())
            if li is not None:
                labels.append(row[li].strip())
            lines.append(line)
    except csv.Error as err:
        raise format_error(file, f"line {reader.line_num}", "well-formed CSV", str(err)) from None
    if not names:
        raise format_error(file, "line 2", "at least one row after the header", "none")
    lines = np.asarray(lines, dtype=np.int64)
    paths = pa.array(names, pa.string())
    bad = first_failing(pc.not_equal(paths, ""))
    if bad is not None:
        raise format_error(file, f"line {lines[bad]}", "a file name", "an empty field")
    values = pa.array(scores, pa.string())
    bad = first_failing(pc.match_substring_regex(values, NUMBER))
    if bad is not None:
        raise format_error(file, f"line {lines[bad]}", "a finite number as score", scores[bad])
    score_values = pc.cast(values, pa.float64()).to_numpy()
    bad = np.flatnonzero(~np.isfinite(score_values))
    if bad.size:
        raise format_error(file, f"line {lines[bad[0]]}", "a finite number as score", scores[bad[0]])
    label_values = None
    if li is not None:
        raw = pa.array(labels, pa.string())
        bad = first_failing(pc.match_substring_regex(raw, LABEL))
        if bad is not None:
            raise format_error(file, f"line {lines[bad]}", "an integer label >= 0", labels[bad])
        label_values = pc.cast(raw, pa.int64()).to_numpy().astype(np.int64)
    score_name = header[si] if has_header else "score"
    return Artefact(
        file=file, sha256=sha256, num_bytes=len(data), info=info or INFO, kind=SCORES, paths=paths, entries=lines,
        entry_word="line", labels=label_values, scores={score_name: score_values},
    )  # fmt: skip


def metric_name(file: str) -> str:
    """The method name of a metric file: `ImageNet-1K_EL2N-20-models.csv` -> `el2n_20_models`."""
    stem = Path(file).stem
    stem = re.sub(r"^imagenet-?1k[_-]", "", stem, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "score"


def results_for(
    artefact: Artefact,
    resolution,
    prune_ratio: float | Sequence[float],
    *,
    method: str | None = None,
    keep: str | None = None,
    **selection,
) -> PruneResult | list[PruneResult]:
    """The results of a parsed and resolved score CSV (see `import_score_csv`)."""
    keep = keep or "high"
    method = method or metric_name(artefact.file)
    (score,) = artefact.scores
    if artefact.info.url == INFO.url:  # Sorscher et al.'s metrics: cite the paper each rests on too
        artefact.info = with_citation(artefact.info, next((c for k, c in METRIC_PAPERS.items() if k in method), None))
    end = "highest" if keep == "high" else "lowest"
    description = (f"{artefact.info.description} This list is `{method}` from `{artefact.file}` and keeps the rows "
                   f"with the {end} `{score}`.")  # fmt: skip
    return score_results(
        artefact, resolution, prune_ratio, score=score, method=method, title=f"{method} (published scores)",
        description=description, score_name=f"`{score}` from `{artefact.file}` ({end} kept)", keep=keep, **selection,
    )  # fmt: skip


def import_score_csv(
    path: str | os.PathLike,
    source_dataset,
    prune_ratio: float | Sequence[float],
    *,
    method: str | None = None,
    file_column: str | int | None = None,
    score_column: str | int | None = None,
    label_column: str | int | None = None,
    delimiter: str = ",",
    info: ArtefactInfo | None = None,
    column: str | None = None,
    source_label_column: str | None = None,
    allow_missing: bool = False,
    allow_partial: bool = False,
    **selection,
) -> PruneResult | list[PruneResult]:
    """Imports a per-example score CSV (file name + score) and selects by its scores.

    By default the **highest** scores are kept (`keep="high"`): Sorscher et al.'s released metrics all mean "high =
    keep". For a CSV oriented the other way, pass `keep="low"`.

    Args:
        path (`str` or `os.PathLike`): the CSV, e.g. `ImageNet-1K_EL2N-20-models.csv`.
        source_dataset (`datasets.Dataset`): your copy of the split the scores were made on, in any row order.
        prune_ratio (`float` or sequence of `float`): fraction(s) removed; a sequence returns one result each.
        method (`str`, *optional*): the method's name in the list (default: from the file name, e.g.
            `el2n_20_models`).
        file_column, score_column, label_column, delimiter, info: see `read_score_csv`.
        column, source_label_column (`str`, *optional*): the source's file-name and label columns.
        allow_missing, allow_partial (`bool`, *optional*): see `resolve_artefact`.
        selection: `keep`, `class_balanced`, `selection` (`"rank"` or `"ccs"`), `hard_cutoff`, `num_strata`, `seed`:
            how the kept rows are chosen from the scores (see `hf_prune.importers.score_results`).

    Returns:
        `PruneResult` (a list for a sequence of ratios) with every covered source row's score.

    Example:

    ```python
    >>> from hf_prune.importers import import_score_csv
    >>> result = import_score_csv("ImageNet-1K_EL2N-20-models.csv", train, prune_ratio=0.3, class_balanced=True)
    ```
    """
    artefact = read_score_csv(path, file_column=file_column, score_column=score_column, label_column=label_column,
                              delimiter=delimiter, info=info)  # fmt: skip
    resolution = resolve_artefact(artefact, source_dataset, column=column, label_column=source_label_column,
                                  allow_missing=allow_missing, allow_partial=allow_partial)  # fmt: skip
    return results_for(artefact, resolution, prune_ratio, method=method, **selection)
