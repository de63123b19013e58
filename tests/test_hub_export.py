"""Publishing and consuming index lists through the real `huggingface_hub` / `datasets` clients, against the
loopback Hub (tests/hub_server.py). Client code runs in subprocesses (the clients read HF_ENDPOINT at import time);
each subprocess runs many steps because importing hf_prune (torch, transformers) costs seconds.
"""

from __future__ import annotations

import json


try:
    from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (fixture registration)
except ImportError:  # tests/ on sys.path but not the project root
    from hub_fixtures import hub, run_with_hub  # noqa: F401


# Shared by the subprocesses: a small run, two ratios, a source split with file names.
SETUP = """
import json, warnings
import numpy as np
from datasets import Dataset, load_dataset
from hf_prune import PruneResult, ScoreRecord, get_strategy
from hf_prune.export import HubPushError, load_pruned, model_card, push_folder_to_hub, push_results_to_hub

N = 80
rng = np.random.default_rng(0)
record = ScoreRecord.from_arrays({"p_target": rng.random((10, N))}, labels=np.arange(N) % 4,
                                 metadata={"seed": 5, "model": {"name_or_path": "tiny"}})
strategy = get_strategy("dyn_unc", window=4)
r25, r50 = strategy.select(record, prune_ratio=0.25), strategy.select(record, prune_ratio=0.5)
source = Dataset.from_dict({"file_name": [f"img_{i:03d}.png" for i in range(N)], "label": list(np.arange(N) % 4)})
out = {}
"""


