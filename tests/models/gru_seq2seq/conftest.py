import pytest
import torch
from gru_seq2seq_fixtures import SOURCES, TARGETS, make_config

from ulmfit import GruSeq2SeqForConditionalGeneration, GruSeq2SeqTokenizer


@pytest.fixture
def tokenizer():
    return GruSeq2SeqTokenizer.train(SOURCES, TARGETS)


@pytest.fixture
def tiny_model(tokenizer):
    torch.manual_seed(0)
    return GruSeq2SeqForConditionalGeneration(make_config(tokenizer)).eval()


@pytest.fixture(scope="module")
def trained_model():
    """A tiny translator trained for a few hundred milliseconds on the pairs above (and its tokenizer)."""
    tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    torch.manual_seed(0)
    model = GruSeq2SeqForConditionalGeneration(make_config(tokenizer, embedding_size=24, hidden_size=16))
    batch = tokenizer(SOURCES, text_target=TARGETS, padding=True, return_tensors="pt")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval(), tokenizer


@pytest.fixture
def batch(tokenizer):
    return tokenizer(SOURCES[:4], text_target=TARGETS[:4], padding=True, return_tensors="pt")
