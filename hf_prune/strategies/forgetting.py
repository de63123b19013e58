"""Forgetting events: Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural Network
Learning", ICLR 2019."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..citations import FORGETTING
from ..record import ScoreRecord
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


NEVER_LEARNED = ("inf", "zero")

def forgetting_counts(record: ScoreRecord, signal: str = "correct", never_learned: str = "inf") -> np.ndarray:
    """Per-sample number of forgetting events (correct at one presentation, wrong at the next); for samples never
    classified correctly `+inf` (`never_learned="inf"`) or 0 (`"zero"`); NaN for samples never seen. Streams the
    epochs."""
    if never_learned not in NEVER_LEARNED:
        raise ValueError(f"never_learned must be one of {NEVER_LEARNED}; got {never_learned!r}.")
    n = record.num_samples
    prev = np.full(n, np.nan)
    count = np.zeros(n)
    learned = np.zeros(n, dtype=bool)
    seen_any = np.zeros(n, dtype=bool)
    for row in record.iter_epochs(signal):
        row = np.asarray(row, dtype=np.float64)
        seen = ~np.isnan(row)
        correct = seen & (row > 0.5)
        count += seen & (prev > 0.5) & ~correct
        prev[seen] = row[seen]
        learned |= correct
        seen_any |= seen
    count[~learned] = np.inf if never_learned == "inf" else 0.0
    count[~seen_any] = np.nan
    return count


@dataclass
class ForgettingConfig(StrategyConfig):
    """Parameters of `forgetting`.

    Args:
        signal (`str`, *optional*, defaults to `"correct"`): the recorded 0/1 correctness signal.
        never_learned (`str`, *optional*, defaults to `"inf"`): the score of samples never classified correctly:
            `"inf"` (Toneva et al. and Paul et al.'s code: forgotten infinitely often, kept first) or `"zero"` (the
            CCS authors' code, which counts them as never forgotten, like the unforgettable ones).
    """

    signal: str = field(default="correct", metadata={"help": "the recorded 0/1 correctness signal"})
    never_learned: str = field(
        default="inf", metadata={"help": "score of never-learned samples: inf (Toneva et al.) or zero (CCS code)"}
    )

    def __post_init__(self):
        if self.never_learned not in NEVER_LEARNED:
            raise ValueError(
                f"never_learned must be 'inf' (Toneva et al.) or 'zero' (the CCS authors' code); got "
                f"{self.never_learned!r}."
            )


@register_strategy
class Forgetting(Strategy):
    """Forgetting (Toneva et al. 2019, Sec. 2): the number of *forgetting events*, transitions from correctly to
    incorrectly classified between consecutive presentations of a sample,
    ``F(x) = sum_k 1[acc_{k-1}(x) = 1 and acc_k(x) = 0]``, over the recorded epochs (a presentation = an epoch that
    saw the sample). Samples never classified correctly (never learned) count, as in the paper, as
    forgotten infinitely often, so their score is `+inf`. Keeps the **highest** (most forgettable); the
    unforgettable (score 0) go first.

    Fidelity: the counts equal those of the data-diet code (Paul et al., `forgetting.py`, never-learned = inf) at
    epoch granularity (a presentation here is an epoch that saw the sample; their code counts every minibatch
    presentation too, which is the same thing for one presentation per epoch). The CCS authors' code instead
    counts never-learned samples as 0 forgetting events: `never_learned="zero"` reproduces it, and the `ccs`
    strategy uses it by default when stratifying forgetting. Under `selection="ccs"` with `+inf` scores, the
    hard cutoff removes the never-learned first and the survivors form a stratum of their own
    (`hf_prune.selection.ccs_kept_ids`).

    Non-finite values: an epoch in which the sample's loss or logits were NaN or infinite is not a presentation:
    neither a correct classification nor a forgetting event (transitions are counted between the finite
    presentations around it), where counting it as "wrong" would invent a forgetting event. A sample with no finite
    presentation has no count; it is kept, not removed first (`Strategy.select`).

    Parameters: `ForgettingConfig` (`signal`, `never_learned`).
    """

    name = "forgetting"
    summary = "Forgetting events (Toneva et al. 2019): correct->wrong flips, never-learned = inf; keeps high."
    title = "Forgetting events"
    citation = FORGETTING
    keep = "high"
    requires = ("correct",)
    config_class = ForgettingConfig

    def required_signals(self) -> tuple[str, ...]:
        return (self.config.signal,)

    def compute(self, record: ScoreRecord) -> Scores:
        return Scores(forgetting_counts(record, self.config.signal, self.config.never_learned))
