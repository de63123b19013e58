"""`row_fingerprint` sees every row: swapped rows of one label, labels changed outside any sample, views and splits;
and it ignores what does not change the rows (transforms, formats, where a cache put the images)."""

import datasets
import numpy as np
import pytest

from hf_prune.sample_ids import _sampled_row_fingerprint, row_fingerprint, row_fingerprint_matches


def image_dataset(n=500, seed=0, folder="/cache/a"):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    images = [{"bytes": b"\x89PNG" + bytes([i % 251]) * int(3 + i % 7), "path": f"{folder}/img_{i}.png"}
              for i in range(n)]  # fmt: skip
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=5),
                                  "caption": datasets.Value("string")})  # fmt: skip
    return datasets.Dataset.from_dict(
        {"image": images, "label": labels, "caption": [f"row {i}" for i in range(n)]}, features=features
    )


def test_every_row_counts():
    ds = image_dataset()
    base = row_fingerprint(ds)
    assert base.startswith("rows3:")
    labels = np.asarray(ds["label"])
    # two rows of the same label swapped, far from the 32 sampled positions of the old fingerprint
    same = np.flatnonzero(labels == labels[101])
    i, j = 101, int(same[same > 101][0])
    order = np.arange(len(ds))
    order[[i, j]] = order[[j, i]]
    swapped = ds.select(order)
    assert _sampled_row_fingerprint(swapped) == _sampled_row_fingerprint(ds)  # the old one could not tell
    assert row_fingerprint(swapped) != base
    # 20 labels changed outside the sampled rows
    changed = labels.copy()
    changed[200:220] = (changed[200:220] + 1) % 5
    relabelled = ds.cast_column("label", datasets.Value("int64")).map(
        lambda row, i: {"label": int(changed[i])}, with_indices=True
    )
    relabelled = relabelled.cast_column("label", datasets.ClassLabel(num_classes=5))
    assert row_fingerprint(relabelled) != base
    # one caption changed; one image's bytes length changed
    assert row_fingerprint(ds.map(lambda r, i: {"caption": r["caption"] + ("!" if i == 333 else "")},
                                  with_indices=True)) != base  # fmt: skip
    # the same rows, shuffled and unshuffled, and an unseeded split on two "ranks"
    assert row_fingerprint(ds.shuffle(seed=1)) != base
    assert row_fingerprint(ds.shuffle(seed=1).flatten_indices()) == row_fingerprint(ds.shuffle(seed=1))
    splits = [ds.train_test_split(0.15, seed=s)["train"] for s in (1, 2)]
    assert row_fingerprint(splits[0]) != row_fingerprint(splits[1])


def test_same_rows_same_fingerprint():
    ds = image_dataset()
    base = row_fingerprint(ds)
    assert row_fingerprint(image_dataset()) == base  # deterministic across builds
    assert row_fingerprint(image_dataset(folder="/another/cache")) == base  # where the files were cached: no matter
    view = image_dataset()
    view.set_transform(lambda batch: {"pixel_values": [0] * len(batch["label"])})
    assert row_fingerprint(view) == base
    assert row_fingerprint(ds.with_format("numpy")) == base
    assert row_fingerprint(ds.select(range(len(ds)))) == base  # an identity view
    assert row_fingerprint_matches(base, ds) is True
    assert row_fingerprint_matches(base, ds.shuffle(seed=0)) is False


def test_fingerprints_of_earlier_versions_are_still_understood():
    ds = image_dataset(60)
    old = _sampled_row_fingerprint(ds)
    assert len(old) == 16
    assert row_fingerprint_matches(old, ds) is True
    assert row_fingerprint_matches(old, ds.shuffle(seed=0)) is False
    assert row_fingerprint_matches(None, ds) is None
    assert row_fingerprint_matches(old, [1, 2, 3]) is None


@pytest.mark.parametrize(
    "column",
    [
        datasets.Value("float32"),
        datasets.Sequence(datasets.Value("int64")),
        datasets.Value("bool"),
    ],
)
def test_other_column_types(column):
    values = {"float32": [0.5, None, 2.0], "bool": [True, False, None]}.get(getattr(column, "dtype", ""), [[1], [], [2, 3]])
    ds = datasets.Dataset.from_dict({"x": values, "label": [0, 1, 0]},
                                    features=datasets.Features({"x": column, "label": datasets.Value("int64")}))  # fmt: skip
    base = row_fingerprint(ds)
    assert row_fingerprint(ds.select([1, 0, 2])) != base
    assert row_fingerprint(ds.select([0, 1, 2])) == base
