"""A training process for fault-injection tests (tests/test_reliability.py), run as `python tests/fault_worker.py
CONFIG_JSON`: trains a tiny CNN with PruningTrainer on Fashion-MNIST rows and, where asked, dies at a precise point
(SIGKILL, as `kill -9` would), fills its disk, or holds its output folder for a while. On success it prints one JSON
line describing the record.

Config keys: output_dir, n (rows), epochs, batch, save_steps, save_total_limit, resume (bool), overwrite (bool),
augment (random crop and flip), workers (loader workers), reproducible (`reproducible_augmentation`, default True),
kill_after_rotation (k: SIGKILL right after Trainer rotated checkpoints in its k-th save), kill_at_step (SIGKILL at
that global step), fill_disk_at_step (write a filler file until the disk is full at that step), started_file (touched
after the first step), release_file (after the first step, training waits until this file exists).
"""

import json
import os
import signal
import sys
import time

import torch


def main(config: dict) -> None:
    torch.set_num_threads(1)
    import transformers.trainer as hf_trainer
    from transformers import TrainerCallback

    from hf_prune import PruningArguments, PruningTrainer
    from tests.trainer_utils import collate, small_image_dataset, timm_model

    if config.get("kill_after_rotation"):
        # The fault point: Trainer has written checkpoint-N and rotated older ones away (save_total_limit), and the
        # process dies before anything else happens.
        real_rotate, saves = hf_trainer.rotate_checkpoints, [0]

        def rotate_then_die(*args, **kwargs):
            real_rotate(*args, **kwargs)
            saves[0] += 1
            if saves[0] == config["kill_after_rotation"]:
                os.kill(os.getpid(), signal.SIGKILL)

        hf_trainer.rotate_checkpoints = rotate_then_die

    class Faults(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1 and config.get("started_file"):
                open(config["started_file"], "w").close()
            if state.global_step == 1 and config.get("release_file"):
                deadline = time.time() + 300
                while not os.path.exists(config["release_file"]) and time.time() < deadline:
                    time.sleep(0.1)
            if state.global_step == config.get("kill_at_step"):
                os.kill(os.getpid(), signal.SIGKILL)
            if state.global_step == config.get("fill_disk_at_step"):
                fill_disk(os.path.join(args.output_dir, "filler"))

    ds = small_image_dataset(config.get("n", 40), train_transform=config.get("augment", False))
    save_steps = config.get("save_steps")
    args = PruningArguments(
        output_dir=config["output_dir"], num_train_epochs=config.get("epochs", 3),
        per_device_train_batch_size=config.get("batch", 8), learning_rate=1e-3, report_to=[],
        remove_unused_columns=False, disable_tqdm=True, seed=0, use_cpu=True,
        save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
        save_total_limit=config.get("save_total_limit"), dataloader_num_workers=config.get("workers", 0),
        reproducible_augmentation=config.get("reproducible", True),
        **({"overwrite_score_record": True} if config.get("overwrite") else {}),
    )  # fmt: skip
    trainer = PruningTrainer(model=timm_model(), args=args, train_dataset=ds, data_collator=collate,
                             callbacks=[Faults()])  # fmt: skip
    trainer.train(resume_from_checkpoint=True if config.get("resume") else None)
    record = trainer.score_record
    print(json.dumps({"num_epochs": record.num_epochs, "p_target": record.signal("p_target").tolist()}))


def fill_disk(path: str) -> None:
    with open(path, "wb") as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(json.loads(sys.argv[1]))
