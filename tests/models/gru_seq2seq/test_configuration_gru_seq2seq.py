import pytest
from transformers import AutoConfig

from ulmfit import GruSeq2SeqConfig


def test_defaults_are_the_2018_notebooks_all_model():
    config = GruSeq2SeqConfig()
    assert (config.embedding_size, config.hidden_size, config.num_hidden_layers) == (300, 256, 2)
    dropouts = (
        config.input_dropout,
        config.encoder_dropout,
        config.hidden_dropout,
        config.decoder_dropout,
        config.output_dropout,
    )
    assert dropouts == (0.15, 0.25, 0.25, 0.1, 0.35)
    assert config.is_encoder_decoder and config.tie_word_embeddings
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id, config.decoder_start_token_id) == (
        1,
        2,
        3,
        2,
    )


def test_save_and_load_round_trip(tmp_path):
    config = GruSeq2SeqConfig(
        vocab_size=120, decoder_vocab_size=90, embedding_size=16, hidden_size=8, output_dropout=0.2
    )
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, GruSeq2SeqConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vocab_size", 0),
        ("decoder_vocab_size", -3),
        ("hidden_size", 2.5),
        ("num_hidden_layers", True),
        ("input_dropout", 1.0),
        ("output_dropout", -0.1),
        ("initializer_range", 0),
        ("decoder_start_token_id", 500),
    ],
)
def test_bad_values_are_rejected_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        GruSeq2SeqConfig(**{"vocab_size": 100, "decoder_vocab_size": 100, field: value})


def test_special_ids_must_fit_both_vocabularies():
    with pytest.raises(ValueError, match="eos_token_id"):
        GruSeq2SeqConfig(
            vocab_size=100, decoder_vocab_size=3, pad_token_id=0, bos_token_id=1, decoder_start_token_id=1
        )


def test_is_encoder_decoder_cannot_be_turned_off():
    with pytest.raises(ValueError, match="is_encoder_decoder"):
        GruSeq2SeqConfig(is_encoder_decoder=False)


def test_float_fields_accept_ints():
    config = GruSeq2SeqConfig(initializer_range=1, input_dropout=0, output_dropout=0)
    assert (config.initializer_range, config.input_dropout) == (1, 0)


def test_unknown_keys_survive_a_round_trip(tmp_path):
    config = GruSeq2SeqConfig.from_dict(
        {**GruSeq2SeqConfig(vocab_size=50, decoder_vocab_size=40).to_dict(), "auto_map": {"AutoConfig": "x.Y"}}
    )
    assert config.auto_map == {"AutoConfig": "x.Y"}
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert loaded.to_diff_dict() == config.to_diff_dict()


def test_validation_hooks_check_a_changed_config():
    config = GruSeq2SeqConfig(vocab_size=100, decoder_vocab_size=100)
    config.decoder_vocab_size = 2
    with pytest.raises(ValueError, match="bos_token_id"):
        config.validate_token_ids()
    config.decoder_vocab_size = 0
    with pytest.raises(ValueError, match="decoder_vocab_size"):
        config.validate_architecture()
