"""Recording completeness in a real 2-process `torchrun` on CPU (gloo): every sample a rank trained on in an epoch is
in the record exactly once, with uneven last batches, drop_last, gradient accumulation > 1 and the padding
duplicates of the distributed sampler."""

import json

import pytest

from tests.conftest import run_torchrun


def record_under_torchrun(tmp_path, n, batch, accumulation, drop_last):
    out = tmp_path / f"result_{n}_{batch}_{accumulation}_{int(drop_last)}.json"
    proc = run_torchrun("dist_record_worker.py", str(out), str(n), str(batch), str(accumulation),
                        "1" if drop_last else "0", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    "n,batch,accumulation,drop_last",
    [(101, 4, 3, False), (101, 4, 2, True)],
    ids=["uneven-accum3", "drop_last-accum2"],
)
def test_every_trained_sample_recorded_once(tmp_path, n, batch, accumulation, drop_last):
    result = record_under_torchrun(tmp_path, n, batch, accumulation, drop_last)
    assert result["world_size"] == 2 and result["num_epochs"] == 2
    for epoch in result["epochs"]:
        assert epoch["recorded"] == epoch["trained"]
        if drop_last:
            assert len(epoch["recorded"]) < n
        else:
            assert epoch["recorded"] == list(range(n))  # 101 = 2 x 4 x 12 + 5: padded duplicates de-duplicated


@pytest.mark.slow
def test_epoch_rows_stream_to_the_main_process_in_bounded_ranges(tmp_path):
    """Issue 10: `stream_rows_to_main` with skewed, overlapping ranks and a 4 KB budget per range delivers every
    rank's rows, in id order, range by range (both ranks agree on the ranges), to rank 0 only; and an error on one
    rank inside a collective section is raised on both."""
    out = tmp_path / "stream"
    proc = run_torchrun("dist_faults_worker.py", "stream", str(out), cwd=tmp_path, timeout=300, master_port=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    rank0, rank1 = (json.loads((tmp_path / f"stream.rank{r}.json").read_text()) for r in range(2))
    assert rank0["complete"] is True
    ranges = rank0["ranges"]
    assert ranges == rank1["ranges"] and ranges[0][0] == 0 and ranges[-1][1] == 5000 and len(ranges) > 5
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])) and all(b - a <= 700 for a, b in ranges)
    assert rank0["raised"] == "ValueError: bad input on rank 0"
    assert rank1["raised"].startswith("CollectiveError: the test section failed on another process (rank 0: ValueError")
