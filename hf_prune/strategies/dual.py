"""DUAL: Cho, Shin, Kang, Yun, "Lightweight Dataset Pruning without Full Training via Example Difficulty and
Prediction Uncertainty", ICML 2025 (arXiv:2502.06905).

With `P_t(x)` the target-class probability at epoch `t` (`p_target`), only the first `T` epochs (30 in the paper),
and windows of `J` epochs (10)::

    mu_k(x)    = mean_{j<J} P_{k+j}(x)                     sigma_k(x) = std_{j<J} P_{k+j}(x)   (ddof = 1)
    DUAL(x)    = 1/(T-J+1) sum_{k=0}^{T-J} sigma_k(x) (1 - mu_k(x))                  difficulty x uncertainty

High DUAL = uncertain *and* hard: keep the highest. At high pruning rates the paper samples instead of ranking
("Beta sampling"): with `r` the pruning ratio, `pbar(x)` the mean of `P_t(x)` over the first `T` epochs and `a` the
mean `pbar` of the 10 highest-DUAL samples::

    beta = 15 (1 - a) (1 - r^c_D),   alpha = 16 - beta       (c_D = 4 in the CIFAR scripts)
    P(keep x) proportional to BetaPDF(pbar(x); alpha, beta) * DUAL(x), drawn without replacement

which moves the kept set towards easier samples as `r` grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..citations import DUAL as DUAL_CITATION
from ..record import ScoreRecord
from ..selection import check_ratio, class_quotas_by_ratio, group_by_label, num_removed, rank
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


CHUNK = 65536  # samples per block: [T, J, 65536] float64 windows stay near 150 MB at T = 30


def dual_scores(p: np.ndarray, window: int = 10, epochs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """DUAL score and mean target probability `pbar` from a `[K, n]` array (or memory map) of `p_target`, over its
    first `epochs` rows, streamed in blocks of samples.

    NaN (an epoch that did not see the sample) is left out: a window counts if it saw the sample twice, the score
    averages the windows that count (NaN if none), `pbar` averages the epochs that saw it.
    """
    K, n = p.shape
    T = K if epochs is None else int(epochs)
    if not 2 <= window <= T <= K:
        raise ValueError(f"DUAL needs 2 <= window ({window}) <= epochs ({T}) <= recorded epochs ({K}).")
    score, pbar = np.full(n, np.nan), np.full(n, np.nan)
    for start in range(0, n, CHUNK):
        block = np.asarray(p[:T, start : start + CHUNK], dtype=np.float64)
        seen = ~np.isnan(block)
        with np.errstate(invalid="ignore", divide="ignore"):
            pbar[start : start + CHUNK] = np.where(seen, block, 0).sum(0) / seen.sum(0)
        win = np.lib.stride_tricks.sliding_window_view(np.where(seen, block, 0.0), window, axis=0)  # [T-J+1, c, J]
        cnt = np.lib.stride_tricks.sliding_window_view(seen, window, axis=0).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = win.sum(-1) / cnt
            dev = np.where(np.lib.stride_tricks.sliding_window_view(seen, window, axis=0), win - mean[..., None], 0)
            std = np.sqrt((dev * dev).sum(-1) / (cnt - 1))
            terms = np.where(cnt >= 2, std * (1.0 - mean), 0.0)
            counted = (cnt >= 2).sum(0)
            score[start : start + CHUNK] = np.where(counted > 0, terms.sum(0) / counted, np.nan)
    return score, pbar


def beta_parameters(anchor: float, prune_ratio: float, c_d: float) -> tuple[float, float]:
    """`(alpha, beta)` of DUAL's sampling distribution: `beta = 15 (1 - anchor)(1 - r^c_D)`, `alpha = 16 - beta`."""
    b = 15.0 * (1.0 - anchor) * (1.0 - prune_ratio**c_d)
    return 16.0 - b, b


def beta_log_pdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """`log BetaPDF(x; a, b)` for `x` in [0, 1] (`-inf` where the density is 0)."""
    x = np.asarray(x, dtype=np.float64)
    norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return norm + (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x)


