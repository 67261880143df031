from huggingface_hub import ModelCard

from ulmfit.model_card import ModelCardInfo, render_model_card


def make_info(**overrides):
    info = dict(
        model_id="me/awd-lstm-imdb",
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
    info = make_info(
        family="awd_lstm_classifier",
        model_class="AwdLstmForSequenceClassification",
        pipeline_tag="text-classification",
        task_type="text-classification",
        metrics={"accuracy": 0.9},
    )
    text = str(render_model_card(info))
    assert "ULMFiT text classifier" in text and 'pipeline("text-classification"' in text
    assert "pipeline_tag: text-classification" in text


def test_backward_cards_say_backward_and_show_the_ensemble():
    lm = str(render_model_card(make_info(family="awd_lstm_lm_backward")))
    assert "**backward** AWD-LSTM" in lm and "ForwardBackwardEnsemble" in lm
    assert 'pipeline("text-generation"' not in lm  # a backward LM predicts the word before: no generation example
    classifier = str(
        render_model_card(
            make_info(
                family="awd_lstm_classifier_backward",
                model_class="AwdLstmForSequenceClassification",
                pipeline_tag="text-classification",
                task_type="text-classification",
            )
        )
    )
    assert "**backward** ULMFiT text classifier" in classifier
    assert 'ForwardBackwardEnsemble("<a forward classifier>", "' in classifier
