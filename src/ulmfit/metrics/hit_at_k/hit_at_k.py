"""Flat hit@k for `evaluate`: the share of examples whose true label is among the first k of a ranked prediction.

DeViSE (Frome et al., NeurIPS 2013) reports "flat hit@k" for k = 1, 2, 5, 10, 20: an image counts as a hit at k when
its label is one of the k labels whose vectors are nearest to the image's predicted vector. Top-1/top-5 accuracy of an
ordinary classifier is the same number computed on its ranked logits. Shipped with ulmfit so that it loads offline.

Each prediction is a ranking (best first) of label ids, at least as long as the largest k unless there are fewer
candidates than that: a ranking of 3 labels (3 candidates in all) then counts a hit at 5 when the label is anywhere
in it.
"""

import datasets
import evaluate


_DESCRIPTION = "Flat hit@k: the fraction of examples whose reference is among the first k ranked predictions."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[int]]`): per example, label ids ranked best first (e.g. the top-5 nearest labels).
    references (`list[int]`): the true label id of each example.
    k (`list[int]`, *optional*, defaults to `[1, 5]`): the cut-offs to report.
Returns:
    hit@<k> (`float`) for every k, and examples (`int`).
Example:
    >>> from ulmfit import metrics
    >>> metric = metrics.load("hit_at_k")
    >>> metric.compute(predictions=[[3, 1, 4, 0, 2], [2, 0, 1, 3, 4]], references=[3, 4])
    {'hit@1': 0.5, 'hit@5': 1.0, 'examples': 2}
"""
_CITATION = """@inproceedings{frome2013devise,
  title={{DeViSE}: A Deep Visual-Semantic Embedding Model},
  author={Frome, Andrea and Corrado, Greg S. and Shlens, Jon and Bengio, Samy and Dean, Jeff and Ranzato,
          Marc'Aurelio and Mikolov, Tomas},
  booktitle={Advances in Neural Information Processing Systems},
  year={2013}
}"""


class HitAtK(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("int64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, k=(1, 5)):
        cutoffs = [k] if isinstance(k, int) else list(k)
        if not cutoffs or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in cutoffs):
            raise ValueError(f"`k` must be a positive integer or a list of them, got {k!r}.")
        if len(predictions) == 0:
            raise ValueError("Cannot compute hit@k of zero predictions.")
        hits = dict.fromkeys(cutoffs, 0)
        for index, (ranking, reference) in enumerate(zip(predictions, references)):
            if len(ranking) == 0:
                raise ValueError(f"Prediction {index} is an empty ranking.")
            if len(set(ranking)) != len(ranking):
                raise ValueError(f"Prediction {index} ranks a label twice: {list(ranking)}.")
            if reference not in ranking:
                continue
            rank = ranking.index(reference)  # 0 = ranked first
            for cutoff in cutoffs:
                hits[cutoff] += rank < cutoff
        results = {f"hit@{cutoff}": hits[cutoff] / len(predictions) for cutoff in cutoffs}
        return {**results, "examples": len(predictions)}
