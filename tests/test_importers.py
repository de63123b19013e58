"""Importers of published artefacts (issue 19): the Dyn-Unc DALI list, Feldman & Zhang's `.npz`, a per-example score
CSV and a CCS score file, resolved onto an ImageNet-shaped image folder and onto the same rows as a Hub-style parquet
dataset in another order; strict parsing of malformed variants; the round trip through `save` / `PruneResult.load`
and through the loopback Hub; the `hf-prune import` command; the benchmark at a small size."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image, load_dataset
from PIL import Image as PILImage

from hf_prune import PruneResult
from hf_prune.export import load_pruned, save_results
from hf_prune.importers import (
    ArtefactFormatError,
    LabelMismatchError,
    ResolutionError,
    imagefolder_order,
    import_ccs_scores,
    import_dyn_unc_list,
    import_memorization,
    import_score_csv,
    publish_options,
    read_ccs_scores,
    read_dali_list,
    read_memorization_npz,
    read_score_csv,
    read_source_files,
    select_imported,
)
from hf_prune.importers.command import add_parser
from hf_prune.selection import select_kept_ids
from tests.conftest import REPO_ROOT


try:
    from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (fixture registration)
except ImportError:  # tests/ on sys.path but not the project root
    from hub_fixtures import hub, run_with_hub  # noqa: F401


# Real ImageNet synsets and class names; file numbers chosen so that sorting by the original names
# (`n01440764_1.JPEG` < `n01440764_10.JPEG`) and by the Hub's (`n01440764_10_n01440764.JPEG` <
# `n01440764_1_n01440764.JPEG`) disagree.
CLASSES = {
    "n01440764": "tench, Tinca tinca",
    "n01443537": "goldfish, Carassius auratus",
    "n01484850": "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",
}
NUMBERS = {"n01440764": [10026, 9, 1, 10, 123, 2007], "n01443537": [10007, 1, 10, 25, 9, 88],
           "n01484850": [10034, 1, 10, 2, 300]}  # fmt: skip
SYNSETS = sorted(CLASSES)


class ImageNet:
    """The fixture: an ImageNet-shaped train folder and the same rows as datasets in other orders."""

    def __init__(self, root):
        self.root = root / "train"
        # ImageFolder order: synsets sorted, then file names sorted
        self.files = [(s, f) for s in SYNSETS for f in sorted(f"{s}_{k}.JPEG" for k in NUMBERS[s])]
        self.names = [f for _, f in self.files]
        self.labels = np.array([SYNSETS.index(s) for s, _ in self.files])
        rng = np.random.default_rng(0)
        jpegs = {}
        for s, f in self.files:
            (self.root / s).mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            PILImage.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, format="JPEG")
            (self.root / s / f).write_bytes(buf.getvalue())
            jpegs[f] = buf.getvalue()
        self.folder = load_dataset("imagefolder", data_dir=str(self.root), split="train")
        # The Hub's ILSVRC/imagenet-1k layout: `<name>_<synset>.JPEG` in `image.path`, class names that are
        # descriptions (ids in sorted-synset order), rows in another order; through local parquet.
        order = rng.permutation(len(self.files))
        hub = Dataset.from_dict(
            {"image": [{"bytes": jpegs[self.names[i]], "path": f"{self.names[i][:-5]}_{self.files[i][0]}.JPEG"}
                       for i in order],
             "label": [int(self.labels[i]) for i in order]},
            features=Features({"image": Image(), "label": ClassLabel(names=[CLASSES[s] for s in SYNSETS])}),
        )  # fmt: skip
        hub.to_parquet(str(root / "train-00000-of-00001.parquet"))
        self.hub = load_dataset("parquet", data_files=str(root / "train-00000-of-00001.parquet"), split="train")
        self.hub_order = order

    def kept_names(self, dataset, result) -> list[str]:
        """The original ImageNet names of the rows `result` keeps, read independently of the importers."""
        view = dataset.select(result.kept_ids)
        if "file_name" in view.column_names:
            paths = view["file_name"]
        else:
            paths = [x["path"] for x in view.cast_column("image", Image(decode=False))["image"]]
        names = [os.path.basename(p) for p in paths]
        return sorted(n if n.count("_") == 1 else n.rsplit("_", 1)[0] + ".JPEG" for n in names)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    return ImageNet(tmp_path_factory.mktemp("imagenet"))


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_dali(path, imagenet, keep):
    """The Dyn-Unc layout: `/<synset>/<file> <label>` per kept file, in the order of the full file list."""
    path.write_text("".join(f"/{s}/{f} {imagenet.labels[i]}\n" for i, (s, f) in enumerate(imagenet.files) if keep[i]))
    return path


def top_names(imagenet, scores, ratio, keep="high", class_balanced=False) -> list[str]:
    """Expected kept files: the selection rule applied in ImageFolder order, mapped to names."""
    kept = select_kept_ids(scores, ratio, keep=keep, labels=imagenet.labels, class_balanced=class_balanced)
    return sorted(imagenet.names[i] for i in kept)


# ---------------------------------------------------------------------------------------------------------- DALI


def test_dali_list_selects_exactly_the_listed_files_on_both_orderings(imagenet, tmp_path):
    keep = np.arange(len(imagenet.files)) % 3 != 1
    path = write_dali(tmp_path / "IN1K_75_file_list.txt", imagenet, keep)
    expected = sorted(np.array(imagenet.names)[keep])
    for source in (imagenet.folder, imagenet.hub):
        result = import_dyn_unc_list(path, source)
        assert imagenet.kept_names(source, result) == expected
        assert result.method == "dyn_unc" and result.num_samples == len(imagenet.files)
        assert result.prune_ratio == round(1 - keep.sum() / keep.size, 4)
        imported = result.provenance["imported"]
        assert imported["artefact"]["sha256"] == sha256(path) and imported["license"] == "mit"
        assert imported["resolution"]["missing"] == 0 and "agree on all" in imported["resolution"]["labels"]["result"]
        np.testing.assert_array_equal(result.scores[result.kept_ids], 1.0)
    folder_result = import_dyn_unc_list(path, imagenet.folder)
    assert "ClassLabel names" in " ".join(folder_result.provenance["imported"]["resolution"]["labels"]["compared"])
    hub_result = import_dyn_unc_list(path, imagenet.hub)
    assert "label ids" in " ".join(hub_result.provenance["imported"]["resolution"]["labels"]["compared"])


def test_a_view_in_another_order_and_a_file_name_column_resolve(imagenet, tmp_path):
    keep = np.arange(len(imagenet.files)) % 2 == 0
    path = write_dali(tmp_path / "list.txt", imagenet, keep)
    shuffled = imagenet.folder.shuffle(seed=3)  # an indices mapping, not a copy
    assert imagenet.kept_names(shuffled, import_dyn_unc_list(path, shuffled)) == sorted(np.array(imagenet.names)[keep])
    plain = Dataset.from_dict({"file_name": [f"train/{s}/{f}" for s, f in imagenet.files][::-1],
                               "label": list(imagenet.labels[::-1])})  # fmt: skip
    result = import_dyn_unc_list(path, plain)
    assert imagenet.kept_names(plain, result) == sorted(np.array(imagenet.names)[keep])
    assert result.provenance["imported"]["resolution"]["source_column"] == "file_name"


DALI_MALFORMED = [
    ("n01440764/n01440764_1.JPEG 0\n", "line 1: expected '/<class folder>/<file> <label>'"),
    ("/n01440764/n01440764_1.JPEG\n", "line 1: expected"),
    ("/n01440764/n01440764_1.JPEG 0\n/n01440764/n01440764_9.JPEG -1\n", "line 2: expected"),
    ("/n01440764/n01440764_1.JPEG x\n", "line 1: expected"),
    ("/n01440764/n01440764_1.JPEG 0 7\n", "line 1: expected"),
    ("/n01440764/n01440764_1.JPEG\t0\n", "line 1: expected"),
    ("/n01440764/n01440764_1.JPEG 0\n\n/n01443537/n01443537_1.JPEG 1\n", "line 2: expected"),
    ("/train/n01440764/n01440764_1.JPEG 0\n", "line 1: expected"),
    ("/n01440764/n01440764_1.JPEG 01\n", "line 1: expected"),
    ("", "line 1: expected at least one entry"),
    ("/n01440764/n01440764_1.JPEG 1\n/n01443537/n01443537_1.JPEG 0\n", "line 1: expected labels in sorted class"),
    ("/n01440764/n01440764_1.JPEG 0\n/n01440764/n01440764_9.JPEG 1\n", "line 2: expected one label per class folder"),
    ("/n01440764/n01440764_1.JPEG 0\n/n01443537/n01443537_1.JPEG 0\n", "line 2: expected one class folder per label"),
]




def test_dali_list_undecodable_bytes_and_repeated_files(imagenet, tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"/n01440764/n01440764_1.JPEG 0\n/n01440764/n01440764_\xff9.JPEG 0\n")
    with pytest.raises(ArtefactFormatError, match="line 2: expected UTF-8 text"):
        read_dali_list(path)
    path.write_text("/n01440764/n01440764_1.JPEG 0\n/n01440764/n01440764_9.JPEG 0\n/n01440764/n01440764_1.JPEG 0\n")
    read_dali_list(path)  # well-formed lines; the repeat is found when the files are matched
    with pytest.raises(ArtefactFormatError, match=r"line 3: expected each file once; got 'n01440764_1.JPEG' again "
                       r"\(line 1"):  # fmt: skip
        import_dyn_unc_list(path, imagenet.folder)
    path.write_text("/n01440764/n01440764_1.JPEG 0\r\n/n01440764/n01440764_9.JPEG 0\r\n")  # Windows line ends: fine
    assert len(read_dali_list(path)) == 2


def test_files_missing_from_the_source_are_reported_exactly(imagenet, tmp_path):
    keep = np.ones(len(imagenet.files), dtype=bool)
    keep[::4] = False
    path = write_dali(tmp_path / "list.txt", imagenet, keep)
    with open(path, "a") as f:
        f.write("/n01484850/n01484850_77777.JPEG 2\n")
    with pytest.raises(ResolutionError, match=r"1 of the artefact's .* files are not in the source.*"
                       r"'n01484850/n01484850_77777.JPEG' \(line \d+\).*allow_missing") as err:  # fmt: skip
        import_dyn_unc_list(path, imagenet.folder)
    assert err.value.missing == [(int(keep.sum()) + 1, "n01484850/n01484850_77777.JPEG")]
    result = import_dyn_unc_list(path, imagenet.folder, allow_missing=True)
    assert imagenet.kept_names(imagenet.folder, result) == sorted(np.array(imagenet.names)[keep])
    resolution = result.provenance["imported"]["resolution"]
    assert resolution["missing"] == 1 and resolution["missing_examples"][0][1].endswith("77777.JPEG")


def test_labels_that_disagree_with_the_source_are_refused(imagenet, tmp_path):
    path = tmp_path / "list.txt"
    # a file listed under another class folder than the one it is in
    path.write_text("/n01440764/n01440764_1.JPEG 0\n/n01440764/n01443537_9.JPEG 0\n/n01443537/n01443537_1.JPEG 1\n")
    with pytest.raises(LabelMismatchError, match=r"n01443537_9.JPEG \(line 2.*class folder is 'n01440764' in the "
                       r"artefact but 'n01443537' in the source"):  # fmt: skip
        import_dyn_unc_list(path, imagenet.folder)
    # labels with a gap (the list's training folder had one more class, as ImageNet-21K's empty n04399382): each
    # label still names its folder's synset, which is what an image folder's synset ClassLabel names are compared
    # with; a source whose class names are not synsets can only be compared by id, and refuses it
    path.write_text("/n01440764/n01440764_1.JPEG 0\n/n01443537/n01443537_1.JPEG 2\n/n01484850/n01484850_1.JPEG 3\n")
    assert import_dyn_unc_list(path, imagenet.folder).num_kept == 3
    with pytest.raises(LabelMismatchError, match=r"label 2 in the artefact \('n01443537'\) but label 1 in the source "
                       r"\('goldfish, Carassius auratus'\)"):  # fmt: skip
        import_dyn_unc_list(path, imagenet.hub)
    # a source whose ClassLabel names are not in sorted-synset order (its ids mean other classes)
    relabelled = imagenet.folder.cast_column("label", ClassLabel(names=[SYNSETS[1], SYNSETS[0], SYNSETS[2]]))
    path.write_text("/n01440764/n01440764_1.JPEG 0\n/n01443537/n01443537_1.JPEG 1\n")
    with pytest.raises(LabelMismatchError, match=r"label 0 in the artefact \('n01440764'\) but label 0 in the source "
                       r"\('n01443537'\)"):  # fmt: skip
        import_dyn_unc_list(path, relabelled)


def test_sources_without_file_names_or_with_repeats_are_refused(imagenet, tmp_path):
    path = write_dali(tmp_path / "list.txt", imagenet, np.ones(len(imagenet.files), dtype=bool))
    features = Features({"image": Image(), "label": ClassLabel(names=SYNSETS)})
    no_paths = Dataset.from_dict({"image": [{"bytes": b"x", "path": None}] * 3, "label": [0, 1, 2]}, features=features)
    with pytest.raises(ValueError, match=r"3 rows of the source have no file name in column 'image' \(the images are "
                       "stored as bytes only"):  # fmt: skip
        import_dyn_unc_list(path, no_paths)
    with pytest.raises(ValueError, match="Cannot tell which column"):
        import_dyn_unc_list(path, Dataset.from_dict({"label": [0]}))
    names = imagenet.names + imagenet.names[:1]
    twice = Dataset.from_dict({"file_name": names, "label": [0] * len(names)})
    with pytest.raises(ValueError, match=r"file names more than once, e.g. 'n01440764_1.JPEG' at row 0"):
        import_dyn_unc_list(path, twice)


# --------------------------------------------------------------------------------------------------- score CSV


def csv_scores(imagenet) -> np.ndarray:
    return np.random.default_rng(7).permutation(len(imagenet.files)) / 10.0  # distinct, in ImageFolder order


@pytest.mark.parametrize("class_balanced", [False, True])
def test_score_csv_selects_the_expected_files_on_both_orderings(imagenet, tmp_path, class_balanced):
    scores = csv_scores(imagenet)
    path = tmp_path / "ImageNet-1K_EL2N-20-models.csv"
    order = np.random.default_rng(1).permutation(len(scores))  # the CSV's own row order does not matter
    path.write_text("filename,score\n" + "".join(f"{imagenet.names[i]},{scores[i]:.1f}\n" for i in order))
    for source in (imagenet.folder, imagenet.hub):
        r25, r50 = import_score_csv(path, source, [0.25, 0.5], class_balanced=class_balanced)
        assert imagenet.kept_names(source, r25) == top_names(imagenet, scores, 0.25, class_balanced=class_balanced)
        assert imagenet.kept_names(source, r50) == top_names(imagenet, scores, 0.5, class_balanced=class_balanced)
        assert r25.method == "el2n_20_models" and r25.params["keep"] == "high"
        assert "paul2021deep" in r25.provenance["method"]["citation"]  # EL2N's paper beside Sorscher et al.'s
        assert "sorscher2022beyond" in r25.provenance["method"]["citation"]
        low = select_imported(r25, 0.5, keep="low")
        assert imagenet.kept_names(source, low) == top_names(imagenet, scores, 0.5, "low", class_balanced)


def test_score_csv_without_header_and_with_paths(imagenet, tmp_path):
    scores = csv_scores(imagenet)
    path = tmp_path / "scores.csv"
    path.write_text("".join(f"train/{s}/{f},{scores[i]}\n" for i, (s, f) in enumerate(imagenet.files)))
    result = import_score_csv(path, imagenet.hub, 0.3, method="my_metric")
    assert imagenet.kept_names(imagenet.hub, result) == top_names(imagenet, scores, 0.3)
    assert result.method == "my_metric"


CSV_MALFORMED = [
    ("file,score\nn01440764_1.JPEG,0.5\nn01440764_9.JPEG,0.5,1\n", "line 3: expected 2 fields, as the header"),
    ("file,score\nn01440764_1.JPEG,0.5\nn01440764_9.JPEG,high\n", "line 3: expected a finite number as score"),
    ("file,score\nn01440764_1.JPEG,nan\n", "line 2: expected a finite number as score"),
    ("n01440764_1.JPEG,0.5\nn01440764_9.JPEG,inf\n", "line 2: expected a finite number as score"),
    ("file,score\n,0.5\n", "line 2: expected a file name"),
    ("file,score\n", "line 2: expected at least one row after the header"),
    ("file,score\nn01440764_1.JPEG,0.5\n\nn01440764_9.JPEG,0.1\n", "line 3: expected 2 fields"),
    ('file,score\n"n01440764_1.JPEG,0.5\n', "expected well-formed CSV"),
    ("file,el2n,forgetting\nn01440764_1.JPEG,0.5,1\n", "the header: expected a file-name column and a score column"),
    ("n01440764_1.JPEG,0.5,1\n", "line 1: expected 2 fields, file name then score"),
    ("file,score,label\nn01440764_1.JPEG,0.5,zero\n", "line 2: expected an integer label"),
]


@pytest.mark.parametrize(
    "reader, file, text, message",
    [(read_dali_list, "list.txt", *case) for case in DALI_MALFORMED]
    + [(read_score_csv, "scores.csv", *case) for case in CSV_MALFORMED],
)
def test_malformed_text_artefacts_name_the_line(tmp_path, reader, file, text, message):
    path = tmp_path / file
    path.write_text(text)
    with pytest.raises(ArtefactFormatError, match=message.replace("(", r"\(")) as err:
        reader(path)
    assert str(err.value).startswith(f"{file}, ")


def test_score_csv_columns_by_name_and_uncovered_rows(imagenet, tmp_path):
    scores = csv_scores(imagenet)
    path = tmp_path / "scores.csv"
    rows = [f"{imagenet.labels[i]},{f},{scores[i]},{-scores[i]}\n" for i, f in enumerate(imagenet.names)]
    path.write_text("label,image,el2n,forgetting\n" + "".join(rows[1:]))  # the first file has no score
    artefact = read_score_csv(path, score_column="forgetting")
    assert list(artefact.scores) == ["forgetting"] and artefact.labels is not None
    with pytest.raises(ResolutionError, match=r"1 of the source's 17 rows have no entry in the artefact, e.g. "
                       r"'n01440764_1.JPEG' \(row \d+\).*allow_partial") as err:  # fmt: skip
        import_score_csv(path, imagenet.folder, 0.5, score_column="el2n")
    assert err.value.uncovered[0][1] == "n01440764_1.JPEG"
    result = import_score_csv(path, imagenet.folder, 0.5, score_column="el2n", allow_partial=True)
    assert result.provenance["subset"]["num_rows"] == 16 and result.num_kept == 8  # half of the 16 covered rows
    top8 = np.argsort(-scores[1:])[:8] + 1  # the 8 highest of the covered rows
    assert imagenet.kept_names(imagenet.folder, result) == sorted(np.array(imagenet.names)[top8])
    assert "n01440764_1.JPEG" not in imagenet.kept_names(imagenet.folder, select_imported(result, 0.1))


# ---------------------------------------------------------------------------------------- Feldman & Zhang .npz


def write_npz(path, imagenet, mem, **overrides):
    arrays = {"tr_filenames": np.array(imagenet.names, dtype="S"), "tr_labels": imagenet.labels, "tr_mem": mem,
              "tt_labels": np.zeros(3, dtype=np.int64)}  # fmt: skip
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_memorization_npz_selects_the_expected_files_on_both_orderings(imagenet, tmp_path):
    mem = csv_scores(imagenet)
    path = write_npz(tmp_path / "imagenet_mem.npz", imagenet, mem)
    for source in (imagenet.folder, imagenet.hub):
        result = import_memorization(path, source, 0.4)
        assert imagenet.kept_names(source, result) == top_names(imagenet, mem, 0.4)
        assert result.method == "memorization" and "feldman2020neural" in result.provenance["method"]["citation"]
        assert result.provenance["imported"]["artefact"]["sha256"] == sha256(path)
        balanced = import_memorization(path, source, 0.4, keep="low", class_balanced=True)
        assert imagenet.kept_names(source, balanced) == top_names(imagenet, mem, 0.4, "low", class_balanced=True)


def test_memorization_npz_labels_are_checked(imagenet, tmp_path):
    labels = imagenet.labels.copy()
    labels[imagenet.labels == 1], labels[imagenet.labels == 2] = 2, 1  # not the sorted-synset ids
    path = write_npz(tmp_path / "mem.npz", imagenet, csv_scores(imagenet), tr_labels=labels)
    with pytest.raises(ArtefactFormatError, match=r"mem.npz, entry \d+: expected labels in sorted class-folder order "
                       r"\(the synsets the file names start with\): label 1 is 'n01484850'"):  # fmt: skip
        import_memorization(path, imagenet.folder, 0.25)
    relabelled = imagenet.hub.cast_column("label", ClassLabel(names=["a", "b", "c"]))
    relabelled = relabelled.map(lambda x: {"label": (x["label"] + 1) % 3}, features=relabelled.features)
    path = write_npz(tmp_path / "mem.npz", imagenet, csv_scores(imagenet))
    with pytest.raises(LabelMismatchError, match=r"label 0 in the artefact \('n01440764'\) but label 1 in the source "
                       r"\('b'\)"):  # fmt: skip
        import_memorization(path, relabelled, 0.25)


NPZ_MALFORMED = [
    ({"tr_mem": None}, "the archive: expected the arrays"),
    ({"tr_mem": np.zeros((17, 2))}, "field 'tr_mem': expected a 1-D array"),
    ({"tr_mem": np.zeros(16)}, "field 'tr_mem': expected 17 values"),
    ({"tr_mem": np.array([np.nan] + [0.0] * 16)}, r"entry 0 of 'tr_mem' \('n01440764_1.JPEG'\): expected a finite"),
    ({"tr_labels": np.array([-1] + [0] * 16)}, "entry 0 of 'tr_labels': expected a class id >= 0"),
    ({"tr_labels": np.zeros(17)}, "field 'tr_labels': expected integer class ids"),
    ({"tr_filenames": np.array([None] * 17, dtype=object)}, "field 'tr_filenames': expected an array of strings"),
    ({"tr_filenames": np.arange(17)}, "field 'tr_filenames': expected an array of strings"),
    ({"tr_filenames": np.array([""] + ["x"] * 16)}, "entry 0 of 'tr_filenames': expected a file name"),
    ({"tr_filenames": np.array([b"\xff.JPEG"] + [b"x"] * 16)}, "field 'tr_filenames': expected UTF-8 file names"),
]


@pytest.mark.parametrize("overrides, message", NPZ_MALFORMED)
def test_malformed_memorization_npz_name_the_field(imagenet, tmp_path, overrides, message):
    path = write_npz(tmp_path / "mem.npz", imagenet, np.zeros(17), **overrides)
    with pytest.raises(ArtefactFormatError, match=message):
        read_memorization_npz(path)


def test_memorization_npz_that_is_not_an_archive(tmp_path):
    path = tmp_path / "mem.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ArtefactFormatError, match="mem.npz, the file: expected a NumPy .npz archive"):
        read_memorization_npz(path)


# -------------------------------------------------------------------------------------------------- CCS scores


def ccs_arrays(imagenet):
    rng = np.random.default_rng(5)
    n = len(imagenet.files)
    return {"targets": torch.tensor(imagenet.labels, dtype=torch.int32), "el2n": torch.tensor(rng.random(n)),
            "forgetting": torch.tensor(rng.permutation(n), dtype=torch.int32),
            "correctness": torch.tensor(rng.permutation(n), dtype=torch.int32),
            "last_correctness": torch.ones(n, dtype=torch.int32),
            "accumulated_margin": torch.tensor(rng.random(n) - 0.5, dtype=torch.float32)}  # fmt: skip


def test_file_keys_normalise_folders_and_the_hub_naming():
    import pyarrow as pa

    from hf_prune.importers import file_keys

    keys = file_keys(pa.array(["/data/train/n01440764/n01440764_10026.JPEG", "n01440764_10026_n01440764.JPEG",
                               "C:\\imagenet\\n01443537\\n01443537_9.JPEG", "n01443537_9_n01440764.JPEG",
                               "cat/photo_1.png", "photo_2.png"]))  # fmt: skip
    assert keys.names.to_pylist() == ["n01440764_10026.JPEG", "n01440764_10026_n01440764.JPEG",
                                      "n01443537_9.JPEG", "n01443537_9_n01440764.JPEG", "photo_1.png", "photo_2.png"]
    assert keys.keys.to_pylist() == ["n01440764_10026.JPEG", "n01440764_10026.JPEG", "n01443537_9.JPEG",
                                     "n01443537_9_n01440764.JPEG", "photo_1.png", "photo_2.png"]  # synsets differ
    assert keys.folders.to_pylist() == ["n01440764", None, "n01443537", None, "cat", None]
    assert keys.synsets.to_pylist() == ["n01440764", "n01440764", "n01443537", "n01443537", None, None]


def test_imagefolder_order_of_both_sources(imagenet):
    for source in (imagenet.folder, imagenet.hub):
        files = read_source_files(source)
        order = imagefolder_order(files)
        assert files.files.keys.take(order).to_pylist() == imagenet.names  # `_1` < `_10` on both layouts


@pytest.mark.parametrize("score, keep", [("accumulated_margin", "low"), ("el2n", "high"), ("forgetting", "high")])
def test_ccs_scores_resolve_by_imagefolder_position_on_both_orderings(imagenet, tmp_path, score, keep):
    arrays = ccs_arrays(imagenet)
    path = tmp_path / "imagenet-data-score.pt"
    torch.save(arrays, path)
    values = arrays[score].numpy().astype(np.float64)
    for source in (imagenet.folder, imagenet.hub):
        result = import_ccs_scores(path, source, 0.3, score=score)
        assert result.params["keep"] == keep
        assert imagenet.kept_names(source, result) == top_names(imagenet, values, 0.3, keep=keep)
        assert "zheng2023coverage" in result.provenance["method"]["citation"]
        ccs = import_ccs_scores(path, source, 0.5, score=score, selection="ccs", hard_cutoff=0.1,
                                cutoff="accumulated_margin")  # fmt: skip
        assert ccs.num_kept == 9 and ccs.params["cutoff"] == "accumulated_margin"
        cut = np.argsort(arrays["accumulated_margin"].numpy())[0]  # the lowest AUM is cut first
        assert imagenet.names[cut] not in imagenet.kept_names(source, ccs)
    npz = tmp_path / "scores.npz"
    np.savez(npz, **{k: v.numpy() for k, v in arrays.items()})
    result = import_ccs_scores(npz, imagenet.hub, 0.3, score=score)
    assert imagenet.kept_names(imagenet.hub, result) == top_names(imagenet, values, 0.3, keep=keep)


def test_ccs_positions_need_the_exact_file_set_and_matching_targets(imagenet, tmp_path):
    arrays = ccs_arrays(imagenet)
    path = tmp_path / "scores.pt"
    torch.save(arrays, path)
    with pytest.raises(ResolutionError, match="ImageFolder position and has 17 entries, but the source has 16"):
        import_ccs_scores(path, imagenet.folder.select(range(16)), 0.3)
    shifted = dict(arrays, targets=torch.roll(arrays["targets"], 1))
    torch.save(shifted, path)
    with pytest.raises(LabelMismatchError, match=r"label 0 in the artefact stands for 'n01440764' .* but the file is "
                       r"in 'n01443537'"):  # fmt: skip
        import_ccs_scores(path, imagenet.hub, 0.3)


class _Planted:
    """Unpickling this runs code: writes a marker file. hf_prune must never unpickle it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_ccs_plain_pickles_are_refused_never_unpickled(imagenet, tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "imagenet-data-score.pt"
    with open(path, "wb") as f:  # what the authors' script writes: pickle.dump of a dict of tensors
        pickle.dump({"targets": torch.zeros(3, dtype=torch.int32), "el2n": torch.zeros(3), "x": _Planted(str(marker))},
                    f)  # fmt: skip
    with pytest.raises(ArtefactFormatError, match="this looks like a plain Python pickle .*torch.save"):
        read_ccs_scores(path)
    assert not marker.exists()
    torch.save({"targets": torch.zeros(3, dtype=torch.int32), "x": _Planted(str(marker))}, path)
    with pytest.raises(ArtefactFormatError, match="without unpickling Python objects"):
        read_ccs_scores(path)
    assert not marker.exists()
    np.savez(path.with_suffix(".npz"), targets=np.zeros(3, dtype=np.int64), el2n=np.array([None] * 3, dtype=object))
    with pytest.raises(ArtefactFormatError, match="unpickles no Python objects"):
        read_ccs_scores(path.with_suffix(".npz"))


CCS_MALFORMED = [
    (lambda a: {k: v for k, v in a.items() if k != "targets"}, "the keys: expected 'targets' and at least one of"),
    (lambda a: {"targets": a["targets"], "last_correctness": a["last_correctness"]}, "the keys: expected"),
    (lambda a: dict(a, el2n=torch.zeros(16)), "key 'el2n': expected 17 values"),
    (lambda a: dict(a, el2n=torch.zeros(17, 2)), "key 'el2n': expected a 1-D numeric tensor"),
    (lambda a: dict(a, el2n=torch.full((17,), float("nan"))), "key 'el2n', position 0: expected a finite number"),
    (lambda a: dict(a, targets=a["targets"] - 1), "key 'targets', position 0: expected integer labels >= 0"),
    (lambda a: dict(a, targets=a["targets"].float()), "key 'targets': expected integer labels >= 0"),
    (lambda a: dict(a, epoch=3), "key 'epoch': expected a 1-D tensor or array"),
    (lambda a: a["el2n"], "the file: expected a dict of per-example tensors"),
]


@pytest.mark.parametrize("change, message", CCS_MALFORMED)
def test_malformed_ccs_score_files_name_the_key(imagenet, tmp_path, change, message):
    path = tmp_path / "scores.pt"
    torch.save(change(ccs_arrays(imagenet)), path)
    with pytest.raises(ArtefactFormatError, match=message):
        read_ccs_scores(path)


def test_ccs_truncated_file(tmp_path):
    path = tmp_path / "scores.pt"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArtefactFormatError, match="scores.pt, the file: expected a torch.save archive"):
        read_ccs_scores(path)
    assert not zipfile.is_zipfile(path)


