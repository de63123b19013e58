"""`.filter` with a published index list, against `.select`, on an ImageNet-1K-sized table with an image column.

    python bench/bench_filter.py                      # 1,281,167 rows, 960,876 kept; writes bench/results/filter.md
    python bench/bench_filter.py --rows 200000 --repeats 1

The source is a `datasets.Dataset` on disk (`save_to_disk` / `load_from_disk`, memory-mapped as `load_dataset`
gives it) with an `Image` column (a real 16x16 JPEG per row, about 0.7 kB: 0.9 GB for 1.28 M rows) and a
`ClassLabel` column. Forms timed, each giving the same rows in the same order:

- `select`:            `source.select(keep)`
- `filter, mask`:      `source.filter(lambda i: mask[i], with_indices=True, batched=True, input_columns=[])`
                       with `mask = np.zeros(n, bool); mask[keep] = True` (reads no column)
- `filter, np.isin`:   `source.filter(lambda i: np.isin(i, keep), with_indices=True, batched=True, input_columns=[])`
- the same two with `batch_size=None`: the function runs once, on every index
- `filter, per row`:   `source.filter(lambda _, i: i in keep_set, with_indices=True)`, the form cards used to show:
                       every image is decoded; timed on the first `--slow_rows` rows and extrapolated.

Goal (issue 13): the form the README and cards show within 2x of `select`.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
_CACHE = tempfile.mkdtemp(prefix="bench_filter_cache_")
os.environ["HF_DATASETS_CACHE"] = _CACHE  # datasets reads it at import time

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


RESULTS = Path(__file__).resolve().parent / "results"


def build_source(rows: int, folder: Path) -> datasets.Dataset:
    from PIL import Image

    rng = np.random.default_rng(0)
    jpegs = []
    for _ in range(64):  # 64 distinct images, cycled: the bytes are real JPEGs that decode
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, format="JPEG")
        jpegs.append(buf.getvalue())
    images = pa.array(
        [{"bytes": jpegs[i % 64], "path": None} for i in range(rows)],
        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    labels = pa.array((np.arange(rows) * 1000 // rows).astype(np.int64))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=1000)})
    ds = datasets.Dataset(pa.table({"image": images, "label": labels}), info=datasets.DatasetInfo(features=features))
    ds.save_to_disk(str(folder), max_shard_size="500MB")
    return datasets.load_from_disk(str(folder))


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_281_167)
    parser.add_argument("--prune_ratio", type=float, default=0.25)
    parser.add_argument("--slow_rows", type=int, default=20_000, help="rows for the per-row form (extrapolated)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "filter.md"))
    opts = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_filter_") as tmp:
        start = time.perf_counter()
        source = build_source(opts.rows, Path(tmp) / "source")
        built = time.perf_counter() - start
        n = len(source)
        keep = np.sort(np.random.default_rng(1).choice(n, size=n - int(opts.prune_ratio * n), replace=False))
        mask = np.zeros(n, dtype=bool)
        mask[keep] = True
        # load_from_cache_file=False: every repeat computes afresh (no cache hit from the previous one)
        kw = dict(with_indices=True, batched=True, input_columns=[], load_from_cache_file=False)
        rows = {}
        rows["select"] = timed(lambda: source.select(keep), opts.repeats)
        rows["filter, mask"] = timed(lambda: source.filter(lambda i: mask[i], **kw), opts.repeats)
        rows["filter, np.isin"] = timed(lambda: source.filter(lambda i: np.isin(i, keep), **kw), opts.repeats)
        one = dict(kw, batch_size=None)  # the whole split in one call: the function runs once
        rows["filter, np.isin, batch_size=None"] = timed(
            lambda: source.filter(lambda i: np.isin(i, keep), **one), opts.repeats
        )
        rows["filter, mask, batch_size=None"] = timed(lambda: source.filter(lambda i: mask[i], **one), opts.repeats)
        head = source.select(range(min(opts.slow_rows, n)))
        keep_set = set(keep[keep < len(head)].tolist())
        slow_s, slow = timed(lambda: head.filter(lambda _, i: i in keep_set, with_indices=True, load_from_cache_file=False), 1)
        reference = np.asarray(rows["select"][1]["label"])
        for name in [k for k in rows if k != "select"]:
            assert len(rows[name][1]) == keep.size
            np.testing.assert_array_equal(np.asarray(rows[name][1]["label"]), reference)
        assert len(slow) == len(keep_set)

    select_s = rows["select"][0]
    lines = [
        "# `.filter` with an index list vs `.select`, ImageNet-1K-sized source with an image column",
        "",
        f"Command: `python bench/bench_filter.py --rows {opts.rows} --repeats {opts.repeats}` (median of {opts.repeats}). "
        f"Machine: {os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, datasets {datasets.__version__}, "
        f"numpy {np.__version__}.",
        "",
        f"Source: {n:,} rows saved with `save_to_disk` and memory-mapped with `load_from_disk` (an `Image` column of "
        f"16x16 JPEGs and a `ClassLabel`; built in {built:.0f} s); {keep.size:,} rows kept "
        f"(prune_ratio {opts.prune_ratio:g}).",
        "",
        "| form | seconds | x `select` |",
        "|---|---|---|",
    ]
    for name, (seconds, _) in rows.items():
        lines.append(f"| `{name}` | {seconds:.3f} | {seconds / select_s:.1f} |")
    per_row = slow_s / opts.slow_rows * n
    lines.append(
        f"| `filter, per row` (decodes every image; {opts.slow_rows:,} rows timed: {slow_s:.2f} s, extrapolated) "
        f"| {per_row:.0f} | {per_row / select_s:.0f} |"
    )
    lines += [
        "",
        "`select` builds the indices mapping directly; the batched `filter` forms read no column (`input_columns=[]`) "
        "and only evaluate the function on each batch of indices, then build the same mapping. `np.isin` sorts the "
        "kept ids for every batch of 1,000 rows; the boolean mask is a lookup.",
    ]
    text = "\n".join(lines) + "\n"
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(text)
    print(text)
    return {name: seconds for name, (seconds, _) in rows.items()} | {"filter, per row": per_row}


if __name__ == "__main__":
    main()
    sys.exit(0)
