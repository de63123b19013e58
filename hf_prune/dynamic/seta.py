"""SeTa, Scale Efficient Training (Zhou, Gao, Wang, "Scale Efficient Training for Large Datasets", CVPR 2025).

Per pruned epoch `e` (the authors' `SeTa.prune`), with `s_i` the latest training loss of sample `i`:

1. **random pruning**: draw `m = n - floor(prune_ratio * n)` samples uniformly from all `n` (a fresh draw every
   epoch);
2. **grouping by difficulty**: cluster their losses into `G` groups with 1-D k-means and order the groups from easy
   (low mean loss) to hard;
3. **sliding window, easy to hard**: at epoch 0 keep every group; then keep `w = round(G ws)` consecutive groups
   starting at group `e mod (G - w + 1)`, so the window moves one group harder each epoch and wraps back to the
   easiest (a cyclic curriculum that drops both the too-easy and the too-hard groups).

The annealing epochs `e >= floor(delta * num_epochs)` ("partial annealing") draw `m` samples uniformly from all `n`,
with no grouping. No loss rescaling: every trained sample has weight 1. The number trained varies with the groups'
sizes, so the epoch length varies (`DynamicPruningTrainer` gives each epoch its own number of steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..selection import num_kept
from .base import LatestLossConfig, LatestLossPolicy, Selection, register_policy


def _lloyd_sorted(x: np.ndarray, csum: np.ndarray, csq: np.ndarray, centres: np.ndarray, max_iter: int):
    """Lloyd's iterations on sorted 1-D data: clusters are contiguous runs, found by binary search, and their means
    come from prefix sums, so an iteration costs O(k log n). Returns `(split points, inertia)`."""
    n = x.size
    for _ in range(max_iter):
        cuts = np.concatenate([[0], np.searchsorted(x, (centres[:-1] + centres[1:]) / 2.0), [n]])
        cuts = np.unique(cuts)  # empty clusters vanish
        count = np.diff(cuts)
        new = (csum[cuts[1:]] - csum[cuts[:-1]]) / count
        if new.size == centres.size and np.array_equal(new, centres):
            break
        centres = new
    count = np.diff(cuts)
    sums = csum[cuts[1:]] - csum[cuts[:-1]]
    inertia = float(((csq[cuts[1:]] - csq[cuts[:-1]]) - sums * sums / count).sum())
    return cuts, inertia


def _kmeanspp_1d(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) on sorted 1-D data."""
    centres = [x[rng.integers(x.size)]]
    for _ in range(1, k):
        c = np.sort(np.asarray(centres))
        pos = np.clip(np.searchsorted(c, x), 1, c.size) - 1
        d = np.minimum(np.abs(x - c[pos]), np.abs(x - c[np.minimum(pos + 1, c.size - 1)])) ** 2
        if d.sum() <= 0:
            break
        centres.append(x[rng.choice(x.size, p=d / d.sum())])
    return np.unique(centres)


def kmeans_1d(values: np.ndarray, k: int, restarts: int = 8, max_iter: int = 300, seed: int = 0) -> np.ndarray:
    """k-means of 1-D `values` into at most `k` clusters: Lloyd's algorithm from quantile starting centres and from
    `restarts - 1` k-means++ seedings (seeded, so deterministic), keeping the lowest inertia. Returns the cluster of
    every value, numbered by increasing centre; empty clusters are dropped."""
    values = np.asarray(values, dtype=np.float64)
    x = np.sort(values)
    csum = np.concatenate([[0.0], np.cumsum(x)])
    csq = np.concatenate([[0.0], np.cumsum(x * x)])
    rng = np.random.default_rng(seed)
    starts = [np.unique(np.quantile(x, (np.arange(k) + 0.5) / k))]
    starts += [_kmeanspp_1d(x, k, rng) for _ in range(max(0, restarts - 1))]
    cuts = min((_lloyd_sorted(x, csum, csq, c, max_iter) for c in starts), key=lambda r: r[1])[0]
    # value -> cluster: the boundaries are the midpoints between consecutive cluster means
    means = (csum[cuts[1:]] - csum[cuts[:-1]]) / np.diff(cuts)
    return np.searchsorted((means[:-1] + means[1:]) / 2.0, values)


def seta_window(num_groups: int, window_scale: float, index: int) -> tuple[int, int]:
    """`(start, stop)` of the groups kept at selection `index` (the authors' `slide_easy2hard`): all at 0, then
    `w = round(G ws)` (half to even, at least 1) groups from `index mod (G - w + 1)`."""
    if index == 0:
        return 0, num_groups
    w = max(1, round(num_groups * window_scale))
    start = index % (num_groups - w + 1)
    return start, start + w


@dataclass
class SeTaConfig(LatestLossConfig):
    """Parameters of `seta` (see `SeTa` for what each does).

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction removed by the random pruning, in [0, 1).
        delta (`float`, *optional*, defaults to 0.875): annealing starts at epoch `floor(delta * num_epochs)`.
        num_epochs (`int`, *optional*): total epochs, for the annealing tail; `DynamicPruningTrainer` sets it.
        max_ratio (`float`, *optional*, defaults to 0.9): upper bound of `prune_ratio` (their `keep_ratio >= 0.1`).
        num_groups (`int`, *optional*, defaults to 5): `G`, the number of loss groups.
        window_scale (`float`, *optional*, defaults to 0.9): the share of groups in the window, in (0, 1].
    """

    num_groups: int = field(default=5, metadata={"help": "G, the number of loss groups (k-means), >= 1"})
    window_scale: float = field(default=0.9, metadata={"help": "share of the groups in the sliding window, in (0, 1]"})

    def __post_init__(self):
        super().__post_init__()
        if int(self.num_groups) < 1:
            raise ValueError(f"num_groups must be >= 1; got {self.num_groups}.")
        if not 0.0 < float(self.window_scale) <= 1.0:
            raise ValueError(
                f"window_scale must be in (0, 1] (the share of groups trained); got {self.window_scale}."
            )
        self.num_groups, self.window_scale = int(self.num_groups), float(self.window_scale)


