"""SSP's clustering at ImageNet-1K scale: hf_prune's torch mini-batch k-means against scikit-learn's
`MiniBatchKMeans.partial_fit` over memory-mapped chunks and faiss's `Kmeans` (when installed), side by side in one run.

The features are a synthetic float16 `[n, d]` memory map on disk (n = 1,281,167, d = 768: Swin-T's width), clustered
around `num_classes` centres. Every method clusters into k = 1,000 and then assigns *every* row to its nearest centre
(what `ssp` needs: the distance of each sample to its prototype). Reported per method: wall time of fit + assignment,
peak RSS of the process that ran it (each method runs in a fresh child process, so peaks do not carry over), and the
quality of its centres, measured the same way for every method (centres L2-normalised, every row assigned to its
nearest one): the adjusted Rand index against the planted classes (1 = every class found) and the mean squared
spherical distance `2 - 2 cos` to the assigned centre (lower is a tighter clustering).

    python bench/bench_kmeans.py                           # n = 1,281,167, d = 768, k = 1,000
    python bench/bench_kmeans.py --num-samples 100000 --methods hf_prune sklearn

Writes bench/results/kmeans.md. Needs ~2 GB of free disk (removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]
N_IMAGENET = 1_281_167
CHUNK = 65536


def write_features(path: Path, n: int, dim: int, num_classes: int, seed: int = 0) -> np.ndarray:
    """Writes the features; returns the planted class of every row."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_classes, dim), dtype=np.float32)
    labels = rng.integers(0, num_classes, n)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    for s in range(0, n, CHUNK):
        m = min(CHUNK, n - s)
        out[s : s + m] = centres[labels[s : s + m]] + 1.5 * rng.standard_normal((m, dim), dtype=np.float32)
    out.flush()
    return labels


def peak_rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def run_hf_prune(features, k, seed, threads):
    import torch

    from hf_prune.kmeans import kmeans, nearest_centre

    torch.set_num_threads(threads)
    centres = kmeans(features, k, normalize=True, seed=seed)
    nearest_centre(features, centres, normalize=True)  # the assignment ssp makes, timed with the fit
    return centres.numpy()


def run_sklearn(features, k, seed, threads):
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    n = features.shape[0]
    with threadpool_limits(threads):
        km = MiniBatchKMeans(n_clusters=k, batch_size=4096, random_state=seed, n_init=1, max_iter=1)
        rng = np.random.default_rng(seed)
        # Same budget as hf_prune: 100 mini-batches of 4096 rows, read from the memory map in sorted row order.
        init = np.sort(rng.choice(n, size=max(3 * 4096, 10 * k), replace=False))
        km.partial_fit(_normalized(features[init]))  # k-means++ on the first batch
        for _ in range(100):
            km.partial_fit(_normalized(features[np.sort(rng.choice(n, size=4096, replace=False))]))
        for s in range(0, n, CHUNK):
            km.transform(_normalized(features[s : s + CHUNK])).min(1)  # the assignment ssp makes
    return km.cluster_centers_


def run_faiss(features, k, seed, threads):
    import faiss

    faiss.omp_set_num_threads(threads)
    n, d = features.shape
    rng = np.random.default_rng(seed)
    sample = _normalized(features[np.sort(rng.choice(n, size=min(n, 256 * k), replace=False))])
    km = faiss.Kmeans(d, k, niter=20, seed=seed, spherical=True, verbose=False)
    km.train(sample)
    for s in range(0, n, CHUNK):
        km.index.search(_normalized(features[s : s + CHUNK]), 1)  # the assignment ssp makes (inner products)
    return km.centroids


def _normalized(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


RUNNERS = {"hf_prune": run_hf_prune, "sklearn": run_sklearn, "faiss": run_faiss}


def child(args) -> None:
    """One method, in its own process: prints a JSON line with time, peak RSS and where its centres went."""
    features = np.load(args.features, mmap_mode="r")
    t = time.perf_counter()
    try:
        centres = RUNNERS[args.child](features, args.clusters, args.seed, args.threads)
    except ImportError as err:
        print(json.dumps({"method": args.child, "error": f"not installed ({err})"}))
        return
    seconds = time.perf_counter() - t
    out = Path(args.features).with_name(f"centres_{args.child}.npy")
    np.save(out, np.asarray(centres, dtype=np.float32))
    print(json.dumps({"method": args.child, "seconds": seconds, "peak_rss_gb": peak_rss_gb(), "centres": str(out)}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=N_IMAGENET)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "kmeans.md"))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--features", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    import torch
    from sklearn.metrics import adjusted_rand_score

    from hf_prune.kmeans import nearest_centre

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="hfp_kmeans_") as tmp:
        features = Path(tmp) / "features.npy"
        t = time.perf_counter()
        planted = write_features(features, args.num_samples, args.dim, args.num_classes, args.seed)
        print(f"wrote {features.stat().st_size / 1e9:.2f} GB of features in {time.perf_counter() - t:.0f} s", flush=True)
        rows = []
        for method in args.methods:
            cmd = [sys.executable, __file__, "--child", method, "--features", str(features), "--clusters",
                   str(args.clusters), "--seed", str(args.seed), "--threads", str(args.threads)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env())
            if proc.returncode:
                raise RuntimeError(f"{method} failed:\n{proc.stderr[-3000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            print(row, flush=True)
            rows.append(row)
        lines = [
            "# k-means for `ssp` at ImageNet-1K scale",
            "",
            f"Synthetic float16 features `[{args.num_samples:,}, {args.dim}]` on disk ({args.num_classes} Gaussian "
            f"classes), k = {args.clusters}, cosine geometry (rows L2-normalised), {args.threads} CPU threads on the "
            "shared 2-core machine; each method in a fresh process, time = fit + assignment of every row. Quality of "
            "the centres, the same measure for every method (centres L2-normalised, rows assigned to the nearest): "
            "adjusted Rand index against the planted classes and mean `2 - 2 cos` to the assigned centre.",
            "",
            "| method | time (s) | peak RSS (GB) | ARI vs planted classes | mean 2 - 2 cos |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in rows:
            if "error" in row:
                lines.append(f"| {row['method']} | {row['error']} | | | |")
                continue
            centres = torch.nn.functional.normalize(torch.from_numpy(np.load(row["centres"])), dim=1)
            assign, dist = nearest_centre(np.load(features, mmap_mode="r"), centres, normalize=True)
            ari = adjusted_rand_score(planted, assign)
            lines.append(
                f"| {row['method']} | {row['seconds']:.1f} | {row['peak_rss_gb']:.2f} | {ari:.3f} | "
                f"{np.mean(dist**2):.4f} |"
            )
    lines += ["", f"Command: `python bench/bench_kmeans.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
              ""]  # fmt: skip
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)


def _env():
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}


if __name__ == "__main__":
    main()
