"""Data maps: the plotted coordinates are the paper's (std and mean of p_target over epochs, # correct epochs), the
removed samples are overlaid, PNGs are written. (That core modules never import matplotlib is checked in
test_cli.py, in the same subprocess as the console entry point.)"""

import statistics

import numpy as np
import pytest

from hf_prune import ScoreRecord, get_strategy


pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def record():
    rng = np.random.default_rng(0)
    p = rng.random((8, 300)).astype(np.float32)
    p[3, :7] = np.nan  # a few unseen
    correct = (p > 0.5).astype(np.float32)
    correct[np.isnan(p)] = np.nan
    return ScoreRecord.from_arrays({"p_target": p, "correct": correct}, labels=np.arange(300) % 3)


def test_coordinates_match_naive(record):
    from hf_prune.plots import map_coordinates

    coords = map_coordinates(record)
    p, c = record.signal("p_target"), record.signal("correct")
    for i in (0, 5, 100, 299):
        seen = [float(v) for v in p[:, i] if not np.isnan(v)]
        assert coords["mean"][i] == pytest.approx(statistics.fmean(seen))
        assert coords["std"][i] == pytest.approx(statistics.pstdev(seen))
        assert coords["correct_epochs"][i] == sum(1 for v in c[:, i] if v == 1)


def test_data_map_draws_everything_and_overlays_removed(record, tmp_path):
    from hf_prune.plots import data_map

    result = get_strategy("dyn_unc", window=3).select(record, 0.25)
    fig = data_map(record, result)
    ax = fig.axes[0]
    background, removed = ax.collections[0], ax.collections[1]
    assert len(background.get_offsets()) == 300 and len(removed.get_offsets()) == 75
    from hf_prune.plots import map_coordinates

    coords = map_coordinates(record)
    expected = np.stack([coords["std"][result.removed_ids], coords["mean"][result.removed_ids]], 1)
    np.testing.assert_allclose(np.asarray(removed.get_offsets()), expected, rtol=1e-6)
    np.testing.assert_allclose(background.get_array(), coords["correct_epochs"])  # colour = # correct epochs
    assert "std" in ax.get_xlabel() and "mean" in ax.get_ylabel() and "dyn_unc" in ax.get_title()
    path = data_map(record, result, path=tmp_path / "map.png", max_points=100)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_removed_has_one_panel_per_strategy(record, tmp_path):
    from hf_prune.plots import compare_removed

    results = {name: get_strategy(name).select(record, 0.3) for name in ("forgetting", "cartography", "random")}
    fig = compare_removed(record, results, ncols=2)
    panels = [ax for ax in fig.axes if ax.collections]
    assert [ax.get_title().split(":")[0] for ax in panels] == ["forgetting", "cartography", "random"]
    assert all(len(ax.collections[1].get_offsets()) == 90 for ax in panels)
    path = compare_removed(record, list(results.values()), path=tmp_path / "cmp.png")
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="indexes"):
        compare_removed(
            record, {"x": get_strategy("random").select(ScoreRecord.from_arrays({"p": np.zeros((2, 5))}), 0.2)}
        )
