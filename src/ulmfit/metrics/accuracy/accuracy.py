"""Accuracy for `evaluate`, shipped with ulmfit so that it loads offline (`evaluate.load("accuracy")` needs the
Hub)."""

import datasets
import evaluate


_DESCRIPTION = "The fraction of predictions equal to their reference (optionally weighted)."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted labels.
    references (`list[int]`): true labels.
    sample_weight (`list[float]`, *optional*): a weight per example.
Returns:
    accuracy (`float`).
Example:
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, sample_weight=None):
        if len(predictions) == 0:
            raise ValueError("Cannot compute accuracy of zero predictions.")
        weights = sample_weight if sample_weight is not None else [1.0] * len(predictions)
        correct = sum(w for p, r, w in zip(predictions, references, weights) if p == r)
        return {"accuracy": correct / sum(weights)}
