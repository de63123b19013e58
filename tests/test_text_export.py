"""Index lists of text datasets: the content key of a text row is the sha256 of its text (chat `messages`, prompt and
completion, token ids: of their canonical JSON); a list exported with it is checked against a consumer's copy by
content (tampered text caught, reordered copy remapped); `row_fingerprint` reads text, chat and tokenized datasets
column-wise."""

import hashlib
import json
import time

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from hf_prune import ScoreRecord, get_strategy, load_pruned
from hf_prune.export.content import (
    canonical_json,
    content_key_columns,
    content_values,
    detect_content_key,
    is_hashed_key,
    resolve_content_key,
    text_key,
)
from hf_prune.export.index_list import read_index_list
from hf_prune.sample_ids import (
    LEGACY_ROW_FINGERPRINT_VERSIONS,
    _row_fingerprint,
    row_fingerprint,
    row_fingerprint_matches,
)


N = 40
QUOTES = [f"Quote number {i}: {'é' * (i % 3)} a fortune {'cookie' if i % 2 else 'teller'}." for i in range(N)]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def text_dataset(texts=QUOTES):
    labels = [i % 4 for i in range(len(texts))]
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(num_classes=4)})
    return datasets.Dataset.from_dict({"text": list(texts), "label": labels}, features=features)


def chat_dataset():
    messages = [
        [{"role": "user", "content": f"What is {i} + {i}?"}, {"role": "assistant", "content": str(2 * i)}]
        for i in range(N)
    ]
    return datasets.Dataset.from_dict({"messages": messages})


@pytest.fixture()
def result():
    rng = np.random.default_rng(0)
    record = ScoreRecord.from_arrays({"loss": rng.random((3, N)).astype(np.float32)}, labels=np.arange(N) % 4)
    return get_strategy("random", seed=1).select(record, prune_ratio=0.5)


# ------------------------------------------------------------------------------------------------ the keys


def test_text_key_is_the_sha256_of_the_utf8_text():
    ds = text_dataset()
    assert is_hashed_key(ds, "text")
    assert content_values(ds, "text").to_pylist() == [sha(t) for t in QUOTES]  # what a consumer recomputes
    assert text_key("é") == hashlib.sha256("é".encode()).hexdigest()[:32]
    # a view in another order gives the keys of its own rows
    assert content_values(ds.select([3, 1]), "text").to_pylist() == [sha(QUOTES[3]), sha(QUOTES[1])]
    # an empty text is a value (its hash); a null is refused, naming the fix
    assert content_values(text_dataset(["", "a"]), "text").to_pylist() == [sha(""), sha("a")]
    with pytest.raises(ValueError, match=r"1 rows have no value \(null\) in content key 'text'; fill them"):
        content_values(text_dataset([None, "a"]), "text")


def test_identifier_and_file_columns_are_stored_as_they_are():
    ds = datasets.Dataset.from_dict({"file_name": ["a.jpg", "b.jpg"], "id": [7, 8]})
    assert not is_hashed_key(ds, "file_name") and not is_hashed_key(ds, "id")
    assert content_values(ds, "file_name").to_pylist() == ["a.jpg", "b.jpg"]
    assert content_values(ds, "id").to_pylist() == ["7", "8"]


