import json

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, pipeline

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmForSequenceClassification
from ulmfit.models.awd_lstm.modeling_awd_lstm import masked_concat_pool


VOCAB = 50


def make_classifier(num_labels=2, **overrides) -> AwdLstmForSequenceClassification:
    torch.manual_seed(0)
    config = AwdLstmConfig(
        vocab_size=VOCAB, embedding_size=8, hidden_size=12, num_hidden_layers=3, num_labels=num_labels, **overrides
    )
    return AwdLstmForSequenceClassification(config).eval()


def random_ids(batch_size=2, length=9, seed=1):
    return torch.randint(9, VOCAB, (batch_size, length), generator=torch.Generator().manual_seed(seed))


def test_head_is_fastai_pooling_linear_classifier():
    model = make_classifier(num_labels=3, output_dropout=0.2, classifier_dropout=0.1)
    head = model.classifier
    assert head.norm_in.num_features == 24 and head.dropout_in.p == 0.2
    assert (head.dense.in_features, head.dense.out_features, head.dense.bias) == (24, 50, None)
    assert head.norm_hidden.num_features == 50 and head.dropout_hidden.p == 0.1
    assert (head.out_proj.out_features, head.out_proj.bias) == (3, None)
    assert model(random_ids()).logits.shape == (2, 3)


def test_masked_concat_pool_uses_real_tokens_only():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    pooled = masked_concat_pool(hidden, mask)
    real = hidden[0, 2:]
    torch.testing.assert_close(pooled[0], torch.cat([real[-1], real.max(0).values, real.mean(0)]))
    torch.testing.assert_close(pooled[1], torch.cat([hidden[1, -1], hidden[1].max(0).values, hidden[1].mean(0)]))


