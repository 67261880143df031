import json

import pytest
import torch
from transformers import AutoTokenizer

from ulmfit import AwdLstmTokenizer
from ulmfit.models.awd_lstm.text_processing_awd_lstm import SPECIAL_TOKENS
from ulmfit.models.awd_lstm.tokenization_awd_lstm import make_vocab


def test_special_tokens_have_fastai_ids(tokenizer):
    assert tokenizer.convert_ids_to_tokens(list(range(9))) == SPECIAL_TOKENS
    assert (tokenizer.unk_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (
        0,
        1,
        2,
        3,
    )


def test_encoding_applies_fastai_rules_and_adds_xxbos(tokenizer):
    ids = tokenizer("The movie was GREAT!!!").input_ids
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "xxbos",
        "xxmaj",
        "the",
        "movie",
        "was",
        "xxup",
        "great",
        "xxrep",
        "3",
        "!",
    ]
    assert tokenizer.tokenize("I didn't like it") == ["i", "did", "n't", "like", "it"]


def test_unknown_words_map_to_xxunk(tokenizer):
    ids = tokenizer("the zyzzyva movie", add_special_tokens=False).input_ids
    assert ids[1] == tokenizer.unk_token_id and ids[0] != tokenizer.unk_token_id


def test_train_counts_words_with_min_freq_and_max_vocab(corpus):
    tokenizer = AwdLstmTokenizer.train(corpus, min_freq=4, max_vocab=20)
    vocab = tokenizer.get_vocab()
    assert len(vocab) == 24  # 20 tokens, padded with xxfake rows to a multiple of 8
    assert "the" in vocab and "wonderful" not in vocab  # 3 occurrences < min_freq
    assert [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])][-4:] == [
        "xxfake",
        "xxfake1",
        "xxfake2",
        "xxfake3",
    ]


def test_make_vocab_orders_by_frequency_then_alphabetically():
    from collections import Counter

    vocab = make_vocab(Counter({"b": 5, "a": 5, "c": 9, "rare": 1, "xxmaj": 50}), min_freq=2)
    assert vocab[:12] == SPECIAL_TOKENS + ["c", "a", "b"]
    assert len(vocab) % 8 == 0


def test_train_accepts_a_datasets_column_and_multiple_processes(corpus):
    import datasets

    dataset = datasets.Dataset.from_dict({"text": corpus * 200})  # enough texts to use the worker pool
    parallel = AwdLstmTokenizer.train(dataset["text"], min_freq=1, num_proc=2)
    serial = AwdLstmTokenizer.train(iter(corpus * 200), min_freq=1, num_proc=1)
    assert parallel.get_vocab() == serial.get_vocab()


def test_train_new_from_iterator_uses_the_same_rules(tokenizer, corpus):
    new = tokenizer.train_new_from_iterator(iter(corpus), vocab_size=1000, min_freq=1)
    assert isinstance(new, AwdLstmTokenizer)
    assert new.get_vocab() == tokenizer.get_vocab()
    smaller = tokenizer.train_new_from_iterator(iter(corpus), vocab_size=40, min_freq=1)
    assert len(smaller) == 40


def test_batches_pad_on_the_left_with_a_mask(tokenizer):
    batch = tokenizer(["The movie.", "I loved every minute of it."], padding=True, return_tensors="pt")
    assert batch.input_ids.shape == batch.attention_mask.shape
    assert batch.input_ids[0, 0] == tokenizer.pad_token_id and batch.attention_mask[0, 0] == 0
    assert batch.input_ids[0, -1] != tokenizer.pad_token_id


def test_decode_restores_capitals_repetitions_and_spacing(tokenizer):
    ids = tokenizer("The movie was GREAT!!! I loved it.").input_ids
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert text.startswith("The movie was GREAT")
    assert "!!!" in text and text.endswith("loved it.")
    assert "xx" not in text


def test_decode_keeps_special_tokens_unless_asked_to_skip_them(tokenizer):
    ids = tokenizer("the movie").input_ids
    assert tokenizer.decode(ids).startswith("xxbos")
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the movie"


