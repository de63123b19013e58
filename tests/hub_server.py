"""A small loopback stand-in for the Hugging Face Hub HTTP API, for tests.

Why this exists
---------------
The test machines have no internet access, so nothing can reach huggingface.co.
``huggingface_hub``'s own test suite talks to a staging Hub, which is not an option
here either. ``LoopbackHub`` is a stdlib-only HTTP server bound to 127.0.0.1 that
speaks the subset of the Hub API that the *real, unmodified* ``huggingface_hub``
(2.x) and ``datasets`` (5.x) clients use, so code under test can push and load
datasets end to end. Point the clients at it with ``HF_ENDPOINT=<hub.url>`` (they
read it at import time, so use a subprocess: see ``tests/hub_fixtures.py``) and set
``HF_HUB_DISABLE_XET=1`` (Xet storage is not implemented; the client then falls back
to the LFS batch protocol, which is).

What it speaks
--------------
* ``GET  /api/whoami-v2``; ``POST /api/repos/create``; ``DELETE /api/repos/delete``;
  ``POST /api/validate-yaml``; ``PUT /api/{type}s/{id}/settings`` (private flag)
* ``GET  /api/{type}s/{id}[/revision/{rev}]`` (repo_info / dataset_info, with ``siblings``)
* ``GET  /api/{type}s/{id}/tree/{rev}[/{path}]?recursive=&expand=`` (paginated via ``Link``)
* ``POST /api/{type}s/{id}/paths-info/{rev}``; ``GET .../refs``; ``GET .../commits/{rev}``
* ``POST /api/{type}s/{id}/preupload/{rev}`` and ``POST .../commit/{rev}`` (NDJSON;
  inline base64 files, ``lfsFile`` pointers, deletions, ``parentCommit``, ``create_pr``)
* ``POST|DELETE .../branch/{name}`` and ``POST .../tag/{rev}``, ``DELETE .../tag/{name}``
* ``POST /{prefix}{id}.git/info/lfs/objects/batch`` (basic upload transfer) + ``/verify``;
  the upload ``href`` points back at this server (``PUT /lfs-upload/{oid}``, HMAC-signed)
* ``HEAD|GET /{prefix}{id}/resolve/{rev}/{path}`` with ``ETag``, ``X-Repo-Commit``,
  ``Content-Length``, ``X-Linked-*`` for LFS files and ``Range`` requests
Everything else answers 404. Errors mimic the real Hub's ``X-Error-Code`` /
``X-Error-Message`` headers and JSON ``{"error": ...}`` bodies, which is what
``huggingface_hub.utils.hf_raise_for_status`` maps to ``RepositoryNotFoundError``,
``RevisionNotFoundError``, ``RemoteEntryNotFoundError``, ``BadRequestError``, ...

Model
-----
Blobs are content-addressed files in a temp dir; commits are immutable snapshots
(``path -> blob``) keyed by a 40-hex sha; branches, tags and ``refs/pr/N`` map names to
commit shas. A commit is validated completely before any ref moves, so a rejected
commit changes nothing. Auth: ``tokens`` maps bearer tokens to user names. A bearer
token that is not in ``tokens`` gets 401 "Invalid credentials in Authorization header"
on every endpoint (as on the real Hub); anonymous requests may read public repos only;
writes need a token whose user owns the namespace (or is listed in ``orgs``).
Not implemented: Xet, multipart LFS, discussions, gating, spaces runtime, buckets.
"""

from __future__ import annotations

import base64
import collections
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit


try:  # optional: only used to validate README YAML and to fill `cardData`
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

