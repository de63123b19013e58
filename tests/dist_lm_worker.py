"""A causal LM under a real 2-process `torchrun` (`tests/test_sequence.py` launches it), and the small text models and
data the sequence tests share (built from config and a tokenizer trained on local text: nothing is downloaded).

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_lm_worker.py OUT_DIR

Trains `PruningTrainer` on `lm_dataset(LM_ROWS)` (sequences of different lengths, padded by the collator, some with a
masked prefix and one without any target token) with gradient accumulation and a learning rate of 0 (the optimizer
steps, the weights stay: every recorded loss must equal the initial model's own loss of that sequence), and
writes, on the main process,
`OUT_DIR/result.json` (the world size) next to the record in `OUT_DIR/run/scores`.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


WORDS = ("the cat dog bird fish sees eats likes runs jumps sleeps over under near big small red blue old new quick "
         "slow happy sad loud quiet green tall short warm cold bright dark").split()  # fmt: skip
LM_ROWS = 37  # not a multiple of world size x batch (2 x 4) x accumulation (2)
FULLY_MASKED_ROW = 5  # every label -100: a sequence without target tokens


def sentences(n: int, seed: int = 0, min_words: int = 3, max_words: int = 14) -> list[str]:
    """`n` reproducible sentences of different lengths over a small vocabulary."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))) for _ in range(n)]


def word_tokenizer():
    """A word-level `PreTrainedTokenizerFast` over `WORDS` (+ `[PAD]`, `[UNK]`, `[EOS]`), right padding."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([" ".join(WORDS)], trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[EOS]"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]",
                                   padding_side="right")  # fmt: skip


def tiny_lm(tokenizer, seed: int = 0, n_embd: int = 32, n_layer: int = 2):
    """A small `GPT2LMHeadModel` from config (no download); dropout off, so a forward is deterministic."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=n_embd, n_layer=n_layer, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)  # fmt: skip
    return GPT2LMHeadModel(config)


def lm_dataset(n: int, tokenizer, seed: int = 0):
    """A tokenized causal-LM `datasets.Dataset` of `n` sentences: `input_ids`, `attention_mask` and `labels` (the
    ids, -100 on a masked prefix of every third row, and on every token of row `FULLY_MASKED_ROW`)."""
    import datasets

    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    for i, text in enumerate(sentences(n, seed)):
        ids = tokenizer(text)["input_ids"]
        labels = list(ids)
        if i % 3 == 0:
            labels[:2] = [-100, -100]  # a prompt: not a target
        if i == FULLY_MASKED_ROW:
            labels = [-100] * len(ids)
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * len(ids))
        rows["labels"].append(labels)
    return datasets.Dataset.from_dict(rows)


def pad_collator(tokenizer):
    """Pads `input_ids`/`attention_mask` (right) and `labels` (with -100) to the longest row of the batch."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)


def per_sequence_model_losses(model, dataset) -> list[float]:
    """The model's own loss for every row run alone (batch size 1, no padding): `outputs.loss`, NaN without targets."""
    import torch

    model.eval()
    losses = []
    with torch.no_grad():
        for row in dataset:
            labels = torch.tensor([row["labels"]])
            if (labels[:, 1:] == -100).all():
                losses.append(float("nan"))
                continue
            out = model(input_ids=torch.tensor([row["input_ids"]]), labels=labels)
            losses.append(float(out.loss))
    return losses


def main(out_dir: str) -> None:
    import torch.distributed as dist

    from hf_prune import PruningArguments, PruningTrainer

    out = Path(out_dir)
    tokenizer = word_tokenizer()
    train = lm_dataset(LM_ROWS, tokenizer)
    args = PruningArguments(
        output_dir=str(out / "run"), num_train_epochs=2, per_device_train_batch_size=4, gradient_accumulation_steps=2,
        learning_rate=0.0, report_to=[], save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True,
        record_signals=["p_target", "loss", "correct", "num_tokens"], logging_strategy="no",
    )  # fmt: skip
    trainer = PruningTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=train,
                             data_collator=pad_collator(tokenizer))  # fmt: skip
    trainer.train()
    if trainer.accelerator.is_main_process:
        (out / "result.json").write_text(json.dumps({"world_size": trainer.accelerator.num_processes}))
    trainer.accelerator.wait_for_everyone()
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
