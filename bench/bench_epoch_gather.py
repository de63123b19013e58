"""Epoch-end gather + record write at ImageNet scale, with a real 2-process `torchrun` on CPU (gloo): before vs after.

    python bench/bench_epoch_gather.py                          # n = 1,281,167 and 14,197,122, before and after
    python bench/bench_epoch_gather.py --sizes 1281167 --variants after

Each rank holds one epoch's rows as the recorder holds them at the epoch's end: half of a random permutation of the
n sample ids (as a distributed sampler deals them) plus padding duplicates, three signals (p_target, loss, correct).
Then, timed, the epoch-end work of every rank:

* **before** (hf_prune <= 0.1, copied here verbatim): every rank concatenates its per-step float64 `[m, 2 + S]` rows,
  pads and `accelerator.gather`s them (every rank receives the whole epoch), masks, argsorts and de-duplicates on the
  host; the main process writes each signal's row into a sparse memory-mapped float32 file.
* **after** (`PruningTrainer._write_epoch`): `stream_rows_to_main` moves each rank's rows (int64 id, int32 label,
  float32 values, de-duplicated by id on the device) to the main process only, one id range at a time, and
  `EpochWriter` writes each segment with `os.pwrite` into preallocated files.

Each (variant, n) runs in fresh processes. Per rank: the time of the epoch-end work (barrier to barrier), the RSS
before it (the rows already buffered: not counted), and the peak RSS during it (VmHWM, reset just before the timed
section through /proc/self/clear_refs). Goal: peak *extra* memory per rank independent of n beyond the main process's
own row buffers; write <= 5 s at 21K. Writes bench/results/epoch_gather.md (and .json).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


RESULTS = Path(__file__).resolve().parent / "results"
SIGNALS = ["p_target", "loss", "correct"]
STEP = 256  # rows per training step (per-device batch)


def _status(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def epoch_rows(n: int, rank: int, world: int, seed: int = 0):
    """This rank's ids of one epoch (with padding duplicates, as DistributedSampler pads), labels and values."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    total = -(-n // (world * STEP)) * world * STEP
    perm = torch.cat([perm, perm[: total - n]])
    ids = perm[rank::world].contiguous()
    labels = (ids % 1000).to(torch.int32)
    values = torch.rand(ids.shape[0], len(SIGNALS), generator=torch.Generator().manual_seed(rank))
    return ids, labels, values


# ---------------------------------------------------------------------------------------------------- before


