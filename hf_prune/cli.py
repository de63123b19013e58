"""`hf-prune`: the command line over hf_prune's public API (no logic of its own).

```bash
hf-prune strategies                                               # what methods exist
hf-prune select run/ --strategy dyn_unc --prune-ratio 0.25 --out dyn_unc_25
hf-prune select run/ --strategy forgetting --prune-ratio 0.5 --class-balanced --out forgetting_50
hf-prune select run/ --strategy ccs --param score=aum --param hard_cutoff=0.1 --prune-ratio 0.7 --out ccs_70
hf-prune plot run/ --strategy dyn_unc --strategy forgetting --prune-ratio 0.25 --out maps/
hf-prune push dyn_unc_25 --repo my-org/fashion-mnist-dyn-unc-25
```
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

from .version import __version__


RATIO_HELP = "fraction of samples REMOVED, in [0, 1): 0.25 removes a quarter and keeps 75%%"


def _find_record_dir(run_dir: str) -> Path:
    from .record import RECORD_FILE

    path = Path(run_dir)
    for candidate in (path, path / "scores"):
        if (candidate / RECORD_FILE).exists():
            return candidate
    found = sorted(p.parent for p in path.glob(f"*/{RECORD_FILE}"))
    if len(found) == 1:
        return found[0]
    raise SystemExit(
        f"error: no score record in {path}. Pass a PruningTrainer output_dir (holding scores/record.json) or a "
        "record folder (holding record.json)."
    )


def _parse_params(items: list[str], strategies: list[str]) -> dict[str, dict[str, str]]:
    """`--param KEY=VALUE` (for every strategy whose config has KEY) or `--param STRATEGY.KEY=VALUE` (for one), as
    `{strategy: {key: text}}`; a key no chosen strategy takes is an error, never silently ignored."""
    from .strategies import get_strategy_class

    out: dict[str, dict[str, str]] = {name: {} for name in strategies}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"error: --param expects KEY=VALUE (e.g. --param window=10); got {item!r}.")
        key, value = (part.strip() for part in item.split("=", 1))
        target, _, field = key.rpartition(".")
        targets = [target] if target else strategies
        if target and target not in out:
            raise SystemExit(f"error: --param {item!r} names strategy {target!r}, which is not a --strategy here.")
        takers = [name for name in targets if field in get_strategy_class(name).config_class.field_names()]
        if not takers:
            accepted = {name: get_strategy_class(name).config_class.field_names() for name in targets}
            raise SystemExit(f"error: no strategy here takes parameter {field!r}; they accept {accepted}.")
        for name in takers:
            out[name][field] = value
    return out


# Library messages speak Python (`token=`, `source=`); on the command line they should name the flags.
_CLI_TERMS = [
    ("pass `token=`", "pass --token"),
    ("`token=`", "--token"),
    ("Pass `source=(repo_id, split, revision)`", "Pass --source REPO_ID [SPLIT [REVISION]]"),
    ("`source=`", "--source"),
    ("pass `config=` to pick one", "pass --config to pick one"),
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
    raise SystemExit(f"error: {cli_terms(message)}")


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
                f"warning: the run was scored with {strategy} {key}={value}, but --param {key}={given[key]} was "
                "given; the list will differ from the run's own.",
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
            f"warning: the run trained on {subset.get('num_rows')} of {subset.get('num_source_rows')} rows, but "
            f"{run_dir / str(subset.get('rows_file'))} is missing: the list's ids index the run's own rows.",
            file=sys.stderr,
        )
        return None
    return rows, int(subset["num_source_rows"]), subset.get("description")


def _build(name: str, params: dict[str, str], features: str | None):
    from .strategies import get_strategy, get_strategy_class

    try:
        config_class = get_strategy_class(name).config_class
        config = config_class.from_strings(params)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    if features is not None:
        if "features" in config_class.field_names() and config.features is None:
            config.features = features
        elif name == "ccs":
            config.score_params.setdefault("features", features)
    try:
        return get_strategy(name, config=config)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def _select(strategy, records, args):
    kwargs = dict(class_balanced=args.class_balanced, keep=args.keep)
    if args.selection == "ccs":
        kwargs.update(selection="ccs", hard_cutoff=args.hard_cutoff, num_strata=args.num_strata, seed=args.seed)
    try:
        return strategy.select(records if len(records) > 1 else records[0], args.prune_ratio, **kwargs)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def cmd_strategies(args) -> int:
    from .strategies import list_strategies

    strategies = list_strategies()
    width = max(len(n) for n in strategies)
    print("Static pruning strategies (use with: hf-prune select RUN_DIR --strategy NAME ...):\n")
    for name, summary in strategies.items():
        print(f"  {name:<{width}}  {summary}")
    return 0


def cmd_select(args) -> int:
    from .record import ScoreRecord

    source = None
    if args.source:
        if len(args.source) > 3:
            _fail("--source takes REPO_ID [SPLIT [REVISION]].")
        source = args.source[0] if len(args.source) == 1 else tuple(args.source)
    _check_out_folder(args.out)
    dirs = [_find_record_dir(d) for d in args.run_dir]
    records = [ScoreRecord.load(d) for d in dirs]
    params = _run_params(records[0], args.strategy, _parse_params(args.param, [args.strategy])[args.strategy])
    strategy = _build(args.strategy, params, args.features)
    result = _select(strategy, records, args)
    subset = _subset_rows(records[0], dirs[0].parent)
    scored = result.num_samples
    if subset is not None:
        result = result.to_source_rows(*subset)
        print(f"The run trained on {scored:,} of {subset[1]:,} rows ({subset[2]}): the list holds full-split ids.")
    record = records[0] if len(records) == 1 else None
    rows = subset[0] if subset is not None else None
    out = result.save(args.out, source=source, record=record, record_rows=rows)
    print(
        f"{result.method}: kept {result.num_kept:,} of {scored:,} samples "
        f"(removed {100 * result.prune_ratio:g}%) -> {out}"
    )
    return 0


def _check_out_folder(out: str) -> None:
    if Path(out).exists() and not Path(out).is_dir():
        _fail(f"--out {out} is a file; pass a folder to write to (it is created if missing).")


def cmd_plot(args) -> int:
    from .plots import compare_removed, data_map
    from .record import ScoreRecord
    from .stats import data_map_coordinates

    _check_out_folder(args.out)
    record = ScoreRecord.load(_find_record_dir(args.run_dir))
    params = _parse_params(args.param, args.strategy or [])
    params = {name: _run_params(record, name, params[name]) for name in params}
    strategies = {name: _build(name, params[name], args.features) for name in args.strategy or []}
    results = {name: _select(strategy, [record], args) for name, strategy in strategies.items()}
    # Draw into a scratch folder and move the files at the end: a failing command leaves no partial output.
    out = Path(args.out)
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
        out.mkdir(exist_ok=True)
        for name in names:
            os.replace(Path(tmp) / name, out / name)
            written.append(out / name)
    for path in written:
        print(path)
    return 0


def cmd_push(args) -> int:
    from .export import push_folder_to_hub

    if not Path(args.dir).is_dir():
        _fail(f"{args.dir} is not a folder. Write one with `hf-prune select RUN_DIR ... --out {args.dir}` first.")
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


def _add_selection_args(p: argparse.ArgumentParser, ratio_required: bool) -> None:
    p.add_argument(
        "--prune-ratio", type=float, required=ratio_required, default=None if ratio_required else 0.25,
        help=RATIO_HELP + ("" if ratio_required else " (default: 0.25)"),
    )  # fmt: skip
    p.add_argument("--class-balanced", action="store_true", help="remove the same fraction from every class")
    p.add_argument(
        "--keep", choices=["high", "low"], default=None,
        help="keep the high or the low scores (default: the method's own direction, see `hf-prune strategies`)",
    )  # fmt: skip
    p.add_argument(
        "--selection", choices=["rank", "ccs"], default="rank",
        help="rank: keep the top of the ranking (default); ccs: coverage-centric stratified sampling over the same "
        "scores (Zheng et al. 2023)",
    )  # fmt: skip
    p.add_argument("--hard-cutoff", type=float, default=0.0, help="ccs: fraction of the hardest removed first")
    p.add_argument("--num-strata", type=int, default=50, help="ccs: number of score strata (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="ccs: sampling seed (default: 0)")
    p.add_argument(
        "--features", default=None,
        help="feature folder for feature-based methods (moderate, ssp, grand); default: RUN_DIR/features",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-prune",
        description=(
            "Dataset pruning from recorded training dynamics. Train once with hf_prune.PruningTrainer (it writes a "
            "score record to <output_dir>/scores), then choose which samples to keep with a strategy, look at "
            "what it removes, and share the kept-index list on the Hugging Face Hub."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  hf-prune strategies\n"
            "  hf-prune select run/ --strategy dyn_unc --prune-ratio 0.25 --out dyn_unc_25\n"
            "  hf-prune plot run/ --strategy dyn_unc --strategy forgetting --out maps/\n"
            "  hf-prune push dyn_unc_25 --repo my-org/my-dataset-dyn-unc-25\n\n"
            "Run `hf-prune COMMAND --help` for the options of a command.\n"
        ),
    )
    parser.add_argument("--version", action="version", version=f"hf-prune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("strategies", help="list the pruning strategies, one line each")
    p.set_defaults(func=cmd_strategies)

    p = sub.add_parser(
        "select",
        help="score a run with a strategy and write the kept ids",
        description=(
            "Score the samples of a training run with one strategy and write which ones to keep to OUT, laid out as "
            "a Hub dataset repo: data/prune_<ratio>/*.parquet (sorted `index` = row positions of the unpruned train "
            "split that are KEPT, with score and label) and a README.md dataset card recording the method, ratio, "
            "exact parameters and provenance. `hf-prune push OUT --repo ...` publishes it."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  hf-prune select run/ --strategy dyn_unc --prune-ratio 0.25 --param window=10 --out dyn_unc_25\n"
            "  hf-prune select run_a/ run_b/ --strategy el2n --prune-ratio 0.3 --out el2n_30   # mean over runs\n"
            "  hf-prune select run/ --strategy ccs --param score=forgetting --param hard_cutoff=0.1 \\\n"
            "      --prune-ratio 0.7 --out ccs_70\n"
        ),
    )
    p.add_argument(
        "run_dir", nargs="+", metavar="RUN_DIR",
        help="a PruningTrainer output_dir (holding scores/) or a record folder (holding record.json); several "
        "for methods that average over runs (el2n, grand)",
    )  # fmt: skip
    p.add_argument("--strategy", required=True, help="strategy name, see `hf-prune strategies`")
    _add_selection_args(p, ratio_required=True)
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a strategy parameter, repeatable, parsed as the type of the strategy's config field "
        "(see `hf-prune strategies`). E.g. --param window=10",
    )  # fmt: skip
    p.add_argument(
        "--source", nargs="+", metavar="ARG", default=None,
        help="the source split the ids index, for the dataset card: REPO_ID [SPLIT [REVISION]], "
        "e.g. --source ILSVRC/imagenet-1k train",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="folder to write the result to")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser(
        "plot",
        help="draw data maps (mean vs std of p(y|x) over epochs) and what strategies remove",
        description=(
            "Draw the data map of a run (x = std of the target probability over epochs, y = its mean, colour = "
            "number of epochs classified correctly) to OUT/data_map.png; for every --strategy also "
            "OUT/data_map_<name>.png with the removed samples in red, and OUT/removed_comparison.png side by side."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a PruningTrainer output_dir or a record folder")
    p.add_argument("--strategy", action="append", default=[], help="strategy to overlay, repeatable")
    _add_selection_args(p, ratio_required=False)
    p.add_argument(
        "--param", action="append", default=[], metavar="[STRATEGY.]KEY=VALUE",
        help="a strategy parameter, repeatable: KEY=VALUE for every --strategy that takes KEY, STRATEGY.KEY=VALUE "
        "for one, e.g. --param window=5 or --param cartography.region=easy",
    )  # fmt: skip
    p.add_argument("--max-points", type=int, default=50_000, help="points drawn per layer (default: 50000)")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "push",
        help="upload a result folder to a Hub dataset repo",
        description="Upload a folder written by `hf-prune select` to a dataset repository on the Hugging Face Hub.",
    )
    p.add_argument("dir", metavar="DIR", help="folder written by `hf-prune select --out`")
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
    `error: ...` line that says what to do, exit status 1 and no partial output; `HF_PRUNE_TRACEBACK=1` shows the
    traceback instead."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    terms = _CliTermsFilter()
    library = logging.getLogger("hf_prune")
    library.addFilter(terms)
    handler = None
    if not library.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        library.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return args.func(args)
    except SystemExit:
        raise
    except Exception as err:
        if os.environ.get("HF_PRUNE_TRACEBACK") or not _is_expected(err):
            raise
        raise SystemExit(f"error: {cli_terms(str(err))}") from None
    finally:
        library.removeFilter(terms)
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
