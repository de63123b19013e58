"""Dynamic data pruning with UCB (Raju et al. 2021, Eq. 3-4) in `PruningTrainer`, against full training: prints test
accuracy and wall time (scoring passes included) of both, writes the always / sometimes / never selection histogram
(Raju et al. Fig. 3) and a static `PruneResult` of the most often selected samples.

Launch (single process, or any Accelerate / torchrun setup):

    accelerate launch recipes/dynamic_ucb.py                                    # embedded Fashion-MNIST, 50 % pruned
    python recipes/dynamic_ucb.py --max_train_samples 2000 --num_train_epochs 2   # quick run (CI)
    torchrun --nproc_per_node 2 recipes/dynamic_ucb.py --max_train_samples 4000 --num_train_epochs 4
    python recipes/dynamic_ucb.py --dynamic_policy infobatch --dynamic_prune_ratio 0.3   # any registered policy

Every `PruningArguments` flag works, e.g. `--dynamic_prune_ratio 0.7 --pruning_period 10 --dynamic_scoring pass
--dynamic_c 1.0 --dynamic_alpha 0.8`; `--skip_full` trains only the pruned run. For ImageNet as in the paper's
appendix: `--dataset_name ILSVRC/imagenet-1k --eval_split validation --model resnet18 --img_size 224`.

Outputs under `--output_dir`: `full/` and `dynamic/` runs (each with its `scores/` record; the dynamic record holds the
per-epoch `selected` mask and, in its metadata, training and scoring seconds per epoch), `selection_histogram.png`,
`most_selected_<pct>/` (a static `PruneResult`), `summary.json`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from transformers import HfArgumentParser, set_seed

from hf_prune import PruningArguments, PruningTrainer
from hf_prune.data import ImageTransform, image_collator, load_image_dataset, num_classes_of
from hf_prune.dynamic import plot_selection_histogram, selection_counts, selection_groups, static_result_from_selection
from hf_prune.models import build_timm_classifier


@dataclass
class ScriptArguments:
    """What to train on, which model, and what to compare."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset id (e.g. ILSVRC/imagenet-1k) or local folder; default: embedded Fashion-MNIST."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(default=None, metadata={"help": "Test split; default: 'test' or 'validation'."})
    image_column: str | None = field(default=None, metadata={"help": "Image column; default: image/img."})
    label_column: str | None = field(default=None, metadata={"help": "Label column; default: label/labels."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training rows (quick runs)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N test rows."})
    model: str = field(
        default="resnet_fmnist",
        metadata={"help": "timm architecture or preset: resnet_fmnist (resnet10t), tiny_cnn, swin_fmnist; resnet18."},
    )
    img_size: int | None = field(default=None, metadata={"help": "Input side; default 28 (Fashion-MNIST) or 224."})
    in_chans: int | None = field(default=None, metadata={"help": "Input channels; default 1 (Fashion-MNIST) or 3."})
    skip_full: bool = field(default=False, metadata={"help": "Do not train the full-data baseline."})
    static_prune_ratio: float = field(
        default=0.5, metadata={"help": "Fraction REMOVED in the static list of the most often selected samples."}
    )


# Defaults for training from scratch with UCB; any flag given on the command line wins.
RECIPE_DEFAULTS = [
    "--output_dir", "runs/dynamic_ucb", "--num_train_epochs", "10", "--learning_rate", "2e-3",
    "--weight_decay", "0.05", "--lr_scheduler_type", "cosine", "--warmup_steps", "0.05",
    "--per_device_train_batch_size", "128", "--per_device_eval_batch_size", "512", "--logging_steps", "50",
    "--save_strategy", "no", "--report_to", "none", "--record_signals", "loss",
    "--dynamic_policy", "ucb", "--dynamic_prune_ratio", "0.5", "--pruning_period", "2", "--dynamic_scoring", "pass",
]  # fmt: skip


def accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ScriptArguments, PruningArguments))
    argv = sys.argv[1:] if argv is None else argv
    # Without use_cpu, a CUDA build of torch on a GPU-less machine leaves torchrun's processes unconnected.
    defaults = RECIPE_DEFAULTS + ([] if torch.cuda.is_available() else ["--use_cpu", "true"])
    script, args = parser.parse_args_into_dataclasses(args=defaults + list(argv))

    data = load_image_dataset(script.dataset_name, script.dataset_config, script.image_column, script.label_column)
    eval_split = script.eval_split or next((s for s in ("test", "validation") if s in data), None)
    if eval_split is None:
        raise ValueError("This recipe compares test accuracy: the dataset needs a test or validation split.")
    train, test = data[script.train_split], data[eval_split]
    if script.max_train_samples:
        train = train.select(range(min(script.max_train_samples, len(train))))
    if script.max_eval_samples:
        test = test.select(range(min(script.max_eval_samples, len(test))))
    default_data = script.dataset_name is None
    img_size = script.img_size or (28 if default_data else 224)
    in_chans = script.in_chans or (1 if default_data else 3)
    num_labels = num_classes_of(train)

    def with_transform(ds, train_mode):
        ds = ds.with_format(None)
        ds.set_transform(ImageTransform(img_size, in_chans, train=train_mode))
        return ds

    def run(run_args: PruningArguments) -> tuple[PruningTrainer, dict]:
        set_seed(run_args.seed)
        model = build_timm_classifier(script.model, num_labels, in_chans=in_chans, img_size=img_size)
        trainer = PruningTrainer(
            model=model,
            args=run_args,
            train_dataset=with_transform(train, True),
            eval_dataset=with_transform(test, False),
            # the scoring pass of dynamic_scoring="pass" sees the eval transform
            clean_view_dataset=with_transform(train, False),
            data_collator=image_collator,
            compute_metrics=accuracy,
        )
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start
        timing = trainer.dynamic_pruning.timing if trainer.dynamic_pruning is not None else []
        return trainer, {
            "policy": run_args.dynamic_policy or "full",
            "prune_ratio": run_args.dynamic_prune_ratio if run_args.dynamic_policy else 0.0,
            "accuracy": trainer.evaluate()["eval_accuracy"],
            "wall_s": wall,
            "scoring_s": float(sum(t["scoring_s"] for t in timing)),
            "steps": trainer.state.global_step,
        }

    args.remove_unused_columns = False  # the transform needs the raw image column
    runs = []
    if not script.skip_full:
        full_args = PruningArguments(
            **{**args.to_dict(), "output_dir": f"{args.output_dir}/full", "dynamic_policy": None}
        )
        runs.append(run(full_args)[1])
    dyn_args = PruningArguments(**{**args.to_dict(), "output_dir": f"{args.output_dir}/dynamic"})
    trainer, summary = run(dyn_args)
    runs.append(summary)

    out = Path(args.output_dir)
    result = {"dataset": script.dataset_name or "fashion_mnist (embedded)", "model": script.model, "runs": runs}
    if trainer.accelerator.is_main_process:
        record = trainer.score_record
        counts, total = selection_counts(record)
        result["selection_groups"] = selection_groups(counts, total)["fractions"]
        plot_selection_histogram(record, out / "selection_histogram.png", title=f"{args.dynamic_policy} selections")
        static = static_result_from_selection(record, prune_ratio=script.static_prune_ratio)
        static.save(out / f"most_selected_{round(script.static_prune_ratio * 100)}")
        with open(out / "summary.json", "w") as f:
            json.dump(result, f, indent=2)
        full = runs[0] if runs[0]["policy"] == "full" else None
        print("\n| run | pruned | test accuracy | wall time (s) | of which scoring (s) | x full time |")
        print("|---|---|---|---|---|---|")
        for r in runs:
            ratio = f"{r['wall_s'] / full['wall_s']:.2f}" if full else "-"
            print(
                f"| {r['policy']} | {r['prune_ratio']:.0%} | {r['accuracy']:.4f} | {r['wall_s']:.1f} "
                f"| {r['scoring_s']:.1f} | {ratio} |"
            )
        print(f"selection groups (never / sometimes / always): {result['selection_groups']}")
    trainer.accelerator.wait_for_everyone()
    PartialState().destroy_process_group()  # gloo aborts at exit without it
    return result


if __name__ == "__main__":
    main()
