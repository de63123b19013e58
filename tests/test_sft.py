"""trl's `SFTTrainer` with hf_prune (`hf_prune.sft`): per-sequence record from the fused LM head (completion-only loss
honoured, no extra forward pass, no host synchronisation of ours), sample ids through SFTTrainer's preparation,
packing refused, dynamic pruning with per-sequence weights."""

import numpy as np
import pytest
import torch


pytest.importorskip("trl")

import datasets  # noqa: E402

from hf_prune import PruningArguments, PruningTrainer  # noqa: E402
from hf_prune.dynamic.loss import weighted_token_loss  # noqa: E402
from hf_prune.sequence import fused_token_losses  # noqa: E402
from hf_prune.sft import (  # noqa: E402
    DynamicPruningSFTConfig,
    DynamicPruningSFTTrainer,
    PruningSFTConfig,
    PruningSFTTrainer,
)
from tests.dist_lm_worker import sentences, tiny_lm, word_tokenizer  # noqa: E402
from tests.host_sync import count_host_syncs  # noqa: E402


N = 19
LONG_PROMPT_ROWS = (3, N - 1)  # prompts longer than max_length: nothing left to learn after truncation
MAX_LENGTH = 12


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


def prompt_completion(n: int = N, long_prompt_rows=()):
    rows = {"prompt": [], "completion": []}
    for i, text in enumerate(sentences(n, seed=1, min_words=4)):
        words = text.split()
        prompt = words[:2] * (8 if i in long_prompt_rows else 1)
        rows["prompt"].append(" ".join(prompt))
        rows["completion"].append(" " + " ".join(words[2:]))
    return datasets.Dataset.from_dict(rows)


def sft_args(tmp_path, config=PruningSFTConfig, **kw):
    defaults = dict(
        output_dir=str(tmp_path / "run"), num_train_epochs=2, per_device_train_batch_size=4, learning_rate=0.0,
        report_to=[], save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True, logging_strategy="no",
        max_length=None, record_signals=["p_target", "loss", "correct", "num_tokens", "entropy"],
    )  # fmt: skip
    defaults.update(kw)
    return config(**defaults)


def completion_losses(model, tokenizer, ds, max_length=None):
    """The model's own loss of each row alone over its completion tokens (prompt labels -100; EOS appended as
    SFTTrainer appends it; truncated from the end like `truncation_mode="keep_start"`). NaN when nothing is left."""
    losses, counts = [], []
    model.eval()
    with torch.no_grad():
        for row in ds:
            prompt_len = len(tokenizer(row["prompt"])["input_ids"])
            ids = tokenizer(row["prompt"] + row["completion"] + tokenizer.eos_token)["input_ids"][:max_length]
            labels = [-100] * prompt_len + ids[prompt_len:]
            targets = sum(label != -100 for label in labels[1:])
            counts.append(targets)
            if targets == 0:
                losses.append(float("nan"))
                continue
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels[: len(ids)]]))
            losses.append(float(out.loss))
    return np.array(losses), np.array(counts, dtype=float)


def test_completion_only_loss_is_recorded_per_sequence_from_the_fused_head(tmp_path, tokenizer):
    """With a learning rate of 0 every recorded loss is the model's own loss over the completion tokens only."""
    ds = prompt_completion()
    model = tiny_lm(tokenizer)
    expected, counts = completion_losses(model, tokenizer, ds)
    trainer = PruningSFTTrainer(model=model.train(), args=sft_args(tmp_path), train_dataset=ds,
                                processing_class=tokenizer)  # fmt: skip
    assert trainer.completion_only_loss and trainer.label_alignment == "next_token"
    forwards = []
    hook = trainer.model.register_forward_hook(lambda *_: forwards.append(1))
    with count_host_syncs(only_during=((PruningTrainer, "_record_training_batch"),)) as syncs:
        trainer.train()
    hook.remove()
    assert syncs.calls == [], syncs.report()
    assert len(forwards) == trainer.state.global_step  # one forward per step: no extra pass for the outputs
    record = trainer.score_record
    assert (record.num_samples, record.num_epochs) == (N, 2)
    for epoch in range(2):
        np.testing.assert_allclose(record.signal("loss")[epoch], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(record.signal("num_tokens")[epoch], counts)
    np.testing.assert_allclose(record.signal("p_target")[0], np.exp(-expected), rtol=1e-5)
    assert ((record.signal("correct")[0] >= 0) & (record.signal("correct")[0] <= 1)).all()
    assert np.isfinite(record.signal("entropy")[0]).all()
    # the prompt is not in it: the full-sequence loss differs (the test can fail)
    with torch.no_grad():
        row = ds[0]
        ids = tokenizer(row["prompt"] + row["completion"] + tokenizer.eos_token)["input_ids"]
        full = float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss)
    assert abs(full - expected[0]) > 1e-3


def test_sample_ids_survive_sft_truncation_filtering_and_shuffling(tmp_path, tokenizer):
    """SFTTrainer drops rows left without targets by truncation (here rows 3 and the last) and shuffles: the record
    is still keyed by the rows of the dataset passed in, and keeps its length."""
    ds = prompt_completion(long_prompt_rows=LONG_PROMPT_ROWS)
    model = tiny_lm(tokenizer)
    expected, _ = completion_losses(model, tokenizer, ds, max_length=MAX_LENGTH)
    assert np.flatnonzero(np.isnan(expected)).tolist() == list(LONG_PROMPT_ROWS)
    args = sft_args(tmp_path, max_length=MAX_LENGTH, shuffle_dataset=True, num_train_epochs=1)
    trainer = PruningSFTTrainer(model=model.train(), args=args, train_dataset=ds, processing_class=tokenizer)
    assert len(trainer.train_dataset) == N - len(LONG_PROMPT_ROWS) and trainer.num_samples == N
    assert trainer.train_dataset["sample_id"] != sorted(trainer.train_dataset["sample_id"])  # shuffled
    trainer.train()
    np.testing.assert_allclose(trainer.score_record.signal("loss")[0], expected, rtol=1e-5, atol=1e-6,
                               equal_nan=True)  # fmt: skip


