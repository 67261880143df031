"""AWD-LSTM: configuration, model heads and tokenizer."""

from .configuration_awd_lstm import AwdLstmConfig
from .modeling_awd_lstm import (
    AwdLstmCausalLMOutput,
    AwdLstmForCausalLM,
    AwdLstmForSequenceClassification,
    AwdLstmModel,
    AwdLstmOutput,
    AwdLstmPreTrainedModel,
)
from .tokenization_awd_lstm import AwdLstmTokenizer


__all__ = [
    "AwdLstmCausalLMOutput",
    "AwdLstmConfig",
    "AwdLstmForCausalLM",
    "AwdLstmForSequenceClassification",
    "AwdLstmModel",
    "AwdLstmOutput",
    "AwdLstmPreTrainedModel",
    "AwdLstmTokenizer",
]
