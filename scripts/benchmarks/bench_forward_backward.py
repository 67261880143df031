"""Forward, backward and forward+backward ULMFiT classifiers on IMDb reviews (no fastai).

The paper's best IMDb result (95.4 %, Howard & Ruder 2018 §4) averages the probabilities of a classifier on a forward
language model and one on a backward language model (the text read from its last token to its first). This script
scores the two classifiers alone and `ForwardBackwardEnsemble` (their average, the forward model's share `--weight`)
through the package's `accuracy` and `f1` `evaluate` modules, on

- IMDb test reviews (`--imdb_dir`/test.parquet, `--num_docs` drawn with `random_state=0`, as the other benchmarks), and
- optionally a labelled file of your own (`--eval_file`, e.g. the demo's `data/heldout.parquet`).

On each set it also compares the average with the forward classifier review by review: how many reviews only one of
the two gets right, and the exact McNemar p-value of that split (is the gain more than chance?).

The two folders are what `scripts/demo.py` (or `scripts/train_classifier.py`) writes, one run from the shipped
forward AWD-LSTM and one from a backward AWD-LSTM (`scripts/train_language_model.py --backwards`):

    PYTHONPATH=src python scripts/benchmarks/bench_forward_backward.py \\
        --forward outputs/demo-ulmfit/classifier --backward outputs/demo-ulmfit-bwd/classifier \\
        --eval_file outputs/demo-ulmfit/data/heldout.parquet
"""

import argparse
import math
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))


def score(name: str, predictions: list[str], references: list[str], label2id: dict[str, int]) -> dict:
    from ulmfit import metrics

    predicted = [label2id[p] for p in predictions]
    expected = [label2id[r] for r in references]
    accuracy = metrics.load("accuracy").compute(predictions=predicted, references=expected)["accuracy"]
    average = "binary" if len(label2id) == 2 else "macro"  # the Hub's f1 refuses "binary" for more than two labels
    f1 = metrics.load("f1").compute(predictions=predicted, references=expected, average=average)["f1"]
    print(f"  {name:<18} accuracy {accuracy:.2%}  F1 {f1:.4f}", flush=True)
    return {"accuracy": accuracy, "f1": f1}


def paired_comparison(name: str, other: list[str], base: list[str], references: list[str]) -> dict:
    """
    How often `other` is right where `base` is wrong and the reverse, on the same reviews, and the exact two-sided
    McNemar p-value (a binomial test on the reviews where only one of the two is right): a gain is only worth quoting
    when it is unlikely under "both are equally good".
    """
    only_other = sum(o == r != b for o, b, r in zip(other, base, references))
    only_base = sum(b == r != o for o, b, r in zip(other, base, references))
    disagreements, fewer = only_other + only_base, min(only_other, only_base)
    tail = sum(math.comb(disagreements, k) for k in range(fewer + 1)) / 2**disagreements if disagreements else 1.0
    p_value = min(1.0, 2 * tail)
    print(f"  {name}: right only there {only_other}, only in forward {only_base}, McNemar p = {p_value:.3g}")
    return {"only_other": only_other, "only_forward": only_base, "p_value": p_value}


def evaluate_set(title: str, texts: list[str], references: list[str], ensemble, batch_size: int) -> dict:
    print(f"{title}: {len(texts)} reviews", flush=True)
    label2id = ensemble.forward.model.config.label2id
    unknown = sorted(set(references) - set(label2id))
    if unknown:
        raise ValueError(f"{title}: labels {unknown} are not among the classifiers' labels {sorted(label2id)}.")
    start = time.perf_counter()
    forward = ensemble.forward(texts, batch_size=batch_size, top_k=None)
    backward = ensemble.backward(texts, batch_size=batch_size, top_k=None)
    averaged = ensemble.average(forward, backward, top_k=1)
    seconds = time.perf_counter() - start
    predicted = {
        name: [r[0]["label"] for r in results]
        for name, results in (("forward", forward), ("backward", backward), ("forward+backward", averaged))
    }
    results = {name: score(name, labels, references, label2id) for name, labels in predicted.items()}
    results["forward+backward vs forward"] = paired_comparison(
        "forward+backward vs forward", predicted["forward+backward"], predicted["forward"], references
    )
    print(f"  ({seconds:.1f} s for both classifiers)", flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forward", required=True, help="the forward classifier's folder")
    parser.add_argument("--backward", required=True, help="the backward classifier's folder")
    parser.add_argument("--weight", type=float, default=0.5, help="the forward model's share of the average")
    parser.add_argument("--imdb_dir", type=Path, default=REPO.parent / "shared" / "data" / "imdb")
    parser.add_argument("--num_docs", type=int, default=2000, help="IMDb test reviews (0: none)")
    parser.add_argument("--eval_file", type=Path, default=None, help="a labelled parquet file (text, label)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--imdb_labels", default="negative,positive", help="the classifiers' names of IMDb's 0 and 1")
    args = parser.parse_args()

    import pandas as pd

    from ulmfit.pipelines import ForwardBackwardEnsemble

    ensemble = ForwardBackwardEnsemble(args.forward, args.backward, weight=args.weight)
    if not ensemble.backward.tokenizer.backwards or ensemble.forward.tokenizer.backwards:
        raise ValueError("`--forward` must be a forward classifier and `--backward` a backward one.")
    imdb_names = dict(enumerate(args.imdb_labels.split(",")))
    if args.eval_file is not None:
        frame = pd.read_parquet(args.eval_file)
        evaluate_set(str(args.eval_file), frame["text"].tolist(), frame["label"].tolist(), ensemble, args.batch_size)
    if args.num_docs:
        reviews = pd.read_parquet(args.imdb_dir / "test.parquet").sample(n=args.num_docs, random_state=0)
        references = [imdb_names[int(label)] for label in reviews["label"]]
        evaluate_set("IMDb test", reviews["text"].tolist(), references, ensemble, args.batch_size)


if __name__ == "__main__":
    main()
