"""The data shipped inside the package: the IMDb sample and the small pretrained language model."""

import math

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ulmfit.samples import load_imdb_sample, pretrained_language_model_path


def test_imdb_sample_has_balanced_labelled_reviews_and_unlabelled_ones():
    sample = load_imdb_sample()
    assert sorted(set(sample["split"])) == ["train", "unsup"]
    labelled = load_imdb_sample("train")
    assert len(labelled) == 4000 and sum(labelled["label"]) == 2000
    assert set(load_imdb_sample("unsup")["label"]) == {-1} and len(sample) == 5000


def test_shipped_language_model_loads_and_knows_english_reviews():
    model = AutoModelForCausalLM.from_pretrained(pretrained_language_model_path()).eval()
    tokenizer = AutoTokenizer.from_pretrained(pretrained_language_model_path())
    assert model.config.vocab_size == len(tokenizer) == 9000
    review = "This movie was one of the best I have seen this year. The acting was great and the story was moving."
    shuffled = " ".join(sorted(review.split()))
    with torch.no_grad():
        losses = [
            model(**(batch := tokenizer(text, return_tensors="pt")), labels=batch.input_ids).loss.item()
            for text in (review, shuffled)
        ]
    assert math.exp(losses[0]) < 150  # a real review reads as likely text
    assert losses[0] < losses[1] - 1.0  # the same words in a scrambled order do not
