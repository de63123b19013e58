"""Pruning quality on Fashion-MNIST: full data vs Dyn-Unc vs random, at 25 % and 50 % removed, over seeds.

    python bench/bench_dyn_unc_quality.py                                   # defaults below, ~10 min on 2 cores
    python bench/bench_dyn_unc_quality.py --samples 60000 --epochs 30 --window 10 --model swin_fmnist --seeds 0 1 2

For each seed: one `PruningTrainer` run on the training subset records the dynamics and gives the full-data
accuracy; Dyn-Unc and random then remove 25 % / 50 %, and a fresh model of the same seed is trained with the same
recipe (epochs, schedule) on each pruned set. Test accuracy on the full 10,000-image test split, mean +- std over
seeds. Writes bench/results/dyn_unc_quality.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer
from transformers.utils import logging as hf_logging

from hf_prune import PruningArguments, PruningTrainer, get_strategy
from hf_prune.data import ImageTransform, image_collator, load_fashion_mnist
from hf_prune.metrics import accuracy_metrics
from hf_prune.models import build_timm_classifier


RESULTS = Path(__file__).resolve().parent / "results"


def train_eval(cls, train, test, seed, opts, workdir, **extra):
    args = PruningArguments(
        output_dir=workdir, num_train_epochs=opts.epochs, per_device_train_batch_size=opts.batch, learning_rate=opts.lr,
        weight_decay=0.05, lr_scheduler_type="cosine", warmup_steps=0.05, per_device_eval_batch_size=512,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, seed=seed, use_cpu=True,
        logging_strategy="no", dataloader_drop_last=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = build_timm_classifier(opts.model, 10, in_chans=1)
    trainer = cls(model=model, args=args, train_dataset=train, eval_dataset=test, data_collator=image_collator,
                  compute_metrics=accuracy_metrics(), **extra)  # fmt: skip
    trainer.train()
    return trainer, trainer.evaluate()["eval_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny_cnn", help="model preset or timm name (default: fast CNN)")
    parser.add_argument("--samples", type=int, default=10000, help="training rows used (first N of 60,000)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--window", type=int, default=5, help="Dyn-Unc window J (paper: 10 with 300 epochs)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is robust on a shared machine)")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    hf_logging.set_verbosity_error()
    data = load_fashion_mnist()
    raw_train = data["train"].select(range(opts.samples))
    test = data["test"]
    test.set_transform(ImageTransform(28, 1, train=False))

    def transformed(ds):
        ds = ds.with_format(None)
        ds.set_transform(ImageTransform(28, 1, train=True))
        return ds

    acc: dict[tuple[str, float], list[float]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in opts.seeds:
            trainer, full = train_eval(PruningTrainer, transformed(raw_train), test, seed, opts, f"{tmp}/score{seed}")
            acc.setdefault(("full", 0.0), []).append(full)
            record = trainer.score_record
            for ratio in opts.ratios:
                for method, strategy in (("dyn_unc", get_strategy("dyn_unc", window=opts.window)),
                                         ("random", get_strategy("random", seed=seed))):  # fmt: skip
                    result = strategy.select(record, prune_ratio=ratio)
                    pruned = transformed(result.apply(raw_train))
                    _, a = train_eval(Trainer, pruned, test, seed, opts, f"{tmp}/{method}{ratio}{seed}")
                    acc.setdefault((method, ratio), []).append(a)
                    print(f"seed {seed} {method} removed {ratio:.0%}: {a:.4f} (full {full:.4f})", flush=True)
    minutes = (time.perf_counter() - start) / 60

    def cell(values):
        return f"{100 * np.mean(values):.2f} ± {100 * np.std(values):.2f}"

    header = "| removed | " + " | ".join(f"{r:.0%}" for r in opts.ratios) + " |"
    lines = [
        f"Fashion-MNIST, first {opts.samples:,} training images, model `{opts.model}`, {opts.epochs} epochs, "
        f"Dyn-Unc window J = {opts.window}, seeds {opts.seeds}; test accuracy (%) on the 10,000 test images, mean ± std "
        f"over seeds; {minutes:.0f} min on this machine. Command: `python bench/bench_dyn_unc_quality.py "
        f"--model {opts.model} --samples {opts.samples} --epochs {opts.epochs} --window {opts.window} "
        f"--seeds {' '.join(map(str, opts.seeds))}`.",
        "",
        f"Full data (0 % removed): **{cell(acc[('full', 0.0)])}**",
        "",
        header,
        "|---" * (len(opts.ratios) + 1) + "|",
    ]
    for method in ("dyn_unc", "random"):
        lines.append(f"| {method} | " + " | ".join(cell(acc[(method, r)]) for r in opts.ratios) + " |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dyn_unc_quality.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "dyn_unc_quality.json").write_text(json.dumps({f"{m}@{r}": v for (m, r), v in acc.items()}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
