import pytest
from devise_fixtures import tiny_lite_config, tiny_resnet_config
from transformers import AutoConfig, ResNetConfig

from ulmfit import DeviseConfig, EfficientNetLiteConfig


def test_defaults_are_the_2018_notebook():
    config = DeviseConfig()
    assert config.backbone_config.model_type == "resnet"
    assert config.backbone_config.hidden_sizes[-1] == 2048 and config.backbone_hidden_size == 2048  # ResNet-50
    assert (config.projection_dim, config.head_hidden_size) == (300, 1024)
    assert (config.pooled_dropout, config.hidden_dropout) == (0.2, 0.2)
    assert (config.loss_type, config.hinge_margin) == ("cosine", 0.1)
    assert not config.freeze_backbone and not config.use_pretrained_backbone
    assert config.num_labels == 0 and config.vocab_size == 0


@pytest.mark.parametrize("backbone_config", [tiny_lite_config(), tiny_resnet_config()])
def test_save_and_reload_round_trip(tmp_path, backbone_config):
    config = DeviseConfig(backbone_config=backbone_config, projection_dim=50, loss_type="hinge_rank", vocab_size=7)
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(reloaded, DeviseConfig)
    assert type(reloaded.backbone_config) is type(backbone_config)
    expected = {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}
    assert {k: v for k, v in reloaded.to_dict().items() if k != "_name_or_path"} == expected


def test_backbone_config_may_be_a_dict():
    config = DeviseConfig(backbone_config=tiny_lite_config().to_dict())
    assert isinstance(config.backbone_config, EfficientNetLiteConfig)
    assert config.backbone_hidden_size == 16


def test_backbone_names_a_checkpoint_whose_config_is_used(tmp_path):
    tiny_resnet_config().save_pretrained(tmp_path)
    config = DeviseConfig(backbone=str(tmp_path))
    assert isinstance(config.backbone_config, ResNetConfig) and config.backbone_hidden_size == 12


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("projection_dim", 0, "projection_dim"),
        ("head_hidden_size", 2.5, "head_hidden_size"),
        ("pooled_dropout", 1.0, "pooled_dropout"),
        ("hidden_dropout", -0.1, "hidden_dropout"),
        ("loss_type", "softmax", "loss_type"),
        ("hinge_margin", -1, "hinge_margin"),
        ("logit_scale", 0, "logit_scale"),
        ("vocab_size", -3, "vocab_size"),
        ("use_pretrained_backbone", True, "backbone"),
    ],
)
def test_impossible_values_are_rejected_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        DeviseConfig(backbone_config=tiny_lite_config(), **{field: value})


def test_unknown_backbone_model_type_is_rejected():
    with pytest.raises(ValueError, match="not-a-model"):
        DeviseConfig(backbone_config={"model_type": "not-a-model"})


@pytest.mark.parametrize(
    "field, value",
    [("kernel_sizes", [3, 3, 4, 3, 5, 5, 3]), ("strides", [1]), ("drop_connect_rate", 1.0), ("hidden_dim", 0)],
)
def test_efficientnet_lite_config_rejects_impossible_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        EfficientNetLiteConfig(**{field: value})


@pytest.mark.parametrize("backbone_config", [tiny_lite_config(), tiny_resnet_config()])
def test_from_dict_rebuilds_the_nested_backbone_config(backbone_config):
    config = DeviseConfig(backbone_config=backbone_config, projection_dim=50, custom_pipelines={"devise": {}})
    rebuilt = DeviseConfig.from_dict(config.to_dict())
    assert type(rebuilt.backbone_config) is type(backbone_config)
    assert rebuilt.to_dict() == config.to_dict() and rebuilt.custom_pipelines == {"devise": {}}


def test_float_fields_accept_ints():
    config = DeviseConfig(backbone_config=tiny_lite_config(), hinge_margin=0, logit_scale=10, pooled_dropout=0)
    assert (config.hinge_margin, config.logit_scale) == (0, 10)


def test_backbone_config_of_another_type_is_rejected():
    with pytest.raises(ValueError, match="backbone_config"):
        DeviseConfig(backbone_config=["resnet"])


def test_efficientnet_lite_config_stores_the_stages_as_lists(tmp_path):
    config = EfficientNetLiteConfig(kernel_sizes=(3, 5), strides=(1, 2), expand_ratios=(1, 4), out_channels=(8, 16),
                                    num_block_repeats=(1, 2), hidden_dim=16)  # fmt: skip
    assert config.kernel_sizes == [3, 5] and isinstance(config.num_block_repeats, list)
    assert EfficientNetLiteConfig().out_channels == [16, 24, 40, 80, 112, 192, 320]
    config.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).to_diff_dict() == config.to_diff_dict()


def test_efficientnet_lite_validation_hook_checks_a_changed_config():
    config = EfficientNetLiteConfig()
    config.strides = [1, 2]
    with pytest.raises(ValueError, match="one length"):
        config.validate_architecture()
