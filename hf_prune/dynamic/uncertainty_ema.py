"""Uncertainty sampling with an exponential moving average (Raju et al. 2021, Sec. 3.2.1).

The per-sample score is the cross-entropy loss (Eq. 1), smoothed across observations with an EMA (Eq. 2)::

    s_uncertainty(x) = -log softmax(f(x))_y                                     (1)
    s_ema(x)         = alpha * s_uncertainty(x) + (1 - alpha) * s_previous_ema(x)  (2)

The first observation of a sample initialises `s_ema` to it ("the initial mean scores are aggregated from the random
model"). The `k` samples with the highest `s_ema` are kept. Samples never observed yet rank first (they are explored
before any scored sample), ties are broken at random.

`EmaScores` holds the table shared with epsilon-greedy and UCB: the EMA, the running variance of Eq. 3, a `seen` flag
and the label. `class_balanced=True` (an addition to the paper) keeps the highest scores *within every class*, each
class keeping its share of the `k`: early in training the loss ranks whole classes (a random model's logits favour
some classes), so a plain top-k can drop entire classes for a pruning period.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..selection import class_quotas_by_total, rank, top_per_class
from .base import DynamicPolicy, PolicyConfig, Selection, register_policy


@dataclass
class EmaConfig(PolicyConfig):
    """Parameters of the EMA-filtered loss policies (`uncertainty_ema`; `epsilon_greedy` and `ucb` add theirs).

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction of samples removed per epoch, in [0, 1).
        alpha (`float`, *optional*, defaults to 0.8): EMA weight of the newest loss, in (0, 1]; 0.8 in the paper.
        class_balanced (`bool`, *optional*, defaults to `False`): rank within each class (labels from `observe`).
    """

    alpha: float = field(
        default=0.8, metadata={"help": "EMA weight of the newest loss (Raju et al. Eq. 2-3), in (0, 1]"}
    )
    class_balanced: bool = field(
        default=False,
        metadata={
            "help": "rank within every class so each keeps its share of the selection (an addition to Raju et al.; "
            "stops a loss ranking from dropping whole classes early on)"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.class_balanced = bool(self.class_balanced)
        self.alpha = float(self.alpha)
        if not (0.0 < self.alpha <= 1.0):
            raise ValueError(
                f"alpha must be in (0, 1] (the EMA weight of the newest loss; 0.8 in Raju et al.); got {self.alpha}."
            )


@dataclass
class UncertaintyEMAConfig(EmaConfig):
    """Parameters of `uncertainty_ema` (see `EmaConfig`)."""


class EmaScores(DynamicPolicy):
    """Base of the EMA-filtered loss policies: keeps `ema` (Eq. 2) and `var` (Eq. 3) per sample. Parameters: an
    `EmaConfig` (`prune_ratio`, `alpha`, `class_balanced`).
    """

    config_class = EmaConfig

    def _allocate(self, num_samples):
        return {
            "ema": np.full(num_samples, np.nan, dtype=np.float64),
            "var": np.zeros(num_samples, dtype=np.float64),
            "seen": np.zeros(num_samples, dtype=bool),
            "label": np.full(num_samples, -1, dtype=np.int64),
        }

    def observe(self, ids, scores, labels=None) -> None:
        """Eq. 3 then Eq. 2 for every observed sample (the variance uses the *previous* EMA)."""
        raw_ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        ids, s = self._validate_observation(ids, scores)
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64).reshape(-1)
            if labels.shape != raw_ids.shape:
                raise ValueError(f"Got {raw_ids.size} ids but {labels.size} labels; pass one label per id.")
            self._tables["label"][raw_ids] = labels
        t = self._tables
        old = t["seen"][ids]
        prev = t["ema"][ids]
        a = self.config.alpha
        var = np.where(old, (1.0 - a) * t["var"][ids] + a * (s - prev) ** 2, 0.0)  # Eq. 3; starts at zero
        ema = np.where(old, a * s + (1.0 - a) * prev, s)  # Eq. 2; starts at the first score
        t["var"][ids] = var
        t["ema"][ids] = ema
        t["seen"][ids] = True

    def scores(self) -> np.ndarray:
        self._check_ready()
        return self._tables["ema"].copy()

    def _top(self, num_keep, rng) -> np.ndarray:
        """The `num_keep` highest scores, per class when `class_balanced`."""
        if self.config.class_balanced:
            return top_per_class(
                self.scores(), self._tables["label"],
                lambda classes, counts: class_quotas_by_total(counts, num_keep, classes),
                keep="high", nan="first", rng=rng,
            )  # fmt: skip
        return rank(self.scores(), keep="high", nan="first", rng=rng)[:num_keep]

    def _select(self, epoch, num_keep, rng):
        return Selection(self._top(num_keep, rng))


@register_policy
class UncertaintyEMA(EmaScores):
    """Keeps the `k` samples with the highest EMA of the loss (Raju et al. 2021, Eq. 1-2).

    Parameters: `UncertaintyEMAConfig` (`prune_ratio`, `alpha`, `class_balanced`).
    """

    name = "uncertainty_ema"
    summary = "Highest EMA of the per-sample loss (Raju et al. 2021, Eq. 1-2)."
    config_class = UncertaintyEMAConfig
