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
    tensor = tokenizer("the movie", return_tensors="pt").input_ids
    assert tensor.shape == (1, 3)


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
