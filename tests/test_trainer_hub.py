"""`PruningTrainer.push_to_hub` against the loopback Hub: the score record stays out of the model repo (at every
checkpoint push too) and goes to a dataset repo only when asked; the model card is Trainer's own, with the pruned
list, method, ratio, kept count and tags, "trained from scratch" for a model built from config."""

import pytest

from tests.hub_fixtures import hub, run_with_hub  # noqa: F401  (registers the fixture)


@pytest.mark.slow
def test_push_leaves_the_record_out_and_the_card_says_how_the_data_was_pruned(hub, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    run_with_hub(hub, f"""
        from hf_prune import PruningArguments, PruningTrainer, get_strategy
        from tests.trainer_utils import collate, small_image_dataset, timm_model

        full = small_image_dataset(48)
        args = PruningArguments(output_dir={str(out)!r}, num_train_epochs=3, per_device_train_batch_size=16,
                                report_to=[], remove_unused_columns=False, save_strategy="epoch", disable_tqdm=True,
                                use_cpu=True, push_to_hub=True, hub_model_id="testuser/scorer")
        scorer = PruningTrainer(model=timm_model(), args=args, train_dataset=full, data_collator=collate)
        scorer.train()                                   # pushes at every checkpoint (hub_strategy="every_save")
        scorer.push_to_hub(score_record_repo_id="testuser/scorer-record")
        args.hub_strategy, args.output_dir = "checkpoint", {str(tmp_path / "run_ckpt")!r}
        PruningTrainer(model=timm_model(), args=args, train_dataset=full, data_collator=collate).train()
        result = get_strategy("dyn_unc", window=2).select(scorer.score_record, prune_ratio=0.25)
        result.provenance["source"] = {{"repo_id": "zalando-datasets/fashion_mnist", "split": "train"}}
        args2 = PruningArguments(output_dir={str(out / "pruned")!r}, num_train_epochs=1, per_device_train_batch_size=16,
                                 report_to=[], remove_unused_columns=False, save_strategy="no", disable_tqdm=True,
                                 use_cpu=True, hub_model_id="testuser/pruned-model")
        trainer = PruningTrainer(model=timm_model(), args=args2, train_dataset=result.apply(full), data_collator=collate)
        trainer.train()
        trainer.push_to_hub(pruned_list=result, index_repo_id="testuser/fmnist-dyn-unc")
    """, timeout=600)  # fmt: skip
    scorer_files = hub.server.files("testuser/scorer", "model")
    assert "model.safetensors" in scorer_files and "README.md" in scorer_files
    assert "last-checkpoint/model.safetensors" in scorer_files  # hub_strategy="checkpoint" pushed the checkpoint...
    leaked = [f for f in scorer_files if "scores/" in f or "score_record" in f or "dynamic_pruning" in f or f.endswith(".npy")]
    assert not leaked, f"the record went into the model repo: {leaked}"
    record_files = hub.server.files("testuser/scorer-record", "dataset")
    assert "scores/record.json" in record_files and "scores/p_target.npy" in record_files

    card = hub.server.files("testuser/pruned-model", "model")["README.md"].decode()
    assert "fine-tuned version of [](" not in card and "the None dataset" not in card
    assert "trained from scratch" in card
    assert "## Trained on a pruned dataset" in card and "36 of 48 rows kept" in card and "`prune_ratio` = 0.25" in card
    assert "testuser/fmnist-dyn-unc" in card and "Dynamic Uncertainty" in card
    for tag in ("dataset-pruning", "hf-prune", "dyn_unc", "generated_from_trainer"):
        assert f"- {tag}" in card
    assert "- zalando-datasets/fashion_mnist" in card  # datasets: in the metadata
    assert not [f for f in hub.server.files("testuser/pruned-model", "model") if f.startswith("scores/")]
    scorer_card = scorer_files["README.md"].decode()
    assert "testuser/scorer-record" in scorer_card and "trained on its full training split" in scorer_card
