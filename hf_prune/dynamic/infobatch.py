"""InfoBatch: unbiased dynamic pruning by loss (Qin et al., "InfoBatch: Lossless Training Speed Up by Unbiased
Dynamic Data Pruning", ICLR 2024), as published and as the authors' code (`infobatch/infobatch.py`) behaves.

Each pruned epoch, with `s_i` the latest training loss of sample `i` (the score table) and its mean `sbar`, the
"well-learned" samples `W = {i : s_i < sbar}` are pruned at random at ratio `r` and the loss of every kept one is
multiplied by `1 / (1 - r)`; the other samples are all trained, at weight 1. Each sample of `W` survives with
probability `1 - r` and counts `1 / (1 - r)` when it does, so the expected gradient of the epoch is the full data's::

    E[ sum_{i kept} w_i grad l_i ] = sum_{i in W} (1 - r) grad l_i / (1 - r) + sum_{i not in W} grad l_i = sum_i grad l_i

The first epoch (no loss known yet: the authors' scores all start equal, so nothing is below the mean) and the
annealing epochs `e >= floor(delta * num_epochs)` (delta = 0.875) train on the full data at weight 1. The epoch
length therefore varies: `(n - |W|) + (|W| - floor(r |W|))` samples in a pruned epoch, `n` in the others;
`DynamicPruningTrainer` gives each epoch its own number of steps and runs the LR schedule over the steps actually
taken (`hf_prune.dynamic.plan`).

The kept weight enters the loss through `DynamicPruningTrainer.compute_loss` (per-sample cross-entropy, see
`hf_prune.dynamic.loss`), `DynamicPruningSampler.loss_weights` (a device tensor refreshed once per epoch) or the
`loss_weight` column of `DynamicPruningDataset`.

`fixed_budget=True` keeps the earlier, constant-length rule instead (a departure from InfoBatch, for loops that need
one length for every epoch): each epoch removes `q = floor(prune_ratio * n)` samples, `q_W = min(q, floor(max_ratio
|W|))` uniformly from `W` (weight `1 / (1 - q_W / |W|)`) and the rest uniformly from the other samples (weight `1 / (1
- r_rest)`); annealing and score-less epochs draw `n - q` uniformly at weight `n / (n - q)`. Its expected gradient
is also the full data's, but `r` is no longer InfoBatch's (it is whatever meets the budget) and the first and last
epochs are not full.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..selection import num_kept
from .base import LatestLossConfig, LatestLossPolicy, Selection, register_policy


@dataclass
class InfoBatchConfig(LatestLossConfig):
    """Parameters of `infobatch`.

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5):
            `r`: the fraction of the *well-learned* (below-mean-loss) samples pruned in each pruned epoch, in [0, 1)
            (with `fixed_budget=True`: the fraction of *all* samples removed).
        delta (`float`, *optional*, defaults to 0.875):
            Pruning stops at epoch `floor(delta * num_epochs)`; the remaining epochs train on the full data. In
            (0, 1].
        num_epochs (`int`, *optional*):
            Total number of epochs, needed for the annealing tail; `None` prunes every epoch after the first.
            `DynamicPruningTrainer` sets it from `num_train_epochs`.
        max_ratio (`float`, *optional*, defaults to 0.9):
            Upper bound of `r`, so the kept weight is at most `1 / (1 - max_ratio)` (10 as in the authors' code).
            In (0, 1).
        fixed_budget (`bool`, *optional*, defaults to `False`):
            The constant-length departure described in the module docstring.
    """

    fixed_budget: bool = field(
        default=False,
        metadata={
            "help": "keep one epoch length for every epoch (remove floor(ratio * n) samples each epoch, re-weighted) "
            "instead of InfoBatch's own rule (prune ratio r of the below-mean-loss samples, full first and last "
            "epochs). A departure from the paper."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.fixed_budget = bool(self.fixed_budget)


@register_policy
class InfoBatch(LatestLossPolicy):
    """InfoBatch (Qin et al. 2024): prune the below-mean-loss samples at random at ratio `r`, rescale the kept ones
    by `1 / (1 - r)`, full data in the first epoch and the annealing tail.

    Fidelity to the authors' code (`infobatch.py`, `InfoBatch.prune` / `IBSampler.reset`): the same well-learned set
    (strictly below the mean of the stored losses), the same uniform draw without replacement from it, the same
    weights (`1 / (1 - r)` for the kept well-learned, 1 for every other sample; `r` capped at 0.9, their
    `keep_ratio >= 0.1`), the same full first epoch and the same annealing epochs `e >= floor(delta * num_epochs)`.
    Per-epoch trained counts and weights equal theirs on the same loss table (`tests/test_dynamic_fidelity.py`).
    Deliberate differences:

    - kept well-learned count `|W| - floor(r |W|)` (hf_prune's rule everywhere); theirs is `int((1 - r) |W|)`,
      one fewer when `r |W|` is not an integer;
    - the mean is over the samples that have a loss (NaN = never trained); theirs starts every score at 3.0 and
      averages all of them (the maintainers call the 3.0 arbitrary; after a full first epoch both agree);
    - the mean is taken in float64; theirs is a float32 torch mean, which can move a loss within one float32 ulp of
      the mean to the other side;
    - annealing epochs always use weight 1; their code resets the weights only when `delta * num_epochs` is an
      integer, so otherwise the last pruned epoch's weights linger through the annealing tail (a bug);
    - draws come from a generator seeded by (seed, epoch), not numpy's global generator reseeded with the epoch.

    Parameters: `InfoBatchConfig` (`prune_ratio`, `delta`, `num_epochs`, `max_ratio`, `fixed_budget`).
    """

    name = "infobatch"
    summary = (
        "Prune below-mean-loss samples at random, rescale the kept by 1/(1-r), full data first and last (Qin et al. "
        "2024)."
    )
    config_class = InfoBatchConfig
    reweights = True

    @property
    def fixed_length(self) -> bool:
        return self.config.fixed_budget

    def is_full_epoch(self, epoch: int) -> bool:
        """Whether `epoch` trains on the full data (the first epoch and the annealing tail; InfoBatch as published)."""
        return epoch == 0 or (self.stop_epoch is not None and epoch >= self.stop_epoch)

    def max_selected(self, epoch, num_keep):
        return int(num_keep) if self.config.fixed_budget else int(self.num_samples)

    def _select(self, epoch, num_keep, rng):
        if self.config.fixed_budget:
            return self._select_fixed_budget(epoch, num_keep, rng)
        n = self.num_samples
        score = self._tables["score"]
        seen = ~np.isnan(score)
        if self.is_full_epoch(epoch) or not seen.any():
            annealing = epoch > 0 and self.is_full_epoch(epoch)
            return Selection(np.arange(n), None, info={"full": True, "annealing": annealing, "r": 0.0})
        r = min(self.prune_ratio, self.config.max_ratio)
        well = seen & (score < score[seen].mean())
        w_ids, rest = np.flatnonzero(well), np.flatnonzero(~well)
        k = num_kept(w_ids.size, r) if w_ids.size else 0
        kept_w = rng.choice(w_ids, size=k, replace=False) if k < w_ids.size else w_ids
        weights = np.concatenate([np.ones(rest.size), np.full(kept_w.size, 1.0 / (1.0 - r))])
        info = {"full": False, "annealing": False, "r": r, "num_well_learned": int(w_ids.size),
                "num_pruned": int(w_ids.size - kept_w.size)}  # fmt: skip
        return Selection(np.concatenate([rest, kept_w]), weights, info=info)

    def _select_fixed_budget(self, epoch, num_keep, rng):
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
        q_w = min(q, int(math.floor(self.config.max_ratio * w_ids.size)))
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
