"""SmallToLarge (S2L): Yang, Mishra, Chiang, Mirzasoleiman, "SmallToLarge (S2L): Scalable Data Selection for
Fine-tuning Large Language Models by Summarizing Training Trajectories of Small Models", NeurIPS 2024
(arXiv:2403.07384), Sec. 4 and Algorithm 1.

A small proxy model is trained on the data; sample `i`'s *loss trajectory* is its loss at `T` points of that
training::

    L_i = [ loss_i(theta_1), ..., loss_i(theta_T) ]                 (one vector per sample; here one point per epoch)

The trajectories are clustered with k-means into `K` clusters `C_1 ... C_K` (the paper's `K = 100`), and a budget
of `B` samples is drawn as evenly as the clusters allow (Algorithm 1)::

    sort the clusters by size, smallest first: |C_1| <= ... <= |C_K|;  S = {}
    for k = 1 ... K:
        R_k = floor((B - |S|) / (K - k + 1))                       the fair share of what is left
        S  += C_k                          if |C_k| <= R_k          (a small cluster is kept whole)
        S  += R_k samples of C_k at random otherwise

Examples with similar trajectories have similar gradients (the paper's Theorem 4.2), so every cluster being
represented keeps the gradient of the whole set; big clusters of alike samples give up the most.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..citations import S2L as S2L_CITATION
from ..kmeans import kmeans, nearest_centre
from ..record import ScoreRecord
from ..selection import check_ratio, class_quotas_by_ratio, group_by_label, num_removed
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


CHUNK = 65536  # samples per block read from the record: [T, 65536] float64 is 150 MB at T = 300
IN_MEMORY_BYTES = 1 << 30  # trajectories larger than this (float32 [n, T]) go to a temporary memory map
MISSING = ("interpolate", "exclude", "zero")


def select_epochs(num_epochs: int, epochs: int | list | None) -> list[int]:
    """The recorded epochs a trajectory is made of: all (`None`), the first `epochs` (an int), or a list of epoch
    indices (0-based, strictly increasing)."""
    if epochs is None:
        chosen = list(range(num_epochs))
    elif isinstance(epochs, int):
        if not 1 <= epochs <= num_epochs:
            raise ValueError(
                f"S2L with epochs={epochs} needs that many recorded epochs; the record has {num_epochs}. Pass "
                f"epochs between 1 and {num_epochs} (or None for all of them)."
            )
        chosen = list(range(epochs))
    else:
        chosen = [int(e) for e in epochs]
        bad = [e for e in chosen if not 0 <= e < num_epochs]
        if not chosen or bad or any(b <= a for a, b in zip(chosen, chosen[1:])):
            raise ValueError(
                f"S2L epochs={list(epochs)} must be a non-empty, strictly increasing list of recorded epochs in "
                f"[0, {num_epochs - 1}]" + (f"; {bad} are not recorded" if bad else "") + "."
            )
    if not chosen:
        raise ValueError("The record has no epoch: train (or load the record) before selecting with S2L.")
    return chosen


def fill_missing(block: np.ndarray, missing: str = "interpolate") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trajectories `[c, T]` with their NaN (an epoch that did not see the sample, or saw it with a non-finite loss)
    filled as `missing` says. Returns `(filled, scored, filled_rows)`: `scored` marks rows that have a trajectory,
    `filled_rows` those where a NaN was filled.

    * `"interpolate"`: linearly between the nearest epochs that saw the sample, constant before the first and after
      the last one (`np.interp` over the epoch positions); a row with no value at all has no trajectory.
    * `"exclude"`: a row with any NaN has no trajectory.
    * `"zero"`: NaN becomes 0, as the authors' code does (`losses[torch.isnan(losses)] = 0`); every row is scored.

    Rows without a trajectory are left as zeros (k-means never reads them; see `S2L`).
    """
    block = np.array(block, dtype=np.float64)
    nan = np.isnan(block)
    holey = nan.any(axis=1)
    if missing == "zero":
        block[nan] = 0.0
        return block, np.ones(block.shape[0], dtype=bool), holey
    if missing == "exclude":
        scored = ~holey
    elif missing == "interpolate":
        scored = ~nan.all(axis=1)
        steps = np.arange(block.shape[1], dtype=np.float64)
        for row in np.flatnonzero(holey & scored):
            seen = ~nan[row]
            block[row] = np.interp(steps, steps[seen], block[row, seen])
    else:
        raise ValueError(f"missing must be one of {MISSING}; got {missing!r}.")
    block[~scored] = 0.0
    return block, scored, holey & scored


