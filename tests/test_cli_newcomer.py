"""Issue 20, "A newcomer is never lost", for `hf-prune`: `strategies` lists every method's parameters (type and
default, read from its config dataclass) and explains one; every name given on the command line gets a "did you
mean"; arguments are refused before anything heavy is imported or loaded; default outputs go under the run folder;
every error is one `hf-prune: error: ...` line."""

import dataclasses
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import types
import typing

import numpy as np
import pytest

from hf_prune import PruneResult, ScoreRecord, get_strategy
from hf_prune.cli import build_parser, main
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A PruningTrainer-like output_dir: 12 epochs (enough for dyn_unc's default window of 10), 4 classes."""
    rng = np.random.default_rng(0)
    p = rng.random((12, 80)).astype(np.float32)
    root = tmp_path_factory.mktemp("newcomer") / "run"
    ScoreRecord.from_arrays({"p_target": p, "correct": (p > 0.5).astype(np.float32)},
                            labels=np.arange(80) % 4).save(root / "scores")  # fmt: skip
    return root


def strategies_output(capsys, *argv) -> str:
    assert main(["strategies", *argv]) == 0
    return capsys.readouterr().out


def flat(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------------------- what a config says


def expected_type(annotation) -> str:
    if annotation is typing.Any:
        return "any"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else expected_type(a) for a in typing.get_args(annotation))
    return annotation.__name__


def expected_default(field: dataclasses.Field) -> str:
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def expected_signatures(config_class) -> list[str]:
    hints = typing.get_type_hints(config_class)
    return [
        f"{f.name}: {expected_type(hints[f.name])} = {expected_default(f)}" for f in dataclasses.fields(config_class)
    ]


def registries():
    from hf_prune.dynamic import POLICIES
    from hf_prune.strategies import STRATEGIES

    return STRATEGIES, POLICIES


def entry(listing: str, name: str) -> str:
    """The lines of `name`'s entry in the listing, joined (an entry starts with `  name  ` and runs to the next)."""
    lines = listing.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {name}  "))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^  \S|^\S|^$", lines[i])), len(lines))
    return flat("\n".join(lines[start:end]))


# ------------------------------------------------------------------------------------------ hf-prune strategies


def test_strategies_lists_every_parameter_with_its_type_and_default_from_the_dataclass(capsys):
    listing = strategies_output(capsys)
    strategies, policies = registries()
    assert strategies.names() and policies.names()
    for registry in (strategies, policies):
        for name in registry.names():
            cls = registry.get(name)
            block = entry(listing, name)
            assert flat(cls.summary) in block, name
            for signature in expected_signatures(cls.config_class):
                assert signature in block, (name, signature, block)
    # the papers, from the strategies' BibTeX
    for name in strategies.names():
        title = re.search(r"title\s*=\s*\{(.*)\}", strategies.get(name).citation or "")
        assert "paper " in entry(listing, name)
        if title:
            assert flat(title.group(1)) in entry(listing, name), name
    # the dynamic policies in a section of their own that says how they are used
    dynamic = listing.index("Dynamic policies")
    assert all(listing.index(f"\n  {name}  ") > dynamic for name in policies.names())
    assert all(listing.index(f"\n  {name}  ") < dynamic for name in strategies.names())
    section = flat(listing[dynamic:])
    assert "DynamicPruningTrainer" in section and "--dynamic_policy NAME" in section


def test_a_changed_default_shows_in_the_listing(capsys, monkeypatch):
    """The listing reads the dataclass, not a copy of it."""
    from hf_prune.strategies.dyn_unc import DynUncConfig

    fields = {f.name: f for f in dataclasses.fields(DynUncConfig)}
    monkeypatch.setattr(fields["window"], "default", 7)
    assert "window: int = 7" in entry(strategies_output(capsys), "dyn_unc")


