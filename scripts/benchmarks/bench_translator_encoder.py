"""Training-step and encoder speed of the GRU translator: all-bidirectional encoder vs Google NMT's first layer only.

Lesson 11 notes that Google's NMT (Wu et al. 2016) makes only the first encoder layer bidirectional;
`GruSeq2SeqConfig(encoder_bidirectional_layers=1)` does that (the layers above are unidirectional GRUs of
`2 * hidden_size` units). This script times, on real Tatoeba batches, both encoders of the default size:

1. a training step (forward with labels, backward, AdamW step) at teacher forcing 1.0 and 0.5, and
2. the encoder alone (no gradients), as in `generate()`,

the two models alternating batch by batch (A, B, A, B, ...) so that a load change on the machine hits both alike;
the median over `--steps` batches is reported with the ratio. BLEU is measured by training each with
`scripts/train_translator.py` (see scripts/benchmarks/README.md); this script only measures speed and size.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/benchmarks/bench_translator_encoder.py \\
        --tokenizer runs/translator-fr-en --train_file runs/data/tatoeba-fr-en/train.parquet
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))


def batches(tokenizer, sources, targets, batch_size: int, count: int, seed: int = 0):
    """`count` batches of `batch_size` random pairs, each sorted by length as the training script's sortish sampler."""
    import random

    rng = random.Random(seed)
    for _ in range(count):
        rows = sorted(rng.sample(range(len(sources)), batch_size), key=lambda i: len(sources[i]))
        yield tokenizer(
            [sources[i] for i in rows], text_target=[targets[i] for i in rows], padding=True, return_tensors="pt"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="a translator folder (or tokenizer) trained on the pairs")
    parser.add_argument("--train_file", type=Path, required=True, help="parquet of pairs (fr, en columns)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60, help="timed batches per model and setting")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    import pandas as pd
    import torch
    from transformers import AutoTokenizer

    from ulmfit import GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    pairs = pd.read_parquet(args.train_file)
    sources, targets = pairs["fr"].tolist(), pairs["en"].tolist()
    models = {}
    for name, layers in (("all bidirectional (default)", None), ("first layer bidirectional", 1)):
        torch.manual_seed(0)
        config = GruSeq2SeqConfig(
            vocab_size=tokenizer.vocab_size,
            decoder_vocab_size=tokenizer.target_vocab_size,
            encoder_bidirectional_layers=layers,
        )
        model = GruSeq2SeqForConditionalGeneration(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        encoder_parameters = sum(p.numel() for p in model.get_encoder().parameters())
        models[name] = (model, optimizer, encoder_parameters)

    results = {"threads": torch.get_num_threads(), "batch_size": args.batch_size, "steps": args.steps, "timings": {}}
    for setting in ("train, teacher forcing 1.0", "train, teacher forcing 0.5", "encoder only"):
        times = {name: [] for name in models}
        data = batches(tokenizer, sources, targets, args.batch_size, args.warmup + args.steps)
        for index, batch in enumerate(data):
            for name, (model, optimizer, _) in models.items():
                start = time.perf_counter()
                if setting == "encoder only":
                    model.eval()
                    with torch.no_grad():
                        model.get_encoder()(batch["input_ids"], batch["attention_mask"])
                else:
                    model.train()
                    ratio = 1.0 if setting.endswith("1.0") else 0.5
                    model(**batch, teacher_forcing_ratio=ratio).loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
                if index >= args.warmup:
                    times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
        base = medians["all bidirectional (default)"]
        results["timings"][setting] = {name: round(ms, 2) for name, ms in medians.items()}
        print(setting)
        for name, ms in medians.items():
            print(f"  {name:<28} {ms:8.2f} ms/batch   x{base / ms:.2f} the default's speed", flush=True)
    results["encoder_parameters"] = {name: parameters for name, (_, _, parameters) in models.items()}
    for name, parameters in results["encoder_parameters"].items():
        print(f"  {name:<28} encoder parameters {parameters:,}")
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
