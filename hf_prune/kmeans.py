"""k-means in torch over features that may live on disk (a float16 memory map `[n, d]`), for self-supervised
prototypes (`ssp`, Sorscher et al. 2022, who cluster with faiss).

The recipe is faiss's: Lloyd's algorithm on a uniform sample of at most `max_points_per_centre * k` rows (256 per
centre by default), started from greedy k-means++ (scikit-learn's default seeding) on a smaller sample, with empty clusters re-seeded from the rows farthest
from their centre; then one streamed pass assigns *every* row to its nearest centre and reports the exact distance.
Only the sample and one chunk are ever in float32 memory, so 1.28 M x 768 features stay on disk.

Speed: the distance matrices are matrix products. Where the processor multiplies bfloat16 faster than float32
(measured once per process and device: recent x86 CPUs with AMX or AVX-512 BF16, and GPUs), assignments use bfloat16
products. The final assignment re-checks the four nearest candidates of every row in float32 and reports the
distance to the chosen centre computed in float64: the centre is the nearest one unless several centres lie within
bfloat16 rounding of each other (then their distances differ by less than that rounding). On processors without fast
bfloat16 everything is float32 and exact. `bench/bench_kmeans.py` compares this with scikit-learn and faiss.
"""

from __future__ import annotations

import math
import time
from functools import cache

import numpy as np
import torch


CHUNK = 16384


def read_rows(features, start: int, stop: int) -> np.ndarray:
    """Rows `start ... stop-1` of `features` as a fresh array. A memory map is read with plain file reads, so a pass
    over a multi-GB feature file keeps one chunk, not the whole file, in this process's resident memory."""
    if isinstance(features, np.memmap) and features.filename and features.flags.c_contiguous:
        out = np.empty((stop - start, *features.shape[1:]), dtype=features.dtype)
        row_bytes = out[:1].nbytes if out.size else 0
        with open(features.filename, "rb") as f:
            f.seek(features.offset + start * row_bytes)
            if f.readinto(memoryview(out).cast("B")) != out.nbytes:
                raise OSError(f"{features.filename} is shorter than its header says.")
        return out
    return np.asarray(features[start:stop])


def _to_tensor(x: np.ndarray, normalize: bool, device) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(x, dtype=np.float32)).to(device)
    return torch.nn.functional.normalize(t, dim=1) if normalize else t


def iter_chunks(features, chunk_size: int = CHUNK, normalize: bool = False, device="cpu"):
    """Yields `(start, rows float32 [m, d])` over `features` in order, `chunk_size` rows at a time."""
    n = features.shape[0]
    for start in range(0, n, chunk_size):
        yield start, _to_tensor(read_rows(features, start, min(n, start + chunk_size)), normalize, device)


def _gather(features, rows: np.ndarray, normalize: bool, device) -> torch.Tensor:
    """`features[rows]` (sorted row positions) as one float32 tensor, read chunk by chunk from a memory map."""
    out = torch.empty(rows.size, features.shape[1], device=device)
    if not isinstance(features, np.memmap):
        for s in range(0, rows.size, CHUNK):
            out[s : s + CHUNK] = _to_tensor(features[rows[s : s + CHUNK]], normalize, device)
        return out
    filled = 0
    span = 4 * CHUNK
    for start in range(int(rows[0]) if rows.size else 0, int(rows[-1]) + 1 if rows.size else 0, span):
        lo, hi = np.searchsorted(rows, [start, start + span])
        if hi > lo:
            block = read_rows(features, start, min(features.shape[0], start + span))
            out[filled : filled + hi - lo] = _to_tensor(block[rows[lo:hi] - start], normalize, device)
            filled += hi - lo
    return out


@cache
def _fast_dtype(device_type: str) -> torch.dtype:
    """bfloat16 where its matrix products are faster than float32's on this device, else float32 (timed once)."""
    if device_type == "cuda":
        return torch.bfloat16
    if device_type != "cpu":
        return torch.float32
    a, b = torch.randn(1024, 512), torch.randn(512, 512)
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm up
        start = time.perf_counter()
        for _ in range(5):
            x @ y
        timings[dtype] = time.perf_counter() - start
    return torch.bfloat16 if timings[torch.bfloat16] < 0.7 * timings[torch.float32] else torch.float32


def _scores(x: torch.Tensor, centres_t: torch.Tensor, centres_sq: torch.Tensor) -> torch.Tensor:
    """`|c|^2 - 2 x.c` for every row and centre: the squared distance up to the row's own `|x|^2`. `centres_t` is
    the transposed centres in the fast dtype (`_fast_dtype`); `x` is cast to it."""
    products = (x.to(centres_t.dtype) @ centres_t).float()
    return centres_sq.unsqueeze(0) - 2.0 * products


