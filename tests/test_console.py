"""What a run tells its user: a banner, numbered phases, labelled progress bars, fractions as percentages, and one
logging system (transformers' verbosity governs hf_prune's messages too)."""

import logging

from transformers import ProgressCallback

from hf_prune.console import (
    LabelledProgressCallback,
    banner,
    format_fractions,
    label_progress_bars,
    phase,
    setup_logging,
)


def test_banner_phase_and_fractions():
    text = banner("hf_prune", {"processes": 2, "train rows": "10,000 of 60,000"})
    assert text.splitlines() == ["==== hf_prune ====", "  processes   2", "  train rows  10,000 of 60,000"]
    assert phase(2, 4, "Retraining") == "[2/4] Retraining"
    assert format_fractions({"never": 0.031, "always": 0.5}) == "never 3.1 %, always 50.0 %"


def test_setup_logging_routes_hf_prune_through_one_handler(capfd):
    from transformers import TrainingArguments

    setup_logging(TrainingArguments(output_dir="x", log_level="info", report_to=[]))
    logging.getLogger("hf_prune.something").info("hello from hf_prune")
    assert "hello from hf_prune" in capfd.readouterr().err
    setup_logging(TrainingArguments(output_dir="x", log_level="error", report_to=[]))
    logging.getLogger("hf_prune.something").info("quiet now")
    assert "quiet now" not in capfd.readouterr().err
    assert len([h for h in logging.getLogger("hf_prune").handlers if getattr(h, "_hf_prune", False)]) == 1


def test_progress_bars_are_labelled():
    class FakeTrainer:
        class args:
            disable_tqdm = False

        def __init__(self):
            self.callbacks = [ProgressCallback()]

        def remove_callback(self, cls):
            self.callbacks = [c for c in self.callbacks if not isinstance(c, cls)]

        def add_callback(self, cb):
            self.callbacks.append(cb)

    trainer = FakeTrainer()
    label_progress_bars(trainer, "[1/3] full data")
    (callback,) = trainer.callbacks
    assert isinstance(callback, LabelledProgressCallback) and callback.label == "[1/3] full data"