def s2l_sample(assignment: np.ndarray, budget: int, rng: np.random.RandomState, min_cluster_size: int = 1):
    """Algorithm 1 of Yang et al. (2024) on a cluster assignment: positions of `budget` samples drawn as evenly as
    possible across the clusters, smallest cluster first.

    Clusters are visited from the smallest to the largest (ties: the lower cluster id first); each gets the fair
    share `floor(remaining / clusters left)` of the remaining budget: a cluster no larger than its share is taken
    whole, a larger one gives a uniform random sample of its share (`rng.choice(members, share, replace=False)`,
    members in ascending position). Clusters smaller than `min_cluster_size` are left out of that loop; whatever
    budget the others cannot fill is drawn at random from their pooled members (the authors' code does this with
    `min_cluster_size=3`; the paper's Algorithm 1 is `min_cluster_size=1`).

    Args:
        assignment (`np.ndarray` of int `[m]`): cluster id of every sample (any integers).
        budget (`int`): how many to draw; at most `m` are drawn.
        rng (`np.random.RandomState`): the generator of the draws.
        min_cluster_size (`int`, *optional*, defaults to 1): see above.

    Returns:
        `np.ndarray` int64 of the chosen positions (unsorted: cluster by cluster, in visiting order).

    Example:

    ```python
    >>> a = np.array([0] * 6 + [1] * 3 + [2])          # clusters of 6, 3 and 1 samples, budget 7
    >>> np.bincount(a[s2l_sample(a, 7, np.random.RandomState(0))]).tolist()      # 1 whole, 3 whole, then 3 of 6
    [3, 3, 1]
    ```
    """
    assignment = np.asarray(assignment)
    remaining = min(int(budget), assignment.size)
    if remaining <= 0:
        return np.zeros(0, dtype=np.int64)
    clusters, order, starts = group_by_label(assignment, np.arange(assignment.size))
    sizes = np.diff(starts)
    visit = np.argsort(sizes, kind="stable")
    small = visit[sizes[visit] < min_cluster_size]
    visit = visit[sizes[visit] >= min_cluster_size]
    chosen = []
    for i, c in enumerate(visit):
        share = remaining // (visit.size - i)
        members = order[starts[c] : starts[c + 1]]
        if members.size > share:
            chosen.append(rng.choice(members, share, replace=False))
            remaining -= share
        else:
            chosen.append(members)
            remaining -= members.size
    if remaining > 0 and small.size:
        pool = np.sort(np.concatenate([order[starts[c] : starts[c + 1]] for c in small]))
        chosen.append(rng.choice(pool, min(remaining, pool.size), replace=False))
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)


