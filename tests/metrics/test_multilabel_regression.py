"""The shipped `multilabel` and `regression` metrics follow scikit-learn's and scipy's definitions.

Expected values are worked out by hand from per-label counts and ranks, not by calling scikit-learn or scipy (which are
not dependencies); the counts are written out beside each case.
"""

import doctest
import math
import re
from pathlib import Path

import numpy as np
import pytest

from ulmfit import metrics


# 4 examples x 3 labels; label 2 is never present nor predicted
#   label 0: predicted [1, 1, 0, 0], true [1, 0, 1, 0] -> tp 1, fp 1, fn 1 -> F1 = 2 / (2 + 1 + 1) = 1/2
#   label 1: predicted [1, 1, 1, 0], true [0, 1, 1, 0] -> tp 2, fp 1, fn 0 -> F1 = 4 / (4 + 1) = 4/5
#   label 2: no true nor predicted positive -> F1 = zero_division
#   pooled: tp 3, fp 2, fn 1 -> precision 3/5, recall 3/4, F1 = 6 / (6 + 2 + 1) = 2/3
#   examples 0-2 each have one wrong decision, example 3 none -> subset accuracy 1/4, Hamming loss 3/12
PREDICTIONS = [[1, 1, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]]
REFERENCES = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
KEYS = ["micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "per_label_f1", "micro_precision", "micro_recall"]


def multilabel(**kwargs):
    return metrics.load("multilabel").compute(**kwargs)


def regression(**kwargs):
    return metrics.load("regression").compute(**kwargs)


# ---------------------------------------------------------------- multilabel


def test_multilabel_scores_with_a_label_never_present():
    result = multilabel(predictions=PREDICTIONS, references=REFERENCES)
    assert list(result) == KEYS
    assert result["per_label_f1"] == pytest.approx([1 / 2, 4 / 5, 0.0])
    assert result["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 0.0) / 3)
    assert result["micro_f1"] == pytest.approx(2 / 3)
    assert result["micro_precision"] == pytest.approx(3 / 5)
    assert result["micro_recall"] == pytest.approx(3 / 4)
    assert result["subset_accuracy"] == 0.25
    assert result["hamming_loss"] == 0.25
    assert all(isinstance(result[key], float) for key in KEYS if key != "per_label_f1")
    assert isinstance(result["per_label_f1"], list) and all(isinstance(s, float) for s in result["per_label_f1"])


def test_multilabel_zero_division_scores_the_absent_label():
    result = multilabel(predictions=PREDICTIONS, references=REFERENCES, zero_division=1.0)
    assert result["per_label_f1"] == pytest.approx([1 / 2, 4 / 5, 1.0])
    assert result["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 1.0) / 3)
    # the pooled counts are defined, so the micro scores do not change
    assert result["micro_f1"] == pytest.approx(2 / 3)


def test_multilabel_nothing_predicted_nor_true_is_zero_division_everywhere():
    for zero_division in (0.0, 1.0):
        result = multilabel(predictions=[[0, 0], [0, 0]], references=[[0, 0], [0, 0]], zero_division=zero_division)
        assert result["micro_f1"] == result["macro_f1"] == zero_division
        assert result["micro_precision"] == result["micro_recall"] == zero_division
        assert result["per_label_f1"] == [zero_division, zero_division]
        assert result["subset_accuracy"] == 1.0 and result["hamming_loss"] == 0.0


def test_multilabel_no_prediction_has_undefined_precision_and_zero_recall():
    # pooled: tp 0, fp 0, fn 2 -> precision undefined (zero_division), recall 0, F1 = 0 / (0 + 0 + 2) = 0
    result = multilabel(predictions=[[0, 0], [0, 0]], references=[[1, 0], [0, 1]], zero_division=1.0)
    assert result["micro_precision"] == 1.0
    assert result["micro_recall"] == 0.0
    assert result["micro_f1"] == 0.0 and result["per_label_f1"] == [0.0, 0.0]
    assert result["hamming_loss"] == 0.5 and result["subset_accuracy"] == 0.0


def test_multilabel_perfect_prediction():
    result = multilabel(predictions=REFERENCES[:3], references=REFERENCES[:3])
    assert result["micro_f1"] == 1.0 and result["subset_accuracy"] == 1.0 and result["hamming_loss"] == 0.0
    # label 2 is still absent: it scores zero_division, and macro F1 averages it in
    assert result["per_label_f1"] == [1.0, 1.0, 0.0]
    assert result["macro_f1"] == pytest.approx(2 / 3)


def test_multilabel_batches_give_the_same_scores():
    metric = metrics.load("multilabel")
    metric.add_batch(predictions=PREDICTIONS[:1], references=REFERENCES[:1])
    metric.add_batch(predictions=PREDICTIONS[1:], references=REFERENCES[1:])
    assert metric.compute() == multilabel(predictions=PREDICTIONS, references=REFERENCES)


def test_multilabel_accepts_numpy_matrices_and_booleans():
    result = multilabel(predictions=np.array(PREDICTIONS), references=np.array(REFERENCES, dtype=bool))
    assert result == multilabel(predictions=PREDICTIONS, references=REFERENCES)


@pytest.mark.parametrize(
    "predictions, references, kwargs, message",
    [
        ([[1, 0], [1]], [[1, 0], [0, 1]], {}, "one entry per label (2), but predictions[1] has 1"),
        ([[1, 0], [0, 1]], [[1, 0], [0, 1, 1]], {}, "one entry per label (2), but references[1] has 3"),
        ([[1, 0, 1], [0, 1, 0]], [[1, 0], [0, 1]], {}, "one entry per label (2), but predictions[0] has 3"),
        ([[1, 0], [0, 2]], [[1, 0], [0, 1]], {}, "only 0 and 1, but predictions[1][1] is 2"),
        ([[1, 0], [0, 1]], [[-1, 0], [0, 1]], {}, "only 0 and 1, but references[0][0] is -1"),
        ([[1, 0], [0, None]], [[1, 0], [0, 1]], {}, "only 0 and 1, but predictions[1][1] is None"),
        ([[1, 0]], [[1, 0], [0, 1]], {}, "Mismatch in the number of predictions (1) and references (2)"),
        ([], [], {}, "zero examples"),
        ([[], []], [[], []], {}, "at least one label"),
        ([[1, 0]], [[1, 0]], {"zero_division": 0.5}, "`zero_division` must be 0.0 or 1.0, got 0.5"),
        ([[1, 0]], [[1, 0]], {"zero_division": "warn"}, "`zero_division` must be 0.0 or 1.0, got 'warn'"),
    ],
)
def test_multilabel_bad_input_fails_clearly(predictions, references, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        multilabel(predictions=predictions, references=references, **kwargs)


@pytest.mark.parametrize("name", ["multilabel", "regression"])
def test_only_empty_batches_fail_clearly(name):
    metric = metrics.load(name)
    metric.add_batch(predictions=[], references=[])
    with pytest.raises(ValueError, match="zero examples"):
        metric.compute()


# ---------------------------------------------------------------- regression


def test_regression_errors_and_correlations():
    # errors [-0.5, 0.5, 0, 1] -> MAE 2/4, MSE 1.5/4
    # centred predictions [-0.625, -3.125, -1.125, 4.875], references [0.125, -3.375, -0.875, 4.125]:
    #   dot 31.5625, squared norms 35.1875 and 29.1875; both sides rank [3, 1, 2, 4] -> Spearman 1
    result = regression(predictions=[2.5, 0.0, 2.0, 8.0], references=[3.0, -0.5, 2.0, 7.0])
    assert list(result) == ["mae", "mse", "rmse", "pearson", "spearman"]
    assert result["mae"] == 0.5
    assert result["mse"] == 0.375
    assert result["rmse"] == pytest.approx(math.sqrt(0.375))
    assert result["pearson"] == pytest.approx(31.5625 / math.sqrt(35.1875 * 29.1875))
    assert result["spearman"] == pytest.approx(1.0)
    assert all(isinstance(value, float) for value in result.values())


def test_regression_perfect_and_anti_correlation():
    # a positive affine map correlates perfectly; reversing the order anti-correlates
    result = regression(predictions=[1.0, 3.0, 5.0, 11.0], references=[0.0, 1.0, 2.0, 5.0])
    assert result["pearson"] == pytest.approx(1.0) and result["spearman"] == pytest.approx(1.0)
    result = regression(predictions=[4.0, 3.0, 2.0, 1.0], references=[1.0, 2.0, 3.0, 4.0])
    assert result["pearson"] == pytest.approx(-1.0) and result["spearman"] == pytest.approx(-1.0)
    assert result["mae"] == 2.0 and result["mse"] == 5.0 and result["rmse"] == pytest.approx(math.sqrt(5.0))


def test_regression_spearman_gives_ties_their_mean_rank():
    # predictions [1, 1, 2, 3] rank [1.5, 1.5, 3, 4]; references rank [1, 2, 3, 4]
    # centred [-1, -1, 0.5, 1.5] and [-1.5, -0.5, 0.5, 1.5]: dot 4.5, squared norms 4.5 and 5 -> 4.5 / sqrt(22.5)
    result = regression(predictions=[1.0, 1.0, 2.0, 3.0], references=[1.0, 2.0, 3.0, 4.0])
    assert result["spearman"] == pytest.approx(4.5 / math.sqrt(22.5))
    # ties on both sides: [5, 5, 5, 1] ranks [3, 3, 3, 1]; [2, 2, 0, 1] ranks [3.5, 3.5, 1, 2]
    # centred [0.5, 0.5, 0.5, -1.5] and [1, 1, -1.5, -0.5]: dot 1, squared norms 3 and 4.5 -> 1 / sqrt(13.5)
    result = regression(predictions=[5.0, 5.0, 5.0, 1.0], references=[2.0, 2.0, 0.0, 1.0])
    assert result["spearman"] == pytest.approx(1 / math.sqrt(13.5))


def test_regression_spearman_only_sees_the_order():
    # a monotone but non-linear map: Spearman 1, Pearson below 1
    result = regression(predictions=[1.0, 10.0, 100.0, 1000.0], references=[1.0, 2.0, 3.0, 4.0])
    assert result["spearman"] == pytest.approx(1.0)
    assert result["pearson"] < 0.95


@pytest.mark.parametrize(
    "predictions, references",
    [([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])],
    ids=["constant predictions", "constant references"],
)
def test_regression_constant_input_gives_nan_correlations_with_a_warning(predictions, references):
    with pytest.warns(RuntimeWarning, match="correlation coefficient is not defined when an input is constant"):
        result = regression(predictions=predictions, references=references)
    assert math.isnan(result["pearson"]) and math.isnan(result["spearman"])
    assert result["mae"] == pytest.approx(2 / 3) and result["mse"] == pytest.approx(2 / 3)


def test_regression_single_example_has_errors_but_no_correlation():
    with pytest.warns(RuntimeWarning, match="single example"):
        result = regression(predictions=[2.0], references=[-1.0])
    assert result["mae"] == 3.0 and result["mse"] == 9.0 and result["rmse"] == 3.0
    assert math.isnan(result["pearson"]) and math.isnan(result["spearman"])


def test_regression_batches_give_the_same_scores():
    predictions, references = [2.5, 0.0, 2.0, 8.0, 1.0], [3.0, -0.5, 2.0, 7.0, 1.0]
    metric = metrics.load("regression")
    metric.add_batch(predictions=predictions[:2], references=references[:2])
    metric.add_batch(predictions=predictions[2:], references=references[2:])
    assert metric.compute() == pytest.approx(regression(predictions=predictions, references=references))


@pytest.mark.parametrize(
    "predictions, references, message",
    [
        ([1.0, math.nan, math.nan], [1.0, 2.0, 3.0], "predictions[1] is nan (2 non-finite values in all)"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, -math.inf], "references[2] is -inf (1 non-finite value in all)"),
        ([math.inf, 2.0], [math.nan, 1.0], "references[0] is nan"),
        ([1.0, None], [1.0, 2.0], "predictions[1] is None"),
        ([1.0], [1.0, 2.0], "Mismatch in the number of predictions (1) and references (2)"),
        ([], [], "zero examples"),
    ],
)
def test_regression_bad_input_fails_clearly(predictions, references, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        regression(predictions=predictions, references=references)


# ---------------------------------------------------------------- registry and documentation


def test_both_metrics_are_listed_and_load_by_path():
    assert {"multilabel", "regression"} <= set(metrics.AVAILABLE)
    for name in ("multilabel", "regression"):
        assert (Path(metrics.metric_path(name)) / f"{name}.py").is_file()


@pytest.mark.parametrize("name", ["multilabel", "regression"])
def test_docstring_and_metric_card_examples_run(name):
    metric = metrics.load(name)
    assert "Pedregosa" in metric.citation and metric.description.strip()
    card = Path(metrics.metric_path(name)) / "README.md"
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n") and "## Citation" in text
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    runner.run(parser.get_doctest(metric.inputs_description, {}, f"{name}._KWARGS_DESCRIPTION", None, 0))
    runner.run(parser.get_doctest(text, {}, f"{name}/README.md", str(card), 0))
    results = runner.summarize(verbose=False)
    assert results.failed == 0
    assert results.attempted >= 8
