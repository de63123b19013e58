"""A list, a card or a folder from anyone is untrusted input, and a push never harms anyone else's data (issue 18).

Each case of the issue is built as a real folder and, where the Hub is involved, as a real repo on the loopback Hub
(tests/hub_server.py), pushed with the plain `huggingface_hub` client so that nothing of hf_prune's own checks stands in
the way of the crafted input. Every test asserts a clear error naming the field (or file) and the fix, or the correct
result; each failed before this was built. The concurrency and rollback tests run real client processes.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset, IterableDataset

from hf_prune import PruneResult, ScoreRecord, get_strategy, load_pruned
from hf_prune.export import (
    HubPushError,
    SourceMismatchWarning,
    index_sha256,
    model_card,
    push_folder_to_hub,
    save_results,
)
from hf_prune.export.model_card import pruning_card_section


try:
    from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (fixture registration)
except ImportError:  # tests/ on sys.path but not the project root
    from hub_fixtures import hub, run_with_hub  # noqa: F401

N = 60
DATA = "data/prune_25/train-00000-of-00001.parquet"
EVIL = 'x", split="train"); import os; os.system("echo pwned"); ("'


def _result(n=N, seed=0, ratio=0.25):
    rng = np.random.default_rng(seed)
    record = ScoreRecord.from_arrays({"p_target": rng.random((6, n))}, labels=np.arange(n) % 4)
    return get_strategy("dyn_unc", window=3).select(record, prune_ratio=ratio)


def _folder(path: Path, result=None, **kwargs) -> Path:
    kwargs.setdefault("source", ("org/src", "train"))
    return save_results([result or _result()], path, plot=False, **kwargs)


def _card(folder: Path) -> dict:
    return yaml.safe_load((folder / "README.md").read_text().split("---")[1])


def _write_card(folder: Path, metadata: dict) -> None:
    body = (folder / "README.md").read_text().split("---", 2)[2]
    (folder / "README.md").write_text("---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---" + body)


def _edit(folder: Path, edit) -> Path:
    metadata = _card(folder)
    edit(metadata)
    _write_card(folder, metadata)
    return folder


def _write_ids(folder: Path, ids, kept=None, sha=True, path=DATA) -> None:
    """Replaces the list's parquet by `ids` (any Arrow array) and makes the card agree on the count (and checksum),
    so that only the crafted property is wrong."""
    array = ids if isinstance(ids, pa.Array) else pa.array(ids)
    pq.write_table(pa.table({"index": array}), folder / path)

    def edit(m):
        entry = m["pruning"]["lists"]["prune_25"]
        entry["kept"] = len(array) if kept is None else kept
        values = [v for v in array.to_pylist() if v is not None]
        if sha:  # what an unchecked reader would make of the ids: truncated, parsed, wrapped to int64
            ints = [(int(v if isinstance(v, int) else float(v)) + 2**63) % 2**64 - 2**63 for v in values]
            entry["index_sha256"] = index_sha256(np.asarray(ints, dtype=np.int64))
        m["pruning"]["kept"], m["pruning"]["index_sha256"] = entry["kept"], entry.get("index_sha256")

    _edit(folder, edit)


def _errors(fn) -> str:
    try:
        fn()
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"
    return "no error"


# ---------------------------------------------------------------------------------------------------- 1. paths


def _outside_list(tmp_path: Path) -> Path:
    """Another list's data file, outside the folder that will point at it."""
    other = _folder(tmp_path / "other", _result(seed=7))
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(other / DATA, outside / "stolen.parquet")
    return outside / "stolen.parquet"


