"""What a run tells the person watching it, through transformers' logger only: a start banner (world size, rows,
signals, output paths), labelled phases ("[2/4] Retraining on Dyn-Unc 25 % removed"), progress bars that say which
phase they belong to, and selection groups as percentages rather than raw floats. And what keeps a newcomer from
getting lost: named presets of a recipe's flags (`--preset cpu`, any flag given still wins), a warning a few steps in
when the run as configured will take hours on this device, and a command that ends on an expected error (a refused
output folder, a bad flag) with one line and a non-zero exit status, no traceback, once per launch.

Example:

```python
>>> from hf_prune.console import banner, phase
>>> banner("Dyn-Unc", {"world size": 1, "train rows": "10,000 of 60,000", "output": "runs/demo"})
>>> phase(1, 3, "Training on full data (recording dynamics)")
```
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from transformers import ProgressCallback, TrainerCallback
from transformers.utils import logging


logger = logging.get_logger("hf_prune")


def setup_logging(training_args=None) -> None:
    """One logging system for a recipe, as the transformers example scripts set it up: transformers' verbosity (info
    on the main process unless `--log_level` says otherwise, quiet on the other ranks) for transformers *and*
    hf_prune's loggers, printed by one handler; no "Writing model shards" bar at every checkpoint."""
    import logging as std_logging
    import sys

    if training_args is None or training_args.should_log:
        logging.set_verbosity_info()
    level = training_args.get_process_log_level() if training_args is not None else std_logging.INFO
    logging.set_verbosity(level)
    logging.disable_progress_bar()  # transformers' own bars (shard writing); Trainer's training bars stay
    root = std_logging.getLogger("hf_prune")
    root.setLevel(level)
    if not any(getattr(h, "_hf_prune", False) for h in root.handlers):
        handler = std_logging.StreamHandler(sys.stderr)
        handler._hf_prune = True
        root.addHandler(handler)
        root.propagate = False


def _emit(text: str) -> None:
    # The recipes' voice: info level through transformers' logger, shown from the main process only.
    logger.info(text)


def banner(title: str, items: Mapping[str, Any]) -> str:
    """Logs a start banner: `title` and one aligned `key: value` line per item. Returns the text."""
    width = max((len(k) for k in items), default=0)
    lines = [f"==== {title} ===="] + [f"  {k:<{width}}  {v}" for k, v in items.items()]
    text = "\n".join(lines)
    _emit(text)
    return text


def phase(index: int, total: int, text: str) -> str:
    """Logs a numbered phase heading, e.g. `[2/4] Retraining on Dyn-Unc 25 % removed`. Returns the text."""
    line = f"[{index}/{total}] {text}"
    _emit(line)
    return line


def format_fractions(fractions: Mapping[str, float]) -> str:
    """`{"never": 0.031, ...}` as `never 3.1 %, sometimes ... %, always ... %`."""
    return ", ".join(f"{name} {100 * float(value):.1f} %" for name, value in fractions.items())


class LabelledProgressCallback(ProgressCallback):
    """Trainer's progress bars with a label (`"[1/3] full data"`), so training, retraining and evaluation bars are
    told apart. Swap it in with `label_progress_bars(trainer, label)`."""

    def __init__(self, label: str, max_str_len: int = 100):
        super().__init__(max_str_len=max_str_len)
        self.label = label

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None:
            self.training_bar.set_description(f"{self.label} train")

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        fresh = self.prediction_bar is None
        super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)
        if fresh and self.prediction_bar is not None:
            self.prediction_bar.set_description(f"{self.label} eval")


def label_progress_bars(trainer, label: str) -> None:
    """Replaces `trainer`'s progress bars with labelled ones (a no-op with `disable_tqdm`)."""
    if trainer.args.disable_tqdm:
        return
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(LabelledProgressCallback(label))