def test_chat_messages_are_keyed_by_their_canonical_json():
    ds = chat_dataset()
    expected = json.dumps(
        [{"content": "What is 0 + 0?", "role": "user"}, {"content": "0", "role": "assistant"}],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip
    assert canonical_json(ds[0]["messages"]) == expected
    keys = content_values(ds, "messages").to_pylist()
    assert keys[0] == sha(expected) and len(set(keys)) == N
    # a copy whose turns carry an extra null field (another loader's schema) has the same content
    extra = [[{**turn, "tool_calls": None} for turn in row] for row in ds["messages"]]
    assert content_values(datasets.Dataset.from_dict({"messages": extra}), "messages").to_pylist() == keys


def test_several_columns_and_token_ids():
    ds = datasets.Dataset.from_dict(
        {"prompt": ["2+2?", "2+2?"], "completion": ["4", "5"], "input_ids": [[1, 2], [2, 1]]}
    )
    assert content_key_columns(ds, "prompt+completion") == ["prompt", "completion"]
    assert content_key_columns(ds, "prompt+answer") is None
    keys = content_values(ds, "prompt+completion").to_pylist()
    assert keys[0] == sha('{"completion":"4","prompt":"2+2?"}') and keys[0] != keys[1]  # the same prompt twice
    ids = content_values(ds, "input_ids").to_pylist()
    assert ids == [sha("[1,2]"), sha("[2,1]")]
    with pytest.raises(ValueError, match=r"no column 'prompt\+answer'.*detect_content_key\(dataset\)` finds"):
        content_values(ds, "prompt+answer")


def test_detected_text_columns():
    assert detect_content_key(chat_dataset()) == "messages"
    assert detect_content_key(text_dataset()) == "text"
    assert (
        detect_content_key(datasets.Dataset.from_dict({"prompt": ["a"], "completion": ["b"]})) == "prompt+completion"
    )
    assert (
        detect_content_key(datasets.Dataset.from_dict({"sentence1": ["a"], "sentence2": ["b"]}))
        == "sentence1+sentence2"
    )
    assert detect_content_key(datasets.Dataset.from_dict({"input_ids": [[1]], "label": [0]})) == "input_ids"
    assert detect_content_key(datasets.Dataset.from_dict({"x": [1.0]})) is None
    assert resolve_content_key(text_dataset(), "auto") == "text"
    assert resolve_content_key(text_dataset(), None) is None
    with pytest.raises(ValueError, match="no column 'txt'"):
        resolve_content_key(text_dataset(), "txt")


# ------------------------------------------------------------------------------------------------ export -> load


def test_export_and_load_with_the_content_check(tmp_path, result):
    ds = text_dataset()
    folder = result.save(tmp_path / "list", source_dataset=ds, content_key="text", plot=False)
    table = pq.read_table(folder / "data/prune_50/train-00000-of-00001.parquet")
    kept = result.kept_ids
    assert table["text"].to_pylist() == [sha(QUOTES[i]) for i in kept]  # keys, not the text itself
    assert read_index_list(folder).content_key == "text"
    pruned = load_pruned(ds, folder)
    assert pruned["text"] == [QUOTES[i] for i in kept]
    # a copy with the rows in another order is remapped by content
    reordered = load_pruned(ds.shuffle(seed=3), folder)
    assert sorted(reordered["text"]) == sorted(QUOTES[i] for i in kept)
    # a copy whose text differs in a kept row is caught
    victim = int(kept[len(kept) // 2])
    tampered = ds.map(lambda row, i: {"text": row["text"] + (" (edited)" if i == victim else "")}, with_indices=True)
    with pytest.raises(ValueError, match=r"1 of the list's 20 rows are not in the source \(by 'text'"):
        load_pruned(tampered, folder)
    # one changed in a removed row leaves the kept rows right
    removed = int(np.setdiff1d(np.arange(N), kept)[0])
    edited = ds.map(lambda row, i: {"text": row["text"] + ("!" if i == removed else "")}, with_indices=True)
    assert load_pruned(edited, folder)["text"] == [QUOTES[i] for i in kept]


def test_export_of_a_chat_dataset(tmp_path, result):
    ds = chat_dataset()
    folder = result.save(tmp_path / "list", source_dataset=ds, content_key=detect_content_key(ds), plot=False)
    assert load_pruned(ds, folder)["messages"] == [ds[int(i)]["messages"] for i in result.kept_ids]
    victim = int(result.kept_ids[0])
    tampered = ds.map(
        lambda row, i: {"messages": [{**row["messages"][0], "content": "?"}, row["messages"][1]] if i == victim
                        else row["messages"]}, with_indices=True,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"not in the source \(by 'messages'"):
        load_pruned(tampered, folder)


# ------------------------------------------------------------------------------------------------ row fingerprints


@pytest.mark.parametrize("make", ["text", "chat", "tokens"])
def test_row_fingerprint_of_text_chat_and_tokenized_datasets(make):
    if make == "text":
        ds = text_dataset()
        edit = {"text": "changed"}
    elif make == "chat":
        ds = chat_dataset()
        edit = {"messages": [{"role": "user", "content": "changed"}]}
    else:
        rng = np.random.default_rng(0)
        ds = datasets.Dataset.from_dict({"input_ids": [rng.integers(0, 50, 1 + i % 9).tolist() for i in range(N)],
                                         "label": [i % 3 for i in range(N)]})  # fmt: skip
        edit = {"input_ids": list(reversed(ds[17]["input_ids"])) + [0]}
    base = row_fingerprint(ds)
    assert base.startswith("rows3:") and row_fingerprint_matches(base, ds) is True
    changed = ds.map(lambda row, i: edit if i == 17 else row, with_indices=True)
    assert row_fingerprint(changed) != base
    assert row_fingerprint(ds.select([1, 0, *range(2, N)])) != base
    assert row_fingerprint(ds.select(range(N))) == base
    assert row_fingerprint(ds.shuffle(seed=0).flatten_indices()) == row_fingerprint(ds.shuffle(seed=0))


def test_list_cells_hash_by_element_position_and_length():
    def fp(cells):
        return row_fingerprint(datasets.Dataset.from_dict({"input_ids": cells}))

    base = fp([[1, 2, 3], [4, 5]])
    assert fp([[1, 2, 3], [4, 5]]) == base
    for other in ([[2, 1, 3], [4, 5]], [[1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 0]], [[1, 2, 3], [5, 4]]):
        assert fp(other) != base, other
    # nested lists and null cells
    assert fp([[[1], [2]], [[1, 2]]]) != fp([[[1, 2]], [[1], [2]]])
    assert fp([[1], None]) != fp([[1], []])


def test_tokenized_fingerprint_is_vectorised():
    rng = np.random.default_rng(0)
    ds = datasets.Dataset.from_dict({"input_ids": list(rng.integers(0, 30_000, (20_000, 128)))})
    start = time.perf_counter()
    row_fingerprint(ds)
    assert time.perf_counter() - start < 10  # rows2's JSON path took ~4 s here on 2 shared cores; this ~0.6 s


def test_fingerprints_of_rows2_lists_are_still_understood():
    assert "rows2" in LEGACY_ROW_FINGERPRINT_VERSIONS
    # the values the rows2 release stored for these datasets (list cells through their JSON form)
    tokens = datasets.Dataset.from_dict({"input_ids": [[1, 2], [3], []], "label": [0, 1, 0]})
    chat = datasets.Dataset.from_dict({"messages": [[{"role": "user", "content": "hi"}], []]})
    for ds, stored in [(tokens, "rows2:07c6ad6e6216643c0177dd849261710c"),
                       (chat, "rows2:04e887c7c999b7daf0c73635f0d57ca2")]:  # fmt: skip
        assert _row_fingerprint(ds, 32, "rows2") == stored
        assert row_fingerprint(ds) != stored and row_fingerprint(ds).startswith("rows3:")
        assert row_fingerprint_matches(stored, ds) is True
        assert row_fingerprint_matches(stored, ds.select([1, 0, *range(2, len(ds))])) is False
    # without list columns rows2 and rows3 hash the same rows to the same digest
    plain = text_dataset()
    assert _row_fingerprint(plain, 32, "rows2")[6:] == row_fingerprint(plain)[6:]


def test_save_with_content_key_auto_hashes_the_text_and_the_card_names_s2l(tmp_path):
    ds = datasets.Dataset.from_dict({"text": [f"quote number {i}" for i in range(40)], "label": [i % 2 for i in range(40)]})
    rng = np.random.default_rng(0)
    arrays = {"p_target": rng.random((3, 40)).astype("float32"), "loss": rng.random((3, 40)).astype("float32"),
              "correct": np.ones((3, 40), "float32")}  # fmt: skip
    result = get_strategy("s2l", num_clusters=4).select(ScoreRecord.from_arrays(arrays, labels=np.array(ds["label"])),
                                                         prune_ratio=0.5)  # fmt: skip
    result.save(tmp_path / "list", source=("me/quotes", "train"), source_dataset=ds, content_key="auto")
    assert "k-means clusters of the loss trajectories (S2L" in (tmp_path / "list" / "README.md").read_text()
    assert len(load_pruned(ds, tmp_path / "list")) == 20
    tampered = ds.map(lambda row, i: {"text": row["text"] + ("!" if i == int(result.kept_ids[0]) else "")},
                      with_indices=True)  # fmt: skip
    with pytest.raises(ValueError, match="not in the source"):
        load_pruned(tampered, tmp_path / "list")
