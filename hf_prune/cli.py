"""`hf-prune`: the command line over hf_prune's public API (no logic of its own).

```bash
hf-prune strategies                       # every method, its parameters (type = default) and its paper
hf-prune strategies dyn_unc               # one method: its score, which end it removes, each parameter, an example
hf-prune select runs/demo --strategy dyn_unc --prune-ratio 0.25                 # -> runs/demo/pruned/dyn_unc_25
hf-prune select runs/demo --strategy forgetting --prune-ratio 0.5 --class-balanced --out runs/demo/pruned/fgt_50
hf-prune select runs/demo --strategy ccs --param score=aum --param hard_cutoff=0.1 --prune-ratio 0.7
hf-prune plot runs/demo --strategy dyn_unc --strategy forgetting --prune-ratio 0.25     # -> runs/demo/plots/
hf-prune push runs/demo/pruned/dyn_unc_25 --repo my-org/fashion-mnist-dyn-unc-25
```

Outputs go under the run folder unless `--out` names another folder: nothing is written to the current folder by
surprise. Every argument is checked before anything heavy: the ratio, the output folder, the run folder (first, with
nothing imported but the standard library), then the strategy, its parameters and its selection mode (from the
strategies' config dataclasses, without reading the record); only then is the record loaded. A wrong name (command,
option, strategy, parameter, signal) is answered with "did you mean ...?". Every expected failure is one line,
`hf-prune: error: ...`, on stderr with a non-zero exit status (`HF_PRUNE_TRACEBACK=1` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import textwrap
import types
import typing
import warnings
from pathlib import Path

from .version import __version__


PROG = "hf-prune"
ERROR_PREFIX = f"{PROG}: error: "
RATIO_HELP = "fraction of samples REMOVED, in (0, 1): 0.25 removes a quarter and keeps 75%%"
# `hf_prune.record.RECORD_FILE`, named here so that finding a run imports nothing heavy (a test checks they agree).
RECORD_FILE = "record.json"
PRUNED_FOLDER = "pruned"  # `select`'s default output: RUN/pruned/<strategy>_<percent removed>
PLOTS_FOLDER = "plots"  # `plot`'s default output: RUN/plots
EXAMPLE_RUN = "runs/demo"  # the run folder `make demo` writes, used in every example
# Policy parameters that `DynamicPruningArguments` fills from its own fields (`dynamic_config._FROM_OTHER_ARGUMENTS`;
# not imported: that module imports transformers).
POLICY_FIELDS_FROM_ARGUMENTS = {
    "prune_ratio": "set with --dynamic_prune_ratio",
    "num_epochs": "filled from --num_train_epochs",
}


# ---------------------------------------------------------------------------------------------- errors and names


def did_you_mean(name: str, choices, n: int = 3) -> str:
    """`" did you mean 'x'?"` for the close matches of `name` among `choices` (difflib), or `""`."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.6)
    return f" did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _unknown(what: str, name: str, choices, pointer: str) -> str:
    """`unknown <what> 'x'; did you mean 'y'? <pointer>` (the known names listed when none is close)."""
    suggestion = did_you_mean(name, choices)
    if suggestion:
        return f"unknown {what} {name!r};{suggestion} {pointer}."
    return f"unknown {what} {name!r}. {pointer} (known: {', '.join(map(str, choices))})."


# Library messages speak Python (`token=`, `source=`); on the command line they should name the flags.
_CLI_TERMS = [
    ("pass `token=`", "pass --token"),
    ("`token=`", "--token"),
    ("Pass `source=(repo_id, split, revision)`", "Pass --source REPO_ID [SPLIT [REVISION]]"),
    ("`source=`", "--source"),
    ("pass `config=` to pick one", "pass --config to pick one"),
    ("pass `features=`", "pass --features"),
    ("write one with `PruneResult.save(dir)`", "write one with `hf-prune select RUN_DIR ... --out DIR`"),
    ("Write one with `PruneResult.save(dir)`", "Write one with `hf-prune select RUN_DIR ... --out DIR`"),
]


def cli_terms(message: str) -> str:
    """A library message in command-line terms, on one line."""
    for python, flag in _CLI_TERMS:
        message = message.replace(python, flag)
    return " ".join(str(message).split())


class _CliTermsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = cli_terms(record.getMessage()), None
        return True


def _fail(message: str):
    """Ends the command with one line on stderr, `hf-prune: error: <message>`, and exit status 1."""
    raise SystemExit(ERROR_PREFIX + cli_terms(message))


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (`hf-prune: error: ... (see `hf-prune select --help`)`, exit status 2)
    and a "did you mean" for an invalid choice (a command name, `--keep`...), which Python 3.11's argparse lacks."""

    def error(self, message: str):
        self.exit(2, f"{ERROR_PREFIX}{' '.join(message.split())} (see `{self.prog} --help`)\n")

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r} (choose from {', '.join(choices)});{did_you_mean(value, choices)}"
                .rstrip(";"),
            )  # fmt: skip


