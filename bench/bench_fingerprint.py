"""How long `row_fingerprint` (every row, column-wise in Arrow) takes on an ImageNet-1K-sized dataset.

    python bench/bench_fingerprint.py                 # 1,281,167 rows: image {bytes, path} + ClassLabel label
    python bench/bench_fingerprint.py --rows 100000   # smaller

The dataset is built in memory with ImageNet's row count, a `ClassLabel` of 1,000 classes and an `Image` column whose
cells hold a file name and a few bytes (the fingerprint reads an image cell's name and byte length, not its bytes, so
the JPEGs' size does not matter). Times the plain table, a shuffled view (an indices mapping) and, for reference,
`datasets`' own `Dataset._fingerprint` of a `.map` (which hashes the transform, not the rows).
"""

import argparse
import time

import datasets
import numpy as np

from hf_prune.sample_ids import row_fingerprint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_281_167)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 1000, args.rows)
    sizes = rng.integers(0, 64, args.rows)
    images = [{"bytes": b"\xff\xd8" + bytes(int(k)), "path": f"n{int(c):08d}_{i}.JPEG"}
              for i, (c, k) in enumerate(zip(labels, sizes))]  # fmt: skip
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=1000)})
    dataset = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    views = {"table": dataset, "shuffled view": dataset.shuffle(seed=0)}
    print(f"| dataset ({args.rows:,} rows) | row_fingerprint, best of {args.repeats} (s) |")
    print("|---|---|")
    for name, view in views.items():
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            row_fingerprint(view)
            best = min(best, time.perf_counter() - start)
        print(f"| {name} | {best:.2f} |")


if __name__ == "__main__":
    main()
