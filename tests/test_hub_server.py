"""Real ``huggingface_hub`` / ``datasets`` clients against the loopback Hub (tests/hub_server.py).

Client code runs in a subprocess (the clients read HF_ENDPOINT at import time), see
tests/hub_fixtures.py. A few protocol details are checked in-process with urllib.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest


try:
    from tests.hub_fixtures import HubHandle, hub, run_with_hub  # noqa: F401  (fixture registration)
except ImportError:  # tests/ on sys.path but not the project root
    from hub_fixtures import HubHandle, hub, run_with_hub  # noqa: F401


def _last_json(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _http(hub: HubHandle, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
          token: str | None = "default"):
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {hub.token if token == 'default' else token}"
    request = urllib.request.Request(hub.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _create(hub: HubHandle, repo_id: str, repo_type: str = "dataset", private: bool = False) -> None:
    namespace, name = repo_id.split("/")
    payload = {"name": name, "organization": namespace, "type": repo_type, "private": private}
    status, _, body = _http(hub, "POST", "/api/repos/create", json.dumps(payload).encode(),
                            {"Content-Type": "application/json"})
    assert status == 200, body


def _commit(hub: HubHandle, repo_id: str, ops: list[dict], summary: str = "commit", rev: str = "main"):
    lines = [{"key": "header", "value": {"summary": summary, "description": ""}}, *ops]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    return _http(hub, "POST", f"/api/datasets/{repo_id}/commit/{rev}", data, {"Content-Type": "application/x-ndjson"})


def _add(path: str, content: bytes) -> dict:
    return {"key": "file", "value": {"path": path, "encoding": "base64", "content": base64.b64encode(content).decode()}}


# Writes a parquet dataset with two configs ("a", "b") to a temp folder and uploads it with the real
# HfApi.upload_folder. Shared by the round-trip tests below.
UPLOAD_TWO_CONFIGS = """
import json, os, tempfile
import pyarrow as pa, pyarrow.parquet as pq
from huggingface_hub import HfApi

api = HfApi()
REPO = "testuser/pruned"

def make_folder(rows_a, rows_b):
    folder = tempfile.mkdtemp()
    for name, rows in (("a", rows_a), ("b", rows_b)):
        os.makedirs(f"{folder}/{name}", exist_ok=True)
        pq.write_table(pa.table({"idx": [r[0] for r in rows], "text": [r[1] for r in rows]}),
                       f"{folder}/{name}/train-00000-of-00001.parquet")
    with open(f"{folder}/README.md", "w") as f:
        f.write(
            "---\\nconfigs:\\n"
            "- config_name: a\\n  data_files:\\n  - split: train\\n    path: a/train-*\\n"
            "- config_name: b\\n  data_files:\\n  - split: train\\n    path: b/train-*\\n"
            "---\\n# Pruned subsets\\n"
        )
    return folder
"""


def test_upload_folder_then_load_dataset_configs_roundtrip(hub):
    proc = run_with_hub(hub, UPLOAD_TWO_CONFIGS + """
rows_a = [(0, "zero"), (3, "three"), (7, "seven")]
rows_b = [(1, "one")]
url = api.create_repo(REPO, repo_type="dataset", private=True, exist_ok=True)
assert url.repo_id == REPO and url.repo_type == "dataset", repr(url)
info = api.upload_folder(folder_path=make_folder(rows_a, rows_b), repo_id=REPO, repo_type="dataset",
                         commit_message="Add pruned subsets")
import datasets
loaded = {name: datasets.load_dataset(REPO, name=name, split="train") for name in ("a", "b")}
print(json.dumps({
    "commit": info.oid,
    "a": [[r["idx"], r["text"]] for r in loaded["a"]],
    "b": [[r["idx"], r["text"]] for r in loaded["b"]],
    "files": sorted(api.list_repo_files(REPO, repo_type="dataset")),
    "sha": api.dataset_info(REPO).sha,
}))
""")
    out = _last_json(proc)
    assert out["a"] == [[0, "zero"], [3, "three"], [7, "seven"]]
    assert out["b"] == [[1, "one"]]
    assert out["files"] == [".gitattributes", "README.md", "a/train-00000-of-00001.parquet",
                            "b/train-00000-of-00001.parquet"]
    assert out["sha"] == out["commit"]
    # parquet files went through the LFS batch API, the README inline
    paths = [path for _, path, _ in hub.server.requests]
    assert any(p.endswith("/datasets/testuser/pruned.git/info/lfs/objects/batch") for p in paths)
    assert hub.server.files("testuser/pruned", "dataset")["README.md"].startswith(b"---\nconfigs:")


def test_tagged_revision_and_branch_load_their_own_rows(hub):
    proc = run_with_hub(hub, UPLOAD_TWO_CONFIGS + """
