"""Per-sequence signals of language models (`hf_prune.sequence`): equal to the model's own per-sequence loss, with
padding and the ignore index; through `PruningTrainer` and `DynamicPruningTrainer` (InfoBatch's weights per
sequence), on one process and under a real 2-process `torchrun`; no host synchronisation on the step."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from hf_prune import DynamicPruningArguments, DynamicPruningTrainer, PruningArguments, PruningTrainer, ScoreRecord
from hf_prune.dynamic.loss import weighted_cross_entropy
from hf_prune.recording import Recorder
from hf_prune.sequence import TokenLosses, label_alignment_of, sequence_signals
from tests.conftest import run_torchrun
from tests.dist_lm_worker import (
    FULLY_MASKED_ROW,
    LM_ROWS,
    lm_dataset,
    pad_collator,
    per_sequence_model_losses,
    tiny_lm,
    word_tokenizer,
)
from tests.host_sync import count_host_syncs


SIGNALS = ["p_target", "loss", "correct", "entropy", "num_tokens"]


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


def padded_batch(tokenizer, dataset):
    batch = pad_collator(tokenizer)([dataset[i] for i in range(len(dataset))])
    assert (batch["labels"] == -100).any() and (batch["attention_mask"] == 0).any()  # padding and masked prompts
    return batch


def lm_kwargs(tmp_path, **kw):
    defaults = dict(
        output_dir=str(tmp_path / "run"), num_train_epochs=2, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to=[], save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True, logging_strategy="no",
    )  # fmt: skip
    return {**defaults, **kw}


def lm_args(tmp_path, **kw):
    kwargs = lm_kwargs(tmp_path, **kw)
    return (DynamicPruningArguments if "dynamic_policy" in kwargs else PruningArguments)(**kwargs)


# ------------------------------------------------------------------------------------------------ signals


def test_recorded_sequence_loss_equals_the_models_own_loss_of_each_sequence_alone(tokenizer):
    """A padded batch (right padding, -100 on padding, on masked prompts and on every token of one row): the
    recorded loss of each sequence is `model(one sequence).loss`; p_target, token accuracy and the target count
    follow from the same per-token values; the row without targets is NaN (not seen)."""
    ds = lm_dataset(12, tokenizer)
    model = tiny_lm(tokenizer).eval()
    batch = padded_batch(tokenizer, ds)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    recorder = Recorder(SIGNALS)
    recorder.add(torch.arange(12), logits, batch["labels"], label_alignment_of(model))
    ids, labels, values = recorder.local_rows()
    got = {name: values[:, i].numpy() for i, name in enumerate(SIGNALS)}

    expected = np.array(per_sequence_model_losses(model, ds))
    np.testing.assert_allclose(got["loss"], expected, rtol=1e-5, atol=1e-6)
    assert np.isnan(got["loss"][FULLY_MASKED_ROW]) and np.isnan(values[FULLY_MASKED_ROW].numpy()).all()
    np.testing.assert_allclose(got["p_target"], np.exp(-expected), rtol=1e-5)
    assert labels.tolist() == [-1] * 12  # a sequence has no class
    for i in range(12):  # token accuracy, target count and entropy from an explicit loop over the shifted tokens
        row = ds[i]
        n = len(row["input_ids"])
        targets = torch.tensor(row["labels"][1:])
        kept = targets != -100
        if not kept.any():
            continue
        pred = logits[i, : n - 1]
        assert got["num_tokens"][i] == int(kept.sum())
        hits = (pred.argmax(-1) == targets)[kept].float().mean().item()
        assert got["correct"][i] == pytest.approx(hits)
        entropy = -(pred.softmax(-1) * pred.log_softmax(-1)).sum(-1)[kept].mean().item()
        assert got["entropy"][i] == pytest.approx(entropy, rel=1e-5)


def test_chunked_and_low_precision_logits_give_the_same_signals(tokenizer):
    ds = lm_dataset(9, tokenizer)
    batch = padded_batch(tokenizer, ds)
    torch.manual_seed(0)
    logits = torch.randn(*batch["input_ids"].shape, len(tokenizer)) * 3
    labels = batch["labels"]
    whole = sequence_signals(TokenLosses.from_logits(logits, labels, "next_token", with_entropy=True), SIGNALS)
    vocab = logits.shape[-1]
    for chunk in (vocab, 3 * vocab + 1, 7 * vocab):  # one row per chunk, chunks across sequences, a ragged last one
        tokens = TokenLosses.from_logits(logits, labels, "next_token", with_entropy=True, chunk_elements=chunk)
        torch.testing.assert_close(sequence_signals(tokens, SIGNALS), whole, equal_nan=True)
    half = TokenLosses.from_logits(logits.bfloat16(), labels, "next_token", with_entropy=True)
    torch.testing.assert_close(sequence_signals(half, SIGNALS), whole, rtol=0.05, atol=0.05, equal_nan=True)


def test_same_token_alignment_scores_each_logit_against_its_own_label():
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 5, 7), torch.randint(0, 7, (3, 5))
    labels[1, :2] = -100
    tokens = TokenLosses.from_logits(logits, labels, "same_token")
    expected = [F.cross_entropy(logits[i], labels[i], ignore_index=-100).item() for i in range(3)]
    np.testing.assert_allclose(sequence_signals(tokens, ["loss"])[:, 0].numpy(), expected, rtol=1e-6)
    shifted = sequence_signals(TokenLosses.from_logits(logits, labels, "next_token"), ["loss"])[:, 0].numpy()
    assert not np.allclose(shifted, expected)  # the alignment matters: the test can fail


def test_label_alignment_follows_the_models_own_loss(tokenizer):
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertForTokenClassification,
        ViTConfig,
        ViTForImageClassification,
    )

    bert = dict(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    assert label_alignment_of(tiny_lm(tokenizer)) == "next_token"  # GPT2LMHeadModel: no ForCausalLM in its name
    assert label_alignment_of(BertForTokenClassification(BertConfig(**bert, num_labels=3))) == "same_token"
    assert label_alignment_of(BertForMaskedLM(BertConfig(**bert))) == "same_token"
    vit = ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=32)  # fmt: skip
    assert label_alignment_of(ViTForImageClassification(vit)) is None
    assert label_alignment_of(torch.nn.Linear(2, 2)) is None


def test_non_finite_sequence_is_recorded_as_seen_with_non_finite_values(tmp_path):
    """A NaN logit at a target position: the record stores the sequence as seen and non-finite (its nonfinite bit),
    not as unseen; a NaN at a non-target position (padding) changes nothing; the policies' gather gets NaN."""
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 6, 11), torch.randint(0, 11, (4, 6))
    labels[2, 3:] = -100
    logits[1, 2, 4] = float("nan")  # scored against labels[1, 3]: a target
    logits[2, 5, :] = float("nan")  # position 5 predicts nothing (the last); row 2's labels past 3 are ignored too
    recorder = Recorder(["loss", "num_tokens"])
    with count_host_syncs() as syncs:
        recorder.add(torch.arange(4), logits, labels, "next_token")
    assert syncs.calls == [], syncs.report()
    ids, lab, values = recorder.local_rows()
    assert torch.isinf(values[1]).all() and torch.isfinite(values[[0, 2, 3]]).all()
    assert values[2, 1].item() == 2  # targets at labels[2, 1:3]
    record = ScoreRecord.create(tmp_path / "scores", 4, ["loss", "num_tokens"], capacity_epochs=1)
    record.write_epoch(0, ids.numpy(), {"loss": values[:, 0].numpy(), "num_tokens": values[:, 1].numpy()},
                       labels=lab.numpy())  # fmt: skip
    loaded = ScoreRecord.load(tmp_path / "scores")
    np.testing.assert_array_equal(np.flatnonzero(loaded.nonfinite(0)), [1])
    assert loaded.metadata["epoch_num_seen"] == [4] and np.isnan(loaded.signal("loss")[0, 1])
    _, _, gathered = recorder.gather()
    assert np.isnan(gathered["loss"][1]) and np.isfinite(gathered["loss"][[0, 2, 3]]).all()


