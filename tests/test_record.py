import json

import numpy as np
import pytest
import torch

from hf_prune import ScoreRecord, compute_signals
from hf_prune.recording import Recorder


def test_create_write_load_roundtrip_and_growth(tmp_path):
    record = ScoreRecord.create(tmp_path / "r", 5, ["p_target", "loss"], capacity_epochs=1, metadata={"model": "m"})
    for k in range(3):  # grows past capacity 1
        record.write_epoch(k, np.array([0, 2, 4]), {"p_target": np.full(3, k / 10), "loss": np.ones(3)}, labels=[1, 2, 3])
    loaded = ScoreRecord.load(tmp_path / "r")
    assert (loaded.num_samples, loaded.num_epochs, loaded.signals) == (5, 3, ["p_target", "loss"])
    p = loaded.signal("p_target")
    assert isinstance(p, np.memmap) and p.shape == (3, 5) and not p.flags.writeable
    np.testing.assert_allclose(p[:, 0], [0, 0.1, 0.2])
    assert np.isnan(p[:, 1]).all()  # NaN = not seen
    np.testing.assert_array_equal(loaded.labels, [1, -1, 2, -1, 3])
    assert loaded.metadata == {"model": "m", "epoch_num_seen": [3, 3, 3]}
    assert loaded.dtype == "float32"


def test_crash_mid_epoch_leaves_last_complete_epoch(tmp_path):
    record = ScoreRecord.create(tmp_path / "r", 4, ["p_target"], capacity_epochs=4)
    record.write_epoch(0, np.arange(4), {"p_target": np.ones(4)})
    # a crash after the row was partly written but before the commit: record.json still says 1 epoch
    writer = record.epoch_writer(1)
    writer.write(0, 2, [np.array([0, 1])], [np.array([-1, -1])], [np.full((2, 1), 0.5)])
    writer.close()
    assert ScoreRecord.load(tmp_path / "r").num_epochs == 1
    with pytest.raises(ValueError, match="missing from the values"):
        record.write_epoch(1, np.arange(4), {})
    assert json.loads((tmp_path / "r" / "record.json").read_text())["num_epochs"] == 1


def test_write_errors(tmp_path):
    record = ScoreRecord.create(tmp_path / "r", 4, ["p_target"])
    with pytest.raises(ValueError, match="out of order"):
        record.write_epoch(1, np.arange(4), {"p_target": np.ones(4)})
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        record.write_epoch(0, np.array([7]), {"p_target": np.ones(1)})
    with pytest.raises(FileExistsError):
        ScoreRecord.create(tmp_path / "r", 4, ["p_target"])
    with pytest.raises(RuntimeError, match="read-only"):
        ScoreRecord.load(tmp_path / "r").write_epoch(0, np.arange(4), {"p_target": np.ones(4)})
    with pytest.raises(FileNotFoundError, match="scores"):
        ScoreRecord.load(tmp_path / "nothing")


def test_from_arrays_validation_and_save(tmp_path):
    with pytest.raises(ValueError, match="one shape"):
        ScoreRecord.from_arrays({"p_target": np.zeros((3, 4)), "loss": np.zeros((3, 5))})
    with pytest.raises(ValueError, match="one label per sample"):
        ScoreRecord.from_arrays({"p_target": np.zeros((3, 4))}, labels=[1, 2])
    rec = ScoreRecord.from_arrays({"p_target": np.arange(12).reshape(3, 4)}, labels=[0, 1, 0, 1])
    back = ScoreRecord.load(rec.save(tmp_path / "saved"))
    np.testing.assert_array_equal(back.signal("p_target"), rec.signal("p_target"))
    np.testing.assert_array_equal(back.labels, [0, 1, 0, 1])


def naive_signals(logits, label):
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    onehot = np.eye(len(z))[label]
    others = [c for c in range(len(z)) if c != label]
    return {
        "p_target": p[label],
        "loss": -np.log(p[label]),
        "correct": float(np.argmax(z) == label),
        "margin": p[label] - max(p[c] for c in others),
        "logit_margin": z[label] - max(z[c] for c in others),
        "entropy": -sum(q * np.log(q) for q in p),
        "el2n": np.linalg.norm(p - onehot),
    }


def test_signals_match_their_definitions():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)) * 3
    labels = rng.integers(0, 5, 6)
    names = ["p_target", "loss", "correct", "margin", "logit_margin", "entropy", "el2n"]
    got = compute_signals(torch.tensor(logits), torch.tensor(labels), names).numpy()
    for i in range(6):
        expected = naive_signals(logits[i], labels[i])
        np.testing.assert_allclose(got[i], [expected[n] for n in names], rtol=1e-5, atol=1e-6)


