"""Smoke runs of benchmark scripts that cannot run at full size here: the GPU overhead benchmark runs its whole code
path on CPU at tiny size (models, resident data, alternating Trainer / PruningTrainer, epoch timing, the table)."""

import importlib.util
import json
import sys

import pytest

from hf_prune.text_data import FORTUNES_DIR
from tests.conftest import REPO_ROOT


def load_bench(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_overhead_benchmark_runs_on_cpu_at_tiny_size(tmp_path):
    bench = load_bench("bench_gpu_overhead")
    out = tmp_path / "gpu.md"
    rows = bench.main(["--tiny", "--models", "tiny_cnn", "--out", str(out)])
    assert set(rows) == {"tiny_cnn"} and rows["tiny_cnn"]["trainer_ms"] > 0 and rows["tiny_cnn"]["pruning_trainer_ms"] > 0
    text = out.read_text()
    assert "| tiny_cnn (`test_resnet`) |" in text and "Command: `python bench/bench_gpu_overhead.py --tiny`" in text


def test_filter_benchmark_runs_at_small_size(tmp_path):
    bench = load_bench("bench_filter")
    out = tmp_path / "filter.md"
    times = bench.main(["--rows", "3000", "--repeats", "1", "--slow_rows", "300", "--out", str(out)])
    assert set(times) >= {"select", "filter, mask", "filter, np.isin, batch_size=None", "filter, per row"}
    assert "| `select` |" in out.read_text()  # the forms agree on the rows (asserted inside the benchmark)


@pytest.mark.slow
def test_reproduction_harness_smoke_run_resumes_and_reports(tmp_path, monkeypatch):
    reproduce = load_bench("reproduce")
    monkeypatch.setattr(reproduce, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(reproduce, "RUNS", tmp_path / "runs")
    text = reproduce.main(["all", "--preset", "smoke", "--threads", "1"])
    lines = (tmp_path / "results" / "smoke" / "results.jsonl").read_text().splitlines()
    parts = {(r["part"], r["method"]) for r in map(json.loads, lines)}
    assert {("static", "dyn_unc"), ("static", "random"), ("static", "full"), ("dynamic", "infobatch"),
            ("dynamic", "full_same_steps"), ("cross", "dyn_unc")} <= parts  # fmt: skip
    assert "## Static pruning, the papers' budget" in text and "| `dyn_unc` |" in text
    assert (tmp_path / "results" / "smoke" / "REPORT.md").exists()
    for figure in ("static_accuracy.png", "dynamic_tradeoff.png", "data_map.png"):
        assert (tmp_path / "results" / "smoke" / figure).read_bytes()[:4] == b"\x89PNG"
    # a second sitting runs nothing again: every configuration is already in the results file
    reproduce.main(["all", "--preset", "smoke", "--threads", "1"])
    assert len((tmp_path / "results" / "smoke" / "results.jsonl").read_text().splitlines()) == len(lines)


@pytest.mark.slow
@pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian's fortunes is not installed (make data)")
def test_text_evidence_smoke_run_resumes_and_reports(tmp_path, monkeypatch):
    reproduce = load_bench("reproduce_text")
    monkeypatch.setattr(reproduce, "RESULTS", tmp_path / "results")
    reproduce.main(["all", "--preset", "smoke", "--work_dir", str(tmp_path / "runs")])
    lines = (tmp_path / "results" / "smoke" / "results.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert {(r["part"], r["method"]) for r in rows} == {
        ("classify", "full"), ("classify", "dyn_unc"), ("classify", "random"), ("lm", "s2l"), ("lm", "random"),
        ("lm", "infobatch"), ("lm", "full"), ("lm", "full_same_steps")}  # fmt: skip
    by = {r["method"]: r for r in rows if r["part"] == "lm"}
    assert by["full_same_steps"]["steps"] == by["s2l"]["steps"] < by["full"]["steps"]
    assert all(r["perplexity"] > 1 for r in by.values())
    report = (tmp_path / "results" / "smoke" / "REPORT.md").read_text()
    assert "## (a) Category classification" in report and "## (b) Causal-LM fine-tuning" in report
    assert (tmp_path / "results" / "smoke" / "classify.png").read_bytes()[:4] == b"\x89PNG"
    reproduce.main(["all", "--preset", "smoke", "--work_dir", str(tmp_path / "runs")])  # a second sitting: nothing new
    assert len((tmp_path / "results" / "smoke" / "results.jsonl").read_text().splitlines()) == len(lines)