def _check_option_names(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuses a misspelt `--option` with the close ones, before argparse reads the arguments: argparse would report
    it as "unrecognized" with no hint, or only after complaining that a required option is missing."""
    subparsers = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    target, start = parser, 0
    for i, token in enumerate(argv):
        if not token.startswith("-"):
            if subparsers is not None and token in subparsers.choices:
                target, start = subparsers.choices[token], i + 1
            break
    known = list(target._option_string_actions)
    for token in argv[start:]:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0]
        if flag in known or any(k.startswith(flag) for k in known):  # an abbreviation: argparse decides
            continue
        options = sorted(k for k in known if k.startswith("--"))
        target.error(f"unrecognized option {flag};{did_you_mean(flag, options)}".rstrip(";"))


# ---------------------------------------------------------------------------------- checks that load nothing


def _check_ratio(ratio: float | None) -> None:
    if ratio is None:
        return
    if not 0.0 < ratio < 1.0:  # NaN too
        hint = (
            f" (a fraction, not a percentage: {ratio:g} % is {ratio / 100:g})"
            if 1.0 < ratio <= 100.0 and ratio == int(ratio)
            else ""
        )
        _fail(
            f"--prune-ratio must be in (0, 1): it is the fraction of samples REMOVED (0.25 removes a quarter and "
            f"keeps 75%); got {ratio:g}{hint}."
        )


def _check_selection_options(args) -> None:
    """`--hard-cutoff`, `--num-strata` and `--seed` are CCS's; checked against `--selection` and the ratio."""
    ccs_only = [(flag, value) for flag, value in (("--hard-cutoff", args.hard_cutoff), ("--num-strata", args.num_strata),
                                                  ("--seed", args.seed)) if value is not None]  # fmt: skip
    if args.selection != "ccs":
        if ccs_only:
            _fail(f"{', '.join(flag for flag, _ in ccs_only)} apply to --selection ccs only.")
        return
    args.hard_cutoff = 0.0 if args.hard_cutoff is None else args.hard_cutoff
    args.num_strata = 50 if args.num_strata is None else args.num_strata
    args.seed = 0 if args.seed is None else args.seed
    ratio = args.prune_ratio
    if not 0.0 <= args.hard_cutoff <= ratio:
        _fail(f"--hard-cutoff must be in [0, --prune-ratio] = [0, {ratio:g}]: the fraction of the hardest samples "
              f"removed before stratifying, part of the fraction removed; got {args.hard_cutoff:g}.")  # fmt: skip
    if args.num_strata < 1:
        _fail(f"--num-strata must be >= 1; got {args.num_strata}.")


def _check_source(source: list[str] | None):
    if not source:
        return None
    if len(source) > 3:
        _fail("--source takes REPO_ID [SPLIT [REVISION]].")
    return source[0] if len(source) == 1 else tuple(source)


def _find_record_dir(run_dir: str) -> Path:
    """The record folder of RUN_DIR: RUN_DIR itself, RUN_DIR/scores or its one sub-folder holding `record.json`.
    Looks at file names only (the record is not opened)."""
    path = Path(run_dir)
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        _fail(
            f"RUN_DIR {path} {what}. Pass a PruningTrainer output_dir (holding scores/{RECORD_FILE}) or a record "
            f"folder (holding {RECORD_FILE})."
        )
    for candidate in (path, path / "scores"):
        if (candidate / RECORD_FILE).is_file():
            return candidate
    found = sorted(p.parent for p in path.glob(f"*/{RECORD_FILE}"))
    if len(found) == 1:
        return found[0]
    several = f" ({len(found)} sub-folders hold one: pass one of them)" if found else ""
    _fail(
        f"no score record in {path}{several}. Pass a PruningTrainer output_dir (holding scores/{RECORD_FILE}) or a "
        f"record folder (holding {RECORD_FILE})."
    )


def run_folder(run_dir: str | os.PathLike) -> Path:
    """The run a RUN_DIR names, under which the default outputs go: RUN_DIR itself, or its parent when RUN_DIR is a
    trainer's `scores/` record folder."""
    path = Path(run_dir)
    if path.name == "scores" and (path / RECORD_FILE).is_file():
        return path.parent
    return path


def percent_text(ratio: float) -> str:
    """`0.25 -> "25"`, `0.125 -> "12p5"` (as the list's config names, `prune_25`)."""
    pct = round(float(ratio) * 100, 6)
    return str(int(pct)) if pct == int(pct) else f"{pct:g}".replace(".", "p")


def default_select_out(args) -> Path:
    """`select`'s output when no `--out` is given: RUN/pruned/<strategy>[_<selection>][_keep_<end>]_<pct>[_balanced]."""
    parts = [args.strategy]
    if args.selection:
        parts.append(args.selection)
    if args.keep:
        parts.append(f"keep_{args.keep}")
    parts.append(percent_text(args.prune_ratio))
    if args.class_balanced:
        parts.append("balanced")
    return run_folder(args.run_dir[0]) / PRUNED_FOLDER / "_".join(parts)


def _check_out(out: Path, overwrite: bool, given: bool) -> None:
    what = f"--out {out}" if given else f"the output folder {out} (the default; --out picks another)"
    if out.exists() and not out.is_dir():
        _fail(f"{what} is a file; pass a folder to write to (it is created if missing).")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        _fail(f"{what} already exists; pass --overwrite to replace what this command writes there, or another --out.")


def _check_features(features: str | None) -> None:
    if features is not None and not Path(features).exists():
        _fail(f"--features {features} does not exist; pass the folder `hf_prune.extract_features` wrote.")


def _split_params(items: list[str]) -> list[tuple[str, str, str, str]]:
    """`--param [STRATEGY.]KEY=VALUE` as `(item, strategy or "", key, value)`; checks the syntax only."""
    out = []
    for item in items or []:
        if "=" not in item:
            _fail(f"--param expects KEY=VALUE (e.g. --param window=10); got {item!r}.")
        key, value = (part.strip() for part in item.split("=", 1))
        target, _, field = key.rpartition(".")
        if not field:
            _fail(f"--param expects KEY=VALUE (e.g. --param window=10); got {item!r}.")
        out.append((item, target, field, value))
    return out


# ------------------------------------------------------------------ checks against the strategies (no record)


def _strategies():
    from .strategies import STRATEGIES

    return STRATEGIES


def _policies():
    from .dynamic import POLICIES

    return POLICIES


def _strategy_class(name: str):
    """The static strategy registered as `name`; a policy or an unknown name ends the command with what to do."""
    strategies = _strategies()
    if name in strategies:
        return strategies.get(name)
    if name in _policies():
        _fail(
            f"{name!r} is a dynamic policy: it re-selects the training subset during training (DynamicPruningTrainer, "
            f"--dynamic_policy {name}), not from a record. `hf-prune strategies {name}` explains it; `hf-prune "
            "strategies` lists the static strategies that `select` and `plot` take."
        )
    _fail(_unknown("strategy", name, strategies.names(), "`hf-prune strategies` lists them all"))


def _parse_params(items: list[str], strategies: list[str]) -> dict[str, dict[str, str]]:
    """`--param KEY=VALUE` (for every strategy whose config has KEY) or `--param STRATEGY.KEY=VALUE` (for one), as
    `{strategy: {key: text}}`; a key no chosen strategy takes is an error, never silently ignored."""
    classes = {name: _strategy_class(name) for name in strategies}
    out: dict[str, dict[str, str]] = {name: {} for name in strategies}
    for item, target, field, value in _split_params(items):
        if target and target not in out:
            hint = did_you_mean(target, list(out))
            _fail(f"--param {item!r} names strategy {target!r}, which is not a --strategy here;{hint}".rstrip(";"))
        targets = [target] if target else list(out)
        takers = [name for name in targets if field in classes[name].config_class.field_names()]
        if not takers:
            fields = sorted({f for name in targets for f in classes[name].config_class.field_names()})
            accepted = {name: classes[name].config_class.field_names() for name in targets}
            _fail(
                f"no strategy here takes parameter {field!r};{did_you_mean(field, fields)} they accept {accepted} "
                "(`hf-prune strategies NAME` explains each)."
            )
        for name in takers:
            out[name][field] = value
    return out


def _named_choices(field: str) -> tuple[str, list[str]] | None:
    """For parameters whose value names something: `(what, known names)`."""
    if field == "signal":
        from .recording import SIGNALS

        return "signal", list(SIGNALS)
    if field in ("score", "cutoff"):  # ccs: the strategy whose scores it stratifies / whose hard end it cuts
        return "strategy", [n for n in _strategies().names() if n != "ccs"]
    return None


def _check_named_values(name: str, params: dict[str, str]) -> None:
    for field, value in params.items():
        named = _named_choices(field)
        if named is None or value.lower() in ("none", "null"):
            continue
        what, choices = named
        if value not in choices:
            _fail(f"--param {field}={value} ({name}): " + _unknown(what, value, choices, f"`hf-prune strategies {name}` "
                  f"says what {field} takes"))  # fmt: skip


def _build(name: str, params: dict[str, str], features: str | None = None):
    """The strategy `name` with `params` (strings, parsed through its config's field types), or a one-line error."""
    from .strategies import get_strategy

    config_class = _strategy_class(name).config_class
    _check_named_values(name, params)
    try:
        config = config_class.from_strings(params)
    except (TypeError, ValueError) as err:
        _fail(f"--strategy {name}: {err}")
    if features is not None:
        if "features" in config_class.field_names() and config.features is None:
            config.features = features
        elif name == "ccs":
            config.score_params.setdefault("features", features)
    try:
        return get_strategy(name, config=config)
    except (TypeError, ValueError) as err:
        _fail(f"--strategy {name}: {err}")


def _check_strategy(strategy, args, num_runs: int) -> None:
    """What the built strategy can do: the `--selection` mode, several runs."""
    name = strategy.name
    if args.selection is not None and args.selection not in strategy.selections:
        _fail(
            f"--selection {args.selection} does not apply to {name}: it takes "
            f"{', '.join(strategy.selections)};{did_you_mean(args.selection, strategy.selections)}".rstrip(";")
        )
    if num_runs > 1 and not strategy.accepts_several_records():
        several = [n for n in _strategies().names() if _strategies().get(n).multi_record]
        _fail(f"{name} scores one run; got {num_runs} RUN_DIRs. Only methods that average over runs "
              f"({', '.join(several)}) take several.")  # fmt: skip


# ------------------------------------------------------------------------------------ reading the run's record


def _run_params(record, strategy: str, given: dict[str, str]) -> dict[str, str]:
    """The method parameters the run recorded (a recipe writes `strategy_params` into the record's metadata; a
    `PruningArguments.dyn_unc_window` is read too), as defaults for those not given; a given one that differs warns."""
    meta = record.metadata or {}
    recorded = dict((meta.get("strategy_params") or {}).get(strategy) or {})
    window = (meta.get("args") or {}).get("dyn_unc_window")
    if strategy == "dyn_unc" and window is not None:
        recorded.setdefault("window", window)
    out = dict(given)
    for key, value in recorded.items():
        if key not in given:
            out[key] = str(value)
            print(f"{strategy}: using {key}={value}, as the run recorded (override with --param {key}=...)")
        elif str(given[key]) != str(value):
            print(
                f"{PROG}: warning: the run was scored with {strategy} {key}={value}, but --param {key}={given[key]} "
                "was given; the list will differ from the run's own.",
                file=sys.stderr,
            )
    return out


def _subset_rows(record, run_dir: Path):
    """`(rows, num_source_rows, description)` when the run trained on part of its split, else None."""
    import numpy as np

    subset = (record.metadata or {}).get("train_subset") or {}
    if not subset or subset.get("num_rows") == subset.get("num_source_rows"):
        return None
    if subset.get("range"):
        rows = np.arange(*subset["range"], dtype=np.int64)
    elif subset.get("rows_file") and (run_dir / subset["rows_file"]).is_file():
        rows = np.load(run_dir / subset["rows_file"])
    else:
        print(
            f"{PROG}: warning: the run trained on {subset.get('num_rows')} of {subset.get('num_source_rows')} rows, "
            f"but {run_dir / str(subset.get('rows_file'))} is missing: the list's ids index the run's own rows.",
            file=sys.stderr,
        )
        return None
    return rows, int(subset["num_source_rows"]), subset.get("description")


def _select(strategy, records, args):
    kwargs = dict(class_balanced=args.class_balanced, keep=args.keep)
    if args.selection is not None:  # else the method's own default (rank; DUAL: beta; S2L: s2l)
        kwargs["selection"] = args.selection
    if args.selection == "ccs":
        kwargs.update(hard_cutoff=args.hard_cutoff, num_strata=args.num_strata, seed=args.seed)
    try:
        return strategy.select(records if len(records) > 1 else records[0], args.prune_ratio, **kwargs)
    except ValueError as err:
        _fail(str(err))


# ------------------------------------------------------------------------------ describing strategies and policies


def _width() -> int:
    return max(60, min(100, shutil.get_terminal_size((100, 24)).columns))


def type_name(annotation) -> str:
    """A field's type as the listing shows it: `int`, `float`, `str`, `bool`, `dict`, `int | None`, `any`."""
    if annotation is typing.Any:
        return "any"
    if annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        return getattr(origin, "__name__", str(annotation))
    return getattr(annotation, "__name__", str(annotation))


def value_text(value) -> str:
    """A value as it is written after `--param KEY=` (`none`, `true`, JSON for a dict or list)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _docstring_args(config_class) -> dict[str, str]:
    """`{field: text}` from the `Args:` sections of the config class's docstrings (its own over its bases')."""
    out: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        doc = inspect.cleandoc(vars(klass).get("__doc__") or "")
        current, in_args = None, False
        for line in doc.splitlines():
            if line.strip() == "Args:":
                in_args = True
                continue
            if not in_args:
                continue
            if line.strip() and not line.startswith(" "):
                break  # the next section
            match = re.match(r"^ {4}`?(\w+)`? \((.*?)\):\s*(.*)$", line)
            if match:
                current = match.group(1)
                out[current] = match.group(3).strip()
            elif current and line.startswith(" " * 6) and line.strip():
                out[current] += " " + line.strip()
            elif not line.strip():
                current = None
    return out


def parameters(config_class) -> list[dict]:
    """Every field of a method's config dataclass: `name`, `type` (see `type_name`), `default` (the value;
    `dataclasses.MISSING` when required), `help` (the field's `metadata["help"]`) and `doc` (its docstring entry)."""
    hints = typing.get_type_hints(config_class)
    docs = _docstring_args(config_class)
    return [
        {"name": f.name, "type": type_name(hints.get(f.name, typing.Any)), "default": _default(f),
         "help": f.metadata.get("help", ""), "doc": docs.get(f.name, "")}
        for f in dataclasses.fields(config_class)
    ]  # fmt: skip


def _signature(param: dict) -> str:
    default = "(required)" if param["default"] is dataclasses.MISSING else value_text(param["default"])
    return f"{param['name']}: {param['type']} = {default}"


def _bibtex_fields(citation: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", citation or "", re.M))


def paper(cls, venue: bool = False) -> str:
    """The method's paper in one line (`He et al. 2023, "Large-scale ..."`), from its BibTeX `citation`, else the
    first paragraph of its module's docstring (which names the paper and the equation)."""
    fields = _bibtex_fields(getattr(cls, "citation", "") or "")
    if not fields.get("title"):
        return _first_paragraph(sys.modules[cls.__module__].__doc__)
    authors = [a.strip() for a in fields.get("author", "").split(" and ") if a.strip()]

    def surname(author: str) -> str:
        return author.split(",")[0].strip() if "," in author else author.split()[-1]

    who = ""
    if authors:
        who = surname(authors[0]) + (" et al." if len(authors) > 2 else f" and {surname(authors[1])}" if
                                     len(authors) == 2 else "")  # fmt: skip
    text = f'{who} {fields.get("year", "")}, "{fields["title"]}"'.strip()
    where = fields.get("journal") or fields.get("booktitle")
    return f"{text}, {where}" if venue and where else text


def _first_paragraph(doc: str | None) -> str:
    return " ".join((inspect.cleandoc(doc or "").split("\n\n") or [""])[0].split())


# Paragraphs of a strategy's docstring that are about the implementation, not about what the score means.
_NOT_ABOUT_THE_SCORE = ("Fidelity", "Non-finite", "Parameters:", "Example", "Deliberate", "```")


def _score_paragraphs(cls) -> list[str]:
    paragraphs = inspect.cleandoc(inspect.getdoc(cls) or "").split("\n\n")
    out = []
    for paragraph in paragraphs:
        if paragraph.lstrip().startswith(_NOT_ABOUT_THE_SCORE):
            break
        out.append(paragraph)
    return out


def _wrap(text: str, indent: str, width: int) -> list[str]:
    """Wraps a docstring paragraph, keeping bullet items (`* `, `- `) as items."""
    lines, item = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("* ", "- ")) and item:
            lines.append(" ".join(item))
            item = []
        item.append(stripped)
    lines.append(" ".join(item))
    out = []
    for line in lines:
        bullet = line.startswith(("* ", "- "))
        out += textwrap.wrap(line, width, initial_indent=indent, subsequent_indent=indent + ("  " if bullet else ""),
                             break_on_hyphens=False) or [indent]  # fmt: skip
    return out


def _default_selection(cls) -> str | None:
    """The `selection` a strategy's `select` uses when none is given (None: its config decides, e.g. DUAL's
    `sampling`)."""
    return inspect.signature(cls.select).parameters["selection"].default


def _removes(cls) -> str:
    low, high = ("lowest", "highest") if cls.keep == "high" else ("highest", "lowest")
    other = "low" if cls.keep == "high" else "high"
    rank = f"the {low} scores first: it keeps the {high} (--keep {other} keeps the other end)"
    default = _default_selection(cls)
    if cls.name == "random":
        return "a uniformly random subset (seeded by its `seed`), whatever the end"
    if default == "rank":
        return rank
    if default == "ccs":
        return ("by stratified sampling over another strategy's scores (its `score`), not by one end: the hard "
                "cutoff removes the hardest first (the end that strategy keeps: low AUM, high forgetting...), then "
                "the budget is filled from every score stratum, smallest first")  # fmt: skip
    if default is None and "sampling" in cls.config_class.field_names():
        return (f"by its `sampling` parameter: sampled, not by one end, with the paper's sampling (default "
                f"{value_text(_default(next(f for f in dataclasses.fields(cls.config_class) if f.name == 'sampling')))})"
                f"; with --selection rank, {rank}")  # fmt: skip
    return f"by its own sampling ({', '.join(cls.selections)}), not by one end of the scores"


def _example_params(config_class, skip=()) -> list[tuple[str, object]]:
    """One parameter with a plain default for an example: the first the config declares itself (not inherited from
    a shared base, e.g. UCB's `c` rather than the EMA policies' `alpha`), else the first."""
    inherited = set()
    for base in config_class.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            inherited |= {f.name for f in dataclasses.fields(base)}
    fields = [f for f in dataclasses.fields(config_class) if f.name not in skip]
    for field in sorted(fields, key=lambda f: f.name in inherited):
        default = _default(field)
        if default is None or default is dataclasses.MISSING or isinstance(default, (dict, list)):
            continue
        return [(field.name, default)]
    return []


def _example_runs(cls) -> list[str]:
    return [f"{EXAMPLE_RUN}_seed0", f"{EXAMPLE_RUN}_seed1"] if cls.multi_record else [EXAMPLE_RUN]


def strategy_example(cls) -> str:
    """An example `hf-prune select` command line for the strategy `cls`."""
    runs = " ".join(_example_runs(cls))
    line = f"hf-prune select {runs} --strategy {cls.name} --prune-ratio 0.25"
    for key, value in _example_params(cls.config_class, skip=("features", "signal")):
        line += f" --param {key}={value_text(value)}"
    return line


def list_text() -> str:
    """What `hf-prune strategies` prints: every static strategy and every dynamic policy with a one-line summary,
    its paper and each parameter as `name: type = default`, read from its config dataclass."""
    strategies, policies = _strategies(), _policies()
    width = _width()
    indent = " " * 6

    def block(cls, notes: dict[str, str]) -> list[str]:
        lines = textwrap.wrap(f"{cls.name}  {cls.summary}", width, initial_indent="  ", subsequent_indent=indent,
                              break_on_hyphens=False)  # fmt: skip
        lines += textwrap.wrap(paper(cls), width, initial_indent=f"{indent}paper   ",
                               subsequent_indent=indent + " " * 8, break_on_hyphens=False)  # fmt: skip
        signatures = [_signature(p) + (f" ({notes[p['name']]})" if p["name"] in notes else "")
                      for p in parameters(cls.config_class)]  # fmt: skip
        lines += _wrap_items(signatures or ["(none)"], f"{indent}params  ", indent + " " * 8, width)
        return lines

    out = textwrap.wrap(
        "Static strategies score a recorded run (a PruningTrainer output_dir): hf-prune select RUN_DIR --strategy "
        "NAME --prune-ratio R [--param KEY=VALUE ...]. Parameters are listed as name: type = default.",
        width,
    ) + [""]  # fmt: skip
    for name in strategies.names():
        out += block(strategies.get(name), {})
    out += [""] + textwrap.wrap(
        "Dynamic policies re-select the training subset during training; they are used through "
        "DynamicPruningTrainer: DynamicPruningArguments(dynamic_policy=NAME, dynamic_prune_ratio=R, "
        "dynamic_policy_kwargs={...}), or on a command line --dynamic_policy NAME --dynamic_prune_ratio R "
        "--dynamic_policy_kwargs '{\"KEY\": VALUE}'. Not for `hf-prune select`.",
        width,
    ) + [""]  # fmt: skip
    for name in policies.names():
        out += block(policies.get(name), POLICY_FIELDS_FROM_ARGUMENTS)
    out += [""] + textwrap.wrap(
        "`hf-prune strategies NAME` explains one: what its score means, which end is removed, every parameter, and "
        "an example.",
        width,
    )  # fmt: skip
    return "\n".join(out)


def _wrap_items(items: list[str], first: str, rest: str, width: int) -> list[str]:
    """`items` joined by `;  ` and wrapped between items where it can (an item is never split unless too long)."""
    lines, line = [], first
    for i, item in enumerate(items):
        piece = item + (";" if i < len(items) - 1 else "")
        if line.strip() and line not in (first,) and len(line) + 1 + len(piece) > width:
            lines.append(line.rstrip())
            line = rest
        line += ("" if line in (first, rest) else "  ") + piece
    lines.append(line.rstrip())
    return lines


def _parameter_lines(params: list[dict], notes: dict[str, str], width: int) -> list[str]:
    out = []
    for p in params:
        out.append(f"  {_signature(p)}" + (f"  ({notes[p['name']]})" if p["name"] in notes else ""))
        text = max(p["help"], p["doc"], key=len)  # the fuller of the field's help and its docstring entry
        out += textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ",
                             break_on_hyphens=False)  # fmt: skip
    return out or ["  (none)"]