# ------------------------------------------------------------------------------------------------ PruningTrainer


def test_pruning_trainer_records_every_sequence_of_a_causal_lm_every_epoch(tmp_path, tokenizer):
    """Was `ValueError: Expected logits of shape [batch, classes]`. With a learning rate of 0 the weights stay, so
    every recorded loss must be the initial model's own loss of that sequence, every epoch."""
    ds = lm_dataset(LM_ROWS, tokenizer)
    args = lm_args(tmp_path, learning_rate=0.0, gradient_accumulation_steps=2,
                   record_signals=["p_target", "loss", "correct", "num_tokens"])  # fmt: skip
    model = tiny_lm(tokenizer)
    expected = np.array(per_sequence_model_losses(model, ds))
    trainer = PruningTrainer(model=model.train(), args=args, train_dataset=ds, data_collator=pad_collator(tokenizer))
    trainer.train()
    record = trainer.score_record
    assert (record.num_samples, record.num_epochs) == (LM_ROWS, 2)
    assert record.metadata["epoch_num_seen"] == [LM_ROWS, LM_ROWS]
    for epoch in range(2):
        np.testing.assert_allclose(record.signal("loss")[epoch], expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isnan(record.signal("num_tokens")[:, FULLY_MASKED_ROW]).all()
    assert record.labels is None  # every label unknown: sequences have no class


def test_causal_lm_trains_exactly_as_with_plain_trainer(tmp_path, tokenizer):
    ds = lm_dataset(20, tokenizer)
    pruning = PruningTrainer(model=tiny_lm(tokenizer), args=lm_args(tmp_path), train_dataset=ds,
                             data_collator=pad_collator(tokenizer))  # fmt: skip
    pruning.train()
    plain_args = TrainingArguments(**lm_kwargs(tmp_path, output_dir=str(tmp_path / "plain")))
    plain = Trainer(model=tiny_lm(tokenizer), args=plain_args, train_dataset=ds, data_collator=pad_collator(tokenizer))
    plain.train()
    for a, b in zip(pruning.model.state_dict().values(), plain.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    losses = pruning.score_record.signal("loss")
    assert np.nanmean(losses[1]) < np.nanmean(losses[0])  # it learns, and the record sees it


def test_signals_without_a_per_sequence_meaning_are_refused_before_training(tmp_path, tokenizer):
    args = lm_args(tmp_path, record_signals=["loss", "margin", "el2n"])
    with pytest.raises(ValueError, match=r"\['margin', 'el2n'\].*no per-sequence meaning.*'num_tokens'"):
        PruningTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=lm_dataset(8, tokenizer),
                       data_collator=pad_collator(tokenizer))  # fmt: skip


class TokenModel(torch.nn.Module):
    """A plain module with token logits: nothing says how its labels line up."""

    def __init__(self, vocab):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 8)
        self.head = torch.nn.Linear(8, vocab)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.head(self.embed(input_ids))
        targets = F.pad(labels[:, 1:], (0, 1), value=-100)
        return {"loss": F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100), "logits": logits}


