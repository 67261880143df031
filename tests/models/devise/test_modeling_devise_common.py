"""transformers' common model tests (see tests/common_model_tests.py), for DeViSE and its EfficientNet-Lite body.

DeViSE's input is an image: there is no token embedding to get or resize (its word table holds frozen pretrained
vectors, replaced with `set_word_vectors`), no generation and no attention in the EfficientNet-Lite backbone. Its
hidden states are the backbone's, which transformers' vision tests check as feature maps. With `B = batch_size`, a
`P x P` image, the stem's `C0 = stem_channels` and each MBConv block's output channels `C1 .. CN` (N = `num_blocks`):

- `hidden_states` = (stem output `(B, C0, P/2, P/2)`, then the output of every block `(B, Ci, Pi, Pi)`, where the
  first block of a stage divides the side by its stride), N + 1 tensors; the 1x1 head convolution after them gives
  `last_hidden_state` `(B, hidden_dim, PN, PN)`, concat-pooled into DeViSE's `pooler_output` `(B, 2 * hidden_dim)`.
  For the tiny backbone below and 32 x 32 images: (B, 8, 16, 16), (B, 8, 16, 16), (B, 16, 8, 8), (B, 16, 8, 8).
- `EfficientNetLiteModel` and `EfficientNetLiteForImageClassification` return the same tuple.
"""

import math

import pytest
import torch
from devise_fixtures import PROJECTION_DIM, WORDS, tiny_lite_config, tiny_resnet_config, word_table
from transformers import ViTConfig
from transformers.modeling_layers import GradientCheckpointingLayer

from common_model_tests import ModelTesterMixin, count_checkpointed_runs, enable_gradient_checkpointing
from ulmfit import (
    DeviseConfig,
    DeviseModel,
    EfficientNetLiteConfig,
    EfficientNetLiteForImageClassification,
    EfficientNetLiteModel,
)
from ulmfit.models.devise.configuration_efficientnet_lite import STAGE_FIELDS


VOCAB_SIZE = len(WORDS) + 1  # the words and padding (id 0)
IMAGE_SIZE = 32


