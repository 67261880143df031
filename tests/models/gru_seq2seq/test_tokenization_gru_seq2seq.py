import json

import pytest
import torch
from transformers import AutoTokenizer

from ulmfit import GruSeq2SeqConfig, GruSeq2SeqTokenizer
from ulmfit.models.gru_seq2seq.text_processing_gru_seq2seq import SPECIAL_TOKENS, detokenize, tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L'homme qu'il a vu.", ["xxmaj", "l'", "homme", "qu'", "il", "a", "vu", "."]),
        ("Jusqu'à ce qu'on m'appelle", ["xxmaj", "jusqu'", "à", "ce", "qu'", "on", "m'", "appelle"]),
        ("Qu'est-ce que c'est ?", ["xxmaj", "qu'", "est", "-ce", "que", "c'", "est", "?"]),
        ("Y a-t-il quelqu'un ?", ["xxmaj", "y", "a", "-t", "-il", "quelqu'un", "?"]),
        ("Dis-le-moi aujourd'hui.", ["xxmaj", "dis", "-le", "-moi", "aujourd'hui", "."]),
        ("Peut-être, c’est-à-dire", ["xxmaj", "peut-être", ",", "c'", "est-à-dire"]),
    ],
)
def test_french_elisions_and_inversions(text, expected):
    assert tokenize(text, "fr") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't know.", ["i", "do", "n't", "know", "."]),
        (
            "It's Tom's, you're right, we'll see",
            ["xxmaj", "it", "'s", "xxmaj", "tom", "'s", ",", "you", "'re", "right", ",", "we", "'ll", "see"],
        ),  # fmt: skip
        ("Can't stop!", ["xxmaj", "ca", "n't", "stop", "!"]),
    ],
)
def test_english_clitics(text, expected):
    assert tokenize(text, "en") == expected


def test_case_and_repetition_rules():
    assert tokenize("The USA is BIG", "en") == ["xxmaj", "the", "xxup", "usa", "is", "xxup", "big"]
    assert tokenize("A cat", "en") == ["xxmaj", "a", "cat"]  # one-letter capitals keep their case too
    assert tokenize("Nooo!!!", "en") == ["xxmaj", "n", "xxrep", "3", "o", "xxrep", "3", "!"]
    assert tokenize("very very very good", "en") == ["xxwrep", "3", "very", "good"]
    assert tokenize("Wait...", "en") == ["xxmaj", "wait", "..."]


@pytest.mark.parametrize(
    "text",
    [
        "I don't know what he's doing, but it's FINE!!! Can't you see?",
        'She said "hello" to the cats\' owner (Tom).',
        "What is it? Nooo way way way way.",
        "A man, a plan: USA.",
        "The concert starts at 2:30 and costs 1,000.50 dollars.",
    ],
)
def test_english_detokenization_round_trip(text):
    assert detokenize(tokenize(text, "en"), "en") == text


@pytest.mark.parametrize(
    "text",
    ["Qu'est-ce que c'est ? Y a-t-il quelqu'un aujourd'hui ?", "Dis-le-moi, l'homme ! « C'est-à-dire À PARIS... »"],
)
def test_french_detokenization_round_trip(text):
    assert detokenize(tokenize(text, "fr"), "fr") == text


def test_stray_markers_are_dropped_when_decoding():
    assert detokenize(["xxrep", "xxmaj", "xxup", "tired", "xxmaj"], "en") == "TIRED"


def test_vocabularies_are_separate_and_start_with_fastai_specials(tokenizer):
    assert tokenizer.source_tokens[:9] == SPECIAL_TOKENS == tokenizer.target_tokens[:9]
    assert "fatigué" in tokenizer.get_vocab() and "fatigué" not in tokenizer.get_target_vocab()
    assert "tired" in tokenizer.get_target_vocab() and "tired" not in tokenizer.get_vocab()
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 2, 3)


def test_text_target_encodes_labels_with_the_target_vocabulary(tokenizer):
    batch = tokenizer(["Je suis fatigué."], text_target=["I'm tired."])
    source = [tokenizer.source_tokens[i] for i in batch["input_ids"][0]]
    target = [tokenizer.target_tokens[i] for i in batch["labels"][0]]
    assert source == ["xxmaj", "je", "suis", "fatigué", ".", "xxeos"]
    assert target == ["i", "'m", "tired", ".", "xxeos"]
    assert tokenizer.decode(batch["labels"][0], skip_special_tokens=True) == "I'm tired."
    assert tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True, use_source_tokenizer=True) == (
        "Je suis fatigué."
    )


