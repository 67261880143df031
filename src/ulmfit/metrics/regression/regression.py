"""Regression scores for `evaluate`, shipped with ulmfit so that they load offline.

For a regression head (one float per example, e.g. a rating or a similarity score) `compute()` returns in one dict
what scikit-learn and scipy give as

- `mean_absolute_error`, `mean_squared_error` and its square root (`mae`, `mse`, `rmse`);
- `scipy.stats.pearsonr(...).statistic` (`pearson`), the linear correlation of predictions and references;
- `scipy.stats.spearmanr(...).statistic` (`spearman`), the Pearson correlation of their ranks, tied values sharing
  the mean of the ranks they span (`scipy.stats.rankdata(method="average")`).

A correlation is undefined when either side is constant (a single example included): `pearson`/`spearman` are then
`nan`, with a `ConstantInputWarning` (scipy's name), rather than an error, so that an evaluation loop keeps going. NaN
or infinite inputs are errors. Computed with numpy, not scipy. See `README.md` beside this file for the metric card.
"""

import math
import warnings

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Regression scores: mean absolute error (MAE), mean squared error (MSE) and its root (RMSE), and the Pearson and
Spearman (rank) correlation coefficients between predictions and references.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): Predicted values.
    references (`list` of `float`): Ground truth values.
Returns:
    mae (`float`): Mean absolute error. Minimum possible value is 0; lower is better.
    mse (`float`): Mean squared error. Minimum possible value is 0; lower is better.
    rmse (`float`): Root mean squared error, in the units of the references. Lower is better.
    pearson (`float`): Pearson correlation coefficient, between -1 and 1; `nan` (with a warning) when either side is
        constant, e.g. with a single example.
    spearman (`float`): Spearman rank correlation coefficient (Pearson of the average ranks), between -1 and 1;
        `nan` (with a warning) when either side is constant.
Examples:

    Example 1-Errors and correlations
        >>> from ulmfit import metrics
        >>> regression_metric = metrics.load("regression")
        >>> results = regression_metric.compute(predictions=[2.5, 0.0, 2.0, 8.0], references=[3.0, -0.5, 2.0, 7.0])
        >>> print({name: round(value, 4) for name, value in results.items()})
        {'mae': 0.5, 'mse': 0.375, 'rmse': 0.6124, 'pearson': 0.9849, 'spearman': 1.0}

    Example 2-Tied predictions share their mean rank
        >>> results = regression_metric.compute(predictions=[1.0, 1.0, 2.0, 3.0], references=[1.0, 2.0, 3.0, 4.0])
        >>> print(round(results["spearman"], 4))
        0.9487

    Example 3-A constant prediction has no correlation
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     results = regression_metric.compute(predictions=[2.0, 2.0, 2.0], references=[1.0, 2.0, 3.0])
        >>> print(results)
        {'mae': 0.6666666666666666, 'mse': 0.6666666666666666, 'rmse': 0.816496580927726, 'pearson': nan, \
'spearman': nan}
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
@article{2020SciPy-NMeth,
  author={Virtanen, Pauli and Gommers, Ralf and Oliphant, Travis E. and others},
  title={{SciPy} 1.0: Fundamental Algorithms for Scientific Computing in Python},
  journal={Nature Methods},
  year={2020},
  volume={17},
  pages={261--272}
}
"""


class ConstantInputWarning(RuntimeWarning):
    """A correlation of a constant input, returned as `nan` (scipy.stats' warning of the same name)."""


def _finite_values(values, side: str) -> np.ndarray:
    """One side as a float64 vector, after checking it holds no NaN, infinity or missing value."""
    array = np.asarray([math.nan if value is None else value for value in values], dtype=np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(
            f"{side} must be finite numbers, but {side}[{index}] is {values[index]!r}"
            f" ({int(bad.sum())} non-finite value{'s' if bad.sum() > 1 else ''} in all)."
        )
    return array


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, ties given the mean of the ranks they span (scipy.stats.rankdata's "average")."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # the start of each run of equal values in sorted order, and the run each sorted position belongs to
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    run = np.cumsum(np.r_[True, sorted_values[1:] != sorted_values[:-1]]) - 1
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2)[run]  # mean of the 1-based ranks starts+1 .. ends
    return ranks


def pearson_correlation(x: np.ndarray, y: np.ndarray, name: str = "Pearson") -> float:
    """Pearson correlation of two equal-length vectors; `nan`, with a `ConstantInputWarning`, if one is constant."""
    if len(x) < 2 or (x == x[0]).all() or (y == y[0]).all():
        why = "there is a single example" if len(x) < 2 else f"an input is constant (all {len(x)} values equal)"
        warnings.warn(
            f"The {name} correlation coefficient is not defined when {why}; returning nan.",
            ConstantInputWarning,
            stacklevel=3,
        )
        return math.nan
    # correlation ignores scale, so rescale first: the means and squares of huge values then cannot overflow
    x, y = x / np.abs(x).max(), y / np.abs(y).max()
    x_centred, y_centred = x - x.mean(), y - y.mean()
    x_centred /= np.linalg.norm(x_centred)
    y_centred /= np.linalg.norm(y_centred)
    return float(np.clip(np.dot(x_centred, y_centred), -1.0, 1.0))


def regression_scores(references, predictions) -> dict:
    """The scores of `compute()` for two lists of floats (see the module docstring)."""
    if len(references) != len(predictions):
        raise ValueError(
            f"Mismatch in the number of predictions ({len(predictions)}) and references ({len(references)})."
        )
    if len(references) == 0:
        raise ValueError("Cannot compute regression scores of zero examples.")
    references = _finite_values(references, "references")
    predictions = _finite_values(predictions, "predictions")
    errors = predictions - references
    mse = float(np.mean(errors**2))
    return {
        "mae": float(np.mean(np.abs(errors))),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "pearson": pearson_correlation(predictions, references),
        "spearman": pearson_correlation(average_ranks(predictions), average_ranks(references), "Spearman"),
    }


class Regression(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/model_evaluation.html#regression-metrics",
                "https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.pearsonr.html",
                "https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.spearmanr.html",
            ],
        )

    def _compute(self, predictions, references):
        return regression_scores(references, predictions)
