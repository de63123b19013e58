"""`PruningTrainer` vs plain `Trainer` step time on a GPU: ResNet-50 and Swin-T at batch 256 in bf16 on synthetic
ImageNet-shaped data resident on the GPU, and a tiny CNN; same model, data, seed and arguments, alternating runs in
one process.

    python bench/bench_gpu_overhead.py                     # on a machine with a CUDA GPU
    python bench/bench_gpu_overhead.py --tiny              # the same code path on CPU, tiny sizes (a smoke run)

Each run trains `--epochs` epochs of `--steps` optimizer steps; the time of the *last* epoch is measured (the first
one warms up kernels and the allocator), including the per-step recording and the epoch-end gather and record
write, with `torch.cuda.synchronize()` only at the epoch boundaries. Runs alternate (Trainer, PruningTrainer,
Trainer, ...) so that the noise of a shared machine hits both alike; the median over `--repeats` is reported.
Goals: overhead <= 1 % for ResNet-50 and Swin-T, <= 3 % for the tiny CNN. Writes bench/results/gpu_overhead.md
(or `gpu_overhead_tiny_cpu.md` with `--tiny`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hf_prune import PruningArguments, PruningTrainer  # noqa: E402
from hf_prune.models import build_timm_classifier  # noqa: E402


RESULTS = ROOT / "bench" / "results"
# name -> (timm architecture, extra model args, image side, channels, classes)
MODELS = {
    "resnet50": ("resnet50", {}, 224, 3, 1000),
    "swin_t": ("swin_tiny_patch4_window7_224", {}, 224, 3, 1000),
    "tiny_cnn": ("test_resnet", {}, 64, 3, 1000),
}
TINY = {  # the same code path at a size a CPU runs in seconds
    "resnet50": ("resnet10t", {}, 32, 3, 10),
    "swin_t": ("swin_fmnist", {}, 28, 1, 10),
    "tiny_cnn": ("test_resnet", {}, 32, 3, 10),
}


class ResidentImages(torch.utils.data.Dataset):
    """Synthetic images and labels that live on the training device, so the loader costs (almost) nothing."""

    def __init__(self, n: int, side: int, channels: int, classes: int, device, dtype):
        g = torch.Generator().manual_seed(0)
        self.pixels = torch.randn(n, channels, side, side, generator=g).to(device=device, dtype=dtype)
        self.labels = torch.randint(classes, (n,), generator=g).to(device)

    def __len__(self):
        return self.labels.shape[0]

    def __getitem__(self, i):
        return {"pixel_values": self.pixels[i], "labels": self.labels[i]}


def collate(features):
    return {
        "pixel_values": torch.stack([f["pixel_values"] for f in features]),
        "labels": torch.stack([f["labels"] for f in features]),
    }


class EpochTimer(TrainerCallback):
    """Wall time of every epoch, synchronising the device at the boundaries only."""

    def __init__(self):
        self.epochs, self._start = [], None

    def _sync(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self._sync()
        self.epochs.append(time.perf_counter() - self._start)


def run_once(trainer_cls, spec, args, workdir: str, device, use_cpu: bool) -> float:
    arch, extra, side, channels, classes = spec
    n = args.steps * args.batch
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    data = ResidentImages(n, side, channels, classes, device, dtype)
    args_cls = PruningArguments if trainer_cls is PruningTrainer else TrainingArguments
    training_args = args_cls(
        output_dir=workdir, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0, use_cpu=use_cpu,
        logging_strategy="no", bf16=args.bf16, dataloader_pin_memory=False, dataloader_num_workers=0,
        **({"overwrite_score_record": True} if trainer_cls is PruningTrainer and _has_field("overwrite_score_record")
           else {}),
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_timm_classifier(arch, classes, in_chans=channels, img_size=side, **extra)
    timer = EpochTimer()
    trainer = trainer_cls(model=model, args=training_args, train_dataset=data, data_collator=collate,
                          callbacks=[timer])  # fmt: skip
    trainer.train()
    return timer.epochs[-1] / args.steps


def _has_field(name: str) -> bool:
    return name in PruningArguments.__dataclass_fields__


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-bf16", dest="bf16", action="store_false")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: tiny models, batch 8, 3 steps")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    hf_logging.set_verbosity_error()
    specs = TINY if args.tiny else MODELS
    use_cpu = args.tiny or not torch.cuda.is_available()
    if args.tiny:
        args.batch, args.steps, args.repeats, args.bf16 = 8, 3, 1, False
    elif use_cpu:
        raise SystemExit("No CUDA GPU here: run with --tiny for the CPU smoke run of the same code path.")
    device = torch.device("cpu" if use_cpu else "cuda")
    rows = {}
    for name in args.models:
        times = {Trainer: [], PruningTrainer: []}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                for cls in (Trainer, PruningTrainer):
                    times[cls].append(run_once(cls, specs[name], args, tmp + f"/{cls.__name__}", device, use_cpu))
        plain, ours = statistics.median(times[Trainer]), statistics.median(times[PruningTrainer])
        rows[name] = {"trainer_ms": plain * 1e3, "pruning_trainer_ms": ours * 1e3, "overhead": ours / plain - 1}
        print(f"{name}: Trainer {plain * 1e3:.2f} ms/step, PruningTrainer {ours * 1e3:.2f} ms/step, "
              f"overhead {100 * (ours / plain - 1):+.2f}%", flush=True)  # fmt: skip
    where = "CPU (tiny smoke sizes)" if args.tiny else torch.cuda.get_device_name()
    lines = [
        f"# PruningTrainer vs Trainer step time on {where}",
        "",
        f"Batch {args.batch}, {args.steps} steps per epoch, {args.epochs} epochs (the last one timed), "
        f"{'bf16' if args.bf16 else 'fp32'}, synthetic data resident on the device, {args.repeats} alternating "
        "repeats, median. Recorded signals: p_target, loss, correct.",
        "",
        "| model | Trainer (ms/step) | PruningTrainer (ms/step) | overhead |",
        "|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        arch = specs[name][0]
        lines.append(
            f"| {name} (`{arch}`) | {row['trainer_ms']:.2f} | {row['pruning_trainer_ms']:.2f} | "
            f"{100 * row['overhead']:+.2f} % |"
        )
    command = "python bench/bench_gpu_overhead.py" + (" --tiny" if args.tiny else "")
    lines += ["", f"Command: `{command}`", ""]
    out = Path(args.out) if args.out else RESULTS / ("gpu_overhead_tiny_cpu.md" if args.tiny else "gpu_overhead.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
