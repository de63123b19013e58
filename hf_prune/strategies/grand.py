"""GraNd: Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021, Eq. 1, approximated from the
last layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..features import describe_features, resolve_features
from ..record import ScoreRecord
from ._signals import latest_seen
from .base import Strategy, as_records, register_strategy


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

    Args:
        epoch (`int`, *optional*, defaults to 0): epoch row `t`; the paper scores at (or right after)
            initialisation, so the first recorded epoch is the default.
        features (`str`, `np.ndarray` or `FeatureStore`, *optional*): penultimate features `[n, d]`; see above.
    """

    name = "grand"
    summary = "GraNd (Paul et al. 2021): last-layer gradient norm ||p - y|| * sqrt(1 + ||h||^2); keeps high."
    keep = "high"
    requires = ("el2n",)
    multi_record = True

    def __init__(self, epoch: int = 0, features=None):
        super().__init__(epoch=int(epoch), features=describe_features(features))
        self._features = features
        self._used_features = None

    def score(self, record: ScoreRecord | Sequence[ScoreRecord]) -> np.ndarray:
        records = as_records(record, self)
        err = np.mean([latest_seen(r, "el2n", self.params["epoch"]) for r in records], axis=0)
        if self._features is None:
            return err
        store = resolve_features(self._features, records[0], self.name)
        self._used_features = store
        sq = np.empty(store.num_samples)
        chunk = 16384
        for start in range(0, store.num_samples, chunk):
            x = np.asarray(store.features[start : start + chunk], dtype=np.float64)
            sq[start : start + chunk] = (x * x).sum(1)
        out = err * np.sqrt(sq + 1.0)
        out[~store.seen] = np.nan
        return out

    def provenance(self) -> dict:
        return {"features": self._used_features.describe()} if self._used_features is not None else {}
