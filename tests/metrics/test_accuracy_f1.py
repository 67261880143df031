"""The shipped `accuracy` and `f1` follow the Hub metrics (scikit-learn's `accuracy_score` / `f1_score`).

Expected values are worked out by hand from per-class counts, not by calling scikit-learn (which is not a dependency).
"""

import doctest
import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest

from ulmfit import metrics


MULTICLASS_MESSAGE = (
    "Target is multiclass but average='binary'. Please choose another average setting, one of "
    "[None, 'micro', 'macro', 'weighted']."
)

# references [0, 0, 0, 1, 1, 2] vs predictions [0, 0, 1, 1, 2, 2]:
#   class 0: tp 2, predicted 2, true 3 -> F1 = 2*2 / (2+3) = 4/5
#   class 1: tp 1, predicted 2, true 2 -> F1 = 2*1 / (2+2) = 1/2
#   class 2: tp 1, predicted 2, true 1 -> F1 = 2*1 / (2+1) = 2/3
#   micro: tp 4, predicted 6, true 6 -> 8/12 = 2/3 (= accuracy)
REFERENCES = [0, 0, 0, 1, 1, 2]
PREDICTIONS = [0, 0, 1, 1, 2, 2]
PER_CLASS = [4 / 5, 1 / 2, 2 / 3]


def f1(**kwargs):
    return metrics.load("f1").compute(**kwargs)["f1"]


def accuracy(**kwargs):
    return metrics.load("accuracy").compute(**kwargs)["accuracy"]


def module(name: str):
    path = Path(metrics.metric_path(name)) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_shipped_{name}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


# ---------------------------------------------------------------- f1: the default binary average


def test_f1_multiclass_with_the_default_binary_average_raises():
    with pytest.raises(ValueError, match=re.escape(MULTICLASS_MESSAGE)):
        f1(predictions=PREDICTIONS, references=REFERENCES)


def test_f1_three_labels_across_references_and_predictions_is_multiclass():
    # each side alone has two labels; together three, as in scikit-learn's _check_targets
    with pytest.raises(ValueError, match=re.escape(MULTICLASS_MESSAGE)):
        f1(predictions=[0, 1, 1], references=[0, 2, 0])


def test_f1_binary_scores_pos_label():
    # references [0, 1, 0, 1, 0] vs predictions [0, 0, 1, 1, 0]
    # pos 1: tp 1, predicted 2, true 2 -> 2/4; pos 0: tp 2, predicted 3, true 3 -> 4/6
    kwargs = {"references": [0, 1, 0, 1, 0], "predictions": [0, 0, 1, 1, 0]}
    assert f1(**kwargs) == pytest.approx(1 / 2)
    assert f1(**kwargs, pos_label=0) == pytest.approx(2 / 3)
    assert isinstance(f1(**kwargs), float)


def test_f1_binary_sample_weight():
    # weights [0.9, 0.5, 3.9, 1.2, 0.3]; pos 1: tp 1.2, predicted 3.9 + 1.2, true 0.5 + 1.2
    result = f1(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0], sample_weight=[0.9, 0.5, 3.9, 1.2, 0.3])
    assert result == pytest.approx(2 * 1.2 / (5.1 + 1.7))


def test_f1_binary_labels_other_than_zero_and_one():
    # present labels {0, 2}: pos_label 1 is not one of them
    with pytest.raises(ValueError, match=re.escape("pos_label=1 is not a valid label. It should be one of [0, 2]")):
        f1(references=[0, 2, 0], predictions=[2, 0, 0])
    # pos 2: tp 0, predicted 1, true 1 -> 0
    assert f1(references=[0, 2, 0], predictions=[2, 0, 0], pos_label=2) == 0.0


def test_f1_binary_ignores_labels():
    assert f1(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0], labels=[0]) == pytest.approx(1 / 2)


def test_f1_binary_absent_positive_class_is_zero_with_a_warning():
    with pytest.warns(UserWarning, match="F-score is ill-defined and being set to 0.0 due to no true nor predicted"):
        assert f1(references=[0, 0], predictions=[0, 0]) == 0.0


# ---------------------------------------------------------------- f1: multiclass averages


