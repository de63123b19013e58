"""Worker for test_distributed.py, run under `torchrun --nproc_per_node 2`: trains with PruningTrainer on a dataset
whose length is not a multiple of world size x batch, logs the ids every rank really trained on, and checks on rank
0 that the record holds each of them exactly once (and nothing else)."""

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

from hf_prune import PruningArguments, PruningTrainer
from tests.trainer_utils import collate, small_image_dataset, timm_model


class IdLoggingTrainer(PruningTrainer):
    """Logs the sample ids each rank's training_step receives (the ground truth of what was trained on)."""

    seen: list

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.seen.append((int(self.state.epoch or 0), inputs["sample_id"].tolist()))
        return super().training_step(model, inputs, num_items_in_batch)


def main(out_path, n, batch, accumulation, drop_last):
    ds = small_image_dataset(n)
    args = PruningArguments(
        output_dir=out_path + ".run", num_train_epochs=2, per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation, dataloader_drop_last=drop_last, report_to=[],
        remove_unused_columns=False, save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
    )  # fmt: skip
    trainer = IdLoggingTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    trainer.seen = []
    trainer.train()
    world = trainer.accelerator.num_processes
    gathered = [None] * world
    dist.all_gather_object(gathered, trainer.seen)
    if trainer.accelerator.is_main_process:
        record = trainer.score_record
        per_epoch = []
        for epoch in range(record.num_epochs):
            trained = sorted({i for rank in gathered for (e, ids) in rank if e == epoch for i in ids})
            recorded = np.flatnonzero(~np.isnan(record.signal("p_target")[epoch])).tolist()
            steps = sum(1 for rank in gathered for (e, _) in rank if e == epoch)
            per_epoch.append({"trained": trained, "recorded": recorded, "micro_batches": steps})
        with open(out_path, "w") as f:
            json.dump({"world_size": world, "num_epochs": record.num_epochs, "epochs": per_epoch}, f)
    trainer.accelerator.wait_for_everyone()
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
    # gloo's threads can abort the interpreter's teardown ("terminate called without an active exception") after the
    # result is written: skip it.
    sys.stdout.flush()
    os._exit(0)
