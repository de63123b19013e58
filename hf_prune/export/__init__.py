"""Publishing pruned index lists: parquet + dataset card folders, pushes to the Hub, checked loading, model cards.

```python
>>> result.save("dyn_unc_25")                                    # a folder laid out as a Hub dataset repo
>>> result.push_to_hub("org/imagenet-1k-dyn-unc-25")              # create_repo + upload_folder, one commit
>>> train = load_pruned(full_train, "org/imagenet-1k-dyn-unc-25")  # row count, checksum, bounds checked
```

See `index_list` for the file layout and the definition of `index_sha256`.
"""

from .cards import (
    METHODS,
    MethodInfo,
    model_card,
    plot_data_map,
    plot_score_histogram,
    render_dataset_card,
    template_path,
)
from .hub import HubPushError, fetch_index_folder, push_folder_to_hub, validate_folder
from .index_list import (
    CHECKSUM_DEFINITION,
    IndexList,
    config_name_for,
    index_sha256,
    read_index_list,
    save_results,
)
from .loading import SourceMismatchWarning, load_pruned


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
    """Saves several ratios of one run (`save_results`) to a temporary folder and pushes it as one dataset repo.

    Args:
        results (list of `PruneResult`): the lists, the first being the default config.
        repo_id (`str`): dataset repo id.
        save_kwargs: passed to `save_results` (`source=`, `content_key=`, `source_dataset=`, `license=`...).

    Returns:
        `str`: the commit URL.
    """
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="hf_prune_export_") as tmp:
        folder = save_results(results, Path(tmp) / "list", repo_id=repo_id, **save_kwargs)
        return push_folder_to_hub(folder, repo_id, private, token, revision, commit_message, tag=tag)


__all__ = [
    "CHECKSUM_DEFINITION",
    "METHODS",
    "HubPushError",
    "IndexList",
    "MethodInfo",
    "SourceMismatchWarning",
    "config_name_for",
    "fetch_index_folder",
    "index_sha256",
    "load_pruned",
    "model_card",
    "plot_data_map",
    "plot_score_histogram",
    "push_folder_to_hub",
    "push_results_to_hub",
    "read_index_list",
    "render_dataset_card",
    "save_results",
    "template_path",
    "validate_folder",
]
