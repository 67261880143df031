import pytest
from transformers import AutoConfig

from ulmfit import AwdLstmConfig


def test_defaults_are_fastai_awd_lstm_lm_config():
    config = AwdLstmConfig()
    assert (config.embedding_size, config.hidden_size, config.num_hidden_layers) == (400, 1152, 3)
    assert config.tie_word_embeddings and config.lm_head_bias
    dropouts = (config.input_dropout, config.embedding_dropout, config.weight_dropout, config.hidden_dropout)
    assert dropouts == (0.25, 0.02, 0.2, 0.15)
    assert config.output_dropout == 0.1
    assert (config.activation_regularization, config.temporal_activation_regularization) == (2.0, 1.0)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 2, 3)


def test_save_and_reload_round_trip(tmp_path):
    config = AwdLstmConfig(vocab_size=120, hidden_size=33, weight_dropout=0.4)
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(reloaded, AwdLstmConfig)
    expected = {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}
    assert {k: v for k, v in reloaded.to_dict().items() if k != "_name_or_path"} == expected


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("input_dropout", -0.1, "input_dropout"),
        ("weight_dropout", 1.0, "weight_dropout"),
        ("output_dropout", 1.5, "output_dropout"),
        ("num_hidden_layers", 0, "num_hidden_layers"),
        ("hidden_size", -4, "hidden_size"),
        ("vocab_size", 2.5, "vocab_size"),
        ("activation_regularization", -1, "activation_regularization"),
        ("pad_token_id", 500, "pad_token_id"),
    ],
)
def test_impossible_values_are_rejected_by_name(field, value, message):
    kwargs = {"vocab_size": 100, field: value}
    with pytest.raises(ValueError, match=message):
        AwdLstmConfig(**kwargs)
