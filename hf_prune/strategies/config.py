"""`StrategyConfig`: the base of every static strategy's parameters, a dataclass per method (as peft's per-method
configs): typed fields with `metadata={"help": ...}`, checks in `__post_init__`, a JSON round trip (so a published
list records the exact settings), and parsing from `KEY=VALUE` strings through the field types (`hf-prune select
--param window=10`)."""

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
class StrategyConfig:
    """Base class of the parameters of a static strategy.

    Subclasses are dataclasses whose fields are the method's parameters (each with `metadata={"help": ...}`) and
    whose `__post_init__` checks them with messages that say what to do.

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
