"""F1 for `evaluate`, shipped with ulmfit so that it loads offline (`evaluate.load("f1")` needs the Hub).

The Hub's `f1` metric is a thin wrapper over scikit-learn's `f1_score`; this module computes the same thing without
scikit-learn, argument for argument (`labels`, `pos_label`, `average`, `sample_weight`, and `zero_division`):

- `average="binary"` (the default) scores `pos_label` alone, and raises on multiclass targets (more than two distinct
  labels among references and predictions together) instead of quietly returning a meaningless number;
- `"micro"` pools every decision, `"macro"` averages the per-class F1, `"weighted"` weights it by each class's
  (weighted) support, and `None` returns the per-class scores in the order of `labels` (sorted labels by default);
- a class that is neither predicted nor present (e.g. one named in `labels`) has an undefined F1, set to
  `zero_division` (0.0 with a warning by default) and counted as such in the averages.

See `README.md` beside this file for the metric card.
"""

import warnings

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
The F1 score is the harmonic mean of the precision and recall. It can be computed with the equation:
F1 = 2 * (precision * recall) / (precision + recall)
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): Predicted labels.
    references (`list` of `int`): Ground truth labels.
    labels (`list` of `int`): The set of labels to include when `average` is not set to `'binary'`, and the order of
        the scores when `average` is `None`. Labels present in the data can be excluded, for example to calculate a
        multiclass average ignoring a majority negative class. Labels not present in the data will result in 0
        components in a macro average. Defaults to None (every label in `predictions` and `references`, sorted).
    pos_label (`int`): The class to be considered the positive class, in the case where `average` is set to
        `binary`. Ignored (with a warning unless it is 1) for any other `average`. Defaults to 1.
    average (`string`): This parameter is required for multiclass targets. If set to `None`, the scores for each
        class are returned. Otherwise, this determines the type of averaging performed on the data. Defaults to
        `'binary'`.
        - 'binary': Only report results for the class specified by `pos_label`. This is applicable only if the
          classes found in `predictions` and `references` are binary; multiclass targets raise a `ValueError`.
        - 'micro': Calculate metrics globally by counting the total true positives, false negatives and false
          positives.
        - 'macro': Calculate metrics for each label, and find their unweighted mean. This does not take label
          imbalance into account.
        - 'weighted': Calculate metrics for each label, and find their average weighted by support (the number of
          true instances for each label). This alters `'macro'` to account for label imbalance. It can result in an
          F-score that is not between precision and recall.
    sample_weight (`list` of `float`): Sample weights. Defaults to None.
    zero_division (`"warn"`, `0.0`, `1.0` or `np.nan`): The F1 of a class with no true nor predicted samples.
        `"warn"` (the default) acts as 0.0 and also warns. With `np.nan`, such classes are left out of the averages.
Returns:
    f1 (`float` or `numpy.ndarray` of `float`): F1 score or list of f1 scores, depending on the value passed to
        `average`. Minimum possible value is 0. Maximum possible value is 1. Higher f1 scores are better. As in the
        Hub's `f1`, a single score (e.g. `average=None` with one label) comes back as a `float`.
Examples:

    Example 1-A simple binary example
        >>> from ulmfit import metrics
        >>> f1_metric = metrics.load("f1")
        >>> results = f1_metric.compute(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0])
        >>> print(results)
        {'f1': 0.5}

    Example 2-The same simple binary example as in Example 1, but with `pos_label` set to `0`.
        >>> results = f1_metric.compute(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0], pos_label=0)
        >>> print(round(results['f1'], 2))
        0.67

    Example 3-The same simple binary example as in Example 1, but with `sample_weight` included.
        >>> results = f1_metric.compute(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0],
        ...                             sample_weight=[0.9, 0.5, 3.9, 1.2, 0.3])
        >>> print(round(results['f1'], 2))
        0.35

    Example 4-A multiclass example, which needs an explicit `average`.
        >>> predictions = [0, 2, 1, 0, 0, 1]
        >>> references = [0, 1, 2, 0, 1, 2]
        >>> f1_metric.compute(predictions=predictions, references=references)
        Traceback (most recent call last):
          ...
        ValueError: Target is multiclass but average='binary'. Please choose another average setting, one of \
[None, 'micro', 'macro', 'weighted'].
        >>> results = f1_metric.compute(predictions=predictions, references=references, average="macro")
        >>> print(round(results['f1'], 2))
        0.27
        >>> results = f1_metric.compute(predictions=predictions, references=references, average="micro")
        >>> print(round(results['f1'], 2))
        0.33
        >>> results = f1_metric.compute(predictions=predictions, references=references, average="weighted")
        >>> print(round(results['f1'], 2))
        0.27
        >>> results = f1_metric.compute(predictions=predictions, references=references, average=None)
        >>> print(results['f1'].tolist())
        [0.8, 0.0, 0.0]
        >>> results = f1_metric.compute(predictions=predictions, references=references, average="macro",
        ...                             labels=[1, 2])
        >>> print(results['f1'])
        0.0
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V.
         and Thirion, B. and Grisel, O. and Blondel, M. and Prettenhofer, P.
         and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A. and
         Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""

