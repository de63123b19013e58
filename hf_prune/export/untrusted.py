"""Checks and escaping for input that hf_prune did not just write itself: a list, a card or a folder from anyone.

Everything that enters from a card (a repo id, a revision, a config or split name, a `data_files` pattern, a count)
goes through one of the `check_*` functions before it is used, and every path a card produces is resolved with
`files_matching` / `file_inside`, which refuse anything that leaves the folder (or, for a snapshot of
`huggingface_hub`'s cache, the repo's own `blobs/`). What is rendered into a card or a code snippet goes through
`py_str` (a Python string literal), `md_code` (an inline code span) or `md_text` (plain text in Markdown). Every
error names the field and the file, and says how to fix it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any


logger = logging.getLogger(__name__)

# Upper bound of `num_rows` (rows of a source split) accepted from a card: above every split on the Hub
# (LAION-5B has 5.85e9 rows), far below what int64 ids allow. Checked before anything is allocated.
MAX_NUM_ROWS = 10**10
MAX_CARD_BYTES = 4 * 2**20  # a dataset card (README.md); hf_prune's are a few KB
MAX_JSON_BYTES = 64 * 2**20  # pruning_provenance.json

# `datasets`' split names (`^\w+(\.\w+)*$`, ASCII), with its slicing syntax (`train[:80%]`, `train+test`)
_SPLIT_PART = r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(\[[0-9:%\-]*\](\([a-z0-9_]+\))?)?"
_SPLIT_NAME = re.compile(rf"{_SPLIT_PART}(\+{_SPLIT_PART})*")
_METHOD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,254}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[A-Za-z0-9_:.\-]{1,128}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# `datasets` refuses these in a config name (they cannot name a cache folder on Windows)
_DATASETS_INVALID_CONFIG_CHARS = set(r"<>:/\|?*")


def _fail(where: str, field: str, problem: str, fix: str) -> ValueError:
    return ValueError(f"{where}: `{field}` {problem}. {fix}")


def check_repo_id(value: Any, field: str, where: str) -> str:
    """`value` if it is a Hub repo id (`huggingface_hub.utils.validate_repo_id`'s grammar, ASCII only), else a
    `ValueError` naming `field`."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(value, str) or not value.isascii():
        raise _fail(
            where, field, f"is not a Hub repo id ({value!r})", "Use 'namespace/name' (letters, digits, - _ .)."
        )
    try:
        validate_repo_id(value)
    except HFValidationError as err:
        raise _fail(
            where, field, f"is not a Hub repo id ({err})", "Use 'namespace/name' (letters, digits, - _ .)."
        ) from None
    return value


def is_repo_id(value: Any) -> bool:
    """Whether `value` is a Hub repo id (see `check_repo_id`)."""
    try:
        check_repo_id(value, "", "")
    except ValueError:
        return False
    return True


def repo_id_or_none(value: Any, what: str) -> str | None:
    """`value` if it is `None` or a Hub repo id; otherwise `None`, with a warning naming `what` (for ids read from a
    list's provenance that a card would render: left out, never rendered)."""
    if value is None or is_repo_id(value):
        return value
    logger.warning(f"{what} is not a Hub repo id ({str(value)[:80]!r}); it is left out of the card.")
    return None


def check_revision(value: Any, field: str, where: str) -> str:
    """A git revision (branch, tag, commit sha, `refs/pr/N`): letters, digits, `_ . - /`, no `..`, `//` or trailing
    `/` / `.lock` (git's own rules for ref names, in their ASCII subset)."""
    if (
        not isinstance(value, str)
        or not _REVISION.fullmatch(value)
        or ".." in value
        or "//" in value
        or value.endswith(("/", ".lock", "."))
    ):
        raise _fail(where, field, f"is not a git revision ({value!r})", "Use a branch, a tag or a commit sha.")
    return value


def check_config_name(value: Any, field: str, where: str) -> str:
    """A config name by `datasets`' rule (none of `<>:/\\|?*`, which it refuses) that is also safe as a folder name:
    one line, 1 to 128 characters, not starting with `.` or a space, no `..`."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 128
        or _DATASETS_INVALID_CONFIG_CHARS & set(value)
        or _CONTROL.search(value)
        or value.startswith((".", " "))
        or value.endswith(" ")
        or ".." in value
    ):
        raise _fail(
            where, field, f"is not a valid config name ({value!r:.80})",
            "Config names hold none of <>:/\\|?* and no '..' (e.g. 'prune_25').",
        )  # fmt: skip
    return value


def _grammar(pattern: re.Pattern, what: str, fix: str, doc: str):
    """A `check_*` function: `value` if it is a string that `pattern` matches whole, else a `ValueError` naming the
    field, saying what it is not and how to fix it."""

    def check(value: Any, field: str, where: str) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise _fail(where, field, f"is not {what} ({value!r:.80})", fix)
        return value

    check.__doc__ = doc
    return check


check_split = _grammar(
    _SPLIT_NAME, "a split name", "Use a split such as 'train'.",
    "A split name by `datasets`' rule (`^\\w+(\\.\\w+)*$`, ASCII), with its slicing syntax (`train[:80%]`).",
)  # fmt: skip
check_method_name = _grammar(
    _METHOD_NAME, "a method name", "Use a strategy name such as 'dyn_unc'.",
    "A strategy name: letters, digits, `_ . -`, at most 64.",
)  # fmt: skip
check_sha256 = _grammar(
    _SHA256, "a SHA-256 hex digest", "It is 64 lower-case hex digits.", "64 lower-case hex digits."
)
check_fingerprint = _grammar(
    _FINGERPRINT, "a fingerprint", "Remove it or write the one hf_prune computed.",
    "A `datasets` fingerprint or an hf_prune row fingerprint: letters, digits, `_ : . -`, at most 128.",
)  # fmt: skip
check_commit = _grammar(_COMMIT, "a commit sha", "Use the 40-hex id of a commit.", "A full 40-hex commit sha.")


def check_name(value: Any, field: str, where: str, max_len: int = 255) -> str:
    """A one-line name (a column, a local folder's last component): a non-empty string without control characters,
    `/` or `\\`, at most `max_len` long."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > max_len
        or _CONTROL.search(value)
        or "/" in value
        or "\\" in value
    ):
        raise _fail(where, field, f"is not a one-line name ({value!r:.80})", "Use a plain name, no path.")
    return value


def check_count(value: Any, field: str, where: str, upper: int = MAX_NUM_ROWS) -> int:
    """An integer in `[0, upper]` (a YAML int, not a bool or a float such as `1e12` or `3.0`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, field, f"must be an integer; got {value!r:.40}", "Write the count as a plain integer.")
    if not 0 <= value <= upper:
        raise _fail(where, field, f"is {value:,}, outside [0, {upper:,}]", "The card is corrupt or was edited.")
    return value


def check_ratio(value: Any, field: str, where: str) -> float:
    """A prune ratio: a number in `[0, 1)` (the fraction removed)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value < 1
    ):
        raise _fail(where, field, f"must be a fraction in [0, 1); got {value!r:.40}", "The card is corrupt or edited.")
    return float(value)


