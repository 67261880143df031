import pytest
import torch
from devise_fixtures import PROJECTION_DIM, WORDS, random_images, tiny_lite_config, word_table

from ulmfit import DeviseConfig, DeviseImageProcessor, DeviseModel, DeviseProcessor, DeviseTokenizer


@pytest.fixture
def tokenizer():
    return DeviseTokenizer(words=WORDS)


@pytest.fixture
def image_processor():
    return DeviseImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


@pytest.fixture
def processor(image_processor, tokenizer):
    return DeviseProcessor(image_processor=image_processor, tokenizer=tokenizer)


@pytest.fixture
def tiny_config(tokenizer):
    return DeviseConfig(
        backbone_config=tiny_lite_config(),
        projection_dim=PROJECTION_DIM,
        head_hidden_size=12,
        vocab_size=len(tokenizer),
    )


@pytest.fixture
def tiny_model(tiny_config, tokenizer):
    torch.manual_seed(0)
    model = DeviseModel(tiny_config)
    model.set_word_vectors(word_table(len(tokenizer) - 1))
    return model.eval()


@pytest.fixture
def pixel_values(processor):
    return processor(images=random_images(3))["pixel_values"]


@pytest.fixture
def saved_devise(tmp_path, tiny_model, processor):
    """A tiny DeViSE model and its processor saved with save_pretrained, as a user would."""
    folder = tmp_path / "tiny-devise"
    tiny_model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
