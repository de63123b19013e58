"""Reproduce the papers' claims on the full Fashion-MNIST through hf_prune's public API: static pruning in the layout
of the Dyn-Unc paper's Table 2, dynamic pruning against full data and against full data for the same number of
optimizer steps, and scores from one architecture used to train another (the paper's Table 4 idea).

    python bench/reproduce.py all --preset cpu        # everything, resumable; then renders the report
    python bench/reproduce.py static --preset cpu     # one part (static | dynamic | cross-arch)
    python bench/reproduce.py report --preset cpu     # tables + figures from what has run so far
    python bench/reproduce.py all --preset smoke       # a tiny end-to-end run (the test suite runs it)

Protocol (every method, ratio and seed under the same schedule; `prune_ratio` is always the fraction *removed*):

1. **Scoring run**: `PruningTrainer` trains the preset's model for K epochs on the 60,000 training images (random
   crop and flip), recording `p_target, loss, correct, margin, logit_margin, entropy, el2n` per sample and epoch;
   `extract_features` then writes the final model's penultimate features (for `moderate`, `ssp`).
2. **Static**: every registered strategy (`hf_prune.list_strategies()`) selects at each ratio from that record;
   a fresh model is trained from scratch on the kept rows with each seed under two budgets: `epochs` (the papers':
   the same number of epochs, so fewer optimizer steps) and `steps` (the same number of steps as full data). Test
   accuracy on the 10,000 test images; full data is the reference. `random` draws a new subset per seed.
3. **Dynamic**: every registered policy (`hf_prune.list_policies()`) at each ratio and seed, in a plain training
   loop driven by `DynamicPruningSampler` (the sampler of `PruningTrainer`, used as in an Accelerate loop: per-sample
   losses fed back with `update`, InfoBatch's loss weights with `loss_weights`), timed end to end including any
   scoring. Baselines: full data for the same epochs, and full data for the same number of optimizer steps as the
   policy took (the equal-compute baseline every speed-up must beat).
4. **Cross-architecture**: the CNN's scores select the rows a different model (an MLP) is trained on.

Every training run appends one JSON line to `bench/results/reproduce/<preset>/results.jsonl`; a run already there
is skipped, so a long run can span several sittings (`--force` re-runs). `report` renders `REPORT.md`, the figures
(accuracy vs fraction removed with std bands, accuracy vs wall time, the scoring run's data map) and the goals
(met / missed, with numbers) into the same folder. Presets: `cpu` (the 2-core machines: a small CNN, fewer epochs
than the papers), `gpu` (a ResNet-18 adapted to 28x28 grey images, bf16, longer), `smoke` (seconds).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hf_prune import (  # noqa: E402
    DynamicPruningSampler,
    PruningArguments,
    PruningTrainer,
    ScoreRecord,
    get_policy,
    get_strategy,
    list_policies,
    list_strategies,
)
from hf_prune.data import FASHION_MNIST_DIR, load_fashion_mnist  # noqa: E402


# tab20 without its two reds (crimson is Dyn-Unc's) and its greys (black is random's)
PALETTE = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5", "#8c564b",
           "#c49c94", "#e377c2", "#f7b6d2", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"]  # fmt: skip
SIGNALS = ["p_target", "loss", "correct", "margin", "logit_margin", "entropy", "el2n"]
MEAN, STD = 0.2860, 0.3530
RESULTS = ROOT / "bench" / "results" / "reproduce"
RUNS = ROOT / "runs" / "reproduce"


@dataclass
class Preset:
    """Sizes and schedules of one configuration of the harness."""

    name: str
    model: str = "small_cnn"
    cross_model: str = "mlp"
    train_samples: int | None = None  # None: all 60,000
    test_samples: int | None = None  # None: all 10,000
    score_epochs: int = 30  # K
    window: int = 10  # J
    train_epochs: int = 15  # retraining / dynamic runs
    batch_size: int = 256
    lr: float = 0.1
    weight_decay: float = 5e-4
    ratios: tuple[float, ...] = (0.25, 0.5, 0.7)
    dynamic_ratios: tuple[float, ...] = (0.3, 0.5, 0.7)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps_seeds: tuple[int, ...] | None = None  # seeds that also run the equal-steps budget; None: every seed
    dynamic_seeds: tuple[int, ...] | None = None  # seeds of the dynamic part; None: every seed
    bf16: bool = False
    methods: tuple[str, ...] | None = None  # None: every registered strategy
    policies: tuple[str, ...] | None = None  # None: every registered policy
    cross_methods: tuple[str, ...] = ("dyn_unc", "random", "forgetting", "el2n", "entropy")
    notes: str = ""


PRESETS = {
    "cpu": Preset(
        name="cpu",
        steps_seeds=(0,),
        notes="CPU path: a 21k-parameter CNN on 2 CPU cores, 15-epoch retraining (the papers train for hundreds); "
        "three seeds, one of them also under the equal-steps budget.",
    ),
    "gpu": Preset(
        name="gpu", model="resnet18", score_epochs=60, window=10, train_epochs=60, batch_size=256, lr=0.1, bf16=True,
        notes="GPU path: ResNet-18 adapted to 28x28 grey images (3x3 stem, no max-pool), bf16.",
    ),  # fmt: skip
    "smoke": Preset(
        name="smoke", train_samples=600, test_samples=300, score_epochs=4, window=2, train_epochs=2, batch_size=64,
        ratios=(0.5,), dynamic_ratios=(0.5,), seeds=(0,), methods=("dyn_unc", "random"),
        policies=("random_dynamic", "infobatch"), cross_methods=("dyn_unc",), notes="Smoke test: seconds.",
    ),  # fmt: skip
}


# ---------------------------------------------------------------------------------------------------- data, models


def read_split(split: str, n: int | None, seed: int = 12345):
    """Fashion-MNIST from Debian's IDX files as normalised float tensors `[N, 1, 28, 28]` and int64 labels; a
    stratified subset of `n` rows when asked (smoke runs)."""
    prefix = "train" if split == "train" else "t10k"
    if not (FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz").exists():
        load_fashion_mnist()  # raises the library's explanation of how to install the data
    with gzip.open(FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz", "rb") as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz", "rb") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    if n is not None and n < len(y):
        rng = np.random.default_rng(seed)
        idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[: n // 10 + (c < n % 10)] for c in range(10)]))
        x, y = x[idx], y[idx]
    x = torch.from_numpy(np.array(x)).float().div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)
    return x, torch.from_numpy(np.array(y))


class SmallCNN(nn.Module):
    """Two strided conv blocks (BN, ReLU) and a linear head: ~21k parameters, fast on 2 CPU cores."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 5, stride=2, padding=2), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(2 * w * 49, 10)

    def forward(self, x):
        return self.head(self.body(x))


