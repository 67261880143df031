import evaluate
import pytest

from ulmfit import metrics


def test_hit_at_1_and_5_count_the_reference_within_the_first_k():
    metric = metrics.load("hit_at_k")
    assert isinstance(metric, evaluate.EvaluationModule)
    predictions = [[3, 1, 4, 0, 2], [2, 0, 1, 3, 4], [0, 1, 2, 3, 4], [9, 8, 7, 6, 5]]
    result = metric.compute(predictions=predictions, references=[3, 4, 1, 0])
    assert result == {"hit@1": 0.25, "hit@5": 0.75, "examples": 4}


def test_cut_offs_are_configurable_and_batches_accumulate():
    metric = metrics.load("hit_at_k")
    metric.add_batch(predictions=[[5, 6, 7], [7, 6, 5]], references=[6, 5])
    metric.add(predictions=[1, 2, 3], references=1)
    assert metric.compute(k=[1, 2, 3]) == pytest.approx({"hit@1": 1 / 3, "hit@2": 2 / 3, "hit@3": 1.0, "examples": 3})


def test_a_ranking_shorter_than_k_counts_a_hit_anywhere_in_it():
    # three candidate labels in all: hit@5 is "anywhere in the ranking", as with fewer classes than k
    result = metrics.load("hit_at_k").compute(predictions=[[2, 0, 1], [2, 0]], references=[1, 1])
    assert result == {"hit@1": 0.0, "hit@5": 0.5, "examples": 2}


def test_top_k_accuracy_of_a_classifier_is_hit_at_k_of_its_ranked_logits():
    torch = pytest.importorskip("torch")
    logits = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    ranked = logits.argsort(dim=-1, descending=True).tolist()
    result = metrics.load("hit_at_k").compute(predictions=ranked, references=[1, 1, 0], k=[1, 2])
    assert result == pytest.approx({"hit@1": 1 / 3, "hit@2": 2 / 3, "examples": 3})


@pytest.mark.parametrize(
    "predictions, references, k, message",
    [
        ([], [], (1, 5), "zero predictions"),
        ([[1, 2], []], [1, 2], (1, 5), "Prediction 1 is an empty ranking"),
        ([[1, 2, 1]], [1], (1, 5), "ranks a label twice"),
        ([[1, 2]], [1], (0, 5), "positive integer"),
        ([[1, 2]], [1], (), "positive integer"),
    ],
)
def test_bad_input_fails_clearly(predictions, references, k, message):
    with pytest.raises(ValueError, match=message):
        # in memory: a failed compute leaves evaluate's cache-file lock behind, which the next load waits a second on
        metric = metrics.load("hit_at_k", keep_in_memory=True)
        metric.compute(predictions=predictions, references=references, k=k)
