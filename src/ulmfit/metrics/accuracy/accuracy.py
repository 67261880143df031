"""Accuracy for `evaluate`, shipped with ulmfit so that it loads offline (`evaluate.load("accuracy")` needs the Hub).

The Hub's `accuracy` metric is a thin wrapper over scikit-learn's `accuracy_score`; this module computes the same
thing without scikit-learn, with the same arguments (`normalize`, `sample_weight`). See `README.md` beside this file
for the metric card.
"""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Accuracy is the proportion of correct predictions among the total number of cases processed. It can be computed with:
Accuracy = (TP + TN) / (TP + TN + FP + FN)
 Where:
TP: True positive
TN: True negative
FP: False positive
FN: False negative
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): Predicted labels.
    references (`list` of `int`): Ground truth labels.
    normalize (`boolean`): If set to False, returns the number of correctly classified samples (the sum of their
        weights when `sample_weight` is given). Otherwise, returns the fraction of correctly classified samples.
        Defaults to True.
    sample_weight (`list` of `float`): Sample weights. Defaults to None.

Returns:
    accuracy (`float`): Accuracy score. Minimum possible value is 0. Maximum possible value is 1.0, or the number of
        examples input (their total weight), if `normalize` is set to `False`. A higher score means higher accuracy.

Examples:

    Example 1-A simple example
        >>> from ulmfit import metrics
        >>> accuracy_metric = metrics.load("accuracy")
        >>> results = accuracy_metric.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0])
        >>> print(results)
        {'accuracy': 0.5}

    Example 2-The same as Example 1, except with `normalize` set to `False`.
        >>> results = accuracy_metric.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0],
        ...                                   normalize=False)
        >>> print(results)
        {'accuracy': 3.0}

    Example 3-The same as Example 1, except with `sample_weight` set.
        >>> results = accuracy_metric.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0],
        ...                                   sample_weight=[0.5, 2, 0.7, 0.5, 9, 0.4])
        >>> print(results)
        {'accuracy': 0.8778625954198473}
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


def accuracy_score(references, predictions, *, normalize=True, sample_weight=None) -> float:
    """scikit-learn's `accuracy_score` for 1-D integer targets."""
    references, predictions = np.asarray(references).ravel(), np.asarray(predictions).ravel()
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    lengths = [len(references), len(predictions)] + ([] if weights is None else [len(weights)])
    if len(set(lengths)) > 1:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {lengths}")
    if weights is not None and not weights.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    correct = references == predictions
    if normalize:
        return float(np.average(correct, weights=weights))
    if weights is not None:
        return float(np.dot(correct, weights))
    return float(correct.sum())


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        if len(predictions) == 0:
            raise ValueError("Cannot compute accuracy of zero predictions.")
        return {"accuracy": accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight)}
