"""Fuzz pass over the three tokenizers: seeded random text from awkward corners of Unicode.

For every text: no exception (DeviseTokenizer's documented `ValueError` for a word without a vector excepted), ids
within the vocabulary, and `decode` returns a `str`. Round trips are asserted exactly where the tokenizers promise
them, and no further:

- `AwdLstmTokenizer` and `GruSeq2SeqTokenizer` (target side) give back ordinary prose (known words, capitalised or
  all caps, single spaces, closing punctuation), as their decode docstrings and tests promise; fastai's rules are
  lossy elsewhere by design ("..." becomes "…", "i" becomes "I", runs of spaces collapse);
- `DeviseTokenizer` gives back the words of a text it knows, lower-cased and joined by single spaces.

Lone surrogates ("\\ud800") are valid in a Python `str` but have no UTF-8 form: encoding one never fails (it is an
unknown word, `xxunk`), and training leaves words containing one out of the vocabulary, so that it still saves.
"""

import random

import pytest

from ulmfit import AwdLstmTokenizer, DeviseTokenizer, GruSeq2SeqTokenizer


SEED = 19
TEXTS_PER_CATEGORY = 30
CATEGORIES = {
    "ascii": [chr(code) for code in range(32, 127)],
    "latin-1": [chr(code) for code in range(0xA0, 0x100)],
    "cjk": [chr(code) for code in range(0x4E00, 0x4E60)] + list("、。「」"),
    "emoji": ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "\u200d", "\ufe0f"],
    "combining": ["e\u0301", "a\u0308", "\u0301", "\u0327", "n\u0303", "\u20dd"],
    "rtl": [chr(code) for code in range(0x05D0, 0x05EB)] + [chr(code) for code in range(0x0627, 0x064B)] + ["\u202e"],
    "control": ["\x00", "\r", "\t", "\x0b", "\x0c", "\n", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\x01"],
    "lone-surrogate": ["\ud800", "\udbff", "\udc00", "\udfff"],
    "whitespace": [" ", "\u00a0", "\u3000", "\u2009", "\n", "\t", "\r\n"],
}
PROSE_WORDS = ["the", "movie", "was", "great", "and", "we", "loved", "every", "minute", "of", "it", "but"]
PROSE_WORDS += ["acting", "story", "film", "good", "bad", "plot"]


def fuzz_texts(category: str) -> list[str]:
    rng = random.Random(f"{SEED}-{category}")
    alphabet = CATEGORIES[category] + ([] if category == "whitespace" else [" "] * 4)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(TEXTS_PER_CATEGORY)]
    return texts + ["", rng.choice(CATEGORIES[category]) * 10_000]  # the empty text and a 10,000-character word


MIXED = [
    "".join(random.Random(SEED + index).choice(sum(CATEGORIES.values(), [])) for _ in range(60)) for index in range(60)
]
ALL_TEXTS = [text for category in CATEGORIES for text in fuzz_texts(category)] + MIXED


def prose(rng: random.Random) -> str:
    """An ordinary sentence or three: known words, capitals, single spaces, closing punctuation."""
    sentences = []
    for _ in range(rng.randint(1, 3)):
        words = [rng.choice(PROSE_WORDS) for _ in range(rng.randint(1, 8))]
        words = [word.upper() if rng.random() < 0.1 else word for word in words]
        words[0] = words[0][0].upper() + words[0][1:]
        words = [word + "," if rng.random() < 0.15 else word for word in words[:-1]] + words[-1:]
        sentences.append(" ".join(words) + rng.choice([".", "!", "?", ";", ":"]))
    return " ".join(sentences)


PROSE = [prose(random.Random(SEED * 1000 + index)) for index in range(100)]


@pytest.fixture(scope="module")
def awd_lstm():
    return AwdLstmTokenizer.train(PROSE, min_freq=1)


@pytest.fixture(scope="module")
def gru_seq2seq():
    return GruSeq2SeqTokenizer.train(PROSE, PROSE)


@pytest.fixture(scope="module")
def devise():
    return DeviseTokenizer(words=PROSE_WORDS)


def assert_ids_in_range(ids: list[int], size: int):
    assert all(isinstance(index, int) and 0 <= index < size for index in ids)


