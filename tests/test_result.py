"""`PruneResult`: ids, masks, `apply`, and the save / load round trip through the index-list folder format."""

import numpy as np
import pytest
from datasets import Dataset

from hf_prune import PruneResult, ScoreRecord, get_strategy


def _result(n=50, ratio=0.3, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    record = ScoreRecord.from_arrays(
        {"p_target": rng.random((8, n))},
        labels=(np.arange(n) % 5) if labels else None,
        metadata={"seed": 7, "model": {"name_or_path": "tiny-cnn"}, "dataset_fingerprint": "fp0"},
    )
    return get_strategy("dyn_unc", window=3).select(record, prune_ratio=ratio)


def test_ids_masks_and_validation():
    result = PruneResult(kept_ids=[4, 1, 3], scores=np.arange(6.0), prune_ratio=0.5, method="m")
    assert result.kept_ids.tolist() == [1, 3, 4]
    assert result.removed_ids.tolist() == [0, 2, 5]
    assert result.keep_mask().tolist() == [False, True, False, True, True, False]
    assert result.num_samples == 6 and result.num_kept == 3
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        PruneResult(kept_ids=[6], scores=np.zeros(6), prune_ratio=0.5, method="m")


def test_apply_selects_kept_rows_and_adds_sample_id():
    result = _result()
    ds = Dataset.from_dict({"x": list(range(50))})
    pruned = result.apply(ds)
    assert pruned["x"] == result.kept_ids.tolist()
    assert pruned["sample_id"] == result.kept_ids.tolist()
    with pytest.raises(ValueError, match="49 rows but this result indexes a split of 50"):
        result.apply(ds.select(range(49)))


def test_save_load_round_trip_kept_rows(tmp_path):
    result = _result()
    folder = result.save(tmp_path / "list", source=("org/src", "train", "rev1"))
    back = PruneResult.load(folder)
    np.testing.assert_array_equal(back.kept_ids, result.kept_ids)
    assert back.kept_ids.dtype == np.int64
    assert back.prune_ratio == result.prune_ratio and back.method == "dyn_unc"
    assert back.num_samples == 50 and back.params == result.params
    assert back.provenance == result.provenance
    # The published list holds the kept rows only: their scores (float32) and labels come back, others do not.
    kept = result.kept_ids
    np.testing.assert_allclose(back.scores[kept], result.scores[kept].astype(np.float32))
    assert np.isnan(back.scores[result.removed_ids]).all()
    np.testing.assert_array_equal(back.labels[kept], result.labels[kept])
    assert (back.labels[result.removed_ids] == -1).all()


def test_save_load_round_trip_all_scores_float64(tmp_path):
    result = _result(labels=False)
    folder = result.save(tmp_path / "list", all_scores=True, score_dtype="float64")
    back = PruneResult.load(folder)
    np.testing.assert_array_equal(back.scores, result.scores)
    assert back.labels is None
    np.testing.assert_array_equal(back.removed_ids, result.removed_ids)


def test_save_replaces_an_earlier_list_but_not_other_folders(tmp_path):
    first, second = _result(ratio=0.3), _result(ratio=0.5)
    folder = tmp_path / "list"
    first.save(folder)
    second.save(folder)
    assert not (folder / "data" / "prune_30").exists()
    assert PruneResult.load(folder).prune_ratio == 0.5
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an hf_prune index list"):
        first.save(other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_load_refuses_a_folder_without_a_list(tmp_path):
    with pytest.raises(FileNotFoundError, match="no README.md"):
        PruneResult.load(tmp_path)
