"""Content keys: a column that identifies a source row whatever the mirror (e.g. ImageNet's file name), stored next
to the ids of an index list so that `load_pruned` can remap the list onto a copy that orders the rows differently."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def content_values(dataset, content_key: str) -> pa.Array:
    """Per-row content keys of `dataset[content_key]` as an Arrow string array (read column-wise, no Python loop);
    for an `Image` / `Audio` / `Video` column, the base name of each file's `path`, read without decoding."""
    if content_key not in dataset.column_names:
        raise ValueError(f"The dataset has no column {content_key!r} to use as content key ({dataset.column_names}).")
    feature = dataset.features[content_key]
    column = dataset.select_columns([content_key])
    is_file = type(feature).__name__ in ("Image", "Audio", "Video")
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
