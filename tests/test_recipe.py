"""`recipes/dyn_unc_swin.py`, shaped like the transformers image-classification example: a smoke run of the default
Swin on a subset (full-split ids, Trainer's metrics files, the window in the record), last-checkpoint detection and
resume, refusing to overwrite a record, checks that fail before training, image folders with mixup/cutmix, `--help`
with the recipe's own defaults, and the push to the loopback Hub."""

import json

import numpy as np
import pytest

from hf_prune import PruneResult, ScoreRecord, load_pruned
from hf_prune.cli import main as cli
from hf_prune.data import load_fashion_mnist
from hf_prune.models import WeightsUnavailableError
from tests.conftest import REPO_ROOT, load_recipe
from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (registers the fixture)


QUICK = ["--per_device_train_batch_size", "16", "--disable_tqdm", "true", "--report_to", "none"]


@pytest.mark.slow
def test_dyn_unc_swin_recipe_smoke(tmp_path, capsys):
    recipe = load_recipe("dyn_unc_swin")
    out = tmp_path / "run"
    summary = recipe.main([
        "--output_dir", str(out), "--max_train_samples", "96", "--max_eval_samples", "64", "--num_train_epochs", "3",
        "--window", "2", "--prune_ratios", "0.25", "0.5", "--retrain", "--per_device_train_batch_size", "32",
        "--disable_tqdm", "true", "--save_strategy", "no",
    ])  # fmt: skip
    record = ScoreRecord.load(out / "scores")
    assert (record.num_samples, record.num_epochs) == (96, 3)
    assert record.metadata["model"]["architecture"] == "swin_tiny_patch4_window7_224"
    assert record.metadata["model_name_or_path"] == "swin_fmnist"
    assert record.metadata["strategy_params"] == {"dyn_unc": {"window": 2}}  # `hf-prune select` reads it
    assert record.metadata["train_subset"]["range"] == [0, 96]
    full_train = load_fashion_mnist()["train"]
    for pct, kept in ((25, 72), (50, 48)):
        result = PruneResult.load(out / "dyn_unc", config=f"prune_{pct}")
        assert result.num_kept == kept and result.method == "dyn_unc" and result.params["window"] == 2
        # published ids index the full 60,000-row split, and the card's own load_pruned works on it
        assert result.num_samples == 60_000 and result.kept_ids.max() < 96
        assert len(load_pruned(full_train, out / "dyn_unc", config=f"prune_{pct}")) == kept
    assert [run["prune_ratio"] for run in summary["runs"]] == [0.0, 0.25, 0.5]
    assert all(0.0 <= run["accuracy"] <= 1.0 for run in summary["runs"])
    assert json.loads((out / "summary.json").read_text())["runs"] == summary["runs"]
    assert {"train_results.json", "eval_results.json", "all_results.json", "model.safetensors"} <= {
        p.name for p in out.iterdir()
    }  # log_metrics / save_metrics / save_model, as the HF example
    assert (out / "data_map.png").read_bytes()[:4] == b"\x89PNG"
    assert np.isfinite(record.signal("p_target")).all()
    # `hf-prune select` on the run uses the recorded window and maps the subset to full-split ids
    capsys.readouterr()
    cli(["select", str(out), "--strategy", "dyn_unc", "--prune-ratio", "0.25", "--out", str(tmp_path / "cli")])
    printed = capsys.readouterr().out
    assert "window=2" in printed and "full-split ids" in printed
    again = PruneResult.load(tmp_path / "cli")
    np.testing.assert_array_equal(again.kept_ids, PruneResult.load(out / "dyn_unc", config="prune_25").kept_ids)


