"""`DynamicPruningArguments`: the dynamic pruning fields (help text, checks with the fix), a policy's own parameters
through `dynamic_policy_kwargs` (a dict or a JSON string, checked against the policy's config, unknown keys refused
with the accepted ones), `num_epochs` filled from `num_train_epochs`, the command line and JSON round trip, and the
fields of earlier versions refused with where they went."""

import dataclasses
import json

import pytest
from transformers import HfArgumentParser

from hf_prune import DynamicPruningArguments, PruningArguments, get_policy
from hf_prune.dynamic import list_policies


def make(tmp_path, **kw):
    return DynamicPruningArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, **kw)


def test_every_added_field_has_help():
    inherited = PruningArguments.__dataclass_fields__
    added = [f for f in dataclasses.fields(DynamicPruningArguments) if f.name not in inherited]
    assert {f.name for f in added} == {"dynamic_policy", "dynamic_prune_ratio", "pruning_period", "dynamic_scoring",
                                       "dynamic_policy_kwargs", "dynamic_round_to_batches"}  # fmt: skip
    assert all(f.metadata.get("help") for f in added)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({}, "needs `dynamic_policy`.*PruningArguments"),
        ({"dynamic_policy": "ucbb"}, "Unknown dynamic_policy 'ucbb'"),
        ({"dynamic_policy": "ucb", "dynamic_prune_ratio": 1.0}, "dynamic_prune_ratio must be in \\[0, 1\\)"),
        ({"dynamic_policy": "ucb", "pruning_period": 0}, "pruning_period must be an integer >= 1"),
        ({"dynamic_policy": "ucb", "dynamic_scoring": "eval"}, "dynamic_scoring must be 'pass'"),
        ({"dynamic_policy": "rs2", "pruning_period": 2}, "use pruning_period=1"),
        ({"dynamic_policy": "ucb", "dynamic_policy_kwargs": {"alpha": 0.0}}, "alpha must be in \\(0, 1\\]"),
        ({"dynamic_policy": "ucb", "dynamic_policy_kwargs": {"epsilon": 0.1}},
         r"unknown key\(s\) \['epsilon'\] for dynamic_policy='ucb'; it accepts \['alpha', 'class_balanced', 'c'\]"),
        ({"dynamic_policy": "rs2", "dynamic_policy_kwargs": {"c": 1.0}}, "it accepts none"),
        ({"dynamic_policy": "ucb", "dynamic_policy_kwargs": {"prune_ratio": 0.3}}, "it is `dynamic_prune_ratio`"),
        ({"dynamic_policy": "infobatch", "dynamic_policy_kwargs": {"num_epochs": 3}}, "from `num_train_epochs`"),
        ({"dynamic_policy": "ucb", "dynamic_policy_kwargs": "{c: 2}"}, "must be a JSON object"),
        ({"dynamic_policy": "ucb", "dynamic_policy_kwargs": "[1]"}, "must be a dict"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_with_the_fix(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        make(tmp_path, **kw)


def test_policy_kwargs_build_the_policy_through_its_config(tmp_path):
    args = make(tmp_path, dynamic_policy="ucb", dynamic_prune_ratio=0.3, dynamic_policy_kwargs={"c": 2.0})
    assert args.policy_params() == {"prune_ratio": 0.3, "c": 2.0}
    policy = get_policy(args.dynamic_policy, **args.policy_params())
    assert policy.params == {"prune_ratio": 0.3, "alpha": 0.8, "class_balanced": False, "c": 2.0}
    # num_epochs comes from num_train_epochs where the policy takes it; a step budget has none
    assert make(tmp_path, dynamic_policy="infobatch", num_train_epochs=7.5).policy_params()["num_epochs"] == 8
    assert make(tmp_path, dynamic_policy="seta", max_steps=10).policy_params()["num_epochs"] is None
    assert "num_epochs" not in make(tmp_path, dynamic_policy="rs2").policy_params()
    # every registered policy is reachable with its defaults
    for name in list_policies():
        get_policy(name, **make(tmp_path, dynamic_policy=name).policy_params())


def test_command_line_and_json_round_trip(tmp_path):
    (args,) = HfArgumentParser(DynamicPruningArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--record_signals", "p_target,el2n", "--dynamic_policy", "ucb",
         "--dynamic_policy_kwargs", '{"c": 2.0, "class_balanced": true}', "--use_cpu", "true", "--report_to", "none"]
    )  # fmt: skip
    assert args.record_signals == ["p_target", "el2n", "loss"]  # train_loss scoring adds the loss it feeds on
    assert args.dynamic_policy_kwargs == {"c": 2.0, "class_balanced": True}
    saved = json.loads(args.to_json_string())
    assert saved["dynamic_policy"] == "ucb" and saved["dynamic_policy_kwargs"] == {"c": 2.0, "class_balanced": True}
    assert make(tmp_path, **{k: saved[k] for k in ("dynamic_policy", "dynamic_policy_kwargs")}).policy_params() == {
        "prune_ratio": 0.5, "c": 2.0, "class_balanced": True}  # fmt: skip


def test_fields_of_earlier_versions_say_where_they_went(tmp_path):
    with pytest.raises(TypeError, match=r"has no dynamic_c, seta_num_groups.*dynamic_policy_kwargs=\{'c': 2.0, "
                                        r"'num_groups': 3\}.*--dynamic_policy_kwargs '\{\"c\": 2.0"):  # fmt: skip
        make(tmp_path, dynamic_policy="ucb", dynamic_c=2.0, seta_num_groups=3)


def test_pruning_arguments_are_the_same_run_without_dynamic_pruning(tmp_path):
    args = make(tmp_path, dynamic_policy="ucb", num_train_epochs=3, learning_rate=2e-3, record_signals=["p_target"])
    plain = args.pruning_arguments()
    assert type(plain) is PruningArguments and not hasattr(plain, "dynamic_policy")
    assert (plain.num_train_epochs, plain.learning_rate, plain.record_signals) == (3, 2e-3, ["p_target", "loss"])
