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


def _layers(ax):
    """The data map's one scatter layer: `(collection, offsets, rgba, removed mask)`, removed points being crimson."""
    from matplotlib.colors import to_rgba

    (points,) = ax.collections
    offsets, rgba = np.asarray(points.get_offsets()), np.asarray(points.get_facecolors())
    removed = np.all(np.isclose(rgba[:, :3], to_rgba("crimson")[:3]), axis=1)
    return points, offsets, rgba, removed


def _sorted_rows(a):
    return a[np.lexsort(a.T[::-1])]


def test_data_map_layers_axes_and_colours(record, tmp_path):
    from hf_prune.plots import data_map

    backend = matplotlib.get_backend()
    result = get_strategy("dyn_unc", window=3).select(record, 0.25)
    fig = data_map(record, result)
    ax = fig.axes[0]
    _, offsets, rgba, removed = _layers(ax)
    assert len(offsets) == 300 and removed.sum() == 75
    coords = data_map_coordinates(record)
    # a Dyn-Unc result is drawn against its own windowed score, the one that chose the removed samples
    expected = np.stack([result.scores[result.removed_ids], coords["confidence"][result.removed_ids]], 1)
    np.testing.assert_allclose(_sorted_rows(offsets[removed]), _sorted_rows(expected), rtol=1e-6)
    # kept points are coloured by their number of correct epochs, on the colour bar's scale
    colorbar = fig.axes[1]
    where = {(round(float(x), 5), round(float(y), 5)): i for i, (x, y) in enumerate(offsets)}
    drawn = [
        where[round(float(result.scores[i]), 5), round(float(coords["confidence"][i]), 5)] for i in result.kept_ids
    ]
    viridis = matplotlib.colormaps["viridis"].resampled(record.num_epochs + 1)  # one colour per whole count 0 ... K
    expected_rgb = viridis(coords["correct_epochs"][result.kept_ids].astype(int))[:, :3]
    np.testing.assert_allclose(rgba[drawn, :3], expected_rgb, atol=1e-6)
    assert "Dyn-Unc" in ax.get_xlabel() and "J=3" in ax.get_xlabel() and "mean" in ax.get_ylabel()
    assert "dyn_unc" in ax.get_title() and "x-axis: Dyn-Unc uncertainty U" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("kept (225") and labels[1].startswith("removed (75")
    assert list(colorbar.get_yticks()) == list(range(0, 9))  # whole numbers of correct epochs, 0 ... K
    # x="std" gives the overall std instead, and the title says so
    fig = data_map(record, result, x="std")
    _, offsets, _, removed = _layers(fig.axes[0])
    assert sorted(offsets[removed][:, 0]) == pytest.approx(sorted(coords["variability"][result.removed_ids]))
    assert "x-axis: std of p(y|x) over all epochs" in fig.axes[0].get_title()
    # into a caller's axes, and to a file
    from matplotlib.figure import Figure

    mine = Figure()
    ax = mine.add_subplot()
    assert data_map(record, result, ax=ax, path=tmp_path / "map.png", max_points=100) is mine
    assert len(ax.collections[0].get_offsets()) == 100
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend


def test_data_map_x_axis_is_a_function_of_the_method(record):
    from hf_prune.plots import data_map

    forgetting = get_strategy("forgetting").select(record, 0.25)
    dyn_unc = get_strategy("dyn_unc", window=3).select(record, 0.25)
    assert data_map(record).axes[0].get_title().endswith("x-axis: std of p(y|x) over all epochs")
    assert data_map(record, forgetting).axes[0].get_title().endswith("x-axis: std of p(y|x) over all epochs")
    assert data_map(record, dyn_unc).axes[0].get_title().endswith("x-axis: Dyn-Unc uncertainty U (its score)")
    assert data_map(record, forgetting, x="score").axes[0].get_title().endswith("x-axis: forgetting score")
    with pytest.raises(ValueError, match="pass `result=`"):
        data_map(record, x="score")


