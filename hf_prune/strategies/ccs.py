"""Coverage-centric coreset selection: Zheng, Liu, Li, Prakash, "Coverage-centric Coreset Selection for High
Pruning Rates", ICLR 2023, Algorithm 1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..record import ScoreRecord
from ..result import PruneResult
from .base import Strategy, get_strategy, register_strategy


@register_strategy
class CCS(Strategy):
    """CCS (Zheng et al. 2023, Algorithm 1) over the scores of any other strategy: drop the hardest fraction
    `hard_cutoff` (beta), split the remaining score range into `num_strata` equal-width strata, then fill the budget
    from the smallest stratum up, taking `min(|B|, floor(m / #strata left))` at random from each
    (`hf_prune.strategies.selection.ccs_kept_ids`). The *hard* end is the end the scoring method keeps (low AUM,
    high forgetting, high Dyn-Unc ...). It is not a ranking: it keeps a spread of difficulties, which is what holds
    accuracy at high pruning rates.

    The same selection is available on top of any strategy as `strategy.select(..., selection="ccs")`.

    Args:
        score (`str`, *optional*, defaults to `"aum"`): name of the strategy whose scores are stratified (the
            paper's default score is AUM).
        score_params (`dict`, *optional*): parameters of that strategy, e.g. `{"window": 10}`.
        hard_cutoff (`float`, *optional*): beta, at most the prune ratio; defaults to `min(0.1, prune_ratio)`.
            The paper tunes it per dataset and ratio (0 at low rates, larger at high rates).
        num_strata (`int`, *optional*, defaults to 50): `k`, as in the paper.
        seed (`int`, *optional*, defaults to 0): sampling seed.

    Example:

    ```python
    >>> get_strategy("ccs", score="forgetting", hard_cutoff=0.05).select(record, prune_ratio=0.7)
    ```
    """

    name = "ccs"
    summary = "Coverage-centric coreset selection (Zheng et al. 2023): stratified sampling over any score."
    keep = "low"
    requires = ()

    def __init__(
        self,
        score: str = "aum",
        score_params: dict | None = None,
        hard_cutoff: float | None = None,
        num_strata: int = 50,
        seed: int = 0,
    ):
        if score == self.name:
            raise ValueError("ccs cannot stratify its own scores; name a scoring strategy, e.g. score='aum'.")
        self.inner = get_strategy(score, **dict(score_params or {}))
        super().__init__(
            score=score,
            score_params=dict(self.inner.params),
            hard_cutoff=None if hard_cutoff is None else float(hard_cutoff),
            num_strata=int(num_strata),
            seed=int(seed),
        )
        self.keep = self.inner.keep
        self.requires = tuple(self.inner.requires)
        self.multi_record = self.inner.multi_record

    def score(self, record: ScoreRecord | Sequence[ScoreRecord]) -> np.ndarray:
        return self.inner.score(record)

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
        """As `Strategy.select` with `selection="ccs"`; the CCS options default to the ones given at construction."""
        if selection != "ccs":
            raise ValueError("The `ccs` strategy always selects by CCS; use the scoring strategy itself to rank.")
        beta = hard_cutoff if hard_cutoff is not None else self.params["hard_cutoff"]
        beta = min(0.1, float(prune_ratio)) if beta is None else beta
        result = super().select(
            record, prune_ratio, class_balanced=class_balanced, keep=keep, selection="ccs", hard_cutoff=beta,
            num_strata=self.params["num_strata"] if num_strata is None else num_strata,
            seed=self.params["seed"] if seed is None else seed,
        )  # fmt: skip
        result.params["hard_cutoff"] = float(beta)
        return result

    def provenance(self) -> dict:
        return self.inner.provenance()
