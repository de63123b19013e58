"""Pictures of training dynamics and selections: data maps (Dyn-Unc paper Fig. 2 and Fig. 4), score histograms of
kept vs removed rows, and the selection histogram of a dynamic run (Raju et al. Fig. 3). The pictures of the removed
examples themselves are in `hf_prune.gallery`.

Every function draws with matplotlib's object API (no `pyplot`, no global backend switch, so a notebook keeps its
backend), takes `ax=` to draw into an axes of yours, returns the `Figure`, and writes a PNG when given `path=`.
matplotlib is an optional extra (`pip install 'hf_prune[plots]'`), imported only when a figure is drawn. Results are
read by duck typing (`kept_ids`, `scores`, `prune_ratio`, `method`, `num_samples`), so this module sits below the
one that defines `PruneResult` and the exporters can embed its figures in dataset cards.

Example:

```python
>>> from hf_prune.plots import compare_removed, data_map
>>> fig = data_map(record, result, path="dyn_unc_map.png")
>>> compare_removed(record, {"dyn_unc": r1, "forgetting": r2, "el2n": r3}, path="removed.png")
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .record import ScoreRecord
from .stats import data_map_coordinates, selection_counts


def require_matplotlib() -> None:
    """Raises an `ImportError` that says how to install matplotlib (an optional extra) when it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib, an optional extra: `pip install 'hf_prune[plots]'` (or `pip install matplotlib`)."
        ) from None


def _figure_and_axes(ax, figsize, dpi=110):
    require_matplotlib()
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    return fig, fig.add_subplot()


