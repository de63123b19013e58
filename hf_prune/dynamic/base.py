"""The `DynamicPolicy` base class, its `PolicyConfig`, the `Selection` it returns, and the registry behind
`get_policy`/`list_policies`.

A policy is configured like a static strategy: a `PolicyConfig` dataclass of its parameters (a `MethodConfig`: help per
field, checks in `__post_init__`, a JSON round trip) registered with it as `config_class`, so
`get_policy("ucb", prune_ratio=0.5, c=2.0)`, `get_policy("ucb", config=UCBConfig(prune_ratio=0.5, c=2.0))` and
`UCB(c=2.0, prune_ratio=0.5)` are the same policy, and adding a policy touches its own module only.

A dynamic policy decides, at the start of a selection epoch, which samples the coming epoch(s) train on. It keeps a
per-sample *score table* (numpy arrays of length `num_samples`) that `observe(ids, scores)` updates from per-sample
losses, and `select(epoch, num_keep, rng)` turns the table into a `Selection`. Both are pure numpy functions of
(table, epoch, run seed, rng): given the same table and the same seeded generator, every process computes the same
selection, which is what lets `DynamicPruningSampler` run on every rank with no broadcast.

Two kinds of policies:

* **fixed length** (`fixed_length` is True: random_dynamic, the EMA policies, InfoBatch with `fixed_budget=True`):
  every epoch selects exactly `num_keep = n - floor(prune_ratio * n)` samples;
* **varying length** (InfoBatch as published, RS2, SeTa): the count depends on the epoch and the scores, at most
  `max_selected(epoch, num_keep)`, a bound known before training (exact where the count does not depend on scores).
  `DynamicPruningTrainer` then gives every epoch its own number of steps (see `hf_prune.dynamic.plan`).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..method_config import MethodConfig
from ..registry import Registry
from ..selection import check_ratio


POLICIES = Registry("dynamic policy", "policies")

# The score record's row of each epoch's selection (1 selected, 0 not, NaN outside the dataset): written by
# `DynamicPruningTrainer`, read by `hf_prune.dynamic.analysis`.
SELECTED_SIGNAL = "selected"


def register_policy(cls: type[DynamicPolicy]) -> type[DynamicPolicy]:
    """Class decorator that registers a `DynamicPolicy` subclass under its `name`; a duplicate name is refused."""
    return POLICIES.register(cls)


def list_policies() -> dict[str, str]:
    """Returns `{name: one-line summary}` for every registered dynamic pruning policy, sorted by name."""
    return POLICIES.summaries()


def is_policy(name: str) -> bool:
    """Whether a dynamic pruning policy is registered as `name`."""
    return name in POLICIES


def get_policy(name: str, config: PolicyConfig | None = None, **params: Any) -> DynamicPolicy:
    """Builds the dynamic pruning policy registered as `name` from its `config` or from keyword `params` (checked
    against the fields of its `config_class`; an unknown one gets an error listing the accepted ones).

    Example:

    ```python
    >>> from hf_prune.dynamic import get_policy
    >>> from hf_prune.dynamic.ucb import UCBConfig
    >>> policy = get_policy("ucb", prune_ratio=0.5, alpha=0.8, c=2.0)
    >>> policy.config == get_policy("ucb", config=UCBConfig(prune_ratio=0.5, c=2.0)).config
    True
    >>> policy.params
    {'prune_ratio': 0.5, 'alpha': 0.8, 'class_balanced': False, 'c': 2.0}
    ```
    """
    if config is not None:
        if params:
            raise TypeError("Pass either a config or keyword parameters, not both.")
        return POLICIES.get(name)(config)
    return POLICIES.build(name, **params)


@dataclass
class PolicyConfig(MethodConfig):
    """Parameters every dynamic policy takes; each policy's own config subclasses it (`UCBConfig`, `InfoBatchConfig`
    ...).

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5):
            Fraction of the samples *removed* in every pruned epoch, in [0, 1): `0.5` trains on half the data.
    """

    prune_ratio: float = field(
        default=0.5, metadata={"help": "fraction of the samples *removed* in every pruned epoch, in [0, 1)"}
    )

    def __post_init__(self):
        self.prune_ratio = check_ratio(self.prune_ratio)


@dataclass
class Selection:
    """The samples of one epoch.

    Args:
        ids (`np.ndarray` of int64 `[k]`): sorted positions (row ids) of the selected samples.
        weights (`np.ndarray` of float32 `[k]`, *optional*): loss weight of each selected sample, aligned with `ids`;
            `None` means 1 for all (every policy except InfoBatch).
        info (`dict`): policy-specific facts about the selection (e.g. InfoBatch's effective ratio), for logs.
    """

    ids: np.ndarray
    weights: np.ndarray | None = None
    info: dict[str, Any] | None = None

    def __post_init__(self):
        self.ids = np.asarray(self.ids, dtype=np.int64)
        order = np.argsort(self.ids, kind="stable")
        self.ids = self.ids[order]
        if self.weights is not None:
            self.weights = np.asarray(self.weights, dtype=np.float32)[order]
        if self.ids.size and np.any(np.diff(self.ids) == 0):
            raise ValueError("A selection must not contain a sample twice.")


class DynamicPolicy(abc.ABC):
    """A per-epoch data pruning policy: a score table updated from per-sample losses, and a selection from it.

    Subclasses set `name`, `summary`, `config_class` (a `PolicyConfig` dataclass of their parameters) and
    `uses_scores` (False for policies that need no scores, so no scoring pass is run for them), implement `_select`,
    and (if they keep a table) `_allocate` / `observe`. A policy is built from its config or from keyword parameters:
    `UCB(UCBConfig(c=2.0))`, `UCB(c=2.0)` and `get_policy("ucb", c=2.0)` are the same.

    Args:
        config (`PolicyConfig`, *optional*): the parameters, an instance of `config_class`.
        **params: the parameters as keywords instead (`prune_ratio` and the policy's own, see its config).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    uses_scores: ClassVar[bool] = True
    # Policies whose rule is indexed by the number of selections made (RS2's rounds, SeTa's window) need a selection
    # every epoch: the sampler refuses pruning_period > 1 for them.
    selects_every_epoch: ClassVar[bool] = False
    # Policies whose selections carry loss weights (InfoBatch's rescaling): the loss is rebuilt per sample.
    reweights: ClassVar[bool] = False

    def __init__(self, config: PolicyConfig | None = None, **params: Any):
        self.config = self.config_class.resolve(config, params, type(self).__name__)
        self.num_samples: int | None = None
        self.seed = 0
        self._tables: dict[str, np.ndarray] = {}

    @property
    def prune_ratio(self) -> float:
        """Fraction of the samples removed in every pruned epoch (`config.prune_ratio`)."""
        return self.config.prune_ratio

    @property
    def fixed_length(self) -> bool:
        """Whether every epoch selects exactly `num_keep` samples (else: varying, at most `max_selected`)."""
        return True

    def max_selected(self, epoch: int, num_keep: int) -> int:
        """Before training: the number of samples `epoch` selects (fixed-length policies) or an upper bound of it
        (exact where it does not depend on scores), from which `DynamicPruningTrainer` plans the run's steps."""
        return int(num_keep)

    @property
    def params(self) -> dict[str, Any]:
        """The policy's parameters as plain JSON values (`config.to_dict()`), as passed to `get_policy` and recorded in
        the score record's metadata."""
        return self.config.to_dict()

    # ------------------------------------------------------------------ table

    def reset(self, num_samples: int, seed: int | None = None) -> None:
        """(Re)allocates the score table for `num_samples` samples (every score starts unknown); `seed` is the run's
        seed, for policies whose draws span several epochs (RS2's permutations)."""
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive; got {num_samples}.")
        self.num_samples = int(num_samples)
        if seed is not None:
            self.seed = int(seed)
        self._tables = self._allocate(self.num_samples)

    def _allocate(self, num_samples: int) -> dict[str, np.ndarray]:
        return {}

    def _check_ready(self) -> None:
        if self.num_samples is None:
            raise RuntimeError(f"{type(self).__name__}.reset(num_samples) must be called before use.")

    def observe(self, ids: np.ndarray, scores: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Updates the score table with one new per-sample score (the cross-entropy loss, Raju et al. Eq. 1).

        Args:
            ids (`np.ndarray` of int64 `[m]`): unique sample positions.
            scores (`np.ndarray` of float `[m]`): their losses; NaN entries are ignored.
            labels (`np.ndarray` of int64 `[m]`, *optional*): their class labels, kept for class-balanced selection.
        """
        self._check_ready()

    def _validate_observation(self, ids, scores) -> tuple[np.ndarray, np.ndarray]:
        self._check_ready()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if ids.shape != scores.shape:
            raise ValueError(f"Got {ids.shape[0]} ids but {scores.shape[0]} scores; pass one score per id.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_samples):
            raise ValueError(f"Sample ids must lie in [0, {self.num_samples}); got [{ids.min()}, {ids.max()}].")
        if ids.size and np.unique(ids).size != ids.size:
            raise ValueError(
                "observe() got a sample id twice; de-duplicate gathered ids first (Recorder.gather does)."
            )
        keep = ~np.isnan(scores)
        return ids[keep], scores[keep]

    def scores(self) -> np.ndarray:
        """The policy's current selection score per sample (`[n]`, NaN where unknown); NaN for score-free policies."""
        self._check_ready()
        return np.full(self.num_samples, np.nan)

    # ------------------------------------------------------------------ selection

    def select(self, epoch: int, num_keep: int, rng: np.random.Generator) -> Selection:
        """Chooses the `num_keep` samples of `epoch` from the current table.

        Args:
            epoch (`int`): the (0-based) epoch the selection is for.
            num_keep (`int`): how many samples to select (see `num_kept`); varying-length policies take it as the
                budget their own rule starts from (`n - floor(prune_ratio * n)`).
            rng (`np.random.Generator`): seeded from (seed, epoch) by the caller; the only source of randomness
                besides the run seed (`reset`).
        """
        self._check_ready()
        if not (0 < num_keep <= self.num_samples):
            raise ValueError(f"num_keep must be in [1, {self.num_samples}]; got {num_keep}.")
        selection = self._select(int(epoch), int(num_keep), rng)
        if self.fixed_length and selection.ids.size != num_keep:
            raise RuntimeError(f"{self.name} selected {selection.ids.size} samples; expected {num_keep}.")
        if not 0 < selection.ids.size <= self.max_selected(epoch, num_keep):
            raise RuntimeError(
                f"{self.name} selected {selection.ids.size} samples at epoch {epoch}; expected 1 to "
                f"{self.max_selected(epoch, num_keep)}."
            )
        return selection

    @abc.abstractmethod
    def _select(self, epoch: int, num_keep: int, rng: np.random.Generator) -> Selection: ...

    # ------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """The score table and parameters (numpy arrays and plain values), for checkpoints."""
        return {
            "name": self.name,
            "params": self.params,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "tables": {k: v.copy() for k, v in self._tables.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["name"] != self.name:
            raise ValueError(f"The checkpoint holds a {state['name']!r} policy state; this run uses {self.name!r}.")
        if state["num_samples"] is None:
            self.num_samples, self._tables = None, {}
            return
        self.reset(int(state["num_samples"]), state.get("seed"))
        for key, value in state["tables"].items():
            if key not in self._tables or self._tables[key].shape != np.shape(value):
                raise ValueError(f"Policy table {key!r} in the checkpoint does not match this run's.")
            self._tables[key][...] = value

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


@dataclass
class LatestLossConfig(PolicyConfig):
    """Parameters of the policies that keep each sample's latest loss and stop pruning for an annealing tail
    (`InfoBatchConfig`, `SeTaConfig`).

    Args:
        prune_ratio (`float`, *optional*, defaults to 0.5): see `PolicyConfig`.
        delta (`float`, *optional*, defaults to 0.875):
            Pruning stops at epoch `floor(delta * num_epochs)`; the remaining epochs ("annealing") are the policy's
            own. In (0, 1].
        num_epochs (`int`, *optional*):
            Total number of epochs, needed for the annealing tail; `None` has none. `DynamicPruningTrainer` sets it
            from `num_train_epochs`.
        max_ratio (`float`, *optional*, defaults to 0.9):
            Upper bound of the ratio actually pruned (the authors' `keep_ratio >= 0.1`). In (0, 1).
    """

    delta: float = field(
        default=0.875,
        metadata={"help": "pruning stops at epoch floor(delta * num_epochs) (the annealing tail), in (0, 1]"},
    )
    num_epochs: int | None = field(
        default=None,
        metadata={"help": "total epochs, for the annealing tail (None: none); set from num_train_epochs in training"},
    )
    max_ratio: float = field(
        default=0.9, metadata={"help": "upper bound of the ratio a pruned epoch removes, in (0, 1)"}
    )

    def __post_init__(self):
        super().__post_init__()
        self.delta, self.max_ratio = float(self.delta), float(self.max_ratio)
        if not 0.0 < self.delta <= 1.0:
            raise ValueError(
                f"delta must be in (0, 1] (the share of epochs that prune; 0.875 in the papers); got {self.delta}."
            )
        if not 0.0 < self.max_ratio < 1.0:
            raise ValueError(
                f"max_ratio must be in (0, 1) (the most a pruned epoch removes); got {self.max_ratio}."
            )
        if self.num_epochs is not None:
            if int(self.num_epochs) < 1:
                raise ValueError(f"num_epochs must be >= 1; got {self.num_epochs}.")
            self.num_epochs = int(self.num_epochs)


class LatestLossPolicy(DynamicPolicy):
    """Base of the policies that keep each sample's *latest* training loss and stop pruning for an annealing tail
    (InfoBatch, SeTa): the score table and the annealing epoch. Parameters: a `LatestLossConfig` (`delta`,
    `num_epochs`, `max_ratio`).
    """

    config_class = LatestLossConfig

    @property
    def stop_epoch(self) -> int | None:
        """First epoch of the annealing tail, `floor(delta * num_epochs)`, or `None` without `num_epochs`."""
        c = self.config
        return None if c.num_epochs is None else int(math.floor(c.delta * c.num_epochs + 1e-9))

    def _allocate(self, num_samples: int) -> dict[str, np.ndarray]:
        return {"score": np.full(num_samples, np.nan, dtype=np.float64)}

    def observe(self, ids, scores, labels=None) -> None:
        """Stores the latest loss of every observed sample; unobserved samples keep their last one (NaN: never)."""
        ids, s = self._validate_observation(ids, scores)
        self._tables["score"][ids] = s

    def scores(self) -> np.ndarray:
        self._check_ready()
        return self._tables["score"].copy()
