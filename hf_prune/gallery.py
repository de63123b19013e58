"""Pictures of what a selection removed: per class, the removed examples next to the kept ones, ordered by score.

A data map shows *where* the removed rows sit; the gallery shows *which* rows they are. Each row of the picture is a
class; its left block holds the removed examples from the end of the scores the method removes first (the lowest
scores for a method that keeps the highest, `params["keep"] == "high"`; the hard end it cuts for a coverage-centric
selection, `params["selection"] == "ccs"`), its right block the kept examples from the other end; every picture is
captioned with its score and row id.

Bounded and deterministic, whatever the dataset's size: at most `max_classes` classes (the ones with the largest
share of their rows removed, ties by class id, drawn in class order) and `per_class` pictures per block; scores tie
by row id; only the images shown are decoded, shrunk to thumbnails. Rows without a finite score (never scored) are
never shown. `gallery_rows` makes the choice (NumPy only), `removed_gallery` draws it (matplotlib's object API, as
in `hf_prune.plots`).

Example:

```python
>>> from hf_prune.gallery import removed_gallery
>>> removed_gallery(result, train_dataset, path="gallery_prune_25.png")   # the unpruned split the ids index
```
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .data import IMAGE_COLUMNS
from .plots import require_matplotlib, save_figure
from .sample_ids import DATASET_LABEL_COLUMNS


GALLERY_MAX_CLASSES = 10
GALLERY_PER_CLASS = 6
# Longest side of a shown picture, in pixels: ImageNet photos are shrunk to this before they are drawn, so the PNG of
# a full gallery stays well under 2 MB.
THUMBNAIL_SIDE = 96
# PIL modes drawn in grey; everything else is converted to RGB.
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
_REMOVED_COLOUR = "crimson"
_KEPT_COLOUR = "#2a7ab9"


@dataclass(frozen=True)
class GalleryRow:
    """One class of a gallery.

    Args:
        label (`int`): the class id (`-1` for a gallery of a result without labels: every row in one class).
        removed (`np.ndarray` of int64): ids of the removed rows shown, the first-removed end first.
        kept (`np.ndarray` of int64): ids of the kept rows shown, from the other end of the scores.
        num_removed (`int`): rows of this class removed (scored rows only).
        num_scored (`int`): rows of this class with a finite score.
    """

    label: int
    removed: np.ndarray
    kept: np.ndarray
    num_removed: int
    num_scored: int


def _removes_low(result) -> bool:
    """Whether `result` removes the lowest scores first: it keeps the highest (`params["keep"] == "high"`), unless it
    is a coverage-centric selection (`params["selection"] == "ccs"`), which first cuts the hard end, the one it keeps."""
    params = getattr(result, "params", None) or {}
    keeps_high = params.get("keep", "high") != "low"
    return keeps_high != (params.get("selection") == "ccs")


def _ordered(ids: np.ndarray, scores: np.ndarray, ascending: bool, count: int) -> np.ndarray:
    """The first `count` of `ids` by score (ascending or descending), ties by id: the same picture on every run."""
    key = scores[ids] if ascending else -scores[ids]
    return ids[np.lexsort((ids, key))[:count]]


def gallery_rows(
    result,
    labels: np.ndarray | None = None,
    *,
    max_classes: int = GALLERY_MAX_CLASSES,
    per_class: int = GALLERY_PER_CLASS,
) -> list[GalleryRow]:
    """Which rows a gallery of `result` shows, per class: the removed ones from the end of the scores the method
    removes first (see the module docstring), the kept ones from the other end, both ordered by score (ties by row
    id).

    Args:
        result (`PruneResult`): the selection (its `kept_ids`, `scores`, `params["keep"]` and `["selection"]` and,
            where `labels` is not given, `labels`).
        labels (`np.ndarray` of int `[num_samples]`, *optional*): class ids; defaults to `result.labels`. Without
            either, the gallery has one row of all classes. Negative labels (rows outside a subset) are left out.
        max_classes (`int`, *optional*, defaults to 10): at most this many classes, those with the largest share of
            their scored rows removed (ties by class id), returned in class order.
        per_class (`int`, *optional*, defaults to 6): at most this many removed and this many kept rows per class.

    Returns:
        list of `GalleryRow`.
    """
    if max_classes < 1 or per_class < 1:
        raise ValueError(f"max_classes and per_class must be at least 1; got {max_classes} and {per_class}.")
    scores = np.asarray(result.scores, dtype=np.float64)
    n = scores.size
    labels = getattr(result, "labels", None) if labels is None else labels
    labels = np.full(n, -1, dtype=np.int64) if labels is None else np.asarray(labels).astype(np.int64, copy=False)
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}; the result scores {n} rows. Pass one label per row.")
    unlabelled = bool((labels < 0).all())
    kept = np.zeros(n, dtype=bool)
    kept[np.asarray(result.kept_ids, dtype=np.int64)] = True
    shown = np.isfinite(scores) & (unlabelled | (labels >= 0))
    groups = np.zeros(n, dtype=np.int64) if unlabelled else labels
    scored = np.bincount(groups[shown], minlength=1)
    removed = np.bincount(groups[shown & ~kept], minlength=scored.size)
    classes = np.flatnonzero(scored)
    share = removed[classes] / scored[classes]
    chosen = np.sort(classes[np.lexsort((classes, -share))[:max_classes]])
    low_first = _removes_low(result)
    rows = []
    for c in chosen:
        members = np.flatnonzero(shown & (groups == c))
        rows.append(
            GalleryRow(
                label=-1 if unlabelled else int(c),
                removed=_ordered(members[~kept[members]], scores, low_first, per_class),
                kept=_ordered(members[kept[members]], scores, not low_first, per_class),
                num_removed=int(removed[c]),
                num_scored=int(scored[c]),
            )
        )
    return rows


def image_column_of(dataset, image_column: str | None = None) -> str | None:
    """The image column of `dataset`: `image_column` if given, else the first of `image`, `img`, `pixel_values`
    (as `hf_prune.data` finds it), else the first column of the `datasets.Image` type; `None` when it has none, or when
    `dataset` is a plain sequence of images (no columns)."""
    columns = _column_names(dataset)
    if columns is None:
        return None
    if image_column is not None:
        if image_column not in columns:
            raise ValueError(f"image_column={image_column!r} is not a column of the dataset; it has {columns}.")
        return image_column
    found = next((c for c in IMAGE_COLUMNS if c in columns), None)
    if found is None:
        features = getattr(dataset, "features", None) or {}
        found = next((c for c in columns if type(features.get(c)).__name__ == "Image"), None)
    return found


def _column_names(dataset) -> list[str] | None:
    if isinstance(dataset, Mapping):
        return list(dataset)
    names = getattr(dataset, "column_names", None)
    return list(names) if names is not None else None


def _num_rows(dataset) -> int:
    if isinstance(dataset, Mapping):  # a dict of columns
        return len(next(iter(dataset.values()))) if dataset else 0
    return len(dataset)


def _labels_of(dataset, n: int) -> np.ndarray | None:
    columns = _column_names(dataset) or []
    column = next((c for c in DATASET_LABEL_COLUMNS if c in columns), None)
    if column is None:
        return None
    values = dataset.with_format("numpy")[column][:] if hasattr(dataset, "with_format") else dataset[column]
    values = np.asarray(values)
    return values.astype(np.int64) if values.shape == (n,) and np.issubdtype(values.dtype, np.integer) else None


def _class_names_of(dataset) -> list[str] | None:
    features = getattr(dataset, "features", None) or {}
    for column in DATASET_LABEL_COLUMNS:
        names = getattr(features.get(column), "names", None)
        if names:
            return list(names)
    return None


def _fetch_images(dataset, image_column: str | None, ids: np.ndarray) -> dict[int, object]:
    """The images of rows `ids`, decoding only those (one read for all of them, in row order)."""
    ids = np.unique(ids)
    if image_column is None:  # a sequence of images
        values = [dataset[int(i)] for i in ids]
    elif hasattr(dataset, "select_columns"):  # a `datasets.Dataset`: raw rows, without a transform, one column
        values = dataset.with_format(None).select_columns([image_column])[ids.tolist()][image_column]
    else:
        column = dataset[image_column]
        values = [column[int(i)] for i in ids]
    return dict(zip(ids.tolist(), values))


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """An image array as uint8 `[H, W]` or `[H, W, 3]`: channels-first `[C, H, W]` (`pixel_values`) moved last, a
    single channel squeezed, alpha dropped; floats in [0, 1] scaled by 255, values in [0, 255] kept, any other range
    (normalised tensors) stretched to 0-255 per image."""
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., 0] if array.shape[-1] == 1 else array[..., :3]
    if array.ndim not in (2, 3) or array.ndim == 3 and array.shape[-1] != 3 or array.size == 0:
        raise ValueError(
            f"Cannot show an image of shape {array.shape}: expected [H, W], [H, W, C] or [C, H, W] with C in 1, 3, 4. "
            "Pass `image_column=` naming the column that holds the images."
        )
    if array.dtype == np.uint8:
        return array
    values = np.nan_to_num(array.astype(np.float64))
    lo, hi = float(values.min()), float(values.max())
    if array.dtype.kind == "f" and lo >= 0 and hi <= 1:
        values = values * 255
    elif lo < 0 or hi > 255:
        values = (values - lo) / ((hi - lo) or 1.0) * 255
    return values.clip(0, 255).round().astype(np.uint8)


def _thumbnail(value, side: int) -> np.ndarray:
    """A shown image as a uint8 array at most `side` pixels on its longest side (grey `[H, W]` or RGB `[H, W, 3]`),
    from a PIL image, a `datasets.Image` dict (`bytes` / `path`), a NumPy array, a torch tensor or nested lists."""
    from PIL import Image

    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        value = Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"])
    if isinstance(value, Image.Image):
        image = value.convert("L" if value.mode in _GREY_MODES else "RGB")
    else:
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        image = Image.fromarray(_as_uint8(np.asarray(value)))
    if max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _class_title(row: GalleryRow, class_names: Sequence[str] | None, width: int = 18) -> str:
    if row.label < 0:
        name = "all rows"
    elif class_names is not None and row.label < len(class_names):
        name = str(class_names[row.label])
    else:
        name = f"class {row.label}"
    name = name.split(", ")[0]  # ImageNet's names list synonyms: "tench, Tinca tinca"
    if len(name) > width:
        name = name[: width - 1].rstrip() + "…"
    return f"{name}\n{row.num_removed:,} of {row.num_scored:,}\nremoved"


def removed_gallery(
    result,
    dataset,
    path: str | os.PathLike | None = None,
    *,
    image_column: str | None = None,
    labels: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    max_classes: int = GALLERY_MAX_CLASSES,
    per_class: int = GALLERY_PER_CLASS,
    title: str | None = None,
):
    """Draws the gallery of `result`: one row per class, the removed examples on the left (the end of the scores the
    method removes first, first), the kept ones on the right (from the other end), each captioned with its score and
    row id.

    Args:
        result (`PruneResult`): the selection; its ids must be rows of `dataset` (for a run on a subset, pass
            `result.to_source_rows(...)` with the full split, or the result as made with the training subset).
        dataset (`datasets.Dataset`, a dict of columns, or a sequence of images):
            The unpruned split. Its images may be PIL images, `datasets.Image` values, arrays or tensors, grey or RGB,
            channels-last or channels-first; a `datasets.Dataset` is read without its transform.
        path (`str`, *optional*): PNG file to write.
        image_column (`str`, *optional*): defaults to `image`, `img` or `pixel_values`, else an `Image` column.
        labels (`np.ndarray`, *optional*): class ids; defaults to `result.labels`, else the dataset's label column.
        label_names (sequence of `str`, *optional*): class names; defaults to the dataset's `ClassLabel` names, else
            `result.provenance["label_names"]`.
        max_classes (`int`, *optional*, defaults to 10): classes shown, those with the largest share removed (see
            `gallery_rows`), so a 1,000-class list draws a readable picture of about 1,150 x 1,100 pixels.
        per_class (`int`, *optional*, defaults to 6): pictures per block (removed, kept) and class.
        title (`str`, *optional*): defaults to the method, the ratio and which classes are shown.

    Returns:
        `matplotlib.figure.Figure`.

    Raises:
        `ValueError`: the dataset's length differs from the result's, or it has no image column.

    Example:

    ```python
    >>> from datasets import load_dataset
    >>> from hf_prune.gallery import removed_gallery
    >>> train = load_dataset("zalando-datasets/fashion_mnist", split="train")
    >>> fig = removed_gallery(result, train, path="gallery_prune_25.png")
    ```
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    num_rows = _num_rows(dataset)
    if num_rows != result.num_samples:
        raise ValueError(
            f"The dataset has {num_rows:,} rows but the result indexes {result.num_samples:,}: pass the unpruned "
            "split its ids are rows of (for a run on a subset, `result.to_source_rows(...)` and the full split)."
        )
    column = image_column_of(dataset, image_column)
    if column is None and _column_names(dataset) is not None:
        raise ValueError(
            f"Found no image column among {_column_names(dataset)} (looked for {list(IMAGE_COLUMNS)} and `Image` "
            "features); pass `image_column=`."
        )
    if labels is None and getattr(result, "labels", None) is None:
        labels = _labels_of(dataset, result.num_samples)
    label_names = (
        label_names or _class_names_of(dataset) or (getattr(result, "provenance", None) or {}).get("label_names")
    )
    rows = gallery_rows(result, labels, max_classes=max_classes, per_class=per_class)
    shown = [i for row in rows for i in (*row.removed, *row.kept)]
    images = _fetch_images(dataset, column, np.asarray(shown, dtype=np.int64))
    scores = np.asarray(result.scores, dtype=np.float64)

    cell = 0.95  # inches per picture, its caption included
    nrows = max(1, len(rows))
    fig = Figure(figsize=(cell * (2 * per_class + 1.4), cell * 1.08 * nrows + 0.9), dpi=100, layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[per_class + 1.4, per_class], wspace=0.02)
    low_first = _removes_low(result)
    removed_end, kept_end = ("lowest", "highest") if low_first else ("highest", "lowest")
    left.suptitle(f"removed: {removed_end} score first", color=_REMOVED_COLOUR, fontsize=10, fontweight="bold")
    right.suptitle(f"kept: {kept_end} score first", color=_KEPT_COLOUR, fontsize=10, fontweight="bold")
    for block, colour, subfigure in (("removed", _REMOVED_COLOUR, left), ("kept", _KEPT_COLOUR, right)):
        axes = subfigure.subplots(nrows, per_class, squeeze=False)
        for r, row in enumerate(rows):
            ids = getattr(row, block)
            for c, ax in enumerate(axes[r]):
                ax.set_xticks([])
                ax.set_yticks([])
                if c < len(ids):
                    _draw_cell(ax, _thumbnail(images[int(ids[c])], THUMBNAIL_SIDE), int(ids[c]), scores, colour)
                else:
                    for spine in ax.spines.values():
                        spine.set_visible(False)
                    if c == 0:
                        ax.text(0.5, 0.5, f"none {block}", ha="center", va="center", fontsize=8, color="0.4",
                                transform=ax.transAxes)  # fmt: skip
            if block == "removed":
                axes[r, 0].set_ylabel(_class_title(row, label_names), rotation=0, ha="right", va="center", fontsize=8)
    if title is None:
        classes = _classes_phrase(rows, result, labels)
        title = f"{result.method}: {100 * result.prune_ratio:g}% removed — {classes}; caption: score  #row"
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def _classes_phrase(rows: list[GalleryRow], result, labels) -> str:
    labels = getattr(result, "labels", None) if labels is None else labels
    if labels is None or not rows or rows[0].label < 0:
        return "all rows"
    labels = np.asarray(labels)
    total = int(np.unique(labels[labels >= 0]).size)
    if len(rows) < total:
        return f"{len(rows)} of {total:,} classes (the largest shares removed)"
    return f"{total:,} classes"


def _draw_cell(ax, picture: np.ndarray, row_id: int, scores: np.ndarray, colour: str) -> None:
    grey = picture.ndim == 2
    small = max(picture.shape[:2]) < 48
    ax.imshow(
        picture, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest" if small else "antialiased"
    )
    ax.set_title(f"{scores[row_id]:.3g}  #{row_id}", fontsize=6.5, pad=2)
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(1.5)