@dataclass
class S2LConfig(StrategyConfig):
    """Parameters of `s2l`.

    Args:
        num_clusters (`int`, *optional*, defaults to 100): `K`, the number of k-means clusters (the paper's and the
            authors' configs' 100); at most the number of samples with a trajectory.
        signal (`str`, *optional*, defaults to `"loss"`): the recorded signal whose trajectories are clustered.
        epochs (`int` or `list[int]`, *optional*): the trajectory's points: `None` (all recorded epochs), the first
            `epochs`, or a list of epoch indices (0-based, increasing).
        seed (`int`, *optional*, defaults to 0): seed of k-means and of the sampling inside clusters.
        missing (`str`, *optional*, defaults to `"interpolate"`): NaN in a trajectory (an epoch that did not see the
            sample, or saw it with a non-finite loss): `"interpolate"` between the epochs that saw it, `"exclude"`
            the sample from the clustering, or `"zero"` (the authors' code). See `fill_missing`.
        min_cluster_size (`int`, *optional*, defaults to 1): clusters smaller than this only fill what the others
            leave of the budget (1: the paper's Algorithm 1; 3: the authors' code, which sets clusters of one or two
            samples aside).
        num_iter (`int`, *optional*, defaults to 20): Lloyd iterations of k-means (faiss's default, as the authors').
        max_points_per_centre (`int`, *optional*, defaults to 256): k-means runs on a sample of at most `K` times
            this many trajectories (faiss's default), then assigns every one.
    """

    num_clusters: int = field(default=100, metadata={"help": "K, the number of k-means clusters (the paper's 100)"})
    signal: str = field(default="loss", metadata={"help": "the recorded signal whose trajectories are clustered"})
    epochs: int | list | None = field(
        default=None, metadata={"help": "trajectory points: all epochs (None), the first N, or a JSON list"}
    )
    seed: int = field(default=0, metadata={"help": "seed of k-means and of the sampling in clusters"})
    missing: str = field(default="interpolate", metadata={"help": "NaN in a trajectory: interpolate, exclude or zero"})
    min_cluster_size: int = field(
        default=1, metadata={"help": "smaller clusters only fill the rest (authors' code: 3)"}
    )
    num_iter: int = field(default=20, metadata={"help": "Lloyd iterations of k-means"})
    max_points_per_centre: int = field(default=256, metadata={"help": "k-means sample: at most K x this many rows"})

    def __post_init__(self):
        self.num_clusters = int(self.num_clusters)
        if self.num_clusters < 1:
            raise ValueError(f"num_clusters must be >= 1 (the paper uses 100); got {self.num_clusters}.")
        if isinstance(self.epochs, bool) or not (self.epochs is None or isinstance(self.epochs, (int, list, tuple))):
            raise ValueError(
                f"epochs must be None, an int (the first N) or a list of epoch indices; got {self.epochs!r}."
            )
        if isinstance(self.epochs, int) and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 (the first N recorded epochs); got {self.epochs}.")
        if isinstance(self.epochs, tuple):
            self.epochs = list(self.epochs)
        if self.missing not in MISSING:
            raise ValueError(
                f"missing must be one of {MISSING} ('zero' is the authors' code, 'interpolate' the default); got "
                f"{self.missing!r}."
            )
        self.seed, self.num_iter = int(self.seed), int(self.num_iter)
        self.min_cluster_size, self.max_points_per_centre = int(self.min_cluster_size), int(self.max_points_per_centre)
        if self.min_cluster_size < 1:
            raise ValueError(
                f"min_cluster_size must be >= 1 (1: the paper; 3: the authors' code); got {self.min_cluster_size}."
            )