def random_pixel_values(batch_size: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


def expected_backbone_hidden_shapes(config: EfficientNetLiteConfig, batch_size: int) -> list[tuple[int, ...]]:
    """The stem's and every block's output shape for `IMAGE_SIZE` images (TF "SAME" padding: ceil(side / stride))."""
    side = math.ceil(IMAGE_SIZE / 2)
    shapes = [(batch_size, config.stem_channels, side, side)]
    stages = zip(config.strides, config.out_channels, config.num_block_repeats)
    for stride, channels, repeats in stages:
        for repeat in range(repeats):
            side = math.ceil(side / stride) if repeat == 0 else side
            shapes.append((batch_size, channels, side, side))
    return shapes


class VisionModelTesterMixin(ModelTesterMixin):
    """What DeViSE and EfficientNet-Lite share: image inputs, no token embedding, no attention, no cache."""

    has_token_embeddings = False
    no_attention_reason = "EfficientNet-Lite is convolutional: it has no attention weights (`output_attentions`)."
    cache_skip_reason = "An image model does not generate: there is no cache."

    def check_backbone_hidden_states(self, hidden_states, backbone_config: EfficientNetLiteConfig, batch_size: int):
        assert len(hidden_states) == backbone_config.num_blocks + 1
        shapes = [tuple(tensor.shape) for tensor in hidden_states]
        assert shapes == expected_backbone_hidden_shapes(backbone_config, batch_size)


class TestDeviseCommon(VisionModelTesterMixin):
    config_class = DeviseConfig
    all_model_classes = (DeviseModel,)
    common_properties = {"projection_dim": 10, "head_hidden_size": 20, "vocab_size": 30, "logit_scale": 5.0}

    def get_config(self, **overrides) -> DeviseConfig:
        sizes = {"projection_dim": PROJECTION_DIM, "head_hidden_size": 12, "vocab_size": VOCAB_SIZE, "num_labels": 4}
        return DeviseConfig(**{"backbone_config": tiny_lite_config(), **sizes, **overrides})

    def make_model(self, model_class, config) -> DeviseModel:
        """A seeded model with the word table and one random vector per class, as a trained model has them."""
        torch.manual_seed(0)
        model = model_class(config)
        model.set_word_vectors(word_table(config.vocab_size - 1))
        generator = torch.Generator().manual_seed(1)
        model.set_label_embeddings(torch.randn(config.num_labels, config.projection_dim, generator=generator))
        return model.eval()

    def prepare_inputs(self, model_class, config, with_labels: bool = False) -> dict:
        # three images and three texts of 3, 2 and 1 words, right-padded
        input_ids = torch.tensor([[5, 6, 7], [8, 9, 0], [10, 0, 0]])
        inputs = {"pixel_values": random_pixel_values(), "input_ids": input_ids, "attention_mask": input_ids != 0}
        if with_labels:
            inputs["labels"] = torch.tensor([0, 3, 1]) % config.num_labels
        return inputs

    def prepare_padded_batch(self, model_class, config) -> tuple[dict, list[dict]]:
        batch = self.prepare_inputs(model_class, config)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        singles = [
            {
                "pixel_values": batch["pixel_values"][row : row + 1],
                "input_ids": batch["input_ids"][row : row + 1, :length],
            }
            for row, length in enumerate(lengths)
        ]
        return batch, singles

    def batching_fields(self, model_class) -> dict[str, str]:
        # an image's embedding, pooled features and feature maps, and a text's embedding; `logits_per_image` pairs
        # every image with every text of its batch
        return {"image_embeds": "row", "pooler_output": "row", "hidden_states": "row", "text_embeds": "row"}

    def check_hidden_states_output(self, outputs, inputs, config, model_class):
        batch_size = inputs["pixel_values"].shape[0]
        self.check_backbone_hidden_states(outputs.hidden_states, config.backbone_config, batch_size)
        assert outputs.pooler_output.shape == (batch_size, 2 * config.backbone_config.hidden_dim)

    def mismatched_head_overrides(self, model_class) -> dict:
        return {"num_labels": 6}  # the label table, one vector per class

    # ----------------------------------------------------------------------------------------------------------------
    # DeViSE specifics (issue 18, item 12)

    def test_resize_token_embeddings_says_how_to_add_words(self):
        model = self.make_model(DeviseModel, self.get_config())
        with pytest.raises(NotImplementedError, match="set_word_vectors"):
            model.resize_token_embeddings(VOCAB_SIZE + 2)
        with pytest.raises(NotImplementedError, match="no input token embedding"):
            model.get_input_embeddings()

        # what to do instead: grow the table with the new words' vectors
        new_vectors = torch.randn(2, PROJECTION_DIM)
        model.set_word_vectors(torch.cat([model.word_embeddings.weight, new_vectors]))
        assert model.config.vocab_size == VOCAB_SIZE + 2
        features = model.get_text_features(torch.tensor([[VOCAB_SIZE + 1]]))
        torch.testing.assert_close(features[0], torch.nn.functional.normalize(new_vectors[1], dim=0))

    def test_gradient_checkpointing_with_a_backbone_without_it_fails_clearly(self):
        config = self.get_config(backbone_config=tiny_resnet_config())
        model = self.make_model(DeviseModel, config)
        with pytest.raises(ValueError, match="ResNetModel does not support gradient checkpointing"):
            enable_gradient_checkpointing(model)

    def test_gradient_checkpointing_reaches_a_vit_backbone(self):
        vit = ViTConfig(
            image_size=IMAGE_SIZE, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2
        )
        model = self.make_model(DeviseModel, self.get_config(backbone_config=vit)).train()
        enable_gradient_checkpointing(model)
        layers = [module for module in model.backbone.modules() if isinstance(module, GradientCheckpointingLayer)]
        assert layers and all(layer.gradient_checkpointing for layer in layers)
        counts = count_checkpointed_runs(model)
        model(**self.prepare_inputs(DeviseModel, model.config, with_labels=True)).loss.backward()
        assert counts["checkpoints"] > 0 and counts["runs"] == 2 * counts["checkpoints"]
        assert all(parameter.grad is not None for layer in layers for parameter in layer.parameters())

    def test_gradient_checkpointing_with_a_frozen_backbone_recomputes_nothing(self):
        model = self.make_model(DeviseModel, self.get_config(freeze_backbone=True)).train()
        enable_gradient_checkpointing(model)
        counts = count_checkpointed_runs(model)
        model(**self.prepare_inputs(DeviseModel, model.config, with_labels=True)).loss.backward()
        assert counts == {"checkpoints": 0, "runs": 0}  # the frozen backbone runs without gradients
        assert all(parameter.grad is None for parameter in model.backbone.parameters())


class TestEfficientNetLiteCommon(VisionModelTesterMixin):
    config_class = EfficientNetLiteConfig
    all_model_classes = (EfficientNetLiteModel, EfficientNetLiteForImageClassification)
    common_properties = {"stem_channels": 12, "hidden_dim": 24, "drop_connect_rate": 0.1, "dropout_rate": 0.3}

    def get_config(self, **overrides) -> EfficientNetLiteConfig:
        tiny = tiny_lite_config()
        architecture = {name: getattr(tiny, name) for name in ("stem_channels", "hidden_dim", *STAGE_FIELDS)}
        return EfficientNetLiteConfig(**{**architecture, "num_labels": 3, **overrides})

    def prepare_inputs(self, model_class, config, with_labels: bool = False) -> dict:
        inputs = {"pixel_values": random_pixel_values()}
        if with_labels and model_class is EfficientNetLiteForImageClassification:
            inputs["labels"] = torch.tensor([0, 2, 1]) % config.num_labels
        return inputs

    def prepare_padded_batch(self, model_class, config) -> tuple[dict, list[dict]]:
        batch = self.prepare_inputs(model_class, config)
        return batch, [{"pixel_values": batch["pixel_values"][row : row + 1]} for row in range(3)]

    def batching_fields(self, model_class) -> dict[str, str]:
        if model_class is EfficientNetLiteForImageClassification:
            return {"logits": "row", "hidden_states": "row"}
        return {"last_hidden_state": "row", "pooler_output": "row", "hidden_states": "row"}

    def check_hidden_states_output(self, outputs, inputs, config, model_class):
        self.check_backbone_hidden_states(outputs.hidden_states, config, inputs["pixel_values"].shape[0])

    def mismatched_head_overrides(self, model_class) -> dict | None:
        return {"num_labels": 5} if model_class is EfficientNetLiteForImageClassification else None
