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
    with pytest.raises(ValueError, match="--image_column and --label_column"):
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