@pytest.mark.parametrize("category", [*CATEGORIES, "mixed"])
@pytest.mark.parametrize("backwards", [False, True], ids=["forward", "backward"])
def test_awd_lstm_encodes_and_decodes_any_text(awd_lstm, category, backwards):
    tokenizer = AwdLstmTokenizer(vocab=awd_lstm.get_vocab(), backwards=backwards)
    texts = MIXED if category == "mixed" else fuzz_texts(category)
    batch = tokenizer(texts)["input_ids"]
    for text, ids in zip(texts, batch, strict=True):
        assert tokenizer(text)["input_ids"] == ids
        assert_ids_in_range(ids, len(tokenizer))
        assert isinstance(tokenizer.decode(ids), str)
        assert isinstance(tokenizer.decode(ids, skip_special_tokens=True), str)


@pytest.mark.parametrize("category", [*CATEGORIES, "mixed"])
def test_gru_seq2seq_encodes_and_decodes_any_text_on_both_sides(gru_seq2seq, category):
    texts = MIXED if category == "mixed" else fuzz_texts(category)
    batch = gru_seq2seq(texts, text_target=texts)
    for source_ids, target_ids in zip(batch["input_ids"], batch["labels"], strict=True):
        assert_ids_in_range(source_ids, gru_seq2seq.vocab_size)
        assert_ids_in_range(target_ids, gru_seq2seq.target_vocab_size)
        assert target_ids[-1] == gru_seq2seq.eos_token_id
        assert isinstance(gru_seq2seq.decode(source_ids, use_source_tokenizer=True), str)
        assert isinstance(gru_seq2seq.decode(target_ids, skip_special_tokens=True), str)


@pytest.mark.parametrize("category", [*CATEGORIES, "mixed"])
def test_devise_encodes_a_text_or_names_the_word_it_cannot(devise, category):
    texts = MIXED if category == "mixed" else fuzz_texts(category)
    for text in texts:
        try:
            ids = devise(text)["input_ids"]
        except ValueError as error:  # the documented outcome for a word with no vector, or a text with no words
            assert "No word vector for" in str(error) or "has no words to embed" in str(error)
            continue
        assert_ids_in_range(ids, len(devise))
        assert isinstance(devise.decode(ids), str)


@pytest.mark.parametrize("backwards", [False, True], ids=["forward", "backward"])
def test_awd_lstm_round_trips_ordinary_prose(awd_lstm, backwards):
    tokenizer = AwdLstmTokenizer(vocab=awd_lstm.get_vocab(), backwards=backwards)
    for text, ids in zip(PROSE, tokenizer(PROSE)["input_ids"], strict=True):
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_gru_seq2seq_round_trips_ordinary_prose_on_the_target_side(gru_seq2seq):
    for text, ids in zip(PROSE, gru_seq2seq(text_target=PROSE)["input_ids"], strict=True):
        assert gru_seq2seq.decode(ids, skip_special_tokens=True) == text


def test_devise_round_trips_the_words_it_knows(devise):
    rng = random.Random(SEED)
    for _ in range(100):
        words = [rng.choice(PROSE_WORDS) for _ in range(rng.randint(1, 6))]
        text = "".join(
            rng.choice([" ", "_", " + ", ", "]) + word.title() if rng.random() < 0.3 else " " + word for word in words
        )
        assert devise.decode(devise(text)["input_ids"]) == " ".join(words)


def train(kind: str, texts: list[str]):
    if kind == "awd-lstm":
        return AwdLstmTokenizer.train(texts, min_freq=1)
    return GruSeq2SeqTokenizer.train(texts, texts)


@pytest.mark.parametrize("kind", ["awd-lstm", "gru"])
def test_a_vocabulary_trained_on_fuzz_texts_saves_and_reloads_to_the_same_ids(tmp_path, kind):
    tokenizer = train(kind, ALL_TEXTS)
    vocab = tokenizer.get_vocab()
    assert not any("\ud800" <= character <= "\udfff" for word in vocab for character in word)
    tokenizer.save_pretrained(tmp_path)
    reloaded = type(tokenizer).from_pretrained(tmp_path)
    assert reloaded.get_vocab() == vocab
    assert reloaded(ALL_TEXTS)["input_ids"] == tokenizer(ALL_TEXTS)["input_ids"]


@pytest.mark.parametrize("kind", ["awd-lstm", "gru"])
def test_words_with_lone_surrogates_stay_unknown(kind):
    text = "good \ud800 film a\udfffb"
    tokenizer = train(kind, [text, text])
    tokens = tokenizer.tokenize(text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(tokens) == len(ids) and any("\ud800" in token for token in tokens)
    for token, index in zip(tokens, ids, strict=True):
        has_surrogate = any("\ud800" <= character <= "\udfff" for character in token)
        assert (index == tokenizer.unk_token_id) == has_surrogate
