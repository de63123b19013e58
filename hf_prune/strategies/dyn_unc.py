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
every score and is removed first. With complete records this is exactly Eq. (2)-(3).

The computation streams: `DynUncAccumulator` keeps a ring buffer of the last `J` epochs plus running sums, so it
never holds `[K, n]` in memory (ImageNet-21K: n = 14.2 M).
"""

from __future__ import annotations

import numpy as np

from ..record import ScoreRecord
from .base import Strategy, register_strategy


class DynUncAccumulator:
    """Streaming Dyn-Unc: feed epochs one at a time with `update(row)`, read `U` with `result()`.

    Memory: a float32 ring buffer `[J, n]` plus four `[n]` running arrays, whatever the number of epochs `K`.
    `result()` follows Eq. (3)'s bounds: the window that starts at the last epoch fed so far is excluded,
    so after `K` epochs it averages the windows starting at `0 ... K-J-1`.

    Args:
        num_samples (`int`): number of samples `n`.
        window (`int`, *optional*, defaults to 10): window length `J` (at least 2).
    """

    def __init__(self, num_samples: int, window: int = 10):
        if window < 2:
            raise ValueError(f"window must be >= 2 (a std needs two epochs); got {window}.")
        self.n = int(num_samples)
        self.J = int(window)
        self.epochs_seen = 0
        self._ring = np.zeros((self.J, self.n), dtype=np.float32)
        self._ring_has_nan = np.zeros(self.J, dtype=bool)
        self._sum = np.zeros(self.n, dtype=np.float64)
        self._sumsq = np.zeros(self.n, dtype=np.float64)
        self._count = np.zeros(self.n, dtype=np.float64)
        self._u_sum = np.zeros(self.n, dtype=np.float64)
        self._u_windows = np.zeros(self.n, dtype=np.float64)
        # The std of the window that ended at the latest epoch; it is only added to U once a later epoch
        # arrives, which implements Eq. (3)'s upper bound k <= K-J-1.
        self._pending: np.ndarray | None = None
        self._pending_valid: np.ndarray | None = None
        self._tmp = np.empty(self.n, dtype=np.float64)

    def _add(self, row: np.ndarray, sign: float, has_nan: bool) -> None:
        x = self._tmp
        np.copyto(x, row, casting="same_kind")
        if has_nan:
            seen = ~np.isnan(x)
            x[~seen] = 0.0
            self._count += sign * seen
        else:
            self._count += sign
        self._sum += sign * x
        np.multiply(x, x, out=x)
        self._sumsq += sign * x

    def update(self, row: np.ndarray) -> None:
        """Feeds the next epoch's `p_target` row `[n]` (NaN where the sample was not seen)."""
        row = np.asarray(row, dtype=np.float32)
        if row.shape != (self.n,):
            raise ValueError(f"Epoch row has shape {row.shape}; expected ({self.n},).")
        if self._pending is not None:
            self._u_sum += self._pending
            self._u_windows += self._pending_valid
            self._pending = None
        slot = self.epochs_seen % self.J
        if self.epochs_seen >= self.J:
            self._add(self._ring[slot], -1.0, self._ring_has_nan[slot])
        has_nan = bool(np.isnan(row).any())
        self._add(row, +1.0, has_nan)
        self._ring[slot] = row
        self._ring_has_nan[slot] = has_nan
        self.epochs_seen += 1
        if self.epochs_seen >= self.J:
            self._pending, self._pending_valid = self._window_std()

    def _window_std(self) -> tuple[np.ndarray, np.ndarray]:
        count = np.round(self._count)
        valid = count >= 2
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (self._sumsq - self._sum * self._sum / count) / (count - 1)
        np.maximum(var, 0.0, out=var)  # running sums can dip below 0 by rounding when the values are equal
        std = np.sqrt(var, out=var)
        std[~valid] = 0.0
        return std, valid.astype(np.float64)

    def result(self) -> np.ndarray:
        """Dyn-Unc `U` per sample `[n]` (float64) over the epochs fed so far; needs at least `J + 1` epochs."""
        if self.epochs_seen < self.J + 1:
            raise ValueError(
                f"Dyn-Unc with window J={self.J} needs at least J+1={self.J + 1} epochs (Eq. 3 averages K-J "
                f"windows); only {self.epochs_seen} were recorded. Train longer or pass a smaller `window`."
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            u = self._u_sum / self._u_windows
        u[self._u_windows == 0] = np.nan
        return u


def dyn_unc_scores(p_target: np.ndarray, window: int = 10) -> np.ndarray:
    """Dyn-Unc `U` (Eq. 2-3) of a `[K, n]` array (or memory map) of target probabilities, streamed by epoch."""
    K, n = p_target.shape
    acc = DynUncAccumulator(n, window)
    for k in range(K):
        acc.update(p_target[k])
    return acc.result()


@register_strategy
class DynUnc(Strategy):
    """Dynamic Uncertainty (He et al. 2023, arXiv:2306.05175, Eq. 2-3): the mean over sliding windows of `J`
    epochs of the sample std (ddof = 1) of the target-class probability. Keeps the **highest** (most uncertain).

    Args:
        window (`int`, *optional*, defaults to 10): window length `J`; the paper uses 10. Needs `J < K`.
        signal (`str`, *optional*, defaults to `"p_target"`): the recorded signal to measure; the paper's is
            the target-class probability.

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
    keep = "high"
    requires = ("p_target",)

    def __init__(self, window: int = 10, signal: str = "p_target"):
        if not isinstance(window, (int, np.integer)) or window < 2:
            raise ValueError(f"window must be an integer >= 2; got {window!r}.")
        super().__init__(window=int(window), signal=signal)
        self.requires = (signal,)

    def score(self, record: ScoreRecord) -> np.ndarray:
        window = self.params["window"]
        if window >= record.num_epochs:
            raise ValueError(
                f"window={window} must be below the number of recorded epochs ({record.num_epochs}): Eq. 3 "
                f"averages K-J windows. Use window <= {max(2, record.num_epochs - 1)} or train for more epochs."
            )
        acc = DynUncAccumulator(record.num_samples, window)
        for row in record.iter_epochs(self.params["signal"]):
            acc.update(row)
        return acc.result()
