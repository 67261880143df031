"""Issue 19, classes 3 and 6: tensors a model cannot take, and silent oddities.

Class 3: every public forward / generate entry of every model checks what it is given (rank, dtype, size, range,
finite values) and raises a `ValueError` or `TypeError` that names the argument, instead of failing deep inside torch.
Class 6: the oddities decided here: a classifier row with no real token and a mask with a hole are rejected (naming
the rows), `processor(images=[])` is a `ValueError`, and a 2-D greyscale array is an image (replicated to 3 channels).
The valid edge cases (a batch of one, a length of one, an empty batch where it gives empty outputs, float64 inputs
cast to the model's dtype) still work.
"""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import ResNetConfig

from ulmfit import (
    AwdLstmConfig,
    AwdLstmForCausalLM,
    AwdLstmForSequenceClassification,
    DeviseConfig,
    DeviseImageProcessor,
    DeviseModel,
    DeviseProcessor,
    DeviseTokenizer,
    EfficientNetLiteConfig,
    EfficientNetLiteForImageClassification,
    GruSeq2SeqConfig,
    GruSeq2SeqForConditionalGeneration,
)


VOCAB, SOURCE_VOCAB, TARGET_VOCAB, DIM = 40, 30, 25, 8
WORDS = ["boat", "engine", "ship", "cat", "dog"]


def tiny_lite_config(**kwargs) -> EfficientNetLiteConfig:
    return EfficientNetLiteConfig(
        stem_channels=8,
        kernel_sizes=[3],
        strides=[2],
        expand_ratios=[1],
        out_channels=[8],
        num_block_repeats=[1],
        hidden_dim=8,
        **kwargs,
    )


