"""Image data for recipes: the embedded Fashion-MNIST, local folders through `datasets`, column detection and
renaming, class counts, and the train / eval transforms and collator."""

import numpy as np
import pytest
import torch

from hf_prune.data import ImageTransform, image_collator, load_fashion_mnist, load_image_dataset, num_classes_of


def test_fashion_mnist_from_the_debian_files_or_a_clear_error(tmp_path):
    try:
        data = load_fashion_mnist()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    assert (len(data["train"]), len(data["test"])) == (60_000, 10_000)
    assert data["train"].features["label"].names[0] == "T-shirt/top" and num_classes_of(data["train"]) == 10
    image = np.asarray(data["train"][0]["image"])
    assert image.shape == (28, 28) and 0 <= image.min() and image.max() <= 255
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def test_local_image_folder_with_other_column_names(tmp_path):
    from PIL import Image

    for label in ("cat", "dog"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), i * 40, dtype=np.uint8)).save(tmp_path / "train" / label / f"{i}.png")
    data = load_image_dataset(str(tmp_path))
    train = data["train"]
    assert set(train.column_names) == {"image", "label"} and len(train) == 6
    assert num_classes_of(train) == 2
    with pytest.raises(ValueError, match=r"columns \['image', 'label'\]: no column 'nope'. Name .* `label_column=`"):
        load_image_dataset(str(tmp_path), label_column="nope")


def test_transforms_grey_and_colour_and_the_collator():
    rows = {"image": [np.full((28, 28), 100, dtype=np.uint8)] * 2, "label": [3, 5]}
    grey = ImageTransform(28, in_chans=1)(rows)
    assert grey["pixel_values"][0].shape == (1, 28, 28) and grey["label"] == [3, 5]
    colour = ImageTransform(32, in_chans=3, train=True)(rows)
    assert colour["pixel_values"][0].shape == (3, 32, 32)
    big = ImageTransform(224, in_chans=3)(rows)
    assert big["pixel_values"][0].shape == (3, 224, 224)
    batch = image_collator([{"pixel_values": grey["pixel_values"][i], "label": grey["label"][i]} for i in range(2)])
    assert batch["pixel_values"].shape == (2, 1, 28, 28) and batch["labels"].dtype == torch.long


def _folder(root, splits, size=10, per_class=4, mode="RGB"):
    from PIL import Image

    for split in splits:
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for i in range(per_class):
                Image.new(mode, (size, size), color=40 * i if mode == "L" else (40 * i, 0, 0)).save(
                    root / split / label / f"{i}.png"
                )
    return root


def test_train_and_validation_dirs_and_the_image_shape(tmp_path):
    from hf_prune.data import infer_image_shape

    root = _folder(tmp_path, ("train", "val"), size=12, mode="L")
    data = load_image_dataset(train_dir=str(root / "train"), validation_dir=str(root / "val"))
    assert sorted(data) == ["train", "validation"] and len(data["train"]) == 8
    assert infer_image_shape(data["train"]) == (12, 1)
    assert infer_image_shape(load_fashion_mnist()["train"].select(range(2))) == (28, 1)


def test_train_subsets_keep_their_full_split_positions(tmp_path):
    from hf_prune.data import take_train_subset

    data = load_image_dataset(train_dir=str(_folder(tmp_path, ("train",), per_class=10)))
    train, val, name, subset = take_train_subset(data, train_val_split=0.25, max_train_samples=10, seed=0)
    assert name == "validation" and len(val) == 5 and len(train) == 10
    assert subset.num_source_rows == 20 and subset.rows.size == 10 and (np.diff(subset.rows) > 0).all()
    assert "holding out 0.25" in subset.description and "first 10" in subset.description
    held = set(range(20)) - set(np.flatnonzero(np.isin(np.arange(20), subset.rows)).tolist())
    assert len(held) == 10  # the 5 held out and the 5 beyond max_train_samples: never trained on
    with pytest.raises(ValueError, match="no split 'dev'"):
        take_train_subset(data, eval_split="dev")
    full = take_train_subset(load_fashion_mnist(), max_train_samples=100)[3]
    assert full.to_metadata()["range"] == [0, 100] and full.description == "the first 100 rows"


def test_transforms_follow_the_model(tmp_path):
    from hf_prune.data import image_transforms
    from hf_prune.models import LoadedModel

    scratch = LoadedModel(model=None, kind="preset", pretrained=False, in_chans=1, image_size=None)
    train_tf, eval_tf = image_transforms(scratch, image_size=12, in_chans=1)
    rows = {"image": [np.full((12, 12), 90, dtype=np.uint8)], "label": [1]}
    assert train_tf(rows)["pixel_values"][0].shape == (1, 12, 12)  # the data's own size and channels
    timm_cfg = {"input_size": (3, 20, 20), "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5),
                "std": (0.5, 0.5, 0.5), "crop_pct": 1.0, "crop_mode": "center"}  # fmt: skip
    pretrained = LoadedModel(None, "timm_pretrained", True, 3, 20, timm_cfg)
    train_tf, eval_tf = image_transforms(pretrained, image_size=12, in_chans=1)
    assert eval_tf(rows)["pixel_values"][0].shape == (3, 20, 20)  # timm's create_transform, grey -> RGB
