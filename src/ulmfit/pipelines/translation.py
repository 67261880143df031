"""The "translation" pipeline, which transformers 5 removed, for ulmfit's GRU translator (and any seq2seq model).

`TranslationPipeline` encodes each source sentence, batches them, calls `model.generate()` and decodes the output with
the tokenizer, returning `[{"translation_text": ...}]` in input order, as transformers 4's pipeline did.

It imports only torch and transformers: a translator saved with remote code carries a copy of this file and names it
in `config.custom_pipelines`, so `pipeline("translation", model=folder, trust_remote_code=True)` works without
`ulmfit` installed. `register_translation_pipeline` (which `import ulmfit` calls) registers the class under
"translation" and makes the translator's own `save_pretrained` write that copy, so the model code knows nothing of
pipelines. Since transformers refuses the task name for folders that do not name a pipeline, pass
`pipeline_class=TranslationPipeline` (or build `TranslationPipeline(model=..., tokenizer=...)`) to use it without
remote code.
"""

import functools

import torch
from transformers import AutoModelForSeq2SeqLM, Pipeline
from transformers.dynamic_module_utils import custom_object_save
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging


logger = logging.get_logger(__name__)

# transformers 5 removed this task; a folder that names a pipeline for it in `custom_pipelines` gets it back.
TRANSLATION_TASK = "translation"


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

    def __call__(self, inputs: str | list[str], **kwargs) -> list[dict[str, str]] | list[list[dict[str, str]]]:
        """
        Args:
            inputs: one sentence, or a list of sentences (kept in order; `batch_size=` batches them).
            kwargs: generation parameters for this call.

        Returns:
            One `{"translation_text": ...}` per sentence; with `num_return_sequences > 1`, a list of them per sentence.
        """
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


def register_translation_pipeline(model_class: type) -> None:
    """
    Register [`TranslationPipeline`] for the "translation" task, and make `model_class.save_pretrained` (and its
    subclasses') write it beside the weights of a model that can generate, when remote code is on: a copy of this file
    and a `custom_pipelines` entry in config.json, exactly as `Pipeline.save_pretrained` writes them. A model that
    cannot generate (a base model sharing the translator's config) is saved without the entry, and so is any model
    while no translation pipeline is registered. Calling it again changes nothing.
    """
    PIPELINE_REGISTRY.register_pipeline(
        TRANSLATION_TASK, pipeline_class=TranslationPipeline, pt_model=AutoModelForSeq2SeqLM
    )
    if not getattr(model_class.save_pretrained, "_saves_translation_pipeline", False):
        model_class.save_pretrained = _saving_the_translation_pipeline(model_class.save_pretrained)


def _saving_the_translation_pipeline(save_pretrained):
    """`save_pretrained` that also writes the registered translation pipeline (see `register_translation_pipeline`)."""

    @functools.wraps(save_pretrained)
    def save_with_pipeline(model, save_directory, *args, **kwargs):
        pipeline_class = None
        if model._auto_class is not None:
            pipeline_class = _registered_pipeline_class(TRANSLATION_TASK) if model.can_generate() else None
            custom_pipelines = dict(getattr(model.config, "custom_pipelines", None) or {})
            if pipeline_class is not None:
                custom_pipelines[TRANSLATION_TASK] = {
                    "impl": f"{pipeline_class.__module__.split('.')[-1]}.{pipeline_class.__name__}",
                    "pt": ["AutoModelForSeq2SeqLM"],
                }
            elif custom_pipelines.pop(TRANSLATION_TASK, None) is not None and model.can_generate():
                # the pipeline file cannot be copied, so the folder must not name it
                logger.warning(
                    "No translation pipeline is registered (`import ulmfit` registers one), so the saved folder "
                    "does not name one in `custom_pipelines`."
                )
            if custom_pipelines:
                model.config.custom_pipelines = custom_pipelines
            elif hasattr(model.config, "custom_pipelines"):
                del model.config.custom_pipelines
        result = save_pretrained(model, save_directory, *args, **kwargs)
        if pipeline_class is not None and kwargs.get("is_main_process", True):
            custom_object_save(pipeline_class, save_directory)
        return result

    save_with_pipeline._saves_translation_pipeline = True
    return save_with_pipeline


def _registered_pipeline_class(task: str) -> type | None:
    """The pipeline class registered for `task` in transformers' `PIPELINE_REGISTRY`, if it is defined outside it."""
    registered = PIPELINE_REGISTRY.supported_tasks.get(task)
    impl = None if registered is None else registered.get("impl")
    if not isinstance(impl, type) or impl.__module__.startswith("transformers."):
        return None
    return impl


__all__ = ["TranslationPipeline", "register_translation_pipeline"]
