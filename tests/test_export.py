"""Index-list folders (parquet + dataset card), plain `datasets` consumption, `load_pruned` checks, model cards."""

import hashlib
import sys
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset, Features, Image, load_dataset

from hf_prune import PruneResult, ScoreRecord, get_strategy
from hf_prune.export import (
    HubPushError,
    SourceMismatchWarning,
    config_name_for,
    index_sha256,
    load_pruned,
    model_card,
    push_folder_to_hub,
    read_index_list,
    save_results,
    template_path,
)
from hf_prune.sample_ids import row_fingerprint


N = 60


def _record(n=N, seed=0):
    rng = np.random.default_rng(seed)
    return ScoreRecord.from_arrays(
        {"p_target": rng.random((10, n))},
        labels=np.arange(n) % 4,
        metadata={
            "seed": 11,
            "model": {"name_or_path": "tiny-swin", "class": "Swin"},
            "dataset_fingerprint": "fp-train",
            "args": {"learning_rate": 0.001, "per_device_train_batch_size": 32, "output_dir": "run"},
        },
    )


def _source(n=N):
    return Dataset.from_dict(
        {"file_name": [f"img_{i:04d}.JPEG" for i in range(n)], "label": [i % 4 for i in range(n)]}
    )


def _yaml(folder):
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---")[1]), text


@pytest.fixture
def results():
    strategy = get_strategy("dyn_unc", window=4)
    record = _record()
    return strategy.select(record, prune_ratio=0.25), strategy.select(record, prune_ratio=0.5)


def test_config_names_and_checksum_definition():
    assert config_name_for(0.25) == "prune_25"
    assert config_name_for(0.5) == "prune_50"
    assert config_name_for(0.125) == "prune_12p5"
    ids = np.array([0, 3, 2**40], dtype=np.int64)
    expected = hashlib.sha256(b"".join(int(i).to_bytes(8, "little") for i in ids)).hexdigest()
    assert index_sha256(ids) == expected
    assert index_sha256(ids.astype(">i8")) == expected  # the encoding, not the in-memory dtype, is hashed


def test_parquet_layout_and_card_yaml(tmp_path, results):
    r25, _ = results
    source = _source()
    folder = r25.save(
        tmp_path / "list", source=("org/src", "train", "rev-abc"), source_dataset=source, content_key="file_name"
    )
    table = pq.read_table(folder / "data/prune_25/train-00000-of-00001.parquet")
    assert table.column_names == ["index", "score", "label", "file_name"]
    assert table.schema.field("index").type == pa.int64()
    index = table["index"].to_numpy()
    assert (np.diff(index) > 0).all() and index.tolist() == r25.kept_ids.tolist()
    assert table["file_name"].to_pylist() == [f"img_{i:04d}.JPEG" for i in index]
    meta, text = _yaml(folder)
    assert meta["license"] == "other" and meta["task_categories"] == ["image-classification"]
    assert {"dataset-pruning", "dyn_unc"} <= set(meta["tags"])
    assert meta["configs"] == [
        {
            "config_name": "prune_25",
            "default": True,
            "data_files": [{"split": "train", "path": "data/prune_25/*.parquet"}],
        }
    ]
    p = meta["pruning"]
    assert p["method"] == "dyn_unc" and p["prune_ratio"] == 0.25 and p["kept"] == 45
    assert p["index_sha256"] == index_sha256(index) == p["lists"]["prune_25"]["index_sha256"]
    assert p["source"] == {
        "repo_id": "org/src",
        "config": None,
        "split": "train",
        "revision": "rev-abc",
        "num_rows": N,
        "fingerprint": source._fingerprint,  # the source split's, over the training set's ("fp-train")
        "row_fingerprint": row_fingerprint(source),  # checks a consumer's rows whatever their transforms
    }
    assert p["model"] == "tiny-swin" and p["epochs"] == 10 and p["window"] == 4 and p["seed"] == 11
    assert p["params"]["window"] == 4 and p["content_key"] == "file_name"
    assert p["training"] == {"learning_rate": 0.001, "per_device_train_batch_size": 32}
    assert p["hf_prune_version"]
    # The body: a three-line recipe with datasets only, the method with its citation, the histogram.
    assert 'load_dataset("org/src", split="train", revision="rev-abc")' in text
    assert 'keep = load_dataset("<repo_id>", "prune_25", split="train").with_format("numpy")["index"][:]' in text
    assert "arXiv:2306.05175" in text and "fraction **removed**" in text
    assert "images/score_histogram.png" in text and (folder / "images/score_histogram.png").stat().st_size > 1000


