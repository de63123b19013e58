"""Pushing index-list folders to the Hub and fetching them back, through `huggingface_hub` only.

A push is one commit made with `create_commit(..., parent_commit=<the branch head it was prepared against>)`, so a
client that commits in between makes it fail (HTTP 412) instead of being overwritten. It uploads exactly the regular
files that the folder's card lists (the card, `pruning_provenance.json`, every config's data files, the images the
card shows), deletes the `data/` and `images/` files the card no longer lists in the same commit, and refuses to
replace a different list on the branch unless `overwrite=True`. If it fails, it removes a repo or branch it created
only when that repo's or branch's history holds nothing but its own commits.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from .cards import REPO_ID_PLACEHOLDER
from .folder import save_results
from .index_list import (
    CARD_FILE,
    DATA_DIR,
    IMAGES_DIR,
    PROVENANCE_FILE,
    SCORES_CONFIG,
    choose_config,
    config_data_files,
    config_data_patterns,
    list_configs,
    looks_like_repo_id,
    read_card_metadata,
    read_index_list,
)
from .untrusted import (
    MAX_CARD_BYTES,
    allowed_roots,
    check_relative_path,
    check_revision,
    file_inside,
    read_bounded,
)


logger = logging.getLogger(__name__)

# Remote folders a push keeps in step with its card: what the card no longer lists there is deleted.
LAYOUT_DIRS = (DATA_DIR, IMAGES_DIR)
# Written into every push's commit description, so that a rollback can tell this push's commits from others'.
PUSH_ID_PREFIX = "hf_prune-push-id: "
_IMAGE_LINK = re.compile(r"!\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")


class HubPushError(RuntimeError):
    """A push was refused or failed; nothing was left half-pushed on the Hub (the message says what became of a repo
    or branch the push created)."""


def listed_files(folder: str | os.PathLike, metadata: dict | None = None) -> dict[str, Path]:
    """The files a push of `folder` uploads, `{path in the repo: real path}`: the card, `pruning_provenance.json`,
    the data files of every config the card lists, and the images the card shows (relative `![...](path)` links).

    Each is a regular file inside the folder: a link is resolved and must stay inside it (a link to a file elsewhere is
    refused, never uploaded); anything else in the folder is left out.

    Raises:
        `ValueError`: a listed path leaves the folder or is not a regular file (the message names the card field).
        `FileNotFoundError`: a config's data files or a linked image are missing.
    """
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    metadata = read_card_metadata(folder) if metadata is None else metadata
    roots = allowed_roots(folder)
    where = f"{folder}/{CARD_FILE}"
    card = file_inside(folder, folder / CARD_FILE, CARD_FILE, str(folder), roots)
    files = {CARD_FILE: card}
    if (folder / PROVENANCE_FILE).exists() or (folder / PROVENANCE_FILE).is_symlink():
        files[PROVENANCE_FILE] = file_inside(folder, folder / PROVENANCE_FILE, PROVENANCE_FILE, str(folder), roots)
    names, _ = list_configs(metadata)
    names += [c["config_name"] for c in metadata.get("configs") or [] if c["config_name"] not in names]
    for name in names:
        found = config_data_files(folder, metadata, name, roots)
        if not found:
            raise FileNotFoundError(f"{folder}: the data files of config {name!r} are missing.")
        files.update(found)
    text = DatasetCard(read_bounded(card, MAX_CARD_BYTES, CARD_FILE, str(folder)).decode("utf-8", "replace")).text
    for link in _IMAGE_LINK.findall(text):
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", link) or link.startswith("#"):
            continue  # a URL: shown from elsewhere, nothing to upload
        check_relative_path(link, "an image link in the card's text", where)
        path = folder / link
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"{where}: the card shows {link}, which is not in the folder; restore it.")
        files[link] = file_inside(folder, path, "an image link in the card's text", where, roots)
    return dict(sorted(files.items()))


def validate_folder(folder: str | os.PathLike) -> dict:
    """Checks that `folder` is a complete index list (card, every config's data, checksums, every listed path a
    regular file inside the folder); returns its metadata."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; write one with `PruneResult.save(dir)`.")
    metadata = read_card_metadata(folder)
    listed_files(folder, metadata)  # raises on missing files and on paths that leave the folder
    names, _ = list_configs(metadata)
    for name in names:
        if metadata["pruning"]["lists"][name].get("index_sha256") is None:
            raise ValueError(
                f"{folder}/{CARD_FILE}: `pruning.lists.{name}.index_sha256` is missing: a list is published with its "
                f"checksum, so that its users can verify it. Re-save it: `PruneResult.load(folder, config={name!r}, "
                "verify=False).save(new_folder)` writes it."
            )
        read_index_list(folder, name)  # raises on bad types, range, order or checksum
    return metadata


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _status(err: BaseException) -> int | None:
    return getattr(getattr(err, "response", None), "status_code", None)


