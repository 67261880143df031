import pytest
import torch
from torch import nn

from ulmfit import GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration, GruSeq2SeqTokenizer
from ulmfit.training.translation import initialize_embeddings, load_word_vectors, teacher_forcing_ratio


VECTORS = """5 3
the 0.1 0.2 0.3
L' 1 2 3
Paris -1 -2 -3
the 9 9 9
new york 0.5 0.5 0.5
"""


@pytest.fixture
def vector_file(tmp_path):
    path = tmp_path / "vectors.vec"
    path.write_text(VECTORS, encoding="utf-8")
    return path


def test_reads_the_word2vec_text_format(vector_file):
    vectors = load_word_vectors(vector_file)
    assert vectors.words == ["the", "L'", "Paris", "the", "new york"]  # a word may contain a space
    assert vectors.dimension == 3 and vectors.vectors.shape == (5, 3)
    assert vectors.lookup("the") == 0  # a repeated word keeps its first (most frequent) row
    assert vectors.lookup("paris") == 2 and vectors.lookup("l'") == 1  # case-insensitive fallback
    assert vectors.lookup("london") is None
    assert load_word_vectors(vector_file, max_words=2).words == ["the", "L'"]


def test_reads_glove_files_without_a_header(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.418 0.24968\n, 0.013441 0.23682 \n", encoding="utf-8")
    vectors = load_word_vectors(path)
    assert vectors.words == ["the", ","]
    torch.testing.assert_close(vectors.vectors[0], torch.tensor([0.418, 0.24968]))


@pytest.mark.parametrize(
    ("content", "message"),
    [("2 3\nthe 0.1 0.2\n", "line 2"), ("2 2\nthe 0.1 abc\n", "line 2"), ("", "no word vectors")],
)
def test_malformed_files_raise_with_the_line(tmp_path, content, message):
    path = tmp_path / "bad.vec"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_word_vectors(path)


def test_initialises_rows_and_reports_coverage(vector_file):
    torch.manual_seed(0)
    embedding = nn.Embedding(6, 3)
    before = embedding.weight.detach().clone()
    vocab = ["xxunk", "xxpad", "the", "paris", "l'", "tokyo"]
    coverage = initialize_embeddings(embedding, vocab, load_word_vectors(vector_file), scale=3.0)
    assert (coverage.found, coverage.total, coverage.missing) == (3, 4, ["tokyo"])
    assert coverage.coverage == pytest.approx(0.75)
    torch.testing.assert_close(embedding.weight[2], torch.tensor([0.3, 0.6, 0.9]))  # the notebook's `vecs[w] * 3`
    torch.testing.assert_close(embedding.weight[3], torch.tensor([-3.0, -6.0, -9.0]))
    torch.testing.assert_close(embedding.weight[[0, 1, 5]], before[[0, 1, 5]])  # specials and misses keep their init


def test_initialises_a_translators_tied_decoder_embedding(vector_file):
    tokenizer = GruSeq2SeqTokenizer.train(["Paris"], ["The Paris"])
    config = GruSeq2SeqConfig(
        vocab_size=tokenizer.vocab_size,
        decoder_vocab_size=tokenizer.target_vocab_size,
        embedding_size=3,
        hidden_size=4,
    )
    model = GruSeq2SeqForConditionalGeneration(config)
    coverage = initialize_embeddings(
        model.model.decoder.embed_tokens, tokenizer.get_target_vocab(), load_word_vectors(vector_file)
    )
    assert coverage.coverage == 1.0
    row = tokenizer.get_target_vocab()["paris"]
    torch.testing.assert_close(model.lm_head.weight[row], torch.tensor([-1.0, -2.0, -3.0]))  # the tied output layer
    assert model.model.decoder.embed_tokens.weight.requires_grad


def test_dimension_mismatch_is_a_clear_error(vector_file):
    with pytest.raises(ValueError, match="5 dimensions but the word vectors 3"):
        initialize_embeddings(nn.Embedding(4, 5), ["a", "b"], load_word_vectors(vector_file))


def test_teacher_forcing_schedules():
    ratio = teacher_forcing_ratio
    assert [ratio(s, 10, "linear", 1.0, 0.0) for s in (0, 5, 10, 20)] == [1.0, 0.5, 0.0, 0.0]
    assert ratio(5, 10, "exponential", 1.0, 0.25) == pytest.approx(0.5)
    assert ratio(7, 10, "constant", 0.8, 0.0) == 0.8
    assert ratio(5, 10, "linear", 1.0, 0.5) == 0.75  # course-v3's 1.0 -> 0.5
