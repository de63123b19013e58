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