@register_strategy
class S2L(Strategy):
    """SmallToLarge (Yang et al., NeurIPS 2024, Algorithm 1): k-means on every sample's loss trajectory
    ``L_i = [loss_i(theta_1), ..., loss_i(theta_T)]`` (one point per recorded epoch, Euclidean distance, raw values
    as the authors use them), then the kept budget is spread as evenly as possible over the clusters, smallest first:
    a cluster smaller than its fair share of what is left is kept whole, a larger one gives a random sample of its
    share (`s2l_sample`). It is a sampling, not a ranking: `select` uses `selection="s2l"` only.

    The score is the sample's **cluster number, ordered by size**: 0 is the smallest cluster, the first Algorithm 1
    visits; the **lowest** numbers are the small clusters, kept in full, while the highest (the biggest clusters of
    alike trajectories) give up the most. NaN for a sample with no trajectory. The per-cluster kept counts are in the
    result's `params["cluster_kept"]`, the cluster sizes in its provenance.

    The paper trains a small proxy (Pythia-70M) and records each sample's loss at saved checkpoints; here the
    trajectory is the record of any `PruningTrainer` run, one point per epoch (`epochs` picks them; the
    `record_clean_view` pass gives eval-mode losses, as the authors compute them on each checkpoint). For a causal
    LM the per-sample loss is the mean loss over its target tokens (`hf_prune.sequence`), as the authors'
    `model(input_ids, labels=labels).loss` per example (`get_trajectories.py`).

    Fidelity to the authors' code (BigML-CS-UCLA/S2L at 2bc84dd, 2024-12-07, `schedules/s2l.py`,
    `faiss_kmeans_selection`): the same raw (unnormalised) trajectories, the same `K = 100`, k-means with 20
    iterations on at most 256 points per centre (faiss's defaults, `hf_prune.kmeans`), the same smallest-first fair
    share with `floor`, and the same draws: with `min_cluster_size=3` and the same cluster assignment, the kept ids
    equal theirs run after `np.random.seed(seed)` (`tests/test_s2l.py`). Deliberate differences: k-means is seeded
    k-means++ (faiss's is random initial centres under its fixed seed 1234), so clusters agree with faiss's and
    scikit-learn's up to k-means' own variability (they agree exactly where clusters are clear, as tested); clusters
    of equal size are visited lower cluster id first (their `np.argsort` is unstable); the defaults follow the
    paper's Algorithm 1, which keeps clusters of one or two samples whole where their code sets them aside
    (`min_cluster_size`); the draws are seeded (their numpy generator is not); the kept count is `n - floor(r n)`.
    Their checkpoints are read in `glob` order (not necessarily chronological): one permutation of every trajectory's
    points, which leaves Euclidean k-means unchanged; their `num_loss_ckpts` thinning (every `T // m`-th checkpoint)
    is an `epochs` list here. Their code first splits the budget equally over the data's `source` column, then
    clusters each source separately; here `class_balanced=True` removes the same fraction from each class and
    samples each class's share over the global clusters (one k-means, so the scores stay comparable).

    Non-finite values and unseen epochs: a trajectory point the record lacks (not seen that epoch, or seen with a
    NaN or infinite loss) is interpolated between the epochs that saw the sample (`missing`; `"zero"` is the
    authors' code). A sample with no point at all has no cluster: if the record saw it only with non-finite values
    it is kept outright (its loss was undefined, not learned); a never-seen one is removed first (drawn only if the
    clustered samples cannot fill the budget).

    Parameters: `S2LConfig` (`num_clusters`, `signal`, `epochs`, `seed`, `missing`, `min_cluster_size`, `num_iter`,
    `max_points_per_centre`).

    Example:

    ```python
    >>> result = get_strategy("s2l", num_clusters=100).select(record, prune_ratio=0.7)
    >>> result.params["cluster_kept"][:3], result.scores[:3]      # kept per cluster (smallest first); cluster number
    ```
    """

    name = "s2l"
    summary = "SmallToLarge (Yang et al. 2024): k-means on loss trajectories; samples evenly across clusters."
    title = "SmallToLarge (S2L)"
    citation = S2L_CITATION
    description = (
        "SmallToLarge (S2L) clusters every sample's loss trajectory over training (k-means) and keeps a sample spread "
        "as evenly as possible over the clusters, smallest cluster first: small clusters are kept whole, the big "
        "clusters of alike samples give up the most."
    )
    score_name = "the sample's loss-trajectory cluster, numbered by size (0 = smallest)"
    keep = "low"
    requires = ("loss",)
    selections = ("s2l",)
    config_class = S2LConfig

    def required_signals(self) -> tuple[str, ...]:
        return (self.config.signal,)

    def compute(self, record: ScoreRecord) -> Scores:
        c = self.config
        epochs = select_epochs(record.num_epochs, c.epochs)
        n, T = record.num_samples, len(epochs)
        signal = record.signal(c.signal)
        with tempfile.TemporaryDirectory(prefix="hf_prune_s2l_") as tmp:
            if n * T * 4 <= IN_MEMORY_BYTES:
                trajectories = np.zeros((n, T), dtype=np.float32)
            else:  # ImageNet-size records: the [n, T] matrix on disk, read back chunk by chunk by k-means
                trajectories = np.lib.format.open_memmap(Path(tmp) / "trajectories.npy", "w+", np.float32, (n, T))
            scored = np.zeros(n, dtype=bool)
            filled = 0
            for start in range(0, n, CHUNK):
                block = np.asarray(signal[epochs, start : start + CHUNK], dtype=np.float64).T
                values, ok, holey = fill_missing(block, c.missing)
                trajectories[start : start + values.shape[0]] = values
                scored[start : start + values.shape[0]] = ok
                filled += int(holey.sum())
            if isinstance(trajectories, np.memmap):
                trajectories.flush()  # k-means reads a memory map back with plain file reads
            rows = np.flatnonzero(scored)
            out = np.full(n, np.nan)
            provenance: dict[str, Any] = {
                "s2l_epochs": epochs, "signal": c.signal, "missing": c.missing, "trajectories_filled": filled,
                "no_trajectory": int(n - rows.size),
            }  # fmt: skip
            if rows.size == 0:  # `Strategy.select` refuses, naming the record
                provenance.update(num_clusters_used=0, cluster_sizes=[])
                return Scores(out, provenance, extras={"distance": np.full(n, np.nan)})
            k = min(c.num_clusters, rows.size)
            centres = kmeans(
                trajectories, k, num_iter=c.num_iter, max_points_per_centre=c.max_points_per_centre, seed=c.seed,
                rows=None if rows.size == n else rows,
            )  # fmt: skip
            assign, dist = nearest_centre(trajectories, centres)
            del trajectories  # the memory map's file goes with the folder
        sizes = np.bincount(assign[rows], minlength=k)
        by_size = np.argsort(sizes, kind="stable")
        by_size = by_size[sizes[by_size] > 0]  # an empty cluster has no number (Algorithm 1 takes nothing from it)
        number = np.full(k, -1, dtype=np.int64)
        number[by_size] = np.arange(by_size.size)
        out[rows] = number[assign[rows]]
        dist = np.where(scored, dist, np.nan)
        provenance.update(num_clusters_used=int(by_size.size), cluster_sizes=sizes[by_size].tolist())
        return Scores(out, provenance, extras={"distance": dist})

    def select(self, record, prune_ratio, class_balanced=False, keep=None, selection="s2l", **kwargs):
        """As `Strategy.select`, with S2L's own selection (`selection="s2l"`, the only one it has): Algorithm 1 over
        the clusters. `keep` is recorded but does not change the draw."""
        return super().select(record, prune_ratio, class_balanced, keep, selection, **kwargs)

    def sample_kept(self, selection, computed, prune_ratio, labels, class_balanced, keep):
        ratio = check_ratio(prune_ratio)
        cluster = np.asarray(computed.values, dtype=np.float64)
        n = cluster.size
        held = computed.extras.get("nonfinite_held")  # no trajectory because only seen non-finite: kept outright
        rng = np.random.RandomState(self.config.seed)
        if not class_balanced:
            groups = [(np.arange(n), n - num_removed(n, ratio))]
        else:
            if labels is None:
                raise ValueError("class_balanced=True needs labels, but the record has none; select without it.")
            classes, order, starts = group_by_label(np.asarray(labels), np.arange(n))
            quotas = class_quotas_by_ratio(np.diff(starts), ratio)
            groups = [(order[starts[i] : starts[i + 1]], int(quotas[i])) for i in range(classes.size)]
        kept = [self._fill(members, quota, cluster, held, rng) for members, quota in groups]
        kept = np.sort(np.concatenate(kept)).astype(np.int64) if kept else np.zeros(0, dtype=np.int64)
        numbers = cluster[kept]
        numbers = numbers[~np.isnan(numbers)].astype(np.int64)
        num_clusters = int(np.nanmax(cluster)) + 1 if np.isfinite(cluster).any() else 0
        extra: dict[str, Any] = {
            "seed": self.config.seed,
            "min_cluster_size": self.config.min_cluster_size,
            "cluster_kept": np.bincount(numbers, minlength=num_clusters).tolist(),
        }
        return kept, extra

    def _fill(self, members, quota, cluster, held, rng) -> np.ndarray:
        """`quota` of `members`: the `held` ones (no trajectory, seen only with non-finite values) first, then
        Algorithm 1 over the clustered ones, then, if they cannot fill it, never-seen ones at random."""
        fixed = members[held[members]][:quota] if held is not None else members[:0]
        budget = quota - fixed.size
        clustered = members[~np.isnan(cluster[members])]
        picked = clustered[s2l_sample(cluster[clustered].astype(np.int64), budget, rng, self.config.min_cluster_size)]
        short = budget - picked.size
        parts = [fixed, picked]
        if short > 0:
            rest = members[np.isnan(cluster[members])]
            if held is not None:
                rest = rest[~held[rest]]
            parts.append(rng.choice(rest, min(short, rest.size), replace=False))
        return np.concatenate(parts).astype(np.int64)
