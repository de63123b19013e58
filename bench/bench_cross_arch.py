"""Cross-architecture pruning on Fashion-MNIST (Dyn-Unc paper, Tables 4-5): score with a small Swin, train a CNN on
what is kept.

The scoring run trains the library's `swin_fmnist` preset (`hf_prune.models.build_timm_classifier`: Swin-T's design
sized for 28x28, 0.3 M parameters) with AdamW and records every step through hf_prune's `Recorder` into a
`ScoreRecord`; its penultimate features (`forward_head(pre_logits=True)`) feed Moderate. Each method then selects at
each ratio, and the small CNN of `bench_strategies_quality.py` is trained from scratch on the kept samples.
For reference the same CNN is also trained on subsets pruned by a CNN-scored Dyn-Unc ("same-arch" row).

    python bench/bench_cross_arch.py                              # small, for a 2-core CPU
    python bench/bench_cross_arch.py --n-train 20000 --score-epochs 30 --window 10 --train-epochs 15

Writes bench/results/strategies_cross_arch.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_strategies_quality import ROOT, accuracy, load_data, score_run, train  # noqa: E402

from hf_prune import get_strategy  # noqa: E402
from hf_prune.models import build_timm_classifier  # noqa: E402


def swin():
    """The library's small Swin preset; its timm model is called directly (pixel tensor in, logits out)."""
    return build_timm_classifier("swin_fmnist", num_labels=10, in_chans=1).timm_model


METHODS = {
    "Random": ("random", {}),
    "Forgetting": ("forgetting", {}),
    "EL2N": ("el2n", {}),
    "Moderate": ("moderate", {}),
    "Dyn-Unc": ("dyn_unc", None),  # window from --window
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=5000)
    p.add_argument("--score-epochs", type=int, default=10, help="epochs of the Swin scoring run")
    p.add_argument("--window", type=int, default=3, help="Dyn-Unc window J")
    p.add_argument("--train-epochs", type=int, default=5, help="epochs of each CNN training")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "strategies_cross_arch.md"))
    args = p.parse_args(argv)
    args.el2n_runs = 1
    torch.set_num_threads(args.threads)
    x, y, xt, yt = load_data(args.n_train, args.n_test)
    with tempfile.TemporaryDirectory(prefix="hfp_cross_") as tmp:
        t0 = time.time()
        record, _, _ = score_run(x, y, args, Path(tmp) / "swin", model_fn=swin, optimizer="adamw", lr=2e-3)
        t_swin = time.time() - t0
        print(f"swin scoring run: {t_swin:.0f} s", flush=True)
        cnn_record, _, _ = score_run(x, y, args, Path(tmp) / "cnn")
        kept = {}
        for name, (strategy, params) in METHODS.items():
            params = {"window": args.window} if params is None else params
            for r in args.ratios:
                if strategy != "random":
                    kept[(name, r)] = get_strategy(strategy, **params).select(record, r).kept_ids
        for r in args.ratios:
            kept[("Dyn-Unc, scored by the CNN itself (same-arch)", r)] = (
                get_strategy("dyn_unc", window=args.window).select(cnn_record, r).kept_ids
            )
        names = [*METHODS, "Dyn-Unc, scored by the CNN itself (same-arch)"]
        table, full = {}, []
        t0 = time.time()
        for seed in args.seeds:
            full.append(accuracy(train(x, y, args.train_epochs, seed), xt, yt))
            for name in names:
                for r in args.ratios:
                    ids = (
                        get_strategy("random", seed=seed).select(record, r).kept_ids
                        if name == "Random"
                        else kept[(name, r)]
                    )
                    ids = torch.from_numpy(ids)
                    acc = accuracy(train(x[ids], y[ids], args.train_epochs, seed), xt, yt)
                    table.setdefault(name, {}).setdefault(r, []).append(acc)
                    print(f"seed {seed} {name} {r}: {acc:.2f}", flush=True)
        t_train = time.time() - t0
    cols = " | ".join(f"{int(round(100 * r))}% removed" for r in args.ratios)
    lines = [
        "# Cross-architecture pruning on Fashion-MNIST (Dyn-Unc Tables 4-5 layout)",
        "",
        f"Scores from a small Swin (`swin_fmnist`, {args.score_epochs} epochs, AdamW) on {len(y):,} training samples; "
        f"test accuracy (%) of a small CNN (`SmallCNN`, {args.train_epochs} epochs) trained on the kept samples, "
        f"mean ± std over seeds {args.seeds}, on {len(yt):,} test samples. Dyn-Unc window J={args.window}; "
        "Moderate on the Swin's penultimate features.",
        "",
        f"| Pruned with Swin, trained CNN | {cols} |",
        "|---|" + "---|" * len(args.ratios),
    ]
    for name in names:
        cells = " | ".join(f"{np.mean(table[name][r]):.2f} ± {np.std(table[name][r]):.2f}" for r in args.ratios)
        lines.append(f"| {name} | {cells} |")
    lines.append(f"| No pruning (CNN) | {np.mean(full):.2f} ± {np.std(full):.2f} |" + " |" * (len(args.ratios) - 1))
    lines += [
        "",
        f"Wall time: Swin scoring {t_swin:.0f} s; CNN trainings {t_train:.0f} s; {torch.get_num_threads()} "
        "CPU threads.",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