def describe_text(name: str) -> str:
    """What `hf-prune strategies NAME` prints: one strategy or policy in full."""
    strategies, policies = _strategies(), _policies()
    width = _width()
    if name in strategies:
        cls = strategies.get(name)
        params = parameters(cls.config_class)
        lines = [f"{name}: {cls.title or name}  (static strategy)"]
        lines += textwrap.wrap(cls.summary, width, initial_indent="  ", subsequent_indent="  ")
        lines += ["", "paper:"] + _wrap(paper(cls, venue=True), "  ", width)
        lines += ["", "method:"] + _wrap(_first_paragraph(sys.modules[cls.__module__].__doc__), "  ", width)
        lines += ["", "the score:"]
        for paragraph in _score_paragraphs(cls):
            lines += _wrap(paragraph, "  ", width)
        lines += ["", "removes:"] + _wrap(_removes(cls), "  ", width)
        needs = list(cls.requires)
        if "features" in cls.config_class.field_names():
            needs.append("a feature folder (--features, default RUN_DIR/features; hf_prune.extract_features)")
        lines += ["", "needs:"] + _wrap(
            f"recorded signal(s) {', '.join(needs)}" if needs else "no recorded signal", "  ", width
        )
        default_selection = _default_selection(cls)
        modes = ", ".join(f"{m} (default)" if m == default_selection else m for m in cls.selections)
        if default_selection is None and "sampling" in cls.config_class.field_names():
            modes += "; default: its `sampling` parameter"
        lines += ["", f"selection (--selection): {modes}"]
        if cls.multi_record:
            lines += ["several runs: yes, pass several RUN_DIRs to average over runs"]
        lines += ["", "parameters (--param KEY=VALUE, name: type = default):"]
        lines += _parameter_lines(params, {}, width - 6)
        out = run_folder(_example_runs(cls)[0]) / PRUNED_FOLDER / f"{name}_25"
        lines += [
            "",
            "example:",
            f"  {strategy_example(cls)}",
            f"      # writes {out}/, a Hub-ready folder; then:",
            f"  hf-prune push {out} --repo ORG/NAME",
        ]
        return "\n".join(lines)
    cls = policies.get(name)
    params = parameters(cls.config_class)
    lines = [f"{name}  (dynamic policy: used through DynamicPruningTrainer / --dynamic_policy {name})"]
    lines += textwrap.wrap(cls.summary, width, initial_indent="  ", subsequent_indent="  ")
    lines += ["", "paper:"] + _wrap(paper(cls, venue=True), "  ", width)
    lines += ["", "what it selects:"] + _wrap(_first_paragraph(inspect.getdoc(cls)), "  ", width)
    lines += ["", "parameters (dynamic_policy_kwargs, name: type = default):"]
    lines += _parameter_lines(params, POLICY_FIELDS_FROM_ARGUMENTS, width - 6)
    kwargs = dict(_example_params(cls.config_class, skip=tuple(POLICY_FIELDS_FROM_ARGUMENTS)))
    python = "{" + ", ".join(f"{json.dumps(k)}: {v!r}" for k, v in kwargs.items()) + "}"
    lines += ["", "example:",
              f"  DynamicPruningArguments(output_dir=\"runs/{name}\", dynamic_policy=\"{name}\", "
              f"dynamic_prune_ratio=0.5" + (f", dynamic_policy_kwargs={python})" if kwargs else ")"),
              f"  python recipes/dynamic_ucb.py --dynamic_policy {name} --dynamic_prune_ratio 0.5"
              + (f" --dynamic_policy_kwargs '{json.dumps(kwargs)}'" if kwargs else "")]  # fmt: skip
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- commands


