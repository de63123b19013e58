"""Dataset cards of index-list folders, rendered from the Jinja template `model_cards/pruned_index_list.md` through
`huggingface_hub`'s `DatasetCard` / `DatasetCardData`.

Templates ship as package data (`hf_prune/model_cards/*.md` once installed) and are read from the source tree's
top-level `model_cards/` folder in a checkout. What a card says about the method (title, description, citation)
comes with the result itself (`result.provenance["method"]`, filled in by the strategy that made it), so rendering
a card needs no strategy registry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..provenance import jsonable
from ..version import __version__
from .index_list import CHECKSUM_DEFINITION, check_source
from .untrusted import (
    check_config_name,
    check_count,
    check_fingerprint,
    check_repo_id,
    check_revision,
    check_split,
    md_block,
    md_code,
    md_inline,
    md_text,
    py_str,
)


if TYPE_CHECKING:
    from huggingface_hub import CardData, DatasetCard, RepoCard


logger = logging.getLogger(__name__)


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
    """What a card says about a pruning method.

    Args:
        title (`str`): the method's name for people, e.g. `"Dynamic Uncertainty (Dyn-Unc)"`.
        description (`str`): a paragraph on what the score measures and which end is kept.
        score_name (`str`, *optional*): what the `score` column holds.
        citation (`str`, *optional*): BibTeX of the paper.
    """

    title: str
    description: str
    score_name: str = "the method's score"
    citation: str = ""

    @classmethod
    def from_dict(cls, info: dict[str, Any] | None, method: str | None = None) -> MethodInfo:
        """The `MethodInfo` of a result's `provenance["method"]`; a generic one for results made elsewhere."""
        info = dict(info or {})
        title = info.get("title") or (f"`{method}`" if method else "a pruning method")
        return cls(
            title=title,
            description=info.get("description") or (f"The `{method}` pruning method." if method else ""),
            score_name=info.get("score_name") or f"the {title} score",
            citation=info.get("citation") or "",
        )


def method_info(result) -> MethodInfo:
    """Card text for the method that made `result` (from `result.provenance["method"]`)."""
    return MethodInfo.from_dict(result.provenance.get("method"), result.method)


def trusted_method_info(method: str, info: Any) -> dict[str, str]:
    """The card text of `method` as read from a list made elsewhere, made safe to render: title, description and
    score name keep harmless inline formatting but no HTML, link, image or block markup (`untrusted.md_inline`), the
    citation cannot close its fence (`md_block`). hf_prune's own method texts pass unchanged."""
    info = info if isinstance(info, dict) else {}
    out = {"name": method}
    for key in ("title", "description", "score_name"):
        if info.get(key):
            out[key] = md_inline(info[key])
    if info.get("citation"):
        out["citation"] = md_block(info["citation"])
    return out


# Fields of a run record that `provenance.source_from_provenance` reads as the source's ids, with their grammar.
_RECORD_SOURCE_FIELDS = {
    "dataset_name": check_repo_id,
    "dataset_repo_id": check_repo_id,
    "dataset_config": check_config_name,
    "dataset_config_name": check_config_name,
    "dataset_split": check_split,
    "dataset_revision": check_revision,
    "dataset_fingerprint": check_fingerprint,
}


def trusted_provenance(provenance: dict[str, Any], method: str, where: str) -> dict[str, Any]:
    """A list's saved provenance made safe to use: `source` checked like the card's (`check_source`), the record's
    source fields that do not fit their grammar left out (they would be used as a repo id, a revision...), `subset`'s
    counts checked, and the method's card text from `trusted_method_info`.

    Raises:
        `ValueError`: a malformed `source` or `subset`, naming `where` and the field.
    """
    provenance = dict(provenance or {})
    if provenance.get("source") is not None:
        if not isinstance(provenance["source"], dict):
            raise ValueError(f"{where}: `provenance.source` must be a mapping; restore the file or delete it.")
        check_source(provenance["source"], "provenance.source", where, require_rows=False)
    record = provenance.get("record")
    if isinstance(record, dict):
        ignored = []
        for key, check in _RECORD_SOURCE_FIELDS.items():
            if record.get(key) is not None:
                try:
                    check(record[key], key, where)
                except ValueError:
                    ignored.append(key)
        if ignored:
            logger.warning(
                f"{where}: `provenance.record` fields {ignored} are not valid ids; they are left out, not used as the "
                "source's repo id, config, split or revision."
            )
            provenance["record"] = {k: v for k, v in record.items() if k not in ignored}
    subset = provenance.get("subset")
    if subset is not None:
        if not isinstance(subset, dict):
            raise ValueError(f"{where}: `provenance.subset` must be a mapping; restore the file or delete it.")
        for key in ("num_rows", "num_source_rows"):
            if subset.get(key) is not None:
                check_count(subset[key], f"provenance.subset.{key}", where)
        span = subset.get("range")
        if span is not None and not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)):
            raise ValueError(f"{where}: `provenance.subset.range` must be [start, stop]; got {span!r:.60}.")
    if "method" in provenance:
        provenance["method"] = trusted_method_info(method, provenance["method"])
    return provenance


