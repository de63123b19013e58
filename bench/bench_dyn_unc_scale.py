"""Dyn-Unc at ImageNet scale on a synthetic on-disk record: wall time and peak RSS of scoring + selection, plain and
class-balanced.

    python bench/bench_dyn_unc_scale.py                       # ImageNet-1K: n = 1,281,167, K = 300, J = 10
    python bench/bench_dyn_unc_scale.py --imagenet21k         # also n = 14,197,122, K = 90 (needs ~5 GB of disk)

The record is written once to --workdir (a `ScoreRecord` folder, memory-mapped float32 [K, n], with labels of 1,000
classes at 1K and 21,841 at 21K); each measurement runs in a fresh subprocess so that its peak RSS is its own.
Goals: at 1K <= 5 s and <= 1.5 GB; at 21K, streaming, class-balanced included, peak RSS <= 2 GB.
Writes bench/results/dyn_unc_scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def make_record(path: Path, n: int, K: int, num_classes: int, seed: int = 0) -> None:
    from hf_prune import ScoreRecord

    if (path / "record.json").exists() and ScoreRecord.load(path).num_epochs == K:
        return
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(seed)
    record = ScoreRecord.create(path, n, ["p_target"], capacity_epochs=K, metadata={"synthetic": True})
    difficulty = rng.random(n, dtype=np.float32)
    labels = rng.integers(0, num_classes, n)
    ids = np.arange(n)
    for k in range(K):
        # each sample's probability rises at its own pace, with epoch-to-epoch jitter
        p = 1.0 / (1.0 + np.exp(-(k / K * 12 - 12 * difficulty + 2)))
        p += rng.normal(0, 0.05, n).astype(np.float32)
        record.write_epoch(k, ids, {"p_target": np.clip(p, 0, 1).astype(np.float32)}, labels if k == 0 else None)
    print(f"wrote synthetic record {path} ({n:,} x {K})", file=sys.stderr)


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the address space that exec made, whereas ru_maxrss keeps the
    high-water mark of the parent at fork (here: the parent that just wrote a multi-GB synthetic record)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str, window: int, ratio: float, class_balanced: bool = False) -> dict:
    from hf_prune import ScoreRecord, get_strategy

    t0 = time.perf_counter()
    record = ScoreRecord.load(path)
    result = get_strategy("dyn_unc", window=window).select(record, prune_ratio=ratio, class_balanced=class_balanced)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "kept": result.num_kept,
        "n": record.num_samples,
        "K": record.num_epochs,
    }


def run_child(path: Path, window: int, ratio: float, class_balanced: bool = False) -> dict:
    code = (
        "import json, bench_dyn_unc_scale as b; "
        f"print(json.dumps(b.measure({str(path)!r}, {window}, {ratio}, {class_balanced})))"
    )
    path_entries = [str(ROOT / "bench"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path_entries if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/hf_prune_bench", help="where the synthetic records are written")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--imagenet21k", action="store_true", help="also run n = 14,197,122, K = 90")
    args = parser.parse_args()
    scales = [("ImageNet-1K", 1_281_167, 300, 1_000)]
    if args.imagenet21k:
        scales.append(("ImageNet-21K", 14_197_122, 90, 21_841))
    rows = []
    for name, n, K, classes in scales:
        path = Path(args.workdir) / f"record_{n}_{K}_{classes}"
        make_record(path, n, K, classes)
        for balanced in (False, True):
            runs = [run_child(path, 10, 0.25, balanced) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds"])
            rss = max(r["peak_rss_mb"] for r in runs)
            rows.append((name, n, K, classes, balanced, [r["seconds"] for r in runs], rss, best["kept"]))
            print(rows[-1], flush=True)
    lines = [
        "| scale | n | K | J | classes | class-balanced | time (s), each run | peak RSS (MB) | kept at 25 % removed | "
        "[K, n] float32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, n, K, classes, balanced, secs, rss, kept in rows:
        lines.append(
            f"| {name} | {n:,} | {K} | 10 | {classes:,} | {'yes' if balanced else 'no'} | "
            f"{', '.join(f'{s:.2f}' for s in secs)} | {rss:.0f} | {kept:,} | {K * n * 4 / 2**30:.2f} GiB |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dyn_unc_scale.md").write_text(
        "Dyn-Unc scoring + selection from an on-disk record, streamed by epoch (`python bench/bench_dyn_unc_scale.py"
        + (" --imagenet21k" if args.imagenet21k else "") + "`).\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