def test_a_model_that_does_not_say_needs_label_alignment(tmp_path, tokenizer):
    ds = lm_dataset(8, tokenizer)
    trainer = PruningTrainer(model=TokenModel(len(tokenizer)), args=lm_args(tmp_path, num_train_epochs=1),
                             train_dataset=ds, data_collator=pad_collator(tokenizer))  # fmt: skip
    with pytest.raises(ValueError, match="label_alignment='next_token'"):
        trainer.train()
    model = TokenModel(len(tokenizer))
    args = lm_args(tmp_path, num_train_epochs=1, learning_rate=0.0, output_dir=str(tmp_path / "given"))
    trainer = PruningTrainer(model=model, args=args, train_dataset=ds, data_collator=pad_collator(tokenizer),
                             label_alignment="next_token")  # fmt: skip
    trainer.train()
    with torch.no_grad():
        expected = [float(model(torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]]))["loss"])
                    for r in ds]  # fmt: skip
    np.testing.assert_allclose(trainer.score_record.signal("loss")[0], expected, rtol=1e-5, equal_nan=True)


INFOBATCH = {"dynamic_policy": "infobatch", "dynamic_prune_ratio": 0.5, "num_train_epochs": 3}


@pytest.mark.parametrize("extra", [{}, INFOBATCH], ids=["record", "dynamic-infobatch-weights"])
def test_no_host_synchronisation_in_the_per_step_sequence_path(tmp_path, tokenizer, extra):
    """Issue 21: as for vision (issue 10), recording a causal LM adds no host transfer to a training step."""
    ds = lm_dataset(32, tokenizer)
    args = lm_args(tmp_path, **{"record_signals": ["p_target", "loss", "correct", "entropy", "num_tokens"], **extra})
    trainer_class = DynamicPruningTrainer if extra else PruningTrainer
    trainer = trainer_class(model=tiny_lm(tokenizer), args=args, train_dataset=ds,
                            data_collator=pad_collator(tokenizer))  # fmt: skip
    with count_host_syncs(only_during=((PruningTrainer, "training_step"),)) as syncs:
        trainer.train()
    assert syncs.calls == [], syncs.report()
    if extra:  # epoch 1 pruned some well-learned sequences and weighted the kept ones on the device
        assert np.nansum(trainer.score_record.signal("selected")[1]) < 32

    class Leaky(PruningTrainer):  # the counter sees a transfer where there is one: the test can fail
        def _record_training_batch(self, ids, outputs, labels, alignment):
            labels.tolist()
            return super()._record_training_batch(ids, outputs, labels, alignment)

    leaky = Leaky(model=tiny_lm(tokenizer), args=lm_args(tmp_path / "leaky", num_train_epochs=1), train_dataset=ds,
                  data_collator=pad_collator(tokenizer))  # fmt: skip
    with count_host_syncs(only_during=((PruningTrainer, "training_step"),)) as probe:
        leaky.train()
    assert [what for what, _ in probe.calls] == ["Tensor.tolist"] * 4


