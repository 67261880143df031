"""The "translation" pipeline, which transformers 5 removed, for ulmfit's GRU translator (and any seq2seq model).

`TranslationPipeline` encodes each source sentence, batches them, calls `model.generate()` and decodes the output with
the tokenizer, returning `[{"translation_text": ...}]` in input order, as transformers 4's pipeline did.

`import ulmfit` registers it for the "translation" task (see `ulmfit.pipelines.registration`): `pipeline("translation",
model=folder)` then builds it for a saved translator, or for any model `AutoModelForSeq2SeqLM` loads, and a translator
saved with remote code carries a copy of this file, named in `config.custom_pipelines`, so that
`pipeline("translation", model=folder, trust_remote_code=True)` works without `ulmfit` installed. The file therefore
imports only torch, transformers and its sibling `compatibility.py` (saved beside it).
"""

import torch
from transformers import Pipeline

from .compatibility import check_tokenizer_fits_model


class TranslationPipeline(Pipeline):
    """
    Translate sentences with a sequence-to-sequence model (`AutoModelForSeq2SeqLM`) and its tokenizer.

    Generation parameters (`max_new_tokens`, `num_beams`, `length_penalty`, `do_sample`, `num_return_sequences`, ...)
    can be given when the pipeline is built or at each call. Unless the call or the model's generation config sets
    a length, a batch may generate up to `2 * source_length + 10` tokens. A blank sentence translates to `""`.

    Example:
    ```python
    >>> from transformers import pipeline
    >>> translator = pipeline("translation", model="my-fr-en-translator", trust_remote_code=True)
    >>> translator(["Je suis fatigué.", "Où est la gare ?"], num_beams=4, batch_size=32)
    [{'translation_text': "I'm tired."}, {'translation_text': 'Where is the station?'}]
    ```
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True
    _pipeline_calls_generate = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a tokenizer from another folder than the model is refused here, not when a high id first occurs
        check_tokenizer_fits_model(self.tokenizer, self.model)

    def __call__(self, inputs: str | list[str], **kwargs) -> list[dict[str, str]] | list[list[dict[str, str]]]:
        """
        Args:
            inputs: one sentence, or a list of sentences (kept in order; `batch_size=` batches them). A tuple, a
                generator, a NumPy array or a `datasets` column is read as a list. An empty list gives `[]`.
            kwargs: generation parameters for this call.

        Returns:
            One `{"translation_text": ...}` per sentence; with `num_return_sequences > 1`, a list of them per sentence.
        """
        if not isinstance(inputs, (str, dict)) and hasattr(inputs, "__iter__"):
            inputs = [str(text) if type(text).__name__ == "str_" else text for text in inputs]  # NumPy strings too
            if not inputs:
                return []
            for index, text in enumerate(inputs):
                if not isinstance(text, str):
                    raise TypeError(
                        f"TranslationPipeline translates `str` sentences, got {type(text).__name__} (item {index})."
                    )
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, str):
            return result
        if all(len(translations) == 1 for translations in result):
            return [translations[0] for translations in result]
        return result

    def _sanitize_parameters(self, **generate_kwargs):
        return {}, generate_kwargs, {}

    def preprocess(self, text: str) -> dict[str, torch.Tensor]:
        if not isinstance(text, str):
            raise TypeError(f"TranslationPipeline translates `str` sentences, got {type(text).__name__}.")
        model_inputs = self.tokenizer(text, return_tensors="pt")
        model_inputs["source_is_blank"] = torch.tensor([not text.strip()])
        return model_inputs

    def _forward(self, model_inputs: dict, **generate_kwargs) -> dict[str, torch.Tensor]:
        source_is_blank = model_inputs.pop("source_is_blank")
        input_ids = model_inputs["input_ids"]
        batch_size, source_length = input_ids.shape

        # The pipeline's length default depends on the batch, so it is set here rather than as a class default
        merged = (
            generate_kwargs if "generation_config" in generate_kwargs else {**self._generate_kwargs, **generate_kwargs}
        )
        set_params = self._get_set_generation_params(merged)
        overrides = {}
        if "max_new_tokens" not in set_params and "max_length" not in set_params:
            overrides["max_new_tokens"] = 2 * source_length + 10
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs, **overrides)

        output_ids = self.model.generate(**model_inputs, **generate_kwargs)
        if not isinstance(output_ids, torch.Tensor):  # `return_dict_in_generate=True`
            output_ids = output_ids.sequences
        # (batch * num_return_sequences, length) -> (batch, num_return_sequences, length)
        output_ids = output_ids.reshape(batch_size, output_ids.size(0) // batch_size, output_ids.size(-1))
        return {"output_ids": output_ids, "source_is_blank": source_is_blank}

    def postprocess(self, model_outputs: dict) -> list[dict[str, str]]:
        if bool(model_outputs["source_is_blank"].item()):
            return [{"translation_text": ""}]
        return [
            {"translation_text": self.tokenizer.decode(ids, skip_special_tokens=True)}
            for ids in model_outputs["output_ids"][0]
        ]


__all__ = ["TranslationPipeline"]
