"""Recording overhead: `PruningTrainer` vs plain `Trainer`, same model, data, seed and arguments, in one run.

    python bench/bench_recording_overhead.py                       # small Swin and tiny CNN on Fashion-MNIST
    python bench/bench_recording_overhead.py --models swin_fmnist --samples 8192 --repeats 5

Runs alternate (Trainer, PruningTrainer, Trainer, ...) so that the noise of a shared machine hits both alike; the
reported number is the median over repeats of the training wall time per optimizer step, everything included
(the per-step recording and the per-epoch gather and write). Goal: <= 3 % on CPU. Writes
bench/results/recording_overhead.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from hf_prune import PruningArguments, PruningTrainer
from hf_prune.data import ImageTransform, image_collator, load_fashion_mnist
from hf_prune.models import build_timm_classifier


RESULTS = Path(__file__).resolve().parent / "results"


def run_once(trainer_cls, model_name: str, train, batch: int, epochs: int, workdir: str) -> float:
    args_cls = PruningArguments if trainer_cls is PruningTrainer else TrainingArguments
    args = args_cls(
        output_dir=workdir, num_train_epochs=epochs, per_device_train_batch_size=batch, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True,
        logging_strategy="no",
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_timm_classifier(model_name, 10, in_chans=1)
    trainer = trainer_cls(model=model, args=args, train_dataset=train, data_collator=image_collator)
    start = time.perf_counter()
    trainer.train()
    return (time.perf_counter() - start) / trainer.state.global_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["swin_fmnist", "tiny_cnn"])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    train = load_fashion_mnist()["train"].select(range(args.samples))
    train.set_transform(ImageTransform(28, in_chans=1, train=False))
    rows = []
    for model_name in args.models:
        times = {Trainer: [], PruningTrainer: []}
        with tempfile.TemporaryDirectory() as tmp:
            run_once(Trainer, model_name, train, args.batch, 1, tmp)  # warm-up (allocator, kernels, page cache)
            for _ in range(args.repeats):
                for cls in (Trainer, PruningTrainer):
                    # a fresh output folder per run: PruningTrainer refuses to start over an existing record
                    run_dir = tempfile.mkdtemp(dir=tmp)
                    times[cls].append(run_once(cls, model_name, train, args.batch, args.epochs, run_dir))
        plain, ours = statistics.median(times[Trainer]), statistics.median(times[PruningTrainer])
        rows.append((model_name, plain, ours, times))
        print(f"{model_name}: Trainer {plain * 1e3:.1f} ms/step, PruningTrainer {ours * 1e3:.1f} ms/step, "
              f"overhead {100 * (ours / plain - 1):+.1f}%")  # fmt: skip
    lines = [
        f"Fashion-MNIST, {args.samples} samples, batch {args.batch}, {args.epochs} epochs, {args.repeats} alternating "
        f"repeats, CPU (`python bench/bench_recording_overhead.py`). Signals: p_target, loss, correct.",
        "",
        "| model | Trainer (ms/step, median) | PruningTrainer (ms/step, median) | overhead | all runs: Trainer / PruningTrainer (ms) |",
        "|---|---|---|---|---|",
    ]
    for model_name, plain, ours, times in rows:
        runs = " / ".join(
            ", ".join(f"{t * 1e3:.0f}" for t in times[cls]) for cls in (Trainer, PruningTrainer)
        )
        lines.append(
            f"| {model_name} | {plain * 1e3:.1f} | {ours * 1e3:.1f} | {100 * (ours / plain - 1):+.1f} % | {runs} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recording_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