_AVERAGES = (None, "micro", "macro", "weighted", "samples")


class UndefinedMetricWarning(UserWarning):
    """An F1 with no true nor predicted samples, set to `zero_division` (scikit-learn's warning of the same name)."""


def _zero_division_value(zero_division) -> float:
    if isinstance(zero_division, str) and zero_division == "warn":
        return 0.0
    if isinstance(zero_division, (int, float)) and not isinstance(zero_division, bool):
        if zero_division in (0, 1):
            return float(zero_division)
        if np.isnan(zero_division):
            return float("nan")
    raise ValueError(f'`zero_division` must be "warn", 0.0, 1.0 or np.nan, got {zero_division!r}.')


def _check_labels(references, predictions, average, labels, pos_label) -> list | None:
    """scikit-learn's `_check_set_wise_labels` for 1-D integer targets: the labels to score, or None for all."""
    if average not in _AVERAGES and average != "binary":
        raise ValueError(f"average has to be one of {_AVERAGES}")
    if average == "samples":
        raise ValueError("Samplewise metrics are not available outside of multilabel classification.")
    present = np.union1d(references, predictions).tolist()
    if average == "binary":
        if len(present) > 2:
            options = [option for option in _AVERAGES if option != "samples"]
            raise ValueError(
                "Target is multiclass but average='binary'. Please choose another average setting, one of "
                f"{options!r}."
            )
        if pos_label not in present and len(present) >= 2:
            raise ValueError(f"pos_label={pos_label} is not a valid label. It should be one of {present}")
        return [pos_label]
    if pos_label not in (None, 1):
        warnings.warn(
            f"Note that pos_label (set to {pos_label!r}) is ignored when average != 'binary' (got {average!r}). You "
            "may use labels=[pos_label] to specify a single positive class.",
            UserWarning,
            stacklevel=3,
        )
    return labels


def f1_score(
    references, predictions, *, labels=None, pos_label=1, average="binary", sample_weight=None, zero_division="warn"
):
    """scikit-learn's `f1_score` for 1-D integer targets: a float, or per-class scores for `average=None`."""
    references, predictions = np.asarray(references).ravel(), np.asarray(predictions).ravel()
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    lengths = [len(references), len(predictions)] + ([] if weights is None else [len(weights)])
    if len(set(lengths)) > 1:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {lengths}")
    if weights is not None and not weights.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    undefined = _zero_division_value(zero_division)
    labels = _check_labels(references, predictions, average, labels, pos_label)
    labels = np.union1d(references, predictions) if labels is None else np.asarray(labels)
    if weights is None:
        weights = np.ones(len(references))

    # per label: true positives, predicted count and true count, all weighted
    is_true = references[:, None] == labels[None, :]
    is_predicted = predictions[:, None] == labels[None, :]
    true_positives = (weights[:, None] * (is_true & is_predicted)).sum(0)
    predicted = (weights[:, None] * is_predicted).sum(0)
    true = (weights[:, None] * is_true).sum(0)
    if average == "micro":
        true_positives, predicted, true = (
            true_positives.sum(keepdims=True),
            predicted.sum(keepdims=True),
            true.sum(keepdims=True),
        )

    # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (true + predicted): undefined only with no true nor predicted sample
    denominator = true + predicted
    missing = denominator == 0
    scores = 2 * true_positives / np.where(missing, 1.0, denominator)
    if missing.any():
        scores[missing] = undefined
        if isinstance(zero_division, str):
            where = "due to" if len(scores) == 1 else "in labels with"
            warnings.warn(
                f"F-score is ill-defined and being set to 0.0 {where} no true nor predicted samples. Use "
                "`zero_division` parameter to control this behavior.",
                UndefinedMetricWarning,
                stacklevel=2,
            )
    if average is None:
        return scores
    return float(_nanaverage(scores, true if average == "weighted" else None))


def _nanaverage(scores: np.ndarray, weights: np.ndarray | None) -> float:
    """The (weighted) mean of the scores that are not NaN; the plain mean when their weights sum to zero."""
    kept = ~np.isnan(scores)
    if not kept.any():
        return float("nan")
    if weights is None or weights[kept].sum() == 0:
        return float(np.mean(scores[kept]))
    return float(np.average(scores[kept], weights=weights[kept]))


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"],
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        pos_label=1,
        average="binary",
        sample_weight=None,
        zero_division="warn",
    ):
        if len(predictions) == 0:
            raise ValueError("Cannot compute F1 of zero predictions.")
        score = f1_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        return {"f1": float(np.ravel(score)[0]) if np.size(score) == 1 else score}
