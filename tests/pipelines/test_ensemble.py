import pytest
import torch
from transformers import pipeline

from ulmfit import AwdLstmConfig, AwdLstmForSequenceClassification, AwdLstmTokenizer
from ulmfit.pipelines import ForwardBackwardEnsemble


LABELS = {0: "negative", 1: "positive"}


def save_classifier(folder, corpus, backwards, seed):
    tokenizer = AwdLstmTokenizer.train(corpus, min_freq=1, backwards=backwards)
    torch.manual_seed(seed)
    config = AwdLstmConfig(vocab_size=len(tokenizer), embedding_size=8, hidden_size=12, num_hidden_layers=2,
                           id2label=LABELS, label2id={v: k for k, v in LABELS.items()})  # fmt: skip
    model = AwdLstmForSequenceClassification(config)
    with torch.no_grad():  # make the two heads disagree clearly
        model.classifier.out_proj.weight.mul_(50.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_ensemble_averages_probabilities_in_input_order(tmp_path, corpus):
    forward = save_classifier(tmp_path / "fwd", corpus, backwards=False, seed=0)
    backward = save_classifier(tmp_path / "bwd", corpus, backwards=True, seed=1)
    texts = ["The movie was GREAT!!!", "Terrible acting.", "I didn't like the ending."]
    fwd, bwd = pipeline("text-classification", str(forward)), pipeline("text-classification", str(backward))
    ensemble = ForwardBackwardEnsemble(fwd, bwd)
    results = ensemble(texts, top_k=None)
    for text, result in zip(texts, results):
        expected = {}
        for side in (fwd(text, top_k=None), bwd(text, top_k=None)):
            for item in side:
                expected[item["label"]] = expected.get(item["label"], 0) + 0.5 * item["score"]
        assert {r["label"]: pytest.approx(r["score"]) for r in result} == expected
        assert result[0]["score"] >= result[1]["score"]
    assert ForwardBackwardEnsemble(str(forward), str(backward))(texts[0])[0]["label"] in LABELS.values()


def test_ensemble_refuses_classifiers_with_other_labels(tmp_path, corpus):
    forward = save_classifier(tmp_path / "fwd", corpus, backwards=False, seed=0)
    other = tmp_path / "other"
    tokenizer = AwdLstmTokenizer.train(corpus, min_freq=1)
    config = AwdLstmConfig(
        vocab_size=len(tokenizer), embedding_size=8, hidden_size=12, num_hidden_layers=2, num_labels=3
    )
    AwdLstmForSequenceClassification(config).save_pretrained(other)
    tokenizer.save_pretrained(other)
    with pytest.raises(ValueError, match="different labels"):
        ForwardBackwardEnsemble(str(forward), str(other))
    with pytest.raises(ValueError, match="share"):
        ForwardBackwardEnsemble(str(forward), str(forward), weight=1.5)


def test_average_of_given_scores_weights_the_forward_share_and_checks_lengths(tmp_path, corpus):
    forward = save_classifier(tmp_path / "fwd", corpus, backwards=False, seed=0)
    backward = save_classifier(tmp_path / "bwd", corpus, backwards=True, seed=1)
    ensemble = ForwardBackwardEnsemble(str(forward), str(backward), weight=0.75)
    fwd = [[{"label": "positive", "score": 0.9}, {"label": "negative", "score": 0.1}]]
    bwd = [[{"label": "negative", "score": 0.7}, {"label": "positive", "score": 0.3}]]
    (best,) = ensemble.average(fwd, bwd)
    assert best == [{"label": "positive", "score": pytest.approx(0.75 * 0.9 + 0.25 * 0.3)}]
    assert [r["label"] for r in ensemble.average(fwd, bwd, top_k=None)[0]] == ["positive", "negative"]
    with pytest.raises(ValueError, match="1 texts from the forward model, 2 backward"):
        ensemble.average(fwd, bwd * 2)
