"""Image classifiers for recipes, tests and benchmarks, the way the transformers image-classification example loads
them: `load_image_classifier(model_name_or_path, ...)` takes

- a **preset** sized for small images, built from config (random weights): `swin_fmnist` (the Swin-T design for
  28x28, 0.3 M parameters), `resnet_fmnist` (timm `resnet10t`), `tiny_cnn` (timm `test_resnet`, fast on a CPU);
- a **transformers checkpoint** (Hub id or local folder with a `config.json`), through
  `AutoModelForImageClassification.from_pretrained` with a new head for the data's labels;
- a **timm name** (`resnet18`, `resnet18.a1_in1k`, `swin_tiny_patch4_window7_224`): its pretrained weights where
  timm has a pretrained tag, else (or with `from_scratch=True`) a model built from config.

timm models come wrapped as `TimmWrapperForImageClassification`, so every model has the transformers interface
(`forward(pixel_values, labels)` returning loss and logits, `save_pretrained`, `push_to_hub`). When weights cannot be
fetched (offline, no such repo), `WeightsUnavailableError` says so and what to do instead; nothing falls back to
random weights silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


__all__ = [
    "PRESETS",
    "LoadedModel",
    "TimmModuleForImageClassification",
    "WeightsUnavailableError",
    "build_timm_classifier",
    "is_plain_timm_module",
    "load_image_classifier",
]

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


class WeightsUnavailableError(OSError):
    """Pretrained weights (or a checkpoint's config) could not be fetched: offline, a typo, or a private repo."""


@dataclass
class LoadedModel:
    """What `load_image_classifier` returns.

    Attributes:
        model (`PreTrainedModel`): the classifier, with `num_labels` outputs and the data's label names.
        kind (`str`): `"preset"`, `"timm"` (from config), `"timm_pretrained"` or `"transformers"`.
        pretrained (`bool`): whether the weights (except the head) are pretrained.
        in_chans (`int`): input channels the model expects.
        image_size (`int` or `None`): input side the model was built or pretrained for.
        data_config (`dict`): normalisation the weights expect (`mean`, `std`, and for timm `input_size`,
            `interpolation`, `crop_pct`); empty for models trained from scratch.
        image_processor (`BaseImageProcessor`, *optional*): a transformers checkpoint's processor.
    """

    model: Any
    kind: str
    pretrained: bool
    in_chans: int
    image_size: int | None
    data_config: dict[str, Any] = field(default_factory=dict)
    image_processor: Any = None


def build_timm_classifier(
    name: str,
    num_labels: int,
    in_chans: int = 3,
    img_size: int | None = None,
    id2label: dict[int, str] | None = None,
    **model_args: Any,
):
    """Builds a randomly initialised timm model wrapped as a transformers image classifier (nothing is downloaded).

    Args:
        name (`str`): a preset (`swin_fmnist`, `resnet_fmnist`, `tiny_cnn`) or any timm architecture name.
        num_labels (`int`): number of classes.
        in_chans (`int`, *optional*, defaults to 3): input channels (1 for Fashion-MNIST).
        img_size (`int`, *optional*): input side, for architectures that take one (ViT, Swin).
        id2label (`dict`, *optional*): class names for the config.
        **model_args: further `timm.create_model` arguments.

    Returns:
        `TimmWrapperForImageClassification` whose `forward(pixel_values, labels)` returns loss and logits.

    Example:

    ```python
    >>> from hf_prune.models import build_timm_classifier
    >>> model = build_timm_classifier("tiny_cnn", num_labels=10, in_chans=1)
    >>> model.config.num_labels
    10
    ```
    """
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    architecture, preset_args = PRESETS.get(name, (name.split(".")[0], {}))
    args = {**preset_args, **model_args, "in_chans": in_chans}
    if img_size is not None and ("img_size" in preset_args or "img_size" in model_args or name not in PRESETS):
        if _takes_img_size(architecture):
            args["img_size"] = img_size
    config = TimmWrapperConfig(architecture=architecture, num_labels=num_labels, model_args=args)
    _set_labels(config, id2label)
    return TimmWrapperForImageClassification(config)


def load_image_classifier(
    model_name_or_path: str,
    num_labels: int,
    *,
    in_chans: int = 3,
    image_size: int | None = None,
    id2label: dict[int, str] | None = None,
    from_scratch: bool = False,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
) -> LoadedModel:
    """Loads an image classifier the way the transformers image-classification example does, plus timm names and
    presets (see the module docstring).

    Args:
        model_name_or_path (`str`):
            A preset, a transformers checkpoint (Hub id or local folder) or a timm name (with or without a
            pretrained tag).
        num_labels (`int`):
            Classes of the data; a pretrained head of another size is replaced.
        in_chans (`int`, *optional*, defaults to 3):
            Channels of the data, for models built from config (pretrained models take the channels they were
            trained on; grey images are then converted to RGB by the transforms).
        image_size (`int`, *optional*):
            Side of the data's images, for models built from config that take one (ViT, Swin).
        id2label (`dict`, *optional*):
            Class names, stored in the config.
        from_scratch (`bool`, *optional*, defaults to `False`):
            Random weights even where pretrained ones exist (the Dyn-Unc paper trains from scratch).
        revision, token, cache_dir (`str`, *optional*):
            Passed to `from_pretrained`.

    Returns:
        `LoadedModel`.

    Raises:
        `WeightsUnavailableError`: pretrained weights or a checkpoint cannot be fetched (e.g. offline); the message
            says how to train from scratch or point at a local folder instead.
        `ValueError`: the name is neither a preset, a checkpoint nor a timm architecture.

    Example:

    ```python
    >>> from hf_prune.models import load_image_classifier
    >>> loaded = load_image_classifier("tiny_cnn", num_labels=10, in_chans=1, image_size=28)
    >>> loaded.kind, loaded.pretrained
    ('preset', False)
    ```
    """
    name = model_name_or_path
    if name in PRESETS:
        model = build_timm_classifier(name, num_labels, in_chans=in_chans, img_size=image_size, id2label=id2label)
        return LoadedModel(model, "preset", False, in_chans, PRESETS[name][1].get("img_size", image_size))
    if "/" in name or os.path.isdir(name):
        return _load_transformers(name, num_labels, id2label, from_scratch, revision, token, cache_dir)
    import timm

    if not timm.is_model(name):
        raise ValueError(
            f"Unknown model {name!r}: not a preset ({', '.join(PRESETS)}), a local folder, a Hub checkpoint id "
            "(org/name) or a timm architecture (`timm.list_models()`)."
        )
    if from_scratch or not timm.list_pretrained(name if "." in name else f"{name}.*"):
        model = build_timm_classifier(name, num_labels, in_chans=in_chans, img_size=image_size, id2label=id2label)
        side = image_size if _takes_img_size(name) else None
        return LoadedModel(model, "timm", False, in_chans, side)
    return _load_timm_pretrained(name, num_labels, id2label)


def _set_labels(config, id2label: dict[int, str] | None) -> None:
    if id2label:
        config.id2label = {int(k): str(v) for k, v in id2label.items()}
        config.label2id = {str(v): int(k) for k, v in id2label.items()}


def _unavailable(name: str, err: Exception, what: str) -> WeightsUnavailableError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    why = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached or has no such repo"
    return WeightsUnavailableError(
        f"Could not fetch {what} for {name!r} ({why}: {type(err).__name__}). Pass a local folder saved with "
        f"`save_pretrained` as --model_name_or_path, run where the Hub is reachable, or add --from_scratch to train "
        f"{name!r} from random weights."
    )


def _load_transformers(name, num_labels, id2label, from_scratch, revision, token, cache_dir) -> LoadedModel:
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    kwargs = {"revision": revision, "token": token, "cache_dir": cache_dir}
    try:
        config = AutoConfig.from_pretrained(name, num_labels=num_labels, **kwargs)
    except OSError as err:
        raise _unavailable(name, err, "the config") from err
    _set_labels(config, id2label)
    if from_scratch:
        model = AutoModelForImageClassification.from_config(config)
    else:
        try:
            model = AutoModelForImageClassification.from_pretrained(
                name, config=config, ignore_mismatched_sizes=True, **kwargs
            )
        except OSError as err:
            raise _unavailable(name, err, "the weights") from err
    processor = None
    try:
        processor = AutoImageProcessor.from_pretrained(name, **kwargs)
    except (OSError, ValueError):
        pass
    data_config: dict[str, Any] = {}
    if processor is not None:
        data_config = {"mean": processor.image_mean, "std": processor.image_std}
    in_chans = int(getattr(config, "num_channels", 3) or 3)
    side = _processor_side(processor) or getattr(config, "image_size", None)
    return LoadedModel(model, "transformers", not from_scratch, in_chans, side, data_config, processor)


def _processor_side(processor) -> int | None:
    size = getattr(processor, "size", None) if processor is not None else None
    if not size:
        return None
    size = dict(size)
    return int(size.get("shortest_edge") or size.get("height") or 0) or None


def _load_timm_pretrained(name: str, num_labels: int, id2label) -> LoadedModel:
    import timm
    from timm.data import resolve_data_config

    try:
        source = timm.create_model(name, pretrained=True, num_classes=num_labels)
    except Exception as err:  # timm raises what huggingface_hub or urllib raise; all mean "no weights here"
        raise _unavailable(name, err, "pretrained weights") from err
    model = build_timm_classifier(name, num_labels, in_chans=3, id2label=id2label)
    model.timm_model.load_state_dict(source.state_dict())
    data_config = resolve_data_config({}, model=source)
    return LoadedModel(model, "timm_pretrained", True, 3, int(data_config["input_size"][-1]), data_config)


def _takes_img_size(architecture: str) -> bool:
    return any(key in architecture for key in ("vit", "swin", "deit", "beit", "eva", "maxvit", "coatnet"))


def is_local_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder holding a transformers `config.json`."""
    return (Path(path) / "config.json").is_file()


def is_plain_timm_module(model) -> bool:
    """Whether `model` is a bare timm module (`timm.create_model(...)`): its `forward` takes an image tensor, not
    `pixel_values` and `labels`, and it has no transformers `config`."""
    module = type(model).__module__ or ""
    return module.startswith("timm.") and not hasattr(model, "config") and hasattr(model, "forward_features")


class TimmModuleForImageClassification(nn.Module):
    """A bare timm classifier with the interface `Trainer` expects of an image classifier: `forward(pixel_values,
    labels=None)` returns an `ImageClassifierOutput` (cross-entropy loss when labels are given, and the logits).
    The timm module is `.model`: training updates the very module that was passed in. `PruningTrainer` wraps a bare
    timm module in it by itself.

    Args:
        model (`torch.nn.Module`): e.g. `timm.create_model("resnet18", num_classes=10)`.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None):
        from transformers.modeling_outputs import ImageClassifierOutput

        logits = self.model(pixel_values)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return ImageClassifierOutput(loss=loss, logits=logits)
