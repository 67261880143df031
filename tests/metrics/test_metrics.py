import math

import evaluate
import pytest

from ulmfit import metrics


def test_language_model_metric_ignores_masked_positions():
    metric = metrics.load("language_model")
    assert isinstance(metric, evaluate.EvaluationModule)
    metric.add_batch(predictions=[5, 6], references=[5, 7], losses=[0.5, 1.5])
    metric.add_batch(predictions=[1], references=[-100], losses=[99.0])
    result = metric.compute()
    assert result == {"loss": 1.0, "perplexity": pytest.approx(math.e), "accuracy": 0.5, "tokens": 2}


def test_accuracy_metric_loads_offline_by_path():
    metric = evaluate.load(metrics.metric_path("accuracy"))
    assert metric.compute(predictions=[0, 1, 1, 1], references=[0, 1, 0, 1]) == {"accuracy": 0.75}


def test_unknown_metric_names_the_shipped_ones():
    with pytest.raises(ValueError, match="accuracy"):
        metrics.load("bleu")


@pytest.mark.parametrize(
    "average, expected",
    # predictions [1, 1, 1, 0, 0] vs references [1, 1, 0, 0, 1]: class 1 has F1 2/3 (support 3), class 0 has 1/2
    # (support 2); scikit-learn's f1_score gives the same four values
    [("binary", 2 / 3), ("macro", (2 / 3 + 1 / 2) / 2), ("micro", 3 / 5), ("weighted", (2 / 3 * 3 + 1 / 2 * 2) / 5)],
)
def test_f1_matches_scikit_learn_definitions(average, expected):
    result = metrics.load("f1").compute(predictions=[1, 1, 1, 0, 0], references=[1, 1, 0, 0, 1], average=average)
    assert result["f1"] == pytest.approx(expected)