@pytest.mark.slow
def test_resumes_from_the_last_checkpoint_and_refuses_to_overwrite_a_record(tmp_path, caplog):
    recipe = load_recipe("dyn_unc_swin")
    out = tmp_path / "run"
    base = ["--output_dir", str(out), "--model_name_or_path", "tiny_cnn", "--max_train_samples", "40",
            "--max_eval_samples", "16", "--window", "2", *QUICK]  # fmt: skip
    recipe.main([*base, "--num_train_epochs", "3", "--save_strategy", "epoch", "--save_total_limit", "1"])
    assert ScoreRecord.load(out / "scores").num_epochs == 3
    recipe.main([*base, "--num_train_epochs", "4", "--save_strategy", "epoch"])  # picks up checkpoint-9
    record = ScoreRecord.load(out / "scores")
    assert record.num_epochs == 4 and np.isfinite(record.signal("p_target")).all()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4 * 3  # 40 rows / 16 = 3 steps per epoch; epochs 1-3 came from the checkpoint

    plain = tmp_path / "plain"
    args = ["--output_dir", str(plain), "--model_name_or_path", "tiny_cnn", "--max_train_samples", "32",
            "--max_eval_samples", "16", "--window", "2", "--num_train_epochs", "3", "--save_strategy", "no", *QUICK]  # fmt: skip
    recipe.main(args)
    with pytest.raises(ValueError, match="already holds a score record.*--overwrite_output_dir"):
        recipe.main(args)
    recipe.main([*args, "--overwrite_output_dir"])
    assert ScoreRecord.load(plain / "scores").num_epochs == 3


def test_fails_before_training_on_what_would_fail_after_it(tmp_path):
    recipe = load_recipe("dyn_unc_swin")
    out = tmp_path / "run"
    base = ["--output_dir", str(out), "--model_name_or_path", "tiny_cnn", "--max_train_samples", "16", *QUICK]
    with pytest.raises(ValueError, match=r"--window 10 needs more epochs than --num_train_epochs \(2\).*at least 11"):
        recipe.main([*base, "--num_train_epochs", "2", "--window", "10"])
    with pytest.raises(ValueError, match="--prune_ratios are fractions REMOVED"):
        recipe.main([*base, "--num_train_epochs", "3", "--window", "2", "--prune_ratios", "1.5"])
    with pytest.raises(ValueError, match="Unknown strategy|Known strategies"):
        recipe.main([*base, "--num_train_epochs", "3", "--window", "2", "--baselines", "randm"])
    folder = _image_folder(tmp_path / "images", splits=("train",))
    with pytest.raises(ValueError, match="--retrain compares test accuracy.*--train_val_split"):
        recipe.main([*base, "--train_dir", str(folder / "train"), "--train_val_split", "0", "--retrain",
                     "--num_train_epochs", "3", "--window", "2"])  # fmt: skip
    assert not (out / "scores").exists()  # nothing trained


@pytest.mark.parametrize("name", ["resnet18.a1_in1k", "google/vit-base-patch16-224"])
def test_unfetchable_pretrained_weights_give_a_clear_error(tmp_path, name):
    recipe = load_recipe("dyn_unc_swin")
    with pytest.raises(WeightsUnavailableError, match=f"{name}.*HF_HUB_OFFLINE.*--from_scratch"):
        recipe.main(["--output_dir", str(tmp_path / "run"), "--model_name_or_path", name, "--max_train_samples", "8"])


