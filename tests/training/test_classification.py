"""Threshold choice for multi-label classifiers (`ulmfit.training.classification.choose_thresholds`)."""

import numpy as np

from ulmfit.training.classification import choose_thresholds, multi_label_scores


def test_one_threshold_maximises_macro_f1_and_per_label_thresholds_each_labels_f1():
    # label 0 separates at 0.7, label 1 at 0.25: no single threshold gets both right
    probabilities = np.array([[0.9, 0.3], [0.8, 0.1], [0.6, 0.4], [0.2, 0.2], [0.75, 0.05]])
    references = np.array([[1, 1], [1, 0], [0, 1], [0, 0], [1, 0]])
    per_label = choose_thresholds(probabilities, references, per_label=True)
    assert 0.6 < per_label[0] <= 0.75 and 0.2 < per_label[1] <= 0.3
    assert multi_label_scores(probabilities, references, per_label, ["a", "b"])["macro_f1"] == 1.0
    single = choose_thresholds(probabilities, references)
    best = max(
        multi_label_scores(probabilities, references, t, ["a", "b"])["macro_f1"] for t in np.arange(0.02, 0.99, 0.01)
    )
    assert multi_label_scores(probabilities, references, single, ["a", "b"])["macro_f1"] == best < 1.0


def test_ties_go_to_the_threshold_nearest_one_half():
    probabilities = np.array([[0.95], [0.05]])
    references = np.array([[1], [0]])
    assert choose_thresholds(probabilities, references) == 0.5  # every threshold in (0.05, 0.95] is perfect
