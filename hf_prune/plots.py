"""Data maps: where in the training dynamics the pruned samples lie (Dyn-Unc paper, Fig. 2 and Fig. 4).

Each sample is a point at x = std of its target probability over epochs, y = its mean, coloured by the number of
epochs in which it was classified correctly. Easy samples sit top-left (always right, stable), hard or mislabeled
ones bottom-left (always wrong, stable), uncertain ones to the right. A `PruneResult` overlays the removed samples.

matplotlib is an optional extra (`pip install hf_prune[plots]`), imported only when a plot is drawn; core modules
never import this one.

Example:

```python
>>> from hf_prune.plots import compare_removed, data_map
>>> data_map(record, result, path="dyn_unc_map.png")
>>> compare_removed(record, {"dyn_unc": r1, "forgetting": r2, "el2n": r3}, path="removed.png")
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .record import ScoreRecord
from .result import PruneResult


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib, an optional extra: `pip install 'hf_prune[plots]'` (or `pip install matplotlib`)."
        ) from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def map_coordinates(record: ScoreRecord, signal: str = "p_target") -> dict[str, np.ndarray]:
    """The data-map coordinates of every sample, streamed over epochs, NaN-aware:

    `std` (ddof = 0) and `mean` of `signal` over epochs, and `correct_epochs`, the number of epochs classified
    correctly (NaN if the record has no `correct` signal).
    """
    from .strategies._signals import epoch_moments

    count, mean, m2 = epoch_moments(record, signal)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.maximum(m2, 0.0) / count)
    mean[count == 0] = np.nan
    std[count == 0] = np.nan
    if record.has_signal("correct"):
        correct = np.zeros(record.num_samples)
        for row in record.iter_epochs("correct"):
            correct += np.nan_to_num(np.asarray(row, dtype=np.float64), nan=0.0) > 0.5
    else:
        correct = np.full(record.num_samples, np.nan)
    return {"std": std, "mean": mean, "correct_epochs": correct}


def _subsample(ids: np.ndarray, max_points: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_points is None or ids.size <= max_points:
        return ids
    return np.sort(rng.choice(ids, size=max_points, replace=False))


def _draw(ax, coords, result, max_points, rng, num_epochs, title, colorbar=True, fig=None):
    finite = np.flatnonzero(np.isfinite(coords["std"]) & np.isfinite(coords["mean"]))
    shown = _subsample(finite, max_points, rng)
    colour = coords["correct_epochs"]
    has_colour = np.isfinite(colour).any()
    background = dict(s=4, alpha=0.35 if result is not None else 0.6, linewidths=0, rasterized=True)
    if has_colour:
        sc = ax.scatter(
            coords["std"][shown], coords["mean"][shown], c=colour[shown], cmap="viridis", vmin=0,
            vmax=max(1, num_epochs), **background,
        )  # fmt: skip
        if colorbar and fig is not None:
            fig.colorbar(sc, ax=ax, label="# epochs correct")
    else:
        ax.scatter(coords["std"][shown], coords["mean"][shown], color="tab:blue", **background)
    if result is not None:
        removed = np.intersect1d(result.removed_ids, finite)
        removed_shown = _subsample(removed, max_points, rng)
        ax.scatter(
            coords["std"][removed_shown], coords["mean"][removed_shown], s=6, color="crimson", alpha=0.8,
            linewidths=0, label=f"removed ({result.removed_ids.size:,} = {100 * result.prune_ratio:g}%)",
            rasterized=True,
        )  # fmt: skip
        ax.legend(loc="lower right", fontsize=8, markerscale=3, framealpha=0.9)
    ax.set_xlabel("std of p(y|x) over epochs  (uncertainty)")
    ax.set_ylabel("mean p(y|x) over epochs  (confidence)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=-0.005)
    ax.set_title(title, fontsize=10)
    ax.text(0.01, 0.98, "easy", transform=ax.transAxes, va="top", fontsize=8, color="0.3")
    ax.text(0.01, 0.02, "hard / mislabeled", transform=ax.transAxes, va="bottom", fontsize=8, color="0.3")
    ax.text(0.99, 0.5, "uncertain", transform=ax.transAxes, ha="right", fontsize=8, color="0.3")


def data_map(
    record: ScoreRecord,
    result: PruneResult | None = None,
    path: str | os.PathLike | None = None,
    max_points: int | None = 50_000,
    seed: int = 0,
    title: str | None = None,
    coords: dict[str, np.ndarray] | None = None,
):
    """Draws the data map of `record` (Dyn-Unc Fig. 2), optionally with the samples `result` removed in red.

    Args:
        record (`ScoreRecord`): needs `p_target`; `correct` gives the colour.
        result (`PruneResult`, *optional*): a selection made on this record; its removed samples are overlaid.
        path (`str`, *optional*): PNG file to write; without it the figure is returned.
        max_points (`int`, *optional*, defaults to 50,000): at most this many points per layer are drawn (a seeded
            uniform subsample), so an ImageNet-size map stays readable and fast; `None` draws all.
        seed (`int`, *optional*, defaults to 0): subsampling seed.
        title (`str`, *optional*): defaults to the method, ratio and record size.
        coords (`dict`, *optional*): precomputed `map_coordinates(record)`, to reuse across several maps.

    Returns:
        The `Path` written, or the matplotlib `Figure` when `path` is `None`.
    """
    plt = _pyplot()
    record.require("p_target", method="data_map")
    if result is not None and result.num_samples != record.num_samples:
        raise ValueError(f"The result indexes {result.num_samples} samples but the record has {record.num_samples}.")
    coords = coords or map_coordinates(record)
    if title is None:
        title = f"{record.num_samples:,} samples, {record.num_epochs} epochs"
        if result is not None:
            title = f"{result.method}: {100 * result.prune_ratio:g}% removed — {title}"
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=110)
    _draw(ax, coords, result, max_points, np.random.default_rng(seed), record.num_epochs, title, fig=fig)
    fig.tight_layout()
    return _finish(fig, path, plt)


def compare_removed(
    record: ScoreRecord,
    results: Mapping[str, PruneResult] | Sequence[PruneResult],
    path: str | os.PathLike | None = None,
    ncols: int = 3,
    max_points: int | None = 20_000,
    seed: int = 0,
):
    """Side-by-side data maps of the samples several strategies remove (Dyn-Unc Fig. 2 / Fig. 4).

    Args:
        record (`ScoreRecord`): the record the results were selected from.
        results (`dict[str, PruneResult]` or a list): one panel each, titled by key (or method).
        path (`str`, *optional*): PNG file to write; without it the figure is returned.
        ncols (`int`, *optional*, defaults to 3): panels per row.
        max_points (`int`, *optional*, defaults to 20,000): points per layer per panel (seeded subsample).
        seed (`int`, *optional*, defaults to 0): subsampling seed.
    """
    plt = _pyplot()
    record.require("p_target", method="compare_removed")
    items = list(results.items()) if isinstance(results, Mapping) else [(r.method, r) for r in results]
    if not items:
        raise ValueError("No results to compare.")
    for label, r in items:
        if r.num_samples != record.num_samples:
            raise ValueError(f"{label} indexes {r.num_samples} samples but the record has {record.num_samples}.")
    coords = map_coordinates(record)
    ncols = max(1, min(ncols, len(items)))
    nrows = -(-len(items) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.0 * nrows), dpi=100, squeeze=False)
    for ax, (label, r) in zip(axes.flat, items):
        _draw(ax, coords, r, max_points, np.random.default_rng(seed), record.num_epochs,
              f"{label}: {100 * r.prune_ratio:g}% removed", colorbar=False)  # fmt: skip
    for ax in list(axes.flat)[len(items) :]:
        ax.axis("off")
    fig.suptitle("Removed samples (red) on the data map; colour = # epochs correct", fontsize=11)
    fig.tight_layout()
    return _finish(fig, path, plt)


def _finish(fig, path, plt):
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
