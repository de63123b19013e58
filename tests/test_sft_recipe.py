"""`recipes/sft_prune.py` as a user runs it: fine-tune with trl's SFTTrainer while recording, select with S2L, write
the list, retrain on it; and its refusals, one line without a traceback."""

import json
import os
import subprocess
import sys

import pytest

from hf_prune.text_data import FORTUNES_DIR
from tests.conftest import REPO_ROOT


pytest.importorskip("trl")
pytestmark = pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian's fortunes is not installed (make data)")
RECIPE = str(REPO_ROOT / "recipes" / "sft_prune.py")
SMALL = ["--max_train_samples", "96", "--max_eval_samples", "64", "--num_train_epochs", "2", "--report_to", "none",
         "--per_device_train_batch_size", "32", "--learning_rate", "2e-3", "--use_cpu", "--disable_tqdm", "true"]  # fmt: skip


def run(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, RECIPE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_sft_recipe_records_selects_writes_the_list_and_retrains(tmp_path):
    proc = run(*SMALL, "--output_dir", "runs/sft", "--retrain", "--record_signals", "p_target", "loss", "num_tokens",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "runs" / "sft"
    summary = json.loads((out / "summary.json").read_text())
    assert [r["rows"] for r in summary["runs"]] == [96, 48]
    assert "| s2l 50% removed | 48 |" in proc.stdout
    card = (out / "s2l_50" / "README.md").read_text()
    assert "S2L" in card and "prune_50" in card
    from hf_prune import PruneResult, ScoreRecord

    record = ScoreRecord.load(out / "scores")
    assert record.num_samples == 96 and record.signals == ["p_target", "loss", "num_tokens"]
    assert PruneResult.load(out / "s2l_50").num_kept == 48


def test_sft_recipe_refuses_bad_arguments_in_one_line(tmp_path):
    for args, message in ((["--prune_ratio", "1.5"], "--prune_ratio is the fraction REMOVED"),
                          (["--prune_strategy", "s2k"], "s2k")):  # fmt: skip
        proc = run(*SMALL, "--output_dir", "runs/x", *args, cwd=tmp_path)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "runs" / "x" / "scores").exists()
