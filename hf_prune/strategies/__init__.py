"""Static pruning strategies, one module per method, registered by name.

```python
>>> from hf_prune import get_strategy, list_strategies
>>> list(list_strategies())
['dyn_unc', ...]
>>> get_strategy("dyn_unc", window=10).select(record, prune_ratio=0.25)
```

Every module in this package is imported here so that its `@register_strategy` runs.
"""

import importlib
import pkgutil

from .base import Strategy, get_strategy, list_strategies, register_strategy
from .selection import select_kept_ids


for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "selection"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Strategy", "get_strategy", "list_strategies", "register_strategy", "select_kept_ids"]
