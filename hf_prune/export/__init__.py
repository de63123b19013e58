"""Publishing pruned index lists: parquet + dataset card folders, pushes to the Hub, checked loading, model cards.

```python
>>> result.save("dyn_unc_25")                                    # a folder laid out as a Hub dataset repo
>>> result.push_to_hub("org/imagenet-1k-dyn-unc-25")              # one commit, against the head it read
>>> train = load_pruned(full_train, "org/imagenet-1k-dyn-unc-25")  # row count, checksum, bounds checked
```

Modules, lowest first: `untrusted` (checks and escaping for lists, cards and folders from anyone), `index_list` (the
file format, its checksum, reading it back checked), `content` (content keys), `cards` (dataset cards), `model_card`,
`folder` (writing a whole folder), `hub` (push and fetch), `loading` (`load_pruned`).
"""

from .cards import MethodInfo, method_info, render_dataset_card, template_path
from .folder import save_results
from .hub import (
    HubPushError,
    fetch_index_folder,
    listed_files,
    push_folder_to_hub,
    push_results_to_hub,
    validate_folder,
)
from .index_list import (
    CHECKSUM_DEFINITION,
    IndexList,
    UnverifiedIndexListWarning,
    check_card_metadata,
    config_name_for,
    index_sha256,
    read_index_list,
)
from .loading import SourceMismatchWarning, load_pruned
from .model_card import model_card


__all__ = [
    "CHECKSUM_DEFINITION",
    "HubPushError",
    "IndexList",
    "MethodInfo",
    "SourceMismatchWarning",
    "UnverifiedIndexListWarning",
    "check_card_metadata",
    "config_name_for",
    "fetch_index_folder",
    "index_sha256",
    "listed_files",
    "load_pruned",
    "method_info",
    "model_card",
    "push_folder_to_hub",
    "push_results_to_hub",
    "read_index_list",
    "render_dataset_card",
    "save_results",
    "template_path",
    "validate_folder",
]
