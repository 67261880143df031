"""scripts/train_classifier.py on multi-label and regression data: trained from a CSV, saved, reloaded, and used
through the pipelines with the stored thresholds and target scaling; wrong label data stopped before training."""

import json
import math

import pandas as pd
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from ulmfit.model_card import check_hub_metadata
from ulmfit.pipelines import AwdLstmTextClassificationPipeline
from ulmfit.training.script_steps import UsageError


TAGS = ["joy", "anger", "fear"]
FEW_STEPS = ["--per_device_train_batch_size", 4, "--unfreeze", "1,all", "--learning_rates", "1e-2,5e-3"]
FEW_STEPS += ["--epochs", "1,1"]


@pytest.fixture
def script(load_script):
    return load_script("train_classifier")


def frame(corpus, **columns):
    texts = corpus * 3
    return pd.DataFrame({"text": texts, **{name: make(len(texts)) for name, make in columns.items()}})


def write(tmp_path, data: pd.DataFrame, name: str) -> str:
    path = tmp_path / name
    if name.endswith(".csv"):
        data.to_csv(path, index=False)
    else:
        data.to_parquet(path)
    return str(path)


def run(script, saved_lm, train_file, out, *extra, validation_file=None):
    files = ["--train_file", train_file] + (["--validation_file", validation_file] if validation_file else [])
    script(["--model_name_or_path", saved_lm, *files, *FEW_STEPS, "--output_dir", out, *map(str, extra)])
    return json.loads((out / "all_results.json").read_text()), json.loads((out / "config.json").read_text())


def tag_lists(n):
    return [[TAGS[i % 3]] + ([TAGS[(i + 1) % 3]] if i % 2 else []) for i in range(n)]


def test_a_list_column_trains_a_multi_label_classifier_whose_pipeline_applies_the_chosen_thresholds(
    script, saved_lm, corpus, tmp_path
):
    train = write(tmp_path, frame(corpus, tags=tag_lists), "train.parquet")
    out = tmp_path / "multi"
    results, config = run(script, saved_lm, train, out, "--label_column", "tags", "--per_label_thresholds")
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {"0": "anger", "1": "fear", "2": "joy"}  # sorted tag names
    thresholds = config["label_thresholds"]
    assert len(thresholds) == 3 and all(0 < t < 1 for t in thresholds)
    for key in ("eval_micro_f1", "eval_macro_f1", "eval_subset_accuracy", "eval_hamming_loss"):
        assert 0 <= results[key] <= 1
    assert set(results["eval_per_label_f1"]) == set(TAGS) and results["label_thresholds"] == thresholds

    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    text = "the movie was great"
    with torch.no_grad():
        probabilities = model(**tokenizer([text], return_tensors="pt")).logits.sigmoid()[0].tolist()
    expected = {config["id2label"][str(i)] for i, p in enumerate(probabilities) if p >= thresholds[i]}

    tagger = pipeline("text-classification", model=str(out), pipeline_class=AwdLstmTextClassificationPipeline)
    chosen = tagger(text)
    assert {result["label"] for result in chosen} == expected
    assert [r["score"] for r in chosen] == sorted((r["score"] for r in chosen), reverse=True)
    assert tagger([text, text]) == [chosen, chosen]
    everything = tagger(text, top_k=None)  # every label's probability, as the stock pipeline gives them
    assert sorted(r["label"] for r in everything) == sorted(TAGS)
    assert {r["label"]: r["score"] for r in everything} == pytest.approx(
        {config["id2label"][str(i)]: p for i, p in enumerate(probabilities)}, abs=1e-6
    )
    assert tagger(text, threshold=1e-9) and [r["label"] for r in tagger(text, threshold=0.999999)] == []
    stock = pipeline("text-classification", model=str(out))(text, top_k=None)
    assert {r["label"]: r["score"] for r in stock} == pytest.approx({r["label"]: r["score"] for r in everything})

    card = ModelCard.load(out / "README.md")
    check_hub_metadata(card)
    types = {result.metric_name: result.metric_type for result in card.data.eval_results}
    assert types["macro_f1"] == "f1" and types["subset_accuracy"] == "accuracy" and "hamming_loss" in types
    assert {result.task_name for result in card.data.eval_results} == {"Multi-label text classification"}
    assert "multi-label-classification" in card.data.tags
    per_label = card.text.split("Per label:")[1].split("##")[0]
    assert per_label.count("\n| ") == 1 + 3 and "| threshold |" in per_label.splitlines()[2]


