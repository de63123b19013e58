"""Accuracy as an `evaluate` metric module, shipped with hf_prune so `evaluate.load` works offline.

Same definition, inputs and output as the Hub's `evaluate-metric/accuracy` (the share of predictions equal to the
references, optionally weighted or as a count), so `hf_prune.metrics.load_metric("accuracy")` and
`evaluate.load("accuracy")` are interchangeable; the Hub's script cannot be fetched without a network.
"""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = "Accuracy: the proportion of correct predictions among the total number of cases processed."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): ground-truth labels.
    normalize (`bool`, defaults to `True`): if `False`, the number of correct predictions instead of the share.
    sample_weight (`list` of `float`, defaults to `None`): per-sample weights.
Returns:
    accuracy (`float` or `int`).
Examples:
    >>> accuracy_metric = evaluate.load("accuracy")
    >>> accuracy_metric.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0])
    {'accuracy': 0.5}
"""
_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        correct = np.asarray(predictions) == np.asarray(references)
        weights = np.ones(correct.shape) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        total = float((correct * weights).sum())
        if not normalize:
            return {"accuracy": total}
        return {"accuracy": float(total / weights.sum()) if weights.sum() else float("nan")}
