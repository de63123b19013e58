"""The papers' claims on real text available offline (Debian's `fortunes`, `hf_prune.text_data`), through hf_prune's
public API:

    python bench/reproduce_text.py classify --preset cpu   # (a) Dyn-Unc vs random vs full, 25 / 50 % removed, 3 seeds
    python bench/reproduce_text.py lm --preset cpu         # (b) causal-LM fine-tuning: S2L, InfoBatch, random vs full
    python bench/reproduce_text.py report --preset cpu     # tables + figures from what has run so far
    python bench/reproduce_text.py all --preset smoke      # a tiny end-to-end run (the test suite runs it)

(a) **Text classification of the category** (32 categories with ≥ 100 quotes; 11,752 training and 2,939 test quotes):
a tiny BERT from config (`TextTask.new_classifier`) trained with `PruningTrainer` for K epochs records the dynamics;
`dyn_unc` (window J) and `random` remove 25 % and 50 %; a fresh model is trained on each kept set for the same K
epochs (the papers' budget); test accuracy against the scoring run's own (full data). Each seed runs its own scoring.

(b) **Causal-LM fine-tuning** of a tiny GPT-2 from config on the quotes' text: a small proxy run records per-sequence
losses (`PruningTrainer` on token logits), `s2l` selects from their trajectories, `random` draws; `infobatch`
prunes during training (`DynamicPruningTrainer`); against full data for the same epochs and full data for the same
number of optimizer steps as the pruned run took. Held-out perplexity (exp of the test split's mean token loss).

Every training run appends one JSON line to `bench/results/reproduce_text/<preset>/results.jsonl`; a run already
there is skipped (`--force` re-runs). `report` writes `REPORT.md` and the figures into the same folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hf_prune import PruningTrainer, get_strategy  # noqa: E402
from hf_prune.text_task import prepare_text_task  # noqa: E402


@dataclass(frozen=True)
class Preset:
    epochs: int
    window: int
    ratios: tuple[float, ...]
    seeds: tuple[int, ...]
    max_train_samples: int | None
    max_length: int
    hidden_size: int
    batch_size: int = 64
    learning_rate: float = 2e-3
    lm_epochs: int = 3
    lm_max_train_samples: int | None = None


PRESETS = {
    # 2-core CPU: about 19 s per classification epoch on one thread (quiet machine); the LM part on the first 2,000
    # training quotes (all 11,752 took 10 min per 3-epoch proxy run on the loaded machine)
    "cpu": Preset(epochs=8, window=3, ratios=(0.25, 0.5), seeds=(0, 1, 2), max_train_samples=None, max_length=64,
                  hidden_size=64, lm_epochs=3, lm_max_train_samples=2000),  # fmt: skip
    "smoke": Preset(epochs=3, window=2, ratios=(0.5,), seeds=(0,), max_train_samples=256, max_length=32,
                    hidden_size=32, lm_epochs=2, lm_max_train_samples=256),  # fmt: skip
}


RESULTS = ROOT / "bench" / "results" / "reproduce_text"


def results_dir(preset: str) -> Path:
    return RESULTS / preset


def load_results(preset: str) -> list[dict]:
    path = results_dir(preset) / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def append_result(preset: str, row: dict) -> None:
    out = results_dir(preset)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def _done(preset: str, key: dict) -> dict | None:
    return next((r for r in load_results(preset) if all(r.get(k) == v for k, v in key.items())), None)


def _training_args(out: Path, p: Preset, seed: int, epochs: int, **extra):
    from transformers import TrainingArguments

    return TrainingArguments(
        str(out), num_train_epochs=epochs, per_device_train_batch_size=p.batch_size, per_device_eval_batch_size=256,
        learning_rate=p.learning_rate, warmup_steps=0.05, weight_decay=0.01, seed=seed, report_to=[],
        save_strategy="no", logging_steps=10_000, disable_tqdm=True, use_cpu=True, **extra,
    )  # fmt: skip


def _accuracy(trainer, dataset) -> float:
    out = trainer.predict(dataset)
    return float((out.predictions.argmax(-1) == np.asarray(dataset["label"])).mean() * 100)


def run_classify(preset_name: str, work: Path, force: bool = False) -> None:
    from transformers import DataCollatorWithPadding, Trainer

    p = PRESETS[preset_name]
    task = prepare_text_task(max_train_samples=p.max_train_samples, max_length=p.max_length, seed=0)
    collator = DataCollatorWithPadding(task.tokenizer)
    for seed in p.seeds:
        key = {"part": "classify", "method": "full", "ratio": 0.0, "seed": seed}
        record_dir = work / f"classify_seed{seed}"
        if force or not _done(preset_name, key) or not (record_dir / "scores").exists():
            start = time.perf_counter()
            trainer = PruningTrainer(
                model=task.new_classifier(seed, p.hidden_size), args=_training_args(record_dir, p, seed, p.epochs),
                train_dataset=task.train, data_collator=collator,
            )  # fmt: skip
            trainer.train()
            acc = _accuracy(trainer, task.test)
            append_result(preset_name, {**key, "kept": len(task.train), "accuracy": acc,
                                        "seconds": time.perf_counter() - start})  # fmt: skip
            print(f"[classify] seed {seed} full: {acc:.2f} %", flush=True)
        from hf_prune import ScoreRecord

        record = ScoreRecord.load(record_dir / "scores")
        for method in ("dyn_unc", "random"):
            for ratio in p.ratios:
                key = {"part": "classify", "method": method, "ratio": ratio, "seed": seed}
                if not force and _done(preset_name, key):
                    continue
                params = {"window": p.window} if method == "dyn_unc" else {"seed": seed}
                result = get_strategy(method, **params).select(record, prune_ratio=ratio)
                kept = result.apply(task.train)
                start = time.perf_counter()
                trainer = Trainer(
                    model=task.new_classifier(seed, p.hidden_size),
                    args=_training_args(work / f"retrain_{method}_{ratio}_{seed}", p, seed, p.epochs),
                    train_dataset=kept, data_collator=collator,
                )  # fmt: skip
                trainer.train()
                acc = _accuracy(trainer, task.test)
                append_result(preset_name, {**key, "kept": len(kept), "accuracy": acc,
                                            "seconds": time.perf_counter() - start})  # fmt: skip
                print(f"[classify] seed {seed} {method} {ratio:.0%} removed: {acc:.2f} %", flush=True)


def _mean_std(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.2f}" + (f" ({v.size} seeds)" if v.size != 3 else "")


def report(preset_name: str) -> Path:
    rows = load_results(preset_name)
    out = results_dir(preset_name)
    out.mkdir(parents=True, exist_ok=True)
    p = PRESETS[preset_name]
    lines = [f"# Text evidence on Debian's fortunes (preset `{preset_name}`)", "",
             f"`python bench/reproduce_text.py all --preset {preset_name}`; preset: {asdict(p)}.", ""]  # fmt: skip
    classify = [r for r in rows if r["part"] == "classify"]
    if classify:
        full = [r["accuracy"] for r in classify if r["method"] == "full"]
        lines += ["## (a) Category classification, tiny BERT: test accuracy (%), mean ± std over seeds", "",
                  "| removed | full data | Dyn-Unc | random | Dyn-Unc − random |", "|---|---|---|---|---|"]  # fmt: skip
        lines.append(f"| 0 % | {_mean_std(full)} | | | |")
        for ratio in p.ratios:
            by = {m: {r["seed"]: r["accuracy"] for r in classify if r["method"] == m and r["ratio"] == ratio}
                  for m in ("dyn_unc", "random")}  # fmt: skip
            seeds = sorted(set(by["dyn_unc"]) & set(by["random"]))
            gap = [by["dyn_unc"][s] - by["random"][s] for s in seeds]
            lines.append(
                f"| {ratio:.0%} | | {_mean_std(list(by['dyn_unc'].values())) if by['dyn_unc'] else '–'} | "
                f"{_mean_std(list(by['random'].values())) if by['random'] else '–'} | "
                f"{_mean_std(gap) if gap else '–'} |"
            )
        lines.append("")
        _figure_classify(classify, p, out / "classify.png")
        lines += ["![accuracy vs fraction removed](classify.png)", ""]
    lm = [r for r in rows if r["part"] == "lm"]
    if lm:
        lines += ["## (b) Causal-LM fine-tuning, tiny GPT-2: held-out perplexity (lower is better)", "",
                  "| method | removed | perplexity | optimizer steps | seconds |", "|---|---|---|---|---|"]  # fmt: skip
        for method, ratio in sorted({(r["method"], r["ratio"]) for r in lm}):
            sel = [r for r in lm if r["method"] == method and r["ratio"] == ratio]
            lines.append(
                f"| {method} | {ratio:.0%} | {_mean_std([r['perplexity'] for r in sel])} | "
                f"{np.mean([r['steps'] for r in sel]):.0f} | {np.mean([r['seconds'] for r in sel]):.0f} |"
            )
        lines.append("")
        _figure_lm(lm, out / "lm.png")
        lines += ["![held-out perplexity per method and seed](lm.png)", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def _figure_classify(rows: list[dict], p: Preset, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=110)
    full = np.array([r["accuracy"] for r in rows if r["method"] == "full"])
    for method, colour in (("dyn_unc", "tab:blue"), ("random", "tab:orange")):
        xs, means, stds = [0.0], [full.mean()], [full.std(ddof=1) if full.size > 1 else 0.0]
        for ratio in p.ratios:
            acc = np.array([r["accuracy"] for r in rows if r["method"] == method and r["ratio"] == ratio])
            if acc.size:
                xs.append(ratio * 100)
                means.append(acc.mean())
                stds.append(acc.std(ddof=1) if acc.size > 1 else 0.0)
        means, stds = np.array(means), np.array(stds)
        ax.plot(xs, means, marker="o", color=colour, label=method)
        ax.fill_between(xs, means - stds, means + stds, color=colour, alpha=0.15)
    ax.set_xlabel("% of training quotes removed")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("fortunes category, tiny BERT: Dyn-Unc vs random")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _figure_lm(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    order = ["full", "infobatch", "full_same_steps", "s2l", "random"]
    methods = [m for m in order if any(r["method"] == m for r in rows)]
    fig, ax = plt.subplots(figsize=(5.6, 3.4), dpi=110)
    for i, method in enumerate(methods):
        sel = [r for r in rows if r["method"] == method]
        values = [r["perplexity"] for r in sel]
        ax.bar(i, np.mean(values), color="tab:gray" if method.startswith("full") else "tab:blue", alpha=0.6)
        ax.scatter([i] * len(values), values, color="black", s=12, zorder=3)
    labels = [f"{m}\n{np.mean([r['steps'] for r in rows if r['method'] == m]):.0f} steps" for m in methods]
    ax.set_xticks(range(len(methods)), labels, fontsize=8)
    ax.set_ylabel("held-out perplexity (lower is better)")
    ax.set_ylim(0.9 * min(r["perplexity"] for r in rows), 1.05 * max(r["perplexity"] for r in rows))
    ax.set_title("fortunes, tiny GPT-2: 50 % removed (s2l, random, infobatch)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("part", choices=["classify", "lm", "all", "report"])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--work_dir", default=None, help="where runs write; default runs/reproduce_text/<preset>")
    parser.add_argument("--force", action="store_true", help="re-run runs already in results.jsonl")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(args.work_dir or ROOT / "runs" / "reproduce_text" / args.preset)
    if args.part in ("classify", "all"):
        run_classify(args.preset, work, args.force)
    if args.part in ("lm", "all"):
        run_lm(args.preset, work, args.force)
    print(f"Report: {report(args.preset)}")
    return 0


def _perplexity(trainer, dataset) -> float:
    return float(math.exp(trainer.evaluate(eval_dataset=dataset)["eval_loss"]))


def run_lm(preset_name: str, work: Path, force: bool = False) -> None:
    """(b): per seed, a proxy GPT-2 (hidden 64) records per-sequence losses for `lm_epochs`; `s2l` and `random`
    keep half of the quotes, on which the target GPT-2 (hidden 128) is fine-tuned for the same epochs; `infobatch`
    trains the target on full data with InfoBatch (`DynamicPruningTrainer`); full data for the same epochs and for
    the same number of optimizer steps as the S2L run. Held-out perplexity of the test quotes."""
    from transformers import DataCollatorForLanguageModeling, Trainer

    from hf_prune import DynamicPruningArguments, DynamicPruningTrainer, ScoreRecord

    p = PRESETS[preset_name]
    task = prepare_text_task(max_train_samples=p.lm_max_train_samples, max_length=p.max_length, seed=0)
    train, test = task.train.remove_columns("label"), task.test.remove_columns("label")
    collator = DataCollatorForLanguageModeling(task.tokenizer, mlm=False)
    ratio = 0.5
    for seed in p.seeds:
        record_dir = work / f"lm_proxy_seed{seed}"
        if force or not (record_dir / "scores").exists():
            proxy = PruningTrainer(
                model=task.new_causal_lm(seed, hidden_size=64), args=_training_args(record_dir, p, seed, p.lm_epochs),
                train_dataset=train, data_collator=collator,
            )  # fmt: skip
            proxy.train()
        record = ScoreRecord.load(record_dir / "scores")

        def fine_tune(method, dataset, trainer_class=Trainer, seed=seed, **extra):
            key = {"part": "lm", "method": method, "ratio": 0.0 if method.startswith("full") else ratio, "seed": seed}
            done = _done(preset_name, key)
            if done and not force:
                return done
            epochs = extra.pop("epochs", p.lm_epochs)
            args_class = extra.pop("args_class", None)
            out = work / f"lm_{method}_{seed}"
            if args_class is None:
                args = _training_args(out, p, seed, epochs, **extra)
            else:
                args = args_class(
                    str(out), num_train_epochs=epochs, per_device_train_batch_size=p.batch_size,
                    per_device_eval_batch_size=256, learning_rate=p.learning_rate, warmup_steps=0.05, weight_decay=0.01,
                    seed=seed, report_to=[], save_strategy="no", logging_steps=10_000, disable_tqdm=True, use_cpu=True,
                    **extra,
                )  # fmt: skip
            start = time.perf_counter()
            trainer = trainer_class(model=task.new_causal_lm(seed, hidden_size=128), args=args, train_dataset=dataset,
                                    data_collator=collator)  # fmt: skip
            trainer.train()
            row = {**key, "kept": len(dataset), "steps": trainer.state.global_step,
                   "seconds": time.perf_counter() - start, "perplexity": _perplexity(trainer, test)}  # fmt: skip
            append_result(preset_name, row)
            print(f"[lm] seed {seed} {method}: perplexity {row['perplexity']:.1f} in {row['steps']} steps", flush=True)
            return row

        s2l = get_strategy("s2l", num_clusters=min(100, max(2, len(train) // 50)), seed=seed)
        s2l_row = fine_tune("s2l", s2l.select(record, prune_ratio=ratio).apply(train))
        fine_tune("random", get_strategy("random", seed=seed).select(record, prune_ratio=ratio).apply(train))
        fine_tune("infobatch", train, DynamicPruningTrainer, args_class=DynamicPruningArguments,
                  dynamic_policy="infobatch", dynamic_prune_ratio=ratio)  # fmt: skip
        fine_tune("full", train)
        fine_tune("full_same_steps", train, max_steps=int(s2l_row["steps"]))


if __name__ == "__main__":
    raise SystemExit(main())
