"""Smoke run of `recipes/dynamic_ucb.py` on a small subset: full vs UCB, the selection histogram, the static list."""

import json

import numpy as np
import pytest

from hf_prune import PruneResult, ScoreRecord
from tests.conftest import load_recipe


@pytest.mark.slow
def test_dynamic_ucb_recipe_smoke(tmp_path):
    recipe = load_recipe("dynamic_ucb")
    out = tmp_path / "run"
    summary = recipe.main([
        "--output_dir", str(out), "--max_train_samples", "101", "--max_eval_samples", "64", "--num_train_epochs", "3",
        "--model_name_or_path", "tiny_cnn", "--per_device_train_batch_size", "16", "--pruning_period", "1", "--disable_tqdm", "true",
    ])  # fmt: skip
    full, ucb = summary["runs"]
    assert (full["policy"], ucb["policy"], ucb["prune_ratio"]) == ("full", "ucb", 0.5)
    # 101 -> 7 batches of 16; 51 kept (one process, no drop_last: the policy's own count) -> 4 batches
    assert ucb["scoring_s"] > 0 and all(r["wall_s"] > 0 and 0 <= r["accuracy"] <= 1 for r in summary["runs"])
    record = ScoreRecord.load(out / "dynamic" / "scores")
    assert record.metadata["dynamic"]["policy"] == "ucb" and record.metadata["dynamic"]["scoring"] == "pass"
    assert full["steps"] == 3 * 7 and ucb["steps"] == 3 * 4
    assert (np.asarray(record.signal("selected")).sum(1) == 51).all()
    assert (out / "selection_histogram.png").read_bytes()[:4] == b"\x89PNG"
    static = PruneResult.load(out / "most_selected_50")
    assert static.num_kept == 51 and static.method == "dynamic_selection_frequency"
    assert json.loads((out / "summary.json").read_text())["runs"] == summary["runs"]
    with pytest.raises(ValueError, match="already holds the records.*--overwrite_output_dir"):
        recipe.main(["--output_dir", str(out), "--max_train_samples", "101", "--model_name_or_path", "tiny_cnn"])