def test_padding_on_either_side_gives_each_document_alone():
    model = make_classifier()
    short, long = random_ids(1, 5, seed=2)[0], random_ids(1, 9, seed=3)[0]
    alone = model(short[None]).logits
    for side in ("left", "right"):
        batch, mask = torch.ones(2, 9, dtype=torch.long), torch.zeros(2, 9, dtype=torch.long)
        span = slice(4, 9) if side == "left" else slice(0, 5)
        batch[0, span], mask[0, span] = short, 1
        batch[1], mask[1] = long, 1
        logits = model(batch, attention_mask=mask).logits
        torch.testing.assert_close(logits[0], alone[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(logits[1], model(long[None]).logits[0], rtol=0, atol=1e-5)


def test_bpt3c_pools_the_last_chunks_only_and_reads_the_rest_without_gradients():
    model = make_classifier(bpt3c_chunk_size=4, bpt3c_max_length=8)
    ids = random_ids(1, 14)
    # fastai keeps chunk starts i with 14 - i <= 8: chunks [8:12] and [12:14]
    with torch.no_grad():
        encoded = model.awd_lstm(ids).last_hidden_state
        expected = model.classifier(masked_concat_pool(encoded[:, 8:], torch.ones(1, 6)))
        torch.testing.assert_close(model(ids).logits, expected, rtol=0, atol=1e-5)

    grad_modes = []
    hook = model.awd_lstm.register_forward_pre_hook(lambda *_: grad_modes.append(torch.is_grad_enabled()))
    model.train()
    batch = torch.cat([ids, random_ids(1, 14, seed=7)])
    model(batch, labels=torch.tensor([1, 0])).loss.backward()
    hook.remove()
    assert grad_modes == [False, False, True, True]  # 4 chunks; only the 2 pooled ones build a graph
    embedding_grad = model.awd_lstm.embed_tokens.weight.grad
    early_only = set(batch[:, :8].flatten().tolist()) - set(batch[:, 8:].flatten().tolist())
    assert early_only
    assert all(embedding_grad[token].abs().sum() == 0 for token in early_only)


def batch_of(rows, width, side):
    ids, mask = torch.ones(len(rows), width, dtype=torch.long), torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span], mask[i, span] = row, 1
    return ids, mask


@pytest.mark.parametrize("side", ["left", "right"])
def test_inference_reads_real_tokens_only_in_bounded_segments_with_the_training_result(monkeypatch, side):
    model = make_classifier(bpt3c_chunk_size=4, bpt3c_max_length=8)
    model._INFERENCE_BLOCK = 3
    lengths = (41, 30, 7, 12, 1, 8)  # two longer than the pooled window, one shorter than a block
    rows = [random_ids(1, n, seed=n)[0] for n in lengths]
    ids, mask = batch_of(rows, 41, side)
    packings, calls = [], []
    pack = torch.nn.utils.rnn.pack_padded_sequence
    monkeypatch.setattr(
        torch.nn.utils.rnn, "pack_padded_sequence", lambda *a, **k: packings.append(1) or pack(*a, **k)
    )
    model.awd_lstm.layers[0].register_forward_pre_hook(lambda _, args: calls.append(args[0].shape[:2]))
    chunked = model(ids, attention_mask=mask).logits.detach()  # grad enabled: fastai's chunks (here 4 tokens)
    calls.clear()
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits
    # fastai's pooled window: chunk starts i with 41 - i <= 8 (i = 36, 40), the last 5 tokens of each document
    torch.testing.assert_close(logits, chunked, rtol=0, atol=1e-5)
    assert not packings
    assert all(columns <= 8 for _, columns in calls)  # memory bounded by bpt3c_max_length columns
    assert [documents for documents, _ in calls] == sorted((documents for documents, _ in calls), reverse=True)
    read = sum(documents * columns for documents, columns in calls)
    assert sum(lengths) <= read < sum(lengths) + 3 * len(lengths)  # at most a block of padding per document
    # every document gives what it gives alone: its window is its own, not the batch's
    with torch.no_grad():
        for i, row in enumerate(rows):
            torch.testing.assert_close(logits[i], model(row[None]).logits[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training-path"])
def test_a_long_documents_window_is_its_own_whatever_its_batch(grad):
    # chunks of 4, window 8: alone, a 10-token document pools chunks [4:8] and [8:10] (10 - 4 <= 8), its last 6
    # tokens; batched with a 13-token one (whose window is its last 5) it must pool the same 6 tokens
    model = make_classifier(bpt3c_chunk_size=4, bpt3c_max_length=8)
    ten, thirteen = random_ids(1, 10, seed=10)[0], random_ids(1, 13, seed=13)[0]
    with torch.set_grad_enabled(grad):
        encoded = model.awd_lstm(ten[None]).last_hidden_state
        expected = model.classifier(masked_concat_pool(encoded[:, 4:], torch.ones(1, 6)))
        alone = model(ten[None]).logits
        torch.testing.assert_close(alone, expected, rtol=0, atol=1e-5)
        for side in ("left", "right"):
            ids, mask = batch_of([ten, thirteen], 13, side)
            logits = model(ids, attention_mask=mask).logits
            torch.testing.assert_close(logits[0], alone[0], rtol=0, atol=1e-5)
            torch.testing.assert_close(logits[1], model(thirteen[None]).logits[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training-path"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_hidden_states_cover_every_token_where_it_was_given(grad, side):
    model = make_classifier(bpt3c_chunk_size=4, bpt3c_max_length=8)
    rows = [random_ids(1, n, seed=n)[0] for n in (11, 3, 7)]
    ids, mask = batch_of(rows, 11, side)
    with torch.set_grad_enabled(grad):
        outputs = model(ids, attention_mask=mask, output_hidden_states=True)
        plain = model(ids, attention_mask=mask)
    torch.testing.assert_close(outputs.logits, plain.logits, rtol=0, atol=0)
    assert [tuple(h.shape) for h in outputs.hidden_states] == [(3, 11, 8), (3, 11, 12), (3, 11, 12), (3, 11, 8)]
    with torch.no_grad():
        for i, row in enumerate(rows):
            alone = model.awd_lstm(row[None], output_hidden_states=True).hidden_states
            for layer, expected in zip(outputs.hidden_states, alone):
                torch.testing.assert_close(layer[i][mask[i].bool()], expected[0], rtol=0, atol=1e-5)
                assert not layer[i][~mask[i].bool()].any()  # zeros at padding
    # the config flag asks for them too, and `return_dict=False` puts them after the logits
    model.config.output_hidden_states = True
    with torch.no_grad():
        assert len(model(ids, attention_mask=mask).hidden_states) == 4
        logits, hidden_states = model(ids, attention_mask=mask, return_dict=False)
    assert len(hidden_states) == 4 and logits.shape == (3, 2)


def test_inference_of_a_one_token_row_and_in_bf16():
    model = make_classifier()
    ids, mask = batch_of([random_ids(1, 6, seed=6)[0], random_ids(1, 1, seed=3)[0]], 6, "right")
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(logits, model(ids, attention_mask=mask).logits.detach(), rtol=0, atol=1e-5)
    half = make_classifier().to(torch.bfloat16)
    with torch.no_grad():
        low = half(ids, attention_mask=mask).logits
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), logits, rtol=0, atol=5e-2)


def test_inference_under_bf16_autocast_as_mixed_precision_runs_it():
    # `--mixed_precision bf16` keeps float32 weights and autocasts: the LSTM outputs are bf16, the pooling float32
    model = make_classifier(bpt3c_chunk_size=4, bpt3c_max_length=8)
    ids, mask = batch_of([random_ids(1, n, seed=n)[0] for n in (11, 3, 7)], 11, "right")
    with torch.no_grad():
        exact = model(ids, attention_mask=mask).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(ids, attention_mask=mask).logits
    assert model.awd_lstm.embed_tokens.weight.dtype == torch.float32
    torch.testing.assert_close(low.float(), exact, rtol=0, atol=5e-2)


def test_losses_for_every_problem_type_and_bad_labels():
    ids = random_ids(4, 6)
    single = make_classifier(num_labels=3)
    logits = single(ids).logits
    torch.testing.assert_close(
        single(ids, labels=torch.tensor([0, 2, 1, 0])).loss,
        nn.functional.cross_entropy(logits, torch.tensor([0, 2, 1, 0])),
    )
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\]"):
        single(ids, labels=torch.tensor([0, 3, 1, 0]))
    multi = make_classifier(num_labels=3, problem_type="multi_label_classification")
    targets = torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    torch.testing.assert_close(
        multi(ids, labels=targets).loss, nn.functional.binary_cross_entropy_with_logits(multi(ids).logits, targets)
    )
    regression = make_classifier(num_labels=1)
    values = torch.tensor([0.5, 1.0, -1.0, 2.0])
    torch.testing.assert_close(
        regression(ids, labels=values).loss, nn.functional.mse_loss(regression(ids).logits.squeeze(-1), values)
    )


def test_weighted_multi_label_huber_and_standardised_regression_losses(tmp_path):
    ids = random_ids(4, 6)
    weights = [1.0, 4.0, 0.5]
    multi = make_classifier(num_labels=3, problem_type="multi_label_classification", pos_weight=weights)
    targets = torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    torch.testing.assert_close(
        multi(ids, labels=targets).loss,
        nn.functional.binary_cross_entropy_with_logits(multi(ids).logits, targets, pos_weight=torch.tensor(weights)),
    )
    plain = make_classifier(num_labels=1)
    scaled = make_classifier(num_labels=1, target_mean=7.0, target_std=2.5, regression_loss="huber")
    scaled.load_state_dict(plain.state_dict())
    values = torch.tensor([4.0, 9.5, 7.0, 1.0])
    # the same head: its output is the standardised prediction, given back in the target's units
    torch.testing.assert_close(scaled(ids).logits, plain(ids).logits * 2.5 + 7.0)
    torch.testing.assert_close(
        scaled(ids, labels=values).loss,
        nn.functional.huber_loss(plain(ids).logits.squeeze(-1), (values - 7.0) / 2.5, delta=1.0),
    )
    scaled.save_pretrained(tmp_path)
    reloaded = AwdLstmForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(ids).logits, scaled(ids).logits)


def test_a_target_range_clips_regression_predictions_but_not_the_loss(tmp_path):
    ids = random_ids(4, 6)
    plain = make_classifier(num_labels=1, target_mean=7.0, target_std=2.5)
    with torch.no_grad():
        plain.classifier.out_proj.weight.normal_(
            0.0, 5.0, generator=torch.Generator().manual_seed(0)
        )  # far, both ways
    unclipped = plain(ids).logits
    low, high = sorted(unclipped.flatten().tolist())[1:3]  # between the extremes: some clipped each way
    clipped = make_classifier(num_labels=1, target_mean=7.0, target_std=2.5, target_range=[low, high])
    clipped.load_state_dict(plain.state_dict())
    torch.testing.assert_close(clipped(ids).logits, unclipped.clamp(low, high))
    values = torch.tensor([4.0, 9.5, 7.0, 1.0])
    torch.testing.assert_close(clipped(ids, labels=values).loss, plain(ids, labels=values).loss)  # from the head
    clipped.save_pretrained(tmp_path)
    reloaded = AwdLstmForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.target_range == [low, high]
    torch.testing.assert_close(reloaded(ids).logits, unclipped.clamp(low, high))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"label_thresholds": [0.5, 0.2]}, "2 values for 3 labels"),
        ({"label_thresholds": 1.0}, "probabilities in \\(0, 1\\)"),
        ({"pos_weight": [1.0, -2.0, 1.0]}, "positive numbers"),
        ({"regression_loss": "l1"}, "'mse' or 'huber'"),
        ({"target_mean": 3.0}, "go together"),
        ({"target_mean": 3.0, "target_std": 0.0}, "positive finite"),
        ({"target_range": [10.0, 1.0]}, "low <= high"),
        ({"target_range": [1.0, float("inf")]}, "two finite numbers"),
        ({"target_range": 5.0}, r"\[low, high\]"),
    ],
)
def test_classification_fields_are_checked(fields, message):
    with pytest.raises(ValueError, match=message):
        AwdLstmConfig(num_labels=3, **fields)


