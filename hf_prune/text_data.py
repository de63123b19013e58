"""Text data available offline for recipes, tests and benchmarks: Debian's `fortunes` package as a text dataset, and a
word-level tokenizer trained on it (no download: the `tokenizers` library builds it from the data).

The embedded text data is the `fortunes` package: one plain-text file per category under `/usr/share/games/fortunes/`
(or `$FORTUNES_DIR`), entries separated by a line holding only `%` — about 17,000 quotes in 43 categories (people
1,250, definitions 1,203, cookie 1,133, computers 1,050 … magic 30). `load_fortunes` reads it as a `DatasetDict`
with `text` and `label` (the category, a `ClassLabel`): a text-classification task (which category is this quote
from?) and, with the text alone, a small causal-LM fine-tuning corpus.

Example:

```python
>>> from hf_prune.text_data import load_fortunes
>>> data = load_fortunes(min_quotes=500)
>>> data["train"].features["label"].names[:3], data["train"][0].keys()
(['art', 'computers', 'cookie'], dict_keys(['text', 'label']))
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path


FORTUNES_DIR = Path(os.environ.get("FORTUNES_DIR", "/usr/share/games/fortunes"))
# Overstrike (`_\bx`, `x\bx`) as the old terminals printed bold and underline: keep the printed character.
_OVERSTRIKE = re.compile(r".\x08")
SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "bos_token": "[BOS]", "eos_token": "[EOS]"}  # fmt: skip


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # a few old files are Latin-1
        return raw.decode("latin-1")


def read_fortune_file(path: str | os.PathLike) -> list[str]:
    """The entries of one fortune file, in file order: split at lines holding only `%`, overstrike removed, blank
    entries dropped, surrounding whitespace stripped (line breaks inside an entry kept)."""
    text = _OVERSTRIKE.sub("", _decode(Path(path).read_bytes()))
    entries = re.split(r"^%[ \t]*$", text, flags=re.M)
    return [entry.strip("\n").rstrip() for entry in entries if entry.strip()]


def fortune_categories(root: str | os.PathLike | None = None) -> dict[str, Path]:
    """`{category: file}` of the fortune files in `root`, sorted by name (the `.dat` indexes and the `.u8` links
    to the same files are left out)."""
    root = Path(root) if root is not None else FORTUNES_DIR
    if not root.is_dir():
        raise FileNotFoundError(
            f"The fortunes data is not in {root}. Install it with `apt-get install -y fortunes` (Debian/Ubuntu; "
            "`make data` does it), or set FORTUNES_DIR to a folder of fortune files."
        )
    files = {
        path.name: path for path in sorted(root.iterdir())
        if path.is_file() and not path.is_symlink() and path.suffix not in (".dat", ".u8") and "." not in path.name
    }  # fmt: skip
    if not files:
        raise FileNotFoundError(f"No fortune files in {root}: expected one plain-text file per category.")
    return files


def load_fortunes(
    root: str | os.PathLike | None = None,
    *,
    min_quotes: int = 100,
    categories: Sequence[str] | None = None,
    test_size: float = 0.2,
    seed: int = 0,
):
    """Debian's `fortunes` as a `datasets.DatasetDict` with `train` and `test` splits.

    Columns: `text` (the quote) and `label` (its category, a `ClassLabel` whose names are the category files, sorted).
    Rows keep the files' order before the split; the split is a seeded, stratified `train_test_split`, so every
    process and every rerun with the same `seed` gets the same rows in the same order.

    Args:
        root (`str`, *optional*): folder of fortune files; defaults to `/usr/share/games/fortunes` (or
            `$FORTUNES_DIR`).
        min_quotes (`int`, *optional*, defaults to 100): leave out categories with fewer entries (the smallest have
            1–85, too few to learn or evaluate a class). 100 keeps 32 categories, 14,691 quotes.
        categories (`list[str]`, *optional*): exactly these categories (overrides `min_quotes`).
        test_size (`float`, *optional*, defaults to 0.2): share of each category held out as `test`.
        seed (`int`, *optional*, defaults to 0): seed of the split.
    """
    import datasets

    files = fortune_categories(root)
    if categories is not None:
        unknown = sorted(set(categories) - set(files))
        if unknown:
            raise ValueError(f"Unknown fortune categories {unknown}; the folder has {sorted(files)}.")
        chosen = {name: files[name] for name in sorted(categories)}
        entries = {name: read_fortune_file(path) for name, path in chosen.items()}
    else:
        entries = {name: read_fortune_file(path) for name, path in files.items()}
        entries = {name: quotes for name, quotes in entries.items() if len(quotes) >= min_quotes}
        if not entries:
            raise ValueError(f"No fortune category has {min_quotes} entries or more; lower `min_quotes`.")
    names = list(entries)
    texts = [quote for quotes in entries.values() for quote in quotes]
    labels = [i for i, quotes in enumerate(entries.values()) for _ in quotes]
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    full = datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)
    return full.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")


def train_word_tokenizer(texts: Iterable[str], *, vocab_size: int = 8000, model_max_length: int = 128):
    """A word-level `PreTrainedTokenizerFast` trained on `texts` (lower-cased words and punctuation; the rest `[UNK]`),
    with `[PAD] [UNK] [CLS] [SEP] [BOS] [EOS]`; needs no download. Encodings start with `[BOS]` and end with `[EOS]`
    (a causal LM learns where a quote ends; a classifier reads the whole sequence)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()))
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    bos, eos = SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, tokenizer.token_to_id(bos)), (eos, tokenizer.token_to_id(eos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=model_max_length, **SPECIAL_TOKENS)
