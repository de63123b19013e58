"""Importing published ImageNet artefacts: resolving 1,281,167 file names onto a 1,281,167-row source.

Goal (issue 19): the resolution of an ImageNet-1K artefact onto the user's ImageNet (file names read column-wise from
the source, matched, coverage and labels checked) takes <= 10 s.

Everything is synthetic and offline, ImageNet-shaped: 1,000 synsets (`n0...`), 1,281,167 training files named
`<synset>_<number>.JPEG`, and two sources, each a `datasets.Dataset` saved to disk and memory-mapped back, in a
shuffled row order with an `Image` column of paths (no bytes: `read_source_files` reads only the paths) and a
`ClassLabel` label:

* `imagefolder`: paths `/data/ILSVRC/train/<synset>/<synset>_<n>.JPEG`, class names the synsets (what
  `load_dataset("imagefolder", ...)` gives);
* `hub`: the `ILSVRC/imagenet-1k` naming `<synset>_<n>_<synset>.JPEG` without folders, class names descriptions.

The artefacts, in their exact layouts: the Dyn-Unc DALI list of 960,875 kept files (`int(0.75 n)`, as
`get_coreset.py`), a score CSV of every file (`file,score`), Feldman & Zhang's `.npz` and a CCS `torch.save` dict
keyed by ImageFolder position.

Run (a few minutes on 2 cores, peak memory about 3 GB)::

    python bench/bench_import.py                       # writes bench/results/import.md
    python bench/bench_import.py --rows 100000 --repeats 1 --out /tmp/import.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
_CACHE = tempfile.mkdtemp(prefix="bench_import_cache_")
os.environ["HF_DATASETS_CACHE"] = _CACHE  # datasets reads it at import time
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from hf_prune import __version__  # noqa: E402
from hf_prune.importers import (  # noqa: E402
    import_ccs_scores,
    import_dyn_unc_list,
    import_memorization,
    import_score_csv,
    read_dali_list,
    read_score_csv,
    read_source_files,
    resolve_artefact,
)


NUM_ROWS = 1_281_167
NUM_CLASSES = 1000
GOAL_S = 10.0


def synthetic_imagenet(num_rows: int, num_classes: int, seed: int = 0):
    """Sorted synsets, each row's class and file name (ImageFolder order: by synset, then by file name)."""
    rng = np.random.default_rng(seed)
    synsets = np.array(sorted({f"n{x:08d}" for x in rng.choice(10**7, num_classes * 2, replace=False)}))[:num_classes]
    sizes = np.full(num_classes, num_rows // num_classes)
    sizes[: num_rows % num_classes] += 1
    classes = np.repeat(np.arange(num_classes), sizes)
    numbers = np.concatenate([rng.choice(np.arange(1, 60_000), size, replace=False) for size in sizes])
    names = [f"{synsets[c]}_{k}.JPEG" for c, k in zip(classes, numbers)]  # unique within a class, as ImageNet's
    order = np.lexsort((np.array(names), classes))  # ImageFolder order: class, then file name
    return synsets, classes[order], [names[i] for i in order]


def make_source(folder: Path, paths: list[str], labels: np.ndarray, class_names: list[str], seed: int):
    """A shuffled-order source with an `Image` column of paths and a `ClassLabel`, written as an Arrow file and
    memory-mapped back (the images need not exist: only their paths are read)."""
    perm = np.random.default_rng(seed).permutation(len(paths))
    image = pa.StructArray.from_arrays(
        [pa.nulls(len(paths), pa.binary()), pa.array([paths[i] for i in perm], pa.string())], names=["bytes", "path"]
    )
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=class_names)})
    table = pa.table({"image": image, "label": pa.array(labels[perm], pa.int64())}).cast(features.arrow_schema)
    folder.mkdir(parents=True)
    with pa.OSFile(str(folder / "data.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=10_000)  # as datasets writes its cache files
    return datasets.Dataset.from_file(str(folder / "data.arrow"))  # memory-mapped, as a loaded dataset


def timed(fn, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main(argv=None) -> list[tuple[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=NUM_ROWS, help="training files (default: ImageNet-1K's)")
    parser.add_argument("--classes", type=int, default=NUM_CLASSES)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "import.md"))
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_import_"))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(_CACHE, ignore_errors=True)


def run(args, work: Path) -> list[tuple[str, float]]:
    n = args.rows

    t0 = time.perf_counter()
    synsets, classes, names = synthetic_imagenet(n, args.classes)
    folder_paths = [f"/data/ILSVRC/train/{synsets[c]}/{name}" for c, name in zip(classes, names)]
    hub_paths = [f"{name[:-5]}_{synsets[c]}.JPEG" for c, name in zip(classes, names)]
    sources = {
        "imagefolder": make_source(work / "imagefolder", folder_paths, classes, list(synsets), 1),
        "hub": make_source(work / "hub", hub_paths, classes, [f"class {i}" for i in range(args.classes)], 2),
    }
    kept = np.sort(np.random.default_rng(3).permutation(n)[: int(n * 0.75)])  # as get_coreset.py: int(n * 0.75)
    dali = work / "IN1K_75_file_list.txt"
    dali.write_text("".join(f"/{synsets[classes[i]]}/{names[i]} {classes[i]}\n" for i in kept))
    scores = np.random.default_rng(4).random(n)
    csv = work / "ImageNet-1K_EL2N-20-models.csv"
    csv.write_text("file,score\n" + "".join(f"{name},{s:.6f}\n" for name, s in zip(names, scores)))
    npz = work / "memorization.npz"
    np.savez(npz, tr_filenames=np.array(names, dtype="S"), tr_labels=classes, tr_mem=scores)
    import torch

    ccs = work / "imagenet-data-score.pt"
    torch.save({"targets": torch.from_numpy(classes.astype(np.int32)), "el2n": torch.from_numpy(scores),
                "accumulated_margin": torch.from_numpy(-scores)}, ccs)  # fmt: skip
    print(f"synthetic ImageNet ({n:,} files, artefacts, two sources on disk): {time.perf_counter() - t0:.1f} s",
          flush=True)  # fmt: skip

    csv_artefact = read_score_csv(csv)
    rows: list[tuple[str, float]] = []

    def record(name: str, fn, check=None):
        seconds, value = timed(fn, args.repeats)
        if check is not None:
            check(value)
        rows.append((name, seconds))
        print(f"{name}: {seconds:.2f} s", flush=True)
        return value

    record(f"parse the DALI list ({kept.size:,} lines)", lambda: read_dali_list(dali))
    record(f"parse the score CSV ({n:,} rows)", lambda: read_score_csv(csv))
    for label, source in sources.items():
        files = record(f"{label}: read the source's file names and labels (column-wise)",
                       lambda s=source: read_source_files(s))  # fmt: skip
        record(f"{label}: resolve the score CSV onto the source (match, coverage, labels)",
               lambda f=files: resolve_artefact(csv_artefact, f))  # fmt: skip
        record(
            f"{label}: **resolution, end to end** (read the source + resolve {n:,} names)",
            lambda s=source: resolve_artefact(csv_artefact, s),
            check=lambda r: (r.missing.size == 0 and r.uncovered.size == 0) or sys.exit("resolution lost rows"),
        )  # fmt: skip

        def expect_kept(result, s=source):
            got = sorted(s.select(result.kept_ids).cast_column("image", datasets.Image(decode=False))
                         .with_format("arrow")[:]["image"].combine_chunks().field("path").to_pylist())  # fmt: skip
            want = sorted((folder_paths if s is sources["imagefolder"] else hub_paths)[i] for i in kept)
            assert got == want, "the DALI list selected other files"

        record(f"{label}: `import_dyn_unc_list` (parse + resolve + result)", lambda s=source: import_dyn_unc_list(
            dali, s), check=expect_kept)  # fmt: skip
        record(f"{label}: `import_score_csv`, 2 ratios", lambda s=source: import_score_csv(csv, s, [0.25, 0.5]))
        record(f"{label}: `import_memorization` (.npz), 1 ratio", lambda s=source: import_memorization(npz, s, 0.3))
        record(f"{label}: `import_ccs_scores` (ImageFolder positions), 1 ratio",
               lambda s=source: import_ccs_scores(ccs, s, 0.3))  # fmt: skip
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6

    command = "python bench/bench_import.py" + "".join(f" {a}" for a in args.argv)
    goal = max(s for name, s in rows if "end to end" in name)
    lines = [
        "# Import benchmark: published ImageNet artefacts onto a 1.28 M-row source",
        "",
        f"Command: `{command}` (median of {args.repeats} runs per timing). Machine: {os.cpu_count()} CPU cores "
        f"(shared), Python {platform.python_version()}, hf_prune {__version__}, datasets {datasets.__version__}, "
        f"pyarrow {pa.__version__}, numpy {np.__version__}. Peak RSS of the whole run: {peak_gb:.1f} GB; load average "
        f"at the end {os.getloadavg()[0]:.1f} (other jobs share the cores).",
        "",
        f"Synthetic ImageNet: {n:,} files in {args.classes:,} synsets; sources saved to disk and memory-mapped, rows "
        "shuffled, an `Image` column of paths and a `ClassLabel` (see the docstring for the two layouts).",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.2f} |" for name, seconds in rows],
        "",
        f"Goal: resolution of {n:,} file names onto the {n:,}-row source ≤ {GOAL_S:g} s: **{goal:.2f} s** (slowest "
        f"source), {'met' if goal <= GOAL_S else 'NOT met'}.",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
