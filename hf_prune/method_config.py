"""`MethodConfig`: the parameters of a pruning method as a dataclass (as peft's per-method configs), shared by the
static strategies (`hf_prune.strategies.config.StrategyConfig`) and the dynamic policies
(`hf_prune.dynamic.base.PolicyConfig`): typed fields with `metadata={"help": ...}`, checks in `__post_init__`, a JSON
round trip (so a published list or a record's metadata holds the exact settings), and parsing from `KEY=VALUE` strings
through the field types (`hf-prune select --param window=10`).

It sits on the lowest floor so that both method families build on it without importing each other.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from typing import Any


def describe(value: Any) -> Any:
    """A JSON-friendly stand-in for a parameter value: plain values as they are, a path as a string, an in-memory
    array (or a feature store without a folder) as `"array[n, d]"`."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if getattr(value, "path", None) is not None:
        return str(value.path)
    shape = getattr(value, "shape", None) or getattr(getattr(value, "features", None), "shape", None)
    if shape is not None:
        return f"array{list(shape)}"
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _parse_as(text: str, annotation: Any) -> Any:
    """`text` (from the command line) as a value of `annotation` (`int`, `float`, `bool`, `str`, `dict`,
    `X | None`, `Any`)."""
    origin = typing.get_origin(annotation)
    options = list(typing.get_args(annotation)) if origin in (typing.Union, types.UnionType) else [annotation]
    if type(None) in options and text.strip().lower() in ("none", "null"):
        return None
    options = [o for o in options if o is not type(None)]
    for option in options:
        base = typing.get_origin(option) or option
        try:
            if base is bool:
                lowered = text.strip().lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError(text)
            if base is int:
                return int(text)
            if base is float:
                return float(text)
            if base in (dict, list, tuple, Mapping):
                value = json.loads(text)
                if not isinstance(value, dict if base in (dict, Mapping) else list):
                    raise ValueError(text)
                return value
            if base is str:
                return text
            if option is Any:
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    return text
        except (TypeError, ValueError):
            continue
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options) + (
        " or none" if type(None) in typing.get_args(annotation) else ""
    )
    raise ValueError(f"expected {names}, got {text!r}")


@dataclasses.dataclass
class MethodConfig:
    """Base class of the parameters of a pruning method (a static strategy or a dynamic policy).

    Subclasses are dataclasses whose fields are the method's parameters (each with `metadata={"help": ...}`) and
    whose `__post_init__` checks them with messages that say what to do.

    Example:

    ```python
    >>> from hf_prune.dynamic.ucb import UCBConfig
    >>> config = UCBConfig(prune_ratio=0.5, c=2.0)
    >>> UCBConfig.from_json_string(config.to_json_string()) == config
    True
    >>> UCBConfig.from_strings({"prune_ratio": "0.5", "c": "2"}) == config
    True
    ```
    """

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON values (paths and arrays given as features are described, see `describe`)."""
        return {f.name: describe(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """`{field: help text}`, for `--help` and listings."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def resolve(cls, config: MethodConfig | None, params: Mapping[str, Any], owner: str):
        """The config a method built as `Method(config)` or `Method(**params)` runs with: `config` itself (which must
        be a `cls`), or `cls.from_dict(params)`; both at once are refused. `owner` names the method in errors."""
        if config is None:
            return cls.from_dict(params)
        if params:
            raise TypeError("Pass either a config or keyword parameters, not both.")
        if not isinstance(config, cls):
            raise TypeError(f"{owner} takes a {cls.__name__}; got {type(config).__name__}.")
        return config

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]):
        """Builds the config from `params`; an unknown key gets an error that lists the accepted ones."""
        unknown = sorted(set(params) - set(cls.field_names()))
        if unknown:
            raise TypeError(f"{cls.__name__} got unknown parameter(s) {unknown}; it accepts {cls.field_names()}.")
        return cls(**params)

    @classmethod
    def from_json_string(cls, text: str):
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_strings(cls, params: Mapping[str, str]):
        """Builds the config from string values (the command line), each parsed as its field's type."""
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(params) - set(cls.field_names()))
        if unknown:
            raise TypeError(f"{cls.__name__} got unknown parameter(s) {unknown}; it accepts {cls.field_names()}.")
        parsed = {}
        for key, text in params.items():
            try:
                parsed[key] = _parse_as(str(text), hints[key])
            except ValueError as err:
                raise ValueError(f"Parameter {key!r} of {cls.__name__}: {err}.") from None
        return cls(**parsed)
