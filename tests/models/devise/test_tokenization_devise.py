import logging

import numpy as np
import pytest
import torch

from ulmfit import DeviseTokenizer, load_devise_word_vectors
from ulmfit.models.devise.tokenization_devise import read_word_vectors


def test_words_are_found_in_names_sums_and_sentences(tokenizer):
    assert tokenizer.tokenize("European_fire_salamander") == ["european", "fire", "salamander"]
    assert tokenizer.tokenize("engine + boat") == ["engine", "boat"]
    assert tokenizer.tokenize("  Goldfish. ") == ["goldfish"]
    assert tokenizer.tokenize("potter's wheel") == ["potter", "'s", "wheel"]  # GloVe splits the possessive


def test_the_zero_shot_pipeline_prompt_is_removed(tokenizer):
    assert tokenizer.tokenize("This is a photo of a boat.") == ["boat"]
    assert tokenizer.tokenize("This is a photo of fire salamander.") == ["fire", "salamander"]
    assert tokenizer.tokenize("photo") == ["photo"]  # a label that is itself a word of the prompt
    assert DeviseTokenizer(words=["photo", "boat"], prompt_template=None).tokenize("photo boat") == ["photo", "boat"]


def test_a_word_without_vector_is_an_error_that_names_it(tokenizer):
    with pytest.raises(ValueError, match="No word vector for 'axolotl'"):
        tokenizer(["goldfish", "fire axolotl"])
    with pytest.raises(ValueError, match="no words"):
        tokenizer(" + ")


def test_ids_follow_the_word_table_with_padding_first(tokenizer):
    assert tokenizer.convert_ids_to_tokens(0) == "[PAD]" and tokenizer.pad_token_id == 0
    batch = tokenizer(["boat", "fire salamander"], padding=True)
    assert batch["input_ids"] == [[5, 0], [2, 3]] and batch["attention_mask"] == [[1, 0], [1, 1]]


def test_save_and_reload_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = DeviseTokenizer.from_pretrained(tmp_path)
    assert reloaded.get_vocab() == tokenizer.get_vocab() and len(reloaded) == len(tokenizer)
    assert reloaded(["engine + boat"]).input_ids == tokenizer(["engine + boat"]).input_ids


def test_words_can_be_added(tokenizer):
    size = len(tokenizer)
    assert tokenizer.add_words(["axolotl"]) == [size]
    assert tokenizer.tokenize("axolotl") == ["axolotl"] and len(tokenizer) == size + 1
    with pytest.raises(ValueError, match="already"):
        tokenizer.add_words(["boat"])


def test_word_vector_files_are_read_with_or_without_header(tmp_path, caplog):
    path = tmp_path / "vectors.txt"
    path.write_text("3 2\nthe 0.1 0.2\nboat -1 0.5\nengine 2 3\n")
    words, vectors = read_word_vectors(path)
    assert words == ["the", "boat", "engine"]
    np.testing.assert_allclose(vectors, [[0.1, 0.2], [-1, 0.5], [2, 3]])
    assert read_word_vectors(path, max_words=2)[0] == ["the", "boat"]
    with caplog.at_level(logging.WARNING):
        assert read_word_vectors(path, words=["engine", "axolotl"])[0] == ["engine"]
    assert "axolotl" in caplog.text

    tokenizer, table = load_devise_word_vectors(path)
    assert table.shape == (4, 2) and torch.equal(table[0], torch.zeros(2))  # padding row
    torch.testing.assert_close(table[tokenizer.convert_tokens_to_ids("engine")], torch.tensor([2.0, 3.0]))

    (tmp_path / "bad.txt").write_text("the 0.1 0.2\nboat 1\n")
    with pytest.raises(ValueError, match="line 2"):
        read_word_vectors(tmp_path / "bad.txt")
