"""Worker for test_dynamic_distributed.py, run under `torchrun --nproc_per_node 2`: dynamic pruning in
`DynamicPruningTrainer` on a dataset whose length (101) is not a multiple of world size x batch. Every rank logs the
ids its training_step really received, its epoch selections, its policy table and its InfoBatch weights, and writes
them to `<out>.rank<r>.json`; the test compares the ranks."""

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from hf_prune import DynamicPruningArguments, DynamicPruningTrainer
from hf_prune.dynamic import DynamicPruningDataset, get_policy
from tests.trainer_utils import collate, small_image_dataset, timm_model


class LoggingTrainer(DynamicPruningTrainer):
    """Logs (epoch, sample ids) of every micro-batch and the selection of every epoch, from the sampler itself."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        sampler = self.dynamic_sampler
        self.log_steps.append((sampler.epoch, inputs["sample_id"].tolist()))
        self.log_selections.setdefault(sampler.epoch, sampler.selection.ids.tolist())
        self.log_orders.setdefault(sampler.epoch, sampler.indices().tolist())  # the epoch's full order
        if sampler.weighted:
            self.log_weights.setdefault(sampler.epoch, sampler.loss_weights().tolist())
        return super().training_step(model, inputs, num_items_in_batch)


def run(out, name, n, **dynamic):
    ds = small_image_dataset(n)
    args = DynamicPruningArguments(
        output_dir=f"{out}.{name}", num_train_epochs=3, per_device_train_batch_size=4, gradient_accumulation_steps=2,
        report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
        learning_rate=1e-3, **dynamic,
    )  # fmt: skip
    trainer = LoggingTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    trainer.log_steps, trainer.log_selections, trainer.log_weights, trainer.log_orders = [], {}, {}, {}
    trainer.train()
    sampler = trainer.dynamic_sampler
    result = {
        "rank": trainer.accelerator.process_index,
        "world_size": trainer.accelerator.num_processes,
        "len_sampler": len(sampler),
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "last_lr": trainer.lr_scheduler.get_last_lr()[0],
        "epoch_log": trainer.epoch_plan.state_dict(),
        "steps": trainer.log_steps,
        "selections": {str(k): v for k, v in trainer.log_selections.items()},
        "weights": {str(k): v for k, v in trainer.log_weights.items()},
        "policy_scores": np.nan_to_num(sampler.policy.scores(), nan=-1.0).tolist(),
        "orders": {str(k): v for k, v in trainer.log_orders.items()},
    }
    if trainer.accelerator.is_main_process:
        record = trainer.score_record
        result["record_selected"] = np.nan_to_num(record.signal("selected"), nan=-1.0).tolist()
        result["record_loss_seen"] = (~np.isnan(record.signal("loss"))).tolist()
        result["timing"] = record.metadata["dynamic"]["epochs"]
    with open(f"{out}.{name}.rank{result['rank']}.json", "w") as f:
        json.dump(result, f)
    trainer.accelerator.wait_for_everyone()
    return trainer.accelerator


def view_run(out, accelerator):
    """The IterableDataset view in a plain Accelerate loop: 101 rows, UCB at 50 %, 56 = 7 x (2 x 4) per epoch."""
    ds = small_image_dataset(101)
    view = DynamicPruningDataset(ds, get_policy("ucb", prune_ratio=0.5), seed=0, multiple_of=2 * 4)

    def collate_with_ids(rows):
        batch = collate(rows)
        batch["sample_id"] = torch.tensor([r["sample_id"] for r in rows])
        return batch

    loader = accelerator.prepare(DataLoader(view, batch_size=4, collate_fn=collate_with_ids))
    epochs = {}
    for epoch in range(3):
        loader.set_epoch(epoch)
        ids = []
        for batch in loader:
            ids += batch["sample_id"].tolist()
            losses = torch.rand(batch["sample_id"].shape[0])  # differs per rank; the gathered values do not
            view.collect(batch["sample_id"], losses)
        view.end_epoch(accelerator)  # one gather per epoch
        epochs[str(epoch)] = {"ids": ids, "order": view.sampler.indices().tolist(), "len": len(view),
                              "scores": np.nan_to_num(view.policy.scores(), nan=-1.0).tolist()}  # fmt: skip
    with open(f"{out}.view.rank{accelerator.process_index}.json", "w") as f:
        json.dump(epochs, f)
    accelerator.wait_for_everyone()


def main(out):
    # UCB with a scoring pass: rounded to a multiple of 2 x 4 -> exactly once, no padding.
    run(out, "ucb", 101, dynamic_policy="ucb", dynamic_prune_ratio=0.5, dynamic_scoring="pass")
    # InfoBatch as published, on training losses: epochs of 101, then fewer, then 101 (annealing); accelerate pads
    # the last round of batches with the first ids of the epoch's order. Linear LR schedule: it must end at 0.
    accelerator = run(out, "infobatch", 101, dynamic_policy="infobatch", dynamic_prune_ratio=0.5,
                      dynamic_scoring="train_loss", lr_scheduler_type="linear")  # fmt: skip
    view_run(out, accelerator)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # gloo's threads can abort the interpreter's teardown ("terminate called without an active exception") after the
    # results are written: skip it, as dist_record_worker.py does.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
