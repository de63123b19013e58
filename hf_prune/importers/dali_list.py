"""The Dyn-Unc authors' published coresets: DALI file lists of the files kept (He et al. 2023).

He, Yang, Huang and Zhao published the 75 % coresets (25 % pruned) of ImageNet-1K and ImageNet-21K (Fall 2011) that
their paper evaluates, `IN1K_75_file_list.txt` and `IN21KFall_75_file_list.txt`, as NVIDIA DALI file lists: one
kept file per line, `/<class folder>/<file> <label>`, the label being the class's index among the training
directory's class folders in sorted order, the lines in the order of the full list they were cut from (class
folders sorted, files sorted). Their `get_coreset.py` keeps `int(n * 0.75)` files with the highest dynamic
uncertainty (Swin-T, J = 10).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..citations import DYN_UNC
from ..result import PruneResult
from .artefact import (
    KEPT,
    Artefact,
    ArtefactInfo,
    check_class_labels,
    first_failing,
    format_error,
    read_bytes,
    text_lines,
)
from .build import kept_result
from .resolve import resolve_artefact


FORMAT = "dali-list"
LINE = r"^/(?P<folder>[^/\s]+)/(?P<file>[^/\s]+) (?P<label>0|[1-9][0-9]{0,8})$"
EXPECTED = "'/<class folder>/<file> <label>' (a path of two parts starting with '/', one space, a label 0, 1, 2...)"

INFO = ArtefactInfo(
    format=FORMAT,
    title="Dynamic Uncertainty (Dyn-Unc): the authors' published coreset",
    paper="He, Yang, Huang, Zhao (2023), Large-scale Dataset Pruning with Dynamic Uncertainty",
    citation=DYN_UNC,
    url="https://huggingface.co/datasets/Isaachhe/Dataset-Pruning/tree/main/ImageNet",
    license="mit",
    license_link="https://github.com/BAAI-DCAI/Dataset-Pruning/blob/main/LICENSE",
    description=(
        "The coreset published by the authors of Dynamic Uncertainty (He et al. 2023): the files their method keeps, "
        "ranked by the mean over sliding windows of J epochs (J = 10 in the paper) of the standard deviation of the "
        "probability of the label during training; the most uncertain are kept, the easy and the hardest (often "
        "mislabeled) removed. They published the list of kept files only, no scores, so this list is that fixed set: "
        "it cannot be re-selected at another ratio."
    ),
    score_name="membership in the published list (1 = kept; the authors published no scores)",
)


def read_dali_list(path: str | os.PathLike) -> Artefact:
    """Parses a DALI file list (`/<class folder>/<file> <label>` per line) strictly.

    Every line must match that shape, and the labels must follow the class folders in sorted order (one label per
    folder): any other line is an `ArtefactFormatError` naming it and what was expected.

    Args:
        path (`str` or `os.PathLike`): the list, e.g. `IN1K_75_file_list.txt`.

    Returns:
        `Artefact` of kind `"kept"`: the files kept, their labels and class folders.
    """
    data, file, sha256 = read_bytes(path)
    lines = pa.array(text_lines(data, file), pa.string())
    bad = first_failing(pc.match_substring_regex(lines, LINE))
    if bad is not None:
        raise format_error(file, f"line {bad + 1}", EXPECTED, lines[bad].as_py())
    parts = pc.extract_regex(lines, LINE)
    folders = pc.struct_field(parts, "folder")
    paths = pc.binary_join_element_wise(folders, pc.struct_field(parts, "file"), "/")
    labels = pc.cast(pc.struct_field(parts, "label"), pa.int64()).to_numpy().astype(np.int64)
    artefact = Artefact(
        file=file, sha256=sha256, num_bytes=len(data), info=INFO, kind=KEPT, paths=paths,
        entries=np.arange(1, len(lines) + 1, dtype=np.int64), entry_word="line", labels=labels,
    )  # fmt: skip
    check_class_labels(folders, labels, artefact, "DALI labels index the sorted class folders")
    return artefact


def import_dyn_unc_list(
    path: str | os.PathLike,
    source_dataset,
    *,
    column: str | None = None,
    label_column: str | None = None,
    allow_missing: bool = False,
) -> PruneResult:
    """Imports the Dyn-Unc authors' published coreset (a DALI file list) as a `PruneResult` over `source_dataset`.

    The kept ids are the source rows of the listed files, found by file name (see `hf_prune.importers.resolve`);
    every other source row is removed. The labels are checked file by file against the source's.

    Args:
        path (`str` or `os.PathLike`): the list, e.g. `IN1K_75_file_list.txt`.
        source_dataset (`datasets.Dataset`): your copy of the split the list was made on (ImageNet-1K train for
            `IN1K_75_file_list.txt`), in any row order: an `imagefolder` of the train directory, `ILSVRC/imagenet-1k`
            from the Hub or local parquet, or any dataset with a file-name column.
        column (`str`, *optional*): the source column holding the file names (default: the `Image` column).
        label_column (`str`, *optional*): the source's label column (default: `label`).
        allow_missing (`bool`, *optional*, defaults to `False`): import although some listed files are not in the
            source (they are left out and counted in the provenance).

    Returns:
        `PruneResult` with `method="dyn_unc"`, the listed files kept, `prune_ratio` the fraction of the source
        removed (rounded to 4 decimals; the exact counts are in the card), `score` 1 for kept rows.

    Example:

    ```python
    >>> from datasets import load_dataset
    >>> from hf_prune.importers import import_dyn_unc_list, publish_options
    >>> train = load_dataset("imagefolder", data_dir="ILSVRC/Data/CLS-LOC/train", split="train")
    >>> result = import_dyn_unc_list("IN1K_75_file_list.txt", train)
    >>> result.push_to_hub("org/imagenet-1k-dyn-unc-75", **publish_options(result, train))
    ```
    """
    artefact = read_dali_list(path)
    resolution = resolve_artefact(artefact, source_dataset, column=column, label_column=label_column,
                                  allow_missing=allow_missing)  # fmt: skip
    return kept_result(artefact, resolution, method="dyn_unc", params={"window": 10})
