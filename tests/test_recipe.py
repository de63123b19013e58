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


# A newcomer is never lost: `--preset cpu`, a warning when the run will take hours, a table that says what it lacks
# without --retrain, and one clear line (no traceback) when the recipe refuses, under python and torchrun alike.

# What `make demo` passed before `--preset cpu` existed; the preset must stay equal to it.
DEMO_FLAGS = ["--model_name_or_path", "tiny_cnn", "--max_train_samples", "10000", "--num_train_epochs", "10",
              "--window", "4", "--learning_rate", "2e-3", "--retrain", "--baselines", "random",
              "--dataloader_num_workers", "1", "--save_strategy", "no"]  # fmt: skip


def _parse(recipe, argv):
    from hf_prune.console import parse_args_with_preset

    return parse_args_with_preset(recipe.build_parser(), argv, recipe.PRESETS)


def _comparable(parsed):
    model_args, data_args, script, args = parsed
    training = {k: v for k, v in args.to_dict().items() if k not in ("output_dir", "logging_dir")}
    return model_args, data_args, {**vars(script), "preset": None}, training


def test_cpu_preset_is_what_make_demo_ran_and_explicit_flags_win():
    recipe = load_recipe("dyn_unc_swin")
    preset, applied, overridden = _parse(recipe, ["--preset", "cpu"])
    spelled_out, no_preset, _ = _parse(recipe, DEMO_FLAGS)
    assert (no_preset, overridden) == ({}, {})
    assert _comparable(preset) == _comparable(spelled_out)  # every field, every TrainingArguments value
    assert applied == recipe.PRESETS["cpu"] and preset[3].output_dir == "runs/dyn_unc_cpu"

    parsed, applied, overridden = _parse(recipe, ["--num_train_epochs", "3", "--preset", "cpu", "--window", "2",
                                                  "--output_dir", "elsewhere"])  # fmt: skip
    model_args, data_args, script, args = parsed
    assert (args.num_train_epochs, script.window, args.output_dir) == (3, 2, "elsewhere")  # given: they win
    assert (model_args.model_name_or_path, data_args.max_train_samples, script.retrain) == ("tiny_cnn", 10000, True)
    assert overridden == {"num_train_epochs": 3, "window": 2, "output_dir": "elsewhere"}
    assert set(applied) == set(recipe.PRESETS["cpu"]) - set(overridden)

    default_model, _, default_script, default_args = _parse(recipe, [])[0]
    assert (default_model.model_name_or_path, default_args.num_train_epochs, default_script.retrain) == (
        "swin_fmnist",
        15,
        False,
    )  # without --preset, the recipe's own defaults
    with pytest.raises(ValueError, match="Unknown --preset 'gpu': choose one of cpu"):
        _parse(recipe, ["--preset", "gpu"])


def test_help_documents_the_preset_with_its_measured_time(capsys):
    recipe = load_recipe("dyn_unc_swin")
    with pytest.raises(SystemExit):
        recipe.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--preset PRESET" in text and "cpu: model_name_or_path=tiny_cnn" in text and "retrain=True" in text
    assert recipe.PRESET_TIMES["cpu"] in text and "min" in recipe.PRESET_TIMES["cpu"]
    assert "--preset cpu" in recipe.__doc__


