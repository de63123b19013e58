"""`hf-prune import FORMAT FILE --source SOURCE --out DIR`: a published artefact to a Hub-ready index list.

```bash
hf-prune import dali-list IN1K_75_file_list.txt --source ILSVRC/Data/CLS-LOC/train --out runs/import/in1k-dyn-unc-75
hf-prune import score-csv ImageNet-1K_EL2N-20-models.csv --source ILSVRC/imagenet-1k --prune-ratio 0.2 \\
    --prune-ratio 0.3 --out runs/import/in1k-el2n --push-to my-org/imagenet-1k-el2n
```

`cli.py` registers it with `add_parser(subparsers)`; `run(args)` does the work through the public importers. Nothing
heavy is imported until the command runs, and every argument (the ratios, the output folder, the artefact file) is
checked before the artefact or the source is read. Errors are one `hf-prune: error: ...` line, as everywhere in
`hf-prune`.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path


FORMATS = {
    "dali-list": "the Dyn-Unc authors' coresets (He et al. 2023): a DALI file list `/<class folder>/<file> <label>` "
    "of the files kept, e.g. IN1K_75_file_list.txt",
    "memorization-npz": "Feldman & Zhang's ImageNet memorization estimates: an .npz with tr_filenames, tr_labels, "
    "tr_mem",
    "score-csv": "a CSV of file name + score per example, e.g. Sorscher et al.'s ImageNet-1K_<metric>.csv "
    "(high = keep)",
    "ccs-scores": "a CCS-style score file: a dict of tensors keyed by ImageFolder position (targets, el2n, "
    "forgetting, correctness, accumulated_margin), saved with torch.save or numpy.savez",
}
KEPT_FORMATS = ("dali-list",)


def _fail(message: str):
    raise SystemExit("hf-prune: error: " + " ".join(message.split()))


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the `import` command to `hf-prune`'s subparsers and returns its parser."""
    p = subparsers.add_parser(
        "import",
        help="turn a published pruning artefact (a paper's ImageNet list or scores) into an index list",
        description=(
            textwrap.fill(
                "Read a published pruning artefact strictly, match its entries to the rows of your copy of the "
                "dataset by file name (or ImageFolder position), check the labels file by file, and write a Hub-ready "
                "index list to OUT with the artefact's citation, provenance (SHA-256) and licence in the card.", 100
            )
            + " Formats:\n"
            + "\n".join(textwrap.fill(text, 100, initial_indent=f"  {name:<18}", subsequent_indent=" " * 20)
                        for name, text in FORMATS.items())
            + "\n\nSee docs/published_subsets.md for where to get each artefact and what its paper validated."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  hf-prune import dali-list IN1K_75_file_list.txt --source ILSVRC/Data/CLS-LOC/train \\\n"
            "      --out runs/import/in1k-dyn-unc-75\n"
            "  hf-prune import score-csv ImageNet-1K_EL2N-20-models.csv --source ILSVRC/imagenet-1k \\\n"
            "      --prune-ratio 0.2 --prune-ratio 0.3 --out runs/import/in1k-el2n --push-to my-org/imagenet-1k-el2n\n"
            "  hf-prune import ccs-scores imagenet-data-score.pt --source train_dir --score accumulated_margin \\\n"
            "      --selection ccs --hard-cutoff 0.2 --prune-ratio 0.8 --out runs/import/in1k-ccs-80\n"
        ),
    )
    p.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help=f"one of {', '.join(FORMATS)}")
    p.add_argument("file", metavar="FILE", help="the artefact file")
    group = p.add_argument_group("source (your copy of the dataset the artefact was made on)")
    group.add_argument(
        "--source", required=True, metavar="SOURCE",
        help="a Hub dataset repo id (e.g. ILSVRC/imagenet-1k), a local dataset folder (parquet files, or one written "
        "by save_to_disk), or an image folder (class folders of images, e.g. ILSVRC/Data/CLS-LOC/train)",
    )  # fmt: skip
    group.add_argument("--split", default="train", help="split of SOURCE (default: train)")
    group.add_argument("--source-config", default=None, help="config of a Hub SOURCE")
    group.add_argument("--revision", default=None, help="revision of a Hub SOURCE")
    group.add_argument("--column", default=None, help="source column holding the file names (default: the image "
                       "column's paths)")  # fmt: skip
    group.add_argument("--label-column", default=None, help="source label column (default: label)")
    group.add_argument(
        "--hub-source", nargs="+", default=None, metavar="ARG",
        help="what the card names as the source, REPO_ID [SPLIT [REVISION]] (default: SOURCE when it is a Hub repo "
        "id); for a local copy whose rows are in that repo's order",
    )  # fmt: skip
    group.add_argument("--allow-missing", action="store_true",
                       help="import although some files of the artefact are not in the source (they are left out)")
    group.add_argument("--allow-partial", action="store_true",
                       help="scores: import although some source rows have no score (made on the covered rows)")
    group = p.add_argument_group("selection (score formats)")
    group.add_argument("--prune-ratio", type=float, action="append", default=[], metavar="RATIO",
                       help="fraction of rows REMOVED, in (0, 1); repeat for several configs (required for scores)")
    group.add_argument("--keep", choices=["high", "low"], default=None,
                       help="keep the high or the low scores (default: the artefact's own direction)")
    group.add_argument("--class-balanced", action="store_true", help="remove the same fraction from every class")
    group.add_argument("--selection", choices=["rank", "ccs"], default="rank",
                       help="rank (default) or ccs: coverage-centric stratified sampling (Zheng et al. 2023)")
    group.add_argument("--hard-cutoff", type=float, default=0.0, help="ccs: fraction of the hardest removed first")
    group.add_argument("--num-strata", type=int, default=50, help="ccs: number of strata (default: 50)")
    group.add_argument("--seed", type=int, default=0, help="ccs: sampling seed (default: 0)")
    group.add_argument("--score", default=None,
                       help="ccs-scores: which score (default: accumulated_margin); score-csv: the score column")
    group.add_argument("--cutoff", default=None, help="ccs-scores with --selection ccs: the score the hard cutoff "
                       "removes the hardest of (the authors' code: accumulated_margin)")  # fmt: skip
    group = p.add_argument_group("score-csv")
    group.add_argument("--file-column", default=None, help="the CSV's file-name column (name or 0-based position)")
    group.add_argument("--csv-label-column", default=None, help="the CSV's label column, if any")
    group.add_argument("--delimiter", default=",", help="field separator (default: ,)")
    group.add_argument("--method", default=None, help="method name in the list (default: from the file name)")
    group = p.add_argument_group("output")
    group.add_argument("--out", required=True, metavar="DIR",
                       help="folder to write the index list to, e.g. runs/import/NAME (created if missing)")
    group.add_argument("--overwrite", action="store_true",
                       help="replace an index list already in --out (without it, an existing folder is refused before "
                       "anything is read)")
    group.add_argument("--report", default=None, metavar="JSON",
                       help="write every missing file and uncovered row to this JSON file (also when refused)")
    group.add_argument("--push-to", default=None, metavar="REPO_ID", help="also push OUT to this Hub dataset repo")
    group.add_argument("--private", action="store_true", help="with --push-to: create the repo as private")
    group.add_argument("--token", default=None, help="with --push-to: Hub token (default: HF_TOKEN or the login)")
    p.set_defaults(func=run)
    return p


