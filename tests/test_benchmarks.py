"""Smoke runs of benchmark scripts that cannot run at full size here: the GPU overhead benchmark runs its whole code
path on CPU at tiny size (models, resident data, alternating Trainer / PruningTrainer, epoch timing, the table)."""

import importlib.util

import pytest

from tests.conftest import REPO_ROOT


def load_bench(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
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
