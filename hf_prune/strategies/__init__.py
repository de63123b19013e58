"""Static pruning strategies, one module per method, registered by name.

```python
>>> from hf_prune import get_strategy, list_strategies
>>> list(list_strategies())
['aum', 'cartography', 'ccs', 'dual', 'dyn_unc', 'el2n', 'entropy', 'forgetting', 'grand', 'moderate', 'random',
 's2l', 'ssp', 'static_uncertainty']
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
| `grand` | Paul et al. 2021 | gradient norm (full network, or last layer ||p - y|| sqrt(1 + ||h||^2)), runs averaged | highest |
| `cartography` | Swayamdipta et al. 2020 | variability (ambiguous) / confidence (easy, hard) | highest / lowest |
| `aum` | Pleiss et al. 2020 | mean over epochs of the logit margin | lowest (hard/mislabeled) |
| `moderate` | Xia et al. 2023 | rank distance of the class-median distance from the median rank | lowest (central band) |
| `ssp` | Sorscher et al. 2022 | distance to nearest k-means centroid in feature space | highest |
| `ccs` | Zheng et al. 2023 | stratified sampling over any other score, hard cutoff | (strata) |
| `dual` | Cho et al. 2025 | early-epoch std x (1 - mean) of p_target; Beta sampling | highest (sampled) |
| `s2l` | Yang et al. 2024 | k-means cluster of the loss trajectory, numbered by size | evenly across clusters (sampled) |

Each strategy is a `StrategyConfig` dataclass of its parameters (`DynUncConfig`, ...) plus a pure `compute(record)`.
Record-based methods read what `PruningTrainer` records (`record_signals`); `moderate`, `ssp` (and `grand`'s feature
factor) read a feature folder from `hf_prune.features.extract_features`. Every module in this package is imported
here so that its `@register_strategy` runs.
"""

import importlib
import pkgutil
from typing import Any

from ..selection import select_kept_ids
from .base import STRATEGIES, Scores, Strategy, register_strategy
from .config import StrategyConfig


for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "config"):
        importlib.import_module(f"{__name__}.{_module.name}")


def list_strategies() -> dict[str, str]:
    """Returns `{name: one-line summary}` for every registered static strategy, sorted by name."""
    return STRATEGIES.summaries()


def is_strategy(name: str) -> bool:
    """Whether a static strategy is registered as `name`."""
    return name in STRATEGIES


def get_strategy_class(name: str) -> type[Strategy]:
    """The `Strategy` subclass registered as `name` (an unknown name gets an error listing the known ones)."""
    return STRATEGIES.get(name)


def strategy_info(name: str) -> dict[str, Any]:
    """What is known about the strategy `name` without building it: `name`, `summary`, `title`, `citation`,
    `keep` (default end), `requires` (signals), `multi_record`, and `parameters` (`{field: {"default", "help"}}`).

    Example:

    ```python
    >>> from hf_prune.strategies import strategy_info
    >>> strategy_info("dyn_unc")["parameters"]["window"]["default"]
    10
    ```
    """
    cls = STRATEGIES.get(name)
    defaults = STRATEGIES.parameters(name)
    helps = cls.config_class.field_help()
    return {
        "name": name,
        "summary": cls.summary,
        "title": cls.title or name,
        "citation": cls.citation,
        "keep": cls.keep,
        "requires": list(cls.requires),
        "multi_record": cls.multi_record,
        "parameters": {p: {"default": defaults[p], "help": helps.get(p, "")} for p in defaults},
    }


def get_strategy(name: str, config: StrategyConfig | None = None, **params: Any) -> Strategy:
    """Builds the strategy registered as `name` from its `config` or from keyword `params`.

    Example:

    ```python
    >>> from hf_prune import get_strategy
    >>> strategy = get_strategy("dyn_unc", window=10)
    >>> strategy.config
    DynUncConfig(window=10, signal='p_target')
    ```
    """
    if config is not None:
        if params:
            raise TypeError("Pass either a config or keyword parameters, not both.")
        return STRATEGIES.get(name)(config)
    return STRATEGIES.build(name, **params)


__all__ = [
    "STRATEGIES",
    "Scores",
    "Strategy",
    "StrategyConfig",
    "get_strategy",
    "get_strategy_class",
    "is_strategy",
    "list_strategies",
    "register_strategy",
    "select_kept_ids",
    "strategy_info",
]
