import evaluate
import pytest
from sacrebleu.metrics import BLEU, CHRF

from ulmfit import metrics


PREDICTIONS = ["The cat is on the mat.", "Where is the train station?", "I am very tired today.", "He's gone."]
REFERENCES = ["The cat sits on the mat.", "Where's the station?", "I'm very tired today.", "He has left."]


def test_bleu_and_chrf_equal_sacrebleu_with_its_default_13a_tokenization():
    result = metrics.load("bleu_chrf").compute(predictions=PREDICTIONS, references=REFERENCES)
    bleu, chrf = BLEU(), CHRF()
    expected_bleu = bleu.corpus_score(PREDICTIONS, [REFERENCES])
    assert result["bleu"] == pytest.approx(expected_bleu.score)
    assert result["chrf"] == pytest.approx(chrf.corpus_score(PREDICTIONS, [REFERENCES]).score)
    assert result["precisions"] == pytest.approx(expected_bleu.precisions)
    assert result["brevity_penalty"] == pytest.approx(expected_bleu.bp)
    assert result["bleu_signature"] == str(bleu.get_signature()) and "tok:13a" in result["bleu_signature"]
    assert "nrefs:1" in result["chrf_signature"] and 0 < result["bleu"] < 100


def test_perfect_translations_score_100():
    result = metrics.load("bleu_chrf").compute(predictions=REFERENCES, references=REFERENCES)
    assert result["bleu"] == pytest.approx(100.0) and result["chrf"] == pytest.approx(100.0)


def test_batches_accumulate_into_one_corpus_score():
    metric = evaluate.load(metrics.metric_path("bleu_chrf"))
    metric.add_batch(predictions=PREDICTIONS[:2], references=REFERENCES[:2])
    metric.add_batch(predictions=PREDICTIONS[2:], references=REFERENCES[2:])
    assert metric.compute()["bleu"] == pytest.approx(BLEU().corpus_score(PREDICTIONS, [REFERENCES]).score)


def test_several_references_per_sentence_are_sacrebleu_streams():
    references = [[reference, prediction] for reference, prediction in zip(REFERENCES, PREDICTIONS)]
    result = metrics.load("bleu_chrf").compute(predictions=PREDICTIONS, references=references)
    assert result["bleu"] == pytest.approx(100.0) and "nrefs:2" in result["bleu_signature"]
    uneven = [["a b c d"], ["e f g h", "e f g"]]
    with pytest.raises(ValueError, match="same number"):
        metrics.load("bleu_chrf").compute(predictions=["a b c d", "e f g h"], references=uneven)


def test_options_reach_sacrebleu():
    result = metrics.load("bleu_chrf").compute(
        predictions=[p.upper() for p in PREDICTIONS], references=REFERENCES, lowercase=True, chrf_word_order=2
    )
    expected = BLEU(lowercase=True).corpus_score([p.upper() for p in PREDICTIONS], [REFERENCES]).score
    assert result["bleu"] == pytest.approx(expected) and "case:lc" in result["bleu_signature"]
    assert "nw:2" in result["chrf_signature"]


@pytest.mark.parametrize("add_first", [False, True])
def test_empty_input_is_a_clear_error(add_first):
    metric = metrics.load("bleu_chrf")
    with pytest.raises(ValueError, match="zero predictions"):
        if add_first:
            metric.add_batch(predictions=[], references=[])
        else:
            metric.compute(predictions=[], references=[])
