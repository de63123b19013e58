"""Issue 17, case 5: resume only from complete checkpoints. Before, `SIGTERM` (or a full disk) during Trainer's
checkpoint save left a half-written `checkpoint-N` that `resume_from_checkpoint=True` picked, failing with
`FileNotFoundError: .../trainer_state.json`, and a full disk surfaced as torch's `unexpected pos` or
`basic_ios::clear`. Now `RunRecord.resolve_checkpoint(True)` skips incomplete checkpoints (and says which and why),
and a failed save is one `OSError` naming the checkpoint (`checkpoint_save_errors`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_prune import PruningArguments, PruningTrainer, ScoreRecord
from hf_prune.run_record import RunRecord, checkpoint_problem, checkpoint_save_errors
from tests import trainer_utils
from tests.conftest import REPO_ROOT
from tests.fault_worker import fill_disk
from tests.trainer_utils import collate, small_image_dataset, timm_model


@contextlib.contextmanager
def one_thread():
    """`tests/fault_worker.py` trains with one thread; runs compared with it do too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _no_fashion_mnist(*args, **kwargs):
    raise FileNotFoundError("the tests of this module train on sklearn's digits (fast to build)")


@functools.cache
def dataset(n: int):
    """`small_image_dataset(n)` from sklearn's digits, as the child processes build it (building Fashion-MNIST's
    70,000 rows would be most of each run's time here)."""
    real = trainer_utils.load_fashion_mnist
    trainer_utils.load_fashion_mnist = _no_fashion_mnist
    try:
        return small_image_dataset(n)
    finally:
        trainer_utils.load_fashion_mnist = real


def train(output_dir, resume=None, callbacks=(), n=40, epochs=3, save_steps=3, save_total_limit=None):
    """The run of `tests/fault_worker.py` (same arguments), in this process; returns the record's p_target."""
    args = PruningArguments(
        output_dir=str(output_dir), num_train_epochs=epochs, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, disable_tqdm=True, seed=0, use_cpu=True, save_strategy="steps",
        save_steps=save_steps, save_total_limit=save_total_limit,
    )  # fmt: skip
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=dataset(n), data_collator=collate,
                             callbacks=list(callbacks))  # fmt: skip
    with one_thread():
        trainer.train(resume_from_checkpoint=resume)
    return np.array(trainer.score_record.signal("p_target"))


def resolver(output_dir) -> RunRecord:
    args = SimpleNamespace(output_dir=str(output_dir), score_record_dir="scores")
    accelerator = SimpleNamespace(is_main_process=True, num_processes=1)
    return RunRecord(args, accelerator, recorder=None, num_samples=24, signals=["p_target"], train_dataset=None)


def rewrite(file: Path, data: bytes) -> None:
    """Replaces a file's content without touching the inode it may share with the live record (hard links)."""
    file.unlink()
    file.write_bytes(data)


