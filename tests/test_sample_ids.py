"""Sample ids ride beside the dataset's items: whatever a transform, collator or dataset class does, the batch gets
its ids; pruned views keep their original ids; streams without ids are refused with the right fix; the row
fingerprint sees moved rows but not transforms."""

import datasets
import numpy as np
import pytest
import torch

from hf_prune.sample_ids import (
    SAMPLE_ID_COLUMN,
    SampleIdCollator,
    SampleIdDataset,
    SampleIdItem,
    check_stream_ids,
    num_unpruned_samples,
    row_fingerprint,
    sample_id_range,
    sample_ids_of,
)


def rows(n=6):
    return datasets.Dataset.from_dict({"x": list(range(10, 10 + n)), "label": [i % 3 for i in range(n)]})


def new_dict(batch):
    """The HF "fine-tune ViT" guide's transform: a brand-new dict (every other key, `sample_id` included, is gone)."""
    return {"pixel_values": [[float(x)] for x in batch["x"]], "labels": batch["label"]}


def test_ids_survive_a_transform_that_returns_a_new_dict():
    ds = rows().with_transform(new_dict)
    view = SampleIdDataset(ds)
    assert view[4] == SampleIdItem(4, {"pixel_values": [14.0], "labels": 1})
    batch = view.__getitems__([5, 0, 2])  # batched reads stay batched (one transform call)
    assert [item.sample_id for item in batch] == [5, 0, 2]
    assert [item.item["pixel_values"] for item in batch] == [[15.0], [10.0], [12.0]]

    # A pruned view carries the original ids in a column; the transform drops it, the raw column is read instead.
    pruned = rows().add_column(SAMPLE_ID_COLUMN, np.arange(6)).select([4, 1])
    pruned.set_transform(new_dict)
    assert [item.sample_id for item in SampleIdDataset(pruned).__getitems__([0, 1])] == [4, 1]
    assert sample_ids_of(pruned).tolist() == [4, 1] and sample_id_range(pruned) == (1, 4)
    assert num_unpruned_samples(pruned) == 5 and num_unpruned_samples(pruned, override=10) == 10


