"""Pushing index-list folders to the Hub and fetching them back, through `huggingface_hub` only."""

from __future__ import annotations

import os
import shutil
import tempfile
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
    config_data_patterns,
    list_configs,
    looks_like_repo_id,
    read_card_metadata,
    read_index_list,
)


# What a push uploads (the folder layout of `save_results`); anything else in the folder stays local.
UPLOAD_PATTERNS = [CARD_FILE, PROVENANCE_FILE, f"{DATA_DIR}/**", f"{IMAGES_DIR}/**"]
# Remote files a push replaces, so a repo re-pushed with fewer ratios keeps no stale configs.
STALE_PATTERNS = [f"{DATA_DIR}/**", f"{IMAGES_DIR}/**"]


class HubPushError(RuntimeError):
    """A push was refused or failed; nothing was left half-pushed on the Hub."""


def validate_folder(folder: str | os.PathLike) -> dict:
    """Checks that `folder` is a complete index list (card, every config's data, checksums); returns its metadata."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; write one with `PruneResult.save(dir)`.")
    metadata = read_card_metadata(folder)
    names, _ = list_configs(metadata)
    for name in names:
        read_index_list(folder, name)  # raises on missing files, bad order or checksum
    for config in metadata.get("configs") or []:
        patterns = config_data_patterns(metadata, config.get("config_name"))
        if not any(any(folder.glob(p)) for p in patterns):
            raise FileNotFoundError(f"{folder}: config {config.get('config_name')!r} has no data files {patterns}.")
    return metadata


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


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
        status = getattr(err.response, "status_code", None)
        raise HubPushError(
            f"The Hub at {_endpoint()} rejected the token (HTTP {status}): {err}. Check HF_TOKEN / `token=`; "
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


def push_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    *,
    tag: str | None = None,
) -> str:
    """Pushes a saved index-list folder to a Hub dataset repo in one commit and returns the commit URL.

    Everything is checked before anything is written: the folder (card, every config's parquet and checksum),
    the token (`whoami`, write role, namespace) and the tag. Then the repo is created if needed
    (`create_repo(repo_type="dataset", exist_ok=True)`), a missing `revision` branch is created from `main`, and
    `upload_folder` makes one commit that also deletes stale `data/` and `images/` files, so the repo mirrors the
    folder. If anything after the repo's creation fails (an HTTP error, a dropped connection, Ctrl-C), a repo or
    branch this call created is deleted again.

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

    Returns:
        `str`: the commit URL.

    Raises:
        `HubPushError`: no/invalid/read-only token, a namespace the token cannot write, an existing tag, an
            unreachable Hub, or a failed commit (HTTP or transport error; the cause is chained and named, and a repo or
            branch this call created is deleted again, or the message says how to). `FileNotFoundError` /
            `ValueError`: the folder is not a complete, consistent index list.

    Example:

    ```python
    >>> from hf_prune.export import push_folder_to_hub
    >>> push_folder_to_hub("imagenet-dyn-unc", "my-org/imagenet-1k-dyn-unc", tag="v1.0")
    'https://huggingface.co/datasets/my-org/imagenet-1k-dyn-unc/commit/…'
    ```
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import validate_repo_id

    folder = Path(folder)
    metadata = validate_folder(folder)
    api = HfApi(token=token)
    namespace = repo_id.split("/")[0] if "/" in repo_id else None
    user = _check_token(api, token, namespace)
    if namespace is None:
        repo_id = f"{user}/{repo_id}"
    validate_repo_id(repo_id)

    try:
        existed = api.repo_exists(repo_id, repo_type="dataset")
        refs = api.list_repo_refs(repo_id, repo_type="dataset") if existed else None
    except Exception as err:  # HTTP and transport errors alike: nothing was created yet
        raise HubPushError(
            f"Could not look up {repo_id} on {_endpoint()} ({type(err).__name__}: {err}). Nothing was pushed."
        ) from err
    branch_missing = False
    if existed:
        if revision is not None:
            branch_missing = revision not in {b.name for b in refs.branches}
        if tag is not None and tag in {t.name for t in refs.tags}:
            raise HubPushError(f"{repo_id} already has a tag {tag!r}; pick a new one. Nothing was pushed.")
    else:
        branch_missing = revision not in (None, "main")
    names, _ = list_configs(metadata)
    if commit_message is None:
        commit_message = f"Upload pruned index list ({metadata['pruning'].get('method')}: {', '.join(names)})"

    with tempfile.TemporaryDirectory(prefix="hf_prune_push_") as stage:
        stage = Path(stage)
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, stage / rel)
        card = (stage / CARD_FILE).read_text(encoding="utf-8")
        (stage / CARD_FILE).write_text(card.replace(REPO_ID_PLACEHOLDER, repo_id), encoding="utf-8")

        created_branch = False
        commit = None
        try:
            if not existed:
                api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            if branch_missing:
                api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
                created_branch = True
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=stage,
                repo_type="dataset",
                revision=revision,
                commit_message=commit_message,
                allow_patterns=UPLOAD_PATTERNS,
                delete_patterns=STALE_PATTERNS,
            )
            if tag is not None:
                api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset")
        except BaseException as err:  # HTTP, transport (httpx), OS errors, and Ctrl-C: undo what this call created
            # A repo this call set out to create is deleted even if its creation seemed to fail (the request may have
            # reached the Hub before the connection dropped); missing_ok makes that harmless.
            undone = _roll_back(api, repo_id, revision, not existed, created_branch)
            if commit is not None and existed and not created_branch:
                undone = f"The commit {commit.oid} was made, but tagging it {tag!r} failed; tag it by hand."
            if not isinstance(err, Exception):
                raise
            raise HubPushError(
                f"Pushing {folder} to {repo_id} on {_endpoint()} failed ({type(err).__name__}: {err}). {undone}"
            ) from err
    return commit.commit_url


