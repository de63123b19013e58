"""`PruningArguments`: every added field has help text, bad values are refused with what to do, strings from the
command line are parsed, and the arguments round-trip through JSON like any `TrainingArguments`. (Dynamic pruning's
arguments, `DynamicPruningArguments`, are tested in test_dynamic_config.py.)"""

import dataclasses
import json

import pytest
from transformers import HfArgumentParser, TrainingArguments

from hf_prune import PruningArguments


def make(tmp_path, **kw):
    return PruningArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, **kw)


def test_every_added_field_has_help():
    added = [f for f in dataclasses.fields(PruningArguments) if f.name not in TrainingArguments.__dataclass_fields__]
    assert len(added) >= 7
    assert all(f.metadata.get("help") for f in added), [f.name for f in added if not f.metadata.get("help")]


def test_bad_values_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="Unknown signal"):
        make(tmp_path, record_signals=["p_target", "confidence"])
    with pytest.raises(TypeError, match="PruningArguments has no dynamic_policy.*DynamicPruningArguments"):
        make(tmp_path, dynamic_policy="ucb")
    with pytest.raises(TypeError, match="has no pruning_period, infobatch_delta.*DynamicPruningTrainer"):
        make(tmp_path, pruning_period=2, infobatch_delta=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_field'"):
        make(tmp_path, no_such_field=1)  # not ours: the dataclass's own error
    with pytest.raises(ValueError, match="record_num_samples must be positive"):
        make(tmp_path, record_num_samples=0)


def test_command_line_and_json_round_trip(tmp_path):
    (args,) = HfArgumentParser(PruningArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--record_signals", "p_target,el2n", "--use_cpu", "true", "--report_to",
         "none"]
    )  # fmt: skip
    assert args.record_signals == ["p_target", "el2n"]
    saved = json.loads(args.to_json_string())
    assert saved["record_signals"] == ["p_target", "el2n"] and "dynamic_policy" not in saved


def test_record_storage_window_and_overwrite_fields(tmp_path):
    assert make(tmp_path).record_dtype == "float32" and make(tmp_path).overwrite_score_record is False
    assert make(tmp_path, record_dtype="float16").record_dtype == "float16"
    with pytest.raises(ValueError, match="record_dtype must be one of"):
        make(tmp_path, record_dtype="bfloat16")
    with pytest.raises(ValueError, match="dyn_unc_window must be an integer >= 2"):
        make(tmp_path, dyn_unc_window=1)
    with pytest.raises(ValueError, match="No window fits fewer than 3 epochs: train for at least 4 epochs"):
        make(tmp_path, dyn_unc_window=3, num_train_epochs=2)
    assert make(tmp_path, dyn_unc_window=3, num_train_epochs=4).dyn_unc_window == 3
    assert make(tmp_path, dyn_unc_window=50, max_steps=10).dyn_unc_window == 50  # epochs unknown yet: checked in train
    (args,) = HfArgumentParser(PruningArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--overwrite_score_record", "--record_dtype", "float16", "--dyn_unc_window",
         "5", "--num_train_epochs", "8", "--use_cpu", "true", "--report_to", "none"]
    )  # fmt: skip
    assert args.overwrite_score_record is True and args.record_dtype == "float16" and args.dyn_unc_window == 5
