"""Coverage-centric coreset selection: Zheng, Liu, Lai, Prakash, "Coverage-centric Coreset Selection for High
Pruning Rates", ICLR 2023, Algorithm 1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..citations import CCS as CCS_CITATION
from ..record import ScoreRecord
from ..result import PruneResult
from .base import STRATEGIES, Scores, Strategy, register_strategy
from .config import StrategyConfig


@dataclass
class CCSConfig(StrategyConfig):
    """Parameters of `ccs`.

    Args:
        score (`str`, *optional*, defaults to `"aum"`): name of the strategy whose scores are stratified (the
            paper's default score is AUM).
        score_params (`dict`, *optional*): parameters of that strategy, e.g. `{"window": 10}`.
        hard_cutoff (`float`, *optional*): beta, at most the prune ratio; defaults to `min(0.1, prune_ratio)`.
            The paper tunes it per dataset and ratio (0 at low rates, larger at high rates).
        num_strata (`int`, *optional*, defaults to 50): `k`, as in the paper.
        seed (`int`, *optional*, defaults to 0): sampling seed.
        cutoff (`str`, *optional*): name of the strategy whose hard end the hard cutoff removes; defaults to `score`
            itself. The authors' code always cuts by AUM (`cutoff="aum"`: the lowest AUM go first), whatever score it
            stratifies.
        cutoff_params (`dict`, *optional*): parameters of the `cutoff` strategy.

    Stratifying `forgetting`, `score_params` defaults to `{"never_learned": "zero"}`: the authors' code counts
    never-learned samples as 0 forgetting events, so they share the lowest stratum with the unforgettable ones.
    """

    score: str = field(default="aum", metadata={"help": "the strategy whose scores are stratified"})
    score_params: dict = field(default_factory=dict, metadata={"help": "its parameters, as JSON"})
    hard_cutoff: float | None = field(default=None, metadata={"help": "beta (default: min(0.1, prune ratio))"})
    num_strata: int = field(default=50, metadata={"help": "number of strata k"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    cutoff: str | None = field(default=None, metadata={"help": "strategy ranking the hard cutoff (default: score)"})
    cutoff_params: dict = field(default_factory=dict, metadata={"help": "its parameters, as JSON"})

    def __post_init__(self):
        for name in (self.score, self.cutoff):
            if name == "ccs":
                raise ValueError(
                    "ccs cannot stratify its own scores (nor cut by them); name a scoring strategy, e.g. score='aum'."
                )
            if name is not None and name not in STRATEGIES:
                raise ValueError(f"Unknown score strategy {name!r}. Known strategies: {STRATEGIES.names()}.")
        self.score_params = dict(self.score_params or {})
        self.cutoff_params = dict(self.cutoff_params or {})
        if self.score == "forgetting":
            self.score_params.setdefault("never_learned", "zero")  # as the authors' code, see the docstring
        self.hard_cutoff = None if self.hard_cutoff is None else float(self.hard_cutoff)
        self.num_strata, self.seed = int(self.num_strata), int(self.seed)
        if self.num_strata < 1:
            raise ValueError(f"num_strata must be >= 1; got {self.num_strata}.")


@register_strategy
class CCS(Strategy):
    """CCS (Zheng et al. 2023, Algorithm 1) over the scores of any other strategy: drop the hardest fraction
    `hard_cutoff` (beta), split the remaining score range into `num_strata` equal-width strata, then fill the budget
    from the smallest stratum up, taking `min(|B|, floor(m / #strata left))` at random from each
    (`hf_prune.selection.ccs_kept_ids`). The *hard* end is the end the scoring method keeps (low AUM, high
    forgetting, high Dyn-Unc ...). It is not a ranking: it keeps a spread of difficulties, which is what holds
    accuracy at high pruning rates.

    The same selection is available on top of any strategy as `strategy.select(..., selection="ccs")`.

    Fidelity to the authors' code (`core/data/Coreset.py`, `train.py`): the same strata bounds (`max * 1.0001`), the
    same smallest-stratum-first allocation, the hard cutoff by AUM with `cutoff="aum"`, and never-learned samples
    counted as 0 forgetting events when stratifying `forgetting`. The per-stratum kept counts equal theirs on the
    same scores (`tests/test_selection.py`). Deliberate differences are listed in `ccs_kept_ids`; besides, their
    "AUM" is the margin of *probabilities* summed over every presentation, where hf_prune's `aum` is Pleiss et al.'s
    mean logit margin (both rank the mislabeled lowest).

    Non-finite values: the scoring strategy's own handling applies (see its docstring). Samples it cannot score
    because the record saw them only with NaN or infinite values form a stratum of their own at the easy end:
    sampled like any stratum, never removed by the hard cutoff (`Strategy.select`).

    Parameters: `CCSConfig` (`score`, `score_params`, `hard_cutoff`, `num_strata`, `seed`, `cutoff`,
    `cutoff_params`).

    Example:

    ```python
    >>> get_strategy("ccs", score="forgetting", hard_cutoff=0.05).select(record, prune_ratio=0.7)
    ```
    """

    name = "ccs"
    summary = "Coverage-centric coreset selection (Zheng et al. 2023): stratified sampling over any score."
    title = "Coverage-centric coreset selection (CCS)"
    citation = CCS_CITATION
    keep = "low"
    requires = ()
    config_class = CCSConfig

    def __init__(self, config: CCSConfig | None = None, **params):
        super().__init__(config, **params)
        self.inner = STRATEGIES.build(self.config.score, **self.config.score_params)
        c = self.config
        self.cutoff = None if c.cutoff is None else STRATEGIES.build(c.cutoff, **c.cutoff_params)

    @property
    def params(self):
        params = {**super().params, "score_params": self.inner.params}
        if self.cutoff is not None:
            params["cutoff_params"] = self.cutoff.params
        return params

    def ccs_cutoff(self, records):
        if self.cutoff is None:
            return None
        several = self.cutoff.accepts_several_records()
        return self.cutoff.score(records if several else records[0]), self.cutoff.direction()

    def direction(self) -> str:
        return self.inner.direction()

    def required_signals(self) -> tuple[str, ...]:
        extra = self.cutoff.required_signals() if self.cutoff is not None else ()
        return tuple(dict.fromkeys(self.inner.required_signals() + extra))

    def accepts_several_records(self) -> bool:
        return self.inner.accepts_several_records()

    def method_info(self) -> dict[str, str]:
        info = super().method_info()
        inner = self.inner.method_info()
        info["title"] = f"{self.title} over {inner['title']}"
        info["score_name"] = inner["score_name"]
        info["citation"] = "\n\n".join(c for c in (self.citation, inner["citation"]) if c)
        return info

    def compute(self, record: ScoreRecord | Sequence[ScoreRecord]) -> Scores:
        return self.inner.compute(record)

    def select(
        self,
        record: ScoreRecord | Sequence[ScoreRecord],
        prune_ratio: float,
        class_balanced: bool = False,
        keep: str | None = None,
        selection: str = "ccs",
        hard_cutoff: float | None = None,
        num_strata: int | None = None,
        seed: int | None = None,
    ) -> PruneResult:
        """As `Strategy.select` with `selection="ccs"`; the CCS options default to the ones of the config."""
        if selection != "ccs":
            raise ValueError("The `ccs` strategy always selects by CCS; use the scoring strategy itself to rank.")
        beta = hard_cutoff if hard_cutoff is not None else self.config.hard_cutoff
        beta = min(0.1, float(prune_ratio)) if beta is None else beta
        result = super().select(
            record, prune_ratio, class_balanced=class_balanced, keep=keep, selection="ccs", hard_cutoff=beta,
            num_strata=self.config.num_strata if num_strata is None else num_strata,
            seed=self.config.seed if seed is None else seed,
        )  # fmt: skip
        result.params["hard_cutoff"] = float(beta)
        return result