@register_policy
class SeTa(LatestLossPolicy):
    """SeTa (Zhou et al., CVPR 2025): random pruning, then loss groups by 1-D k-means, then a sliding window from
    easy to hard groups; partial annealing at the end (see the module docstring).

    Fidelity to the authors' code (`seta.py`: `random_select_with_ratio`, `kmeans_group`, `slide_easy2hard`,
    `SeTa.prune`, `SeTa.no_prune`; mrazhou/SeTa at its current commit 341df62, 2025-03-18): the same three steps,
    window arithmetic (Python's half-to-even `round`, the cyclic `it mod (slide + 1)` start, all groups at the first
    epoch), equal-score subsets cut into chunks of `ceil(m / G)` (their `torch.chunk`), partial annealing and
    weight 1. Deliberate differences: the subset size is `n - floor(r n)` (theirs `int(n (1 - r))`); samples never
    trained (no loss yet; their code scores them 3.0) join the hardest group; empty clusters are dropped; and the
    clusters come from a deterministic 1-D k-means (Lloyd's algorithm, best of a quantile start and 7 seeded
    k-means++ starts), not from scikit-learn.

    Their `kmeans_group` calls `KMeans(n_clusters=num_group, random_state=0).fit(losses)` on the float32 losses
    with every other argument at its default, and no scikit-learn version is pinned (`setup.py` requires only
    torch), so what it computes depends on the installed version: greedy k-means++ seeding, then `n_init` = 10
    runs keeping the lowest inertia before scikit-learn 1.4 (1.2-1.3: `n_init="warn"`, 10 with a FutureWarning),
    one run since 1.4 (`n_init="auto"` is 1 for k-means++). The two are different local optima: on the skewed
    5,000-loss tables of `tests/test_dynamic_fidelity.py` they group differently on 4 of 6 (90-100 % of the samples
    in the same group). Ours is a third local optimum: on those tables its inertia is no higher than either's
    (`tests/test_fidelity_notes.py`; at G = 5, 98-100 % of the samples fall in the same group as theirs), but not
    in general: on 30 seeded lognormal or gamma tables of 5,000 losses (G = 5, 10) it is above `n_init=1`'s on 0-3
    and above `n_init=10`'s on 2-8 (by at most 3.6 %), more often on 500 losses (the test pins such a table). Needs
    `pruning_period=1`.

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): fraction removed by the random pruning, in [0, 1); the
            window removes more.
        num_groups (`int`, *optional*, defaults to 5): `G`, the number of loss groups (the authors' CIFAR script
            uses 5, their ImageNet default 10).
        window_scale (`float`, *optional*, defaults to 0.9): the share of groups in the window, in (0, 1] (CIFAR
            script: 0.9; ImageNet: 0.6).
        delta (`float`, *optional*, defaults to 0.875): annealing starts at epoch `floor(delta * num_epochs)`.
        num_epochs (`int`, *optional*): total epochs, for the annealing tail; `DynamicPruningTrainer` sets it.
        max_ratio (`float`, *optional*, defaults to 0.9): upper bound of `prune_ratio` (their `keep_ratio >= 0.1`).
    """

    name = "seta"
    summary = "SeTa (Zhou et al. 2025): random pruning, loss groups by k-means, easy-to-hard sliding window."
    selects_every_epoch = True
    config_class = SeTaConfig

    @property
    def fixed_length(self) -> bool:
        return False

    def subset_size(self) -> int:
        return num_kept(self.num_samples, min(self.prune_ratio, self.config.max_ratio))

    def max_selected(self, epoch, num_keep):
        return self.subset_size()

    def groups(self, subset: np.ndarray) -> list[np.ndarray]:
        """The samples of `subset` (in its order) split into loss groups, easy to hard (the authors' `kmeans_group`)."""
        score = self._tables["score"][subset]
        seen = ~np.isnan(score)
        g = self.config.num_groups
        values = score[seen]
        if g == 1 or values.size == 0 or values.min() == values.max():
            # one group, or all scores equal: consecutive chunks of ceil(m / G), as torch.chunk (maybe fewer than G)
            size = int(math.ceil(subset.size / g))
            return [subset[i : i + size] for i in range(0, subset.size, size)]
        label = kmeans_1d(values, g)
        known = subset[seen]
        out = [known[label == c] for c in range(int(label.max()) + 1)]
        out = [grp for grp in out if grp.size]
        if (~seen).any():
            out[-1] = np.concatenate([out[-1], subset[~seen]])  # never trained: with the hardest
        return out

    def _select(self, epoch, num_keep, rng):
        n = self.num_samples
        m = self.subset_size()
        subset = rng.permutation(n)[:m]
        if self.stop_epoch is not None and epoch >= self.stop_epoch:
            return Selection(subset, info={"annealing": True, "num_groups": 0})
        groups = self.groups(subset)
        start, stop = seta_window(len(groups), self.config.window_scale, epoch)
        ids = np.concatenate(groups[start:stop])
        info = {"annealing": False, "num_groups": len(groups), "window": [int(start), int(stop)],
                "group_sizes": [int(grp.size) for grp in groups]}  # fmt: skip
        return Selection(ids, info=info)
