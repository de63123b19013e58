"""Model cards for models trained on a pruned set, rendered from `model_cards/model_trained_on_pruned.md` through
`huggingface_hub`'s `ModelCard` / `ModelCardData`: the card links the index list, states the ratio (fraction
removed) and compares the metric with full-data training."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..provenance import source_from_provenance
from .cards import MODEL_CARD_TEMPLATE, TRAINING_KEYS, MethodInfo, method_info, render_card
from .index_list import config_name_for
from .untrusted import check_config_name, check_repo_id, check_split, md_code, md_text, py_str, repo_id_or_none


if TYPE_CHECKING:
    from huggingface_hub import ModelCard


def _fmt_metric(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.2f} %" if 0 <= value <= 1 else f"{value:.4g}"


def model_card(
    index_repo_id: str,
    *,
    result=None,
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
    Repo ids, splits and config names are checked against the Hub's and `datasets`' grammars before they are
    rendered, and every value shown in code or a snippet is escaped (`hf_prune.export.untrusted`).

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

    Raises:
        `ValueError`: `index_repo_id` or the source (given or from the result's provenance) is not a Hub repo id, or a
            split or config name is malformed; the message names it.

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
    check_repo_id(index_repo_id, "index_repo_id", "model_card")
    if source is not None:
        check_repo_id(source, "source", "model_card")
    check_split(source_split, "source_split", "model_card")
    if eval_split is not None:
        check_split(eval_split, "eval_split", "model_card")
    if index_config is not None:
        check_config_name(index_config, "index_config", "model_card")
    info = method_info(result) if result is not None and method == result.method else MethodInfo.from_dict({}, method)
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
    return render_card(
        ModelCard,
        card_data,
        MODEL_CARD_TEMPLATE,
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


def pruning_card_section(
    *,
    pruned_list=None,
    index_repo_id: str | None = None,
    dynamic: dict[str, Any] | None = None,
    num_trained: int | None = None,
    num_samples: int | None = None,
    record_repo_id: str | None = None,
    full_data_metrics: dict[str, float] | None = None,
    metrics: dict[str, float] | None = None,
) -> tuple[str, list[str], list[str]]:
    """The "Trained on a pruned dataset" section that `PruningTrainer.create_model_card` adds to Trainer's card.

    Args:
        pruned_list (`PruneResult`, *optional*): the list the training set was made with.
        index_repo_id (`str`, *optional*): where that list is published (a Hub dataset repo id).
        dynamic (`dict`, *optional*): a dynamic run's `policy`, `prune_ratio`, `pruning_period`.
        num_trained, num_samples (`int`, *optional*): rows trained on, rows of the unpruned split.
        record_repo_id (`str`, *optional*): dataset repo holding the score record, if published.
        full_data_metrics, metrics (`dict`, *optional*): the same metrics of full-data training and of this model.

    Returns:
        `(markdown, tags, datasets)`: the section, the tags and the dataset ids to add to the card's metadata.

    Raises:
        `ValueError`: `index_repo_id` or `record_repo_id` is not a Hub repo id. A source repo id in the list's
            provenance that is not one is left out of the section (with a warning), never rendered.
    """
    from huggingface_hub.constants import ENDPOINT

    for name, value in (("index_repo_id", index_repo_id), ("score_record_repo_id", record_repo_id)):
        if value is not None:
            check_repo_id(value, name, "the model card")
    lines, tags, datasets = ["## Trained on a pruned dataset", ""], ["dataset-pruning", "hf-prune"], []
    if pruned_list is not None:
        info = method_info(pruned_list)
        src = source_from_provenance(pruned_list.provenance)
        source = repo_id_or_none(src.get("repo_id"), "the pruned list's source repo id (`provenance.source.repo_id`)")
        split = src.get("split") or "train"
        kept, n = pruned_list.num_kept, pruned_list.num_samples
        scored = int((pruned_list.provenance.get("subset") or {}).get("num_rows", n))
        where = md_code(source) if source else "its training split"
        config = config_name_for(pruned_list.prune_ratio)
        lines.append(
            f"This model was trained on a **pruned** copy of {where} (split {md_code(split)}): "
            f"{kept:,} of {scored:,} rows kept, selected with {info.title}; `prune_ratio` = {pruned_list.prune_ratio:g} "
            "is the fraction **removed**."
        )
        if index_repo_id:
            lines += ["", f"The kept rows are the index list [{md_code(index_repo_id)}]({ENDPOINT}/datasets/{index_repo_id}) "
                      f"(config {md_code(config)}):", "", "```python", "from datasets import load_dataset", "",
                      f'keep = load_dataset({py_str(index_repo_id)}, {py_str(config)}, '
                      'split="train").with_format("numpy")["index"][:]',
                      f'train = load_dataset({py_str(source or "<source dataset>")}, split={py_str(split)}).select(keep)',
                      "```"]  # fmt: skip
            datasets.append(index_repo_id)
        if source:
            datasets.insert(0, source)
        tags.append(pruned_list.method)
    elif dynamic:
        lines.append(
            f"This model was trained with **dynamic data pruning** ({md_code(dynamic.get('policy'))}): every "
            f"{dynamic.get('pruning_period', 1)} epoch(s) the policy re-selected the training subset, removing "
            f"{100 * float(dynamic.get('prune_ratio', 0)):g} % of the rows from each pruned epoch."
        )
        tags += ["dynamic-data-pruning", str(dynamic.get("policy"))]
    elif num_trained is not None and num_samples is not None and num_trained < num_samples:
        lines.append(f"This model was trained on {num_trained:,} of the {num_samples:,} rows of its training split.")
    else:
        lines.append("This model was trained on its full training split.")
    if metrics and full_data_metrics:
        shared = [k for k in metrics if k in full_data_metrics]
        if shared:
            lines += ["", "| metric | pruned | full data |", "|---|---|---|"]
            lines += [
                f"| {md_text(k)} | {_fmt_metric(metrics[k])} | {_fmt_metric(full_data_metrics[k])} |" for k in shared
            ]
    lines += ["", "Per-sample training dynamics were recorded with hf_prune's `PruningTrainer`; the score record is "
              + (f"published separately in [{md_code(record_repo_id)}]({ENDPOINT}/datasets/{record_repo_id})."
                 if record_repo_id else "not part of this repository.")]  # fmt: skip
    return "\n".join(lines) + "\n", tags, datasets
