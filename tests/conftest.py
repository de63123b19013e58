"""Test-wide settings: no network, caches in a temp dir, small thread counts for the 2-core machines."""

import importlib.util
import os
import sys
import time
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


def _processes_marked(marker: bytes) -> list[int]:
    """The processes whose environment holds `marker` (`NAME=value`): a launcher and everything it started, also
    those that left its session or outlived it (torchrun starts each rank in a session of its own)."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                environ = Path("/proc", entry, "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                pids.append(int(entry))
    return pids


def run_torchrun(script, *args: str, cwd, nproc: int = 2, timeout: int = 600, master_port: bool = True):
    """Runs `script` (a path, or a name in `tests/`) under a real `torchrun --nproc_per_node nproc` on CPU (gloo, one
    thread per process) and returns the finished process; the test asserts on its return code and the files the
    workers wrote.

    Every process of the run (launcher, ranks, loader workers) carries a marker in its environment. If the launcher
    has not returned after `timeout` seconds (a hang), they all get SIGABRT, which `faulthandler` turns into a dump of
    every Python thread's stack on stderr, then SIGKILL, and the test fails with those stacks. Processes left running
    after the launcher returned (they would hold the output pipes) get SIGKILL; none outlives the call."""
    import signal
    import subprocess
    import uuid

    marker = f"HF_PRUNE_TEST_TORCHRUN={uuid.uuid4().hex}"
    path = Path(script) if os.path.isabs(str(script)) else REPO_ROOT / "tests" / script
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONFAULTHANDLER": "1", **dict([marker.split("=")])}  # fmt: skip
    port = ["--master_port", "0"] if master_port else []
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), *port,
           "--rdzv_backend", "c10d", "--rdzv_endpoint", "127.0.0.1:0", str(path), *args]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def signal_all(sig):
        for pid in {proc.pid, *_processes_marked(marker.encode())}:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    deadline = time.monotonic() + timeout
    launcher_done_at = None
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=5)  # reads as it waits: a full pipe never blocks the workers
            break
        except subprocess.TimeoutExpired:
            now = time.monotonic()
            if proc.poll() is not None:  # the launcher has returned; what is left of the run holds the pipes
                launcher_done_at = launcher_done_at or now
                if now - launcher_done_at > 10:
                    signal_all(signal.SIGKILL)
            elif now > deadline:
                signal_all(signal.SIGABRT)  # faulthandler: every thread's stack to stderr
                time.sleep(15)
                signal_all(signal.SIGKILL)
                stdout, stderr = proc.communicate()
                pytest.fail(f"torchrun {path.name} {' '.join(args)} did not finish in {timeout} s (a hang); the stacks "
                            f"of its processes:\n{stderr[-30000:]}\n--- stdout:\n{stdout[-3000:]}")  # fmt: skip
    signal_all(signal.SIGKILL)  # nothing of the run outlives the call
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