def cmd_strategies(args) -> int:
    if args.name is None:
        print(list_text())
        return 0
    strategies, policies = _strategies(), _policies()
    if args.name not in strategies and args.name not in policies:
        _fail(_unknown("strategy or policy", args.name, strategies.names() + policies.names(),
                       "`hf-prune strategies` lists them all"))  # fmt: skip
    print(describe_text(args.name))
    return 0


def cmd_select(args) -> int:
    # 1. The arguments alone: nothing but the standard library is imported.
    _check_ratio(args.prune_ratio)
    _check_selection_options(args)
    source = _check_source(args.source)
    _split_params(args.param)
    _check_features(args.features)
    dirs = [_find_record_dir(d) for d in args.run_dir]
    out = Path(args.out) if args.out else default_select_out(args)
    _check_out(out, args.overwrite, given=args.out is not None)
    # 2. The strategy, its parameters and what it can do, from its config: the record is not read yet.
    given = _parse_params(args.param, [args.strategy])[args.strategy]
    _check_strategy(_build(args.strategy, given), args, len(dirs))
    # 3. The record.
    from .record import ScoreRecord

    records = [ScoreRecord.load(d) for d in dirs]
    params = _run_params(records[0], args.strategy, given)
    strategy = _build(args.strategy, params, args.features)
    result = _select(strategy, records, args)
    subset = _subset_rows(records[0], dirs[0].parent)
    scored = result.num_samples
    if subset is not None:
        result = result.to_source_rows(*subset)
        print(f"The run trained on {scored:,} of {subset[1]:,} rows ({subset[2]}): the list holds full-split ids.")
    record = records[0] if len(records) == 1 else None
    rows = subset[0] if subset is not None else None
    written = result.save(out, source=source, record=record, record_rows=rows)
    print(
        f"{result.method}: kept {result.num_kept:,} of {scored:,} samples "
        f"(removed {100 * result.prune_ratio:g}%) -> {written}"
    )
    return 0


