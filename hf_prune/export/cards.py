"""Dataset cards for index lists and model cards for models trained on a pruned set, rendered from the Jinja
templates in `model_cards/` through `huggingface_hub`'s `DatasetCard` / `ModelCard`.

Templates ship as package data (`hf_prune/model_cards/*.md` once installed) and are read from the source tree's
top-level `model_cards/` folder in a checkout.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np


if TYPE_CHECKING:
    from huggingface_hub import DatasetCard, ModelCard

    from ..result import PruneResult


DATASET_CARD_TEMPLATE = "pruned_index_list.md"
MODEL_CARD_TEMPLATE = "model_trained_on_pruned.md"
REPO_ID_PLACEHOLDER = "<repo_id>"
# TrainingArguments worth showing on a card; the full set is in pruning_provenance.json.
TRAINING_KEYS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "lr_scheduler_type",
    "warmup_ratio",
    "weight_decay",
    "optim",
    "seed",
)


@dataclass(frozen=True)
class MethodInfo:
    """What a card says about a pruning method."""

    title: str
    description: str
    score_name: str = "the method's score"
    citation: str = ""


def _bib(kind: str, key: str, **fields: str) -> str:
    width = max(len(k) for k in fields)
    body = ",\n".join(f"  {k:<{width}} = {{{v}}}" for k, v in fields.items())
    return f"@{kind}{{{key},\n{body}\n}}"


_PAUL = _bib(
    "inproceedings",
    "paul2021deep",
    title="Deep Learning on a Data Diet: Finding Important Examples Early in Training",
    author="Paul, Mansheej and Ganguli, Surya and Dziugaite, Gintare Karolina",
    booktitle="Advances in Neural Information Processing Systems",
    year="2021",
)
_CARTOGRAPHY = _bib(
    "inproceedings",
    "swayamdipta2020dataset",
    title="Dataset Cartography: Mapping and Diagnosing Datasets with Training Dynamics",
    author="Swayamdipta, Swabha and Schwartz, Roy and Lourie, Nicholas and Wang, Yizhong and Hajishirzi, Hannaneh"
    " and Smith, Noah A. and Choi, Yejin",
    booktitle="Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing",
    year="2020",
)

# Curated card text; methods not listed here use their strategy's docstring (first paragraph) as description.
METHODS: dict[str, MethodInfo] = {
    "dyn_unc": MethodInfo(
        title="Dynamic Uncertainty (Dyn-Unc)",
        description=(
            "He et al. (2023) score each sample by how much the model's confidence in its label moves during "
            "training. With `P_k` the softmax probability of the true label after epoch `k`, the score is the "
            "mean over sliding windows of `J` epochs of the sample standard deviation (ddof = 1) of `P_k` "
            "(Eq. 2-3: `K - J` windows over `K` recorded epochs). Easy samples (always right) and hard or "
            "mislabeled ones (always wrong) vary little and are removed first."
        ),
        score_name="Dyn-Unc uncertainty `U`",
        citation=_bib(
            "article",
            "he2023large",
            title="Large-scale Dataset Pruning with Dynamic Uncertainty",
            author="He, Muyang and Yang, Shuo and Huang, Tiejun and Zhao, Bo",
            journal="arXiv preprint arXiv:2306.05175",
            year="2023",
        ),
    ),
}
_TITLES_AND_CITATIONS: dict[str, tuple[str, str]] = {
    "forgetting": (
        "Forgetting events",
        _bib(
            "inproceedings",
            "toneva2019empirical",
            title="An Empirical Study of Example Forgetting during Deep Neural Network Learning",
            author="Toneva, Mariya and Sordoni, Alessandro and Combes, Remi Tachet des and Trischler, Adam and "
            "Bengio, Yoshua and Gordon, Geoffrey J.",
            booktitle="International Conference on Learning Representations",
            year="2019",
        ),
    ),
    "el2n": ("EL2N", _PAUL),
    "grand": ("GraNd", _PAUL),
    "aum": (
        "Area Under the Margin (AUM)",
        _bib(
            "inproceedings",
            "pleiss2020identifying",
            title="Identifying Mislabeled Data using the Area Under the Margin Ranking",
            author="Pleiss, Geoff and Zhang, Tianyi and Elenberg, Ethan and Weinberger, Kilian Q.",
            booktitle="Advances in Neural Information Processing Systems",
            year="2020",
        ),
    ),
    "cartography": ("Dataset cartography", _CARTOGRAPHY),
    "static_uncertainty": ("Static uncertainty", _CARTOGRAPHY),
    "entropy": (
        "Prediction entropy",
        _bib(
            "inproceedings",
            "coleman2020selection",
            title="Selection via Proxy: Efficient Data Selection for Deep Learning",
            author="Coleman, Cody and Yeh, Christopher and Mussmann, Stephen and Mirzasoleiman, Baharan and "
            "Bailis, Peter and Liang, Percy and Leskovec, Jure and Zaharia, Matei",
            booktitle="International Conference on Learning Representations",
            year="2020",
        ),
    ),
    "ccs": (
        "Coverage-centric coreset selection (CCS)",
        _bib(
            "inproceedings",
            "zheng2023coverage",
            title="Coverage-centric Coreset Selection for High Pruning Rates",
            author="Zheng, Haizhong and Liu, Rui and Lai, Fan and Prakash, Atul",
            booktitle="International Conference on Learning Representations",
            year="2023",
        ),
    ),
    "moderate": (
        "Moderate coreset (Moderate-DS)",
        _bib(
            "inproceedings",
            "xia2023moderate",
            title="Moderate Coreset: A Universal Method of Data Selection for Real-world Data-efficient Deep Learning",
            author="Xia, Xiaobo and Liu, Jiale and Yu, Jun and Shen, Xu and Han, Bo and Liu, Tongliang",
            booktitle="International Conference on Learning Representations",
            year="2023",
        ),
    ),
    "ssp": (
        "Self-supervised prototypes (SSP)",
        _bib(
            "inproceedings",
            "sorscher2022beyond",
            title="Beyond neural scaling laws: beating power law scaling via data pruning",
            author="Sorscher, Ben and Geirhos, Robert and Shekhar, Shashank and Ganguli, Surya and Morcos, Ari S.",
            booktitle="Advances in Neural Information Processing Systems",
            year="2022",
        ),
    ),
    "random": ("Random pruning", ""),
}


def method_info(method: str) -> MethodInfo:
    """Card text for `method`: curated for Dyn-Unc; for the other registered strategies, the first paragraph of
    their docstring with the paper's citation; for unknown names, a generic line."""
    if method in METHODS:
        return METHODS[method]
    title, citation = _TITLES_AND_CITATIONS.get(method, (f"`{method}`", ""))
    description = ""
    try:
        from ..strategies.base import _REGISTRY

        cls = _REGISTRY.classes.get(method)
        doc = inspect.getdoc(cls) if cls is not None else None
        if doc:
            description = " ".join(doc.split("\n\n")[0].split())
    except ImportError:  # pragma: no cover - the registry is part of the package
        pass
    return MethodInfo(
        title=title,
        description=description or f"The `{method}` pruning strategy of hf_prune.",
        score_name=f"the {title} score",
        citation=citation,
    )