def test_strategies_name_explains_one_strategy(capsys, run_dir, tmp_path):
    strategies, _ = registries()
    cls = strategies.get("dyn_unc")
    text = strategies_output(capsys, "dyn_unc")
    flat_text = flat(text)
    assert flat(cls.summary) in flat_text
    assert (
        "Large-scale Dataset Pruning with Dynamic Uncertainty" in flat_text and "Eq." in flat_text
    )  # paper, equation
    assert "sliding windows" in flat_text  # what the score means
    assert "removes: the lowest scores first: it keeps the highest" in flat_text  # which end goes
    hints = typing.get_type_hints(cls.config_class)
    for f in dataclasses.fields(cls.config_class):
        assert f"{f.name}: {expected_type(hints[f.name])} = {expected_default(f)}" in text
        # its help: the field's metadata help, or its docstring entry where that says more
        doc = re.search(
            rf"^    {f.name} \(.*?\):(.*?)(?=^    \w+ \(|\Z)", inspect.getdoc(cls.config_class), re.M | re.S
        )
        assert flat(f.metadata["help"]) in flat_text or flat(doc.group(1)) in flat_text, f.name
    # the example command line is one that works
    example = next(line.strip() for line in text.splitlines() if line.strip().startswith("hf-prune select"))
    argv = example.split()[1:]
    assert argv[:2] == ["select", "runs/demo"] and "--param" in argv
    argv[1] = str(run_dir)
    assert main([*argv, "--out", str(tmp_path / "example")]) == 0
    assert PruneResult.load(tmp_path / "example").method == "dyn_unc"


@pytest.mark.parametrize("name", ["aum", "ccs", "dual", "random", "cartography"])
def test_strategies_name_says_which_end_is_removed(capsys, name):
    strategies, _ = registries()
    cls = strategies.get(name)
    text = flat(strategies_output(capsys, name))
    removes = text.split("removes: ", 1)[1]
    if name == "random":
        assert removes.startswith("a uniformly random subset")
    elif name == "ccs":
        assert removes.startswith("by stratified sampling")
    elif name == "dual":
        assert removes.startswith("by its `sampling` parameter")
    else:
        kept = "highest" if cls.keep == "high" else "lowest"
        assert removes.startswith(
            f"the {'lowest' if kept == 'highest' else 'highest'} scores first: it keeps the {kept}"
        )


def test_strategies_name_explains_a_dynamic_policy(capsys):
    _, policies = registries()
    text = strategies_output(capsys, "ucb")
    assert "dynamic policy: used through DynamicPruningTrainer / --dynamic_policy ucb" in text
    for signature in expected_signatures(policies.get("ucb").config_class):
        assert signature in text
    assert "prune_ratio: float = 0.5  (set with --dynamic_prune_ratio)" in text
    assert 'dynamic_policy_kwargs={"c": 1.0}' in text and "--dynamic_policy_kwargs '{\"c\": 1.0}'" in text


def test_an_unknown_name_gets_did_you_mean_and_the_pointer(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["strategies", "dynunc"])
    message = str(exc.value.code)
    assert message == (
        "hf-prune: error: unknown strategy or policy 'dynunc'; did you mean 'dyn_unc'? `hf-prune strategies` lists "
        "them all."
    )
    with pytest.raises(SystemExit, match=r"unknown strategy or policy 'uc_b'; did you mean 'ucb'\?"):
        main(["strategies", "uc_b"])
    with pytest.raises(SystemExit, match=r"unknown strategy or policy 'zzz'\. `hf-prune strategies` lists them all "
                                         r"\(known: aum, .*ucb"):  # fmt: skip
        main(["strategies", "zzz"])


# ------------------------------------------------------------------------------------------------- did you mean


