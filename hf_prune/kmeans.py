"""Mini-batch k-means in torch over features that may live on disk (a float16 memory map `[n, d]`).

Sculley, "Web-scale k-means clustering", WWW 2010: centres start from k-means++ on a random subsample, then each
step draws a mini-batch, assigns it to the nearest centres and moves every centre towards the mean of its new
members with a per-centre learning rate `1 / (points it has absorbed so far)`. Only one mini-batch (and the
`[k, d]` centres) is ever in float32 memory, so 1.28 M x 768 features stay on disk.
"""

from __future__ import annotations

import numpy as np
import torch


def _rows(features, idx: np.ndarray, normalize: bool, device) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(features[idx], dtype=np.float32)).to(device)
    if normalize:
        x = torch.nn.functional.normalize(x, dim=1)
    return x


def iter_chunks(features, chunk_size: int = 16384, normalize: bool = False, device="cpu"):
    """Yields `(start, rows float32 [m, d])` over `features` in order, `chunk_size` rows at a time."""
    n = features.shape[0]
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        x = torch.from_numpy(np.asarray(features[start:stop], dtype=np.float32)).to(device)
        if normalize:
            x = torch.nn.functional.normalize(x, dim=1)
        yield start, x


def _sq_dist(x: torch.Tensor, centres: torch.Tensor, centres_sq: torch.Tensor) -> torch.Tensor:
    d = (x * x).sum(1, keepdim=True) - 2.0 * (x @ centres.T) + centres_sq.unsqueeze(0)
    return d.clamp_(min=0.0)


def _kmeans_pp(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) on the rows of `x`."""
    m = x.shape[0]
    first = int(torch.randint(m, (1,), generator=generator))
    centres = [x[first]]
    closest = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct points than k: repeat points
            nxt = int(torch.randint(m, (1,), generator=generator))
        else:
            nxt = int(torch.multinomial(closest / total, 1, generator=generator))
        centres.append(x[nxt])
        closest = torch.minimum(closest, ((x - x[nxt]) ** 2).sum(1))
    return torch.stack(centres)


def minibatch_kmeans(
    features,
    num_clusters: int,
    batch_size: int = 4096,
    max_iter: int = 100,
    init_size: int | None = None,
    normalize: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    rows: np.ndarray | None = None,
) -> torch.Tensor:
    """Mini-batch k-means centres of the rows of `features`.

    Args:
        features (`np.ndarray` or memory map `[n, d]`): the points; any float dtype (read in float32 batches).
        num_clusters (`int`): number of centres `k`.
        batch_size (`int`, *optional*, defaults to 4096): points per mini-batch step.
        max_iter (`int`, *optional*, defaults to 100): number of mini-batch steps.
        init_size (`int`, *optional*): points used for k-means++ seeding; defaults to `max(3 * batch_size, 10 * k)`.
        normalize (`bool`, *optional*, defaults to `False`): L2-normalise rows first (spherical k-means, for cosine
            geometry as in Sorscher et al.).
        seed (`int`, *optional*, defaults to 0): seed of the seeding and the mini-batch draws.
        device (`str` or `torch.device`, *optional*, defaults to `"cpu"`): where the arithmetic runs.
        rows (`np.ndarray` of int, *optional*): cluster only these row positions (e.g. the samples that have
            features); defaults to all rows.

    Returns:
        `torch.Tensor` float32 `[k, d]` of centres (on `device`).
    """
    pool = np.arange(features.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    n = pool.size
    k = int(num_clusters)
    if not 1 <= k <= n:
        raise ValueError(f"num_clusters must be in [1, {n}] (the number of points); got {num_clusters}.")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(int(seed))
    init_size = min(n, init_size or max(3 * batch_size, 10 * k))
    init_idx = np.sort(pool[rng.choice(n, size=init_size, replace=False)])
    centres = _kmeans_pp(_rows(features, init_idx, normalize, "cpu"), k, generator).to(device)
    counts = torch.zeros(k, dtype=torch.float64, device=device)
    batch_size = min(int(batch_size), n)
    for _ in range(int(max_iter)):
        idx = np.sort(pool[rng.choice(n, size=batch_size, replace=False)])
        x = _rows(features, idx, normalize, device)
        assign = _sq_dist(x, centres, (centres * centres).sum(1)).argmin(1)
        batch_counts = torch.bincount(assign, minlength=k).to(torch.float64)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts += batch_counts
        moved = batch_counts > 0
        # c <- c + (sum_new - m_new * c) / count_total: each centre is the running mean of all points it absorbed.
        step = (sums - batch_counts.unsqueeze(1).float() * centres) / counts.clamp(min=1).unsqueeze(1).float()
        centres[moved] += step[moved]
        if normalize:
            centres = torch.nn.functional.normalize(centres, dim=1)
    return centres


@torch.no_grad()
def nearest_centre(
    features, centres: torch.Tensor, normalize: bool = False, chunk_size: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre and Euclidean distance to it for every row, streamed in chunks.

    Returns:
        `(assignment int64 [n], distance float64 [n])`. With `normalize=True` rows are L2-normalised first, so the
        distance is `sqrt(2 - 2 cos)`, monotone in the cosine distance.
    """
    n = features.shape[0]
    assign = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float64)
    centres = centres.float()
    centres_sq = (centres * centres).sum(1)
    for start, x in iter_chunks(features, chunk_size, normalize, centres.device):
        a = _sq_dist(x, centres, centres_sq).argmin(1)
        # The expanded form above is fine for the argmin; the reported distance is recomputed directly in float64.
        d = (x.double() - centres[a].double()).pow_(2).sum(1).sqrt_()
        assign[start : start + x.shape[0]] = a.cpu().numpy()
        dist[start : start + x.shape[0]] = d.cpu().numpy()
    return assign, dist
