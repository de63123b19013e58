"""The embedded text data (Debian's fortunes) and the tiny text tasks built on it."""

from pathlib import Path

import pytest

from hf_prune.text_data import FORTUNES_DIR, fortune_categories, load_fortunes, read_fortune_file, train_word_tokenizer


def write_folder(root: Path) -> Path:
    root.mkdir()
    (root / "cats").write_bytes(b"A cat.\n%\nTwo\nlines.\n%\n\n%\nLast one\n")
    (root / "dogs").write_bytes("Caf\xe9 dog.\n%\nB_\bo_\bl_\bd dog\n%\n".encode("latin-1"))
    (root / "cats.dat").write_bytes(b"\x00\x01")  # strfile's index
    (root / "cats.u8").symlink_to(root / "cats")  # the UTF-8 alias of the same file
    (root / "tiny").write_text("only\n%\n")
    return root


def test_parses_entries_overstrike_latin1_and_skips_indexes(tmp_path):
    root = write_folder(tmp_path / "f")
    assert read_fortune_file(root / "cats") == ["A cat.", "Two\nlines.", "Last one"]
    assert read_fortune_file(root / "dogs") == ["Café dog.", "Bold dog"]
    assert sorted(fortune_categories(root)) == ["cats", "dogs", "tiny"]
    data = load_fortunes(root, min_quotes=2, test_size=0.4, seed=0)
    assert data["train"].features["label"].names == ["cats", "dogs"]
    assert len(data["train"]) + len(data["test"]) == 5
    again = load_fortunes(root, min_quotes=2, test_size=0.4, seed=0)
    assert again["train"]["text"] == data["train"]["text"]  # same rows, same order for every process
    with pytest.raises(ValueError, match=r"Unknown fortune categories \['birds'\]"):
        load_fortunes(root, categories=["cats", "birds"])
    with pytest.raises(ValueError, match="lower `min_quotes`"):
        load_fortunes(root, min_quotes=10)
    with pytest.raises(FileNotFoundError, match="apt-get install -y fortunes"):
        load_fortunes(tmp_path / "nowhere")


def test_word_tokenizer_needs_no_download():
    tok = train_word_tokenizer(["the cat sat", "the dog sat"], vocab_size=50, model_max_length=16)
    ids = tok("the cat flew")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[BOS]", "the", "cat", "[UNK]", "[EOS]"]
    assert tok.pad_token == "[PAD]" and tok.model_max_length == 16


@pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian's fortunes is not installed (`make data` installs it)")
def test_the_real_fortunes_and_a_text_task():
    from hf_prune.text_task import prepare_text_task

    data = load_fortunes()
    names = data["train"].features["label"].names
    assert len(names) == 32 and {"people", "computers", "cookie"} <= set(names)
    assert len(data["train"]) + len(data["test"]) == 14_691
    task = prepare_text_task(max_train_samples=64, max_length=32, vocab_size=500)
    assert len(task.train) == 64 and task.num_labels == 32
    assert max(len(ids) for ids in task.train["input_ids"]) <= 32
    model = task.new_classifier(seed=0, hidden_size=16)
    lm = task.new_causal_lm(seed=0, hidden_size=16)
    assert model.config.num_labels == 32 and lm.config.vocab_size == len(task.tokenizer)
