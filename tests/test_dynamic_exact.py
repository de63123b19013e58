"""Dynamic pruning is exact by default in a user's own loop: each selected sample once per epoch, across ranks and
loader workers, `drop_last` either way, persistent workers included.

The grid runs under a real `torchrun` with 1 and 2 processes (gloo, `tests/dist_exact_worker.py`); the unit tests
below pin the pieces (fitting to whole batches, the refusal without a batch size, the epoch-end check, shared epoch
state for persistent workers) on one process."""

import json
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hf_prune.dynamic import DynamicPruningDataset, DynamicPruningSampler, get_policy, list_policies
from hf_prune.selection import fit_to_batches
from tests.conftest import run_torchrun


# ---------------------------------------------------------------------------------------------- the grid (torchrun)


@pytest.fixture(scope="module", params=[1, 2], ids=["world1", "world2"])
def grid_results(request, tmp_path_factory):
    world = request.param
    tmp = tmp_path_factory.mktemp(f"exact_world{world}")
    out = tmp / "result"
    proc = run_torchrun("dist_exact_worker.py", str(out), cwd=tmp, nproc=world, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ranks = [json.loads((tmp / f"result.rank{r}.json").read_text()) for r in range(world)]
    assert all(r["world_size"] == world for r in ranks)
    return world, ranks


@pytest.mark.slow
def test_each_selected_sample_once_per_epoch_over_the_grid(grid_results):
    world, ranks = grid_results
    results = ranks[0]["results"]
    configs = [tuple(r["config"]) for r in results]
    # the grid covers what the issue names: every policy, both feeders, 0/2/4 workers, persistent or not, both
    # drop_last settings, selections that are and are not multiples of W x B
    assert {c[0] for c in configs} == set(list_policies())
    assert {c[3] for c in configs} == {0, 2, 4} and {c[4] for c in configs} == {True, False}
    assert {c[6] for c in configs} == {True, False} and {c[1] for c in configs} >= {"sampler", "view"}
    unfitted = 0
    for i, result in enumerate(results):
        policy, path, batch, workers, persistent, n, drop_last = result["config"]
        for epoch, first in enumerate(result["epochs"]):
            per_rank = [rank["results"][i]["epochs"][epoch] for rank in ranks]
            where = f"{result['config']} epoch {epoch}"
            selection = first["selection"]
            assert all(p["selection"] == selection for p in per_rank), where  # same selection on every rank
            used = Counter(i for p in per_rank for i in p["ids"])
            assert sorted(used) == selection, where  # every selected id, nothing else
            assert set(used.values()) == {1}, where  # exactly once across ranks and workers
            if world == 2:
                assert not set(per_rank[0]["ids"]) & set(per_rank[1]["ids"]), where  # ranks disjoint
            assert len(selection) % (world * batch) == 0 and first["len"] == len(selection), where
            assert all(p["mismatched"] == 0 for p in per_rank), where  # each row came with its own id
            assert all(p["scores_match"] for p in per_rank), where  # losses fed back to the right ids
            assert all(p["error"] is None and not p["warnings"] for p in per_rank), where
            unfitted += len(selection) != n - n // 2 and policy in ("ucb", "uncertainty_ema")
    assert unfitted > 0  # some selections were fitted (51 -> 54 or 56): the grid exercises the fitting


@pytest.mark.slow
def test_persistent_workers_train_each_epochs_own_selection(grid_results):
    world, ranks = grid_results
    seen = 0
    for i, result in enumerate(ranks[0]["results"]):
        policy, path, batch, workers, persistent, n, drop_last = result["config"]
        if not (persistent and path.startswith("view") and policy in ("ucb", "rs2", "random_dynamic")):
            continue
        selections = [e["selection"] for e in result["epochs"]]
        assert len(selections) == 4 and len({tuple(s) for s in selections}) > 1  # the selection moves
        for epoch, selection in enumerate(selections):
            trained = sorted(j for rank in ranks for j in rank["results"][i]["epochs"][epoch]["ids"])
            assert trained == selection, (result["config"], epoch)
        seen += 1
    assert seen >= 2


# ---------------------------------------------------------------------------------------------- unit tests


def test_fit_to_batches_rounds_up_within_n_else_down():
    assert fit_to_batches(51, 101, 8) == 56
    assert fit_to_batches(101, 101, 8) == 96  # cannot round up past n: round down
    assert fit_to_batches(97, 101, 8) == 96 and fit_to_batches(96, 101, 8) == 96
    assert fit_to_batches(51, 101, 1) == 51
    assert fit_to_batches(1, 101, 8) == 8
    for n in (7, 64, 101, 1000):
        for m in (1, 2, 3, 8):
            if m > n:
                continue
            values = [fit_to_batches(k, n, m) for k in range(1, n + 1)]
            assert all(v % m == 0 and 0 < v <= n for v in values)
            assert values == sorted(values)  # monotone: a fitted bound bounds the fitted count
    with pytest.raises(ValueError, match="exceeds the 5 samples"):
        fit_to_batches(3, 5, 8)


def test_sampler_refuses_several_processes_without_a_batch_size():
    sampler = DynamicPruningSampler(get_policy("ucb", prune_ratio=0.5), 101, world_size=2)
    with pytest.raises(ValueError, match="batch_size=<the DataLoader's per-device batch size>"):
        sampler.set_epoch(0)
    fitted = DynamicPruningSampler(get_policy("ucb", prune_ratio=0.5), 101, world_size=2, batch_size=4)
    fitted.set_epoch(0)
    assert len(fitted) == 56
    with pytest.raises(ValueError, match="not both"):
        DynamicPruningSampler(get_policy("ucb"), 101, multiple_of=8, batch_size=4)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        DynamicPruningSampler(get_policy("ucb"), 101, batch_size=0)


@pytest.mark.parametrize("name", ["infobatch", "seta", "rs2"])
def test_varying_length_policies_are_fitted_and_bounded(name):
    params = {"infobatch": {"num_epochs": 6}, "seta": {"num_epochs": 6, "num_groups": 3}}.get(name, {})
    sampler = DynamicPruningSampler(get_policy(name, prune_ratio=0.5, **params), 101, seed=1, batch_size=4,
                                    world_size=2)  # fmt: skip
    plain = DynamicPruningSampler(get_policy(name, prune_ratio=0.5, **params), 101, seed=1)
    rng = np.random.default_rng(0)
    for epoch in range(6):
        bound = sampler.max_selected(epoch)
        sampler.set_epoch(epoch)
        plain.set_epoch(epoch)
        ids = sampler.selection.ids
        assert ids.size % 8 == 0 and ids.size <= bound and len(sampler) == ids.size
        assert abs(ids.size - plain.selection.ids.size) < 8  # fitted: at most W B - 1 away from the policy's count
        if ids.size >= plain.selection.ids.size:
            assert set(plain.selection.ids) <= set(ids)  # grown: the policy's selection is all there
        if sampler.selection.weights is not None:  # InfoBatch: added samples weigh 1/(1-r) like the kept easy ones
            assert set(np.round(sampler.selection.weights, 4)) <= {1.0, 2.0}
        losses = rng.random(101)
        sampler.update(np.arange(101), losses)
        plain.update(np.arange(101), losses)


def test_end_epoch_refuses_repeated_samples_and_warns_on_missing():
    sampler = DynamicPruningSampler(get_policy("ucb", prune_ratio=0.5), 20, batch_size=4)
    sampler.set_epoch(0)
    ids = torch.from_numpy(sampler.indices())
    sampler.collect(torch.cat([ids, ids[:2]]), torch.rand(ids.numel() + 2))
    with pytest.raises(RuntimeError, match="2 trained more than once"):
        sampler.end_epoch()
    sampler.collect(ids[:-3], torch.rand(ids.numel() - 3))
    with pytest.warns(UserWarning, match="3 selected samples were not trained"):
        sampler.end_epoch()
    sampler = DynamicPruningSampler(get_policy("ucb", prune_ratio=0.5), 20, batch_size=4)
    sampler.set_epoch(0)
    ids = torch.from_numpy(sampler.indices())
    sampler.collect(ids, ids.float())
    sampler.end_epoch()  # exact: no error, no warning
    shadow = get_policy("ucb", prune_ratio=0.5)
    shadow.reset(20, 0)
    shadow.observe(np.sort(ids.numpy()), np.sort(ids.numpy()).astype(float))
    assert np.allclose(sampler.policy.scores(), shadow.scores(), equal_nan=True)  # each loss went to its own id


@pytest.mark.parametrize("persistent", [True, False])
def test_view_with_loader_workers_streams_each_epochs_selection(persistent):
    data = [{"x": torch.tensor([float(i)]), "y": i % 3} for i in range(103)]
    view = DynamicPruningDataset(data, get_policy("ucb", prune_ratio=0.5), batch_size=4)
    loader = DataLoader(view, batch_size=4, num_workers=2, persistent_workers=persistent, drop_last=True)
    selections = []
    for epoch in range(4):
        view.set_epoch(epoch)
        ids = []
        for batch in loader:
            assert batch["sample_id"].numel() == 4  # whole chunks per worker: every batch full
            assert torch.equal(batch["x"][:, 0].long(), batch["sample_id"])
            ids += batch["sample_id"].tolist()
            view.collect(batch["sample_id"], 1.0 / (1.0 + batch["x"][:, 0]) + 0.1 * epoch * batch["x"][:, 0] % 7)
        assert sorted(ids) == view.sampler.selection.ids.tolist()
        selections.append(tuple(view.sampler.selection.ids))
        view.end_epoch()
    assert len(set(selections)) > 1


def test_view_refuses_sampler_arguments_beside_a_sampler():
    data = [{"x": i} for i in range(10)]
    sampler = DynamicPruningSampler(get_policy("rs2", prune_ratio=0.5), 10)
    with pytest.raises(ValueError, match="to the sampler you give"):
        DynamicPruningDataset(data, sampler=sampler, batch_size=2)