def test_every_name_on_the_command_line_gets_did_you_mean(run_dir, tmp_path, capsys):
    out = ["--out", str(tmp_path / "never")]
    cases = [
        (["select", str(run_dir), "--strategy", "dynunc", "--prune-ratio", "0.2", *out],
         "unknown strategy 'dynunc'; did you mean 'dyn_unc'?"),
        (["plot", str(run_dir), "--strategy", "forgeting", *out], "unknown strategy 'forgeting'; did you mean 'forgetting'?"),
        (["select", str(run_dir), "--strategy", "dyn_unc", "--param", "windw=3", "--prune-ratio", "0.2", *out],
         "no strategy here takes parameter 'windw'; did you mean 'window'?"),
        (["plot", str(run_dir), "--strategy", "dyn_unc", "--param", "dyn_un.window=3", *out],
         "names strategy 'dyn_un', which is not a --strategy here; did you mean 'dyn_unc'?"),
        (["select", str(run_dir), "--strategy", "dyn_unc", "--param", "signal=p_targt", "--prune-ratio", "0.2", *out],
         "unknown signal 'p_targt'; did you mean 'p_target'?"),
        (["select", str(run_dir), "--strategy", "ccs", "--param", "score=forgeting", "--prune-ratio", "0.2", *out],
         "unknown strategy 'forgeting'; did you mean 'forgetting'?"),
        (["select", str(run_dir), "--strategy", "dyn_unc", "--selection", "rnak", "--prune-ratio", "0.2", *out],
         "--selection rnak does not apply to dyn_unc: it takes rank, ccs; did you mean 'rank'?"),
        (["select", str(run_dir), "--strategy", "ucb", "--prune-ratio", "0.2", *out],
         "'ucb' is a dynamic policy"),
    ]  # fmt: skip
    for argv, message in cases:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        text = str(exc.value.code)
        assert text.startswith("hf-prune: error: ") and message in text and "\n" not in text, (argv, text)
    # argparse's own names: commands, options, choices (Python 3.11's argparse suggests none of them)
    for argv, message in [
        (["selct", str(run_dir)], "invalid choice: 'selct' (choose from strategies, select, plot, push, import); "
                                  "did you mean 'select'?"),
        (["select", str(run_dir), "--strategy", "dyn_unc", "--prune-ration", "0.2"],
         "unrecognized option --prune-ration; did you mean '--prune-ratio'?"),
        (["select", str(run_dir), "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--keep", "hihg"],
         "invalid choice: 'hihg' (choose from high, low); did you mean 'high'?"),
        (["import", "dali-lst", "f.txt", "--source", "x", "--out", "y"], "did you mean 'dali-list'?"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("hf-prune: error: ") and message in err, err
        assert "--help`)" in err  # and where to look
    assert not (tmp_path / "never").exists()


# ------------------------------------------------------------------------------------ before anything heavy


EARLY_PROBE = """
import json, sys
from hf_prune.cli import main
errors = []
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
        errors.append(None)
    except SystemExit as err:
        errors.append(str(err.code))
heavy = [m for m in ("torch", "numpy", "datasets", "transformers", "matplotlib", "hf_prune.record",
                     "hf_prune.strategies") if m in sys.modules]
print(json.dumps({"errors": errors, "heavy": heavy}))
"""


def probe(script: str, cases: list[list[str]], tmp_path):
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bad_arguments_are_refused_with_nothing_heavy_imported(run_dir, tmp_path):
    """The ratio, the output folder, the run folder, the --param syntax, CCS's options, argparse's own checks: refused
    with only the standard library imported (no torch, numpy, record or strategies module)."""
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    run = str(run_dir)
    cases = [
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "1.5"], "--prune-ratio must be in (0, 1)"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0"], "--prune-ratio must be in (0, 1)"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "25"], "not a percentage: 25 % is 0.25"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "nan"], "--prune-ratio must be in (0, 1)"),
        (["plot", run, "--prune-ratio", "-0.1"], "--prune-ratio must be in (0, 1)"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--out", str(existing)],
         f"--out {existing} already exists; pass --overwrite"),
        (["plot", run, "--out", str(existing)], "already exists; pass --overwrite"),
        (["select", str(tmp_path / "nowhere"), "--strategy", "dyn_unc", "--prune-ratio", "0.2"], "does not exist"),
        (["select", str(tmp_path), "--strategy", "dyn_unc", "--prune-ratio", "0.2"], "no score record in"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--param", "window"], "KEY=VALUE"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--hard-cutoff", "0.1"],
         "apply to --selection ccs only"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--selection", "ccs", "--hard-cutoff",
          "0.5"], "--hard-cutoff must be in [0, --prune-ratio]"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--features", str(tmp_path / "nofeat")],
         "--features"),
        (["import", "score-csv", str(tmp_path / "missing.csv"), "--source", "x", "--prune-ratio", "1.5", "--out",
          str(tmp_path / "imp")], "--prune-ratio must be in (0, 1)"),
        (["import", "dali-list", str(tmp_path / "missing.txt"), "--source", "x", "--out", str(existing)],
         "already exists; pass --overwrite"),
    ]  # fmt: skip
    result = probe(EARLY_PROBE, [argv for argv, _ in cases], tmp_path)
    assert result["heavy"] == [], result["heavy"]
    for (argv, message), error in zip(cases, result["errors"]):
        assert error is not None and error.startswith("hf-prune: error: ") and message in error, (argv, error)
    assert (existing / "keep.txt").read_text() == "mine" and sorted(p.name for p in existing.iterdir()) == ["keep.txt"]


