"""Feldman & Zhang's ImageNet memorization estimates: a NumPy `.npz` with `tr_filenames`, `tr_labels`, `tr_mem`.

Feldman and Zhang (NeurIPS 2020) estimate, for every ImageNet training example, how much a model's prediction on it
depends on having trained on it (the memorization value: accuracy on the example when it is in the training subset
minus when it is held out), from 2,000 ResNet-50 models each trained on a random 70 % of the training set. Their
release holds, per training example, its file name (`tr_filenames`), its label (`tr_labels`) and the estimate
(`tr_mem`). It is read with `numpy.load(allow_pickle=False)`: an archive holding Python objects is refused, never
unpickled.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..citations import bibtex
from ..result import PruneResult
from .artefact import SCORES, Artefact, ArtefactInfo, check_finite, file_sha256, format_error
from .build import score_results
from .resolve import resolve_artefact


FORMAT = "memorization-npz"
FIELDS = ("tr_filenames", "tr_labels", "tr_mem")

FELDMAN_ZHANG = bibtex(
    "inproceedings",
    "feldman2020neural",
    title="What Neural Networks Memorize and Why: Discovering the Long Tail via Influence Estimation",
    author="Feldman, Vitaly and Zhang, Chiyuan",
    booktitle="Advances in Neural Information Processing Systems",
    year="2020",
)

INFO = ArtefactInfo(
    format=FORMAT,
    title="Memorization estimates (Feldman & Zhang 2020)",
    paper="Feldman, Zhang (2020), What Neural Networks Memorize and Why: Discovering the Long Tail via Influence "
    "Estimation",
    citation=FELDMAN_ZHANG,
    url="https://pluskid.github.io/influence-memorization/",
    license="apache-2.0",
    license_link="https://github.com/google-research/heldout-influence-estimation/blob/master/LICENSE",
    description=(
        "Feldman & Zhang's memorization estimate of every ImageNet training example: its accuracy under models that "
        "trained on it minus under models that did not (2,000 ResNet-50 models, each on a random 70 % of the "
        "training set). A high value marks an atypical, long-tail or mislabeled example that the network can only "
        "fit by memorizing it; a low value, an example its class's other examples already teach."
    ),
    score_name="the memorization estimate `tr_mem`",
)


def _load(path: str | os.PathLike, file: str) -> dict[str, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise format_error(file, "the file", "a NumPy .npz archive", f"{type(err).__name__}: {err}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise format_error(file, "the file", "a NumPy .npz archive of named arrays", "a single .npy array")
    with archive:
        missing = [k for k in FIELDS if k not in archive.files]
        if missing:
            raise format_error(file, "the archive", f"the arrays {list(FIELDS)}", f"{sorted(archive.files)}")
        out = {}
        for key in FIELDS:
            try:
                out[key] = archive[key]
            except ValueError as err:  # numpy refuses object arrays without allow_pickle
                raise format_error(
                    file, f"field {key!r}", "an array of strings or numbers (hf_prune unpickles no Python objects)",
                    str(err),
                ) from None  # fmt: skip
    return out


def read_memorization_npz(path: str | os.PathLike) -> Artefact:
    """Parses Feldman & Zhang's memorization `.npz` strictly (without pickle).

    Requires 1-D arrays of one length: `tr_filenames` (strings or UTF-8 bytes, non-empty), `tr_labels` (integers
    >= 0) and `tr_mem` (finite numbers); other arrays in the archive are ignored. Anything else is an
    `ArtefactFormatError` naming the field (and entry) and what was expected.

    Returns:
        `Artefact` of kind `"scores"` with the score `"tr_mem"`.
    """
    file = os.path.basename(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file. Download the artefact first (see docs/published_subsets.md).")
    sha256, size = file_sha256(path)
    arrays = _load(path, file)
    n = None
    for key in FIELDS:
        arr = arrays[key]
        if arr.ndim != 1:
            raise format_error(file, f"field {key!r}", "a 1-D array, one value per training example",
                               f"shape {arr.shape}")  # fmt: skip
        if n is not None and arr.shape[0] != n:
            raise format_error(file, f"field {key!r}", f"{n:,} values, as many as tr_filenames", f"{arr.shape[0]:,}")
        n = arr.shape[0]
    if not n:
        raise format_error(file, "field 'tr_filenames'", "at least one training example", "an empty array")
    names = arrays["tr_filenames"]
    if names.dtype.kind not in "SU":
        raise format_error(file, "field 'tr_filenames'", "an array of strings (file names)", f"dtype {names.dtype}")
    paths = pa.array(names, pa.binary() if names.dtype.kind == "S" else pa.string())
    if isinstance(paths, pa.ChunkedArray):  # pyarrow converts large fixed-width numpy arrays in chunks
        paths = paths.combine_chunks()
    try:
        paths = paths.cast(pa.string())
    except pa.ArrowInvalid:
        raise format_error(file, "field 'tr_filenames'", "UTF-8 file names", "undecodable bytes") from None
    empty = np.flatnonzero(np.char.str_len(names) == 0)
    if empty.size:
        raise format_error(file, f"entry {int(empty[0])} of 'tr_filenames'", "a file name", "an empty string")
    labels = arrays["tr_labels"]
    if labels.dtype.kind not in "iu":
        raise format_error(file, "field 'tr_labels'", "integer class ids", f"dtype {labels.dtype}")
    negative = np.flatnonzero(labels < 0)
    if negative.size:
        i = int(negative[0])
        raise format_error(file, f"entry {i} of 'tr_labels'", "a class id >= 0", str(labels[i]))
    mem = arrays["tr_mem"]
    if mem.dtype.kind not in "fiu":
        raise format_error(file, "field 'tr_mem'", "numbers", f"dtype {mem.dtype}")
    mem = check_finite(mem, file, "'tr_mem'", lambda i: f"entry {i} of 'tr_mem' ({paths[i].as_py()!r})")
    return Artefact(
        file=file, sha256=sha256, num_bytes=size, info=INFO, kind=SCORES, paths=paths,
        entries=np.arange(n, dtype=np.int64), entry_word="entry", labels=labels.astype(np.int64),
        scores={"tr_mem": mem},
    )  # fmt: skip


def results_for(
    artefact: Artefact, resolution, prune_ratio: float | Sequence[float], *, keep: str | None = None, **selection
) -> PruneResult | list[PruneResult]:
    """The results of a parsed and resolved memorization artefact (see `import_memorization`)."""
    keep = keep or "high"
    ends = {"high": "the highest memorization (atypical examples) kept, the most typical removed first",
            "low": "the lowest memorization (typical examples) kept, the atypical and mislabeled removed first"}
    return score_results(
        artefact, resolution, prune_ratio, score="tr_mem", method="memorization", title=INFO.title,
        description=f"{INFO.description} This list keeps {ends.get(keep, keep)}.", score_name=INFO.score_name,
        keep=keep, **selection,
    )  # fmt: skip


def import_memorization(
    path: str | os.PathLike,
    source_dataset,
    prune_ratio: float | Sequence[float],
    *,
    column: str | None = None,
    label_column: str | None = None,
    allow_missing: bool = False,
    allow_partial: bool = False,
    **selection,
) -> PruneResult | list[PruneResult]:
    """Imports Feldman & Zhang's ImageNet memorization estimates and selects by them.

    By default the **highest** memorization values are kept (`keep="high"`), as in Sorscher et al.'s use of the
    same estimates as a pruning metric (their released scores are "high = keep"): easy, typical examples are removed
    first. `keep="low"` removes the atypical and mislabeled first.

    Args:
        path (`str` or `os.PathLike`): the `.npz` file.
        source_dataset (`datasets.Dataset`): your ImageNet-1K train split, in any row order.
        prune_ratio (`float` or sequence of `float`): fraction(s) removed; a sequence returns one result each.
        column, label_column (`str`, *optional*): source columns of file names and labels.
        allow_missing (`bool`, *optional*, defaults to `False`): import although some files are not in the source.
        allow_partial (`bool`, *optional*, defaults to `False`): import although some source rows have no estimate
            (selected among the covered rows; the others are never kept).
        selection: `keep`, `class_balanced`, `selection` (`"rank"` or `"ccs"`), `hard_cutoff`, `num_strata`, `seed`:
            how the kept rows are chosen from the scores (see `hf_prune.importers.score_results`).

    Returns:
        `PruneResult` (a list for a sequence of ratios), `method="memorization"`, with every source row's estimate.

    Example:

    ```python
    >>> from hf_prune.importers import import_memorization
    >>> r10, r30 = import_memorization("imagenet_mem.npz", train, prune_ratio=[0.1, 0.3])
    ```
    """
    artefact = read_memorization_npz(path)
    resolution = resolve_artefact(artefact, source_dataset, column=column, label_column=label_column,
                                  allow_missing=allow_missing, allow_partial=allow_partial)  # fmt: skip
    return results_for(artefact, resolution, prune_ratio, **selection)