def _gallery_images(record, run_dir: Path, args):
    """The run's training rows with their images, for `plot --gallery`: `--dataset` (a Hub id or a local folder), by
    default the dataset the run recorded (`dataset_repo_id` in the record's metadata; the embedded Fashion-MNIST
    offline), its `--dataset-split`, narrowed to the rows the run trained on."""
    from .data import FASHION_MNIST_HUB_ID, MissingColumnsError, load_fashion_mnist, load_image_dataset

    name = args.dataset or (record.metadata or {}).get("dataset_repo_id")
    if name is None:
        _fail("The record does not say which dataset it was made on: pass --dataset (a Hub id or a local folder).")
    if name == FASHION_MNIST_HUB_ID and args.dataset is None:
        data = load_fashion_mnist()
    else:
        try:
            data = load_image_dataset(name, image_column=args.image_column, label_column=args.label_column)
        except MissingColumnsError as err:
            _fail(f"{err} Here: --image-column / --label-column.")
    if args.dataset_split not in data:
        _fail(f"{name} has no split {args.dataset_split!r}; it has {list(data)}. Pass --dataset-split.")
    split = data[args.dataset_split]
    subset = _subset_rows(record, run_dir)
    if subset is not None:
        rows, num_source_rows, _ = subset
        if len(split) != num_source_rows:
            _fail(f"{name}[{args.dataset_split}] has {len(split):,} rows; the run trained on rows of a split of "
                  f"{num_source_rows:,}. Pass the dataset the run was made on with --dataset.")  # fmt: skip
        split = split.select(rows)
    if len(split) != record.num_samples:
        _fail(f"{name}[{args.dataset_split}] has {len(split):,} rows; the record has {record.num_samples:,} samples. "
              "Pass the dataset the run was made on with --dataset.")  # fmt: skip
    return split


