import os


# Set before transformers/huggingface_hub are imported anywhere: a Hub miss then fails at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmTokenizer  # noqa: E402


CORPUS = [
    "The movie was GREAT!!! I loved every minute of it.",
    "I didn't like the ending, but the actors were wonderful.",
    "What a boring film... The plot made no sense at all.",
    "She said it was the best movie of the year, and I agree.",
    "The music was beautiful and the story was moving.",
    "Terrible acting, terrible script, terrible everything.",
    "It's a good film. It's a bad film. It's a film.",
    "He can't act, and the director doesn't care.",
] * 3


@pytest.fixture
def corpus():
    return list(CORPUS)


@pytest.fixture
def tokenizer():
    return AwdLstmTokenizer.train(CORPUS, min_freq=1)


@pytest.fixture
def tiny_config(tokenizer):
    return AwdLstmConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=24, num_hidden_layers=2)


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    return AwdLstmForCausalLM(tiny_config).eval()


@pytest.fixture
def saved_lm(tmp_path, tiny_model, tokenizer):
    """A tiny language model and its tokenizer saved with save_pretrained, as a user would."""
    folder = tmp_path / "tiny-awd-lstm"
    tiny_model.generation_config.suppress_tokens = tokenizer.suppress_token_ids
    tiny_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
