"""Metrics through 🤗 Evaluate, as the transformers example scripts compute them, working offline.

`evaluate.load("accuracy")` fetches a metric script from the Hub, which fails without a network. hf_prune ships the
same metric as a local `evaluate` module (`hf_prune/metric_scripts/accuracy/`), and `load_metric("accuracy")` loads
that path with `evaluate.load`; `accuracy_metrics()` is the `compute_metrics` of the example scripts.

Example:

```python
>>> import numpy as np
>>> from hf_prune.metrics import accuracy_metrics
>>> compute_metrics = accuracy_metrics()
>>> compute_metrics((np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])))
{'accuracy': 0.5}
```
"""

from __future__ import annotations

from pathlib import Path


METRIC_SCRIPTS = Path(__file__).resolve().parent / "metric_scripts"


def metric_path(name: str) -> str:
    """Local path of a shipped metric module, for `evaluate.load(path)`."""
    path = METRIC_SCRIPTS / name / f"{name}.py"
    if not path.is_file():
        shipped = sorted(p.name for p in METRIC_SCRIPTS.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise ValueError(f"No shipped metric {name!r}; hf_prune ships {shipped}. Use evaluate.load for others.")
    return str(path.parent)


def load_metric(name: str = "accuracy"):
    """`evaluate.load` of a metric shipped with hf_prune (works offline).

    Args:
        name (`str`, *optional*, defaults to `"accuracy"`): the metric.

    Returns:
        `evaluate.EvaluationModule`.
    """
    import evaluate

    return evaluate.load(metric_path(name))


def accuracy_metrics():
    """A `compute_metrics` for `Trainer`: `{"accuracy": ...}` from `(logits, labels)`, through `evaluate`."""
    import numpy as np

    metric = load_metric("accuracy")

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred
        return metric.compute(predictions=np.argmax(logits, axis=-1), references=labels)

    return compute_metrics