# ---------------------------------------------------------------------------------------------------- which checkpoint


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete run of 24 rows, 3 epochs of 3 steps, checkpoints at steps 2, 4, 6, 8 and 9 (the end); its record."""
    root = tmp_path_factory.mktemp("finished")
    p_target = train(root / "run", n=24, save_steps=2)
    return root / "run", p_target


DAMAGES = {
    "no-trainer-state": "no trainer_state.json (its save did not finish",
    "truncated-trainer-state": "trainer_state.json is unreadable or incomplete",
    "no-weights": "no model weights",
    "truncated-weights": "model.safetensors is truncated",
    "truncated-optimizer": "optimizer.pt is truncated or damaged",
    "truncated-rng-state": "rng_state.pth is truncated or damaged",
    "record-edited": "its score record fails verification (",
    "record-truncated": "its score record fails verification (",
    "rank-rows-missing": "the rows of the epoch in progress of ['rank0.pt'] are missing",
}


def damage(checkpoint: Path, kind: str) -> None:
    if kind == "no-trainer-state":
        (checkpoint / "trainer_state.json").unlink()
    elif kind == "truncated-trainer-state":
        rewrite(checkpoint / "trainer_state.json", (checkpoint / "trainer_state.json").read_bytes()[:50])
    elif kind == "no-weights":
        (checkpoint / "model.safetensors").unlink()
    elif kind == "truncated-weights":
        rewrite(checkpoint / "model.safetensors", (checkpoint / "model.safetensors").read_bytes()[:100_000])
    elif kind == "truncated-optimizer":
        rewrite(checkpoint / "optimizer.pt", (checkpoint / "optimizer.pt").read_bytes()[:-500])
    elif kind == "truncated-rng-state":
        rewrite(checkpoint / "rng_state.pth", (checkpoint / "rng_state.pth").read_bytes()[:1000])
    elif kind == "record-edited":
        file = checkpoint / "score_record" / "p_target.npy"
        data = bytearray(file.read_bytes())
        data[128 + 4 * 30] ^= 0x10  # a value of epoch 1
        rewrite(file, bytes(data))
    elif kind == "record-truncated":
        file = checkpoint / "score_record" / "loss.npy"
        rewrite(file, file.read_bytes()[:150])
    elif kind == "rank-rows-missing":
        (checkpoint / "score_record_partial" / "rank0.pt").unlink()


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_resume_true_skips_an_incomplete_checkpoint_and_says_why(finished, tmp_path, kind, caplog):
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)  # copies: no hard link shared with the fixture
    damage(run / "checkpoint-9", kind)
    assert DAMAGES[kind] in checkpoint_problem(run / "checkpoint-9")
    assert checkpoint_problem(run / "checkpoint-8") is None
    with caplog.at_level(logging.WARNING, logger="hf_prune.run_record"):
        chosen = resolver(run).resolve_checkpoint(True)
    assert chosen == str(run / "checkpoint-8")
    assert f"Not resuming from checkpoint-9: {DAMAGES[kind]}" in caplog.text
    assert f"Resuming from {run / 'checkpoint-8'} instead" in caplog.text


def test_every_checkpoint_incomplete_and_an_explicit_incomplete_path_are_refused(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    damage(run / "checkpoint-4", "no-trainer-state")
    with pytest.raises(ValueError, match=r"Can't resume from .*checkpoint-4: no trainer_state\.json .*Nothing was "
                                         r"changed.*resume_from_checkpoint=True"):  # fmt: skip
        resolver(run).resolve_checkpoint(str(run / "checkpoint-4"))
    for step in (2, 6, 8, 9):
        damage(run / f"checkpoint-{step}", "no-weights")
    with pytest.raises(ValueError, match=r"No valid checkpoint found in output directory .*every checkpoint is "
                                         r"incomplete \(checkpoint-9: no model weights.*checkpoint-4: no trainer_state"):
        resolver(run).resolve_checkpoint(True)  # fmt: skip
    assert resolver(tmp_path / "nothing").resolve_checkpoint(None) is None
    with pytest.raises(ValueError, match=r"No valid checkpoint found in output directory"):
        resolver(tmp_path / "nothing").resolve_checkpoint(True)


def test_pruning_trainer_resumes_from_the_newest_complete_checkpoint(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    damage(run / "checkpoint-9", "no-trainer-state")  # what a SIGTERM in Trainer's save leaves
    p_target = train(run, resume=True, n=24, save_steps=2)
    np.testing.assert_allclose(p_target, finished[1], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- a real SIGTERM


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: `tests/fault_worker.py`'s run (40 rows, 3 epochs of 5 steps, checkpoints every 3 steps)."""
    return train(tmp_path_factory.mktemp("reference") / "run")


CHILD = r"""
import json, os, signal, sys, time
from transformers import Trainer

config = json.loads(sys.argv[1])
real, saves = Trainer._save_optimizer_and_scheduler, [0]

def save_then_sigterm(self, output_dir):
    real(self, output_dir)  # the weights and the optimizer are written; the RNG state and trainer_state.json are not
    saves[0] += 1
    if saves[0] == config["sigterm_in_save"]:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)

Trainer._save_optimizer_and_scheduler = save_then_sigterm
import tests.trainer_utils

def no_fashion_mnist(*args, **kwargs):
    raise FileNotFoundError("sklearn's digits, as the parent test builds them")

tests.trainer_utils.load_fashion_mnist = no_fashion_mnist
from tests.fault_worker import main

main(config)
"""


