"""Dyn-Unc end to end, shaped like the transformers example `run_image_classification.py`: train with
`PruningTrainer` (a Swin by default), score every sample with Dynamic Uncertainty (He et al. 2023, Eq. 2-3), write
the kept-index lists as Hub-ready folders, and with `--retrain` train a fresh model on each pruned set (and on each
`--baselines` list, e.g. random) to compare test accuracy with full data.

A first run, on a laptop CPU (what `make demo` runs; any flag given wins over the preset's values, e.g.
`--num_train_epochs 5`):

    python recipes/dyn_unc_swin.py --preset cpu

It trains a small CNN on 10,000 Fashion-MNIST images for 10 epochs, writes the Dyn-Unc and random kept-index lists
at 25 % and 50 % removed, and retrains on each of the four (`--retrain`) for the table of test accuracy against full
data (seed 42: 87.85 % full, 87.22 % / 86.73 % with Dyn-Unc, 86.55 % / 85.04 % with random). Time, with
`OMP_NUM_THREADS=1` on this project's 2-core x86 machine: about 4.5 min wall when the machine is quiet
(docs/evidence.md); 15 min 10 s wall (7.3 min of CPU time) when it was shared with other jobs, load average 2.3 at
the start and 4 to 7.5 during the run.

The defaults are for a GPU: 60,000 images x 15 epochs with the small Swin, 7,035 steps (on the same machine, one
thread, load average 1.4 to 2.4: 0.54 to 0.6 s per step, over 1 h before retraining; 3 h was reported on a busy
2-core laptop). A few steps into any run that will take longer than an hour on its device, the recipe says so and how
long.

Launch (single process, or any Accelerate / torchrun setup):

    accelerate launch recipes/dyn_unc_swin.py                                  # embedded Fashion-MNIST, small Swin
    torchrun --nproc_per_node 2 recipes/dyn_unc_swin.py --max_train_samples 2000 --num_train_epochs 6 --window 3
    python recipes/dyn_unc_swin.py --train_dir my_images/train --validation_dir my_images/val \\
        --model_name_or_path resnet18.a1_in1k --num_train_epochs 20 --window 5   # pretrained timm weights

ImageNet-1K, as in the paper (Swin-T from scratch, 300 epochs, J = 10, 25 % removed, mixup and cutmix):

    accelerate launch recipes/dyn_unc_swin.py --dataset_name ILSVRC/imagenet-1k --eval_split validation \\
        --model_name_or_path swin_tiny_patch4_window7_224 --from_scratch --num_train_epochs 300 --window 10 \\
        --per_device_train_batch_size 128 --learning_rate 1e-3 --weight_decay 0.05 --bf16 --prune_ratios 0.25 \\
        --mixup 0.8 --cutmix 1.0

Outputs under `--output_dir`: `scores/` (the `ScoreRecord`), `dyn_unc/` (the kept-index lists, one config per
ratio, with card, score histogram and data map), `<baseline>/` likewise, `data_map.png`, `retrain_<method>_<pct>/`,
`train_results.json` / `eval_results.json` / `all_results.json` (Trainer's `save_metrics`) and `summary.json`.
A second run into the same `--output_dir` resumes from its last checkpoint; `--overwrite_output_dir` starts over.
Without `--retrain` only the full-data run is trained: the end of the run says where the lists are and how to add
the retraining. An expected error (a refused `--output_dir`, a bad flag value, an unknown model) ends every process
with exit status 1 and one `error: ...` line, printed once, no traceback (`HF_PRUNE_TRACEBACK=1` shows it); the
launcher adds its own report of the failed processes (`accelerate launch -q` keeps it to a summary).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from hf_prune import PruningArguments, PruningTrainer, get_strategy
from hf_prune.console import (
    RunTimeEstimate,
    banner,
    describe_preset,
    label_progress_bars,
    logger,
    parse_args_with_preset,
    phase,
    run_recipe,
    setup_logging,
)
from hf_prune.dyn_unc_window import check_dyn_unc_window
from hf_prune.export import push_results_to_hub, save_results
from hf_prune.metrics import accuracy_metrics
from hf_prune.plots import data_map
from hf_prune.record import RECORD_FILE
from hf_prune.task import DataArguments, ModelArguments, prepare_image_classification, recipe_parser


# Named sets of defaults (`--preset cpu`); any flag given on the command line wins over them.
PRESETS = {
    "cpu": dict(
        model_name_or_path="tiny_cnn", max_train_samples=10_000, num_train_epochs=10, window=4, learning_rate=2e-3,
        retrain=True, baselines=["random"], dataloader_num_workers=1, save_strategy="no", output_dir="runs/dyn_unc_cpu",
    ),
}  # fmt: skip
# How long each preset takes, stated in `--help` and in the long-run warning (measured: see the module docstring).
PRESET_TIMES = {"cpu": "about 5 min on a quiet 2-core CPU, 15 min on a busy one"}
# A run estimated to take longer than this (seconds, training steps only) is warned about a few steps in.
LONG_RUN_WARNING_S = 3600.0


def _preset_help() -> str:
    described = "; ".join(
        f"{name}: {describe_preset(name, values, {}).split(': ', 1)[1]} ({PRESET_TIMES[name]})"
        for name, values in PRESETS.items()
    )
    return f"A named set of defaults for a first run; any flag given on the command line wins. {described}."


@dataclass
class PruningScriptArguments:
    """How to prune and what to compare."""

    preset: str | None = field(default=None, metadata={"help": _preset_help()})
    window: int = field(default=10, metadata={"help": "Dyn-Unc window J (paper: 10); must be below the epochs."})
    prune_ratios: list[float] = field(
        default_factory=lambda: [0.25, 0.5],
        metadata={"help": "Fractions of the training set to REMOVE (0.25 keeps 75%%), one list per ratio."},
    )
    class_balanced: bool = field(default=False, metadata={"help": "Remove the same fraction from every class."})
    baselines: list[str] = field(
        default_factory=list,
        metadata={"help": "Other strategies scored on the same record and retrained for comparison, e.g. random."},
    )
    retrain: bool = field(default=False, metadata={"help": "Retrain a fresh model on each pruned set and compare."})
    mixup: float = field(default=0.0, metadata={"help": "Mixup alpha (timm Mixup); > 0 records from the clean view."})
    cutmix: float = field(default=0.0, metadata={"help": "CutMix alpha (timm Mixup); > 0 records from the clean view."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start over in an --output_dir that holds a record or checkpoints (else: resume or refuse)."},
    )
    hub_repo_id: str | None = field(
        default=None,
        metadata={
            "help": "With --push_to_hub: dataset repo for the Dyn-Unc kept-index lists (one config per ratio). With "
            "--retrain, each model trained on a Dyn-Unc list goes to <hub_model_id or hub_repo_id>-model-<pct> with "
            "a model card that links its list."
        },
    )


# Defaults for training from scratch (Trainer's own suit fine-tuning); `--help` shows these, any flag given wins.
RECIPE_DEFAULTS = dict(
    output_dir="runs/dyn_unc_swin", num_train_epochs=15, learning_rate=1e-3, weight_decay=0.05,
    lr_scheduler_type="cosine", warmup_steps=0.05, per_device_train_batch_size=128, per_device_eval_batch_size=256,
    logging_strategy="epoch", eval_strategy="no", save_strategy="epoch", save_total_limit=1, report_to="none",
    remove_unused_columns=False,
)  # fmt: skip


def build_parser():
    dataclass_types = (ModelArguments, DataArguments, PruningScriptArguments, PruningArguments)
    return recipe_parser(dataclass_types, __doc__.split("\n\n")[0], RECIPE_DEFAULTS)


def check_before_training(script: PruningScriptArguments, args: PruningArguments) -> str | None:
    """Everything in the flags and the output folder that would otherwise fail after a whole training run, checked
    before the data loads (a refused `--output_dir` is told at once); returns the checkpoint to resume from."""
    epochs = math.ceil(args.num_train_epochs) if args.max_steps <= 0 else None
    check_dyn_unc_window(script.window, epochs, name="--window", epochs_name="--num_train_epochs")
    if hasattr(args, "dyn_unc_window"):
        args.dyn_unc_window = script.window  # the trainer checks it again before training
    for ratio in script.prune_ratios:
        if not 0 <= ratio < 1:
            raise ValueError(f"--prune_ratios are fractions REMOVED, in [0, 1); got {ratio}.")
    for name in script.baselines:
        get_strategy(name)  # unknown names fail here, with the list of known ones
    if args.push_to_hub:
        from huggingface_hub import get_token

        if not script.hub_repo_id:
            raise ValueError("--push_to_hub needs --hub_repo_id: the dataset repo that receives the kept-index lists.")
        if not (args.hub_token or get_token()):
            raise ValueError("--push_to_hub needs a Hub token: run `hf auth login`, set HF_TOKEN or pass --hub_token.")
    out = Path(args.output_dir)
    if hasattr(args, "overwrite_score_record"):
        args.overwrite_score_record = script.overwrite_output_dir
    if script.overwrite_output_dir or not out.is_dir():
        return args.resume_from_checkpoint
    checkpoint = args.resume_from_checkpoint or get_last_checkpoint(str(out))
    if checkpoint is None and (out / args.score_record_dir / RECORD_FILE).exists():
        raise ValueError(
            f"{out} already holds a score record and no checkpoint to resume from. Pass --overwrite_output_dir to "
            "replace it, or another --output_dir."
        )
    if checkpoint is not None:
        logger.info(f"Checkpoint detected, resuming training at {checkpoint}. Pass --overwrite_output_dir to start over.")
    return checkpoint


def mixup_setup(script, args, num_labels):
    """timm's Mixup/CutMix on every training batch (as timm's train.py) and a soft-target loss; the record then comes
    from the clean view (un-augmented, eval mode), since mixed images have no single label."""
    if not (script.mixup > 0 or script.cutmix > 0):
        return PruningTrainer, {}
    from timm.data import Mixup

    mixup = Mixup(mixup_alpha=script.mixup, cutmix_alpha=script.cutmix, num_classes=num_labels)
    if not args.record_clean_view:
        logger.info("Mixup/CutMix: recording from the clean view (record_clean_view=True), as the Dyn-Unc authors do.")
        args.record_clean_view = True

    class MixupPruningTrainer(PruningTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            x, y = inputs["pixel_values"], inputs["labels"]
            if len(x) % 2 == 0:
                x, y = mixup(x, y)
            else:  # timm mixes pairs: an odd last batch trains unmixed, with the same soft-target loss
                y = torch.nn.functional.one_hot(y, num_labels).to(x.dtype)
            return super().training_step(model, {**inputs, "pixel_values": x, "labels": y}, num_items_in_batch)

    def soft_target_loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        if labels.dim() == 1:  # evaluation: hard labels
            return torch.nn.functional.cross_entropy(logits, labels)
        return torch.sum(-labels * torch.log_softmax(logits, dim=-1), dim=-1).mean()

    return MixupPruningTrainer, {"compute_loss_func": soft_target_loss}


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    (model_args, data_args, script, args), applied, overridden = parse_args_with_preset(parser, argv, PRESETS)
    setup_logging(args)
    set_seed(args.seed)
    checkpoint = check_before_training(script, args)
    task = prepare_image_classification(data_args, model_args, seed=args.seed)
    if script.retrain and task.eval is None:
        raise ValueError(
            "--retrain compares test accuracy, but the data has no test or validation split: pass --eval_split, "
            "--validation_dir or --train_val_split 0.1."
        )
    trainer_class, trainer_kwargs = mixup_setup(script, args, task.num_labels)
    push = args.push_to_hub
    args.push_to_hub = False  # the lists and models are pushed at the end, not every checkpoint
    methods = ["dyn_unc", *script.baselines]
    retrains = len(methods) * len(script.prune_ratios) if script.retrain else 0
    phases = 2 + retrains
    banner(
        "hf_prune: Dyn-Unc",
        {
            **({"preset": describe_preset(script.preset, applied, overridden)} if script.preset else {}),
            **task.banner_rows(data_args, model_args, args),
            "signals": ", ".join(args.record_signals) + (" (clean view)" if args.record_clean_view else ""),
            "method": f"dyn_unc, window {script.window}, removing {script.prune_ratios}"
            + (f"; baselines {script.baselines}" if script.baselines else ""),
            "epochs": f"{args.num_train_epochs:g}" + (f" (resuming {checkpoint})" if checkpoint else ""),
            "output": f"{args.output_dir} (record in {args.score_record_dir}/)",
        },
    )

    phase(1, phases, "Training on the full data, recording per-sample dynamics")
    trainer = trainer_class(
        model=task.loaded.model, args=args, train_dataset=task.train, eval_dataset=task.eval,
        clean_view_dataset=task.clean_view if args.record_clean_view else None, data_collator=task.collator,
        compute_metrics=accuracy_metrics(),
        record_metadata={
            "model_name_or_path": model_args.model_name_or_path, "dataset_repo_id": task.source_repo_id,
            "train_subset": task.subset.to_metadata(), "strategy_params": {"dyn_unc": {"window": script.window}},
        },
        **trainer_kwargs,
    )  # fmt: skip
    if trainer.accelerator.is_main_process:
        task.subset.save_rows(args.output_dir)  # rows of a non-contiguous subset, for `hf-prune select`
    label_progress_bars(trainer, f"[1/{phases}] full data")
    trainer.add_callback(run_time_estimate(script, args, len(task.train), methods if script.retrain else []))
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()
    summary = {
        "dataset": task.source_repo_id, "model": model_args.model_name_or_path, "num_train": len(task.train),
        "train_subset": task.subset.to_metadata(), "epochs": args.num_train_epochs, "window": script.window,
        "seed": args.seed, "runs": [],
    }  # fmt: skip
    if task.eval is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        summary["runs"].append({"method": "full", "prune_ratio": 0.0, "kept": len(task.train), "accuracy": metrics["eval_accuracy"]})

    phase(2, phases, f"Scoring with {', '.join(methods)} and writing the kept-index lists")
    record = trainer.score_record
    is_main = trainer.accelerator.is_main_process
    selections: dict[str, list] = {}
    for name in methods:
        strategy = get_strategy(name, window=script.window) if name == "dyn_unc" else get_strategy(name)
        started = time.perf_counter()
        selections[name] = [
            strategy.select(record, prune_ratio=r, class_balanced=script.class_balanced) for r in script.prune_ratios
        ]
        trainer.log({f"pruning/{name}_scoring_seconds": round(time.perf_counter() - started, 4)})
    source = {
        "repo_id": task.source_repo_id, "config": data_args.dataset_config_name, "split": data_args.train_split,
        "fingerprint": task.full_train._fingerprint,
    }  # fmt: skip
    published = {}
    for name, results in selections.items():
        published[name] = []
        for result in results:
            result.provenance["label_names"] = task.label_names
            full = result if task.subset.is_full else result.to_source_rows(task.subset.rows, task.subset.num_source_rows, task.subset.description)  # fmt: skip
            published[name].append(full)
        if is_main:
            folder = save_results(published[name], Path(args.output_dir) / name, source=source, record=record,
                                  record_rows=None if task.subset.is_full else task.subset.rows,
                                  source_dataset=task.full_train)  # fmt: skip
            kept = ", ".join(f"{r.prune_ratio:.0%} removed: {r.num_kept:,} kept" for r in results)
            logger.info(f"{name}: {kept} -> {folder}")
    if is_main and record.has_signal("p_target"):
        first = selections["dyn_unc"][0]
        data_map(record, first, path=Path(args.output_dir) / "data_map.png")
        logger.info(f"Data map (removed samples of dyn_unc at {first.prune_ratio:.0%} in red): {args.output_dir}/data_map.png")
    trainer.accelerator.wait_for_everyone()

    step = 2
    world_size = trainer.accelerator.num_processes
    full_accuracy = summary["runs"][0]["accuracy"] if summary["runs"] else None
    for name in methods if script.retrain else []:
        for result, full_result in zip(selections[name], published[name]):
            step += 1
            pct = round(result.prune_ratio * 100)
            phase(step, phases, f"Retraining a fresh model on {name} with {result.prune_ratio:.0%} removed ({result.num_kept:,} rows)")
            retrain_args = dataclasses.replace(args, output_dir=f"{args.output_dir}/retrain_{name}_{pct}", save_strategy="no")
            if hasattr(retrain_args, "overwrite_score_record"):
                retrain_args.overwrite_score_record = True  # a retrain always starts afresh, also in a resumed run
            if push and name == "dyn_unc":
                retrain_args.hub_model_id = f"{args.hub_model_id or script.hub_repo_id}-model-{pct}"
            pruned = result.apply(task.raw_train)
            # A last batch of one sample breaks BatchNorm in training: drop just that one, if it occurs.
            per_step = args.per_device_train_batch_size * world_size
            retrain_args.dataloader_drop_last = 0 < len(pruned) % per_step <= world_size
            set_seed(args.seed)
            retrainer = trainer_class(
                model=task.new_model(), args=retrain_args, train_dataset=task.with_train_transform(pruned),
                eval_dataset=task.eval, data_collator=task.collator, compute_metrics=accuracy_metrics(),
                # mixed images have no single label: the retrain records from its clean view too
                clean_view_dataset=task.with_eval_transform(pruned) if retrain_args.record_clean_view else None,
                **trainer_kwargs,
            )  # fmt: skip
            label_progress_bars(retrainer, f"[{step}/{phases}] {name} {pct}%")
            retrainer.train()
            metrics = retrainer.evaluate()
            retrainer.save_metrics("eval", metrics)
            summary["runs"].append({"method": name, "prune_ratio": result.prune_ratio, "kept": result.num_kept, "accuracy": metrics["eval_accuracy"]})
            if push and name == "dyn_unc":
                retrainer.push_to_hub(
                    pruned_list=full_result, index_repo_id=script.hub_repo_id,
                    full_data_metrics={"accuracy": full_accuracy} if full_accuracy is not None else None,
                )  # fmt: skip
                logger.info(f"Pushed the model trained with {result.prune_ratio:.0%} removed: {retrain_args.hub_model_id}")

    if push and is_main:
        url = push_results_to_hub(published["dyn_unc"], script.hub_repo_id, source=source, record=record,
                                  record_rows=None if task.subset.is_full else task.subset.rows,
                                  source_dataset=task.full_train)  # fmt: skip
        logger.info(f"Pushed the kept-index lists: {url}")
    if is_main:
        with open(Path(args.output_dir) / "summary.json", "w") as f:
            json.dump(summary, f, indent=2)
        if summary["runs"]:
            logger.info(summary_table(summary["runs"]))
        if not script.retrain:
            logger.info(without_retraining_note(args.output_dir, methods, script.prune_ratios))
    PartialState().destroy_process_group()  # gloo aborts at exit without it
    return summary


def retraining_steps(num_rows: int, ratios: list[float], methods: list[str], args) -> int:
    """Optimizer steps of the retraining runs on each method's kept rows (about: the exact counts come later)."""
    if args.max_steps > 0:
        return len(methods) * len(ratios) * args.max_steps
    per_step = args.per_device_train_batch_size * args.world_size
    steps = 0
    for ratio in ratios:
        batches = math.ceil(num_rows * (1 - ratio) / per_step)
        steps += math.ceil(batches / args.gradient_accumulation_steps) * math.ceil(args.num_train_epochs)
    return steps * len(methods)