def test_removed_points_are_drawn_like_kept_ones_in_random_order(record):
    from hf_prune.plots import data_map

    result = get_strategy("random").select(record, 0.25)
    points, _, rgba, removed = _layers(data_map(record, result).axes[0])
    assert len(set(points.get_sizes())) == 1  # one marker size for kept and removed
    assert np.unique(rgba[:, 3]).size == 1  # one opacity
    # interleaved, not a red layer on top: the removed points are spread through the drawing order
    positions = np.flatnonzero(removed)
    assert positions.size == 75 and positions.min() < 30 and positions.max() > 270
    assert 0.35 < positions.mean() / len(rgba) < 0.65
    # seeded: the same picture twice
    np.testing.assert_array_equal(rgba, _layers(data_map(record, result).axes[0])[2])


def test_legend_colours_match_the_points(record):
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D

    from hf_prune.plots import data_map

    def rgb(colour):
        return tuple(np.round(to_rgba(colour)[:3], 4))

    result = get_strategy("dyn_unc", window=3).select(record, 0.25)
    ax = data_map(record, result).axes[0]
    _, _, rgba, removed = _layers(ax)
    kept_colours = {rgb(c) for c in rgba[~removed]}
    swatches = [rgb(m.get_markerfacecolor()) for m in ax.get_legend().findobj(Line2D) if m.get_marker() == "o"]
    assert swatches[-1] == rgb("crimson") and rgb("crimson") not in kept_colours  # the removed points' colour
    scale = matplotlib.colormaps["viridis"].resampled(record.num_epochs + 1)
    scale_colours = [rgb(scale(k)) for k in range(record.num_epochs + 1)]
    assert kept_colours <= set(scale_colours)  # the kept points use the scale ...
    kept_swatches = swatches[:-1]  # ... and the kept entry shows it, from one end to the other
    assert len(kept_swatches) >= 3 and set(kept_swatches) <= set(scale_colours)
    assert kept_swatches[0] == scale_colours[0] and kept_swatches[-1] == scale_colours[-1]
    # without a `correct` signal the kept points are one colour, and so is their legend entry
    plain = ScoreRecord.from_arrays({"p_target": record.signal("p_target")}, labels=np.arange(300) % 3)
    ax = data_map(plain, get_strategy("dyn_unc", window=3).select(plain, 0.25)).axes[0]
    _, _, rgba, removed = _layers(ax)
    swatches = [rgb(m.get_markerfacecolor()) for m in ax.get_legend().findobj(Line2D) if m.get_marker() == "o"]
    assert {rgb(c) for c in rgba[~removed]} == {swatches[0]}


def test_region_names_sit_outside_the_points(record):
    from hf_prune.plots import data_map

    fig = data_map(record, get_strategy("dyn_unc", window=3).select(record, 0.25))
    ax = fig.axes[0]
    assert not ax.texts  # nothing written over the points
    (side,) = ax.child_axes  # a secondary axis in the right margin carries the region names
    assert [t.get_text() for t in side.get_yticklabels()] == ["easy", "hard /\nmislabeled"]
    fig.draw_without_rendering()
    frame = ax.get_window_extent()
    for label in side.get_yticklabels():
        assert label.get_window_extent().x0 >= frame.x1  # right of the plotting area
    assert ax.get_legend().get_frame().get_alpha() == pytest.approx(0.9)  # the legend has a background