api.create_repo(REPO, repo_type="dataset")
v1 = api.upload_folder(folder_path=make_folder([(0, "v1")], [(1, "v1")]), repo_id=REPO, repo_type="dataset",
                       commit_message="v1")
api.create_tag(REPO, tag="v1.0", repo_type="dataset", tag_message="first release")
api.create_branch(REPO, branch="exp", revision="v1.0", repo_type="dataset")
v2 = api.upload_folder(folder_path=make_folder([(5, "v2"), (6, "v2")], [(1, "v2")]), repo_id=REPO,
                       repo_type="dataset", commit_message="v2")
exp = api.upload_folder(folder_path=make_folder([(9, "exp")], [(1, "exp")]), repo_id=REPO, repo_type="dataset",
                        commit_message="experiment", revision="exp")
import datasets
def rows(**kw):
    return [r["idx"] for r in datasets.load_dataset(REPO, name="a", split="train", **kw)]
refs = api.list_repo_refs(REPO, repo_type="dataset")
print(json.dumps({
    "main": rows(), "tag": rows(revision="v1.0"), "branch": rows(revision="exp"), "sha": rows(revision=v1.oid),
    "tags": {t.name: t.target_commit for t in refs.tags},
    "branches": {b.name: b.target_commit for b in refs.branches},
    "v1": v1.oid, "v2": v2.oid, "exp": exp.oid,
    "commits": [c.title for c in api.list_repo_commits(REPO, repo_type="dataset", revision="exp")],
}))
""")
    out = _last_json(proc)
    assert out["main"] == [5, 6]
    assert out["tag"] == [0]
    assert out["sha"] == [0]
    assert out["branch"] == [9]
    assert out["tags"] == {"v1.0": out["v1"]}
    assert out["branches"] == {"main": out["v2"], "exp": out["exp"]}
    assert out["commits"] == ["experiment", "v1", "initial commit"]


def test_hf_hub_download_snapshot_and_paths_info_at_revision(hub):
    proc = run_with_hub(hub, """
import json
from huggingface_hub import HfApi, hf_hub_download, snapshot_download, get_paths_info
api = HfApi()
api.create_repo("testuser/tiny-model")  # model repo
first = api.upload_file(path_or_fileobj=b'{"v": 1}', path_in_repo="config.json", repo_id="testuser/tiny-model",
                        commit_message="first")
api.create_tag("testuser/tiny-model", tag="v1")
api.upload_file(path_or_fileobj=b'{"v": 2}', path_in_repo="config.json", repo_id="testuser/tiny-model")
api.upload_file(path_or_fileobj=b"\\0" * 64, path_in_repo="weights/w.bin", repo_id="testuser/tiny-model")
read = lambda **kw: open(hf_hub_download("testuser/tiny-model", "config.json", **kw)).read()
snapshot = snapshot_download("testuser/tiny-model")
infos = get_paths_info("testuser/tiny-model", ["config.json", "weights", "missing"])
print(json.dumps({
    "main": read(), "tag": read(revision="v1"), "sha": read(revision=first.oid),
    "snapshot": open(snapshot + "/weights/w.bin", "rb").read() == b"\\0" * 64,
    "infos": [(type(i).__name__, i.path) for i in infos],
    "lfs": api.model_info("testuser/tiny-model", files_metadata=True).siblings[-1].lfs is not None,
}))
""")
    out = _last_json(proc)
    assert out["main"] == '{"v": 2}'
    assert out["tag"] == out["sha"] == '{"v": 1}'
    assert out["snapshot"] is True
    assert out["infos"] == [["RepoFile", "config.json"], ["RepoFolder", "weights"]]
    assert out["lfs"] is True  # binary content is sent through LFS, like on the real Hub


def test_dataset_card_push_and_load(hub):
    proc = run_with_hub(hub, """
