"""GraNd: Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021, Eq. 1: the full-network
per-sample gradient norm (from `hf_prune.grad_norms`) or its exact last-layer part from the record."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..citations import DATA_DIET
from ..features import resolve_features
from ..record import ScoreRecord
from ..stats import latest_seen, resolve_epoch
from .base import Scores, Strategy, as_records, register_strategy
from .config import StrategyConfig


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass
class GraNdConfig(StrategyConfig):
    """Parameters of `grand`.

    Args:
        epoch (`int`, *optional*, defaults to 0): last-layer mode: the epoch row `t` of `el2n`; the paper scores at
            (or right after) initialisation, so the first recorded epoch is the default.
        features (`str`, `np.ndarray`, `FeatureStore`, or a list of them, *optional*): last-layer mode: penultimate
            features `[n, d]` for the `sqrt(1 + ||h||^2)` factor, **one per record** (run) when several are scored.
        grad_norms (`str`, `np.ndarray`, or a list of them, *optional*): full-network mode: per-sample gradient norms
            `[n]` of each run (arrays or `.npy` files from `hf_prune.grad_norms.per_sample_grad_norms`); when
            given, the record's signals are not used.
    """

    epoch: int = field(default=0, metadata={"help": "epoch row t (default: the first)"})
    features: Any = field(default=None, metadata={"help": "feature folder(s) of penultimate activations, one per run"})
    grad_norms: Any = field(default=None, metadata={"help": "full-network gradient norms (.npy), one per run"})

    def __post_init__(self):
        self.epoch = int(self.epoch)


@register_strategy
class GraNd(Strategy):
    """GraNd (Paul et al. 2021, Eq. 1): the expected norm of the per-sample loss gradient over independent runs,
    ``GraNd(x) = E_runs || grad_theta L(f(x; theta_t), y) ||_2``, at an early epoch `t`. Keeps the **highest**.
    Each run's norm is computed first and the norms are averaged over runs (the paper's `E` over runs, the data-diet
    code's `get_mean_score`).

    **Full network** (`grad_norms=`): the norm over every parameter, as the paper and the data-diet code
    (`scores.py`, `get_grad_norm_fn`: eval mode, un-augmented inputs) compute it. Compute each run's norms with
    `hf_prune.grad_norms.per_sample_grad_norms(trainer, model=checkpoint_of_the_run)`; practical for small models
    (it holds `chunk x parameters` gradients), see that module.

    **Last layer** (default, free from the record). For a final linear layer `z = W h + b` and cross-entropy,
    ``dL/dW = (p - y) h^T`` and ``dL/db = p - y``, so the last-layer gradient norm is exactly
    ``||p - y||_2 * sqrt(||h||^2 + 1)``. The first factor is the recorded `el2n` signal (no extra pass); the second
    needs `features` (the penultimate activations `h`, see `hf_prune.features`), one per run; without them the
    score is the bias-gradient norm `||p - y||_2`. Gradients of earlier layers are ignored; Paul et al. note that the
    last layer carries most of the norm's variation across samples. For the factor to be exact, `h` must come from
    the same model as the `el2n` row (e.g. `epoch=-1` with features of the final model).

    Deliberate differences from the data-diet code: NaN (a run that did not score a sample) is left out of that
    sample's mean over runs; the last-layer mode is an exact part of the full norm, not the full norm.

    Non-finite values: last layer: the recorded `el2n` at the latest finite epoch up to `t` (epochs with a NaN or
    infinite loss or logits are left out, as unseen ones are), averaged over the runs that have one. Full network:
    the norms of `hf_prune.grad_norms`, a pass of its own, which the record's non-finite epochs do not enter.
    Either way a sample with no score that a record saw with non-finite values is kept, not removed first
    (`Strategy.select`).

    Parameters: `GraNdConfig` (`epoch`, `features`, `grad_norms`).
    """

    name = "grand"
    summary = "GraNd (Paul et al. 2021): per-sample gradient norm, full network or last layer, mean over runs; high."
    title = "GraNd"
    citation = DATA_DIET
    keep = "high"
    requires = ("el2n",)
    multi_record = True
    config_class = GraNdConfig

    def required_signals(self) -> tuple[str, ...]:
        return () if self.config.grad_norms is not None else self.requires

    def compute(self, record: ScoreRecord | Sequence[ScoreRecord]) -> Scores:
        records = as_records(record, self)
        n = records[0].num_samples
        if self.config.grad_norms is not None:
            runs = [self._load_norms(item, n) for item in _as_list(self.config.grad_norms)]
            return Scores(_nanmean_runs(runs), {"mode": "full_network", "num_runs": len(runs)})
        epochs = [resolve_epoch(r, self.config.epoch) for r in records]
        errors = [latest_seen(r, "el2n", e) for r, e in zip(records, epochs)]
        provenance: dict[str, Any] = {"mode": "last_layer", "grand_epochs": epochs, "num_runs": len(records)}
        if self.config.features is None:
            return Scores(_nanmean_runs(errors), provenance)
        features = _as_list(self.config.features)
        if len(features) != len(records):
            raise ValueError(
                f"`grand` got {len(features)} feature set(s) for {len(records)} runs: the last-layer norm of each run "
                "needs that run's own penultimate features (pass `features=[run_0, run_1, ...]`), since GraNd "
                "averages each run's norm."
            )
        runs, described = [], []
        for err, feats, rec in zip(errors, features, records):
            store = resolve_features(feats, rec, self.name)
            runs.append(_run_norm(err, store))
            described.append(store.describe())
        return Scores(_nanmean_runs(runs), {**provenance, "features": described if len(described) > 1 else described[0]})

    def _load_norms(self, item, n: int) -> np.ndarray:
        values = np.load(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape != (n,):
            raise ValueError(f"`grand` got gradient norms of shape {values.shape}; the record has {n} samples.")
        return values


def _run_norm(err: np.ndarray, store) -> np.ndarray:
    """`||p - y|| * sqrt(1 + ||h||^2)` of one run, its features streamed in chunks."""
    sq = np.empty(store.num_samples)
    chunk = 16384
    for start in range(0, store.num_samples, chunk):
        x = np.asarray(store.features[start : start + chunk], dtype=np.float64)
        sq[start : start + chunk] = (x * x).sum(1)
    out = err * np.sqrt(sq + 1.0)
    out[~store.seen] = np.nan
    return out


def _nanmean_runs(runs: list[np.ndarray]) -> np.ndarray:
    """Mean over runs, leaving out the NaN of a run that did not score a sample (NaN where no run did)."""
    stacked = np.stack(runs)
    seen = ~np.isnan(stacked)
    total = np.where(seen, stacked, 0.0).sum(0)
    count = seen.sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