# ------------------------------------------------------------------------------------------------ dynamic pruning


def test_weighted_sequence_loss_at_weight_one_is_the_models_token_mean_loss(tokenizer):
    ds = lm_dataset(10, tokenizer)
    model = tiny_lm(tokenizer)
    batch = padded_batch(tokenizer, ds)
    out = model(**batch)
    ones = torch.ones(10)
    torch.testing.assert_close(weighted_cross_entropy(out.logits, batch["labels"], ones, label_alignment="next_token"),
                               out.loss)  # fmt: skip
    count = (batch["labels"][:, 1:] != -100).sum() + 7  # as Trainer passes it: the accumulated batch's tokens
    with_count = model(**batch, num_items_in_batch=count).loss
    torch.testing.assert_close(
        weighted_cross_entropy(out.logits, batch["labels"], ones, count, label_alignment="next_token"), with_count
    )
    # a weight multiplies every target token of its sequence: sum_i w_i * n_i * mean_loss_i / N_tokens
    weights = torch.linspace(0.5, 2.0, 10)
    tokens = TokenLosses.from_logits(out.logits, batch["labels"], "next_token")
    signals = sequence_signals(tokens, ["loss", "num_tokens"])
    mean_loss, n = signals[:, 0].nan_to_num(0.0), signals[:, 1].nan_to_num(0.0)
    expected = (weights * n * mean_loss).sum() / n.sum()
    got = weighted_cross_entropy(out.logits, batch["labels"], weights, label_alignment="next_token")
    torch.testing.assert_close(got, expected.to(got.dtype))
    got.backward()  # the weighted loss carries the graph to the model
    assert model.lm_head.weight.grad is not None and math.isfinite(float(model.lm_head.weight.grad.abs().sum()))
    with pytest.raises(ValueError, match="label_alignment='next_token'"):
        weighted_cross_entropy(out.logits, batch["labels"], ones)


