"""Text generation, 100-token continuations: fastai's `LMLearner.predict` against ulmfit's `generate`, same weights.

The language model (by default the small AWD-LSTM shipped in the package, 200/300/3, vocabulary 9,000; or any ulmfit
LM folder; or random weights of a given size, e.g. fastai's default 400/1152/3 with 60,000 words) is copied into
fastai's `language_model_learner` (same vocabulary and architecture, strict `load_state_dict`), saved there with
`learn.save`, and converted back with `ulmfit.models.awd_lstm.convert_fastai_checkpoint`: both sides hold the
same weights by construction, which the script checks (largest logit difference on a prompt) before timing anything.

Timed, from prompt text to generated text (tokenization and decoding included on both sides), tokens per second:

- fastai `learn.predict(prompt, n_words=100)`, its defaults: sampling from the full softmax (temperature 1, `no_unk`),
  re-reading the whole text for every new word (`only_last_word=False`);
- ulmfit `model.generate(max_new_tokens=100, do_sample=True, top_k=0)`: the same sampling (full softmax, temperature 1,
  `xxunk`/`xxpad` suppressed; `min_new_tokens=100` so both write exactly 100 tokens), O(1) work per token with the
  recurrent state carried; then greedy decoding, and all prompts as one left-padded batch;
- for reference, fastai's `only_last_word=True`, which feeds one word per step but whose `ModelResetter` callback
  resets the LSTM state at every `get_preds`, so each word is predicted from the previous word alone (not the same
  computation; shown because it is fastai's fastest path).

Each number is the median of `--repeats` runs per prompt, both sides in one process on the same threads, one after
the other. The ratio is ulmfit's sampled tokens/s over fastai's default `predict` (target >= 10x).

    /tmp/fastai-env/bin/python scripts/benchmarks/bench_generation.py
    /tmp/fastai-env/bin/python scripts/benchmarks/bench_generation.py --model runs/imdb-lm --repeats 5
    /tmp/fastai-env/bin/python scripts/benchmarks/bench_generation.py --size 400,1152,3,60000   # fastai's default size
"""

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPTS = [
    "This movie was",
    "I watched it last night and",
    "The acting is terrible, the plot makes no sense, and",
    "If you like horror films, you will",
    "My favourite scene is the one where",
    "The director's previous film was much better because",
    "Honestly, the best thing about this film is",
    "I can't recommend it:",
]


def fastai_learner(model, vocab: list[str], folder: Path):
    """fastai's language model learner with the vocabulary, architecture and weights of an ulmfit LM (eval mode)."""
    import pandas as pd
    from bench_classifier_inference import to_fastai_state_dict
    from fastai.text.all import (
        AWD_LSTM,
        ColReader,
        DataBlock,
        RandomSplitter,
        TextBlock,
        awd_lstm_lm_config,
        language_model_learner,
    )

    config = model.config
    # a few rows only: fastai needs DataLoaders to build a Learner (and `predict` tokenizes through them)
    frame = pd.DataFrame({"text": PROMPTS * 4})
    block = DataBlock(
        blocks=TextBlock.from_df("text", vocab=vocab, is_lm=True, n_workers=1),
        get_x=ColReader("text"),
        splitter=RandomSplitter(0.25, seed=0),
    )
    dls = block.dataloaders(frame, bs=4, seq_len=16, num_workers=0)
    architecture = dict(
        awd_lstm_lm_config,
        emb_sz=config.embedding_size,
        n_hid=config.hidden_size,
        n_layers=config.num_hidden_layers,
        tie_weights=config.tie_word_embeddings,
        out_bias=config.lm_head_bias,
    )
    learn = language_model_learner(dls, AWD_LSTM, config=architecture, pretrained=False, path=folder, model_dir=".")
    state = to_fastai_state_dict({name: tensor.float() for name, tensor in model.state_dict().items()}, "0.")
    learn.model.load_state_dict(state, strict=True)
    learn.model.eval()
    return learn


