"""Worker for test_rank_data.py, run under `torchrun --nproc_per_node 2`: the transformers image-classification
example's pattern when the data has no validation folder — `dataset["train"].train_test_split(0.15)` *without a
seed* on every rank — so each rank builds another train split. `PruningTrainer.train()` must refuse before the first
step, on both ranks. With `seed=` (the fix the error names) the same run trains.

Writes `<out>.<mode>.rank<r>.json`: the error (or None), the global step reached, and the record's epochs."""

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

from hf_prune import PruningArguments, PruningTrainer
from tests.trainer_utils import collate, small_image_dataset, timm_model


def run(out, mode):
    full = small_image_dataset(90)
    if mode == "unseeded":
        # a different split on each rank, as `train_test_split` without a seed gives in separate processes
        np.random.seed(int(os.environ["RANK"]) + 100)
        split = full.train_test_split(0.15)
    else:
        split = full.train_test_split(0.15, seed=0)
    args = PruningArguments(
        output_dir=f"{out}.{mode}.run", num_train_epochs=1, per_device_train_batch_size=4, report_to=[],
        remove_unused_columns=False, save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
    )  # fmt: skip
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=split["train"], data_collator=collate)
    error, metrics = None, {}
    try:
        metrics = trainer.train().metrics
    except Exception as err:  # noqa: BLE001 - the test reads the message
        error = f"{type(err).__name__}: {err}"
    result = {"error": error, "global_step": trainer.state.global_step, "rank": trainer.accelerator.process_index,
              "train_rows": len(split["train"]), "samples_trained": metrics.get("train_samples_trained")}  # fmt: skip
    if error is None and trainer.accelerator.is_main_process:
        result["num_epochs"] = trainer.score_record.num_epochs
    with open(f"{out}.{mode}.rank{trainer.accelerator.process_index}.json", "w") as f:
        json.dump(result, f)
    dist.barrier()


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(sys.argv[1], "unseeded")
    run(sys.argv[1], "seeded")
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # gloo's threads can abort the interpreter's teardown after the results are written
