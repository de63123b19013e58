"""Issue 17, case 3: a record on disk is checksummed, and `ScoreRecord.load` verifies it. Byte edits of values and
labels inside every `.npy`, truncations of every file, a truncated `record.json` and a flipped magic byte each give a
`RecordIntegrityError` naming the file, what is wrong, the last good epoch and a non-destructive way to keep the good
epochs; before, edits loaded silently and the rest gave numpy's messages ("mmap length is greater than file size",
"Expecting value", "pickled data") naming no file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np
import pytest

from hf_prune import ScoreRecord, get_strategy
from hf_prune import record as record_module
from hf_prune.record import LABELS_PENDING_FILE, NONFINITE_FILE, RecordIntegrityError, _npy_layout


SIGNALS = ["p_target", "loss", "correct"]
N, K = 60, 5


def write_record(path, n=N, epochs=K, capacity=2, seed=0):
    """A record grown past its capacity, with labels learned over two epochs and one non-finite sample."""
    rng = np.random.default_rng(seed)
    record = ScoreRecord.create(path, n, SIGNALS, capacity_epochs=capacity, metadata={"model": "m"})
    for k in range(epochs):
        ids = np.arange(n) if k else np.arange(0, n, 2)  # epoch 0 sees half: labels change in epoch 1 too
        p = rng.random(ids.size)
        values = {"p_target": p, "loss": -np.log(p), "correct": (p > 0.5).astype(float)}
        if k == 2:
            for v in values.values():
                v[3] = np.nan  # id 3 (labelled): seen with non-finite values
        record.write_epoch(k, ids, values, labels=ids % 4)
    return record


@pytest.fixture
def rec(tmp_path):
    write_record(tmp_path / "r")
    return tmp_path / "r"


def data_offset(file):
    return _npy_layout(file)[0]


def flip(file, position, bits=0x01):
    data = bytearray(file.read_bytes())
    data[position] ^= bits
    file.write_bytes(bytes(data))


def assert_names_file_and_recovery(err, file, good):
    message = str(err)
    assert str(file) in message, message
    for raw in ("mmap length", "pickled data", "Expecting value"):
        assert not message.startswith(raw), message
    if good is not None:
        assert err.value.good_epochs == good if hasattr(err, "value") else True


# ---------------------------------------------------------------------------------------------------- clean records


def test_a_written_record_verifies_in_every_mode_and_keeps_its_checksums_through_grow_copy_and_save(rec, tmp_path):
    meta = json.loads((rec / "record.json").read_text())
    assert meta["format_version"] == 2 and meta["checksums"]["algorithm"] == "sha256"
    assert set(meta["checksums"]["epochs"]) == {"p_target.npy", "loss.npy", "correct.npy", NONFINITE_FILE}
    assert all(len(v) == K and all(v) for v in meta["checksums"]["epochs"].values())  # grown past capacity 2
    for mode in ("full", "auto", "fast"):
        loaded = ScoreRecord.load(rec, verify=mode)
        assert loaded.num_epochs == K
    assert ScoreRecord.load(rec, verify="full").verification["checked_epochs"] == list(range(K))
    assert ScoreRecord.load(rec, verify="fast").verification["checked_epochs"] == []
    copied = ScoreRecord.copy(rec, tmp_path / "c")
    saved = ScoreRecord.load(rec).save(tmp_path / "s")
    in_memory = ScoreRecord.from_arrays({s: np.asarray(ScoreRecord.load(rec).signal(s)) for s in SIGNALS},
                                        labels=ScoreRecord.load(rec).labels).save(tmp_path / "m")  # fmt: skip
    for path in (copied, saved, in_memory):
        again = ScoreRecord.load(path, verify="full")
        np.testing.assert_array_equal(again.signal("p_target"), ScoreRecord.load(rec).signal("p_target"))
        np.testing.assert_array_equal(again.labels, ScoreRecord.load(rec).labels)
    prefix = ScoreRecord.copy(rec, tmp_path / "prefix", num_epochs=2)
    assert ScoreRecord.load(prefix, verify="full").num_epochs == 2


# ---------------------------------------------------------------------------------------------------- byte edits


@pytest.mark.parametrize("fname", ["p_target.npy", "loss.npy", "correct.npy", NONFINITE_FILE])
@pytest.mark.parametrize("epoch", [0, 3])
def test_a_byte_edit_inside_any_epoch_row_is_caught_with_the_last_good_epoch(rec, fname, epoch):
    file = rec / fname
    offset, shape, dtype = _npy_layout(file)
    flip(file, offset + (epoch * shape[1] + 2) * dtype.itemsize)
    with pytest.raises(RecordIntegrityError) as err:
        ScoreRecord.load(rec)
    message = str(err.value)
    assert f"{file}: epoch {epoch} does not match its checksum" in message
    assert err.value.file == file and err.value.good_epochs == epoch
    if epoch:
        assert f"the last good epoch is {epoch - 1}" in message and f"num_epochs={epoch}" in message
        good = ScoreRecord.load(rec, num_epochs=epoch)  # the good prefix, read-only, verified
        assert good.num_epochs == epoch and good.verification["checked_epochs"] == list(range(epoch))
    else:
        assert "No epoch is intact" in message
    assert "ScoreRecord.repair(" in message and "nothing is deleted" in message
    with pytest.raises(RecordIntegrityError):
        ScoreRecord.verify(rec)
    ScoreRecord.load(rec, verify="fast")  # structure only: the edit is not seen (documented)


def test_a_label_edit_is_caught_and_repair_keeps_every_epoch_with_unknown_labels(rec):
    file = rec / "labels.npy"
    before = np.array(ScoreRecord.load(rec).signal("p_target"))
    flip(file, data_offset(file) + 8 * 7, 0x02)  # label of id 7: 3 -> 1
    with pytest.raises(RecordIntegrityError) as err:
        ScoreRecord.load(rec)
    message = str(err.value)
    assert f"{file} does not match its checksum" in message and "only the labels are damaged" in message
    assert err.value.good_epochs == K and "every label unknown (-1" in message
    snapshot = {p.name: p.read_bytes() for p in rec.iterdir()}
    aside = ScoreRecord.repair(rec)
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == snapshot  # moved, not changed or deleted
    repaired = ScoreRecord.load(rec, verify="full")
    assert repaired.num_epochs == K and repaired.labels is None
    np.testing.assert_array_equal(repaired.signal("p_target"), before)
    assert repaired.metadata["repaired_from"] == str(aside)


def test_an_edited_value_that_changes_the_dyn_unc_selection_is_caught(tmp_path):
    """The issue's case: an edit inside p_target.npy changed 38 kept ids and `verify()` passed."""
    rng = np.random.default_rng(1)
    n, epochs = 400, 6
    record = ScoreRecord.create(tmp_path / "r", n, ["p_target"], capacity_epochs=epochs)
    for k in range(epochs):
        record.write_epoch(k, np.arange(n), {"p_target": rng.random(n)}, labels=np.arange(n) % 10)
    strategy = get_strategy("dyn_unc", window=2)
    kept = strategy.select(ScoreRecord.load(tmp_path / "r"), prune_ratio=0.5).kept_ids
    file = tmp_path / "r" / "p_target.npy"
    offset = data_offset(file)
    victim = int(np.setdiff1d(np.arange(n), kept)[0])  # a removed sample made to look very uncertain
    with open(file, "r+b") as f:
        for k in (1, 3):
            f.seek(offset + (k * n + victim) * 4)
            f.write(np.float32(1.0 if k == 1 else 0.0).tobytes())
    unchecked = ScoreRecord.load(tmp_path / "r", verify="fast")  # what `load` did before: no checksum
    assert victim in strategy.select(unchecked, prune_ratio=0.5).kept_ids  # the selection changed
    with pytest.raises(RecordIntegrityError, match=r"p_target\.npy: epoch 1 does not match its checksum"):
        ScoreRecord.load(tmp_path / "r")
    with pytest.raises(RecordIntegrityError, match="the last good epoch is 0"):
        ScoreRecord.verify(tmp_path / "r")


