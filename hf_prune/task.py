"""Image classification set up the way the transformers example `run_image_classification.py` does it, for the
recipes and benchmarks: the same argument names (`--model_name_or_path`, `--dataset_name`, `--train_dir`,
`--validation_dir`, `--train_val_split`, `--max_train_samples`...), the data and model loaded from them, the image
shape read from the data, and transforms taken from the model.

`prepare_image_classification(data_args, model_args, seed)` returns everything a recipe needs in an
`ImageClassificationTask`: the transformed train / eval / clean-view datasets, a fresh-model factory, the collator,
the label names and the `TrainSubset` of the full split the run trains on.

Example:

```python
>>> from hf_prune.task import DataArguments, ModelArguments, prepare_image_classification
>>> task = prepare_image_classification(DataArguments(max_train_samples=256), ModelArguments("tiny_cnn"), seed=0)
>>> task.image_size, task.in_chans, len(task.train)
(28, 1, 256)
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .data import (
    FASHION_MNIST_HUB_ID,
    TrainSubset,
    image_collator,
    image_transforms,
    infer_image_shape,
    label_names_of,
    load_image_dataset,
    num_classes_of,
    take_train_subset,
)
from .models import LoadedModel, load_image_classifier


@dataclass
class DataArguments:
    """What to train on (the transformers image-classification example's `DataTrainingArguments`)."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset id (e.g. ILSVRC/imagenet-1k) or local folder; default: embedded Fashion-MNIST."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Dataset configuration name."})
    train_dir: str | None = field(default=None, metadata={"help": "Image folder of the training data (one sub-folder per class)."})
    validation_dir: str | None = field(default=None, metadata={"help": "Image folder of the validation data."})
    train_split: str = field(default="train", metadata={"help": "Split to train on and prune."})
    eval_split: str | None = field(default=None, metadata={"help": "Evaluation split; default: 'test' or 'validation'."})
    train_val_split: float | None = field(
        default=0.15,
        metadata={"help": "Share of train held out as validation when the data has no test/validation split."},
    )
    image_column_name: str | None = field(default=None, metadata={"help": "Image column; default: image/img."})
    label_column_name: str | None = field(default=None, metadata={"help": "Label column; default: label/labels."})
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Train on the first N training rows only; published ids still index the full split."},
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on the first N rows only."})


@dataclass
class ModelArguments:
    """Which model (the example's `ModelArguments`, plus timm names, presets and `--from_scratch`)."""

    model_name_or_path: str = field(
        default="swin_fmnist",
        metadata={
            "help": "A preset built from config (swin_fmnist: the Swin-T design sized for 28x28, 0.3 M params; "
            "resnet_fmnist; tiny_cnn), a transformers checkpoint (Hub id or local folder, loaded with "
            "AutoModelForImageClassification) or a timm name (resnet18.a1_in1k: pretrained weights where timm has "
            "them)."
        },
    )
    from_scratch: bool = field(
        default=False, metadata={"help": "Random weights even where pretrained ones exist (as the Dyn-Unc paper)."}
    )
    model_revision: str = field(default="main", metadata={"help": "Revision of a Hub checkpoint."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store downloaded checkpoints."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private checkpoints."})


@dataclass
class ImageClassificationTask:
    """What `prepare_image_classification` returns."""

    raw_train: Any  # the training rows, untransformed (for `PruneResult.apply`)
    train: Any  # with the train transform
    eval: Any | None  # with the eval transform, or None when there is no eval split
    eval_split: str | None
    clean_view: Any  # the training rows with the eval transform (clean-view recording, scoring passes)
    full_train: Any  # the full source split, untransformed
    subset: TrainSubset
    num_labels: int
    label_names: list[str] | None
    image_size: int
    in_chans: int
    loaded: LoadedModel  # the first model, already built (new_model() builds more)
    new_model: Callable[[], Any]
    collator: Callable = image_collator
    source_repo_id: str | None = None

    def with_train_transform(self, dataset):
        """`dataset` (rows of the training split) with this task's train transform."""
        return _with_transform(dataset, self._train_transform)

    def with_eval_transform(self, dataset):
        """`dataset` with this task's eval transform (e.g. a pruned set's clean view)."""
        return _with_transform(dataset, self._eval_transform)

    _train_transform: Any = None
    _eval_transform: Any = None

    def banner_rows(self, data_args: DataArguments, model_args: ModelArguments, args) -> dict[str, str]:
        """The start banner's rows every recipe shows: processes, data, train / eval rows and the model."""
        from accelerate import PartialState

        state = PartialState()
        parameters = sum(p.numel() for p in self.loaded.model.parameters())
        return {
            "processes": f"{state.num_processes} ({state.distributed_type.value}, device {args.device})",
            "data": f"{self.source_repo_id or data_args.train_dir}, split {data_args.train_split}",
            "train rows": f"{len(self.train):,} of {self.subset.num_source_rows:,} ({self.subset.description})",
            "eval rows": f"{len(self.eval):,} ({self.eval_split})" if self.eval is not None else "none",
            "model": f"{model_args.model_name_or_path} ({self.loaded.kind}, {parameters:,} parameters, "
            f"{self.image_size}x{self.image_size}x{self.in_chans})",
        }


def recipe_parser(dataclass_types: tuple, description: str, defaults: dict[str, Any]):
    """An `HfArgumentParser` over `dataclass_types` (model, data, script, training arguments) whose `--help` shows the
    recipe's own `defaults` (any flag given wins). Without `use_cpu`, a CUDA build of torch on a GPU-less machine
    leaves torchrun's processes unconnected, so it defaults to True there."""
    import torch
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        dataclass_types,
        description=description + " Model, data and pruning options come first, then every TrainingArguments / "
        f"{dataclass_types[-1].__name__} flag; the defaults shown are this recipe's.",
    )
    parser.set_defaults(**defaults, use_cpu=not torch.cuda.is_available())
    return parser