def run_time_estimate(script: PruningScriptArguments, args, num_rows: int, retrained: list[str]) -> RunTimeEstimate:
    """The callback that warns, a few steps in, when the whole run (retraining included) will take hours here."""
    on_cpu = args.device.type == "cpu"
    if on_cpu and script.preset != "cpu":
        hint = f"For a first try on a CPU, stop it (Ctrl-C) and run with --preset cpu ({PRESET_TIMES['cpu']})."
    else:
        hint = "Fewer --max_train_samples or --num_train_epochs make it shorter."
    runs = len(retrained) * len(script.prune_ratios)
    return RunTimeEstimate(
        extra_steps=retraining_steps(num_rows, script.prune_ratios, retrained, args),
        extra_label=f"{runs} retraining run{'s' if runs != 1 else ''}", warn_above_s=LONG_RUN_WARNING_S, hint=hint,
    )  # fmt: skip


def without_retraining_note(output_dir: str, methods: list[str], ratios: list[float]) -> str:
    """What a run without `--retrain` did, where its lists are, and the flag that compares them."""
    configs = ", ".join(f"prune_{round(100 * r)}" for r in ratios)
    lists = "\n".join(f"  {Path(output_dir) / name}/  ({configs})" for name in methods)
    checkpoint = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
    again = (
        f"run the same command with --retrain: it resumes from {checkpoint} and only adds the retraining"
        if checkpoint
        else "run the same command with --retrain --overwrite_output_dir (this run kept no checkpoint to resume from, "
        "--save_strategy no, so the full run trains again)"
    )
    return (
        "Only the full-data run was trained (no --retrain), so there is no accuracy on the pruned sets yet. The "
        f"kept-index lists, one config per ratio:\n{lists}\nTo train a fresh model on each list and compare its test "
        f"accuracy with full data, {again}."
    )


def summary_table(runs: list[dict]) -> str:
    full = next((r["accuracy"] for r in runs if r["method"] == "full"), None)
    lines = ["", "| method | removed | kept | test accuracy | vs full |", "|---|---|---|---|---|"]
    for r in runs:
        delta = f"{100 * (r['accuracy'] - full):+.2f}" if full is not None and r["method"] != "full" else ""
        lines.append(f"| {r['method']} | {r['prune_ratio']:.0%} | {r['kept']:,} | {100 * r['accuracy']:.2f} % | {delta} |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_recipe(main)  # a bad flag, a refused folder or unavailable weights: one line with the fix, no traceback