def test_recorder_dedups_by_id_keeping_first():
    rec = Recorder(["p_target"])
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [0.0, 0.0]])
    rec.add(torch.tensor([3, 1, 3]), logits, torch.tensor([0, 0, 0]))
    ids, labels, values = rec.gather()
    np.testing.assert_array_equal(ids, [1, 3])
    assert values["p_target"][1] == pytest.approx(1 / (1 + np.exp(-5)))  # first occurrence of id 3
    with pytest.raises(ValueError, match="one hard class label"):
        rec.add(torch.tensor([0]), logits[:1], torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="Unknown signal"):
        Recorder(["p_target", "nope"])


def test_float16_storage_preallocated_files_and_float32_rows(tmp_path):
    record = ScoreRecord.create(tmp_path / "r", 1000, ["p_target", "loss"], capacity_epochs=3, dtype="float16")
    for name in ("p_target.npy", "loss.npy"):
        st = (tmp_path / "r" / name).stat()
        assert st.st_size >= 3 * 1000 * 2 and st.st_blocks * 512 >= 3 * 1000 * 2  # blocks reserved, not sparse
    values = np.linspace(0, 1, 1000)
    record.write_epoch(0, np.arange(1000), {"p_target": values, "loss": -np.log(values + 1e-3)})
    loaded = ScoreRecord.load(tmp_path / "r")
    assert loaded.dtype == "float16" and loaded.signal("p_target").dtype == np.float16
    (row,) = list(loaded.iter_epochs("p_target"))
    assert row.dtype == np.float32
    np.testing.assert_allclose(row, values, atol=5e-4)
    with pytest.raises(ValueError, match="record_dtype must be one of"):
        ScoreRecord.create(tmp_path / "x", 4, ["p_target"], dtype="bfloat16")


def test_epoch_writer_segments_first_source_wins_and_label_conflicts(tmp_path):
    from hf_prune.record import LabelConflictError

    record = ScoreRecord.create(tmp_path / "r", 10, ["p_target"], capacity_epochs=2)
    writer = record.epoch_writer(0)
    # two sources (ranks) in one segment; id 3 in both: the first source's value is kept
    writer.write(0, 5, [np.array([1, 3]), np.array([3, 4])], [np.array([1, 1]), np.array([1, 0])],
                 [np.array([[0.1], [0.3]]), np.array([[0.9], [0.4]])])  # fmt: skip
    with pytest.raises(ValueError, match=r"does not follow \[0, 5\)"):
        writer.write(6, 10, [], [], [])
    writer.write(5, 10, [np.array([9])], [np.array([-1])], [np.array([[0.99]])])
    writer.commit()
    p = ScoreRecord.load(tmp_path / "r").signal("p_target")[0]
    np.testing.assert_allclose(p[[1, 3, 4, 9]], [0.1, 0.3, 0.4, 0.99], rtol=1e-6)
    assert np.isnan(p[[0, 2, 5, 6, 7, 8]]).all()
    np.testing.assert_array_equal(record.labels[[1, 3, 4, 9]], [1, 1, 0, -1])
    assert record.metadata["epoch_num_seen"] == [4]
    # the same id with another label in a later epoch: the ids do not identify rows
    with pytest.raises(LabelConflictError, match="Sample id 4 was recorded with label 0 .* arrives with label 2"):
        record.write_epoch(1, np.array([4, 9]), {"p_target": np.ones(2)}, labels=np.array([2, 5]))
    assert ScoreRecord.load(tmp_path / "r").num_epochs == 1
    record.write_epoch(1, np.array([4, 9]), {"p_target": np.ones(2)}, labels=np.array([0, 5]))  # unknown -> known
    assert record.labels[9] == 5


def test_verify_and_copy(tmp_path):
    record = ScoreRecord.create(tmp_path / "r", 6, ["p_target", "loss"], capacity_epochs=4)
    for k in range(2):
        record.write_epoch(k, np.arange(6), {"p_target": np.full(6, k), "loss": np.ones(6)}, labels=np.arange(6) % 2)
    assert ScoreRecord.verify(tmp_path / "r")["num_epochs"] == 2
    copy = ScoreRecord.load(ScoreRecord.copy(tmp_path / "r", tmp_path / "c"))
    np.testing.assert_array_equal(copy.signal("p_target"), record.signal("p_target"))
    np.testing.assert_array_equal(copy.labels, record.labels)
    (tmp_path / "r" / "loss.npy").unlink()
    with pytest.raises(ValueError, match=r"incomplete: loss\.npy \(signal 'loss'\) is missing"):
        ScoreRecord.verify(tmp_path / "r")
    data = (tmp_path / "c" / "p_target.npy").read_bytes()
    (tmp_path / "c" / "p_target.npy").write_bytes(data[:140])  # header + 3 of the 12 values
    with pytest.raises(ValueError, match="is truncated"):
        ScoreRecord.verify(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="holds no score record"):
        ScoreRecord.verify(tmp_path / "nothing")