def save_figure(fig, path: str | os.PathLike | None):
    """Writes `fig` to the PNG file `path` (creating its folder) when a path is given; returns `fig`."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig


def _subsample(ids: np.ndarray, max_points: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_points is None or ids.size <= max_points:
        return ids
    return np.sort(rng.choice(ids, size=max_points, replace=False))


def _removed_mask(result, n: int) -> np.ndarray:
    removed = np.ones(n, dtype=bool)
    removed[np.asarray(result.kept_ids, dtype=np.int64)] = False
    return removed


# The x-axis is a function of the method, named in every title: a Dyn-Unc result is drawn against its own score U
# (the windowed uncertainty that chose what was removed), anything else against the std of p(y|x) over all epochs (the
# data-map axis of Swayamdipta et al.), so two maps that look alike always say when their x-axes differ.
def _x_axis(x: str, result) -> tuple[str, str, str, bool]:
    """`(kind, axis label, short name for titles, whether the data map's region names apply)` of the x-axis `x`,
    `kind` being `"score"` (the result's scores) or `"std"`."""
    if x == "auto":
        x = "score" if result is not None and result.method == "dyn_unc" else "std"
    if x == "score":
        if result is None:
            raise ValueError("x='score' plots a result's scores; pass `result=`, or use x='std'.")
        if result.method == "dyn_unc":
            window = (getattr(result, "params", None) or {}).get("window")
            span = f"J={window}-epoch windows" if window else "windows of J epochs"
            return x, f"Dyn-Unc U (mean std of p(y|x) over {span})", "Dyn-Unc uncertainty U (its score)", True
        return x, f"{result.method} score", f"{result.method} score", False
    if x == "std":
        return x, "std of p(y|x) over all epochs (variability)", "std of p(y|x) over all epochs", True
    raise ValueError(f"x must be 'auto', 'score' or 'std'; got {x!r}.")


def _x_values(kind: str, coords, result) -> np.ndarray:
    return np.asarray(result.scores, dtype=np.float64) if kind == "score" else coords["variability"]


# Points are drawn at this opacity, kept and removed alike: a removed point must look no heavier than a kept one.
_POINT_ALPHA = 0.45
_POINT_SIZE = 5
_REMOVED_COLOUR = "crimson"


def _correct_epochs_scale(num_epochs: int):
    """The colour scale of the number of epochs classified correctly: one colour per whole number 0 ... K."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm

    top = max(1, int(num_epochs))
    cmap = colormaps["viridis"].resampled(top + 1)
    return cmap, BoundaryNorm(np.arange(-0.5, top + 1.5), cmap.N), top


def _draw_map(ax, fig, coords, result, x, max_points, rng, num_epochs, title, colorbar):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import to_rgba
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D

    kind, xlabel, _, regions = _x_axis(x, result)
    xs = _x_values(kind, coords, result)
    ys = coords["confidence"]
    finite = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    removed = _removed_mask(result, xs.size) if result is not None else np.zeros(xs.size, dtype=bool)
    # One layer, in a seeded random order, kept and removed points the same size and opacity: they overlap at random,
    # so 25 % removed covers about 25 % of the ink (a red layer drawn on top looked like far more).
    shown = rng.permutation(_subsample(finite, max_points, rng))
    colour = coords["correct_epochs"]
    alpha = _POINT_ALPHA if result is not None else 0.6
    if np.isfinite(colour).any():
        cmap, norm, top = _correct_epochs_scale(num_epochs)
        rgba = cmap(norm(colour[shown]))
        levels = np.unique(np.linspace(0, top, min(5, top + 1)).round().astype(int))
        kept_swatches = tuple(cmap(norm(level)) for level in levels)  # the legend shows the scale the points use
    else:
        cmap = norm = None
        rgba = np.tile(to_rgba("tab:blue"), (shown.size, 1))
        kept_swatches = (to_rgba("tab:blue"),)
    rgba = np.array(rgba, dtype=np.float64).reshape(shown.size, 4)
    rgba[removed[shown]] = to_rgba(_REMOVED_COLOUR)
    rgba[:, 3] = np.where(rgba[:, 3] > 0, alpha, 0.0)  # never-seen samples keep the colour map's transparent "bad"
    ax.scatter(xs[shown], ys[shown], s=_POINT_SIZE, c=rgba, linewidths=0, rasterized=True)
    if cmap is not None and colorbar:
        step = max(1, -(-(top + 1) // 10))
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, ticks=np.arange(0, top + 1, step),
                     label="epochs classified correctly")  # fmt: skip
    if result is not None:
        marker = dict(marker="o", linestyle="", markersize=6, markeredgewidth=0)
        handles = [
            tuple(Line2D([], [], markerfacecolor=c, **marker) for c in kept_swatches),
            Line2D([], [], markerfacecolor=_REMOVED_COLOUR, **marker),
        ]
        labels = [
            f"kept ({int((~removed).sum()):,})",
            f"removed ({int(removed.sum()):,} = {100 * result.prune_ratio:g}%)",
        ]
        # Upper right: a data map is empty there (a mean near 1 leaves no room for a large std).
        ax.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)}, loc="upper right",
                  fontsize=8, framealpha=0.9, handlelength=3.2)  # fmt: skip
    ax.set_xlabel(xlabel + ("   uncertain →" if regions else ""))
    ax.set_ylabel("mean p(y|x) over epochs  (confidence)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=min(-0.005, float(np.nanmin(xs[finite])) if finite.size else 0.0))
    ax.set_title(title, fontsize=10)
    if regions:
        # Region names in the right margin, beside the axes, never over the (dense) corners they name.
        side = ax.secondary_yaxis("right")
        side.set_yticks([1.0, 0.0], labels=["easy", "hard /\nmislabeled"])
        side.tick_params(length=0, labelsize=8, labelcolor="0.3")
        easy, hard = side.get_yticklabels()
        easy.set_verticalalignment("top")
        hard.set_verticalalignment("bottom")


def _check_result(result, record: ScoreRecord, label: str = "The result") -> None:
    if result is not None and result.num_samples != record.num_samples:
        raise ValueError(f"{label} indexes {result.num_samples} samples but the record has {record.num_samples}.")


def data_map(
    record: ScoreRecord,
    result=None,
    path: str | os.PathLike | None = None,
    *,
    ax=None,
    x: str = "auto",
    max_points: int | None = 50_000,
    seed: int = 0,
    title: str | None = None,
    coords: dict[str, np.ndarray] | None = None,
):
    """Draws the data map of `record` (Dyn-Unc Fig. 2), optionally with the samples `result` removed in red.

    Each sample is a point at y = its mean target probability over epochs (confidence) and x = its uncertainty,
    coloured by the number of epochs in which it was classified correctly. Easy samples sit top-left, hard or
    mislabeled ones bottom-left, uncertain ones to the right (the region names are written in the right margin).

    The x-axis is a function of the method, and the title names it: a Dyn-Unc result is drawn against its own score U
    (the windowed uncertainty that chose the removed samples), any other result, or none, against the std of p(y|x)
    over all epochs. Kept and removed points have the same size and opacity and are drawn in one seeded random order,
    so a 25 % selection covers about a quarter of the points; the legend's "kept" entry shows the colour scale the kept
    points use.

    Args:
        record (`ScoreRecord`): needs `p_target`; `correct` gives the colour.
        result (`PruneResult`, *optional*): a selection made on this record; its removed samples are overlaid.
        path (`str`, *optional*): PNG file to write.
        ax (`matplotlib.axes.Axes`, *optional*): draw into these axes instead of a new figure.
        x (`str`, *optional*, defaults to `"auto"`): the x-axis: `"std"` (std of p(y|x) over all epochs),
            `"score"` (the result's scores: for Dyn-Unc the windowed uncertainty U that chose the removed samples),
            or `"auto"` (`"score"` for a Dyn-Unc result, else `"std"`).
        max_points (`int`, *optional*, defaults to 50,000): at most this many points are drawn (a seeded uniform
            subsample of kept and removed together, so their shares stay), so an ImageNet-size map stays readable and
            fast; `None` draws all.
        seed (`int`, *optional*, defaults to 0): subsampling seed.
        title (`str`, *optional*): defaults to the method, ratio, record size and the x-axis.
        coords (`dict`, *optional*): precomputed `stats.data_map_coordinates(record)`, to reuse across maps.

    Returns:
        `matplotlib.figure.Figure`.
    """
    record.require("p_target", method="data_map")
    _check_result(result, record)
    coords = coords or data_map_coordinates(record)
    if title is None:
        title = f"{record.num_samples:,} samples, {record.num_epochs} epochs"
        if result is not None:
            title = f"{result.method}: {100 * result.prune_ratio:g}% removed — {title}"
        title += f"\nx-axis: {_x_axis(x, result)[2]}"
    fig, ax = _figure_and_axes(ax, (6.4, 5.2))
    _draw_map(ax, fig, coords, result, x, max_points, np.random.default_rng(seed), record.num_epochs, title, True)
    return save_figure(fig, path)


def compare_removed(
    record: ScoreRecord,
    results: Mapping[str, object] | Sequence[object],
    path: str | os.PathLike | None = None,
    *,
    ncols: int = 3,
    x: str = "std",
    max_points: int | None = 20_000,
    seed: int = 0,
):
    """Side-by-side data maps of the samples several strategies remove (Dyn-Unc Fig. 2 / Fig. 4), on one shared
    x-axis (`x="std"` by default, so the panels compare), named in the figure's title (in each panel's title where
    `x="auto"` gives the panels different axes).

    Args:
        record (`ScoreRecord`): the record the results were selected from.
        results (`dict[str, PruneResult]` or a list): one panel each, titled by key (or method).
        path (`str`, *optional*): PNG file to write.
        ncols (`int`, *optional*, defaults to 3): panels per row.
        x (`str`, *optional*, defaults to `"std"`): as in `data_map`.
        max_points (`int`, *optional*, defaults to 20,000): points per panel (seeded subsample).
        seed (`int`, *optional*, defaults to 0): subsampling seed.

    Returns:
        `matplotlib.figure.Figure`.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    record.require("p_target", method="compare_removed")
    items = list(results.items()) if isinstance(results, Mapping) else [(r.method, r) for r in results]
    if not items:
        raise ValueError("No results to compare.")
    for label, r in items:
        _check_result(r, record, label)
    coords = data_map_coordinates(record)
    ncols = max(1, min(ncols, len(items)))
    nrows = -(-len(items) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 4.0 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    x_names = [_x_axis(x, r)[2] for _, r in items]
    shared = len(set(x_names)) == 1
    for ax, (label, r), x_name in zip(axes.flat, items, x_names):
        title = f"{label}: {100 * r.prune_ratio:g}% removed" + ("" if shared else f"\nx-axis: {x_name}")
        _draw_map(ax, fig, coords, r, x, max_points, np.random.default_rng(seed), record.num_epochs, title,
                  colorbar=False)  # fmt: skip
    for ax in list(axes.flat)[len(items) :]:
        ax.axis("off")
    fig.suptitle(
        "Removed samples (red) on the data map; colour = epochs classified correctly"
        + (f"; x-axis: {x_names[0]}" if shared else ""),
        fontsize=11,
    )
    return save_figure(fig, path)


def score_histogram(results: Sequence[object], path: str | os.PathLike | None = None, *, ax=None, axes=None):
    """Histograms of the scores of kept vs removed rows, one panel per result (e.g. per ratio of one run), each titled
    with the method and its ratio.

    A result made on part of its split (`PruneResult.to_source_rows`) counts only the rows it scored as removed.

    Args:
        results (list of `PruneResult`): results sharing one score vector (the ratios of one run).
        path (`str`, *optional*): PNG file to write.
        ax (`matplotlib.axes.Axes`, *optional*): draw a single result into these axes.
        axes (sequence of `matplotlib.axes.Axes`, *optional*): one axes per result to draw into.

    Returns:
        `matplotlib.figure.Figure`, or `None` when no score is finite (nothing to draw).
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    results = list(results)
    scores = np.asarray(results[0].scores, dtype=np.float64)
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    lo, hi = float(scores[finite].min()), float(scores[finite].max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 61)
    if ax is not None:
        axes = [ax]
    if axes is None:
        fig = Figure(figsize=(6, 1.8 + 1.6 * len(results)), dpi=90, layout="constrained")
        axes = fig.subplots(len(results), 1, squeeze=False, sharex=True)[:, 0]
    else:
        fig = axes[0].figure
    for panel, r in zip(axes, results):
        removed = _removed_mask(r, scores.size)
        panel.hist(scores[~removed & finite], bins=bins, color="tab:blue", alpha=0.75,
                label=f"kept ({int((~removed).sum()):,})")  # fmt: skip
        scored = int((getattr(r, "provenance", None) or {}).get("subset", {}).get("num_rows", scores.size))
        panel.hist(scores[removed & finite], bins=bins, color="tab:red", alpha=0.6,
                label=f"removed ({scored - int((~removed).sum()):,})")  # fmt: skip
        panel.set_title(f"{r.method}: prune_ratio={r.prune_ratio:g} ({100 * r.prune_ratio:g}% removed)", fontsize=9)
        panel.set_ylabel("rows")
        panel.legend(fontsize=8)
    axes[-1].set_xlabel(_score_name(results[0]))
    return save_figure(fig, path)


def _score_name(result) -> str:
    """What a result's `scores` are, for an axis label."""
    if result.method == "dyn_unc":
        return "Dyn-Unc uncertainty U (score)"
    return f"{result.method} score"


def selection_groups(counts: np.ndarray, num_selections: int, low: float = 0.1, high: float = 0.9) -> dict:
    """Splits samples into never (`count <= low * S`), always (`count >= high * S`) and sometimes (between).

    Raju et al. separate the groups qualitatively; these thresholds make it reproducible. Returns
    `{"never": ids, "sometimes": ids, "always": ids, "fractions": {...}}`.
    """
    counts = np.asarray(counts)
    never = counts <= low * num_selections
    always = counts >= high * num_selections
    sometimes = ~never & ~always
    n = max(1, counts.size)
    return {
        "never": np.flatnonzero(never),
        "sometimes": np.flatnonzero(sometimes),
        "always": np.flatnonzero(always),
        "fractions": {
            k: float(v.sum() / n) for k, v in (("never", never), ("sometimes", sometimes), ("always", always))
        },
    }


def selection_histogram(
    source,
    path: str | os.PathLike | None = None,
    *,
    ax=None,
    pruning_period: int | None = None,
    low: float = 0.1,
    high: float = 0.9,
    title: str | None = None,
):
    """The normalised histogram of how often each sample was selected by a dynamic policy (Raju et al. Fig. 3),
    one bar per whole count, with the never / sometimes / always groups shaded on whole-count boundaries.

    Args:
        source (`ScoreRecord` or `(counts, num_selections)`): a record with the `selected` signal, or counts.
        path (`str`, *optional*): PNG file to write.
        ax (`matplotlib.axes.Axes`, *optional*): draw into these axes.
        pruning_period (`int`, *optional*): count epochs `0, T_p, 2 T_p, ...`; defaults to the record's.
        low, high (`float`, *optional*): the group thresholds of `selection_groups`.
        title (`str`, *optional*): figure title.

    Returns:
        `matplotlib.figure.Figure`.
    """
    if isinstance(source, ScoreRecord):
        source.require("selected", method="the selection histogram")
        period = pruning_period or int(source.metadata.get("dynamic", {}).get("pruning_period", 1))
        counts, total = selection_counts(source, "selected", period)
    else:
        counts, total = source
    counts = np.asarray(counts)
    if total < 1:
        raise ValueError("No selection recorded yet: nothing to draw.")
    groups = selection_groups(counts, total, low, high)["fractions"]
    fig, ax = _figure_and_axes(ax, (6.4, 3.8))
    ax.hist(counts, bins=np.arange(total + 2) - 0.5, density=True, color="#4c72b0", edgecolor="white", zorder=2)
    never_top = np.floor(low * total) + 0.5  # counts <= low * S
    always_bottom = np.ceil(high * total) - 0.5  # counts >= high * S
    ax.axvspan(-0.5, never_top, color="#c44e52", alpha=0.15, zorder=0, label=f"never ({groups['never']:.0%})")
    ax.axvspan(never_top, always_bottom, color="#8c8c8c", alpha=0.12, zorder=0,
               label=f"sometimes ({groups['sometimes']:.0%})")  # fmt: skip
    ax.axvspan(always_bottom, total + 0.5, color="#55a868", alpha=0.15, zorder=0,
               label=f"always ({groups['always']:.0%})")  # fmt: skip
    ax.set_xlim(-0.5, total + 0.5)
    if total <= 20:
        ax.set_xticks(range(total + 1))
    ax.set_xlabel(f"times selected (out of {total} selections)")
    ax.set_ylabel("fraction of samples")
    ax.set_title(title or "Sample selection distribution")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return save_figure(fig, path)