def _position(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def _check_args(args) -> None:
    if args.format in KEPT_FORMATS:
        given = [flag for flag, value in (("--prune-ratio", args.prune_ratio), ("--keep", args.keep),
                 ("--class-balanced", args.class_balanced), ("--selection ccs", args.selection == "ccs"),
                 ("--allow-partial", args.allow_partial)) if value]  # fmt: skip
        if given:
            _fail(f"{args.format} is a published list of kept files: it has no scores to select from, so "
                  f"{', '.join(given)} do not apply.")
    elif not args.prune_ratio:
        _fail(f"{args.format} holds scores: pass --prune-ratio (the fraction REMOVED, e.g. --prune-ratio 0.25; "
              "repeat it for several configs).")
    if args.format != "score-csv":
        for flag, value in (("--file-column", args.file_column), ("--csv-label-column", args.csv_label_column),
                            ("--method", args.method), ("--delimiter", args.delimiter != ",")):
            if value:
                _fail(f"{flag} applies to score-csv only.")
    if args.format != "ccs-scores" and args.cutoff:
        _fail("--cutoff applies to ccs-scores only.")
    if args.selection != "ccs" and (args.cutoff or args.hard_cutoff):
        _fail("--cutoff and --hard-cutoff apply to --selection ccs only.")
    if args.format == "ccs-scores" and args.allow_partial:
        _fail("ccs-scores is keyed by ImageFolder position: it resolves on the exact file set only (no "
              "--allow-partial).")
    if args.hub_source and len(args.hub_source) > 3:
        _fail("--hub-source takes REPO_ID [SPLIT [REVISION]].")
    for ratio in args.prune_ratio:
        if not 0.0 < ratio < 1.0:  # NaN too
            _fail(f"--prune-ratio must be in (0, 1): it is the fraction of rows REMOVED (0.25 removes a quarter and "
                  f"keeps 75%); got {ratio:g}.")  # fmt: skip
    if len(set(args.prune_ratio)) != len(args.prune_ratio):
        _fail(f"--prune-ratio is given twice with the same value ({args.prune_ratio}); give each ratio once.")
    if args.selection == "ccs" and args.prune_ratio and not 0.0 <= args.hard_cutoff <= min(args.prune_ratio):
        _fail(f"--hard-cutoff must be in [0, the smallest --prune-ratio] = [0, {min(args.prune_ratio):g}]; got "
              f"{args.hard_cutoff:g}.")  # fmt: skip
    if args.num_strata < 1:
        _fail(f"--num-strata must be >= 1; got {args.num_strata}.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        _fail(f"--out {args.out} is a file; pass a folder to write to (it is created if missing).")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        _fail(f"--out {args.out} already exists; pass --overwrite to replace the index list there, or another --out.")
    if not Path(args.file).is_file():
        _fail(f"{args.file}: no such file. Download the artefact first (see docs/published_subsets.md).")


def load_source(spec: str, split: str = "train", config: str | None = None, revision: str | None = None):
    """The source split named on the command line: a Hub repo id, a local dataset folder (parquet / arrow files, a
    `save_to_disk` folder) or an image folder (class folders of images, read with `imagefolder`)."""
    import datasets

    path = Path(spec)
    if not path.exists():
        return datasets.load_dataset(spec, config, split=split, revision=revision)
    if not path.is_dir():
        _fail(f"--source {spec} is a file; pass a Hub repo id, a dataset folder or an image folder.")
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                _fail(f"--source {spec} has splits {list(loaded)}, not {split!r}; pass --split.")
            loaded = loaded[split]
        return loaded
    tabular = any(path.rglob("*.parquet")) or any(path.rglob("*.arrow")) or (path / "README.md").is_file()
    if tabular:
        return datasets.load_dataset(str(path), config, split=split)
    return datasets.load_dataset("imagefolder", data_dir=str(path), split=split)


def _hub_source(args):
    """The card's source: --hub-source, else SOURCE (a local folder by its absolute path, which the card names but
    never offers to `load_dataset` as a repo id)."""
    if args.hub_source:
        return args.hub_source[0] if len(args.hub_source) == 1 else tuple(args.hub_source)
    if Path(args.source).exists():
        return str(Path(args.source).resolve())
    if args.source_config:
        return (args.source, args.source_config, args.split, args.revision)
    return (args.source, args.split, args.revision)


def _read(args):
    from . import read_ccs_scores, read_dali_list, read_memorization_npz, read_score_csv

    if args.format == "dali-list":
        return read_dali_list(args.file)
    if args.format == "memorization-npz":
        return read_memorization_npz(args.file)
    if args.format == "score-csv":
        return read_score_csv(args.file, file_column=_position(args.file_column),
                              score_column=_position(args.score), label_column=_position(args.csv_label_column),
                              delimiter=args.delimiter)  # fmt: skip
    artefact = read_ccs_scores(args.file)
    score = args.score or "accumulated_margin"
    for what, key in (("--score", score), ("--cutoff", args.cutoff)):
        if key is not None and key not in artefact.scores:
            _fail(f"{artefact.file} has no score {key!r} ({what}); it has {', '.join(sorted(artefact.scores))}.")
    return artefact


def _results(args, artefact, resolution):
    from . import ccs_scores, kept_result, memorization_npz, score_csv

    if args.format == "dali-list":
        return [kept_result(artefact, resolution, method="dyn_unc", params={"window": 10})]
    selection = dict(keep=args.keep, class_balanced=args.class_balanced, selection=args.selection,
                     hard_cutoff=args.hard_cutoff, num_strata=args.num_strata, seed=args.seed)  # fmt: skip
    if args.format == "memorization-npz":
        return memorization_npz.results_for(artefact, resolution, args.prune_ratio, **selection)
    if args.format == "score-csv":
        return score_csv.results_for(artefact, resolution, args.prune_ratio, method=args.method, **selection)
    return ccs_scores.results_for(artefact, resolution, args.prune_ratio, score=args.score or "accumulated_margin",
                                  cutoff=args.cutoff, **selection)  # fmt: skip


def _write_report(path: str | None, report: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1) + "\n")
        print(f"Report: {path}")


def run(args) -> int:
    """Runs `hf-prune import` (see `add_parser`): read, resolve, select, write `--out`, optionally push."""
    _check_args(args)
    from ..export import push_folder_to_hub, save_results
    from . import ResolutionError, publish_options, resolve_artefact

    artefact = _read(args)
    source = load_source(args.source, args.split, args.source_config, args.revision)
    try:
        resolution = resolve_artefact(artefact, source, column=args.column, label_column=args.label_column,
                                      allow_missing=args.allow_missing, allow_partial=args.allow_partial)  # fmt: skip
    except ResolutionError as err:
        _write_report(args.report, {"artefact": artefact.identity(), "refused": str(err),
                                    "missing_files": err.missing, "uncovered_rows": err.uncovered})  # fmt: skip
        raise
    print(resolution.summary(artefact))
    results = _results(args, artefact, resolution)
    out = save_results(results, args.out, _hub_source(args), **publish_options(results, source))
    for r in results:
        print(f"{r.method}: kept {r.num_kept:,} of {r.num_samples:,} rows (prune_ratio {r.prune_ratio:g}, the "
              f"fraction removed) -> {out}")
    _write_report(args.report, {"artefact": artefact.identity(), **resolution.report(artefact)})
    if args.push_to:
        print(push_folder_to_hub(out, args.push_to, private=args.private, token=args.token))
    return 0

