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