def test_any_item_type_and_remove_unused_columns():
    class Tuples(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return (torch.tensor([float(i)]), i % 2)

    assert SampleIdDataset(Tuples())[2] == SampleIdItem(2, (torch.tensor([2.0]), 0))
    assert sample_id_range(Tuples()) == (0, 2) and num_unpruned_samples(Tuples()) == 3

    class Dicts(Tuples):
        def __getitem__(self, i):
            return {"x": i, "labels": i, "note": "drop me"}

    assert SampleIdDataset(Dicts(), keep_keys=["x", "labels"])[1].item == {"x": 1, "labels": 1}
    with pytest.raises(TypeError, match="streams carry"):
        SampleIdDataset(rows().to_iterable_dataset())


def test_collator_reattaches_ids_after_the_users_collator():
    def drops_everything_else(features):
        return {"labels": torch.tensor([f[1] for f in features])}

    collate = SampleIdCollator(drops_everything_else)
    batch = collate([SampleIdItem(7, ("a", 3)), SampleIdItem(2, ("b", 4))])
    assert batch[SAMPLE_ID_COLUMN].tolist() == [7, 2] and batch[SAMPLE_ID_COLUMN].dtype == torch.int64
    assert batch["labels"].tolist() == [3, 4]

    def dict_collator(features):
        assert all(SAMPLE_ID_COLUMN not in f for f in features)  # the user's collator never sees the ids
        return {"labels": torch.tensor([f["labels"] for f in features])}

    items = [{"labels": 3, SAMPLE_ID_COLUMN: 9}, {"labels": 4, SAMPLE_ID_COLUMN: 1}]
    stream_batch = SampleIdCollator(dict_collator)(items)
    assert stream_batch[SAMPLE_ID_COLUMN].tolist() == [9, 1]
    assert SAMPLE_ID_COLUMN not in SampleIdCollator(dict_collator)([{"labels": 1}])  # eval items pass through
    with pytest.raises(TypeError, match="dict-like batch"):
        SampleIdCollator(lambda f: torch.zeros(2))([SampleIdItem(0, 1), SampleIdItem(1, 2)])


def test_streams_need_ids_added_before_shuffling():
    stream = rows().to_iterable_dataset()
    with pytest.raises(ValueError, match=r"without a `sample_id` column.*before `\.shuffle\(\)`.*shuffled order"):
        check_stream_ids(stream)
    # Columns unknown after a `.map`: the first item is read.
    mapped = stream.map(lambda e: {"y": e["x"]}, remove_columns=["x"])
    mapped._info.features = None
    with pytest.raises(ValueError, match=r"items \(keys \['label', 'y'\]\) have no `sample_id`.*before `\.shuffle"):
        check_stream_ids(mapped)
    with_ids = rows().map(lambda _, i: {SAMPLE_ID_COLUMN: i}, with_indices=True).to_iterable_dataset().shuffle(seed=0)
    check_stream_ids(with_ids)

    class Tensors(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.zeros(2)

    with pytest.raises(ValueError, match="items \\(a Tensor\\) have no `sample_id`"):
        check_stream_ids(Tensors())


def test_row_fingerprint_sees_moved_rows_not_transforms(tmp_path):
    ds = rows(40)
    same = row_fingerprint(ds)
    assert row_fingerprint(ds.with_transform(new_dict)) == same  # another augmentation, the same rows
    assert row_fingerprint(ds.with_format("torch")) == same
    assert row_fingerprint(ds.shuffle(seed=0)) != same
    assert row_fingerprint(ds.select(range(39))) != same
    assert row_fingerprint(rows(40)) == same  # rebuilt in another process: deterministic
    assert row_fingerprint(torch.utils.data.TensorDataset(torch.zeros(3))) is None

    # Images count by content, not by where a cache put them.
    from PIL import Image

    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        paths.append(tmp_path / folder / "img.png")
        Image.fromarray(np.full((4, 4), 7, dtype=np.uint8)).save(paths[-1])
    by_path = [datasets.Dataset.from_dict({"image": [str(p)]}).cast_column("image", datasets.Image()) for p in paths]
    assert row_fingerprint(by_path[0]) == row_fingerprint(by_path[1])  # same file name, other folders
    by_bytes = [
        datasets.Dataset.from_dict({"image": [{"bytes": p.read_bytes(), "path": str(p)}]}, features=by_path[0].features)
        for p in paths
    ]
    assert row_fingerprint(by_bytes[0]) == row_fingerprint(by_bytes[1])  # same bytes, other paths


def test_seeded_batches_give_the_same_augmentation_in_an_epoch():
    from hf_prune.data import ImageTransform
    from hf_prune.sample_ids import augmentation_seed_of

    images = [np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8) for i in range(12)]
    ds = datasets.Dataset.from_dict({"image": images, "label": list(range(12))}).cast_column("image", datasets.Image())
    ds.set_transform(ImageTransform(28, 1, train=True))
    view = SampleIdDataset(ds, augmentation_seed=3)
    first = view.__getitems__([1, 2, 3])
    torch.manual_seed(5)  # whatever the caller's generators hold (another worker, a resumed process)
    np.random.seed(7)
    again = SampleIdDataset(ds, augmentation_seed=3).__getitems__([1, 2, 3])
    for a, b in zip(first, again):
        assert torch.equal(a.item["pixel_values"], b.item["pixel_values"])
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    view.__getitems__([4, 5])
    assert torch.equal(torch.rand(1), before)  # the caller's generator state is untouched
    views = {tuple(view.__getitems__([3])[0].item["pixel_values"].flatten()[:50].tolist())}
    for epoch in range(1, 4):
        view.set_epoch(epoch)
        views.add(tuple(view.__getitems__([3])[0].item["pixel_values"].flatten()[:50].tolist()))
    assert len(views) > 1  # a new view every epoch (random crop and flip)
    assert torch.equal(view[3].item["pixel_values"], view[3].item["pixel_values"])  # single reads are seeded too
    plain = SampleIdDataset(ds)  # without a seed: the global generators, as before
    assert plain[3].sample_id == 3
    assert augmentation_seed_of(0, 1, 2) != augmentation_seed_of(0, 2, 1) and 0 <= augmentation_seed_of(9, 9, 9) < 2**63
