"""Pruning quality of every static strategy on Fashion-MNIST, in the layout of the Dyn-Unc paper's Table 2.

1. Scoring run: a small CNN is trained on a stratified subset of the Fashion-MNIST training split with a plain torch
   loop; every step hands (ids, logits, labels) to hf_prune's `Recorder`, and each epoch is written to an on-disk
   `ScoreRecord`, exactly as `PruningTrainer` does. Penultimate features of the final model (for `moderate`,
   `ssp`) and of the model after the first epoch (for `grand`'s last-layer factor) go through
   `hf_prune.features.make_feature_fn` into float16 feature folders. `--el2n-runs` extra short runs with other
   seeds give EL2N its average over runs.
2. Every method selects at every ratio (fraction *removed*); a fresh CNN is trained on each kept set for
   `--train-epochs` epochs with each seed, and its test accuracy is reported as mean ± std over seeds, with the
   rank per ratio and the average rank.

It is sized for a 2-core CPU by default (a few thousand samples, a few epochs): the ranking is noisy at this size,
so read it together with the std column. Every size is a flag, e.g. for a fuller run:

    python bench/bench_strategies_quality.py --n-train 60000 --n-test 10000 --score-epochs 30 --window 10 \\
        --train-epochs 15 --seeds 0 1 2

Writes bench/results/strategies_quality.md.
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hf_prune import Recorder, ScoreRecord, get_strategy  # noqa: E402
from hf_prune.data import FASHION_MNIST_DIR, load_fashion_mnist  # noqa: E402
from hf_prune.features import make_feature_fn, save_features  # noqa: E402


SIGNALS = ["p_target", "loss", "correct", "margin", "logit_margin", "entropy", "el2n"]
MEAN, STD = 0.2860, 0.3530


class SmallCNN(nn.Module):
    """Two strided conv blocks (BN, ReLU) and a linear head on the flattened 7x7 maps: ~21k parameters, ~1,000+
    img/s training on 2 shared CPU cores (a deeper 3-block CNN ran at ~120 img/s under the same load)."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 5, stride=2, padding=2), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.Flatten(),
        )  # fmt: skip
        self.fc = nn.Linear(2 * w * 49, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def read_fashion_mnist(split: str):
    """The IDX files of Debian's `dataset-fashion-mnist` read straight into numpy (faster than building a
    `datasets.Dataset` with `hf_prune.data.load_fashion_mnist`, which the library's recipes use)."""
    prefix = "train" if split == "train" else "t10k"
    root = FASHION_MNIST_DIR
    if not (root / f"{prefix}-images-idx3-ubyte.gz").exists():
        load_fashion_mnist()  # raises the library's explanation of how to install the data
    with gzip.open(root / f"{prefix}-images-idx3-ubyte.gz", "rb") as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "rb") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return x, y