def cmd_plot(args) -> int:
    # 1. The arguments alone.
    _check_ratio(args.prune_ratio)
    _check_selection_options(args)
    _split_params(args.param)
    _check_features(args.features)
    if args.max_points < 1:
        _fail(f"--max-points must be >= 1; got {args.max_points}.")
    if args.gallery and not args.strategy:
        _fail("--gallery shows what a strategy removes: add --strategy NAME (and --prune-ratio).")
    for flag in ("dataset", "image_column", "label_column"):
        if getattr(args, flag) is not None and not args.gallery:
            option = "--" + flag.replace("_", "-")
            _fail(f"{option} is read for --gallery only; add --gallery or leave {option} out.")
    record_dir = _find_record_dir(args.run_dir)
    out = Path(args.out) if args.out else run_folder(args.run_dir) / PLOTS_FOLDER
    _check_out(out, args.overwrite, given=args.out is not None)
    # 2. The strategies and their parameters.
    given = _parse_params(args.param, args.strategy or [])
    for name in args.strategy or []:
        _check_strategy(_build(name, given[name]), args, 1)
    # 3. The record, and matplotlib.
    from .plots import compare_removed, data_map
    from .record import ScoreRecord
    from .stats import data_map_coordinates

    record = ScoreRecord.load(record_dir)
    params = {name: _run_params(record, name, given[name]) for name in given}
    strategies = {name: _build(name, params[name], args.features) for name in args.strategy or []}
    results = {name: _select(strategy, [record], args) for name, strategy in strategies.items()}
    # Draw into a scratch folder and move the files at the end: a failing command leaves no partial output.
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        coords = data_map_coordinates(record)
        names = ["data_map.png"]
        data_map(record, path=Path(tmp) / names[0], coords=coords, max_points=args.max_points)
        for name, result in results.items():
            names.append(f"data_map_{name}.png")
            data_map(record, result, path=Path(tmp) / names[-1], coords=coords, max_points=args.max_points)
        if len(results) > 1:
            names.append("removed_comparison.png")
            compare_removed(record, results, path=Path(tmp) / names[-1])
        if args.gallery:
            from .gallery import removed_gallery

            images = _gallery_images(record, run_folder(args.run_dir), args)
            for name, result in results.items():
                names.append(f"gallery_{name}.png")
                removed_gallery(result, images, path=Path(tmp) / names[-1])
        out.mkdir(exist_ok=True)
        for name in names:
            os.replace(Path(tmp) / name, out / name)
            written.append(out / name)
    for path in written:
        print(path)
    return 0