class MLP(nn.Module):
    """784-256-10 with ReLU: another architecture for the cross-architecture part."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU())
        self.head = nn.Linear(256, 10)

    def forward(self, x):
        return self.head(self.body(x))


def resnet18():
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=1)
    model.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


MODELS = {"small_cnn": SmallCNN, "mlp": MLP, "resnet18": resnet18}


class Classifier(nn.Module):
    """A plain torch classifier behind the interface `Trainer` expects: `forward(pixel_values, labels)` returns a
    dict with `loss` and `logits`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, pixel_values, labels=None):
        logits = self.net(pixel_values)
        return {"loss": F.cross_entropy(logits, labels) if labels is not None else None, "logits": logits}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random horizontal flip and a random shift of up to 2 pixels, vectorised over the batch."""
    b = x.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = F.pad(x, (2, 2, 2, 2), value=-MEAN / STD)
    oy, ox = torch.randint(0, 5, (b,), generator=generator), torch.randint(0, 5, (b,), generator=generator)
    rows = (oy[:, None] + torch.arange(28))[:, :, None]
    cols = (ox[:, None] + torch.arange(28))[:, None, :]
    return pad[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


class Images(torch.utils.data.Dataset):
    """In-memory images for `PruningTrainer`, augmented per item when `train` (the same flip and shift)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, train: bool, seed: int = 0):
        self.x, self.y, self.train = x, y, train
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i : i + 1]
        if self.train:
            x = augment(x, self.generator)
        return {"pixel_values": x[0], "labels": self.y[i]}


# ---------------------------------------------------------------------------------------------------- training


def lr_at(progress: float, peak: float) -> float:
    """The one schedule every run uses, as a function of training progress in [0, 1]: linear warm-up over the
    first 15 %, then cosine to zero. Static runs measure progress in steps, dynamic ones in epochs (their epoch
    length may vary: InfoBatch), which agree for constant-length epochs."""
    if progress < 0.15:
        return peak * progress / 0.15
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - 0.15) / 0.85)))


def new_model(name: str, seed: int, device) -> nn.Module:
    torch.manual_seed(seed)
    return MODELS[name]().to(device=device, memory_format=torch.channels_last)


def as_input(x: torch.Tensor, device) -> torch.Tensor:
    """A batch on the device in channels-last layout (oneDNN's and cuDNN's faster convolution layout)."""
    return x.to(device).contiguous(memory_format=torch.channels_last)


def make_optimizer(model, preset: Preset):
    return torch.optim.SGD(model.parameters(), lr=preset.lr, momentum=0.9, nesterov=True,
                           weight_decay=preset.weight_decay)  # fmt: skip


