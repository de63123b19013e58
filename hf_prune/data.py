"""Image-classification data for recipes, tests and benchmarks: the embedded Fashion-MNIST, any Hub or local
image dataset with image and label columns, and the train / eval transforms.

The embedded default data is Fashion-MNIST as shipped by Debian's `dataset-fashion-mnist` package (IDX files under
`/usr/share/datasets/fashion-mnist/`). `load_image_dataset("ILSVRC/imagenet-1k")` takes the same code path as any
Hub dataset with `image` and `label` columns, and a local folder works too (`imagefolder` or a saved Hub layout).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from .sample_ids import DATASET_LABEL_COLUMNS


FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
IMAGE_COLUMNS = ("image", "img", "pixel_values")


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


def load_image_dataset(
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    **load_kwargs,
):
    """Loads an image-classification dataset as a `DatasetDict` with `image` and `label` columns.

    `None` gives the embedded Fashion-MNIST; a local folder or a Hub id goes through `datasets.load_dataset`.
    """
    import datasets

    if dataset_name is None:
        return load_fashion_mnist()
    if Path(dataset_name).is_dir() and not any(Path(dataset_name).glob("README.md")):
        ds = datasets.load_dataset("imagefolder", data_dir=dataset_name, **load_kwargs)
    else:
        ds = datasets.load_dataset(dataset_name, dataset_config, **load_kwargs)
    if not isinstance(ds, datasets.DatasetDict):
        ds = datasets.DatasetDict({"train": ds})
    columns = next(iter(ds.values())).column_names
    image_column = image_column or next((c for c in IMAGE_COLUMNS if c in columns), None)
    label_column = label_column or next((c for c in DATASET_LABEL_COLUMNS if c in columns), None)
    if image_column not in columns or label_column not in columns:
        raise ValueError(
            f"{dataset_name} has columns {columns}; could not find the image and label columns. Pass "
            "--image_column and --label_column."
        )
    renames = {c: n for c, n in ((image_column, "image"), (label_column, "label")) if c != n}
    return ds.rename_columns(renames) if renames else ds


def num_classes_of(dataset) -> int:
    feature = dataset.features["label"]
    if hasattr(feature, "num_classes"):
        return int(feature.num_classes)
    return int(np.max(dataset.with_format("numpy")["label"])) + 1


class ImageTransform:
    """Batch transform for `Dataset.set_transform`: `image` -> `pixel_values` (float `[C, H, W]`), `label` kept.

    Small images (`img_size <= 64`) are trained with random crop (padding 1/8) and horizontal flip; large ones with
    random-resized crop and flip; eval resizes (and centre-crops large ones). Grey or colour input is converted to
    `in_chans` channels.

    Args:
        img_size (`int`): output side.
        in_chans (`int`, *optional*, defaults to 3): 1 (grey) or 3 (RGB).
        train (`bool`, *optional*, defaults to `False`): augment for training.
        mean / std (`tuple`, *optional*): normalisation; defaults to Fashion-MNIST's for one channel and
            ImageNet's for three.
    """

    def __init__(self, img_size: int, in_chans: int = 3, train: bool = False, mean=None, std=None):
        from torchvision import transforms as T

        self.in_chans = in_chans
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


def image_collator(features: list[dict]) -> dict:
    """Stacks `pixel_values` and `label` into `{"pixel_values", "labels"}` tensors (`sample_id` is added by
    `PruningTrainer` itself)."""
    return {
        "pixel_values": torch.stack([torch.as_tensor(f["pixel_values"]) for f in features]),
        "labels": torch.tensor([int(f["label"]) for f in features], dtype=torch.long),
    }
