"""F1 for `evaluate`, shipped with ulmfit so that it loads offline (`evaluate.load("f1")` needs the Hub).

Same definitions as scikit-learn's `f1_score`: `average="binary"` scores `pos_label`; `"macro"` averages the
per-class F1; `"micro"` pools every decision; `"weighted"` weights each class by its support. A class that is never
predicted nor present counts as F1 = 0 in the macro average, as in scikit-learn with `zero_division=0`.
"""

import datasets
import evaluate


_DESCRIPTION = "F1 = 2 * precision * recall / (precision + recall), per class or averaged."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted labels.
    references (`list[int]`): true labels.
    average (`str`, defaults to "binary"): "binary", "macro", "micro" or "weighted".
    pos_label (`int`, defaults to 1): the positive class for `average="binary"`.
Returns:
    f1 (`float`).
Example:
    >>> metric.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    {'f1': 0.6666666666666666}
"""


def _f1(true_positives: int, false_positives: int, false_negatives: int) -> float:
    denominator = 2 * true_positives + false_positives + false_negatives
    return 2 * true_positives / denominator if denominator else 0.0


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, average="binary", pos_label=1):
        if len(predictions) == 0:
            raise ValueError("Cannot compute F1 of zero predictions.")
        labels = sorted(set(predictions) | set(references))
        counts = {
            label: (
                sum(p == label and r == label for p, r in zip(predictions, references)),
                sum(p == label and r != label for p, r in zip(predictions, references)),
                sum(p != label and r == label for p, r in zip(predictions, references)),
            )
            for label in labels
        }
        if average == "binary":
            return {"f1": _f1(*counts.get(pos_label, (0, 0, 0)))}
        if average == "micro":
            return {"f1": _f1(*(sum(c[i] for c in counts.values()) for i in range(3)))}
        scores = {label: _f1(*c) for label, c in counts.items()}
        if average == "macro":
            return {"f1": sum(scores.values()) / len(scores)}
        if average == "weighted":
            support = {label: sum(r == label for r in references) for label in labels}
            return {"f1": sum(scores[label] * support[label] for label in labels) / len(references)}
        raise ValueError(f"Unknown `average` {average!r}: use binary, macro, micro or weighted.")
