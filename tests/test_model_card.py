import pytest
from huggingface_hub import ModelCard

from ulmfit.model_card import ModelCardInfo, check_hub_metadata, is_hub_id, render_model_card
from ulmfit.model_card.awd_lstm import (
    BACKWARD_CLASSIFIER_CARD,
    BACKWARD_LANGUAGE_MODEL_CARD,
    CLASSIFIER_CARD,
    ENCODER_CARD,
    LANGUAGE_MODEL_CARD,
    awd_lstm_card,
)
from ulmfit.model_card.devise import DEVISE_CARD
from ulmfit.model_card.gru_seq2seq import TRANSLATOR_CARD


def make_info(**overrides):
    info = dict(
        model_id="me/awd-lstm-imdb",
        family=LANGUAGE_MODEL_CARD,
        base_model="me/awd-lstm-wt103",
        datasets=["stanfordnlp/imdb"],
        dataset_name="IMDb",
        dataset_type="stanfordnlp/imdb",
        metrics={"perplexity": 49.8, "accuracy": 0.312},
        training_command="accelerate launch scripts/train_language_model.py --train_file imdb.parquet",
        hyperparameters={"learning_rate": 0.002, "batch_size": 64},
        training_log=[{"epoch": 1, "train_loss": 4.2, "valid_loss": 4.0}],
    )
    info.update(overrides)
    return ModelCardInfo(**info)


def test_card_has_metadata_with_model_index(tmp_path):
    card = render_model_card(make_info())
    card.save(tmp_path / "README.md")
    data = ModelCard.load(tmp_path / "README.md").data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-generation"
    assert data.base_model == "me/awd-lstm-wt103" and "awd-lstm" in data.tags
    assert {(r.metric_type, r.metric_value) for r in data.eval_results} == {("perplexity", 49.8), ("accuracy", 0.312)}


def test_card_body_has_usage_command_results_and_citations():
    text = str(render_model_card(make_info()))
    assert "# awd-lstm-imdb" in text
    assert 'pipeline("text-generation", model="me/awd-lstm-imdb", trust_remote_code=True)' in text
    assert "accelerate launch scripts/train_language_model.py --train_file imdb.parquet" in text
    assert "| learning_rate | 0.002 |" in text and "| 1 | 4.2 | 4 |" in text
    assert "merity2018regularizing" in text and "howard2018universal" in text
    assert "| transformers |" in text


def test_card_without_results_says_so():
    text = str(render_model_card(make_info(metrics={}, base_model=None)))
    assert "No evaluation results were recorded." in text
    assert "Fine-tuned from" not in text


def test_classifier_card_uses_its_own_prose_and_pipeline():
    info = make_info(family=CLASSIFIER_CARD, metrics={"accuracy": 0.9})
    text = str(render_model_card(info))
    assert "ULMFiT text classifier" in text and 'pipeline("text-classification"' in text
    assert "pipeline_tag: text-classification" in text


def test_backward_cards_say_backward_and_show_the_ensemble():
    lm = str(render_model_card(make_info(family=BACKWARD_LANGUAGE_MODEL_CARD)))
    assert "**backward** AWD-LSTM" in lm and "ForwardBackwardEnsemble" in lm
    assert 'pipeline("text-generation"' not in lm  # a backward LM predicts the word before: no generation example
    classifier = str(render_model_card(make_info(family=BACKWARD_CLASSIFIER_CARD)))
    assert "**backward** ULMFiT text classifier" in classifier
    assert 'ForwardBackwardEnsemble("<a forward classifier>", "' in classifier


def test_every_family_supplies_a_card_that_renders():
    assert awd_lstm_card("lm", backwards=True) is BACKWARD_LANGUAGE_MODEL_CARD
    assert awd_lstm_card("encoder") is ENCODER_CARD
    for family, snippet in [
        (ENCODER_CARD, 'AutoModel.from_pretrained("me/awd-lstm-imdb"'),
        (TRANSLATOR_CARD, 'pipeline("translation", model="me/awd-lstm-imdb"'),
        (DEVISE_CARD, 'pipeline("zero-shot-image-classification", model="me/awd-lstm-imdb"'),
    ]:
        card = render_model_card(make_info(family=family))
        assert snippet in str(card) and card.data.pipeline_tag == family.pipeline_tag
        assert f"`{family.model_class}`" in str(card)