# ---------------------------------------------------------------------------------------------- publishing


def test_round_trip_through_save_and_load(imagenet, tmp_path):
    scores = csv_scores(imagenet)
    csv = tmp_path / "ImageNet-1K_memorization.csv"
    csv.write_text("file_name,score\n" + "".join(f"{f},{s}\n" for f, s in zip(imagenet.names, scores)))
    results = import_score_csv(csv, imagenet.hub, [0.25, 0.5])
    out = save_results(results, tmp_path / "list", ("ILSVRC/imagenet-1k", "train"),
                       **publish_options(results, imagenet.hub))  # fmt: skip
    single = results[0].save(tmp_path / "one", source=("ILSVRC/imagenet-1k", "train"),
                             **publish_options(results[0], imagenet.hub))  # fmt: skip
    np.testing.assert_array_equal(PruneResult.load(single).kept_ids, results[0].kept_ids)
    bare = results[0].save(tmp_path / "bare", source=("ILSVRC/imagenet-1k", "train"))  # kept rows' scores only
    with pytest.raises(ValueError, match="carries the scores of its 13 kept rows only, not of the 17 rows"):
        select_imported(PruneResult.load(bare), 0.5)
    dali = write_dali(tmp_path / "list.txt", imagenet, np.arange(17) % 2 == 0)
    with pytest.raises(ValueError, match="list.txt is a published list of kept files with no scores"):
        select_imported(import_dyn_unc_list(dali, imagenet.hub), 0.5)
    for r in results:
        loaded = PruneResult.load(out, config=f"prune_{int(r.prune_ratio * 100)}")
        np.testing.assert_array_equal(loaded.kept_ids, r.kept_ids)
        np.testing.assert_allclose(loaded.scores, r.scores, rtol=1e-6)  # every row's score (all_scores=True)
        assert loaded.provenance["imported"]["artefact"]["sha256"] == sha256(csv)
        again = select_imported(loaded, r.prune_ratio)  # consumers can re-select from the published scores
        np.testing.assert_array_equal(again.kept_ids, r.kept_ids)
    card = (out / "README.md").read_text()
    assert sha256(csv) in card and "sorscher2022beyond" in card and "feldman2020neural" in card
    assert "license: apache-2.0" in card and "- imported" in card and "highest" in card
    # load_pruned remaps by the stored file names onto the same layout in another order
    mirror = imagenet.hub.shuffle(seed=1).flatten_indices()
    pruned = load_pruned(mirror, out, config="prune_50")
    expected = imagenet.kept_names(imagenet.hub, results[1])
    assert sorted(n.rsplit("_", 1)[0] + ".JPEG" for n in (x["path"] for x in pruned.cast_column(
        "image", Image(decode=False))["image"])) == expected  # fmt: skip


