"""A text-classification pipeline that batches an AWD-LSTM classifier's documents by length (opt-in).

The stock pipeline pads each batch to its longest document in the order the documents came in, so one long review
makes every short review of its batch pay for its length. fastai sorts documents by length before batching
(`learn.get_preds` on a `SortedDL`); this subclass does the same: a list of documents is encoded in one tokenizer call,
sorted longest first, run through the stock pipeline, and the results are put back in input order. The scores are
the stock pipeline's; only the batching differs.

`pipeline("text-classification", model=folder)` builds transformers' own `TextClassificationPipeline` for an AWD-LSTM
classifier too (the model reads each batch longest first and skips its padding, so it is already correct); ask for
this one with `pipeline_class=AwdLstmTextClassificationPipeline`. For a model that is not an AWD-LSTM it behaves
exactly as the stock one, except for odd input, which the stock pipeline lets through to a confusing error or a
wrong result: an empty list gives `[]`, an item that is not a text is a `TypeError` naming its index, a `top_k` below 1
is a `ValueError`, and a tokenizer larger than the model's embedding is refused when the pipeline is built (see
`compatibility.py`). Documents of any length are fine: the model reads them in BPT3C chunks, so memory does not grow
with the length.

A multi-label AWD-LSTM classifier (`problem_type="multi_label_classification"`) gets its decisions: each document's
result is the list of labels whose probability reaches the label's threshold (`config.label_thresholds`, chosen on
validation data by `scripts/train_classifier.py`; 0.5 where none was stored, `threshold=` overrides it for a call),
highest first, possibly empty; `top_k=None` gives every label's probability and `top_k=k` the k highest, as the stock
pipeline does. A regression model's score is in the target's units, within its training range (the model gives it so,
see `target_std` and `target_range`).
"""

from dataclasses import dataclass

import torch
from transformers import TextClassificationPipeline

from .compatibility import check_tokenizer_fits_model


# Call arguments that do not reach the tokenizer; with any other, each document is encoded by the stock `preprocess`
_NOT_TOKENIZER_ARGUMENTS = {"batch_size", "num_workers", "top_k", "function_to_apply", "return_all_scores"}


@dataclass(frozen=True)
class _EncodedDocument:
    """A document of a list that the pipeline encoded in one tokenizer call with the rest of the list."""

    input_ids: list[int]


class AwdLstmTextClassificationPipeline(TextClassificationPipeline):
    """
    The stock text-classification pipeline, batching an AWD-LSTM's documents by length.

    Example:
    ```python
    >>> from transformers import pipeline
    >>> classify = pipeline(
    ...     "text-classification", model="my-classifier", pipeline_class=AwdLstmTextClassificationPipeline
    ... )
    >>> classify(reviews, batch_size=64)
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_tokenizer_fits_model(self.tokenizer, self.model)

    def _sanitize_parameters(self, function_to_apply=None, top_k="", threshold=None, **tokenizer_kwargs):
        # the stock pipeline slices the ranked labels with `top_k`: -1 would silently drop the last label
        if top_k not in ("", None) and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"`top_k` must be a positive integer (or None for every label), got {top_k!r}.")
        preprocess, forward, postprocess = super()._sanitize_parameters(
            function_to_apply=function_to_apply, top_k=top_k, **tokenizer_kwargs
        )
        if threshold is not None:
            if not self._decides_labels():
                raise ValueError("`threshold` applies to multi-label AWD-LSTM classifiers only.")
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
                raise ValueError(f"`threshold` must be a probability in (0, 1), got {threshold!r}.")
            postprocess["threshold"] = float(threshold)
        return preprocess, forward, postprocess

    def _decides_labels(self) -> bool:
        """Whether results are the labels above their thresholds (a multi-label AWD-LSTM classifier)."""
        config = self.model.config
        return config.model_type == "awd_lstm" and config.problem_type == "multi_label_classification"

    def postprocess(self, model_outputs, function_to_apply=None, top_k=1, _legacy=True, threshold=None):
        if not (_legacy and function_to_apply is None and self._decides_labels()):
            return super().postprocess(
                model_outputs, function_to_apply=function_to_apply, top_k=top_k, _legacy=_legacy
            )
        scores = model_outputs["logits"][0].float().sigmoid().tolist()
        thresholds = [threshold] * len(scores) if threshold is not None else self.model.config.thresholds()
        chosen = [
            {"label": self.model.config.id2label[index], "score": score}
            for index, (score, bar) in enumerate(zip(scores, thresholds))
            if score >= bar
        ]
        return sorted(chosen, key=lambda result: -result["score"])

    def __call__(self, inputs, **kwargs):
        is_awd_lstm = getattr(self.model.config, "model_type", None) == "awd_lstm"
        if is_awd_lstm and not isinstance(inputs, (str, dict, list)) and hasattr(inputs, "__iter__"):
            # a tuple, a NumPy array, a `datasets` column: the stock pipeline would take it for one document and
            # score its first text only
            inputs = [str(item) if type(item).__name__ == "str_" else item for item in inputs]
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                return []  # the stock pipeline raises an IndexError for an empty list
            for index, item in enumerate(inputs):
                if not isinstance(item, (str, dict, list, tuple)):
                    raise TypeError(
                        f"A document is a `str` (or a text pair), got {type(item).__name__} (item {index})."
                    )
        if not is_awd_lstm:
            return super().__call__(inputs, **kwargs)
        if self._decides_labels() and "top_k" not in kwargs and isinstance(inputs, (str, dict)):
            return self([inputs], **kwargs)[0]  # the labels of one text: a list, not the stock `[result]`
        batch_size = kwargs.get("batch_size", self._batch_size) or 1
        if not isinstance(inputs, (list, tuple)) or batch_size < 2 or not all(isinstance(t, str) for t in inputs):
            return super().__call__(inputs, **kwargs)
        if self._preprocess_params or not set(kwargs) <= _NOT_TOKENIZER_ARGUMENTS:
            # tokenizer arguments: the stock per-document `preprocess`; character length stands in for token length
            order = sorted(range(len(inputs)), key=lambda index: -len(inputs[index]))
            documents = [inputs[index] for index in order]
        else:
            # one tokenizer call for the list (its errors name the document by its index in `inputs`)
            encoded = self.tokenizer(list(inputs))["input_ids"]
            order = sorted(range(len(inputs)), key=lambda index: -len(encoded[index]))
            documents = [_EncodedDocument(encoded[index]) for index in order]
        results = super().__call__(documents, **kwargs)
        in_input_order = [None] * len(inputs)
        for position, index in enumerate(order):
            in_input_order[index] = results[position]
        return in_input_order

    def preprocess(self, inputs, **tokenizer_kwargs):
        if isinstance(inputs, _EncodedDocument):
            input_ids = torch.tensor([inputs.input_ids])
            return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        return super().preprocess(inputs, **tokenizer_kwargs)


__all__ = ["AwdLstmTextClassificationPipeline"]