import json
from huggingface_hub import DatasetCard, DatasetCardData, HfApi
HfApi().create_repo("testuser/carded", repo_type="dataset")
data = DatasetCardData(license="apache-2.0", pretty_name="Pruned CIFAR", tags=["pruning"])
card = DatasetCard.from_template(data, template_str="---\\n{{ card_data }}\\n---\\n# {{ pretty_name }}\\nKept 50%.\\n")
card.push_to_hub("testuser/carded", repo_type="dataset", commit_message="Add card")
loaded = DatasetCard.load("testuser/carded", repo_type="dataset")
print(json.dumps({"license": loaded.data.license, "name": loaded.data.pretty_name, "tags": loaded.data.tags,
                  "text": loaded.text.strip()}))
""")
    out = _last_json(proc)
    assert out == {"license": "apache-2.0", "name": "Pruned CIFAR", "tags": ["pruning"],
                   "text": "# Pruned CIFAR\nKept 50%."}


def test_wrong_token_is_rejected_and_changes_nothing(hub):
    _create(hub, "testuser/existing")
    proc = run_with_hub(hub, """
import json, tempfile
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
bad = HfApi(token="hf_wrong_token")
out = {}
for name, call in {
    "create": lambda: bad.create_repo("testuser/never", repo_type="dataset", exist_ok=True),
    "upload": lambda: bad.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="testuser/existing",
                                      repo_type="dataset"),
    "anonymous": lambda: HfApi(token=False).create_repo("testuser/never2", repo_type="dataset"),
}.items():
    try:
        call()
        out[name] = "no error"
    except HfHubHTTPError as err:
        out[name] = [err.response.status_code, str(err)]
print(json.dumps(out))
""")
    out = _last_json(proc)
    assert out["create"][0] == 401 and "Invalid credentials in Authorization header" in out["create"][1]
    assert out["upload"][0] == 401 and "Invalid credentials" in out["upload"][1]
    assert out["anonymous"][0] == 401
    assert not hub.server.repo_exists("testuser/never", "dataset")
    assert not hub.server.repo_exists("testuser/never2", "dataset")
    assert list(hub.server.files("testuser/existing", "dataset")) == [".gitattributes"]


def test_missing_repo_revision_and_file_raise_the_hub_errors(hub):
    _create(hub, "testuser/present")
    proc = run_with_hub(hub, """
import json
import datasets
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError
api, out = HfApi(), {}
def expect(name, exc_type, call):
    try:
        call()
        out[name] = "no error"
    except exc_type as err:
        out[name] = type(err).__name__
expect("info", RepositoryNotFoundError, lambda: api.dataset_info("testuser/absent"))
expect("download", RepositoryNotFoundError, lambda: hf_hub_download("testuser/absent", "README.md",
                                                                    repo_type="dataset"))
expect("revision", RevisionNotFoundError, lambda: hf_hub_download("testuser/present", ".gitattributes",
                                                                  repo_type="dataset", revision="nope"))
expect("file", EntryNotFoundError, lambda: hf_hub_download("testuser/present", "nope.txt", repo_type="dataset"))
expect("load", datasets.exceptions.DatasetNotFoundError, lambda: datasets.load_dataset("testuser/absent"))
expect("delete", RepositoryNotFoundError, lambda: api.delete_repo("testuser/absent", repo_type="dataset"))
print(json.dumps(out))
""")
    assert _last_json(proc) == {"info": "RepositoryNotFoundError", "download": "RepositoryNotFoundError",
                                "revision": "RevisionNotFoundError", "file": "RemoteEntryNotFoundError",
                                "load": "DatasetNotFoundError", "delete": "RepositoryNotFoundError"}


def test_datasets_push_to_hub_roundtrip_and_delete_repo(hub):
    proc = run_with_hub(hub, """
