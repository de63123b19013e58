"""Per-sample signals from the logits a training step already has, buffered on the device, handed over once per epoch.

The hot path (`Recorder.add`) runs a handful of element-wise ops on `[batch, classes]` logits under `no_grad` and
appends compact tensors (int64 ids, int32 labels, float32 or float16 values) to a list: no host synchronisation, no
extra forward pass. Token logits `[batch, tokens, vocab]` (a causal LM) give one row per *sequence* instead
(`hf_prune.sequence`: mean token loss, its `p_target = exp(-loss)`, token accuracy, target-token count), with the
record's label -1 (a sequence has no class). At the end of an epoch:

* `hf_prune.distributed.stream_rows_to_main` streams every rank's rows to the main process one id range at a time
  (bounded memory, only the main process receives rows) for `ScoreRecord.epoch_writer`: per range,
  `Recorder.select_rows` picks this rank's rows of the range, de-duplicated by sample id *on the device* (first
  occurrence kept), packed into one byte row per id;
* `Recorder.gather` all-gathers (id, label, value) triples of chosen signals to *every* rank, for the dynamic
  policies that need the score table everywhere.

Either way every sample seen in the epoch is recorded exactly once (first occurrence in (rank, step) order), whatever
the uneven last batches, `drop_last`, gradient accumulation or the padding duplicates of distributed samplers.
(`accelerator.gather_for_metrics` is not used: in a training loop with gradient accumulation it drops real
samples, because it trims by the length of the dataset in the *last* batch it saw.)
A label below 0 (the ignore index, -100) gives NaN signals and label -1 ("unknown"), not an error. A sample with a
NaN or infinite loss or logits gives NaN signals *with its label*: the record's writer stores it as seen with
non-finite values (`ScoreRecord.nonfinite`), never as unseen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .sequence import TokenLosses, require_label_alignment, sequence_signals


SIGNALS = ("p_target", "loss", "correct", "margin", "logit_margin", "entropy", "el2n", "num_tokens")
DEFAULT_SIGNALS = ("p_target", "loss", "correct")
# What each signal is, for `--help` texts and error messages (a sequence's meaning after the semicolon).
SIGNAL_HELP = {
    "p_target": "softmax probability of the true label; a sequence: exp(-mean token loss)",
    "loss": "per-sample cross-entropy; a sequence: mean token loss",
    "correct": "1.0 where argmax == label; a sequence: token accuracy",
    "margin": "p_target minus the largest other class probability",
    "logit_margin": "target logit minus the largest other logit (AUM)",
    "entropy": "entropy of the softmax; a sequence: mean over its target tokens",
    "el2n": "L2 norm of softmax minus one-hot",
    "num_tokens": "number of target labels: 1 for a class label; a sequence: its target tokens",
}


def logits_of(outputs) -> torch.Tensor:
    """The logits (`[batch, classes]`, or `[batch, tokens, vocab]`) in a model's output: a tensor, a mapping or
    `ModelOutput` with `logits`, or a tuple `(loss, logits, ...)` when the model computed a loss (a 0-dim first
    element) and `(logits, ...)` otherwise."""
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
    * `num_tokens`: 1.0, the one target label (a sequence counts its target tokens, see `hf_prune.sequence`).

    A negative label (the ignore index of `CrossEntropyLoss`, -100) gives NaN in every signal of that sample. So does
    a sample whose logits hold a NaN or `+inf`, or whose signals are not all finite (an infinite loss): such a sample
    was seen, with non-finite values, and `ScoreRecord`'s writer records it as such (its label is kept) rather than
    as unseen. A `-inf` logit of another class (a masked class) is fine. Element-wise on the device: no host sync.
    """
    logits = logits.detach().float()
    if logits.dim() != 2:
        raise ValueError(
            f"Expected logits of shape [batch, classes]; got {tuple(logits.shape)}. Token logits [batch, tokens, "
            "vocab] give per-sequence signals: `hf_prune.sequence.sequence_signals` (`Recorder.add` with a "
            "`label_alignment`)."
        )
    labels = labels.detach().long().view(-1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Got {labels.shape[0]} labels for {logits.shape[0]} logits: PruningTrainer records against one hard "
            "class label per sample (soft or multi-label targets are not supported)."
        )
    valid = labels >= 0
    labels = torch.where(valid, labels, torch.zeros_like(labels))  # any class: the row is NaN-ed below
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
        elif name == "entropy":  # 0 log 0 = 0: a masked class (logit -inf) adds nothing
            columns.append(-torch.where(probs > 0, probs * log_p, torch.zeros_like(probs)).sum(dim=1))
        elif name == "el2n":
            err = probs.scatter_add(1, idx, -torch.ones_like(log_p_target).unsqueeze(1))
            columns.append(err.norm(dim=1))
        elif name == "num_tokens":
            columns.append(torch.ones_like(log_p_target))
        else:
            raise ValueError(f"Unknown signal {name!r}; choose from {list(SIGNALS)}.")
    values = torch.stack(columns, dim=1)
    # NaN or +inf logits make log_p_target NaN or -inf; any other non-finite signal (an infinite margin) counts too.
    finite = torch.isfinite(log_p_target) & torch.isfinite(values).all(dim=1)
    return torch.where((valid & finite).unsqueeze(1), values, torch.full_like(values, float("nan")))