def before_gather(rows: list[torch.Tensor], accelerator):
    """hf_prune 0.1's `Recorder.gather`: all-gather of float64 rows to every rank, de-duplicated on the host."""
    local = torch.cat(rows)
    local = accelerator.pad_across_processes(local, dim=0, pad_index=-1)
    gathered = accelerator.gather(local)
    gathered = gathered[gathered[:, 0] >= 0].cpu().numpy()
    ids = gathered[:, 0].astype(np.int64)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    first = np.ones(ids.shape[0], dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    gathered = gathered[order][first]
    values = {name: gathered[:, 2 + i].astype(np.float32) for i, name in enumerate(SIGNALS)}
    return ids[first], gathered[:, 1].astype(np.int64), values


def before_create(path: Path, n: int) -> dict:
    path.mkdir(parents=True)
    arrays = {s: np.lib.format.open_memmap(path / f"{s}.npy", mode="w+", dtype=np.float32, shape=(1, n)) for s in SIGNALS}
    labels = np.lib.format.open_memmap(path / "labels.npy", mode="w+", dtype=np.int64, shape=(n,))
    labels[:] = -1
    labels.flush()
    return {"arrays": arrays, "labels": labels, "path": path}


def before_write(record: dict, ids, labels, values, n: int) -> None:
    """hf_prune 0.1's `ScoreRecord.write_epoch`: a full float32 row per signal into the memory map, then the json."""
    row = np.empty(n, dtype=np.float32)
    for name in SIGNALS:
        row.fill(np.nan)
        row[ids] = values[name]
        record["arrays"][name][0] = row
        record["arrays"][name].flush()
    record["labels"][ids] = labels
    record["labels"].flush()
    tmp = record["path"] / "record.json.tmp"
    tmp.write_text(json.dumps({"num_epochs": 1, "num_samples": n, "signals": SIGNALS}))
    os.replace(tmp, record["path"] / "record.json")


# ---------------------------------------------------------------------------------------------------- worker


def worker(n: int, variant: str, workdir: Path, out: Path) -> None:
    from accelerate import Accelerator

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    ids, labels, values = epoch_rows(n, rank, world)
    main = accelerator.is_main_process
    if variant == "before":
        dense = torch.cat([ids[:, None].double(), labels[:, None].double(), values.double()], dim=1)
        buffer = list(torch.split(dense, STEP))  # the per-step list the old recorder kept
        del dense
        record = before_create(workdir / "before", n) if main else None
    else:
        from hf_prune.record import ScoreRecord
        from hf_prune.recording import Recorder

        recorder = Recorder(SIGNALS)
        recorder.load_state_dict({"signals": SIGNALS, "ids": ids, "labels": labels, "values": values})
        record = ScoreRecord.create(workdir / "after", n, SIGNALS, capacity_epochs=1) if main else None
    del ids, labels, values
    gc.collect()
    accelerator.wait_for_everyone()
    baseline = _status("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    if variant == "before":
        got_ids, got_labels, got_values = before_gather(buffer, accelerator)
        if main:
            before_write(record, got_ids, got_labels, got_values, n)
        del got_ids, got_labels, got_values
    else:
        from hf_prune.distributed import raise_on_every_rank, stream_rows_to_main

        writer = record.epoch_writer(0) if main else None
        stream = stream_rows_to_main(accelerator, recorder.id_histogram, recorder.select_rows, n,
                                     recorder.packed_row_bytes, device=accelerator.device)  # fmt: skip
        for lo, hi, rank_ids, rank_rows in stream:
            if writer is not None:
                unpacked = [recorder.unpack_rows(r) for r in rank_rows]
                writer.write(lo, hi, rank_ids, [u[0] for u in unpacked], [u[1] for u in unpacked], signals=SIGNALS)
        if writer is not None:
            writer.commit()
        raise_on_every_rank(None, accelerator, "the benchmark")
    accelerator.wait_for_everyone()
    elapsed = time.perf_counter() - start
    peak = _status("VmHWM")
    if main:  # check what was written: every sample once, nothing else
        from hf_prune.record import ScoreRecord

        if variant == "after":
            written = ScoreRecord.load(workdir / "after").signal("p_target")[0]
        else:
            written = np.load(workdir / "before" / "p_target.npy", mmap_mode="r")[0]
        assert not np.isnan(written).any()
    result = {"n": n, "variant": variant, "rank": rank, "seconds": elapsed, "baseline_mb": baseline, "peak_mb": peak}
    out.with_name(f"{out.name}.rank{rank}.json").write_text(json.dumps(result))
    accelerator.wait_for_everyone()
    torch.distributed.destroy_process_group()
    os._exit(0)  # skip the teardown that gloo's threads can abort


# ---------------------------------------------------------------------------------------------------- driver


def run(n: int, variant: str, tmp: Path) -> list[dict]:
    out = tmp / f"{variant}_{n}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--rdzv_backend", "c10d",
           "--rdzv_endpoint", "127.0.0.1:0", __file__, "--worker", "--size", str(n), "--variant", variant,
           "--workdir", str(tmp / f"records_{variant}_{n}"), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return [{"n": n, "variant": variant, "rank": r, "error": f"exit {proc.returncode}"} for r in range(2)]
    return [json.loads(out.with_name(f"{out.name}.rank{r}.json").read_text()) for r in range(2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_281_167, 14_197_122])
    parser.add_argument("--variants", nargs="+", default=["before", "after"])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--size", type=int)
    parser.add_argument("--variant")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        args.workdir.mkdir(parents=True, exist_ok=True)
        worker(args.size, args.variant, args.workdir, args.out)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_gather_", dir=Path(__file__).resolve().parents[1]) as tmp:
        for n in args.sizes:
            for variant in args.variants:
                for r in run(n, variant, Path(tmp)):
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "epoch_gather.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "# Epoch-end gather + record write, 2-process torchrun on CPU (gloo)",
        "",
        f"`python bench/bench_epoch_gather.py --sizes {' '.join(map(str, args.sizes))}` — per rank: seconds of the "
        "epoch-end work (barrier to barrier; rank 0 includes the write), RSS before it (the epoch's rows already "
        "buffered), peak RSS during it and the difference (extra). 3 signals, float32.",
        "",
        "| n | variant | rank | seconds | RSS before (MB) | peak RSS (MB) | extra (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']:,} | {r['variant']} | {r['rank']} | {r['error']} | | | |")
            continue
        extra = r["peak_mb"] - r["baseline_mb"]
        lines.append(f"| {r['n']:,} | {r['variant']} | {r['rank']} | {r['seconds']:.2f} | {r['baseline_mb']:.0f} | "
                     f"{r['peak_mb']:.0f} | {extra:.0f} |")  # fmt: skip
    (RESULTS / "epoch_gather.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