def _kmeans_pp(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; the greedy variant scikit-learn uses by default): each
    new centre is the best of `2 + log k` candidates drawn proportionally to the squared distance to the centres so
    far, the one that lowers the total squared distance most. One `[m, trials]` matrix product per centre."""
    m = x.shape[0]
    trials = 2 + int(math.log(k))
    x_sq = (x * x).sum(1)
    first = int(torch.randint(m, (1,), generator=generator))
    chosen = [first]
    closest = (x_sq - 2.0 * (x @ x[first]) + x_sq[first]).clamp_(min=0.0)
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct points than k: repeat points
            chosen.append(int(torch.randint(m, (1,), generator=generator)))
            continue
        candidates = torch.multinomial(closest / total, trials, replacement=True, generator=generator)
        d = (x_sq.unsqueeze(1) - 2.0 * (x @ x[candidates].T) + x_sq[candidates].unsqueeze(0)).clamp_(min=0.0)
        after = torch.minimum(closest.unsqueeze(1), d)
        best = int(after.sum(0).argmin())
        chosen.append(int(candidates[best]))
        closest = after[:, best].contiguous()
    return x[chosen].clone()


def kmeans(
    features,
    num_clusters: int,
    num_iter: int = 20,
    max_points_per_centre: int = 256,
    normalize: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    rows: np.ndarray | None = None,
) -> torch.Tensor:
    """k-means centres of the rows of `features` (Lloyd's algorithm on a sample, as faiss does).

    Args:
        features (`np.ndarray` or memory map `[n, d]`): the points; any float dtype (read in float32).
        num_clusters (`int`): number of centres `k`.
        num_iter (`int`, *optional*, defaults to 20): Lloyd iterations (faiss's default).
        max_points_per_centre (`int`, *optional*, defaults to 256): the sample holds at most `k` times this many rows
            (faiss's default); all rows when there are fewer.
        normalize (`bool`, *optional*, defaults to `False`): L2-normalise rows and centres (spherical k-means, for
            cosine geometry as in Sorscher et al.).
        seed (`int`, *optional*, defaults to 0): seed of the sample, the seeding and the re-seeding of empty clusters.
        device (`str` or `torch.device`, *optional*, defaults to `"cpu"`): where the arithmetic runs.
        rows (`np.ndarray` of int, *optional*): cluster only these row positions; defaults to all rows.

    Returns:
        `torch.Tensor` float32 `[k, d]` of centres (on `device`).

    Example:

    ```python
    >>> import numpy as np
    >>> from hf_prune.kmeans import kmeans, nearest_centre
    >>> x = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 10.0)])
    >>> centres = kmeans(x, 2)
    >>> sorted(centres[:, 0].tolist())
    [0.0, 10.0]
    ```
    """
    pool = np.arange(features.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    n, k = pool.size, int(num_clusters)
    if not 1 <= k <= n:
        raise ValueError(f"num_clusters must be in [1, {n}] (the number of points); got {num_clusters}.")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(int(seed))
    m = min(n, int(max_points_per_centre) * k)
    sample_rows = np.sort(pool[rng.choice(n, size=m, replace=False)]) if m < n else pool
    x = _gather(features, sample_rows, normalize, device)
    fast = _fast_dtype(x.device.type)
    x_fast = x.to(fast) if fast != x.dtype else x
    init = x[torch.from_numpy(np.sort(rng.choice(m, size=min(m, max(10 * k, 4096)), replace=False)))]
    centres = _kmeans_pp(init.cpu(), k, generator).to(device)
    for _ in range(int(num_iter)):
        centres_sq = (centres * centres).sum(1)
        centres_t = centres.to(fast).T.contiguous()
        assign = torch.empty(m, dtype=torch.long, device=device)
        best = torch.empty(m, device=device)
        for s in range(0, m, CHUNK):
            values, index = _scores(x_fast[s : s + CHUNK], centres_t, centres_sq).min(1)
            assign[s : s + CHUNK], best[s : s + CHUNK] = index, values
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled].unsqueeze(1).float()
        empty = torch.nonzero(~filled).squeeze(1)
        if empty.numel():
            # Re-seed empty clusters with the rows farthest from their centre (distinct rows).
            far = torch.topk(best + (x * x).sum(1), min(m, empty.numel())).indices
            centres[empty[: far.numel()]] = x[far]
        if normalize:
            centres = torch.nn.functional.normalize(centres, dim=1)
    return centres


@torch.no_grad()
def nearest_centre(
    features, centres: torch.Tensor, normalize: bool = False, chunk_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre and Euclidean distance to it for every row, streamed in chunks.

    The four nearest candidates of each row are found with fast (possibly bfloat16) products and re-checked in
    float32, and the distance to the chosen centre is computed directly in float64 (see the module docstring).

    Returns:
        `(assignment int64 [n], distance float64 [n])`. With `normalize=True` rows are L2-normalised first, so the
        distance is `sqrt(2 - 2 cos)`, monotone in the cosine distance.
    """
    n = features.shape[0]
    assign = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float64)
    centres = centres.float()
    centres_sq = (centres * centres).sum(1)
    centres_t = centres.to(_fast_dtype(centres.device.type)).T.contiguous()
    candidates = min(4, centres.shape[0])
    for start, x in iter_chunks(features, chunk_size, normalize, centres.device):
        top = _scores(x, centres_t, centres_sq).topk(candidates, dim=1, largest=False).indices
        exact = ((x.unsqueeze(1) - centres[top]) ** 2).sum(-1)
        a = top.gather(1, exact.argmin(1, keepdim=True)).squeeze(1)
        d = (x.double() - centres[a].double()).pow_(2).sum(1).sqrt_()
        assign[start : start + x.shape[0]] = a.cpu().numpy()
        dist[start : start + x.shape[0]] = d.cpu().numpy()
    return assign, dist