def test_several_ratios_one_repo(tmp_path, results):
    folder = save_results(list(results), tmp_path / "list", source="org/src")
    meta, text = _yaml(folder)
    assert [c["config_name"] for c in meta["configs"]] == ["prune_25", "prune_50"]
    assert "prune_ratio" not in meta["pruning"]  # per-list values live under `lists:` when there are several
    assert {k: v["kept"] for k, v in meta["pruning"]["lists"].items()} == {"prune_25": 45, "prune_50": 30}
    assert "`prune_50`" in text
    assert PruneResult.load(folder, config="prune_50").kept_ids.tolist() == results[1].kept_ids.tolist()
    assert PruneResult.load(folder).prune_ratio == 0.25  # the default config
    with pytest.raises(ValueError, match=r"no index list 'prune_75'.*\['prune_25', 'prune_50'\]"):
        PruneResult.load(folder, config="prune_75")
    with pytest.raises(ValueError, match="same prune_ratio"):
        save_results([results[0], results[0]], tmp_path / "dup")
    other = get_strategy("dyn_unc", window=4).select(_record(n=N + 1), prune_ratio=0.5)
    with pytest.raises(ValueError, match="one run"):
        save_results([results[0], other], tmp_path / "mixed")


def test_plain_datasets_select_and_filter_give_the_pruned_set(tmp_path, results):
    folder = save_results(list(results), tmp_path / "list", source="org/src")
    source = _source()
    cache = str(tmp_path / "cache")
    for config, result in zip(["prune_25", "prune_50"], results):
        keep = load_dataset(str(folder), config, split="train", cache_dir=cache)["index"]
        expected = [f"img_{i:04d}.JPEG" for i in result.kept_ids]
        assert source.select(keep)["file_name"] == expected
        keep_set = set(keep)
        assert source.filter(lambda _, i, s=keep_set: i in s, with_indices=True)["file_name"] == expected
        # The card's faster form: a NumPy array of ids.
        keep_np = load_dataset(str(folder), config, split="train", cache_dir=cache).with_format("numpy")["index"][:]
        assert keep_np.dtype == np.int64 and source.select(keep_np)["file_name"] == expected
    # No config named: the default (first) list.
    assert list(load_dataset(str(folder), split="train", cache_dir=cache)["index"]) == results[0].kept_ids.tolist()


