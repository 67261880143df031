"""Issue 19, class 5: files that don't fit together.

Every tokenizer load error names the folder and the file (a missing vocabulary, a truncated or invalid JSON file with
the JSON error's position), and a tokenizer is checked against its model where both are loaded together: larger
than the embedding is a `ValueError` naming both sizes and folders, much smaller (not just padding) a warning that
they look like the wrong pair. `check_tokenizer_fits_model` is the same check for scripts.
"""

import json
import logging
import os
import shutil

import pytest
import torch
from transformers import AutoTokenizer, ResNetConfig, TextClassificationPipeline, pipeline

from ulmfit import (
    AwdLstmConfig,
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
from ulmfit.models.awd_lstm.text_processing_awd_lstm import SPECIAL_TOKENS
from ulmfit.pipelines import ForwardBackwardEnsemble
from ulmfit.pipelines.compatibility import check_tokenizer_fits_model


TEXTS = ["The movie was great.", "The plot was bad.", "I loved the music, and the actors were wonderful."]
SOURCES = ["Je suis fatigué.", "Où est la gare ?"]
TARGETS = ["I'm tired.", "Where is the station?"]
WORDS = ["boat", "engine", "ship", "cat", "dog"]


def awd_lstm_tokenizer():
    return AwdLstmTokenizer.train(TEXTS, min_freq=1)


def classifier(vocab_size: int) -> AwdLstmForSequenceClassification:
    torch.manual_seed(0)
    config = AwdLstmConfig(vocab_size=vocab_size, embedding_size=8, hidden_size=12, num_hidden_layers=2, num_labels=2)
    return AwdLstmForSequenceClassification(config).eval()


def translator(tokenizer, vocab_size=None, decoder_vocab_size=None) -> GruSeq2SeqForConditionalGeneration:
    config = GruSeq2SeqConfig(
        vocab_size=vocab_size or tokenizer.vocab_size,
        decoder_vocab_size=decoder_vocab_size or tokenizer.target_vocab_size,
        embedding_size=8,
        hidden_size=8,
    )
    return GruSeq2SeqForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One saved folder per tokenizer (with its model), copied by each test before it breaks a file."""
    root = tmp_path_factory.mktemp("saved")
    tokenizer = awd_lstm_tokenizer()
    classifier(len(tokenizer)).save_pretrained(root / "awd_lstm")
    tokenizer.save_pretrained(root / "awd_lstm")
    tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    translator(tokenizer).save_pretrained(root / "gru_seq2seq")
    tokenizer.save_pretrained(root / "gru_seq2seq")
    DeviseTokenizer(words=WORDS).save_pretrained(root / "devise")
    return root


def copy_of(saved, name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(saved / name, folder)
    return folder


# --- Weights that cannot be read: the error names the folder and the file --------------------------------------------


def devise_model() -> DeviseModel:
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    return DeviseModel(DeviseConfig(backbone_config=backbone, projection_dim=6, head_hidden_size=8, vocab_size=6))


WEIGHT_MODELS = {
    "awd_lstm": lambda: classifier(20),
    "gru_seq2seq": lambda: translator(None, vocab_size=20, decoder_vocab_size=20),
    "devise": devise_model,
}


@pytest.mark.parametrize("family", WEIGHT_MODELS)
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_unreadable_weights_name_the_folder_and_the_file(tmp_path, family, damage):
    model = WEIGHT_MODELS[family]()
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(1000 if damage == "truncated" else 0)
    size = "1,000" if damage == "truncated" else "0"
    with pytest.raises(
        OSError, match=rf"The weights of {tmp_path} cannot be read .*model.safetensors \({size} bytes\)"
    ):
        type(model).from_pretrained(tmp_path)
    with pytest.raises(OSError, match="config.json is a file: `from_pretrained` takes the folder"):
        type(model).from_pretrained(tmp_path / "config.json")


# --- Every load error names the folder and the file ------------------------------------------------------------------

MISSING_FILES = [
    ("awd_lstm", "vocab.json"),
    ("gru_seq2seq", "source_vocab.json"),
    ("gru_seq2seq", "target_vocab.json"),
    ("devise", "vocab.txt"),
]


@pytest.mark.parametrize(("name", "file_name"), MISSING_FILES)
def test_a_missing_vocabulary_file_is_named_with_its_folder(saved, tmp_path, name, file_name):
    folder = copy_of(saved, name, tmp_path)
    os.remove(folder / file_name)
    with pytest.raises(ValueError, match="does not exist") as error:
        AutoTokenizer.from_pretrained(folder)
    assert str(folder / file_name) in str(error.value)


TRUNCATED_FILES = [
    ("awd_lstm", "vocab.json"),
    ("gru_seq2seq", "source_vocab.json"),
    ("gru_seq2seq", "target_vocab.json"),
]


@pytest.mark.parametrize(("name", "file_name"), TRUNCATED_FILES)
def test_a_truncated_json_vocabulary_names_the_file_and_the_position(saved, tmp_path, name, file_name):
    folder = copy_of(saved, name, tmp_path)
    text = (folder / file_name).read_text(encoding="utf-8")
    (folder / file_name).write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ValueError, match=r"is not valid JSON \(.*: line \d+, column \d+\)") as error:
        AutoTokenizer.from_pretrained(folder)
    assert str(folder / file_name) in str(error.value)


@pytest.mark.parametrize(("name", "file_name"), [*TRUNCATED_FILES, ("devise", "vocab.txt")])
def test_a_vocabulary_that_is_not_utf8_names_the_file(saved, tmp_path, name, file_name):
    folder = copy_of(saved, name, tmp_path)
    (folder / file_name).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="is not UTF-8 text") as error:
        AutoTokenizer.from_pretrained(folder)
    assert str(folder / file_name) in str(error.value)


@pytest.mark.parametrize(("name", "file_name"), [("awd_lstm", "vocab.json"), ("gru_seq2seq", "target_vocab.json")])
def test_a_json_vocabulary_of_the_wrong_shape_names_the_file(saved, tmp_path, name, file_name):
    folder = copy_of(saved, name, tmp_path)
    (folder / file_name).write_text('"not a vocabulary"', encoding="utf-8")
    with pytest.raises(ValueError, match="must hold a JSON object") as error:
        AutoTokenizer.from_pretrained(folder)
    assert str(folder / file_name) in str(error.value)


@pytest.mark.parametrize("content", ['{"model": {"vo', '{"model": {"type": "BPE"}}'], ids=["truncated", "not-ours"])
def test_a_broken_legacy_tokenizer_json_names_the_file(saved, tmp_path, content):
    folder = copy_of(saved, "awd_lstm", tmp_path)
    os.remove(folder / "vocab.json")
    (folder / "tokenizer.json").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="tokenizer.json") as error:
        AwdLstmTokenizer.from_pretrained(folder)
    assert str(folder / "tokenizer.json") in str(error.value)


@pytest.mark.parametrize("name", ["awd_lstm", "gru_seq2seq", "devise"])
def test_a_truncated_tokenizer_config_is_transformers_bare_json_error(saved, tmp_path, name):
    # transformers reads tokenizer_config.json (to pick the tokenizer class) before any ulmfit code runs, so its
    # `JSONDecodeError` names neither the file nor the folder; ulmfit cannot reach it without replacing AutoTokenizer.
    folder = copy_of(saved, name, tmp_path)
    text = (folder / "tokenizer_config.json").read_text(encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        AutoTokenizer.from_pretrained(folder)


def test_a_devise_vocab_txt_without_a_final_newline_keeps_its_last_word(saved, tmp_path):
    folder = copy_of(saved, "devise", tmp_path)
    text = (folder / "vocab.txt").read_text(encoding="utf-8")
    (folder / "vocab.txt").write_text(text.rstrip("\n"), encoding="utf-8")
    assert AutoTokenizer.from_pretrained(folder).get_vocab() == DeviseTokenizer(words=WORDS).get_vocab()


# --- The tokenizer/model pair ----------------------------------------------------------------------------------------


@pytest.fixture
def mismatched_classifier(tmp_path):
    """A classifier folder whose model embeds 16 rows fewer than its tokenizer has tokens."""
    tokenizer = awd_lstm_tokenizer()
    classifier(len(tokenizer) - 16).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return tmp_path


def test_a_tokenizer_larger_than_the_embedding_names_both_sizes_and_folders(tmp_path):
    tokenizer = awd_lstm_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    classifier(len(tokenizer) - 16).save_pretrained(tmp_path / "model")
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tokenizer")
    model = AwdLstmForSequenceClassification.from_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="would index past the embedding") as error:
        check_tokenizer_fits_model(loaded_tokenizer, model)
    message = str(error.value)
    assert f"{len(tokenizer)} tokens" in message and f"only {len(tokenizer) - 16} embedding rows" in message
    assert str(tmp_path / "tokenizer") in message and str(tmp_path / "model") in message


def test_a_much_smaller_tokenizer_is_a_warning_that_names_the_wrong_pair(caplog):
    tokenizer = awd_lstm_tokenizer()
    with caplog.at_level(logging.WARNING, logger="ulmfit.pipelines.compatibility"):
        check_tokenizer_fits_model(tokenizer, classifier(2000))
    assert f"has {len(tokenizer)} tokens" in caplog.text and "2000 embedding rows" in caplog.text
    assert "looks like the wrong pair" in caplog.text


@pytest.mark.parametrize("rows", [13, 16, 64], ids=["equal", "padded-to-8", "padded-to-64"])
def test_an_equal_or_padded_embedding_passes_quietly(caplog, rows):
    tokenizer = AwdLstmTokenizer(vocab=SPECIAL_TOKENS + ["the", "movie", "was", "great"])  # 13 tokens
    with caplog.at_level(logging.WARNING, logger="ulmfit.pipelines.compatibility"):
        check_tokenizer_fits_model(tokenizer, classifier(rows))
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("sizes", "side"),
    [({"vocab_size": 10}, "source"), ({"decoder_vocab_size": 10}, "target")],
    ids=["source", "target"],
)
def test_a_translator_checks_both_vocabularies(sizes, side):
    tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    with pytest.raises(ValueError, match=rf"{side} tokens .* only 10 {side} embedding rows"):
        check_tokenizer_fits_model(tokenizer, translator(tokenizer, **sizes))


def test_a_devise_tokenizer_is_checked_against_its_word_table():
    config = DeviseConfig(
        backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1], layer_type="basic"),
        projection_dim=6,
        head_hidden_size=10,
        vocab_size=3,
    )
    with pytest.raises(ValueError, match=r"6 tokens .* only 3 embedding rows"):
        check_tokenizer_fits_model(DeviseTokenizer(words=WORDS), DeviseModel(config))


def test_ulmfit_pipelines_refuse_a_larger_tokenizer_when_built(mismatched_classifier, tmp_path):
    with pytest.raises(ValueError, match="would index past the embedding"):
        pipeline(
            "text-classification", model=str(mismatched_classifier), pipeline_class=AwdLstmTextClassificationPipeline
        )

    tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    translator(tokenizer, decoder_vocab_size=10).save_pretrained(tmp_path / "translator")
    tokenizer.save_pretrained(tmp_path / "translator")
    with pytest.raises(ValueError, match="target tokens"):
        pipeline("translation", model=str(tmp_path / "translator"))

    config = DeviseConfig(
        backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1], layer_type="basic"),
        projection_dim=6,
        head_hidden_size=10,
        vocab_size=3,
    )
    DeviseModel(config).save_pretrained(tmp_path / "devise")
    image_processor = DeviseImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    DeviseProcessor(image_processor=image_processor, tokenizer=DeviseTokenizer(words=WORDS)).save_pretrained(
        tmp_path / "devise"
    )
    with pytest.raises(ValueError, match="would index past the embedding"):
        pipeline("image-search", model=str(tmp_path / "devise"))


def test_the_ensemble_checks_ready_stock_pipelines(mismatched_classifier, saved):
    stock = pipeline("text-classification", model=str(mismatched_classifier))
    good = pipeline("text-classification", model=str(saved / "awd_lstm"))
    with pytest.raises(ValueError, match="would index past the embedding"):
        ForwardBackwardEnsemble(good, stock)


def test_stock_text_classification_builds_a_mismatched_pair_and_fails_on_a_high_id(mismatched_classifier):
    # transformers' pipeline() compares nothing: the folder loads, texts of low ids classify (with wrong meanings),
    # and only the first id past the embedding fails, in the model's own id check. `check_tokenizer_fits_model`
    # (and ulmfit's pipelines) catch the pair at load instead.
    classify = pipeline("text-classification", model=str(mismatched_classifier))
    assert type(classify) is TextClassificationPipeline
    assert classify("")[0]["label"].startswith("LABEL_")  # only `xxbos`, id 2
    vocab = classify.tokenizer.get_vocab()
    high_word = max(vocab, key=vocab.get)
    with pytest.raises(ValueError, match="encoded with another model's tokenizer"):
        classify(high_word)


def test_stock_text_classification_runs_a_smaller_tokenizer_silently(tmp_path):
    # a tokenizer smaller than the embedding is allowed by transformers (a model may keep spare rows), so the stock
    # pipeline runs; only `check_tokenizer_fits_model` (and ulmfit's pipelines) warn that it looks like the wrong pair.
    tokenizer = awd_lstm_tokenizer()
    classifier(2000).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert len(pipeline("text-classification", model=str(tmp_path))("The movie was great.")) == 1


@pytest.mark.parametrize(
    ("family", "other"), [("awd_lstm", "gru_seq2seq"), ("gru_seq2seq", "devise"), ("devise", "awd_lstm")]
)
def test_a_folder_of_another_model_type_is_refused_not_loaded_with_random_weights(tmp_path, family, other):
    WEIGHT_MODELS[other]().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=f"holds a '{other}' model, not '{family}': load it with its own class"):
        type(WEIGHT_MODELS[family]()).from_pretrained(tmp_path)
