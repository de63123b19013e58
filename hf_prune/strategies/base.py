"""The `Strategy` base class, what `compute` returns (`Scores`), and the registry behind `get_strategy`,
`list_strategies`, `is_strategy`, `strategy_info` and `register_strategy`.

A strategy is a config (a `StrategyConfig` dataclass of its parameters) plus a pure scoring function: `compute(record)`
returns the scores *and* whatever its provenance needs (which epoch or feature file it read), so an instance holds
no state between calls and the same strategy can score several records.
"""

from __future__ import annotations

import abc
import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..record import ScoreRecord
from ..registry import Registry
from ..result import PruneResult
from ..selection import ccs_kept_ids, check_keep, check_ratio, select_kept_ids
from .config import StrategyConfig


STRATEGIES = Registry("strategy", "strategies")


@dataclass
class Scores:
    """What a strategy's `compute` returns.

    Args:
        values (`np.ndarray` `[n]`): one score per sample (NaN where the method could not score it).
        provenance (`dict`, *optional*): facts the result's provenance records (e.g. the epochs or features used).
        extras (`dict`, *optional*): per-sample arrays a method's own selection needs besides the scores (DUAL's
            mean target probability); not recorded.
    """

    values: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class Strategy(abc.ABC):
    """A static pruning method: a score per sample from a `ScoreRecord`, and a selection by that score.

    Subclasses set the class attributes below, a `config_class` (a `StrategyConfig` dataclass of their parameters),
    and implement `compute`. A strategy is built from its config or from keyword parameters:
    `DynUnc(DynUncConfig(window=5))`, `DynUnc(window=5)` and `get_strategy("dyn_unc", window=5)` are the same.

    Class attributes:
        name (`str`): registered name.
        summary (`str`): one line for listings.
        title (`str`): the method's name for people (cards).
        citation (`str`): BibTeX of its paper (cards).
        description (`str`, *optional*): a paragraph for cards; defaults to the first paragraph of the docstring.
        score_name (`str`, *optional*): what the score is, for cards.
        keep (`str`): which end is kept by default, `"high"` or `"low"` (see `direction` for per-config ends).
        requires (`tuple[str]`): signals the record must hold (see `required_signals`).
        multi_record (`bool`): whether `compute` averages over several records (independent runs).
        selections (`tuple[str]`): the `selection` modes `select` accepts; modes beyond `"rank"` and `"ccs"` are
            the method's own (`sample_kept`), e.g. DUAL's `"beta"` sampling.

    Non-finite values: a record marks the samples seen in an epoch with a NaN or infinite loss or logits
    (`ScoreRecord.nonfinite`); their values there are NaN, so every method leaves those epochs out as it leaves out
    unseen ones (each method's docstring says how). A sample left with no score *only because* of them (NaN score, and
    seen with non-finite values in some epoch) is never removed first: `"rank"` keeps it ahead of every score,
    `"ccs"` gives it a stratum of its own outside the hard cutoff, a method's own mode decides (DUAL's `"beta"` keeps
    it outright). The result's provenance (`nonfinite`) and a `NonFiniteRecordWarning` say how many.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    title: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    description: ClassVar[str | None] = None
    score_name: ClassVar[str] = ""
    keep: ClassVar[str] = "high"
    requires: ClassVar[tuple[str, ...]] = ()
    multi_record: ClassVar[bool] = False
    selections: ClassVar[tuple[str, ...]] = ("rank", "ccs")
    config_class: ClassVar[type[StrategyConfig]] = StrategyConfig

    def __init__(self, config: StrategyConfig | None = None, **params: Any):
        self.config = self.config_class.resolve(config, params, type(self).__name__)

    @property
    def params(self) -> dict[str, Any]:
        """The parameters as plain values (`config.to_dict()`), as recorded in results and cards."""
        return self.config.to_dict()

    # ------------------------------------------------------------------ what this configured strategy needs

    def direction(self) -> str:
        """Which end of the scores this strategy keeps by default (`keep`, unless the config says otherwise)."""
        return self.keep

    def required_signals(self) -> tuple[str, ...]:
        """Signals the record must hold (`requires`, unless the config names another signal)."""
        return self.requires

    def accepts_several_records(self) -> bool:
        """Whether `compute` / `select` take a list of records of independent runs and average over them."""
        return self.multi_record

    def sample_kept(
        self, selection: str, computed: Scores, prune_ratio: float, labels, class_balanced: bool, keep: str
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A method's own selection mode (one of `selections` besides `"rank"` and `"ccs"`): the sorted kept ids
        and the parameters it adds to the result."""
        raise ValueError(f"`{self.name}` has no selection mode {selection!r}.")

    def ccs_cutoff(self, records: list[ScoreRecord]) -> tuple[np.ndarray, str] | None:
        """Under `selection="ccs"`: the scores and hard end (`"high"`/`"low"`) ranking the hard cutoff, or `None` to
        cut by this method's own scores (the `ccs` strategy can cut by another method's, as the authors' code cuts
        by AUM)."""
        return None

    def method_info(self) -> dict[str, str]:
        """What a card says about this method: `name`, `title`, `description`, `score_name`, `citation`."""
        description = self.description
        if description is None:
            doc = inspect.getdoc(type(self)) or ""
            description = " ".join(doc.split("\n\n")[0].split())
        title = self.title or f"`{self.name}`"
        return {
            "name": self.name,
            "title": title,
            "description": description,
            "score_name": self.score_name or f"the {title} score",
            "citation": self.citation,
        }

    # ------------------------------------------------------------------ scoring and selection

    @abc.abstractmethod
    def compute(self, record: ScoreRecord | Sequence[ScoreRecord]) -> Scores:
        """Scores every sample of `record` (several records for `multi_record` methods). Must not change `self`."""

    def score(self, record: ScoreRecord | Sequence[ScoreRecord]) -> np.ndarray:
        """Returns one float score per sample, `[record.num_samples]`."""
        return self.compute(record).values

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
                (Zheng et al. 2023; see `hf_prune.selection.ccs_kept_ids`), where the `keep` end is the hard end.
            hard_cutoff (`float`, *optional*, defaults to 0.0): CCS only: fraction of the hardest samples removed
                before stratifying; at most `prune_ratio`.
            num_strata (`int`, *optional*, defaults to 50): CCS only: number of equal-width score strata.
            seed (`int`, *optional*, defaults to 0): CCS only: seed of the sampling inside strata.

        Returns:
            `PruneResult` with the sorted kept ids, every sample's score, the exact params and the provenance.
        """
        ratio = check_ratio(prune_ratio)
        keep = check_keep(keep or self.direction())
        if selection not in self.selections:
            raise ValueError(f"selection must be one of {self.selections} for `{self.name}`; got {selection!r}.")
        records = as_records(record, self)
        for rec in records:
            rec.require(*self.required_signals(), method=self.name)
        computed = self.compute(records if self.accepts_several_records() else records[0])
        scores = np.asarray(computed.values, dtype=np.float64)
        primary = records[0]
        if scores.shape != (primary.num_samples,):
            raise RuntimeError(f"{self.name} scored shape {scores.shape}; expected ({primary.num_samples},).")
        # Samples the method could not score *because* the record saw them only with non-finite values are never
        # removed first: kept (rank), a stratum of their own outside the hard cutoff (ccs), kept outright (DUAL's beta).
        held, nonfinite = nonfinite_unscored(records, scores)
        _check_scored(scores, self.name, primary, held)
        labels = primary.labels
        selection_params: dict[str, Any] = {"keep": keep, "class_balanced": class_balanced, "selection": selection}
        if selection == "ccs":
            cutoff_scores, cutoff_keep = self.ccs_cutoff(records) or (None, None)
            ccs_scores, cutoff_scores = held_as_own_stratum(scores, cutoff_scores, held, keep, cutoff_keep)
            kept = ccs_kept_ids(
                ccs_scores, ratio, keep=keep, hard_cutoff=hard_cutoff, num_strata=num_strata, seed=seed,
                labels=labels, class_balanced=class_balanced, cutoff_scores=cutoff_scores, cutoff_keep=cutoff_keep,
            )  # fmt: skip
            selection_params.update(hard_cutoff=float(hard_cutoff), num_strata=int(num_strata), seed=int(seed))
        elif selection == "rank":
            ranked = held_first(scores, held, keep)
            kept = select_kept_ids(ranked, ratio, keep=keep, labels=labels, class_balanced=class_balanced)
        else:
            if held is not None:
                computed.extras["nonfinite_held"] = held
            kept, extra = self.sample_kept(selection, computed, ratio, labels, class_balanced, keep)
            selection_params.update(extra)
        provenance: dict[str, Any] = {"record": dict(primary.metadata), "num_epochs": primary.num_epochs}
        if primary.metadata.get("label_names"):  # the source's ClassLabel names: the exported `label` keeps them
            provenance["label_names"] = list(primary.metadata["label_names"])
        if primary.path is not None:
            provenance["record_path"] = str(primary.path)
        if len(records) > 1:
            provenance["runs"] = [
                {"record": dict(r.metadata), "num_epochs": r.num_epochs, "record_path": str(r.path) if r.path else None}
                for r in records
            ]
        provenance.update(computed.provenance)
        provenance["method"] = self.method_info()
        if nonfinite:
            unscored = int(held.sum()) if held is not None else 0
            provenance["nonfinite"] = {"samples": nonfinite, "unscored_kept": unscored}
        if nonfinite and (unscored or self.required_signals()):  # (random and feature methods read no signal)
            warnings.warn(
                f"`{self.name}`: {nonfinite} sample(s) were seen with a NaN or infinite loss or logits in some epoch "
                f"(record.epoch_num_nonfinite); those epochs were left out of the scores"
                + (f", and the {unscored} left with no score were not removed first (see the method's docstring)"
                   if unscored else "") + ".",
                NonFiniteRecordWarning, stacklevel=2,
            )  # fmt: skip
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

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


MAX_UNSCORED_FRACTION = 0.5


def _check_scored(scores: np.ndarray, method: str, record: ScoreRecord, held: np.ndarray | None = None) -> None:
    """Refuses to select from scores that are all or mostly NaN: the kept set would be picked by sample id, not by
    the method (an empty or mostly empty record, e.g. training that never reached the recorder, or that diverged)."""
    unscored = int(np.isnan(scores).sum())
    if unscored and unscored > MAX_UNSCORED_FRACTION * scores.size:
        what = "no sample has" if unscored == scores.size else f"{unscored} of {scores.size} samples have no"
        diverged = ""
        if held is not None and held.any():
            diverged = (
                f" {int(held.sum())} of them were seen only with a NaN or infinite loss or logits "
                f"(record.epoch_num_nonfinite = {record.epoch_num_nonfinite}): the training diverged; score the "
                "epochs before it (the method's epoch parameters, or `ScoreRecord.load(path, num_epochs=k)`) or retrain."
            )
        raise ValueError(
            f"`{method}`: {what} score (NaN) from this record ({record.num_epochs} epochs; NaN where the record never "
            "saw a sample, or saw it too rarely for the method). Selecting would keep samples by id, not by score. "
            "Check the record (`record.signal(...)` should not be mostly NaN) or the method's parameters." + diverged
        )


class NonFiniteRecordWarning(UserWarning):
    """A record scored with samples seen with non-finite values (NaN/inf loss or logits) in some epochs."""


def nonfinite_unscored(records: Sequence[ScoreRecord], scores: np.ndarray) -> tuple[np.ndarray | None, int]:
    """`(held, count)`: `held` marks the samples with no score (NaN) that a record saw with non-finite values in
    some epoch (`None` when no record saw any), and `count` is how many samples any record saw so. Such a sample's
    NaN says "the values were undefined", not "never seen" or "too rarely seen": no evidence to remove it."""
    ever = None
    for record in records:
        if record.has_nonfinite:
            mask = record.ever_nonfinite()
            ever = mask if ever is None else ever | mask
    if ever is None:
        return None, 0
    held = np.isnan(np.asarray(scores, dtype=np.float64)) & ever
    return (held if held.any() else None), int(ever.sum())


def held_first(scores: np.ndarray, held: np.ndarray | None, keep: str) -> np.ndarray:
    """The scores `select` ranks by: `held` samples at the kept end (ahead of every score, ties to the lower id)."""
    if held is None:
        return scores
    ranked = np.array(scores, dtype=np.float64)
    ranked[held] = np.inf if keep == "high" else -np.inf
    return ranked


def held_as_own_stratum(scores, cutoff_scores, held, keep: str, cutoff_keep: str | None):
    """The scores and cutoff scores CCS stratifies by: `held` samples at the *easy* end (an infinite value: a
    stratum of their own, sampled like any other, never in the hard cutoff)."""
    if held is None:
        return scores, cutoff_scores
    easy = -np.inf if keep == "high" else np.inf
    ranked = np.array(scores, dtype=np.float64)
    ranked[held] = easy
    if cutoff_scores is None:
        return ranked, ranked.copy()
    cut = np.array(cutoff_scores, dtype=np.float64)
    cut[held] = -np.inf if (cutoff_keep or keep) == "high" else np.inf
    return ranked, cut


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator that registers a `Strategy` subclass under its `name`; a duplicate name is refused."""
    return STRATEGIES.register(cls)


def as_records(record: ScoreRecord | Sequence[ScoreRecord], strategy: Strategy | None = None) -> list[ScoreRecord]:
    """Returns `record` as a non-empty list of records of one split (same `num_samples`), checking the method
    accepts several."""
    if isinstance(record, ScoreRecord):
        return [record]
    records = list(record)
    if not records or not all(isinstance(r, ScoreRecord) for r in records):
        raise TypeError(f"Expected a ScoreRecord or a list of them; got {type(record).__name__}.")
    if len(records) > 1 and strategy is not None and not strategy.accepts_several_records():
        several = [n for n in STRATEGIES.names() if STRATEGIES.get(n).multi_record]
        raise ValueError(
            f"`{strategy.name}` scores one record; got {len(records)}. Only methods that average over runs "
            f"({', '.join(several)}) take several."
        )
    sizes = {r.num_samples for r in records}
    if len(sizes) > 1:
        raise ValueError(f"The records index splits of different lengths {sorted(sizes)}; they must be one split.")
    return records
