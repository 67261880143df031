"""Language-model metrics for `evaluate`: mean next-token cross-entropy, perplexity and next-token accuracy.

Shipped with ulmfit because `evaluate.load("perplexity")` needs the Hub (and loads a model to score with); this one
takes what the training loop already has: per-token losses, predicted ids and target ids. Targets equal to -100 are
ignored, as in transformers' losses.
"""

import math

import datasets
import evaluate


_DESCRIPTION = "Mean next-token cross-entropy (`loss`), `perplexity` = exp(loss), and next-token `accuracy`."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): the predicted next-token ids (argmax of the logits).
    references (`list[int]`): the true next-token ids; -100 marks positions to ignore.
    losses (`list[float]`): the cross-entropy of each position (natural log).
Returns:
    loss (`float`), perplexity (`float`), accuracy (`float`), tokens (`int`, positions counted).
Example:
    >>> metric = evaluate.load("path/to/ulmfit/metrics/language_model")
    >>> metric.compute(predictions=[1, 2], references=[1, 3], losses=[0.1, 2.3])
    {'loss': 1.2, 'perplexity': 3.3201..., 'accuracy': 0.5, 'tokens': 2}
"""
_CITATION = """@inproceedings{merity2018regularizing,
  title={Regularizing and Optimizing {LSTM} Language Models},
  author={Merity, Stephen and Keskar, Nitish Shirish and Socher, Richard},
  booktitle={International Conference on Learning Representations},
  year={2018}
}"""


class LanguageModel(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Value("int64"),
                    "losses": datasets.Value("float64"),
                }
            ),
        )

    def _compute(self, predictions, references, losses):
        kept = [(p, r, loss) for p, r, loss in zip(predictions, references, losses) if r != -100]
        if not kept:
            raise ValueError("No positions to score: every reference is -100 (or the inputs are empty).")
        mean_loss = sum(loss for _, _, loss in kept) / len(kept)
        return {
            "loss": mean_loss,
            "perplexity": math.exp(min(mean_loss, 700.0)),  # exp overflows past ~709
            "accuracy": sum(p == r for p, r, _ in kept) / len(kept),
            "tokens": len(kept),
        }