def cmd_push(args) -> int:
    if not Path(args.dir).is_dir():
        _fail(f"{args.dir} is not a folder. Write one with `hf-prune select RUN_DIR ... --out {args.dir}` first.")
    from .export import push_folder_to_hub

    url = push_folder_to_hub(
        args.dir,
        args.repo,
        private=args.private,
        token=args.token,
        revision=args.revision,
        commit_message=args.commit_message,
        overwrite=args.overwrite,
    )
    print(url)
    return 0


# --------------------------------------------------------------------------------------------------- the parser


def _add_selection_args(p: argparse.ArgumentParser, ratio_required: bool) -> None:
    p.add_argument(
        "--prune-ratio", type=float, required=ratio_required, default=None if ratio_required else 0.25,
        metavar="R", help=RATIO_HELP + ("" if ratio_required else " (default: 0.25)"),
    )  # fmt: skip
    p.add_argument("--class-balanced", action="store_true", help="remove the same fraction from every class")
    p.add_argument(
        "--keep", choices=["high", "low"], default=None,
        help="keep the high or the low scores (default: the method's own end, see `hf-prune strategies NAME`)",
    )  # fmt: skip
    p.add_argument(
        "--selection", default=None, metavar="MODE",
        help="rank: keep the top of the ranking; ccs: coverage-centric stratified sampling over the same scores "
        "(Zheng et al. 2023); or a method's own mode (dual: beta, s2l: s2l). Default: the method's own (rank for "
        "most; `hf-prune strategies NAME` says)",
    )  # fmt: skip
    p.add_argument(
        "--hard-cutoff",
        type=float,
        default=None,
        metavar="BETA",
        help="--selection ccs: fraction of the hardest removed first, in [0, R] (default: 0)",
    )
    p.add_argument(
        "--num-strata",
        type=int,
        default=None,
        metavar="K",
        help="--selection ccs: number of score strata (default: 50)",
    )
    p.add_argument("--seed", type=int, default=None, help="--selection ccs: sampling seed (default: 0)")
    p.add_argument(
        "--features", default=None, metavar="DIR",
        help="feature folder for feature-based methods (moderate, ssp, grand); default: RUN_DIR/features",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="write into an output folder that already exists (without it, such a folder is refused before "
        "anything is loaded)",
    )  # fmt: skip


