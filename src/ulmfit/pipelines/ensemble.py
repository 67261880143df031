"""The forward + backward ULMFiT ensemble (Howard & Ruder 2018, §4: 95.4 % on IMDb with both directions).

A forward classifier reads documents left to right; a backward one, fine-tuned from a backward language model
(`AwdLstmTokenizer(backwards=True)`), reads them right to left. Averaging their label probabilities is the ensemble.
`ForwardBackwardEnsemble` does that over two standard `text-classification` pipelines, so each side keeps its own
tokenizer and batching.
"""

from collections.abc import Sequence

from transformers import Pipeline, pipeline

from .compatibility import check_tokenizer_fits_model
from .text_classification import AwdLstmTextClassificationPipeline


class ForwardBackwardEnsemble:
    """
    Average the label probabilities of a forward and a backward text classifier.

    Args:
        forward, backward: a saved classifier folder (or Hub id), or a ready `text-classification` pipeline.
        weight: the forward model's share of the average (the paper uses 0.5).
        pipeline_kwargs: passed to `pipeline(...)` when a folder is given (e.g. `device=0`).

    Example:
    ```python
    >>> ensemble = ForwardBackwardEnsemble("imdb-classifier-fwd", "imdb-classifier-bwd")
    >>> ensemble(["A wonderful film.", "Two hours I will never get back."])
    [{'label': 'positive', 'score': 0.97}, {'label': 'negative', 'score': 0.99}]
    ```
    """

    def __init__(self, forward: str | Pipeline, backward: str | Pipeline, weight: float = 0.5, **pipeline_kwargs):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"`weight` is the forward model's share and must be in [0, 1], got {weight}.")
        self.forward = forward if isinstance(forward, Pipeline) else self._pipeline(forward, pipeline_kwargs)
        self.backward = backward if isinstance(backward, Pipeline) else self._pipeline(backward, pipeline_kwargs)
        for side in (self.forward, self.backward):  # a ready pipeline may pair files the ensemble did not load
            check_tokenizer_fits_model(side.tokenizer, side.model)
        labels = (
            sorted(self.forward.model.config.id2label.values()),
            sorted(self.backward.model.config.id2label.values()),
        )
        if labels[0] != labels[1]:
            raise ValueError(f"The two classifiers have different labels: {labels[0]} and {labels[1]}.")
        self.weight = weight

    @staticmethod
    def _pipeline(model: str, pipeline_kwargs: dict) -> Pipeline:
        """A text-classification pipeline that batches documents sorted by length, unless the caller picks one."""
        pipeline_kwargs = {"pipeline_class": AwdLstmTextClassificationPipeline, **pipeline_kwargs}
        return pipeline("text-classification", model, **pipeline_kwargs)

    def __call__(self, texts: str | Sequence[str], top_k: int | None = 1, batch_size: int = 8):
        """
        Averaged predictions, in input order: for each text the `top_k` most probable labels (all with `top_k=None`)
        as `{"label", "score"}` dicts; a single text gives a single result, an empty list `[]`.
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"`top_k` must be a positive integer (or None for every label), got {top_k!r}.")
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not batch:
            return []
        for index, text in enumerate(batch):
            if not isinstance(text, str):
                raise TypeError(
                    f"ForwardBackwardEnsemble classifies `str` texts, got {type(text).__name__} (item {index})."
                )
        forward = self.forward(batch, top_k=None, batch_size=batch_size)
        backward = self.backward(batch, top_k=None, batch_size=batch_size)
        results = self.average(forward, backward, top_k=top_k)
        return results[0] if single else results

    def average(
        self, forward: list[list[dict]], backward: list[list[dict]], top_k: int | None = 1
    ) -> list[list[dict]]:
        """
        Average two lists of per-text scores (each text's `{"label", "score"}` for every label, as a
        `text-classification` pipeline gives with `top_k=None`); for each text the `top_k` best of the average.
        """
        if len(forward) != len(backward):
            raise ValueError(f"Got scores for {len(forward)} texts from the forward model, {len(backward)} backward.")
        results = []
        for forward_scores, backward_scores in zip(forward, backward):
            average = {item["label"]: self.weight * item["score"] for item in forward_scores}
            for item in backward_scores:
                average[item["label"]] += (1 - self.weight) * item["score"]
            ranked = sorted(({"label": k, "score": v} for k, v in average.items()), key=lambda r: -r["score"])
            results.append(ranked if top_k is None else ranked[:top_k])
        return results


__all__ = ["ForwardBackwardEnsemble"]
