"""Image-classification data for recipes, tests and benchmarks: the embedded Fashion-MNIST, any Hub or local
image dataset with image and label columns (`--dataset_name`, `--train_dir` / `--validation_dir` as in the
transformers image-classification example), a validation split carved from train (`--train_val_split`), the image
shape read from the data, and train / eval transforms taken from the model (a transformers image processor's or
timm's `resolve_data_config` / `create_transform`), or sized to the data for models trained from scratch.

The embedded default data is Fashion-MNIST as shipped by Debian's `dataset-fashion-mnist` package (IDX files under
`/usr/share/datasets/fashion-mnist/`). `load_image_dataset("ILSVRC/imagenet-1k")` takes the same code path as any
Hub dataset with `image` and `label` columns, and a local folder works too (`imagefolder` or a saved Hub layout).

A run on part of a split (`--max_train_samples`, `--train_val_split`) keeps the positions of its rows in the full
split (`TrainSubset`), so the lists it publishes index the full split.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .sample_ids import DATASET_LABEL_COLUMNS


FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
IMAGE_COLUMNS = ("image", "img", "pixel_values")
# The Hub's copy of the embedded data: same rows in the same order, so published ids apply to it as they are.
FASHION_MNIST_HUB_ID = "zalando-datasets/fashion_mnist"


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_fashion_mnist(root: str | os.PathLike | None = None):
    """Fashion-MNIST as a `datasets.DatasetDict` with `train` (60,000) and `test` (10,000) splits.

    Columns: `image` (uint8 `[28, 28]`) and `label` (`ClassLabel` of 10 classes).

    Args:
        root (`str`, *optional*): folder of the four `*-ubyte.gz` IDX files; defaults to Debian's
            `/usr/share/datasets/fashion-mnist` (or `$FASHION_MNIST_DIR`).
    """
    import datasets

    root = Path(root) if root is not None else FASHION_MNIST_DIR
    files = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    missing = [name for pair in files.values() for name in pair if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {root} (missing {missing}). Install it with "
            "`apt-get install -y dataset-fashion-mnist`, set FASHION_MNIST_DIR, or pass --dataset_name."
        )
    features = datasets.Features(
        {
            "image": datasets.Array2D(shape=(28, 28), dtype="uint8"),
            "label": datasets.ClassLabel(names=FASHION_MNIST_CLASSES),
        }
    )
    splits = {}
    for split, (images, labels) in files.items():
        x = _read_idx(root / images, 16).reshape(-1, 28, 28)
        y = _read_idx(root / labels, 8).astype(np.int64)
        splits[split] = datasets.Dataset.from_dict({"image": x, "label": y}, features=features)
    return datasets.DatasetDict(splits)


class MissingColumnsError(ValueError):
    """`load_image_dataset` could not find the image or the label column: name them."""


def load_image_dataset(
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    *,
    train_dir: str | None = None,
    validation_dir: str | None = None,
    **load_kwargs,
):
    """Loads an image-classification dataset as a `DatasetDict` with `image` and `label` columns.

    Args:
        dataset_name (`str`, *optional*): a Hub id or a local folder; `None` (and no `train_dir`) gives the embedded
            Fashion-MNIST.
        dataset_config (`str`, *optional*): the dataset's configuration.
        image_column, label_column (`str`, *optional*): column names, found among `image`/`img`/`pixel_values` and
            `label`/`labels`/... when not given; renamed to `image` and `label`.
        train_dir, validation_dir (`str`, *optional*): image folders (`imagefolder` layout: one sub-folder per
            class), as the transformers example's `--train_dir` / `--validation_dir`.
        **load_kwargs: passed to `datasets.load_dataset`.

    Example:

    ```python
    >>> from hf_prune.data import load_image_dataset
    >>> data = load_image_dataset()                       # embedded Fashion-MNIST
    >>> len(data["train"]), data["train"].features["label"].num_classes
    (60000, 10)
    ```
    """
    import datasets

    if dataset_name is None and train_dir is None and validation_dir is None:
        return load_fashion_mnist()
    if dataset_name is None:
        data_files = {}
        if train_dir is not None:
            data_files["train"] = os.path.join(train_dir, "**")
        if validation_dir is not None:
            data_files["validation"] = os.path.join(validation_dir, "**")
        ds = datasets.load_dataset("imagefolder", data_files=data_files, **load_kwargs)
    else:  # a Hub id, or a local folder: of class sub-folders of images (`imagefolder`), or of data files
        ds = datasets.load_dataset(dataset_name, dataset_config, **load_kwargs)
    if not isinstance(ds, datasets.DatasetDict):
        ds = datasets.DatasetDict({"train": ds})
    columns = next(iter(ds.values())).column_names
    found = {}
    for what, given, known in (("image", image_column, IMAGE_COLUMNS), ("label", label_column, DATASET_LABEL_COLUMNS)):
        found[what] = given or next((c for c in known if c in columns), None)
        if found[what] not in columns:
            problem = f"no column {given!r}" if given else f"no {what} column (looked for {', '.join(known)})"
            raise MissingColumnsError(
                f"{dataset_name or train_dir or validation_dir} has columns {columns}: {problem}. Name the image and "
                "label columns with `image_column=` and `label_column=` (the recipes' --image_column / "
                "--label_column)."
            )
    image_column, label_column = found["image"], found["label"]
    renames = {c: n for c, n in ((image_column, "image"), (label_column, "label")) if c != n}
    return ds.rename_columns(renames) if renames else ds


def num_classes_of(dataset) -> int:
    feature = dataset.features["label"]
    if hasattr(feature, "num_classes"):
        return int(feature.num_classes)
    return int(np.max(dataset.with_format("numpy")["label"])) + 1


def label_names_of(dataset) -> list[str] | None:
    """The class names of a `ClassLabel` label column, else `None`."""
    return list(getattr(dataset.features["label"], "names", None) or []) or None


@dataclass
class TrainSubset:
    """The rows of the full source split that a run trains on, as positions in that split.

    A record indexes the rows a run trained on (0 ... m-1); `rows[i]` is the position of training row `i` in the full
    split, so a published list can carry full-split ids (`PruneResult.to_source_rows`) and still say which rows the
    run saw.

    Attributes:
        rows (`np.ndarray` of int64): sorted positions in the full split.
        num_source_rows (`int`): rows of the full split.
        description (`str`): how the rows were chosen, for cards (e.g. `"the first 10,000 rows"`).
    """

    rows: np.ndarray
    num_source_rows: int
    description: str

    @property
    def is_full(self) -> bool:
        return self.rows.size == self.num_source_rows

    @classmethod
    def full(cls, num_rows: int) -> TrainSubset:
        return cls(np.arange(num_rows, dtype=np.int64), num_rows, "all rows")

    def to_metadata(self) -> dict:
        """JSON for a record's metadata: the rows as a range where contiguous (no big lists in `record.json`)."""
        out = {"num_rows": int(self.rows.size), "num_source_rows": int(self.num_source_rows), "description": self.description}
        if self.rows.size and int(self.rows[-1]) - int(self.rows[0]) + 1 == self.rows.size:
            out["range"] = [int(self.rows[0]), int(self.rows[-1]) + 1]
        elif not self.is_full:
            out["rows_file"] = self.ROWS_FILE  # next to the record's folder: see `save_rows`
        return out

    ROWS_FILE = "train_subset_rows.npy"

    def save_rows(self, output_dir) -> None:
        """Writes the rows to `output_dir/train_subset_rows.npy` where `to_metadata` cannot hold them as a range
        (`hf-prune select` reads it to publish full-split ids)."""
        if "rows_file" in self.to_metadata():
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            np.save(Path(output_dir) / self.ROWS_FILE, self.rows)