import json
import datasets
from huggingface_hub import HfApi
ds = datasets.Dataset.from_dict({"idx": [4, 8, 15], "score": [0.5, 0.25, 1.0]})
ds.push_to_hub("testuser/pushed", config_name="top3", private=True)
back = datasets.load_dataset("testuser/pushed", "top3", split="train")
HfApi().delete_repo("testuser/pushed", repo_type="dataset")
print(json.dumps({"rows": back.to_dict(), "exists": HfApi().repo_exists("testuser/pushed", repo_type="dataset")}))
""")
    out = _last_json(proc)
    assert out == {"rows": {"idx": [4, 8, 15], "score": [0.5, 0.25, 1.0]}, "exists": False}


# ---------------------------------------------------------------------------- protocol details, in-process


def test_resolve_headers_and_range_requests(hub):
    _create(hub, "testuser/raw")
    status, _, body = _commit(hub, "testuser/raw", [_add("dir/data.txt", b"0123456789")])
    assert status == 200, body
    commit = json.loads(body)["commitOid"]
    status, headers, body = _http(hub, "GET", "/datasets/testuser/raw/resolve/main/dir/data.txt")
    assert (status, body) == (200, b"0123456789")
    assert headers["X-Repo-Commit"] == commit and headers["Content-Length"] == "10" and headers["ETag"]
    status, headers, body = _http(hub, "GET", "/datasets/testuser/raw/resolve/main/dir/data.txt",
                                  headers={"Range": "bytes=2-4"})
    assert (status, body, headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    assert _http(hub, "GET", f"/datasets/testuser/raw/resolve/{commit}/dir/data.txt",
                 headers={"Range": "bytes=-3"})[2] == b"789"
    assert _http(hub, "GET", "/datasets/testuser/raw/resolve/main/dir/data.txt", headers={"Range": "bytes=20-"})[0] == 416
    status, headers, _ = _http(hub, "HEAD", "/datasets/testuser/raw/resolve/main/missing.txt")
    assert (status, headers["X-Error-Code"], headers["X-Repo-Commit"]) == (404, "EntryNotFound", commit)
    assert _http(hub, "HEAD", "/datasets/testuser/raw/resolve/nope/dir/data.txt")[1]["X-Error-Code"] == "RevisionNotFound"
    assert _http(hub, "HEAD", "/datasets/testuser/gone/resolve/main/x")[1]["X-Error-Code"] == "RepoNotFound"


def test_invalid_commit_is_atomic(hub):
    _create(hub, "testuser/atomic")
    before = hub.server.files("testuser/atomic", "dataset")
    missing_lfs = {"key": "lfsFile", "value": {"path": "big.bin", "algo": "sha256", "oid": "a" * 64, "size": 3}}
    status, _, body = _commit(hub, "testuser/atomic", [_add("ok.txt", b"fine"), missing_lfs])
    assert status == 400 and b"LFS pointer" in body
    status, _, _ = _commit(hub, "testuser/atomic", [_add("ok.txt", b"fine"), _add("../escape", b"x")])
    assert status == 400
    status, headers, _ = _commit(hub, "testuser/atomic", [{"key": "deletedFile", "value": {"path": "nope"}}])
    assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")
    assert hub.server.files("testuser/atomic", "dataset") == before
    status, _, body = _http(hub, "GET", "/api/datasets/testuser/atomic/commits/main")
    assert [c["title"] for c in json.loads(body)] == ["initial commit"]


def test_auth_private_repos_and_tree_pagination(hub):
    _create(hub, "testuser/secret", private=True)
    assert _http(hub, "GET", "/api/datasets/testuser/secret", token=None)[1]["X-Error-Code"] == "RepoNotFound"
    status, headers, body = _http(hub, "GET", "/api/datasets/testuser/secret", token="hf_nope")
    assert status == 401 and json.loads(body)["error"].startswith("Invalid credentials")
    assert _http(hub, "GET", "/api/datasets/testuser/secret")[0] == 200
    status, _, _ = _commit(hub, "testuser/secret", [_add(f"f/{i:03d}.txt", b"%d" % i) for i in range(60)])
    assert status == 200
    status, headers, body = _http(hub, "GET", "/api/datasets/testuser/secret/tree/main/f?expand=true")
    assert status == 200 and len(json.loads(body)) == 50 and 'rel="next"' in headers["Link"]
    next_url = headers["Link"].split(">")[0].lstrip("<")
    status, headers, body = _http(hub, "GET", next_url[len(hub.url):])
    assert [e["path"] for e in json.loads(body)] == [f"f/{i:03d}.txt" for i in range(50, 60)]
    assert "Link" not in headers


@pytest.mark.parametrize("payload", [b'{"content": "---\\nlicense: [mit\\n---\\n"}', b'{"content": "---\\n- a\\n---\\n"}'])
def test_validate_yaml_rejects_broken_metadata(hub, payload):
    status, _, body = _http(hub, "POST", "/api/validate-yaml", payload, {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["errors"]