def format_duration(seconds: float) -> str:
    """`11400` as `3 h 10 min`; `720` as `12 min`; `45` as `45 s`; `187200` as `2 d 4 h`."""
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def parse_args_with_preset(
    parser, argv: list[str], presets: Mapping[str, Mapping[str, Any]], flag: str = "preset"
) -> tuple[tuple, dict[str, Any], dict[str, Any]]:
    """Parses `argv` with an `HfArgumentParser` whose `--<flag> NAME` (a field of one of its dataclasses) replaces the
    parser's defaults by the values of `presets[NAME]`: the command line is parsed after that, so every flag given on
    it wins over the preset. The parser's defaults are changed in place, and a flag value of the wrong type raises a
    `ValueError` (for `run_recipe`'s one line) instead of printing the parser's whole usage.

    Args:
        parser (`HfArgumentParser`): the recipe's parser; every key of every preset must be one of its flags.
        argv (`list[str]`): the command line, without the program name.
        presets (`Mapping[str, Mapping[str, Any]]`): preset name to `{flag name: value}`.
        flag (`str`, *optional*, defaults to `"preset"`): the dataclass field that names the preset.

    Returns:
        `tuple`: the parsed dataclasses (as `parse_args_into_dataclasses`), the preset values that were applied, and
        `{flag: value given}` for the preset values a command-line flag overrode. Both dicts are empty without a preset.

    Example:

    ```python
    >>> parser = HfArgumentParser(ScriptArguments)  # has `preset: str | None` and `epochs: int`
    >>> (script,), applied, overridden = parse_args_with_preset(
    ...     parser, ["--preset", "cpu", "--epochs", "3"], {"cpu": {"epochs": 10, "model": "tiny_cnn"}}
    ... )
    >>> script.epochs, applied, overridden
    (3, {'model': 'tiny_cnn'}, {'epochs': 3})
    ```
    """
    argv = list(argv)
    parser.exit_on_error = False  # a bad value raises instead of printing the whole usage: see below
    try:
        return _parse_args_with_preset(parser, argv, presets, flag)
    except argparse.ArgumentError as err:  # e.g. "argument --window: invalid int value: 'ten'"
        raise ValueError(f"{err} (--help lists every flag with its type and default).") from None


def _parse_args_with_preset(parser, argv, presets, flag):
    known, unknown_args = parser.parse_known_args(argv)
    unknown_flags = [arg for arg in unknown_args if arg.startswith("-")]
    if unknown_args:
        import difflib

        options = [option for action in parser._actions for option in action.option_strings]
        close = {f: difflib.get_close_matches(f.split("=")[0], options, n=1) for f in unknown_flags}
        guesses = "; ".join(f"{f}: did you mean {match[0]}?" for f, match in close.items() if match)
        raise ValueError(
            f"Unknown flag or stray value: {' '.join(unknown_args)}"
            + (f" ({guesses})" if guesses else "")
            + ". --help lists every flag."
        )
    name = getattr(known, flag, None)
    if name is None:
        return tuple(parser.parse_args_into_dataclasses(args=argv)), {}, {}
    if name not in presets:
        raise ValueError(f"Unknown --{flag} {name!r}: choose one of {', '.join(presets)}.")
    preset = dict(presets[name])
    dests = {action.dest for action in parser._actions}
    unknown = sorted(set(preset) - dests)
    if unknown:
        raise ValueError(
            f"--{flag} {name} sets {', '.join(unknown)}, which this parser has no flag for: fix the preset."
        )
    parser.set_defaults(**preset)
    given = vars(parser.parse_known_args(argv)[0])
    applied = {key: value for key, value in preset.items() if given[key] == value}
    overridden = {key: given[key] for key in preset if key not in applied}
    return tuple(parser.parse_args_into_dataclasses(args=argv)), applied, overridden