def test_f1_micro_macro_weighted():
    kwargs = {"predictions": PREDICTIONS, "references": REFERENCES}
    assert f1(**kwargs, average="micro") == pytest.approx(2 / 3)
    assert f1(**kwargs, average="macro") == pytest.approx(sum(PER_CLASS) / 3)
    # supports 3, 2, 1
    assert f1(**kwargs, average="weighted") == pytest.approx((4 / 5 * 3 + 1 / 2 * 2 + 2 / 3 * 1) / 6)


def test_f1_average_none_returns_per_class_scores():
    result = f1(predictions=PREDICTIONS, references=REFERENCES, average=None)
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, PER_CLASS)


def test_f1_labels_select_and_order_classes():
    kwargs = {"predictions": PREDICTIONS, "references": REFERENCES}
    np.testing.assert_allclose(f1(**kwargs, average=None, labels=[2, 0]), [2 / 3, 4 / 5])
    assert f1(**kwargs, average="macro", labels=[1, 2]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    # micro over classes 1 and 2 only: tp 1 + 1, predicted 2 + 2, true 2 + 1
    assert f1(**kwargs, average="micro", labels=[1, 2]) == pytest.approx(2 * 2 / (4 + 3))
    # weighted over classes 1 and 2: supports 2 and 1
    assert f1(**kwargs, average="weighted", labels=[1, 2]) == pytest.approx((1 / 2 * 2 + 2 / 3 * 1) / 3)
    # one label with average=None comes back as a float, as from the Hub metric
    assert f1(**kwargs, average=None, labels=[1]) == pytest.approx(1 / 2)


def test_f1_absent_label_counts_as_zero_division():
    kwargs = {"predictions": PREDICTIONS, "references": REFERENCES, "labels": [0, 1, 2, 5]}
    with pytest.warns(UserWarning, match="in labels with no true nor predicted samples"):
        assert f1(**kwargs, average="macro") == pytest.approx(sum(PER_CLASS) / 4)
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(f1(**kwargs, average=None), [*PER_CLASS, 0.0])
    # label 5 has no support, so the weighted average does not change
    with pytest.warns(UserWarning):
        assert f1(**kwargs, average="weighted") == pytest.approx((4 / 5 * 3 + 1 / 2 * 2 + 2 / 3 * 1) / 6)
    assert f1(**kwargs, average="macro", zero_division=1.0) == pytest.approx((sum(PER_CLASS) + 1) / 4)
    assert f1(**kwargs, average="macro", zero_division=np.nan) == pytest.approx(sum(PER_CLASS) / 3)
    with pytest.raises(ValueError, match="zero_division"):
        f1(**kwargs, average="macro", zero_division=0.5)


def test_f1_sample_weight_multiclass():
    # weights [1, 2, 1, 1, 3, 0.5]
    #   class 0: tp 1 + 2, predicted 1 + 2, true 1 + 2 + 1 -> 6/7
    #   class 1: tp 1, predicted 1 + 1, true 1 + 3 -> 2/6
    #   class 2: tp 0.5, predicted 3 + 0.5, true 0.5 -> 1/4
    #   micro: tp 4.5, predicted 8.5, true 8.5 -> 9/17
    kwargs = {"predictions": PREDICTIONS, "references": REFERENCES, "sample_weight": [1, 2, 1, 1, 3, 0.5]}
    per_class = [6 / 7, 1 / 3, 1 / 4]
    np.testing.assert_allclose(f1(**kwargs, average=None), per_class)
    assert f1(**kwargs, average="micro") == pytest.approx(9 / 17)
    assert f1(**kwargs, average="macro") == pytest.approx(sum(per_class) / 3)
    assert f1(**kwargs, average="weighted") == pytest.approx((6 / 7 * 4 + 1 / 3 * 4 + 1 / 4 * 0.5) / 8.5)


def test_f1_pos_label_is_ignored_with_a_warning_outside_binary():
    with pytest.warns(UserWarning, match=re.escape("pos_label (set to 0) is ignored when average != 'binary'")):
        result = f1(predictions=PREDICTIONS, references=REFERENCES, average="macro", pos_label=0)
    assert result == pytest.approx(sum(PER_CLASS) / 3)


def test_f1_rejects_unknown_averages_and_mismatched_weights():
    with pytest.raises(ValueError, match="average has to be one of"):
        f1(predictions=PREDICTIONS, references=REFERENCES, average="mean")
    with pytest.raises(ValueError, match="Samplewise metrics are not available"):
        f1(predictions=PREDICTIONS, references=REFERENCES, average="samples")
    with pytest.raises(ValueError, match=re.escape("inconsistent numbers of samples: [6, 6, 2]")):
        f1(predictions=PREDICTIONS, references=REFERENCES, average="macro", sample_weight=[1, 2])
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        f1(predictions=PREDICTIONS, references=REFERENCES, average="macro", sample_weight=[0] * 6)


def test_f1_batches_give_the_same_score():
    metric = metrics.load("f1")
    metric.add_batch(predictions=PREDICTIONS[:4], references=REFERENCES[:4])
    metric.add_batch(predictions=PREDICTIONS[4:], references=REFERENCES[4:])
    assert metric.compute(average="macro")["f1"] == pytest.approx(sum(PER_CLASS) / 3)


# ---------------------------------------------------------------- accuracy


def test_accuracy_normalize_and_sample_weight():
    # references [0, 1, 2, 0, 1, 2] vs predictions [0, 1, 1, 2, 1, 0]: examples 0, 1 and 4 are right
    kwargs = {"references": [0, 1, 2, 0, 1, 2], "predictions": [0, 1, 1, 2, 1, 0]}
    weights = [0.5, 2, 0.7, 0.5, 9, 0.4]
    assert accuracy(**kwargs) == 0.5
    assert accuracy(**kwargs, normalize=False) == 3.0
    assert isinstance(accuracy(**kwargs, normalize=False), float)
    assert accuracy(**kwargs, sample_weight=weights) == pytest.approx((0.5 + 2 + 9) / sum(weights))
    assert accuracy(**kwargs, sample_weight=weights, normalize=False) == pytest.approx(0.5 + 2 + 9)


def test_accuracy_rejects_mismatched_weights():
    with pytest.raises(ValueError, match=re.escape("inconsistent numbers of samples: [3, 3, 2]")):
        accuracy(references=[0, 1, 2], predictions=[0, 1, 1], sample_weight=[1, 2])
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        accuracy(references=[0, 1, 2], predictions=[0, 1, 1], sample_weight=[0, 0, 0])


# ---------------------------------------------------------------- documentation: citation, card, examples


@pytest.mark.parametrize("name", ["accuracy", "f1"])
def test_metric_cites_scikit_learn(name):
    metric = metrics.load(name)
    assert "Pedregosa" in metric.citation and "Journal of Machine Learning Research" in metric.citation
    assert "2825--2830" in metric.citation
    assert metric.description.strip() and metric.inputs_description.strip()


@pytest.mark.parametrize("name", ["accuracy", "f1"])
def test_docstring_examples_run(name):
    shipped = module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    for label, text in (("_KWARGS_DESCRIPTION", shipped._KWARGS_DESCRIPTION), ("__doc__", shipped.__doc__)):
        runner.run(parser.get_doctest(text, {}, f"{name}.{label}", None, 0))
    results = runner.summarize(verbose=False)
    assert results.failed == 0
    assert results.attempted >= 4


@pytest.mark.parametrize("name", ["accuracy", "f1"])
def test_metric_card_ships_beside_the_module_and_its_examples_run(name):
    card = Path(metrics.metric_path(name)) / "README.md"
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n") and "## Citation" in text and "Pedregosa" in text
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(doctest.DocTestParser().get_doctest(text, {}, f"{name}/README.md", str(card), 0))
    results = runner.summarize(verbose=False)
    assert results.failed == 0
    assert results.attempted >= 4


def test_package_data_ships_the_metric_cards():
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert '"metrics/*/README.md"' in pyproject.read_text(encoding="utf-8")


def test_macro_f1_of_a_perfect_multiclass_prediction_is_one():
    assert math.isclose(f1(predictions=REFERENCES, references=REFERENCES, average="macro"), 1.0)
