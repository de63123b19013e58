"""Small real data and models for trainer tests: Fashion-MNIST rows (or load_digits when the Debian package is absent)
and timm / transformers classifiers built from config."""

from __future__ import annotations

import numpy as np

from hf_prune.data import ImageTransform, image_collator, load_fashion_mnist


def small_image_dataset(n: int = 67, train_transform: bool = False):
    """`n` real 28x28 grey images with labels, with the transform set; falls back to sklearn digits (upscaled)."""
    import datasets

    try:
        ds = load_fashion_mnist()["train"].select(range(n))
    except FileNotFoundError:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.kron(digits.images[:n] * 16, np.ones((4, 4)))[:, 2:30, 2:30].clip(0, 255).astype(np.uint8)
        ds = datasets.Dataset.from_dict({"image": list(images), "label": digits.target[:n].tolist()})
    ds.set_transform(ImageTransform(28, in_chans=1, train=train_transform))
    return ds


def timm_model(seed: int = 0):
    import torch

    from hf_prune.models import build_timm_classifier

    torch.manual_seed(seed)
    return build_timm_classifier("tiny_cnn", num_labels=10, in_chans=1)


def transformers_model(seed: int = 0):
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=28, patch_size=7, num_channels=1, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=10,
    )  # fmt: skip
    return ViTForImageClassification(config)


collate = image_collator
