"""Prune a supervised fine-tuning dataset with trl's `SFTTrainer`: fine-tune once while recording each sequence's loss
over its completion tokens (`PruningSFTTrainer`), select with a strategy (S2L by default: k-means over the loss
trajectories, Yang et al. 2024), write the kept-index list with its card, and optionally fine-tune a fresh model on the
kept rows to compare held-out loss with full data. Shaped like trl's `trl/scripts/sft.py` (`TrlParser` over
`ScriptArguments`, an `SFTConfig` and `ModelConfig`), with hf_prune's recording arguments in the config.

Offline default: Debian's `fortunes` (`hf_prune.text_data`) as prompt / completion pairs (prompt: the category,
completion: the quote, so the loss is the quote's only) and a tiny GPT-2 built from config with a word-level
tokenizer trained on the data (no download):

```bash
python recipes/sft_prune.py --output_dir runs/sft_prune --retrain          # about 6 min on a 2-core CPU, quiet
python recipes/sft_prune.py --max_train_samples 512 --num_train_epochs 2 --output_dir runs/sft_smoke
accelerate launch recipes/sft_prune.py --model_name_or_path Qwen/Qwen2-0.5B --dataset_name trl-lib/Capybara \
    --prune_strategy s2l --prune_ratio 0.5 --num_train_epochs 3 --learning_rate 2e-5 --bf16 \
    --output_dir runs/sft_prune_qwen --retrain
```

Outputs under `--output_dir`: the record (`scores/`), the model, `<strategy>_<pct>/` (a Hub-ready index-list folder;
its content key is a hash of each row's text, so a consumer's copy is checked row by row) and `summary.json`.
Packing is refused (several samples in one row have no per-sample loss): keep `--packing False`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path


logger = logging.getLogger("hf_prune.recipes.sft_prune")


@dataclass
class PruneScriptArguments:
    """The data, the selection and the comparison (trl's `ScriptArguments` names where they exist)."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub id or local folder of an SFT dataset (prompt/completion, messages or text); default: "
                  "the embedded fortunes as prompt (category) / completion (quote)."},
    )  # fmt: skip
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to fine-tune on and prune."})
    dataset_test_split: str = field(default="test", metadata={"help": "Held-out split for the comparison."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Fine-tune on the first N rows only."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on the first N held-out rows only."})
    prune_strategy: str = field(default="s2l", metadata={"help": "Strategy that selects from the record (hf-prune strategies)."})
    prune_ratio: float = field(default=0.5, metadata={"help": "Fraction of the rows REMOVED (0.5 keeps half)."})
    retrain: bool = field(
        default=False, metadata={"help": "Fine-tune a fresh model on the kept rows and compare held-out loss."}
    )


def fortunes_sft(max_train_samples: int | None):
    """The fortunes as prompt / completion pairs: the prompt names the category, the completion is the quote."""
    from hf_prune.text_data import load_fortunes

    data = load_fortunes()
    names = data["train"].features["label"].names

    def to_pairs(batch):
        return {"prompt": [f"a quote from {names[label]} :" for label in batch["label"]],
                "completion": [" " + text for text in batch["text"]]}  # fmt: skip

    data = data.map(to_pairs, batched=True, remove_columns=["text", "label"])
    if max_train_samples is not None:
        data["train"] = data["train"].select(range(min(max_train_samples, len(data["train"]))))
    return data


def build_model(model_args, data, seed: int):
    """`(model, tokenizer)`: the checkpoint named, or a tiny GPT-2 from config with a tokenizer trained on the data."""
    if model_args.model_name_or_path:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)
        model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)
        return model, tok
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from hf_prune.text_data import train_word_tokenizer

    train = data["train"]
    tok = train_word_tokenizer([p + c for p, c in zip(train["prompt"], train["completion"])], vocab_size=8000,
                               model_max_length=128)  # fmt: skip
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=128, n_layer=2, n_head=2,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    return GPT2LMHeadModel(config), tok