def test_unknown_awd_lstm_task_has_no_card():
    with pytest.raises(ValueError, match="'tagger'"):
        awd_lstm_card("tagger")


def test_a_local_base_model_and_local_data_stay_out_of_the_metadata_and_are_named_in_the_prose(tmp_path):
    base = tmp_path / "runs" / "lm"
    base.mkdir(parents=True)  # exists here: a local folder, as transformers' Trainer decides
    info = make_info(
        base_model=str(base), datasets=["unsup.parquet"], dataset_name="held-out 2% of unsup.parquet", dataset_type=""
    )
    card = render_model_card(info)
    card.save(tmp_path / "README.md")
    data = ModelCard.load(tmp_path / "README.md").data
    assert data.base_model is None and data.datasets is None
    assert [(r.dataset_type, r.dataset_name, r.dataset_split) for r in data.eval_results][0] == (
        "unknown",
        "held-out 2% of unsup.parquet",
        "validation",
    )
    body = card.text
    assert f"**Fine-tuned from:** `{base}`" in body and "**Training data:** `unsup.parquet`" in body
    check_hub_metadata(card)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("stanfordnlp/imdb", True),
        ("wikitext", True),
        ("runs/bench-devise-zero-shot/cache/efficientnet-lite0", False),  # the Hub's repo-id check rejects it
        ("/tmp/pre/awd-lstm-imdb-small", False),
        ("unsup.parquet", False),  # a data file's name, not a dataset on the Hub
        ("", False),
        (None, False),
    ],
)
def test_is_hub_id_tells_hub_ids_from_local_paths(name, expected):
    assert is_hub_id(name) is expected


def test_hub_ids_are_kept_in_the_metadata():
    card = render_model_card(make_info())
    assert card.data.base_model == "me/awd-lstm-wt103" and card.data.datasets == ["stanfordnlp/imdb"]
    assert {(r.dataset_type, r.dataset_split) for r in card.data.eval_results} == {("stanfordnlp/imdb", "validation")}
    check_hub_metadata(card)


def test_check_hub_metadata_names_what_the_hub_would_reject():
    card = ModelCard(
        "---\nbase_model: runs/a/b/c\ndatasets:\n- unsup.parquet\nmodel-index:\n- name: m\n  results:\n"
        "  - task:\n      type: text-generation\n    dataset:\n      name: x\n      type: train.parquet\n"
        "    metrics:\n    - type: accuracy\n      value: 0.5\n---\n"
    )
    with pytest.raises(ValueError, match="base_model 'runs/a/b/c'.*datasets 'unsup.parquet'.*no split.*train.parquet"):
        check_hub_metadata(card)


def test_a_long_training_log_is_thinned_in_the_card_keeping_every_evaluation_and_the_last_row():
    log = [{"step": 10 * i, "train_loss": 5.0 - i / 100} for i in range(1, 301)]
    log.insert(100, {"step": 1000, "valid_loss": 1.5, "bleu": 9.9})  # evaluations after 100 and 200 training rows
    log.insert(201, {"step": 2000, "valid_loss": 1.2, "bleu": 19.9})
    text = str(render_model_card(make_info(training_log=log)))
    rows = [line for line in text.splitlines() if line.count("|") == 5 and line[2:3].isdigit()]  # 4 columns
    assert 40 <= len(rows) <= 60
    assert sum("| 9.9 |" in row or "| 19.9 |" in row for row in rows) == 2  # both evaluations
    assert rows[-1].startswith("| 3000 | 2 |")  # the last training row (kept by no stride: 301 % 6)
    assert f"{len(rows)} of 302 rows (all in `training_log.json`)" in text
    short = str(render_model_card(make_info(training_log=log[:50])))
    assert "all in `training_log.json`" not in short
    assert len([line for line in short.splitlines() if line.count("|") == 3 and line[2:3].isdigit()]) == 50
