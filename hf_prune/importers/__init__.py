"""Importers of published pruning artefacts: the papers' ImageNet lists and per-example scores, as `PruneResult`s.

One module per format, each with a strict `read_*` (the file alone) and an `import_*` (read, resolve onto your copy of
the dataset by file name or ImageFolder position, check the labels, select):

| format (module) | artefact | ratios |
|---|---|---|
| `dali-list` (`dali_list`) | the Dyn-Unc coresets, `/<class folder>/<file> <label>` per kept file | a fixed set |
| `memorization-npz` (`memorization_npz`) | Feldman & Zhang's `.npz`: `tr_filenames`, `tr_labels`, `tr_mem` | any |
| `score-csv` (`score_csv`) | a CSV of file name + score (Sorscher et al.'s metrics, high = keep) | any |
| `ccs-scores` (`ccs_scores`) | tensors keyed by ImageFolder position (`targets`, `el2n`, ...) | any |

`resolve` holds the resolution onto the source (`read_source_files`, `imagefolder_order`, `resolve_artefact`,
`check_labels`), `build` the results (`kept_result`, `score_results`, `select_imported`, `publish_options`) and
`command` the `hf-prune import` command.

```python
>>> from datasets import load_dataset
>>> from hf_prune.importers import import_dyn_unc_list, publish_options
>>> train = load_dataset("imagefolder", data_dir="ILSVRC/Data/CLS-LOC/train", split="train")
>>> result = import_dyn_unc_list("IN1K_75_file_list.txt", train)        # 960,875 kept files, labels checked
>>> result.push_to_hub("org/imagenet-1k-dyn-unc-75", **publish_options(result, train))
```

Names are imported on first use, so `hf-prune` registers its `import` command without loading `datasets`.
"""

import importlib
from typing import TYPE_CHECKING


_EXPORTS = {
    "Artefact": "artefact",
    "ArtefactFormatError": "artefact",
    "ArtefactInfo": "artefact",
    "read_dali_list": "dali_list",
    "import_dyn_unc_list": "dali_list",
    "read_memorization_npz": "memorization_npz",
    "import_memorization": "memorization_npz",
    "read_score_csv": "score_csv",
    "import_score_csv": "score_csv",
    "read_ccs_scores": "ccs_scores",
    "import_ccs_scores": "ccs_scores",
    "LabelMismatchError": "resolve",
    "Resolution": "resolve",
    "ResolutionError": "resolve",
    "SourceFiles": "resolve",
    "check_labels": "resolve",
    "file_keys": "resolve",
    "imagefolder_order": "resolve",
    "read_source_files": "resolve",
    "resolve_artefact": "resolve",
    "kept_result": "build",
    "publish_options": "build",
    "score_results": "build",
    "select_imported": "build",
}

__all__ = [
    "Artefact",
    "ArtefactFormatError",
    "ArtefactInfo",
    "LabelMismatchError",
    "Resolution",
    "ResolutionError",
    "SourceFiles",
    "check_labels",
    "file_keys",
    "imagefolder_order",
    "import_ccs_scores",
    "import_dyn_unc_list",
    "import_memorization",
    "import_score_csv",
    "kept_result",
    "publish_options",
    "read_ccs_scores",
    "read_dali_list",
    "read_memorization_npz",
    "read_score_csv",
    "read_source_files",
    "resolve_artefact",
    "score_results",
    "select_imported",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hf_prune.importers' has no attribute {name!r}")


def __dir__():
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs
    from .artefact import Artefact, ArtefactFormatError, ArtefactInfo
    from .build import kept_result, publish_options, score_results, select_imported
    from .ccs_scores import import_ccs_scores, read_ccs_scores
    from .dali_list import import_dyn_unc_list, read_dali_list
    from .memorization_npz import import_memorization, read_memorization_npz
    from .resolve import (
        LabelMismatchError,
        Resolution,
        ResolutionError,
        SourceFiles,
        check_labels,
        file_keys,
        imagefolder_order,
        read_source_files,
        resolve_artefact,
    )
    from .score_csv import import_score_csv, read_score_csv