def beta_sample(
    scores: np.ndarray, pbar: np.ndarray, num_keep: int, alpha: float, beta: float, rng: np.random.RandomState
) -> np.ndarray:
    """Draws `num_keep` of the samples without replacement with probability proportional to
    `BetaPDF(pbar) * score` (samples with a NaN score or `pbar` have weight 0). Where fewer than `num_keep` samples
    have a positive weight, all of them are kept and the rest is filled by the highest scores."""
    x = np.clip(pbar, 1e-6, 1.0 - 1e-6)  # keep a density that is infinite at 0 or 1 (alpha or beta < 1) finite
    with np.errstate(divide="ignore", invalid="ignore"):
        log_w = beta_log_pdf(x, alpha, beta) + np.log(np.where(scores > 0, scores, 0.0))
    ok = np.isfinite(log_w) & ~np.isnan(scores) & ~np.isnan(pbar)
    w = np.zeros(scores.shape[0])
    w[ok] = np.exp(log_w[ok] - log_w[ok].max())
    positive = np.flatnonzero(w > 0)
    if positive.size <= num_keep:
        rest = rank(np.where(w > 0, np.nan, scores), "high", nan="last")
        return np.concatenate([positive, rest[: num_keep - positive.size]]).astype(np.int64)
    return rng.choice(scores.shape[0], size=num_keep, replace=False, p=w / w.sum()).astype(np.int64)


def _draw(members, quota, held, scores, pbar, alpha, beta, rng) -> np.ndarray:
    """`quota` of `members` by `beta_sample`; `held` members (no score because every epoch saw them with
    non-finite values) are kept outright and the draw fills the rest."""
    if held is None:
        return members[beta_sample(scores[members], pbar[members], quota, alpha, beta, rng)]
    fixed, rest = members[held[members]][:quota], members[~held[members]]
    take = quota - fixed.size
    drawn = rest[beta_sample(scores[rest], pbar[rest], take, alpha, beta, rng)] if take > 0 else rest[:0]
    return np.concatenate([fixed, drawn]).astype(np.int64)


@dataclass
class DUALConfig(StrategyConfig):
    """Parameters of `dual`.

    Args:
        window (`int`, *optional*, defaults to 10): window length `J`.
        epochs (`int`, *optional*, defaults to 30): `T`, the number of first epochs used (the paper's point:
            no full training run is needed); `None` uses every recorded epoch.
        sampling (`str`, *optional*, defaults to `"beta"`): the default selection: `"beta"` (the paper's Beta
            sampling) or `"rank"` (keep the highest DUAL).
        c_d (`float`, *optional*, defaults to 4.0): `c_D` of the Beta parameters (4 in the CIFAR scripts).
        seed (`int`, *optional*, defaults to 0): seed of the Beta sampling.
        signal (`str`, *optional*, defaults to `"p_target"`): the recorded target-class probability.
    """

    window: int = field(default=10, metadata={"help": "window length J"})
    epochs: int | None = field(default=30, metadata={"help": "first T epochs used (None: all)"})
    sampling: str = field(default="beta", metadata={"help": "default selection: beta (the paper) or rank"})
    c_d: float = field(default=4.0, metadata={"help": "c_D of the Beta sampling"})
    seed: int = field(default=0, metadata={"help": "seed of the Beta sampling"})
    signal: str = field(default="p_target", metadata={"help": "the recorded target-class probability"})

    def __post_init__(self):
        self.window = int(self.window)
        self.epochs = None if self.epochs is None else int(self.epochs)
        if self.window < 2:
            raise ValueError(f"window must be >= 2 (a std needs two epochs); got {self.window}.")
        if self.epochs is not None and self.epochs < self.window:
            raise ValueError(f"epochs ({self.epochs}) must be >= window ({self.window}).")
        if self.sampling not in ("beta", "rank"):
            raise ValueError(f"sampling must be 'beta' (the paper's) or 'rank'; got {self.sampling!r}.")
        self.c_d, self.seed = float(self.c_d), int(self.seed)


