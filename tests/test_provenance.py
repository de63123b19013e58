"""Provenance: a user's `source=` normalised, a dataset's own split / config / commit / fingerprint inferred, a
record's metadata read back, and metadata turned into plain JSON."""

import json

import datasets
import numpy as np
import pytest

from hf_prune.provenance import SOURCE_FIELDS, infer_source, jsonable, normalize_source, source_from_provenance


def test_normalize_every_form_a_user_types():
    assert normalize_source("ILSVRC/imagenet-1k", 10) == {**dict.fromkeys(SOURCE_FIELDS), "repo_id": "ILSVRC/imagenet-1k",
                                                           "num_rows": 10}  # fmt: skip
    three = normalize_source(("org/ds", "train", "abc"), 5)
    assert (three["repo_id"], three["split"], three["revision"], three["config"]) == ("org/ds", "train", "abc", None)
    four = normalize_source(("org/ds", "cfg", "train", "abc"), 5)
    assert four["config"] == "cfg" and four["split"] == "train"
    assert normalize_source({"repo_id": "x", "num_rows": 5}, 5)["num_rows"] == 5
    with pytest.raises(ValueError, match="num_rows=6 but the result indexes 5"):
        normalize_source({"num_rows": 6}, 5)
    with pytest.raises(ValueError, match="Unknown `source` keys"):
        normalize_source({"repo": "x"}, 5)
    with pytest.raises(TypeError, match="repo id, a tuple or a dict"):
        normalize_source(3, 5)


def test_infer_from_a_dataset_and_read_from_record_metadata(tmp_path):
    ds = datasets.Dataset.from_dict({"x": [1, 2]}, split="train")
    found = infer_source(ds)
    assert found["split"] == "train" and found["fingerprint"] == ds._fingerprint and "revision" not in found
    record_meta = {"record": {"dataset_split": "train", "dataset_fingerprint": "fp", "dataset_revision": "r1"}}
    assert source_from_provenance(record_meta) == {"split": "train", "fingerprint": "fp", "revision": "r1"}
    explicit = {"source": {"repo_id": "org/x", "split": "validation"}, **record_meta}
    assert source_from_provenance(explicit)["split"] == "validation"  # an explicit source wins


def test_jsonable_turns_numpy_into_python():
    out = jsonable({"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3), "d": {"e": (1, 2)}, "f": object()})
    assert out["a"] == 3 and out["b"] == 0.5 and out["c"] == [0, 1, 2] and out["d"] == {"e": [1, 2]}
    assert isinstance(out["f"], str)
    json.dumps(out)