LOAD_PROBE = """
import json, sys
from hf_prune import record
loads = []
def refuse(*args, **kwargs):
    loads.append(str(args))
    raise AssertionError("the record was loaded")
record.ScoreRecord.load = classmethod(lambda cls, *a, **k: refuse(*a, **k))
from hf_prune.cli import main
errors = []
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
        errors.append(None)
    except SystemExit as err:
        errors.append(str(err.code))
heavy = [m for m in ("datasets", "transformers", "matplotlib") if m in sys.modules]
print(json.dumps({"errors": errors, "loads": loads, "heavy": heavy}))
"""


def test_strategy_and_parameter_errors_are_refused_before_the_record_is_loaded(run_dir, tmp_path):
    """What needs the strategies' configs (names, parameter values, selection modes, several runs) is checked from
    the configs: the record is never opened (its loader raises here), datasets and matplotlib are never imported."""
    run = str(run_dir)
    cases = [
        (["select", run, "--strategy", "dynunc", "--prune-ratio", "0.2"], "did you mean 'dyn_unc'?"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--param", "windw=3"], "did you mean"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--param", "window=abc"], "expected int"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--param", "window=1"], "window must be"),
        (["select", run, "--strategy", "cartography", "--prune-ratio", "0.2", "--param", "region=hardest"],
         "region must be one of"),
        (["select", run, "--strategy", "dyn_unc", "--prune-ratio", "0.2", "--selection", "beta"],
         "--selection beta does not apply to dyn_unc"),
        (["select", run, run, "--strategy", "dyn_unc", "--prune-ratio", "0.2"], "dyn_unc scores one run; got 2"),
        (["plot", run, "--strategy", "dyn_unc", "--strategy", "cartography", "--param", "cartography.region=x"],
         "region must be one of"),
        (["plot", run, "--strategy", "dyn_unc", "--param", "signal=p_targt"], "did you mean 'p_target'?"),
    ]  # fmt: skip
    result = probe(LOAD_PROBE, [argv for argv, _ in cases], tmp_path)
    assert result["loads"] == [] and result["heavy"] == [], result
    for (argv, message), error in zip(cases, result["errors"]):
        assert error is not None and error.startswith("hf-prune: error: ") and message in error, (argv, error)
    assert not (run_dir / "pruned").exists() and not (run_dir / "plots").exists()


def test_the_cli_finds_records_by_the_records_own_file_name():
    from hf_prune import cli, record

    assert cli.RECORD_FILE == record.RECORD_FILE