# ---------------------------------------------------------------------------------------------------- paths


def allowed_roots(folder: str | os.PathLike) -> list[Path]:
    """The folders that reads through `folder` may reach: the folder itself (resolved) and, for a snapshot of
    `huggingface_hub`'s cache (`<cache>/datasets--org--name/snapshots/<commit>/`, whose files are links to
    `../../blobs/<hash>`), that repo's own `blobs/` folder, if it is a real folder and not a link."""
    real = Path(folder).resolve()
    roots = [real]
    repo = real.parent.parent
    if real.parent.name == "snapshots" and _COMMIT.fullmatch(real.name) and repo.name.startswith("datasets--"):
        blobs = repo / "blobs"
        if blobs.is_dir() and not blobs.is_symlink():
            roots.append(blobs)
    return roots


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def check_relative_path(value: Any, field: str, where: str) -> str:
    """A path (or glob pattern) relative to a folder, with `/` separators: refuses absolute paths, `~`, drive
    letters, URLs (`hf://`, `https://`...), `..` components, backslashes and control characters."""
    if not isinstance(value, str) or not value:
        raise _fail(
            where, field, f"must be a relative path; got {value!r:.80}", "Write a path such as 'data/x/*.parquet'."
        )
    problem = None
    if _URL.match(value) or value.startswith("hf:"):
        problem = "is a URL"
    elif value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", value):
        problem = "is an absolute path"
    elif "\\" in value or _CONTROL.search(value):
        problem = "holds a backslash or a control character"
    elif any(part == ".." for part in value.split("/")):
        problem = "climbs out of the folder with '..'"
    if problem:
        raise _fail(
            where, field, f"{problem} ({value!r:.120})",
            "Only paths inside the repo or folder are read; write it relative to the folder, e.g. 'data/x/*.parquet'.",
        )  # fmt: skip
    return value


