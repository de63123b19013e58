"""What a run tells the person watching it, through transformers' logger only: a start banner (world size, rows,
signals, output paths), labelled phases ("[2/4] Retraining on Dyn-Unc 25 % removed"), progress bars that say which
phase they belong to, and selection groups as percentages rather than raw floats.

Example:

```python
>>> from hf_prune.console import banner, phase
>>> banner("Dyn-Unc", {"world size": 1, "train rows": "10,000 of 60,000", "output": "runs/demo"})
>>> phase(1, 3, "Training on full data (recording dynamics)")
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import ProgressCallback
from transformers.utils import logging


logger = logging.get_logger("hf_prune")


def setup_logging(training_args=None) -> None:
    """One logging system for a recipe, as the transformers example scripts set it up: transformers' verbosity (info
    on the main process unless `--log_level` says otherwise, quiet on the other ranks) for transformers *and*
    hf_prune's loggers, printed by one handler; no "Writing model shards" bar at every checkpoint."""
    import logging as std_logging
    import sys

    if training_args is None or training_args.should_log:
        logging.set_verbosity_info()
    level = training_args.get_process_log_level() if training_args is not None else std_logging.INFO
    logging.set_verbosity(level)
    logging.disable_progress_bar()  # transformers' own bars (shard writing); Trainer's training bars stay
    root = std_logging.getLogger("hf_prune")
    root.setLevel(level)
    if not any(getattr(h, "_hf_prune", False) for h in root.handlers):
        handler = std_logging.StreamHandler(sys.stderr)
        handler._hf_prune = True
        root.addHandler(handler)
        root.propagate = False


def _emit(text: str) -> None:
    # The recipes' voice: info level through transformers' logger, shown from the main process only.
    logger.info(text)


def banner(title: str, items: Mapping[str, Any]) -> str:
    """Logs a start banner: `title` and one aligned `key: value` line per item. Returns the text."""
    width = max((len(k) for k in items), default=0)
    lines = [f"==== {title} ===="] + [f"  {k:<{width}}  {v}" for k, v in items.items()]
    text = "\n".join(lines)
    _emit(text)
    return text


def phase(index: int, total: int, text: str) -> str:
    """Logs a numbered phase heading, e.g. `[2/4] Retraining on Dyn-Unc 25 % removed`. Returns the text."""
    line = f"[{index}/{total}] {text}"
    _emit(line)
    return line


def format_fractions(fractions: Mapping[str, float]) -> str:
    """`{"never": 0.031, ...}` as `never 3.1 %, sometimes ... %, always ... %`."""
    return ", ".join(f"{name} {100 * float(value):.1f} %" for name, value in fractions.items())


class LabelledProgressCallback(ProgressCallback):
    """Trainer's progress bars with a label (`"[1/3] full data"`), so training, retraining and evaluation bars are
    told apart. Swap it in with `label_progress_bars(trainer, label)`."""

    def __init__(self, label: str, max_str_len: int = 100):
        super().__init__(max_str_len=max_str_len)
        self.label = label

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None:
            self.training_bar.set_description(f"{self.label} train")

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        fresh = self.prediction_bar is None
        super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)
        if fresh and self.prediction_bar is not None:
            self.prediction_bar.set_description(f"{self.label} eval")


def label_progress_bars(trainer, label: str) -> None:
    """Replaces `trainer`'s progress bars with labelled ones (a no-op with `disable_tqdm`)."""
    if trainer.args.disable_tqdm:
        return
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(LabelledProgressCallback(label))
