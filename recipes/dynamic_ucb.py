"""Dynamic data pruning with UCB (Raju et al. 2021, Eq. 3-4) in `DynamicPruningTrainer`, against full training (a
`PruningTrainer` with the same arguments, no pruning): prints test
accuracy and wall time (scoring passes included) of both, writes the always / sometimes / never selection histogram
(Raju et al. Fig. 3) and a static `PruneResult` of the most often selected samples.

A first run, on a laptop CPU (any flag given wins over the preset's values):

    python recipes/dynamic_ucb.py --preset cpu

It trains a small CNN on 10,000 Fashion-MNIST images for 10 epochs, once on all of them and once with UCB removing
half of them per epoch, and prints both test accuracies and wall times (measured once: 87.85 % full, 80.02 % with
UCB in 0.87x the time, seed 42). Time, with `OMP_NUM_THREADS=1` on this project's 2-core x86 machine shared with
other jobs (load average 4.7 to 6.2): 6 min 41 s wall, 3.3 min of CPU time; less on a quiet machine. The defaults
(60,000 images with a ResNet) are for a GPU: on that machine, one thread, the full run measured 0.82 s per step, and
both runs together over 1.5 h. A few steps into any run that will take longer than an hour on its device, the recipe
says so and how long.

Launch (single process, or any Accelerate / torchrun setup):

    accelerate launch recipes/dynamic_ucb.py                                    # embedded Fashion-MNIST, 50 % pruned
    python recipes/dynamic_ucb.py --max_train_samples 2000 --num_train_epochs 2   # quick run (CI)
    torchrun --nproc_per_node 2 recipes/dynamic_ucb.py --max_train_samples 4000 --num_train_epochs 4
    python recipes/dynamic_ucb.py --dynamic_policy infobatch --dynamic_prune_ratio 0.3   # any registered policy
    python recipes/dynamic_ucb.py --dynamic_policy_kwargs '{"c": 2.0, "alpha": 0.8}'      # the policy's own parameters

Every `DynamicPruningArguments` flag works, e.g. `--dynamic_prune_ratio 0.7 --pruning_period 10 --dynamic_scoring
pass`; a policy's own parameters go into `--dynamic_policy_kwargs` as JSON (UCB: `c`, `alpha`, `class_balanced`;
unknown keys are refused with the accepted ones); `--skip_full` trains only the pruned run. For ImageNet as in the paper's
appendix: `--dataset_name ILSVRC/imagenet-1k --eval_split validation --model_name_or_path resnet18 --from_scratch`.

Outputs under `--output_dir`: `full/` and `dynamic/` runs (each with its `scores/` record; the dynamic record holds the
per-epoch `selected` mask and, in its metadata, training and scoring seconds per epoch), `selection_histogram.png`,
`most_selected_<pct>/` (a static `PruneResult`), `summary.json`. An expected error (an `--output_dir` holding an
earlier run, a bad flag value, an unknown model) ends every process with exit status 1 and one `error: ...` line,
printed once, no traceback (`HF_PRUNE_TRACEBACK=1` shows it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import PartialState
from transformers import set_seed

from hf_prune import DynamicPruningArguments, DynamicPruningTrainer, PruningArguments, PruningTrainer
from hf_prune.console import (
    RunTimeEstimate,
    banner,
    describe_preset,
    format_fractions,
    label_progress_bars,
    logger,
    parse_args_with_preset,
    phase,
    run_recipe,
    setup_logging,
)
from hf_prune.dynamic import plot_selection_histogram, selection_counts, selection_groups, static_result_from_selection
from hf_prune.metrics import accuracy_metrics
from hf_prune.task import DataArguments, ModelArguments, prepare_image_classification, recipe_parser


# Named sets of defaults (`--preset cpu`); any flag given on the command line wins over them.
PRESETS = {
    "cpu": dict(
        model_name_or_path="tiny_cnn", max_train_samples=10_000, num_train_epochs=10, dataloader_num_workers=1,
        output_dir="runs/dynamic_ucb_cpu",
    ),
}  # fmt: skip
# How long each preset takes, stated in `--help` and in the long-run warning (measured: see the module docstring).
PRESET_TIMES = {"cpu": "under 7 min on a 2-core CPU, measured busy"}
# A run estimated to take longer than this (seconds, training steps only) is warned about a few steps in.
LONG_RUN_WARNING_S = 3600.0


def _preset_help() -> str:
    described = "; ".join(
        f"{name}: {describe_preset(name, values, {}).split(': ', 1)[1]} ({PRESET_TIMES[name]})"
        for name, values in PRESETS.items()
    )
    return f"A named set of defaults for a first run; any flag given on the command line wins. {described}."


@dataclass
class ScriptArguments:
    """What to compare."""

    preset: str | None = field(default=None, metadata={"help": _preset_help()})
    skip_full: bool = field(default=False, metadata={"help": "Do not train the full-data baseline."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace the records of an earlier run in --output_dir (else: refuse)."}
    )
    static_prune_ratio: float = field(
        default=0.5, metadata={"help": "Fraction REMOVED in the static list of the most often selected samples."}
    )


# Defaults for training from scratch with UCB; `--help` shows these, any flag given wins.
RECIPE_DEFAULTS = dict(
    output_dir="runs/dynamic_ucb", num_train_epochs=10, learning_rate=2e-3, weight_decay=0.05,
    lr_scheduler_type="cosine", warmup_steps=0.05, per_device_train_batch_size=128, per_device_eval_batch_size=512,
    logging_strategy="epoch", save_strategy="no", report_to="none", record_signals=["loss"],
    dynamic_policy="ucb", dynamic_prune_ratio=0.5, pruning_period=2, dynamic_scoring="pass",
    remove_unused_columns=False,
)  # fmt: skip


def build_parser():
    dataclass_types = (ModelArguments, DataArguments, ScriptArguments, DynamicPruningArguments)
    return recipe_parser(dataclass_types, __doc__.split("\n\n")[0], {**RECIPE_DEFAULTS, "model_name_or_path": "resnet_fmnist"})


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    (model_args, data_args, script, args), applied, overridden = parse_args_with_preset(parser, argv, PRESETS)
    setup_logging(args)
    earlier = [Path(args.output_dir) / run / args.score_record_dir / "record.json" for run in ("full", "dynamic")]
    if not script.overwrite_output_dir and any(path.exists() for path in earlier):  # told before the data loads
        raise ValueError(
            f"{args.output_dir} already holds the records of an earlier run. Pass --overwrite_output_dir to replace "
            "them, or another --output_dir."
        )
    task = prepare_image_classification(data_args, model_args, seed=args.seed)
    if task.eval is None:
        raise ValueError(
            "This recipe compares test accuracy, but the data has no test or validation split: pass --eval_split, "
            "--validation_dir or --train_val_split 0.1."
        )
    if hasattr(args, "overwrite_score_record"):
        args.overwrite_score_record = script.overwrite_output_dir
    phases = 1 if script.skip_full else 2
    banner(
        f"hf_prune: dynamic pruning ({args.dynamic_policy})",
        {
            **({"preset": describe_preset(script.preset, applied, overridden)} if script.preset else {}),
            **task.banner_rows(data_args, model_args, args),
            "policy": f"{args.dynamic_policy}, removing {args.dynamic_prune_ratio:.0%} per pruned epoch, "
            f"period {args.pruning_period}, scores from {args.dynamic_scoring}",
            "epochs": f"{args.num_train_epochs:g}",
            "output": f"{args.output_dir}/full, {args.output_dir}/dynamic",
        },
    )

    def run(run_args: PruningArguments, label: str, estimate: RunTimeEstimate | None) -> tuple[PruningTrainer, dict]:
        set_seed(run_args.seed)
        dynamic = isinstance(run_args, DynamicPruningArguments)
        trainer = (DynamicPruningTrainer if dynamic else PruningTrainer)(
            model=task.new_model(), args=run_args, train_dataset=task.train, eval_dataset=task.eval,
            # the scoring pass of dynamic_scoring="pass" sees the eval transform
            clean_view_dataset=task.clean_view, data_collator=task.collator, compute_metrics=accuracy_metrics(),
            record_metadata={"model_name_or_path": model_args.model_name_or_path, "dataset_repo_id": task.source_repo_id,
                             "train_subset": task.subset.to_metadata()},
        )  # fmt: skip
        label_progress_bars(trainer, label)
        if estimate is not None:
            trainer.add_callback(estimate)
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start
        timing = trainer.dynamic_timing if dynamic else []
        metrics = trainer.evaluate()
        trainer.save_metrics("eval", metrics)
        return trainer, {
            "policy": run_args.dynamic_policy if dynamic else "full",
            "prune_ratio": run_args.dynamic_prune_ratio if dynamic else 0.0,
            "accuracy": metrics["eval_accuracy"],
            "wall_s": wall,
            "scoring_s": float(sum(t["scoring_s"] for t in timing)),
            "steps": trainer.state.global_step,
        }

    runs = []
    if not script.skip_full:
        phase(1, phases, "Training on the full data")
        full_args = args.pruning_arguments(output_dir=f"{args.output_dir}/full")  # the same run, no dynamic pruning
        estimate = run_time_estimate(script, args, len(task.train), dynamic_run_follows=True)
        runs.append(run(full_args, f"[1/{phases}] full data", estimate)[1])
    phase(phases, phases, f"Training with {args.dynamic_policy}, {args.dynamic_prune_ratio:.0%} removed per epoch")
    dyn_args = dataclasses.replace(args, output_dir=f"{args.output_dir}/dynamic")
    estimate = run_time_estimate(script, args, len(task.train), dynamic_run_follows=False) if script.skip_full else None
    trainer, summary = run(dyn_args, f"[{phases}/{phases}] {args.dynamic_policy}", estimate)
    runs.append(summary)

    out = Path(args.output_dir)
    result = {"dataset": task.source_repo_id, "model": model_args.model_name_or_path, "runs": runs}
    if trainer.accelerator.is_main_process:
        record = trainer.score_record
        counts, total = selection_counts(record)
        result["selection_groups"] = selection_groups(counts, total)["fractions"]
        plot_selection_histogram(record, out / "selection_histogram.png", title=f"{args.dynamic_policy} selections")
        static = static_result_from_selection(record, prune_ratio=script.static_prune_ratio)
        static.provenance["label_names"] = task.label_names
        if not task.subset.is_full:
            static = static.to_source_rows(task.subset.rows, task.subset.num_source_rows, task.subset.description)
        source = {"repo_id": task.source_repo_id, "config": data_args.dataset_config_name,
                  "split": data_args.train_split, "fingerprint": task.full_train._fingerprint}  # fmt: skip
        static.save(out / f"most_selected_{round(script.static_prune_ratio * 100)}", source=source,
                    source_dataset=task.full_train)  # the card shows a gallery of what was left out
        with open(out / "summary.json", "w") as f:
            json.dump(result, f, indent=2)
        full = runs[0] if runs[0]["policy"] == "full" else None
        lines = ["", "| run | pruned | test accuracy | wall time (s) | of which scoring (s) | x full time |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for r in runs:
            ratio = f"{r['wall_s'] / full['wall_s']:.2f}" if full else "-"
            lines.append(
                f"| {r['policy']} | {r['prune_ratio']:.0%} | {100 * r['accuracy']:.2f} % | {r['wall_s']:.1f} "
                f"| {r['scoring_s']:.1f} | {ratio} |"
            )
        lines.append(f"selection groups: {format_fractions(result['selection_groups'])}")
        logger.info("\n".join(lines))
    trainer.accelerator.wait_for_everyone()
    PartialState().destroy_process_group()  # gloo aborts at exit without it
    return result


def dynamic_run_steps(num_rows: int, args) -> int:
    """Optimizer steps of the dynamically pruned run, about: every epoch on the kept fraction (the policy decides the
    exact counts as it goes)."""
    if args.max_steps > 0:
        return args.max_steps
    batches = math.ceil(num_rows * (1 - args.dynamic_prune_ratio) / (args.per_device_train_batch_size * args.world_size))
    return math.ceil(batches / args.gradient_accumulation_steps) * math.ceil(args.num_train_epochs)


def run_time_estimate(script: ScriptArguments, args, num_rows: int, dynamic_run_follows: bool) -> RunTimeEstimate:
    """The callback that warns, a few steps into the first run, when both runs together will take hours here."""
    if args.device.type == "cpu" and script.preset != "cpu":
        hint = f"For a first try on a CPU, stop it (Ctrl-C) and run with --preset cpu ({PRESET_TIMES['cpu']})."
    else:
        hint = "Fewer --max_train_samples or --num_train_epochs make it shorter."
    return RunTimeEstimate(
        extra_steps=dynamic_run_steps(num_rows, args) if dynamic_run_follows else 0,
        extra_label="the dynamically pruned run", warn_above_s=LONG_RUN_WARNING_S, hint=hint,
    )  # fmt: skip


if __name__ == "__main__":
    run_recipe(main)  # a bad flag, a refused folder or unavailable weights: one line with the fix, no traceback
