"""Every Python block of the README runs as written, in order, in one scratch folder (later blocks read what earlier
ones wrote, e.g. `run/scores`), each in a fresh interpreter, as doctests do.

A block's fence info says how: ```` ```python ```` runs offline; ```` ```python hub ```` runs against the loopback Hub
of `tests/hub_server.py` (as user `alice`, member of `my-org`); ```` ```python skip="reason" ```` cannot run here
(ImageNet, a GPU) and is skipped with that reason. Bash blocks are commands, not run here."""

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.hub_fixtures import make_hub_env
from tests.hub_server import LoopbackHub


FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)


def readme_blocks(path=REPO_ROOT / "README.md"):
    """`(line, info, code)` of every Python block, in order."""
    text = path.read_text()
    out = []
    for match in FENCE.finditer(text):
        info = dict(item.split("=", 1) if "=" in item else (item, True) for item in shlex.split(match.group(1)))
        out.append((text[: match.start()].count("\n") + 1, info, match.group(2)))
    return out


def test_the_readme_has_blocks_of_each_kind():
    kinds = [("skip" in info, "hub" in info) for _, info, _ in readme_blocks()]
    assert (False, False) in kinds and (False, True) in kinds  # offline blocks and loopback-Hub blocks
    for line, info, _ in readme_blocks():
        assert set(info) <= {"hub", "skip"}, f"README.md:{line}: unknown fence info {info}"
        if "skip" in info:
            assert isinstance(info["skip"], str) and info["skip"].strip(), f"README.md:{line}: skip needs a reason"


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs_as_written(tmp_path):
    blocks = readme_blocks()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    skipped = []
    with LoopbackHub(tokens={"hf_readme": "alice"}, orgs={"my-org": ["alice"]}, root=tmp_path / "hub") as server:
        hub_env = make_hub_env(server.url, "hf_readme", tmp_path)
        offline = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
        for line, info, code in blocks:
            if "skip" in info:
                skipped.append(f"README.md:{line}: {info['skip']}")
                continue
            env = {**hub_env, "OMP_NUM_THREADS": "1"} if "hub" in info else offline
            proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            if proc.returncode != 0:
                pytest.fail(f"README.md:{line}: the block failed\n{code}\n--- stderr ---\n{proc.stderr[-4000:]}")
        assert server.repo_exists("my-org/fashion-mnist-dyn-unc-25", "dataset")
        card = server.files("my-org/fmnist-cnn-dyn-unc-25", "model")["README.md"].decode()
        assert "## Trained on a pruned dataset" in card
        assert not server.errors, server.errors
    assert (cwd / "dyn_unc_25" / "README.md").exists() and (cwd / "run" / "scores" / "record.json").exists()
    assert skipped == ["README.md:{}: downloads ImageNet-1K from the Hub".format(
        next(line for line, info, _ in blocks if "skip" in info))]
