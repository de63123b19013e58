"""Dynamic data pruning with UCB (Raju et al. 2021, Eq. 3-4) in `DynamicPruningTrainer`, against full training (a
`PruningTrainer` with the same arguments, no pruning): prints test
accuracy and wall time (scoring passes included) of both, writes the always / sometimes / never selection histogram
(Raju et al. Fig. 3) and a static `PruneResult` of the most often selected samples.

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
`most_selected_<pct>/` (a static `PruneResult`), `summary.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import PartialState
from transformers import set_seed

from hf_prune import DynamicPruningArguments, DynamicPruningTrainer, PruningArguments, PruningTrainer
from hf_prune.console import banner, format_fractions, label_progress_bars, logger, phase, setup_logging
from hf_prune.dynamic import plot_selection_histogram, selection_counts, selection_groups, static_result_from_selection
from hf_prune.metrics import accuracy_metrics
from hf_prune.task import DataArguments, ModelArguments, prepare_image_classification, recipe_parser


@dataclass
class ScriptArguments:
    """What to compare."""

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
    model_args, data_args, script, args = parser.parse_args_into_dataclasses(args=list(argv))
    setup_logging(args)
    task = prepare_image_classification(data_args, model_args, seed=args.seed)
    if task.eval is None:
        raise ValueError(
            "This recipe compares test accuracy, but the data has no test or validation split: pass --eval_split, "
            "--validation_dir or --train_val_split 0.1."
        )
    earlier = [Path(args.output_dir) / run / args.score_record_dir / "record.json" for run in ("full", "dynamic")]
    if not script.overwrite_output_dir and any(path.exists() for path in earlier):
        raise ValueError(
            f"{args.output_dir} already holds the records of an earlier run. Pass --overwrite_output_dir to replace "
            "them, or another --output_dir."
        )
    if hasattr(args, "overwrite_score_record"):
        args.overwrite_score_record = script.overwrite_output_dir
    phases = 1 if script.skip_full else 2
    banner(
        f"hf_prune: dynamic pruning ({args.dynamic_policy})",
        {
            **task.banner_rows(data_args, model_args, args),
            "policy": f"{args.dynamic_policy}, removing {args.dynamic_prune_ratio:.0%} per pruned epoch, "
            f"period {args.pruning_period}, scores from {args.dynamic_scoring}",
            "epochs": f"{args.num_train_epochs:g}",
            "output": f"{args.output_dir}/full, {args.output_dir}/dynamic",
        },
    )

    def run(run_args: PruningArguments, label: str) -> tuple[PruningTrainer, dict]:
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
        runs.append(run(full_args, f"[1/{phases}] full data")[1])
    phase(phases, phases, f"Training with {args.dynamic_policy}, {args.dynamic_prune_ratio:.0%} removed per epoch")
    dyn_args = dataclasses.replace(args, output_dir=f"{args.output_dir}/dynamic")
    trainer, summary = run(dyn_args, f"[{phases}/{phases}] {args.dynamic_policy}")
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
        static.save(out / f"most_selected_{round(script.static_prune_ratio * 100)}", source=source)
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


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as err:  # a bad flag or unavailable weights: one line with the fix, no traceback
        if os.environ.get("HF_PRUNE_TRACEBACK"):
            raise
        sys.exit(f"error: {err}")