def _out(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_push_consume_revisions_and_errors(hub):
    proc = run_with_hub(
        hub,
        SETUP
        + """
from huggingface_hub import HfApi
api = HfApi()

# 1. One result, repo id alone: create_repo + upload_folder, one commit; the URL of that commit comes back.
url = r25.push_to_hub("testuser/src-dyn-unc", source=("testuser/src", "train", "v0"), tag="v1", plot=False)
commits = api.list_repo_commits("testuser/src-dyn-unc", repo_type="dataset")
out["url"], out["commits"], out["head"] = url, len(commits), commits[0].commit_id

# 2. Consumers with nothing but datasets: load_dataset(repo_id)["index"], then .select / .filter(with_indices).
keep = load_dataset("testuser/src-dyn-unc", split="train")["index"]
out["select"] = source.select(keep)["file_name"] == [f"img_{i:03d}.png" for i in r25.kept_ids]
keep_set = set(keep)
filtered = source.filter(lambda _, i: i in keep_set, with_indices=True)
out["filter"] = filtered["file_name"] == [f"img_{i:03d}.png" for i in r25.kept_ids]

# 3. A new version with two ratios to main; the tag still serves the first one.
push_results_to_hub([r50, r25], "testuser/src-dyn-unc", source="testuser/src", commit_message="two ratios")
out["main_default"] = PruneResult.load("testuser/src-dyn-unc").prune_ratio
out["main_25"] = PruneResult.load("testuser/src-dyn-unc", config="prune_25").kept_ids.tolist() == r25.kept_ids.tolist()
out["tag_v1"] = PruneResult.load("testuser/src-dyn-unc", revision="v1").prune_ratio
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pruned = load_pruned(source, "testuser/src-dyn-unc", config="prune_50", source_revision="v0")
out["load_pruned"] = len(pruned) == r50.num_kept
out["main_warnings"] = [str(w.message) for w in caught]
try:
    load_pruned(source, "testuser/src-dyn-unc", revision="v1", source_revision="v2")
except ValueError as err:
    out["v1_error"] = str(err)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    load_pruned(source, "testuser/src-dyn-unc", revision="v1", source_revision="v2", force=True)
out["v1_warnings"] = [str(w.message) for w in caught]
out["ds_config_50"] = len(load_dataset("testuser/src-dyn-unc", "prune_50", split="train")) == r50.num_kept

# 4. A private repo with every row's score: PruneResult.load from the Hub restores removed rows' scores too.
r25.push_to_hub("testuser/private-list", private=True, all_scores=True, score_dtype="float64", plot=False)
out["private"] = api.dataset_info("testuser/private-list").private
out["all_scores"] = bool(np.array_equal(PruneResult.load("testuser/private-list").scores, r25.scores))

# 5. A branch revision is created and committed to; main is untouched.
r50.push_to_hub("testuser/src-dyn-unc", revision="dev", plot=False)
out["dev"] = PruneResult.load("testuser/src-dyn-unc", revision="dev").prune_ratio

# 6. Errors: missing repo / revision, wrong source length, existing tag.
def error(fn):
    try:
        fn()
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None
out["missing_repo"] = error(lambda: load_pruned(source, "testuser/nope"))
out["missing_rev"] = error(lambda: PruneResult.load("testuser/src-dyn-unc", revision="v9"))
out["short_source"] = error(lambda: load_pruned(Dataset.from_dict({"x": list(range(N - 3))}), "testuser/src-dyn-unc"))
out["tag_exists"] = error(lambda: r25.push_to_hub("testuser/src-dyn-unc", tag="v1"))
out["other_namespace"] = error(lambda: r25.push_to_hub("someone-else/list"))

# 7. A failed commit after the repo was created leaves no repo behind.
real_commit = HfApi.create_commit
def broken_commit(self, *args, **kwargs):
    raise OSError("connection reset while uploading")
HfApi.create_commit = broken_commit
out["broken_upload"] = error(lambda: r25.push_to_hub("testuser/rolled-back"))
HfApi.create_commit = real_commit
out["rolled_back_exists"] = api.repo_exists("testuser/rolled-back", repo_type="dataset")

# 8. A wrong token (argument or HF_TOKEN) and no token at all: refused before anything is created.
import os
r25.save("bad-token-list")
out["bad_token"] = error(lambda: push_folder_to_hub("bad-token-list", "testuser/list", token="hf_wrong"))
os.environ["HF_TOKEN"] = "hf_also_wrong"
out["bad_env_token"] = error(lambda: push_folder_to_hub("bad-token-list", "testuser/list"))
del os.environ["HF_TOKEN"]
out["no_token"] = error(lambda: push_folder_to_hub("bad-token-list", "testuser/list"))
os.environ["HF_TOKEN"] = "hf_test_token"

# 9. The model card of a model trained on the list, pushed to a model repo.
api.create_repo("testuser/tiny-pruned")
card = model_card("testuser/src-dyn-unc", result=r25, source="testuser/src", accuracy=0.9, full_accuracy=0.91,
                  eval_split="test")
card.push_to_hub("testuser/tiny-pruned")
print(json.dumps(out))
""",
    )
    out = _out(proc)
    assert out["url"] == f"{hub.url}/datasets/testuser/src-dyn-unc/commit/{out['head']}"
    assert out["commits"] == 2  # the repo's initial commit + exactly one upload commit
    assert out["select"] and out["filter"]
    assert out["main_default"] == 0.5 and out["main_25"] and out["tag_v1"] == 0.25
    assert out["load_pruned"] and out["ds_config_50"]
    # No recorded revision on main: nothing to compare; no content key or fingerprint: the warning says what was not
    # checked.
    assert len(out["main_warnings"]) == 1 and "only the row count (80)" in out["main_warnings"][0]
    assert "revision 'v0' of testuser/src, you loaded 'v2'" in out["v1_error"] and "force=True" in out["v1_error"]
    assert any("revision 'v0'" in w and "Applied anyway (force=True)" in w for w in out["v1_warnings"])
    assert out["dev"] == 0.5
    assert out["private"] is True and out["all_scores"] is True
    assert out["missing_repo"].startswith("FileNotFoundError: No dataset repo 'testuser/nope' on http://127.0.0.1")
    assert "has no revision 'v9'" in out["missing_rev"]
    assert "source dataset has 77 rows but the list was made on 80 rows" in out["short_source"]
    assert out["tag_exists"].startswith("HubPushError: testuser/src-dyn-unc already has a tag 'v1'")
    assert "cannot write to namespace 'someone-else'" in out["other_namespace"]
    assert "connection reset" in out["broken_upload"] and out["rolled_back_exists"] is False
    assert not hub.server.repo_exists("someone-else/list", "dataset")
    for key in ("bad_token", "bad_env_token"):
        assert out[key].startswith("HubPushError: The Hub at http://127.0.0.1")
        assert "rejected the token (HTTP 401)" in out[key] and "nothing was pushed" in out[key]
    assert out["no_token"].startswith("HubPushError: No Hugging Face token")
    assert not hub.server.repo_exists("testuser/list", "dataset")

    # What the Hub holds: the tag has one list, main two (the stale prune_25-only card replaced), dev one.
    tagged = hub.server.files("testuser/src-dyn-unc", "dataset", "v1")
    assert sorted(p for p in tagged if p.startswith("data/")) == ["data/prune_25/train-00000-of-00001.parquet"]
    card_v1 = tagged["README.md"].decode()
    assert 'load_dataset("testuser/src-dyn-unc", "prune_25", split="train")' in card_v1 and "<repo_id>" not in card_v1
    main = hub.server.files("testuser/src-dyn-unc", "dataset", "main")
    assert {p for p in main if p.endswith(".parquet")} == {
        "data/prune_25/train-00000-of-00001.parquet",
        "data/prune_50/train-00000-of-00001.parquet",
    }
    assert "images/score_histogram.png" in main and "pruning_provenance.json" in main
    dev = hub.server.files("testuser/src-dyn-unc", "dataset", "dev")
    assert {p for p in dev if p.endswith(".parquet")} == {"data/prune_50/train-00000-of-00001.parquet"}
    model_readme = hub.server.files("testuser/tiny-pruned", "model", "main")["README.md"].decode()
    assert "/datasets/testuser/src-dyn-unc" in model_readme and "90.00 %" in model_readme


def _saved_folder(path, **kwargs):
    """A two-ratio list saved in this process (no Hub involved), for subprocesses to push or load."""
    import numpy as np
    from datasets import Dataset

    from hf_prune import ScoreRecord, get_strategy
    from hf_prune.export import save_results

    rng = np.random.default_rng(0)
    record = ScoreRecord.from_arrays({"p_target": rng.random((10, 80))}, labels=np.arange(80) % 4)
    strategy = get_strategy("dyn_unc", window=4)
    results = [strategy.select(record, prune_ratio=r) for r in (0.25, 0.5)]
    source = Dataset.from_dict({"file_name": [f"img_{i:03d}.png" for i in range(80)]})
    save_results(results, path, source="testuser/src", source_dataset=source, content_key="file_name", **kwargs)
    return results


def test_offline_saved_folder_and_cached_repo(hub, tmp_path):
    folder = tmp_path / "list"
    results = _saved_folder(folder)
    kept = {name: r.kept_ids.tolist() for name, r in zip(["prune_25", "prune_50"], results)}
    # Online, with huggingface_hub alone: upload the folder and fetch it once so the cache holds it.
    run_with_hub(
        hub,
        f"""
from huggingface_hub import HfApi, snapshot_download
HfApi().create_repo("testuser/cached", repo_type="dataset")
HfApi().upload_folder(repo_id="testuser/cached", folder_path={str(folder)!r}, repo_type="dataset")
snapshot_download("testuser/cached", repo_type="dataset")
""",
    )
    # Offline, Hub unreachable: plain datasets honours the card's configs:, and the cached repo still loads.
    proc = run_with_hub(
        hub,
        f"""
import json
from datasets import Dataset, load_dataset
from huggingface_hub import constants
from hf_prune.export import load_pruned
assert constants.HF_HUB_OFFLINE
out = {{"default": list(load_dataset({str(folder)!r}, split="train")["index"]),
        "prune_50": list(load_dataset({str(folder)!r}, "prune_50", split="train")["index"])}}
shuffled = Dataset.from_dict({{"file_name": [f"img_{{i:03d}}.png" for i in range(80)]}}).shuffle(seed=1)
out["cached"] = sorted(load_pruned(shuffled, "testuser/cached", config="prune_50")["file_name"])
try:
    load_pruned(shuffled, "testuser/never-fetched")
except FileNotFoundError as err:
    out["not_cached"] = str(err)
print(json.dumps(out))
""",
        env={"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    out = _out(proc)
    assert out["default"] == kept["prune_25"] and out["prune_50"] == kept["prune_50"]
    assert out["cached"] == [f"img_{i:03d}.png" for i in kept["prune_50"]]
    assert "not in the local cache" in out["not_cached"]
