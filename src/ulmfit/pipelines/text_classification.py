"""`pipeline("text-classification")` with length-sorted batches for AWD-LSTM classifiers.

The stock pipeline pads each batch to its longest document in the order the documents came in, so one long review
makes every short review of its batch pay for its length. fastai sorts documents by length before batching
(`learn.get_preds` on a `SortedDL`); this subclass does the same: a list of documents is sorted longest first, run
through the stock pipeline, and the results are put back in input order. `import ulmfit` installs it as the
"text-classification" implementation; for every model that is not an AWD-LSTM it behaves exactly as the stock one.
Documents of any length are fine: the model reads them in BPT3C chunks, so memory does not grow with the length.
"""

from collections.abc import Sequence

from transformers import AutoModelForSequenceClassification, TextClassificationPipeline
from transformers.pipelines import PIPELINE_REGISTRY


class AwdLstmTextClassificationPipeline(TextClassificationPipeline):
    """The stock text-classification pipeline, batching an AWD-LSTM's documents by length."""

    def __call__(self, inputs, **kwargs):
        if getattr(self.model.config, "model_type", None) != "awd_lstm":
            return super().__call__(inputs, **kwargs)
        if not isinstance(inputs, (str, dict, list, tuple)) and isinstance(inputs, Sequence):
            inputs = list(inputs)  # e.g. a `datasets` column: the stock pipeline would take it for one document
        batch_size = kwargs.get("batch_size", self._batch_size) or 1
        if not isinstance(inputs, (list, tuple)) or batch_size < 2 or not all(isinstance(t, str) for t in inputs):
            return super().__call__(inputs, **kwargs)
        # character length is a faithful proxy for token length and costs nothing to compute
        order = sorted(range(len(inputs)), key=lambda index: -len(inputs[index]))
        results = super().__call__([inputs[index] for index in order], **kwargs)
        in_input_order = [None] * len(inputs)
        for position, index in enumerate(order):
            in_input_order[index] = results[position]
        return in_input_order


def register_text_classification_pipeline():
    """Make `pipeline("text-classification")` build an `AwdLstmTextClassificationPipeline` (no overwrite warning)."""
    task = dict(PIPELINE_REGISTRY.supported_tasks["text-classification"])
    task.update(impl=AwdLstmTextClassificationPipeline, pt=(AutoModelForSequenceClassification,))
    PIPELINE_REGISTRY.supported_tasks["text-classification"] = task


__all__ = ["AwdLstmTextClassificationPipeline", "register_text_classification_pipeline"]