def test_decode_of_a_continuation_starts_with_a_space(tokenizer):
    ids = tokenizer("loved it.", add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == " loved it."
    assert tokenizer.decode(tokenizer(".", add_special_tokens=False).input_ids) == "."


def test_decode_rejects_ids_outside_the_vocabulary(tokenizer):
    with pytest.raises(ValueError, match="vocabulary has"):
        tokenizer.decode([2, len(tokenizer) + 5])


def test_backwards_reverses_token_order_and_decode_undoes_it(corpus):
    forward = AwdLstmTokenizer.train(corpus, min_freq=1)
    backward = AwdLstmTokenizer.train(corpus, min_freq=1, backwards=True)
    text = "I loved every minute of it."
    assert backward(text).input_ids == forward(text).input_ids[::-1]
    batch = backward([text, "The movie."], padding=True, return_tensors="pt")
    assert batch.input_ids[1, 0] == backward.pad_token_id  # still padded on the left, after reversal
    assert backward.decode(batch.input_ids[0], skip_special_tokens=True) == forward.decode(
        forward(text).input_ids, skip_special_tokens=True
    )


def test_save_and_reload_with_auto_tokenizer(tmp_path, corpus):
    tokenizer = AwdLstmTokenizer.train(corpus, min_freq=1, backwards=True)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(reloaded, AwdLstmTokenizer) and reloaded.backwards
    assert reloaded(corpus[:3]).input_ids == tokenizer(corpus[:3]).input_ids


def test_empty_and_whitespace_texts_encode_to_xxbos(tokenizer):
    assert tokenizer("").input_ids == [tokenizer.bos_token_id]
    assert tokenizer("   \t ").input_ids[0] == tokenizer.bos_token_id


def test_bad_inputs_raise_clear_errors(tokenizer):
    with pytest.raises(ValueError, match="text"):
        tokenizer(None)
    with pytest.raises(TypeError, match="got int"):
        tokenizer(42)
    with pytest.raises(TypeError, match="item 1"):
        tokenizer(["fine", 3.5])
    with pytest.raises(TypeError, match="iterable of strings"):
        AwdLstmTokenizer.train("a single string")
    with pytest.raises(ValueError, match="empty"):
        AwdLstmTokenizer.train([])
    with pytest.raises(ValueError, match="special tokens"):
        AwdLstmTokenizer(vocab=["the", "a"])


def test_a_100k_word_document_is_not_truncated(tokenizer):
    words = ["the", "movie", "was", "good", "and"]
    ids = tokenizer(" ".join(words[i % 5] for i in range(100_000)), return_tensors="pt").input_ids
    assert ids.shape == (1, 100_001)
    assert ids[0, 1:6].tolist() == tokenizer.convert_tokens_to_ids(words)
    assert torch.equal(ids[0, -5:], ids[0, 1:6])


def test_suppress_token_ids_cover_unknown_padding_and_vocabulary_filler(corpus):
    tokenizer = AwdLstmTokenizer.train(corpus, min_freq=4, max_vocab=20)
    fake = [index for token, index in tokenizer.get_vocab().items() if token.startswith("xxfake")]
    assert tokenizer.suppress_token_ids == sorted([0, 1, *fake]) and len(fake) == 4
    assert tokenizer.decode(fake, skip_special_tokens=True) == ""


def test_truncation_keeps_the_start_or_the_end(tokenizer):
    text = "I loved every minute of it."
    full = tokenizer(text).input_ids
    assert tokenizer(text, truncation=True, max_length=4).input_ids == full[:4]
    tokenizer.truncation_side = "left"
    assert tokenizer(text, truncation=True, max_length=4).input_ids == full[-4:]


def test_pairs_join_with_xxfld_and_masks_mark_special_tokens(tokenizer):
    encoded = tokenizer("the movie", "the music", return_special_tokens_mask=True, return_length=True)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens == ["xxbos", "the", "movie", "xxfld", "the", "music"]
    assert encoded.special_tokens_mask == [1, 0, 0, 1, 0, 0] and encoded.length == 6


def test_pre_split_words_and_single_text_tensors(tokenizer):
    words = tokenizer(["the", "movie"], is_split_into_words=True).input_ids
    assert words == tokenizer("the movie").input_ids
    # fastai's rules still apply, word by word, and leave words they have processed already as they are
    capitalised = tokenizer([["The", "MOVIE"], ["xxmaj", "the", "xxup", "movie"]], is_split_into_words=True)
    assert capitalised.input_ids[0] == capitalised.input_ids[1] == tokenizer("The MOVIE").input_ids
    with pytest.raises(TypeError, match="list of words"):
        tokenizer("the movie", is_split_into_words=True)
    tensor = tokenizer("the movie", return_tensors="pt").input_ids
    assert tensor.shape == (1, 3)


@pytest.mark.parametrize("max_length", [0, -1])
def test_truncation_to_no_token_is_refused(tokenizer, max_length):
    with pytest.raises(ValueError, match="max_length"):
        tokenizer("the movie", truncation=True, max_length=max_length)


def test_offsets_are_refused_with_a_reason(tokenizer):
    with pytest.raises(NotImplementedError, match="offsets"):
        tokenizer("the movie", return_offsets_mapping=True)


def test_tokenize_returns_words_even_outside_the_vocabulary(tokenizer):
    assert tokenizer.tokenize("the zyzzyva") == ["the", "zyzzyva"]
    assert tokenizer.convert_tokens_to_ids(["zyzzyva"]) == [tokenizer.unk_token_id]


@pytest.mark.parametrize(
    "texts, kwargs",
    [
        ("The movie was great.", {}),
        ("The movie was great.", {"return_tensors": "pt"}),
        (["Good.", "Bad."], {"padding": True, "return_tensors": "pt"}),
        (["Good.", "A really bad plot."], {}),
        (["Good.", "A really bad plot."], {"return_special_tokens_mask": True, "return_length": True}),
        ("Great!", {"return_attention_mask": False, "return_tensors": "pt"}),
    ],
)
def test_nothing_to_pad_gives_what_the_base_pad_gives(tokenizer, texts, kwargs):
    encoded = tokenizer(texts, **kwargs)
    fields = {key: encoded[key] for key in ("input_ids", "special_tokens_mask") if key in encoded}
    if kwargs.get("return_tensors"):
        fields = {key: value.tolist() for key, value in fields.items()}
    reference = tokenizer.pad(
        fields,
        return_tensors=kwargs.get("return_tensors"),
        return_attention_mask=kwargs.get("return_attention_mask"),
        padding=kwargs.get("padding", False),
    )
    assert set(encoded) - {"length"} == set(reference)
    for key in reference:
        if kwargs.get("return_tensors"):
            assert isinstance(encoded[key], torch.Tensor) and torch.equal(encoded[key], reference[key])
        else:
            assert encoded[key] == reference[key]


def test_the_class_docstring_example_runs_as_written():
    import doctest
    import inspect

    from ulmfit.models.awd_lstm.tokenization_awd_lstm import AwdLstmTokenizer

    # the example sits in a Markdown ```python fence, which is not part of its expected output
    text = "\n".join(line for line in inspect.getdoc(AwdLstmTokenizer).splitlines() if not line.startswith("```"))
    example = doctest.DocTestParser().get_doctest(text, {}, "AwdLstmTokenizer", None, 0)
    result = doctest.DocTestRunner().run(example)
    assert result.attempted == 4 and result.failed == 0


def test_added_tokens_are_kept_whole_and_get_their_own_id(tokenizer):
    size = len(tokenizer)
    assert tokenizer.add_tokens(["[SPECIAL_TOKEN_1]"], special_tokens=True) == 1
    assert len(tokenizer) == size + 1
    assert tokenizer.tokenize("[SPECIAL_TOKEN_1]") == ["[SPECIAL_TOKEN_1]"]
    words = tokenizer.tokenize("The movie[SPECIAL_TOKEN_1] was GREAT")
    assert words == ["xxmaj", "the", "movie", "[SPECIAL_TOKEN_1]", "was", "xxup", "great"]
    ids = tokenizer("the movie [SPECIAL_TOKEN_1]").input_ids
    assert ids[-1] == size and tokenizer.convert_ids_to_tokens(ids[-1]) == "[SPECIAL_TOKEN_1]"


def test_pairs_follow_the_special_token_count_and_come_in_batches(tokenizer):
    with_special = tokenizer("the movie", "the music").input_ids
    without = tokenizer("the movie", "the music", add_special_tokens=False).input_ids
    assert len(with_special) - len(without) == tokenizer.num_special_tokens_to_add(pair=True) == 2
    assert tokenizer.tokenize("the movie", "the music") == ["the", "movie", "the", "music"]
    batch = tokenizer([("the movie", "the music"), ("the", "movie")]).input_ids
    assert batch == [with_special, tokenizer("the", "movie").input_ids]


def test_a_sequence_longer_than_model_max_length_is_warned_about(tokenizer, caplog):
    import logging

    tokenizer.model_max_length = 3
    with caplog.at_level(logging.WARNING):
        ids = tokenizer("the movie the music").input_ids
    assert len(ids) == 5  # AWD-LSTM reads any length: a warning, not a truncation
    assert "longer than the specified maximum sequence length for this model (5 > 3)" in caplog.text


def test_add_tokens_then_resize_the_model(tokenizer, tiny_config):
    import torch

    from ulmfit import AwdLstmForCausalLM

    model = AwdLstmForCausalLM(tiny_config).eval()
    tokenizer.add_tokens(["[SPECIAL_TOKEN_1]"], special_tokens=True)
    model.resize_token_embeddings(len(tokenizer))
    batch = tokenizer(["the movie [SPECIAL_TOKEN_1]"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape[-1] == len(tokenizer) and batch.input_ids[0, -1] == len(tokenizer) - 1


# Capitals, repetitions of characters and words, contractions, unknown words, HTML and tokens added on top
ROUND_TRIP_TEXTS = [
    "The movie was GREAT!!! I didn't like the ending, though.",
    "sooooo good good good good... [SPECIAL_TOKEN_1] can't WON'T",
    "the zyzzyva <plain> movie<plain> was <br /><br />Fine",
]


def add_round_trip_tokens(tokenizer):
    tokenizer.add_tokens(["[SPECIAL_TOKEN_1]"], special_tokens=True)
    tokenizer.add_tokens(["<plain>"])
    return tokenizer


def save_like_earlier_versions(tokenizer, folder):
    """A folder as `save_pretrained` wrote it before `vocab.json`: the backend's tokenizer.json holds the vocabulary
    and the added tokens, and tokenizer_config.json has no `added_tokens_decoder`."""
    tokenizer.save_pretrained(folder)
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "vocab.json").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_save_pretrained_writes_vocab_json_and_no_tokenizer_json(tmp_path, tokenizer):
    tokenizer.save_pretrained(tmp_path)
    names = {path.name for path in tmp_path.iterdir()}
    assert "tokenizer.json" not in names and {"vocab.json", "tokenizer_config.json"} <= names
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert list(vocab.values()) == list(range(len(tokenizer)))  # token -> id, in id order
    assert vocab == tokenizer.get_vocab()
    # what other tools are told to do: the class's words, then a lookup in vocab.json
    for text in ROUND_TRIP_TEXTS:
        ids = [vocab.get(word, vocab["xxunk"]) for word in tokenizer.tokenize(text)]
        assert ids == tokenizer(text, add_special_tokens=False).input_ids


def test_saved_vocabulary_and_added_tokens_round_trip_exactly(tmp_path, tokenizer):
    add_round_trip_tokens(tokenizer)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(reloaded, AwdLstmTokenizer) and len(reloaded) == len(tokenizer)
    assert reloaded.get_vocab() == tokenizer.get_vocab()
    assert reloaded.added_tokens_decoder == tokenizer.added_tokens_decoder
    expected = tokenizer(ROUND_TRIP_TEXTS).input_ids
    assert reloaded(ROUND_TRIP_TEXTS).input_ids == expected
    assert tokenizer.convert_tokens_to_ids("[SPECIAL_TOKEN_1]") in expected[1]
    assert reloaded.batch_decode(expected, skip_special_tokens=True) == tokenizer.batch_decode(
        expected, skip_special_tokens=True
    )


def test_a_folder_with_only_an_old_tokenizer_json_loads_and_tokenizes_identically(tmp_path, tokenizer):
    add_round_trip_tokens(tokenizer)
    folder = save_like_earlier_versions(tokenizer, tmp_path / "old")
    expected = tokenizer(ROUND_TRIP_TEXTS).input_ids
    reloaded = AutoTokenizer.from_pretrained(folder)
    assert isinstance(reloaded, AwdLstmTokenizer) and reloaded(ROUND_TRIP_TEXTS).input_ids == expected
    assert reloaded.added_tokens_decoder == tokenizer.added_tokens_decoder
    direct = AwdLstmTokenizer(tokenizer_file=str(folder / "tokenizer.json"))
    assert direct(ROUND_TRIP_TEXTS).input_ids == expected
    # saving it again replaces the misleading tokenizer.json with vocab.json
    reloaded.save_pretrained(folder)
    assert not (folder / "tokenizer.json").exists() and (folder / "vocab.json").is_file()
    assert AutoTokenizer.from_pretrained(folder)(ROUND_TRIP_TEXTS).input_ids == expected


# Run by `run_without_ulmfit`, in a fresh interpreter in which any import of `ulmfit` fails.
LOAD_WITH_REMOTE_CODE = """
    import json, sys
    from transformers import AutoTokenizer

    texts = json.loads(sys.argv[1])
    loaded = [AutoTokenizer.from_pretrained(folder, trust_remote_code=True) for folder in sys.argv[2:]]
    print(json.dumps({
        "modules": sorted({type(tokenizer).__module__.split(".")[0] for tokenizer in loaded}),
        "input_ids": [tokenizer(texts).input_ids for tokenizer in loaded],
    }))
"""


def test_new_and_old_folders_load_through_remote_code_without_ulmfit(tmp_path, tokenizer, run_without_ulmfit):
    add_round_trip_tokens(tokenizer)
    tokenizer.save_pretrained(tmp_path / "new")
    save_like_earlier_versions(tokenizer, tmp_path / "old")
    child = run_without_ulmfit(LOAD_WITH_REMOTE_CODE, json.dumps(ROUND_TRIP_TEXTS), tmp_path / "new", tmp_path / "old")
    assert child["modules"] == ["transformers_modules"]
    assert child["input_ids"] == [tokenizer(ROUND_TRIP_TEXTS).input_ids] * 2
