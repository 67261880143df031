"""Pipelines and inference helpers beyond the transformers built-ins."""

from .ensemble import ForwardBackwardEnsemble


__all__ = ["ForwardBackwardEnsemble"]
