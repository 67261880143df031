"""Decoding speed of a trained GRU translator, and its corpus BLEU/chrF on the held-out test pairs (no fastai).

The translator is a folder written by `scripts/train_translator.py`; the sentences are the first `--num_sentences`
(1,000) French sentences of the fixed Tatoeba test split shipped in the package (`ulmfit.samples.
translation_test_path()`, or `--test_file`). Timed from raw text to decoded text (tokenization and decoding included),
with the model's generation config (its `max_new_tokens`, `xxunk`/`xxpad`/`xxbos` suppressed):

1. sentences/s, greedy and beam search (`--num_beams` 4): batched (`--batch_size` 64 sentences, sorted by source
   length so that a batch holds sentences of similar length, results returned in input order) against one sentence at
   a time (`--single_sentences` of them); the share of sentences whose batched and single translations are identical
   (padding is masked, so they should all be);
2. the cost per generated token against the output length: one batch of `--length_batch_size` sentences decoded
   greedily for exactly L tokens (`min_new_tokens = max_new_tokens = L`, L in `--lengths` 10,40,160), median of
   `--repeats` runs, in milliseconds per decoder step. With the GRU state carried each step costs the same, whatever
   the length; for contrast, `use_cache=False` (the state is dropped, so every step re-decodes the whole prefix) is
   timed at `--no_state_lengths` (10,40);
3. with `--bleu`, corpus sacreBLEU (13a) and chrF of the batched greedy and beam translations against the English
   references (`ulmfit.metrics.load("bleu_chrf")`).

Everything runs in one process, on the threads torch was given (set OMP_NUM_THREADS), one measurement after the other.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/benchmarks/bench_translator_decoding.py \\
        --model runs/translator-fr-en --bleu
"""

import argparse
import statistics
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))


def translate_batched(model, tokenizer, texts, batch_size: int, **generate_kwargs) -> list[str]:
    """Translations of `texts` in input order, generated in batches of sentences of similar source length."""
    import torch

    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    translations = [None] * len(texts)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, return_tensors="pt")
            generated = model.generate(**batch, **generate_kwargs)
            for row, text in zip(rows, tokenizer.batch_decode(generated, skip_special_tokens=True)):
                translations[row] = text
    return translations