def test_compare_removed_has_one_panel_per_strategy(record, tmp_path):
    from hf_prune.plots import compare_removed

    results = {name: get_strategy(name).select(record, 0.3) for name in ("forgetting", "cartography", "random")}
    fig = compare_removed(record, results, ncols=2)
    panels = [ax for ax in fig.axes if ax.collections]
    assert [ax.get_title().split(":")[0] for ax in panels] == ["forgetting", "cartography", "random"]
    assert all(_layers(ax)[3].sum() == 90 for ax in panels)
    assert fig.get_suptitle().endswith("x-axis: std of p(y|x) over all epochs")  # one shared x-axis, named once
    # x="auto" gives a Dyn-Unc panel its own score: then each panel names its x-axis
    mixed = {"dyn_unc": get_strategy("dyn_unc", window=3).select(record, 0.3), "random": results["random"]}
    fig = compare_removed(record, mixed, x="auto")
    titles = [ax.get_title() for ax in fig.axes if ax.collections]
    assert titles[0].endswith("x-axis: Dyn-Unc uncertainty U (its score)") and titles[1].endswith("over all epochs")
    assert "x-axis" not in fig.get_suptitle()
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
        "dyn_unc: prune_ratio=0.25 (25% removed)",
        "dyn_unc: prune_ratio=0.5 (50% removed)",
    ]
    assert fig.axes[-1].get_xlabel() == "Dyn-Unc uncertainty U (score)"
    from hf_prune import PruneResult

    unscored = PruneResult(kept_ids=[0, 1], scores=np.full(4, np.nan), prune_ratio=0.5, method="x")
    assert score_histogram([unscored]) is None  # nothing finite to draw


# The gallery (hf_prune.gallery): per class, removed and kept examples ordered by score, from the source's images.

DIGIT_NAMES = [f"digit {i}" for i in range(10)]


@pytest.fixture(scope="module")
def digits():
    """120 real 8x8 grey images (sklearn's digits, as uint8) in a `datasets.Dataset` with a `ClassLabel`."""
    from datasets import Array2D, ClassLabel, Dataset, Features
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images[:120] * 16).clip(0, 255).astype(np.uint8)
    labels = data.target[:120].astype(np.int64)
    features = Features({"image": Array2D((8, 8), "uint8"), "label": ClassLabel(names=DIGIT_NAMES)})
    dataset = Dataset.from_dict({"image": list(images), "label": labels.tolist()}, features=features)
    return dataset, images, labels


def _selection(labels, keep="high", ratio=0.25, seed=0, selection="rank"):
    """A result over `labels` with scores rounded to 2 decimals (ties on purpose), removing `ratio` of the rows at the
    end `keep` names."""
    from hf_prune import PruneResult

    scores = np.random.default_rng(seed).random(labels.size).round(2)
    order = np.argsort(scores if keep == "high" else -scores, kind="stable")
    kept = np.sort(order[int(round(ratio * labels.size)) :])
    params = {"keep": keep, "selection": selection}
    return PruneResult(kept_ids=kept, scores=scores, prune_ratio=ratio, method="el2n", params=params, labels=labels)


def _expected_rows(result, max_classes, per_class):
    """The gallery's rows, written out naively: classes by largest share removed (ties by id), then per class the
    removed rows from the first-removed end and the kept rows from the first-kept end, ties by row id."""
    removed_ids, kept_ids = set(result.removed_ids.tolist()), set(result.kept_ids.tolist())
    # keep high: the lowest scores go first; a coverage-centric selection first cuts the other (hard) end
    sign = 1 if (result.params["keep"] == "high") != (result.params["selection"] == "ccs") else -1
    shares = {}
    for c in sorted(set(result.labels.tolist())):
        rows = [i for i in range(result.num_samples) if result.labels[i] == c]
        shares[c] = sum(i in removed_ids for i in rows) / len(rows)
    chosen = sorted(sorted(shares, key=lambda c: (-shares[c], c))[:max_classes])
    out = []
    for c in chosen:
        rows = [i for i in range(result.num_samples) if result.labels[i] == c]
        removed = sorted((i for i in rows if i in removed_ids), key=lambda i: (sign * result.scores[i], i))
        kept = sorted((i for i in rows if i in kept_ids), key=lambda i: (-sign * result.scores[i], i))
        out.append((c, removed[:per_class], kept[:per_class]))
    return out


