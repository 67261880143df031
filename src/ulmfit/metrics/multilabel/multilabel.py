"""Multi-label classification scores for `evaluate`, shipped with ulmfit so that they load offline.

Each example has L labels, any number of which may be on: its prediction and its reference are 0/1 indicator vectors
of length L (the output of thresholding a multi-label head's sigmoids). `compute()` returns in one dict what
scikit-learn gives, on such indicator matrices, as

- `f1_score(average="micro")`, `f1_score(average="macro")` and `f1_score(average=None)` (`micro_f1`, `macro_f1`,
  `per_label_f1`), plus `precision_score`/`recall_score(average="micro")` (`micro_precision`, `micro_recall`), all with
  the same `zero_division` (0.0 by default, without a warning);
- `accuracy_score`, which on multi-label data is subset accuracy: the whole vector must match (`subset_accuracy`);
- `hamming_loss`, the fraction of the N x L label decisions that are wrong (`hamming_loss`).

A single label (L = 1) is scored as one label, where scikit-learn would read the N x 1 matrix as a binary target and
micro-average over both classes. Computed with numpy, not scikit-learn. See `README.md` beside this file for the
metric card.
"""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Multi-label classification scores on 0/1 indicator vectors (one entry per label): micro and macro F1, per-label F1,
micro precision and recall, subset accuracy (the whole vector right) and Hamming loss (the fraction of wrong label
decisions). Per label, F1 = 2 * TP / (2 * TP + FP + FN).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): Predicted labels of each example, as a 0/1 indicator vector of length L
        (the number of labels).
    references (`list` of `list` of `int`): True labels of each example, as a 0/1 indicator vector of length L.
    zero_division (`float`, 0.0 or 1.0): The score given when it is undefined: the F1 of a label with no true and no
        predicted positives (it still counts in `macro_f1`), micro precision with no predicted positives, micro recall
        with no true positives. Defaults to 0.0, as scikit-learn's `zero_division=0`.
Returns:
    micro_f1 (`float`): F1 of the true/false positives and false negatives pooled over every label.
    macro_f1 (`float`): The unweighted mean of `per_label_f1`.
    subset_accuracy (`float`): The fraction of examples whose whole predicted vector equals the reference.
    hamming_loss (`float`): The fraction of label decisions (examples x labels) that are wrong. Lower is better.
    per_label_f1 (`list` of `float`): The F1 of each label, in label order.
    micro_precision (`float`): Pooled true positives over pooled predicted positives.
    micro_recall (`float`): Pooled true positives over pooled true positives plus false negatives.
Examples:

    Example 1-Three labels, the third never present nor predicted
        >>> from ulmfit import metrics
        >>> multilabel_metric = metrics.load("multilabel")
        >>> results = multilabel_metric.compute(
        ...     predictions=[[1, 1, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]],
        ...     references=[[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]],
        ... )
        >>> print({name: round(value, 4) for name, value in results.items() if name != "per_label_f1"})
        {'micro_f1': 0.6667, 'macro_f1': 0.4333, 'subset_accuracy': 0.25, 'hamming_loss': 0.25, \
'micro_precision': 0.6, 'micro_recall': 0.75}
        >>> print([round(score, 4) for score in results["per_label_f1"]])
        [0.5, 0.8, 0.0]

    Example 2-The same data, scoring the label that is never on as perfect
        >>> results = multilabel_metric.compute(
        ...     predictions=[[1, 1, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]],
        ...     references=[[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]],
        ...     zero_division=1.0,
        ... )
        >>> print(round(results["macro_f1"], 4), results["per_label_f1"][2])
        0.7667 1.0

    Example 3-Batches accumulate, as in an evaluation loop
        >>> multilabel_metric.add_batch(predictions=[[1, 0], [0, 1]], references=[[1, 0], [1, 1]])
        >>> multilabel_metric.add_batch(predictions=[[0, 0]], references=[[0, 0]])
        >>> results = multilabel_metric.compute()
        >>> print(results["per_label_f1"], round(results["subset_accuracy"], 4), round(results["hamming_loss"], 4))
        [0.6666666666666666, 1.0] 0.6667 0.1667
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


def _indicator_matrix(vectors, side: str, num_labels: int | None = None) -> np.ndarray:
    """The N x L 0/1 matrix of one side, after checking every vector has L entries, each 0 or 1."""
    num_labels = len(vectors[0]) if num_labels is None else num_labels
    for index, vector in enumerate(vectors):
        if len(vector) != num_labels:
            raise ValueError(
                f"Every indicator vector must have one entry per label ({num_labels}), but {side}[{index}] has "
                f"{len(vector)}."
            )
    if num_labels == 0:
        raise ValueError("The indicator vectors are empty: there must be at least one label.")
    # object dtype, so that a missing entry (None) is reported like any other bad value instead of failing to convert
    matrix = np.asarray(vectors, dtype=object).reshape(len(vectors), num_labels)
    invalid = ((matrix != 0) & (matrix != 1)).astype(bool)
    if invalid.any():
        index, label = (int(position) for position in np.argwhere(invalid)[0])
        raise ValueError(
            f"Indicator vectors must hold only 0 and 1, but {side}[{index}][{label}] is {matrix[index, label]!r}."
        )
    return matrix.astype(bool)


def _ratio(numerator, denominator, undefined: float):
    """numerator / denominator elementwise, with `undefined` where the denominator is zero."""
    numerator, denominator = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    return np.where(denominator == 0, undefined, numerator / np.where(denominator == 0, 1.0, denominator))


def multilabel_scores(references, predictions, *, zero_division: float = 0.0) -> dict:
    """The scores of `compute()` for two lists of 0/1 indicator vectors (see the module docstring)."""
    if isinstance(zero_division, bool) or zero_division not in (0, 1):
        raise ValueError(f"`zero_division` must be 0.0 or 1.0, got {zero_division!r}.")
    if len(references) != len(predictions):
        raise ValueError(
            f"Mismatch in the number of predictions ({len(predictions)}) and references ({len(references)})."
        )
    if len(references) == 0:
        raise ValueError("Cannot compute multi-label scores of zero examples.")
    references = _indicator_matrix(references, "references")
    predictions = _indicator_matrix(predictions, "predictions", num_labels=references.shape[1])

    # per label: true positives, predicted positives and true positives plus false negatives (the support)
    true_positives = (references & predictions).sum(axis=0)
    predicted = predictions.sum(axis=0)
    true = references.sum(axis=0)
    undefined = float(zero_division)
    # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (true + predicted), undefined only with no true nor predicted positive
    per_label_f1 = _ratio(2 * true_positives, true + predicted, undefined)
    pooled_true_positives, pooled_predicted, pooled_true = true_positives.sum(), predicted.sum(), true.sum()
    return {
        "micro_f1": float(_ratio(2 * pooled_true_positives, pooled_true + pooled_predicted, undefined)),
        "macro_f1": float(per_label_f1.mean()),
        "subset_accuracy": float((references == predictions).all(axis=1).mean()),
        "hamming_loss": float((references != predictions).mean()),
        "per_label_f1": [float(score) for score in per_label_f1],
        "micro_precision": float(_ratio(pooled_true_positives, pooled_predicted, undefined)),
        "micro_recall": float(_ratio(pooled_true_positives, pooled_true, undefined)),
    }


class Multilabel(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/model_evaluation.html#multilabel-ranking-metrics",
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html",
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.hamming_loss.html",
            ],
        )

    def _compute(self, predictions, references, zero_division=0.0):
        return multilabel_scores(references, predictions, zero_division=zero_division)
