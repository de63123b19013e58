"""timm classifiers built from config behind the transformers interface: presets, any timm name, image size only
where the architecture takes one, label names, and a forward pass that returns loss and logits."""

import torch

from hf_prune.models import PRESETS, build_timm_classifier


def test_presets_build_and_train_a_step():
    for name in PRESETS:
        model = build_timm_classifier(name, num_labels=10, in_chans=1, id2label={i: str(i) for i in range(10)})
        out = model(pixel_values=torch.randn(2, 1, 28, 28), labels=torch.tensor([1, 2]))
        assert out.logits.shape == (2, 10) and out.loss.dim() == 0
        assert model.config.id2label[3] == "3" and model.config.label2id["3"] == 3
    assert sum(p.numel() for p in build_timm_classifier("swin_fmnist", 10, in_chans=1).parameters()) < 500_000


def test_any_timm_name_and_image_size_only_where_taken():
    vit = build_timm_classifier("vit_tiny_patch16_224", num_labels=3, in_chans=3, img_size=32, patch_size=8)
    assert vit(pixel_values=torch.randn(1, 3, 32, 32)).logits.shape == (1, 3)
    resnet = build_timm_classifier("resnet10t", num_labels=3, in_chans=3, img_size=32)  # no img_size argument
    assert resnet(pixel_values=torch.randn(2, 3, 32, 32)).logits.shape == (2, 3)


def test_load_image_classifier_presets_timm_names_and_local_transformers_checkpoints(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from hf_prune.models import load_image_classifier

    preset = load_image_classifier("tiny_cnn", 10, in_chans=1, image_size=28)
    assert (preset.kind, preset.pretrained, preset.in_chans) == ("preset", False, 1)
    scratch = load_image_classifier("resnet18", 4, in_chans=3, from_scratch=True)
    assert (scratch.kind, scratch.pretrained) == ("timm", False)
    assert scratch.model.eval()(pixel_values=torch.randn(1, 3, 32, 32)).logits.shape == (1, 4)
    # a transformers checkpoint in a local folder: pretrained weights, a new head, the processor's normalisation
    config = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=64, num_labels=7)  # fmt: skip
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.1, 0.2, 0.3]).save_pretrained(tmp_path / "vit")
    loaded = load_image_classifier(str(tmp_path / "vit"), 3, id2label={0: "a", 1: "b", 2: "c"})
    assert (loaded.kind, loaded.pretrained, loaded.image_size) == ("transformers", True, 32)
    assert loaded.model.config.num_labels == 3 and loaded.model.config.id2label[2] == "c"
    assert list(loaded.data_config["mean"]) == [0.1, 0.2, 0.3]


def test_unknown_names_and_unfetchable_weights_fail_clearly():
    import pytest

    from hf_prune.models import WeightsUnavailableError, load_image_classifier

    with pytest.raises(ValueError, match="Unknown model 'no_such_net'.*timm"):
        load_image_classifier("no_such_net", 10)
    with pytest.raises(WeightsUnavailableError, match="resnet18.*--from_scratch"):
        load_image_classifier("resnet18", 10)  # has pretrained weights, which cannot be fetched offline


def test_pretrained_timm_weights_from_the_hub_cache_keep_the_backbone_and_replace_the_head(tmp_path, monkeypatch):
    """Offline, timm finds weights in the Hub cache as `hf_hub_download` left them: a snapshot of `timm/<name>`."""
    import numpy as np
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    from hf_prune.data import image_transforms
    from hf_prune.models import load_image_classifier

    source = timm.create_model("test_resnet")  # stands in for the published test_resnet.r160_in1k weights
    repo = tmp_path / "hub" / "models--timm--test_resnet.r160_in1k"
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, repo / "snapshots" / ("0" * 40) / "model.safetensors")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = load_image_classifier("test_resnet.r160_in1k", 10, in_chans=1, image_size=28)
    assert (loaded.kind, loaded.pretrained, loaded.in_chans, loaded.image_size) == ("timm_pretrained", True, 3, 160)
    weights = loaded.model.timm_model.state_dict()
    assert torch.equal(weights["conv1.0.weight"], source.state_dict()["conv1.0.weight"])
    assert loaded.model.config.num_labels == 10 and weights["fc.weight"].shape[0] == 10
    train_tf, eval_tf = image_transforms(loaded, image_size=28, in_chans=1)  # timm's create_transform at 160 px, RGB
    rows = {"image": [np.full((28, 28), 90, dtype=np.uint8)], "label": [1]}
    assert eval_tf(rows)["pixel_values"][0].shape == (3, 160, 160)
