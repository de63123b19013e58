"""Worker for test_dynamic_exact.py, run under `torchrun --nproc_per_node W` (W = 1 or 2): the own-loop paths of
dynamic pruning (`DynamicPruningSampler` and `DynamicPruningDataset` in a plain Accelerate loop, written as the README
writes them: the DataLoader's batch size given to the sampler / view, nothing else) over a grid of batch sizes, loader
workers (0 / 2 / 4, persistent or not), dataset sizes whose selections are and are not multiples of W x B,
`drop_last` both ways and every policy, with gradient accumulation 2.

Per configuration and epoch every rank writes the sample ids its loop received, the epoch's selection, and whether the
policy's score table equals that of a shadow policy fed on the host with each selected id's own loss (so losses went
back to the right ids). The loss fed back is a function of the row's *features* (which carry the row id), not of the
`sample_id` column, so a row paired with the wrong id would show. Results go to `<out>.rank<r>.json`."""

import itertools
import json
import os
import sys
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.data_loader import prepare_data_loader
from torch.utils.data import DataLoader

from hf_prune.dynamic import DynamicPruningDataset, DynamicPruningSampler, get_policy, list_policies


EPOCHS = 4
POLICY_PARAMS = {"infobatch": {"num_epochs": EPOCHS}, "seta": {"num_epochs": EPOCHS, "num_groups": 3}}


def fed_loss(features: torch.Tensor) -> torch.Tensor:
    """The per-sample "loss" fed back to the policy: a function of the row id stored in the features."""
    row = features[:, 0].round()
    return (row % 17) / 17.0 + 0.01 * (row % 5)


def host_loss(ids: np.ndarray) -> np.ndarray:
    return (ids % 17) / 17.0 + 0.01 * (ids % 5)


def grid(world: int):
    """(policy, path, batch, workers, persistent, n, drop_last): every policy x path x batch x n x drop_last without
    workers, and each policy with every worker setting (rotating the other factors)."""
    policies = sorted(list_policies())
    configs = []
    for policy, path, batch, n, drop_last in itertools.product(policies, ("sampler", "view"), (3, 4), (96, 101),
                                                               (False, True)):  # fmt: skip
        configs.append((policy, path, batch, 0, False, n, drop_last))
    rotation = itertools.cycle(itertools.product(("sampler", "view", "view_shard"), (3, 4), (96, 101), (True, False)))
    for policy in policies:
        for workers, persistent in ((2, True), (2, False), (4, True), (4, False)):
            path, batch, n, drop_last = next(rotation)
            configs.append((policy, path, batch, workers, persistent, n, drop_last))
    if world == 1:
        configs = [c for c in configs if c[1] != "view_shard"]
    return configs


def dataset(n: int):
    return [{"x": torch.tensor([float(i), *torch.randn(3).tolist()]), "y": i % 3, "sample_id": i} for i in range(n)]


def run_config(accelerator, policy_name, path, batch, workers, persistent, n, drop_last):
    torch.manual_seed(0)
    data = dataset(n)
    policy = get_policy(policy_name, prune_ratio=0.5, **POLICY_PARAMS.get(policy_name, {}))
    shadow = get_policy(policy_name, prune_ratio=0.5, **POLICY_PARAMS.get(policy_name, {}))
    loader_kwargs = {"batch_size": batch, "num_workers": workers, "persistent_workers": persistent,
                     "drop_last": drop_last}  # fmt: skip
    if path == "sampler":
        feeder = DynamicPruningSampler(policy, n, batch_size=batch)  # the README's arguments
        loader = accelerator.prepare(DataLoader(data, sampler=feeder, **loader_kwargs))
    else:
        feeder = DynamicPruningDataset(data, policy, batch_size=batch)
        raw = DataLoader(feeder, **loader_kwargs)
        if path == "view":  # accelerate's default for an IterableDataset: dispatch_batches=True
            loader = accelerator.prepare(raw)
        else:  # each process reads the stream itself and keeps its slice (IterableDatasetShard)
            loader = prepare_data_loader(raw, accelerator.device, accelerator.num_processes, accelerator.process_index,
                                         dispatch_batches=False)  # fmt: skip
    sampler = feeder.sampler if path != "sampler" else feeder
    shadow.reset(n, sampler.seed)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model, optimizer = accelerator.prepare(model, optimizer)
    epochs = []
    for epoch in range(EPOCHS):
        if path == "sampler":
            feeder.set_epoch(epoch)
        else:
            loader.set_epoch(epoch)
        got, mismatched = [], 0
        for batch_ in loader:
            with accelerator.accumulate(model):
                losses = F.cross_entropy(model(batch_["x"]), batch_["y"], reduction="none")
                ids = batch_["sample_id"]
                mismatched += int((batch_["x"][:, 0].round().long() != ids).sum())
                accelerator.backward((feeder.loss_weights(ids) * losses).mean())
                optimizer.step()
                optimizer.zero_grad()
            got += ids.tolist()
            feeder.collect(ids, fed_loss(batch_["x"]))
        selection = sampler.selection.ids.copy()
        error = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                feeder.end_epoch(accelerator)
            except RuntimeError as err:
                error = str(err)
        shadow.observe(selection, host_loss(selection))
        scores_match = bool(np.allclose(sampler.policy.scores(), shadow.scores(), equal_nan=True))
        epochs.append({"ids": got, "selection": selection.tolist(), "len": len(sampler), "mismatched": mismatched,
                       "scores_match": scores_match, "error": error,
                       "warnings": [str(w.message) for w in caught]})  # fmt: skip
    # the accelerator keeps every loader it prepared (for `save_state`): let go of them so this configuration's
    # persistent workers end here, not at exit (otherwise ~50 idle workers per rank pile up over the grid)
    accelerator.free_memory()
    del loader, feeder, sampler
    return epochs


def main(out):
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    results = []
    for config in grid(accelerator.num_processes):
        results.append({"config": list(config), "epochs": run_config(accelerator, *config)})
    with open(f"{out}.rank{accelerator.process_index}.json", "w") as f:
        json.dump({"world_size": accelerator.num_processes, "results": results}, f)
    accelerator.wait_for_everyone()
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # gloo's threads can abort the interpreter's teardown after the results are written (see dist_record_worker.py).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
