"""Tiny DeViSE building blocks shared by the tests (kept in one module so that parametrize can use them)."""

import numpy as np
import PIL.Image
import torch
from transformers import ResNetConfig

from ulmfit import EfficientNetLiteConfig


WORDS = ["goldfish", "fire", "salamander", "european", "boat", "engine", "ship", "car", "cat", "dog", "potter", "'s"]
WORDS += ["wheel", "sail", "photo"]
PROJECTION_DIM = 8


def tiny_lite_config(**kwargs) -> EfficientNetLiteConfig:
    """Two stages, 16 output channels: an EfficientNet-Lite in miniature."""
    return EfficientNetLiteConfig(
        stem_channels=8,
        kernel_sizes=[3, 5],
        strides=[1, 2],
        expand_ratios=[1, 4],
        out_channels=[8, 16],
        num_block_repeats=[1, 2],
        hidden_dim=16,
        **kwargs,
    )


def tiny_resnet_config() -> ResNetConfig:
    return ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")


def word_table(num_words: int, seed: int = 0) -> torch.Tensor:
    """Random word vectors with a zero padding row, as `load_devise_word_vectors` returns them."""
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([torch.zeros(1, PROJECTION_DIM), torch.randn(num_words, PROJECTION_DIM, generator=generator)])


def random_images(count: int, size: int = 40, seed: int = 0) -> list[PIL.Image.Image]:
    rng = np.random.default_rng(seed)
    return [PIL.Image.fromarray(rng.integers(0, 256, (size, size + 6, 3), dtype=np.uint8)) for _ in range(count)]