@register_strategy
class DUAL(Strategy):
    """DUAL (Cho et al., ICML 2025): difficulty times uncertainty over the *early* epochs only,
    ``DUAL(x) = mean_k sigma_k(x) (1 - mu_k(x))`` over the `T - J + 1` windows of `J` epochs in the first `T`
    (see the module docstring). Keeps the **highest**; by default the kept set is *sampled* with the paper's Beta
    sampling (`select(..., selection="beta")`), which shifts towards easier samples at high pruning rates;
    `selection="rank"` keeps the top DUAL scores, `"ccs"` stratifies them.

    Fidelity to the authors' code (behaapyy/dual-pruning at its current commit 4ab525d, 2026-01-02:
    `exp_cifar/importance_evaluation.py`, `dual`; `exp_cifar/data_subset.py`, `beta_sampling`, last changed in
    31f7ffa): the same score (their factor 10 is dropped: it changes neither ranking nor sampling), the same
    `T - J + 1` windows, anchor, Beta parameters and weights, and the same draw: `numpy.random.RandomState(seed)
    .choice(n, size, replace=False, p)`, so a seeded run of their rule gives the same kept ids (`tests/test_dual.py`).
    `pbar` is the mean over the first `T` epochs in both: their `beta_sampling` averages `target_probs[:30]` (the
    score also uses the first 30; both 30s are hard-coded, ours are `epochs`); their `train_subset.py` loaded only
    epoch 0 (`[:1]`) before e5bb8f3 (2025-09-05). Deliberate differences: the kept count is `n - floor(r n)`;
    theirs, `int((1 - r) * n)` in floating point (`r = 1 - subset_rate` from the command line), is one fewer not
    only when `r n` is not an integer but also wherever the product rounds below the integer, as at the paper's own
    CIFAR settings: n = 50,000 at r = 0.9 gives `(1 - 0.9) * 50000 = 4999.999...`, so they keep 4,999 where we keep
    5,000 (9,999 vs 10,000 at r = 0.8; `tests/test_fidelity_notes.py`); the draw is seeded (their numpy generator
    is never seeded); `pbar` is clipped to [1e-6, 1 - 1e-6] so a Beta density infinite at 0 or 1 stays finite;
    when fewer than the kept count have a positive weight, all of those are kept and the rest filled by the highest
    DUAL (their `np.random.choice` raises); NaN epochs are left out as in `dyn_unc`; with `class_balanced=True`
    each class is sampled with its own quota (theirs has no class balance).

    Non-finite values: epochs in which the sample's loss or logits were NaN or infinite are left out of its windows
    and of `pbar`, as unseen epochs are. A sample left with no window that counts has no DUAL score; it is not
    removed first: `rank` keeps it, `ccs` gives it a stratum of its own, and the Beta sampling keeps it outright
    and draws the rest of the budget among the others (`Strategy.select`).

    Parameters: `DUALConfig` (`window`, `epochs`, `sampling`, `c_d`, `seed`, `signal`).
    """

    name = "dual"
    summary = "DUAL (Cho et al. 2025): early-epoch std x (1 - mean) of p_target; Beta sampling; keeps high."
    title = "Difficulty and uncertainty-aware lightweight pruning (DUAL)"
    citation = DUAL_CITATION
    score_name = "DUAL score"
    keep = "high"
    requires = ("p_target",)
    selections = ("rank", "ccs", "beta")
    config_class = DUALConfig

    def required_signals(self) -> tuple[str, ...]:
        return (self.config.signal,)

    def compute(self, record: ScoreRecord) -> Scores:
        epochs = self.config.epochs
        if epochs is not None and epochs > record.num_epochs:
            raise ValueError(
                f"DUAL with epochs={epochs} needs that many recorded epochs; the record has {record.num_epochs}. "
                "Pass a smaller `epochs` (and `window`) or record longer."
            )
        score, pbar = dual_scores(record.signal(self.config.signal), self.config.window, epochs)
        used = record.num_epochs if epochs is None else epochs
        return Scores(score, {"dual_epochs": used}, extras={"pbar": pbar})

    def select(self, record, prune_ratio, class_balanced=False, keep=None, selection=None, **kwargs):
        """As `Strategy.select`; `selection` defaults to the config's `sampling` (`"beta"`: the paper's)."""
        selection = self.config.sampling if selection is None else selection
        return super().select(record, prune_ratio, class_balanced, keep, selection, **kwargs)

    def sample_kept(self, selection, computed, prune_ratio, labels, class_balanced, keep):
        ratio = check_ratio(prune_ratio)
        scores, pbar = np.asarray(computed.values, dtype=np.float64), computed.extras["pbar"]
        n = scores.shape[0]
        top10 = rank(scores, "high")[:10]
        anchor = float(np.nanmean(pbar[top10]))
        alpha, beta = beta_parameters(anchor, ratio, self.config.c_d)
        if not (alpha > 0 and beta > 0):
            raise ValueError(
                f"DUAL's Beta(alpha={alpha:.3g}, beta={beta:.3g}) is degenerate (anchor {anchor:.4f}: the top-scored "
                "samples are always right); use selection='rank'."
            )
        rng = np.random.RandomState(self.config.seed)
        held = computed.extras.get("nonfinite_held")  # unscored because only seen non-finite: kept outright
        if not class_balanced:
            kept = _draw(np.arange(n), n - num_removed(n, ratio), held, scores, pbar, alpha, beta, rng)
        else:
            if labels is None:
                raise ValueError("class_balanced=True needs labels, but none were given.")
            classes, order, starts = group_by_label(np.asarray(labels), np.arange(n))
            quotas = class_quotas_by_ratio(np.diff(starts), ratio)
            kept = []
            for i in range(classes.size):  # one draw per class, with the class's own quota
                members = order[starts[i] : starts[i + 1]]
                kept.append(_draw(members, int(quotas[i]), held, scores, pbar, alpha, beta, rng))
            kept = np.concatenate(kept)
        extra: dict[str, Any] = {"c_d": self.config.c_d, "seed": self.config.seed, "alpha": alpha, "beta": beta}
        return np.sort(kept).astype(np.int64), extra