def _with_transform(dataset, transform):
    dataset = dataset.with_format(None)
    dataset.set_transform(transform)
    return dataset


def prepare_image_classification(data_args: DataArguments, model_args: ModelArguments, seed: int = 0) -> ImageClassificationTask:
    """Loads the data and the first model, and builds the transforms, as the transformers example does.

    Raises:
        `ValueError`: a split is missing or a column cannot be found (the message names the flag to pass).
        `hf_prune.models.WeightsUnavailableError`: pretrained weights cannot be fetched (e.g. offline).
    """
    data = load_image_dataset(
        data_args.dataset_name, data_args.dataset_config_name, data_args.image_column_name,
        data_args.label_column_name, train_dir=data_args.train_dir, validation_dir=data_args.validation_dir,
    )  # fmt: skip
    train, evaluation, eval_split, subset = take_train_subset(
        data, data_args.train_split, max_train_samples=data_args.max_train_samples,
        train_val_split=data_args.train_val_split, eval_split=data_args.eval_split, seed=seed,
    )  # fmt: skip
    if evaluation is not None and data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    num_labels = num_classes_of(train)
    label_names = label_names_of(train)
    id2label = dict(enumerate(label_names)) if label_names else None
    image_size, in_chans = infer_image_shape(train)

    def new_model() -> LoadedModel:
        import torch

        torch.manual_seed(seed)
        return load_image_classifier(
            model_args.model_name_or_path, num_labels, in_chans=in_chans, image_size=image_size, id2label=id2label,
            from_scratch=model_args.from_scratch, revision=model_args.model_revision, token=model_args.token,
            cache_dir=model_args.cache_dir,
        )  # fmt: skip

    loaded = new_model()
    train_tf, eval_tf = image_transforms(loaded, image_size, in_chans)
    # A local folder is passed on as is: the exporters publish its name, never the path (and no repo id).
    repo = data_args.dataset_name if data_args.dataset_name is not None else data_args.train_dir
    return ImageClassificationTask(
        raw_train=train, train=_with_transform(train, train_tf),
        eval=_with_transform(evaluation, eval_tf) if evaluation is not None else None, eval_split=eval_split,
        clean_view=_with_transform(train, eval_tf), full_train=data[data_args.train_split], subset=subset,
        num_labels=num_labels, label_names=label_names, image_size=image_size, in_chans=in_chans, loaded=loaded,
        new_model=lambda: new_model().model, source_repo_id=repo or FASHION_MNIST_HUB_ID,
        _train_transform=train_tf, _eval_transform=eval_tf,
    )  # fmt: skip
