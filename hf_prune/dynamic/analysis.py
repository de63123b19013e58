"""From dynamic to static: how often each sample was selected, Raju et al.'s always / sometimes / never histogram
(Fig. 3), and a static `PruneResult` of the most selected samples.

The counts come from the `selected` signal that `DynamicPruningTrainer` writes into the `ScoreRecord` when a dynamic
policy runs (1.0 where the sample was in the epoch's selection, 0.0 where not), or from any `[epochs, n]` 0/1 array.
A selection lasts `pruning_period` epochs, so by default only the epochs that drew a new selection are counted
(Raju et al. count "the number of times each sample is selected across all checkpoints").
"""

from __future__ import annotations

import numpy as np

from ..citations import DYNAMIC_DATA_PRUNING
from ..plots import selection_histogram
from ..record import ScoreRecord
from ..result import PruneResult
from ..selection import check_ratio, select_kept_ids
from ..stats import selection_counts as _record_selection_counts
from .base import SELECTED_SIGNAL


def _period_of(source, pruning_period: int | None) -> int:
    if pruning_period is not None:
        return int(pruning_period)
    if isinstance(source, ScoreRecord):
        return int(source.metadata.get("dynamic", {}).get("pruning_period", 1))
    return 1


def _policy_text(dyn: dict) -> str:
    """How the dynamic run selected, for the card: policy, its parameters, kept per epoch, period, scores."""
    if not dyn.get("policy"):
        return ""
    params = ", ".join(f"{k}={v}" for k, v in sorted((dyn.get("params") or {}).items()))
    kept, n = dyn.get("num_kept_per_epoch"), dyn.get("num_samples")
    scores = {"pass": "a scoring pass over the training set", "train_loss": "the training losses of the samples seen"}
    text = f" The run used `{dyn['policy']}`" + (f" ({params})" if params else "")
    if kept and n:
        text += f", training on {kept:,} of {n:,} rows per epoch"
    text += f", re-selecting every {dyn.get('pruning_period', 1)} epoch(s)"
    if dyn.get("scoring") in scores:
        text += f" from {scores[dyn['scoring']]}"
    return text + "."


def selection_counts(source, pruning_period: int | None = None) -> tuple[np.ndarray, int]:
    """Times each sample was selected, and out of how many selections.

    A record is read one epoch row at a time (ImageNet-21K records never come into memory whole).

    Args:
        source (`ScoreRecord` or `np.ndarray` `[epochs, n]`): a record with the `selected` signal, or 0/1 rows.
        pruning_period (`int`, *optional*): count only epochs `0, T_p, 2 T_p, ...`; defaults to the record's
            (1 for arrays). Pass 1 to count every epoch.

    Returns:
        `(counts [n] int64, num_selections int)`.
    """
    period = _period_of(source, pruning_period)
    if period < 1:
        raise ValueError(f"pruning_period must be >= 1; got {period}.")
    if isinstance(source, ScoreRecord):
        source.require(SELECTED_SIGNAL, method="dynamic selection counts")
        counts, total = _record_selection_counts(source, SELECTED_SIGNAL, period)
    else:
        rows = np.asarray(source, dtype=np.float32)[::period]
        counts, total = (np.nan_to_num(rows, nan=0.0) > 0.5).sum(axis=0).astype(np.int64), int(rows.shape[0])
    if total == 0:
        raise ValueError("No epoch recorded yet: nothing was selected.")
    return counts, total


def plot_selection_histogram(source, path=None, pruning_period: int | None = None, **kwargs):
    """`hf_prune.plots.selection_histogram` (Raju et al. Fig. 3) of a record or `[epochs, n]` 0/1 array; returns the
    `Figure` and writes `path` when given. Needs matplotlib (`pip install 'hf_prune[plots]'`)."""
    counts = selection_counts(source, pruning_period)
    return selection_histogram(counts, path, **kwargs)


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
    ratio = check_ratio(prune_ratio)
    period = _period_of(source, pruning_period)
    counts, total = selection_counts(source, period)
    labels = source.labels if isinstance(source, ScoreRecord) else None
    kept = select_kept_ids(counts.astype(np.float64), ratio, keep="high", labels=labels, class_balanced=class_balanced)
    meta = dict(source.metadata) if isinstance(source, ScoreRecord) else {}
    dyn = meta.get("dynamic", {})
    num_epochs = source.num_epochs if isinstance(source, ScoreRecord) else int(np.shape(source)[0])
    method_info = {
        "name": "dynamic_selection_frequency",
        "title": f"Selection frequency of dynamic pruning ({dyn.get('policy') or 'a dynamic policy'})",
        "description": (
            "The rows a dynamic pruning policy selected most often during training (Raju et al. 2021, Fig. 3): "
            f"each row's score is the number of the {total} selections that included it; the most selected are kept."
            + _policy_text(dyn)
        ),
        "score_name": "times selected",
        "citation": DYNAMIC_DATA_PRUNING,
    }
    return PruneResult(
        kept_ids=kept,
        scores=counts.astype(np.float64),
        prune_ratio=ratio,
        method="dynamic_selection_frequency",
        params={
            "policy": dyn.get("policy"),
            "policy_params": dyn.get("params"),
            "num_selections": total,
            "pruning_period": period,
            "keep": "high",
            "class_balanced": class_balanced,
        },
        num_samples=int(counts.size),
        labels=labels,
        provenance={"record": meta, "num_epochs": num_epochs, "method": method_info},
    )
