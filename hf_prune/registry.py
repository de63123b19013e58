"""`Registry`: name -> class, behind `get_strategy` / `register_strategy` and `get_policy` / `register_policy`.

A registered class has a class attribute `name` (its key) and `summary` (one line for listings). Classes that take
their parameters as a dataclass config (static strategies, dynamic policies: a `hf_prune.method_config.MethodConfig`)
say so with a `config_class` attribute; the registry then checks parameters against the config's fields, otherwise
against the constructor's signature.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any


class Registry:
    """Classes registered by their `name` attribute.

    Args:
        kind (`str`): what the classes are, for messages (e.g. `"strategy"`).
        plural (`str`): the plural of `kind`.

    Example:

    ```python
    >>> from hf_prune.registry import Registry
    >>> shapes = Registry("shape", "shapes")
    >>> @shapes.register
    ... class Square:
    ...     name, summary = "square", "four equal sides"
    ...     def __init__(self, side: float = 1.0):
    ...         self.side = side
    >>> shapes.build("square", side=2.0).side, "square" in shapes
    (2.0, True)
    ```
    """

    def __init__(self, kind: str, plural: str):
        self.kind, self.plural = kind, plural
        self._classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Class decorator: registers `cls` under `cls.name`; a name taken by another class is refused."""
        name = getattr(cls, "name", None)
        if not name:
            raise ValueError(f"{cls.__name__} needs a class attribute `name` to be registered.")
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"A {self.kind} named {name!r} is already registered ({self._classes[name].__module__}).")
        self._classes[name] = cls
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._classes)

    def get(self, name: str) -> type:
        """The class registered as `name`; an unknown name gets an error that lists the known ones."""
        if name not in self._classes:
            raise ValueError(f"Unknown {self.kind} {name!r}. Known {self.plural}: {', '.join(self.names())}.")
        return self._classes[name]

    def summaries(self) -> dict[str, str]:
        """`{name: one-line summary}`, sorted by name."""
        return {name: self._classes[name].summary for name in self.names()}

    def parameters(self, name: str) -> dict[str, Any]:
        """`{parameter: default}` that the class registered as `name` accepts (`inspect.Parameter.empty` where
        there is no default)."""
        cls = self.get(name)
        config_class = getattr(cls, "config_class", None)
        if config_class is not None:
            out = {}
            for f in dataclasses.fields(config_class):
                if f.default is not dataclasses.MISSING:
                    out[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    out[f.name] = f.default_factory()
                else:
                    out[f.name] = inspect.Parameter.empty
            return out
        out = {}
        for klass in reversed(cls.__mro__):
            if "__init__" in vars(klass):
                for p in inspect.signature(klass.__init__).parameters.values():
                    if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                        out[p.name] = p.default
        return out

    def build(self, name: str, **params: Any):
        """An instance of the class registered as `name`; unknown names and parameters get errors that list the
        known ones."""
        cls = self.get(name)
        accepted = self.parameters(name)
        unknown = [p for p in params if p not in accepted]
        if unknown:
            raise TypeError(
                f"{self.kind.capitalize()} {name!r} got unknown parameter(s) {unknown}; it accepts {sorted(accepted)}."
            )
        return cls(**params)
