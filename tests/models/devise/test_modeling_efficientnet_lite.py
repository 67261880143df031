import math

import pytest
import torch
from devise_fixtures import tiny_lite_config
from transformers import AutoModel, AutoModelForImageClassification

from ulmfit import EfficientNetLiteConfig, EfficientNetLiteForImageClassification, EfficientNetLiteModel
from ulmfit.models.devise.convert_efficientnet_lite import convert_checkpoint, convert_key, lite_image_processor
from ulmfit.models.devise.modeling_efficientnet_lite import EfficientNetLiteConv2d, drop_path


def lukemelas_lite0_keys() -> list[str]:
    """The key names of an `efficientnet_pytorch` EfficientNet-Lite0 state dict (SOURCES.md section 6)."""
    norm = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["_conv_stem.weight", *(f"_bn0.{field}" for field in norm)]
    for block in range(16):
        prefix = f"_blocks.{block}"
        if block > 0:  # the first block has expand ratio 1
            keys += [f"{prefix}._expand_conv.weight", *(f"{prefix}._bn0.{field}" for field in norm)]
        keys += [f"{prefix}._depthwise_conv.weight", *(f"{prefix}._bn1.{field}" for field in norm)]
        keys += [f"{prefix}._project_conv.weight", *(f"{prefix}._bn2.{field}" for field in norm)]
    keys += ["_conv_head.weight", *(f"_bn1.{field}" for field in norm), "_fc.weight", "_fc.bias"]
    return keys


def test_feature_map_shapes_and_pooling():
    model = EfficientNetLiteModel(tiny_lite_config()).eval()
    with torch.no_grad():
        outputs = model(torch.randn(2, 3, 32, 32), output_hidden_states=True)
    assert outputs.last_hidden_state.shape == (2, 16, 8, 8)  # stride 2 stem, stride 2 stage
    torch.testing.assert_close(outputs.pooler_output, outputs.last_hidden_state.mean(dim=(2, 3)))
    assert len(outputs.hidden_states) == 1 + 3  # stem + every block


@pytest.mark.parametrize("size, kernel_size, stride", [(33, 3, 2), (35, 5, 2), (224, 3, 2), (7, 5, 1)])
def test_convolutions_use_tf_same_padding(size, kernel_size, stride):
    conv = EfficientNetLiteConv2d(1, 1, kernel_size, stride=stride)
    torch.nn.init.ones_(conv.weight)
    output = conv(torch.ones(1, 1, size, size))
    assert output.shape[-1] == math.ceil(size / stride)
    # TF puts the odd padding pixel at the end: the first output sees one more real pixel than the last
    total = max((output.shape[-1] - 1) * stride + kernel_size - size, 0)
    assert output[0, 0, 0, 0].item() == (kernel_size - total // 2) * (kernel_size - total // 2)


def test_drop_path_drops_whole_samples_in_training_only():
    hidden_states = torch.ones(64, 2, 3, 3)
    torch.manual_seed(0)
    dropped = drop_path(hidden_states, 0.5, training=True)
    per_sample = dropped.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample.min(dim=1).values == per_sample.max(dim=1).values).all()  # one draw per sample
    assert torch.equal(drop_path(hidden_states, 0.5, training=False), hidden_states)


def test_the_default_config_is_lite0():
    config = EfficientNetLiteConfig()
    assert config.num_blocks == 16 and config.hidden_act == "relu6" and config.hidden_dim == 1280
    model = EfficientNetLiteModel(config)
    # Lite0 without squeeze-excite: 3,371,008 parameters besides the 1280 x 1000 classifier (4,652,008 with it)
    assert sum(parameter.numel() for parameter in model.parameters()) == 3_371_008


def test_every_lukemelas_key_converts_to_a_lite0_parameter():
    model = EfficientNetLiteForImageClassification(EfficientNetLiteConfig(num_labels=1000))
    converted = [convert_key(key) for key in lukemelas_lite0_keys()]
    assert sorted(converted) == sorted(model.state_dict())
    with pytest.raises(KeyError, match="_se_reduce"):
        convert_key("_blocks.3._se_reduce.weight")


def test_conversion_of_a_checkpoint_is_exact(tmp_path):
    torch.manual_seed(0)
    source = EfficientNetLiteForImageClassification(EfficientNetLiteConfig(num_labels=10)).eval()
    ours = source.state_dict()
    # a lukemelas-style checkpoint with the same tensors, one of them stored non-contiguous (as TF layouts are)
    checkpoint = {key: ours[convert_key(key)] for key in lukemelas_lite0_keys()}
    checkpoint["_fc.weight"] = checkpoint["_fc.weight"].T.contiguous().T
    torch.save(checkpoint, tmp_path / "lite0.pth")
    converted = convert_checkpoint(tmp_path / "lite0.pth")
    assert converted.config.num_labels == 10 and converted.config.out_channels == EfficientNetLiteConfig().out_channels
    pixel_values = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(converted(pixel_values).logits, source(pixel_values).logits, rtol=0, atol=0)


def test_auto_classes_load_a_classifier_checkpoint_and_its_backbone(tmp_path):
    torch.manual_seed(0)
    classifier = EfficientNetLiteForImageClassification(tiny_lite_config(num_labels=3))
    classifier.save_pretrained(tmp_path)
    assert isinstance(
        AutoModelForImageClassification.from_pretrained(tmp_path), EfficientNetLiteForImageClassification
    )
    backbone = AutoModel.from_pretrained(tmp_path)  # the base model out of the classifier checkpoint
    assert isinstance(backbone, EfficientNetLiteModel)
    expected = classifier.efficientnet_lite.embeddings.convolution.weight
    torch.testing.assert_close(backbone.embeddings.convolution.weight, expected)


def test_lite_image_processor_gives_x_minus_127_over_128():
    import numpy as np
    import PIL.Image

    pixels = np.full((224, 224, 3), 255, dtype=np.uint8)
    pixels[:, :, 1] = 127
    pixel_values = lite_image_processor()(PIL.Image.fromarray(pixels), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixel_values[0, :, 0, 0], torch.tensor([1.0, 0.0, 1.0]), rtol=0, atol=1e-5)
