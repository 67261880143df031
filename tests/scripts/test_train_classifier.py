"""scripts/train_classifier.py, run for real on a tiny labelled corpus from a tiny saved language model."""

import json

import pytest
from transformers import pipeline


@pytest.fixture
def script(load_script):
    return load_script("train_classifier")


@pytest.fixture
def reviews(tmp_path, corpus):
    path = tmp_path / "reviews.csv"
    rows = [f'"{text}",{"pos" if i % 2 else "neg"}' for i, text in enumerate(corpus * 2)]
    path.write_text("review,sentiment\n" + "\n".join(rows))
    return path


def test_gradual_unfreezing_trains_and_saves_a_pipeline_ready_classifier(script, saved_lm, reviews, tmp_path, capsys):
    out = tmp_path / "classifier"
    script(
        [
            "--model_name_or_path",
            saved_lm,
            "--train_file",
            reviews,
            "--text_column",
            "review",
            "--label_column",
            "sentiment",
            "--output_dir",
            out,
            "--per_device_train_batch_size",
            8,
            "--unfreeze",
            "1,2,all",
            "--learning_rates",
            "1e-2,5e-3,1e-3",
            "--epochs",
            "1,1,1",
            "--validation_split_percentage",
            25,
        ]
    )
    printed = capsys.readouterr().out
    assert "labels: ['neg', 'pos']" in printed
    assert "epoch 0 (unfreeze_1)" in printed and "epoch 2 (unfreeze_all)" in printed
    results = json.loads((out / "all_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1 and results["train_steps"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["output_dropout"] == pytest.approx(0.2)
    assert "pipeline_tag: text-classification" in (out / "README.md").read_text()
    assert pipeline("text-classification", model=str(out))("I loved it.")[0]["label"] in {"neg", "pos"}


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


def test_stage_options_must_line_up(script, saved_lm, reviews, tmp_path):
    with pytest.raises(ValueError, match="one value per stage"):
        script(
            [
                "--model_name_or_path",
                saved_lm,
                "--train_file",
                reviews,
                "--text_column",
                "review",
                "--label_column",
                "sentiment",
                "--unfreeze",
                "1,all",
                "--epochs",
                "1",
            ]
        )
