"""Worker for the 2-process tests of tests/test_reliability.py and tests/test_distributed.py, run under
`torchrun --nproc_per_node 2 tests/dist_faults_worker.py MODE OUT`. Every rank writes `OUT.rank<r>.json`.

Modes:

* `stream`: `stream_rows_to_main` with skewed, overlapping ids and a tiny byte budget (many ranges), and
  `raise_on_every_rank` with an error on rank 0 only.
* `bad_input`: a validation error that only the main process would meet, inside two collective sections (the
  epoch's record write: sample ids beyond `record_num_samples`; the feature pass: ids beyond `num_samples`). Each
  must raise on *every* rank, promptly; each rank notes what it raised.
* `checkpoint`: trains 2 epochs of 48 rows, batch 4 per rank, saving at step 9 (mid-epoch 1) and keeps going; the
  parent resumes `checkpoint-9` with one process.
"""

import json
import os
import sys
import traceback

import numpy as np
import torch
import torch.distributed as dist


def run_stream(out: str) -> dict:
    from accelerate import Accelerator

    from hf_prune.distributed import CollectiveError, raise_on_every_rank, stream_rows_to_main

    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    n = 5000
    # rank 0 holds the first 70 % of the ids (skew), rank 1 every third id (overlaps rank 0 on 0..3499)
    ids = torch.as_tensor(np.arange(0, 3500) if rank == 0 else np.arange(0, n, 3))
    rows = torch.stack([ids % 251, torch.full(ids.shape, rank)], dim=1).to(torch.uint8)

    def histogram(edges):
        return torch.bucketize(ids, edges[1:-1], right=True).bincount(minlength=len(edges) - 1)

    def select(start, stop):
        keep = (ids >= start) & (ids < stop)
        return ids[keep], rows[keep]

    seen_ids, seen_rank, ranges = [], [], []
    for start, stop, rank_ids, rank_rows in stream_rows_to_main(
        accelerator, histogram, select, n, row_bytes=2, max_bytes=4096, max_span=700
    ):
        ranges.append((start, stop))
        for r, (i, x) in enumerate(zip(rank_ids, rank_rows)):
            assert ((i >= start) & (i < stop)).all()
            assert (x[:, 0] == i % 251).all() and (x[:, 1] == r).all()
            seen_ids.append(i)
            seen_rank.append(np.full(i.shape, r))
    result = {"ranges": ranges}
    if rank == 0:
        all_ids = np.concatenate(seen_ids)
        expected = np.concatenate([np.arange(0, 3500), np.arange(0, n, 3)])
        result["complete"] = sorted(all_ids.tolist()) == sorted(expected.tolist())
    try:
        raise_on_every_rank(ValueError("bad input on rank 0") if rank == 0 else None, accelerator, "the test section")
    except (ValueError, CollectiveError) as err:
        result["raised"] = f"{type(err).__name__}: {err}"
    accelerator.wait_for_everyone()
    return result


def run_bad_input(out: str) -> dict:
    from hf_prune import PruningArguments, PruningTrainer
    from hf_prune.features import extract_features
    from tests.trainer_utils import collate, small_image_dataset, timm_model

    result = {}
    ds = small_image_dataset(24)
    args = PruningArguments(
        output_dir=out + ".run", num_train_epochs=1, per_device_train_batch_size=4, report_to=[],
        remove_unused_columns=False, save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
        record_num_samples=20,
    )  # fmt: skip
    try:
        PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate).train()
        result["record"] = None
    except Exception as err:  # noqa: BLE001
        result["record"] = f"{type(err).__name__}: {err}"
    args.record_num_samples = None
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    view = ds.add_column("sample_id", np.arange(24)).select(range(20, 24))
    try:
        extract_features(trainer, dataset=view, num_samples=22)
        result["features"] = None
    except Exception as err:  # noqa: BLE001
        result["features"] = f"{type(err).__name__}: {err}"

    # A corrupt row that only one rank reads (row 13 of 24, eval batches of 4 dealt to 2 ranks): its transform
    # raises on that rank alone, in the middle of the feature pass's gathers.
    from hf_prune.data import ImageTransform

    image_transform = ImageTransform(28, in_chans=1)

    def transform(batch):
        if any(batch["corrupt"]):
            raise ValueError("cannot decode the image of row 13")
        return image_transform(batch)

    corrupt = ds.with_format(None).add_column("corrupt", [i == 13 for i in range(24)])
    corrupt.set_transform(transform)
    args.per_device_eval_batch_size = 4
    try:
        extract_features(trainer, dataset=corrupt, output_dir=out + ".features")
        result["corrupt_row"] = None
    except Exception as err:  # noqa: BLE001
        result["corrupt_row"] = f"{type(err).__name__}: {err}"
    return result


def run_checkpoint(out: str) -> dict:
    from hf_prune import PruningArguments, PruningTrainer
    from tests.trainer_utils import collate, small_image_dataset, timm_model

    ds = small_image_dataset(48)
    args = PruningArguments(
        output_dir=out + ".run", num_train_epochs=3, per_device_train_batch_size=4, report_to=[],
        remove_unused_columns=False, save_strategy="steps", save_steps=9, disable_tqdm=True, use_cpu=True, seed=0,
    )  # fmt: skip
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate)
    trainer.train()
    return {"num_epochs": trainer.score_record.num_epochs if trainer.accelerator.is_main_process else None}


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, out = sys.argv[1], sys.argv[2]
    try:
        result = {"stream": run_stream, "bad_input": run_bad_input, "checkpoint": run_checkpoint}[mode](out)
    except Exception:  # noqa: BLE001
        result = {"crashed": traceback.format_exc()}
    rank = dist.get_rank() if dist.is_initialized() else 0
    with open(f"{out}.rank{rank}.json", "w") as f:
        json.dump(result, f)
    if dist.is_initialized():
        dist.destroy_process_group()
    # Skip the interpreter's teardown: gloo's threads can abort it ("terminate called without an active exception")
    # after everything this test needs has been written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
