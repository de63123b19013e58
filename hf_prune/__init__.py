"""hf_prune: dataset pruning for the Hugging Face ecosystem.

Train once with `PruningTrainer` (a drop-in `transformers.Trainer`) to record per-sample training dynamics, turn
the `ScoreRecord` into a pruned `datasets.Dataset` with a strategy (`get_strategy("dyn_unc")`), and share the
kept-index list on the Hub.
"""

__version__ = "0.1.0"

from .record import ScoreRecord
from .recording import SIGNALS, Recorder, compute_signals
from .result import PruneResult
from .strategies import Strategy, get_strategy, list_strategies, register_strategy
from .strategies.dyn_unc import DynUncAccumulator, dyn_unc_scores
from .trainer import PruningArguments, PruningTrainer


__all__ = [
    "SIGNALS",
    "DynUncAccumulator",
    "PruneResult",
    "PruningArguments",
    "PruningTrainer",
    "Recorder",
    "ScoreRecord",
    "Strategy",
    "__version__",
    "compute_signals",
    "dyn_unc_scores",
    "get_strategy",
    "list_strategies",
    "register_strategy",
]