@pytest.mark.parametrize(
    "pattern, problem",
    [
        ("../../outside/*.parquet", "climbs out of the folder with '..'"),
        ("data/../../outside/*.parquet", "climbs out of the folder with '..'"),
        ("/etc/*.parquet", "is an absolute path"),
        ("hf://datasets/org/other/data/*.parquet", "is a URL"),
        ("https://example.com/x.parquet", "is a URL"),
    ],
)
def test_data_files_that_leave_the_folder_are_refused_naming_the_field(tmp_path, pattern, problem):
    stolen = _outside_list(tmp_path)
    folder = _folder(tmp_path / "a" / "list")
    shutil.copytree(stolen.parent, tmp_path / "a" / "outside")  # so `../../outside` resolves to a real list
    other_ids = pq.read_table(stolen)["index"].to_numpy()

    def edit(m):
        m["configs"][0]["data_files"][0]["path"] = pattern
        m["pruning"]["lists"]["prune_25"]["kept"] = int(other_ids.size)
        m["pruning"]["lists"]["prune_25"]["index_sha256"] = index_sha256(other_ids)  # would pass the checksum

    _edit(folder, edit)
    for load in (
        lambda: PruneResult.load(folder),
        lambda: load_pruned(Dataset.from_dict({"x": list(range(N))}), folder),
    ):
        message = _errors(load)
        assert message.startswith("ValueError:") and "`configs[0].data_files`" in message, message
        assert problem in message and "Only paths inside the repo or folder are read" in message


def test_a_config_name_that_climbs_out_is_refused(tmp_path):
    stolen = _outside_list(tmp_path)
    folder = _folder(tmp_path / "a" / "list")
    evil = "../../outside"
    target = folder / "data" / evil
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(stolen, target / "train-00000-of-00001.parquet")

    ids = pq.read_table(stolen)["index"].to_numpy()

    def edit(m):  # a card that agrees with the stolen file: only the name is wrong
        m["pruning"]["lists"] = {evil: {**m["pruning"]["lists"]["prune_25"], "kept": int(ids.size),
                                        "index_sha256": index_sha256(ids)}}  # fmt: skip
        del m["configs"]

    _edit(folder, edit)
    message = _errors(lambda: PruneResult.load(folder))
    assert "`pruning.lists` is not a valid config name ('../../outside')" in message, message
    for name in ("../x", "a/b", "x:y", ".hidden", "pr*"):
        _edit(folder, lambda m, name=name: m["pruning"].update(lists={name: {"prune_ratio": 0.25, "kept": 45}}))
        assert "is not a valid config name" in _errors(lambda: PruneResult.load(folder))


def test_a_data_file_linking_outside_the_folder_is_not_followed(tmp_path):
    stolen = _outside_list(tmp_path)
    folder = _folder(tmp_path / "list")
    (folder / DATA).unlink()
    (folder / DATA).symlink_to(stolen)
    ids = pq.read_table(stolen)["index"].to_numpy()
    _edit(
        folder, lambda m: m["pruning"]["lists"]["prune_25"].update(kept=int(ids.size), index_sha256=index_sha256(ids))
    )
    for load in (
        lambda: PruneResult.load(folder),
        lambda: load_pruned(Dataset.from_dict({"x": list(range(N))}), folder),
    ):
        message = _errors(load)
        assert "names data/prune_25/train-00000-of-00001.parquet, a symbolic link that leaves the folder" in message
        assert "`configs[prune_25].data_files`" in message
    # A link that stays inside the folder is resolved and read.
    inside = folder / "data" / "real.parquet"
    shutil.copy(stolen, inside)
    (folder / DATA).unlink()
    (folder / DATA).symlink_to(inside)
    assert PruneResult.load(folder).kept_ids.tolist() == ids.tolist()
    # The card itself as a link out of the folder is not read either.
    (folder / "README.md").rename(tmp_path / "card.md")
    (folder / "README.md").symlink_to(tmp_path / "card.md")
    assert "README.md, a symbolic link that leaves the folder" in _errors(lambda: PruneResult.load(folder))


# ---------------------------------------------------------------------------------------------------- 6. the list


@pytest.mark.parametrize(
    "ids, expected",
    [
        (pa.array([0.0, 3.6, 5.0]), "the `index` column holds double, not integers"),
        (pa.array(["0", "3", "5"]), "the `index` column holds string, not integers"),
        (pa.array([0, None, 5], type=pa.int64()), "the `index` column has 1 null id(s)"),
        (pa.array([0, 3, N]), f"ids span [0, {N}] but the card's `pruning.source.num_rows` is {N}"),
        (pa.array([2**63 + 5], type=pa.uint64()), "holds ids past int64"),
    ],
)
def test_ids_are_checked_not_coerced(tmp_path, ids, expected):
    folder = _folder(tmp_path / "list")
    _write_ids(folder, ids)
    for load in (
        lambda: PruneResult.load(folder),
        lambda: load_pruned(Dataset.from_dict({"x": list(range(N))}), folder),
    ):
        message = _errors(load)
        assert message.startswith("ValueError:") and expected in message, message


