"""Static pruning strategies, one module per method, registered by name.

```python
>>> from hf_prune import get_strategy, list_strategies
>>> list(list_strategies())
['aum', 'cartography', 'ccs', 'dyn_unc', 'el2n', 'entropy', 'forgetting', 'grand', 'moderate', 'random', 'ssp',
 'static_uncertainty']
>>> get_strategy("dyn_unc", window=10).select(record, prune_ratio=0.25)
>>> get_strategy("forgetting").select(record, prune_ratio=0.5, class_balanced=True, selection="ccs", hard_cutoff=0.1)
```

| name | paper | score | keeps |
|---|---|---|---|
| `random` | - | seeded uniform | (random subset) |
| `dyn_unc` | He et al. 2023 | mean sliding-window std of p_target (Eq. 2-3) | highest |
| `static_uncertainty` | Swayamdipta et al. 2020 | std of p_target over the first `window` epochs | highest |
| `forgetting` | Toneva et al. 2019 | correct->wrong transitions; never learned = inf | highest |
| `entropy` | Coleman et al. 2020 | final model's prediction entropy | highest |
| `el2n` | Paul et al. 2021 | ||softmax - onehot|| early, mean over runs | highest |
| `grand` | Paul et al. 2021 | last-layer gradient norm ||p - y|| sqrt(1 + ||h||^2) | highest |
| `cartography` | Swayamdipta et al. 2020 | variability (ambiguous) / confidence (easy, hard) | highest / lowest |
| `aum` | Pleiss et al. 2020 | mean over epochs of the logit margin | lowest |
| `moderate` | Xia et al. 2023 | |distance to class centre - median| in feature space | lowest |
| `ssp` | Sorscher et al. 2022 | distance to nearest k-means centroid in feature space | highest |
| `ccs` | Zheng et al. 2023 | stratified sampling over any other score, hard cutoff | (strata) |

Record-based methods read what `PruningTrainer` records (`record_signals`); `moderate`, `ssp` (and `grand`'s feature
factor) read a feature folder from `hf_prune.features.extract_features`. Every module in this package is imported
here so that its `@register_strategy` runs.
"""

import importlib
import pkgutil

from .base import Strategy, get_strategy, list_strategies, register_strategy
from .selection import select_kept_ids


for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "selection"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Strategy", "get_strategy", "list_strategies", "register_strategy", "select_kept_ids"]
