"""InfoBatch: unbiased dynamic pruning by loss (Qin et al., "InfoBatch: Lossless Training Speed Up by Unbiased
Dynamic Data Pruning", ICLR 2024).

Each epoch, the "well-learned" samples W = {i : s_i < mean(s)} (score = the sample's latest loss; samples never seen
are never well-learned) are pruned at random with probability r, and the loss of each kept well-learned sample is
multiplied by 1 / (1 - r). Every sample of W survives with probability 1 - r and counts 1 / (1 - r) when it does, so
the expected gradient of the epoch equals the full data's::

    E[ sum_{i kept} w_i * grad l_i ] = sum_{i in W} (1 - r) * grad l_i / (1 - r) + sum_{i not in W} grad l_i
                                     = sum_i grad l_i

Training on the full data for the last epochs ("annealing", Qin et al. use delta = 0.875: pruning stops at epoch
floor(delta * num_epochs)) removes what remains of the bias of stale scores.

How it fits a constant epoch length. `PruningTrainer`, like every sampler here, keeps the number of samples per
epoch constant (`k = n - floor(prune_ratio * n)`) so that `Trainer`'s step count, `max_steps` and LR schedule hold.
InfoBatch's own sampler shrinks and grows instead. Here the number removed, `q = n - k`, is fixed, and r becomes the
per-epoch ratio that meets it:

* `q_W = min(q, floor(max_ratio * |W|))` samples are removed uniformly from W: `r_W = q_W / |W|`, kept weight
  `1 / (1 - r_W)`. This is InfoBatch's rule with r chosen each epoch.
* if W cannot supply all of `q` (early epochs, or `prune_ratio` above `max_ratio * |W| / n`), the remaining
  `q - q_W` are removed uniformly from the other samples, whose kept ones get `1 / (1 - r_rest)`.
* annealing epochs (and epochs before any score exists) draw `k` samples uniformly from all `n` with weight `n / k`.

Each stratum is sampled uniformly without replacement and re-weighted by the inverse of its keep probability, so the
expected weighted gradient of *every* epoch equals the full-data gradient (tested on a toy problem in
`tests/test_dynamic.py`). The weights reach the loss through `PruningTrainer.compute_loss` (per-sample cross-entropy,
see `hf_prune.dynamic.loss`), `DynamicPruningSampler.loss_weights` or the `loss_weight` column of
`DynamicPruningDataset`.
"""

from __future__ import annotations

import math

import numpy as np

from .base import DynamicPolicy, Selection, register_policy


@register_policy
class InfoBatch(DynamicPolicy):
    """Random pruning of below-mean-loss samples with 1/(1-r) loss rescaling and a full-data tail (Qin et al. 2024).

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5):
            Fraction of *all* samples removed per pruned epoch (the constant budget `q`), in [0, 1).
        delta (`float`, *optional*, defaults to 0.875):
            Pruning stops at epoch `floor(delta * num_epochs)`; the last `1 - delta` of the epochs use uniform,
            re-weighted draws of the same size (see the module docstring). In (0, 1].
        num_epochs (`int`, *optional*):
            Total number of epochs, needed for the annealing tail; `None` prunes every epoch. `PruningTrainer`
            sets it from `num_train_epochs`.
        max_ratio (`float`, *optional*, defaults to 0.9):
            Upper bound of the per-epoch ratio `r` applied to the well-learned samples, which bounds their loss weight
            by `1 / (1 - max_ratio)` (10 by default). In (0, 1).
    """

    name = "infobatch"
    summary = (
        "Prune below-mean-loss samples at random, rescale the kept by 1/(1-r), full data at the end (Qin et al. 2024)."
    )

    def __init__(
        self, prune_ratio: float = 0.5, delta: float = 0.875, num_epochs: int | None = None, max_ratio: float = 0.9
    ):
        super().__init__(prune_ratio)
        delta, max_ratio = float(delta), float(max_ratio)
        if not (0.0 < delta <= 1.0):
            raise ValueError(
                f"delta must be in (0, 1] (the share of epochs that prune; 0.875 in Qin et al.); got {delta}."
            )
        if not (0.0 < max_ratio < 1.0):
            raise ValueError(f"max_ratio must be in (0, 1): kept well-learned samples weigh 1/(1-r); got {max_ratio}.")
        if num_epochs is not None and int(num_epochs) < 1:
            raise ValueError(f"num_epochs must be >= 1 or None; got {num_epochs}.")
        self.delta = delta
        self.max_ratio = max_ratio
        self.num_epochs = int(num_epochs) if num_epochs is not None else None

    @property
    def params(self):
        return {**super().params, "delta": self.delta, "num_epochs": self.num_epochs, "max_ratio": self.max_ratio}

    @property
    def stop_epoch(self) -> int | None:
        """First epoch of the annealing tail, or `None` if every epoch prunes."""
        return None if self.num_epochs is None else int(math.floor(self.delta * self.num_epochs + 1e-9))

    def _allocate(self, num_samples):
        return {"score": np.full(num_samples, np.nan, dtype=np.float64)}

    def observe(self, ids, scores, labels=None) -> None:
        """Stores the latest loss of every observed sample; unobserved samples keep their last score."""
        ids, s = self._validate_observation(ids, scores)
        self._tables["score"][ids] = s

    def scores(self):
        self._check_ready()
        return self._tables["score"].copy()

    def _select(self, epoch, num_keep, rng):
        n = self.num_samples
        q = n - num_keep
        score = self._tables["score"]
        seen = ~np.isnan(score)
        annealing = self.stop_epoch is not None and epoch >= self.stop_epoch
        if annealing or not seen.any() or q == 0:
            ids = rng.choice(n, size=num_keep, replace=False)
            return Selection(ids, np.full(num_keep, n / num_keep), info={"annealing": annealing, "r": q / n})
        well = seen & (score < score[seen].mean())
        w_ids = np.flatnonzero(well)
        rest = np.flatnonzero(~well)
        q_w = min(q, int(math.floor(self.max_ratio * w_ids.size)))
        q_rest = min(q - q_w, rest.size)  # at extreme ratios the rest cannot supply it all: W gives more
        q_w = q - q_rest
        keep_w = rng.choice(w_ids, size=w_ids.size - q_w, replace=False)
        keep_rest = rng.choice(rest, size=rest.size - q_rest, replace=False) if q_rest else rest
        r_w = q_w / w_ids.size if w_ids.size else 0.0
        r_rest = q_rest / rest.size if rest.size else 0.0
        weights = np.concatenate(
            [
                np.full(keep_w.size, 1.0 / max(1.0 - r_w, 1e-12)),
                np.full(keep_rest.size, 1.0 / max(1.0 - r_rest, 1e-12)),
            ]
        )
        info = {"annealing": False, "r": r_w, "r_rest": r_rest, "num_well_learned": int(w_ids.size)}
        return Selection(np.concatenate([keep_w, keep_rest]), weights, info=info)
