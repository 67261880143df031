import json
import os
import subprocess
import sys
import textwrap


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

# Prepended to `run_without_ulmfit`'s programs: any import of `ulmfit` fails, as on a machine without the package.
ULMFIT_BLOCKER = """\
import sys

class BlockUlmfit:
    def find_spec(self, name, path=None, target=None):
        if name == "ulmfit" or name.startswith("ulmfit."):
            raise ImportError("ulmfit is blocked in this test")
        return None

sys.meta_path.insert(0, BlockUlmfit())
"""


@pytest.fixture(scope="session", autouse=True)
def single_thread():
    """Tiny models gain nothing from threads, and on a shared CPU OpenMP threads can wait on each other for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_without_ulmfit(tmp_path):
    """`run(child_code, *argv)` runs `child_code` in a fresh interpreter where `ulmfit` cannot be imported (offline,
    one thread, in tmp_path) and returns the JSON it printed on its last line."""

    def run(child_code: str, *argv) -> dict:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_MODULES_CACHE": str(tmp_path / "modules"),
            "OMP_NUM_THREADS": "1",
        }
        result = subprocess.run(
            [sys.executable, "-c", ULMFIT_BLOCKER + textwrap.dedent(child_code), *map(str, argv)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    return run


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