@torch.no_grad()
def evaluate(model, x, y, device, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for s in range(0, len(y), batch_size):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=_bf16(device)):
            correct += int((model(as_input(x[s : s + batch_size], device)).argmax(1).cpu() == y[s : s + batch_size]).sum())
    return 100.0 * correct / len(y)


_BF16 = {"enabled": False}


def _bf16(device) -> bool:
    return _BF16["enabled"] and device.type == "cuda"


def train_static(preset, model_name, x, y, kept, steps, seed, device) -> tuple[nn.Module, dict]:
    """Trains a fresh model on rows `kept` for `steps` optimizer steps (whole shuffled passes, the last one cut)."""
    model = new_model(model_name, seed, device)
    opt = make_optimizer(model, preset)
    g = torch.Generator().manual_seed(seed)
    kept = torch.as_tensor(kept)
    start, step = time.perf_counter(), 0
    model.train()
    while step < steps:
        perm = kept[torch.randperm(kept.numel(), generator=g)]
        for s in range(0, perm.numel(), preset.batch_size):
            if step >= steps:
                break
            idx = perm[s : s + preset.batch_size]
            if idx.numel() < 2:  # a batch of one breaks BatchNorm
                continue
            for group in opt.param_groups:
                group["lr"] = lr_at(step / steps, preset.lr)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=_bf16(device)):
                loss = F.cross_entropy(model(as_input(augment(x[idx], g), device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return model, {"train_s": time.perf_counter() - start, "steps": step}


def train_dynamic(preset, policy_name, ratio, x, y, seed, device) -> tuple[nn.Module, dict]:
    """A plain training loop driven by `DynamicPruningSampler`, as in an Accelerate loop of your own."""
    params = {"prune_ratio": ratio}
    from hf_prune.dynamic import POLICIES

    if "num_epochs" in POLICIES.parameters(policy_name):
        params["num_epochs"] = preset.train_epochs
    sampler = DynamicPruningSampler(get_policy(policy_name, **params), num_samples=len(y), seed=seed)
    model = new_model(preset.model, seed, device)
    opt = make_optimizer(model, preset)
    g = torch.Generator().manual_seed(seed)
    start, step, seen = time.perf_counter(), 0, 0
    for epoch in range(preset.train_epochs):
        sampler.set_epoch(epoch)
        order = torch.from_numpy(np.asarray(sampler.indices(), dtype=np.int64))
        batches = [order[s : s + preset.batch_size] for s in range(0, order.numel(), preset.batch_size)]
        batches = [b for b in batches if b.numel() > 1]
        ids, losses = [], []
        model.train()
        for b, idx in enumerate(batches):
            for group in opt.param_groups:
                group["lr"] = lr_at((epoch + b / len(batches)) / preset.train_epochs, preset.lr)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=_bf16(device)):
                per_sample = F.cross_entropy(
                    model(as_input(augment(x[idx], g), device)), y[idx].to(device), reduction="none"
                )
            weights = sampler.loss_weights(idx).to(per_sample.device, per_sample.dtype)
            loss = (weights * per_sample).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ids.append(idx)
            losses.append(per_sample.detach().float().cpu())
            step += 1
            seen += idx.numel()
        if ids:
            all_ids = torch.cat(ids)
            sampler.update(all_ids, torch.cat(losses), y[all_ids])
    return model, {"train_s": time.perf_counter() - start, "steps": step, "samples_trained": seen}


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


# ---------------------------------------------------------------------------------------------------- the scoring run


def scoring_run(preset, x, y, device) -> ScoreRecord:
    """K epochs of `PruningTrainer` on all training rows (a record per preset, reused when complete), then the
    penultimate features of the final model."""
    from hf_prune.features import extract_features

    out = RUNS / preset.name / "scoring"
    scores = out / "scores"
    if (scores / "record.json").exists() and ScoreRecord.load(scores).num_epochs == preset.score_epochs:
        if (out / "features" / "features.npy").exists():
            return ScoreRecord.load(scores)
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(1000)
    model = Classifier(MODELS[preset.model]())
    steps = preset.score_epochs * steps_per_epoch(len(y), preset.batch_size)
    optimizer = make_optimizer(model, preset)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s / steps, 1.0))
    fields = PruningArguments.__dataclass_fields__
    args = PruningArguments(
        output_dir=str(out), num_train_epochs=preset.score_epochs, per_device_train_batch_size=preset.batch_size,
        per_device_eval_batch_size=1000, record_signals=SIGNALS, save_strategy="no", report_to=[],
        remove_unused_columns=False, disable_tqdm=True, logging_strategy="no", seed=1000, dataloader_num_workers=0,
        use_cpu=device.type == "cpu", bf16=_bf16(device),
        **({"dyn_unc_window": preset.window} if "dyn_unc_window" in fields else {}),
    )  # fmt: skip
    trainer = PruningTrainer(model=model, args=args, train_dataset=Images(x, y, train=True, seed=1000),
                             optimizers=(optimizer, scheduler))  # fmt: skip
    start = time.perf_counter()
    trainer.train()
    extract_features(trainer, dataset=Images(x, y, train=False))
    (out / "timing.json").write_text(json.dumps({"scoring_run_s": time.perf_counter() - start}))
    return ScoreRecord.load(scores)