@pytest.fixture(scope="module")
def m():
    """One tiny model of every family, in eval mode, and the inputs they take."""
    torch.manual_seed(0)
    awd = {"vocab_size": VOCAB, "embedding_size": DIM, "hidden_size": 12, "num_hidden_layers": 2}
    lm = AwdLstmForCausalLM(AwdLstmConfig(**awd)).eval()
    classifier = AwdLstmForSequenceClassification(AwdLstmConfig(**awd, num_labels=3)).eval()
    multi = AwdLstmForSequenceClassification(
        AwdLstmConfig(**awd, num_labels=3, problem_type="multi_label_classification")
    ).eval()
    regression = AwdLstmForSequenceClassification(AwdLstmConfig(**awd, num_labels=1)).eval()
    translator = GruSeq2SeqForConditionalGeneration(
        GruSeq2SeqConfig(vocab_size=SOURCE_VOCAB, decoder_vocab_size=TARGET_VOCAB, embedding_size=16, hidden_size=12)
    ).eval()
    devise = DeviseModel(
        DeviseConfig(backbone_config=tiny_lite_config(), projection_dim=DIM, head_hidden_size=12, vocab_size=10)
    ).eval()
    devise.set_word_vectors(torch.randn(10, DIM))
    devise.set_label_embeddings(torch.randn(3, DIM))
    resnet_devise = DeviseModel(
        DeviseConfig(
            backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic"),
            projection_dim=DIM,
            head_hidden_size=12,
        )
    ).eval()
    lite = EfficientNetLiteForImageClassification(tiny_lite_config(num_labels=3)).eval()
    image_processor = DeviseImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    ids = torch.randint(9, VOCAB, (2, 5), generator=torch.Generator().manual_seed(1))
    sources = torch.randint(4, SOURCE_VOCAB, (2, 6), generator=torch.Generator().manual_seed(2))
    targets = torch.randint(4, TARGET_VOCAB, (2, 4), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        encoded = translator.get_encoder()(sources)
        translated = translator(sources, labels=targets)
    return {
        "lm": lm,
        "classifier": classifier,
        "multi": multi,
        "regression": regression,
        "translator": translator,
        "devise": devise,
        "resnet_devise": resnet_devise,
        "lite": lite,
        "image_processor": image_processor,
        "processor": DeviseProcessor(image_processor=image_processor, tokenizer=DeviseTokenizer(words=WORDS)),
        "ids": ids,
        "state": lm(ids).state,
        "sources": sources,
        "targets": targets,
        "encoded": encoded,
        "translator_state": translated.state,
        "pixels": torch.randn(2, 3, 16, 16),
        "words": torch.tensor([[1, 2], [3, 0]]),
    }


def _with_state(m, change):
    return tuple((change(h), change(c)) for h, c in m["state"])


def _mask(*rows):
    return torch.tensor(rows)


# (class, family, case, call, exception, the argument the message must name)
CASES = [
    # ---- AWD-LSTM language model and encoder
    (3, "awd_lm", "zero_length", lambda m: m["lm"](m["ids"][:, :0]), ValueError, "input_ids"),
    (3, "awd_lm", "1d_input_ids", lambda m: m["lm"](m["ids"][0]), ValueError, "input_ids"),
    (3, "awd_lm", "3d_input_ids", lambda m: m["lm"](m["ids"][None]), ValueError, "input_ids"),
    (3, "awd_lm", "float_input_ids", lambda m: m["lm"](m["ids"].float()), TypeError, "input_ids"),
    (3, "awd_lm", "input_ids_out_of_vocab", lambda m: m["lm"](m["ids"] + VOCAB), ValueError, "input_ids"),
    (3, "awd_lm", "labels_batch_mismatch", lambda m: m["lm"](m["ids"], labels=m["ids"][:1]), ValueError, "labels"),
    (3, "awd_lm", "labels_out_of_vocab", lambda m: m["lm"](m["ids"], labels=m["ids"] + VOCAB), ValueError, "labels"),
    (3, "awd_lm", "float_labels", lambda m: m["lm"](m["ids"], labels=m["ids"].float()), TypeError, "labels"),
    (3, "awd_lm", "labels_empty_batch", lambda m: m["lm"](m["ids"][:0], labels=m["ids"][:0]), ValueError, "labels"),
    (
        3,
        "awd_lm",
        "shift_labels_out_of_vocab",
        lambda m: m["lm"](m["ids"], labels=m["ids"], shift_labels=m["ids"] + VOCAB),
        ValueError,
        "shift_labels",
    ),
    (3, "awd_lm", "mask_rows", lambda m: m["lm"](m["ids"], attention_mask=torch.ones(3, 5)), ValueError, "mask"),
    (3, "awd_lm", "mask_1d", lambda m: m["lm"](m["ids"], attention_mask=torch.ones(5)), ValueError, "attention_mask"),
    (
        3,
        "awd_lm",
        "mask_values",
        lambda m: m["lm"](m["ids"], attention_mask=torch.full((2, 5), 0.5)),
        ValueError,
        "attention_mask",
    ),
    (
        3,
        "awd_lm",
        "inputs_embeds_size",
        lambda m: m["lm"](inputs_embeds=torch.ones(2, 5, DIM + 1)),
        ValueError,
        "inputs_embeds",
    ),
    (
        3,
        "awd_lm",
        "inputs_embeds_2d",
        lambda m: m["lm"](inputs_embeds=torch.ones(5, DIM)),
        ValueError,
        "inputs_embeds",
    ),
    (
        3,
        "awd_lm",
        "inputs_embeds_integer",
        lambda m: m["lm"](inputs_embeds=torch.ones(2, 5, DIM, dtype=torch.long)),
        TypeError,
        "inputs_embeds",
    ),
    (
        3,
        "awd_lm",
        "inputs_embeds_nan",
        lambda m: m["lm"](inputs_embeds=torch.full((2, 5, DIM), float("nan"))),
        ValueError,
        "inputs_embeds",
    ),
    (3, "awd_lm", "state_batch", lambda m: m["lm"](m["ids"][:1], state=m["state"]), ValueError, "state"),
    (
        3,
        "awd_lm",
        "state_size",
        lambda m: m["lm"](m["ids"], state=_with_state(m, lambda t: t[:, :3])),
        ValueError,
        "state",
    ),
    (3, "awd_lm", "state_layers", lambda m: m["lm"](m["ids"], state=m["state"][:1]), ValueError, "state"),
    (3, "awd_lm", "state_tensor", lambda m: m["lm"](m["ids"], state=torch.zeros(2, 12)), ValueError, "state"),
    (
        3,
        "awd_lm",
        "state_integer",
        lambda m: m["lm"](m["ids"], state=_with_state(m, lambda t: t.long())),
        TypeError,
        "state",
    ),
    (
        3,
        "awd_lm",
        "generate_empty_batch",
        lambda m: m["lm"].generate(m["ids"][:0], max_new_tokens=2, pad_token_id=1),
        ValueError,
        "input_ids",
    ),
    (
        3,
        "awd_lm",
        "generate_1d",
        lambda m: m["lm"].generate(m["ids"][0], max_new_tokens=2, pad_token_id=1),
        ValueError,
        "input_ids",
    ),
    (
        3,
        "awd_lm",
        "generate_zero_length",
        lambda m: m["lm"].generate(m["ids"][:, :0], max_new_tokens=2, pad_token_id=1),
        ValueError,
        "input_ids",
    ),
    (3, "awd_base", "zero_length", lambda m: m["lm"].awd_lstm(m["ids"][:, :0]), ValueError, "input_ids"),
    (3, "awd_base", "no_input", lambda m: m["lm"].awd_lstm(), ValueError, "input_ids"),
    # ---- AWD-LSTM classifier (ULMFiT)
    (3, "classifier", "zero_length", lambda m: m["classifier"](m["ids"][:, :0]), ValueError, "input_ids"),
    (3, "classifier", "1d_input_ids", lambda m: m["classifier"](m["ids"][0]), ValueError, "input_ids"),
    (3, "classifier", "float_input_ids", lambda m: m["classifier"](m["ids"].float()), TypeError, "input_ids"),
    (
        3,
        "classifier",
        "mask_shape",
        lambda m: m["classifier"](m["ids"], attention_mask=torch.ones(2, 4)),
        ValueError,
        "attention_mask",
    ),
    (
        3,
        "classifier",
        "mask_values",
        lambda m: m["classifier"](m["ids"], attention_mask=torch.full((2, 5), 2)),
        ValueError,
        "attention_mask",
    ),
    (
        3,
        "classifier",
        "labels_out_of_range",
        lambda m: m["classifier"](m["ids"], labels=torch.tensor([0, 3])),
        ValueError,
        "labels",
    ),
    (
        3,
        "classifier",
        "labels_batch_mismatch",
        lambda m: m["classifier"](m["ids"], labels=torch.tensor([0, 1, 2])),
        ValueError,
        "labels",
    ),
    (
        3,
        "classifier",
        "labels_empty_batch",
        lambda m: m["classifier"](m["ids"][:0], labels=torch.tensor([], dtype=torch.long)),
        ValueError,
        "labels",
    ),
    (
        3,
        "classifier",
        "single_label_float",
        lambda m: (
            m["classifier"].config.__setattr__("problem_type", "single_label_classification"),
            m["classifier"](m["ids"], labels=torch.tensor([0.0, 1.0])),
        ),
        TypeError,
        "labels",
    ),
    (
        3,
        "classifier",
        "multi_label_shape",
        lambda m: m["multi"](m["ids"], labels=torch.ones(2, 2)),
        ValueError,
        "labels",
    ),
    (
        3,
        "classifier",
        "multi_label_values",
        lambda m: m["multi"](m["ids"], labels=torch.full((2, 3), 2.0)),
        ValueError,
        "labels",
    ),
    (
        3,
        "classifier",
        "regression_shape",
        lambda m: m["regression"](m["ids"], labels=torch.tensor([0.5, 1.0, 2.0])),
        ValueError,
        "labels",
    ),
    (
        3,
        "classifier",
        "regression_nan",
        lambda m: m["regression"](m["ids"], labels=torch.tensor([0.5, float("nan")])),
        ValueError,
        "labels",
    ),
    # ---- GRU translator
    (
        3,
        "translator",
        "empty_batch",
        lambda m: m["translator"](m["sources"][:0], decoder_input_ids=m["targets"][:0]),
        ValueError,
        "input_ids",
    ),
    (
        3,
        "translator",
        "zero_length_source",
        lambda m: m["translator"](m["sources"][:, :0], labels=m["targets"]),
        ValueError,
        "input_ids",
    ),
    (
        3,
        "translator",
        "zero_length_labels",
        lambda m: m["translator"](m["sources"], labels=m["targets"][:, :0]),
        ValueError,
        "labels",
    ),
    (
        3,
        "translator",
        "zero_length_decoder_input_ids",
        lambda m: m["translator"](m["sources"], decoder_input_ids=m["targets"][:, :0]),
        ValueError,
        "decoder_input_ids",
    ),
    (
        3,
        "translator",
        "1d_input_ids",
        lambda m: m["translator"](m["sources"][0], labels=m["targets"]),
        ValueError,
        "input_ids",
    ),
    (
        3,
        "translator",
        "1d_labels",
        lambda m: m["translator"](m["sources"], labels=m["targets"][0]),
        ValueError,
        "labels",
    ),
    (
        3,
        "translator",
        "float_labels",
        lambda m: m["translator"](m["sources"], labels=m["targets"].float()),
        TypeError,
        "labels",
    ),
    (
        3,
        "translator",
        "labels_out_of_vocab",
        lambda m: m["translator"](m["sources"], labels=m["targets"] + TARGET_VOCAB),
        ValueError,
        "labels",
    ),
    (
        3,
        "translator",
        "labels_batch_mismatch",
        lambda m: m["translator"](m["sources"], labels=m["targets"][:1]),
        ValueError,
        "labels",
    ),
    (
        3,
        "translator",
        "mask_values",
        lambda m: m["translator"](m["sources"], attention_mask=torch.full((2, 6), 0.5), labels=m["targets"]),
        ValueError,
        "attention_mask",
    ),
    (
        3,
        "translator",
        "mask_against_encoder_outputs",
        lambda m: m["translator"](
            encoder_outputs=m["encoded"], attention_mask=torch.ones(2, 3), decoder_input_ids=m["targets"]
        ),
        ValueError,
        "attention_mask",
    ),
    (
        3,
        "translator",
        "encoder_outputs_size",
        lambda m: m["translator"](encoder_outputs=(torch.zeros(2, 6, 5), torch.zeros(2, 2, 5)), labels=m["targets"]),
        ValueError,
        "encoder_outputs",
    ),
    (
        3,
        "translator",
        "state_batch",
        lambda m: m["translator"](
            encoder_outputs=m["encoded"],
            decoder_input_ids=m["targets"][:, :1],
            state=m["translator_state"].index_select(torch.tensor([0])),
        ),
        ValueError,
        "state",
    ),
    (
        3,
        "translator",
        "generate_empty_batch",
        lambda m: m["translator"].generate(m["sources"][:0], max_new_tokens=2),
        ValueError,
        "input_ids",
    ),
    (
        3,
        "translator",
        "generate_1d",
        lambda m: m["translator"].generate(m["sources"][0], max_new_tokens=2),
        ValueError,
        "input_ids",
    ),
    # ---- DeViSE and EfficientNet-Lite
    (3, "devise", "3d_pixel_values", lambda m: m["devise"](pixel_values=m["pixels"][0]), ValueError, "pixel_values"),
    (
        3,
        "devise",
        "pixel_values_channels",
        lambda m: m["devise"](pixel_values=m["pixels"][:, :1]),
        ValueError,
        "pixel_values",
    ),
    (
        3,
        "devise",
        "uint8_pixel_values",
        lambda m: m["devise"](pixel_values=m["pixels"].to(torch.uint8)),
        TypeError,
        "pixel_values",
    ),
    (
        3,
        "devise",
        "nan_pixel_values",
        lambda m: m["devise"](pixel_values=m["pixels"] * float("nan")),
        ValueError,
        "pixel_values",
    ),
    (
        3,
        "devise",
        "no_pixel",
        lambda m: m["devise"](pixel_values=m["pixels"][:, :, :0, :0]),
        ValueError,
        "pixel_values",
    ),
    (
        3,
        "devise",
        "resnet_backbone_pixel_values",
        lambda m: m["resnet_devise"](pixel_values=m["pixels"][0]),
        ValueError,
        "pixel_values",
    ),
    (
        3,
        "devise",
        "integer_image_features",
        lambda m: m["devise"](image_features=torch.zeros(2, 16, dtype=torch.long)),
        TypeError,
        "image_features",
    ),
    (
        3,
        "devise",
        "nan_image_features",
        lambda m: m["devise"](image_features=torch.full((2, 16), float("nan"))),
        ValueError,
        "image_features",
    ),
    (3, "devise", "1d_input_ids", lambda m: m["devise"](input_ids=m["words"][0]), ValueError, "input_ids"),
    (3, "devise", "zero_words", lambda m: m["devise"](input_ids=m["words"][:, :0]), ValueError, "input_ids"),
    (3, "devise", "float_input_ids", lambda m: m["devise"](input_ids=m["words"].float()), TypeError, "input_ids"),
    (3, "devise", "input_ids_out_of_vocab", lambda m: m["devise"](input_ids=m["words"] + 10), ValueError, "input_ids"),
    (
        3,
        "devise",
        "mask_shape",
        lambda m: m["devise"](input_ids=m["words"], attention_mask=torch.ones(1, 2)),
        ValueError,
        "attention_mask",
    ),
    (
        3,
        "devise",
        "mask_values",
        lambda m: m["devise"](input_ids=m["words"], attention_mask=torch.full((2, 2), 0.5)),
        ValueError,
        "attention_mask",
    ),
    (
        3,
        "devise",
        "labels_out_of_range",
        lambda m: m["devise"](pixel_values=m["pixels"], labels=torch.tensor([0, 5])),
        ValueError,
        "labels",
    ),
    (
        3,
        "devise",
        "labels_batch_mismatch",
        lambda m: m["devise"](pixel_values=m["pixels"], labels=torch.tensor([0, 1, 2])),
        ValueError,
        "labels",
    ),
    (
        3,
        "devise",
        "float_labels",
        lambda m: m["devise"](pixel_values=m["pixels"], labels=torch.tensor([0.0, 1.0])),
        TypeError,
        "labels",
    ),
    (
        3,
        "devise",
        "labels_empty_batch",
        lambda m: m["devise"](pixel_values=m["pixels"][:0], labels=torch.tensor([], dtype=torch.long)),
        ValueError,
        "labels",
    ),
    (
        3,
        "devise",
        "nan_label_embeds",
        lambda m: m["devise"](pixel_values=m["pixels"], label_embeds=torch.full((2, DIM), float("nan"))),
        ValueError,
        "label_embeds",
    ),
    (
        3,
        "devise",
        "integer_label_embeds",
        lambda m: m["devise"](pixel_values=m["pixels"], label_embeds=torch.ones(2, DIM, dtype=torch.long)),
        TypeError,
        "label_embeds",
    ),
    (3, "efficientnet_lite", "3d_pixel_values", lambda m: m["lite"](m["pixels"][0]), ValueError, "pixel_values"),
    (
        3,
        "efficientnet_lite",
        "uint8_pixel_values",
        lambda m: m["lite"](m["pixels"].to(torch.uint8)),
        TypeError,
        "pixel_values",
    ),
    (
        3,
        "efficientnet_lite",
        "labels_out_of_range",
        lambda m: m["lite"](m["pixels"], labels=torch.tensor([0, 3])),
        ValueError,
        "labels",
    ),
    (
        3,
        "efficientnet_lite",
        "labels_batch_mismatch",
        lambda m: m["lite"](m["pixels"], labels=torch.tensor([0, 1, 2])),
        ValueError,
        "labels",
    ),
    (
        3,
        "efficientnet_lite",
        "float_labels",
        lambda m: m["lite"](m["pixels"], labels=torch.tensor([0.0, 1.0])),
        TypeError,
        "labels",
    ),
    (
        3,
        "image_processor",
        "1d_array",
        lambda m: m["image_processor"](np.zeros(40, dtype=np.uint8), return_tensors="pt"),
        ValueError,
        r"shape \(40,\)",
    ),
    (
        3,
        "image_processor",
        "no_pixel",
        lambda m: m["image_processor"]([np.zeros((0, 0, 3), dtype=np.uint8)], return_tensors="pt"),
        ValueError,
        "image 0",
    ),
    (
        3,
        "image_processor",
        "nan_pixels",
        lambda m: m["image_processor"]([np.full((8, 8, 3), np.nan, dtype=np.float32)], return_tensors="pt"),
        ValueError,
        "image 0",
    ),
    # ---- Class 6: silent oddities, now decided
    (
        6,
        "classifier",
        "fully_masked_row",
        lambda m: m["classifier"](m["ids"], attention_mask=_mask([1, 1, 1, 1, 1], [0, 0, 0, 0, 0])),
        ValueError,
        r"attention_mask` rows \[1\] have no real token",
    ),
    (
        6,
        "classifier",
        "fully_masked_row_without_grad",
        lambda m: torch.no_grad()(m["classifier"])(m["ids"], attention_mask=_mask([0, 0, 0, 0, 0], [1, 1, 1, 1, 1])),
        ValueError,
        r"attention_mask` rows \[0\] have no real token",
    ),
    (
        6,
        "classifier",
        "mask_with_a_hole",
        lambda m: m["classifier"](m["ids"], attention_mask=_mask([1, 0, 1, 1, 1], [1, 1, 1, 1, 1])),
        ValueError,
        r"attention_mask` rows \[0\] have padding between real tokens",
    ),
    (
        6,
        "classifier",
        "mask_with_a_hole_without_grad",
        lambda m: torch.no_grad()(m["classifier"])(m["ids"], attention_mask=_mask([1, 1, 1, 1, 1], [0, 1, 0, 1, 0])),
        ValueError,
        r"attention_mask` rows \[1\] have padding between real tokens",
    ),
    (6, "processor", "empty_images", lambda m: m["processor"](images=[]), ValueError, "images"),
    (
        6,
        "image_processor",
        "empty_images",
        lambda m: m["image_processor"]([], return_tensors="pt"),
        ValueError,
        "images",
    ),
    (
        6,
        "image_processor",
        "empty_nested_images",
        lambda m: m["image_processor"]([[]], return_tensors="pt"),
        ValueError,
        "images",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        pytest.param(call, error, names, id=f"class{kind}-{family}-{case}")
        for kind, family, case, call, error, names in CASES
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(m, call, error, names):
    with pytest.raises(error, match=names):
        call(m)
    m["classifier"].config.problem_type = None  # a case may set it; transformers infers it from the labels


def test_every_case_class_is_counted():
    counts = {kind: sum(case[0] == kind for case in CASES) for kind in (3, 6)}
    assert counts[3] >= 80 and counts[6] >= 7, counts


# ---- Valid edge cases still work


def test_awd_lstm_batch_of_one_length_one_and_empty_batch(m):
    lm, ids = m["lm"], m["ids"]
    one = lm(ids[:1, :1], labels=ids[:1, :1])
    assert one.logits.shape == (1, 1, VOCAB) and one.loss is not None
    empty = lm(ids[:0])
    assert empty.logits.shape == (0, 5, VOCAB) and empty.state[0][0].shape == (0, 12)
    assert lm.generate(ids[:, :1], max_new_tokens=2, do_sample=False, pad_token_id=1).shape == (2, 3)


def test_awd_lstm_float64_inputs_embeds_and_state_are_cast(m):
    lm, ids = m["lm"], m["ids"]
    embeds = lm.get_input_embeddings()(ids)
    with torch.no_grad():
        reference = lm(inputs_embeds=embeds, state=m["state"]).logits
        cast = lm(inputs_embeds=embeds.double(), state=_with_state(m, torch.Tensor.double)).logits
    assert cast.dtype == torch.float32
    torch.testing.assert_close(cast, reference)


def test_awd_lstm_all_padding_row_of_the_language_model_keeps_its_state(m):
    # A BPTT chunk where one stream has ended is fine for the LM: the row's state passes through (the classifier
    # rejects such a row instead, since it would predict from nothing).
    out = m["lm"](m["ids"], attention_mask=_mask([0, 0, 0, 0, 0], [1, 1, 1, 1, 1]), state=m["state"])
    torch.testing.assert_close(out.state[0][0][0], m["state"][0][0][0])


def test_classifier_batch_of_one_length_one_empty_batch_and_one_token_row(m):
    classifier, ids = m["classifier"], m["ids"]
    with torch.no_grad():
        assert classifier(ids[:1, :1]).logits.shape == (1, 3)
        assert classifier(ids[:0]).logits.shape == (0, 3)
        one_token = classifier(ids, attention_mask=_mask([0, 0, 0, 0, 1], [1, 1, 1, 1, 1])).logits
    torch.testing.assert_close(one_token[0], classifier(ids[:1, -1:]).logits[0], atol=1e-5, rtol=0)
    assert classifier(ids, labels=torch.tensor([[0], [2]])).loss is not None  # (batch, 1) ids, as transformers


def test_translator_batch_of_one_and_length_one(m):
    translator, sources, targets = m["translator"], m["sources"], m["targets"]
    out = translator(sources[:1, :1], labels=targets[:1, :1])
    assert out.logits.shape == (1, 1, TARGET_VOCAB) and torch.isfinite(out.loss)
    with_ignored = targets[:1].clone()
    with_ignored[0, -1] = -100
    assert torch.isfinite(translator(sources[:1], labels=with_ignored).loss)
    assert translator.generate(sources[:1, :1], max_new_tokens=2).shape[0] == 1


def test_devise_float64_inputs_are_cast_and_an_empty_batch_gives_empty_outputs(m):
    devise, pixels = m["devise"], m["pixels"]
    with torch.no_grad():
        reference = devise(pixel_values=pixels).image_embeds
        cast = devise(pixel_values=pixels.double()).image_embeds
        assert devise(pixel_values=pixels[:0]).image_embeds.shape == (0, DIM)
        assert devise(input_ids=m["words"][:0]).text_embeds.shape == (0, DIM)
        assert devise(pixel_values=pixels[:1], label_embeds=torch.randn(1, DIM).double()).loss is not None
        assert m["resnet_devise"](pixel_values=pixels.double()).image_embeds.dtype == torch.float32
    torch.testing.assert_close(cast, reference)


def test_a_2d_greyscale_image_is_replicated_to_three_channels(m):
    processor = m["image_processor"]
    grey = np.random.default_rng(0).integers(0, 256, (20, 24), dtype=np.uint8)
    expected = processor(PIL.Image.fromarray(grey).convert("RGB"), return_tensors="pt")["pixel_values"]
    for image in (grey, [grey], torch.from_numpy(grey), np.repeat(grey[..., None], 3, axis=-1)):
        torch.testing.assert_close(processor(image, return_tensors="pt")["pixel_values"], expected)
    assert processor([grey, PIL.Image.fromarray(grey)], return_tensors="pt")["pixel_values"].shape == (2, 3, 16, 16)


def test_labels_that_fail_leave_the_classifiers_problem_type_unset():
    # found by a second campaign: float labels of the wrong shape set `multi_label_classification` before failing
    config = AwdLstmConfig(vocab_size=40, embedding_size=8, hidden_size=12, num_hidden_layers=2, num_labels=3)
    model = AwdLstmForSequenceClassification(config).eval()
    ids = torch.randint(9, 40, (2, 5))
    with pytest.raises(ValueError, match="Multi-label `labels`"):
        model(ids, labels=torch.tensor([0.0, 1.0]))
    assert model.config.problem_type is None
    assert model(ids, labels=torch.tensor([0, 2])).loss.isfinite()
    assert model.config.problem_type == "single_label_classification"


@pytest.mark.parametrize(
    "setting", [{"num_beams": 0}, {"num_beams": "2"}, {"num_return_sequences": 1.5}, {"top_k": True}]
)
def test_generation_counts_that_are_not_whole_numbers_in_range_are_named(setting):
    from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration

    ids = torch.randint(4, 20, (2, 5))
    language_model = AwdLstmForCausalLM(AwdLstmConfig(vocab_size=20, embedding_size=8, hidden_size=8)).eval()
    translator = GruSeq2SeqForConditionalGeneration(
        GruSeq2SeqConfig(vocab_size=20, decoder_vocab_size=20, embedding_size=8, hidden_size=8)
    ).eval()
    (name,) = setting
    for model in (language_model, translator):
        with pytest.raises(ValueError, match=f"generate\\(\\): `{name}` must be a whole number"):
            model.generate(ids, max_new_tokens=3, **setting)