def take_train_subset(
    data, train_split: str = "train", *, max_train_samples: int | None = None, train_val_split: float | None = None,
    eval_split: str | None = None, seed: int = 0,
):
    """The training split to use and the rows of the full split it holds, as the transformers example does it.

    Where the data has no evaluation split and `train_val_split > 0`, a seeded `train_val_split` share of the train
    rows becomes the `validation` split; then `max_train_samples` keeps the first N of the remaining rows.

    Args:
        data (`DatasetDict`): as from `load_image_dataset`.
        train_split (`str`, *optional*, defaults to `"train"`): the split to train on (and prune).
        max_train_samples (`int`, *optional*): keep only the first N training rows.
        train_val_split (`float`, *optional*): share of train held out as `validation` when there is no eval split.
        eval_split (`str`, *optional*): the evaluation split asked for; defaults to `test` or `validation`.
        seed (`int`, *optional*, defaults to 0): seed of the held-out draw.

    Returns:
        `(train, eval_dataset or None, eval_split name or None, TrainSubset)`.
    """
    if train_split not in data:
        raise ValueError(f"The data has no split {train_split!r}; it has {list(data)}. Pass --train_split.")
    full = data[train_split]
    n = len(full)
    rows = np.arange(n, dtype=np.int64)
    how = []
    if eval_split is not None and eval_split not in data:
        raise ValueError(f"The data has no split {eval_split!r}; it has {list(data)}.")
    eval_split = eval_split or next((s for s in ("test", "validation") if s in data), None)
    evaluation = data[eval_split] if eval_split else None
    if evaluation is None and train_val_split:
        if not 0 < train_val_split < 1:
            raise ValueError(f"train_val_split must be in (0, 1); got {train_val_split}.")
        held = np.random.default_rng(seed).permutation(n)[: int(round(train_val_split * n))]
        mask = np.ones(n, dtype=bool)
        mask[held] = False
        evaluation, eval_split = full.select(np.sort(held)), "validation"
        rows = rows[mask]
        how.append(f"{n - held.size:,} rows left after holding out {train_val_split:g} as validation (seed {seed})")
    if max_train_samples is not None and max_train_samples < rows.size:
        rows = rows[:max_train_samples]
        how.append(f"the first {max_train_samples:,}" + (" of them" if how else " rows"))
    train = full if rows.size == n else full.select(rows)
    description = "; ".join(how) if how else "all rows"
    return train, evaluation, eval_split, TrainSubset(rows, n, description)