def test_dynamic_pruning_trains_a_causal_lm_on_per_sequence_losses(tmp_path, tokenizer):
    ds = lm_dataset(LM_ROWS, tokenizer)
    args = lm_args(tmp_path, num_train_epochs=3, dynamic_policy="infobatch", dynamic_prune_ratio=0.5,
                   record_signals=["loss", "num_tokens"])  # fmt: skip
    trainer = DynamicPruningTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=ds,
                                    data_collator=pad_collator(tokenizer))  # fmt: skip
    output = trainer.train()
    record = trainer.score_record
    selected = np.asarray(record.signal("selected"))
    assert selected[0].sum() == LM_ROWS and selected[1].sum() < LM_ROWS  # epoch 1 prunes well-learned sequences
    seen = ~np.isnan(record.signal("loss")[1])
    np.testing.assert_array_equal(seen, (selected[1] == 1) & (np.arange(LM_ROWS) != FULLY_MASKED_ROW))
    assert output.metrics["train_samples_trained"] < 3 * LM_ROWS


def test_weighted_steps_record_from_the_weighted_losses_own_per_token_pass(tmp_path, tokenizer, monkeypatch):
    """With InfoBatch's weights the per-token losses are computed once per step and serve both the weighted loss and
    the record: one `TokenLosses.from_logits` per step, and (learning rate 0, so the model never changes) each
    sequence's weighted-epoch record equals its record from the unweighted first epoch."""
    calls = []
    original = TokenLosses.from_logits.__func__

    def counting(cls, *args, **kwargs):
        calls.append(kwargs.get("keep_grad", False))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(TokenLosses, "from_logits", classmethod(counting))
    ds = lm_dataset(LM_ROWS, tokenizer)
    args = lm_args(tmp_path, num_train_epochs=3, learning_rate=0.0, dynamic_policy="infobatch",
                   dynamic_prune_ratio=0.5, record_signals=["loss", "correct", "entropy", "num_tokens"])  # fmt: skip
    trainer = DynamicPruningTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=ds,
                                    data_collator=pad_collator(tokenizer))  # fmt: skip
    trainer.train()
    record = trainer.score_record
    selected = np.asarray(record.signal("selected"))
    steps = [math.ceil(selected[e].sum() / args.per_device_train_batch_size) for e in range(3)]
    assert selected[1].sum() < LM_ROWS == selected[0].sum() == selected[2].sum()  # epoch 1 pruned and weighted
    assert calls == [False] * steps[0] + [True] * steps[1] + [False] * steps[2]
    for name in ("loss", "correct", "entropy", "num_tokens"):
        values = np.asarray(record.signal(name))
        kept = (selected[1] == 1) & ~np.isnan(values[1])
        assert kept.sum() > 0
        np.testing.assert_allclose(values[1][kept], values[0][kept], rtol=1e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------------------------ two processes


def test_two_processes_record_every_sequence_once_with_its_single_process_loss(tmp_path, tokenizer):
    """A real 2-process torchrun (gloo), 37 sequences, batch 4, accumulation 2: every sample recorded once per epoch,
    its loss equal to the model's own loss of that sequence computed on one process."""
    proc = run_torchrun("dist_lm_worker.py", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((tmp_path / "result.json").read_text()) == {"world_size": 2}
    record = ScoreRecord.load(tmp_path / "run" / "scores")
    assert record.metadata["epoch_num_seen"] == [LM_ROWS, LM_ROWS]
    expected = np.array(per_sequence_model_losses(tiny_lm(tokenizer), lm_dataset(LM_ROWS, tokenizer)))
    for epoch in range(2):
        np.testing.assert_allclose(record.signal("loss")[epoch], expected, rtol=1e-5, atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(record.signal("p_target")[epoch], np.exp(-expected), rtol=1e-5, equal_nan=True)
    assert np.flatnonzero(np.isnan(record.signal("loss")[0])).tolist() == [FULLY_MASKED_ROW]
