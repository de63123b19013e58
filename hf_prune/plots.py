"""Pictures of training dynamics and selections: data maps (Dyn-Unc paper Fig. 2 and Fig. 4), score histograms of
kept vs removed rows, and the selection histogram of a dynamic run (Raju et al. Fig. 3).

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


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib, an optional extra: `pip install 'hf_prune[plots]'` (or `pip install matplotlib`)."
        ) from None


def _figure_and_axes(ax, figsize, dpi=110):
    _require_matplotlib()
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig, path: str | os.PathLike | None):
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


def _x_axis(x: str, coords, result):
    if x == "auto":
        x = "score" if result is not None and result.method == "dyn_unc" else "std"
    if x == "score":
        if result is None:
            raise ValueError("x='score' plots a result's scores; pass `result=`.")
        label = "Dyn-Unc uncertainty U (mean std over windows)" if result.method == "dyn_unc" else f"{result.method} score"
        return np.asarray(result.scores, dtype=np.float64), label
    if x == "std":
        return coords["variability"], "std of p(y|x) over epochs  (variability)"
    raise ValueError(f"x must be 'auto', 'score' or 'std'; got {x!r}.")


def _draw_map(ax, fig, coords, result, x, max_points, rng, num_epochs, title, colorbar):
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm

    xs, xlabel = _x_axis(x, coords, result)
    ys = coords["confidence"]
    finite = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    removed = _removed_mask(result, xs.size) if result is not None else np.zeros(xs.size, dtype=bool)
    kept_ids = _subsample(finite[~removed[finite]], max_points, rng)
    colour = coords["correct_epochs"]
    style = dict(s=4, alpha=0.35 if result is not None else 0.6, linewidths=0, rasterized=True)
    kept_label = f"kept ({int((~removed).sum()):,})" if result is not None else None
    if np.isfinite(colour).any():
        # one colour per whole number of correct epochs, 0 ... K
        top = max(1, int(num_epochs))
        cmap = colormaps["viridis"].resampled(top + 1)
        norm = BoundaryNorm(np.arange(-0.5, top + 1.5), cmap.N)
        sc = ax.scatter(xs[kept_ids], ys[kept_ids], c=colour[kept_ids], cmap=cmap, norm=norm, label=kept_label, **style)
        if colorbar:
            step = max(1, -(-(top + 1) // 10))
            fig.colorbar(sc, ax=ax, ticks=np.arange(0, top + 1, step), label="epochs classified correctly")
    else:
        ax.scatter(xs[kept_ids], ys[kept_ids], color="tab:blue", label=kept_label, **style)
    if result is not None:
        removed_ids = _subsample(finite[removed[finite]], max_points, rng)
        ax.scatter(
            xs[removed_ids], ys[removed_ids], s=6, color="crimson", alpha=0.8, linewidths=0, rasterized=True,
            label=f"removed ({int(removed.sum()):,} = {100 * result.prune_ratio:g}%)",
        )  # fmt: skip
        legend = ax.legend(loc="lower right", fontsize=8, markerscale=3, framealpha=0.9)
        for handle in legend.legend_handles:
            handle.set_alpha(1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean p(y|x) over epochs  (confidence)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=min(-0.005, float(np.nanmin(xs[finite])) if finite.size else 0.0))
    ax.set_title(title, fontsize=10)
    # Region names sit where Dyn-Unc removes points: on a light box above the points, so they stay readable.
    box = dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.75)
    text = dict(transform=ax.transAxes, fontsize=8, color="0.25", zorder=5, bbox=box)
    ax.text(0.02, 0.975, "easy", va="top", **text)
    ax.text(0.02, 0.025, "hard / mislabeled", va="bottom", **text)
    ax.text(0.98, 0.5, "uncertain", ha="right", **text)


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
    mislabeled ones bottom-left, uncertain ones to the right.

    Args:
        record (`ScoreRecord`): needs `p_target`; `correct` gives the colour.
        result (`PruneResult`, *optional*): a selection made on this record; its removed samples are overlaid.
        path (`str`, *optional*): PNG file to write.
        ax (`matplotlib.axes.Axes`, *optional*): draw into these axes instead of a new figure.
        x (`str`, *optional*, defaults to `"auto"`): the x-axis: `"std"` (std of p(y|x) over all epochs),
            `"score"` (the result's scores: for Dyn-Unc the windowed uncertainty U that chose the removed samples),
            or `"auto"` (`"score"` for a Dyn-Unc result, else `"std"`).
        max_points (`int`, *optional*, defaults to 50,000): at most this many points per layer are drawn (a seeded
            uniform subsample), so an ImageNet-size map stays readable and fast; `None` draws all.
        seed (`int`, *optional*, defaults to 0): subsampling seed.
        title (`str`, *optional*): defaults to the method, ratio and record size.
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
    fig, ax = _figure_and_axes(ax, (6.4, 5.2))
    _draw_map(ax, fig, coords, result, x, max_points, np.random.default_rng(seed), record.num_epochs, title, True)
    return _save(fig, path)


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
    x-axis (`x="std"` by default, so the panels compare).

    Args:
        record (`ScoreRecord`): the record the results were selected from.
        results (`dict[str, PruneResult]` or a list): one panel each, titled by key (or method).
        path (`str`, *optional*): PNG file to write.
        ncols (`int`, *optional*, defaults to 3): panels per row.
        x (`str`, *optional*, defaults to `"std"`): as in `data_map`.
        max_points (`int`, *optional*, defaults to 20,000): points per layer per panel (seeded subsample).
        seed (`int`, *optional*, defaults to 0): subsampling seed.

    Returns:
        `matplotlib.figure.Figure`.
    """
    _require_matplotlib()
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
    for ax, (label, r) in zip(axes.flat, items):
        _draw_map(ax, fig, coords, r, x, max_points, np.random.default_rng(seed), record.num_epochs,
                  f"{label}: {100 * r.prune_ratio:g}% removed", colorbar=False)  # fmt: skip
    for ax in list(axes.flat)[len(items) :]:
        ax.axis("off")
    fig.suptitle("Removed samples (red) on the data map; colour = epochs classified correctly", fontsize=11)
    return _save(fig, path)


def score_histogram(results: Sequence[object], path: str | os.PathLike | None = None, *, ax=None, axes=None):
    """Histograms of the scores of kept vs removed rows, one panel per result (e.g. per ratio of one run).

    A result made on part of its split (`PruneResult.to_source_rows`) counts only the rows it scored as removed.

    Args:
        results (list of `PruneResult`): results sharing one score vector (the ratios of one run).
        path (`str`, *optional*): PNG file to write.
        ax (`matplotlib.axes.Axes`, *optional*): draw a single result into these axes.
        axes (sequence of `matplotlib.axes.Axes`, *optional*): one axes per result to draw into.

    Returns:
        `matplotlib.figure.Figure`, or `None` when no score is finite (nothing to draw).
    """
    _require_matplotlib()
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
        panel.set_title(f"prune_ratio={r.prune_ratio:g} (fraction removed)", fontsize=9)
        panel.set_ylabel("rows")
        panel.legend(fontsize=8)
    axes[-1].set_xlabel(f"{results[0].method} score")
    return _save(fig, path)


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
    return _save(fig, path)
