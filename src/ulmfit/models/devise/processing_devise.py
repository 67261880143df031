"""Processor for DeViSE: the image processor and the word-vector vocabulary, saved and loaded together."""

import torch
from transformers import BatchFeature, ProcessorMixin
from transformers.utils import logging


logger = logging.get_logger(__name__)


class DeviseProcessor(ProcessorMixin):
    r"""
    A [`DeviseImageProcessor`] and a [`DeviseTokenizer`] in one object, as `CLIPProcessor` pairs CLIP's: images become
    `pixel_values`, labels and queries become the ids of their words in the model's word-vector table. It saves and
    loads with `save_pretrained` / `from_pretrained` beside the model, so the label space travels with the weights.

    Args:
        image_processor ([`DeviseImageProcessor`]):
            Prepares the images.
        tokenizer ([`DeviseTokenizer`]):
            The vocabulary of the model's word vectors.

    Example:
    ```python
    >>> processor = DeviseProcessor.from_pretrained("path/to/devise-model")
    >>> model = DeviseModel.from_pretrained("path/to/devise-model")
    >>> label_vectors = processor.embed_text(model, ["goldfish", "European fire salamander", "engine + boat"])
    ```
    """

    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer)

    def __call__(self, images=None, text=None, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """
        Prepare images (`pixel_values`) and/or texts (`input_ids`, `attention_mask`, padded) for [`DeviseModel`].
        A word with no vector raises a `ValueError` that names it; so does an empty list of images or of texts
        (rather than an empty tensor, which no model call can use).
        """
        if images is None and text is None:
            raise ValueError("Give `images`, `text` or both.")
        data = {}
        if images is not None:
            if isinstance(images, (list, tuple)) and not images:
                raise ValueError("`images` is an empty list: give at least one image.")
            data.update(self.image_processor(images, return_tensors=return_tensors, **kwargs))
        if text is not None:
            if isinstance(text, (list, tuple)) and not text:
                raise ValueError("`text` is an empty list.")
            data.update(self.tokenizer(text, padding=True, return_tensors=return_tensors))
        return BatchFeature(data=data, tensor_type=return_tensors)

    @torch.no_grad()
    def embed_text(self, model, text: str | list[str], batch_size: int = 1024) -> torch.Tensor:
        """
        Unit-length vectors `(len(text), projection_dim)` of words, names and sums of words ("engine + boat" is the
        normalised sum of the two words' unit vectors), in the model's word-vector space; a single string gives one
        row. A word with no vector raises a `ValueError` that names it.
        """
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("`text` is an empty list.")
        device = model.word_embeddings.weight.device
        rows = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt").to(device)
            rows.append(model.get_text_features(batch["input_ids"], batch["attention_mask"]))
        return torch.cat(rows)


__all__ = ["DeviseProcessor"]