def test_card_fields_are_required_and_bounded(tmp_path):
    folder = _folder(tmp_path / "list")
    card = _card(folder)

    def load_with(edit):
        metadata = json.loads(json.dumps(card))
        edit(metadata)
        _write_card(folder, metadata)
        return _errors(lambda: PruneResult.load(folder))

    source = lambda **kv: lambda m: m["pruning"]["source"].update(kv)  # noqa: E731
    started = time.perf_counter()
    assert "`pruning.source.num_rows` is 1,000,000,000,000, outside [0, 10,000,000,000]" in load_with(
        source(num_rows=10**12)
    )
    assert time.perf_counter() - started < 5  # nothing of 7 TiB was allocated
    assert "`pruning.source.num_rows` is missing" in load_with(lambda m: m["pruning"]["source"].pop("num_rows"))
    assert "`pruning.source.num_rows` must be an integer; got 60.5" in load_with(source(num_rows=60.5))
    assert "`pruning.source.num_rows` must be an integer; got True" in load_with(source(num_rows=True))
    assert "`pruning.lists.prune_25.kept` is missing" in load_with(
        lambda m: m["pruning"]["lists"]["prune_25"].pop("kept")
    )
    assert "`pruning.lists.prune_25.kept` is 61, outside [0, 60]" in load_with(
        lambda m: m["pruning"]["lists"]["prune_25"].update(kept=61)
    )
    assert "`pruning.lists.prune_25.prune_ratio` must be a fraction in [0, 1); got 1.5" in load_with(
        lambda m: m["pruning"]["lists"]["prune_25"].update(prune_ratio=1.5)
    )
    assert "`pruning.method` is not a method name" in load_with(lambda m: m["pruning"].update(method="<b>x</b>"))
    assert "`pruning.source.revision` is not a git revision" in load_with(source(revision="main; rm -rf /"))
    assert "`pruning.source.split` is not a split name" in load_with(source(split='train"); x=("'))
    # A count the machine cannot hold is refused before the per-row arrays are allocated.
    big = 9 * 10**9  # 17 bytes a row: 153 GB, more than the test machines (and the GPU host) have
    message = load_with(source(num_rows=big))
    assert "more than this machine's" in message and "Use `load_pruned`" in message
    # load_pruned allocates nothing per source row: the count is refused against the source's.
    _edit(folder, source(num_rows=big))
    assert "source dataset has 60 rows but the list was made on 9,000,000,000" in _errors(
        lambda: load_pruned(Dataset.from_dict({"x": list(range(N))}), folder)
    )


def test_a_list_without_its_checksum_is_refused_unless_verify_false(tmp_path):
    from hf_prune.export import UnverifiedIndexListWarning

    result = _result()
    folder = _folder(tmp_path / "list", result)

    def drop(m):
        m["pruning"]["lists"]["prune_25"].pop("index_sha256")
        m["pruning"].pop("index_sha256")

    _edit(folder, drop)
    message = _errors(lambda: PruneResult.load(folder))
    assert "no `pruning.lists.prune_25.index_sha256`" in message and "verify=False" in message
    with pytest.warns(UnverifiedIndexListWarning, match="were not checked against the card's `pruning.lists"):
        assert PruneResult.load(folder, verify=False).kept_ids.tolist() == result.kept_ids.tolist()
    source = Dataset.from_dict({"x": list(range(N))})
    assert "index_sha256" in _errors(lambda: load_pruned(source, folder))
    with pytest.warns(UnverifiedIndexListWarning):
        assert len(load_pruned(source, folder, verify=False)) == result.num_kept
    # Such a folder is not published: the fix writes the checksum.
    with pytest.raises(
        ValueError, match=r"index_sha256` is missing: a list is published with its checksum.*verify=False"
    ):
        push_folder_to_hub(folder, "someone/list", token="hf_unused")
    with pytest.warns(UnverifiedIndexListWarning):
        PruneResult.load(folder, verify=False).save(tmp_path / "fixed", plot=False)
    assert PruneResult.load(tmp_path / "fixed").kept_ids.tolist() == result.kept_ids.tolist()


