"""Publishing pruned index lists: parquet + dataset card folders, pushes to the Hub, checked loading, model cards.

```python
>>> result.save("dyn_unc_25")                                    # a folder laid out as a Hub dataset repo
>>> result.push_to_hub("org/imagenet-1k-dyn-unc-25")              # create_repo + upload_folder, one commit
>>> train = load_pruned(full_train, "org/imagenet-1k-dyn-unc-25")  # row count, checksum, bounds checked
```

Modules, lowest first: `index_list` (the file format and its checksum), `content` (content keys), `cards` (dataset
cards), `model_card`, `folder` (writing a whole folder), `hub` (push and fetch), `loading` (`load_pruned`).
"""

from .cards import MethodInfo, method_info, render_dataset_card, template_path
from .folder import save_results
from .hub import HubPushError, fetch_index_folder, push_folder_to_hub, push_results_to_hub, validate_folder
from .index_list import CHECKSUM_DEFINITION, IndexList, config_name_for, index_sha256, read_index_list
from .loading import SourceMismatchWarning, load_pruned
from .model_card import model_card


__all__ = [
    "CHECKSUM_DEFINITION",
    "HubPushError",
    "IndexList",
    "MethodInfo",
    "SourceMismatchWarning",
    "config_name_for",
    "fetch_index_folder",
    "index_sha256",
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
