"""What an importer reads from a published artefact, and the strict-parsing errors it raises.

An `Artefact` is the parsed file: one entry per example (a line of a list, a row of a CSV, an element of an array),
with the example's file name where the artefact names files (`paths`; `None` for artefacts keyed by ImageFolder
position), its class label where it has one, its scores where it has them, and the file's identity (name, SHA-256,
size) and publisher (`ArtefactInfo`: paper, citation, where to get it, licence) for the card. Readers check every
field and raise `ArtefactFormatError` naming the file, the line (or field, or entry) and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


KEPT = "kept"
SCORES = "scores"
_SHOWN = 120  # characters of an offending line quoted in a message


class ArtefactFormatError(ValueError):
    """A published artefact does not match its format. The message names the file, where (line, field or entry)
    and what was expected there."""


def format_error(file: str, where: str, expected: str, got: str | None = None) -> ArtefactFormatError:
    """`ArtefactFormatError("<file>, <where>: expected <expected>; got <got>.")`, the quoted value shortened."""
    text = f"{file}, {where}: expected {expected}"
    if got is not None:
        got = got if len(got) <= _SHOWN else got[:_SHOWN] + "..."
        text += f"; got {got!r}"
    return ArtefactFormatError(text + ".")


@dataclass(frozen=True)
class ArtefactInfo:
    """Who published an artefact and under which terms: what an imported list's card says about it.

    Args:
        format (`str`): the importer's format name, e.g. `"dali-list"`.
        title (`str`): the method's name for people, as the card's title shows it.
        paper (`str`): the paper, for people (authors, year, title).
        citation (`str`): BibTeX of the paper(s) behind the artefact.
        url (`str`): where the artefact is published.
        license (`str`): Hub licence id of the imported list (`"mit"`, `"apache-2.0"`, `"other"`...).
        license_name (`str`, *optional*): for `license="other"`, the licence's name.
        license_link (`str`, *optional*): a link to the licence.
        description (`str`): a paragraph on what the artefact holds and which end is kept.
        score_name (`str`): what the list's `score` column holds.
    """

    format: str
    title: str
    paper: str
    citation: str
    url: str
    license: str
    license_name: str | None = None
    license_link: str | None = None
    description: str = ""
    score_name: str = "the published score"


def with_citation(info: ArtefactInfo, paper: str | None) -> ArtefactInfo:
    """`info` citing also `paper` (the BibTeX of the score's own paper), unless it already does."""
    if not paper or paper in info.citation:
        return info
    return dataclasses.replace(info, citation=f"{info.citation}\n\n{paper}")


@dataclass
class Artefact:
    """A parsed artefact: one entry per example.

    Args:
        file (`str`): the artefact's file name (its last path component, never a machine path).
        sha256 (`str`): SHA-256 of the file's bytes.
        num_bytes (`int`): its size.
        info (`ArtefactInfo`): publisher, citation, licence.
        kind (`str`): `"kept"` (the entries are the files kept) or `"scores"` (every example with its scores).
        paths (`pyarrow.Array` of strings, *optional*): each entry's file path as the artefact writes it; `None` when
            the artefact is keyed by position in the ImageFolder order.
        entries (`np.ndarray` of int64): each entry's line (or row, or index) number, for messages.
        entry_word (`str`): what `entries` count (`"line"`, `"entry"`, `"position"`).
        labels (`np.ndarray` of int64, *optional*): each entry's class label.
        scores (`dict[str, np.ndarray]`): named float64 scores per entry (empty for a kept list).
    """

    file: str
    sha256: str
    num_bytes: int
    info: ArtefactInfo
    kind: str
    paths: pa.Array | None
    entries: np.ndarray
    entry_word: str = "line"
    labels: np.ndarray | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.entries.size)

    def where(self, i: int) -> str:
        """`"line 12"` (or `"entry 12"`...) for entry `i`."""
        return f"{self.entry_word} {int(self.entries[i])}"

    def identity(self) -> dict:
        """The artefact's identity as recorded in a list's provenance."""
        return {"file": self.file, "sha256": self.sha256, "bytes": self.num_bytes, "entries": len(self),
                "url": self.info.url}  # fmt: skip


def read_bytes(path: str | os.PathLike) -> tuple[bytes, str, str]:
    """`(content, file name, sha256)` of the artefact at `path`, with an error that names it when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file. Download the artefact first (see docs/published_subsets.md).")
    data = path.read_bytes()
    return data, path.name, hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> tuple[str, int]:
    """SHA-256 and size of a (possibly large) file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def text_lines(data: bytes, file: str) -> list[str]:
    """The lines of a UTF-8 text artefact (a final newline and Windows line ends allowed; a UTF-8 byte-order mark
    dropped). Undecodable bytes are an error naming their line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise format_error(file, f"line {line}", "UTF-8 text", repr(data[err.start : err.start + 8])) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise format_error(file, "line 1", "at least one entry", "an empty file")
    return lines


def first_failing(mask: pa.Array) -> int | None:
    """Position of the first False (or null) in a boolean Arrow array, or None when all are True."""
    bad = pc.invert(pc.fill_null(mask, False))
    if not pc.any(bad).as_py():
        return None
    return int(pc.index(bad, True).as_py())


def check_finite(values: np.ndarray, file: str, what: str, describe) -> np.ndarray:
    """`values` as float64, or an error naming the first entry that is not a finite number (`describe(i)`: where)."""
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise format_error(file, describe(int(bad[0])), f"a finite number in {what} ({bad.size} are not)",
                           str(values[bad[0]]))  # fmt: skip
    return values


def check_class_labels(classes: pa.Array, labels: np.ndarray, artefact: Artefact, source: str) -> None:
    """Checks that an artefact's labels follow its class folders in sorted order (ImageFolder's and DALI's
    `class_to_idx`): one label per folder, one folder per label, and labels increasing with the folder names.

    Args:
        classes (`pyarrow.Array` of strings): each entry's class folder.
        labels (`np.ndarray`): each entry's label.
        artefact (`Artefact`): for the messages (file, line numbers).
        source (`str`): where the folders come from, for the messages (e.g. "the path's folder").
    """
    encoded = pc.dictionary_encode(classes)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = encoded.dictionary.to_pylist()
    pairs, first = np.unique(np.stack([labels, codes], axis=1), axis=0, return_index=True)
    for column, what, per in ((0, "class folder", "label"), (1, "label", "class folder")):
        values, counts = np.unique(pairs[:, column], return_counts=True)
        if (counts > 1).any():
            clash = np.flatnonzero(pairs[:, column] == values[counts > 1][0])[:2]
            (la, ca), (lb, cb) = pairs[clash[0]], pairs[clash[1]]
            raise format_error(
                artefact.file, artefact.where(int(first[clash[1]])),
                f"one {what} per {per}, as at {artefact.where(int(first[clash[0]]))} (class folder {names[ca]!r}, "
                f"label {la})",
                f"class folder {names[cb]!r} with label {lb}",
            )  # fmt: skip
    order = np.argsort(pairs[:, 0], kind="stable")
    folders = [names[c] for c in pairs[order, 1]]
    for k in range(1, len(folders)):
        if folders[k] <= folders[k - 1]:
            i = int(first[order[k]])
            raise format_error(
                artefact.file, artefact.where(i),
                f"labels in sorted class-folder order ({source}): label {int(pairs[order[k - 1], 0])} is "
                f"{folders[k - 1]!r}, so label {int(pairs[order[k], 0])} must sort after it",
                folders[k],
            )  # fmt: skip