# ---------------------------------------------------------------------------------------------------- bookkeeping


class Results:
    """The JSON-lines file of one preset: one line per training run, keyed so that finished runs are skipped."""

    def __init__(self, preset: Preset):
        self.path = RESULTS / preset.name / "results.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = [json.loads(line) for line in self.path.read_text().splitlines()] if self.path.exists() else []

    @staticmethod
    def key(row: dict) -> tuple:
        return tuple(row.get(k) for k in ("part", "method", "ratio", "seed", "budget", "model", "target_steps"))

    def done(self, **key) -> bool:
        return any(self.key(r) == self.key(key) for r in self.rows)

    def add(self, row: dict) -> None:
        self.rows = [r for r in self.rows if self.key(r) != self.key(row)] + [row]
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    def select(self, **where) -> list[dict]:
        return [r for r in self.rows if all(r.get(k) == v for k, v in where.items())]


def strategy_params(name: str, preset: Preset, seed: int) -> dict:
    """Each strategy's parameters in this harness: the papers' defaults sized to the record (Dyn-Unc's window J,
    DUAL's T early epochs), and the run's seed for every strategy that draws at random (random, CCS, DUAL, SSP's
    k-means), so that the seed-to-seed spread includes the selection's own randomness."""
    from hf_prune.strategies import strategy_info

    params = {
        "dyn_unc": {"window": preset.window},
        "static_uncertainty": {"window": min(5, preset.score_epochs - 1)},
        "dual": {"window": min(10, preset.window), "epochs": min(30, preset.score_epochs)},
    }.get(name, {})
    if "seed" in strategy_info(name)["parameters"]:
        params["seed"] = seed
    return params


def kept_ids(record, name, ratio, seed, preset) -> np.ndarray:
    return get_strategy(name, **strategy_params(name, preset, seed)).select(record, ratio).kept_ids


# ---------------------------------------------------------------------------------------------------- the parts


def run_static(preset, data, device, results, force=False) -> None:
    x, y, xt, yt = data
    record = scoring_run(preset, x, y, device)
    full_steps = preset.train_epochs * steps_per_epoch(len(y), preset.batch_size)
    methods = preset.methods or tuple(sorted(list_strategies()))
    for seed in preset.seeds:
        key = dict(part="static", method="full", ratio=0.0, seed=seed, budget="epochs", model=preset.model)
        if force or not results.done(**key):
            model, info = train_static(preset, preset.model, x, y, np.arange(len(y)), full_steps, seed, device)
            results.add({**key, **info, "acc": evaluate(model, xt, yt, device), "kept": len(y)})
        for name in methods:
            for ratio in preset.ratios:
                kept = None
                budgets = ("epochs", "steps") if preset.steps_seeds is None or seed in preset.steps_seeds else ("epochs",)
                for budget in budgets:
                    key = dict(part="static", method=name, ratio=ratio, seed=seed, budget=budget, model=preset.model)
                    if not force and results.done(**key):
                        continue
                    if kept is None:
                        kept = kept_ids(record, name, ratio, seed, preset)
                    steps = full_steps if budget == "steps" else preset.train_epochs * steps_per_epoch(
                        kept.size, preset.batch_size
                    )  # fmt: skip
                    model, info = train_static(preset, preset.model, x, y, kept, steps, seed, device)
                    results.add({**key, **info, "acc": evaluate(model, xt, yt, device), "kept": int(kept.size)})


