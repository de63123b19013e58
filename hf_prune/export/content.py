"""Content keys: a column that identifies a source row whatever the mirror (e.g. ImageNet's file name), stored next
to the ids of an index list so that `load_pruned` can check the rows of a consumer's copy by content, and remap the
list onto a copy that orders the rows differently.

What is stored per kept row, by the kind of the content key:

| content key | stored value |
|---|---|
| an `Image` / `Audio` / `Video` column | the base name of the file (`n01440764_10026.JPEG`) |
| a text column (a string column named in `TEXT_COLUMNS`: `text`, `sentence`, `content`, `prompt` ...) | `text_key(text)`: sha256 of its UTF-8 bytes, first 32 hex digits |
| a list or struct column (`messages` of a chat dataset, `input_ids` of a tokenized one) | sha256 of its canonical JSON (`canonical_json`), first 32 hex digits |
| several columns joined by `+` (`prompt+completion`) | sha256 of the canonical JSON of `{column: value}` |
| any other column (an id, a file name as a string) | the value itself, as a string |

A text dataset rarely has an id column; the hash of its text is its identity: a consumer's copy whose text differs
in a kept row (another revision, a cleaned copy) is caught, and a copy with the rows in another order is remapped.
`detect_content_key` picks the text column(s) of a dataset (`TEXT_CONTENT_KEYS`). The keys can be recomputed with
nothing but `hashlib`: `hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc


# String columns whose values are text (hashed), not identifiers (stored as they are).
TEXT_COLUMNS = (
    "text", "sentence", "sentence1", "sentence2", "content", "document", "article", "passage", "context", "question",
    "answer", "premise", "hypothesis", "prompt", "completion", "chosen", "rejected", "instruction", "input", "output",
    "response", "messages", "conversations",
)  # fmt: skip
# What `detect_content_key` looks for, first match wins: chat, prompt-completion and preference pairs, plain text,
# sentence pairs, then a tokenized dataset's token ids.
TEXT_CONTENT_KEYS = (
    "messages", "conversations", "prompt+completion", "prompt+chosen+rejected", "chosen+rejected",
    "instruction+input+output", "text", "sentence1+sentence2", "premise+hypothesis", "question+context", "sentence",
    "content", "document", "article", "prompt", "input_ids",
)  # fmt: skip
KEY_SEPARATOR = "+"
KEY_HEX_DIGITS = 32  # 128 bits, as `row_fingerprint`: no collision in practice among billions of rows
HASH_BATCH = 8192  # rows read from Arrow at a time while hashing
_FILE_FEATURES = ("Image", "Audio", "Video")


def content_key_columns(dataset, content_key: str) -> list[str] | None:
    """The source columns `content_key` is made of (`"prompt+completion"` -> `["prompt", "completion"]`; a column
    whose own name holds a `+` is that column), or `None` when `dataset` lacks any of them. `load_pruned` checks
    rows by content only where this is not `None`."""
    names = list(getattr(dataset, "column_names", None) or [])
    if content_key in names:
        return [content_key]
    parts = content_key.split(KEY_SEPARATOR)
    if len(parts) > 1 and all(parts) and all(p in names for p in parts) and len(set(parts)) == len(parts):
        return parts
    return None


def is_hashed_key(dataset, content_key: str) -> bool:
    """Whether `content_values` stores a hash for `content_key` (text, list, struct or several columns; see the
    module docstring) rather than the value itself."""
    columns = _columns_or_raise(dataset, content_key)
    if len(columns) > 1:
        return True
    feature = dataset.features[columns[0]]
    if type(feature).__name__ in _FILE_FEATURES:
        return False
    dtype = getattr(feature, "dtype", None)
    if type(feature).__name__ in ("Value", "ClassLabel") and dtype not in ("list", "struct", "dict"):
        return dtype in ("string", "large_string") and columns[0] in TEXT_COLUMNS
    return True  # List / Sequence / LargeList / a dict of features / Array2D...: structured cells


def detect_content_key(dataset) -> str | None:
    """The content key of a text dataset: the first of `TEXT_CONTENT_KEYS` whose columns it has (`"messages"` for
    chat, `"prompt+completion"`, `"text"`, ..., `"input_ids"` for a tokenized one), or `None`.

    Example:

    ```python
    >>> import datasets
    >>> detect_content_key(datasets.Dataset.from_dict({"prompt": ["2+2?"], "completion": ["4"], "label": [0]}))
    'prompt+completion'
    ```
    """
    for key in TEXT_CONTENT_KEYS:
        if content_key_columns(dataset, key) is not None:
            return key
    return None


def resolve_content_key(dataset, content_key: str | None) -> str | None:
    """`content_key` checked against `dataset`'s columns; `"auto"` is `detect_content_key(dataset)` (`None` when the
    dataset has no text column). A missing column is an error that lists the columns."""
    if content_key is None:
        return None
    if content_key == "auto":
        return detect_content_key(dataset)
    _columns_or_raise(dataset, content_key)
    return content_key


def canonical_json(value) -> str:
    """One cell (or a `{column: cell}` mapping) as canonical JSON: keys sorted, no whitespace, non-ASCII kept, `None`
    fields of a mapping left out (a copy whose chat turns carry an extra null field, e.g. `tool_calls`, is the
    same content), bytes as their sha256."""
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def text_key(value) -> str:
    """The content key of one text cell (a string: its UTF-8 bytes) or structured cell (its `canonical_json`):
    sha256, first `KEY_HEX_DIGITS` hex digits."""
    data = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:KEY_HEX_DIGITS]


def content_values(dataset, content_key: str) -> pa.Array:
    """Per-row content keys of `dataset` under `content_key` as an Arrow string array (see the module docstring for
    what is stored per kind of column). Read column-wise: file columns without decoding, plain columns without a
    Python loop, hashed ones in batches of `HASH_BATCH` rows.

    Raises:
        `ValueError`: the dataset lacks a column of `content_key`, or a row has no value (a null; an empty string
            for a key stored as is): the message names the column and what to pick instead.
    """
    columns = _columns_or_raise(dataset, content_key)
    if is_hashed_key(dataset, content_key):
        return _hashed_values(dataset, columns, content_key)
    feature = dataset.features[content_key]
    column = dataset.select_columns([content_key])
    is_file = type(feature).__name__ in _FILE_FEATURES
    if is_file:
        column = column.cast_column(content_key, type(feature)(decode=False))
    values = column.with_format("arrow")[:][content_key].combine_chunks()
    if is_file:
        values = pc.replace_substring_regex(pc.struct_field(values, "path"), pattern=r"^.*[/\\]", replacement="")
    elif not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    missing = values.null_count + (pc.sum(pc.equal(values, "")).as_py() or 0)
    if missing:
        raise ValueError(
            f"{missing} rows have no value in content key {content_key!r}; pick a column set on every row."
        )
    return values


def _columns_or_raise(dataset, content_key: str) -> list[str]:
    columns = content_key_columns(dataset, content_key)
    if columns is None:
        raise ValueError(
            f"The dataset has no column {content_key!r} to use as content key ({dataset.column_names}). Name one of "
            f"its columns, or several joined by {KEY_SEPARATOR!r} (e.g. 'prompt+completion'); "
            "`hf_prune.export.content.detect_content_key(dataset)` finds a text dataset's."
        )
    return columns


def _hashed_values(dataset, columns: list[str], content_key: str) -> pa.Array:
    for name in columns:
        if type(dataset.features[name]).__name__ in _FILE_FEATURES:
            raise ValueError(
                f"Content key {content_key!r} joins the file column {name!r} to others; use the file column alone "
                "(its file names are the key) or only text columns."
            )
    single = columns[0] if len(columns) == 1 else None
    view = dataset.select_columns(columns).with_format("arrow")
    keys: list[str] = []
    nulls = 0
    for batch in view.iter(batch_size=HASH_BATCH):
        if single is not None:
            for value in batch.column(single).to_pylist():
                if value is None:
                    nulls += 1
                    keys.append("")
                else:
                    keys.append(text_key(value))
        else:
            keys.extend(text_key(row) for row in batch.to_pylist())
    if nulls:
        raise ValueError(
            f"{nulls} rows have no value (null) in content key {content_key!r}; fill them (e.g. with '') or pick a "
            "column set on every row."
        )
    return pa.array(keys, type=pa.string())


def _plain(value):
    """JSON-able form of an Arrow cell for `canonical_json`."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return value
