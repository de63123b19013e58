"""Full-network per-sample gradient norms (GraNd as Paul et al. define it): the vmapped pass equals one autograd
backward per sample, through a `PruningTrainer` (ids kept, eval mode), and feeds the `grand` strategy."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hf_prune import PruningArguments, PruningTrainer, ScoreRecord, get_strategy
from hf_prune.grad_norms import batch_grad_norms, per_sample_grad_norms
from tests.trainer_utils import collate, small_image_dataset, timm_model, transformers_model


def autograd_norms(model, pixel_values, labels):
    """One backward per sample over every trainable parameter (the data-diet code's definition)."""
    out = []
    params = [p for p in model.parameters() if p.requires_grad]
    for i in range(labels.shape[0]):
        model.zero_grad()
        logits = model(pixel_values=pixel_values[i : i + 1]).logits
        F.cross_entropy(logits, labels[i : i + 1]).backward()
        out.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params if p.grad is not None)))
    return np.array(out)


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # vmap over CPU attention: slow, exact
def test_vmapped_norms_equal_one_backward_per_sample():
    ds = small_image_dataset(12)
    batch = collate([ds[i] for i in range(12)])
    for model in (timm_model().eval(), transformers_model().eval()):
        norms = batch_grad_norms(model, {"pixel_values": batch["pixel_values"]}, batch["labels"], chunk_size=5)
        np.testing.assert_allclose(norms.numpy(), autograd_norms(model, batch["pixel_values"], batch["labels"]),
                                   rtol=1e-4)  # fmt: skip


def test_pass_through_the_trainer_keys_by_sample_id_and_feeds_grand(tmp_path):
    ds = small_image_dataset(23)
    args = PruningArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to=[], use_cpu=True,
                            remove_unused_columns=False, disable_tqdm=True)  # fmt: skip
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    assert trainer.model.training
    norms = per_sample_grad_norms(trainer, output_path=tmp_path / "grand.npy")
    assert trainer.model.training  # restored
    model = timm_model().eval()
    batch = collate([ds[i] for i in range(23)])
    np.testing.assert_allclose(norms, autograd_norms(model, batch["pixel_values"], batch["labels"]), rtol=1e-4)
    np.testing.assert_array_equal(np.load(tmp_path / "grand.npy"), norms)
    record = ScoreRecord.from_arrays({"p_target": np.zeros((1, 23), np.float32)})
    result = get_strategy("grand", grad_norms=[str(tmp_path / "grand.npy"), norms]).select(record, 0.5)
    np.testing.assert_allclose(result.scores, norms)
    assert result.provenance["mode"] == "full_network" and result.provenance["num_runs"] == 2
    assert torch.is_grad_enabled()
