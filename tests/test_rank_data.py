"""Every rank trains on the same data, checked before the first step: a real 2-process `torchrun` (gloo) where each
rank builds its train split with an unseeded `train_test_split` (the transformers image-classification example
without a validation folder) is refused on both ranks; with a seed it trains."""

import json

import pytest

from tests.conftest import run_torchrun


@pytest.mark.slow
def test_ranks_with_different_splits_are_refused_before_the_first_step(tmp_path):
    out = tmp_path / "result"
    proc = run_torchrun("dist_split_worker.py", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    unseeded = [json.loads((tmp_path / f"result.unseeded.rank{r}.json").read_text()) for r in range(2)]
    for result in unseeded:
        assert result["global_step"] == 0
        assert result["error"] is not None and "ranks train on different data" in result["error"]
        assert "train_test_split" in result["error"] and "seed=" in result["error"]
    seeded = [json.loads((tmp_path / f"result.seeded.rank{r}.json").read_text()) for r in range(2)]
    assert all(r["error"] is None and r["global_step"] > 0 for r in seeded)
    assert seeded[0]["num_epochs"] == 1
    # 76 rows over 2 ranks x batch 4: the distributed sampler pads to 80; the metric counts distinct samples
    assert seeded[0]["train_rows"] % 8 != 0
    assert seeded[0]["samples_trained"] == seeded[1]["samples_trained"] == seeded[0]["train_rows"]
