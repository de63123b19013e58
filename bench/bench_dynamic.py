"""Dynamic pruning on Fashion-MNIST: full training vs the dynamic policies (InfoBatch as published, RS2, SeTa, and
Raju et al.'s), each next to an *equal-compute* baseline: full data for the same number of optimizer steps (fewer
epochs, cosine schedule over those steps), the "train less" that every speed-up must beat. Test accuracy, optimizer
steps, samples trained and CPU / wall time *including* scoring (scoring passes run inside `trainer.train()`).

    nice -n 10 python bench/bench_dynamic.py                                   # defaults below
    python bench/bench_dynamic.py --train_samples 2000 --epochs 2 --ratios 0.5 --policies rs2   # smoke run

Every run is a `PruningTrainer` (full data) or a `DynamicPruningTrainer` (recording on in both, so full and pruned
runs pay the same recording cost) on the same
subset, model (`tiny_cnn`, timm's `test_resnet`), seed and cosine schedule. Images are kept as one normalised tensor
(random horizontal flip for training) so that the data pipeline does not dominate the timings. All runs drop the
last incomplete batch of an epoch (`dataloader_drop_last`): InfoBatch's and SeTa's epoch lengths vary and a last
batch of one sample would break the model's batch norm. Policy specs are `name[:scoring[:variant]]`: Raju et al.'s
policies use `--scoring` by default (a scoring pass every `--pruning_period` epochs, whose time counts); InfoBatch,
RS2 and SeTa use the free training losses; `infobatch::fixed` is the constant-length departure
(`dynamic_policy_kwargs={"fixed_budget": True}`), `NAME::balanced` class-balanced ranking. `--prune_ratio` means the
policy's own ratio: of all samples (RS2, Raju et al.), of the below-mean-loss samples (InfoBatch), of the random stage (SeTa, whose
window then drops more); the table gives the fraction of sample-epochs actually trained. Writes
bench/results/dynamic.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


RESULTS = Path(__file__).resolve().parent / "results"
POLICIES = ["random_dynamic", "uncertainty_ema", "epsilon_greedy", "ucb", "infobatch", "rs2", "seta"]
VARIANTS = ("", "balanced", "fixed")
# "name[:scoring[:variant]]": the scoring source of one entry; class-balanced ranking (EMA-based policies) or
# InfoBatch's fixed-budget departure.
DEFAULT_RUNS = ["infobatch", "rs2", "seta", "random_dynamic", "infobatch::fixed"]
FREE_SCORES = ("infobatch", "rs2", "seta")  # training losses (or none): no scoring pass


class TensorImages(torch.utils.data.Dataset):
    """Fashion-MNIST rows as normalised `[1, 28, 28]` tensors; `train=True` flips half of them horizontally."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, train: bool):
        self.images, self.labels, self.train = images, labels, train

    def __len__(self):
        return self.labels.shape[0]

    def __getitem__(self, idx):
        x = self.images[idx]
        if self.train and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return {"pixel_values": x, "labels": self.labels[idx]}


def collate(features):
    return {
        "pixel_values": torch.stack([f["pixel_values"] for f in features]),
        "labels": torch.stack([f["labels"] for f in features]),
    }


def load(train_samples: int, test_samples: int, seed: int):
    from hf_prune.data import load_fashion_mnist

    data = load_fashion_mnist().with_format("numpy")
    rng = np.random.default_rng(seed)
    train_idx = np.sort(rng.choice(60000, size=train_samples, replace=False))

    def tensors(split, idx):
        images = torch.from_numpy(np.asarray(data[split]["image"])[idx]).float().div(255).sub(0.2860).div(0.3530)
        return images.unsqueeze(1).contiguous(), torch.from_numpy(np.asarray(data[split]["label"])[idx]).long()

    return tensors("train", train_idx), tensors("test", np.arange(test_samples))


@torch.no_grad()
def accuracy(model, images, labels, batch=1000) -> float:
    """Test accuracy through 🤗 Evaluate (hf_prune ships the metric module, so it loads offline)."""
    from hf_prune.metrics import load_metric

    model.eval()
    predictions = torch.cat([model(pixel_values=images[i : i + batch]).logits.argmax(-1) for i in range(0, len(labels), batch)])
    return load_metric("accuracy").compute(predictions=predictions.numpy(), references=labels.numpy())["accuracy"]


