"""From dynamic to static: how often each sample was selected, Raju et al.'s always / sometimes / never histogram
(Fig. 3), and a static `PruneResult` of the most selected samples.

The counts come from the `selected` signal that `PruningTrainer` writes into the `ScoreRecord` when a dynamic
policy runs (1.0 where the sample was in the epoch's selection, 0.0 where not), or from any `[epochs, n]` 0/1 array.
A selection lasts `pruning_period` epochs, so by default only the epochs that drew a new selection are counted
(Raju et al. count "the number of times each sample is selected across all checkpoints").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..record import ScoreRecord
from ..result import PruneResult
from .base import check_ratio


SELECTED_SIGNAL = "selected"


def _selected_matrix(source) -> tuple[np.ndarray, int]:
    if isinstance(source, ScoreRecord):
        source.require(SELECTED_SIGNAL, method="dynamic selection counts")
        period = int(source.metadata.get("dynamic", {}).get("pruning_period", 1))
        return np.asarray(source.signal(SELECTED_SIGNAL)), period
    return np.asarray(source, dtype=np.float32), 1


def selection_counts(source, pruning_period: int | None = None) -> tuple[np.ndarray, int]:
    """Times each sample was selected, and out of how many selections.

    Args:
        source (`ScoreRecord` or `np.ndarray` `[epochs, n]`): a record with the `selected` signal, or 0/1 rows.
        pruning_period (`int`, *optional*): count only epochs `0, T_p, 2 T_p, ...`; defaults to the record's
            (1 for arrays). Pass 1 to count every epoch.

    Returns:
        `(counts [n] int64, num_selections int)`.
    """
    selected, period = _selected_matrix(source)
    period = int(pruning_period or period)
    if period < 1:
        raise ValueError(f"pruning_period must be >= 1; got {period}.")
    rows = selected[::period]
    if rows.shape[0] == 0:
        raise ValueError("No epoch recorded yet: nothing was selected.")
    return np.nansum(rows, axis=0).astype(np.int64), int(rows.shape[0])


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


def plot_selection_histogram(
    source,
    path: str | os.PathLike,
    pruning_period: int | None = None,
    low: float = 0.1,
    high: float = 0.9,
    title: str | None = None,
) -> Path:
    """Writes the normalised histogram of selection counts (Raju et al. Fig. 3) as a PNG, with the never /
    sometimes / always regions shaded and their shares in the legend. Needs matplotlib (`pip install hf_prune[plots]`).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot_selection_histogram needs matplotlib: `pip install matplotlib`.") from e
    counts, total = selection_counts(source, pruning_period)
    groups = selection_groups(counts, total, low, high)["fractions"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.arange(total + 2) - 0.5
    ax.hist(counts, bins=bins, density=True, color="#4c72b0", edgecolor="white", zorder=2)
    ax.axvspan(-0.5, low * total, color="#c44e52", alpha=0.12, zorder=0, label=f"never ({groups['never']:.0%})")
    ax.axvspan(
        low * total,
        high * total,
        color="#8c8c8c",
        alpha=0.10,
        zorder=0,
        label=f"sometimes ({groups['sometimes']:.0%})",
    )
    ax.axvspan(
        high * total, total + 0.5, color="#55a868", alpha=0.12, zorder=0, label=f"always ({groups['always']:.0%})"
    )
    ax.set_xlabel(f"times selected (out of {total} selections)")
    ax.set_ylabel("fraction of samples")
    ax.set_title(title or "Sample selection distribution")
    ax.legend(loc="upper center", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def static_result_from_selection(
    source, prune_ratio: float, pruning_period: int | None = None, class_balanced: bool = False
) -> PruneResult:
    """A static `PruneResult` that keeps the most often selected samples (ties: lower id first).

    Args:
        source (`ScoreRecord` or `np.ndarray`): as in `selection_counts`.
        prune_ratio (`float`): fraction of samples *removed*, in [0, 1).
        pruning_period (`int`, *optional*): as in `selection_counts`.
        class_balanced (`bool`, *optional*, defaults to `False`): remove the same fraction from every class (needs
            the record's labels).

    Example:

    ```python
    >>> from hf_prune.dynamic import static_result_from_selection
    >>> result = static_result_from_selection(trainer.score_record, prune_ratio=0.3)
    >>> result.save("ucb_frequency_30")      # or result.apply(train_ds), like any other PruneResult
    ```
    """
    from ..strategies.selection import select_kept_ids

    ratio = check_ratio(prune_ratio)
    counts, total = selection_counts(source, pruning_period)
    labels = source.labels if isinstance(source, ScoreRecord) else None
    kept = select_kept_ids(counts.astype(np.float64), ratio, keep="high", labels=labels, class_balanced=class_balanced)
    meta = dict(source.metadata) if isinstance(source, ScoreRecord) else {}
    dyn = meta.get("dynamic", {})
    return PruneResult(
        kept_ids=kept,
        scores=counts.astype(np.float64),
        prune_ratio=ratio,
        method="dynamic_selection_frequency",
        params={
            "policy": dyn.get("policy"),
            "policy_params": dyn.get("params"),
            "num_selections": total,
            "pruning_period": int(pruning_period or dyn.get("pruning_period", 1)),
            "keep": "high",
            "class_balanced": class_balanced,
        },
        num_samples=int(counts.size),
        labels=labels,
        provenance={"record": meta, "num_epochs": int(_selected_matrix(source)[0].shape[0])},
    )