def selection_text(params: dict[str, Any]) -> str:
    """How the kept rows were chosen from the scores, from a result's `params` (keep, selection, class_balanced)."""
    end = "highest" if params.get("keep", "high") == "high" else "lowest"
    if params.get("selection") == "ccs":
        text = (
            f"a coverage-centric (CCS, Zheng et al. 2023) stratified sample over the `score`, after dropping the "
            f"hardest end (the {end} scores)"
        )
    elif params.get("selection") == "s2l":
        text = (
            "a sample spread as evenly as possible over k-means clusters of the loss trajectories (S2L, Yang et al. "
            "2024); `score` is the cluster, numbered from the smallest"
        )
    else:
        text = f"the rows with the **{end}** `score`"
    if params.get("class_balanced"):
        text += ", removing the same fraction from each class"
    return text


def _gallery_ends(params: dict[str, Any]) -> dict[str, str]:
    """Which end of the scores a gallery shows first in its removed and kept blocks (as `hf_prune.gallery` orders
    them), from a result's `params`."""
    low_first = (params.get("keep", "high") != "low") != (params.get("selection") == "ccs")  # CCS cuts the hard end
    return {"removed": "lowest" if low_first else "highest", "kept": "highest" if low_first else "lowest"}


def render_card(card_class: type[RepoCard], card_data: CardData, template: str, **template_kwargs: Any) -> RepoCard:
    """`card_class.from_template(card_data, template_path=template_path(template), **template_kwargs)`, with four
    Jinja filters for text a card shows that may come from a list or a card read from elsewhere: `py` (a Python
    string literal, for code snippets), `code` (an inline code span), `text` (escaped plain text) and `block` (the
    body of a fenced block). The YAML header is `card_data.to_yaml()`, as in `from_template`."""
    import jinja2

    environment = jinja2.Environment()  # the defaults of `jinja2.Template`, which `from_template` uses
    environment.filters.update(py=py_str, code=md_code, text=md_text, block=md_block)
    source = template_path(template).read_text(encoding="utf-8")
    kwargs = {**card_data.to_dict(), **template_kwargs}
    return card_class(environment.from_string(source).render(card_data=card_data.to_yaml(), **kwargs))


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
    """The model as the run named it (`--model_name_or_path`, e.g. the `swin_fmnist` preset), else its checkpoint,
    timm architecture or class."""
    if record.get("model_name_or_path"):
        return str(record["model_name_or_path"])
    model = record.get("model")
    if isinstance(model, dict):
        return model.get("name_or_path") or model.get("architecture") or model.get("class")
    return model if isinstance(model, str) else None


def _model_parameters(record: dict[str, Any]) -> int | None:
    model = record.get("model")
    return model.get("num_parameters") if isinstance(model, dict) else None


def pruning_metadata(
    results: Sequence, lists: dict[str, dict], source: dict[str, Any], content_key: str | None
) -> dict[str, Any]:
    """The card's `pruning:` block for `results` (one run) and their `lists` entries."""
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
        model_num_parameters=_model_parameters(record),
        epochs=epochs,
        window=first.params.get("window"),
        seed=record.get("seed", args.get("seed")),
        params=first.params,
        training={k: args[k] for k in TRAINING_KEYS if k in args} or None,
        subset=first.provenance.get("subset"),
        hf_prune_version=__version__,
    )
    return jsonable(block)


