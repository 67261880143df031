"""Pipelines and inference helpers beyond the transformers built-ins."""

from .ensemble import ForwardBackwardEnsemble
from .registration import register_custom_pipeline
from .text_classification import AwdLstmTextClassificationPipeline


__all__ = ["AwdLstmTextClassificationPipeline", "ForwardBackwardEnsemble", "register_custom_pipeline"]
