"""Per-sample feature vectors for the geometry-based strategies (`moderate`, `ssp`, optionally `grand`).

`extract_features(trainer)` runs one no-grad pass over the training split through the trainer's dataloader machinery
(`PruningTrainer.sample_id_dataloader`: sharded across processes by Accelerate, ids carried beside the items, never
Trainer's cached eval loader), gathers ids and features from all processes batch by batch and writes them,
de-duplicated by id, into a preallocated float16 `[n, d]` file on the main process with ordinary file writes (a full
disk gives an `OSError`, not a SIGBUS). 1,281,167 x 768 features take 1.97 GB on disk and never need float32 in RAM.
An error on any process (a bad batch, a full disk) stops every process, not just the one that hit it.

Layout of a feature folder (by default `<output_dir>/features`, next to `<output_dir>/scores`)::

    features/
        features.json     # num_samples, dim, dtype, layer, model, num_missing
        features.npy      # float16 [n, d], memory-mapped; row = sample id
        seen.npy          # bool [n], False where the pass never saw the sample (its row is zeros)

Which layer: by default the *penultimate* one, i.e. the input of the classification head:

* timm models and transformers' `TimmWrapperForImageClassification`:
  `timm_model.forward_head(timm_model.forward_features(x), pre_logits=True)` (pooled, before the classifier);
* transformers models with a head: the input of their last `nn.Linear` mapping to `config.num_labels` (the pooled
  output of BERT-like models, the `[CLS]` token of ViT, the pooled map of ConvNets);
* transformers models without a head (e.g. a self-supervised `AutoModel` given as `feature_model`): their
  `pooler_output` if they have one, else the mean of `last_hidden_state` over tokens;
* any other `nn.Module`: the input of its last `nn.Linear`, or its output if it has none.

`layer="name"` takes the output of the module called `name` in `model.named_modules()` instead, pooled to
`[batch, d]` (see `pool`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .distributed import raise_on_every_rank
from .record import allocate_file
from .sample_ids import LABEL_COLUMNS, SAMPLE_ID_COLUMN, is_iterable_dataset, sample_id_range


FEATURES_FILE = "features.npy"
SEEN_FILE = "seen.npy"
META_FILE = "features.json"
DEFAULT_FEATURES_DIR = "features"
POOLINGS = ("mean", "mean_nhwc", "cls", "flatten")


class FeatureStore:
    """Features `[n, d]` (row = sample id) with a `seen` mask and metadata, memory-mapped from a folder or in RAM.

    Args:
        features (`np.ndarray` `[n, d]`): the features (a memory map when loaded from disk).
        seen (`np.ndarray` of bool `[n]`, *optional*): False where a sample has no features; defaults to all True.
        metadata (`dict`, *optional*): layer, model and the like.
        path (`Path`, *optional*): the folder it was loaded from.
    """

    def __init__(self, features, seen=None, metadata: dict | None = None, path: str | os.PathLike | None = None):
        if np.ndim(features) != 2:
            raise ValueError(f"Features must be a 2-D [num_samples, dim] array; got shape {np.shape(features)}.")
        self.features = features
        self.seen = np.ones(features.shape[0], dtype=bool) if seen is None else np.asarray(seen, dtype=bool)
        if self.seen.shape != (features.shape[0],):
            raise ValueError(f"`seen` has shape {self.seen.shape}; expected ({features.shape[0]},).")
        self.metadata = dict(metadata or {})
        self.path = Path(path) if path is not None else None

    @property
    def num_samples(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def describe(self) -> dict[str, Any]:
        """What a `PruneResult`'s provenance records about these features."""
        return {
            "path": str(self.path) if self.path else None,
            "shape": [self.num_samples, self.dim],
            "dtype": str(self.features.dtype),
            "num_missing": int((~self.seen).sum()),
            **{k: v for k, v in self.metadata.items() if k in ("layer", "model", "pool", "feature_model")},
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStore:
        """Opens a feature folder written by `extract_features` or `save_features` (memory-mapped, read-only)."""
        path = Path(path)
        if not (path / FEATURES_FILE).exists():
            raise FileNotFoundError(
                f"No features in {path} (missing {FEATURES_FILE}). Write them with "
                "`hf_prune.features.extract_features(trainer)` (or `save_features(path, array)`)."
            )
        meta = json.loads((path / META_FILE).read_text()) if (path / META_FILE).exists() else {}
        seen = np.load(path / SEEN_FILE) if (path / SEEN_FILE).exists() else None
        return cls(np.load(path / FEATURES_FILE, mmap_mode="r"), seen, meta, path)

    def __repr__(self) -> str:
        return f"FeatureStore(num_samples={self.num_samples}, dim={self.dim}, path={self.path})"


def save_features(
    path: str | os.PathLike,
    features,
    seen: np.ndarray | None = None,
    metadata: dict | None = None,
    dtype: str = "float16",
    chunk_size: int = 65536,
) -> FeatureStore:
    """Writes a `[n, d]` array (or memory map) to a feature folder in `dtype`, chunk by chunk, and opens it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    n, d = features.shape
    out = np.lib.format.open_memmap(path / FEATURES_FILE, mode="w+", dtype=np.dtype(dtype), shape=(n, d))
    for start in range(0, n, chunk_size):
        out[start : start + chunk_size] = np.asarray(features[start : start + chunk_size], dtype=np.float32)
    out.flush()
    del out
    seen = np.ones(n, dtype=bool) if seen is None else np.asarray(seen, dtype=bool)
    np.save(path / SEEN_FILE, seen)
    meta = {"num_samples": n, "dim": d, "dtype": dtype, "num_missing": int((~seen).sum()), **(metadata or {})}
    (path / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return FeatureStore.load(path)


def resolve_features(features, record=None, method: str = "this method") -> FeatureStore:
    """Turns what a strategy was given as `features` into a `FeatureStore` that matches `record`.

    Args:
        features (`str`, `Path`, `np.ndarray`, `FeatureStore` or `None`): a feature folder, an array `[n, d]`, or
            `None` to use `<run>/features` next to the record folder `<run>/scores`.
        record (`ScoreRecord`, *optional*): the record whose samples the features must cover.
        method (`str`, *optional*): name used in error messages.

    Raises:
        `ValueError` if the features do not have one row per sample of the record.
    """
    if features is None:
        candidate = record.path.parent / DEFAULT_FEATURES_DIR if record is not None and record.path else None
        if candidate is None or not (candidate / FEATURES_FILE).exists():
            raise ValueError(
                f"`{method}` needs per-sample features. Compute them with "
                "`hf_prune.features.extract_features(trainer)` (written to <output_dir>/features, where it is "
                "found automatically) or pass `features=` a feature folder or an [n, d] array."
            )
        features = candidate
    if isinstance(features, (str, os.PathLike)):
        store = FeatureStore.load(features)
    elif isinstance(features, FeatureStore):
        store = features
    else:
        store = FeatureStore(np.asarray(features) if not isinstance(features, np.memmap) else features)
    if record is not None and store.num_samples != record.num_samples:
        raise ValueError(
            f"The features have {store.num_samples} rows but the record has {record.num_samples} samples: `{method}` "
            "needs one feature row per sample id of the same (unpruned) training split."
        )
    return store


# ---------------------------------------------------------------------------------------------------- extraction


def _pool(x: torch.Tensor, pool: str) -> torch.Tensor:
    if x.dim() == 2:
        return x
    if pool == "flatten":
        return x.flatten(1)
    if pool == "cls":
        return x[:, 0] if x.dim() == 3 else x.flatten(2).mean(2)
    if pool == "mean_nhwc" and x.dim() == 4:
        return x.mean(dim=(1, 2))
    if x.dim() == 3:
        return x.mean(1)  # tokens [B, T, H]
    return x.flatten(2).mean(2)  # NCHW (or more spatial dims): average over them


def _first_tensor(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping) or hasattr(out, "to_tuple"):
        out = out.to_tuple() if hasattr(out, "to_tuple") else tuple(out.values())
    for item in out:
        if isinstance(item, torch.Tensor):
            return item
    raise TypeError(f"Could not find a tensor in the output {type(out).__name__}.")


def _head_linear(model: torch.nn.Module) -> torch.nn.Linear | None:
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if num_labels is not None:
        heads = [m for m in linears if m.out_features == num_labels]
        if heads:
            return heads[-1]
    return linears[-1] if linears else None


def _call(model: torch.nn.Module, batch: dict):
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        PreTrainedModel = ()
    if isinstance(model, PreTrainedModel):
        return model(**batch)
    if "pixel_values" in batch:
        return model(batch["pixel_values"])
    if len(batch) == 1:
        return model(next(iter(batch.values())))
    return model(**batch)


def make_feature_fn(model: torch.nn.Module, layer: str | None = None, pool: str = "mean") -> Callable:
    """Returns `fn(batch: dict) -> [batch, d]` features of `model` at `layer` (see the module docstring).

    Args:
        model (`torch.nn.Module`): a timm model, a transformers model or any module.
        layer (`str`, *optional*): a module name from `model.named_modules()`; defaults to the penultimate layer.
        pool (`str`, *optional*, defaults to `"mean"`): how a named layer's output with more than 2 dims becomes
            `[batch, d]`: `"mean"` over tokens (3-D) or over H, W of NCHW maps (4-D), `"mean_nhwc"` over H, W of
            NHWC maps (timm Swin stages), `"cls"` the first token, `"flatten"` everything.
    """
    if pool not in POOLINGS:
        raise ValueError(f"pool must be one of {POOLINGS}; got {pool!r}.")
    if layer is None:
        timm_model = getattr(model, "timm_model", None)
        if timm_model is None and hasattr(model, "forward_features") and hasattr(model, "forward_head"):
            timm_model = model
        if timm_model is not None:

            def timm_fn(batch):
                x = batch["pixel_values"] if isinstance(batch, Mapping) else batch
                return timm_model.forward_head(timm_model.forward_features(x), pre_logits=True)

            return timm_fn
        head = _head_linear(model)
        config = getattr(model, "config", None)
        has_head = head is not None and (config is None or head.out_features == getattr(config, "num_labels", -1))
        if not has_head and config is not None:

            def base_fn(batch):
                out = model(**batch)
                pooled = getattr(out, "pooler_output", None)
                if pooled is not None:
                    return pooled.flatten(1)
                return _pool(out.last_hidden_state, pool)

            return base_fn
        if head is None:
            return lambda batch: _pool(_first_tensor(_call(model, batch)), pool)
        target, use_input = head, True
    else:
        modules = dict(model.named_modules())
        if layer not in modules:
            close = [n for n in modules if layer.split(".")[-1] in n][:10]
            raise ValueError(f"No layer {layer!r} in {type(model).__name__}. Names that look close: {close}.")
        target, use_input = modules[layer], False

    def hooked_fn(batch):
        captured = {}

        def hook(module, args, output):
            captured["x"] = _first_tensor(args) if use_input else _first_tensor(output)

        handle = target.register_forward_hook(hook)
        try:
            _call(model, batch)
        finally:
            handle.remove()
        return _pool(captured["x"], pool)

    return hooked_fn


@torch.no_grad()
def extract_features(
    trainer,
    dataset=None,
    layer: str | None = None,
    feature_model: torch.nn.Module | None = None,
    output_dir: str | os.PathLike | None = None,
    pool: str = "mean",
    num_samples: int | None = None,
    dtype: str = "float16",
) -> FeatureStore:
    """One no-grad pass over the training split that writes every sample's features to a feature folder.

    Runs on every process (it gathers); the main process writes. Rows are keyed by `sample_id`, so shuffling,
    sharding and the padding duplicates of distributed evaluation do not matter.

    Args:
        trainer (`PruningTrainer`): gives the dataloader (`sample_id_dataloader`: eval batch size, collator,
            distributed sharding), the accelerator and, unless `feature_model` is given, the model.
        dataset (`datasets.Dataset`, *optional*): the training split with the *eval* transform; defaults to
            `trainer.train_dataset`. Row position = sample id unless it carries a `sample_id` column.
        layer (`str`, *optional*): module name whose output is the feature; defaults to the penultimate layer.
        feature_model (`torch.nn.Module`, *optional*): a separate model (e.g. a self-supervised encoder, as in
            Sorscher et al.) to take the features from instead of the trained one.
        output_dir (`str`, *optional*): the feature folder; defaults to `<trainer.args.output_dir>/features`.
        pool (`str`, *optional*, defaults to `"mean"`): pooling of a named layer's output, see `make_feature_fn`.
        num_samples (`int`, *optional*): rows of the unpruned split; defaults to the trainer's `num_samples` or the
            dataset length.
        dtype (`str`, *optional*, defaults to `"float16"`): storage dtype.

    Returns:
        `FeatureStore` memory-mapped from `output_dir` (on every process, after the main one wrote it).

    Example:

    ```python
    >>> from hf_prune.features import extract_features
    >>> store = extract_features(trainer, dataset=train_ds_eval_transform)   # run/features
    >>> get_strategy("moderate").select(trainer.score_record, prune_ratio=0.3)  # finds run/features
    ```
    """
    if not hasattr(trainer, "sample_id_dataloader"):
        raise TypeError(
            f"extract_features needs a PruningTrainer (it carries sample ids through the dataloader); got "
            f"{type(trainer).__name__}."
        )
    accelerator = trainer.accelerator
    dataset = trainer.train_dataset if dataset is None else dataset
    if is_iterable_dataset(dataset):
        raise ValueError("extract_features takes a map-style dataset (the training split with the eval transform).")
    n = int(num_samples or getattr(trainer, "num_samples", None) or len(dataset))
    span = sample_id_range(dataset)
    if span is not None and (span[0] < 0 or span[1] >= n):
        raise ValueError(
            f"The feature dataset has sample ids in [{span[0]}, {span[1]}], outside [0, {n}): pass `num_samples`, the "
            "length of the unpruned split."
        )
    output_dir = Path(output_dir) if output_dir is not None else Path(trainer.args.output_dir) / DEFAULT_FEATURES_DIR
    if feature_model is not None:
        model = feature_model.to(accelerator.device)
        model_name = type(feature_model).__name__
    else:
        model = accelerator.unwrap_model(trainer.model)
        model_name = type(model).__name__
    was_training = model.training
    model.eval()
    fn = make_feature_fn(model, layer, pool)
    is_main = accelerator.is_main_process
    writer = _FeatureWriter(output_dir, n, np.dtype(dtype)) if is_main else None
    write_error = None
    try:
        batches = iter(trainer.sample_id_dataloader(dataset, "Feature pass"))
        while True:
            error, ids, feats = None, None, None
            try:
                batch = next(batches, None)
                if batch is not None:
                    batch = trainer._prepare_inputs(batch)
                    ids = batch.pop(SAMPLE_ID_COLUMN).long().view(-1)
                    for key in LABEL_COLUMNS:
                        batch.pop(key, None)
                    with trainer.autocast_smart_context_manager():
                        feats = fn(batch)
                    feats = feats.float().reshape(ids.shape[0], -1)
            except Exception as err:  # noqa: BLE001 - raised on every rank just below
                error = err
            # A bad batch on one process must stop all of them, not leave the others waiting in the next gather.
            raise_on_every_rank(error, accelerator, "the feature pass")
            if batch is None:
                break  # every process runs out together (accelerate evens out the batches)
            if accelerator.num_processes > 1:
                ids = accelerator.gather(accelerator.pad_across_processes(ids, dim=0, pad_index=-1))
                feats = accelerator.gather(accelerator.pad_across_processes(feats, dim=0))
            if writer is None or write_error is not None:
                continue
            try:
                ids_np = ids.cpu().numpy()
                valid = ids_np >= 0
                writer.write(ids_np[valid], feats.cpu().numpy()[valid])
            except Exception as err:  # noqa: BLE001 - the main process keeps gathering, then every rank raises
                write_error = err
    finally:
        model.train(was_training)
    if writer is not None and write_error is None:
        try:
            writer.finish(
                {
                    "layer": layer or "penultimate",
                    "pool": pool,
                    "model": model_name,
                    "feature_model": feature_model is not None,
                }
            )
        except Exception as err:  # noqa: BLE001
            write_error = err
    if writer is not None:
        writer.close()
    raise_on_every_rank(write_error, accelerator, f"writing the features to {output_dir}")
    return FeatureStore.load(output_dir)


class _FeatureWriter:
    """The main process's side of the feature pass: a preallocated `[n, d]` file written with `os.pwrite`."""

    def __init__(self, output_dir: Path, n: int, dtype: np.dtype):
        self.output_dir, self.n, self.dtype = output_dir, n, dtype
        self.fd: int | None = None
        self.offset = 0
        self.dim = 0
        self.seen = np.zeros(n, dtype=bool)

    def write(self, ids: np.ndarray, feats: np.ndarray) -> None:
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise ValueError(f"sample_id {ids.max()} is outside [0, {self.n}); pass `num_samples`.")
        if self.fd is None:
            self._open(feats.shape[1])
        # A duplicate id (distributed padding) is the same sample in eval mode: writing it twice is harmless.
        order = np.argsort(ids, kind="stable")
        ids, rows = ids[order], np.ascontiguousarray(feats[order], dtype=self.dtype)
        starts = np.flatnonzero(np.diff(ids, prepend=-2) != 1)  # runs of consecutive ids: one write each
        for a, b in zip(starts, [*starts[1:], ids.size]):
            self._pwrite(rows[a:b], self.offset + int(ids[a]) * self.dim * self.dtype.itemsize)
        self.seen[ids] = True

    def _open(self, dim: int) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        path = self.output_dir / FEATURES_FILE
        with open(path, "wb") as f:
            header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.n, dim)}
            np.lib.format.write_array_header_1_0(f, header)
            self.offset = f.tell()
        allocate_file(path, self.offset + self.n * dim * self.dtype.itemsize)
        self.fd = os.open(path, os.O_RDWR)

    def _pwrite(self, rows: np.ndarray, offset: int) -> None:
        view = memoryview(rows).cast("B")
        path = self.output_dir / FEATURES_FILE
        while view.nbytes:
            try:
                written = os.pwrite(self.fd, view, offset)
            except OSError as err:
                raise OSError(err.errno, f"Writing features failed at {path}: {err.strerror}", str(path)) from None
            view, offset = view[written:], offset + written

    def finish(self, metadata: dict) -> None:
        if self.fd is None:
            raise ValueError("The feature pass saw no samples: the dataset is empty.")
        os.fsync(self.fd)
        np.save(self.output_dir / SEEN_FILE, self.seen)
        meta = {"num_samples": self.n, "dim": self.dim, "dtype": str(self.dtype), "num_missing": int((~self.seen).sum())}
        (self.output_dir / META_FILE).write_text(json.dumps({**meta, **metadata}, indent=2))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
