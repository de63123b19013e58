"""The feature pass (default penultimate layer of timm and transformers models, named layers, a separate feature
model, ids kept through a PruningTrainer, a real 2-process torchrun) and mini-batch k-means."""

import textwrap

import numpy as np
import pytest
import torch

from hf_prune import PruningArguments, PruningTrainer, ScoreRecord, get_strategy
from hf_prune.data import ImageTransform
from hf_prune.features import FeatureStore, extract_features, make_feature_fn, save_features
from tests.conftest import run_torchrun
from tests.trainer_utils import collate, small_image_dataset, timm_model, transformers_model


def pixels(n=5, seed=0):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_timm_default_is_pre_logits():
    model = timm_model().eval()
    x = pixels()
    feats = make_feature_fn(model)({"pixel_values": x})
    tm = model.timm_model
    expected = tm.forward_head(tm.forward_features(x), pre_logits=True)
    torch.testing.assert_close(feats, expected)
    assert feats.shape == (5, tm.num_features)
    # the classifier applied to them gives the model's logits: they really are the penultimate layer
    torch.testing.assert_close(tm.get_classifier()(feats), model(pixel_values=x).logits, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_transformers_default_is_classifier_input():
    model = transformers_model().eval()
    x = pixels()
    feats = make_feature_fn(model)({"pixel_values": x})
    torch.testing.assert_close(feats, model.vit(pixel_values=x).last_hidden_state[:, 0])  # ViT's [CLS] after LN
    torch.testing.assert_close(model.classifier(feats), model(pixel_values=x).logits)


@torch.no_grad()
def test_headless_transformers_model_uses_pooled_output():
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(image_size=28, patch_size=7, num_channels=1, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32)  # fmt: skip
    model = ViTModel(config).eval()
    x = pixels()
    torch.testing.assert_close(make_feature_fn(model)({"pixel_values": x}), model(pixel_values=x).pooler_output)
    no_pool = ViTModel(config, add_pooling_layer=False).eval()
    torch.testing.assert_close(
        make_feature_fn(no_pool)({"pixel_values": x}), no_pool(pixel_values=x).last_hidden_state.mean(1)
    )


@torch.no_grad()
def test_named_layer_and_pooling():
    model = transformers_model().eval()
    x = pixels()
    out = model.vit.embeddings(x)  # [B, T, H]
    torch.testing.assert_close(make_feature_fn(model, "vit.embeddings")({"pixel_values": x}), out.mean(1))
    torch.testing.assert_close(make_feature_fn(model, "vit.embeddings", pool="cls")({"pixel_values": x}), out[:, 0])
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3 * 26 * 26, 4)
    )
    maps = conv[1](conv[0](x))
    torch.testing.assert_close(make_feature_fn(conv, "1")({"pixel_values": x}), maps.mean(dim=(2, 3)))
    torch.testing.assert_close(make_feature_fn(conv)({"pixel_values": x}), maps.flatten(1))  # input of last Linear
    with pytest.raises(ValueError, match="No layer 'vit.embedings'"):
        make_feature_fn(model, "vit.embedings")


def make_trainer(tmp_path, n=37, eval_batch=8):
    ds = small_image_dataset(n)
    args = PruningArguments(
        output_dir=str(tmp_path / "run"), per_device_eval_batch_size=eval_batch, report_to=[],
        remove_unused_columns=False, disable_tqdm=True, use_cpu=True, save_strategy="no",
    )  # fmt: skip
    return PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate), ds


@torch.no_grad()
def direct_features(model, ds, ids, fn=None):
    fn = fn or make_feature_fn(model)
    model.eval()
    x = torch.stack([torch.as_tensor(ds[int(i)]["pixel_values"]) for i in ids])
    return fn({"pixel_values": x}).numpy()