def _roll_back(api, repo_id: str, revision: str | None, repo: bool, branch: bool) -> str:
    """Deletes the repo or branch a failed push created; returns a sentence saying what became of it."""
    if not repo and not branch:
        return "Nothing was created on the Hub."
    what = f"the repo {repo_id}" if repo else f"the branch {revision!r} of {repo_id}"
    try:
        if repo:
            api.delete_repo(repo_id, repo_type="dataset", missing_ok=True)
        else:
            api.delete_branch(repo_id, branch=revision, repo_type="dataset")
    except Exception as err:  # noqa: BLE001 - reported, the push error is what is raised
        fix = f"`hf repo delete {repo_id} --repo-type dataset`" if repo else f"delete the branch {revision!r}"
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
    **save_kwargs,
) -> str:
    """Saves several ratios of one run (`save_results`) to a temporary folder and pushes it as one dataset repo,
    one config per ratio under one card (`push_folder_to_hub`: validated first, one commit).

    Args:
        results (`PruneResult` or list of `PruneResult`):
            The lists, all from one run; the first is the default config.
        repo_id (`str`):
            Dataset repo id.
        private, token, revision, commit_message, tag:
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
        return push_folder_to_hub(folder, repo_id, private, token, revision, commit_message, tag=tag)


def fetch_index_folder(
    repo_or_path: str | os.PathLike,
    config: str | None = None,
    revision: str | None = None,
    token: str | None = None,
) -> Path:
    """A local folder holding the index list `repo_or_path`: the folder itself, or a snapshot of the Hub dataset
    repo at `revision` with only the card and `config`'s files (cached; works with `HF_HUB_OFFLINE=1` once cached).

    Raises:
        `FileNotFoundError`: neither a folder nor a dataset repo that exists (or that the token can see), or an
            unknown revision.
    """
    path = Path(repo_or_path)
    if path.is_dir():
        if revision is not None:
            raise ValueError(f"`revision` applies to Hub repos, but {path} is a local folder.")
        return path
    repo_id = str(repo_or_path)
    if not looks_like_repo_id(repo_id):
        raise FileNotFoundError(f"{repo_id} is neither a local folder nor a Hub dataset repo id.")
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
