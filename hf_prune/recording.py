"""Per-sample signals from the logits a training step already has, buffered on the device, gathered once per epoch.

The hot path (`Recorder.add`) runs a handful of element-wise ops on `[batch, classes]` logits under `no_grad` and
appends to a list: no host synchronisation, no extra forward pass. At the end of an epoch `Recorder.gather`
pads every rank's buffer to the same length, all-gathers ids, labels and values *together* in one tensor and
de-duplicates by sample id, so every sample seen in the epoch is recorded exactly once, whatever the uneven last
batches, `drop_last`, gradient accumulation or the padding duplicates of distributed samplers.
(`accelerator.gather_for_metrics` is not used: in a training loop with gradient accumulation it drops real
samples, because it trims by the length of the dataset in the *last* batch it saw.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F


SIGNALS = ("p_target", "loss", "correct", "margin", "logit_margin", "entropy", "el2n")
DEFAULT_SIGNALS = ("p_target", "loss", "correct")
# What each signal is, for `--help` texts and error messages.
SIGNAL_HELP = {
    "p_target": "softmax probability of the true label",
    "loss": "per-sample cross-entropy",
    "correct": "1.0 where argmax == label",
    "margin": "p_target minus the largest other class probability",
    "logit_margin": "target logit minus the largest other logit (AUM)",
    "entropy": "entropy of the softmax",
    "el2n": "L2 norm of softmax minus one-hot",
}


def logits_of(outputs) -> torch.Tensor:
    """The logits `[batch, classes]` in a model's output: a tensor, a mapping or `ModelOutput` with `logits`, or a
    tuple `(loss, logits, ...)` when the model computed a loss (a 0-dim first element) and `(logits, ...)` otherwise."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    if len(outputs) > 1 and isinstance(outputs[0], torch.Tensor) and outputs[0].dim() == 0:
        return outputs[1]
    return outputs[0]


def check_signals(signals: Sequence[str]) -> list[str]:
    """Validates signal names, keeping their order and dropping duplicates."""
    signals = list(dict.fromkeys(signals))
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown or not signals:
        raise ValueError(f"Unknown signal(s) {unknown or signals}; choose from {list(SIGNALS)}.")
    return signals


@torch.no_grad()
def compute_signals(logits: torch.Tensor, labels: torch.Tensor, signals: Sequence[str]) -> torch.Tensor:
    """Per-sample signals `[batch, len(signals)]` (float32) from `logits [batch, classes]` and hard `labels [batch]`.

    * `p_target`: softmax probability of the label, the Dyn-Unc paper's P(y | x, theta_k).
    * `loss`: cross-entropy `-log p_target`.
    * `correct`: 1.0 where `argmax(logits) == label`.
    * `margin`: `p_target` minus the largest other class probability.
    * `logit_margin`: label logit minus the largest other logit (the margin of AUM, Pleiss et al. 2020).
    * `entropy`: entropy of the softmax (nats).
    * `el2n`: `|| softmax - onehot(label) ||_2` (Paul et al. 2021).
    """
    logits = logits.detach().float()
    if logits.dim() != 2:
        raise ValueError(f"Expected logits of shape [batch, classes]; got {tuple(logits.shape)}.")
    labels = labels.detach().long().view(-1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Got {labels.shape[0]} labels for {logits.shape[0]} logits: PruningTrainer records against one hard "
            "class label per sample (soft or multi-label targets are not supported)."
        )
    log_p = F.log_softmax(logits, dim=-1)
    idx = labels.unsqueeze(1)
    log_p_target = log_p.gather(1, idx).squeeze(1)
    p_target = log_p_target.exp()
    # the full softmax, only when a signal needs it, and once per step
    probs = log_p.exp() if any(s in ("margin", "entropy", "el2n") for s in signals) else None
    columns = []
    for name in signals:
        if name == "p_target":
            columns.append(p_target)
        elif name == "loss":
            columns.append(-log_p_target)
        elif name == "correct":
            columns.append((logits.argmax(dim=-1) == labels).float())
        elif name == "margin":
            p_other = probs.scatter(1, idx, -1.0)
            columns.append(p_target - p_other.max(dim=1).values)
        elif name == "logit_margin":
            other = logits.scatter(1, idx, float("-inf"))
            columns.append(logits.gather(1, idx).squeeze(1) - other.max(dim=1).values)
        elif name == "entropy":
            columns.append(-(probs * log_p).sum(dim=1))
        elif name == "el2n":
            err = probs.scatter_add(1, idx, -torch.ones_like(log_p_target).unsqueeze(1))
            columns.append(err.norm(dim=1))
        else:
            raise ValueError(f"Unknown signal {name!r}; choose from {list(SIGNALS)}.")
    return torch.stack(columns, dim=1)


class Recorder:
    """Buffers `(sample_id, label, signals)` rows for one epoch on this process.

    Args:
        signals (`Sequence[str]`): which signals to compute (see `compute_signals`).
    """

    def __init__(self, signals: Sequence[str]):
        self.signals = check_signals(signals)
        self._rows: list[torch.Tensor] = []

    def __len__(self) -> int:
        return sum(r.shape[0] for r in self._rows)

    @torch.no_grad()
    def add(self, sample_ids: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Records one (micro-)batch. Stays on the logits' device; no host synchronisation."""
        values = compute_signals(logits, labels, self.signals)
        ids = sample_ids.to(device=values.device, dtype=torch.float64).view(-1, 1)
        lab = labels.to(device=values.device, dtype=torch.float64).view(-1, 1)
        # float64 holds int64 ids exactly up to 2**53, so ids, labels and values travel in one tensor.
        self._rows.append(torch.cat([ids, lab, values.double()], dim=1))

    def reset(self) -> None:
        self._rows = []

    def state_dict(self) -> dict:
        """The un-gathered rows of the epoch in progress, for checkpoints (CPU tensors)."""
        rows = torch.cat(self._rows).cpu() if self._rows else torch.zeros(0, 2 + len(self.signals), dtype=torch.float64)
        return {"signals": self.signals, "rows": rows}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        if list(state["signals"]) != self.signals:
            raise ValueError(
                f"The checkpoint recorded signals {state['signals']} but this run records {self.signals}; resume with "
                "the same `record_signals`."
            )
        self._rows = [state["rows"].to(device)] if state["rows"].shape[0] else []

    def gather(self, accelerator=None, device: torch.device | str | None = None):
        """All-gathers this epoch's rows from every process and de-duplicates by sample id.

        Every process must call it (it is a collective). Returns `(ids [m] int64, labels [m] int64,
        {signal: values [m] float32})` as numpy arrays, sorted by id; a sample seen more than once (padding
        duplicates) keeps its first occurrence in (rank, step) order.
        """
        width = 2 + len(self.signals)
        if device is None:
            device = self._rows[0].device if self._rows else (accelerator.device if accelerator else "cpu")
        local = torch.cat(self._rows) if self._rows else torch.zeros(0, width, dtype=torch.float64, device=device)
        local = local.to(device)
        if accelerator is not None and accelerator.num_processes > 1:
            local = accelerator.pad_across_processes(local, dim=0, pad_index=-1)
            rows = accelerator.gather(local)
        else:
            rows = local
        rows = rows[rows[:, 0] >= 0].cpu().numpy()
        ids = rows[:, 0].astype(np.int64)
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        first = np.ones(ids.shape[0], dtype=bool)
        first[1:] = ids[1:] != ids[:-1]
        rows = rows[order][first]
        values = {name: rows[:, 2 + i].astype(np.float32) for i, name in enumerate(self.signals)}
        return ids[first], rows[:, 1].astype(np.int64), values