# ---------------------------------------------------------------------------------------------------- damaged files


ARRAY_FILES = ["p_target.npy", "loss.npy", "correct.npy", NONFINITE_FILE, "labels.npy"]


@pytest.mark.parametrize("fname", ARRAY_FILES)
@pytest.mark.parametrize("cut", ["empty", "inside-header", "header-only", "mid-row", "after-committed"])
def test_truncating_any_file_names_it(rec, fname, cut):
    file = rec / fname
    offset, shape, dtype = _npy_layout(file)
    row = shape[1] * dtype.itemsize if len(shape) == 2 else shape[0] * dtype.itemsize
    size = {"empty": 0, "inside-header": 20, "header-only": offset, "mid-row": offset + 2 * row + row // 2,
            "after-committed": offset + K * row}[cut]  # fmt: skip
    if fname == "labels.npy" and cut in ("mid-row", "after-committed"):
        size = offset + (row // 2 if cut == "mid-row" else row - 8)  # half of the labels; one label short
    data = file.read_bytes()
    file.write_bytes(data[:size])
    if cut == "after-committed" and fname != "labels.npy":
        # the rows past the committed epochs are not data: a file cut there still opens, whole
        loaded = ScoreRecord.load(rec, verify="full")
        assert loaded.num_epochs == K
        return
    with pytest.raises(RecordIntegrityError) as err:
        ScoreRecord.load(rec)
    message = str(err.value)
    assert str(file) in message, message
    assert "mmap length" not in message and "pickled data" not in message
    if fname == "labels.npy":
        assert err.value.good_epochs == K
    elif cut == "mid-row":
        assert "is truncated: it holds 2 complete epoch(s) of the 5" in message
        assert err.value.good_epochs == 2 and "ScoreRecord.load(" in message and "num_epochs=2" in message
        assert ScoreRecord.load(rec, num_epochs=2).num_epochs == 2
    else:
        assert err.value.good_epochs == 0
    if cut in ("empty", "inside-header"):
        assert "is not a readable .npy file" in message


@pytest.mark.parametrize("fname", ARRAY_FILES)
def test_a_flipped_magic_byte_names_the_file(rec, fname):
    file = rec / fname
    flip(file, 1)  # b"\x93NUMPY" -> b"\x93OUMPY"
    with pytest.raises(RecordIntegrityError) as err:
        ScoreRecord.load(rec)
    message = str(err.value)
    assert f"{file} is not a readable .npy file: its magic string is damaged" in message
    assert "pickled data" not in message


@pytest.mark.parametrize("damage", ["truncated", "empty", "edited"])
def test_a_damaged_record_json_names_it_and_points_at_the_checkpoints(rec, damage):
    meta_file = rec / "record.json"
    text = meta_file.read_text()
    if damage == "truncated":
        meta_file.write_text(text[: len(text) // 2])
    elif damage == "empty":
        meta_file.write_text("")
    else:
        meta = json.loads(text)
        meta["signals"] = ["../../etc/passwd"]  # names that would leave the folder
        meta_file.write_text(json.dumps(meta))
    with pytest.raises(RecordIntegrityError) as err:
        ScoreRecord.load(rec)
    message = str(err.value)
    assert f"{meta_file} is unreadable or incomplete" in message or f"{meta_file} is incomplete or edited" in message
    assert err.value.good_epochs is None and "checkpoint-N/score_record" in message and "Nothing was changed" in message
    with pytest.raises(RecordIntegrityError):
        ScoreRecord.repair(rec)  # nothing to keep without record.json
    assert meta_file.exists() and not [p for p in rec.parent.iterdir() if ".damaged-" in p.name]


def test_a_missing_file_and_a_record_json_promising_more_epochs(rec):
    promised = json.loads((rec / "record.json").read_text())
    promised["num_epochs"] = 9  # more rows than the files have room for
    (rec / "record.json").write_text(json.dumps(promised))
    with pytest.raises(RecordIntegrityError, match=r"p_target\.npy has room for \d+ epochs but record.json commits 9"):
        ScoreRecord.load(rec)
    (rec / "loss.npy").unlink()
    with pytest.raises(RecordIntegrityError, match=r"is incomplete: loss\.npy \(signal 'loss'\) is missing"):
        ScoreRecord.verify(rec)


# ---------------------------------------------------------------------------------------------------- modes


def test_auto_mode_checks_a_subset_beyond_its_bound_and_says_which(rec, monkeypatch, caplog):
    monkeypatch.setattr(record_module, "AUTO_FULL_BYTES", 1)  # every record is "big"
    monkeypatch.setattr(record_module, "AUTO_SAMPLE_BYTES", 1)
    with caplog.at_level(logging.INFO, logger="hf_prune.record"):
        loaded = ScoreRecord.load(rec)
    report = loaded.verification
    assert report["checked_epochs"] == [0, K - 1] and report["labels_checked"]
    assert f"epochs 1-{K - 2} not checksummed (verify='auto'" in report["unchecked"] and "verify='full'" in report["unchecked"]
    assert "not checksummed" in caplog.text
    file = rec / "loss.npy"
    offset, shape, dtype = _npy_layout(file)
    flip(file, offset + (2 * shape[1] + 5) * dtype.itemsize)  # an epoch auto does not check
    ScoreRecord.load(rec)
    with pytest.raises(RecordIntegrityError, match="the last good epoch is 1"):
        ScoreRecord.load(rec, verify="full")
    flip(file, offset + ((K - 1) * shape[1] + 5) * dtype.itemsize)  # the last epoch: auto checks it...
    with pytest.raises(RecordIntegrityError) as err:
        ScoreRecord.load(rec)
    assert err.value.good_epochs == 2  # ...and then finds the true last good epoch with a full pass


def test_records_of_older_versions_load_and_say_what_was_not_checked(rec, caplog):
    meta = json.loads((rec / "record.json").read_text())
    for key in ("checksums", "nonfinite_from_epoch"):
        meta.pop(key)
    meta["format_version"] = 1
    meta["metadata"].pop("epoch_num_nonfinite", None)
    (rec / "record.json").write_text(json.dumps(meta))
    (rec / NONFINITE_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="hf_prune.record"):
        old = ScoreRecord.load(rec)
    assert old.num_epochs == K and "no checksums (written by an older hf_prune" in old.verification["unchecked"]
    assert "no checksums" in caplog.text
    assert not old.tracks_nonfinite and old.epoch_num_nonfinite == [None] * K and not old.nonfinite(2).any()
    # continued by this version: the new epoch is checksummed, the old ones are said to have none
    writable = ScoreRecord.load(rec, writable=True)
    writable.write_epoch(K, np.arange(N), {s: np.full(N, 0.5) for s in SIGNALS}, labels=np.arange(N) % 4)
    again = ScoreRecord.load(rec, verify="full")
    assert again.num_epochs == K + 1 and again.verification["checked_epochs"] == [K]
    assert f"epochs 0-{K - 1} have no checksums" in again.verification["unchecked"]
    assert again.tracks_nonfinite and again.epoch_num_nonfinite == [None] * K + [0]


def test_num_epochs_is_a_read_only_prefix(rec):
    with pytest.raises(ValueError, match="read-only prefix"):
        ScoreRecord.load(rec, writable=True, num_epochs=2)
    with pytest.raises(ValueError, match=r"num_epochs must be an integer in \[0, 5\]"):
        ScoreRecord.load(rec, num_epochs=6)
    prefix = ScoreRecord.load(rec, num_epochs=3)
    assert prefix.signal("loss").shape == (3, N) and prefix.metadata["epoch_num_seen"] == [30, N, N]


# ---------------------------------------------------------------------------------------------------- labels commits


def test_labels_never_change_in_place_a_crash_mid_epoch_leaves_them_as_committed(tmp_path):
    rec = tmp_path / "r"
    write_record(rec, epochs=1)  # epoch 0 saw the even ids only
    labels_before = (rec / "labels.npy").read_bytes()
    record = ScoreRecord.load(rec, writable=True)
    writer = record.epoch_writer(1)
    # new labels for ids 1 and 3 in this epoch... then the process dies before the commit
    writer.write(0, 10, [np.array([1, 3])], [np.array([1, 3])], [np.full((2, 3), 0.5)])
    assert (rec / LABELS_PENDING_FILE).exists()
    writer.close()
    assert (rec / "labels.npy").read_bytes() == labels_before
    assert not (rec / LABELS_PENDING_FILE).exists()
    ScoreRecord.load(rec, verify="full")


def test_a_crash_between_the_commit_and_the_labels_replace_is_rolled_forward(tmp_path):
    path = tmp_path / "r"
    record = write_record(path, epochs=1)  # epoch 0 saw the even ids only
    old_labels = (path / "labels.npy").read_bytes()
    record.write_epoch(1, np.arange(N), {s: np.full(N, 0.5) for s in SIGNALS}, labels=np.arange(N) % 4)
    new_labels = np.array(ScoreRecord.load(path).labels)
    # the state a kill leaves after record.json was replaced and before labels.npy was
    shutil.copy2(path / "labels.npy", path / LABELS_PENDING_FILE)
    (path / "labels.npy").write_bytes(old_labels)
    reader = ScoreRecord.load(path, verify="fast")  # the pending file is checked whatever the mode
    assert reader.verification["labels_file"] == LABELS_PENDING_FILE
    np.testing.assert_array_equal(reader.labels, new_labels)
    assert (path / LABELS_PENDING_FILE).exists()  # a read-only load changes nothing
    ScoreRecord.load(path, writable=True)  # finishes the commit
    assert not (path / LABELS_PENDING_FILE).exists()
    np.testing.assert_array_equal(ScoreRecord.load(path, verify="full").labels, new_labels)
    # a pending file that matches nothing (the commit never happened) is left alone and ignored
    (path / LABELS_PENDING_FILE).write_bytes(old_labels)
    assert ScoreRecord.load(path, verify="full").verification["labels_file"] == "labels.npy"


def test_the_checkpoint_copy_of_a_record_verifies(tmp_path):
    """`RunRecord` hard-links the arrays into checkpoints and copies labels and record.json: the copy verifies even
    after the live record wrote more epochs (rows past the copy's epochs are not data)."""
    from hf_prune.run_record import _link_record

    path = tmp_path / "r"
    record = write_record(path, epochs=2, capacity=8)
    _link_record(path, tmp_path / "ckpt")
    record.write_epoch(2, np.arange(N), {s: np.full(N, 0.25) for s in SIGNALS}, labels=np.arange(N) % 4)
    assert os.stat(path / "p_target.npy").st_ino == os.stat(tmp_path / "ckpt" / "p_target.npy").st_ino
    assert ScoreRecord.load(tmp_path / "ckpt", verify="full").num_epochs == 2
    assert ScoreRecord.load(path, verify="full").num_epochs == 3
