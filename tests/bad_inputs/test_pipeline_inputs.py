"""Issue 19, class 4: pipelines (and the tokenizers' batch entry) given odd batches.

What ulmfit owns gives the result a user expects or an error naming the item: an empty list gives `[]`, an item that
is not a text is a `TypeError` naming its index, a `top_k` below 1 is a `ValueError`. Where transformers' stock
pipelines fail before any ulmfit code runs, the tests below assert what happens, with the reason: ulmfit must not
replace those pipelines globally.
"""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import ResNetConfig, TextClassificationPipeline, pipeline

from ulmfit import (
    AwdLstmConfig,
    AwdLstmForCausalLM,
    AwdLstmForSequenceClassification,
    AwdLstmTextClassificationPipeline,
    AwdLstmTokenizer,
    DeviseConfig,
    DeviseImageProcessor,
    DeviseModel,
    DeviseProcessor,
    DeviseTokenizer,
    GruSeq2SeqConfig,
    GruSeq2SeqForConditionalGeneration,
    GruSeq2SeqTokenizer,
)
from ulmfit.pipelines import ForwardBackwardEnsemble


TEXTS = ["The movie was great.", "The plot was bad.", "I loved the music."]
SOURCES = ["Je suis fatigué.", "Où est la gare ?"]
TARGETS = ["I'm tired.", "Where is the station?"]
WORDS = ["boat", "engine", "ship", "cat", "dog"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny AWD-LSTM classifier and language model, translator and DeViSE model, saved with their tokenizers."""
    root = tmp_path_factory.mktemp("odd-batches")
    torch.manual_seed(0)
    tokenizer = AwdLstmTokenizer.train(TEXTS, min_freq=1)
    sizes = {"vocab_size": len(tokenizer), "embedding_size": 8, "hidden_size": 12, "num_hidden_layers": 2}
    AwdLstmForSequenceClassification(AwdLstmConfig(num_labels=3, **sizes)).save_pretrained(root / "classifier")
    AwdLstmForCausalLM(AwdLstmConfig(**sizes)).save_pretrained(root / "lm")
    for name in ("classifier", "lm"):
        tokenizer.save_pretrained(root / name)

    translation_tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    config = GruSeq2SeqConfig(
        vocab_size=translation_tokenizer.vocab_size,
        decoder_vocab_size=translation_tokenizer.target_vocab_size,
        embedding_size=8,
        hidden_size=8,
    )
    GruSeq2SeqForConditionalGeneration(config).save_pretrained(root / "translator")
    translation_tokenizer.save_pretrained(root / "translator")

    devise_tokenizer = DeviseTokenizer(words=WORDS)
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    config = DeviseConfig(backbone_config=backbone, projection_dim=6, head_hidden_size=10, vocab_size=len(WORDS) + 1)
    model = DeviseModel(config).eval()
    model.set_word_vectors(torch.cat([torch.zeros(1, 6), torch.randn(len(WORDS), 6)]))
    model.save_pretrained(root / "devise")
    image_processor = DeviseImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    DeviseProcessor(image_processor=image_processor, tokenizer=devise_tokenizer).save_pretrained(root / "devise")
    return {name: str(root / name) for name in ("classifier", "lm", "translator", "devise")}


@pytest.fixture(scope="module")
def pipelines(folders):
    return {
        "sorted-classification": pipeline(
            "text-classification", model=folders["classifier"], pipeline_class=AwdLstmTextClassificationPipeline
        ),
        "stock-classification": pipeline("text-classification", model=folders["classifier"]),
        "generation": pipeline("text-generation", model=folders["lm"]),
        "translation": pipeline("translation", model=folders["translator"]),
        "image-search": pipeline("image-search", model=folders["devise"]),
        "zero-shot": pipeline("zero-shot-image-classification", model=folders["devise"]),
    }


def image():
    return PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 40, 3), dtype=np.uint8))


# --- What ulmfit owns: the expected result, or an error naming the item ----------------------------------------------

EMPTY_BATCH_CASES = {
    "sorted-classification": {},
    "translation": {"max_new_tokens": 3},
    "image-search": {"target": "words"},
}


@pytest.mark.parametrize("task", sorted(EMPTY_BATCH_CASES))
def test_an_empty_list_gives_an_empty_list(pipelines, task):
    assert pipelines[task]([], **EMPTY_BATCH_CASES[task]) == []


@pytest.mark.parametrize(
    ("task", "batch", "kwargs"),
    [
        ("sorted-classification", ["Good.", None], {}),
        ("sorted-classification", ["Good.", None], {"batch_size": 2}),
        ("translation", ["Je suis fatigué.", None], {"max_new_tokens": 3}),
        ("translation", ["Je suis fatigué.", 3], {"max_new_tokens": 3}),
        ("image-search", ["boat", None], {"target": "words"}),
    ],
)
def test_an_item_that_is_not_a_text_is_named_by_its_index(pipelines, task, batch, kwargs):
    with pytest.raises(TypeError, match=rf"{type(batch[1]).__name__} \(item 1\)"):
        pipelines[task](batch, **kwargs)


@pytest.mark.parametrize("top_k", [-1, 0, 1.5, True])
def test_the_sorting_pipeline_refuses_a_top_k_below_one(pipelines, top_k):
    with pytest.raises(ValueError, match="`top_k` must be a positive integer"):
        pipelines["sorted-classification"]("Good.", top_k=top_k)


def test_the_sorting_pipeline_still_gives_every_label_with_top_k_none(pipelines):
    assert len(pipelines["sorted-classification"]("Good.", top_k=None)) == 3


def test_the_ensemble_handles_odd_batches(pipelines):
    classify = pipelines["sorted-classification"]
    ensemble = ForwardBackwardEnsemble(classify, classify)
    assert ensemble([]) == []
    with pytest.raises(TypeError, match=r"NoneType \(item 1\)"):
        ensemble(["Good.", None])
    with pytest.raises(ValueError, match="`top_k`"):
        ensemble(["Good."], top_k=-1)


@pytest.mark.parametrize(
    ("make_tokenizer", "call"),
    [
        (lambda: AwdLstmTokenizer.train(TEXTS, min_freq=1), lambda t: t(["Good.", None])),
        (lambda: AwdLstmTokenizer.train(TEXTS, min_freq=1), lambda t: t(["Good.", "Bad."], ["Fine.", None])),
        (lambda: GruSeq2SeqTokenizer.train(SOURCES, TARGETS), lambda t: t(["Je suis.", None])),
        (lambda: GruSeq2SeqTokenizer.train(SOURCES, TARGETS), lambda t: t(text_target=["I'm.", None])),
        (lambda: DeviseTokenizer(words=WORDS), lambda t: t(["boat", None])),
    ],
    ids=["awd-lstm", "awd-lstm-pair", "gru-source", "gru-target", "devise"],
)
def test_a_tokenizer_batch_with_none_names_the_index(make_tokenizer, call):
    with pytest.raises(TypeError, match=r"NoneType.*item 1"):
        call(make_tokenizer())


@pytest.mark.parametrize(
    "make_tokenizer",
    [lambda: AwdLstmTokenizer.train(TEXTS, min_freq=1), lambda: GruSeq2SeqTokenizer.train(SOURCES, TARGETS)],
    ids=["awd-lstm", "gru"],
)
def test_a_tokenizer_encodes_an_empty_batch_to_empty_lists(make_tokenizer):
    encoded = make_tokenizer()([], padding=True)
    assert encoded["input_ids"] == [] and encoded["attention_mask"] == []


@pytest.mark.parametrize(
    "as_batch", [tuple, np.array, lambda texts: (text for text in texts)], ids=["tuple", "numpy", "generator"]
)
@pytest.mark.parametrize("task", ["sorted-classification", "translation"])
def test_a_tuple_array_or_generator_of_texts_is_a_batch(pipelines, task, as_batch):
    # found by a second campaign: the classifier scored the first text only, the translator returned []
    texts = ["Je suis fatigué.", "Où est la gare ?"] if task == "translation" else TEXTS[:2]
    kwargs = EMPTY_BATCH_CASES[task]
    assert pipelines[task](as_batch(texts), **kwargs) == pipelines[task](list(texts), **kwargs)
    assert len(pipelines[task](as_batch(texts), **kwargs)) == 2


def test_the_translators_tokenizer_refuses_a_different_number_of_targets():
    tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    with pytest.raises(ValueError, match=r"`text` has 1 sentences but `text_target` 2"):
        tokenizer(["Je suis."], text_target=["I'm tired.", "Where"])


def test_the_devise_tokenizer_names_candidate_labels_for_an_empty_list():
    with pytest.raises(ValueError, match="candidate_labels"):
        DeviseTokenizer(words=WORDS)([])


# --- transformers' stock pipelines: what they do, and why ulmfit leaves it -------------------------------------------


@pytest.mark.parametrize(("task", "kwargs"), [("stock-classification", {}), ("generation", {"max_new_tokens": 2})])
def test_stock_pipelines_raise_index_error_for_an_empty_list(pipelines, task, kwargs):
    # transformers' `Pipeline.__call__` reads `inputs[0]` (to detect chat input) before any tokenizer or model runs;
    # ulmfit's own pipelines return [] instead (above).
    with pytest.raises(IndexError):
        pipelines[task]([], **kwargs)


def test_stock_text_classification_slices_labels_with_a_negative_top_k(pipelines):
    # transformers' `TextClassificationPipeline.postprocess` does `scores[:top_k]`: -1 drops the last label. ulmfit's
    # `AwdLstmTextClassificationPipeline` refuses it (above).
    assert type(pipelines["stock-classification"]) is TextClassificationPipeline
    assert len(pipelines["stock-classification"]("Good.", top_k=-1)) == 2


def test_stock_text_classification_with_none_in_a_list_fails_in_the_tokenizer_base(pipelines):
    # the stock pipeline sends each item alone, so the tokenizer sees `None`, not the list, and cannot name the
    # index; transformers' `__call__` raises before ulmfit's code is reached.
    with pytest.raises(ValueError, match="You need to specify either `text` or `text_target`"):
        pipelines["stock-classification"](["Good.", None])


def test_stock_text_generation_with_none_in_a_list_fails_before_the_tokenizer(pipelines):
    # `TextGenerationPipeline.preprocess` concatenates its prefix with the prompt before tokenizing
    with pytest.raises(TypeError, match="NoneType"):
        pipelines["generation"](["Good.", None], max_new_tokens=2)


def test_stock_zero_shot_with_candidate_labels_none_fails_before_the_devise_processor(pipelines):
    # `ZeroShotImageClassificationPipeline.preprocess` formats each label into its template before calling the
    # tokenizer, so `candidate_labels=None` never reaches DeviseTokenizer; an empty list does, and is named (above).
    with pytest.raises(TypeError, match="'NoneType' object is not iterable"):
        pipelines["zero-shot"](image(), candidate_labels=None)
    with pytest.raises(ValueError, match="candidate_labels"):
        pipelines["zero-shot"](image(), candidate_labels=[])


def test_stock_zero_shot_raises_index_error_for_an_empty_list_of_images(pipelines):
    # the same `inputs[0]` in transformers' `Pipeline.__call__`
    with pytest.raises(IndexError):
        pipelines["zero-shot"]([], candidate_labels=["boat"])
