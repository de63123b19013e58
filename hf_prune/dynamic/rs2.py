"""RS2, repeated random sampling without replacement (Okanovic et al., "Repeated Random Sampling for Minimizing the
Time-to-Accuracy of Learning", ICLR 2024).

Every epoch ("round") trains on a fresh random subset of `k = n - floor(prune_ratio * n)` samples, drawn *without
replacement across rounds*: the rounds walk through one random permutation of the dataset in chunks of `k`, so every
sample is used once before any is used twice; when the permutation is used up a new one is drawn. It needs no
scores, and is the baseline every dynamic method must beat: the paper finds it matches or beats static and dynamic
selection methods in time-to-accuracy.

The rounds are exactly those of the authors' `UniformNoReplacement.select` (`src/DeepCore/deepcore/methods/
uniform_no_replacement.py`), including how a permutation ends: the round that runs past the end is
`perm[start:] + perm[:end]` with `end = (start + k) mod (n + 1)`, i.e. the rest of the permutation plus its head
(samples already used in this pass, never twice in one round), one sample short of `k`; the next round draws a new
permutation. The permutations come from `numpy.random.RandomState(seed).shuffle`, applied in place pass after pass as
their code does after `np.random.seed(seed)`, so for the same seed and `k` the rounds are *identical* to theirs
(`tests/test_dynamic_fidelity.py`); how much of each round is trained differs (their loader drops the last partial
batch; see `RS2`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import DynamicPolicy, PolicyConfig, Selection, register_policy


def rs2_round_bounds(n: int, size: int, rounds: int) -> list[tuple[int, int, bool]]:
    """`(start, end, reshuffled)` of the first `rounds` rounds of the authors' rule: `reshuffled` marks a round that
    draws a new permutation first; a round with `start >= end` wraps (`perm[start:] + perm[:end]`)."""
    out, start, end = [], None, None
    for _ in range(rounds):
        if start is None or end < start or end == n:
            start, end, new = 0, size, True
        else:
            start, end, new = end, (end + size) % (n + 1), False
        out.append((start, end, new))
    return out


@dataclass
class RS2Config(PolicyConfig):
    """Parameters of `rs2`.

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction of samples *not* used in a round, in [0, 1);
            the paper's selection ratio is `1 - prune_ratio`.
    """


@register_policy
class RS2(DynamicPolicy):
    """RS2 without replacement (Okanovic et al. 2024): each epoch a new random subset of `n - floor(prune_ratio * n)`
    samples, consecutive chunks of one random permutation, reshuffled when it is used up.

    Deliberate differences from the authors' code (PatrikOkanovic/RS2 at its current and only commit 99edfc8):
    the round size is `n - floor(r n)` (theirs `round((1 - r) n)`, rounded half to even; the same whenever `r n` is
    an integer). Ours trains every sample of the round, the last partial batch included; their training loader
    (`src/DeepCore/main.py`: `drop_last = args.selection == "UniformNoReplacement"`, with `shuffle=True`) drops it,
    so a round of `k` samples trains `b floor(k / b)` of them at batch size `b` and the other `k mod b`, a random
    few of the round, are not trained in that pass through the permutation. With n = 50,000, r = 0.9 (k = 5,000)
    and batch 128: theirs trains 4,992 per round (39 batches; 80 samples of each 10-round pass untrained), ours
    5,000 (40 batches, the last of 8) (`tests/test_fidelity_notes.py`). The LR schedule spans the exact number of
    steps of the rounds (their cosine schedule, `len(train_loader) * epochs`, assumes every round as long as the
    first, one sample longer than a wrap round).
    Draws come from `RandomState(seed)` with `seed` the run's seed. Needs `pruning_period=1` (one round per epoch).

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction of samples *not* used in a round, in [0, 1);
            the paper's selection ratio is `1 - prune_ratio`.
    """

    name = "rs2"
    summary = "RS2 (Okanovic et al. 2024): a fresh random subset each epoch, without replacement across rounds."
    uses_scores = False
    selects_every_epoch = True
    config_class = RS2Config

    def __init__(self, config: RS2Config | None = None, **params):
        super().__init__(config, **params)
        self._cache: dict | None = None

    @property
    def fixed_length(self) -> bool:
        return False

    def reset(self, num_samples, seed=None):
        super().reset(num_samples, seed)
        self._cache = None

    def max_selected(self, epoch, num_keep):
        start, end, _ = rs2_round_bounds(self.num_samples, num_keep, epoch + 1)[-1]
        return end - start if start < end else self.num_samples - start + end

    def round(self, index: int, size: int) -> np.ndarray:
        """The samples of round `index` (0-based) for rounds of `size`, replaying the rule from the run seed (the
        permutation state is cached, so consecutive rounds cost one chunk each)."""
        self._check_ready()
        c = self._cache
        if c is None or c["size"] != size or c["round"] > index:
            c = self._cache = {"size": size, "round": -1, "rs": np.random.RandomState(self.seed),
                               "perm": np.arange(self.num_samples), "start": None, "end": None}  # fmt: skip
        n = self.num_samples
        while c["round"] < index:
            start, end = c["start"], c["end"]
            if start is None or end < start or end == n:
                c["start"], c["end"] = 0, size
                c["rs"].shuffle(c["perm"])
            else:
                c["start"], c["end"] = end, (end + size) % (n + 1)
            c["round"] += 1
        start, end, perm = c["start"], c["end"], c["perm"]
        return perm[start:end].copy() if start < end else np.concatenate([perm[start:], perm[:end]])

    def _select(self, epoch, num_keep, rng):
        return Selection(self.round(epoch, num_keep), info={"round": int(epoch)})