def test_a_list_of_class_label_ids_keeps_the_datasets_label_names(script, saved_lm, corpus, tmp_path):
    # as Hub datasets such as go_emotions store tags: `List(ClassLabel)` ids, the names in the features
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "labels": datasets.List(datasets.ClassLabel(names=["sad", "glad", "mad"]))}
    )
    rows = {"text": corpus * 3, "labels": [[i % 3] + ([2] if i % 2 else []) for i in range(len(corpus) * 3)]}
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_dict(rows, features=features).to_parquet(path)
    _, config = run(script, saved_lm, str(path), tmp_path / "class-label", "--label_column", "labels")
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {"0": "sad", "1": "glad", "2": "mad"}  # the dataset's order, not sorted ids


@pytest.mark.parametrize("form", ["separator", "columns"])
def test_separated_strings_and_zero_one_columns_are_multi_label_too(script, saved_lm, corpus, tmp_path, form):
    if form == "separator":
        data = frame(corpus, tags=lambda n: ["|".join(tags) for tags in tag_lists(n)])
        extra = ["--label_column", "tags", "--label_separator", "|", "--threshold", 0.4, "--pos_weight", "auto"]
    else:
        lists = tag_lists(len(corpus) * 3)
        data = frame(corpus, **{tag: (lambda n, tag=tag: [int(tag in row) for row in lists]) for tag in TAGS})
        extra = ["--label_columns", ",".join(TAGS)]
    results, config = run(script, saved_lm, write(tmp_path, data, "train.csv"), tmp_path / form, *extra)
    assert config["problem_type"] == "multi_label_classification"
    names = sorted(TAGS) if form == "separator" else TAGS  # 0/1 columns keep their order
    assert list(config["id2label"].values()) == names
    if form == "separator":
        assert config["label_thresholds"] == 0.4 and len(config["pos_weight"]) == 3
        assert all(weight > 0 for weight in config["pos_weight"])
    else:
        assert isinstance(config["label_thresholds"], float) and config["pos_weight"] is None


def test_a_float_column_trains_a_regression_model_that_answers_in_the_targets_units(
    script, saved_lm, corpus, tmp_path
):
    data = frame(corpus, stars=lambda n: [100.0 + 10 * (i % 5) for i in range(n)])
    out = tmp_path / "regression"
    results, config = run(
        script, saved_lm, write(tmp_path, data, "train.csv"), out, "--label_column", "stars", "--normalize_target",
        "--loss", "huber",
    )  # fmt: skip
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "stars"}
    assert config["target_mean"] == pytest.approx(120.0, abs=3) and config["target_std"] > 5
    assert config["regression_loss"] == "huber" and config["target_range"] == [100.0, 140.0]
    assert {"eval_mae", "eval_rmse", "eval_pearson", "eval_spearman"} <= set(results)
    assert results["eval_rmse"] >= results["eval_mae"] >= 0

    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        raw = model.classifier(model.awd_lstm.embed_tokens.weight.new_zeros(1, 3 * model.config.embedding_size))
    prediction = pipeline("text-classification", model=str(out))("a film")[0]
    assert prediction["label"] == "stars"
    # the head learns standardised targets: the score comes back around the targets' mean, in their units
    assert 100 <= prediction["score"] <= 140 and math.isfinite(raw.item())  # within the training targets' range
    encoded = tokenizer(["a film"], return_tensors="pt")
    with torch.no_grad():
        assert model(**encoded).logits.item() == pytest.approx(prediction["score"], rel=1e-5)
    card = ModelCard.load(out / "README.md")
    types = {result.metric_name: result.metric_type for result in card.data.eval_results}
    assert types["pearson"] == "pearsonr" and types["mae"] == "mae"
    assert {result.task_name for result in card.data.eval_results} == {"Text regression"}


def test_integer_ratings_are_classes_unless_problem_type_says_regression(script, saved_lm, corpus, tmp_path):
    data = frame(corpus, rating=lambda n: [1 + 3 * (i % 3) for i in range(n)])
    train = write(tmp_path, data, "train.csv")
    _, classes = run(script, saved_lm, train, tmp_path / "classes", "--label_column", "rating")
    assert classes["problem_type"] == "single_label_classification"
    assert list(classes["id2label"].values()) == ["1", "4", "7"]  # numbers sorted as numbers
    _, regression = run(
        script, saved_lm, train, tmp_path / "reg", "--label_column", "rating", "--problem_type", "regression"
    )
    assert regression["problem_type"] == "regression" and regression["target_std"] is None
    assert regression["target_range"] == [1.0, 7.0]
    unbounded = ["--label_column", "rating", "--problem_type", "regression", "--no_clip_to_target_range"]
    _, regression = run(script, saved_lm, train, tmp_path / "unbounded", *unbounded)
    assert regression["target_range"] is None


