"""The Dyn-Unc window rule, in one place: Eq. 3 averages the `K - J` windows of `J` epochs over `K` recorded epochs,
so a window needs `2 <= J <= K - 1` (a sample std needs two epochs, and at least one window must exist).

Every check of a Dyn-Unc window calls `check_dyn_unc_window`: the strategy's config and its scoring
(`hf_prune.strategies.dyn_unc`), `PruningArguments.dyn_unc_window` before training and again once `Trainer` knows the
number of epochs (`PruningTrainer`), and the recipe's `--window` flag. Only the names in the messages differ.
"""

from __future__ import annotations

import math
import numbers


__all__ = ["check_dyn_unc_window"]


def check_dyn_unc_window(window, num_epochs: float | None = None, *, name: str = "window",
                         epochs_name: str = "the number of epochs") -> int:  # fmt: skip
    """Returns the Dyn-Unc window `J` as an `int`, or raises a `ValueError` that says what to change.

    Args:
        window (`int`): the window length `J`; must be an integer >= 2.
        num_epochs (`float`, *optional*): the number of epochs `K` the window must fit (`J < K`); `None` (not known
            yet, e.g. a run bounded by `max_steps`) checks `J` alone.
        name (`str`, *optional*, defaults to `"window"`): how the caller's user spells the window (`"dyn_unc_window"`,
            `"--window"`), for the message.
        epochs_name (`str`, *optional*, defaults to `"the number of epochs"`): how they spell the epochs
            (`"num_train_epochs"`, `"the recorded epochs"`).

    Example:

    ```python
    >>> from hf_prune.dyn_unc_window import check_dyn_unc_window
    >>> check_dyn_unc_window(10, num_epochs=30)
    10
    >>> try:
    ...     check_dyn_unc_window(5, num_epochs=5, name="dyn_unc_window", epochs_name="num_train_epochs")
    ... except ValueError as err:
    ...     print(str(err).split(". ")[-1])
    Use a window between 2 and 4, or train for at least 6 epochs.
    ```
    """
    spelled = f"{name} {window}" if name.startswith("-") else f"{name}={window}"
    integral = isinstance(window, numbers.Integral) or (isinstance(window, float) and window.is_integer())
    if isinstance(window, bool) or not integral or window < 2:
        raise ValueError(f"{name} must be an integer >= 2 (a std needs two epochs); got {window!r}.")
    window = int(window)
    if num_epochs is None:
        return window
    epochs = int(math.ceil(num_epochs))
    if window < epochs:
        return window
    if epochs >= 3:
        fix = f"Use a window between 2 and {epochs - 1}, or train for at least {window + 1} epochs"
    else:
        fix = f"No window fits fewer than 3 epochs: train for at least {window + 1} epochs"
    shown = f"{num_epochs:g}" if isinstance(num_epochs, float) else num_epochs
    raise ValueError(
        f"{spelled} needs more epochs than {epochs_name} ({shown}): Dyn-Unc averages the K - J windows of J epochs "
        f"(Eq. 3), so J must be below the number of epochs K. {fix}."
    )