def file_inside(folder: Path, path: Path, field: str, where: str, roots: Sequence[Path] | None = None) -> Path:
    """The real path of `path` (a file in `folder`, maybe a link) after checking that it resolves to a regular file
    inside `roots` (default: `allowed_roots(folder)`); a link that leaves the folder is refused, not followed."""
    roots = allowed_roots(folder) if roots is None else roots
    real = path.resolve()
    if not _inside(real, roots):
        rel = path.relative_to(folder) if path.is_relative_to(folder) else path
        kind = "a symbolic link" if path.is_symlink() or real != path.absolute() else "a path"
        raise _fail(
            where, field, f"names {rel}, {kind} that leaves the folder",
            "Only files inside the repo or folder are read; replace the link by the file itself.",
        )  # fmt: skip
    try:
        mode = real.stat().st_mode
    except FileNotFoundError:
        raise _fail(where, field, f"names {path.name}, which does not exist", "Restore the file.") from None
    if not stat.S_ISREG(mode):
        raise _fail(where, field, f"names {path.name}, which is not a regular file", "Only regular files are read.")
    return real


def files_matching(
    folder: Path, pattern: str, field: str, where: str, roots: Sequence[Path] | None = None
) -> dict[str, Path]:
    """The files of `folder` that `pattern` (a card's `data_files` glob) matches, as `{path relative to the folder:
    real path}`, each checked by `file_inside`; sorted by path."""
    check_relative_path(pattern, field, where)
    roots = allowed_roots(folder) if roots is None else roots
    found = {}
    for path in folder.glob(pattern):
        if path.is_dir() and not path.is_symlink():
            continue
        found[path.relative_to(folder).as_posix()] = file_inside(folder, path, field, where, roots)
    return dict(sorted(found.items()))


def read_bounded(path: Path, limit: int, field: str, where: str) -> bytes:
    """The bytes of `path`, refused without reading if it is larger than `limit`."""
    size = path.stat().st_size
    if size > limit:
        raise _fail(where, field, f"is {size:,} bytes, over the {limit:,} this file may have", "It is not hf_prune's.")
    return path.read_bytes()


def check_fits_in_memory(nbytes: int, what: str, where: str, fix: str) -> None:
    """Refuses an allocation of `nbytes` larger than the machine's physical memory (a crafted count), before it is
    made; skipped where the memory size is unknown."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return
    if nbytes > total:
        raise ValueError(
            f"{where}: {what} would take {nbytes / 2**30:,.1f} GiB, more than this machine's "
            f"{total / 2**30:,.1f} GiB of memory. {fix}"
        )


# ---------------------------------------------------------------------------------------------------- rendering


def py_str(value: Any) -> str:
    """`value` as a Python (and JSON) string literal, quotes and escapes included: safe inside a code snippet."""
    return json.dumps(str(value), ensure_ascii=True)


def md_code(value: Any) -> str:
    """`value` as one Markdown inline code span, backticks included: one line, no control characters, pipes escaped
    (it may sit in a table cell), fenced with more backticks than any run it holds."""
    text = _CONTROL.sub(" ", " ".join(str(value).split())).replace("|", "\\|")
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")


def md_text(value: Any) -> str:
    """`value` as plain text inside Markdown: one line, every character Markdown or HTML could read as markup
    backslash-escaped (no links, images, emphasis, code or tags)."""
    return _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", " ".join(str(value).split())))


_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_INLINE_SPECIAL = re.compile(r"([\\<>\[\]`])")


def md_inline(value: Any) -> str:
    """`value` as one line of Markdown that may keep harmless inline formatting (code spans, emphasis) but no markup
    that could do harm: outside code spans, `<`, `>`, `[`, `]` and stray backticks are escaped (no HTML, no link or
    image), and a leading block marker (`#`, `>`, a list marker) is escaped. hf_prune's own method texts pass
    unchanged."""
    text = _CONTROL.sub(" ", " ".join(str(value).split()))
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_INLINE_SPECIAL.sub(r"\\\1", text[last : match.start()]))
        out.append(match.group(0))  # nothing inside a code span is read as markup
        last = match.end()
    out.append(_INLINE_SPECIAL.sub(r"\\\1", text[last:]))
    text = "".join(out)
    if re.match(r"^[#>+*=-]", text):
        return "\\" + text
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", text)  # not an ordered list: `1\. ...`


def md_block(value: Any) -> str:
    """`value` as the body of a fenced code block (a citation): its backticks replaced, so it cannot close the fence."""
    return _CONTROL.sub(lambda m: m.group(0) if m.group(0) == "\n" else " ", str(value)).replace("`", "'")