def test_sigterm_inside_trainer_save_checkpoint_then_resume_true(tmp_path, uninterrupted, caplog):
    """A child training process gets `SIGTERM` inside `Trainer._save_checkpoint` of step 9 (its third save): the
    checkpoint has weights, optimizer and the record, but no `trainer_state.json`. Before, `resume_from_checkpoint=True`
    took it and failed with `FileNotFoundError: .../trainer_state.json`; now it resumes from checkpoint-6, and the
    record equals an uninterrupted run's."""
    config = {"output_dir": str(tmp_path / "run"), "n": 40, "epochs": 3, "save_steps": 3, "sigterm_in_save": 3}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    killed = subprocess.run([sys.executable, "-c", CHILD, json.dumps(config)], env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGTERM, killed.stderr[-3000:]
    half = tmp_path / "run" / "checkpoint-9"
    assert (half / "model.safetensors").exists() and (half / "score_record").is_dir()
    assert not (half / "trainer_state.json").exists()
    survived = ScoreRecord.load(tmp_path / "run" / "scores")  # the live record is intact (verified)
    assert survived.num_epochs == 1
    with caplog.at_level(logging.WARNING, logger="hf_prune.run_record"):
        resumed = train(tmp_path / "run", resume=True)
    assert "Not resuming from checkpoint-9: no trainer_state.json" in caplog.text
    np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- a full disk


def test_checkpoint_save_errors_translates_write_failures_only(tmp_path, monkeypatch):
    checkpoint = tmp_path / "checkpoint-5"
    for raised in (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),
                   RuntimeError("basic_ios::clear: iostream error"),
                   OSError(errno.ENOSPC, "No space left on device"),
                   Exception("Error while serializing: I/O error: No space left on device (os error 28)")):  # fmt: skip
        with pytest.raises(OSError, match=rf"Saving the checkpoint into checkpoint {checkpoint} failed") as err:
            with checkpoint_save_errors(checkpoint):
                raise raised
        assert "resume_from_checkpoint=True)` skips it" in str(err.value) and "MiB are free" in str(err.value)
        assert err.value.__cause__ is None and err.value.__suppress_context__  # one error, not two tracebacks
    with pytest.raises(OSError) as err:
        with checkpoint_save_errors(checkpoint):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert err.value.errno == errno.ENOSPC and "The disk is probably full" in str(err.value)
    with pytest.raises(OSError) as again:  # nested wrappers: translated once
        with checkpoint_save_errors(checkpoint):
            raise err.value
    assert again.value is err.value
    for unrelated in (RuntimeError("CUDA error: device-side assert"), ValueError("bad"), FileNotFoundError("x")):
        with pytest.raises(type(unrelated)):
            with checkpoint_save_errors(checkpoint):
                raise unrelated
    # the record's own save into a checkpoint: torch.save of the rows fails
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unexpected pos 1 vs 0")))
    run_record = RunRecord(SimpleNamespace(output_dir=str(tmp_path), per_device_train_batch_size=8,
                                           gradient_accumulation_steps=1), SimpleNamespace(
        is_main_process=True, num_processes=1, process_index=0), recorder=SimpleNamespace(state_dict=dict),
        num_samples=4, signals=["p_target"], train_dataset=None)  # fmt: skip
    with pytest.raises(OSError, match=r"Saving the score record into checkpoint .*checkpoint-5 failed \(RuntimeError"):
        run_record.save_to_checkpoint(checkpoint, trained_rows=0)


@pytest.fixture
def tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); the translation is tested with fakes above")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


class FillDiskAt(TrainerCallback):
    """Fills the disk at the end of a step (just before Trainer saves that step's checkpoint), leaving `free` bytes."""

    def __init__(self, step: int, free: int):
        self.step, self.free = step, free

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step != self.step:
            return
        filler = Path(args.output_dir) / "filler"
        fill_disk(str(filler))
        with contextlib.suppress(OSError):
            os.truncate(filler, max(0, filler.stat().st_size - self.free))


@pytest.mark.parametrize("free", [0, 2 * 2**20], ids=["record-save", "trainer-save"])
def test_a_full_disk_during_a_checkpoint_save_is_one_oserror_then_resume_skips_it(tmpfs, uninterrupted, monkeypatch,
                                                                                   free, caplog):  # fmt: skip
    """A real 24 MiB tmpfs fills up at step 6, just before its checkpoint: with no space left the record's own save
    fails; with 2 MiB left the weights (1.5 MB) fit and torch's optimizer save fails (`unexpected pos`). Trainer's
    save runs inside `checkpoint_save_errors`, as `PruningTrainer._save_checkpoint` is to call it."""
    real = Trainer._save_checkpoint

    def wired(self, model, trial):  # what PruningTrainer._save_checkpoint does around Trainer's save
        checkpoint = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        with checkpoint_save_errors(checkpoint):
            return real(self, model, trial)

    monkeypatch.setattr(Trainer, "_save_checkpoint", wired)
    run = tmpfs / "run"
    with pytest.raises(OSError) as err:
        train(run, callbacks=[FillDiskAt(6, free)], save_total_limit=2)
    message = str(err.value)
    what = "the score record" if free == 0 else "the checkpoint"
    assert f"Saving {what} into checkpoint {run / 'checkpoint-6'} failed" in message, message
    assert err.value.errno == errno.ENOSPC and "The disk is probably full" in message
    if free:
        assert "unexpected pos" in message or "No space left" in message  # the cause, quoted once
    assert not (run / "checkpoint-6" / "trainer_state.json").exists()
    assert ScoreRecord.load(run / "scores", verify="full").num_epochs == 1  # the live record is intact
    (run / "filler").unlink()
    with caplog.at_level(logging.WARNING, logger="hf_prune.run_record"):
        resumed = train(run, resume=True, save_total_limit=2)
    assert "Not resuming from checkpoint-6" in caplog.text
    np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)
