"""The `Strategy` base class and the registry behind `get_strategy`, `list_strategies` and `register_strategy`."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..record import ScoreRecord
from ..registry import Registry
from ..result import PruneResult
from .selection import ccs_kept_ids, check_prune_ratio, select_kept_ids


_REGISTRY = Registry("strategy", "strategies")


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator that registers a `Strategy` subclass under its `name`; a duplicate name is refused."""
    return _REGISTRY.register(cls)


def list_strategies() -> dict[str, str]:
    """Returns `{name: one-line summary}` for every registered static strategy, sorted by name."""
    return _REGISTRY.summaries()


def get_strategy(name: str, **params: Any) -> Strategy:
    """Builds the strategy registered as `name` with `params`.

    Example:

    ```python
    >>> from hf_prune import get_strategy
    >>> strategy = get_strategy("dyn_unc", window=10)
    ```
    """
    return _REGISTRY.build(name, **params)


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

    #: Whether `select` / `score` accept several records (independent runs) and average over them.
    multi_record: ClassVar[bool] = False

    def select(
        self,
        record: ScoreRecord | Sequence[ScoreRecord],
        prune_ratio: float,
        class_balanced: bool = False,
        keep: str | None = None,
        selection: str = "rank",
        hard_cutoff: float = 0.0,
        num_strata: int = 50,
        seed: int = 0,
    ) -> PruneResult:
        """Scores `record` and removes the fraction `prune_ratio` of its samples.

        Args:
            record (`ScoreRecord` or a list of them): the training dynamics to score. Methods that average over
                independent runs (`el2n`, `grand`) take a list of records of the same split.
            prune_ratio (`float`): fraction of samples *removed*, in [0, 1); `0.25` keeps 75 %.
            class_balanced (`bool`, *optional*, defaults to `False`): remove the same fraction from each class.
            keep (`str`, *optional*): `"high"` or `"low"`; defaults to the method's own direction.
            selection (`str`, *optional*, defaults to `"rank"`): `"rank"` keeps the top of the ranking;
                `"ccs"` samples the kept set by coverage-centric stratified sampling over the same scores
                (Zheng et al. 2023; see `selection.ccs_kept_ids`), where the `keep` end counts as the hard end.
            hard_cutoff (`float`, *optional*, defaults to 0.0): CCS only: fraction of the hardest samples removed
                before stratifying; at most `prune_ratio`.
            num_strata (`int`, *optional*, defaults to 50): CCS only: number of equal-width score strata.
            seed (`int`, *optional*, defaults to 0): CCS only: seed of the sampling inside strata.

        Returns:
            `PruneResult` with the sorted kept ids, every sample's score, the exact params and the provenance.
        """
        ratio = check_prune_ratio(prune_ratio)
        keep = keep or self.keep
        if keep not in ("high", "low"):
            raise ValueError(f"keep must be 'high' or 'low'; got {keep!r}.")
        if selection not in ("rank", "ccs"):
            raise ValueError(f"selection must be 'rank' or 'ccs'; got {selection!r}.")
        records = as_records(record, self)
        for rec in records:
            rec.require(*self.requires, method=self.name)
        scores = np.asarray(self.score(records if self.multi_record else records[0]), dtype=np.float64)
        primary = records[0]
        if scores.shape != (primary.num_samples,):
            raise RuntimeError(f"{self.name}.score returned shape {scores.shape}; expected ({primary.num_samples},).")
        labels = primary.labels
        selection_params: dict[str, Any] = {"keep": keep, "class_balanced": class_balanced, "selection": selection}
        if selection == "ccs":
            kept = ccs_kept_ids(
                scores, ratio, keep=keep, hard_cutoff=hard_cutoff, num_strata=num_strata, seed=seed,
                labels=labels, class_balanced=class_balanced,
            )  # fmt: skip
            selection_params.update(hard_cutoff=float(hard_cutoff), num_strata=int(num_strata), seed=int(seed))
        else:
            kept = select_kept_ids(scores, ratio, keep=keep, labels=labels, class_balanced=class_balanced)
        provenance: dict[str, Any] = {"record": dict(primary.metadata), "num_epochs": primary.num_epochs}
        if primary.path is not None:
            provenance["record_path"] = str(primary.path)
        if len(records) > 1:
            provenance["runs"] = [
                {
                    "record": dict(r.metadata),
                    "num_epochs": r.num_epochs,
                    "record_path": str(r.path) if r.path else None,
                }
                for r in records
            ]
        provenance.update(self.provenance())
        return PruneResult(
            kept_ids=kept,
            scores=scores,
            prune_ratio=ratio,
            method=self.name,
            params={**self.params, **selection_params},
            num_samples=primary.num_samples,
            labels=labels,
            provenance=provenance,
        )

    def provenance(self) -> dict[str, Any]:
        """Extra provenance a method adds to its results (e.g. which feature file it read); empty by default."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def as_records(record: ScoreRecord | Sequence[ScoreRecord], strategy: Strategy | None = None) -> list[ScoreRecord]:
    """Returns `record` as a non-empty list of records of one split (same `num_samples`), checking the method
    accepts several."""
    if isinstance(record, ScoreRecord):
        return [record]
    records = list(record)
    if not records or not all(isinstance(r, ScoreRecord) for r in records):
        raise TypeError(f"Expected a ScoreRecord or a list of them; got {type(record).__name__}.")
    if len(records) > 1 and strategy is not None and not strategy.multi_record:
        raise ValueError(
            f"`{strategy.name}` scores one record; got {len(records)}. Only methods that average over runs "
            f"({', '.join(n for n, c in sorted(_REGISTRY.classes.items()) if c.multi_record)}) take several."
        )
    sizes = {r.num_samples for r in records}
    if len(sizes) > 1:
        raise ValueError(f"The records index splits of different lengths {sorted(sizes)}; they must be one split.")
    return records
