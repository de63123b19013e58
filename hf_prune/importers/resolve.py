"""Resolving a published artefact onto the user's copy of the dataset: which row of the source is each entry.

The join key is the **file name** (`n01440764_10026.JPEG`), read column-wise from the source in Arrow (an `Image`
column's `path`, never decoding an image, or any column of file names). File names are compared after two
normalisations that every ImageNet copy needs: the folders are dropped (`/train/n01440764/n01440764_10026.JPEG` and
`n01440764_10026.JPEG` are one file), and the Hub's `ILSVRC/imagenet-1k` naming, which appends the synset to the
original name (`n01440764_10026_n01440764.JPEG`), is mapped back to the original name. Artefacts keyed by position
use the **ImageFolder order** of the source instead: class folders sorted, then file names sorted (torchvision's
`ImageFolder` and the DALI file lists of the Dyn-Unc code enumerate files that way), so a source in any row order
resolves.

Nothing is dropped silently: files of the artefact that the source lacks (`missing`) and source rows that a score
artefact does not cover (`uncovered`) are errors unless the caller opts in, and the `Resolution` keeps both exact
lists. Labels are checked file by file (`check_labels`): a list whose class for a file disagrees with the source's
is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .artefact import KEPT, Artefact, ArtefactFormatError, check_class_labels, first_failing


logger = logging.getLogger(__name__)

SYNSET = r"n[0-9]{8}"
FILE_NAME_COLUMNS = ("file_name", "filename", "file", "path", "image_path", "image_file", "file_path", "name")
LABEL_COLUMNS = ("label", "labels")
EXAMPLES = 20  # examples of missing files / uncovered rows kept in a list's provenance and shown in messages


class ResolutionError(ValueError):
    """The artefact does not resolve onto the source without dropping something: files it names are missing from the
    source, or source rows are not covered. `missing` holds `(entry, file)` for every missing file, `uncovered`
    `(row, file)` for every uncovered row."""

    def __init__(self, message: str, missing: list | None = None, uncovered: list | None = None):
        super().__init__(message)
        self.missing = missing or []
        self.uncovered = uncovered or []


class LabelMismatchError(ValueError):
    """The artefact's class for a file disagrees with the source's class for the same file."""


@dataclass
class FileKeys:
    """What file paths say, element-wise (Arrow string arrays, null where a path does not say it).

    Attributes:
        names (`pyarrow.Array`): the base name as written (the content key stored with a list).
        keys (`pyarrow.Array`): the base name normalised for matching (the Hub's `<name>_<synset>.JPEG` mapped back to
            ImageNet's `<name>.JPEG`).
        folders (`pyarrow.Array`): the parent folder, where the path has one.
        synsets (`pyarrow.Array`): the ImageNet synset: the parent folder if it is one, else the one the file name
            starts with.
    """

    names: pa.Array
    keys: pa.Array
    folders: pa.Array
    synsets: pa.Array


def file_keys(paths: pa.Array) -> FileKeys:
    """Base names, matching keys, parent folders and synsets of `paths`, column-wise (see `FileKeys`). Passes that
    cannot apply (no folder in any path, no Hub-style name) are skipped: 1.28 M paths take about a second."""
    nulls = pa.nulls(len(paths), pa.string())
    if pc.any(pc.match_substring(paths, "\\")).as_py():
        paths = pc.replace_substring(paths, "\\", "/")
    has_folders = pc.any(pc.match_substring(paths, "/")).as_py()
    names, folders = paths, nulls
    if has_folders:  # "//" + path, split twice from the right: [rest, parent folder or "", base name]
        parts = pc.split_pattern(pc.binary_join_element_wise("//", paths, ""), "/", max_splits=2, reverse=True)
        names, folders = pc.list_element(parts, 2), pc.list_element(parts, 1)
        folders = pc.if_else(pc.equal(folders, ""), nulls, folders)
    keys = names
    hub = pc.match_substring_regex(names, rf"^{SYNSET}_.+_{SYNSET}\.[A-Za-z0-9]+$")
    if pc.any(hub).as_py():  # the Hub's `<synset>_<n>_<synset>.<ext>`: "_" + name, split at the last "_"
        parts = pc.split_pattern(pc.binary_join_element_wise("_", names, ""), "_", max_splits=1, reverse=True)
        stem, tail = pc.utf8_slice_codeunits(pc.list_element(parts, 0), 1), pc.list_element(parts, 1)
        same = pc.and_(hub, pc.equal(pc.utf8_slice_codeunits(tail, 0, 9), pc.utf8_slice_codeunits(names, 0, 9)))
        original = pc.binary_join_element_wise(stem, pc.utf8_slice_codeunits(tail, 9), "")
        keys = pc.if_else(same, original, names)
    synsets = pc.struct_field(pc.extract_regex(keys, rf"^(?P<s>{SYNSET})_"), "s")
    if has_folders:
        is_synset = pc.fill_null(pc.match_substring_regex(folders, f"^{SYNSET}$"), False)
        synsets = pc.coalesce(pc.if_else(is_synset, folders, nulls), synsets)
    return FileKeys(names=names, keys=keys, folders=folders, synsets=synsets)


@dataclass
class SourceFiles:
    """The source split's file names and labels, read column-wise.

    Attributes:
        column (`str`): the column the file names were read from (the list's content key).
        files (`FileKeys`): per row.
        labels (`np.ndarray` of int64, *optional*): per row (-1 where null).
        label_column (`str`, *optional*): the column they were read from.
        label_names (`list[str]`, *optional*): the label column's `ClassLabel` names.
        num_rows (`int`): rows of the split.
    """

    column: str
    files: FileKeys
    labels: np.ndarray | None
    label_column: str | None
    label_names: list[str] | None
    num_rows: int

    def describe(self, row: int) -> str:
        return f"row {row} ({self.files.names[row].as_py()!r})"

    def classes(self) -> pa.Array | None:
        """Every row's class for the ImageFolder order: its synset, or its class folder where the rows are not
        ImageNet files; None when some row has neither."""
        for classes in (self.files.synsets, self.files.folders):
            if classes.null_count == 0:
                return classes
        return None


def _file_column(dataset, column: str | None) -> str:
    names = list(dataset.column_names)
    if column is not None:
        if column not in names:
            raise ValueError(f"The source dataset has no column {column!r}; its columns are {names}.")
        return column
    images = [c for c in names if type(dataset.features[c]).__name__ == "Image"]
    for candidate in (["image"] if "image" in images else []) + images + list(FILE_NAME_COLUMNS):
        if candidate in names:
            return candidate
    raise ValueError(
        f"Cannot tell which column of the source holds the file names (columns: {names}): no `Image` column and none "
        f"of {list(FILE_NAME_COLUMNS)}. Pass `column=` (--column) naming it."
    )


def _column(dataset, name: str, field: str | None = None) -> pa.Array:
    """Column `name` (its struct field `field`) of every row of `dataset`, in the dataset's row order, straight from
    its Arrow table. A view (`select`, `shuffle`) is applied *after* narrowing to the field, so reading the paths of
    a shuffled ImageNet never copies its image bytes."""
    values = dataset.data.table.column(name)
    if field is not None and pa.types.is_struct(values.type):
        values = pc.struct_field(values, field)
    indices = getattr(dataset, "_indices", None)  # the view's row mapping (datasets keeps it beside the table)
    if indices is not None:
        values = values.take(indices.column(0))
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def read_source_files(dataset, column: str | None = None, label_column: str | None = None) -> SourceFiles:
    """Reads the file names (and labels) of every row of `dataset`, column-wise in Arrow, decoding no image.

    Args:
        dataset (`datasets.Dataset`): the source split (an `imagefolder`, `ILSVRC/imagenet-1k` from the Hub or local
            parquet, or any dataset with a file-name column). A view (`select`, `shuffle`) is read in its own order.
        column (`str`, *optional*): the column holding the file names; by default the `Image` column (its `path`),
            else one named like a file name (`file_name`, `path`...).
        label_column (`str`, *optional*): the label column; by default `label` where there is one.

    Raises:
        `ValueError`: no file-name column, or rows without a file name (e.g. images stored as bytes only).
    """
    if not hasattr(dataset, "data") or not hasattr(dataset, "features"):
        raise TypeError(
            f"The source must be a `datasets.Dataset` (not streamed); got {type(dataset).__name__}. Load it without "
            "`streaming=True`."
        )
    column = _file_column(dataset, column)
    is_file = type(dataset.features[column]).__name__ in ("Image", "Audio", "Video")
    values = _column(dataset, column, "path" if is_file else None)
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    empty = first_failing(pc.fill_null(pc.not_equal(values, ""), False))
    if empty is not None:
        count = values.null_count + (pc.sum(pc.equal(values, "")).as_py() or 0)
        hint = " (the images are stored as bytes only, with no `path`)" if is_file else ""
        raise ValueError(
            f"{count} rows of the source have no file name in column {column!r}{hint}, e.g. row {empty}. Pass "
            "`column=` (--column) naming a column that holds every row's file name."
        )
    names = list(dataset.column_names)
    if label_column is None:
        label_column = next((c for c in LABEL_COLUMNS if c in names), None)
    elif label_column not in names:
        raise ValueError(f"The source dataset has no label column {label_column!r}; its columns are {names}.")
    labels = label_names = None
    if label_column is not None:
        raw = _column(dataset, label_column)
        if not pa.types.is_integer(raw.type):
            raise ValueError(f"The source's label column {label_column!r} is {raw.type}, not integer class ids.")
        labels = pc.fill_null(raw, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        label_names = list(getattr(dataset.features[label_column], "names", None) or []) or None
    return SourceFiles(column=column, files=file_keys(values), labels=labels, label_column=label_column,
                       label_names=label_names, num_rows=len(values))  # fmt: skip


def imagefolder_order(source: SourceFiles) -> np.ndarray:
    """Rows of `source` in ImageFolder order: by class (the synset, or the class folder for non-ImageNet folders),
    then by file name (ImageNet's original names, e.g. `n01440764_10026.JPEG`), both sorted by code point, as
    torchvision's `ImageFolder` and the Dyn-Unc `file_list.txt` enumerate a training directory.

    Returns:
        `np.ndarray` of int64: `order[p]` is the source row at ImageFolder position `p`.
    """
    classes = source.classes()
    if classes is None:
        row = int(pc.index(pc.is_null(source.files.synsets), True).as_py())
        raise ValueError(
            f"Cannot put the source in ImageFolder order: {source.describe(row)} has no class folder in its path and "
            "no ImageNet synset in its name. Load the source so that its file names carry their class folder (e.g. "
            "`load_dataset('imagefolder', data_dir=...)`)."
        )
    table = pa.table({"c": classes, "k": source.files.keys})
    return pc.sort_indices(table, sort_keys=[("c", "ascending"), ("k", "ascending")]).to_numpy().astype(np.int64)


@dataclass
class Resolution:
    """Where each entry of an artefact is in the source.

    Attributes:
        source (`SourceFiles`): the source's files and labels.
        rows (`np.ndarray` of int64): per artefact entry, its source row (-1 where missing).
        missing (`np.ndarray` of int64): the artefact entries whose file is not in the source.
        uncovered (`np.ndarray` of int64): the source rows no entry names (for a kept list: the rows removed).
        by (`str`): `"file name"` or `"ImageFolder position"`.
        artefact_files (`FileKeys`, *optional*): what the artefact's paths say (None when keyed by position).
        labels (`dict`): what the label check compared and found.
    """

    source: SourceFiles
    rows: np.ndarray
    missing: np.ndarray
    uncovered: np.ndarray
    by: str
    artefact_files: FileKeys | None = None
    labels: dict = field(default_factory=dict)

    @property
    def matched(self) -> np.ndarray:
        """The artefact entries found in the source."""
        return np.flatnonzero(self.rows >= 0)

    def missing_files(self, artefact: Artefact, limit: int | None = None) -> list[tuple[int, str]]:
        """`(line, path as written)` of every missing entry (the first `limit`)."""
        chosen = self.missing if limit is None else self.missing[:limit]
        if artefact.paths is None:  # keyed by position: nothing can be missing
            return []
        paths = artefact.paths.take(pa.array(chosen, pa.int64())).to_pylist()
        return list(zip(artefact.entries[chosen].tolist(), paths))

    def uncovered_rows(self, limit: int | None = None) -> list[tuple[int, str]]:
        """`(row, file name)` of every uncovered source row (the first `limit`)."""
        chosen = self.uncovered if limit is None else self.uncovered[:limit]
        return list(zip(chosen.tolist(), self.source.files.names.take(pa.array(chosen, pa.int64())).to_pylist()))

    def to_dict(self, artefact: Artefact) -> dict:
        """The resolution as a list's provenance records it: counts, a few examples, the label check."""
        return {
            "by": self.by,
            "source_column": self.source.column,
            "source_rows": self.source.num_rows,
            "entries": len(artefact),
            "matched": int(self.matched.size),
            "missing": int(self.missing.size),
            "missing_examples": self.missing_files(artefact, EXAMPLES),
            "uncovered": int(self.uncovered.size),
            "uncovered_examples": [] if artefact.kind == KEPT else self.uncovered_rows(EXAMPLES),
            "labels": self.labels,
        }

    def report(self, artefact: Artefact) -> dict:
        """Every missing file and uncovered row, exactly (for `hf-prune import --report`)."""
        return {**self.to_dict(artefact), "missing_examples": None, "uncovered_examples": None,
                "missing_files": self.missing_files(artefact), "uncovered_rows": self.uncovered_rows()}  # fmt: skip

    def summary(self, artefact: Artefact) -> str:
        """One paragraph for people."""
        what = "kept files" if artefact.kind == KEPT else "entries"
        text = (f"{artefact.file}: {self.matched.size:,} of {len(artefact):,} {what} found in the source's "
                f"{self.source.num_rows:,} rows by {self.by}")  # fmt: skip
        if self.missing.size:
            text += f"; {self.missing.size:,} missing from the source"
        if artefact.kind == KEPT:
            text += f"; {self.source.num_rows - self.matched.size:,} rows not in the list (removed)"
        elif self.uncovered.size:
            text += f"; {self.uncovered.size:,} source rows not covered (never kept)"
        return text + f". Labels: {self.labels.get('result', 'not checked')}."


def _path_of(artefact: Artefact, i: int) -> str:
    if artefact.paths is not None:
        return artefact.paths[i].as_py()
    return f"position {int(artefact.entries[i])}"


def _examples(items: list[tuple[int, str]], word: str) -> str:
    shown = ", ".join(f"{name!r} ({word} {n})" for n, name in items[:5])
    return shown + (", ..." if len(items) > 5 else "")


def resolve_artefact(
    artefact: Artefact,
    source,
    *,
    column: str | None = None,
    label_column: str | None = None,
    allow_missing: bool = False,
    allow_partial: bool = False,
) -> Resolution:
    """Finds every entry of `artefact` in the source split and checks the labels.

    Entries with file names are matched by normalised file name; artefacts keyed by position go through the source's
    ImageFolder order (`imagefolder_order`), which must then have exactly as many rows as the artefact.

    Args:
        artefact (`Artefact`): a parsed artefact.
        source (`datasets.Dataset` or `SourceFiles`): the source split, or its files read by `read_source_files`.
        column, label_column (`str`, *optional*): see `read_source_files`.
        allow_missing (`bool`, *optional*, defaults to `False`): import although some files of the artefact are not in
            the source (they are left out; the provenance records how many and which).
        allow_partial (`bool`, *optional*, defaults to `False`): for score artefacts, import although some source
            rows have no score (the list is then made on the covered rows only, and never keeps the others).

    Raises:
        `ResolutionError`: files missing or rows uncovered without the matching opt-in; `ArtefactFormatError`: the
        artefact names one file twice; `LabelMismatchError`: see `check_labels`.
    """
    if not isinstance(source, SourceFiles):
        source = read_source_files(source, column=column, label_column=label_column)
    if artefact.paths is None:
        resolution = _by_position(artefact, source)
    else:
        resolution = _by_name(artefact, source)
    where = f"{artefact.file} on the source (column {source.column!r})"
    if resolution.missing.size and not allow_missing:
        missing = resolution.missing_files(artefact)
        raise ResolutionError(
            f"{where}: {len(missing):,} of the artefact's {len(artefact):,} files are not in the source's "
            f"{source.num_rows:,} rows (matched by file name), e.g. {_examples(missing, artefact.entry_word)}. Is the "
            "source the split the artefact was made on (ImageNet-1K train for the ImageNet-1K artefacts)? Pass "
            "`allow_missing=True` (--allow-missing) to import the other files; the provenance then records which "
            "are missing.",
            missing=missing,
        )
    if artefact.kind != KEPT and resolution.uncovered.size and not allow_partial:
        uncovered = resolution.uncovered_rows()
        raise ResolutionError(
            f"{where}: {len(uncovered):,} of the source's {source.num_rows:,} rows have no entry in the artefact, "
            f"e.g. {_examples(uncovered, 'row')}. Pass `allow_partial=True` (--allow-partial) to import a list made "
            "on the covered rows only (the others are never kept, and the card says so).",
            uncovered=uncovered,
        )
    if not resolution.matched.size:
        raise ResolutionError(f"{where}: no file of the artefact is in the source; nothing to import.")
    resolution.labels = check_labels(artefact, resolution)
    logger.info(resolution.summary(artefact))
    return resolution


def _by_name(artefact: Artefact, source: SourceFiles) -> Resolution:
    files = file_keys(artefact.paths)
    n = source.num_rows
    # One hash pass over the source's keys then the artefact's: codes follow first appearance, so the source's
    # rows are unique exactly when they get codes 0 ... n-1, and an artefact entry's code is then its source row.
    codes = pc.dictionary_encode(pa.concat_arrays([source.files.keys, files.keys])).indices
    codes = codes.to_numpy(zero_copy_only=False).astype(np.int64)
    source_codes, entry_codes = codes[:n], codes[n:]
    if not np.array_equal(source_codes, np.arange(n)):
        a, b, count = _repeat(source_codes)
        raise ValueError(
            f"The source holds {count:,} file names more than once, e.g. {source.files.keys[a].as_py()!r} at "
            f"{source.describe(a)} and {source.describe(b)}: matching by file name needs one row per file."
        )
    if entry_codes.size and np.bincount(entry_codes).max() > 1:
        a, b, count = _repeat(entry_codes)
        raise ArtefactFormatError(
            f"{artefact.file}, {artefact.where(b)}: expected each file once; got {files.keys[b].as_py()!r} again "
            f"({artefact.where(a)}; {count:,} file names repeat)."
        )
    rows = np.where(entry_codes < n, entry_codes, -1)
    covered = np.zeros(n, dtype=bool)
    covered[rows[rows >= 0]] = True
    return Resolution(source=source, rows=rows, missing=np.flatnonzero(rows < 0), uncovered=np.flatnonzero(~covered),
                      by="file name", artefact_files=files)  # fmt: skip


def _repeat(codes: np.ndarray) -> tuple[int, int, int]:
    """`(first, second position, number of repeated values)` of a repeated code."""
    counts = np.bincount(codes)
    value = int(np.flatnonzero(counts > 1)[0])
    a, b = np.flatnonzero(codes == value)[:2]
    return int(a), int(b), int((counts > 1).sum())


def _by_position(artefact: Artefact, source: SourceFiles) -> Resolution:
    if len(artefact) != source.num_rows:
        raise ResolutionError(
            f"{artefact.file} is keyed by ImageFolder position and has {len(artefact):,} entries, but the source has "
            f"{source.num_rows:,} rows: positions can only be resolved on the exact file set the artefact was made on "
            "(ImageNet-1K train: 1,281,167 files)."
        )
    order = imagefolder_order(source)
    empty = np.zeros(0, dtype=np.int64)
    return Resolution(source=source, rows=order, missing=empty, uncovered=empty, by="ImageFolder position")


def _is_synset_list(names) -> bool:
    return bool(names) and all(isinstance(n, str) and len(n) == 9 and n[0] == "n" and n[1:].isdigit() for n in names)


def check_labels(artefact: Artefact, resolution: Resolution) -> dict:
    """Checks, file by file, that the artefact and the source put each matched file in the same class.

    * **Class folders**: where both name a file's synset (the artefact's path; the source's path or file name), they
      must agree.
    * **Artefact labels**: they are ImageNet class ids in sorted-synset order (the DALI lists, ImageFolder's
      `class_to_idx`). Label `k` stands for a class: the synset its files' folders show (one-to-one and sorted,
      checked when the artefact is read) or, for an artefact keyed by ImageFolder position, the `k`-th class of the
      source in sorted order. That class must be the file's class in the source (for a positional artefact: its
      targets must match the ImageFolder order).
    * **Against the source's labels**: the source's label `j` stands for `ClassLabel.names[j]` when those names are
      synsets (an `imagefolder` of ImageNet), and must be the class label `k` stands for; otherwise (the Hub's
      `ILSVRC/imagenet-1k`, whose names are descriptions but whose ids follow the same sorted-synset order) the ids
      must be equal.

    Returns:
        `dict` with what was compared (`"compared"`), on how many files (`"files"`) and the outcome (`"result"`).

    Raises:
        `LabelMismatchError` naming the first disagreeing files, both labels and what they stand for.
    """
    source = resolution.source
    matched = resolution.matched
    rows = resolution.rows[matched]
    check = _Comparison(artefact, source, matched, rows)
    positional = resolution.artefact_files is None
    s_classes = source.classes() if positional else source.files.synsets
    s_classes = s_classes.take(pa.array(rows)) if s_classes is not None else pa.nulls(rows.size, pa.string())
    if not positional:
        a_synsets = resolution.artefact_files.synsets.take(pa.array(matched))
        check.refuse_where(
            pc.not_equal(a_synsets, s_classes), "synset of each file",
            lambda i: f"its class folder is {a_synsets[i].as_py()!r} in the artefact but {s_classes[i].as_py()!r} "
            "in the source",
        )  # fmt: skip
    if artefact.labels is not None:
        files = resolution.artefact_files
        if files is not None and files.folders.null_count == len(files.folders) and files.synsets.null_count == 0:
            # classes known from the file names only (no class folders): the labels must be sorted-synset ids
            check_class_labels(files.synsets, artefact.labels, artefact, "the synsets the file names start with")
        a_labels = artefact.labels[matched]
        meaning = _label_meaning(resolution, a_labels)
        stands = meaning.take(pa.array(a_labels)) if meaning is not None else None
        if stands is not None:
            check.refuse_where(
                pc.not_equal(stands, s_classes), "class each artefact label stands for vs the file's class",
                lambda i: f"label {int(a_labels[i])} in the artefact stands for {stands[i].as_py()!r} (sorted "
                f"class order) but the file is in {s_classes[i].as_py()!r} in the source",
            )  # fmt: skip
        if source.labels is not None:
            s_labels = source.labels[rows]
            names = source.label_names
            if _is_synset_list(names) and stands is not None:
                named = pa.array(names, pa.string()).take(pa.array(np.maximum(s_labels, 0)))
                differ, what = pc.or_(pc.not_equal(stands, named), pa.array(s_labels < 0)), "source ClassLabel names"
            else:
                differ, what = pa.array(a_labels != s_labels), "label ids, both in sorted-synset order"
            check.refuse_where(
                differ, f"artefact labels vs source labels ({what})",
                lambda i: f"label {int(a_labels[i])} in the artefact"
                + (f" ({stands[i].as_py()!r})" if stands is not None and stands[i].is_valid else "")
                + f" but label {int(s_labels[i])} in the source"
                + (f" ({names[s_labels[i]]!r})" if names and 0 <= s_labels[i] < len(names) else ""),
            )  # fmt: skip
    compared = check.compared
    result = (f"agree on all {matched.size:,} files ({'; '.join(compared)})" if compared
              else "not checked (neither side has labels or class folders to compare)")  # fmt: skip
    return {"files": int(matched.size), "compared": compared, "result": result}


def _label_meaning(resolution: Resolution, a_labels: np.ndarray) -> pa.Array | None:
    """`meaning[k]`: the class artefact label `k` stands for (null where unknown); None when nothing is known."""
    size = int(a_labels.max()) + 1 if a_labels.size else 0
    if resolution.artefact_files is not None:
        synsets = resolution.artefact_files.synsets.take(pa.array(resolution.matched))
        known = pc.is_valid(synsets).to_numpy(zero_copy_only=False)
        if not known.any():
            return None
        # one file per label is enough: the labels were checked one-to-one with the classes when read
        labels, first = np.unique(np.where(known, a_labels, -1), return_index=True)
        keep = labels >= 0
        meaning = np.full(size, None, dtype=object)
        meaning[labels[keep]] = np.asarray(synsets.take(pa.array(first[keep])).to_pylist(), dtype=object)
        return pa.array(meaning, pa.string())
    # keyed by ImageFolder position: label k is the k-th class of the source in sorted order (`class_to_idx`)
    classes = resolution.source.classes()
    if classes is None:
        return None
    ordered = pc.unique(classes).sort().to_pylist()
    return pa.array(ordered[:size] + [None] * max(0, size - len(ordered)), pa.string())


class _Comparison:
    """Collects what `check_labels` compared and refuses at the first comparison that finds a disagreement."""

    def __init__(self, artefact: Artefact, source: SourceFiles, matched: np.ndarray, rows: np.ndarray):
        self.artefact, self.source, self.matched, self.rows = artefact, source, matched, rows
        self.compared: list[str] = []

    def refuse_where(self, differ: pa.Array, what: str, explain) -> None:
        """Refuses where `differ` is true; null (a side that does not know) is no disagreement."""
        known = pc.is_valid(differ).to_numpy(zero_copy_only=False)
        if not known.any():
            return
        self.compared.append(what)
        mask = pc.fill_null(differ, False).to_numpy(zero_copy_only=False).astype(bool)
        if mask.any():
            _refuse(np.flatnonzero(mask), self.matched, self.rows, self.artefact, self.source, explain)


def _refuse(bad: np.ndarray, matched: np.ndarray, rows: np.ndarray, artefact: Artefact, source: SourceFiles,
            explain) -> None:  # fmt: skip
    shown = "; ".join(
        f"{_path_of(artefact, int(matched[i]))} ({artefact.where(int(matched[i]))}, source "
        f"{source.describe(int(rows[i]))}): {explain(int(i))}"
        for i in bad[:3]
    )
    raise LabelMismatchError(
        f"{artefact.file}: the artefact and the source disagree on the class of {bad.size:,} of {matched.size:,} "
        f"files, e.g. {shown}. The artefact was made on another labelling or file set than this source; the list "
        "is refused rather than import rows under the wrong class."
    )
