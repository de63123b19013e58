"""`hf-prune`: strategies, select (run dir or record folder, params, class balance, CCS, several runs), plot, push,
and errors a newcomer can act on."""

import subprocess
import sys

import numpy as np
import pytest

from hf_prune import PruneResult, ScoreRecord, get_strategy
from hf_prune.cli import build_parser, main
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    p = rng.random((8, 120)).astype(np.float32)
    arrays = {"p_target": p, "correct": (p > 0.5).astype(np.float32), "el2n": rng.random((8, 120)).astype(np.float32)}
    root = tmp_path_factory.mktemp("cli") / "run"
    ScoreRecord.from_arrays(arrays, labels=np.arange(120) % 4, metadata={"model": "tiny"}).save(root / "scores")
    return root


def test_console_entry_point_lists_strategies_without_matplotlib():
    code = (
        "import sys; from hf_prune.cli import main; rc = main(['strategies']); "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; "
        "assert 'transformers' not in sys.modules, 'transformers imported'; "
        "sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("dyn_unc", "forgetting", "el2n", "moderate", "ssp", "ccs", "aum", "random"):
        assert f"  {name} " in proc.stdout


def test_help_explains_the_ratio_and_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["select", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "REMOVED" in out and "keeps 75%" in out and "RUN_DIR" in out and "examples:" in out
    top = build_parser().format_help()
    assert all(cmd in top for cmd in ("strategies", "select", "plot", "push"))
    assert main([]) == 1  # no command: prints help


@pytest.mark.parametrize("where", ["run", "scores"])
def test_select_writes_the_same_result_as_the_api(run_dir, tmp_path, capsys, where):
    target = run_dir if where == "run" else run_dir / "scores"
    out = tmp_path / "out"
    assert main(["select", str(target), "--strategy", "dyn_unc", "--prune-ratio", "0.25", "--param", "window=4",
                 "--class-balanced", "--out", str(out)]) == 0  # fmt: skip
    assert "kept 92 of 120" in capsys.readouterr().out  # floor(0.25 * 30) = 7 removed from each of 4 classes
    saved = PruneResult.load(out)
    expected = get_strategy("dyn_unc", window=4).select(
        ScoreRecord.load(run_dir / "scores"), 0.25, class_balanced=True
    )
    np.testing.assert_array_equal(saved.kept_ids, expected.kept_ids)
    assert saved.params["window"] == 4 and saved.params["class_balanced"] is True and saved.method == "dyn_unc"


def test_select_ccs_mode_json_params_and_several_runs(run_dir, tmp_path):
    out = tmp_path / "ccs"
    main(["select", str(run_dir), "--strategy", "forgetting", "--prune-ratio", "0.5", "--selection", "ccs",
          "--hard-cutoff", "0.1", "--num-strata", "5", "--seed", "2", "--out", str(out)])  # fmt: skip
    saved = PruneResult.load(out)
    assert saved.params["selection"] == "ccs" and saved.params["num_strata"] == 5 and saved.num_kept == 60
    main(["select", str(run_dir), "--strategy", "ccs", "--param", 'score_params={"window": 3}', "--param",
          "score=static_uncertainty", "--prune-ratio", "0.3", "--out", str(tmp_path / "ccs2")])  # fmt: skip
    assert PruneResult.load(tmp_path / "ccs2").params["score_params"]["window"] == 3
    main(["select", str(run_dir), str(run_dir / "scores"), "--strategy", "el2n", "--param", "epoch=1",
          "--prune-ratio", "0.3", "--out", str(tmp_path / "el2n")])  # fmt: skip
    assert PruneResult.load(tmp_path / "el2n").num_kept == 84


def test_select_errors_say_what_to_do(run_dir, tmp_path):
    # deliberately changed (issue 20): a close name is suggested instead of listing every strategy
    with pytest.raises(SystemExit, match=r"unknown strategy 'dynunc'; did you mean 'dyn_unc'\? `hf-prune strategies`"):
        main(["select", str(run_dir), "--strategy", "dynunc", "--prune-ratio", "0.2", "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match=r"record_signals=\[.*'logit_margin'"):
        main(["select", str(run_dir), "--strategy", "aum", "--prune-ratio", "0.2", "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit, match="no score record"):
        main(["select", str(tmp_path), "--strategy", "random", "--prune-ratio", "0.2", "--out", str(tmp_path / "c")])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        main(["select", str(run_dir), "--strategy", "random", "--param", "seed", "--prune-ratio", "0.2",
              "--out", str(tmp_path / "d")])  # fmt: skip


def test_plot_writes_maps(run_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "maps"
    main(["plot", str(run_dir), "--strategy", "dyn_unc", "--strategy", "forgetting", "--param",
          "dyn_unc.window=4", "--prune-ratio", "0.3", "--out", str(out)])  # fmt: skip
    names = sorted(p.name for p in out.iterdir())
    assert names == ["data_map.png", "data_map_dyn_unc.png", "data_map_forgetting.png", "removed_comparison.png"]
    assert all((out / n).read_bytes()[:4] == b"\x89PNG" for n in names)
    # a parameter no chosen strategy takes is an error, never silently ignored; nothing is drawn
    with pytest.raises(SystemExit, match="no strategy here takes parameter 'windw'"):
        main(["plot", str(run_dir), "--strategy", "dyn_unc", "--param", "windw=2", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_push_passes_every_option_to_push_folder_to_hub(tmp_path, monkeypatch, capsys):
    export = pytest.importorskip("hf_prune.export", reason="hf_prune.export (push_folder_to_hub) not available yet")
    calls = []

    def fake_push(folder, repo_id, private=False, token=None, revision=None, commit_message=None, overwrite=False):
        calls.append((folder, repo_id, private, token, revision, commit_message, overwrite))
        return "https://hub/commit/abc"

    monkeypatch.setattr(export, "push_folder_to_hub", fake_push)
    assert main(["push", str(tmp_path), "--repo", "org/ds", "--private", "--token", "t", "--revision", "dev",
                 "--commit-message", "msg"]) == 0  # fmt: skip
    assert calls == [(str(tmp_path), "org/ds", True, "t", "dev", "msg", False)]
    assert "https://hub/commit/abc" in capsys.readouterr().out
    # Replacing a different list on the branch is asked for explicitly: --overwrite, or --force as in `git push`.
    for flag in ("--overwrite", "--force"):
        assert main(["push", str(tmp_path), "--repo", "org/ds", flag]) == 0
        assert calls[-1] == (str(tmp_path), "org/ds", False, None, None, None, True)


def test_version_flag(capsys):
    from hf_prune import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"hf-prune {__version__}"


def test_expected_failures_are_one_line_errors_in_cli_terms(run_dir, tmp_path, monkeypatch):
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no cached login either
    folder = tmp_path / "list"
    main(["select", str(run_dir), "--strategy", "random", "--prune-ratio", "0.2", "--out", str(folder)])
    with pytest.raises(SystemExit) as exc:
        main(["push", str(folder), "--repo", "org/x"])
    message = str(exc.value.code)
    # deliberately changed (issue 20): every error line is `hf-prune: error: ...`
    assert message.startswith("hf-prune: error: No Hugging Face token") and "--token" in message
    assert "`token=`" not in message
    assert "\n" not in message
    with pytest.raises(SystemExit, match=r"^hf-prune: error: .*missing is not a folder.*hf-prune select RUN_DIR"):
        main(["push", str(tmp_path / "missing"), "--repo", "org/x"])
    afile = tmp_path / "afile.txt"
    afile.write_text("keep me")
    for command in (["select", str(run_dir), "--strategy", "random", "--prune-ratio", "0.2"], ["plot", str(run_dir)]):
        with pytest.raises(SystemExit, match="--out .*afile.txt is a file"):
            main([*command, "--out", str(afile)])
    assert afile.read_text() == "keep me"


def test_a_failing_plot_leaves_no_partial_output(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "maps"
    # dyn_unc draws, then aum fails (the record has no logit_margin): nothing may be left behind
    with pytest.raises(SystemExit, match="logit_margin"):
        main(["plot", str(run_dir), "--strategy", "dyn_unc", "--strategy", "aum", "--param", "dyn_unc.window=3",
              "--out", str(out)])  # fmt: skip
    assert not out.exists() and not list(tmp_path.glob(".maps*"))


def test_select_uses_the_parameters_the_run_recorded_and_warns_when_they_differ(tmp_path, capsys):
    rng = np.random.default_rng(1)
    p = rng.random((8, 50)).astype(np.float32)
    root = tmp_path / "run"
    ScoreRecord.from_arrays(
        {"p_target": p}, labels=np.arange(50) % 5,
        metadata={"strategy_params": {"dyn_unc": {"window": 3}}, "train_subset": {
            "num_rows": 50, "num_source_rows": 500, "description": "the first 50 rows", "range": [0, 50]}},
    ).save(root / "scores")  # fmt: skip
    main(["select", str(root), "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--out", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert "using window=3, as the run recorded" in out and "50 of 500 rows" in out
    result = PruneResult.load(tmp_path / "a")
    assert result.params["window"] == 3 and result.num_samples == 500 and result.num_kept == 40
    assert result.kept_ids.max() < 50
    main(["select", str(root), "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--param", "window=5",
          "--out", str(tmp_path / "b")])  # fmt: skip
    err = capsys.readouterr().err
    assert "the run was scored with dyn_unc window=3, but --param window=5" in err
    assert PruneResult.load(tmp_path / "b").params["window"] == 5


@pytest.mark.slow
def test_a_wrong_token_is_one_line_with_the_fix(tmp_path):
    from tests.hub_fixtures import HUB_USER, make_hub_env
    from tests.hub_server import LoopbackHub

    rng = np.random.default_rng(0)
    ScoreRecord.from_arrays({"p_target": rng.random((4, 20))}).save(tmp_path / "run" / "scores")
    with LoopbackHub(tokens={"hf_good": HUB_USER}, root=tmp_path / "hub") as server:
        env = make_hub_env(server.url, "hf_wrong", tmp_path)
        code = (
            "from hf_prune.cli import main; "
            f"main(['select', {str(tmp_path / 'run')!r}, '--strategy', 'random', '--prune-ratio', '0.5', "
            f"'--source', 'org/data', '--out', {str(tmp_path / 'list')!r}]); "
            f"main(['push', {str(tmp_path / 'list')!r}, '--repo', 'testuser/x'])"
        )
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.strip().splitlines() if line]
    assert lines[-1].startswith("hf-prune: error: The Hub at") and "rejected the token (HTTP 401)" in lines[-1]
    assert "--token" in lines[-1] and "Traceback" not in proc.stderr


def test_select_maps_a_non_contiguous_subset_through_the_runs_rows_file(tmp_path, capsys):
    rows = np.array([0, 3, 4, 9, 12, 15, 20, 21, 30, 33])  # e.g. what is left after holding out a validation share
    root = tmp_path / "run"
    ScoreRecord.from_arrays(
        {"p_target": np.random.default_rng(0).random((5, 10))},
        metadata={"train_subset": {"num_rows": 10, "num_source_rows": 40, "description": "held out 0.25",
                                   "rows_file": "train_subset_rows.npy"}},
    ).save(root / "scores")  # fmt: skip
    main(["select", str(root), "--strategy", "random", "--prune-ratio", "0.5", "--out", str(tmp_path / "x")])
    assert "is missing" in capsys.readouterr().err and PruneResult.load(tmp_path / "x").num_samples == 10
    np.save(root / "train_subset_rows.npy", rows)
    main(["select", str(root), "--strategy", "random", "--prune-ratio", "0.5", "--out", str(tmp_path / "y")])
    result = PruneResult.load(tmp_path / "y")
    assert result.num_samples == 40 and set(result.kept_ids) <= set(rows.tolist()) and result.num_kept == 5


def test_plot_gallery_reads_the_runs_rows_of_the_dataset_it_names(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from PIL import Image

    folder = tmp_path / "images"
    for i in range(40):  # an imagefolder of 4 classes; the run trained on its first 20 rows
        (folder / f"class_{i % 4}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), i * 6, dtype=np.uint8)).save(folder / f"class_{i % 4}" / f"{i:03d}.png")
    p = np.random.default_rng(0).random((5, 20)).astype(np.float32)
    ScoreRecord.from_arrays(
        {"p_target": p, "correct": (p > 0.5).astype(np.float32)}, labels=np.arange(20) // 5,
        metadata={"dataset_repo_id": str(folder), "train_subset": {"num_rows": 20, "num_source_rows": 40, "range": [0, 20]}},
    ).save(tmp_path / "run" / "scores")  # fmt: skip
    main(["plot", str(tmp_path / "run"), "--strategy", "dyn_unc", "--param", "window=2", "--prune-ratio", "0.25",
          "--gallery"])  # fmt: skip
    png = tmp_path / "run" / "plots" / "gallery_dyn_unc.png"
    assert str(png) in capsys.readouterr().out and png.read_bytes()[:4] == b"\x89PNG"
    # the dataset must be the one the run was made on: a split of another size is refused, nothing written
    other = tmp_path / "other"
    for name in ("a", "b"):
        (other / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(other / name / "x.png")
    with pytest.raises(SystemExit, match="has 2 rows; the run trained on rows of a split of 40"):
        main(["plot", str(tmp_path / "run"), "--strategy", "dyn_unc", "--param", "window=2", "--prune-ratio", "0.25",
              "--gallery", "--dataset", str(other), "--out", str(tmp_path / "y")])  # fmt: skip
    assert not (tmp_path / "y").exists()
    with pytest.raises(SystemExit, match="--gallery shows what a strategy removes: add --strategy"):
        main(["plot", str(tmp_path / "run"), "--gallery", "--out", str(tmp_path / "z")])


def test_plot_gallery_takes_the_image_and_label_columns_of_another_dataset(tmp_path, capsys):
    """A dataset whose columns are not named image/label: the error names the columns and the flags; with
    --image-column / --label-column the gallery is drawn; the flags without --gallery are refused."""
    pytest.importorskip("matplotlib")
    import datasets
    from PIL import Image

    pictures = [Image.fromarray(np.full((8, 8), i * 6, dtype=np.uint8)) for i in range(20)]
    features = datasets.Features({"picture": datasets.Image(), "kind": datasets.ClassLabel(num_classes=4)})
    folder = tmp_path / "data"
    datasets.Dataset.from_dict({"picture": pictures, "kind": [i % 4 for i in range(20)]}, features=features) \
        .to_parquet(str(folder / "train.parquet"))  # fmt: skip
    p = np.random.default_rng(0).random((5, 20)).astype(np.float32)
    ScoreRecord.from_arrays({"p_target": p, "correct": (p > 0.5).astype(np.float32)}, labels=np.arange(20) % 4) \
        .save(tmp_path / "run" / "scores")  # fmt: skip
    args = ["plot", str(tmp_path / "run"), "--strategy", "dyn_unc", "--param", "window=2", "--prune-ratio", "0.25",
            "--gallery", "--dataset", str(folder)]  # fmt: skip
    with pytest.raises(SystemExit, match=r"columns \['picture', 'kind'\].*Here: --image-column / --label-column"):
        main(args)
    assert not (tmp_path / "run" / "plots").exists()
    main([*args, "--image-column", "picture", "--label-column", "kind"])
    png = tmp_path / "run" / "plots" / "gallery_dyn_unc.png"
    assert str(png) in capsys.readouterr().out and png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit, match="--image-column is read for --gallery only"):
        main(["plot", str(tmp_path / "run"), "--image-column", "picture", "--out", str(tmp_path / "z")])