def test_load_pruned_checks_and_remaps(tmp_path, results):
    r25, _ = results
    source = _source()
    folder = r25.save(
        tmp_path / "list", source=("org/src", "train", "rev-abc"), source_dataset=source, content_key="file_name"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same dataset (fingerprint), no revision to compare: silent
        pruned = load_pruned(source, folder)
    assert pruned["file_name"] == [f"img_{i:04d}.JPEG" for i in r25.kept_ids]

    # A mirror in another order (and with a few extra rows): remapped by file name, with a warning for the count.
    mirror = Dataset.from_dict({"file_name": [f"img_{i:04d}.JPEG" for i in range(N + 5)][::-1]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remapped = load_pruned(mirror, folder)
    messages = [str(w.message) for w in caught if w.category is SourceMismatchWarning]
    assert any("65 rows, the list was made on 60" in m and "remapped" in m for m in messages)
    assert sorted(remapped["file_name"]) == sorted(pruned["file_name"])
    # A mirror missing rows the list keeps is refused.
    short = Dataset.from_dict({"file_name": [f"img_{i:04d}.JPEG" for i in range(N) if i != r25.kept_ids[0]]})
    with pytest.raises(ValueError, match=r"1 of the list's 45 rows are not in the source"):
        load_pruned(short, folder)

    # A mirror whose key column is not unique cannot be remapped.
    twice = Dataset.from_dict({"file_name": [f"img_{i // 2:04d}.JPEG" for i in range(2 * N)]})
    with pytest.raises(ValueError, match=r"'file_name' column has 60 duplicate values"):
        load_pruned(twice, folder)

    # Another revision of the source than the card names: refused, or applied with a warning under force=True.
    with pytest.raises(ValueError, match="revision 'rev-abc'.*you loaded 'main'.*force=True"):
        load_pruned(source, folder, source_revision="main")
    with pytest.warns(SourceMismatchWarning, match="revision 'rev-abc'.*you loaded 'main'.*force=True"):
        load_pruned(source, folder, source_revision="main", force=True)
    # Rows matched by content need no fingerprint: another cache of the same data (another fingerprint) is silent.
    source._fingerprint = "other-fp"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_pruned(source, folder)["file_name"] == pruned["file_name"]


def _hub_cached(dataset, root, commit):
    """`dataset` written where `load_dataset` caches a Hub split loaded at `commit`."""
    path = root / "org___src" / "default" / "0.0.0" / commit / "src-train.arrow"
    path.parent.mkdir(parents=True)
    return dataset.flatten_indices(cache_file_name=str(path))


def test_source_revision_inferred_from_a_hub_cached_split(tmp_path, results):
    r25, _ = results
    loaded = _hub_cached(_source().select(range(N)), tmp_path / "cache_a", "a" * 40)
    folder = r25.save(tmp_path / "list", source="org/src", source_dataset=loaded)
    meta, _ = _yaml(folder)
    assert meta["pruning"]["source"]["revision"] == "a" * 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_pruned(loaded, folder)) == 45
    newer = _hub_cached(_source().select(range(N)), tmp_path / "cache_b", "b" * 40)
    with pytest.raises(ValueError, match=f"made on revision '{'a' * 40}'.*you loaded '{'b' * 40}'"):
        load_pruned(newer, folder)
    with pytest.warns(SourceMismatchWarning, match=f"made on revision '{'a' * 40}'.*you loaded '{'b' * 40}'"):
        load_pruned(newer, folder, force=True)


def test_load_pruned_refuses_wrong_length_and_bad_checksum(tmp_path, results):
    r25, _ = results
    folder = r25.save(tmp_path / "list", source=("org/src", "train", "rev-abc"))
    plain = Dataset.from_dict({"x": list(range(N - 1))})
    with pytest.raises(ValueError, match=r"59 rows but the list was made on 60 rows of org/src .*-1"):
        load_pruned(plain, folder)
    # Tamper with the list: one id moved. The card's checksum no longer matches.
    path = folder / "data/prune_25/train-00000-of-00001.parquet"
    table = pq.read_table(path)
    index = table["index"].to_numpy().copy()
    j = int(np.flatnonzero(np.diff(index) > 1)[0])  # a kept id whose successor was removed
    index[j] += 1  # still sorted, now a removed row
    assert (np.diff(index) > 0).all() and index.tolist() != r25.kept_ids.tolist()
    pq.write_table(table.set_column(0, "index", pa.array(index)), path)
    with pytest.raises(ValueError, match=r"index checksum mismatch: the card says index_sha256=\w{64} but the data"):
        load_pruned(Dataset.from_dict({"x": list(range(N))}), folder)


def test_content_key_from_an_image_column_uses_file_names(tmp_path, results):
    r25, _ = results
    rows = {"image": [{"bytes": None, "path": f"/data/train/n01/img_{i:04d}.JPEG"} for i in range(N)]}
    source = Dataset.from_dict(rows, features=Features({"image": Image(decode=False)})).cast_column("image", Image())
    folder = r25.save(tmp_path / "list", source_dataset=source, content_key="image")
    assert read_index_list(folder).content[:2].to_pylist() == [f"img_{i:04d}.JPEG" for i in r25.kept_ids[:2]]


def test_card_of_another_method_states_its_selection(tmp_path):
    record = ScoreRecord.from_arrays(
        {"correct": (np.random.default_rng(1).random((6, N)) > 0.5).astype(np.float32)}, labels=np.arange(N) % 4
    )
    result = get_strategy("forgetting").select(record, prune_ratio=0.5, class_balanced=True, keep="low")
    _, text = _yaml(result.save(tmp_path / "list"))
    assert "## Method: Forgetting events" in text and "toneva2019empirical" in text
    assert "Toneva et al. 2019" in text  # the strategy's own docstring describes it
    assert "keeps the rows with the **lowest** `score`, removing the same fraction from each class" in text


def test_data_map_in_the_card_when_the_record_is_given(tmp_path, results):
    folder = results[0].save(tmp_path / "list", record=_record())
    assert (folder / "images/data_map.png").stat().st_size > 1000
    assert "(images/data_map.png)" in (folder / "README.md").read_text()


def test_histogram_skipped_without_matplotlib(tmp_path, results, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    folder = results[0].save(tmp_path / "list", record=_record())
    assert not (folder / "images").exists()
    assert "score_histogram" not in (folder / "README.md").read_text()


def test_push_refuses_an_incomplete_folder_before_touching_the_hub(tmp_path, results):
    folder = results[0].save(tmp_path / "list")
    (folder / "data/prune_25/train-00000-of-00001.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="data files of config 'prune_25' are missing"):
        push_folder_to_hub(folder, "someone/list", token="hf_unused")
    assert issubclass(HubPushError, RuntimeError)


def test_model_card(results):
    r25, _ = results
    card = model_card(
        "org/src-dyn-unc",
        result=r25,
        source="org/src",
        accuracy=0.781,
        full_accuracy=0.7862,
        eval_split="validation",
        library_name="timm",
    )
    data = card.data.to_dict()
    assert data["datasets"] == ["org/src", "org/src-dyn-unc"]
    assert data["library_name"] == "timm" and "dataset-pruning" in data["tags"]
    assert data["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.781
    text = str(card)
    assert "/datasets/org/src-dyn-unc" in text and "config `prune_25`" in text
    assert "78.10 %" in text and "78.62 %" in text and "-0.52 points" in text
    assert "45 of 60 rows kept" in text and "learning_rate" in text
    assert template_path("model_trained_on_pruned.md").is_file()


# The gallery: per config, the removed and kept examples per class, drawn from the source's images for the card.


def _digits_source(n=N):
    """`n` real 8x8 grey images (sklearn's digits) with the labels of `_record` (`i % 4`) and the file names."""
    from datasets import Array2D, ClassLabel, Value
    from sklearn.datasets import load_digits

    images = (load_digits().images[:n] * 16).clip(0, 255).astype(np.uint8)
    features = Features({"image": Array2D((8, 8), "uint8"), "label": ClassLabel(names=list("abcd")),
                         "file_name": Value("string")})  # fmt: skip
    rows = {"image": list(images), "label": [i % 4 for i in range(n)], "file_name": [f"img_{i:04d}.png" for i in range(n)]}
    return Dataset.from_dict(rows, features=features)


class _Logs:
    """The records `hf_prune.export.folder` logs, whatever the logging setup (`setup_logging` stops propagation)."""

    def __enter__(self):
        import logging

        self.records, self.logger = [], logging.getLogger("hf_prune.export.folder")
        self.handler = logging.Handler(logging.DEBUG)
        self.handler.emit = self.records.append
        self.level = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)

    def messages(self, level):
        return [r.getMessage() for r in self.records if r.levelname == level]


def test_gallery_per_config_is_written_linked_and_pushed(tmp_path, results):
    from PIL import Image as PILImage

    from hf_prune.export import listed_files

    folder = save_results(list(results), tmp_path / "list", source="org/src", source_dataset=_digits_source())
    _, text = _yaml(folder)
    assert "## What was removed" in text and "the lowest `score` first" in text
    for config in ("prune_25", "prune_50"):
        path = f"images/gallery_{config}.png"
        assert f"Config `{config}`:" in text and f"config {config}]({path})" in text
        with PILImage.open(folder / path) as png:
            assert png.size[0] > 800 and png.size[1] > 300  # 4 classes of 6 + 6 pictures
        assert path in listed_files(folder)  # a push uploads what the card shows
    # one config: no per-config heading
    _, text = _yaml(results[0].save(tmp_path / "one", source="org/src", source_dataset=_digits_source()))
    assert "![Removed and kept examples per class, config prune_25](images/gallery_prune_25.png)" in text
    assert "Config `prune_25`:" not in text


def test_no_gallery_without_images_says_how_to_get_one(tmp_path, results):
    r25, _ = results
    with _Logs() as logs:
        folder = r25.save(tmp_path / "list", source="org/src")
    assert not list((folder / "images").glob("gallery_*")) and "What was removed" not in _yaml(folder)[1]
    assert any("pass `source_dataset=`" in m for m in logs.messages("INFO"))
    with _Logs() as logs:
        folder = r25.save(tmp_path / "list", source="org/src", source_dataset=_source())  # file names, no images
    assert not list((folder / "images").glob("gallery_*")) and "What was removed" not in _yaml(folder)[1]
    assert any("no image column" in m and "file_name" in m for m in logs.messages("INFO"))
    folder = r25.save(tmp_path / "list", source="org/src", source_dataset=_digits_source(), plot=False)
    assert not (folder / "images").exists()


def test_unreadable_source_images_leave_the_list_saved_without_gallery(tmp_path, results):
    r25, _ = results
    rows = {"image": [{"bytes": None, "path": str(tmp_path / f"gone/img_{i:04d}.JPEG")} for i in range(N)]}
    source = Dataset.from_dict(rows, features=Features({"image": Image(decode=False)})).cast_column("image", Image())
    with _Logs() as logs:
        folder = r25.save(tmp_path / "list", source="org/src", source_dataset=source)
    (warning,) = logs.messages("WARNING")
    assert "Could not draw the gallery of prune_25" in warning and "saved without it" in warning
    assert read_index_list(folder).index.tolist() == r25.kept_ids.tolist()
    assert "What was removed" not in _yaml(folder)[1]
