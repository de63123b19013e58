"""Accuracy through 🤗 Evaluate with the metric module shipped in the package: works offline (HF_HUB_OFFLINE=1)."""

import numpy as np
import pytest

from hf_prune.metrics import accuracy_metrics, load_metric


def test_accuracy_loads_offline_and_matches_numpy():
    metric = load_metric("accuracy")
    rng = np.random.default_rng(0)
    pred, ref = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert metric.compute(predictions=pred, references=ref)["accuracy"] == pytest.approx((pred == ref).mean())
    assert metric.compute(predictions=[0, 1], references=[0, 0], normalize=False)["accuracy"] == 1
    logits = np.eye(5)[pred] + 0.01
    assert accuracy_metrics()((logits, ref)) == {"accuracy": pytest.approx((pred == ref).mean())}


def test_an_unshipped_metric_says_what_ships():
    with pytest.raises(ValueError, match="ships \\['accuracy'\\]"):
        load_metric("f1")
