"""Dynamic pruning in a real 2-process `torchrun` on CPU (gloo), 101 samples, batch 4, accumulation 2: both ranks
hold the same selection (and score table, and InfoBatch weights) in every epoch, every selected sample is trained on
exactly once per epoch across the ranks (fixed-length policies), InfoBatch's epochs vary in length with the schedule
ending at the last step, and the record's `selected` rows match."""

import json
import math
from collections import Counter

import pytest

from tests.conftest import run_torchrun


@pytest.fixture(scope="module")
def torchrun_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist_dynamic")
    out = tmp / "result"
    proc = run_torchrun("dist_dynamic_worker.py", str(out), cwd=tmp, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return {
        name: [json.loads((tmp / f"result.{name}.rank{r}.json").read_text()) for r in range(2)]
        for name in ("ucb", "infobatch", "view")
    }


def per_epoch_ids(rank_result):
    out = {}
    for epoch, ids in rank_result["steps"]:
        out.setdefault(epoch, []).extend(ids)
    return out


@pytest.mark.slow
def test_ranks_agree_and_each_selected_sample_is_used_once(torchrun_results):
    r0, r1 = torchrun_results["ucb"]
    assert r0["world_size"] == r1["world_size"] == 2
    # k = 101 - 50 = 51, rounded up to a multiple of 2 x 4: 56 every epoch, 7 batches per rank, 4 optimizer steps
    assert r0["len_sampler"] == r1["len_sampler"] == 56
    assert r0["global_step"] == 3 * math.ceil(7 / 2)
    assert r0["selections"] == r1["selections"] and len(r0["selections"]) == 3
    assert r0["policy_scores"] == r1["policy_scores"]  # same table from gathered scoring-pass losses
    ids0, ids1 = per_epoch_ids(r0), per_epoch_ids(r1)
    for epoch in range(3):
        selection = r0["selections"][str(epoch)]
        assert len(selection) == 56
        used = Counter(ids0[epoch] + ids1[epoch])
        assert sorted(used) == selection
        assert set(used.values()) == {1}  # exactly once across the two ranks
        assert not set(ids0[epoch]) & set(ids1[epoch])
        # the record's `selected` row is the selection mask
        row = r0["record_selected"][epoch]
        assert [i for i, v in enumerate(row) if v == 1.0] == selection
        assert sum(v == 0.0 for v in row) == 101 - 56
    assert r0["selections"]["0"] != r0["selections"]["2"]  # the selection really moves
    assert all(t["scoring_s"] > 0 for t in r0["timing"])  # the scoring pass was timed every epoch


@pytest.mark.slow
def test_infobatch_varying_epochs_agree_across_ranks_and_use_each_selected_sample_once(torchrun_results):
    r0, r1 = torchrun_results["infobatch"]
    assert r0["selections"] == r1["selections"] and r0["orders"] == r1["orders"]
    assert r0["weights"] == r1["weights"] and list(r0["weights"]) == ["1"]  # weighted only in the pruned epoch
    assert r0["policy_scores"] == r1["policy_scores"]  # same table from gathered training losses
    lengths = [len(r0["selections"][str(e)]) for e in range(3)]
    # epoch 0 full, epoch 1 pruned (r = 0.5 of the below-mean samples), epoch 2 = floor(0.875 * 3): annealing, full;
    # every epoch fitted to whole distributed batches (2 x 4): the full epochs 101 -> 96, 5 samples sit them out
    assert lengths[0] == lengths[2] == 96 and lengths[1] < 96 and all(k % 8 == 0 for k in lengths)
    ids0, ids1 = per_epoch_ids(r0), per_epoch_ids(r1)
    steps = 0
    for epoch in range(3):
        selection, order, k = r0["selections"][str(epoch)], r0["orders"][str(epoch)], lengths[epoch]
        assert sorted(order) == selection
        used = Counter(ids0[epoch] + ids1[epoch])
        assert sorted(used) == selection and set(used.values()) == {1}  # each selected sample once, nothing padded
        seen = r0["record_loss_seen"][epoch]
        assert [i for i, s in enumerate(seen) if s] == selection  # recorded once each
        per_rank = k // 8
        assert r0["epoch_log"][str(epoch)] == {"start_step": steps, "steps": math.ceil(per_rank / 2)}
        steps += math.ceil(per_rank / 2)
    assert r0["global_step"] == r0["max_steps"] == steps  # max_steps refined to the steps taken
    assert r0["last_lr"] == r1["last_lr"] == 0.0  # the linear schedule ends at its end value at the last step


@pytest.mark.slow
def test_iterable_view_under_accelerate_gives_each_selected_sample_once(torchrun_results):
    v0, v1 = torchrun_results["view"]
    orders = []
    for epoch in ("0", "1", "2"):
        assert v0[epoch]["order"] == v1[epoch]["order"]  # same stream on both ranks
        assert v0[epoch]["scores"] == v1[epoch]["scores"]  # end_epoch gathered both ranks' losses
        assert v0[epoch]["len"] == 56 == len(v0[epoch]["order"])
        used = Counter(v0[epoch]["ids"] + v1[epoch]["ids"])
        assert sorted(used) == sorted(v0[epoch]["order"]) and set(used.values()) == {1}
        # accelerate's IterableDatasetShard: rank r takes items [4r, 4r + 4) of every chunk of 8
        order = v0[epoch]["order"]
        assert v0[epoch]["ids"] == [i for c in range(0, 56, 8) for i in order[c : c + 4]]
        orders.append(order)
    assert orders[0] != orders[1]
