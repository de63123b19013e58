"""Dataset cards of index lists, validated against the Hub's dataset-card metadata: a `DatasetCardData` round trip with
no unknown keys, `license_name` / `license_link` for `license: other`, `source_datasets`, the label as a `ClassLabel`
with names, no machine paths, no local folder as a repo id, and lists made on a subset."""

import inspect
import json
import warnings

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, load_dataset
from huggingface_hub import DatasetCard, DatasetCardData

from hf_prune import PruneResult, ScoreRecord, get_strategy, load_pruned
from hf_prune.export import SourceMismatchWarning, save_results


NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress"]
# The keys the Hub's dataset card metadata defines (DatasetCardData's own arguments, plus the ones the Hub documents
# for configs, features and custom licenses); `pruning` is hf_prune's one namespace.
KNOWN = set(inspect.signature(DatasetCardData.__init__).parameters) - {"self", "kwargs", "ignore_metadata_errors"}
KNOWN |= {"configs", "dataset_info", "license_name", "license_link", "tags", "pruning"}


def _result(n=40, machine_path="/home/alice/runs/exp1"):
    rng = np.random.default_rng(0)
    record = ScoreRecord.from_arrays(
        {"p_target": rng.random((6, n)), "correct": (rng.random((6, n)) > 0.5).astype(float)},
        labels=np.arange(n) % 4,
        metadata={"seed": 3, "args": {"output_dir": machine_path, "logging_dir": f"{machine_path}/logs",
                                      "learning_rate": 0.001}, "model": {"architecture": "resnet10t"}},
    )  # fmt: skip
    return record, get_strategy("dyn_unc", window=3).select(record, prune_ratio=0.25)


def _metadata(folder):
    return DatasetCard.load(folder / "README.md").data.to_dict()


def test_card_metadata_round_trips_through_dataset_card_data_with_known_keys_only(tmp_path):
    record, result = _result()
    folder = save_results([result], tmp_path / "list", source=("zalando-datasets/fashion_mnist", "train"),
                          record=record, label_names=NAMES)  # fmt: skip
    data = _metadata(folder)
    assert set(data) - KNOWN == set(), f"keys the Hub does not know: {set(data) - KNOWN}"
    again = DatasetCardData(**data).to_dict()
    assert again == data
    assert data["license"] == "other" and data["license_name"] == "same-as-source-dataset"
    assert data["license_link"] == "https://huggingface.co/datasets/zalando-datasets/fashion_mnist"
    assert data["source_datasets"] == ["zalando-datasets/fashion_mnist"]
    (info,) = data["dataset_info"]
    label = next(f for f in info["features"] if f["name"] == "label")
    assert label["dtype"]["class_label"]["names"] == {str(i): n for i, n in enumerate(NAMES)}
    assert "<source dataset>" not in data["pretty_name"]


def test_label_column_loads_as_a_class_label_with_names(tmp_path):
    _, result = _result()
    folder = save_results([result], tmp_path / "list", source="org/data", label_names=NAMES)
    ds = load_dataset(str(folder), split="train")
    assert isinstance(ds.features["label"], ClassLabel) and ds.features["label"].names == NAMES
    assert ds.features["index"].dtype == "int64"
    # without names the label stays a plain int64 (never a ClassLabel with made-up names)
    plain = load_dataset(str(save_results([result], tmp_path / "plain", source="org/data")), split="train")
    assert plain.features["label"].dtype == "int64"


def test_no_machine_path_in_the_card_or_the_provenance_file(tmp_path):
    _, result = _result(machine_path=str(tmp_path / "secret" / "run"))
    local_source = tmp_path / "data" / "my_images"
    folder = save_results([result], tmp_path / "list", source=(str(local_source), "train"))
    for name in ("README.md", "pruning_provenance.json"):
        text = (folder / name).read_text()
        assert str(tmp_path) not in text and "/home/alice" not in text, name
    data = _metadata(folder)
    assert "source_datasets" not in data and data["pruning"]["source"]["repo_id"] is None
    assert data["pruning"]["source"]["local_name"] == "my_images"
    provenance = json.loads((folder / "pruning_provenance.json").read_text())
    args = provenance["lists"]["prune_25"]["provenance"]["record"]["args"]
    assert args["output_dir"] == "run" and args["learning_rate"] == 0.001
    with pytest.raises(ValueError, match="not a path"):
        save_results([result], tmp_path / "list2", repo_id=str(tmp_path / "out"))


def test_without_a_source_the_title_does_not_leak_a_placeholder(tmp_path):
    _, result = _result()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = save_results([result], tmp_path / "list")
    assert _metadata(folder)["pretty_name"] == "Pruned index list (Dynamic Uncertainty (Dyn-Unc))"


