"""The Hub side of `PruningTrainer`: what its `push_to_hub`, `_push_from_checkpoint` and `create_model_card`
overrides do.

Trainer uploads the whole `output_dir` (and, with `hub_strategy="checkpoint"`, the checkpoint folder), so the score
record and its checkpoint copies would land in the model repo. These functions run Trainer's own flows with the
record left out (`hub_ignore_patterns`; `score_record_repo_id=` publishes it to a dataset repo of its own), and write
Trainer's model card (`TrainingSummary`) with what Trainer cannot know: how the training set was pruned
(`hf_prune.export.model_card.pruning_card_section`). Each takes the trainer, as `TrainingSummary.from_trainer` does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging
from transformers.utils.hub import PushInProgress

from .run_record import CHECKPOINT_DYNAMIC_DIR, CHECKPOINT_PARTIAL_DIR, CHECKPOINT_RECORD_DIR


__all__ = ["create_pruning_model_card", "hub_ignore_patterns", "push_checkpoint_without_record",
           "push_without_record"]  # fmt: skip

logger = logging.get_logger(__name__)

# What Trainer leaves out of its upload of output_dir.
TRAINER_IGNORE_PATTERNS = ["_*", f"{PREFIX_CHECKPOINT_DIR}-*"]


def hub_ignore_patterns(args) -> list[str]:
    """The score record (`<score_record_dir>/`) and its checkpoint copies, as `upload_folder` ignore patterns: a model
    repo gets the model, not the record (publish that with `score_record_repo_id=`, or a pruned list with
    `hf-prune push`). fnmatch's `*` also matches `/`, so `*/score_record/*` covers every checkpoint's copy."""
    record = getattr(args, "score_record_dir", "scores").strip("/")
    ours = [CHECKPOINT_RECORD_DIR, CHECKPOINT_PARTIAL_DIR, CHECKPOINT_DYNAMIC_DIR]
    return [f"{record}/*", *[f"{d}/*" for d in ours], *[f"*/{d}/*" for d in ours]]


def push_without_record(trainer, commit_message, blocking, token, revision, private, score_record_repo_id, **kwargs):
    """`Trainer.push_to_hub`'s flow (save, card, one upload of `output_dir`) with the record left out of the upload,
    and, with `score_record_repo_id`, the record published to a dataset repo first (its link goes into the card)."""
    from huggingface_hub import HfApi

    args = trainer.args
    trainer.callback_handler.on_push_begin(args, trainer.state, trainer.control)
    model_name = kwargs.pop("model_name", None)
    if model_name is None and args.should_save:
        model_name = (args.hub_model_id or args.output_dir).rstrip("/").split("/")[-1]
    token = token if token is not None else args.hub_token
    if trainer.hub_model_id is None:
        trainer.init_hf_repo(token=token, private=private)
    trainer.save_model(_internal_call=True)
    if not trainer.is_world_process_zero():
        return None
    record_url = None
    if score_record_repo_id is not None:
        api = HfApi(token=token)
        api.create_repo(score_record_repo_id, repo_type="dataset", private=private, exist_ok=True)
        record_url = api.upload_folder(
            repo_id=score_record_repo_id, repo_type="dataset", folder_path=str(trainer.score_record_path),
            path_in_repo="scores", commit_message="Score record (hf_prune PruningTrainer)",
        )  # fmt: skip
    trainer.create_model_card(model_name=model_name, score_record_repo_id=score_record_repo_id, **kwargs)
    trainer._finish_current_push()
    commit = HfApi(token=token).upload_folder(
        repo_id=trainer.hub_model_id, folder_path=args.output_dir, commit_message=commit_message,
        run_as_future=not blocking, ignore_patterns=TRAINER_IGNORE_PATTERNS + hub_ignore_patterns(args),
        revision=revision if revision is not None else args.hub_revision,
    )  # fmt: skip
    if record_url is not None:
        logger.info(f"Score record pushed to {score_record_repo_id}: {record_url}")
    return commit


def push_checkpoint_without_record(trainer, checkpoint_folder: str) -> None:
    """`Trainer._push_from_checkpoint`'s uploads at a save with `hub_strategy="every_save"` / `"checkpoint"` /
    `"all_checkpoints"` (`output_dir`, and the checkpoint folder), without the record. Model files are copied from
    the checkpoint into `output_dir` as Trainer copies them."""
    from huggingface_hub import HfApi
    from transformers.trainer_utils import HubStrategy
    from transformers.utils import CONFIG_NAME, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME

    args = trainer.args
    if not trainer.is_world_process_zero() or args.hub_strategy == HubStrategy.END:
        return
    if not args.hub_always_push and trainer.push_in_progress is not None and not trainer.push_in_progress.is_done():
        return
    trainer.callback_handler.on_push_begin(args, trainer.state, trainer.control)
    output_dir = args.output_dir
    files = [CONFIG_NAME, WEIGHTS_NAME, SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME]
    index = Path(checkpoint_folder) / SAFE_WEIGHTS_INDEX_NAME
    if index.is_file():
        files += sorted(set(json.loads(index.read_text())["weight_map"].values()))
    for name in files:
        if (Path(checkpoint_folder) / name).is_file():
            shutil.copy(Path(checkpoint_folder) / name, Path(output_dir) / name)
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(output_dir)
    message = f"Training in progress, step {trainer.state.global_step}"
    api = HfApi(token=args.hub_token)
    ignore = hub_ignore_patterns(args)
    jobs = [api.upload_folder(repo_id=trainer.hub_model_id, folder_path=output_dir, commit_message=message,
                              run_as_future=True, ignore_patterns=TRAINER_IGNORE_PATTERNS + ignore,
                              revision=args.hub_revision)]  # fmt: skip
    if args.hub_strategy in (HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS):
        path_in_repo = "last-checkpoint" if args.hub_strategy == HubStrategy.CHECKPOINT else Path(checkpoint_folder).name
        jobs.append(api.upload_folder(repo_id=trainer.hub_model_id, folder_path=checkpoint_folder,
                                      path_in_repo=path_in_repo, commit_message=message + ", checkpoint",
                                      run_as_future=True, ignore_patterns=ignore,
                                      revision=args.hub_revision))  # fmt: skip
    if trainer.push_in_progress is None or trainer.push_in_progress.is_done():
        trainer.push_in_progress = PushInProgress(jobs)
    else:
        trainer.push_in_progress.jobs.extend(jobs)


def create_pruning_model_card(
    trainer,
    language=None,
    license=None,
    tags=None,
    model_name=None,
    finetuned_from=None,
    tasks=None,
    dataset_tags=None,
    dataset=None,
    dataset_args=None,
    *,
    pruned_list=None,
    index_repo_id=None,
    full_data_metrics=None,
    score_record_repo_id=None,
    dynamic=None,
) -> None:
    """Writes `<output_dir>/README.md`: Trainer's card (`TrainingSummary.from_trainer`) with the "Trained on a pruned
    dataset" section, the pruning tags and the source dataset and list in `datasets:`. See
    `PruningTrainer.create_model_card` for the arguments; `dynamic` (`dict`, *optional*) is the dynamic policy the run
    used (`policy`, `prune_ratio`, `pruning_period`), from `DynamicPruningTrainer`."""
    from huggingface_hub import ModelCard
    from transformers.modelcard import TrainingSummary

    from .export.model_card import pruning_card_section  # the card templates: loaded when a card is written
    from .export.untrusted import repo_id_or_none

    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    name_or_path = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    if finetuned_from is None and name_or_path and not os.path.isdir(name_or_path):
        finetuned_from = name_or_path
    source = None
    if pruned_list is not None:
        source = (pruned_list.provenance.get("source") or {}).get("repo_id")
    # goes into the card's `datasets:` and text: a provenance value that is not a Hub repo id is left out, not rendered
    source = repo_id_or_none(source or trainer.record_metadata.get("dataset_repo_id"), "the training set's repo id")
    if dataset is None and source:
        dataset = [source]
    if dataset_tags is None and (dataset is not None or not getattr(trainer.train_dataset, "builder_name", None)):
        # Trainer names the dataset after its builder; a dataset built in memory has none ("the None dataset")
        dataset_tags = dataset if dataset is not None else []
    last_log = (trainer.state.log_history or [{}])[-1]
    metrics = {k.removeprefix("eval_"): v for k, v in last_log.items() if k.startswith("eval_")}
    train_dataset = trainer.train_dataset
    section, extra_tags, extra_datasets = pruning_card_section(
        pruned_list=pruned_list, index_repo_id=index_repo_id, dynamic=dynamic,
        num_trained=len(train_dataset) if hasattr(train_dataset, "__len__") else None,
        num_samples=trainer.num_samples, record_repo_id=score_record_repo_id,
        full_data_metrics=full_data_metrics, metrics=metrics,
    )  # fmt: skip
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    tags += [t for t in extra_tags if t not in tags]
    summary = TrainingSummary.from_trainer(
        trainer, language=language, license=license, tags=tags, model_name=model_name, finetuned_from=finetuned_from,
        tasks=tasks, dataset_tags=dataset_tags, dataset=dataset, dataset_args=dataset_args,
    )  # fmt: skip
    if not finetuned_from:
        summary.finetuned_from = None  # from_trainer reads "" as a base model: "fine-tuned version of []"
    card = ModelCard(summary.to_model_card())
    card.data.datasets = list(dict.fromkeys([*(card.data.datasets or []), *extra_datasets])) or None
    heading = "\n## Model description"
    text = card.text
    card.text = text.replace(heading, "\n" + section + heading, 1) if heading in text else text + "\n" + section
    card.save(os.path.join(trainer.args.output_dir, "README.md"))
