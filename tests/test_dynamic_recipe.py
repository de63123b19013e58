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


def _parse(recipe, argv):
    from hf_prune.console import parse_args_with_preset

    return parse_args_with_preset(recipe.build_parser(), argv, recipe.PRESETS)


def test_cpu_preset_sizes_the_comparison_for_a_cpu_and_explicit_flags_win():
    recipe = load_recipe("dynamic_ucb")
    (model_args, data_args, _, args), applied, overridden = _parse(recipe, ["--preset", "cpu"])
    assert (model_args.model_name_or_path, data_args.max_train_samples, args.num_train_epochs) == (
        "tiny_cnn",
        10_000,
        10,
    )
    assert (args.dynamic_policy, args.dynamic_prune_ratio, args.output_dir) == ("ucb", 0.5, "runs/dynamic_ucb_cpu")
    assert applied == recipe.PRESETS["cpu"] and overridden == {}
    (model_args, _, _, args), applied, overridden = _parse(recipe, ["--preset", "cpu", "--num_train_epochs", "4"])
    assert (args.num_train_epochs, model_args.model_name_or_path, overridden) == (
        4,
        "tiny_cnn",
        {"num_train_epochs": 4},
    )
    (model_args, data_args, _, _), _, _ = _parse(recipe, [])
    assert (model_args.model_name_or_path, data_args.max_train_samples) == ("resnet_fmnist", None)
    # 10,000 rows, half kept per epoch: 5,000 / 128 -> 40 steps, 10 epochs
    assert recipe.dynamic_run_steps(10_000, _parse(recipe, ["--preset", "cpu"])[0][3]) == 400


def test_refused_output_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import functools

    from hf_prune.console import run_recipe

    recipe = load_recipe("dynamic_ucb")
    monkeypatch.delenv("HF_PRUNE_TRACEBACK", raising=False)
    (tmp_path / "run" / "full" / "scores").mkdir(parents=True)
    (tmp_path / "run" / "full" / "scores" / "record.json").write_text("{}")
    args = ["--output_dir", str(tmp_path / "run"), "--preset", "cpu", "--max_train_samples", "16"]
    with pytest.raises(SystemExit) as ended:
        run_recipe(functools.partial(recipe.main, args))
    assert ended.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("error: ") and "already holds the records of an earlier run" in line
    assert (tmp_path / "run" / "full" / "scores" / "record.json").read_text() == "{}"
