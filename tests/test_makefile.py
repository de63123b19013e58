"""The README's two commands install where a newcomer's machine lets them: into the active virtual environment, else
into a project environment the Makefile creates (a Debian/Ubuntu system Python refuses `pip install` outside one).

`make -n` shows what would run for each case; one test runs the real `make install` into a fresh environment made by
the Makefile (the dependencies are borrowed from the running environment through a `.pth` file so that only hf_prune
itself is installed: the full install, PyTorch included, is what CI's own `make test` does on a clean checkout)."""

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


BASE_PYTHON = getattr(sys, "_base_executable", None) or shutil.which("python3")
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args, python=BASE_PYTHON, dry=True, timeout=60):
    env = {k: v for k, v in os.environ.items() if k not in ("CONDA_PREFIX", "VIRTUAL_ENV", "MAKEFLAGS")}
    cmd = ["make", "--no-print-directory", *(["-n"] if dry else []), f"PYTHON={python}", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def outside_a_venv() -> bool:
    probe = "import sys; print(int(sys.prefix != sys.base_prefix))"
    return subprocess.run([BASE_PYTHON, "-c", probe], capture_output=True, text=True).stdout.strip() == "0"


@pytest.mark.skipif(not outside_a_venv(), reason="the base interpreter is itself a virtual environment")
def test_outside_a_venv_it_creates_and_uses_the_project_environment():
    proc = make("test")
    assert proc.returncode == 0, proc.stderr
    assert f"{BASE_PYTHON} -m venv  .venv" in proc.stdout
    assert '.venv/bin/python -m pip install -q -e ".[tests,plots]"' in proc.stdout
    assert ".venv/bin/python -m pytest -q" in proc.stdout
    demo = make("demo").stdout
    assert ".venv/bin/python recipes/dyn_unc_swin.py --preset cpu --output_dir runs/demo" in demo


def test_inside_a_venv_it_installs_there(tmp_path):
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True)
    python = str(tmp_path / "env" / "bin" / "python")
    out = make("test", python=python).stdout
    assert "-m venv" not in out
    assert f'{python} -m pip install -q -e ".[tests,plots]"' in out and f"{python} -m pytest -q" in out
    # VENV= names another location, inside a venv or not
    out = make("install", f"VENV={tmp_path / 'other'}", python=python).stdout
    assert f"-m venv  {tmp_path / 'other'}" in out and f"{tmp_path / 'other'}/bin/python -m pip install" in out


def test_torch_cpu_installs_the_cpu_build_first_and_unknown_values_are_refused(tmp_path):
    out = make("install", "TORCH=cpu", f"VENV={tmp_path / 'env'}").stdout.splitlines()
    first = next(i for i, line in enumerate(out) if "pip install" in line)
    assert "install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu" in out[first]
    assert '-e ".[tests,plots]"' in out[first + 1]
    proc = make("install", "TORCH=gpu")
    assert proc.returncode != 0 and "TORCH=gpu is not known: use TORCH=cpu" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                    reason="make install would first install the embedded data with apt-get")  # fmt: skip
def test_make_install_into_a_fresh_environment(tmp_path):
    env = tmp_path / "env"
    proc = make("venv", f"VENV={env}", dry=False)
    assert proc.returncode == 0 and "Creating the project environment" in proc.stdout, proc.stderr
    # borrow the dependencies (torch, transformers, ...) from this environment: only hf_prune gets installed
    (site_dir,) = env.glob("lib/python*/site-packages")
    (site_dir / "_borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    proc = make("install", f"VENV={env}", dry=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    where = subprocess.run([str(env / "bin" / "python"), "-c", "import hf_prune; print(hf_prune.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert Path(where).resolve() == (REPO_ROOT / "hf_prune" / "__init__.py").resolve()
    assert list(site_dir.glob("hf_prune-*.dist-info")), "hf_prune was not installed into the fresh environment"
    cli = subprocess.run([str(env / "bin" / "hf-prune"), "--help"], capture_output=True, text=True)
    assert cli.returncode == 0 and "strategies" in cli.stdout