@pytest.mark.parametrize("keep, selection", [("high", "rank"), ("low", "rank"), ("high", "ccs")])
def test_gallery_rows_follow_the_scores_from_the_end_removed_first(digits, keep, selection):
    from hf_prune.gallery import gallery_rows

    _, _, labels = digits
    result = _selection(labels, keep=keep, ratio=0.4, selection=selection)
    rows = gallery_rows(result, max_classes=4, per_class=5)
    got = [(row.label, row.removed.tolist(), row.kept.tolist()) for row in rows]
    assert got == _expected_rows(result, 4, 5)
    assert len(rows) == 4 and all(0 < len(r.removed) <= 5 and 0 < len(r.kept) <= 5 for r in rows)
    first_removed = min if (keep == "high") != (selection == "ccs") else max  # the end the method removes first
    for row in rows:
        class_removed = np.intersect1d(result.removed_ids, np.flatnonzero(labels == row.label))
        assert result.scores[row.removed[0]] == first_removed(result.scores[class_removed])
    for row in rows:
        assert row.num_scored == int((labels == row.label).sum())
        assert row.num_removed == int(np.isin(result.removed_ids, np.flatnonzero(labels == row.label)).sum())
    # without labels: one row of all classes
    result.labels = None
    (row,) = gallery_rows(result, per_class=5)
    assert row.label == -1 and row.num_scored == labels.size and row.num_removed == result.removed_ids.size
    unlabelled = _selection(np.zeros_like(labels), keep=keep, ratio=0.4, selection=selection)
    assert row.removed.tolist() == _expected_rows(unlabelled, 1, 5)[0][1]


def test_gallery_grid_captions_and_pictures(digits, tmp_path):
    from PIL import Image

    from hf_prune.gallery import removed_gallery

    dataset, images, labels = digits
    result = _selection(labels)
    fig = removed_gallery(result, dataset, tmp_path / "gallery.png", max_classes=3, per_class=4)
    expected = _expected_rows(result, 3, 4)
    removed_block, kept_block = fig.subfigs
    assert removed_block.get_suptitle() == "removed: lowest score first"
    assert kept_block.get_suptitle() == "kept: highest score first"
    assert "el2n: 25% removed" in fig.get_suptitle() and "3 of 10 classes" in fig.get_suptitle()
    for block, position in ((removed_block, 1), (kept_block, 2)):
        grid = np.array(block.axes, dtype=object).reshape(3, 4)  # rows = classes, columns = examples
        for r, row in enumerate(expected):
            ids = row[position]
            for c, ax in enumerate(grid[r]):
                if c < len(ids):  # the picture of that row, captioned with its score and row id
                    np.testing.assert_array_equal(ax.images[0].get_array(), images[ids[c]])
                    assert ax.get_title() == f"{result.scores[ids[c]]:.3g}  #{ids[c]}"
                else:
                    assert not ax.images
    first_column = np.array(removed_block.axes, dtype=object).reshape(3, 4)[:, 0]
    for ax, (c, _, _) in zip(first_column, expected):  # each row names its class and how much of it was removed
        removed = np.isin(result.removed_ids, np.flatnonzero(labels == c)).sum()
        assert ax.get_ylabel() == f"{DIGIT_NAMES[c]}\n{removed} of {(labels == c).sum()}\nremoved"
    with Image.open(tmp_path / "gallery.png") as png:
        width, height = png.size
    assert (width, height) == tuple(int(v * fig.dpi) for v in fig.get_size_inches())
    # deterministic: the same file twice
    removed_gallery(result, dataset, tmp_path / "again.png", max_classes=3, per_class=4)
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "gallery.png").read_bytes()