# ------------------------------------------------------------------------------------- outputs under the run


def test_default_outputs_go_under_the_run_folder_never_the_current_one(run_dir, tmp_path, monkeypatch, capsys):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert main(["select", str(run_dir), "--strategy", "dyn_unc", "--prune-ratio", "0.25"]) == 0
    out = run_dir / "pruned" / "dyn_unc_25"
    assert f"-> {out}" in capsys.readouterr().out
    expected = get_strategy("dyn_unc").select(ScoreRecord.load(run_dir / "scores"), 0.25)
    np.testing.assert_array_equal(PruneResult.load(out).kept_ids, expected.kept_ids)
    # the record folder itself names the same run; options that change the list change the folder's name
    assert main(["select", str(run_dir / "scores"), "--strategy", "random", "--prune-ratio", "0.5", "--class-balanced",
                 "--selection", "ccs", "--keep", "low"]) == 0  # fmt: skip
    assert (run_dir / "pruned" / "random_ccs_keep_low_50_balanced" / "README.md").is_file()
    # the same command again is refused, before anything is loaded, unless --overwrite
    with pytest.raises(SystemExit, match=r"the output folder .*dyn_unc_25 \(the default; --out picks another\) already "
                                         r"exists; pass --overwrite"):  # fmt: skip
        main(["select", str(run_dir), "--strategy", "dyn_unc", "--prune-ratio", "0.25"])
    assert main(["select", str(run_dir), "--strategy", "dyn_unc", "--prune-ratio", "0.25", "--overwrite"]) == 0
    if importlib.util.find_spec("matplotlib") is not None:
        assert main(["plot", str(run_dir), "--strategy", "dyn_unc"]) == 0
        assert (run_dir / "plots" / "data_map_dyn_unc.png").read_bytes()[:4] == b"\x89PNG"
    assert list(cwd.iterdir()) == []


def test_help_examples_write_under_runs_and_every_command_has_an_example():
    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    texts = {"hf-prune": parser.format_help(), **{name: p.format_help() for name, p in subs.choices.items()}}
    import hf_prune.cli as cli
    import hf_prune.importers.command as command

    for module in (cli, command):  # their docstrings' ```bash examples
        texts[module.__name__] = module.__doc__.split("```bash", 1)[1].split("```", 1)[0]
    for name, text in texts.items():
        if not name.startswith("hf_prune."):
            assert "examples:" in text, name
            text = text.split("examples:", 1)[1]
        commands = " ".join(line.strip() for line in text.replace("\\\n", " ").splitlines() if "hf-prune " in line)
        for out in re.findall(r"--out (\S+)", commands):
            assert out.startswith("runs/"), (name, out)
        for run in re.findall(r"hf-prune (?:select|plot) (\S+)", commands):
            assert run.startswith(("runs/", "RUN_DIR")), (name, run)


# ------------------------------------------------------------------------------------------- one line, exit code


def test_errors_are_one_line_on_stderr_with_no_traceback(run_dir, tmp_path):
    cases = [
        (["select", str(run_dir), "--strategy", "dyn_unc", "--prune-ratio", "1.5"], 1),
        (["selct"], 2),
        (["strategies", "dynunc"], 1),
        (["select", str(run_dir), "--strategy", "aum", "--prune-ratio", "0.2", "--out", str(tmp_path / "a")], 1),
    ]
    for argv, code in cases:
        proc = subprocess.run([sys.executable, "-m", "hf_prune.cli", *argv], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == code, (argv, proc.stderr)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("hf-prune: error: "), (argv, proc.stderr)
        assert proc.stdout == ""
    assert not (tmp_path / "a").exists()


def test_every_command_help_has_examples(capsys):
    for command in ("strategies", "select", "plot", "push", "import"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and f"hf-prune {command}" in out.split("examples:")[1], command
