"""Dynamic Uncertainty (Dyn-Unc): He, Yang, Huang, Zhao, "Large-scale Dataset Pruning with Dynamic Uncertainty",
arXiv:2306.05175, Eq. (2)-(3) and Algorithm 1.

With `P_k(x) = P(y | x, theta_k)`, the softmax probability of the true label after epoch `k` (`p_target`)::

    U_k(x) = sqrt( sum_{j=0}^{J-1} (P_{k+j}(x) - mean_j P_{k+j}(x))^2 / (J - 1) )      (2)  sample std, ddof = 1
    U(x)   = sum_{k=0}^{K-J-1} U_k(x) / (K - J)                                        (3)

so there are `K - J` windows and the last epoch is in none of them (exactly as the paper writes the sums).
The highest `U` are kept: they are the uncertain samples; easy ones (always right) and hard or mislabeled
ones (always wrong) have low variation and go first.

NaN (a sample not seen in an epoch, e.g. dropped by `drop_last`) is handled deterministically: a window's std
is taken over the epochs in it where the sample was seen and counts only if it saw the sample at least twice;
`U` is the mean over the windows that count. A sample with no window that counts gets NaN, which ranks below
every score and is removed first, unless the record saw it with a NaN or infinite loss or logits: its `U` is then
undefined rather than low, and `select` keeps it (see `DynUnc`). With complete records this is exactly Eq. (2)-(3).

The computation streams: `DynUncAccumulator` keeps a ring buffer of the last `J` epochs plus running sums, so it
never holds `[K, n]` in memory (ImageNet-21K: n = 14.2 M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..citations import DYN_UNC
from ..dyn_unc_window import check_dyn_unc_window
from ..record import ScoreRecord
from .base import Scores, Strategy, register_strategy
from .config import StrategyConfig


class DynUncAccumulator:
    """Streaming Dyn-Unc: feed epochs one at a time with `update(row)`, read `U` with `result()`.

    Memory: a float32 ring buffer `[J, n]` plus a few `[n]` float64 running arrays, whatever the number of epochs
    `K`. The std of the window that ends at epoch `e` is added to `U` only when epoch `e + 1` arrives, which is
    Eq. (3)'s upper bound `k <= K-J-1`: after `K` epochs the windows starting at `0 ... K-J-1` are averaged.

    While no NaN has been fed, every window holds exactly `J` values and a fast path runs (about 15 vector passes
    per epoch, fused with torch); the first NaN switches to per-sample counts for the rest of the stream.

    Args:
        num_samples (`int`): number of samples `n`.
        window (`int`, *optional*, defaults to 10): window length `J` (at least 2).
    """

    def __init__(self, num_samples: int, window: int = 10):
        self.n = int(num_samples)
        self.J = check_dyn_unc_window(window)
        self.epochs_seen = 0
        self._ring = np.zeros((self.J, self.n), dtype=np.float32)
        self._sum = np.zeros(self.n, dtype=np.float64)
        self._sumsq = np.zeros(self.n, dtype=np.float64)
        self._u_sum = np.zeros(self.n, dtype=np.float64)
        self._windows = 0  # windows added so far, while every window is complete
        # Per-sample counts, created on the first NaN: values seen in the current window, windows that counted.
        self._count: np.ndarray | None = None
        self._u_windows: np.ndarray | None = None
        self._a = np.empty(self.n, dtype=np.float64)
        self._b = np.empty(self.n, dtype=np.float64)
        # torch views of the same memory: the fast path uses fused ops (addcmul) on all cores.
        self._t = {name: torch.from_numpy(getattr(self, f"_{name}")) for name in ("ring", "sum", "sumsq", "u_sum", "a", "b")}

    def _switch_to_counts(self) -> None:
        filled = min(self.epochs_seen, self.J)  # every earlier window was complete
        self._count = np.full(self.n, float(filled))
        self._u_windows = np.full(self.n, float(self._windows))

    def _add_window_std(self) -> None:
        """Adds the std (ddof = 1) of the current window to the running sum of U."""
        var, s = self._a, self._sum
        if self._count is None:
            t = self._t
            # (J-1) var = sumsq - sum^2 / J, in one fused pass; 1/sqrt(J-1) is applied once in result().
            torch.addcmul(t["sumsq"], t["sum"], t["sum"], value=-1.0 / self.J, out=t["a"])
            t["a"].clamp_(min=0.0)  # equal values can leave -1e-17 by rounding
            t["u_sum"].add_(t["a"].sqrt_())
            self._windows += 1
            return
        count = self._count
        valid = count >= 2
        with np.errstate(invalid="ignore", divide="ignore"):
            np.multiply(s, s, out=var)
            var /= count
            np.subtract(self._sumsq, var, out=var)
            var /= count - 1
        np.maximum(var, 0.0, out=var)
        np.sqrt(var, out=var)
        var[~valid] = 0.0
        # The fast path sums sqrt((J-1) var); keep one scale so both paths add up in the same units.
        var *= math.sqrt(self.J - 1)
        self._u_sum += var
        self._u_windows += valid

    def update(self, row: np.ndarray) -> None:
        """Feeds the next epoch's `p_target` row `[n]` (NaN where the sample was not seen)."""
        row = np.asarray(row, dtype=np.float32)
        if not row.flags.writeable or not row.flags.c_contiguous:
            row = np.array(row)  # torch.from_numpy needs a writable, contiguous buffer
        if row.shape != (self.n,):
            raise ValueError(f"Epoch row has shape {row.shape}; expected ({self.n},).")
        if self.epochs_seen >= self.J:
            self._add_window_std()  # the window ending at the previous epoch: a later epoch exists now
        new = torch.from_numpy(row)
        if self._count is None and bool(torch.isnan(new.sum())):
            self._switch_to_counts()
        slot = self.epochs_seen % self.J
        full = self.epochs_seen >= self.J
        if self._count is None:
            t = self._t
            a, b, out = t["a"], t["b"], t["ring"][slot]
            a.copy_(new)
            if full:  # slide: sum += x_in - x_out, sumsq += (x_in - x_out)(x_in + x_out)
                torch.sub(a, out, out=b)
                a.add_(out)
                t["sum"].add_(b)
                t["sumsq"].addcmul_(b, a)
            else:
                t["sum"].add_(a)
                t["sumsq"].addcmul_(a, a)
        else:
            if full:
                self._remove(self._ring[slot])
            self._insert(row)
        self._ring[slot] = row
        self.epochs_seen += 1

    def _insert(self, row: np.ndarray) -> None:
        x = self._b
        np.copyto(x, row)
        seen = ~np.isnan(x)
        x[~seen] = 0.0
        self._count += seen
        self._sum += x
        x *= x
        self._sumsq += x

    def _remove(self, row: np.ndarray) -> None:
        x = self._b
        np.copyto(x, row)
        seen = ~np.isnan(x)
        x[~seen] = 0.0
        self._count -= seen
        self._sum -= x
        x *= x
        self._sumsq -= x

    def result(self) -> np.ndarray:
        """Dyn-Unc `U` per sample `[n]` (float64) over the epochs fed so far; needs at least `J + 1` epochs."""
        check_dyn_unc_window(self.J, self.epochs_seen, epochs_name="the epochs fed so far")
        scale = 1.0 / math.sqrt(self.J - 1)
        if self._u_windows is None:
            return self._u_sum * (scale / self._windows)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = self._u_sum * scale / self._u_windows
        u[self._u_windows == 0] = np.nan
        return u


