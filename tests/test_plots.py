"""Plots: the data map's coordinates are the paper's (mean of p_target over epochs; its std, or the method's own
score; # correct epochs as a discrete colour), kept and removed samples are separate labelled layers, every function
draws into a given `ax`, returns the figure and writes PNGs, and nothing switches matplotlib's global backend.
(That the CLI does not import matplotlib is checked in test_cli.py.)"""

import statistics

import numpy as np
import pytest

from hf_prune import ScoreRecord, get_strategy
from hf_prune.stats import data_map_coordinates


matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def record():
    rng = np.random.default_rng(0)
    p = rng.random((8, 300)).astype(np.float32)
    p[3, :7] = np.nan  # a few unseen
    correct = (p > 0.5).astype(np.float32)
    correct[np.isnan(p)] = np.nan
    return ScoreRecord.from_arrays({"p_target": p, "correct": correct}, labels=np.arange(300) % 3)


def test_coordinates_match_naive(record):
    coords = data_map_coordinates(record)
    p, c = record.signal("p_target"), record.signal("correct")
    for i in (0, 5, 100, 299):
        seen = [float(v) for v in p[:, i] if not np.isnan(v)]
        right = [float(v) for v in c[:, i] if not np.isnan(v)]
        assert coords["confidence"][i] == pytest.approx(statistics.fmean(seen))
        assert coords["variability"][i] == pytest.approx(statistics.pstdev(seen))
        assert coords["correct_epochs"][i] == sum(right)
        assert coords["correctness"][i] == pytest.approx(statistics.fmean(right))


def test_data_map_layers_axes_and_colours(record, tmp_path):
    from hf_prune.plots import data_map

    backend = matplotlib.get_backend()
    result = get_strategy("dyn_unc", window=3).select(record, 0.25)
    fig = data_map(record, result)
    ax = fig.axes[0]
    kept, removed = ax.collections[0], ax.collections[1]
    assert len(kept.get_offsets()) == 225 and len(removed.get_offsets()) == 75
    coords = data_map_coordinates(record)
    # a Dyn-Unc result is drawn against its own windowed score, the one that chose the removed samples
    expected = np.stack([result.scores[result.removed_ids], coords["confidence"][result.removed_ids]], 1)
    np.testing.assert_allclose(np.asarray(removed.get_offsets()), expected, rtol=1e-6)
    np.testing.assert_allclose(kept.get_array(), coords["correct_epochs"][result.kept_ids])
    assert "Dyn-Unc" in ax.get_xlabel() and "mean" in ax.get_ylabel() and "dyn_unc" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("kept (225") and labels[1].startswith("removed (75")
    colorbar = fig.axes[1]
    assert list(colorbar.get_yticks()) == list(range(0, 9))  # whole numbers of correct epochs, 0 ... K
    # x="std" gives the overall std instead
    fig = data_map(record, result, x="std")
    offsets = np.asarray(fig.axes[0].collections[1].get_offsets())
    np.testing.assert_allclose(offsets[:, 0], coords["variability"][result.removed_ids], rtol=1e-6)
    # into a caller's axes, and to a file
    from matplotlib.figure import Figure

    mine = Figure()
    ax = mine.add_subplot()
    assert data_map(record, result, ax=ax, path=tmp_path / "map.png", max_points=100) is mine
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend


def test_compare_removed_has_one_panel_per_strategy(record, tmp_path):
    from hf_prune.plots import compare_removed

    results = {name: get_strategy(name).select(record, 0.3) for name in ("forgetting", "cartography", "random")}
    fig = compare_removed(record, results, ncols=2)
    panels = [ax for ax in fig.axes if ax.collections]
    assert [ax.get_title().split(":")[0] for ax in panels] == ["forgetting", "cartography", "random"]
    assert all(len(ax.collections[1].get_offsets()) == 90 for ax in panels)
    compare_removed(record, list(results.values()), path=tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="indexes"):
        compare_removed(
            record, {"x": get_strategy("random").select(ScoreRecord.from_arrays({"p": np.zeros((2, 5))}), 0.2)}
        )


def test_selection_histogram_bins_and_bands_follow_whole_counts(tmp_path):
    from hf_prune.plots import selection_histogram

    counts = np.array([0, 0, 1, 2, 5, 9, 10, 10, 10, 3])
    fig = selection_histogram((counts, 10), tmp_path / "hist.png")
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_width() == pytest.approx(1.0)]
    assert [round(b.get_x() + 0.5) for b in bars] == list(range(11))  # one bar per whole count, centred on it
    bands = [p for p in ax.patches if p not in bars]
    spans = sorted((round(b.get_x(), 2), round(b.get_x() + b.get_width(), 2)) for b in bands)
    assert spans == [(-0.5, 1.5), (1.5, 8.5), (8.5, 10.5)]  # never <= 1, always >= 9
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["never (30%)", "sometimes (30%)", "always (40%)"]
    assert (tmp_path / "hist.png").stat().st_size > 1000


def test_score_histogram_one_panel_per_ratio(record):
    from hf_prune.plots import score_histogram

    strategy = get_strategy("dyn_unc", window=3)
    fig = score_histogram([strategy.select(record, 0.25), strategy.select(record, 0.5)])
    assert [ax.get_title() for ax in fig.axes] == [
        "prune_ratio=0.25 (fraction removed)",
        "prune_ratio=0.5 (fraction removed)",
    ]
    from hf_prune import PruneResult

    unscored = PruneResult(kept_ids=[0, 1], scores=np.full(4, np.nan), prune_ratio=0.5, method="x")
    assert score_histogram([unscored]) is None  # nothing finite to draw
