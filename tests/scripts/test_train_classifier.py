"""scripts/train_classifier.py, run for real on a tiny labelled corpus from a tiny saved language model."""

import json

import pytest
import torch
from huggingface_hub import ModelCard
from resume_helpers import TRACKING_ARGS, assert_same_run, resume
from transformers import AutoModelForSequenceClassification, pipeline

from ulmfit import AwdLstmTokenizer
from ulmfit.model_card import check_hub_metadata
from ulmfit.training.script_steps import UsageError


@pytest.fixture
def script(load_script):
    return load_script("train_classifier")


@pytest.fixture
def reviews(tmp_path, corpus):
    path = tmp_path / "reviews.csv"
    rows = [f'"{text}",{"pos" if i % 2 else "neg"}' for i, text in enumerate(corpus * 2)]
    path.write_text("review,sentiment\n" + "\n".join(rows))
    return path


def common_args(saved_lm, reviews):
    return [
        "--model_name_or_path",
        saved_lm,
        "--train_file",
        reviews,
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--per_device_train_batch_size",
        6,
        "--unfreeze",
        "1,all",
        "--learning_rates",
        "1e-2,5e-3",
        "--epochs",
        "1,2",
        "--validation_split_percentage",
        25,
    ]


def test_gradual_unfreezing_trains_and_saves_a_pipeline_ready_classifier(script, saved_lm, reviews, tmp_path, capsys):
    out = tmp_path / "classifier"
    three_stages = ["--unfreeze", "1,2,all", "--learning_rates", "1e-2,5e-3,1e-3", "--epochs", "1,1,1"]
    script([*common_args(saved_lm, reviews), *three_stages, "--output_dir", out])
    printed = capsys.readouterr().out
    assert "labels: ['neg', 'pos']" in printed
    assert "epoch 0 (unfreeze_1)" in printed and "epoch 2 (unfreeze_all)" in printed
    results = json.loads((out / "all_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1 and results["train_steps"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["output_dropout"] == pytest.approx(0.2)
    assert "pipeline_tag: text-classification" in (out / "README.md").read_text()
    card = ModelCard.load(out / "README.md")
    check_hub_metadata(card)  # the local language model and reviews.csv are named in the prose only
    assert card.data.base_model is None and f"`{saved_lm}`" in card.text and "`reviews.csv`" in card.text
    assert {(r.dataset_name, r.dataset_split) for r in card.data.eval_results} == {
        ("held-out 25% of reviews.csv", "validation")
    }
    assert pipeline("text-classification", model=str(out))("I loved it.")[0]["label"] in {"neg", "pos"}


def test_with_tracking_starts_the_trackers_logs_every_evaluation_and_ends_them(
    script, saved_lm, reviews, tmp_path, tracking_calls
):
    calls = tracking_calls
    out = tmp_path / "tracked"
    script([*common_args(saved_lm, reviews), "--epochs", "1,1", "--output_dir", out, *TRACKING_ARGS])
    names = [name for name, _ in calls]
    assert names[0] == "init_trackers" and names[-1] == "end_training" and "log" in names
    project, config = calls[0][1]
    assert project == "train_classifier" and config["report_to"] == "tensorboard" and "hub_token" not in config
    assert all(isinstance(value, (int, float)) for name, args in calls if name == "log" for value in args[0].values())


def test_with_tracking_writes_tensorboard_event_files(script, saved_lm, reviews, tmp_path):
    out = tmp_path / "tracked"
    script([*common_args(saved_lm, reviews), "--epochs", "1,1", "--output_dir", out, *TRACKING_ARGS])
    assert list((out / "train_classifier").rglob("events.out.tfevents.*"))


def test_bf16_mixed_precision_trains_and_evaluates_on_the_cpu(script, saved_lm, reviews, tmp_path):
    out = tmp_path / "classifier"
    script([*common_args(saved_lm, reviews), "--mixed_precision", "bf16", "--output_dir", out])
    log = json.loads((out / "training_log.json").read_text())
    assert len(log) == 3 and all(0 <= row["accuracy"] <= 1 for row in log)  # evaluated after every epoch
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.dtype == torch.float32  # autocast trains float32 weights, and they are saved as such


def test_validation_labels_never_seen_in_training_fail_clearly(script, saved_lm, corpus, tmp_path):
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    train.write_text("text,label\n" + "\n".join(f'"{t}",{"pos" if i % 2 else "neg"}' for i, t in enumerate(corpus)))
    valid.write_text("text,label\n" + "\n".join(f'"{t}",neutral' for t in corpus[:4]))
    with pytest.raises(ValueError, match=r"\['neutral'\] never occur in the training data"):
        script(
            [
                "--model_name_or_path",
                saved_lm,
                "--train_file",
                train,
                "--validation_file",
                valid,
                "--output_dir",
                tmp_path / "out",
            ]
        )


def test_a_folder_whose_tokenizer_is_larger_than_its_model_fails_before_training(
    script, saved_lm, reviews, corpus, tmp_path
):
    # the tokenizer of a larger vocabulary saved over the model's own: its high ids would mean nothing to the model
    AwdLstmTokenizer.train([*corpus, *(f"word{i}" for i in range(40))], min_freq=1).save_pretrained(saved_lm)
    with pytest.raises(UsageError, match=r"--model_name_or_path: .*tokenizer.*\d+.*\d+"):
        script(common_args(saved_lm, reviews) + ["--output_dir", tmp_path / "out"])
    assert not (tmp_path / "out").exists()


def test_stage_options_must_line_up(script, saved_lm, reviews, tmp_path):
    with pytest.raises(ValueError, match="one value per stage"):
        script([*common_args(saved_lm, reviews), "--epochs", "1"])  # two stages, one epoch count


def test_a_run_resumed_mid_epoch_or_at_a_stage_boundary_ends_with_the_same_weights(
    script, saved_lm, reviews, tmp_path
):
    args = common_args(saved_lm, reviews)
    reference = tmp_path / "reference"
    script([*args, "--output_dir", reference, "--checkpointing_steps", 1])
    steps_per_epoch = json.loads((reference / "training_log.json").read_text())[0]["step"]
    assert steps_per_epoch > 2
    # dropout masks, batch order (also mid-way through a later epoch), one-cycle, frozen groups
    for checkpoint in ("step_2", f"step_{steps_per_epoch}", f"step_{2 * steps_per_epoch + 1}"):
        assert_same_run(resume(script, args, reference, checkpoint, tmp_path), reference)


def test_epoch_checkpoints_resume_and_push_to_hub_uploads_the_classifier_then_its_card(
    script, saved_lm, reviews, tmp_path, fake_hub
):
    remote, uploads = fake_hub
    args = common_args(saved_lm, reviews)
    reference = tmp_path / "reference"
    script([*args, "--output_dir", reference, "--checkpointing_steps", "epoch"])
    again = ["--overwrite_output_dir", "--push_to_hub", "--hub_model_id", "me/tiny-ulmfit"]  # a second run there
    script([*args, "--output_dir", reference, *again])
    assert_same_run(resume(script, args, reference, "epoch_1", tmp_path), reference)

    pushed = remote / "me" / "tiny-ulmfit"
    assert uploads == ["folder", "README.md"]  # the card last, so that nothing overwrites it
    assert not list(pushed.glob("epoch_*")) and list(reference.glob("epoch_*"))  # checkpoints stay local
    card = (pushed / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "model-index" in card
    reloaded = AutoModelForSequenceClassification.from_pretrained(pushed)
    assert reloaded.config.id2label == {0: "neg", 1: "pos"}


def test_checkpointing_steps_must_be_a_number_or_epoch(script, saved_lm, reviews, tmp_path):
    with pytest.raises(ValueError, match="--checkpointing_steps"):
        script([*common_args(saved_lm, reviews), "--output_dir", tmp_path / "out", "--checkpointing_steps", "often"])
