"""Pipelines and inference helpers beyond the transformers built-ins."""

from .ensemble import ForwardBackwardEnsemble
from .text_classification import AwdLstmTextClassificationPipeline, register_text_classification_pipeline


__all__ = ["AwdLstmTextClassificationPipeline", "ForwardBackwardEnsemble", "register_text_classification_pipeline"]
