"""The per-token pass of a re-weighted sequence step (InfoBatch on token logits): computed once for the weighted loss
and the record (`DynamicPruningTrainer` now) vs twice (the record's own no-grad pass, then the loss's), in one run.

    python bench/bench_weighted_token_pass.py                       # [8, 128] tokens, 8,192-word vocabulary, CPU
    python bench/bench_weighted_token_pass.py --batch 16 --tokens 256 --vocab 32000 --repeats 9

Each variant starts from fresh `[batch, tokens, vocab]` logits that require grad and ends with the backward of the
weighted loss; `base` (new logits, a backward of zero) is subtracted so the numbers are the loss-and-record work.
Variants alternate within each repeat so a shared machine's noise hits them alike; medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hf_prune.sequence import TokenLosses, sequence_signals


SIGNALS = ["loss", "correct"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    labels = torch.randint(0, args.vocab, (args.batch, args.tokens))
    labels[:, : args.tokens // 10] = -100  # a masked prompt
    weights = torch.rand(args.batch)
    shape = (args.batch, args.tokens, args.vocab)

    def twice():
        logits = torch.randn(*shape, requires_grad=True)
        recorded = TokenLosses.from_logits(logits, labels, "next_token", with_correct=True)
        sequence_signals(recorded, SIGNALS)
        tokens = TokenLosses.from_logits(logits, labels, "next_token", with_correct=False, keep_grad=True)
        (tokens.loss.sum(1) * weights).sum().backward()

    def once():
        logits = torch.randn(*shape, requires_grad=True)
        tokens = TokenLosses.from_logits(logits, labels, "next_token", with_correct=True, keep_grad=True)
        sequence_signals(tokens, SIGNALS)
        (tokens.loss.sum(1) * weights).sum().backward()

    def base():
        logits = torch.randn(*shape, requires_grad=True)
        (logits.sum() * 0).backward()

    variants = {"twice (before)": twice, "once (now)": once, "base": base}
    for f in variants.values():
        f()  # warm-up
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, f in variants.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    base_ms = 1000 * statistics.median(times["base"])
    print(f"logits {list(shape)}, {args.threads} threads, median of {args.repeats}:")
    work = {}
    for name in ("twice (before)", "once (now)"):
        work[name] = 1000 * statistics.median(times[name]) - base_ms
        print(f"  {name:15s} {work[name]:7.1f} ms of loss-and-record work per step")
    saved = work["twice (before)"] - work["once (now)"]
    print(f"  saved {saved:.1f} ms per step ({100 * saved / work['twice (before)']:.0f} %)")


if __name__ == "__main__":
    main()