def main() -> None:
    from trl import ModelConfig, SFTTrainer, TrlParser

    from hf_prune import get_strategy
    from hf_prune.sft import PruningSFTConfig, PruningSFTTrainer

    parser = TrlParser((PruneScriptArguments, PruningSFTConfig, ModelConfig))
    script, args, model_args = parser.parse_args_and_config()

    if not 0 < script.prune_ratio < 1:
        raise ValueError(f"--prune_ratio is the fraction REMOVED, in (0, 1); got {script.prune_ratio}.")
    if args.packing:
        raise ValueError("--packing puts several samples in one row, which has no per-sample loss: drop --packing.")
    get_strategy(script.prune_strategy)  # an unknown name fails here, before any data or model is loaded
    if script.dataset_name is None:
        data = fortunes_sft(script.max_train_samples)
    else:
        from datasets import load_dataset

        data = load_dataset(script.dataset_name, script.dataset_config)
        if script.max_train_samples is not None:
            split = data[script.dataset_train_split]
            data[script.dataset_train_split] = split.select(range(min(script.max_train_samples, len(split))))
    train = data[script.dataset_train_split]
    test = data[script.dataset_test_split] if script.dataset_test_split in data else None
    if test is not None and script.max_eval_samples is not None:
        test = test.select(range(min(script.max_eval_samples, len(test))))
    model, tok = build_model(model_args, data, args.seed)
    if not model_args.model_name_or_path and (args.max_length is None or args.max_length > tok.model_max_length):
        args.max_length = tok.model_max_length  # the tiny GPT-2's positions: longer quotes are truncated
    trainer = PruningSFTTrainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                                processing_class=tok)  # fmt: skip
    trainer.train()
    trainer.save_model(args.output_dir)
    summary = {"dataset": script.dataset_name or "fortunes (embedded)", "train_rows": len(train), "runs": []}
    if test is not None:
        loss = trainer.evaluate()["eval_loss"]
        summary["runs"].append({"data": "full", "rows": len(train), "eval_loss": loss, "perplexity": math.exp(loss)})
    strategy = get_strategy(script.prune_strategy)
    result = strategy.select(trainer.score_record, prune_ratio=script.prune_ratio)
    folder = Path(args.output_dir) / f"{script.prune_strategy}_{round(script.prune_ratio * 100)}"
    if trainer.is_world_process_zero():
        source = (script.dataset_name or "local/fortunes-sft", script.dataset_train_split)
        result.save(folder, source=source, source_dataset=train, content_key="auto")
        logger.info(f"{script.prune_strategy}: {result.num_kept:,} of {len(train):,} rows kept -> {folder}")
    if script.retrain and test is not None:
        fresh, _ = build_model(model_args, data, args.seed)
        kept = result.apply(train)
        retrain_args = copy.copy(args)  # the same settings, its own folder
        retrain_args.output_dir = str(folder / "retrained")
        retrained = SFTTrainer(model=fresh, args=retrain_args, train_dataset=kept, eval_dataset=test,
                               processing_class=tok)  # fmt: skip
        retrained.train()
        loss = retrained.evaluate()["eval_loss"]
        summary["runs"].append({"data": f"{script.prune_strategy} {script.prune_ratio:.0%} removed",
                                "rows": len(kept), "eval_loss": loss, "perplexity": math.exp(loss)})  # fmt: skip
    if trainer.is_world_process_zero():
        with open(Path(args.output_dir) / "summary.json", "w") as f:
            json.dump(summary, f, indent=2)
        print("\n| data | rows | held-out loss | perplexity |\n|---|---|---|---|")
        for row in summary["runs"]:
            print(f"| {row['data']} | {row['rows']:,} | {row['eval_loss']:.3f} | {row['perplexity']:.1f} |")
        if not script.retrain:
            print(f"Only the full fine-tune ran; the kept list is in {folder}. Add --retrain to fine-tune on it.")


if __name__ == "__main__":
    from hf_prune.console import run_recipe

    run_recipe(main)