def median_seconds(function, repeats: int) -> float:
    """Median wall time of `repeats` calls, after one warm-up call; the seed is fixed before each."""
    import torch

    torch.manual_seed(0)
    function()
    times = []
    for repeat in range(repeats):
        torch.manual_seed(repeat)
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="an ulmfit LM folder (default: the one shipped in ulmfit)")
    parser.add_argument(
        "--size",
        default=None,
        help="EMBEDDING,HIDDEN,LAYERS,VOCAB: random weights of this size instead of a trained model (speed only), "
        "e.g. 400,1152,3,60000 for fastai's default architecture (the WikiText-103 model's size)",
    )
    parser.add_argument("--num_prompts", type=int, default=4, help="prompts timed one by one (at most 8)")
    parser.add_argument("--batch_prompts", type=int, default=8, help="prompts in the batched generate")
    parser.add_argument("--new_tokens", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="runs per prompt; the median is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ulmfit import AwdLstmConfig, AwdLstmForCausalLM
    from ulmfit.models.awd_lstm.convert_fastai_checkpoint import convert_fastai_checkpoint
    from ulmfit.samples import pretrained_language_model_path

    if args.threads:
        torch.set_num_threads(args.threads)
    source = args.model or pretrained_language_model_path()
    original = AutoModelForCausalLM.from_pretrained(source).eval()
    vocab = [
        token for token, _ in sorted(AutoTokenizer.from_pretrained(source).get_vocab().items(), key=lambda x: x[1])
    ]
    if args.size:
        embedding_size, hidden_size, num_layers, vocab_size = (int(value) for value in args.size.split(","))
        vocab = (vocab + [f"word{index}" for index in range(vocab_size)])[:vocab_size]  # the real words first
        torch.manual_seed(0)
        original = AwdLstmForCausalLM(
            AwdLstmConfig(
                vocab_size=vocab_size,
                embedding_size=embedding_size,
                hidden_size=hidden_size,
                num_hidden_layers=num_layers,
            )
        ).eval()

    # 1. Same weights on both sides: ulmfit -> fastai learner -> learn.save -> convert_fastai_checkpoint -> ulmfit
    folder = Path(tempfile.mkdtemp())
    learn = fastai_learner(original, vocab, folder)
    learn.save("lm", with_opt=False)
    model, tokenizer = convert_fastai_checkpoint(folder / "lm.pth", vocab)
    prompt_ids = tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    with torch.no_grad():
        learn.model.reset()
        difference = (model(prompt_ids).logits - learn.model(prompt_ids)[0]).abs().max().item()
    config = model.config
    print(
        f"AWD-LSTM {config.embedding_size}/{config.hidden_size}/{config.num_hidden_layers}, vocabulary "
        f"{config.vocab_size}; {args.new_tokens} new tokens per prompt; torch threads {torch.get_num_threads()}; "
        f"largest logit difference fastai vs converted: {difference:.1e}"
    )

    new = args.new_tokens
    sampling = dict(max_new_tokens=new, min_new_tokens=new, do_sample=True, top_k=0, top_p=1.0, temperature=1.0)

    def ours(prompts: list[str], **generation):
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            ids = model.generate(**batch, **generation)
        assert ids.shape[1] - batch.input_ids.shape[1] == new
        return tokenizer.batch_decode(ids[:, batch.input_ids.shape[1] :], skip_special_tokens=True)

    def fastai_predict(prompt: str, only_last_word: bool = False):
        with learn.no_bar(), learn.no_logging():
            return learn.predict(prompt, n_words=new, no_bar=True, only_last_word=only_last_word)

    # 2. One prompt at a time
    columns = ("fastai predict", "fastai last word", "ulmfit sample", "ulmfit greedy")
    print(f"\n{'prompt':<40}" + "".join(f"{name:>18}" for name in columns) + f"{'ratio':>9}   (tokens/s)")
    rates = {name: [] for name in columns}
    for prompt in PROMPTS[: args.num_prompts]:
        timings = {
            "fastai predict": median_seconds(lambda p=prompt: fastai_predict(p), args.repeats),
            "fastai last word": median_seconds(lambda p=prompt: fastai_predict(p, True), args.repeats),
            "ulmfit sample": median_seconds(lambda p=prompt: ours([p], **sampling), args.repeats),
            "ulmfit greedy": median_seconds(
                lambda p=prompt: ours([p], max_new_tokens=new, min_new_tokens=new, do_sample=False), args.repeats
            ),
        }
        for name, seconds in timings.items():
            rates[name].append(new / seconds)
        ratio = rates["ulmfit sample"][-1] / rates["fastai predict"][-1]
        label = prompt if len(prompt) <= 38 else prompt[:35] + "..."
        print(f"{label:<40}" + "".join(f"{rates[name][-1]:>18.1f}" for name in columns) + f"{ratio:>8.1f}x")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{'median over prompts':<40}" + "".join(f"{medians[name]:>18.1f}" for name in columns))

    # 3. Several prompts at once (fastai's predict takes one text: its loop over them is the comparison)
    batch = PROMPTS[: args.batch_prompts]
    batched = len(batch) * new / median_seconds(lambda: ours(batch, **sampling), args.repeats)
    print(f"\nulmfit generate, {len(batch)} prompts as one batch (sampling): {batched:.1f} tokens/s")

    ratios = {
        "sampling, like for like": medians["ulmfit sample"] / medians["fastai predict"],
        "greedy": medians["ulmfit greedy"] / medians["fastai predict"],
        f"batch of {len(batch)}, sampling": batched / medians["fastai predict"],
        "vs fastai only_last_word": medians["ulmfit sample"] / medians["fastai last word"],
    }
    print("\nulmfit vs fastai `learn.predict` (median over prompts):")
    for name, ratio in ratios.items():
        print(f"  {name + ':':<30}{ratio:6.1f}x" + ("  (target >= 10x)" if name.startswith("sampling") else ""))


if __name__ == "__main__":
    main()
