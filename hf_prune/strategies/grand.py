"""GraNd: Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021, Eq. 1, approximated from the
last layer."""

from __future__ import annotations

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


@dataclass
class GraNdConfig(StrategyConfig):
    """Parameters of `grand`.

    Args:
        epoch (`int`, *optional*, defaults to 0): epoch row `t`; the paper scores at (or right after)
            initialisation, so the first recorded epoch is the default.
        features (`str`, `np.ndarray` or `FeatureStore`, *optional*): penultimate features `[n, d]` for the
            `sqrt(1 + ||h||^2)` factor.
    """

    epoch: int = field(default=0, metadata={"help": "epoch row t (default: the first)"})
    features: Any = field(default=None, metadata={"help": "feature folder of penultimate activations (optional)"})

    def __post_init__(self):
        self.epoch = int(self.epoch)


@register_strategy
class GraNd(Strategy):
    """GraNd (Paul et al. 2021, Eq. 1): the expected norm of the per-sample loss gradient,
    ``GraNd(x) = E_runs || grad_theta L(f(x; theta_t), y) ||_2``, at an early epoch `t`. Keeps the **highest**.

    **Approximation (last layer only).** For a final linear layer `z = W h + b` and cross-entropy,
    ``dL/dW = (p - y) h^T`` and ``dL/db = p - y``, so the last-layer gradient norm is exactly
    ``||p - y||_2 * sqrt(||h||^2 + 1)``. The first factor is the recorded `el2n` signal (no extra pass). When
    `features` (the penultimate activations `h`, see `hf_prune.features`) are given the second factor is applied;
    without them the score is the bias-gradient norm `||p - y||_2`, i.e. the gradient with respect to the logits.
    Gradients of earlier layers are ignored; Paul et al. note that the last layer carries most of the norm's
    variation across samples. For the factor to be exact, `h` must come from the same model as the `el2n` row
    (e.g. `epoch=-1` with features of the final model); features of another epoch make it a proxy.

    Parameters: `GraNdConfig` (`epoch`, `features`).
    """

    name = "grand"
    summary = "GraNd (Paul et al. 2021): last-layer gradient norm ||p - y|| * sqrt(1 + ||h||^2); keeps high."
    title = "GraNd"
    citation = DATA_DIET
    keep = "high"
    requires = ("el2n",)
    multi_record = True
    config_class = GraNdConfig

    def compute(self, record: ScoreRecord | Sequence[ScoreRecord]) -> Scores:
        records = as_records(record, self)
        epochs = [resolve_epoch(r, self.config.epoch) for r in records]
        err = np.mean([latest_seen(r, "el2n", e) for r, e in zip(records, epochs)], axis=0)
        provenance: dict[str, Any] = {"grand_epochs": epochs, "num_runs": len(records)}
        if self.config.features is None:
            return Scores(err, provenance)
        store = resolve_features(self.config.features, records[0], self.name)
        sq = np.empty(store.num_samples)
        chunk = 16384
        for start in range(0, store.num_samples, chunk):
            x = np.asarray(store.features[start : start + chunk], dtype=np.float64)
            sq[start : start + chunk] = (x * x).sum(1)
        out = err * np.sqrt(sq + 1.0)
        out[~store.seen] = np.nan
        return Scores(out, {**provenance, "features": store.describe()})