def run_dynamic(preset, data, device, results, force=False) -> None:
    x, y, xt, yt = data
    policies = preset.policies or tuple(sorted(list_policies()))
    per_epoch = steps_per_epoch(len(y), preset.batch_size)
    for seed in preset.dynamic_seeds or preset.seeds:
        key = dict(part="dynamic", method="full", ratio=0.0, seed=seed, budget="epochs", model=preset.model)
        if force or not results.done(**key):
            start = time.perf_counter()
            model, info = train_static(preset, preset.model, x, y, np.arange(len(y)), preset.train_epochs * per_epoch,
                                       seed, device)  # fmt: skip
            info["wall_s"] = time.perf_counter() - start
            info["samples_trained"] = preset.train_epochs * len(y)
            results.add({**key, **info, "acc": evaluate(model, xt, yt, device)})
        for name in policies:
            for ratio in preset.dynamic_ratios:
                key = dict(part="dynamic", method=name, ratio=ratio, seed=seed, budget="epochs", model=preset.model)
                if force or not results.done(**key):
                    start = time.perf_counter()
                    model, info = train_dynamic(preset, name, ratio, x, y, seed, device)
                    info["wall_s"] = time.perf_counter() - start
                    results.add({**key, **info, "acc": evaluate(model, xt, yt, device)})
                steps = results.select(**key)[-1]["steps"]
                # the equal-compute baseline: full data for the same number of optimizer steps (fewer epochs)
                base = dict(part="dynamic", method="full_same_steps", ratio=0.0, seed=seed, budget="steps",
                            model=preset.model, target_steps=steps)  # fmt: skip
                if force or not results.done(**base):
                    start = time.perf_counter()
                    model, info = train_static(preset, preset.model, x, y, np.arange(len(y)), steps, seed, device)
                    info["wall_s"] = time.perf_counter() - start
                    results.add({**base, **info, "acc": evaluate(model, xt, yt, device)})


def run_cross(preset, data, device, results, force=False) -> None:
    x, y, xt, yt = data
    record = scoring_run(preset, x, y, device)
    per_epoch_steps = preset.train_epochs * steps_per_epoch(len(y), preset.batch_size)
    for seed in preset.seeds:
        key = dict(part="cross", method="full", ratio=0.0, seed=seed, budget="epochs", model=preset.cross_model)
        if force or not results.done(**key):
            model, info = train_static(preset, preset.cross_model, x, y, np.arange(len(y)), per_epoch_steps, seed,
                                       device)  # fmt: skip
            results.add({**key, **info, "acc": evaluate(model, xt, yt, device), "kept": len(y)})
        for name in preset.cross_methods:
            for ratio in preset.ratios:
                key = dict(part="cross", method=name, ratio=ratio, seed=seed, budget="epochs", model=preset.cross_model)
                if not force and results.done(**key):
                    continue
                kept = kept_ids(record, name, ratio, seed, preset)
                steps = preset.train_epochs * steps_per_epoch(kept.size, preset.batch_size)
                model, info = train_static(preset, preset.cross_model, x, y, kept, steps, seed, device)
                results.add({**key, **info, "acc": evaluate(model, xt, yt, device), "kept": int(kept.size)})


# ---------------------------------------------------------------------------------------------------- the report


def stats(values) -> tuple[float, float, int]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0, int(values.size)


def fmt(values) -> str:
    mean, std, n = stats(values)
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"


def static_table(results, preset, budget, part="static", model=None) -> tuple[list[str], dict]:
    model = model or preset.model
    rows = results.select(part=part, budget=budget, model=model)
    full = [r["acc"] for r in results.select(part=part, method="full", model=model)]
    methods = sorted({r["method"] for r in rows} - {"full"})
    ratios = sorted({r["ratio"] for r in rows if r["method"] != "full"})
    acc = {m: {q: [r["acc"] for r in rows if r["method"] == m and r["ratio"] == q] for q in ratios} for m in methods}
    means = {m: {q: stats(acc[m][q])[0] if acc[m][q] else float("nan") for q in ratios} for m in methods}
    rank = {m: {q: 1 + sum(means[o][q] > means[m][q] + 1e-9 for o in methods) for q in ratios} for m in methods}
    order = sorted(methods, key=lambda m: np.mean([rank[m][q] for q in ratios]))
    lines = [
        "| method \\ removed | " + " | ".join(f"{100 * q:g} % | rank" for q in ratios) + " | avg rank |",
        "|---|" + "---:|---:|" * len(ratios) + "---:|",
    ]
    for m in order:
        cells = [f"{fmt(acc[m][q]) if acc[m][q] else '—'} | {rank[m][q]}" for q in ratios]
        lines.append(f"| `{m}` | " + " | ".join(cells) + f" | {np.mean([rank[m][q] for q in ratios]):.2f} |")
    if full:
        lines.append(f"| full data (0 % removed) | {fmt(full)} |" + " |" * (2 * len(ratios)))
    return lines, {"acc": acc, "rank": rank, "full": full, "ratios": ratios, "methods": methods}