def translate_one_by_one(model, tokenizer, texts, **generate_kwargs) -> list[str]:
    """Translations of `texts`, one `generate()` call per sentence."""
    import torch

    translations = []
    with torch.no_grad():
        for text in texts:
            generated = model.generate(**tokenizer(text, return_tensors="pt"), **generate_kwargs)
            translations.append(tokenizer.decode(generated[0], skip_special_tokens=True))
    return translations


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a translator folder (train_translator.py)")
    parser.add_argument("--test_file", type=Path, default=None, help="parquet/csv pairs (default: the shipped test)")
    parser.add_argument("--source_column", default="fr")
    parser.add_argument("--target_column", default="en")
    parser.add_argument("--num_sentences", type=int, default=1000)
    parser.add_argument("--single_sentences", type=int, default=None, help="for the one-at-a-time loops (all)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--num_beams", type=int, default=4)
    parser.add_argument("--lengths", default="10,40,160", help="forced output lengths for the per-token cost")
    parser.add_argument("--no_state_lengths", default="10,40", help="the same without the state ('' to skip)")
    parser.add_argument("--length_batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bleu", action="store_true", help="corpus BLEU/chrF of the batched translations")
    args = parser.parse_args()

    import datasets
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from ulmfit import metrics
    from ulmfit.samples import translation_test_path

    test_file = str(args.test_file or translation_test_path())
    builder = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}.get(Path(test_file).suffix, "parquet")
    options = {"delimiter": "\t"} if test_file.endswith(".tsv") else {}
    pairs = datasets.load_dataset(builder, data_files=test_file, split="train", **options)
    pairs = pairs.select(range(min(args.num_sentences, len(pairs))))
    sources, references = pairs[args.source_column], pairs[args.target_column]
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    config = model.config
    print(
        f"{len(sources)} sentences of {test_file}; translator {config.embedding_size}/{config.hidden_size}/"
        f"{config.num_hidden_layers}, vocabularies {config.vocab_size} -> {config.decoder_vocab_size}, "
        f"max_new_tokens {model.generation_config.max_new_tokens}; torch threads {torch.get_num_threads()}"
    )
    translate_batched(model, tokenizer, sources[:8], 8)  # warm-up: first-call allocations, lazy imports

    # 1. Sentences per second, batched and one at a time, greedy and beam search
    single = sources[: args.single_sentences or len(sources)]
    speeds, outputs = {}, {}
    for name, kwargs in (("greedy", {"num_beams": 1}), (f"beam {args.num_beams}", {"num_beams": args.num_beams})):
        start = time.perf_counter()
        outputs[name] = translate_batched(model, tokenizer, sources, args.batch_size, **kwargs)
        speeds[(name, "batched")] = len(sources) / (time.perf_counter() - start)
        start = time.perf_counter()
        one_by_one = translate_one_by_one(model, tokenizer, single, **kwargs)
        speeds[(name, "single")] = len(single) / (time.perf_counter() - start)
        same = sum(a == b for a, b in zip(one_by_one, outputs[name])) / len(single)
        print(
            f"{name:<8} batched (batch {args.batch_size}) {speeds[(name, 'batched')]:8.1f} sentences/s | "
            f"one at a time {speeds[(name, 'single')]:7.1f} sentences/s | identical translations {same:.1%}",
            flush=True,
        )

    # 2. Cost per generated token against the output length (one batch, forced lengths)
    batch = tokenizer(sources[: args.length_batch_size], padding=True, return_tensors="pt")

    def milliseconds_per_step(length: int, use_cache: bool) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                generated = model.generate(
                    **batch, num_beams=1, min_new_tokens=length, max_new_tokens=length, use_cache=use_cache
                )
            times.append(time.perf_counter() - start)
            assert generated.size(1) == length + 1, generated.shape  # the start token, then exactly `length`
        return 1000 * statistics.median(times) / length

    lengths = [int(value) for value in args.lengths.split(",")]
    per_step = {length: milliseconds_per_step(length, True) for length in lengths}
    rows = batch["input_ids"].size(0)
    for length, ms in per_step.items():
        print(f"greedy, {rows} sentences, {length:>4} tokens: {ms:7.2f} ms per decoder step (state carried)")
    no_state = {
        int(value): milliseconds_per_step(int(value), False) for value in args.no_state_lengths.split(",") if value
    }
    for length, ms in no_state.items():
        print(f"greedy, {rows} sentences, {length:>4} tokens: {ms:7.2f} ms per decoder step (use_cache=False)")

    # 3. Quality, on the batched translations
    if args.bleu:
        metric = metrics.load("bleu_chrf")
        for name, predictions in outputs.items():
            result = metric.compute(predictions=predictions, references=references)
            print(f"{name:<8} BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f}  ({result['bleu_signature']})")
        for source, reference, greedy in list(zip(sources, references, outputs["greedy"]))[:5]:
            print(f"  {source}  ->  {greedy}   (reference: {reference})")

    # Ratios
    beam = f"beam {args.num_beams}"
    print("\nratios")
    print(f"greedy batched / one at a time:   {speeds[('greedy', 'batched')] / speeds[('greedy', 'single')]:.1f}x")
    print(f"{beam} batched / one at a time:   {speeds[(beam, 'batched')] / speeds[(beam, 'single')]:.1f}x")
    print(f"greedy / {beam}, batched:         {speeds[('greedy', 'batched')] / speeds[(beam, 'batched')]:.1f}x")
    first, last = lengths[0], lengths[-1]
    print(f"ms per step at {last} / at {first} tokens (state carried): {per_step[last] / per_step[first]:.2f}x")
    if len(no_state) > 1:
        short, long = min(no_state), max(no_state)
        print(f"ms per step at {long} / at {short} tokens (use_cache=False): {no_state[long] / no_state[short]:.2f}x")


if __name__ == "__main__":
    main()