def selection_text(params: dict[str, Any]) -> str:
    """How the kept rows were chosen from the scores, from a result's `params` (keep, selection, class_balanced)."""
    end = "highest" if params.get("keep", "high") == "high" else "lowest"
    if params.get("selection") == "ccs":
        text = (
            f"a coverage-centric (CCS, Zheng et al. 2023) stratified sample over the `score`, after dropping the "
            f"hardest end (the {end} scores)"
        )
    else:
        text = f"the rows with the **{end}** `score`"
    if params.get("class_balanced"):
        text += ", removing the same fraction from each class"
    return text


def template_path(name: str) -> Path:
    """Path of the card template `name`: the installed package data, else the checkout's `model_cards/` folder."""
    try:
        candidate = resources.files("hf_prune") / "model_cards" / name
        if candidate.is_file():
            return Path(str(candidate))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    candidate = Path(__file__).resolve().parents[2] / "model_cards" / name
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(
        f"Card template {name!r} not found in the installed package (hf_prune/model_cards/) or in the source "
        f"checkout ({candidate.parent}); reinstall hf_prune."
    )


def _size_category(n: int) -> str:
    if n < 1_000:
        return "n<1K"
    bounds = [(10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"), (10**7, "1M<n<10M")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "10M<n<100M" if n < 10**8 else "100M<n<1B"


def _model_name(record: dict[str, Any]) -> str | None:
    model = record.get("model")
    if isinstance(model, dict):
        return model.get("name_or_path") or model.get("architecture") or model.get("class")
    return model if isinstance(model, str) else None


def _plain(value: Any) -> Any:
    """JSON-able copy (numpy scalars to Python) of `value`, so it dumps cleanly to YAML."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def pruning_metadata(
    results: Sequence[PruneResult], lists: dict[str, dict], source: dict[str, Any], content_key: str | None
) -> dict[str, Any]:
    """The card's `pruning:` block for `results` (one run) and their `lists` entries."""
    from .. import __version__
    from .index_list import CHECKSUM_DEFINITION

    first = results[0]
    record = first.provenance.get("record") or {}
    epochs = first.provenance.get("num_epochs", record.get("num_train_epochs"))
    args = record.get("args") or {}
    block: dict[str, Any] = {"method": first.method}
    if len(lists) == 1:
        (entry,) = lists.values()
        block.update(prune_ratio=entry["prune_ratio"], kept=entry["kept"], index_sha256=entry["index_sha256"])
    block.update(
        index_sha256_definition=CHECKSUM_DEFINITION,
        lists=lists,
        source=source,
        content_key=content_key,
        model=_model_name(record),
        epochs=epochs,
        window=first.params.get("window"),
        seed=record.get("seed", args.get("seed")),
        params=first.params,
        training={k: args[k] for k in TRAINING_KEYS if k in args} or None,
        hf_prune_version=__version__,
    )
    return _plain(block)


def render_dataset_card(
    results: Sequence[PruneResult],
    lists: dict[str, dict],
    source: dict[str, Any],
    *,
    repo_id: str | None = None,
    content_key: str | None = None,
    all_scores: bool = False,
    license: str = "other",
    task_categories: Sequence[str] = ("image-classification",),
    pretty_name: str | None = None,
    images: Sequence[tuple[str, str]] = (),
    extra_tags: Sequence[str] = (),
) -> DatasetCard:
    """Renders the dataset card of an index-list folder from `model_cards/pruned_index_list.md`.

    Args:
        results (list of `PruneResult`): the lists of one run, the first being the default config.
        lists (`dict`): per config name, `prune_ratio`, `kept`, `removed`, `index_sha256`, `data_files`.
        source (`dict`): `repo_id, config, split, revision, num_rows, fingerprint` of the source split.
        repo_id (`str`, *optional*): where the list lives on the Hub; `"<repo_id>"` until pushed.
        images (list of `(alt text, path in the folder)`, *optional*): figures to show (histogram, data map).

    Returns:
        `huggingface_hub.DatasetCard`.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    method = results[0].method
    names = list(lists)
    configs = [
        {
            "config_name": name,
            **({"default": True} if i == 0 else {}),
            "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}],
        }
        for i, name in enumerate(names)
    ]
    if all_scores:
        configs.append({"config_name": "scores", "data_files": [{"split": "train", "path": "data/scores/*.parquet"}]})
    pruning = pruning_metadata(results, lists, source, content_key)
    source_name = source.get("repo_id") or "<source dataset>"
    title = pretty_name or f"{source_name.split('/')[-1]} pruned with {method_info(method).title}"
    tags = list(dict.fromkeys(["dataset-pruning", method, "hf-prune", *extra_tags]))
    card_data = DatasetCardData(
        license=license,
        task_categories=list(task_categories),
        tags=tags,
        pretty_name=title,
        size_categories=[_size_category(max(e["kept"] for e in lists.values()))],
        configs=configs,
        pruning=pruning,
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path(DATASET_CARD_TEMPLATE)),
        title=title,
        repo_id=repo_id or REPO_ID_PLACEHOLDER,
        source=source,
        source_name=source_name,
        method=method_info(method),
        lists=lists,
        default_config=names[0],
        has_labels=any(r.labels is not None for r in results),
        content_key=content_key,
        images=list(images),
        selection=selection_text(pruning["params"]),
        params_json=json.dumps(pruning["params"], sort_keys=True),
    )


def plot_score_histogram(results: Sequence[PruneResult], path: str | Path) -> bool:
    """Draws the score histogram of kept vs removed rows for each ratio to `path` (PNG).

    Returns `False`, writing nothing, when matplotlib is not installed or no score is finite.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scores = np.asarray(results[0].scores, dtype=np.float64)
    finite = np.isfinite(scores)
    if not finite.any():
        return False
    lo, hi = float(scores[finite].min()), float(scores[finite].max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 61)
    rows = len(results)
    fig, axes = plt.subplots(rows, 1, figsize=(6, 1.8 + 1.6 * rows), squeeze=False, sharex=True)
    for ax, r in zip(axes[:, 0], results):
        mask = r.keep_mask()
        ax.hist(scores[mask & finite], bins=bins, color="tab:blue", alpha=0.75, label=f"kept ({r.num_kept:,})")
        removed = int((~mask).sum())
        ax.hist(scores[~mask & finite], bins=bins, color="tab:red", alpha=0.6, label=f"removed ({removed:,})")
        ax.set_title(f"prune_ratio={r.prune_ratio:g} (fraction removed)", fontsize=9)
        ax.set_ylabel("rows")
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(f"{results[0].method} score")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_data_map(record, result: PruneResult, path: str | Path) -> bool:
    """Draws `record`'s data map with `result`'s removed rows (`hf_prune.plots.data_map`) to `path`.

    Returns `False`, writing nothing, when matplotlib is missing or the record has no `p_target`.
    """
    try:
        from ..plots import data_map
    except ImportError:
        return False
    if not record.has_signal("p_target") or record.num_samples != result.num_samples:
        return False
    try:
        data_map(record, result, path=Path(path))
    except ImportError:  # matplotlib is imported lazily by the plot itself
        return False
    return True


def _fmt_metric(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.2f} %" if 0 <= value <= 1 else f"{value:.4g}"


def model_card(
    index_repo_id: str,
    *,
    result: PruneResult | None = None,
    method: str | None = None,
    prune_ratio: float | None = None,
    num_kept: int | None = None,
    num_samples: int | None = None,
    index_config: str | None = None,
    accuracy: float | None = None,
    full_accuracy: float | None = None,
    metric_name: str = "accuracy",
    source: str | None = None,
    source_split: str = "train",
    eval_split: str | None = None,
    model_name: str | None = None,
    base_model: str | None = None,
    library_name: str = "transformers",
    license: str | None = None,
    pipeline_tag: str = "image-classification",
    training: dict[str, Any] | None = None,
    tags: Sequence[str] = (),
) -> ModelCard:
    """Renders the model card of a model trained on a pruned set (`model_cards/model_trained_on_pruned.md`).

    The card links the index list, states the ratio (fraction removed) and compares the metric with full-data
    training. Method, ratio, counts and source come from `result` where given; explicit arguments override them.

    Args:
        index_repo_id (`str`):
            The dataset repo of the index list (e.g. `"org/imagenet-1k-dyn-unc-25"`).
        result (`PruneResult`, *optional*):
            The result the training set was made with.
        accuracy (`float`, *optional*):
            The model's metric (a fraction in [0, 1] shows as a percentage).
        full_accuracy (`float`, *optional*):
            The same metric for the same recipe trained on the full set.
        source (`str`, *optional*):
            Repo id of the source dataset; defaults to the result's provenance.
        eval_split (`str`, *optional*):
            The split `accuracy` was measured on; with `source` and `accuracy`, adds a `model-index` entry.
        library_name (`str`, *optional*, defaults to `"transformers"`):
            `"transformers"` or `"timm"`.

    Returns:
        `huggingface_hub.ModelCard`: save it with `.save(path)` or push it with `.push_to_hub(repo_id)`.

    Example:

    ```python
    >>> from hf_prune.export import model_card
    >>> card = model_card("org/imagenet-1k-dyn-unc-25", result=result, accuracy=0.781, full_accuracy=0.786,
    ...                   eval_split="validation")
    >>> card.save("model/README.md")
    ```
    """
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.constants import ENDPOINT
    from huggingface_hub.repocard_data import EvalResult

    from .index_list import config_name_for, source_from_provenance

    if result is not None:
        method = method or result.method
        prune_ratio = result.prune_ratio if prune_ratio is None else prune_ratio
        num_kept = result.num_kept if num_kept is None else num_kept
        num_samples = result.num_samples if num_samples is None else num_samples
        src = source_from_provenance(result.provenance)
        source = source or src.get("repo_id")
        source_split = src.get("split") or source_split
        if training is None:
            args = (result.provenance.get("record") or {}).get("args") or {}
            training = {k: args[k] for k in TRAINING_KEYS if k in args} or None
    if index_config is None and prune_ratio is not None:
        index_config = config_name_for(prune_ratio)
    info = method_info(method) if method else MethodInfo(title="a pruning method", description="")
    eval_results = None
    if accuracy is not None and source and eval_split:
        eval_results = [
            EvalResult(
                task_type=pipeline_tag,
                dataset_type=source,
                dataset_name=source,
                dataset_split=eval_split,
                metric_type=metric_name,
                metric_value=float(accuracy),
            )
        ]
    trained_on = source.split("/")[-1] if source else "a training set"
    title = model_name or f"Model trained on {trained_on} pruned with {info.title}"
    card_data = ModelCardData(
        model_name=title if eval_results else model_name,
        base_model=base_model,
        datasets=[d for d in (source, index_repo_id) if d],
        library_name=library_name,
        license=license,
        metrics=[metric_name],
        pipeline_tag=pipeline_tag,
        tags=list(dict.fromkeys(["dataset-pruning", *([method] if method else []), "hf-prune", *tags])),
        eval_results=eval_results,
    )
    delta = None
    if accuracy is not None and full_accuracy is not None:
        diff = float(accuracy) - float(full_accuracy)
        both_fractions = 0 <= accuracy <= 1 and 0 <= full_accuracy <= 1
        delta = f"{100 * diff:+.2f} points" if both_fractions else f"{diff:+.4g}"
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path(MODEL_CARD_TEMPLATE)),
        title=title,
        source=source,
        source_split=source_split,
        index_repo_id=index_repo_id,
        index_url=f"{ENDPOINT}/datasets/{index_repo_id}",
        index_config=index_config,
        method=info,
        prune_ratio=prune_ratio,
        num_kept=num_kept,
        num_samples=num_samples,
        metric_name=metric_name,
        accuracy_text=_fmt_metric(accuracy),
        full_accuracy_text=_fmt_metric(full_accuracy),
        delta_text=delta,
        eval_split=eval_split,
        training=training,
    )