@pytest.mark.parametrize("setting", [{"packing": True, "max_length": 16}, {"padding_free": True, "max_length": None}],
                         ids=["packing", "padding-free"])  # fmt: skip
def test_packing_and_padding_free_are_refused_before_training(tmp_path, tokenizer, setting):
    name = next(iter(setting))
    with pytest.raises(ValueError, match=f"{name}=True is not supported.*Set packing=False and padding_free=False"):
        PruningSFTTrainer(model=tiny_lm(tokenizer), args=sft_args(tmp_path, **setting),
                          train_dataset=prompt_completion(), processing_class=tokenizer)  # fmt: skip


def test_arguments_without_the_sft_fields_are_refused(tmp_path, tokenizer):
    args = PruningArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    with pytest.raises(TypeError, match="needs `PruningSFTConfig`"):
        PruningSFTTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=prompt_completion(),
                          processing_class=tokenizer)  # fmt: skip
    with pytest.raises(TypeError, match="needs `DynamicPruningSFTConfig`"):
        DynamicPruningSFTTrainer(model=tiny_lm(tokenizer), args=sft_args(tmp_path), train_dataset=prompt_completion(),
                                 processing_class=tokenizer)  # fmt: skip


def test_dynamic_pruning_with_sft_weights_sequences_by_their_fused_token_losses(tmp_path, tokenizer):
    ds = prompt_completion()
    args = sft_args(tmp_path, config=DynamicPruningSFTConfig, num_train_epochs=3, learning_rate=1e-3,
                    dynamic_policy="infobatch", dynamic_prune_ratio=0.5, record_signals=["loss"])  # fmt: skip
    trainer = DynamicPruningSFTTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=ds,
                                       processing_class=tokenizer)  # fmt: skip
    # weights of 1 rebuild SFTTrainer's own token-mean loss from the fused head's log-probabilities
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    batch.pop("sample_id", None)
    out = trainer.model(**batch, fused_lm_head=True)
    torch.testing.assert_close(weighted_token_loss(fused_token_losses(out), torch.ones(4)), out.loss)
    output = trainer.train()
    selected = np.asarray(trainer.score_record.signal("selected"))
    assert selected[0].sum() == N and selected[1].sum() < N
    np.testing.assert_array_equal(~np.isnan(trainer.score_record.signal("loss")[1]), selected[1] == 1)
    assert output.metrics["train_samples_trained"] < 3 * N


def test_a_reweighting_policy_refuses_what_its_weighted_loss_would_drop(tmp_path, tokenizer):
    """InfoBatch's weights rebuild the loss as a weighted NLL: loss_type="dft" is refused before training rather than
    silently replaced; a policy without weights keeps SFTTrainer's own loss and takes it."""
    ds = prompt_completion()
    args = sft_args(tmp_path, config=DynamicPruningSFTConfig, num_train_epochs=2, loss_type="dft",
                    dynamic_policy="infobatch", dynamic_prune_ratio=0.5)  # fmt: skip
    with pytest.raises(ValueError, match="loss_type='dft' would be silently replaced. Set loss_type='nll'"):
        DynamicPruningSFTTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=ds, processing_class=tokenizer)
    args = sft_args(tmp_path, config=DynamicPruningSFTConfig, num_train_epochs=2, loss_type="dft",
                    dynamic_policy="random_dynamic", dynamic_prune_ratio=0.5)  # fmt: skip
    DynamicPruningSFTTrainer(model=tiny_lm(tokenizer), args=args, train_dataset=ds, processing_class=tokenizer)


def test_a_reweighting_policy_refuses_a_router_auxiliary_loss(tmp_path, tokenizer):
    """An MoE model (tiny Mixtral from config) whose router auxiliary loss SFTTrainer would add: refused with InfoBatch's
    weights (the rebuilt loss has no aux term) unless router_aux_loss_coef=0.0."""
    from transformers import MixtralConfig, MixtralForCausalLM

    def moe():
        config = MixtralConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                               num_attention_heads=2, num_key_value_heads=1, num_local_experts=2,
                               num_experts_per_tok=1, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        return MixtralForCausalLM(config)

    ds = prompt_completion()
    args = sft_args(tmp_path, config=DynamicPruningSFTConfig, dynamic_policy="infobatch", dynamic_prune_ratio=0.5)
    with pytest.raises(ValueError, match="without MixtralForCausalLM's router auxiliary loss: set router_aux_loss_coef=0.0"):
        DynamicPruningSFTTrainer(model=moe(), args=args, train_dataset=ds, processing_class=tokenizer)
    args = sft_args(tmp_path, config=DynamicPruningSFTConfig, dynamic_policy="infobatch", dynamic_prune_ratio=0.5,
                    router_aux_loss_coef=0.0)  # fmt: skip
    trainer = DynamicPruningSFTTrainer(model=moe(), args=args, train_dataset=ds, processing_class=tokenizer)
    assert not trainer.aux_loss_enabled
