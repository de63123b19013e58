"""Smoke run of `bench/bench_dynamic.py` at tiny size: pruned runs, their equal-compute baselines and the table."""

import importlib.util
import json

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_dynamic_benchmark_runs_pruned_and_equal_steps_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_dynamic", REPO_ROOT / "bench" / "bench_dynamic.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "dynamic.md"
    bench.main(["--train_samples", "600", "--test_samples", "200", "--epochs", "3", "--ratios", "0.5",
                "--policies", "infobatch", "rs2", "--batch_size", "64", "--output", str(out)])  # fmt: skip
    runs = json.loads(out.with_suffix(".json").read_text())["runs"]
    names = [r["policy"] for r in runs]
    assert names[0] == "full" and {"infobatch", "rs2", "full data, equal steps"} <= set(names)
    full, info = runs[0], next(r for r in runs if r["policy"] == "infobatch")
    # full first epoch, then pruned; the benchmark drops the last partial batch, so every epoch is fitted to whole
    # batches of 64 instead (600 -> 576: each selected sample trained, none dropped by the loader)
    assert info["samples_per_epoch"][0] == 576 and info["samples_per_epoch"][1] < 576
    baseline = next(r for r in runs if r["policy"] == "full data, equal steps" and r["steps"] == info["steps"])
    assert baseline["steps"] < full["steps"]
    assert "Δ vs equal steps" in out.read_text() and "InfoBatch's headline" in out.read_text()
