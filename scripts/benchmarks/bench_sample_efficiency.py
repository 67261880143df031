"""Sample efficiency of ULMFiT on IMDb (Howard & Ruder 2018, Figure 3) at CPU scale.

The paper: with 100 labelled IMDb reviews ULMFiT matches a model trained from scratch on 10x more data, and on 100x
more when its language model is first fine-tuned on 50k unlabelled reviews. This script draws that curve: test error
rate against the number of labelled training reviews, for three lines that share architecture, tokenizer and recipe.

- `scratch`: an `AwdLstmForCausalLM` with random weights (the shipped LM's config, its tokenizer), whose encoder the
  classifier starts from; no language-model training at all.
- `supervised`: the shipped LM fine-tuned (`scripts/train_language_model.py`) on the n labelled texts only.
- `semi`: the shipped LM fine-tuned once on the largest size's labelled texts plus `--semi_unsup` IMDb unsup reviews,
  then reused at every size. In the semi-supervised setting all of those texts are unlabelled LM data, so this is
  the paper's protocol with a smaller unlabelled corpus.

The shipped LM (`ulmfit.samples.pretrained_language_model_path()`) is a small AWD-LSTM pretrained on IMDb's 50k unsup
reviews, not WikiText-103: `semi` re-reads reviews that LM was pretrained on, so it can gain less over `supervised`
than in the paper.

Protocol. A balanced pool of max(--sizes) IMDb train reviews is drawn with `--seed`; each size takes the first n/2
of each class, so the sizes are nested (the 100 are inside the 500, ...). A fixed validation file of `--num_validation`
other train reviews (balanced, disjoint from the pool) is passed to the classifier script, which does not select
models with it. Every classifier is scored on the project's standard 2,000 IMDb test reviews
(`test.parquet`.sample(n=2000, random_state=0)) through `pipeline("text-classification")`.

Recipe (`scripts/demo.py`'s): the LM is fine-tuned with `--frozen_epochs 1 --num_train_epochs 10`, frozen rate 2e-2,
rate 2e-3, batch 32, stopped at `--lm_steps` optimizer steps (`--semi_lm_steps` for the semi LM; the script splits
them 1:10 between its two stages). The classifier uses gradual unfreezing 1,2,3,all with peak rates
2e-2,1e-2,5e-3,2.5e-3, batch 32; each stage runs e = max(1, ceil(--min_stage_steps / floor(n / 32))) epochs (the
classifier script drops the last partial batch), so small
sizes still get at least `--min_stage_steps` optimizer steps a stage; e depends on n only, the same for the 3 lines.

The defaults fit about 40 minutes on one CPU thread; 5,000 labelled reviews (a classifier step on 32 whole reviews
takes ~2 s there) would need about an hour more, so it is left to `--sizes 100,500,1000,5000`.

Each finished cell is cached as JSON under `--output_dir`/cells, so a rerun skips it (delete the file to redo one).

    cd <repo> && HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 \\
        PYTHONPATH=src python scripts/benchmarks/bench_sample_efficiency.py --sizes 100,500,1000 \\
        --output_dir /tmp/se_runs
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
SENTIMENT = {0: "negative", 1: "positive"}
LINES = ("scratch", "supervised", "semi")
LABELS = {"scratch": "from scratch", "supervised": "ULMFiT, supervised", "semi": "ULMFiT, semi-supervised"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb_dir", type=Path, default=REPO.parent / "shared" / "data" / "imdb")
    parser.add_argument("--sizes", default="100,500,1000", help="labelled training reviews, even, ascending")
    parser.add_argument("--lines", default=",".join(LINES), help="which of scratch,supervised,semi to run")
    parser.add_argument("--output_dir", type=Path, default=Path("/tmp/sample-efficiency"), help="runs and cache")
    parser.add_argument("--results", type=Path, default=REPO / "scripts/benchmarks/results/sample_efficiency.json")
    parser.add_argument("--plot", type=Path, default=REPO / "scripts/benchmarks/results/sample_efficiency.png")
    parser.add_argument("--semi_unsup", type=int, default=3000, help="K unsup reviews for the semi-supervised LM")
    parser.add_argument("--lm_steps", type=int, default=60, help="LM fine-tuning steps of the supervised LMs")
    parser.add_argument("--semi_lm_steps", type=int, default=180, help="LM fine-tuning steps of the semi LM")
    parser.add_argument("--min_stage_steps", type=int, default=12, help="fewest optimizer steps a classifier stage")
    parser.add_argument("--learning_rates", default="2e-2,1e-2,5e-3,2.5e-3")
    parser.add_argument("--num_validation", type=int, default=100, help="scored every epoch: kept small")
    parser.add_argument("--num_test", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads here and in the training scripts")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def prepare_data(args, data_dir: Path) -> None:
    """Nested balanced training sets, LM corpora, the validation file; written once."""
    import pandas as pd

    sizes = [int(n) for n in args.sizes.split(",")]
    if data_dir.joinpath("done").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    train = pd.read_parquet(args.imdb_dir / "train.parquet", columns=["text", "label"])
    largest, half_validation = max(sizes), args.num_validation // 2
    # each class shuffled once with the seed: size n takes its first n/2, validation comes after the largest pool
    classes = [train[train.label == label].sample(frac=1, random_state=args.seed) for label in (0, 1)]
    named = lambda frame: frame.assign(label=frame.label.map(SENTIMENT)).reset_index(drop=True)  # noqa: E731
    for n in sizes:
        subset = pd.concat([c.iloc[: n // 2] for c in classes]).sample(frac=1, random_state=args.seed)
        named(subset).to_parquet(data_dir / f"train-{n}.parquet")
        subset[["text"]].reset_index(drop=True).to_parquet(data_dir / f"lm-{n}.parquet")
    validation = pd.concat([c.iloc[largest // 2 : largest // 2 + half_validation] for c in classes])
    named(validation).to_parquet(data_dir / "validation.parquet")
    unsup = pd.read_parquet(args.imdb_dir / "unsup.parquet", columns=["text"])
    unsup = unsup.sample(n=args.semi_unsup, random_state=args.seed)
    semi = pd.concat([pd.read_parquet(data_dir / f"lm-{largest}.parquet"), unsup]).sample(frac=1, random_state=0)
    semi.reset_index(drop=True).to_parquet(data_dir / "lm-semi.parquet")
    data_dir.joinpath("done").write_text("")


def run_script(args, script: str, *flags) -> float:
    """Run a training script of this checkout as its own process on `--threads` threads; its wall time."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, str(REPO / "scripts" / script), *map(str, flags)]
    print(f"$ {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - start


def scratch_model(args, folder: Path) -> Path:
    """The shipped LM's config and tokenizer with randomly initialised weights."""
    if not folder.joinpath("config.json").exists():
        import torch
        from transformers import AutoConfig, AutoTokenizer

        from ulmfit import AwdLstmForCausalLM
        from ulmfit.samples import pretrained_language_model_path

        torch.manual_seed(args.seed)
        source = pretrained_language_model_path()
        AwdLstmForCausalLM(AutoConfig.from_pretrained(source)).save_pretrained(folder)
        AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def fine_tune_language_model(args, corpus: Path, folder: Path, steps: int) -> float:
    """The demo's LM fine-tuning of the shipped LM; seconds it took (cached next to the model)."""
    from ulmfit.samples import pretrained_language_model_path

    timing = folder / "bench_seconds.json"
    if timing.exists():
        return json.loads(timing.read_text())["seconds"]
    seconds = run_script(
        args,
        "train_language_model.py",
        *("--model_name_or_path", pretrained_language_model_path(), "--output_dir", folder),
        *("--train_file", corpus, "--validation_split_percentage", 5, "--per_device_train_batch_size", 32),
        *("--frozen_epochs", 1, "--num_train_epochs", 10, "--max_train_steps", steps),
        *("--frozen_learning_rate", 2e-2, "--learning_rate", 2e-3, "--logging_steps", 20),
        *("--seed", args.seed, "--overwrite_output_dir", "--cpu"),
    )
    timing.write_text(json.dumps({"seconds": seconds, "steps": steps}))
    return seconds


def score(classifier: Path, texts: list[str], references: list[str]) -> float:
    """Accuracy on the test reviews through the text-classification pipeline."""
    from transformers import pipeline

    import ulmfit  # noqa: F401  (registers the AWD-LSTM pipeline)

    classify = pipeline("text-classification", model=str(classifier), device="cpu")
    predictions = classify(texts, batch_size=64)
    return sum(p["label"] == r for p, r in zip(predictions, references, strict=True)) / len(references)


def stage_epochs(args, n: int) -> int:
    """Epochs of a classifier stage: at least `--min_stage_steps` steps of 32 (the last partial batch is dropped)."""
    return max(1, math.ceil(args.min_stage_steps / (n // 32)))


def run_cell(args, line: str, n: int, test) -> dict:
    """Train (LM if needed, then classifier) and score one (line, size) cell; cached as JSON."""
    cache = args.output_dir / "cells" / f"{line}-{n}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    data, runs = args.output_dir / "data", args.output_dir / "runs"
    largest = max(int(s) for s in args.sizes.split(","))
    lm_seconds, lm_steps = 0.0, 0
    if line == "scratch":
        encoder = scratch_model(args, runs / "lm-scratch")
    elif line == "supervised":
        encoder, lm_steps = runs / f"lm-supervised-{n}", args.lm_steps
        lm_seconds = fine_tune_language_model(args, data / f"lm-{n}.parquet", encoder, lm_steps)
    else:
        encoder, lm_steps = runs / "lm-semi", args.semi_lm_steps
        lm_seconds = fine_tune_language_model(args, data / "lm-semi.parquet", encoder, lm_steps)
    classifier, epochs = runs / f"classifier-{line}-{n}", stage_epochs(args, n)
    train_seconds = run_script(
        args,
        "train_classifier.py",
        *("--model_name_or_path", encoder, "--output_dir", classifier),
        *("--train_file", data / f"train-{n}.parquet", "--validation_file", data / "validation.parquet"),
        *("--unfreeze", "1,2,3,all", "--learning_rates", args.learning_rates, "--epochs", ",".join([str(epochs)] * 4)),
        *("--per_device_train_batch_size", 32, "--seed", args.seed, "--overwrite_output_dir", "--cpu"),
    )
    start = time.perf_counter()
    accuracy = score(classifier, *test)
    result = {
        "line": line,
        "size": n,
        "accuracy": accuracy,
        "error_rate": 1 - accuracy,
        "classifier_train_seconds": round(train_seconds, 1),
        "lm_fine_tune_seconds": round(lm_seconds, 1),
        "lm_fine_tune_steps": lm_steps,
        "lm_corpus_texts": {"scratch": 0, "supervised": n, "semi": largest + args.semi_unsup}[line],
        "epochs_per_stage": epochs,
        "steps_per_stage": epochs * (n // 32),
        "score_seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result), flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=2))
    return result


def plot(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for line in LINES:
        points = sorted((c["size"], 100 * c["error_rate"]) for c in cells if c["line"] == line)
        if points:
            axes.plot(*zip(*points), marker="o", label=LABELS[line])
    axes.set_xscale("log")
    axes.set_xlabel("number of labelled training examples")
    axes.set_ylabel("test error rate (%)")
    axes.set_title("IMDb sample efficiency (2,000 test reviews, CPU scale)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main():
    args = parse_args()
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    sizes = sorted(int(n) for n in args.sizes.split(","))
    if any(n % 2 or n < 32 for n in sizes):
        raise SystemExit(f"--sizes must be even (balanced) and at least one batch of 32, got {args.sizes!r}.")
    prepare_data(args, args.output_dir / "data")
    reviews = pd.read_parquet(args.imdb_dir / "test.parquet").sample(n=args.num_test, random_state=0)
    test = (reviews["text"].tolist(), [SENTIMENT[int(label)] for label in reviews["label"]])
    lines = [line for line in LINES if line in args.lines.split(",")]
    cells = [run_cell(args, line, n, test) for n in sizes for line in lines]

    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report = {"settings": settings, "wall_seconds_this_run": round(time.perf_counter() - started, 1), "cells": cells}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    plot(cells, args.plot)
    print(f"\n{'size':>6}  " + "  ".join(f"{LABELS[line]:>24}" for line in lines))
    for n in sizes:
        row = {c["line"]: c for c in cells if c["size"] == n}
        print(f"{n:>6}  " + "  ".join(f"{100 * row[line]['error_rate']:>23.1f}%" for line in lines))
    print(f"results: {args.results}; plot: {args.plot}")


if __name__ == "__main__":
    main()
