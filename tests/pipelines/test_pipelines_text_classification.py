"""`pipeline("text-classification")` on an AWD-LSTM classifier: transformers' own pipeline, and the opt-in
`AwdLstmTextClassificationPipeline` (length-sorted batches, results in input order)."""

import datasets
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, TextClassificationPipeline, pipeline

from ulmfit import AwdLstmConfig, AwdLstmForSequenceClassification, AwdLstmTextClassificationPipeline


@pytest.fixture
def classifier_folder(tmp_path, tokenizer):
    torch.manual_seed(0)
    config = AwdLstmConfig(
        vocab_size=len(tokenizer),
        embedding_size=8,
        hidden_size=12,
        num_hidden_layers=2,
        id2label={0: "negative", 1: "positive", 2: "mixed"},
        label2id={"negative": 0, "positive": 1, "mixed": 2},
    )
    AwdLstmForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return str(tmp_path)


def sorting_pipeline(folder):
    return pipeline("text-classification", model=folder, pipeline_class=AwdLstmTextClassificationPipeline)


DOCUMENTS = [
    "Good.",
    "The movie was great, the acting was great and the story was really very good. " * 8,
    "Bad film.",
    "The story was not good but the acting was great. " * 3,
    "",
    "I really liked the plot and the acting.",
]


def test_batches_are_sorted_by_length_and_results_come_back_in_input_order(classifier_folder):
    classify = sorting_pipeline(classifier_folder)
    assert type(classify) is AwdLstmTextClassificationPipeline
    one_at_a_time = [classify(text, top_k=None) for text in DOCUMENTS]

    padded_lengths = []
    hook = classify.model.register_forward_pre_hook(
        lambda module, args, kwargs: padded_lengths.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    batched = classify(DOCUMENTS, batch_size=2, top_k=None)
    hook.remove()

    for expected, actual in zip(one_at_a_time, batched, strict=True):
        assert [r["label"] for r in actual] == [r["label"] for r in expected]
        assert [r["score"] for r in actual] == pytest.approx([r["score"] for r in expected], abs=1e-5)
    lengths = [shape[1] for shape in padded_lengths]
    assert len(lengths) == 3 and lengths == sorted(lengths, reverse=True)
    unsorted_padding = sum(max(len(classify.tokenizer(t).input_ids) for t in DOCUMENTS[i : i + 2]) for i in (0, 2, 4))
    assert sum(lengths) < unsorted_padding  # fewer padded positions than the stock order gives


def test_single_documents_top_k_and_bad_inputs(classifier_folder):
    classify = sorting_pipeline(classifier_folder)
    assert classify("Great!")[0]["label"] in {"negative", "positive", "mixed"}
    assert [len(r) for r in classify(["Great!", "Bad."], batch_size=2, top_k=2)] == [2, 2]
    with pytest.raises(TypeError, match=r"NoneType \(item 1\)"):
        classify(["a fine movie", None], batch_size=2)
    with pytest.raises(ValueError, match="text"):
        classify(None)


def test_a_datasets_column_is_a_list_of_documents(classifier_folder):
    classify = sorting_pipeline(classifier_folder)
    column = datasets.Dataset.from_dict({"text": DOCUMENTS})["text"]
    assert not isinstance(column, list)
    assert classify(column, batch_size=4) == classify(list(DOCUMENTS), batch_size=4)


def test_a_list_is_encoded_in_one_tokenizer_call_unless_tokenizer_arguments_are_given(classifier_folder, monkeypatch):
    classify = sorting_pipeline(classifier_folder)
    calls, tokenizer_class = [], type(classify.tokenizer)
    encode = tokenizer_class.__call__
    monkeypatch.setattr(tokenizer_class, "__call__", lambda self, *a, **k: calls.append(a[0]) or encode(self, *a, **k))
    listed = classify(DOCUMENTS, batch_size=2, top_k=None)
    assert calls == [DOCUMENTS]
    calls.clear()
    per_document = classify(DOCUMENTS, batch_size=2, top_k=None, add_special_tokens=True)  # a tokenizer argument
    assert sorted(calls) == sorted(DOCUMENTS)
    for expected, actual in zip(per_document, listed, strict=True):
        assert [r["label"] for r in actual] == [r["label"] for r in expected]
        assert [r["score"] for r in actual] == pytest.approx([r["score"] for r in expected], abs=1e-5)


def assert_same_scores(actual, expected):
    for actual_scores, expected_scores in zip(actual, expected, strict=True):
        assert [r["label"] for r in actual_scores] == [r["label"] for r in expected_scores]
        assert [r["score"] for r in actual_scores] == pytest.approx([r["score"] for r in expected_scores], abs=1e-5)


def test_the_plain_pipeline_is_transformers_own_and_scores_as_the_sorting_one(classifier_folder):
    classify = pipeline("text-classification", model=classifier_folder)
    assert type(classify) is TextClassificationPipeline and type(classify.model) is AwdLstmForSequenceClassification
    stock = classify(DOCUMENTS, batch_size=2, top_k=None)
    assert_same_scores(stock, sorting_pipeline(classifier_folder)(DOCUMENTS, batch_size=2, top_k=None))
    assert_same_scores(stock, [classify(text, top_k=None) for text in DOCUMENTS])


def test_importing_ulmfit_leaves_other_models_with_the_stock_pipeline(tokenizer):
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
    )
    classify = pipeline("text-classification", model=BertForSequenceClassification(config), tokenizer=tokenizer)
    assert type(classify) is TextClassificationPipeline
    assert len(classify(["Good.", "Bad film."], batch_size=2)) == 2