def test_a_large_list_is_refused_from_its_footer_before_it_is_read(tmp_path):
    """10^8-scale ids in a small parquet whose card says 45: refused from the parquet footer, nothing read."""
    folder = _folder(tmp_path / "list")
    n = 5 * 10**7
    pq.write_table(pa.table({"index": pa.array(np.arange(n, dtype=np.int64))}), folder / DATA,
                   column_encoding={"index": "DELTA_BINARY_PACKED"}, use_dictionary=False)  # fmt: skip
    assert (folder / DATA).stat().st_size < 5 * 2**20
    _edit(folder, lambda m: m["pruning"]["source"].update(num_rows=2 * n))
    code = f"""
        import json, resource, time
        from hf_prune import PruneResult
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            PruneResult.load({str(folder)!r})
            error = None
        except ValueError as err:
            error = str(err)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"error": error, "seconds": time.perf_counter() - start, "grew_mb": (after - before) / 1024}}))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (
        "the card says `pruning.lists.prune_25.kept` holds 45 rows but its data files hold 50,000,000" in out["error"]
    )
    assert out["grew_mb"] < 100, out  # reading the column would take 400 MB
    assert out["seconds"] < 2, out


# ---------------------------------------------------------------------------------------------------- 3. card text


def test_card_text_is_validated_on_load_and_escaped_when_rendered(tmp_path):
    folder = _folder(tmp_path / "list")
    (folder / "pruning_provenance.json").unlink()  # the card's `pruning:` block is then the provenance
    _edit(folder, lambda m: m["pruning"]["source"].update(repo_id=EVIL))
    message = _errors(lambda: PruneResult.load(folder))
    assert message.startswith("ValueError:") and "`pruning.source.repo_id` is not a Hub repo id" in message
    assert "README.md" in message  # names the file
    # The same through the provenance file a list carries.
    folder = _folder(tmp_path / "list2")
    saved = json.loads((folder / "pruning_provenance.json").read_text())
    saved["lists"]["prune_25"]["provenance"]["source"] = {"repo_id": EVIL, "split": "train"}
    (folder / "pruning_provenance.json").write_text(json.dumps(saved))
    message = _errors(lambda: PruneResult.load(folder))
    assert "pruning_provenance.json: `provenance.source.repo_id` is not a Hub repo id" in message

    # A result built in Python with such a provenance: the model card refuses it, the trainer's section leaves it out.
    result = _result()
    result.provenance["source"] = {"repo_id": EVIL, "split": "train"}
    assert "`source` is not a Hub repo id" in _errors(lambda: model_card("org/list", result=result))
    section, _, datasets = pruning_card_section(pruned_list=result, index_repo_id="org/list")
    assert "pwned" not in section and datasets == ["org/list"]
    assert 'train = load_dataset("<source dataset>", split="train").select(keep)' in section
    assert "`index_repo_id` is not a Hub repo id" in _errors(
        lambda: pruning_card_section(pruned_list=_result(), index_repo_id='a"); x=("')
    )

    # A method's text from a list keeps harmless inline formatting, but no HTML, link, image or fence-breaking text.
    folder = _folder(tmp_path / "list3")
    saved = json.loads((folder / "pruning_provenance.json").read_text())
    saved["lists"]["prune_25"]["provenance"]["method"] = {
        "title": "<img src=x onerror=alert(1)>", "description": "[click](https://evil.example) `code`",
        "citation": "```\n</pre><script>alert(1)</script>",
    }  # fmt: skip
    (folder / "pruning_provenance.json").write_text(json.dumps(saved))
    loaded = PruneResult.load(folder)
    assert loaded.provenance["method"]["title"] == "\\<img src=x onerror=alert(1)\\>"
    assert loaded.provenance["method"]["description"] == "\\[click\\](https://evil.example) `code`"
    card = str(model_card("org/list", result=loaded))
    assert not re.search(r"(?<!\\)<img", card) and not re.search(r"(?<!\\)\]\(https://evil", card)
    assert "```\n</pre>" not in card  # the citation cannot close its fence
    assert "\\<img src=x onerror=alert(1)\\>" in card  # shown as text
    # A re-saved card shows a local folder name and other free text escaped, never as markup.
    again = save_results([loaded], tmp_path / "again", source={"repo_id": None, "split": "train"}, plot=False)
    text = (again / "README.md").read_text()
    assert not re.search(r"(?<!\\)<img", text) and "```\n</pre>" not in text


# ---------------------------------------------------------------------------------------------------- 7. wrong rows


def test_another_dataset_of_the_same_length_is_refused_unless_forced(tmp_path):
    result = _result()
    scored = Dataset.from_dict({"label": [i % 4 for i in range(N)]})
    other = Dataset.from_dict({"label": [(i + 1) % 4 for i in range(N)]})  # same length, other rows
    folder = _folder(tmp_path / "list", result, source_dataset=scored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_pruned(scored, folder)["label"] == [i % 4 for i in result.kept_ids]
    message = _errors(lambda: load_pruned(other, folder))
    assert "rows are not the ones that were scored" in message and "`pruning.source.row_fingerprint`" in message
    assert "force=True" in message
    with pytest.warns(SourceMismatchWarning, match="Applied anyway"):
        load_pruned(other, folder, force=True)
    # A list that carries only a `datasets` fingerprint (saved before row fingerprints): also an error.
    _edit(folder, lambda m: m["pruning"]["source"].pop("row_fingerprint"))
    message = _errors(lambda: load_pruned(other, folder))
    assert "differs from the card's `pruning.source.fingerprint`" in message and "force=True" in message


def test_the_source_named_in_the_card_is_compared_with_the_one_loaded(tmp_path):
    folder = _folder(tmp_path / "list", source=("org/src", "train", "rev-a"), content_key="file_name",
                     source_dataset=Dataset.from_dict({"file_name": [f"{i}.png" for i in range(N)]}))  # fmt: skip
    source = Dataset.from_dict({"file_name": [f"{i}.png" for i in range(N)]})
    for given, expected in [
        ("org/other", "made on 'org/src', you loaded 'org/other'"),
        (("org/src", "test"), "made on split 'train' of org/src, you loaded 'test'"),
        (("org/src", "train", "rev-b"), "made on revision 'rev-a' of org/src, you loaded 'rev-b'"),
    ]:
        message = _errors(lambda given=given: load_pruned(source, folder, source=given))
        assert "the card's `pruning.source` names another source" in message and expected in message, message
        with pytest.warns(SourceMismatchWarning, match="Applied anyway"):
            load_pruned(source, folder, source=given, force=True)
    assert len(load_pruned(source, folder, source=("org/src", "train", "rev-a"))) == 45
    # A split loaded from the Hub says which repo it is (its cache folder): compared too.
    cached = tmp_path / "cache" / "org___other" / "default" / "0.0.0" / ("c" * 40) / "other-train.arrow"
    cached.parent.mkdir(parents=True)
    loaded = source.flatten_indices(cache_file_name=str(cached))
    assert "you loaded a split cached as 'org___other'" in _errors(lambda: load_pruned(loaded, folder))


def test_a_stream_of_another_length_is_refused_unless_forced(tmp_path):
    result = _result(n=1000)
    folder = _folder(tmp_path / "list", result)
    short = IterableDataset.from_generator(lambda: ({"x": i} for i in range(100)))
    with pytest.warns(SourceMismatchWarning, match="streamed"):
        pruned = load_pruned(short, folder)
    with pytest.raises(ValueError, match="had 100 rows, but the list was made on 1,000.*force=True"):
        list(pruned)
    with pytest.warns(SourceMismatchWarning, match="had 100 rows.*Accepted"):
        rows = list(load_pruned(short, folder, force=True))
    assert [r["x"] for r in rows] == [i for i in result.kept_ids if i < 100]
    long = IterableDataset.from_generator(lambda: ({"x": i} for i in range(2000)))
    with pytest.warns(SourceMismatchWarning, match="streamed"):
        pruned = load_pruned(long, folder)
    with pytest.raises(ValueError, match="more than the 1,000 rows the list was made on"):
        list(pruned)
    exact = IterableDataset.from_generator(lambda: ({"x": i} for i in range(1000)))
    with pytest.warns(SourceMismatchWarning, match="streamed"):
        assert [r["x"] for r in load_pruned(exact, folder)] == result.kept_ids.tolist()


# ---------------------------------------------------------------------------------------------------- 2. pushes


def test_a_push_uploads_only_regular_files_the_card_lists(hub, tmp_path):  # noqa: F811
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-TOKEN-hf_abc")
    folder = _folder(tmp_path / "list")
    (folder / "images").mkdir()
    (folder / "images" / "secret.png").symlink_to(secret)  # a link the card does not list
    (folder / "data" / "notes.txt").write_text("local notes")  # a regular file the card does not list
    leaky = _folder(tmp_path / "leaky")
    (leaky / "data" / "prune_25" / "extra.parquet").symlink_to(secret)  # matched by the card's data_files glob
    proc = run_with_hub(hub, f"""
        import json
        from hf_prune.export import push_folder_to_hub
        out = {{"url": push_folder_to_hub({str(folder)!r}, "testuser/clean")}}
        try:
            push_folder_to_hub({str(leaky)!r}, "testuser/leaky")
        except Exception as err:
            out["leaky"] = f"{{type(err).__name__}}: {{err}}"
        print(json.dumps(out))
    """)  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    files = hub.server.files("testuser/clean", "dataset")
    assert sorted(files) == [".gitattributes", "README.md", DATA, "pruning_provenance.json"]
    assert not any(b"SECRET" in content for content in files.values())
    assert (
        out["leaky"].startswith("ValueError:")
        and "extra.parquet, a symbolic link that leaves the folder" in out["leaky"]
    )
    assert not hub.server.repo_exists("testuser/leaky", "dataset")


def test_a_different_list_is_not_replaced_without_overwrite(hub, tmp_path):  # noqa: F811
    first = _folder(tmp_path / "first", _result(seed=0))
    other = _folder(tmp_path / "other", _result(seed=1))  # same config name, other ids
    both = save_results([_result(seed=0), _result(seed=0, ratio=0.5)], tmp_path / "both", source=("org/src", "train"),
                        plot=False)  # fmt: skip
    half = save_results([_result(seed=0, ratio=0.5)], tmp_path / "half", source=("org/src", "train"), plot=False)
    proc = run_with_hub(hub, f"""
        import json
        from hf_prune.cli import main
        from hf_prune.export import HubPushError, push_folder_to_hub
        out = {{}}
        push_folder_to_hub({str(first)!r}, "testuser/list")
        try:
            push_folder_to_hub({str(other)!r}, "testuser/list")
        except HubPushError as err:
            out["refused"] = str(err)
        push_folder_to_hub({str(both)!r}, "testuser/list")       # the same list plus a ratio: no conflict
        out["both"] = True
        push_folder_to_hub({str(half)!r}, "testuser/list")       # prune_25 dropped: deleted in the same commit
        try:
            main(["push", {str(other)!r}, "--repo", "testuser/list"])
        except SystemExit as err:
            out["cli"] = str(err)
        main(["push", {str(other)!r}, "--repo", "testuser/list", "--overwrite"])
        from huggingface_hub import HfApi
        out["commits"] = len(HfApi().list_repo_commits("testuser/list", repo_type="dataset"))
        print(json.dumps(out))
    """)  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "testuser/list@main (commit " in out["refused"] and "already holds a different index list" in out["refused"]
    assert "method dyn_unc, prune_25 (ratio 0.25, index_sha256" in out["refused"]
    assert "config prune_25 holds other ids" in out["refused"] and "overwrite=True" in out["refused"]
    assert "Nothing was created on the Hub" in out["refused"]
    assert out["cli"].startswith("hf-prune: error: ") and "--overwrite" in out["cli"]
    main = hub.server.files("testuser/list", "dataset")
    other_ids = pq.read_table(other / DATA)["index"].to_numpy()
    assert sorted(p for p in main if p.startswith("data/")) == [DATA]  # prune_50 of the earlier push deleted
    assert pq.read_table(io.BytesIO(main[DATA]))["index"].to_numpy().tolist() == other_ids.tolist()
    assert out["commits"] == 5  # initial + first + both + half + the overwrite: the refusals wrote nothing


# ---------------------------------------------------------------------------------------------------- 4. rollback


OTHER_CLIENT = """
import sys
from huggingface_hub import HfApi
HfApi().upload_file(path_or_fileobj=b"their work", path_in_repo="theirs.txt", repo_id=sys.argv[1],
                    repo_type="dataset", revision=sys.argv[2], commit_message="another client")