API_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub sends files >= 10MB to LFS
PAGE_SIZE, PAGE_SIZE_EXPAND = 1000, 50
LFS_EXTENSIONS = (
    "7z arrow bin bz2 ckpt ftz gz h5 joblib mlmodel model msgpack npy npz onnx ot parquet pb pickle pkl pt pth "
    "rar safetensors tar tflite tgz wasm xz zip zst mp3 wav flac jpg jpeg png webp mp4"
).split()
DEFAULT_GITATTRIBUTES = "".join(f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in LFS_EXTENSIONS)
DEFAULT_GITATTRIBUTES += "*tfevents* filter=lfs diff=lfs merge=lfs -text\n"
YAML_BLOCK = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")


class HubError(Exception):
    """An error answered as JSON, with the Hub's X-Error-Code / X-Error-Message headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.body = body or {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int
    git_oid: str  # sha1 of the git blob (of the LFS pointer file for LFS files)
    lfs: bool
    pointer_size: int = 0

    @property
    def etag(self) -> str:  # what the Hub puts in ETag: git sha1, or sha256 for LFS files
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    files: dict  # path -> Blob; never mutated once the commit exists
    title: str
    message: str
    author: str
    date: str


@dataclass
class Repo:
    type: str
    id: str
    private: bool
    created_at: str
    commits: dict = field(default_factory=dict)  # oid -> Commit
    branches: dict = field(default_factory=dict)  # name -> oid
    tags: dict = field(default_factory=dict)  # name -> oid
    prs: dict = field(default_factory=dict)  # number -> oid

    @property
    def url_path(self) -> str:
        return URL_PREFIX[self.type] + self.id


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def _json(obj, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(obj, default=str).encode()
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _not_found_repo() -> HubError:
    return HubError(404, "Repository not found", "RepoNotFound")


def _bool_param(query: dict, name: str) -> bool:
    return query.get(name, ["false"])[-1].lower() in ("1", "true", "yes")


class LoopbackHub:
    """In-process fake Hub. ``with LoopbackHub(tokens={"hf_x": "alice"}) as hub: hub.url``."""

    def __init__(self, tokens: dict | None = None, orgs: dict | None = None, root: str | Path | None = None):
        self.tokens = dict(tokens or {})  # bearer token -> user name
        self.orgs = {org: set(members) for org, members in (orgs or {}).items()}  # org -> user names
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="loopback-hub-")) if root is None else Path(root)
        self._blob_dir = self.root / "blobs"
        self._blob_dir.mkdir(parents=True, exist_ok=True)
        self._repos: dict[tuple[str, str], Repo] = {}
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(16)
        self._counter = 0
        self._current_path = ""
        self.requests: collections.deque = collections.deque(maxlen=2000)  # (method, path, status)
        self.errors: list[str] = []  # tracebacks of unexpected server-side exceptions
        # Transport faults to inject: (HTTP method, path fragment) -> the connection is closed without a response,
        # as a dropped network connection would (the client sees a transport error, not an HTTP status).
        self.drop_connections: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LoopbackHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LoopbackHub:
        if self._server is None:
            handler = type("BoundHandler", (_Handler,), {"hub": self})
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ direct inspection (tests)
    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """Snapshot of a revision as {path: content}, read straight from storage."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            commit = self._commit_at(repo, revision)
            return {p: self._read_blob(b) for p, b in commit.files.items()}

    # ------------------------------------------------------------------ storage helpers
    def _store(self, data: bytes, lfs: bool) -> Blob:
        sha = hashlib.sha256(data).hexdigest()
        path = self._blob_dir / sha
        if not path.exists():
            tmp = path.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_bytes(data)
            tmp.replace(path)
        return self._blob(sha, len(data), data, lfs)

    def _blob(self, sha: str, size: int, data: bytes | None, lfs: bool) -> Blob:
        if not lfs:
            return Blob(sha, size, _git_blob_oid(data), False)
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n".encode()
        return Blob(sha, size, _git_blob_oid(pointer), True, len(pointer))

    def _read_blob(self, blob: Blob) -> bytes:
        return (self._blob_dir / blob.sha256).read_bytes()

    def _new_commit(self, repo: Repo, parent: str | None, files: dict, title: str, message: str, author: str):
        self._counter += 1
        listing = "".join(f"{p}\0{b.git_oid}\n" for p, b in sorted(files.items()))
        seed = f"{repo.type}/{repo.id}\n{parent}\n{author}\n{time.time_ns()}\n{self._counter}\n{title}\n{listing}"
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, files, title, message, author, _now())
        repo.commits[commit.oid] = commit
        return commit

    # ------------------------------------------------------------------ auth / lookup
    def _user(self, headers) -> str | None:
        auth = headers.get("Authorization") or ""
        if not auth:
            return None
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else auth.strip()
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def _can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (user == namespace or user in self.orgs.get(namespace, ()))

    def _require_write(self, user: str | None, namespace: str, what: str) -> None:
        if user is None:
            raise HubError(401, f"You must be authenticated to {what}")
        if not self._can_write(user, namespace):
            raise HubError(403, f"You don't have the rights to {what} under the namespace '{namespace}'")

    def _repo(self, repo_type: str, repo_id: str, user: str | None, write: bool = False) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        namespace = repo_id.split("/")[0]
        if repo is None or (repo.private and not self._can_write(user, namespace)):
            raise _not_found_repo()
        if write:
            self._require_write(user, namespace, f"write to {repo_type} repositories")
        return repo

    def _resolve(self, repo: Repo, rev: str) -> str | None:
        candidates = (("", repo.branches), ("refs/heads/", repo.branches), ("", repo.tags), ("refs/tags/", repo.tags))
        for prefix, refs in candidates:
            if rev.startswith(prefix) and rev[len(prefix):] in refs:
                return refs[rev[len(prefix):]]
        if rev.startswith("refs/pr/") and rev[8:].isdigit() and int(rev[8:]) in repo.prs:
            return repo.prs[int(rev[8:])]
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            matches = [oid for oid in repo.commits if oid.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _commit_at(self, repo: Repo, rev: str) -> Commit:
        oid = self._resolve(repo, rev)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[oid]

    def _split_rev(self, repo: Repo, segs: list[str]) -> tuple[Commit, str]:
        """Split ``rev/path...`` segments. The client quotes ``/`` in revisions, but accept raw ones too."""
        for k in range(1, len(segs) + 1):
            if self._resolve(repo, "/".join(segs[:k])) is not None:
                return self._commit_at(repo, "/".join(segs[:k])), "/".join(segs[k:])
        raise HubError(404, f"Invalid rev id: {segs[0] if segs else ''}", "RevisionNotFound")

    # ------------------------------------------------------------------ entries
    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict | None:
        blob = commit.files.get(path)
        if blob is not None:
            out = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
            if blob.lfs:
                out["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
        else:
            listing = self._dir_listing(commit, path)
            if not listing:
                return None
            out = {"type": "directory", "oid": hashlib.sha1(repr(listing).encode()).hexdigest(), "path": path}
        if expand:
            out["lastCommit"] = self._last_commit(repo, commit, path)
        return out

    @staticmethod
    def _dir_listing(commit: Commit, path: str) -> tuple:
        prefix = path.rstrip("/") + "/" if path else ""
        return tuple((p, b.git_oid) for p, b in sorted(commit.files.items()) if p.startswith(prefix))

    def _last_commit(self, repo: Repo, commit: Commit, path: str) -> dict:
        def signature(c: Commit):
            blob = c.files.get(path)
            return blob.git_oid if blob is not None else self._dir_listing(c, path)

        current, sig = commit, signature(commit)
        while current.parent is not None and signature(repo.commits[current.parent]) == sig:
            current = repo.commits[current.parent]
        return {"id": current.oid, "title": current.title, "date": current.date}

    def _tree(self, repo: Repo, commit: Commit, path: str, recursive: bool, expand: bool) -> list[dict]:
        path = path.strip("/")
        prefix = path + "/" if path else ""
        below = [p for p in commit.files if p.startswith(prefix)]
        if path and not below:
            raise HubError(404, f"{path} does not exist on \"{commit.oid}\"", "EntryNotFound")
        dirs, files = set(), []
        for p in below:
            parts = p[len(prefix):].split("/")
            depth = len(parts) if recursive else min(2, len(parts))  # folders above the file, or the first only
            dirs.update(prefix + "/".join(parts[:i]) for i in range(1, depth))
            if recursive or len(parts) == 1:
                files.append(p)
        return [self._entry(repo, commit, p, expand) for p in sorted(dirs) + sorted(files)]

    def _is_lfs(self, commit: Commit, path: str, size: int, sample: bytes) -> bool:
        if size >= LFS_SIZE_THRESHOLD or b"\0" in sample:
            return True
        attributes = commit.files.get(".gitattributes")
        text = self._read_blob(attributes).decode(errors="replace") if attributes else ""
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and "filter=lfs" in parts[1:]:
                pattern = parts[0]
                if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern):
                    return True
        return False

    def _info(self, repo: Repo, commit: Commit, blobs: bool) -> dict:
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if blobs:
                sibling.update(size=blob.size, blobId=blob.git_oid)
                if blob.lfs:
                    sibling["lfs"] = {"size": blob.size, "sha256": blob.sha256, "pointerSize": blob.pointer_size}
            siblings.append(sibling)
        info = {
            "_id": hashlib.md5(f"{repo.type}/{repo.id}".encode()).hexdigest()[:24],
            "id": repo.id, "author": repo.id.split("/")[0], "sha": commit.oid, "private": repo.private,
            "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
            "createdAt": repo.created_at, "lastModified": commit.date, "siblings": siblings,
            "usedStorage": sum(b.size for b in commit.files.values()),
        }
        card = commit.files.get("README.md")
        if card is not None and yaml is not None:
            match = YAML_BLOCK.match(self._read_blob(card).decode(errors="replace"))
            try:
                data = yaml.safe_load(match.group(2)) if match else None
            except yaml.YAMLError:
                data = None
            if isinstance(data, dict):
                info["cardData"] = data
        if repo.type == "model":
            info["modelId"] = repo.id
        return info

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, query: dict, headers, body: bytes) -> Response:
        segs = [unquote(s) for s in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        if segs[:1] == ["lfs-upload"] and len(segs) == 2 and method == "PUT":
            return self._lfs_put(segs[1], query, body)  # pre-signed URL: no Authorization header
        with self._lock:
            self._current_path = raw_path  # used to build pagination links
            user = self._user(headers)
            if segs[:1] == ["api"]:
                return self._api(method, segs[1:], query, headers, body, user)
            repo_type = "model"
            if segs and segs[0] in ("datasets", "spaces"):
                repo_type, segs = API_TYPES[segs[0]], segs[1:]
            if len(segs) >= 3 and segs[1].endswith(".git") and segs[2:5] == ["info", "lfs", "objects"]:
                repo = self._repo(repo_type, f"{segs[0]}/{segs[1][:-4]}", user, write=True)
                return self._lfs_batch(repo, segs[5:], body)
            if len(segs) >= 4 and segs[2] == "resolve" and method in ("GET", "HEAD"):
                repo = self._repo(repo_type, f"{segs[0]}/{segs[1]}", user)
                return self._resolve_file(repo, segs[3:], headers)
        raise HubError(404, f"Not found: {method} {raw_path}")

    def _api(self, method: str, segs: list[str], query: dict, headers, body: bytes, user: str | None) -> Response:
        payload = {}
        if body and "json" in (headers.get("Content-Type") or "") and "ndjson" not in headers.get("Content-Type"):
            try:
                payload = json.loads(body)
            except ValueError:
                raise HubError(400, "Invalid JSON body") from None
        route = (method, segs[0] if segs else "")
        if route == ("GET", "whoami-v2"):
            if user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            orgs = [{"type": "org", "name": org} for org, members in self.orgs.items() if user in members]
            return _json({"type": "user", "id": user, "name": user, "fullname": user, "orgs": orgs,
                          "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
        if route == ("POST", "validate-yaml"):
            return self._validate_yaml(payload.get("content", ""))
        if segs[:1] == ["repos"] and len(segs) == 2:
            return self._repos_endpoint(method, segs[1], payload, user)
        if len(segs) < 3 or segs[0] not in API_TYPES:
            raise HubError(404, f"Not found: /api/{'/'.join(segs)}")
        repo = self._repo(API_TYPES[segs[0]], f"{segs[1]}/{segs[2]}", user)
        action, rest = (segs[3], segs[4:]) if len(segs) > 3 else ("", [])
        if action in ("preupload", "commit", "branch", "tag", "settings") and method != "GET":
            self._require_write(user, segs[1], f"write to {repo.type} repositories")
        if method == "GET" and action in ("", "revision"):
            commit = self._commit_at(repo, "/".join(rest) if action else "main")
            return _json(self._info(repo, commit, _bool_param(query, "blobs")))
        if method == "GET" and action == "tree" and rest:
            commit, path = self._split_rev(repo, rest)
            return self._paginate(self._tree(repo, commit, path, _bool_param(query, "recursive"),
                                             _bool_param(query, "expand")), query, _bool_param(query, "expand"))
        if method == "POST" and action == "paths-info":
            commit = self._commit_at(repo, "/".join(rest))
            if "json" in (headers.get("Content-Type") or ""):
                paths, expand = payload.get("paths", []), bool(payload.get("expand"))
            else:
                form = parse_qs(body.decode(), keep_blank_values=True)
                paths, expand = form.get("paths", []), _bool_param(form, "expand")
            entries = [self._entry(repo, commit, p.strip("/"), expand) for p in paths]
            return _json([e for e in entries if e is not None])
        if method == "GET" and action == "refs":
            def refs(kind, items):
                return [{"name": str(n), "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in items.items()]
            out = {"branches": refs("heads", repo.branches), "tags": refs("tags", repo.tags), "converts": []}
            if _bool_param(query, "include_prs"):
                out["pullRequests"] = refs("pr", repo.prs)
            return _json(out)
        if method == "GET" and action == "commits" and rest:
            commit, items = self._commit_at(repo, "/".join(rest)), []
            while commit is not None:
                items.append({"id": commit.oid, "title": commit.title, "message": commit.message, "date": commit.date,
                              "authors": [{"user": commit.author}]})
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return _json(items)
        if method == "POST" and action == "preupload" and rest:
            return self._preupload(repo, "/".join(rest), payload)
        if method == "POST" and action == "commit" and rest:
            return self._commit(repo, "/".join(rest), body, query, user)
        if action == "branch" and rest and method in ("POST", "DELETE"):
            return self._branch(repo, method, "/".join(rest), payload)
        if action == "tag" and rest and method in ("POST", "DELETE"):
            return self._tag(repo, method, "/".join(rest), payload)
        if method == "PUT" and action == "settings":
            if "private" in payload or "visibility" in payload:
                repo.private = bool(payload.get("private", payload.get("visibility") == "private"))
            return _json({})
        raise HubError(404, f"Not found: {method} /api/{'/'.join(segs)}")

    def _paginate(self, items: list, query: dict, expand: bool) -> Response:
        size = PAGE_SIZE_EXPAND if expand else PAGE_SIZE
        start = int(query.get("cursor", ["0"])[-1] or 0)
        headers = {}
        if start + size < len(items):
            params = "&".join(f"{k}={quote(v[-1])}" for k, v in query.items() if k != "cursor")
            headers["Link"] = f'<{self.url}{self._current_path}?{params}&cursor={start + size}>; rel="next"'
        return _json(items[start:start + size], headers=headers)

    # ------------------------------------------------------------------ repos
    def _repos_endpoint(self, method: str, action: str, payload: dict, user: str | None) -> Response:
        name, namespace = payload.get("name") or "", payload.get("organization") or user
        repo_type = payload.get("type") or "model"
        if namespace is None:
            raise HubError(401, "You must be authenticated to manage repositories")
        if repo_type not in URL_PREFIX or not re.fullmatch(r"[\w.-]{1,96}", name):
            raise HubError(400, f"Invalid repo name or type: {name!r} ({repo_type})")
        repo_id = f"{namespace}/{name}"
        if (method, action) == ("POST", "create"):
            self._require_write(user, namespace, f"create a {repo_type}")
            url = f"{self.url}/{URL_PREFIX[repo_type]}{repo_id}"
            if (repo_type, repo_id) in self._repos:
                raise HubError(409, "You already created this repo", headers={"X-Error-Url": url}, body={"url": url})
            private = payload.get("private", payload.get("visibility") == "private")
            repo = Repo(repo_type, repo_id, bool(private), _now())
            blob = self._store(DEFAULT_GITATTRIBUTES.encode(), lfs=False)
            repo.branches["main"] = self._new_commit(repo, None, {".gitattributes": blob}, "initial commit", "",
                                                     user).oid
            self._repos[(repo_type, repo_id)] = repo
            return _json({"url": url, "name": repo_id, "id": repo_id})
        if (method, action) == ("DELETE", "delete"):
            self._repo(repo_type, repo_id, user)  # 404 first, like the Hub
            self._require_write(user, namespace, f"delete a {repo_type}")
            del self._repos[(repo_type, repo_id)]
            return _json({})
        raise HubError(404, f"Not found: {method} /api/repos/{action}")

    def _validate_yaml(self, content: str) -> Response:
        match = YAML_BLOCK.match(content)
        if match and yaml is not None:
            try:
                data = yaml.safe_load(match.group(2))
            except yaml.YAMLError as err:
                message = f"Invalid YAML in README.md metadata: {err}"
                return _json({"error": message, "errors": [{"message": message}]}, 400)
            if data is not None and not isinstance(data, dict):
                message = "README.md metadata must be a YAML mapping"
                return _json({"error": message, "errors": [{"message": message}]}, 400)
        return _json({"errors": [], "warnings": []})

    def _branch(self, repo: Repo, method: str, name: str, payload: dict) -> Response:
        if method == "DELETE":
            if name not in repo.branches:
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            if name == "main":
                raise HubError(403, "Cannot delete the default branch")
            del repo.branches[name]
            return _json({})
        if name.startswith("refs/") or not re.fullmatch(r"[\w./-]+", name) or ".." in name:
            raise HubError(400, f"Invalid branch name: {name}")
        if name in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{name}")
        start = payload.get("startingPoint") or "main"
        repo.branches[name] = self._commit_at(repo, start).oid
        return _json({})

    def _tag(self, repo: Repo, method: str, rev_or_tag: str, payload: dict) -> Response:
        if method == "DELETE":
            if rev_or_tag not in repo.tags:
                raise HubError(404, f"Invalid rev id: {rev_or_tag}", "RevisionNotFound")
            del repo.tags[rev_or_tag]
            return _json({})
        tag = payload.get("tag") or ""
        if not re.fullmatch(r"[\w./-]+", tag) or tag.startswith("refs/") or ".." in tag:
            raise HubError(400, f"Invalid tag name: {tag!r}")
        if tag in repo.tags:
            raise HubError(409, f"Tag already exists: refs/tags/{tag}")
        repo.tags[tag] = self._commit_at(repo, rev_or_tag).oid
        return _json({})

    # ------------------------------------------------------------------ uploads
    def _branch_head(self, repo: Repo, rev: str) -> tuple[str, str | int]:
        """Resolve a commit target: a branch (``main``, ``refs/heads/x``) or ``refs/pr/N``."""
        name = rev[len("refs/heads/"):] if rev.startswith("refs/heads/") else rev
        if name in repo.branches:
            return repo.branches[name], name
        if rev.startswith("refs/pr/") and rev[8:].isdigit() and int(rev[8:]) in repo.prs:
            return repo.prs[int(rev[8:])], int(rev[8:])
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _preupload(self, repo: Repo, rev: str, payload: dict) -> Response:
        head = repo.commits[self._branch_head(repo, rev)[0]]
        ignore = payload.get("gitIgnore")
        if ignore is None and ".gitignore" in head.files:
            ignore = self._read_blob(head.files[".gitignore"]).decode(errors="replace")
        patterns = [line.strip() for line in (ignore or "").splitlines() if line.strip() and line[0] != "#"]
        out = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "")
            existing = head.files.get(path)
            ignored = any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in patterns)
            out.append({"path": path, "uploadMode": "lfs" if self._is_lfs(head, path, size, sample) else "regular",
                        "shouldIgnore": ignored, "oid": existing.etag if existing else None})
        return _json({"files": out, "commitOid": head.oid})

    def _lfs_batch(self, repo: Repo, segs: list[str], body: bytes) -> Response:
        payload = json.loads(body or b"{}")
        lfs_headers = {"Content-Type": "application/vnd.git-lfs+json"}
        if segs == ["verify"]:
            oid, size = payload.get("oid", ""), payload.get("size")
            path = self._blob_dir / oid
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not path.exists() or path.stat().st_size != size:
                raise HubError(404, f"LFS object {oid} not found")
            return _json({}, headers=lfs_headers)
        if segs != ["batch"] or payload.get("operation") != "upload":
            raise HubError(400, "Only the 'upload' operation of the LFS batch API is supported")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid", "")), obj.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": oid, "size": size if isinstance(size, int) else 0,
                                "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            entry = {"oid": oid, "size": size, "authenticated": True}
            if not (self._blob_dir / oid).exists():
                sig = hmac.new(self._secret, f"{oid}:{size}".encode(), "sha256").hexdigest()
                verify = f"{self.url}/{repo.url_path}.git/info/lfs/objects/verify"
                entry["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{oid}?size={size}&sig={sig}"},
                                    "verify": {"href": verify}}
            objects.append(entry)
        return _json({"transfer": "basic", "objects": objects}, headers=lfs_headers)

    def _lfs_put(self, oid: str, query: dict, body: bytes) -> Response:
        size = query.get("size", ["-1"])[-1]
        expected = hmac.new(self._secret, f"{oid}:{size}".encode(), "sha256").hexdigest()
        if not hmac.compare_digest(expected, query.get("sig", [""])[-1]):
            raise HubError(403, "Invalid or missing upload signature")
        if len(body) != int(size) or hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match the announced oid/size")
        self._store(body, lfs=True)
        return Response(200, b"", {"ETag": f'"{oid}"'})

    def _commit(self, repo: Repo, rev: str, body: bytes, query: dict, user: str) -> Response:
        head_oid, ref = self._branch_head(repo, rev)
        try:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        except ValueError:
            raise HubError(400, "Invalid NDJSON commit payload") from None
        header = next((line["value"] for line in lines if line.get("key") == "header"), None)
        if not header or not header.get("summary"):
            raise HubError(400, "Commit header with a non-empty summary is required")
        parent = header.get("parentCommit")
        if parent and not head_oid.startswith(parent):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files, pending = dict(repo.commits[head_oid].files), {}  # validated in full before anything is stored
        for line in lines:
            key, value = line.get("key"), line.get("value") or {}
            if key == "header":
                continue
            path = value.get("path", "")
            parts = (path.rstrip("/") if key == "deletedFolder" else path).split("/")
            if path.startswith("/") or parts[0] == ".git" or any(p in ("", ".", "..") for p in parts):
                raise HubError(400, f"Invalid path in commit: {path!r}")
            if key == "file":
                content = value.get("content", "")
                try:
                    base64_encoded = value.get("encoding") == "base64"
                    data = base64.b64decode(content, validate=True) if base64_encoded else content.encode()
                except ValueError:
                    raise HubError(400, f"Invalid base64 content for {path}") from None
                pending[path] = data
                files[path] = self._blob(hashlib.sha256(data).hexdigest(), len(data), data, lfs=False)
            elif key == "lfsFile":
                oid, blob_path = str(value.get("oid", "")), self._blob_dir / str(value.get("oid", ""))
                if not re.fullmatch(r"[0-9a-f]{64}", oid) or not blob_path.exists():
                    raise HubError(400, f"Your push was rejected because an LFS pointer pointed to a file that does "
                                        f"not exist: {path} ({oid})")
                size = blob_path.stat().st_size
                if value.get("size") is not None and int(value["size"]) != size:
                    raise HubError(400, f"LFS object {oid} has size {size}, not {value['size']}")
                files[path] = self._blob(oid, size, None, lfs=True)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unknown commit operation key: {key!r}")
        for data in pending.values():
            self._store(data, lfs=False)
        create_pr = _bool_param(query, "create_pr")
        commit = self._new_commit(repo, head_oid, files, header["summary"], header.get("description") or "", user)
        pr_url = None
        if create_pr:
            number = max(repo.prs, default=0) + 1
            repo.prs[number] = commit.oid
            pr_url = f"{self.url}/{repo.url_path}/discussions/{number}"
        elif isinstance(ref, int):
            repo.prs[ref] = commit.oid
        else:
            repo.branches[ref] = commit.oid
        return _json({"success": True, "commitOid": commit.oid, "commitUrl": f"{self.url}/{repo.url_path}/commit/"
                      f"{commit.oid}", "pullRequestUrl": pr_url, "hookOutput": ""})

    # ------------------------------------------------------------------ downloads
    def _resolve_file(self, repo: Repo, segs: list[str], headers) -> Response:
        commit, path = self._split_rev(repo, segs)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": commit.oid})
        out = {"ETag": f'"{blob.etag}"', "X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream",
               "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"'}
        if blob.lfs:
            out.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
        data = self._read_blob(blob)
        rng = headers.get("Range")
        if rng:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            start, end = (match.group(1), match.group(2)) if match else ("", "")
            if match and start == "" and end:
                start, end = max(len(data) - int(end), 0), len(data) - 1
            elif match and start:
                start, end = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
            if not match or start == "" or start > end or start >= len(data):
                raise HubError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
            out["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(206, data[start:end + 1], out)
        return Response(200, data, out)


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP/1.1 adapter: reads the body (Content-Length or chunked), calls ``hub.handle``."""

    hub: LoopbackHub
    protocol_version = "HTTP/1.1"
    server_version = "LoopbackHub/1.0"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self):
        split = urlsplit(self.path)
        request_id = secrets.token_hex(8)
        if any(self.command == method and fragment in split.path for method, fragment in self.hub.drop_connections):
            self._read_body()
            self.hub.requests.append((self.command, self.path, "dropped"))
            self.close_connection = True
            return
        try:
            body = self._read_body()
            response = self.hub.handle(self.command, split.path, parse_qs(split.query, keep_blank_values=True),
                                       self.headers, body)
        except HubError as err:
            headers = {"X-Error-Message": " ".join(err.message.split()).encode("latin-1", "replace").decode("latin-1"),
                       **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            response = _json({"error": err.message, **err.body}, err.status, headers)
        except Exception:  # a bug in the fake: report it loudly, as a 500
            self.hub.errors.append(traceback.format_exc())
            response = _json({"error": "LoopbackHub internal error:\n" + traceback.format_exc()}, 500)
        self.hub.requests.append((self.command, self.path, response.status))
        self.send_response(response.status)
        for name, value in {"X-Request-Id": request_id, **response.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch
