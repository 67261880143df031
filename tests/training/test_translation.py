import datasets
import pytest
import torch
from torch import nn

from ulmfit import GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration, GruSeq2SeqTokenizer
from ulmfit.training.translation import (
    drop_blank_pairs,
    drop_long_pairs,
    evaluate_translator,
    initialize_embeddings,
    load_pairs,
    load_vectors_for_embedding,
    load_word_vectors,
    pair_collator,
    smoothed_loss,
    teacher_forcing_ratio,
)


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


def test_smoothed_loss_is_the_models_loss_at_zero_and_smooths_over_real_tokens_only():
    config = GruSeq2SeqConfig(vocab_size=11, decoder_vocab_size=13, embedding_size=8, hidden_size=6)
    model = GruSeq2SeqForConditionalGeneration(config).eval()
    labels = torch.tensor([[5, 6, 3, 1], [7, 3, 1, 1]])  # xxeos = 3, padding = 1
    with torch.no_grad():
        outputs = model(
            input_ids=torch.tensor([[4, 5, 3], [6, 3, 1]]),
            attention_mask=torch.tensor([[1, 1, 1], [1, 1, 0]]),
            labels=labels,
        )
    assert smoothed_loss(outputs.logits, labels, 1, 0.0) == pytest.approx(outputs.loss.item(), rel=1e-6)
    # by hand: (1 - e) * NLL of the target + e * the mean NLL over the vocabulary, averaged over the 5 real tokens
    log_probs = outputs.logits.log_softmax(-1)
    real = labels != 1
    nll = -log_probs.gather(-1, labels[..., None])[..., 0][real]
    uniform = -log_probs.mean(-1)[real]
    expected = (0.9 * nll + 0.1 * uniform).mean()
    assert smoothed_loss(outputs.logits, labels, 1, 0.1) == pytest.approx(expected.item(), rel=1e-5)
    assert smoothed_loss(outputs.logits, labels.masked_fill(labels == 1, -100), 1, 0.1) == pytest.approx(
        expected.item()
    )


class OneProcess:
    """An `Accelerator` on one process, as these helpers use it: it keeps what is printed and gathers nothing."""

    def __init__(self):
        self.printed = []

    def print(self, message):
        self.printed.append(message)

    unwrap_model = pad_across_processes = gather_for_metrics = staticmethod(lambda value, **_: value)


def test_pairs_are_read_as_source_and_target_columns(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("en,text\nI am.,Je suis.\nHe is.,Il est.\n")
    pairs = load_pairs(train_file=str(path), validation_file=str(path), source_column="text", target_column="en")
    assert pairs["train"].column_names == ["source", "target"]
    assert pairs["validation"]["source"] == ["Je suis.", "Il est."] and pairs["validation"]["target"][0] == "I am."
    english_first = load_pairs(
        train_file=str(path), validation_file=str(path), source_column="en", target_column="text"
    )
    assert english_first["train"]["source"] == ["I am.", "He is."]  # the target is the column called "text"
    with pytest.raises(ValueError, match=r"\['fr'\] not found.*Pick them with --source_column/--target_column"):
        load_pairs(train_file=str(path), source_column="fr", target_column="en")


def test_blank_pairs_are_dropped_and_counted():
    process = OneProcess()
    pairs = datasets.Dataset.from_dict({"source": ["Je suis.", " ", None], "target": ["I am.", "Hi.", "He is."]})
    assert drop_blank_pairs(pairs, "train", process)["source"] == ["Je suis."]
    assert process.printed == ["train: dropped 2 pairs with an empty or missing sentence"]
    with pytest.raises(ValueError, match="The test split has no pair"):
        drop_blank_pairs(pairs.select([1]), "test", process)


def test_long_pairs_are_dropped_never_truncated_and_counted():
    process = OneProcess()
    pairs = datasets.Dataset.from_dict({"input_ids": [[1, 2], [1, 2, 3, 4]], "labels": [[5, 6, 7], [5]]})
    assert drop_long_pairs(pairs, None, None, process) is pairs and not process.printed
    assert drop_long_pairs(pairs, 3, None, process)["input_ids"] == [[1, 2]]
    assert process.printed == [
        "dropped 1 of 2 training pairs longer than max_source_length=3 / max_target_length=None tokens"
    ]
    with pytest.raises(ValueError, match="Every training pair is longer"):
        drop_long_pairs(pairs, 3, 2, process)


def test_pair_batches_are_right_padded_masked_and_keep_their_rows_if_asked():
    features = [
        {"input_ids": [4, 5, 6], "labels": [7, 8], "index": 3},
        {"input_ids": [4], "labels": [9, 8, 2], "index": 0},
    ]
    batch = pair_collator(pad_token_id=1)(features)
    assert batch["input_ids"].tolist() == [[4, 5, 6], [4, 1, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[7, 8, -100], [9, 8, 2]] and "index" not in batch
    assert pair_collator(pad_token_id=1, keep_index=True)(features)["index"].tolist() == [3, 0]


def test_vectors_for_an_embedding_are_projected_only_when_asked(vector_file):
    assert load_vectors_for_embedding(vector_file, 3, project=False, seed=0).dimension == 3
    with pytest.raises(ValueError, match="holds 3-d vectors but the model's embedding_size is 5.*--project_vectors"):
        load_vectors_for_embedding(vector_file, 5, project=False, seed=0)
    with pytest.raises(ValueError, match='embedding_size is 2: pass --config_overrides "embedding_size=3".$'):
        load_vectors_for_embedding(vector_file, 2, project=True, seed=0)
    original = load_word_vectors(vector_file).vectors
    projected = load_vectors_for_embedding(vector_file, 5, project=True, seed=0).vectors
    assert projected.shape == (5, 5)
    torch.testing.assert_close(projected @ projected.T, original @ original.T)  # dot products are kept
    torch.testing.assert_close(load_vectors_for_embedding(vector_file, 5, project=True, seed=0).vectors, projected)


def test_evaluation_scores_the_translations_of_every_row_in_order():
    tokenizer = GruSeq2SeqTokenizer.train(["Je suis.", "Il est."], ["I am.", "He is."])
    sizes = {"vocab_size": tokenizer.vocab_size, "decoder_vocab_size": tokenizer.target_vocab_size}
    torch.manual_seed(0)
    model = GruSeq2SeqForConditionalGeneration(GruSeq2SeqConfig(**sizes, embedding_size=8, hidden_size=8))
    model.generation_config.max_new_tokens = 4
    encoded = tokenizer(["Je suis.", "Il est."], text_target=["I am.", "He is."])
    features = [
        {"input_ids": source, "labels": target, "index": row}
        for row, (source, target) in enumerate(zip(encoded["input_ids"], encoded["labels"]))
    ]
    loader = [pair_collator(tokenizer.pad_token_id, keep_index=True)(features[::-1])]
    scores = evaluate_translator(model, loader, OneProcess(), tokenizer, ["I am.", "He is."])
    assert {"bleu", "chrf", "bleu_signature", "loss", "examples"} <= set(scores) and scores["loss"] > 0
    greedy = evaluate_translator(
        model,
        [pair_collator(tokenizer.pad_token_id, keep_index=True)(features)],
        OneProcess(),
        tokenizer,
        ["I am.", "He is."],
        with_loss=False,
    )
    assert "loss" not in greedy and greedy["examples"] == scores["examples"]  # row order, whatever the batch order


def test_repeated_word_rate_counts_outputs_that_say_a_word_twice_in_a_row():
    from ulmfit.training.translation import repeated_word_rate

    outputs = ["I'm we we didn't have the..", "Tom didn't have Mary Mary.", "It is what it is.", "Go, go!", ""]
    assert repeated_word_rate(outputs) == pytest.approx(3 / 5)  # "we we", "Mary Mary", "Go, go" (case-insensitive)
    assert repeated_word_rate([]) == 0.0