def _image_folder(root, splits=("train", "validation"), size=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for c, label in enumerate(("cat", "dog", "fox")):
            (root / split / label).mkdir(parents=True)
            for i in range(6):
                pixels = np.clip(rng.normal(60 + 60 * c, 20, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")
    return root


@pytest.mark.slow
def test_image_folders_with_mixup_record_from_the_clean_view(tmp_path):
    recipe = load_recipe("dyn_unc_swin")
    folder = _image_folder(tmp_path / "images")
    out = tmp_path / "run"
    summary = recipe.main([
        "--output_dir", str(out), "--train_dir", str(folder / "train"), "--validation_dir", str(folder / "validation"),
        "--model_name_or_path", "tiny_cnn", "--num_train_epochs", "3", "--window", "2", "--mixup", "0.8",
        "--cutmix", "1.0", "--per_device_train_batch_size", "6", "--save_strategy", "no", "--disable_tqdm", "true",
        "--retrain", "--prune_ratios", "0.5",
    ])  # fmt: skip
    record = ScoreRecord.load(out / "scores")
    assert record.metadata["clean_view"] is True and (record.num_samples, record.num_epochs) == (18, 3)
    assert np.isfinite(record.signal("p_target")).all()  # hard labels from the clean view, not mixed soft targets
    assert [r["method"] for r in summary["runs"]] == ["full", "dyn_unc"]
    retrained = ScoreRecord.load(out / "retrain_dyn_unc_50" / "scores")  # recorded from its clean view too
    assert retrained.metadata["clean_view"] is True and np.isfinite(retrained.signal("p_target")).any()
    card = (out / "dyn_unc" / "README.md").read_text()
    assert str(tmp_path) not in card and str(tmp_path) not in (out / "dyn_unc" / "pruning_provenance.json").read_text()
    assert "class_label" in card and "'0': cat" in card and "'2': fox" in card  # a ClassLabel with the folder names
    assert "images` (split `train`" in card or "`train` (split `train`" in card  # the local folder, by name only


def test_help_shows_the_recipes_own_defaults(capsys):
    recipe = load_recipe("dyn_unc_swin")
    with pytest.raises(SystemExit):
        recipe.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--prune_ratios", "--window", "--model_name_or_path", "--train_dir", "--validation_dir",
                 "--train_val_split", "--record_signals", "--retrain", "--mixup", "--cutmix", "--overwrite_output_dir"):  # fmt: skip
        assert flag in text
    assert "(default: runs/dyn_unc_swin)" in text and "(default: 0.001)" in text and "(default: 15)" in text
    assert "(default: 5e-05)" not in text and "(default: swin_fmnist)" in text


@pytest.mark.slow
def test_recipe_pushes_lists_and_models_to_the_hub(hub, tmp_path):  # noqa: F811
    """`--push_to_hub --hub_repo_id`: both ratios in one dataset repo under one card, and each retrained model with
    Trainer's card and a section linking the list; then a consumer loads the list with nothing but datasets."""
    out = tmp_path / "run"
    run_with_hub(hub, f"""
        import runpy, sys
        sys.argv = ["dyn_unc_swin.py", "--output_dir", {str(out)!r}, "--model_name_or_path", "tiny_cnn",
                    "--max_train_samples", "64", "--max_eval_samples", "32", "--num_train_epochs", "3", "--window", "2",
                    "--per_device_train_batch_size", "16", "--save_strategy", "no", "--disable_tqdm", "true",
                    "--retrain", "--push_to_hub", "--hub_repo_id", "testuser/fmnist-dyn-unc"]
        runpy.run_path({str(REPO_ROOT / "recipes" / "dyn_unc_swin.py")!r}, run_name="__main__")
    """, timeout=600)  # fmt: skip
    files = hub.server.files("testuser/fmnist-dyn-unc", "dataset")
    card = files["README.md"].decode()
    assert "prune_25" in card and "prune_50" in card and "dyn_unc" in card and "Made on a subset" in card
    for pct in (25, 50):
        model_files = hub.server.files(f"testuser/fmnist-dyn-unc-model-{pct}", "model")
        model_card = model_files["README.md"].decode()
        assert "testuser/fmnist-dyn-unc" in model_card and "## Trained on a pruned dataset" in model_card
        assert not [f for f in model_files if f.startswith("scores/")]
    proc = run_with_hub(hub, """
        from datasets import load_dataset
        keep = load_dataset("testuser/fmnist-dyn-unc", "prune_25", split="train").with_format("numpy")["index"][:]
        print(len(keep), keep.max() < 64)
    """)  # fmt: skip
    assert proc.stdout.strip().splitlines()[-1] == "48 True"
