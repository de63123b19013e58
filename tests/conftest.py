"""Test-wide settings: no network, caches in a temp dir, small thread counts for the 2-core machines."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(autouse=True)
def _isolated_hf_prune_logger():
    """A recipe run in-process (`setup_logging`) gives the `hf_prune` logger a handler of its own and stops it
    propagating, which would hide later tests' log records from `caplog`: each test starts from, and leaves, the
    logger as it was."""
    import logging

    root = logging.getLogger("hf_prune")
    saved = (root.propagate, root.level, list(root.handlers))
    yield
    root.propagate = saved[0]
    root.setLevel(saved[1])
    root.handlers[:] = saved[2]


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "hf_cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))
    yield


def load_recipe(name: str):
    """Imports `recipes/<name>.py` as a module (recipes are scripts, not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def run_torchrun(script: str, *args: str, cwd, nproc: int = 2, timeout: int = 600):
    """Runs `tests/<script>` under a real `torchrun --nproc_per_node nproc` on CPU (gloo, one thread per process) and
    returns the finished process; the test asserts on its return code and the files the workers wrote."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", "0",
           "--rdzv_backend", "c10d", "--rdzv_endpoint", "127.0.0.1:0", str(REPO_ROOT / "tests" / script), *args]  # fmt: skip
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
