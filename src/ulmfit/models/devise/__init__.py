"""DeViSE: configuration, model, image processor, tokenizer, processor, nearest-neighbour index, EfficientNet-Lite."""

from .configuration_devise import DeviseConfig
from .configuration_efficientnet_lite import EfficientNetLiteConfig
from .image_processing_devise import DeviseImageProcessor
from .index_devise import DeviseIndex, exact_search
from .modeling_devise import DeviseModel, DeviseOutput, DevisePreTrainedModel
from .modeling_efficientnet_lite import (
    EfficientNetLiteForImageClassification,
    EfficientNetLiteModel,
    EfficientNetLitePreTrainedModel,
)
from .processing_devise import DeviseProcessor
from .tokenization_devise import DeviseTokenizer, load_devise_word_vectors, read_word_vectors


__all__ = [
    "DeviseConfig",
    "DeviseImageProcessor",
    "DeviseIndex",
    "DeviseModel",
    "DeviseOutput",
    "DevisePreTrainedModel",
    "DeviseProcessor",
    "DeviseTokenizer",
    "EfficientNetLiteConfig",
    "EfficientNetLiteForImageClassification",
    "EfficientNetLiteModel",
    "EfficientNetLitePreTrainedModel",
    "exact_search",
    "load_devise_word_vectors",
    "read_word_vectors",
]