def _paragraph(text: str) -> str:
    return textwrap.fill(text, 100, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    run = EXAMPLE_RUN
    parser = _Parser(
        prog=PROG,
        description=_paragraph(
            "Dataset pruning from recorded training dynamics. Train once with hf_prune.PruningTrainer (it writes a "
            "score record to <output_dir>/scores), then choose which samples to keep with a strategy, look at "
            "what it removes, and share the kept-index list on the Hugging Face Hub. Outputs go under the run "
            "folder unless --out names another."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  hf-prune strategies                  # every method: summary, paper, parameters (type = default)\n"
            "  hf-prune strategies dyn_unc          # one method in full, with an example\n"
            f"  hf-prune select {run} --strategy dyn_unc --prune-ratio 0.25       # -> {run}/pruned/dyn_unc_25\n"
            f"  hf-prune plot {run} --strategy dyn_unc --strategy forgetting      # -> {run}/plots/\n"
            f"  hf-prune push {run}/pruned/dyn_unc_25 --repo my-org/my-dataset-dyn-unc-25\n\n"
            "Run `hf-prune COMMAND --help` for the options of a command.\n"
        ),
    )
    parser.add_argument("--version", action="version", version=f"hf-prune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "strategies",
        help="list the pruning methods with their parameters, or explain one",
        description=_paragraph(
            "Without NAME: every static strategy (for `select` and `plot`) and every dynamic policy (for "
            "DynamicPruningTrainer), each with a one-line summary, its paper and its parameters as name: type = "
            "default, read from its config dataclass. With NAME: that method in full: paper and equation, what the "
            "score means and which end is removed, each parameter with its help, and an example command line."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  hf-prune strategies\n  hf-prune strategies dyn_unc\n  hf-prune strategies ucb\n",
    )
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="a strategy or policy to explain")
    p.set_defaults(func=cmd_strategies)

    p = sub.add_parser(
        "select",
        help="score a run with a strategy and write the kept ids",
        description=_paragraph(
            "Score the samples of a training run with one strategy and write which ones to keep, laid out as a Hub "
            "dataset repo: data/prune_<pct>/*.parquet (sorted `index` = row positions of the unpruned train split "
            "that are KEPT, with score and label) and a README.md dataset card recording the method, ratio, exact "
            "parameters and provenance. The folder is --out, by default RUN_DIR/pruned/<strategy>_<pct> (with "
            "_<selection>, _keep_<end> and _balanced when those options are given). `hf-prune push FOLDER --repo "
            "...` publishes it. Every argument is checked before the record is read."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            f"  hf-prune select {run} --strategy dyn_unc --prune-ratio 0.25 --param window=10\n"
            f"      # -> {run}/pruned/dyn_unc_25\n"
            f"  hf-prune select {run}_seed0 {run}_seed1 --strategy el2n --prune-ratio 0.3   # mean over runs\n"
            f"      # -> {run}_seed0/pruned/el2n_30\n"
            f"  hf-prune select {run} --strategy ccs --param score=forgetting --param hard_cutoff=0.1 \\\n"
            f"      --prune-ratio 0.7 --out {run}/pruned/ccs_forgetting_70\n"
        ),
    )
    p.add_argument(
        "run_dir", nargs="+", metavar="RUN_DIR",
        help="a PruningTrainer output_dir (holding scores/) or a record folder (holding record.json); several "
        "for methods that average over runs (el2n, grand)",
    )  # fmt: skip
    p.add_argument("--strategy", required=True, metavar="NAME", help="strategy name, see `hf-prune strategies`")
    _add_selection_args(p, ratio_required=True)
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a strategy parameter, repeatable, parsed as the type of the strategy's config field "
        "(`hf-prune strategies NAME` lists them). E.g. --param window=10",
    )  # fmt: skip
    p.add_argument(
        "--source", nargs="+", metavar="ARG", default=None,
        help="the source split the ids index, for the dataset card: REPO_ID [SPLIT [REVISION]], "
        "e.g. --source ILSVRC/imagenet-1k train",
    )  # fmt: skip
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="folder to write the list to (default: RUN_DIR/pruned/<strategy>_<pct>)",
    )
    p.set_defaults(func=cmd_select)

    p = sub.add_parser(
        "plot",
        help="draw data maps (mean vs std of p(y|x) over epochs) and what strategies remove",
        description=_paragraph(
            "Draw the data map of a run (x = std of the target probability over epochs, y = its mean, colour = "
            "number of epochs classified correctly) to OUT/data_map.png; for every --strategy also "
            "OUT/data_map_<name>.png with the removed samples in red, and OUT/removed_comparison.png side by side. "
            "OUT is --out, by default RUN_DIR/plots."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            f"  hf-prune plot {run}                                      # -> {run}/plots/data_map.png\n"
            f"  hf-prune plot {run} --strategy dyn_unc --strategy forgetting --param dyn_unc.window=5 \\\n"
            f"      --prune-ratio 0.3 --out {run}/plots_30\n"
            f"  hf-prune plot {run} --strategy dyn_unc --prune-ratio 0.25 --gallery   # -> {run}/plots/gallery_dyn_unc.png\n"
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a PruningTrainer output_dir or a record folder")
    p.add_argument("--strategy", action="append", default=[], metavar="NAME", help="strategy to overlay, repeatable")
    _add_selection_args(p, ratio_required=False)
    p.add_argument(
        "--param", action="append", default=[], metavar="[STRATEGY.]KEY=VALUE",
        help="a strategy parameter, repeatable: KEY=VALUE for every --strategy that takes KEY, STRATEGY.KEY=VALUE "
        "for one, e.g. --param window=5 or --param cartography.region=easy",
    )  # fmt: skip
    p.add_argument("--max-points", type=int, default=50_000, help="points drawn per layer (default: 50000)")
    p.add_argument(
        "--gallery", action="store_true",
        help="also draw OUT/gallery_<name>.png per --strategy: for each class, the removed examples next to the kept "
        "ones, ordered by score (reads the images of the run's rows)",
    )  # fmt: skip
    p.add_argument(
        "--dataset", default=None, metavar="NAME_OR_FOLDER",
        help="the images for --gallery: a Hub id or local folder (default: the dataset the record names; the "
        "embedded Fashion-MNIST offline)",
    )  # fmt: skip
    p.add_argument("--dataset-split", default="train", metavar="SPLIT", help="split for --gallery (default: train)")
    p.add_argument("--image-column", default=None, metavar="NAME",
                   help="the image column of --dataset (default: the first of image, img, pixel_values it has)")
    p.add_argument("--label-column", default=None, metavar="NAME",
                   help="the label column of --dataset (default: the first of labels, label, label_ids, fine_label it has)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for the PNG files (default: RUN_DIR/plots)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "push",
        help="upload a result folder to a Hub dataset repo",
        description="Upload a folder written by `hf-prune select` to a dataset repository on the Hugging Face Hub.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            f"  hf-prune push {run}/pruned/dyn_unc_25 --repo my-org/fashion-mnist-dyn-unc-25\n"
            f"  hf-prune push {run}/pruned/dyn_unc_25 --repo my-org/fashion-mnist-dyn-unc-25 --private "
            "--revision dev\n"
        ),
    )
    p.add_argument("dir", metavar="DIR", help="folder written by `hf-prune select` (e.g. RUN_DIR/pruned/dyn_unc_25)")
    p.add_argument("--repo", required=True, help="Hub dataset repo id, e.g. my-org/imagenet-1k-dyn-unc-25")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the cached login)")
    p.add_argument("--revision", default=None, help="branch to push to (default: main)")
    p.add_argument("--commit-message", default=None, help="commit message")
    p.add_argument(
        "--overwrite",
        "--force",
        dest="overwrite",
        action="store_true",
        help="replace a different index list (or files that are not one) on the branch; without it such a push is "
        "refused, naming what is there (--force is an alias, as in `git push --force`)",
    )
    p.set_defaults(func=cmd_push)
    from .importers.command import add_parser as add_import_parser  # hf-prune import: the papers' published artefacts

    add_import_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command. Expected failures (a bad argument, a missing folder, the Hub refusing a token) end with one
    `hf-prune: error: ...` line on stderr that says what to do, a non-zero exit status and no partial output;
    `HF_PRUNE_TRACEBACK=1` shows the traceback instead."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_option_names(parser, argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    # Library log lines in command-line terms. A logger's filter sees only the records logged on that very logger,
    # so the filter goes on the handlers (every `hf_prune.*` record reaches them), and on the logger for its own.
    terms = _CliTermsFilter()
    library = logging.getLogger("hf_prune")
    handler = None
    if not library.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        library.addHandler(handler)
    filtered = [library, *library.handlers]
    for target in filtered:
        target.addFilter(terms)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return args.func(args)
    except SystemExit:
        raise
    except Exception as err:
        if os.environ.get("HF_PRUNE_TRACEBACK") or not _is_expected(err):
            raise
        raise SystemExit(ERROR_PREFIX + cli_terms(str(err))) from None
    finally:
        for target in filtered:
            target.removeFilter(terms)
        if handler is not None:
            library.removeHandler(handler)


def _is_expected(err: Exception) -> bool:
    """Failures a user causes and can fix from the command line (not bugs): shown as one line."""
    try:
        from .export import HubPushError
    except ImportError:  # pragma: no cover
        HubPushError = RuntimeError  # noqa: N806
    return isinstance(err, (ValueError, OSError, KeyError, HubPushError))


if __name__ == "__main__":
    sys.exit(main())