def describe_preset(name: str, applied: Mapping[str, Any], overridden: Mapping[str, Any]) -> str:
    """One banner line for `parse_args_with_preset`'s result: `cpu: model_name_or_path=tiny_cnn, ...; your flags
    win: num_train_epochs=3`."""

    def value(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return " ".join(map(value, v))
        return format(v, "g") if isinstance(v, float) else str(v)

    def flags(values: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={value(v)}" for k, v in values.items())

    text = f"{name}: {flags(applied) or 'nothing (every value given on the command line)'}"
    return text + (f"; your flags win: {flags(overridden)}" if overridden else "")


class RunTimeEstimate(TrainerCallback):
    """Warns once, a few optimizer steps into training, when the run as configured will take longer than
    `warn_above_s` on this device: the seconds per step, measured from the end of the first step seen (which pays for
    warm-up) over the next `timed_steps` steps, times the steps left in this training plus `extra_steps` (the runs
    that follow it at the same cost per step, e.g. retraining on each pruned set). Evaluation and scoring passes are
    not counted. Only the main process logs it.

    Args:
        extra_steps (`int`, *optional*, defaults to 0): optimizer steps of the runs that follow this one.
        extra_label (`str`, *optional*): what `extra_steps` are, for the message (e.g. `"4 retraining runs"`).
        warn_above_s (`float`, *optional*, defaults to 3600): the estimate that triggers the warning, in seconds.
        hint (`str`, *optional*): appended to the warning, e.g. `"For a first try on a CPU use --preset cpu."`.
        timed_steps (`int`, *optional*, defaults to 5): steps the time per step is measured over.
        clock (`Callable[[], float]`, *optional*, defaults to `time.perf_counter`): seconds; tests pass a fake one.

    Attributes:
        estimate_s (`float` or `None`): the estimated seconds left, once measured.
        message (`str` or `None`): the warning, if it was given.

    Example:

    ```python
    >>> trainer.add_callback(RunTimeEstimate(extra_steps=4 * 600, extra_label="4 retraining runs"))
    >>> trainer.train()  # a few steps in, on a slow device:
    This run will take about 3 h 10 min more on cpu, counting training steps only (1.52 s per step x 7,500 steps, 4
    retraining runs included).
    ```
    """

    def __init__(
        self,
        extra_steps: int = 0,
        extra_label: str | None = None,
        warn_above_s: float = 3600.0,
        hint: str | None = None,
        timed_steps: int = 5,
        clock: Callable[[], float] = time.perf_counter,
    ):
        if timed_steps < 1:
            raise ValueError(f"RunTimeEstimate(timed_steps={timed_steps}): time at least 1 step.")
        self.extra_steps = int(extra_steps)
        self.extra_label = extra_label
        self.warn_above_s = float(warn_above_s)
        self.hint = hint
        self.timed_steps = timed_steps
        self.clock = clock
        self.estimate_s: float | None = None
        self.message: str | None = None
        self._start: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = None  # a trainer trained twice measures afresh

    def on_step_end(self, args, state, control, **kwargs):
        if self.estimate_s is not None:
            return
        now = self.clock()
        if self._start is None:
            self._start = (now, state.global_step)
            return
        started_at, start_step = self._start
        timed = state.global_step - start_step
        if timed < self.timed_steps:
            return
        per_step = (now - started_at) / timed
        steps_left = max(state.max_steps - state.global_step, 0) + self.extra_steps
        self.estimate_s = per_step * steps_left
        if self.estimate_s < self.warn_above_s:
            return
        device = getattr(getattr(args, "device", None), "type", None) or "this device"
        extra = f", {self.extra_label} included" if self.extra_steps and self.extra_label else ""
        self.message = (
            f"This run will take about {format_duration(self.estimate_s)} more on {device}, counting training steps "
            f"only ({per_step:.2f} s per step x {steps_left:,} steps{extra})." + (f" {self.hint}" if self.hint else "")
        )
        if state.is_world_process_zero:
            logger.warning(self.message)


def process_rank() -> int:
    """This process's global rank as the launchers set it (`RANK`, from torchrun and `accelerate launch`); 0 alone."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def run_recipe(
    main: Callable[[], Any], expected: tuple[type[BaseException], ...] = (ValueError, OSError), grace_s: float = 10.0
) -> None:
    """Runs a recipe's `main()` as a command. An expected error (a bad flag value, a refused output folder, weights
    that cannot be fetched: `ValueError` and `OSError`, whose messages name the fix) ends the command with one line,
    `error: <message>`, and exit status 1, without a traceback; `HF_PRUNE_TRACEBACK=1` re-raises it in full. Anything
    else propagates with its traceback.

    Under a launcher (torchrun, `accelerate launch`), every process checks the same flags and folders and fails alike,
    so the line is printed once: the main process prints it and exits at once; another process waits up to `grace_s`
    seconds for the launcher to stop it (launchers stop every process when one fails), and prints its own line,
    prefixed with its rank, only if it is still running then, so a failure of that process alone is never silent. The
    launcher itself still reports the failed processes (`accelerate launch -q` makes its report a summary).

    Args:
        main (`Callable[[], Any]`): the recipe's entry point, reading `sys.argv`.
        expected (`tuple[type[BaseException], ...]`, *optional*, defaults to `(ValueError, OSError)`): the errors to
            end on with one line.
        grace_s (`float`, *optional*, defaults to 10): how long a process other than the main one waits before it
            prints.
    """
    try:
        main()
    except expected as err:
        if os.environ.get("HF_PRUNE_TRACEBACK"):
            raise
        _leave_process_group()
        rank = process_rank()
        if rank != 0:
            time.sleep(grace_s)  # normally ends here: the launcher stops this process once the main one has failed
        prefix = "error: " if rank == 0 else f"error (process {rank}): "
        print(prefix + " ".join(str(err).split()), file=sys.stderr, flush=True)
        sys.exit(1)


def _leave_process_group() -> None:
    # Without it, gloo aborts at interpreter exit with its own messages once a process group was set up.
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001  (leaving is best effort; the error being reported matters)
        pass