def test_stlr_schedule_and_lr_find(script, saved_lm, corpus, tmp_path, capsys):
    data = frame(corpus, label=lambda n: ["a" if i % 2 else "b" for i in range(n)])
    train = write(tmp_path, data, "train.csv")
    run(script, saved_lm, train, tmp_path / "stlr", "--schedule", "stlr")
    assert json.loads((tmp_path / "stlr" / "config.json").read_text())["problem_type"] == "single_label_classification"
    out = tmp_path / "finder"
    script(["--model_name_or_path", saved_lm, "--train_file", train, *FEW_STEPS, "--output_dir", out, "--lr_find"])
    assert (out / "lr_find.png").stat().st_size > 0 and "suggested learning rate" in capsys.readouterr().out
    assert not (out / "model.safetensors").exists()


@pytest.mark.parametrize(
    "column, values, extra, message",
    [
        ("tags", lambda n: [[] if i == 5 else ["joy"] if i % 2 else ["fear"] for i in range(n)], [],
         "'tags', row 5 of --train_file"),
        ("score", lambda n: [float("nan") if i == 7 else 1.0 * i for i in range(n)], [],
         "no value in --label_column 'score' \\(the first: row 7"),
        ("score", lambda n: ["x" if i == 4 else str(i) for i in range(n)], ["--problem_type", "regression"],
         "'score', row 4 of --train_file .*train.parquet \\(counting from 0\\): 'x' is not a number"),
        ("tags", lambda n: [[1, "joy"] if i == 3 else ["joy"] for i in range(n)], [], "row 3"),
        ("tags", lambda n: ["joy,fear"] * n, ["--problem_type", "multi_label_classification"], "--label_separator"),
        ("tags", lambda n: [["joy"]] * n, ["--problem_type", "regression"], "holds lists"),
        ("score", lambda n: [1.5] * n, ["--normalize_target"], "every training value of 'score' is 1.5"),
        ("label", lambda n: ["a", "b"] * (n // 2), ["--pos_weight", "auto"], "--pos_weight applies to multi_label"),
        ("label", lambda n: ["a", "b"] * (n // 2), ["--loss", "huber"], "--loss applies to regression"),
        ("label", lambda n: ["a", "b"] * (n // 2), ["--no_clip_to_target_range"], "--no_clip_to_target_range applies"),
    ],
)  # fmt: skip
def test_wrong_label_data_fails_before_training_naming_the_column_and_row(
    script, saved_lm, corpus, tmp_path, column, values, extra, message
):
    n = len(corpus) * 3
    data = pd.DataFrame({"text": corpus * 3, column: pd.Series(values(n), dtype=object)})
    if column == "score" and "nan" in message or "no value" in message:
        data[column] = data[column].astype(float)
    try:
        train = write(tmp_path, data, "train.parquet")
    except Exception:  # pyarrow cannot hold a list mixing numbers and strings: a JSON file can
        train = str(tmp_path / "train.jsonl")
        data.to_json(train, orient="records", lines=True)
    out = tmp_path / "never"
    with pytest.raises(UsageError, match=message):
        script(["--model_name_or_path", saved_lm, "--train_file", train, "--label_column", column, *FEW_STEPS,
                "--output_dir", out, *map(str, extra)])  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--problem_type", "multilabel"], "--problem_type must be auto or one of"),
        (["--schedule", "warmup"], "--schedule must be one_cycle or stlr"),
        (["--loss", "l1"], "--loss must be auto, mse or huber"),
        (["--pos_weight", "3"], "--pos_weight takes `auto`"),
        (["--threshold", "1.5"], "--threshold must be a probability"),
        (["--threshold", "0.3", "--per_label_thresholds"], "pick one"),
        (["--label_columns", "text,b"], "--text_column 'text' is also a label column"),
    ],
)
def test_label_flags_are_checked_as_they_are_read(script, saved_lm, tmp_path, extra, message):
    with pytest.raises(UsageError, match=message):
        script(["--model_name_or_path", saved_lm, "--train_file", tmp_path / "any.csv", *extra])


def test_fewer_documents_than_one_batch_fail_before_training(script, saved_lm, corpus, tmp_path):
    data = frame(corpus, label=lambda n: ["a" if i % 2 else "b" for i in range(n)])
    train = write(tmp_path, data, "train.csv")
    out = tmp_path / "never"
    with pytest.raises(UsageError, match="training documents are fewer than one batch"):
        script(["--model_name_or_path", saved_lm, "--train_file", train, "--per_device_train_batch_size", 500,
                "--output_dir", out])  # fmt: skip
    assert not out.exists()
    with pytest.raises(UsageError, match="at least 2"):
        script(["--model_name_or_path", saved_lm, "--train_file", train, "--per_device_train_batch_size", 1])
