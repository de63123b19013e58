"""`Registry`: name -> class, behind `get_strategy` / `register_strategy` and `get_policy` / `register_policy`."""

from __future__ import annotations

import inspect
from typing import Any


class Registry:
    """Classes registered by their `name` attribute, each with a one-line `summary`.

    Args:
        kind (`str`): what the classes are, for messages (e.g. `"strategy"`).
        plural (`str`): the plural of `kind`.
    """

    def __init__(self, kind: str, plural: str):
        self.kind, self.plural = kind, plural
        self.classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Class decorator: registers `cls` under `cls.name`; a name taken by another class is refused."""
        name = getattr(cls, "name", None)
        if not name:
            raise ValueError(f"{cls.__name__} needs a class attribute `name` to be registered.")
        if name in self.classes and self.classes[name] is not cls:
            raise ValueError(f"A {self.kind} named {name!r} is already registered ({self.classes[name].__module__}).")
        self.classes[name] = cls
        return cls

    def summaries(self) -> dict[str, str]:
        """`{name: one-line summary}`, sorted by name."""
        return {name: self.classes[name].summary for name in sorted(self.classes)}

    def build(self, name: str, **params: Any):
        """An instance of the class registered as `name`; unknown names and parameters get errors that list the
        known ones."""
        if name not in self.classes:
            raise ValueError(f"Unknown {self.kind} {name!r}. Known {self.plural}: {', '.join(sorted(self.classes))}.")
        cls = self.classes[name]
        accepted = set()
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                accepted |= {
                    p.name
                    for p in inspect.signature(klass.__init__).parameters.values()
                    if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                }
        unknown = [p for p in params if p not in accepted]
        if unknown:
            raise TypeError(
                f"{self.kind.capitalize()} {name!r} got unknown parameter(s) {unknown}; it accepts {sorted(accepted)}."
            )
        return cls(**params)