def test_extract_features_through_the_trainer_keys_rows_by_sample_id(tmp_path):
    trainer, ds = make_trainer(tmp_path)
    store = extract_features(trainer)
    assert store.path == tmp_path / "run" / "features"
    assert isinstance(store.features, np.memmap) and store.features.dtype == np.float16
    assert store.features.shape == (37, trainer.model.timm_model.num_features) and store.seen.all()
    expected = direct_features(trainer.model, ds, range(37))
    np.testing.assert_allclose(store.features, expected.astype(np.float16), rtol=2e-3, atol=2e-3)
    assert store.metadata["layer"] == "penultimate" and store.metadata["num_missing"] == 0

    # a shuffled, pruned view that carries the original ids: rows land at those ids, the rest stay unseen
    view = ds.add_column("sample_id", np.arange(37)).select([30, 2, 17, 5, 11])
    view.set_transform(ImageTransform(28, in_chans=1, train=False))
    store = extract_features(trainer, dataset=view, output_dir=tmp_path / "view_feats", num_samples=37)
    assert np.flatnonzero(store.seen).tolist() == [2, 5, 11, 17, 30]
    np.testing.assert_allclose(
        store.features[[2, 5, 11, 17, 30]], expected[[2, 5, 11, 17, 30]].astype(np.float16), rtol=2e-3, atol=2e-3
    )
    assert not store.features[0].any()


def test_extract_features_from_a_separate_feature_model_and_use_them(tmp_path):
    trainer, ds = make_trainer(tmp_path, n=24)
    other = transformers_model(seed=3)
    store = extract_features(trainer, feature_model=other)
    expected = direct_features(other, ds, range(24))
    np.testing.assert_allclose(store.features, expected.astype(np.float16), rtol=2e-3, atol=2e-3)
    assert store.metadata["feature_model"] is True and store.metadata["model"] == "ViTForImageClassification"
    labels = np.array([ds[i]["label"] for i in range(24)])
    record = ScoreRecord.from_arrays({"p_target": np.random.rand(3, 24)}, labels=labels)
    record = ScoreRecord.load(record.save(tmp_path / "run" / "scores"))
    result = get_strategy("moderate").select(record, 0.25)  # finds run/features next to run/scores
    assert result.provenance["features"]["path"] == str(tmp_path / "run" / "features")


WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from hf_prune import PruningArguments, PruningTrainer
    from hf_prune.features import extract_features
    from tests.trainer_utils import collate, small_image_dataset, timm_model

    torch.set_num_threads(1)
    out = sys.argv[1]
    ds = small_image_dataset(23)
    args = PruningArguments(output_dir=out, per_device_eval_batch_size=4, report_to=[], remove_unused_columns=False,
                            disable_tqdm=True, use_cpu=True, save_strategy="no")
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    store = extract_features(trainer)
    assert trainer.accelerator.num_processes == 2
    trainer.accelerator.end_training()
    """
)


@pytest.mark.slow
def test_two_process_feature_pass_is_complete_and_deduplicated(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    proc = run_torchrun(worker, str(tmp_path / "run"), cwd=tmp_path, timeout=300, master_port=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    store = FeatureStore.load(tmp_path / "run" / "features")
    assert store.seen.all() and store.num_samples == 23  # 23 = 2 x 4 x 2 + 7: uneven shards, padding duplicates
    expected = direct_features(timm_model(), small_image_dataset(23), range(23))
    np.testing.assert_allclose(store.features, expected.astype(np.float16), rtol=2e-3, atol=2e-3)


def test_save_features_streams_to_float16_and_checks_shape(tmp_path):
    feats = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
    store = save_features(tmp_path / "f", feats, chunk_size=128, metadata={"layer": "x"})
    np.testing.assert_array_equal(store.features, feats.astype(np.float16))
    assert store.describe()["layer"] == "x" and store.describe()["dtype"] == "float16"
    with pytest.raises(ValueError, match="2-D"):
        FeatureStore(np.zeros(5))
    with pytest.raises(FileNotFoundError, match="extract_features"):
        FeatureStore.load(tmp_path / "nothing")
