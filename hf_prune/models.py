"""timm image classifiers behind the transformers interface (`TimmWrapperForImageClassification`), built from config.

`build_timm_classifier("swin_fmnist", num_labels=10, in_chans=1)` gives the small Swin sized for 28x28 images;
any other name goes to `timm.create_model` as is, e.g. `"swin_tiny_patch4_window7_224"` for ImageNet.
Nothing is downloaded: weights start random (`pretrained=False`), as in the Dyn-Unc paper's runs.
"""

from __future__ import annotations

from typing import Any


# Named presets: (timm architecture, model_args). The Swin preset keeps the Swin-T design (patch merging, shifted
# windows of 7) but fits 28x28 inputs: patch 2 gives a 14x14 grid, two stages of 2 blocks, 0.3 M parameters.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "swin_fmnist": (
        "swin_tiny_patch4_window7_224",
        {"img_size": 28, "patch_size": 2, "window_size": 7, "embed_dim": 48, "depths": (2, 2), "num_heads": (3, 6)},
    ),
    "resnet_fmnist": ("resnet10t", {}),
    "tiny_cnn": ("test_resnet", {}),
}


def build_timm_classifier(
    name: str,
    num_labels: int,
    in_chans: int = 3,
    img_size: int | None = None,
    id2label: dict[int, str] | None = None,
    **model_args: Any,
):
    """Builds a randomly initialised timm model wrapped as a transformers image classifier.

    Args:
        name (`str`): a preset (`swin_fmnist`, `resnet_fmnist`, `tiny_cnn`) or any timm architecture name.
        num_labels (`int`): number of classes.
        in_chans (`int`, *optional*, defaults to 3): input channels (1 for Fashion-MNIST).
        img_size (`int`, *optional*): input side, for architectures that take one (ViT, Swin).
        id2label (`dict`, *optional*): class names for the config.
        **model_args: further `timm.create_model` arguments.

    Returns:
        `TimmWrapperForImageClassification` whose `forward(pixel_values, labels)` returns loss and logits.
    """
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    architecture, preset_args = PRESETS.get(name, (name, {}))
    args = {**preset_args, **model_args, "in_chans": in_chans}
    if img_size is not None and ("img_size" in preset_args or "img_size" in model_args or name not in PRESETS):
        if _takes_img_size(architecture):
            args["img_size"] = img_size
    config = TimmWrapperConfig(architecture=architecture, num_labels=num_labels, model_args=args)
    if id2label:
        config.id2label = {int(k): v for k, v in id2label.items()}
        config.label2id = {v: int(k) for k, v in id2label.items()}
    return TimmWrapperForImageClassification(config)


def _takes_img_size(architecture: str) -> bool:
    return any(key in architecture for key in ("vit", "swin", "deit", "beit", "eva", "maxvit", "coatnet"))