def dyn_unc_scores(p_target: np.ndarray, window: int = 10) -> np.ndarray:
    """Dyn-Unc `U` (Eq. 2-3) of a `[K, n]` array (or memory map) of target probabilities, streamed by epoch."""
    K, n = p_target.shape
    acc = DynUncAccumulator(n, window)
    for k in range(K):
        acc.update(p_target[k])
    return acc.result()


@dataclass
class DynUncConfig(StrategyConfig):
    """Parameters of `dyn_unc`.

    Args:
        window (`int`, *optional*, defaults to 10): window length `J`; the paper uses 10. Needs `J < K` epochs.
        signal (`str`, *optional*, defaults to `"p_target"`): the recorded signal to measure; the paper's is the
            target-class probability.
    """

    window: int = field(default=10, metadata={"help": "window length J (the paper uses 10); needs J < epochs"})
    signal: str = field(default="p_target", metadata={"help": "the recorded signal (the paper's is p_target)"})

    def __post_init__(self):
        self.window = check_dyn_unc_window(self.window)


@register_strategy
class DynUnc(Strategy):
    """Dynamic Uncertainty (He et al. 2023, arXiv:2306.05175, Eq. 2-3): the mean over sliding windows of `J`
    epochs of the sample std (ddof = 1) of the target-class probability. Keeps the **highest** (most uncertain).

    Fidelity to the authors' code (`BAAI-DCAI/Dataset-Pruning`, `ImageNet/get_coreset.py`): the same `K - J` windows
    (the last epoch is in none), the same unbiased std and the same kept ids (`tests/test_dyn_unc.py`, identical for
    several `K`, `J` and ratios). Deliberate differences: the kept count is `n - floor(r n)` (theirs
    `int(n * fraction)`, one fewer whenever `r n` is not an integer, e.g. 750 vs 751 of 1,001 at 25 % removed);
    a sample not seen in an epoch is NaN and its windows use the epochs that saw it (their code treats a probability
    of exactly 0 as "not seen" and keeps the older values in its buffer, zeros at first); their factor 10 is dropped
    (it changes no ranking); ties go to the lower sample id.

    Non-finite values: an epoch in which the sample's loss or logits were NaN or infinite
    (`record.nonfinite(epoch)`) is left out of its windows, as an unseen epoch is: a window's std uses its finite
    epochs and counts with at least two. `U` is then *undefined*, not low, for a sample left with no window that
    counts, so such a sample is kept, not removed first (`Strategy.select`).

    Parameters: `DynUncConfig` (`window`, `signal`).

    Example:

    ```python
    >>> import numpy as np
    >>> from hf_prune import ScoreRecord, get_strategy
    >>> record = ScoreRecord.from_arrays({"p_target": np.random.default_rng(0).random((12, 100))})
    >>> result = get_strategy("dyn_unc", window=10).select(record, prune_ratio=0.25)
    >>> len(result.kept_ids)
    75
    ```
    """

    name = "dyn_unc"
    summary = "Dynamic Uncertainty (He et al. 2023): mean sliding-window std of p_target; keeps the uncertain."
    title = "Dynamic Uncertainty (Dyn-Unc)"
    citation = DYN_UNC
    description = (
        "He et al. (2023) score each sample by how much the model's confidence in its label moves during "
        "training. With `P_k` the softmax probability of the true label after epoch `k`, the score is the "
        "mean over sliding windows of `J` epochs of the sample standard deviation (ddof = 1) of `P_k` "
        "(Eq. 2-3: `K - J` windows over `K` recorded epochs). Easy samples (always right) and hard or "
        "mislabeled ones (always wrong) vary little and are removed first."
    )
    score_name = "Dyn-Unc uncertainty `U`"
    keep = "high"
    requires = ("p_target",)
    config_class = DynUncConfig

    def required_signals(self) -> tuple[str, ...]:
        return (self.config.signal,)

    def compute(self, record: ScoreRecord) -> Scores:
        window = check_dyn_unc_window(self.config.window, record.num_epochs, epochs_name="the recorded epochs")
        acc = DynUncAccumulator(record.num_samples, window)
        for row in record.iter_epochs(self.config.signal):
            acc.update(row)
        return Scores(acc.result())
