"""CCS-style score files: a dict of per-example arrays keyed by ImageFolder position (Zheng et al. 2023).

The Coverage-centric Coreset Selection authors' `generate_importance_score_imagenet.py` scores every ImageNet
training example of a `torchvision.datasets.ImageFolder` (class folders sorted, files sorted) and saves a dict of
tensors of that length: `targets` (the ImageFolder label), `el2n` (summed over the first 10 epochs), `forgetting`
(forgetting events), `correctness` (epochs classified correctly), `accumulated_margin` (the probability margin of
the label summed over training: their AUM) and `last_correctness`. Entries are identified only by their position,
so the source is put in ImageFolder order (`hf_prune.importers.imagefolder_order`) and `targets` is checked against
it.

The file is read with `torch.load(weights_only=True)` (a `torch.save` archive) or `numpy.load(allow_pickle=False)`
(an `.npz`): never with plain pickle. The authors' script writes it with `pickle.dump`, which nothing can read
without running arbitrary code; such a file is refused with the one-line conversion to run where it is trusted.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Sequence

import numpy as np

from ..citations import AUM, CCS, DATA_DIET, FORGETTING
from ..result import PruneResult
from .artefact import SCORES, Artefact, ArtefactInfo, check_finite, file_sha256, format_error, with_citation
from .build import score_results
from .resolve import resolve_artefact


FORMAT = "ccs-scores"
TARGETS = "targets"

# score key -> (method name, end kept by default (the hard end), what it is, the paper of the score)
SCORE_KEYS = {
    "accumulated_margin": ("aum", "low", "the margin of the label's probability over the largest other one, summed "
                           "over training (the CCS code's AUM); low = hard or mislabeled", AUM),
    "el2n": ("el2n", "high", "the L2 norm of the error vector, summed over the first epochs; high = hard", DATA_DIET),
    "forgetting": ("forgetting", "high", "forgetting events (correct, then wrong); high = often forgotten",
                   FORGETTING),
    "correctness": ("correctness", "low", "epochs the example was classified correctly; low = hard", None),
}  # fmt: skip

INFO = ArtefactInfo(
    format=FORMAT,
    title="Training-dynamics scores of the CCS code",
    paper="Zheng, Liu, Lai, Prakash (2023), Coverage-centric Coreset Selection for High Pruning Rates",
    citation=CCS,
    url="https://github.com/haizhongzheng/Coverage-centric-coreset-selection",
    license="other",
    license_name="unspecified (the authors' repository states no licence)",
    license_link="https://github.com/haizhongzheng/Coverage-centric-coreset-selection",
    description=(
        "Per-example training-dynamics scores computed by the Coverage-centric Coreset Selection (CCS) authors' "
        "code for every ImageNet training example, keyed by its position in the ImageFolder order (class folders "
        "sorted, then files sorted)."
    ),
)

CONVERT = (
    "convert it once, where you trust it, with `python -c \"import pickle, torch; torch.save(pickle.load(open('IN', "
    "'rb')), 'OUT.pt')\"` (or save the arrays with numpy.savez) and import OUT.pt"
)


def _load(path: str | os.PathLike, file: str) -> dict:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK") and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = z.namelist()
        if members and all(m.endswith(".npy") for m in members):
            try:
                with np.load(path, allow_pickle=False) as archive:
                    return {k: archive[k] for k in archive.files}
            except ValueError as err:  # object arrays need pickle: refused
                raise format_error(file, "the archive", "numeric arrays (hf_prune unpickles no Python objects)",
                                   str(err)) from None  # fmt: skip
    import pickle

    import torch

    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol of files it reads anyway
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            value = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as err:
        plain = head[:1] == b"\x80"
        raise format_error(
            file, "the file",
            "a torch.save archive of tensors or a NumPy .npz, read without unpickling Python objects"
            + (f"; this looks like a plain Python pickle (as the authors' script writes it): {CONVERT}" if plain
               else ""),
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
        ) from None  # fmt: skip
    if not isinstance(value, dict):
        raise format_error(file, "the file", "a dict of per-example tensors", type(value).__name__)
    return value


def read_ccs_scores(path: str | os.PathLike) -> Artefact:
    """Parses a CCS-style score file strictly, without pickle.

    Requires a dict with string keys whose values are 1-D tensors or arrays of one length: `targets` (integer
    labels >= 0) and at least one of `accumulated_margin`, `el2n`, `forgetting`, `correctness` (finite numbers);
    other numeric 1-D arrays (`last_correctness`) are kept as scores too. Anything else is an
    `ArtefactFormatError` naming the key (and entry) and what was expected.

    Returns:
        `Artefact` of kind `"scores"` keyed by ImageFolder position (`paths` is None).
    """
    file = os.path.basename(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file. Download the artefact first (see docs/published_subsets.md).")
    sha256, size = file_sha256(path)
    raw = _load(path, file)
    arrays, n = {}, None
    for key, value in raw.items():
        if not isinstance(key, str):
            raise format_error(file, f"key {key!r}", "string keys", type(key).__name__)
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray):
            raise format_error(file, f"key {key!r}", "a 1-D tensor or array", type(value).__name__)
        if value.ndim != 1 or value.dtype.kind not in "biuf":
            raise format_error(file, f"key {key!r}", "a 1-D numeric tensor, one value per example",
                               f"shape {tuple(value.shape)}, dtype {value.dtype}")  # fmt: skip
        if n is not None and value.shape[0] != n:
            raise format_error(file, f"key {key!r}", f"{n:,} values, as the other keys", f"{value.shape[0]:,}")
        n = value.shape[0]
        arrays[key] = value
    if TARGETS not in arrays or not set(SCORE_KEYS) & set(arrays):
        raise format_error(file, "the keys", f"{TARGETS!r} and at least one of {sorted(SCORE_KEYS)}", f"{sorted(raw)}")
    if not n:
        raise format_error(file, f"key {TARGETS!r}", "at least one example", "an empty tensor")
    targets = arrays.pop(TARGETS)
    if targets.dtype.kind not in "iu" or (targets < 0).any():
        bad = int(np.flatnonzero(targets < 0)[0]) if targets.dtype.kind in "iu" else None
        raise format_error(file, f"key {TARGETS!r}" + (f", position {bad}" if bad is not None else ""),
                           "integer labels >= 0", str(targets[bad]) if bad is not None else f"dtype {targets.dtype}")
    scores = {key: check_finite(value, file, f"{key!r}", lambda i, key=key: f"key {key!r}, position {i}")
              for key, value in arrays.items()}  # fmt: skip
    return Artefact(
        file=file, sha256=sha256, num_bytes=size, info=INFO, kind=SCORES, paths=None,
        entries=np.arange(n, dtype=np.int64), entry_word="position", labels=targets.astype(np.int64), scores=scores,
    )  # fmt: skip


def results_for(
    artefact: Artefact,
    resolution,
    prune_ratio: float | Sequence[float],
    *,
    score: str = "accumulated_margin",
    keep: str | None = None,
    cutoff: str | None = None,
    **selection,
) -> PruneResult | list[PruneResult]:
    """The results of a parsed and resolved CCS score file (see `import_ccs_scores`)."""
    if score not in artefact.scores:
        raise ValueError(f"{artefact.file} has no score {score!r}; it has {sorted(artefact.scores)}.")
    method, hard_end, what, paper = SCORE_KEYS.get(score, (score, "high", f"the `{score}` array", None))
    keep = keep or hard_end
    artefact.info = with_citation(artefact.info, paper)
    end = "highest" if keep == "high" else "lowest"
    description = f"{INFO.description} This list selects by `{score}`, {what}, keeping the {end} first."
    return score_results(
        artefact, resolution, prune_ratio, score=score, method=method, title=f"{method} (CCS authors' scores)",
        description=description, score_name=f"`{score}` ({end} kept)", keep=keep, cutoff=cutoff,
        cutoff_keep=SCORE_KEYS[cutoff][1] if cutoff in SCORE_KEYS else None, **selection,
    )  # fmt: skip


def import_ccs_scores(
    path: str | os.PathLike,
    source_dataset,
    prune_ratio: float | Sequence[float],
    *,
    score: str = "accumulated_margin",
    cutoff: str | None = None,
    column: str | None = None,
    label_column: str | None = None,
    **selection,
) -> PruneResult | list[PruneResult]:
    """Imports a CCS-style score file onto your ImageNet train split (put in ImageFolder order) and selects by one of
    its scores.

    Each score's default end is its *hard* end, as the CCS code's baselines keep it: low `accumulated_margin`, high
    `el2n`, high `forgetting`, low `correctness`. `selection="ccs"` samples coverage-centric strata instead (the
    paper's method), with `hard_cutoff` removing the hardest first; `cutoff="accumulated_margin"` cuts by AUM as the
    authors' code does whatever it stratifies.

    Args:
        path (`str` or `os.PathLike`): the score file (`imagenet-data-score.pt` re-saved with `torch.save`, or an
            `.npz` of the same arrays).
        source_dataset (`datasets.Dataset`): your ImageNet-1K train split, every file of it (positions need the exact
            file set), in any row order.
        prune_ratio (`float` or sequence of `float`): fraction(s) removed; a sequence returns one result each.
        score (`str`, *optional*, defaults to `"accumulated_margin"`): which score to select by.
        cutoff (`str`, *optional*): CCS only: the score whose hard end the cutoff removes (default: `score`).
        column, label_column (`str`, *optional*): the source's file-name and label columns.
        selection: `keep`, `class_balanced`, `selection` (`"rank"` or `"ccs"`), `hard_cutoff`, `num_strata`, `seed`:
            how the kept rows are chosen from the scores (see `hf_prune.importers.score_results`); `keep` defaults
            to the score's hard end (see above).

    Returns:
        `PruneResult` (a list for a sequence of ratios).

    Example:

    ```python
    >>> from hf_prune.importers import import_ccs_scores
    >>> result = import_ccs_scores("imagenet-data-score.pt", train, prune_ratio=0.9, selection="ccs",
    ...                            hard_cutoff=0.3, cutoff="accumulated_margin")
    ```
    """
    artefact = read_ccs_scores(path)
    if score not in artefact.scores:
        raise ValueError(f"{artefact.file} has no score {score!r}; it has {sorted(artefact.scores)}.")
    resolution = resolve_artefact(artefact, source_dataset, column=column, label_column=label_column)
    return results_for(artefact, resolution, prune_ratio, score=score, cutoff=cutoff, **selection)