"""


def test_rollback_leaves_a_repo_or_branch_another_client_committed_to(hub, tmp_path):  # noqa: F811
    folder = _folder(tmp_path / "list")
    proc = run_with_hub(hub, f"""
        import json, subprocess, sys
        from huggingface_hub import HfApi
        from hf_prune.export import HubPushError, push_folder_to_hub

        OTHER_CLIENT = {OTHER_CLIENT!r}
        real_commit = HfApi.create_commit

        def commit_after_another_client(self, repo_id, *args, revision=None, **kwargs):
            if kwargs.get("commit_message", "").startswith("Upload pruned index list"):
                # another process commits between our create_repo / create_branch and our commit ...
                subprocess.run([sys.executable, "-c", OTHER_CLIENT, repo_id, revision or "main"], check=True)
                raise OSError("connection reset by peer")  # ... and then our commit fails
            return real_commit(self, repo_id, *args, revision=revision, **kwargs)

        HfApi.create_commit = commit_after_another_client
        out = {{}}
        for key, repo, revision in [("repo", "testuser/shared", None), ("branch", "testuser/base", "dev")]:
            if revision:
                HfApi().create_repo(repo, repo_type="dataset")
            try:
                push_folder_to_hub({str(folder)!r}, repo, revision=revision)
            except HubPushError as err:
                out[key] = str(err)
        print(json.dumps(out))
    """)  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "connection reset by peer" in out["repo"]
    assert "The repo testuser/shared, created by this push, was left in place" in out["repo"]
    assert "'another client'" in out["repo"]
    assert hub.server.files("testuser/shared", "dataset")["theirs.txt"] == b"their work"
    assert "The branch 'dev' of testuser/base, created by this push, was left in place" in out["branch"]
    assert hub.server.files("testuser/base", "dataset", "dev")["theirs.txt"] == b"their work"


# ---------------------------------------------------------------------------------------------------- 5. concurrency

PUSHER = """
import json, sys, time
from pathlib import Path
from hf_prune.export import HubPushError, push_folder_to_hub
folder, me, other, barrier = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
out = []
for round in range(3):
    (barrier / f"{me}-{round}").touch()
    while not (barrier / f"{other}-{round}").exists():
        time.sleep(0.001)
    try:
        out.append(["ok", push_folder_to_hub(folder, f"testuser/race-{round}")])
    except HubPushError as err:
        out.append(["refused", str(err)])