def test_a_list_made_on_a_subset_carries_full_split_ids_and_says_which_rows(tmp_path):
    record, result = _result(n=40)
    full = Dataset.from_dict({"label": [i % 4 for i in range(100)]})
    rows = np.arange(20, 60)  # the run trained on rows 20..59 of a 100-row split
    mapped = result.to_source_rows(rows, 100, "rows 20 to 59")
    assert mapped.num_samples == 100 and mapped.num_kept == 30 and set(mapped.kept_ids) <= set(rows.tolist())
    np.testing.assert_array_equal(mapped.kept_ids, rows[result.kept_ids])
    folder = save_results([mapped], tmp_path / "list", source=("org/data", "train"), record=record, record_rows=rows)
    data = _metadata(folder)
    entry = data["pruning"]["lists"]["prune_25"]
    assert (entry["kept"], entry["removed"]) == (30, 10)  # of the 40 rows scored, not of the 100
    assert data["pruning"]["subset"] == {"num_rows": 40, "num_source_rows": 100, "description": "rows 20 to 59",
                                         "range": [20, 60]}  # fmt: skip
    text = (folder / "README.md").read_text()
    assert "Made on a subset" in text and "40 of the 100 rows" in text
    assert (folder / "images" / "data_map.png").exists()
    # The run's (subset's) fingerprints are not the full split's: they are not checked against it. The list carries
    # no fingerprint of the full split, so only its row count can be: a warning says what was not checked.
    with pytest.warns(SourceMismatchWarning, match=r"only the row count \(100\).*not checked: the rows' content"):
        assert len(load_pruned(full, folder)) == 30
    # Saved with the full split (`source_dataset=`), the list carries its row fingerprint: checked, silent.
    folder = save_results([mapped], tmp_path / "list", source=("org/data", "train"), source_dataset=full)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SourceMismatchWarning)
        pruned = load_pruned(full, folder)
    assert len(pruned) == 30
    with pytest.raises(ValueError, match="rows are not the ones that were scored"):
        load_pruned(full.shuffle(seed=0), folder)
    loaded = PruneResult.load(folder)
    np.testing.assert_array_equal(loaded.kept_ids, mapped.kept_ids)
    reversed_rows = result.to_source_rows(rows[::-1], 100)  # any injective mapping (a shuffled subset) works
    np.testing.assert_array_equal(reversed_rows.kept_ids, np.sort(rows[::-1][result.kept_ids]))
    with pytest.raises(ValueError, match="names a full-split position twice"):
        result.to_source_rows(np.r_[rows[:-1], rows[0]], 100)


def test_load_pruned_streams_by_position_without_decoding_dropped_rows(tmp_path):
    _, result = _result(n=40)
    folder = save_results([result], tmp_path / "list", source="org/data")
    decoded = []

    def rows():
        for i in range(40):
            decoded.append(i)
            yield {"x": i}

    from datasets import IterableDataset

    stream = IterableDataset.from_generator(rows)
    with pytest.warns(SourceMismatchWarning, match="streamed"):
        pruned = load_pruned(stream, folder)
    assert [r["x"] for r in pruned] == result.kept_ids.tolist()


def test_the_cards_snippets_run_on_a_local_folder(tmp_path):
    """The card says a local folder works in place of `<repo_id>`: its snippets, run as written on the folder."""
    import re

    _, result = _result()
    full_train = Dataset.from_dict({"x": list(range(40)), "label": [i % 4 for i in range(40)]})
    folder = save_results([result], tmp_path / "list", source=("org/data", "train"), source_dataset=full_train)
    text = (folder / "README.md").read_text()
    assert "A local folder works in place of `<repo_id>`" in text
    local = repr(str(folder))
    scope = {"np": np, "load_dataset": load_dataset, "load_pruned": load_pruned, "full_train": full_train}
    inline = re.search(r'`(load_dataset\("path/to/folder", "prune_25", split="train"\))`', text).group(1)
    assert eval(inline.replace('"path/to/folder"', local), scope)["index"] == result.kept_ids.tolist()
    lines = text.splitlines()
    for start in ("keep = load_dataset(", "train = full_train.select(keep)"):  # the datasets-only recipe
        exec(next(line for line in lines if line.startswith(start)).replace('"<repo_id>"', local), scope)
    assert scope["train"]["x"] == result.kept_ids.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SourceMismatchWarning)  # the row fingerprint is checked: silent
        exec(next(line for line in lines if line.startswith("train = load_pruned(")).replace('"<repo_id>"', local),
             scope)  # fmt: skip
    assert scope["train"]["x"] == result.kept_ids.tolist()


def test_card_shows_the_gallery_of_a_list_made_on_a_subset(tmp_path):
    from datasets import Array2D, Features
    from sklearn.datasets import load_digits

    from hf_prune.gallery import gallery_rows

    _, result = _result(n=40)
    rows = np.arange(20, 60)  # the run trained on rows 20..59 of a 100-row split
    mapped = result.to_source_rows(rows, 100, "rows 20 to 59")
    images = (load_digits().images[:100] * 16).clip(0, 255).astype(np.uint8)
    full = Dataset.from_dict(
        {"image": list(images), "label": [i % 4 for i in range(100)]},
        features=Features({"image": Array2D((8, 8), "uint8"), "label": ClassLabel(names=NAMES)}),
    )
    folder = save_results([mapped], tmp_path / "list", source=("org/data", "train"), source_dataset=full)
    text = (folder / "README.md").read_text()
    assert "![Removed and kept examples per class, config prune_25](images/gallery_prune_25.png)" in text
    assert (folder / "images" / "gallery_prune_25.png").stat().st_size > 10_000
    # only rows the run scored are shown: the full split's other rows have no score
    shown = np.concatenate([np.r_[row.removed, row.kept] for row in gallery_rows(mapped)])
    assert shown.size and set(shown.tolist()) <= set(rows.tolist())
    assert sum(row.num_scored for row in gallery_rows(mapped)) == 40
