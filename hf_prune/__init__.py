"""hf_prune: dataset pruning for the Hugging Face ecosystem.

Train once with `PruningTrainer` (a drop-in `transformers.Trainer`) to record per-sample training dynamics, turn
the `ScoreRecord` into a pruned `datasets.Dataset` with a strategy (`get_strategy("dyn_unc")`), prune dynamically
during training (`DynamicPruningTrainer` with `DynamicPruningArguments(dynamic_policy="ucb")`), and share the
kept-index list on the Hub.

Public names are imported on first use, so `import hf_prune` (and the `hf-prune` CLI) does not pay for importing
transformers until a trainer is asked for.
"""

import importlib
from typing import TYPE_CHECKING

from .version import __version__


# public name -> submodule that defines it
_EXPORTS = {
    "ScoreRecord": "record",
    "RecordIntegrityError": "record",
    "NonFiniteRecordWarning": "strategies.base",
    "SIGNALS": "recording",
    "Recorder": "recording",
    "compute_signals": "recording",
    "PruneResult": "result",
    "Strategy": "strategies",
    "get_strategy": "strategies",
    "list_strategies": "strategies",
    "register_strategy": "strategies",
    "select_kept_ids": "selection",
    "StrategyConfig": "strategies",
    "strategy_info": "strategies",
    "is_strategy": "strategies",
    "DynUncAccumulator": "strategies.dyn_unc",
    "dyn_unc_scores": "strategies.dyn_unc",
    "PruningArguments": "config",
    "PruningTrainer": "trainer",
    "DynamicPruningArguments": "dynamic_config",
    "DynamicPruningTrainer": "dynamic_trainer",
    "PruningSFTConfig": "sft",
    "PruningSFTTrainer": "sft",
    "DynamicPruningSFTConfig": "sft",
    "DynamicPruningSFTTrainer": "sft",
    "PolicyConfig": "dynamic",
    "DynamicPolicy": "dynamic",
    "DynamicPruningDataset": "dynamic",
    "DynamicPruningSampler": "dynamic",
    "get_policy": "dynamic",
    "list_policies": "dynamic",
    "register_policy": "dynamic",
    "selection_counts": "dynamic",
    "selection_groups": "dynamic",
    "plot_selection_histogram": "dynamic",
    "static_result_from_selection": "dynamic",
    "weighted_cross_entropy": "dynamic",
    "FeatureStore": "features",
    "extract_features": "features",
    "load_pruned": "export",
    "push_results_to_hub": "export",
    "save_results": "export",
    "model_card": "export",
}

__all__ = [
    "__version__",
    "FeatureStore",
    "DynUncAccumulator",
    "DynamicPolicy",
    "DynamicPruningArguments",
    "DynamicPruningDataset",
    "DynamicPruningSampler",
    "DynamicPruningTrainer",
    "DynamicPruningSFTConfig",
    "DynamicPruningSFTTrainer",
    "PolicyConfig",
    "PruningSFTConfig",
    "PruningSFTTrainer",
    "PruneResult",
    "PruningArguments",
    "PruningTrainer",
    "RecordIntegrityError",
    "Recorder",
    "NonFiniteRecordWarning",
    "SIGNALS",
    "ScoreRecord",
    "Strategy",
    "StrategyConfig",
    "compute_signals",
    "dyn_unc_scores",
    "extract_features",
    "get_policy",
    "get_strategy",
    "is_strategy",
    "list_policies",
    "list_strategies",
    "load_pruned",
    "model_card",
    "push_results_to_hub",
    "register_policy",
    "register_strategy",
    "save_results",
    "select_kept_ids",
    "plot_selection_histogram",
    "selection_counts",
    "selection_groups",
    "static_result_from_selection",
    "strategy_info",
    "weighted_cross_entropy",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hf_prune' has no attribute {name!r}")


def __dir__():
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs
    from .config import PruningArguments
    from .dynamic import (
        DynamicPolicy,
        DynamicPruningDataset,
        DynamicPruningSampler,
        PolicyConfig,
        get_policy,
        list_policies,
        plot_selection_histogram,
        register_policy,
        selection_counts,
        selection_groups,
        static_result_from_selection,
        weighted_cross_entropy,
    )
    from .dynamic_config import DynamicPruningArguments
    from .dynamic_trainer import DynamicPruningTrainer
    from .export import load_pruned, model_card, push_results_to_hub, save_results
    from .features import FeatureStore, extract_features
    from .record import ScoreRecord
    from .recording import SIGNALS, Recorder, compute_signals
    from .result import PruneResult
    from .selection import select_kept_ids
    from .strategies import (
        Strategy,
        StrategyConfig,
        get_strategy,
        is_strategy,
        list_strategies,
        register_strategy,
        strategy_info,
    )
    from .strategies.dyn_unc import DynUncAccumulator, dyn_unc_scores
    from .trainer import PruningTrainer
