"""Recording completeness in a real 2-process `torchrun` on CPU (gloo): every sample a rank trained on in an epoch is
in the record exactly once, with uneven last batches, drop_last, gradient accumulation > 1 and the padding
duplicates of the distributed sampler."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def run_torchrun(tmp_path, n, batch, accumulation, drop_last):
    out = tmp_path / f"result_{n}_{batch}_{accumulation}_{int(drop_last)}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0",
           "--rdzv_backend", "c10d", "--rdzv_endpoint", "127.0.0.1:0",
           str(REPO_ROOT / "tests" / "dist_record_worker.py"), str(out), str(n), str(batch), str(accumulation),
           "1" if drop_last else "0"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    "n,batch,accumulation,drop_last",
    [(101, 4, 3, False), (101, 4, 2, True)],
    ids=["uneven-accum3", "drop_last-accum2"],
)
def test_every_trained_sample_recorded_once(tmp_path, n, batch, accumulation, drop_last):
    result = run_torchrun(tmp_path, n, batch, accumulation, drop_last)
    assert result["world_size"] == 2 and result["num_epochs"] == 2
    for epoch in result["epochs"]:
        assert epoch["recorded"] == epoch["trained"]
        if drop_last:
            assert len(epoch["recorded"]) < n
        else:
            assert epoch["recorded"] == list(range(n))  # 101 = 2 x 4 x 12 + 5: padded duplicates de-duplicated