RECORD_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def check_record_dtype(dtype: str) -> str:
    """Returns `dtype` if it is a supported storage dtype of record values (`"float32"` or `"float16"`)."""
    if dtype not in RECORD_DTYPES:
        raise ValueError(f"record_dtype must be one of {sorted(RECORD_DTYPES)}; got {dtype!r}.")
    return dtype


def dedup_first(ids: torch.Tensor, *columns: torch.Tensor):
    """Sorts `ids` and keeps the first occurrence of each (stable), with the matching rows of `columns`. On device."""
    ids, order = torch.sort(ids, stable=True)
    first = torch.ones_like(ids, dtype=torch.bool)
    first[1:] = ids[1:] != ids[:-1]
    keep = order[first]
    return (ids[first], *(c[keep] for c in columns))


def _bytes_of(t: torch.Tensor) -> torch.Tensor:
    """`[m, ...]` -> `[m, bytes per row]` uint8, a view of the same memory."""
    t = t.contiguous()
    width = t.element_size() * math.prod(t.shape[1:])
    return t.view(torch.uint8).reshape(t.shape[0], width)


class Recorder:
    """Buffers `(sample_id, label, signals)` rows for one epoch on this process, on the device.

    The buffer is one contiguous block per column (int64 ids, int32 labels, values in the record's dtype), reserved
    for the epoch's rows up front (`reserve`) and grown by doubling if more come, so the end of the epoch reads
    views of it and never concatenates per-step tensors.

    Args:
        signals (`Sequence[str]`): which signals to compute (see `compute_signals`).
        dtype (`str`, *optional*, defaults to `"float32"`): how values are kept and sent: `"float32"` or `"float16"`.

    Example:

    ```python
    >>> recorder = Recorder(["p_target", "loss"])
    >>> recorder.add(torch.tensor([4, 1]), logits, labels)      # every training (micro-)batch
    >>> ids, labels, values = recorder.local_rows()              # this rank, de-duplicated, sorted by id
    ```
    """

    def __init__(self, signals: Sequence[str], dtype: str = "float32"):
        self.signals = check_signals(signals)
        self.dtype = check_record_dtype(dtype)
        self._ids: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        self._values: torch.Tensor | None = None
        self._num_rows = 0
        self._reserved = 0

    def __len__(self) -> int:
        return self._num_rows

    @property
    def num_rows(self) -> int:
        """Rows added since the last reset (duplicates included); known without touching the device."""
        return self._num_rows

    @property
    def packed_row_bytes(self) -> int:
        """Bytes per row of `packed_rows` (label and values; the id travels beside it)."""
        return 4 + len(self.signals) * np.dtype(self.dtype).itemsize

    def reserve(self, rows: int) -> None:
        """Makes room for `rows` more rows (e.g. an epoch's `len(dataloader) x batch`), so that `add` never grows
        the buffer mid-epoch. Allocated on the device of the first `add` if nothing is buffered yet."""
        self._reserved = max(self._reserved, self._num_rows + int(rows))
        if self._ids is not None and self._ids.shape[0] < self._reserved:
            self._grow(self._reserved, self._ids.device)

    def _grow(self, capacity: int, device) -> None:
        width = len(self.signals)
        ids = torch.empty(capacity, dtype=torch.int64, device=device)
        labels = torch.empty(capacity, dtype=torch.int32, device=device)
        values = torch.empty(capacity, width, dtype=RECORD_DTYPES[self.dtype], device=device)
        if self._ids is not None and self._num_rows:
            k = self._num_rows
            ids[:k], labels[:k], values[:k] = self._ids[:k], self._labels[:k], self._values[:k]
        self._ids, self._labels, self._values = ids, labels, values

    def _append(self, ids: torch.Tensor, labels: torch.Tensor, values: torch.Tensor) -> None:
        end = self._num_rows + ids.shape[0]
        if self._ids is None or self._ids.shape[0] < end or self._ids.device != ids.device:
            capacity = max(end, self._reserved, 2 * (self._ids.shape[0] if self._ids is not None else 0), 1024)
            self._grow(capacity, ids.device)
        k = self._num_rows
        self._ids[k:end] = ids
        self._labels[k:end] = labels
        self._values[k:end] = values
        self._num_rows = end

    @torch.no_grad()
    def add(self, sample_ids: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
            label_alignment: str | None = None) -> None:  # fmt: skip
        """Records one (micro-)batch. Stays on the logits' device; no host synchronisation.

        Args:
            sample_ids (`torch.Tensor` `[batch]`): the samples' ids.
            logits (`torch.Tensor`): `[batch, classes]`, or `[batch, tokens, vocab]` for one row per sequence.
            labels (`torch.Tensor`): `[batch]` class labels, or `[batch, tokens]` token labels (-100 ignored).
            label_alignment (`str`, *optional*): for token logits, how they line up with the labels:
                `"next_token"` (a causal LM) or `"same_token"` (see `hf_prune.sequence`).
        """
        if logits.dim() == 3:
            require_label_alignment(label_alignment, logits)
            tokens = TokenLosses.from_logits(logits, labels, label_alignment, with_correct="correct" in self.signals,
                                             with_entropy="entropy" in self.signals)  # fmt: skip
            self.add_tokens(sample_ids, tokens)  # `sequence_signals` refuses signals without a sequence meaning
            return
        values = compute_signals(logits, labels, self.signals)
        ids = sample_ids.detach().to(device=values.device, dtype=torch.int64).view(-1)
        if ids.shape[0] != values.shape[0]:
            raise ValueError(f"Got {ids.shape[0]} sample ids for a batch of {values.shape[0]} samples.")
        lab = labels.detach().to(device=values.device).view(-1)
        lab = torch.where(lab >= 0, lab, torch.full_like(lab, -1)).to(torch.int32)
        self._append(ids, lab, values.to(RECORD_DTYPES[self.dtype]))

    @torch.no_grad()
    def add_tokens(self, sample_ids: torch.Tensor, tokens: TokenLosses) -> None:
        """Records one (micro-)batch of sequences from their per-token statistics (`hf_prune.sequence`): one row
        per sequence, label -1 (a sequence has no class). No host synchronisation."""
        values = sequence_signals(tokens, self.signals)
        ids = sample_ids.detach().to(device=values.device, dtype=torch.int64).view(-1)
        if ids.shape[0] != values.shape[0]:
            raise ValueError(f"Got {ids.shape[0]} sample ids for a batch of {values.shape[0]} sequences.")
        unknown = torch.full((ids.shape[0],), -1, dtype=torch.int32, device=values.device)
        self._append(ids, unknown, values.to(RECORD_DTYPES[self.dtype]))

    def reset(self) -> None:
        """Forgets the rows (the buffer's memory is kept for the next epoch)."""
        self._num_rows = 0
        self._reserved = 0

    def rows(self, device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views of the buffered rows in the order they were added (repeats included): `(ids, labels, values)`."""
        if self._ids is None:
            device = device if device is not None else "cpu"
            return (
                torch.zeros(0, dtype=torch.int64, device=device),
                torch.zeros(0, dtype=torch.int32, device=device),
                torch.zeros(0, len(self.signals), dtype=RECORD_DTYPES[self.dtype], device=device),
            )
        k = self._num_rows
        out = self._ids[:k], self._labels[:k], self._values[:k]
        return out if device is None else tuple(t.to(device) for t in out)

    def local_rows(self, device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's rows of the epoch, sorted by id, each id once (its first occurrence): `(ids int64 [m],
        labels int32 [m] (-1 = unknown), values [m, len(signals)])`, on the device. (Copies; the epoch-end stream
        to the record selects range by range instead, see `select_rows`.)"""
        return dedup_first(*self.rows(device))

    def select_rows(self, start: int, stop: int, chunk: int = 2**20) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows whose id is in `[start, stop)`, each id once (first occurrence), sorted by id: `(ids, packed)`
        with `packed` as `packed_rows` makes it. Scans the buffer in chunks, so the extra memory is about the
        range's rows plus `chunk` bytes, whatever the epoch's size."""
        ids, labels, values = self.rows()
        picked = []
        for lo in range(0, ids.shape[0], chunk):
            part = ids[lo : lo + chunk]
            picked.append(torch.nonzero((part >= start) & (part < stop)).view(-1) + lo)
        index = torch.cat(picked) if picked else torch.zeros(0, dtype=torch.int64, device=ids.device)
        sel_ids, order = torch.sort(ids[index], stable=True)
        first = torch.ones_like(sel_ids, dtype=torch.bool)
        first[1:] = sel_ids[1:] != sel_ids[:-1]
        index = index[order[first]]
        return sel_ids[first], self.packed_rows(labels[index], values[index])

    def id_histogram(self, edges: torch.Tensor, chunk: int = 2**20) -> torch.Tensor:
        """Rows per id bucket `[edges[b], edges[b+1])` (repeats included), int64 `[len(edges) - 1]`, in chunks."""
        ids = self.rows()[0]
        edges = edges.to(ids.device)
        counts = torch.zeros(edges.shape[0] - 1, dtype=torch.int64, device=ids.device)
        for lo in range(0, ids.shape[0], chunk):
            bucket = torch.bucketize(ids[lo : lo + chunk], edges[1:-1], right=True)
            counts += torch.bincount(bucket, minlength=counts.shape[0])[: counts.shape[0]]
        return counts

    def packed_rows(self, labels: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Labels and values as one uint8 row per id (`[m, 4 + len(signals) * itemsize]`), for streaming."""
        return torch.cat([_bytes_of(labels.to(torch.int32)), _bytes_of(values.to(RECORD_DTYPES[self.dtype]))], dim=1)

    def unpack_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of `packed_rows` on the host: `(labels int32 [k], values [k, len(signals)])`."""
        rows = np.asarray(rows, dtype=np.uint8).reshape(-1, 4 + len(self.signals) * np.dtype(self.dtype).itemsize)
        labels = np.ascontiguousarray(rows[:, :4]).view(np.int32).reshape(-1)
        values = np.ascontiguousarray(rows[:, 4:]).view(np.dtype(self.dtype)).reshape(-1, len(self.signals))
        return labels, values

    def state_dict(self) -> dict:
        """The un-gathered rows of the epoch in progress, for checkpoints (CPU tensors, compact dtypes)."""
        ids, labels, values = self.rows()
        return {
            "signals": self.signals,
            "dtype": self.dtype,
            "ids": ids.cpu().clone(),
            "labels": labels.cpu().clone(),
            "values": values.cpu().clone(),
        }

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu", append: bool = False) -> None:
        """Restores rows saved by `state_dict` (or by hf_prune <= 0.1's float64 `rows`); `append` adds them after the
        rows already held (merging several ranks' rows after a change of world size)."""
        if list(state["signals"]) != self.signals:
            raise ValueError(
                f"The checkpoint recorded signals {state['signals']} but this run records {self.signals}; resume with "
                "the same `record_signals`."
            )
        if "rows" in state:  # hf_prune <= 0.1: float64 [m, 2 + S] rows (id, label, values)
            rows = state["rows"]
            ids, labels, values = rows[:, 0].long(), rows[:, 1].long(), rows[:, 2:].float()
        else:
            ids, labels, values = state["ids"], state["labels"], state["values"]
        if not append:
            self.reset()
        if ids.shape[0]:
            labels = torch.where(labels >= 0, labels, torch.full_like(labels, -1)).to(torch.int32)
            self._append(
                ids.to(device=device, dtype=torch.int64),
                labels.to(device),
                values.to(device=device, dtype=RECORD_DTYPES[self.dtype]),
            )

    def gather(self, accelerator=None, device: torch.device | str | None = None, signals: Sequence[str] | None = None):
        """All-gathers this epoch's `(id, label, value)` rows of `signals` (all by default) to *every* process,
        de-duplicated by sample id.

        For what every rank needs (a dynamic policy's score table); the record itself goes to the main process only,
        see `select_rows` and `hf_prune.distributed.stream_rows_to_main`. Every process must call it (it is a
        collective). Ids travel as int64, labels as int32, values as float32 (3 all-gathers of compact tensors).

        Returns:
            `(ids [m] int64, labels [m] int64 (-1 = unknown), {signal: values [m] float32})` as numpy arrays, sorted
            by id; a sample seen more than once keeps its first occurrence in (rank, step) order. Non-finite values
            are NaN (a sample seen with a NaN or infinite loss).
        """
        names = self.signals if signals is None else list(signals)
        missing = [s for s in names if s not in self.signals]
        if missing:
            raise ValueError(f"Signals {missing} are not recorded (recorded: {self.signals}).")
        cols = [self.signals.index(s) for s in names]
        if device is None:
            device = self._ids.device if self._ids is not None else (accelerator.device if accelerator else "cpu")
        ids, labels, values = self.local_rows(device)
        values = values[:, cols].float()
        if accelerator is not None and accelerator.num_processes > 1:
            ids = accelerator.pad_across_processes(ids, dim=0, pad_index=-1)
            labels = accelerator.pad_across_processes(labels, dim=0, pad_index=-1)
            values = accelerator.pad_across_processes(values, dim=0)
            ids, labels, values = accelerator.gather(ids), accelerator.gather(labels), accelerator.gather(values)
        ids, labels, values = ids.cpu().numpy(), labels.cpu().numpy(), values.cpu().numpy()
        values[~np.isfinite(values)] = np.nan  # a sequence seen with non-finite values is +inf (hf_prune.sequence)
        real = ids >= 0
        ids, labels, values = ids[real], labels[real], values[real]
        # rank-ordered concatenation: np.unique's first index is the lowest rank's occurrence
        ids, first = np.unique(ids, return_index=True)
        labels = labels[first].astype(np.int64)
        return ids, labels, {name: values[first, i].astype(np.float32) for i, name in enumerate(names)}
