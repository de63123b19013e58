"""`StrategyConfig`: the base of every static strategy's parameters, a dataclass per method (as peft's per-method
configs). The machinery (help per field, checks in `__post_init__`, the JSON round trip, parsing `KEY=VALUE` strings
for `hf-prune select --param window=10`) is `hf_prune.method_config.MethodConfig`, shared with the dynamic policies."""

from __future__ import annotations

import dataclasses

from ..method_config import MethodConfig, describe


__all__ = ["StrategyConfig", "describe"]


@dataclasses.dataclass
class StrategyConfig(MethodConfig):
    """Base class of the parameters of a static strategy (see `MethodConfig`).

    Example:

    ```python
    >>> from hf_prune.strategies.dyn_unc import DynUncConfig
    >>> config = DynUncConfig(window=5)
    >>> DynUncConfig.from_json_string(config.to_json_string()) == config
    True
    >>> DynUncConfig.from_strings({"window": "5"}) == config
    True
    ```
    """
