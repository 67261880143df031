"""The attention GRU encoder-decoder (fast.ai 2018, lesson 11): configuration, model heads and tokenizer."""

from .configuration_gru_seq2seq import GruSeq2SeqConfig
from .modeling_gru_seq2seq import (
    GruSeq2SeqEncoderOutput,
    GruSeq2SeqForConditionalGeneration,
    GruSeq2SeqLMOutput,
    GruSeq2SeqModel,
    GruSeq2SeqModelOutput,
    GruSeq2SeqPreTrainedModel,
    GruSeq2SeqState,
)
from .tokenization_gru_seq2seq import GruSeq2SeqTokenizer


__all__ = [
    "GruSeq2SeqConfig",
    "GruSeq2SeqEncoderOutput",
    "GruSeq2SeqForConditionalGeneration",
    "GruSeq2SeqLMOutput",
    "GruSeq2SeqModel",
    "GruSeq2SeqModelOutput",
    "GruSeq2SeqPreTrainedModel",
    "GruSeq2SeqState",
    "GruSeq2SeqTokenizer",
]