def test_gallery_shows_rgb_pil_tensors_and_undecoded_images(digits):
    import io

    import torch
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage
    from sklearn.datasets import load_sample_images

    from hf_prune.gallery import THUMBNAIL_SIDE, removed_gallery

    _, images, labels = digits
    result = _selection(labels)
    photo = load_sample_images().images[1]  # a real 427x640 RGB photo, shipped with sklearn
    tiles = [PILImage.fromarray(photo[(7 * i) % 200 :][:200, (11 * i) % 400 :][:, :200]) for i in range(labels.size)]

    def pictures(fig):
        return [ax.images[0].get_array() for sub in fig.subfigs for ax in sub.axes if ax.images]

    # RGB PIL images of an `Image` column, shrunk to thumbnails
    features = Features({"image": Image(), "label": ClassLabel(names=DIGIT_NAMES)})
    rgb = Dataset.from_dict({"image": tiles, "label": labels.tolist()}, features=features)
    drawn = pictures(removed_gallery(result, rgb, max_classes=2, per_class=2))
    assert len(drawn) == 8 and all(p.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3) for p in drawn)
    # the same images undecoded (`Image(decode=False)`: bytes), under another column name, found by their feature
    encoded = []
    for tile in tiles:
        buffer = io.BytesIO()
        tile.save(buffer, format="PNG")
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    raw = Dataset.from_dict({"jpg": encoded, "label": labels.tolist()},
                            features=Features({"jpg": Image(decode=False), "label": ClassLabel(names=DIGIT_NAMES)}))  # fmt: skip
    again = pictures(removed_gallery(result, raw, max_classes=2, per_class=2))
    assert all(np.array_equal(a, b) for a, b in zip(drawn, again))
    # normalised channels-first float tensors (`pixel_values`) in a dict of columns: stretched to 0-255 per image
    pixel_values = (torch.from_numpy(images).float()[:, None].repeat(1, 3, 1, 1) - 100.0) / 50.0
    drawn = pictures(removed_gallery(result, {"pixel_values": pixel_values, "label": labels}, max_classes=2))
    assert all(p.shape == (8, 8, 3) and p.dtype == np.uint8 and p.min() == 0 and p.max() == 255 for p in drawn)
    # a plain list of grey PIL images: labels from the result
    grey = [PILImage.fromarray(image) for image in images]
    drawn = pictures(removed_gallery(result, grey, max_classes=2))
    assert all(p.shape == (8, 8) for p in drawn)


def test_gallery_is_bounded_and_decodes_only_what_it_shows():
    from hf_prune import PruneResult
    from hf_prune.gallery import removed_gallery

    class Images:
        """1,000 classes of 5 rows; records which rows are read."""

        def __init__(self, n):
            self.n, self.read = n, []

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            self.read.append(i)
            return np.full((32, 32), i % 256, dtype=np.uint8)

    n = 5_000
    labels = np.arange(n) % 1000
    scores = np.random.default_rng(1).random(n)
    result = PruneResult(kept_ids=np.sort(np.argsort(scores)[n // 4 :]), scores=scores, prune_ratio=0.25,
                         method="el2n", params={"keep": "high"}, labels=labels)  # fmt: skip
    images = Images(n)
    fig = removed_gallery(result, {"image": images, "label": labels}, max_classes=10, per_class=6)
    shown = {int(ax.get_title().split("#")[1]) for sub in fig.subfigs for ax in sub.axes if ax.images}
    assert 0 < len(shown) <= 2 * 10 * 6 and sorted(images.read) == sorted(shown)  # nothing else decoded
    assert len(fig.subfigs[0].axes) == 10 * 6  # 10 classes: those with the largest share removed
    assert "10 of 1,000 classes (the largest shares removed)" in fig.get_suptitle()
    removed_share = np.bincount(labels[result.removed_ids], minlength=1000) / 5
    chosen = sorted(int(ax.get_ylabel().split("\n")[0].split()[1]) for ax in fig.subfigs[0].axes[::6])
    assert all(removed_share[c] >= np.sort(removed_share)[-10] for c in chosen)
    width, height = fig.get_size_inches() * fig.dpi
    assert width < 1400 and height < 1200  # a modest picture, whatever the number of classes


def test_gallery_errors_name_the_fix(digits):
    from hf_prune.gallery import removed_gallery

    dataset, _, labels = digits
    result = _selection(labels)
    with pytest.raises(ValueError, match=r"has 100 rows but the result indexes 120.*to_source_rows"):
        removed_gallery(result, dataset.select(range(100)))
    with pytest.raises(ValueError, match=r"no image column among \['label'\].*pass `image_column=`"):
        removed_gallery(result, dataset.remove_columns("image"))
    with pytest.raises(ValueError, match=r"image_column='photo' is not a column"):
        removed_gallery(result, dataset, image_column="photo")
