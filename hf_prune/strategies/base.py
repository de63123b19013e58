"""The `Strategy` base class and the registry behind `get_strategy`, `list_strategies` and `register_strategy`."""

from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar

import numpy as np

from ..record import ScoreRecord
from ..result import PruneResult
from .selection import check_prune_ratio, select_kept_ids


_REGISTRY: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator that registers a `Strategy` subclass under its `name`; a duplicate name is refused."""
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name` to be registered.")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"A strategy named {name!r} is already registered ({_REGISTRY[name].__module__}).")
    _REGISTRY[name] = cls
    return cls


def list_strategies() -> dict[str, str]:
    """Returns `{name: one-line summary}` for every registered static strategy, sorted by name."""
    return {name: _REGISTRY[name].summary for name in sorted(_REGISTRY)}


def get_strategy(name: str, **params: Any) -> Strategy:
    """Builds the strategy registered as `name` with `params`.

    Example:

    ```python
    >>> from hf_prune import get_strategy
    >>> strategy = get_strategy("dyn_unc", window=10)
    ```
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown strategy {name!r}. Known strategies: {', '.join(sorted(_REGISTRY))}.")
    cls = _REGISTRY[name]
    accepted = inspect.signature(cls.__init__).parameters
    unknown = [p for p in params if p not in accepted]
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        allowed = [p for p in accepted if p != "self"]
        raise TypeError(f"Strategy {name!r} got unknown parameter(s) {unknown}; it accepts {allowed}.")
    return cls(**params)


class Strategy(abc.ABC):
    """A static pruning method: a score per sample from a `ScoreRecord`, and a selection by that score.

    Subclasses set `name`, `summary`, `keep` (which end is kept by default) and `requires` (signals), store their
    parameters in `self.params`, and implement `score`.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    keep: ClassVar[str] = "high"
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = dict(params)

    @abc.abstractmethod
    def score(self, record: ScoreRecord) -> np.ndarray:
        """Returns one float score per sample, `[record.num_samples]`."""

    def select(
        self,
        record: ScoreRecord,
        prune_ratio: float,
        class_balanced: bool = False,
        keep: str | None = None,
    ) -> PruneResult:
        """Scores `record` and removes the fraction `prune_ratio` of its samples.

        Args:
            record (`ScoreRecord`): the training dynamics to score.
            prune_ratio (`float`): fraction of samples *removed*, in [0, 1); `0.25` keeps 75 %.
            class_balanced (`bool`, *optional*, defaults to `False`): remove the same fraction from each class.
            keep (`str`, *optional*): `"high"` or `"low"`; defaults to the method's own direction.

        Returns:
            `PruneResult` with the sorted kept ids, every sample's score and the provenance.
        """
        ratio = check_prune_ratio(prune_ratio)
        keep = keep or self.keep
        record.require(*self.requires, method=self.name)
        scores = np.asarray(self.score(record), dtype=np.float64)
        if scores.shape != (record.num_samples,):
            raise RuntimeError(f"{self.name}.score returned shape {scores.shape}; expected ({record.num_samples},).")
        labels = record.labels
        kept = select_kept_ids(scores, ratio, keep=keep, labels=labels, class_balanced=class_balanced)
        return PruneResult(
            kept_ids=kept,
            scores=scores,
            prune_ratio=ratio,
            method=self.name,
            params={**self.params, "keep": keep, "class_balanced": class_balanced},
            num_samples=record.num_samples,
            labels=labels,
            provenance={"record": dict(record.metadata), "num_epochs": record.num_epochs},
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
