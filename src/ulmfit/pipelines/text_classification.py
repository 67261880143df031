"""`pipeline("text-classification")` with length-sorted batches for AWD-LSTM classifiers.

The stock pipeline pads each batch to its longest document in the order the documents came in, so one long review
makes every short review of its batch pay for its length. fastai sorts documents by length before batching
(`learn.get_preds` on a `SortedDL`); this subclass does the same: a list of documents is sorted longest first, run
through the stock pipeline, and the results are put back in input order. `import ulmfit` installs it as the
"text-classification" implementation; for every model that is not an AWD-LSTM it behaves exactly as the stock one.
Documents of any length are fine: the model reads them in BPT3C chunks, so memory does not grow with the length.

On a CPU, `streams=N` runs the sorted batches in N threads that each use 1/N of torch's threads (the batches are dealt
out in turn, so every stream gets long and short ones). An LSTM steps through time one small matrix product after
another, which one or two cores fill better than a whole team of threads; independent batches side by side use the
cores more fully (the "throughput mode" of CPU inference runtimes). Results are the same as with one stream.
"""

import threading
from collections.abc import Sequence

import torch
from transformers import AutoModelForSequenceClassification, TextClassificationPipeline
from transformers.pipelines import PIPELINE_REGISTRY


class AwdLstmTextClassificationPipeline(TextClassificationPipeline):
    """The stock text-classification pipeline, batching an AWD-LSTM's documents by length."""

    def __call__(self, inputs, streams: int = 1, **kwargs):
        if not isinstance(streams, int) or isinstance(streams, bool) or streams < 1:
            raise ValueError(f"`streams` must be a positive int (batches run side by side), got {streams!r}.")
        if getattr(self.model.config, "model_type", None) != "awd_lstm":
            return super().__call__(inputs, **kwargs)
        if not isinstance(inputs, (str, dict, list, tuple)) and isinstance(inputs, Sequence):
            inputs = list(inputs)  # e.g. a `datasets` column: the stock pipeline would take it for one document
        batch_size = kwargs.get("batch_size", self._batch_size) or 1
        if not isinstance(inputs, (list, tuple)) or batch_size < 2 or not all(isinstance(t, str) for t in inputs):
            return super().__call__(inputs, **kwargs)
        # character length is a faithful proxy for token length and costs nothing to compute
        order = sorted(range(len(inputs)), key=lambda index: -len(inputs[index]))
        ordered = [inputs[index] for index in order]
        if streams > 1 and len(ordered) > batch_size:
            results = self._call_in_streams(ordered, streams, batch_size, kwargs)
        else:
            results = super().__call__(ordered, **kwargs)
        in_input_order = [None] * len(inputs)
        for position, index in enumerate(order):
            in_input_order[index] = results[position]
        return in_input_order

    def _call_in_streams(self, ordered: list[str], streams: int, batch_size: int, kwargs: dict) -> list:
        """The stock pipeline on batches `k, k + streams, ...` in thread k, each with its share of torch's threads."""
        batches = [ordered[start : start + batch_size] for start in range(0, len(ordered), batch_size)]
        streams = min(streams, len(batches))
        shares = [[text for batch in batches[k::streams] for text in batch] for k in range(streams)]
        threads = torch.get_num_threads()
        outputs, errors = [None] * streams, []

        def run(k: int):
            torch.set_num_threads(max(1, threads // streams))  # this thread's OpenMP team; restored below
            try:
                outputs[k] = super(AwdLstmTextClassificationPipeline, self).__call__(shares[k], **kwargs)
            except BaseException as error:  # raised again in the calling thread
                errors.append(error)

        workers = [threading.Thread(target=run, args=(k,), name=f"ulmfit-stream-{k}") for k in range(streams)]
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            torch.set_num_threads(threads)  # the default for threads started later
        if errors:
            raise errors[0]
        results, taken = [], [0] * streams
        for index, batch in enumerate(batches):  # batch `index` is the next part of stream `index % streams`
            k = index % streams
            results.extend(outputs[k][taken[k] : taken[k] + len(batch)])
            taken[k] += len(batch)
        return results


def register_text_classification_pipeline():
    """Make `pipeline("text-classification")` build an `AwdLstmTextClassificationPipeline` (no overwrite warning)."""
    task = dict(PIPELINE_REGISTRY.supported_tasks["text-classification"])
    task.update(impl=AwdLstmTextClassificationPipeline, pt=(AutoModelForSequenceClassification,))
    PIPELINE_REGISTRY.supported_tasks["text-classification"] = task


__all__ = ["AwdLstmTextClassificationPipeline", "register_text_classification_pipeline"]
