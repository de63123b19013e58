"""Scoring time of every static strategy at ImageNet-1K scale, on a synthetic on-disk record and feature file.

The record has n = 1,281,167 samples and K epochs (default 300, the Dyn-Unc paper's ImageNet-1K schedule) of the
signals the methods read (p_target, correct, logit_margin, entropy, el2n), written epoch by epoch through
`ScoreRecord.write_epoch` into memory-mapped float32 files (1.5 GB per signal at K = 300). The features are a
float16 `[n, 768]` memory map (Swin-T's width, 1.97 GB) for `moderate` and `ssp` (k = 1000 clusters, the number of
classes). Each method is timed end to end (`select(record, 0.25)`: score + selection), reading from disk; page
cache state is whatever the previous method left, which is reported as is.

    python bench/bench_scoring_time.py                       # K = 300, all methods
    python bench/bench_scoring_time.py --epochs 100 --methods dyn_unc forgetting

Writes bench/results/strategies_scoring_time.md. Needs ~8 GB of free disk at K = 300 (removed afterwards).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hf_prune import ScoreRecord, get_strategy  # noqa: E402
from hf_prune.features import FEATURES_FILE, META_FILE, SEEN_FILE  # noqa: E402


N_IMAGENET = 1_281_167
SIGNALS = ["p_target", "correct", "logit_margin", "entropy", "el2n"]


def write_record(path: Path, n: int, epochs: int, num_classes: int, seed: int = 0) -> ScoreRecord:
    """Synthetic training dynamics: each sample has a learning onset and a noise level, so every signal varies."""
    rng = np.random.default_rng(seed)
    onset = rng.uniform(-0.2, 1.3, n).astype(np.float32) * epochs
    speed = rng.uniform(0.05, 0.5, n).astype(np.float32)
    noise = rng.uniform(0.0, 0.3, n).astype(np.float32)
    labels = rng.integers(0, num_classes, n)
    record = ScoreRecord.create(path, n, SIGNALS, capacity_epochs=epochs, metadata={"synthetic": True})
    ids = np.arange(n, dtype=np.int64)
    for k in range(epochs):
        z = (k - onset) * speed + rng.standard_normal(n, dtype=np.float32) * (1 + 10 * noise)
        p = 1.0 / (1.0 + np.exp(-z))
        values = {
            "p_target": p,
            "correct": (p > 0.5).astype(np.float32),
            "logit_margin": z,
            "entropy": (-(p * np.log(p + 1e-12) + (1 - p) * np.log(1 - p + 1e-12))).astype(np.float32),
            "el2n": (np.sqrt(2.0) * (1 - p)).astype(np.float32),
        }
        record.write_epoch(k, ids, values, labels if k == 0 else None)
    return ScoreRecord.load(path)


def write_features(path: Path, labels: np.ndarray, dim: int, num_classes: int, seed: int = 0, chunk: int = 65536):
    """Class-clustered float16 features written chunk by chunk straight into the feature-folder layout."""
    rng = np.random.default_rng(seed + 1)
    centres = rng.standard_normal((num_classes, dim), dtype=np.float32)
    path.mkdir(parents=True, exist_ok=True)
    n = labels.size
    out = np.lib.format.open_memmap(path / FEATURES_FILE, mode="w+", dtype=np.float16, shape=(n, dim))
    for s in range(0, n, chunk):
        lab = labels[s : s + chunk]
        out[s : s + chunk] = centres[lab] + 1.5 * rng.standard_normal((lab.size, dim), dtype=np.float32)
    out.flush()
    del out
    np.save(path / SEEN_FILE, np.ones(n, dtype=bool))
    (path / META_FILE).write_text(f'{{"num_samples": {n}, "dim": {dim}, "dtype": "float16", "layer": "synthetic"}}')


def methods(args):
    return {
        "random": {},
        "dyn_unc": {"window": 10},
        "static_uncertainty": {"window": 5},
        "forgetting": {},
        "entropy": {},
        "el2n": {},
        "grand": {"features": str(args.work / "run" / "features")},
        "cartography": {},
        "aum": {},
        "ccs": {"score": "aum"},
        "moderate": {},
        "ssp": {"num_clusters": args.clusters, "num_iter": args.kmeans_iter},
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=N_IMAGENET)
    p.add_argument("--epochs", type=int, default=300, help="K of the synthetic record")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--dim", type=int, default=768, help="feature width")
    p.add_argument("--clusters", type=int, default=1000, help="k of SSP's k-means")
    p.add_argument("--kmeans-iter", type=int, default=20, help="Lloyd iterations of SSP's k-means")
    p.add_argument("--methods", nargs="+", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default=None, help="where the synthetic files go (default: a temp dir)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "strategies_scoring_time.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work = Path(tempfile.mkdtemp(prefix="hfp_scoring_", dir=args.workdir))
    try:
        t0 = time.time()
        record = write_record(args.work / "run" / "scores", args.num_samples, args.epochs, args.num_classes)
        write_features(args.work / "run" / "features", record.labels, args.dim, args.num_classes)
        setup = time.time() - t0
        print(f"wrote {record} and features in {setup:.0f} s", flush=True)
        rows = []
        for name, params in methods(args).items():
            if args.methods and name not in args.methods:
                continue
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t = time.perf_counter()
            result = get_strategy(name, **params).select(record, 0.25)
            dt = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            assert result.num_kept == args.num_samples - int(0.25 * args.num_samples + 1e-9)
            rows.append((name, params, dt, max(before, after) / 1024))
            print(f"{name}: {dt:.1f} s", flush=True)
        sizes = {s: os.path.getsize(args.work / "run" / "scores" / f"{s}.npy") / 1e9 for s in SIGNALS}
        feat_gb = os.path.getsize(args.work / "run" / "features" / FEATURES_FILE) / 1e9
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    lines = [
        "# Scoring time per strategy at ImageNet-1K scale",
        "",
        f"Synthetic on-disk record: n = {args.num_samples:,}, K = {args.epochs} epochs, signals "
        f"{', '.join(SIGNALS)} (float32 memory maps, {sizes['p_target']:.2f} GB each); features float16 "
        f"[{args.num_samples:,}, {args.dim}] ({feat_gb:.2f} GB); {args.num_classes} classes. Time = "
        f"`get_strategy(name, **params).select(record, prune_ratio=0.25)` end to end (score + selection), "
        f"{torch.get_num_threads()} CPU threads on a shared 2-core machine. Peak RSS is the process's running "
        "maximum (it includes every method before it).",
        "",
        "| method | params | time (s) | peak RSS so far (GB) |",
        "|---|---|---:|---:|",
    ]
    for name, params, dt, rss in rows:
        shown = {k: v for k, v in params.items() if k != "features"}
        lines.append(f"| {name} | {shown or ''} | {dt:.1f} | {rss / 1024:.2f} |")
    lines += ["", f"Writing the synthetic record and features took {setup:.0f} s.", "",
              f"Command: `python {' '.join(sys.argv)}`", ""]  # fmt: skip
    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