def test_thresholds_default_to_one_half_and_expand_per_label():
    assert AwdLstmConfig(num_labels=3).thresholds() == [0.5, 0.5, 0.5]
    assert AwdLstmConfig(num_labels=2, label_thresholds=0.3).thresholds() == [0.3, 0.3]
    assert AwdLstmConfig(num_labels=2, label_thresholds=[0.3, 0.7]).thresholds() == [0.3, 0.7]


def test_training_loss_adds_ar_and_tar_and_reaches_every_parameter():
    names = ("embedding_dropout", "input_dropout", "weight_dropout", "hidden_dropout", "output_dropout")
    model = make_classifier(classifier_dropout=0.0, **dict.fromkeys(names, 0.0))
    ids, labels = random_ids(4, 6), torch.tensor([0, 1, 1, 0])
    model.train()
    loss = model(ids, labels=labels).loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    no_regularization = make_classifier(
        classifier_dropout=0.0,
        activation_regularization=0.0,
        temporal_activation_regularization=0.0,
        **dict.fromkeys(names, 0.0),
    ).train()
    assert loss > no_regularization(ids, labels=labels).loss  # same weights (same seed): the difference is AR + TAR


def test_a_training_batch_of_one_document_fails_clearly():
    model = make_classifier().train()
    with pytest.raises(ValueError, match="at least 2 documents"):
        model(random_ids(1, 6), labels=torch.tensor([1]))
    assert model.eval()(random_ids(1, 6)).logits.shape == (1, 2)  # inference on one document is fine


