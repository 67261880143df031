import json

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


def test_fastai_dropouts_language_model_preset_is_the_defaults():
    config = AwdLstmConfig()
    expected = {
        name: getattr(config, name)
        for name in ("embedding_dropout", "input_dropout", "weight_dropout", "hidden_dropout", "output_dropout")
    }
    assert AwdLstmConfig.fastai_dropouts() == expected
    assert AwdLstmConfig.fastai_dropouts("language_model") == {
        "embedding_dropout": 0.02,
        "input_dropout": 0.25,
        "weight_dropout": 0.2,
        "hidden_dropout": 0.15,
        "output_dropout": 0.1,
    }
    assert type(AwdLstmConfig.fastai_dropouts()) is dict
    assert "classifier_dropout" not in AwdLstmConfig.fastai_dropouts()


def test_fastai_dropouts_classifier_preset_is_awd_lstm_clas_config():
    assert AwdLstmConfig.fastai_dropouts("classifier") == {
        "embedding_dropout": 0.05,
        "input_dropout": 0.4,
        "weight_dropout": 0.5,
        "hidden_dropout": 0.3,
        "output_dropout": 0.4,
    }


@pytest.mark.parametrize("preset", ["language_model", "classifier"])
@pytest.mark.parametrize("drop_mult", [0, 0.3, 0.5, 1.0, 1.5])
def test_fastai_dropouts_are_scaled_by_drop_mult(preset, drop_mult):
    base = AwdLstmConfig.fastai_dropouts(preset)
    scaled = AwdLstmConfig.fastai_dropouts(preset, drop_mult=drop_mult)
    # plain products, as fastai's learners (and our training scripts) compute them
    assert scaled == {name: p * drop_mult for name, p in base.items()}
    AwdLstmConfig(vocab_size=100, **scaled)  # always a valid config


def test_fastai_dropouts_text_classifier_learner_values():
    # `text_classifier_learner(..., drop_mult=0.5)`: the converter's classifier defaults
    assert AwdLstmConfig.fastai_dropouts("classifier", drop_mult=0.5) == {
        "embedding_dropout": 0.025,
        "input_dropout": 0.2,
        "weight_dropout": 0.25,
        "hidden_dropout": 0.15,
        "output_dropout": 0.2,
    }


def test_fastai_dropouts_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match="`preset` must be one of .*'lm'"):
        AwdLstmConfig.fastai_dropouts("lm")


@pytest.mark.parametrize(
    "preset, drop_mult, bound",
    [
        ("language_model", -0.1, "4"),
        ("language_model", 4.0, "4"),
        ("classifier", 2.0, "2"),
        ("classifier", 3, "2"),
        ("classifier", float("nan"), "2"),
    ],
)
def test_fastai_dropouts_impossible_drop_mult_is_rejected(preset, drop_mult, bound):
    with pytest.raises(ValueError, match=rf"`drop_mult` must be at least 0 and below {bound} \(.*{preset}") as error:
        AwdLstmConfig.fastai_dropouts(preset, drop_mult=drop_mult)
    assert str(drop_mult) in str(error.value)


def test_float_fields_accept_ints():
    # `--config_overrides activation_regularization=0` parses an int; @strict's `float` would reject it
    config = AwdLstmConfig(activation_regularization=0, temporal_activation_regularization=0, initializer_range=1)
    assert (config.activation_regularization, config.initializer_range) == (0, 1)


def test_old_folder_with_unknown_keys_loads_and_keeps_them(tmp_path):
    saved = AwdLstmConfig(vocab_size=120).to_dict()
    saved.update(
        auto_map={"AutoConfig": "configuration_awd_lstm.AwdLstmConfig"},
        custom_pipelines={"text-classification": {"impl": "pipeline.Pipe"}},
        fastai_version="2.7.12",
    )
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, AwdLstmConfig) and config.vocab_size == 120
    assert config.fastai_version == "2.7.12" and config.custom_pipelines == saved["custom_pipelines"]
    config.save_pretrained(tmp_path / "again")
    resaved = json.loads((tmp_path / "again" / "config.json").read_text())
    assert resaved["fastai_version"] == "2.7.12" and resaved["auto_map"] == saved["auto_map"]


def test_validation_hooks_check_a_changed_config():
    config = AwdLstmConfig(vocab_size=100)
    config.hidden_dropout = 1.0
    with pytest.raises(ValueError, match="hidden_dropout"):
        config.validate_architecture()
    config = AwdLstmConfig(vocab_size=100)
    config.vocab_size = 3
    with pytest.raises(ValueError, match="eos_token_id"):
        config.validate_token_ids()