def test_dyn_unc_list_round_trip_through_the_loopback_hub(hub, tmp_path):
    proc = run_with_hub(
        hub,
        """
        import hashlib, json
        from datasets import Dataset, load_dataset
        from hf_prune import PruneResult, load_pruned
        from hf_prune.importers import import_dyn_unc_list, publish_options

        synsets = ["n01440764", "n01443537"]
        names = [f"{s}_{k}.JPEG" for s in synsets for k in sorted(["1", "10", "9", "1234"])]
        source = Dataset.from_dict({"file_name": names[::-1], "label": [int(n > "n01443") for n in names[::-1]]})
        kept = names[::2]
        open("IN1K_75_file_list.txt", "w").write("".join(f"/{n[:9]}/{n} {int(n > 'n01443')}\\n" for n in kept))
        result = import_dyn_unc_list("IN1K_75_file_list.txt", source)
        url = result.push_to_hub("testuser/in1k-dyn-unc", source=("testuser/src", "train"),
                                 **publish_options(result, source), plot=False)
        keep = load_dataset("testuser/in1k-dyn-unc", split="train").with_format("numpy")["index"][:]
        loaded = PruneResult.load("testuser/in1k-dyn-unc")
        pruned = load_pruned(source.shuffle(seed=0).flatten_indices(), "testuser/in1k-dyn-unc")
        print(json.dumps({"select": sorted(source.select(keep)["file_name"]), "kept": sorted(kept),
                          "sha": loaded.provenance["imported"]["artefact"]["sha256"],
                          "file_sha": hashlib.sha256(open("IN1K_75_file_list.txt", "rb").read()).hexdigest(),
                          "load_pruned": sorted(pruned["file_name"]), "url": url}))
        """,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["select"] == out["kept"] == out["load_pruned"] and len(out["kept"]) == 4
    assert out["sha"] == out["file_sha"] and "/commit/" in out["url"]
    assert hub.server.repo_exists("testuser/in1k-dyn-unc", "dataset")


# ------------------------------------------------------------------------------------------------- the command


def cli(argv):
    """`hf-prune ARGV` through the real `hf_prune.cli.main`, with `import` registered as cli.py will register it."""
    from hf_prune import cli as cli_module

    parser = cli_module.build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "import" not in subs.choices:
        add_parser(subs)
    original = cli_module.build_parser
    cli_module.build_parser = lambda: parser
    try:
        return cli_module.main(argv)
    finally:
        cli_module.build_parser = original


def test_import_command_writes_a_hub_ready_folder(imagenet, tmp_path, capsys):
    keep = np.arange(len(imagenet.files)) % 3 != 0
    path = write_dali(tmp_path / "IN1K_75_file_list.txt", imagenet, keep)
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert cli(["import", "dali-list", str(path), "--source", str(imagenet.root), "--out", str(out),
                "--hub-source", "ILSVRC/imagenet-1k", "train", "--report", str(report)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f"{keep.sum()} of {keep.sum()} kept files found" in printed and f"kept {keep.sum()} of 17 rows" in printed
    loaded = PruneResult.load(out)
    assert imagenet.kept_names(imagenet.folder, loaded) == sorted(np.array(imagenet.names)[keep])
    assert "ILSVRC/imagenet-1k" in (out / "README.md").read_text()
    assert json.loads(report.read_text())["missing_files"] == []

    csv = tmp_path / "scores.csv"
    csv.write_text("file,score\n" + "".join(f"{f},{s}\n" for f, s in zip(imagenet.names, csv_scores(imagenet))))
    assert cli(["import", "score-csv", str(csv), "--source", str(imagenet.root), "--prune-ratio", "0.25",
                "--prune-ratio", "0.5", "--class-balanced", "--out", str(tmp_path / "csv")]) == 0  # fmt: skip
    assert {p.name for p in (tmp_path / "csv" / "data").iterdir()} == {"prune_25", "prune_50", "scores"}


def test_import_command_errors_are_one_line(imagenet, tmp_path, capsys):
    path = write_dali(tmp_path / "list.txt", imagenet, np.ones(len(imagenet.files), dtype=bool))
    with open(path, "a") as f:
        f.write("/n01484850/n01484850_77777.JPEG 2\n")
    report = tmp_path / "report.json"
    cases = [
        (["dali-list", str(path), "--prune-ratio", "0.3"], "has no scores to select from, so --prune-ratio"),
        (["score-csv", str(path)], "holds scores: pass --prune-ratio"),
        (["dali-list", str(tmp_path / "absent.txt")], "absent.txt: no such file"),
        (["dali-list", str(path), "--report", str(report)], "1 of the artefact's 18 files are not in the source"),
        (["score-csv", str(path), "--prune-ratio", "0.3"], "the header: expected a file-name column and a score"),
        (["dali-list", str(path), "--method", "x"], "--method applies to score-csv only"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exc:
            cli(["import", *argv, "--source", str(imagenet.root), "--out", str(tmp_path / "never")])
        text = str(exc.value.code)
        assert text.startswith("hf-prune: error: ") and "\n" not in text and message in text, text
    assert not (tmp_path / "never").exists()
    assert json.loads(report.read_text())["missing_files"] == [[18, "n01484850/n01484850_77777.JPEG"]]


def test_benchmark_runs_at_a_small_size(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_import", REPO_ROOT / "bench" / "bench_import.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "import.md"
    rows = bench.main(["--rows", "3000", "--classes", "12", "--repeats", "1", "--out", str(out)])
    assert any("end to end" in name for name, _ in rows)
    assert "met" in out.read_text() and "--rows 3000" in out.read_text()