def test_padding_is_on_the_right_and_labels_use_the_pad_id(tokenizer):
    batch = tokenizer(
        ["J'ai faim.", "Tom est très têtu."], text_target=["I'm hungry.", "Hi"], padding=True, return_tensors="pt"
    )
    assert batch["attention_mask"][0].tolist() == [1] * 6 + [0]  # xxmaj j' ai faim . xxeos
    assert (
        batch["labels"][1].tolist()[-3:] == [tokenizer.eos_token_id] + [tokenizer.pad_token_id] * 2
    )  # "Hi": 3 tokens


def test_unknown_words_and_characters_become_unk(tokenizer):
    ids = tokenizer("Je suis 東京 ☃ fatigué")["input_ids"]
    assert ids[3:5] == [tokenizer.unk_token_id] * 2
    assert ids[-1] == tokenizer.eos_token_id


def test_empty_text_encodes_to_eos_alone(tokenizer):
    assert tokenizer("")["input_ids"] == [tokenizer.eos_token_id]
    assert tokenizer("   \n")["input_ids"] == [tokenizer.eos_token_id]
    assert tokenizer.decode([tokenizer.eos_token_id], skip_special_tokens=True) == ""


def test_long_sentence_is_encoded_whole_and_truncation_keeps_eos(tokenizer):
    text = " ".join(["le", "chat", "est", "noir"] * 125)  # 500 words
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == 501 and ids[-1] == tokenizer.eos_token_id
    truncated = tokenizer(text, truncation=True, max_length=10)["input_ids"]
    assert len(truncated) == 10 and truncated[-1] == tokenizer.eos_token_id


def test_save_and_reload_with_auto_tokenizer(tokenizer, tmp_path):
    GruSeq2SeqConfig(vocab_size=tokenizer.vocab_size, decoder_vocab_size=tokenizer.target_vocab_size).save_pretrained(
        tmp_path
    )
    tokenizer.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "target_vocab.json").read_text())["tired"] == tokenizer.get_target_vocab()["tired"]
    assert (tmp_path / "source_vocab.json").exists()
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, GruSeq2SeqTokenizer)
    texts, targets = ["Où est la gare ?", "Tom a-t-il un chien ?"], ["Where is the station?", "Does Tom have a dog?"]
    assert loaded(texts, text_target=targets).data == tokenizer(texts, text_target=targets).data
    assert (loaded.source_lang, loaded.target_lang) == ("fr", "en")


def test_train_respects_max_vocab_and_min_freq():
    tokenizer = GruSeq2SeqTokenizer.train(["a b a c a b"], ["x y x"], max_vocab=11, min_freq=2)
    assert tokenizer.source_tokens[9:] == ["a", "b"]
    assert tokenizer.target_tokens[9:] == ["x"]


def test_suppress_token_ids(tokenizer):
    assert tokenizer.suppress_token_ids == [0, 1, 2]


def test_tensors_and_batch_decoding(tokenizer):
    batch = tokenizer(["J'ai faim."], text_target=["I'm hungry."], return_tensors="pt")
    assert isinstance(batch["labels"], torch.Tensor)
    assert tokenizer.batch_decode(batch["labels"], skip_special_tokens=True) == ["I'm hungry."]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: t(["ok", 3]), TypeError, "item 1"),
        (lambda t: t(None), ValueError, "text"),
        (lambda t: t("a", "b"), ValueError, "text_target"),
        (lambda t: t.decode([10_000]), ValueError, "10000"),
        (lambda t: GruSeq2SeqTokenizer.train("Bonjour", ["Hello"]), TypeError, "source_texts"),
        (lambda t: GruSeq2SeqTokenizer.train(["", " "], ["Hello"]), ValueError, "no words"),
        (lambda t: GruSeq2SeqTokenizer.train(["a"], ["b"], max_vocab=3), ValueError, "max_vocab"),
        (lambda t: GruSeq2SeqTokenizer(source_vocab=["a", "b"], target_vocab=SPECIAL_TOKENS), ValueError, "special"),
        (lambda t: GruSeq2SeqTokenizer(target_vocab=SPECIAL_TOKENS), ValueError, "source vocabulary"),
    ],
)
def test_bad_inputs_raise_clear_errors(tokenizer, call, error, message):
    with pytest.raises(error, match=message):
        call(tokenizer)


def test_adding_tokens_is_refused_with_a_reason(tokenizer):
    size = len(tokenizer)
    with pytest.raises(ValueError, match=r"cannot add \['\[NEW\]'\].*Train the tokenizer again"):
        tokenizer.add_tokens(["[NEW]"], special_tokens=True)
    with pytest.raises(ValueError, match="cannot add"):
        tokenizer.add_special_tokens({"additional_special_tokens": ["<x>"]})
    assert tokenizer.add_tokens(["xxunk"]) == 0 and len(tokenizer) == size
