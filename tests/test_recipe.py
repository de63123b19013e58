"""Smoke run of `recipes/dyn_unc_swin.py` on a small subset, with its default small Swin, end to end."""

import json

import numpy as np
import pytest

from hf_prune import PruneResult, ScoreRecord
from tests.conftest import REPO_ROOT, load_recipe
from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (registers the fixture)


@pytest.mark.slow
def test_dyn_unc_swin_recipe_smoke(tmp_path):
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
    for pct, kept in ((25, 72), (50, 48)):
        result = PruneResult.load(out / f"dyn_unc_{pct}")
        assert result.num_kept == kept and result.method == "dyn_unc" and result.params["window"] == 2
    assert [run["prune_ratio"] for run in summary["runs"]] == [0.0, 0.25, 0.5]
    assert all(0.0 <= run["accuracy"] <= 1.0 for run in summary["runs"])
    assert json.loads((out / "summary.json").read_text())["runs"] == summary["runs"]
    assert np.isfinite(record.signal("p_target")).all()


def test_recipe_help_lists_pruning_options(capsys):
    recipe = load_recipe("dyn_unc_swin")
    with pytest.raises(SystemExit):
        recipe.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--prune_ratios", "--window", "--dataset_name", "--record_signals", "--retrain"):
        assert flag in text


@pytest.mark.slow
def test_recipe_pushes_lists_and_models_to_the_hub(hub, tmp_path):  # noqa: F811
    """`--push_to_hub --hub_repo_id`: both ratios in one dataset repo under one card, and each retrained model with a
    card linking the list; then a consumer loads the list with nothing but datasets."""
    out = tmp_path / "run"
    run_with_hub(hub, f"""
        import runpy, sys
        sys.argv = ["dyn_unc_swin.py", "--output_dir", {str(out)!r}, "--model", "tiny_cnn",
                    "--max_train_samples", "64", "--max_eval_samples", "32", "--num_train_epochs", "3", "--window", "2",
                    "--per_device_train_batch_size", "16", "--save_strategy", "no", "--disable_tqdm", "true",
                    "--retrain", "--push_to_hub", "--hub_repo_id", "testuser/fmnist-dyn-unc"]
        runpy.run_path({str(REPO_ROOT / "recipes" / "dyn_unc_swin.py")!r}, run_name="__main__")
    """, timeout=600)  # fmt: skip
    files = hub.server.files("testuser/fmnist-dyn-unc", "dataset")
    card = files["README.md"].decode()
    assert "prune_25" in card and "prune_50" in card and "dyn_unc" in card
    for pct in (25, 50):
        assert hub.server.repo_exists(f"testuser/fmnist-dyn-unc-model-{pct}", "model")
        model_card = hub.server.files(f"testuser/fmnist-dyn-unc-model-{pct}", "model")["README.md"].decode()
        assert "testuser/fmnist-dyn-unc" in model_card
    proc = run_with_hub(hub, """
        from datasets import load_dataset
        keep = load_dataset("testuser/fmnist-dyn-unc", "prune_25", split="train").with_format("numpy")["index"][:]
        print(len(keep))
    """)  # fmt: skip
    assert proc.stdout.strip().splitlines()[-1] == "48"