def run_one(cfg, train, test, policy: str | None, ratio: float, workdir: str, max_steps: int = -1) -> dict:
    from transformers import set_seed

    from hf_prune import DynamicPruningArguments, DynamicPruningTrainer, PruningArguments, PruningTrainer
    from hf_prune.models import build_timm_classifier

    set_seed(cfg.seed)
    model = build_timm_classifier("tiny_cnn", num_labels=10, in_chans=1)
    dynamic = {}
    policy, _, scoring = (policy or "").partition(":")
    scoring, _, variant = scoring.partition(":")
    policy = policy or None
    if policy is not None:
        scoring = scoring or ("train_loss" if policy in FREE_SCORES else cfg.scoring)
        period = 1 if policy in FREE_SCORES else cfg.pruning_period
        own = {"balanced": {"class_balanced": True}, "fixed": {"fixed_budget": True}}.get(variant, {})
        if policy == "seta":
            own.update(num_groups=cfg.seta_groups, window_scale=cfg.seta_window)
        dynamic = dict(
            dynamic_policy=policy, dynamic_prune_ratio=ratio, dynamic_scoring=scoring, pruning_period=period,
            dynamic_policy_kwargs=own,
        )  # fmt: skip
    name = f"{policy or 'full'}_{scoring}_{variant}_{round(ratio * 100)}_{max_steps}"
    args = (DynamicPruningArguments if dynamic else PruningArguments)(
        output_dir=os.path.join(workdir, name), num_train_epochs=cfg.epochs, max_steps=max_steps,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=1000, learning_rate=cfg.lr,
        weight_decay=0.05, lr_scheduler_type="cosine", warmup_steps=0.05, dataloader_drop_last=True,
        report_to=[], save_strategy="no", logging_strategy="no", remove_unused_columns=False, disable_tqdm=True,
        use_cpu=True, seed=cfg.seed, dataloader_num_workers=0, record_signals=["loss"], **dynamic,
    )  # fmt: skip
    trainer = (DynamicPruningTrainer if dynamic else PruningTrainer)(
        model=model,
        args=args,
        train_dataset=TensorImages(*train, train=True),
        clean_view_dataset=TensorImages(*train, train=False),  # the scoring pass sees un-flipped images
        data_collator=collate,
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    trainer.train()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    acc = accuracy(trainer.model, *test)
    timing = trainer.dynamic_timing if dynamic else []
    record = trainer.score_record
    trained = int(np.isfinite(np.asarray(record.signal("loss"))).sum())
    label = (policy or "full") + {"balanced": " (class-balanced)", "fixed": " (fixed budget)"}.get(variant, "")
    if policy is None and max_steps > 0:
        label = "full data, equal steps"
    out = {
        "policy": label,
        "prune_ratio": ratio,
        "scoring": "none" if policy in ("random_dynamic", "rs2") else dynamic.get("dynamic_scoring", "-"),
        "accuracy": acc,
        "wall_s": wall,
        "cpu_s": cpu,
        "scoring_s": float(sum(t["scoring_s"] for t in timing)),
        "steps": trainer.state.global_step,
        "samples_trained": trained,
        "epochs_run": record.num_epochs,
        "samples_per_epoch": [int(t["num_selected"]) for t in timing],
    }
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def render(cfg, rows) -> str:
    full = next(r for r in rows if r["policy"] == "full")
    n_full = full["samples_trained"]
    lines = [
        f"Dynamic pruning on Fashion-MNIST (`python bench/bench_dynamic.py {' '.join(cfg.argv)}`).",
        "",
        f"{cfg.train_samples:,} training images (random subset, seed {cfg.seed}), {cfg.test_samples:,} test images, "
        f"`tiny_cnn` (timm `test_resnet`), {cfg.epochs} epochs, batch {cfg.batch_size} (last incomplete batch "
        f"dropped), AdamW lr {cfg.lr}, cosine. Raju et al.'s policies: scoring `{cfg.scoring}`, T_p = "
        f"{cfg.pruning_period}; InfoBatch, RS2, SeTa: training losses, delta = 0.875, one selection per epoch; SeTa "
        f"G = {cfg.seta_groups}, window {cfg.seta_window}. Each pruned run is followed by its *equal-compute "
        "baseline*: full data for the same number of optimizer steps (cosine over those steps). One seed; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work, so times carry "
        "noise: read the CPU-seconds and steps columns. Time is `trainer.train()`, scoring passes included.",
        "",
        "| method | ratio | trained (of full) | steps (× full) | test acc. | Δ vs full | Δ vs equal steps "
        "| CPU s (× full) | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    baselines = {r["steps"]: r for r in rows if r["policy"] == "full data, equal steps"}
    for r in rows:
        if r["policy"] == "full data, equal steps":
            continue
        base = baselines.get(r["steps"])
        vs_base = f"{(r['accuracy'] - base['accuracy']) * 100:+.2f} ({base['accuracy'] * 100:.2f} %)" if base else "-"
        lines.append(
            f"| {r['policy']} | {r['prune_ratio']:.0%} | {r['samples_trained'] / n_full:.2f} "
            f"| {r['steps']} ({r['steps'] / full['steps']:.2f}) | {r['accuracy'] * 100:.2f} % "
            f"| {(r['accuracy'] - full['accuracy']) * 100:+.2f} | {vs_base} "
            f"| {r['cpu_s']:.1f} ({r['cpu_s'] / full['cpu_s']:.2f}) | {r['wall_s']:.1f} |"
        )
    lines += ["", "Equal-compute baselines (full data, `max_steps` = the pruned run's steps):", ""]
    lines += ["| steps | epochs run | test acc. | CPU s |", "|---|---|---|---|"]
    for steps, b in sorted(baselines.items()):
        lines.append(f"| {steps} | {b['epochs_run']} | {b['accuracy'] * 100:.2f} % | {b['cpu_s']:.1f} |")
    info = [r for r in rows if r["policy"] == "infobatch"]
    if info:
        lines += ["", "InfoBatch's headline (Qin et al.: lossless at about 40 % less cost):", ""]
        for r in info:
            delta = (r["accuracy"] - full["accuracy"]) * 100
            base = baselines.get(r["steps"])
            beats = base is not None and r["accuracy"] > base["accuracy"]
            lines.append(
                f"- r = {r['prune_ratio']:.0%}: {1 - r['samples_trained'] / n_full:.0%} of the sample-epochs saved, "
                f"{1 - r['steps'] / full['steps']:.0%} of the steps; {delta:+.2f} points vs full "
                f"({'lossless' if delta >= -0.5 else 'not lossless'} at a 0.5-point tolerance); "
                f"{'beats' if beats else 'does not beat'} full data at equal steps."
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_samples", type=int, default=10000)
    parser.add_argument("--test_samples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument(
        "--policies", nargs="+", default=DEFAULT_RUNS, help=f"from {POLICIES}, optionally as name:pass|train_loss"
    )
    parser.add_argument("--scoring", default="pass", choices=["pass", "train_loss"])
    parser.add_argument("--pruning_period", type=int, default=2)
    parser.add_argument("--seta_groups", type=int, default=5)
    parser.add_argument("--seta_window", type=float, default=0.9)
    parser.add_argument("--no_equal_compute", action="store_true", help="skip the equal-steps full-data baselines")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(RESULTS / "dynamic.md"))
    cfg = parser.parse_args(argv)
    cfg.argv = sys.argv[1:] if argv is None else list(argv)
    for spec in cfg.policies:
        name, scoring, variant = (spec.split(":") + ["", ""])[:3]
        if name not in POLICIES or scoring not in ("", "pass", "train_loss") or variant not in VARIANTS:
            parser.error(f"unknown policy spec {spec!r}; use one of {POLICIES}[:pass|train_loss[:balanced|fixed]]")
    torch.set_num_threads(cfg.threads)
    train, test = load(cfg.train_samples, cfg.test_samples, cfg.seed)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        rows.append(run_one(cfg, train, test, None, 0.0, workdir))
        done = {}
        for policy in cfg.policies:
            for ratio in cfg.ratios:
                rows.append(run_one(cfg, train, test, policy, ratio, workdir))
                steps = rows[-1]["steps"]
                if not cfg.no_equal_compute and steps not in done and steps < rows[0]["steps"]:
                    done[steps] = run_one(cfg, train, test, None, 0.0, workdir, max_steps=steps)
                    rows.append(done[steps])
    text = render(cfg, rows)
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps({"config": {k: v for k, v in vars(cfg).items()}, "runs": rows}, indent=2)
    )
    print(text)


if __name__ == "__main__":
    main()
