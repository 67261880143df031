import pytest
import torch
from devise_fixtures import random_images
from torch.nn import functional as F
from transformers import AutoProcessor

from ulmfit import DeviseProcessor


def test_processor_prepares_images_and_texts_together(processor):
    batch = processor(images=random_images(2), text=["goldfish", "fire salamander"])
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert batch["input_ids"].shape == (2, 2) and batch["attention_mask"].tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError, match="empty"):
        processor(text=[])


def test_save_and_reload_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    for reloaded in (DeviseProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert isinstance(reloaded, DeviseProcessor)
        images = random_images(1)
        torch.testing.assert_close(
            reloaded(images=images, text=["boat"])["pixel_values"], processor(images=images)["pixel_values"]
        )
        assert reloaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()


def test_embed_text_sums_words_and_names_missing_ones(processor, tiny_model):
    vectors = F.normalize(tiny_model.word_embeddings.weight, dim=-1)
    engine, boat = processor.tokenizer.convert_tokens_to_ids(["engine", "boat"])
    embedded = processor.embed_text(tiny_model, ["engine + boat", "boat"])
    torch.testing.assert_close(embedded[0], F.normalize(vectors[engine] + vectors[boat], dim=0))
    torch.testing.assert_close(embedded[1], vectors[boat])
    assert processor.embed_text(tiny_model, "boat").shape == (1, 8)
    with pytest.raises(ValueError, match="'submarine'"):
        processor.embed_text(tiny_model, ["boat", "submarine"])
    with pytest.raises(ValueError, match="empty"):
        processor.embed_text(tiny_model, [])