def test_a_full_disk_is_an_oserror_naming_the_file_and_keeps_the_last_epoch(tmp_path, monkeypatch):
    """ENOSPC from an ordinary file write (a fake `os.pwrite`; tests/test_reliability.py fills a real tmpfs)."""
    import errno
    import os

    from hf_prune import record as record_module

    record = ScoreRecord.create(tmp_path / "r", 8, ["p_target", "loss"], capacity_epochs=2)
    record.write_epoch(0, np.arange(8), {"p_target": np.full(8, 0.5), "loss": np.ones(8)})
    real = os.pwrite
    calls = []

    def full_disk(fd, data, offset):
        calls.append(offset)
        if len(calls) == 2:  # the second signal's row
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(record_module.os, "pwrite", full_disk)
    with pytest.raises(OSError, match=r"Writing the score record failed at .*loss\.npy: No space left") as caught:
        record.write_epoch(1, np.arange(8), {"p_target": np.full(8, 0.7), "loss": np.ones(8)})
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(record_module.os, "pwrite", real)
    loaded = ScoreRecord.load(tmp_path / "r")
    assert loaded.num_epochs == 1 and (loaded.signal("p_target") == 0.5).all()
    # and a full disk at creation time is an OSError before anything trains
    monkeypatch.setattr(record_module.os, "posix_fallocate", lambda fd, off, size: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))  # fmt: skip
    with pytest.raises(OSError, match=r"Cannot reserve .* MiB for .*p_target\.npy: No space left"):
        ScoreRecord.create(tmp_path / "big", 10**6, ["p_target"], capacity_epochs=90)


def test_ignore_index_labels_give_nan_not_errors():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    values = compute_signals(logits, torch.tensor([0, -100, 2]), ["p_target", "loss", "margin", "el2n"]).numpy()
    assert np.isnan(values[1]).all() and not np.isnan(values[[0, 2]]).any()
    rec = Recorder(["p_target"])
    rec.add(torch.tensor([5, 6, 7]), logits, torch.tensor([0, -100, 2]))
    ids, labels, values = rec.local_rows()
    assert labels.tolist() == [0, -1, 2] and labels.dtype == torch.int32


def test_recorder_compact_rows_pack_and_old_checkpoints(tmp_path):
    rec = Recorder(["p_target", "loss"], dtype="float16")
    logits = torch.randn(5, 4)
    rec.add(torch.tensor([9, 2, 9, 4, 2]), logits, torch.tensor([1, 0, 1, 3, 0]))
    assert rec.num_rows == 5
    ids, labels, values = rec.local_rows()
    assert ids.tolist() == [2, 4, 9] and values.dtype == torch.float16
    expected = compute_signals(logits, torch.tensor([1, 0, 1, 3, 0]), ["p_target", "loss"]).half()
    torch.testing.assert_close(values, expected[[1, 3, 0]])  # first occurrence of 2 and 9
    packed = rec.packed_rows(labels, values)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 4 + 2 * 2)
    back_labels, back_values = rec.unpack_rows(packed.numpy())
    np.testing.assert_array_equal(back_labels, [0, 3, 1])
    np.testing.assert_array_equal(back_values, values.numpy())
    # the gather for dynamic policies: compact, float32 values of the signals asked for
    g_ids, g_labels, g_values = rec.gather(signals=["loss"])
    assert g_ids.tolist() == [2, 4, 9] and list(g_values) == ["loss"] and g_values["loss"].dtype == np.float32
    # hf_prune 0.1 checkpoints hold float64 [m, 2 + S] rows
    old = {"signals": ["p_target", "loss"], "rows": torch.tensor([[3.0, 1.0, 0.5, 0.7], [1.0, -100.0, 0.2, 1.6]])}
    fresh = Recorder(["p_target", "loss"])
    fresh.load_state_dict(old)
    ids, labels, values = fresh.local_rows()
    assert ids.tolist() == [1, 3] and labels.tolist() == [-1, 1]
    state = fresh.state_dict()
    assert (state["ids"].dtype, state["labels"].dtype, state["values"].dtype) == (torch.int64, torch.int32, torch.float32)
