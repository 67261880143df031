"""Raw text to ids: `AwdLstmTokenizer(tokenizer_type="unigram" | "bpe")` against fastai's two text pipelines.

One process, one thread, the same documents (by default 2,000 IMDb test reviews drawn with a fixed seed), each side
timed from raw strings to token ids:

* ours: `AwdLstmTokenizer.train(corpus, tokenizer_type=..., vocab_size=...)`, then one batched call over the
  documents (fastai's rules in Python, then the `tokenizers` Unigram/BPE model);
* fastai `Tokenizer(SpacyTokenizer())` (its default, English words; `TokenizeWithRules` over the list, the fastest
  of its spaCy paths) then `Numericalize` with a vocabulary built on the corpus;
* fastai `SentencePieceTokenizer(vocab_sz=...)` (its subword path, rules then SentencePiece's unigram model) trained
  on the same corpus, then `Numericalize`.

The corpus the tokenizers are trained on is `--train_n` reviews of IMDb's train split (never the timed documents);
training time is reported but not part of the speed ratio. Needs the fastai venv with `sentencepiece`:

    /tmp/fastai-env/bin/pip install sentencepiece
    /tmp/fastai-env/bin/python scripts/benchmarks/bench_subword_tokenizer.py --n 2000 --vocab_size 15000
"""

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def load_texts(path: Path, n: int, seed: int) -> list[str]:
    import pandas as pd

    texts = pd.read_parquet(path, columns=["text"])["text"].tolist()
    return [texts[i] for i in random.Random(seed).sample(range(len(texts)), min(n, len(texts)))]


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb_dir", type=Path, default=REPO.parent / "shared" / "data" / "imdb")
    parser.add_argument("--n", type=int, default=2000, help="timed test reviews")
    parser.add_argument("--train_n", type=int, default=10000, help="train reviews the tokenizers learn from")
    parser.add_argument("--vocab_size", type=int, default=15000)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each side (the fastest is kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the tokenizers backend: one thread too
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO / "src"))
    import torch
    from fastai.text.all import Numericalize, SentencePieceTokenizer, SpacyTokenizer, TokenizeWithRules

    from ulmfit import AwdLstmTokenizer

    torch.set_num_threads(1)
    texts = load_texts(args.imdb_dir / "test.parquet", args.n, args.seed)
    corpus = load_texts(args.imdb_dir / "train.parquet", args.train_n, args.seed)
    print(f"{len(texts)} timed documents ({sum(map(len, texts)) / len(texts):.0f} chars each), {len(corpus)} to train")

    def best(function):
        result, seconds = timed(function, texts)
        for _ in range(args.repeats - 1):
            seconds = min(seconds, timed(function, texts)[1])
        return result, seconds

    rows, trained = [], {}
    for kind in ("unigram", "bpe"):
        tokenizer, trained[kind] = timed(
            lambda kind=kind: AwdLstmTokenizer.train(
                corpus, tokenizer_type=kind, vocab_size=args.vocab_size, num_proc=1
            )
        )
        ids, seconds = best(lambda docs, tokenizer=tokenizer: tokenizer(docs)["input_ids"])
        pieces = sum(map(len, ids)) / len(ids)
        rows.append((f"ours {kind} (AwdLstmTokenizer)", seconds, pieces))

    spacy_rules = TokenizeWithRules(SpacyTokenizer())
    words = [list(tokens) for tokens in spacy_rules(corpus)]
    numericalize = Numericalize(min_freq=3, max_vocab=60000)
    numericalize.setup(words)
    _, seconds = best(lambda docs: [numericalize(list(tokens)) for tokens in spacy_rules(docs)])
    rows.append(("fastai Tokenizer(SpacyTokenizer()) + Numericalize", seconds, None))

    with tempfile.TemporaryDirectory() as cache:
        sentencepiece = SentencePieceTokenizer(vocab_sz=args.vocab_size, cache_dir=cache)
        (_, trained["fastai sentencepiece"]) = timed(lambda: sentencepiece.setup(corpus))
        piece_rules = TokenizeWithRules(sentencepiece)
        pieces_corpus = [list(tokens) for tokens in piece_rules(corpus[:2000])]
        piece_numericalize = Numericalize(min_freq=1, max_vocab=args.vocab_size + 100)
        piece_numericalize.setup(pieces_corpus)
        ids, seconds = best(lambda docs: [piece_numericalize(list(tokens)) for tokens in piece_rules(docs)])
        rows.append(("fastai SentencePieceTokenizer + Numericalize", seconds, sum(map(len, ids)) / len(ids)))

    spacy_seconds = rows[2][1]
    piece_seconds = rows[3][1]
    print(f"\n{'raw text -> ids':<52} {'docs/s':>8} {'x spaCy':>8} {'x SentencePiece':>16} {'tokens/doc':>11}")
    for name, seconds, length in rows:
        shown = f"{length:.0f}" if length else ""
        speed = f"{len(texts) / seconds:>8.0f} {spacy_seconds / seconds:>7.1f}x {piece_seconds / seconds:>15.1f}x"
        print(f"{name:<52} {speed} {shown:>11}")
    print("training the tokenizers on the corpus: " + ", ".join(f"{k} {v:.1f} s" for k, v in trained.items()))


if __name__ == "__main__":
    main()