def _check_token(api, token: str | None, namespace: str | None) -> str:
    """Returns the user name of `token` after checking it may write to `namespace`; raises `HubPushError`."""
    from huggingface_hub import get_token
    from huggingface_hub.errors import HfHubHTTPError

    if token is None and get_token() is None:
        raise HubPushError(
            f"No Hugging Face token: log in with `hf auth login`, set HF_TOKEN or pass `token=` to push to {_endpoint()}."
        )
    try:
        info = api.whoami(token=token)
    except HfHubHTTPError as err:
        raise HubPushError(
            f"The Hub at {_endpoint()} rejected the token (HTTP {_status(err)}): {err}. Check HF_TOKEN / `token=`; "
            "nothing was pushed."
        ) from err
    except Exception as err:  # transport errors (no network, DNS, TLS, timeouts) are not HfHubHTTPError
        raise HubPushError(
            f"Could not reach the Hub at {_endpoint()} to check the token ({type(err).__name__}: {err}). Nothing was "
            "pushed."
        ) from err
    user = info.get("name")
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise HubPushError(f"The token of {user!r} is read-only; pushing needs a write token. Nothing was pushed.")
    orgs = [o.get("name") for o in info.get("orgs") or []]
    if namespace is not None and namespace != user and namespace not in orgs:
        raise HubPushError(
            f"The token belongs to {user!r} (orgs: {orgs or 'none'}), which cannot write to namespace {namespace!r}. "
            "Nothing was pushed."
        )
    return user


def _branch_head(api, repo_id: str, branch: str) -> str | None:
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    return next((b.target_commit for b in refs.branches if b.name == branch), None)


def _remote_list(api, repo_id: str, commit: str) -> tuple[dict | None, str | None, list[str]]:
    """What the branch holds at `commit`: the metadata of an hf_prune card (or `None`), why the files are not an
    hf_prune list (or `None`: an hf_prune list, or an empty repo), and its files."""
    files = api.list_repo_files(repo_id, repo_type="dataset", revision=commit)
    if CARD_FILE not in files:
        layout = [f for f in files if f.split("/")[0] in LAYOUT_DIRS]
        return None, (f"it holds {layout[0]} but no {CARD_FILE}" if layout else None), files
    card = api.hf_hub_download(repo_id, CARD_FILE, repo_type="dataset", revision=commit)
    try:
        return read_card_metadata(Path(card).parent), None, files
    except ValueError as err:
        return None, f"its {CARD_FILE} is not an hf_prune index-list card: {err}", files


def _describe(metadata: dict) -> str:
    pruning = metadata["pruning"]
    lists = ", ".join(
        f"{name} (ratio {entry['prune_ratio']:g}, index_sha256 {str(entry.get('index_sha256'))[:12]}…)"
        for name, entry in pruning["lists"].items()
    )
    source = (pruning.get("source") or {}).get("repo_id")
    return f"method {pruning['method']}, {lists}" + (f", source {source}" if source else "")


def _differences(ours: dict, theirs: dict) -> list[str]:
    """Why `ours` would replace a *different* list than `theirs` (empty: the same list, with configs added or
    dropped): another method, a config of the same name with other ids, no config in common, or another source
    split."""
    p, q = ours["pruning"], theirs["pruning"]
    found = []
    if p["method"] != q["method"]:
        found.append(f"method {q['method']} -> {p['method']}")
    if not set(p["lists"]) & set(q["lists"]):
        found.append(f"no config in common ({', '.join(q['lists'])} -> {', '.join(p['lists'])})")
    for name in sorted(set(p["lists"]) & set(q["lists"])):
        a, b = p["lists"][name].get("index_sha256"), q["lists"][name].get("index_sha256")
        if a is None or b is None or a != b:
            found.append(f"config {name} holds other ids")
    src, other = p.get("source") or {}, q.get("source") or {}
    for key in ("repo_id", "config", "split", "num_rows"):
        if src.get(key) is not None and other.get(key) is not None and src[key] != other[key]:
            found.append(f"source {key} {other[key]!r} -> {src[key]!r}")
    return found