print(json.dumps(out))
"""


def test_two_processes_pushing_different_lists_to_one_new_repo(hub, tmp_path):  # noqa: F811
    folders = [_folder(tmp_path / "a", _result(seed=0)), _folder(tmp_path / "b", _result(seed=1))]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    (tmp_path / "cwd").mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", PUSHER, str(folder), me, other, str(barrier)], env=hub.env,
                         cwd=tmp_path / "cwd", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for folder, me, other in [(folders[0], "a", "b"), (folders[1], "b", "a")]
    ]  # fmt: skip
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    for round in range(3):
        results = [outs[0][round], outs[1][round]]
        assert sorted(r[0] for r in results) == ["ok", "refused"], results  # exactly one push wins
        refused = next(r[1] for r in results if r[0] == "refused")
        assert (
            "already holds a different index list" in refused or "moved while this push was being prepared" in refused
        )
        winner = folders[[r[0] for r in results].index("ok")]
        files = hub.server.files(f"testuser/race-{round}", "dataset")
        card = yaml.safe_load(files["README.md"].decode().split("---")[1])
        assert sorted(p for p in files if p.startswith("data/")) == [DATA]  # exactly what the card lists
        assert card["pruning"]["lists"]["prune_25"]["index_sha256"] == _card(winner)["pruning"]["index_sha256"]
        ids = pq.read_table(io.BytesIO(files[DATA]))["index"].to_numpy()
        assert index_sha256(ids) == card["pruning"]["index_sha256"]


def test_a_push_refuses_a_folder_whose_card_lists_a_missing_image(tmp_path):
    folder = _folder(tmp_path / "list")
    readme = folder / "README.md"
    readme.write_text(readme.read_text() + "\n![a map](images/map.png)\n![escape](../../etc/passwd.png)\n")
    with pytest.raises(FileNotFoundError, match="the card shows images/map.png, which is not in the folder"):
        push_folder_to_hub(folder, "someone/list", token="hf_unused")
    (folder / "images").mkdir()
    (folder / "images" / "map.png").write_bytes(b"\x89PNG")
    with pytest.raises(ValueError, match="an image link in the card's text` climbs out of the folder"):
        push_folder_to_hub(folder, "someone/list", token="hf_unused")
    assert issubclass(HubPushError, RuntimeError)


# ---------------------------------------------------------------------------------------------------- on the Hub


def test_crafted_lists_on_the_hub_are_refused(hub, tmp_path):  # noqa: F811
    """The same crafted lists as repos on the loopback Hub, uploaded with the plain client, loaded with hf_prune."""
    victim = _folder(tmp_path / "victim", _result(seed=3))
    crafted = {}

    def craft(name, edit=None, ids=None):
        folder = _folder(tmp_path / name)
        if ids is not None:
            _write_ids(folder, ids)
        if edit is not None:
            _edit(folder, edit)
        crafted[name] = str(folder)

    victim_ids = pq.read_table(victim / DATA)["index"].to_numpy()

    def into_victim(m):  # read another repo's files from the local cache
        m["configs"][0]["data_files"][0]["path"] = (
            "../../../datasets--testuser--victim/snapshots/*/data/prune_25/*.parquet"
        )
        m["pruning"]["lists"]["prune_25"].update(kept=int(victim_ids.size), index_sha256=index_sha256(victim_ids))

    craft("traversal", into_victim)
    craft("absolute", lambda m: m["configs"][0]["data_files"][0].update(path="/etc/*.parquet"))
    craft("config-name", lambda m: m["pruning"].update(lists={"../../x": m["pruning"]["lists"]["prune_25"]}))
    craft("injection", lambda m: m["pruning"]["source"].update(repo_id=EVIL))
    craft("float-ids", ids=pa.array([0.0, 3.6, 5.0]))
    craft("null-id", ids=pa.array([0, None, 5], type=pa.int64()))
    craft("no-num-rows", lambda m: m["pruning"]["source"].pop("num_rows"))
    craft("huge-num-rows", lambda m: m["pruning"]["source"].update(num_rows=10**12))
    craft("no-checksum", lambda m: m["pruning"]["lists"]["prune_25"].pop("index_sha256"))
    proc = run_with_hub(hub, f"""
        import json
        from datasets import Dataset
        from huggingface_hub import HfApi, snapshot_download
        from hf_prune import PruneResult, load_pruned
        api = HfApi()
        crafted = {json.dumps(crafted)}
        for name, folder in [("victim", {str(victim)!r}), *crafted.items()]:
            api.create_repo(f"testuser/{{name}}", repo_type="dataset")
            api.upload_folder(repo_id=f"testuser/{{name}}", folder_path=folder, repo_type="dataset")
        snapshot_download("testuser/victim", repo_type="dataset")   # the victim's list is in the local cache
        out = {{}}
        for name in crafted:
            for how, load in [("load", lambda: PruneResult.load(f"testuser/{{name}}")),
                              ("apply", lambda: load_pruned(Dataset.from_dict({{"x": list(range({N}))}}), f"testuser/{{name}}"))]:
                try:
                    load()
                    out[f"{{name}} {{how}}"] = "no error"
                except Exception as err:
                    out[f"{{name}} {{how}}"] = f"{{type(err).__name__}}: {{err}}"
        print(json.dumps(out))
    """)  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {
        "traversal": "`configs[0].data_files` climbs out of the folder with '..'",
        "absolute": "`configs[0].data_files` is an absolute path",
        "config-name": "`pruning.lists` is not a valid config name ('../../x')",
        "injection": "`pruning.source.repo_id` is not a Hub repo id",
        "float-ids": "the `index` column holds double, not integers",
        "null-id": "the `index` column has 1 null id(s)",
        "no-num-rows": "`pruning.source.num_rows` is missing",
        "huge-num-rows": "`pruning.source.num_rows` is 1,000,000,000,000, outside [0, 10,000,000,000]",
        "no-checksum": "no `pruning.lists.prune_25.index_sha256`",
    }
    for name, text in expected.items():
        for how in ("load", "apply"):
            message = out[f"{name} {how}"]
            assert message.startswith(("ValueError:", "FileNotFoundError:")) and text in message, (name, how, message)
            assert "testuser" in message or "snapshots" in message  # names the repo or its snapshot