def test_run_time_estimate_warns_once_when_the_run_takes_hours(caplog):
    from transformers import TrainerState

    from hf_prune.console import RunTimeEstimate, format_duration

    class FakeClock:  # 2 s per step, whatever the machine
        now = 0.0

        def __call__(self):
            self.now += 2.0
            return self.now

    class Args:
        class device:
            type = "cpu"

    def train(estimate, max_steps=7035, steps=12, main=True):
        state = TrainerState(max_steps=max_steps, is_world_process_zero=main)
        estimate.on_train_begin(Args, state, None)
        with caplog.at_level("WARNING", logger="hf_prune"):
            for step in range(1, steps + 1):
                state.global_step = step
                estimate.on_step_end(Args, state, None)

    estimate = RunTimeEstimate(extra_steps=4 * 469, extra_label="4 retraining runs", hint="Use --preset cpu.",
                               clock=FakeClock())  # fmt: skip
    train(estimate)
    # timed from the end of step 1 to the end of step 6: 2 s per step x (7035 - 6 + 1876) steps
    assert estimate.estimate_s == pytest.approx(2.0 * (7035 - 6 + 1876))
    assert estimate.message == (
        "This run will take about 4 h 57 min more on cpu, counting training steps only (2.00 s per step x 8,905 steps, "
        "4 retraining runs included). Use --preset cpu."
    )
    assert [r.getMessage() for r in caplog.records] == [estimate.message]  # once, though training went on

    caplog.clear()
    short = RunTimeEstimate(clock=FakeClock())
    train(short, max_steps=100)
    assert short.estimate_s == pytest.approx(2.0 * 94) and short.message is None and not caplog.records
    threshold = RunTimeEstimate(warn_above_s=60, clock=FakeClock())  # configurable: a tiny run triggers it
    train(threshold, max_steps=100)
    assert "about 3 min more" in threshold.message and len(caplog.records) == 1
    caplog.clear()
    other_rank = RunTimeEstimate(clock=FakeClock())
    train(other_rank, main=False)
    assert other_rank.message is not None and not caplog.records  # only the main process prints
    assert [format_duration(s) for s in (45, 720, 11_400, 187_200)] == ["45 s", "12 min", "3 h 10 min", "2 d 4 h"]


def test_retraining_steps_count_every_retraining_run():
    recipe = load_recipe("dyn_unc_swin")
    _, _, script, args = _parse(recipe, ["--preset", "cpu", "--per_device_train_batch_size", "100"])[0]
    # 10,000 rows: 7,500 kept -> 75 steps and 5,000 -> 50 steps per epoch, 10 epochs, dyn_unc and random
    assert recipe.retraining_steps(10_000, [0.25, 0.5], ["dyn_unc", "random"], args) == 2 * (75 + 50) * 10


@pytest.mark.slow
def test_a_slow_run_is_warned_about_and_a_run_without_retrain_says_what_it_lacks(tmp_path, capsys, monkeypatch):
    recipe = load_recipe("dyn_unc_swin")
    monkeypatch.setattr(recipe, "LONG_RUN_WARNING_S", 0.0)  # any run is "long": the warning, deterministically
    out = tmp_path / "run"
    summary = recipe.main([
        "--output_dir", str(out), "--model_name_or_path", "tiny_cnn", "--max_train_samples", "48",
        "--max_eval_samples", "16", "--num_train_epochs", "3", "--window", "2", "--baselines", "random",
        "--save_strategy", "no", "--per_device_train_batch_size", "8",  "--disable_tqdm", "true",
    ])  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("This run will take about") == 1 and "more on cpu" in err
    assert "x 12 steps)" in err  # 18 steps, timed from step 1 to step 6; no retraining runs to add
    assert "For a first try on a CPU, stop it (Ctrl-C) and run with --preset cpu" in err
    assert [r["method"] for r in summary["runs"]] == ["full"]
    assert "| full | 0% | 48 |" in err
    assert "Only the full-data run was trained (no --retrain)" in err
    assert f"{out / 'dyn_unc'}/ (prune_25, prune_50)" in err and f"{out / 'random'}/ (prune_25, prune_50)" in err
    assert "run the same command with --retrain --overwrite_output_dir" in err  # --save_strategy no: no checkpoint
    assert PruneResult.load(out / "dyn_unc", config="prune_50").num_kept == 24


