"""Per-sequence signals from token logits: what `PruningTrainer` records for a causal LM (or any model whose loss is a
mean over target tokens), one row per sequence.

A sequence's *target tokens* are the positions whose label is not the ignore index (-100): padding, and the prompt of
a completion-only loss (trl's `completion_only_loss` / `assistant_only_loss`), are not targets. How logits and labels
line up is the model's own rule (`label_alignment`):

```
"next_token" (causal LM; transformers' ForCausalLM loss):  logits[:, t] is scored against labels[:, t + 1]
"same_token" (token classification, masked LM, seq2seq):    logits[:, t] is scored against labels[:, t]
```

From one per-token cross-entropy over the logits (a float32 `log_softmax` read straight from the model's logits, bf16
ones included, and the target's entry; labels shifted as the model's loss shifts them: the labels are moved, never
the logits, so nothing of shape `[batch, tokens, vocab]` is copied) and one `amax` on the same logits, each sequence
gets:

* `loss`: the mean token loss, `sum_t CE_t / num_tokens` over its target tokens: exactly the loss the model computes
  for that sequence alone (`model(**one_sequence).loss`);
* `p_target`: `exp(-loss)`, the geometric mean of the target tokens' probabilities: the sequence analogue of a
  classifier's `p_target` (the probability of the true label), and the same quantity Dyn-Unc reads;
* `correct`: the token accuracy, the fraction of target tokens the argmax predicts (the target's logit is the
  largest; an exact tie, which float logits all but never make, counts as predicted). A classifier's `correct` is the
  same fraction over its one target (0 or 1), so what reads it carries over: the data map's `correctness` is the
  mean token accuracy over epochs, and `forgetting` (which counts a sample as right when `correct > 0.5`) counts a
  forgetting event when a sequence's token accuracy falls from above one half to one half or below;
* `entropy`: the mean over target positions of the predictive distribution's entropy (nats);
* `num_tokens`: the number of target tokens.

`margin`, `logit_margin` and `el2n` compare the true class with the other classes of one prediction; over a
vocabulary of many thousands of tokens, averaged over positions, they have no established meaning for a sequence, so
they are refused (`check_sequence_signals`) rather than guessed.

A sequence with no target token (every label -100) gives NaN in every signal: not seen in that step. A sequence
whose target-token losses are not all finite (NaN or infinite logits) gives `+inf` in every signal: a sequence has
no class label, and an infinite value is what `ScoreRecord`'s writer records as *seen with non-finite values* (NaN
and its `nonfinite` bit) whatever the label; `Recorder.gather` hands the policies NaN for it, as for a classifier.

Memory: the logits are read in chunks of at most `chunk_elements` logits (rows of the flattened `[batch * tokens,
vocab]` view), so the extra memory is a chunk's float32 log-softmax (64 MiB by default, a few at once), never a second
`[batch, tokens, vocab]` tensor. Everything stays on the device: no host synchronisation.
trl's fused LM head computes per-token log-probabilities, entropy and top-1 hits without building logits at all;
`TokenLosses.from_log_probs` takes those as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F


IGNORE_INDEX = -100
LABEL_ALIGNMENTS = ("next_token", "same_token")
SEQUENCE_SIGNALS = ("p_target", "loss", "correct", "entropy", "num_tokens")
# At most this many logits per chunk (64 MiB of float32): bounds the float32 log-softmax of a chunk. (On an H200,
# GPT-2's 50k vocabulary, 4096 tokens: 2.2 ms per step at 2**24, 1.9 ms at 2**26 for four times the memory.)
DEFAULT_CHUNK_ELEMENTS = 2**24

# transformers' loss types (`PreTrainedModel.loss_type`) whose logits are `[batch, tokens, vocab]`, by alignment.
_NEXT_TOKEN_LOSS_TYPES = ("ForCausalLM", "ForConditionalGeneration")
_SAME_TOKEN_LOSS_TYPES = ("ForTokenClassification", "ForMaskedLM")


def check_sequence_signals(signals: Sequence[str]) -> list[str]:
    """Returns `signals` if each has a per-sequence meaning (`SEQUENCE_SIGNALS`); raises a `ValueError` naming the
    others and the supported ones otherwise."""
    signals = list(signals)
    refused = [s for s in signals if s not in SEQUENCE_SIGNALS]
    if refused:
        raise ValueError(
            f"Signal(s) {refused} are defined for one class prediction per sample and have no per-sequence meaning; "
            f"a model with token-level labels (a causal LM) records {list(SEQUENCE_SIGNALS)}. Set "
            f"`record_signals` to some of those, e.g. record_signals={['p_target', 'loss', 'correct', 'num_tokens']}."
        )
    return signals


def check_label_alignment(alignment: str | None) -> str | None:
    """Returns `alignment` if it is `None` or one of `LABEL_ALIGNMENTS`."""
    if alignment is not None and alignment not in LABEL_ALIGNMENTS:
        raise ValueError(
            f"label_alignment must be one of {list(LABEL_ALIGNMENTS)} (or None to infer it from the model); got "
            f"{alignment!r}. 'next_token': logits[:, t] predict labels[:, t + 1] (a causal LM); 'same_token': "
            "logits[:, t] predict labels[:, t] (token classification, masked LM, encoder-decoder)."
        )
    return alignment


def require_label_alignment(alignment: str | None, logits: torch.Tensor) -> str:
    """Returns `alignment` for token `logits`; raises a `ValueError` naming the fix when it is unknown (`None`)."""
    if alignment is None:
        raise ValueError(
            f"Got token logits of shape {tuple(logits.shape)} from a model whose label alignment is unknown: is "
            "logits[:, t] scored against labels[:, t + 1] (a causal LM) or labels[:, t]? Pass "
            "`label_alignment='next_token'` or `'same_token'` to PruningTrainer (a transformers model says it itself, "
            "through its `loss_type`)."
        )
    return check_label_alignment(alignment)


def label_alignment_of(model) -> str | None:
    """How a transformers model's token logits line up with its labels, as its own loss aligns them: `"next_token"`
    (a causal LM), `"same_token"` (token classification, masked LM, encoder-decoder models), or `None` (one prediction
    per sample, or a model that does not say: a plain `nn.Module`).

    A causal LM is a model class of the auto causal-LM mapping (the rule `Trainer` itself shifts labels by, e.g.
    `GPT2LMHeadModel`), or one whose `loss_type` (what `PreTrainedModel.loss_function` dispatches on) is
    `ForCausalLM`, or a decoder-only `ForConditionalGeneration`; an encoder-decoder model (`config.is_encoder_decoder`)
    scores its decoder logits against unshifted labels. A PEFT model is read through its base model.
    """
    if hasattr(model, "get_base_model"):  # peft
        model = model.get_base_model()
    config = getattr(model, "config", None)
    loss_type = getattr(model, "loss_type", None)
    causal_class = type(model).__name__ in _causal_lm_class_names()
    if getattr(config, "is_encoder_decoder", False):
        token_level = causal_class or loss_type in (*_NEXT_TOKEN_LOSS_TYPES, *_SAME_TOKEN_LOSS_TYPES)
        return "same_token" if token_level else None
    if causal_class or loss_type in _NEXT_TOKEN_LOSS_TYPES:
        return "next_token"
    if loss_type in _SAME_TOKEN_LOSS_TYPES:
        return "same_token"
    return None


def _causal_lm_class_names() -> set[str]:
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:  # pragma: no cover - transformers is a dependency
        return set()
    names = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update([value] if isinstance(value, str) else value)
    return names


def target_labels(labels: torch.Tensor, alignment: str) -> torch.Tensor:
    """The label each logit position is scored against, `[batch, tokens]`: `labels` itself (`"same_token"`), or
    shifted left by one with the ignore index in the last position (`"next_token"`, as transformers' causal-LM loss
    pads and shifts). Moving the labels keeps the logits untouched (no copy)."""
    check_label_alignment(alignment)
    labels = labels.detach().long()
    if labels.dim() != 2:
        raise ValueError(f"Expected token labels of shape [batch, tokens]; got {tuple(labels.shape)}.")
    if alignment == "same_token":
        return labels
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


class TokenLosses(NamedTuple):
    """Per-token statistics of a batch of sequences, `[batch, tokens]` each, zero where `target` is False.

    Attributes:
        loss (`torch.Tensor`): per-token cross-entropy (may carry gradient, see `from_logits(keep_grad=True)`).
        target (`torch.Tensor` of bool): the target tokens (label not -100, after alignment).
        correct (`torch.Tensor` of bool, *optional*): the argmax predicts the target token.
        entropy (`torch.Tensor`, *optional*): entropy of the predictive distribution.
    """

    loss: torch.Tensor
    target: torch.Tensor
    correct: torch.Tensor | None = None
    entropy: torch.Tensor | None = None

    @classmethod
    def from_logits(
        cls,
        logits: torch.Tensor,
        labels: torch.Tensor,
        alignment: str,
        *,
        with_correct: bool = True,
        with_entropy: bool = False,
        keep_grad: bool = False,
        label_smoothing: float = 0.0,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    ) -> TokenLosses:
        """Per-token losses from `logits [batch, tokens, vocab]` and `labels [batch, tokens]` (-100 ignored).

        Args:
            logits (`torch.Tensor`): the model's token logits, any float dtype (computed in float32, chunk by chunk).
            labels (`torch.Tensor`): the batch's labels, aligned with the input ids as the collator made them.
            alignment (`str`): `"next_token"` or `"same_token"` (see `label_alignment_of`).
            with_correct (`bool`, *optional*, defaults to `True`): compute `correct` (one max over the logits).
            with_entropy (`bool`, *optional*, defaults to `False`): compute `entropy` (a log-softmax per chunk).
            keep_grad (`bool`, *optional*, defaults to `False`): keep the autograd graph of `loss` (a weighted
                training loss); otherwise everything runs under `no_grad`.
            label_smoothing (`float`, *optional*, defaults to 0.0): as in `F.cross_entropy` (a training loss).
            chunk_elements (`int`, *optional*): at most this many logits per chunk.
        """
        if logits.dim() != 3:
            raise ValueError(f"Expected token logits of shape [batch, tokens, vocab]; got {tuple(logits.shape)}.")
        targets = target_labels(labels.to(logits.device), alignment)
        if targets.shape != logits.shape[:2]:
            raise ValueError(
                f"Got labels of shape {tuple(labels.shape)} for token logits of shape {tuple(logits.shape)}: "
                "PruningTrainer records token-level labels aligned with the input ids (-100 where ignored)."
            )
        batch, tokens, vocab = logits.shape
        flat = logits.reshape(batch * tokens, vocab)  # a view of the model's contiguous logits
        flat_targets = targets.reshape(-1)
        rows = max(1, int(chunk_elements) // max(vocab, 1))
        loss, correct, entropy = [], [], []
        with torch.set_grad_enabled(keep_grad and torch.is_grad_enabled()):
            for start in range(0, flat.shape[0], rows):
                chunk = flat[start : start + rows]  # the model's dtype: no copy
                y = flat_targets[start : start + rows]
                # float32 log-probabilities straight from bf16/fp16 logits (one fused kernel, no float32 copy)
                log_p = F.log_softmax(chunk, dim=-1, dtype=torch.float32)
                nll = F.nll_loss(log_p, y, reduction="none", ignore_index=IGNORE_INDEX)
                if label_smoothing:  # as F.cross_entropy: (1 - e) * nll + e * mean over classes of -log p
                    nll = (1.0 - label_smoothing) * nll - label_smoothing * log_p.mean(dim=-1) * (y != IGNORE_INDEX)
                loss.append(nll)
                if with_entropy:
                    with torch.no_grad():
                        p = log_p.exp()
                        # 0 log 0 = 0: a masked token (logit -inf) adds nothing
                        entropy.append(-torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(dim=-1))
                if with_correct:
                    with torch.no_grad():  # the target's logit is the largest (ties count): amax, not a slow argmax
                        target_logit = chunk.gather(1, y.clamp(min=0).unsqueeze(1)).squeeze(1)
                        correct.append(target_logit >= chunk.amax(dim=-1))
        target = targets != IGNORE_INDEX

        def joined(parts):
            whole = parts[0] if len(parts) == 1 else torch.cat(parts)
            return whole.view(batch, tokens)

        zero = torch.zeros((), device=logits.device)
        return cls(
            loss=torch.where(target, joined(loss), zero),
            target=target,
            correct=(joined(correct) & target) if with_correct else None,
            entropy=torch.where(target, joined(entropy), zero) if with_entropy else None,
        )

    @classmethod
    def from_log_probs(cls, log_probs: torch.Tensor, target: torch.Tensor, is_top1: torch.Tensor | None = None,
                       entropy: torch.Tensor | None = None) -> TokenLosses:  # fmt: skip
        """Per-token statistics a fused LM head already computed (trl's `FusedCausalLMOutput`: `log_probs`,
        `label_mask`, `is_top1`, `entropy`, `[batch, tokens - 1]`, already aligned), without any logits."""
        target = target.bool()
        zero = torch.zeros((), device=log_probs.device)
        return cls(
            loss=torch.where(target, -log_probs, zero),
            target=target,
            correct=None if is_top1 is None else (is_top1.bool() & target),
            entropy=None if entropy is None else torch.where(target, entropy, zero),
        )


def fused_token_losses(outputs) -> TokenLosses | None:
    """`TokenLosses` of a model output that carries per-token `log_probs` and `label_mask` instead of logits (trl's
    fused LM head, `FusedCausalLMOutput`); `None` for any other output."""
    get = outputs.get if hasattr(outputs, "get") else (lambda name: getattr(outputs, name, None))
    log_probs, mask = get("log_probs"), get("label_mask")
    if not isinstance(log_probs, torch.Tensor) or not isinstance(mask, torch.Tensor):
        return None
    return TokenLosses.from_log_probs(log_probs, mask, get("is_top1"), get("entropy"))


@torch.no_grad()
def sequence_signals(tokens: TokenLosses, signals: Sequence[str]) -> torch.Tensor:
    """Per-sequence signals `[batch, len(signals)]` (float32) from per-token statistics (see the module docstring:
    NaN for a sequence without target tokens, `+inf` for one whose target-token losses are not all finite).

    Args:
        tokens (`TokenLosses`): from `TokenLosses.from_logits` (with `with_entropy=True` for `entropy`) or
            `TokenLosses.from_log_probs`.
        signals (`Sequence[str]`): names among `SEQUENCE_SIGNALS`.
    """
    check_sequence_signals(signals)
    target = tokens.target
    num_tokens = target.sum(dim=1).float()
    loss_sum = tokens.loss.detach().float().sum(dim=1)
    mean_loss = loss_sum / num_tokens  # 0 / 0 = NaN: no target token
    columns = []
    for name in signals:
        if name == "loss":
            columns.append(mean_loss)
        elif name == "p_target":
            columns.append(torch.exp(-mean_loss))
        elif name == "num_tokens":
            columns.append(num_tokens)
        elif name == "correct":
            if tokens.correct is None:
                raise ValueError("`correct` needs per-token top-1 hits; these token statistics have none.")
            columns.append(tokens.correct.sum(dim=1).float() / num_tokens)
        elif name == "entropy":
            if tokens.entropy is None:
                raise ValueError("`entropy` needs per-token entropies; these token statistics have none.")
            columns.append(tokens.entropy.detach().float().sum(dim=1) / num_tokens)
    values = torch.stack(columns, dim=1)
    seen = (num_tokens > 0).unsqueeze(1)
    finite = torch.isfinite(loss_sum).unsqueeze(1)
    values = torch.where(finite, values, torch.full_like(values, float("inf")))
    return torch.where(seen, values, torch.full_like(values, float("nan")))