def _stage(folder: Path, files: dict[str, Path], stage: Path, repo_id: str) -> None:
    """Copies the listed files (their real paths, checked) into `stage`, the card with its repo id filled in."""
    for rel, real in files.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real, stage / rel)
    card = (stage / CARD_FILE).read_text(encoding="utf-8")
    (stage / CARD_FILE).write_text(card.replace(REPO_ID_PLACEHOLDER, repo_id), encoding="utf-8")


def push_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    *,
    tag: str | None = None,
    overwrite: bool = False,
) -> str:
    """Pushes a saved index-list folder to a Hub dataset repo in one commit and returns the commit URL.

    Everything local is checked before anything is written: the folder (card fields, every config's parquet and
    checksum, every path the card lists a regular file inside the folder), the token (`whoami`, write role,
    namespace) and the tag. Then the repo is created if needed (`create_repo(exist_ok=False)`: a repo that another
    client creates at the same moment is not taken for this push's own), a missing `revision` branch is created from
    `main`, and the branch's head is read: the commit is prepared against it and made with `parent_commit=` that
    head, so a concurrent commit makes this push fail (`HubPushError`, nothing written) rather than be overwritten.

    The commit uploads exactly the files the card lists (`listed_files`: a link to a file elsewhere is refused, files
    the card does not list stay local) and deletes, in the same commit, the `data/` and `images/` files the branch
    holds that the card no longer lists (a dropped config). If the branch holds a *different* list (another method,
    other ids under a config of the same name, no config in common, another source split) or files that are not an
    hf_prune list, the push is refused, naming what is there, unless `overwrite=True`; the same list with ratios added
    or dropped is an update.

    If anything fails after the repo or branch was created (an HTTP error, a dropped connection, Ctrl-C), it is
    deleted again only if its history holds nothing but this push's commits (and the repo's initial commit);
    otherwise it is left in place and the error says so. (The Hub has no conditional delete: a commit landing between
    that check and the deletion would still be lost.)

    Args:
        folder (`str` or `os.PathLike`):
            A folder written by `PruneResult.save` or `save_results`.
        repo_id (`str`):
            Dataset repo id, `"namespace/name"` (a bare name goes to the token's user).
        private (`bool`, *optional*, defaults to `False`):
            Visibility of a repo this call creates (an existing repo keeps its visibility).
        token (`str`, *optional*):
            Hub token; defaults to the logged-in token / `HF_TOKEN`.
        revision (`str`, *optional*):
            Branch to commit to (created from `main` if missing); defaults to `main`.
        commit_message (`str`, *optional*):
            Defaults to "Upload pruned index list (<method>, <configs>)".
        tag (`str`, *optional*):
            Also tag the new commit (e.g. `"v1.0"`); refused before pushing if the tag exists.
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace a different list (or files that are not an hf_prune list) on the branch. Without it such a push
            is refused and the error names the method, ratios and commit that are there.

    Returns:
        `str`: the commit URL.

    Raises:
        `HubPushError`: no/invalid/read-only token, a namespace the token cannot write, an existing tag, a different
            list on the branch (without `overwrite`), a concurrent commit (HTTP 412), an unreachable Hub, or a failed
            commit (HTTP or transport error; the cause is chained and named, and the message says what became of a
            repo or branch this call created). `FileNotFoundError` / `ValueError`: the folder is not a complete,
            consistent index list, or a path it lists leaves it.

    Example:

    ```python
    >>> from hf_prune.export import push_folder_to_hub
    >>> push_folder_to_hub("imagenet-dyn-unc", "my-org/imagenet-1k-dyn-unc", tag="v1.0")
    'https://huggingface.co/datasets/my-org/imagenet-1k-dyn-unc/commit/…'
    ```
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import validate_repo_id

    folder = Path(folder)
    metadata = validate_folder(folder)
    files = listed_files(folder, metadata)
    if revision is not None:
        check_revision(revision, "revision", "push_folder_to_hub")
    api = HfApi(token=token)
    namespace = repo_id.split("/")[0] if "/" in repo_id else None
    user = _check_token(api, token, namespace)
    if namespace is None:
        repo_id = f"{user}/{repo_id}"
    validate_repo_id(repo_id)
    branch = revision or "main"

    try:
        existed = api.repo_exists(repo_id, repo_type="dataset")
        refs = api.list_repo_refs(repo_id, repo_type="dataset") if existed else None
    except Exception as err:  # HTTP and transport errors alike: nothing was created yet
        raise HubPushError(
            f"Could not look up {repo_id} on {_endpoint()} ({type(err).__name__}: {err}). Nothing was pushed."
        ) from err
    if existed and tag is not None and tag in {t.name for t in refs.tags}:
        raise HubPushError(f"{repo_id} already has a tag {tag!r}; pick a new one. Nothing was pushed.")
    names, _ = list_configs(metadata)
    if commit_message is None:
        commit_message = f"Upload pruned index list ({metadata['pruning'].get('method')}: {', '.join(names)})"
    push_id = uuid.uuid4().hex

    with tempfile.TemporaryDirectory(prefix="hf_prune_push_") as stage:
        stage = Path(stage)
        _stage(folder, files, stage, repo_id)
        created_repo = None if not existed else False  # None: asked for, not known yet (the answer may be lost)
        created_branch, start, head, commit = False, None, None, None
        try:
            if not existed:
                try:
                    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=False)
                    created_repo = True
                except HfHubHTTPError as err:
                    if _status(err) != 409:
                        raise
                    created_repo = False  # another client created it meanwhile: not this push's to remove
            head = _branch_head(api, repo_id, branch)
            if head is None:
                start = _branch_head(api, repo_id, "main")
                try:
                    api.create_branch(repo_id, branch=branch, revision=start, repo_type="dataset", exist_ok=False)
                    created_branch = True
                except HfHubHTTPError as err:
                    if _status(err) != 409:
                        raise
                head = _branch_head(api, repo_id, branch)
            theirs, foreign, remote_files = _remote_list(api, repo_id, head)
            where = f"{repo_id}@{branch} (commit {head[:12]})"
            if theirs is not None and not overwrite:
                differences = _differences(metadata, theirs)
                if differences:
                    raise HubPushError(
                        f"{where} already holds a different index list: {_describe(theirs)}; this push has "
                        f"{_describe(metadata)} ({'; '.join(differences)}). Pass `overwrite=True` (`hf-prune push "
                        "--overwrite`) to replace it, or push to another repo or branch (`revision=`)."
                    )
            if foreign is not None and not overwrite:
                raise HubPushError(
                    f"{where} is not an hf_prune index list ({foreign}). Pass `overwrite=True` (`hf-prune push "
                    f"--overwrite`) to replace its {CARD_FILE} and its data/ and images/ folders, or push to another repo."
                )
            stale = [f for f in remote_files if f.split("/")[0] in LAYOUT_DIRS and f not in files]
            if PROVENANCE_FILE in remote_files and PROVENANCE_FILE not in files:
                stale.append(PROVENANCE_FILE)
            if theirs is not None:
                dropped = sorted(set(theirs["pruning"]["lists"]) - set(metadata["pruning"]["lists"]))
                if dropped:
                    logger.warning(f"The push drops the config(s) {dropped} of {where}; their files are deleted.")
            operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(stage / rel)) for rel in files]
            operations += [CommitOperationDelete(path_in_repo=f) for f in sorted(stale)]
            commit = api.create_commit(
                repo_id=repo_id,
                operations=operations,
                commit_message=commit_message,
                commit_description=f"Pushed with hf_prune.\n\n{PUSH_ID_PREFIX}{push_id}",
                repo_type="dataset",
                revision=branch,
                parent_commit=head,
            )
            if tag is not None:
                api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset")
        except BaseException as err:  # HTTP, transport (httpx), OS errors, and Ctrl-C: undo what this push alone wrote
            ours = {commit.oid} if commit is not None else set()
            repo = created_repo if created_repo is not False else False  # None: maybe created (the answer was lost)
            undone = _roll_back(api, repo_id, branch, repo, created_branch, push_id, ours, start)
            if commit is not None and not created_branch and created_repo is False:
                undone = f"The commit {commit.oid} was made, but tagging it {tag!r} failed; tag it by hand."
            if not isinstance(err, Exception):
                raise
            if isinstance(err, HubPushError):
                raise HubPushError(f"{err} {undone}") from err.__cause__
            if isinstance(err, HfHubHTTPError) and _status(err) == 412:
                raise HubPushError(
                    f"{repo_id}@{branch} moved while this push was being prepared: it was at {head[:12]} and another "
                    "client committed on top of it, so the commit was refused (HTTP 412) and nothing of this push was "
                    f"written. Run the push again: it compares with what is there now. {undone}"
                ) from err
            raise HubPushError(
                f"Pushing {folder} to {repo_id} on {_endpoint()} failed ({type(err).__name__}: {err}). {undone}"
            ) from err
    return commit.commit_url


def _is_ours(commit, push_id: str, ours: set[str]) -> bool:
    return commit.commit_id in ours or push_id in (commit.message or "") or push_id in (commit.title or "")


def _foreign_commits(api, repo_id: str, branch: str, repo: bool | None, branch_created: bool, push_id, ours, start):
    """The commits (and refs) of what this push created that this push did not make."""
    foreign = []
    if repo is not False:
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        allowed = {"main", branch}
        foreign += [f"branch {b.name}" for b in refs.branches if b.name not in allowed]
        foreign += [f"tag {t.name}" for t in refs.tags]
        for name in sorted({b.name for b in refs.branches} & allowed):
            history = api.list_repo_commits(repo_id, repo_type="dataset", revision=name)
            # the oldest commit of a repo this push created is the Hub's initial commit (create_repo's)
            foreign += [f"{c.commit_id[:12]} {c.title!r}" for c in history[:-1] if not _is_ours(c, push_id, ours)]
    elif branch_created:
        history = api.list_repo_commits(repo_id, repo_type="dataset", revision=branch)
        for c in history:
            if c.commit_id == start:
                break
            if not _is_ours(c, push_id, ours):
                foreign.append(f"{c.commit_id[:12]} {c.title!r}")
        else:
            foreign.append(f"the branch no longer descends from {str(start)[:12]}")
    return foreign


def _roll_back(api, repo_id, branch, repo: bool | None, branch_created: bool, push_id, ours, start) -> str:
    """Deletes the repo or branch a failed push created, if its history holds only this push's commits; returns a
    sentence saying what became of it."""
    from huggingface_hub.errors import RepositoryNotFoundError

    if repo is False and not branch_created:
        return "Nothing was created on the Hub."
    what = f"the repo {repo_id}" if repo is not False else f"the branch {branch!r} of {repo_id}"
    created = "created" if repo is not None else "asked the Hub to create"
    fix = f"`hf repo delete {repo_id} --repo-type dataset`" if repo is not False else f"delete the branch {branch!r}"
    try:
        foreign = _foreign_commits(api, repo_id, branch, repo, branch_created, push_id, ours, start)
    except RepositoryNotFoundError:
        return "Nothing was created on the Hub."
    except Exception as err:  # noqa: BLE001 - reported, the push error is what is raised
        return (
            f"This push {created} {what} but could not read its history to remove it safely ({type(err).__name__}: "
            f"{err}); it was left in place: if nobody else uses it, remove it with {fix}."
        )
    if foreign:
        return (
            f"{what[0].upper()}{what[1:]}, {created} by this push, was left in place: it also holds what this push did "
            f"not write ({', '.join(foreign[:5])}), so another client uses it."
        )
    try:
        if repo is not False:
            api.delete_repo(repo_id, repo_type="dataset", missing_ok=True)
        else:
            api.delete_branch(repo_id, branch=branch, repo_type="dataset")
    except Exception as err:  # noqa: BLE001 - reported, the push error is what is raised
        return f"This push created {what} and could not remove it ({type(err).__name__}: {err}); remove it with {fix}."
    return f"{what[0].upper()}{what[1:]}, created by this push, was removed again."


def push_results_to_hub(
    results,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    *,
    tag: str | None = None,
    overwrite: bool = False,
    **save_kwargs,
) -> str:
    """Saves several ratios of one run (`save_results`) to a temporary folder and pushes it as one dataset repo,
    one config per ratio under one card (`push_folder_to_hub`: validated first, one commit).

    Args:
        results (`PruneResult` or list of `PruneResult`):
            The lists, all from one run; the first is the default config.
        repo_id (`str`):
            Dataset repo id.
        private, token, revision, commit_message, tag, overwrite:
            As in `push_folder_to_hub`.
        save_kwargs:
            Passed to `save_results` (`source=`, `source_dataset=`, `content_key=`, `record=`, `license=`...).

    Returns:
        `str`: the commit URL.

    Example:

    ```python
    >>> from hf_prune.export import push_results_to_hub
    >>> results = [strategy.select(record, prune_ratio=r) for r in (0.25, 0.5)]
    >>> push_results_to_hub(results, "org/imagenet-1k-dyn-unc", source=("ILSVRC/imagenet-1k", "train"))
    ```
    """
    from huggingface_hub import HfApi

    # Fail fast on the token and namespace before writing (an ImageNet list takes a second or two to save).
    _check_token(HfApi(token=token), token, repo_id.split("/")[0] if "/" in repo_id else None)
    with tempfile.TemporaryDirectory(prefix="hf_prune_export_") as tmp:
        folder = save_results(results, Path(tmp) / "list", repo_id=repo_id, **save_kwargs)
        return push_folder_to_hub(
            folder, repo_id, private, token, revision, commit_message, tag=tag, overwrite=overwrite
        )


def fetch_index_folder(
    repo_or_path: str | os.PathLike,
    config: str | None = None,
    revision: str | None = None,
    token: str | None = None,
) -> Path:
    """A local folder holding the index list `repo_or_path`: the folder itself, or a snapshot of the Hub dataset
    repo at `revision` with only the card and `config`'s files (cached; works with `HF_HUB_OFFLINE=1` once cached).

    The card is read and validated (`check_card_metadata`) before its `data_files` patterns select what to download;
    the files are then read by `read_index_list`, which keeps every path inside the snapshot.

    Raises:
        `FileNotFoundError`: neither a folder nor a dataset repo that exists (or that the token can see), or an
            unknown revision. `ValueError`: a malformed card or revision.
    """
    path = Path(repo_or_path)
    if path.is_dir():
        if revision is not None:
            raise ValueError(f"`revision` applies to Hub repos, but {path} is a local folder.")
        return path
    repo_id = str(repo_or_path)
    if not looks_like_repo_id(repo_id):
        raise FileNotFoundError(f"{repo_id} is neither a local folder nor a Hub dataset repo id.")
    if revision is not None:
        check_revision(revision, "revision", repo_id)
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    try:
        card = hf_hub_download(repo_id, CARD_FILE, repo_type="dataset", revision=revision, token=token)
        commit = Path(card).parent.name  # snapshots/<commit sha>/README.md: pin the rest to that commit
        metadata = read_card_metadata(Path(card).parent)
        config = choose_config(metadata, config, where)
        patterns = [CARD_FILE, PROVENANCE_FILE, *config_data_patterns(metadata, config)]
        if any(c.get("config_name") == SCORES_CONFIG for c in metadata.get("configs") or []):
            patterns += config_data_patterns(metadata, SCORES_CONFIG)  # every row's score, for `PruneResult.load`
        return Path(
            snapshot_download(repo_id, repo_type="dataset", revision=commit, allow_patterns=patterns, token=token)
        )
    except GatedRepoError as err:
        raise PermissionError(f"{where} is gated on {_endpoint()}: request access, then pass a token.") from err
    except RepositoryNotFoundError as err:
        raise FileNotFoundError(
            f"No dataset repo {repo_id!r} on {_endpoint()} (or it is private and the token cannot see it), and no "
            "local folder of that name."
        ) from err
    except RevisionNotFoundError as err:
        raise FileNotFoundError(f"The dataset repo {repo_id!r} has no revision {revision!r}.") from err
    except LocalEntryNotFoundError as err:
        raise FileNotFoundError(
            f"{where} is not in the local cache and the Hub cannot be reached (offline?): {err}"
        ) from err
    except EntryNotFoundError as err:
        raise FileNotFoundError(f"{where} has no {CARD_FILE}: it is not an hf_prune index list.") from err