def infer_image_shape(dataset) -> tuple[int, int]:
    """`(side, channels)` of a dataset's images, read from its first row: `(28, 1)` for Fashion-MNIST."""
    image = dataset.with_format(None)[0]["image"]
    if hasattr(image, "mode"):  # PIL
        channels = {"L": 1, "1": 1, "I": 1, "F": 1, "I;16": 1, "LA": 1}.get(image.mode, 3)
        return max(image.size), channels
    array = np.asarray(image)
    side = max(array.shape[:2])
    return side, (1 if array.ndim == 2 or array.shape[-1] == 1 else 3)


class ImageTransform:
    """Batch transform for `Dataset.set_transform`: `image` -> `pixel_values` (float `[C, H, W]`), `label` kept.

    Small images (`img_size <= 64`) are trained with random crop (padding 1/8) and horizontal flip; large ones with
    random-resized crop and flip; eval resizes (and centre-crops large ones). Grey or colour input is converted to
    `in_chans` channels. `transform=` replaces these with any torchvision-style callable on PIL images (what
    `image_transforms` builds from an image processor or timm's data config).

    Args:
        img_size (`int`): output side.
        in_chans (`int`, *optional*, defaults to 3): 1 (grey) or 3 (RGB).
        train (`bool`, *optional*, defaults to `False`): augment for training.
        mean / std (`tuple`, *optional*): normalisation; defaults to Fashion-MNIST's for one channel and
            ImageNet's for three.
        transform (`Callable`, *optional*): a PIL image -> tensor transform to use instead.
    """

    def __init__(self, img_size: int, in_chans: int = 3, train: bool = False, mean=None, std=None, transform=None):
        from torchvision import transforms as T

        self.in_chans = in_chans
        if transform is not None:
            self.transform = transform
            return
        if mean is None:
            mean, std = ((0.2860,), (0.3530,)) if in_chans == 1 else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        if img_size <= 64:
            ops = [T.Resize(img_size)]
            if train:
                ops += [T.RandomCrop(img_size, padding=max(1, img_size // 8)), T.RandomHorizontalFlip()]
        elif train:
            ops = [T.RandomResizedCrop(img_size), T.RandomHorizontalFlip()]
        else:
            ops = [T.Resize(int(img_size * 256 / 224)), T.CenterCrop(img_size)]
        self.transform = T.Compose([*ops, T.ToTensor(), T.Normalize(mean, std)])

    def _to_pil(self, image):
        from PIL import Image

        if not isinstance(image, Image.Image):
            image = Image.fromarray(np.asarray(image, dtype=np.uint8))
        return image.convert("L" if self.in_chans == 1 else "RGB")

    def __call__(self, batch: dict) -> dict:
        batch = dict(batch)
        batch["pixel_values"] = [self.transform(self._to_pil(img)) for img in batch.pop("image")]
        return batch


def image_transforms(loaded, image_size: int, in_chans: int) -> tuple[ImageTransform, ImageTransform]:
    """Train and eval batch transforms for a model from `hf_prune.models.load_image_classifier`.

    - a transformers checkpoint: its image processor's size, mean and std with the example script's torchvision
      ops (random-resized crop and flip for training; resize and centre crop for eval);
    - a pretrained timm model: `timm.data.create_transform(**resolve_data_config(model=...))`;
    - a model trained from scratch: `ImageTransform` at the data's own size and channels (`image_size`, `in_chans`
      from `infer_image_shape`), so 28x28 grey images stay 28x28 and grey.

    Returns:
        `(train_transform, eval_transform)`, for `Dataset.set_transform`.
    """
    if loaded.kind == "transformers" and loaded.pretrained and loaded.image_processor is not None:
        from torchvision import transforms as T

        side = loaded.image_size or image_size
        normalize = T.Normalize(mean=loaded.data_config["mean"], std=loaded.data_config["std"])
        train = T.Compose([T.RandomResizedCrop(side), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
        evaluation = T.Compose([T.Resize(side), T.CenterCrop(side), T.ToTensor(), normalize])
        return ImageTransform(side, loaded.in_chans, transform=train), ImageTransform(side, loaded.in_chans, transform=evaluation)
    if loaded.kind == "timm_pretrained":
        from timm.data import create_transform

        config = dict(loaded.data_config)
        return (
            ImageTransform(0, loaded.in_chans, transform=create_transform(**config, is_training=True)),
            ImageTransform(0, loaded.in_chans, transform=create_transform(**config, is_training=False)),
        )
    side = loaded.image_size or image_size
    # a transformers config fixes its channels (num_channels); presets and timm models were built for the data's
    chans = loaded.in_chans if loaded.kind == "transformers" else in_chans
    return ImageTransform(side, chans, train=True), ImageTransform(side, chans, train=False)


def image_collator(features: list[dict]) -> dict:
    """Stacks `pixel_values` and `label` into `{"pixel_values", "labels"}` tensors (`sample_id` is added by
    `PruningTrainer` itself)."""
    return {
        "pixel_values": torch.stack([torch.as_tensor(f["pixel_values"]) for f in features]),
        "labels": torch.tensor([int(f["label"]) for f in features], dtype=torch.long),
    }
