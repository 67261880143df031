"""The "image-search" pipeline: the notebook's searches with a DeViSE model (fast.ai 2018, lesson 11).

- text -> images: "boat", or a combination such as "engine + boat" (the normalised sum of the words' unit vectors);
- image -> images: the nearest images to a query image (`target="images"`);
- image -> words: the nearest words of the model's vocabulary (`target="words"`).

Images are searched in a [`DeviseIndex`] over the embeddings of a gallery (built with `DeviseIndex.build` from
`model.get_image_features` of the gallery images, and saved with `index.save`): faiss' HNSW index where faiss is
installed, the pure-torch IVF index otherwise, or exact search (`DeviseIndex.build(..., backend="exact")`); a saved
gallery loads with whichever is available. Words are searched exactly in the model's word-vector table. Results are
plain JSON-able lists of dicts, best first.
"""

import os
from typing import Any

import PIL.Image
import torch
from transformers import Pipeline

from ..models.devise.image_processing_devise import open_image
from ..models.devise.index_devise import DeviseIndex
from .compatibility import check_tokenizer_fits_model


TARGETS = ("images", "words")


def _is_image(item) -> bool:
    """Images are PIL images, raw bytes, tensors/arrays and paths of existing files; any other string is text."""
    if isinstance(item, (PIL.Image.Image, bytes, bytearray, memoryview, torch.Tensor)) or hasattr(item, "__array__"):
        return True
    return isinstance(item, (str, os.PathLike)) and os.path.isfile(item)


class ImageSearchPipeline(Pipeline):
    """
    Search a gallery of images, or the model's vocabulary, with a text or an image query.

    Example:
    ```python
    >>> from transformers import pipeline
    >>> search = pipeline("image-search", model="path/to/devise-model", index="gallery.index.safetensors")
    >>> search("engine + boat", top_k=3)
    [{'score': 0.71, 'id': 2817}, {'score': 0.69, 'id': 911}, {'score': 0.66, 'id': 4410}]
    >>> search("photo.jpg", target="words", top_k=2)
    [{'score': 0.62, 'word': 'boat'}, {'score': 0.58, 'word': 'ship'}]
    ```

    Args:
        index (`DeviseIndex` or path, *optional*):
            The gallery to search for `target="images"`; its ids are whatever the gallery was built with (e.g. the row
            numbers of a dataset). A path is loaded with `DeviseIndex.load` (its saved backend; a faiss gallery is
            rebuilt as the torch IVF index, with a warning, where faiss is missing).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, index: DeviseIndex | str | os.PathLike | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        check_tokenizer_fits_model(self.tokenizer, self.model)
        self.index = DeviseIndex.load(index) if isinstance(index, (str, os.PathLike)) else index
        self._word_table = None

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        target: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ):
        postprocess_params = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"`top_k` must be a positive integer, got {top_k!r}.")
            postprocess_params["top_k"] = top_k
        if target is not None:
            if target not in TARGETS:
                raise ValueError(f"`target` must be one of {TARGETS}, got {target!r}.")
            postprocess_params["target"] = target
        # the index checks these: each belongs to one backend
        if nprobe is not None:
            postprocess_params["nprobe"] = nprobe
        if ef_search is not None:
            postprocess_params["ef_search"] = ef_search
        return {}, {}, postprocess_params

    def __call__(self, inputs, **kwargs) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """
        Search with one query or a list of queries (texts and images may be mixed; results keep the input order).

        Args:
            inputs: a text, an image (PIL image, path, raw bytes) or a list of them.
            top_k (`int`, *optional*, defaults to 5): results per query.
            target (`str`, *optional*, defaults to `"images"`): search the gallery `"images"` or the model's `"words"`.
            nprobe (`int`, *optional*): IVF index only: cells scanned per query (the index's default if not given).
            ef_search (`int`, *optional*): faiss HNSW index only: candidates kept per query (the index's default if
                not given).
            batch_size (`int`, *optional*): queries embedded per forward pass.
        """
        if not isinstance(inputs, (list, tuple)):
            return super().__call__(inputs, **kwargs)
        inputs = list(inputs)
        if not inputs:
            return []
        # texts and images cannot share a batch, so each kind is run batched on its own, then put back in order
        kinds = [_is_image(item) for item in inputs]
        for position, item in enumerate(inputs):
            if not kinds[position] and not isinstance(item, str):
                raise TypeError(f"A query is a text or an image, got {type(item).__name__} (item {position}).")
        results = [None] * len(inputs)
        for kind in (False, True):
            positions = [position for position, is_image in enumerate(kinds) if is_image == kind]
            if positions:
                outputs = super().__call__([inputs[position] for position in positions], **kwargs)
                for position, output in zip(positions, outputs):
                    results[position] = output
        return results

    def preprocess(self, query) -> dict[str, torch.Tensor]:
        if _is_image(query):
            if isinstance(query, (str, os.PathLike, bytes, bytearray, memoryview)):
                query = open_image(query, "the query image")
            return self.image_processor(query, return_tensors="pt")
        if not isinstance(query, str):
            raise TypeError(f"A query is a text or an image, got {type(query).__name__}.")
        return self.tokenizer(query, return_tensors="pt")

    def _forward(self, model_inputs) -> dict[str, torch.Tensor]:
        if "pixel_values" in model_inputs:
            embeds = self.model.get_image_features(pixel_values=model_inputs["pixel_values"].to(self.dtype))
        else:
            embeds = self.model.get_text_features(model_inputs["input_ids"], model_inputs["attention_mask"])
        return {"query_embeds": embeds}

    def postprocess(
        self,
        model_outputs,
        top_k: int = 5,
        target: str = "images",
        nprobe: int | None = None,
        ef_search: int | None = None,
    ):
        query = model_outputs["query_embeds"].reshape(-1).float().cpu()
        if target == "words":
            scores, rows = (self._words() @ query).topk(min(top_k, self.model.config.vocab_size - 1))
            words = self.tokenizer.convert_ids_to_tokens((rows + 1).tolist())  # row 0 of the table is padding
            return [{"score": score, "word": word} for score, word in zip(scores.tolist(), words)]
        if self.index is None:
            raise ValueError("Searching images needs a gallery: pass `index=` (a DeviseIndex or its file).")
        scores, ids = self.index.search(query, k=top_k, nprobe=nprobe, ef_search=ef_search)
        return [{"score": score, "id": id_} for score, id_ in zip(scores.tolist(), ids.tolist()) if id_ >= 0]

    def _words(self) -> torch.Tensor:
        """The unit word vectors, padding row excluded, computed once."""
        if self._word_table is None:
            table = self.model.word_embeddings.weight[1:].float().cpu()
            self._word_table = torch.nn.functional.normalize(table, dim=-1)
        return self._word_table


__all__ = ["ImageSearchPipeline"]