def test_layer_groups_are_embedding_layers_then_head():
    model = make_classifier()
    groups = model.layer_groups()
    assert len(groups) == 5
    assert groups[0] == [model.awd_lstm.embed_tokens.weight] and groups[-1] == list(model.classifier.parameters())
    assert sum(len(g) for g in groups) == len(list(model.parameters()))


def test_encoder_loads_from_a_language_model_folder(tmp_path):
    torch.manual_seed(0)
    lm = AwdLstmForCausalLM(AwdLstmConfig(vocab_size=VOCAB, embedding_size=8, hidden_size=12, num_hidden_layers=3))
    lm.save_pretrained(tmp_path)
    classifier, info = AwdLstmForSequenceClassification.from_pretrained(
        tmp_path, num_labels=2, id2label={0: "negative", 1: "positive"}, output_loading_info=True
    )
    torch.testing.assert_close(classifier.awd_lstm.embed_tokens.weight, lm.awd_lstm.embed_tokens.weight)
    torch.testing.assert_close(
        classifier.awd_lstm.layers[2].lstm.weight_hh_l0, lm.awd_lstm.layers[2].lstm.weight_hh_l0
    )
    assert any(key.startswith("classifier.") for key in info["missing_keys"])  # the head is new
    assert not any("awd_lstm" in key for key in info["missing_keys"])
    norm = classifier.classifier.norm_in
    assert torch.equal(norm.running_mean, torch.zeros(24)) and torch.equal(norm.running_var, torch.ones(24))
    logits = classifier.eval()(random_ids()).logits
    assert torch.isfinite(logits).all()
    assert isinstance(
        AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2), AwdLstmForSequenceClassification
    )


def test_text_classification_pipeline_with_labels_top_k_order_and_long_documents(tmp_path, tokenizer):
    torch.manual_seed(0)
    config = AwdLstmConfig(
        vocab_size=len(tokenizer),
        embedding_size=8,
        hidden_size=12,
        num_hidden_layers=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    AwdLstmForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert "AutoModelForSequenceClassification" in json.loads((tmp_path / "config.json").read_text())["auto_map"]
    classify = pipeline("text-classification", model=str(tmp_path))
    texts = ["The movie was GREAT!!!", "I didn't like the ending.", "Terrible acting."]
    batched = classify(texts, batch_size=3)
    assert [result["label"] for result in batched] == [classify(text)[0]["label"] for text in texts]
    assert {result["label"] for result in batched} <= {"negative", "positive"}
    scores = classify(texts[0], top_k=None)
    assert sorted(s["label"] for s in scores) == ["negative", "positive"]
    assert sum(s["score"] for s in scores) == pytest.approx(1.0)
    words = ["the", "movie", "was", "good", "and"]
    long_document = " ".join(words[i % 5] for i in range(200_000))
    assert classify(long_document)[0]["label"] in {"negative", "positive"}
