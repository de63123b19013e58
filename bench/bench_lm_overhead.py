"""Recording overhead for a causal LM: `PruningTrainer` vs plain `Trainer`, same GPT-2 (from config), data, seed and
arguments, in one run.

    python bench/bench_lm_overhead.py                                  # two small GPT-2s on fortunes, CPU
    python bench/bench_lm_overhead.py --models gpt2_tiny --samples 2048 --repeats 7 --signals p_target loss correct

The text is the Debian `fortunes` collection (`/usr/share/games/fortunes/`, `apt-get install fortunes`; a seeded
synthetic corpus if it is absent), tokenized by a byte-level BPE trained on it (`--vocab` tokens), rows of up to
`--max-length` tokens padded per batch (`DataCollatorForLanguageModeling`, -100 on padding). Runs alternate (Trainer,
PruningTrainer, Trainer, ...) so that the noise of a shared machine hits both alike; the reported numbers are the
medians over repeats of the training time per optimizer step, everything included (the per-step per-sequence
recording: one cross-entropy and one argmax over the step's logits; the per-epoch gather and write), as wall time and
as this process's CPU time (`time.process_time`, one torch thread, no loader workers: the work done, which other
processes on a shared machine slow down far less than the wall time). Goal: <= 3 % on CPU.
Beside it, the per-step recording alone (`Recorder.add` on one batch's logits) against a forward + backward of the
same batch, alternated many times in one process, best of the repeats for each (on a shared machine the fastest run
is the one nothing preempted): the cost the step pays when it runs undisturbed.
Writes bench/results/lm_overhead.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from hf_prune import PruningArguments, PruningTrainer


RESULTS = Path(__file__).resolve().parent / "results"
FORTUNES = Path("/usr/share/games/fortunes")
MODELS = {  # name: (n_embd, n_layer, n_head)
    "gpt2_tiny": (64, 2, 2),
    "gpt2_small": (128, 4, 4),
}


def fortunes(limit: int) -> tuple[list[str], str]:
    """Up to `limit` fortunes (entries between `%` lines), and where they came from."""
    texts = []
    if FORTUNES.is_dir():
        for path in sorted(FORTUNES.iterdir()):
            if path.suffix or path.is_dir():  # .dat / .u8 are indexes
                continue
            entries = path.read_text(errors="ignore").split("\n%\n")
            texts.extend(" ".join(e.split()) for e in entries if e.strip())
    if texts:
        return texts[:limit], f"fortunes ({FORTUNES})"
    rng = random.Random(0)
    words = "the a cat dog runs sees big small red old new over under near quick slow happy sad".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 40))) for _ in range(limit)], "synthetic"


def build_tokenizer(texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<pad>", "<unk>", "<eos>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")


def build_model(name: str, tokenizer, max_length: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    n_embd, n_layer, n_head = MODELS[name]
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=max_length, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return GPT2LMHeadModel(config)


def run_once(trainer_cls, model_name: str, train, tokenizer, args, workdir: str, signals) -> tuple[float, float]:
    """`(wall seconds, CPU seconds)` per optimizer step of one training run."""
    from transformers import DataCollatorForLanguageModeling

    common = dict(
        output_dir=workdir, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch, learning_rate=1e-3,
        report_to=[], save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True, logging_strategy="no",
        dataloader_pin_memory=False,
    )  # fmt: skip
    train_args = PruningArguments(**common, record_signals=signals) if trainer_cls is PruningTrainer else (
        TrainingArguments(**common)
    )
    model = build_model(model_name, tokenizer, args.max_length)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    trainer = trainer_cls(model=model, args=train_args, train_dataset=train, data_collator=collator)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    steps = trainer.state.global_step
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def isolated_recording_cost(model_name: str, train, tokenizer, args, signals, reps: int = 40) -> tuple[float, float]:
    """Best-of-`reps` seconds of (a forward + backward, `Recorder.add` of its logits) on one batch, alternated."""
    from transformers import DataCollatorForLanguageModeling

    from hf_prune.recording import Recorder

    model = build_model(model_name, tokenizer, args.max_length).train()
    batch = DataCollatorForLanguageModeling(tokenizer, mlm=False)([train[i] for i in range(args.batch)])
    recorder = Recorder(signals)
    ids = torch.arange(args.batch)
    step, record = [], []
    for _ in range(reps):
        start = time.perf_counter()
        out = model(**batch)
        out.loss.backward()
        step.append(time.perf_counter() - start)
        start = time.perf_counter()
        recorder.add(ids, out.logits, batch["labels"], "next_token")
        record.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
        recorder.reset()
    return min(step), min(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--signals", nargs="+", default=["p_target", "loss", "correct"])
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    import datasets

    texts, source = fortunes(args.samples)
    tokenizer = build_tokenizer(texts, args.vocab)
    train = datasets.Dataset.from_dict({"text": texts}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=args.max_length), batched=True,
        remove_columns=["text"],
    )  # fmt: skip
    tokens = sum(len(ids) for ids in train["input_ids"])
    load_before = os.getloadavg()[0]
    rows = []
    for model_name in args.models:
        times = {Trainer: [], PruningTrainer: []}
        with tempfile.TemporaryDirectory() as tmp:
            warm = argparse.Namespace(**{**vars(args), "epochs": 1})
            run_once(Trainer, model_name, train, tokenizer, warm, tmp, args.signals)  # allocator, kernels, caches
            for _ in range(args.repeats):
                for cls in (Trainer, PruningTrainer):
                    # a fresh output folder per run: PruningTrainer refuses to start over an existing record
                    run_dir = tempfile.mkdtemp(dir=tmp)
                    times[cls].append(run_once(cls, model_name, train, tokenizer, args, run_dir, args.signals))
        wall = {cls: [w for w, _ in runs] for cls, runs in times.items()}
        cpu = {cls: [c for _, c in runs] for cls, runs in times.items()}
        step, record = isolated_recording_cost(model_name, train, tokenizer, args, args.signals)
        rows.append((model_name, wall, cpu, step, record))
        for what, runs in (("wall", wall), ("CPU", cpu)):
            plain, ours = statistics.median(runs[Trainer]), statistics.median(runs[PruningTrainer])
            print(f"{model_name} ({what}): Trainer {plain * 1e3:.1f} ms/step, PruningTrainer {ours * 1e3:.1f} "
                  f"ms/step, overhead {100 * (ours / plain - 1):+.1f}%")  # fmt: skip
        print(f"{model_name}: isolated: forward+backward {step * 1e3:.2f} ms, Recorder.add {record * 1e3:.3f} ms "
              f"({100 * record / step:.2f} %)")  # fmt: skip
    lines = [
        f"{source}: {len(train)} rows ({tokens} tokens, up to {args.max_length} per row), byte-level BPE of "
        f"{len(tokenizer)} tokens, batch {args.batch}, {args.epochs} epochs, {args.repeats} alternating repeats, CPU, "
        f"torch threads {torch.get_num_threads()} (`python bench/bench_lm_overhead.py`). Signals: "
        f"{', '.join(args.signals)}. Load average (1 min) at start / end: {load_before:.1f} / "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
        "",
        "| model | time | Trainer (ms/step, median) | PruningTrainer (ms/step, median) | overhead | all runs: "
        "Trainer / PruningTrainer (ms/step) |",
        "|---|---|---|---|---|---|",
    ]
    isolated = ["", "Per-step recording alone (best of 40, alternated with a forward + backward of the same "
                "batch):", ""]
    for model_name, wall, cpu, step, record in rows:
        n_embd, n_layer, _ = MODELS[model_name]
        for what, runs in (("wall", wall), ("CPU", cpu)):
            plain, ours = statistics.median(runs[Trainer]), statistics.median(runs[PruningTrainer])
            every = " / ".join(", ".join(f"{t * 1e3:.1f}" for t in runs[c]) for c in (Trainer, PruningTrainer))
            lines.append(
                f"| {model_name} (n_embd {n_embd}, {n_layer} layers) | {what} | {plain * 1e3:.1f} | "
                f"{ours * 1e3:.1f} | {100 * (ours / plain - 1):+.1f} % | {every} |"
            )
        isolated.append(f"- {model_name}: `Recorder.add` {record * 1e3:.2f} ms, forward + backward "
                        f"{step * 1e3:.1f} ms ({100 * record / step:.1f} %)")  # fmt: skip
    lines.extend(isolated)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lm_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