def features_info(columns: dict[str, str], label_names: Sequence[str] | None) -> dict[str, Any]:
    """The `dataset_info.features` YAML of a list's columns (name -> Value dtype), the label as a `ClassLabel`."""
    features = []
    for name, dtype in columns.items():
        if name == "label" and label_names:
            features.append({"name": name, "dtype": {"class_label": {"names": dict(enumerate(map(str, label_names)))}}})
        else:
            features.append({"name": name, "dtype": dtype})
    return {"features": features}


def render_dataset_card(
    results: Sequence,
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
    galleries: Sequence[tuple[str, str]] = (),
    extra_tags: Sequence[str] = (),
    license_name: str | None = None,
    license_link: str | None = None,
    label_names: Sequence[str] | None = None,
) -> DatasetCard:
    """Renders the dataset card of an index-list folder from `model_cards/pruned_index_list.md`.

    Args:
        results (list of `PruneResult`): the lists of one run, the first being the default config.
        lists (`dict`): per config name, `prune_ratio`, `kept`, `removed`, `index_sha256`, `data_files`.
        source (`dict`): `repo_id, config, split, revision, num_rows, fingerprint` of the source split.
        repo_id (`str`, *optional*): where the list lives on the Hub; `"<repo_id>"` until pushed.
        images (list of `(alt text, path in the folder)`, *optional*): figures to show (histogram, data map).
        galleries (list of `(config name, path in the folder)`, *optional*): the gallery of each config (removed and
            kept examples per class, `hf_prune.gallery.removed_gallery`), shown under "What was removed".
        license_name, license_link (`str`, *optional*): for `license="other"`; default to the source dataset's
            license, linked to its page.
        label_names (sequence of `str`, *optional*): class names of the `label` column (a `ClassLabel` feature).

    Returns:
        `huggingface_hub.DatasetCard`.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    method = results[0].method
    check_source(source, "source", "render_dataset_card", require_rows=False)
    info = method_info(results[0])
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
    repo = source.get("repo_id")
    if repo is not None:
        check_repo_id(repo, "source.repo_id", "render_dataset_card")
    source_name = repo or source.get("local_name") or "the source dataset"
    named = source_name.split("/")[-1]
    title = pretty_name or (
        f"{named} pruned with {info.title}" if repo or source.get("local_name") else f"Pruned index list ({info.title})"
    )
    heading = pretty_name or (
        f"{md_text(named)} pruned with {info.title}" if repo or source.get("local_name")
        else f"Pruned index list ({info.title})"
    )  # fmt: skip
    tags = list(dict.fromkeys(["dataset-pruning", method, "hf-prune", *extra_tags]))
    licensing: dict[str, Any] = {}
    if license == "other":
        licensing["license_name"] = license_name or "same-as-source-dataset"
        link = license_link or (f"https://huggingface.co/datasets/{repo}" if repo else None)
        if link:
            licensing["license_link"] = link
    columns = {"index": "int64", "score": "float32"}
    if any(r.labels is not None for r in results):
        columns["label"] = "int64"
    if content_key:
        columns[content_key] = "string"
    feature_info = features_info(columns, label_names)
    card_data = DatasetCardData(
        license=license,
        **licensing,
        task_categories=list(task_categories),
        tags=tags,
        pretty_name=title,
        size_categories=[_size_category(max(e["kept"] for e in lists.values()))],
        source_datasets=[repo] if repo else None,
        configs=configs,
        dataset_info=[{"config_name": name, **json.loads(json.dumps(feature_info))} for name in names],  # no YAML anchors
        pruning=pruning,
    )
    return render_card(
        DatasetCard,
        card_data,
        DATASET_CARD_TEMPLATE,
        title=heading,
        repo_id=repo_id or REPO_ID_PLACEHOLDER,
        source=source,
        source_name=source_name,
        source_repo=repo,
        subset=pruning.get("subset"),
        method=info,
        lists=lists,
        default_config=names[0],
        has_labels=any(r.labels is not None for r in results),
        content_key=content_key,
        images=list(images),
        galleries=[(check_config_name(name, "galleries", "render_dataset_card"), path) for name, path in galleries],
        gallery_ends=_gallery_ends(pruning["params"]),
        selection=selection_text(pruning["params"]),
        params_json=json.dumps(pruning["params"], sort_keys=True),
    )
