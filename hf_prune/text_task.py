"""Small text tasks built from config for recipes, tests and the text evidence: a word-level tokenizer trained on the
embedded `fortunes` data, a tiny BERT classifier of the category and a tiny GPT-2 for causal-LM fine-tuning, and the
tokenized datasets (no download anywhere).

Example:

```python
>>> from hf_prune.text_task import prepare_text_task
>>> task = prepare_text_task(max_train_samples=512, seed=0)
>>> len(task.train), task.num_labels, sorted(task.train.features)
(512, 32, ['attention_mask', 'input_ids', 'label'])
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .text_data import load_fortunes, train_word_tokenizer


@dataclass
class TextTask:
    """What `prepare_text_task` returns: the tokenizer and the tokenized `train` / `test` splits (`input_ids`,
    `attention_mask`, `label`), the raw splits (`text`, `label`) and the label names."""

    tokenizer: Any
    train: Any
    test: Any
    raw_train: Any
    raw_test: Any
    label_names: list[str]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def new_classifier(self, seed: int = 0, hidden_size: int = 128, num_layers: int = 2):
        """A fresh tiny BERT (`BertForSequenceClassification` from config) for the category."""
        import torch
        from transformers import BertConfig, BertForSequenceClassification

        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(self.tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=2,
            intermediate_size=2 * hidden_size, max_position_embeddings=self.tokenizer.model_max_length,
            num_labels=self.num_labels, pad_token_id=self.tokenizer.pad_token_id,
            id2label=dict(enumerate(self.label_names)), label2id={n: i for i, n in enumerate(self.label_names)},
        )  # fmt: skip
        return BertForSequenceClassification(config)

    def new_causal_lm(self, seed: int = 0, hidden_size: int = 128, num_layers: int = 2):
        """A fresh tiny GPT-2 (`GPT2LMHeadModel` from config) over the tokenizer's vocabulary."""
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(seed)
        tok = self.tokenizer
        config = GPT2Config(
            vocab_size=len(tok), n_positions=tok.model_max_length, n_embd=hidden_size, n_layer=num_layers, n_head=2,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )  # fmt: skip
        return GPT2LMHeadModel(config)


def prepare_text_task(
    *, max_train_samples: int | None = None, max_length: int = 128, vocab_size: int = 8000, seed: int = 0,
    min_quotes: int = 100,
) -> TextTask:  # fmt: skip
    """The fortunes data (`hf_prune.text_data.load_fortunes`), a word-level tokenizer trained on its train split and
    both splits tokenized (truncated to `max_length`; padding is the collator's, per batch).

    Args:
        max_train_samples (`int`, *optional*): keep the first N training rows (ids still index the full split).
        max_length (`int`, *optional*, defaults to 128): tokens per quote at most (99 % of quotes have fewer than 240
            word-level tokens, half fewer than 24).
        vocab_size (`int`, *optional*, defaults to 8000): words in the vocabulary (about 6 % of tokens are `[UNK]`).
        seed (`int`, *optional*, defaults to 0): seed of the train / test split.
        min_quotes (`int`, *optional*, defaults to 100): categories with fewer quotes are left out.
    """
    data = load_fortunes(min_quotes=min_quotes, seed=seed)
    raw_train, raw_test = data["train"], data["test"]
    if max_train_samples is not None and max_train_samples < len(raw_train):
        raw_train = raw_train.select(range(max_train_samples))
    tokenizer = train_word_tokenizer(raw_train["text"], vocab_size=vocab_size, model_max_length=max_length)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    train = raw_train.map(tokenize, batched=True, remove_columns=["text"])
    test = raw_test.map(tokenize, batched=True, remove_columns=["text"])
    return TextTask(tokenizer, train, test, raw_train, raw_test, raw_train.features["label"].names)
