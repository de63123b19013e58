"""Dyn-Unc end to end: train a Swin with `PruningTrainer`, score every sample with Dynamic Uncertainty (He et al.
2023, Eq. 2-3), write kept-index lists for the requested ratios, and optionally retrain on each pruned set to print
full vs pruned test accuracy.

Launch (single process, or any Accelerate / torchrun setup):

    accelerate launch recipes/dyn_unc_swin.py                                  # embedded Fashion-MNIST, small Swin
    python recipes/dyn_unc_swin.py --max_train_samples 10000 --num_train_epochs 12 --window 5 --retrain
    torchrun --nproc_per_node 2 recipes/dyn_unc_swin.py --max_train_samples 2000 --num_train_epochs 6 --window 3

ImageNet-1K, as in the paper (Swin-T, 300 epochs, J = 10, 25 % removed):

    accelerate launch recipes/dyn_unc_swin.py --dataset_name ILSVRC/imagenet-1k --eval_split validation \\
        --model swin_tiny_patch4_window7_224 --img_size 224 --num_train_epochs 300 --window 10 \\
        --per_device_train_batch_size 128 --learning_rate 1e-3 --weight_decay 0.05 --bf16 --prune_ratios 0.25

Outputs under `--output_dir`: `scores/` (the `ScoreRecord`), `dyn_unc_<pct>/` (a `PruneResult` per ratio, the
kept-index list), `summary.json` (accuracies and sizes).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from transformers import HfArgumentParser, Trainer, set_seed

from hf_prune import PruningArguments, PruningTrainer, get_strategy
from hf_prune.data import ImageTransform, image_collator, load_image_dataset, num_classes_of
from hf_prune.export import model_card, push_results_to_hub
from hf_prune.models import build_timm_classifier


@dataclass
class ScriptArguments:
    """What to train on, which model, and how to prune."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset id (e.g. ILSVRC/imagenet-1k) or local folder; default: embedded Fashion-MNIST."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name."})
    train_split: str = field(default="train", metadata={"help": "Split to train on and prune."})
    eval_split: str | None = field(default=None, metadata={"help": "Test split; default: 'test' or 'validation'."})
    image_column: str | None = field(default=None, metadata={"help": "Image column; default: image/img."})
    label_column: str | None = field(default=None, metadata={"help": "Label column; default: label/labels."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N test rows."})
    model: str = field(
        default="swin_fmnist",
        metadata={
            "help": "timm architecture, or a preset: swin_fmnist (Swin-T design sized for 28x28, 0.3 M params), "
            "resnet_fmnist, tiny_cnn. For ImageNet: swin_tiny_patch4_window7_224."
        },
    )
    img_size: int | None = field(default=None, metadata={"help": "Input side; default 28 (Fashion-MNIST) or 224."})
    in_chans: int | None = field(default=None, metadata={"help": "Input channels; default 1 (Fashion-MNIST) or 3."})
    window: int = field(default=10, metadata={"help": "Dyn-Unc window J (paper: 10); needs J < epochs."})
    prune_ratios: list[float] = field(
        default_factory=lambda: [0.25, 0.5],
        metadata={"help": "Fractions of the training set to REMOVE (0.25 keeps 75%%), one list per ratio."},
    )
    class_balanced: bool = field(default=False, metadata={"help": "Remove the same fraction from every class."})
    retrain: bool = field(default=False, metadata={"help": "Retrain a fresh model on each pruned set and compare."})
    hub_repo_id: str | None = field(
        default=None,
        metadata={
            "help": "With --push_to_hub: dataset repo for the kept-index lists (one config per ratio, with a card). "
            "With --retrain, the model trained on each pruned set goes to <hub_model_id or hub_repo_id>-model-<pct> "
            "with a model card linking the list."
        },
    )


# Defaults for training from scratch (Trainer's own suit fine-tuning); any flag given on the command line wins.
RECIPE_DEFAULTS = [
    "--output_dir", "runs/dyn_unc_swin", "--num_train_epochs", "15", "--learning_rate", "1e-3",
    "--weight_decay", "0.05", "--lr_scheduler_type", "cosine", "--warmup_steps", "0.05",
    "--per_device_train_batch_size", "128", "--per_device_eval_batch_size", "256", "--logging_steps", "50",
    "--save_strategy", "epoch", "--save_total_limit", "1", "--report_to", "none",
]  # fmt: skip


def accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def push_model(trainer, script, args, result, accuracy, summary, eval_split) -> None:
    """Pushes a model trained on a pruned set, with a card that links the index list and compares with full data."""
    repo = f"{args.hub_model_id or script.hub_repo_id}-model-{round(result.prune_ratio * 100)}"
    full = next((run["accuracy"] for run in summary["runs"] if run["prune_ratio"] == 0.0), None)
    trainer.model.push_to_hub(repo, token=args.hub_token, private=args.hub_private_repo)
    card = model_card(
        script.hub_repo_id, result=result, accuracy=accuracy, full_accuracy=full, eval_split=eval_split,
        model_name=repo, library_name="transformers",
        training={"epochs": args.num_train_epochs, "model": script.model, "learning_rate": args.learning_rate},
    )  # fmt: skip
    card.push_to_hub(repo, token=args.hub_token)
    print(f"Pushed the model trained with {result.prune_ratio:.0%} removed: {repo}")


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ScriptArguments, PruningArguments))
    argv = sys.argv[1:] if argv is None else argv
    # Without use_cpu, a CUDA build of torch on a GPU-less machine leaves torchrun's processes unconnected.
    defaults = RECIPE_DEFAULTS + ([] if torch.cuda.is_available() else ["--use_cpu", "true"])
    script, args = parser.parse_args_into_dataclasses(args=defaults + list(argv))
    set_seed(args.seed)

    data = load_image_dataset(script.dataset_name, script.dataset_config, script.image_column, script.label_column)
    eval_split = script.eval_split or next((s for s in ("test", "validation") if s in data), None)
    train = data[script.train_split]
    if script.max_train_samples:
        train = train.select(range(min(script.max_train_samples, len(train))))
    test = data[eval_split] if eval_split else None
    if test is not None and script.max_eval_samples:
        test = test.select(range(min(script.max_eval_samples, len(test))))
    default_data = script.dataset_name is None
    img_size = script.img_size or (28 if default_data else 224)
    in_chans = script.in_chans or (1 if default_data else 3)
    num_labels = num_classes_of(train)
    label_names = getattr(train.features["label"], "names", None)
    id2label = dict(enumerate(label_names)) if label_names else None

    def with_transform(ds, train_mode):
        ds = ds.with_format(None)
        ds.set_transform(ImageTransform(img_size, in_chans, train=train_mode))
        return ds

    def new_model():
        set_seed(args.seed)
        return build_timm_classifier(script.model, num_labels, in_chans=in_chans, img_size=img_size, id2label=id2label)

    args.remove_unused_columns = False  # the transform needs the raw image column
    push = args.push_to_hub
    if push and not script.hub_repo_id:
        raise ValueError("--push_to_hub needs --hub_repo_id: the dataset repo that receives the kept-index lists.")
    args.push_to_hub = False  # the recipe pushes the lists (and models) itself at the end, not every checkpoint
    trainer = PruningTrainer(
        model=new_model(),
        args=args,
        train_dataset=with_transform(train, True),
        eval_dataset=with_transform(test, False) if test is not None else None,
        clean_view_dataset=with_transform(train, False) if args.record_clean_view else None,
        data_collator=image_collator,
        compute_metrics=accuracy,
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    summary = {
        "dataset": script.dataset_name or "fashion_mnist (embedded)",
        "model": script.model,
        "num_train": len(train),
        "epochs": args.num_train_epochs,
        "window": script.window,
        "runs": [],
    }
    if test is not None:
        metrics = trainer.evaluate()
        summary["runs"].append({"prune_ratio": 0.0, "kept": len(train), "accuracy": metrics["eval_accuracy"]})

    record = trainer.score_record
    strategy = get_strategy("dyn_unc", window=script.window)
    results = {}
    for ratio in script.prune_ratios:
        result = strategy.select(record, prune_ratio=ratio, class_balanced=script.class_balanced)
        result.provenance["source"] = {
            "repo_id": script.dataset_name or "fashion_mnist",
            "config": script.dataset_config,
            "split": script.train_split,
            "num_rows": len(train),
            "fingerprint": train._fingerprint,
        }
        results[ratio] = result
        if trainer.accelerator.is_main_process:
            # record= adds the data map (paper Fig. 2, removed samples marked) to the card, where matplotlib is installed
            out = result.save(Path(args.output_dir) / f"dyn_unc_{round(ratio * 100)}", record=record)
            print(f"Dyn-Unc removed {ratio:.0%}: kept {result.num_kept}/{result.num_samples} -> {out}")
    trainer.accelerator.wait_for_everyone()

    world_size, is_main = trainer.accelerator.num_processes, trainer.accelerator.is_main_process
    if script.retrain and test is not None:
        for ratio, result in results.items():
            retrain_args = PruningArguments(**{**args.to_dict(), "output_dir": f"{args.output_dir}/retrain_{round(ratio * 100)}"})
            retrain_args.save_strategy = "no"
            pruned = result.apply(train)
            # A last batch of one sample breaks BatchNorm in training: drop just that one, if it occurs.
            per_step = args.per_device_train_batch_size * world_size
            retrain_args.dataloader_drop_last = 0 < len(pruned) % per_step <= world_size
            retrainer = Trainer(
                model=new_model(),
                args=retrain_args,
                train_dataset=with_transform(pruned, True),
                eval_dataset=with_transform(test, False),
                data_collator=image_collator,
                compute_metrics=accuracy,
            )
            retrainer.train()
            acc = retrainer.evaluate()["eval_accuracy"]
            summary["runs"].append({"prune_ratio": ratio, "kept": result.num_kept, "accuracy": acc})
            if push and is_main:
                push_model(retrainer, script, args, result, acc, summary, eval_split)

    if push and is_main:
        url = push_results_to_hub(list(results.values()), script.hub_repo_id, source_dataset=train, record=record)
        print(f"Pushed the kept-index lists: {url}")
    if is_main:
        with open(Path(args.output_dir) / "summary.json", "w") as f:
            json.dump(summary, f, indent=2)
        if summary["runs"]:
            print("\n| removed | kept | test accuracy |\n|---|---|---|")
            for run in summary["runs"]:
                print(f"| {run['prune_ratio']:.0%} | {run['kept']} | {run['accuracy']:.4f} |")
    PartialState().destroy_process_group()  # gloo aborts at exit without it
    return summary


if __name__ == "__main__":
    main()