def dynamic_table(results, preset) -> tuple[list[str], dict]:
    """Dynamic runs against full data. Wall time is compared with the full-data time *estimated from the equal-steps
    baseline run right after each policy run* (its seconds per step x the full run's steps): on a shared machine the
    load drifts over a long run, and the adjacent run saw the same load. The measured full-data runs are shown too."""
    full = results.select(part="dynamic", method="full", model=preset.model)
    full_acc, full_wall = [r["acc"] for r in full], [r["wall_s"] for r in full]
    wall_ref = stats(full_wall)[0] if full_wall else float("nan")
    full_steps = preset.train_epochs * steps_per_epoch(_n_train(preset), preset.batch_size)
    rows = [r for r in results.select(part="dynamic", model=preset.model, budget="epochs") if r["method"] != "full"]
    methods, ratios = sorted({r["method"] for r in rows}), sorted({r["ratio"] for r in rows})
    lines = [
        "| policy | removed | test acc. (%) | Δ vs full | wall time / full | samples trained / full | "
        "full data, same steps (%) | beats same-steps |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    summary = {}
    for m in methods:
        for q in ratios:
            runs = [r for r in rows if r["method"] == m and r["ratio"] == q]
            if not runs:
                continue
            same, walls = [], []
            for r in runs:
                bases = results.select(part="dynamic", method="full_same_steps", model=preset.model, seed=r["seed"],
                                       target_steps=r["steps"])  # fmt: skip
                same += [b["acc"] for b in bases]
                if bases and bases[-1]["steps"]:
                    walls.append(r["wall_s"] / (bases[-1]["wall_s"] / bases[-1]["steps"] * full_steps))
                else:
                    walls.append(r["wall_s"] / wall_ref)
            acc = [r["acc"] for r in runs]
            wall = stats(walls)[0]
            samples = stats([r.get("samples_trained", 0) for r in runs])[0] / (preset.train_epochs * _n_train(preset))
            delta = stats(acc)[0] - stats(full_acc)[0]
            beats = same and stats(acc)[0] > stats(same)[0]
            summary[(m, q)] = {"acc": acc, "delta": delta, "wall": wall, "same_steps": same, "beats": bool(beats)}
            lines.append(
                f"| `{m}` | {100 * q:g} % | {fmt(acc)} | {delta:+.2f} | {wall:.2f} | {samples:.2f} | "
                f"{fmt(same) if same else '—'} | {'yes' if beats else 'no'} |"
            )
    lines.append(f"| full data | 0 % | {fmt(full_acc)} | — | 1.00 (measured: {fmt(full_wall)} s) | 1.00 | — | — |")
    return lines, {"summary": summary, "full_acc": full_acc, "wall_ref": wall_ref}


def _n_train(preset) -> int:
    return preset.train_samples or 60_000


def goals(static, dynamic) -> list[str]:
    """Each goal of the evidence issue as met / missed with its numbers; undecided with fewer than 2 seeds."""
    out = []
    seeds = [len(v) for per_ratio in static["acc"].values() for v in per_ratio.values()]
    if static["full"] and (len(static["full"]) < 2 or min(seeds, default=0) < 2):
        return ["- Undecided: the goals compare against the seed-to-seed spread, which needs at least 2 seeds."]
    acc, rank, full = static["acc"], static["rank"], static["full"]
    if "dyn_unc" in acc and full:
        f_mean, f_std, _ = stats(full)
        if 0.25 in acc["dyn_unc"] and acc["dyn_unc"][0.25]:
            d_mean = stats(acc["dyn_unc"][0.25])[0]
            met = d_mean >= f_mean - f_std
            out.append(f"- Dyn-Unc lossless at 25 % removed (mean within one std of full data): "
                       f"**{'met' if met else 'missed'}** — {d_mean:.2f} vs {f_mean:.2f} ± {f_std:.2f}.")  # fmt: skip
        for q in (0.5, 0.7):
            if q in rank.get("dyn_unc", {}):
                r = rank["dyn_unc"][q]
                out.append(f"- Dyn-Unc in the top three at {100 * q:g} % removed: **{'met' if r <= 3 else 'missed'}** "
                           f"— rank {r} of {len(rank)}.")  # fmt: skip
        if 0.5 in acc.get("dyn_unc", {}) and acc.get("random", {}).get(0.5):
            d_mean, d_std, _ = stats(acc["dyn_unc"][0.5])
            r_mean, r_std, _ = stats(acc["random"][0.5])
            spread = math.sqrt(d_std**2 + r_std**2)
            met = d_mean - r_mean > 2 * spread
            out.append(f"- Dyn-Unc above random by more than 2 std at 50 %: **{'met' if met else 'missed'}** — "
                       f"{d_mean:.2f} vs {r_mean:.2f}, difference {d_mean - r_mean:+.2f}, 2 std of the difference "
                       f"{2 * spread:.2f}.")  # fmt: skip
    if dynamic["summary"]:
        winners = [(m, q, v) for (m, q), v in dynamic["summary"].items() if v["wall"] <= 0.7 and v["delta"] >= -0.3]
        beating = [(m, q, v) for m, q, v in winners if v["beats"]]
        text = ", ".join(f"`{m}` at {100 * q:g} % ({v['delta']:+.2f} points, {v['wall']:.2f}x time)"
                         for m, q, v in beating or winners) or "none"  # fmt: skip
        out.append(f"- A dynamic policy saves >= 30 % of full-data wall time at <= 0.3 points lost and beats the "
                   f"equal-compute baseline: **{'met' if beating else 'missed'}** — {text}.")  # fmt: skip
    return out


def figures(results, preset, static, dynamic, out: Path) -> list[str]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    made = []
    fig = Figure(figsize=(11, 4.2), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, budget in zip(axes, ("epochs", "steps")):
        _, table = static_table(results, preset, budget)
        f_mean, f_std, _ = stats(table["full"]) if table["full"] else (float("nan"), 0.0, 0)
        ax.axhline(f_mean, color="black", lw=1, ls="--", label="full data")
        ax.axhspan(f_mean - f_std, f_mean + f_std, color="black", alpha=0.08)
        others = [m for m in sorted(table["methods"]) if m not in ("dyn_unc", "random")]
        for m in table["methods"]:
            qs = [q for q in table["ratios"] if table["acc"][m][q]]
            means = np.array([stats(table["acc"][m][q])[0] for q in qs])
            stds = np.array([stats(table["acc"][m][q])[1] for q in qs])
            if m in others:  # one colour each (tab20 without its reds), solid and dashed alternating
                i = others.index(m)
                style = dict(lw=1, alpha=0.85, color=PALETTE[i % len(PALETTE)], ls="-" if i % 2 == 0 else "--")
            else:
                style = dict(lw=2.4, color="crimson", zorder=5) if m == "dyn_unc" else dict(lw=1.8, color="black", ls=":")
            ax.plot(np.array(qs) * 100, means, marker="o", ms=3, label=m, **style)
            ax.fill_between(np.array(qs) * 100, means - stds, means + stds, alpha=0.12, color=style.get("color"))
        ax.set_title(f"retraining budget: same {budget}" + (" (papers')" if budget == "epochs" else " as full data"))
        ax.set_xlabel("fraction of the training set removed (%)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].legend(fontsize=7, ncol=2, loc="lower left")
    fig.suptitle(f"Static pruning on Fashion-MNIST ({preset.model}, mean ± std over the seeds that ran)")
    fig.savefig(out / "static_accuracy.png")
    made.append("static_accuracy.png")

    if dynamic["summary"]:
        fig = Figure(figsize=(7, 4.6), dpi=110, layout="constrained")
        ax = fig.add_subplot()
        f_mean = stats(dynamic["full_acc"])[0]
        ax.scatter([1.0], [f_mean], color="black", marker="*", s=120, label="full data", zorder=5)
        policies = sorted({m for m, _ in dynamic["summary"]})
        ratios = sorted({q for _, q in dynamic["summary"]})
        markers = ["o", "s", "^", "D", "v"]
        for (m, q), v in sorted(dynamic["summary"].items()):  # colour: the policy; marker: the fraction removed
            mean, std, _ = stats(v["acc"])
            ax.errorbar(v["wall"], mean, yerr=std, fmt=markers[ratios.index(q) % len(markers)], ms=5, capsize=2,
                        color=PALETTE[2 * policies.index(m) % len(PALETTE)])  # fmt: skip
        for m in policies:
            ax.plot([], [], "o", color=PALETTE[2 * policies.index(m) % len(PALETTE)], label=m)
        for q in ratios:
            ax.plot([], [], markers[ratios.index(q) % len(markers)], color="gray", label=f"{100 * q:g} % removed")
        # the equal-compute frontier: full data for fewer epochs (the steps a policy took), time = its share of steps
        base = results.select(part="dynamic", method="full_same_steps", model=preset.model)
        full_steps = preset.train_epochs * steps_per_epoch(_n_train(preset), preset.batch_size)
        points = {}  # runs within 2 % of the full steps of each other (seeds of one policy and ratio) pooled
        for b in base:
            points.setdefault(round(b["target_steps"] / full_steps / 0.02) * 0.02, []).append(b["acc"])
        if points:
            xs = sorted(points)
            ax.plot(xs + [1.0], [stats(points[x])[0] for x in xs] + [f_mean], "x--",
                    color="black", lw=0.9, ms=5, label="full data, fewer epochs\n(same steps: equal compute)")  # fmt: skip
        ax.set_xlabel("wall time / full-data wall time (scoring included)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
        ax.set_title(f"Dynamic pruning: accuracy vs time ({preset.model}, {preset.train_epochs} epochs)")
        fig.savefig(out / "dynamic_tradeoff.png")
        made.append("dynamic_tradeoff.png")

    scores = RUNS / preset.name / "scoring" / "scores"
    if (scores / "record.json").exists():
        from hf_prune.plots import data_map

        record = ScoreRecord.load(scores)
        result = get_strategy("dyn_unc", window=preset.window).select(record, 0.25)
        data_map(record, result, path=out / "data_map.png", max_points=20_000)
        made.append("data_map.png")
    return made


def report(preset, results) -> str:
    out = RESULTS / preset.name
    out.mkdir(parents=True, exist_ok=True)
    static_epochs, static = static_table(results, preset, "epochs")
    static_steps, _ = static_table(results, preset, "steps")
    dyn_lines, dynamic = dynamic_table(results, preset)
    cross_lines, _ = static_table(results, preset, "epochs", part="cross", model=preset.cross_model)
    timing = RUNS / preset.name / "scoring" / "timing.json"
    scoring_s = json.loads(timing.read_text())["scoring_run_s"] if timing.exists() else float("nan")
    made = figures(results, preset, static, dynamic, out)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores, shared)"
    lines = [
        f"# Reproduction on Fashion-MNIST — preset `{preset.name}`",
        "",
        f"{preset.notes} Device: {device}. Model `{preset.model}`; scoring run K = {preset.score_epochs} epochs with "
        f"`PruningTrainer` ({scoring_s:.0f} s), Dyn-Unc window J = {preset.window}; retraining and dynamic runs "
        f"{preset.train_epochs} epochs, batch {preset.batch_size}, SGD (Nesterov, lr {preset.lr}, warm-up then "
        f"cosine), seeds {list(preset.seeds)} (equal steps: {list(preset.steps_seeds or preset.seeds)}, dynamic: "
        f"{list(preset.dynamic_seeds or preset.seeds)}); train {_n_train(preset):,} / test {preset.test_samples or 10_000:,} "
        "images. Accuracy: mean ± std (ddof = 1) over seeds. `prune_ratio` = fraction removed.",
        "",
        f"Command: `python bench/reproduce.py all --preset {preset.name}`",
        "",
        "## Goals",
        "",
        *goals(static, dynamic),
        "",
        "## Static pruning, the papers' budget (same epochs, fewer steps)",
        "",
        *static_epochs,
        "",
        "## Static pruning, equal steps (as many optimizer steps as full data)",
        "",
        *static_steps,
        "",
        "## Dynamic pruning (wall time includes scoring, relative to full data timed beside it; same-steps = the "
        "equal-compute baseline)",
        "",
        *dyn_lines,
        "",
        f"## Cross-architecture: {preset.model} scores, {preset.cross_model} trained",
        "",
        *cross_lines,
        "",
        *[f"![{name}]({name})" for name in made],
        "",
    ]
    text = "\n".join(lines)
    (out / "REPORT.md").write_text(text)
    return text


# ---------------------------------------------------------------------------------------------------- entry point


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["static", "dynamic", "cross-arch", "report", "all"])
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="override the preset's seeds")
    p.add_argument("--methods", nargs="+", default=None, help="override the static strategies")
    p.add_argument("--policies", nargs="+", default=None, help="override the dynamic policies")
    p.add_argument("--force", action="store_true", help="re-run configurations already in results.jsonl")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = p.parse_args(argv)
    preset = PRESETS[args.preset]
    preset = replace(preset, **{k: tuple(v) for k, v in (("seeds", args.seeds), ("methods", args.methods),
                                                          ("policies", args.policies)) if v})  # fmt: skip
    if args.seeds:  # the seeds asked for run every part and budget
        preset = replace(preset, steps_seeds=None, dynamic_seeds=None)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    _BF16["enabled"] = preset.bf16
    results = Results(preset)
    if args.part != "report":
        x, y = read_split("train", preset.train_samples)
        xt, yt = read_split("test", preset.test_samples)
        data = (x, y, xt, yt)
        if args.part in ("static", "all"):
            run_static(preset, data, device, results, args.force)
        if args.part in ("dynamic", "all"):
            run_dynamic(preset, data, device, results, args.force)
        if args.part in ("cross-arch", "all"):
            run_cross(preset, data, device, results, args.force)
    text = report(preset, results)
    print(text)
    (RESULTS / preset.name / "preset.json").write_text(json.dumps(asdict(preset), indent=2))
    return text


if __name__ == "__main__":
    main()