def load_data(n_train: int, n_test: int, subset_seed: int = 12345):
    """Stratified subsets as normalised float tensors `[N, 1, 28, 28]` and int64 labels."""
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = read_fashion_mnist(split)
        if n < len(y):
            rng = np.random.default_rng(subset_seed)
            per = [rng.permutation(np.flatnonzero(y == c))[: n // 10 + (c < n % 10)] for c in range(10)]
            idx = np.sort(np.concatenate(per))
            x, y = x[idx], y[idx]
        xt = (torch.from_numpy(x).float().div_(255.0).sub_(MEAN).div_(STD)).unsqueeze(1)
        out += [xt, torch.from_numpy(y)]
    return out


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random horizontal flip and a random shift of up to 2 pixels (zero padding)."""
    b = x.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = F.pad(x, (2, 2, 2, 2), value=(0 - MEAN) / STD)
    oy = torch.randint(0, 5, (b,), generator=generator)
    ox = torch.randint(0, 5, (b,), generator=generator)
    rows = (oy[:, None] + torch.arange(28))[:, :, None]
    cols = (ox[:, None] + torch.arange(28))[:, None, :]
    return pad[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


def train(
    x,
    y,
    epochs,
    seed,
    batch_size=128,
    lr=0.05,
    ids=None,
    record=None,
    epoch_callback=None,
    model_fn=SmallCNN,
    optimizer="sgd",
):
    """Trains a fresh `model_fn()` (SGD + Nesterov or AdamW, one-cycle LR). With `record`, every step is recorded
    by sample id through hf_prune's `Recorder` and written per epoch to the `ScoreRecord`."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = model_fn()
    if optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * math.ceil(len(y) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    recorder = Recorder(SIGNALS) if record is not None else None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=g)
        for start in range(0, len(y), batch_size):
            idx = perm[start : start + batch_size]
            xb, yb = augment(x[idx], g), y[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if recorder is not None:
                recorder.add(ids[idx], logits, yb)
        if recorder is not None:
            rid, rlab, values = recorder.gather()
            record.write_epoch(epoch, rid, values, rlab)
            recorder.reset()
        if epoch_callback is not None:
            epoch_callback(epoch, model)
    return model


@torch.no_grad()
def accuracy(model, x, y, batch_size=1000):
    """Test accuracy (%) through 🤗 Evaluate (hf_prune ships the metric module, so it loads offline)."""
    from hf_prune.metrics import load_metric

    model.eval()
    predictions = torch.cat([model(x[s : s + batch_size]).argmax(1) for s in range(0, len(y), batch_size)])
    return 100.0 * load_metric("accuracy").compute(predictions=predictions.numpy(), references=np.asarray(y))["accuracy"]


@torch.no_grad()
def features_of(model, x, batch_size=1000):
    model.eval()
    fn = make_feature_fn(model)  # the library's default: the penultimate layer (input of the last Linear)
    return torch.cat([fn({"pixel_values": x[s : s + batch_size]}) for s in range(0, len(x), batch_size)]).numpy()


def score_run(x, y, args, workdir: Path, **train_kwargs):
    """The scoring run(s): the main record, the extra EL2N records, and the two feature folders."""
    n = len(y)
    ids = torch.arange(n)
    record = ScoreRecord.create(workdir / "run" / "scores", n, SIGNALS, capacity_epochs=args.score_epochs)

    def after_epoch(epoch, model):
        if epoch == 0:
            save_features(workdir / "features_epoch0", features_of(model, x), metadata={"layer": "penultimate"})

    model = train(
        x, y, args.score_epochs, seed=1000, ids=ids, record=record, epoch_callback=after_epoch, **train_kwargs
    )
    save_features(workdir / "run" / "features", features_of(model, x), metadata={"layer": "penultimate"})
    record = ScoreRecord.load(workdir / "run" / "scores")
    from hf_prune.strategies.el2n import default_early_epoch

    el2n_epoch = default_early_epoch(args.score_epochs)
    records = [record]
    for r in range(1, args.el2n_runs):
        extra = ScoreRecord.create(workdir / f"el2n_run{r}", n, SIGNALS, capacity_epochs=el2n_epoch + 1)
        train(x, y, el2n_epoch + 1, seed=1000 + r, ids=ids, record=extra, **train_kwargs)
        records.append(ScoreRecord.load(workdir / f"el2n_run{r}"))
    return record, records, el2n_epoch


def methods(args, workdir: Path, el2n_epoch: int):
    """Display name -> (strategy, params, use all EL2N runs)."""
    return {
        "Random": ("random", {}, False),
        "Forgetting": ("forgetting", {}, False),
        "Entropy": ("entropy", {}, False),
        "EL2N": ("el2n", {"epoch": el2n_epoch}, True),
        "GraNd": ("grand", {"epoch": 0, "features": str(workdir / "features_epoch0")}, True),
        "Self-Sup. Proto.": ("ssp", {}, False),
        "Moderate": ("moderate", {}, False),
        "Static Unc. [36]": ("static_uncertainty", {"window": min(5, args.score_epochs)}, False),
        "Cartography (ambig.)": ("cartography", {}, False),
        "AUM": ("aum", {}, False),
        "CCS (AUM)": ("ccs", {"score": "aum"}, False),
        "Dyn-Unc": ("dyn_unc", {"window": args.window}, False),
    }


def markdown(table, no_pruning, ratios, seeds, args, timings):
    cols = [f"{int(round(100 * r))}%" for r in ratios]
    means = {m: [np.mean(table[m][r]) for r in ratios] for m in table}
    ranks = {m: [] for m in table}
    for j in range(len(ratios)):
        order = sorted(table, key=lambda m: -means[m][j])
        for m in table:
            # ties share the best rank
            ranks[m].append(1 + sum(1 for o in order if means[o][j] > means[m][j] + 1e-12))
    lines = [
        "# Pruning quality on Fashion-MNIST (Dyn-Unc Table 2 layout)",
        "",
        f"Test accuracy (%) of a small CNN trained on the kept samples, mean ± std over seeds {list(seeds)}; "
        "ratio = fraction *removed*; rank 1 = best mean at that ratio.",
        "",
        f"Setup: {len(args.y_train):,} training samples (stratified subset of Fashion-MNIST train), "
        f"{len(args.y_test):,} test samples; scoring run {args.score_epochs} epochs (SmallCNN, SGD, recorded by "
        f"hf_prune's Recorder into a ScoreRecord), retraining {args.train_epochs} epochs from scratch per method, "
        f"ratio and seed; Dyn-Unc window J={args.window}; EL2N at epoch {args.el2n_epoch} averaged over "
        f"{args.el2n_runs} runs; GraNd at epoch 0 with penultimate features after epoch 1; Moderate and SSP on the "
        "final scoring model's penultimate features (no self-supervised model is available offline).",
        "",
        "| Method \\ Ratio | " + " | ".join(f"{c} | rank" for c in cols) + " | avg rank |",
        "|---|" + "---|---|" * len(cols) + "---|",
    ]
    for m in sorted(table, key=lambda m: np.mean(ranks[m])):
        cells = [f"{means[m][j]:.2f} ± {np.std(table[m][r]):.2f} | {ranks[m][j]}" for j, r in enumerate(ratios)]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {np.mean(ranks[m]):.2f} |")
    lines.append(f"| No pruning | {np.mean(no_pruning):.2f} ± {np.std(no_pruning):.2f} |" + " |" * (2 * len(cols)))
    lines += [
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        "",
        f"Wall time: scoring {timings['scoring']:.0f} s, retraining {timings['retraining']:.0f} s "
        f"({timings['trainings']} trainings), on {torch.get_num_threads()} CPU threads.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=3000, help="training samples (stratified subset)")
    p.add_argument("--n-test", type=int, default=5000, help="test samples (stratified subset)")
    p.add_argument("--score-epochs", type=int, default=12, help="epochs K of the scoring run")
    p.add_argument("--window", type=int, default=3, help="Dyn-Unc window J")
    p.add_argument("--el2n-runs", type=int, default=2, help="runs EL2N / GraNd average over")
    p.add_argument("--train-epochs", type=int, default=5, help="epochs of each retraining")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.3, 0.4, 0.5], help="fractions removed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="retraining seeds")
    p.add_argument("--methods", nargs="+", default=None, help="subset of method display names")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "strategies_quality.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    x_train, y_train, x_test, y_test = load_data(args.n_train, args.n_test)
    args.y_train, args.y_test = y_train, y_test
    with tempfile.TemporaryDirectory(prefix="hfp_bench_") as tmp:
        workdir = Path(tmp)
        t0 = time.time()
        record, el2n_records, args.el2n_epoch = score_run(x_train, y_train, args, workdir)
        timings = {"scoring": time.time() - t0}
        print(f"scoring run done in {timings['scoring']:.0f} s: {record}", flush=True)

        selections = {}
        for name, (strategy, params, multi) in methods(args, workdir, args.el2n_epoch).items():
            if args.methods and name not in args.methods:
                continue
            for ratio in args.ratios:
                if strategy == "random":
                    continue  # drawn per seed below
                result = get_strategy(strategy, **params).select(el2n_records if multi else record, ratio)
                selections[(name, ratio)] = result.kept_ids
        t0 = time.time()
        table, no_pruning, trainings = {}, [], 0
        for seed in args.seeds:
            no_pruning.append(accuracy(train(x_train, y_train, args.train_epochs, seed), x_test, y_test))
            trainings += 1
            print(f"seed {seed} no pruning: {no_pruning[-1]:.2f}", flush=True)
            for name, (strategy, _, _) in methods(args, workdir, args.el2n_epoch).items():
                if args.methods and name not in args.methods:
                    continue
                for ratio in args.ratios:
                    if strategy == "random":
                        kept = get_strategy("random", seed=seed).select(record, ratio).kept_ids
                    else:
                        kept = selections[(name, ratio)]
                    kept = torch.from_numpy(kept)
                    acc = accuracy(train(x_train[kept], y_train[kept], args.train_epochs, seed), x_test, y_test)
                    trainings += 1
                    table.setdefault(name, {}).setdefault(ratio, []).append(acc)
                    print(f"seed {seed} {name} {ratio:.2f}: {acc:.2f}", flush=True)
        timings.update(retraining=time.time() - t0, trainings=trainings)
    text = markdown(table, no_pruning, args.ratios, args.seeds, args, timings)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