def test_without_retrain_note_names_the_checkpoint_to_resume_from(tmp_path):
    recipe = load_recipe("dyn_unc_swin")
    (tmp_path / "checkpoint-30").mkdir()
    (tmp_path / "checkpoint-30" / "trainer_state.json").write_text("{}")
    note = recipe.without_retraining_note(str(tmp_path), ["dyn_unc"], [0.25])
    assert f"{tmp_path / 'dyn_unc'}/  (prune_25)" in note
    assert f"run the same command with --retrain: it resumes from {tmp_path / 'checkpoint-30'}" in note


def test_run_recipe_ends_an_expected_error_with_one_line(tmp_path, capsys, monkeypatch):
    import functools

    from hf_prune.console import run_recipe

    recipe = load_recipe("dyn_unc_swin")
    monkeypatch.delenv("HF_PRUNE_TRACEBACK", raising=False)
    base = ["--output_dir", str(tmp_path / "run"), "--model_name_or_path", "tiny_cnn", "--max_train_samples", "16"]
    for flags, message in (
        (
            ["--window", "2", "--num_train_epochs", "3", "--prune_ratios", "1.5"],
            "--prune_ratios are fractions REMOVED",
        ),
        (["--model_name_or_path", "tiny_cn"], "Unknown model 'tiny_cn'"),
        (["--preset", "laptop"], "Unknown --preset 'laptop'"),
        (["--window", "ten"], "argument --window: invalid int value: 'ten'"),  # not the parser's whole usage
        (["--windw", "3"], "Unknown flag or stray value: --windw 3 (--windw: did you mean --window?)"),
    ):
        with pytest.raises(SystemExit) as ended:
            run_recipe(functools.partial(recipe.main, [*base, *flags]))
        assert ended.value.code == 1
        err = capsys.readouterr().err
        assert err.count(message) == 1 and err.strip().splitlines()[-1].startswith(f"error: {message}")
    monkeypatch.setenv("HF_PRUNE_TRACEBACK", "1")
    with pytest.raises(ValueError, match="Unknown model"):
        run_recipe(lambda: recipe.main([*base, "--model_name_or_path", "tiny_cn"]))


def _refused_folder(tmp_path):
    from hf_prune.record import RECORD_FILE

    out = tmp_path / "run"
    (out / "scores").mkdir(parents=True)
    (out / "scores" / RECORD_FILE).write_text("{}")  # an earlier run's record, and no checkpoint to resume from
    return out, ["--output_dir", str(out), "--model_name_or_path", "tiny_cnn", "--max_train_samples", "16",
                 "--num_train_epochs", "3", "--window", "2"]  # fmt: skip


REFUSAL = "already holds a score record and no checkpoint to resume from. Pass --overwrite_output_dir"


@pytest.mark.slow
def test_refused_output_folder_is_one_line_without_traceback_under_python(tmp_path):
    import os
    import subprocess
    import sys

    out, args = _refused_folder(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("HF_PRUNE_TRACEBACK", None)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "recipes" / "dyn_unc_swin.py"), *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count(REFUSAL) == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {out} {REFUSAL}")


@pytest.mark.slow
def test_refused_output_folder_is_one_line_without_traceback_under_torchrun(tmp_path):
    from tests.conftest import run_torchrun

    out, args = _refused_folder(tmp_path)
    proc = run_torchrun("../recipes/dyn_unc_swin.py", *args, cwd=tmp_path, nproc=2, timeout=600)
    assert proc.returncode != 0
    assert proc.stderr.count(REFUSAL) == 1, proc.stderr  # printed by the main process only
    # No process of the recipe shows a traceback: the one traceback left is torchrun's own report of the failed
    # processes (ChildFailedError), which the launcher prints after any failure (`accelerate launch -q` hides it).
    assert 'dyn_unc_swin.py", line' not in proc.stderr and "ValueError" not in proc.stderr
    assert proc.stderr.count("Traceback") == proc.stderr.count("ChildFailedError:") <= 1
    assert "exitcode  : 1" in proc.stderr  # the main process ended with status 1, not a crash
    assert (out / "scores" / "record.json").read_text() == "{}"  # the earlier record untouched
