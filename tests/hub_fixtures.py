"""Pytest fixtures to run real ``huggingface_hub`` / ``datasets`` code against ``LoopbackHub``.

``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT`` (and the cache locations) at
import time, so client code must run in a fresh interpreter with the environment set:

    from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (registers the fixture)

    def test_push(hub):
        proc = run_with_hub(hub, '''
            from huggingface_hub import HfApi
            print(HfApi().create_repo("testuser/demo", repo_type="dataset"))
        ''')
        assert "testuser/demo" in proc.stdout
        assert hub.server.repo_exists("testuser/demo", "dataset")

``hub`` is function-scoped: every test gets a fresh, empty Hub and fresh caches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest


try:
    from tests.hub_server import LoopbackHub
except ImportError:  # tests/ is on sys.path but the project root is not
    from hub_server import LoopbackHub

HUB_TOKEN = "hf_test_token"
HUB_USER = "testuser"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Variables that would point the clients somewhere else (or offline) if inherited.
_SCRUBBED_PREFIXES = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_")
_SCRUBBED = {"http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}


@dataclass
class HubHandle:
    """What the ``hub`` fixture yields."""

    server: LoopbackHub  # the running server; inspect with .repo_exists(), .files(), .requests
    url: str  # http://127.0.0.1:PORT
    token: str  # a valid write token for `user`
    user: str  # the namespace `token` may write to
    env: dict  # full environment for a client subprocess (os.environ + HF_* pointing here)
    tmp_path: Path  # per-test scratch dir (caches live below it)


def make_hub_env(url: str, token: str | None, tmp_path: Path) -> dict:
    """Environment for a subprocess that talks to the loopback Hub at `url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED}
    env.update(
        HF_ENDPOINT=url,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_DATASETS_CACHE=str(tmp_path / "datasets_cache"),
        HF_HUB_DISABLE_XET="1",  # the loopback Hub speaks the LFS batch protocol, not Xet
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_IMPLICIT_TOKEN="0",
        HF_UPDATE_DOWNLOAD_COUNTS="0",  # datasets would otherwise ping s3.amazonaws.com
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


@pytest.fixture
def hub(tmp_path):
    """A fresh LoopbackHub (token ``hf_test_token`` -> user ``testuser``) for one test."""
    with LoopbackHub(tokens={HUB_TOKEN: HUB_USER}, root=tmp_path / "hub_storage") as server:
        yield HubHandle(server, server.url, HUB_TOKEN, HUB_USER, make_hub_env(server.url, HUB_TOKEN, tmp_path),
                        tmp_path)
        if server.errors:  # a 500 from the fake is a bug in the fake: never let it pass silently
            pytest.fail("LoopbackHub internal errors:\n" + "\n".join(server.errors))


def run_with_hub(hub: HubHandle, python_code: str, *, check: bool = True, env: dict | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python_code` (dedented) in ``sys.executable -c`` with ``hub.env`` (updated with `env`).

    A value of None in `env` removes that variable (e.g. ``env={"HF_TOKEN": None}`` runs anonymously).
    With ``check=True`` (default) a nonzero exit fails the test, showing stdout and stderr.
    The working directory is an empty scratch dir, so a repo id never collides with a local folder.
    """
    full_env = dict(hub.env)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    cwd = hub.tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(python_code)], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"subprocess exited with {proc.returncode}\n--- stdout ---\n{proc.stdout}\n"
                    f"--- stderr ---\n{proc.stderr}", pytrace=False)
    return proc
