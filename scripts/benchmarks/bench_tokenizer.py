"""Fidelity and speed of ``ulmfit``'s pure-Python tokenizer against fastai's ``TokenizeWithRules(SpacyTokenizer())``.

Runs both tokenizers, single process and single thread, in the same run on the same documents (by default 2,000
IMDb test reviews drawn with a fixed seed), and reports:

* token agreement: ``difflib.SequenceMatcher(None, ours, theirs, autojunk=False)`` matching tokens, times 2,
  over the summed lengths, aggregated over the corpus; and the share of documents tokenized identically;
* documents per second of our ``tokenize`` (cold cache: the first pass over the documents; and warm) and of
  fastai (``TokenizeWithRules(SpacyTokenizer())`` over the whole list, and ``Tokenizer(SpacyTokenizer())``
  called per document); the ratio is taken against the *fastest* fastai path and our *cold* pass.

Needs the fastai venv (fastai 2.8 + spaCy)::

    /tmp/fastai-env/bin/python scripts/benchmarks/bench_tokenizer.py --n 2000 --seed 0

``--ours-only`` skips fastai (runs anywhere the package runs) and only reports our speed.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import random
import sys
import time
import types
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
PKG = "_ulmfit_awd_lstm_text"
MODULE = "text_processing_awd_lstm"


def load_ours():
    """Load our tokenizer module straight from its file.

    It is self-contained (stdlib + its sibling rule tables), so it is loaded as the only member of a stand-in
    package: importing ``ulmfit`` itself would pull in transformers/torch, which the fastai venv lacks.
    """
    pkg_dir = REPO / "src/ulmfit/models/awd_lstm"
    pkg = types.ModuleType(PKG)
    pkg.__path__ = [str(pkg_dir)]
    sys.modules[PKG] = pkg
    spec = importlib.util.spec_from_file_location(f"{PKG}.{MODULE}", pkg_dir / f"{MODULE}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_texts(path: Path, n: int, seed: int) -> list[str]:
    import pandas as pd

    texts = pd.read_parquet(path, columns=["text"])["text"].tolist()
    idx = random.Random(seed).sample(range(len(texts)), min(n, len(texts)))
    return [texts[i] for i in idx]


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def agreement(ours: list[list[str]], theirs: list[list[str]]) -> tuple[float, float, list[int]]:
    matched = total = identical = 0
    differing = []
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        total += len(a) + len(b)
        if a == b:
            matched += len(a)
            identical += 1
            continue
        differing.append(i)
        sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
        matched += sum(block.size for block in sm.get_matching_blocks())
    return 2 * matched / max(total, 1), identical / max(len(ours), 1), differing


def show_diff(i: int, text: str, a: list[str], b: list[str], context: int = 3) -> None:
    print(f"--- doc {i}: ours={len(a)} tokens, fastai={len(b)} tokens")
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag != "equal":
            print(
                f"  {tag}: ours={a[max(i1 - context, 0) : i2 + context]!r}\n"
                f"  {' ' * len(tag)}  fastai={b[max(j1 - context, 0) : j2 + context]!r}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/imdb/test.parquet"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-repeats", type=int, default=3, help="extra passes of ours with a warm cache")
    parser.add_argument("--show-diffs", type=int, default=10, help="print this many differing documents")
    parser.add_argument("--ours-only", action="store_true", help="do not run fastai (no agreement reported)")
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the tokenizers backend: single thread too
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:  # the whole package, when transformers is installed in this venv: then the user-facing path is timed too
        sys.path.insert(0, str(REPO / "src"))
        from ulmfit import AwdLstmTokenizer
        from ulmfit.models.awd_lstm import text_processing_awd_lstm as ours_mod
    except ImportError:
        AwdLstmTokenizer = None
        ours_mod = load_ours()
    texts = load_texts(args.data, args.n, args.seed)
    n = len(texts)
    print(f"{n} documents from {args.data} (seed {args.seed}), {sum(map(len, texts)) / n:.0f} chars/doc on average")

    def run_ours(docs):
        return [ours_mod.tokenize(t) for t in docs]

    ours_mod._cache.clear()  # cold start, like a freshly built spaCy tokenizer
    ours_mod._piece_cache.clear()
    ours, t_cold = timed(run_ours, texts)
    t_warm = min(timed(run_ours, texts)[1] for _ in range(max(args.warm_repeats, 1)))
    rows = [("ours tokenize (cold cache)", n / t_cold), ("ours tokenize (warm cache)", n / t_warm)]
    if AwdLstmTokenizer is not None:
        # The user-facing path, text -> ids: a vocabulary trained on other reviews (the train split), then one
        # batched call over the documents, with the word caches emptied first (cold) and again after (warm).
        train_texts = load_texts(args.data.with_name("train.parquet"), 5000, args.seed)
        hf_tokenizer = AwdLstmTokenizer.train(train_texts, num_proc=1)
        ours_mod._cache.clear()
        ours_mod._piece_cache.clear()
        _, t_hf_cold = timed(hf_tokenizer, texts)
        t_hf_warm = min(timed(hf_tokenizer, texts)[1] for _ in range(max(args.warm_repeats, 1)))
        rows += [("ours AwdLstmTokenizer(texts) -> ids (cold)", n / t_hf_cold), ("  same, warm cache", n / t_hf_warm)]

    if not args.ours_only:
        import torch
        from fastai.text.core import SpacyTokenizer, Tokenizer, TokenizeWithRules

        torch.set_num_threads(1)
        twr = TokenizeWithRules(SpacyTokenizer())
        theirs, t_twr = timed(lambda docs: [list(toks) for toks in twr(docs)], texts)
        tok = Tokenizer(SpacyTokenizer())  # the same rules, without the post-rule replace_space
        theirs_tok, t_tok = timed(lambda docs: [tok(t) for t in docs], texts)
        agree_tok, identical_tok, _ = agreement(
            [[t.replace("▁", " ") for t in doc] for doc in ours], [list(doc) for doc in theirs_tok]
        )
        rows += [("fastai TokenizeWithRules(SpacyTokenizer())", n / t_twr), ("fastai Tokenizer per doc", n / t_tok)]
        fastai_dps = max(n / t_twr, n / t_tok)

        agree, identical, differing = agreement(ours, theirs)
        for i in differing[: args.show_diffs]:
            show_diff(i, texts[i], ours[i], theirs[i])

    print(f"\n{'path':<45} {'docs/s':>10} {'vs fastai':>10}")
    for name, dps in rows:
        ratio = "" if args.ours_only else f"{dps / fastai_dps:9.1f}x"
        print(f"{name:<45} {dps:>10.0f} {ratio:>10}")
    if not args.ours_only:
        print(
            f"agreement with Tokenizer(SpacyTokenizer()) per doc: {100 * agree_tok:.3f}% tokens, "
            f"{100 * identical_tok:.2f}% identical documents"
        )
    if args.ours_only:
        print(f"\nours={n / t_cold:.0f} docs/s (warm {n / t_warm:.0f} docs/s)")
    else:
        print(
            f"\nagreement={100 * agree:.3f}% identical_docs={100 * identical:.2f}% ours={n / t_cold:.0f} docs/s "
            f"fastai={fastai_dps:.0f} docs/s ratio={fastai_dps and (n / t_cold) / fastai_dps:.1f}x"
        )


if __name__ == "__main__":
    main()
