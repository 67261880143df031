"""IMDb star ratings (1-4 and 7-10) as regression and as 8-class classification: ULMFiT against TF-IDF baselines.

The data: `train.parquet` and `test.parquet` of `--imdb_dir` (25,000 reviews each; columns `text`, `label`, `id`,
`rating`). The train reviews are shuffled once (seed 0): the first 500 are the validation reviews, the next
`--train_size` the training subset (drawn at random, not balanced over ratings). Every model is scored on the
project's standard 2,000 test reviews, `test.parquet` sampled with `n=2000, random_state=0`; the baselines are also
scored on all 25,000 test reviews (`*_test25k` fields).

The parts (`--parts`), run one after the other on `--threads` threads, each cached in `--results` when it finishes
(a re-run skips the parts already there unless `--rerun`):

- `ridge_subset`, `logistic_subset`: TF-IDF (1-2-grams, sublinear tf, min_df 2, fitted on the training texts) with
  ridge regression on the rating (alpha chosen on the validation reviews for MAE from 0.03, 0.1, 0.3, 1, 3), or with
  multinomial logistic regression over the 8 ratings (C chosen for accuracy from 1, 4, 16), trained on the training
  subset. Wall time: vectoriser, the grid, the choice (and the refit below), not the test scoring.
- `ridge_full`, `logistic_full`: the same, the grid fitted on the 24,500 train reviews that are not validation
  reviews, then the chosen value refitted on all 25,000 (the validation reviews included).
- `regression`: `scripts/train_classifier.py --label_column rating --problem_type regression --normalize_target`
  (MSE) from the small AWD-LSTM shipped in the package (`ulmfit.samples.pretrained_language_model_path()`,
  200/300/3, vocabulary 9,000, pretrained on IMDb's unlabelled reviews), without language-model fine-tuning, with
  the demo's classifier recipe: gradual unfreezing 1,2,3,all, peak rates 2e-2,1e-2,5e-3,2.5e-3, one epoch each,
  one-cycle schedules, batch 32. `regression_huber` is the same with `--loss huber`.
- `classification`: the same recipe on the ratings as 8 classes (an int column; classes "1".."10"). Scored by
  accuracy and macro-F1, and as a rating predictor twice: the predicted class's rating (argmax) and the
  probability-weighted expected rating (softmax of the logits times the 8 ratings).

ULMFiT wall times are the training script's process (tokenisation, training, per-epoch validation, saving); test
scoring is timed separately (`test_seconds`).

    cd <repo> && HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=src \\
        python scripts/benchmarks/bench_imdb_ratings.py --train_size 3000 --output_dir /tmp/ir_runs \\
        --parts ridge_subset,logistic_subset,regression,classification,ridge_full,logistic_full
    ... --parts regression_huber          # the same run's Huber variant, added to the same --results
    ... --train_size 100 --num_test 100 --max_eval_samples 50 --output_dir /tmp/ir_smoke --results /tmp/s.json

The first two commands (OMP_NUM_THREADS=1, 2 shared CPU cores) gave `results/imdb_ratings.json`; the table and its
reading are in `scripts/benchmarks/README.md`.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import pearsonr, spearmanr
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import ulmfit  # noqa: F401  (registers the AWD-LSTM classes with the Auto* factories)
from ulmfit.samples import pretrained_language_model_path


HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASELINES = ("ridge_subset", "logistic_subset", "ridge_full", "logistic_full")
PARTS = (*BASELINES, "regression", "regression_huber", "classification")
NUM_VALIDATION, NUM_TEST = 500, 2000


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb_dir", type=Path, default=REPO.parent / "shared" / "data" / "imdb")
    parser.add_argument("--train_size", type=int, default=3000, help="training reviews (after the 500 validation)")
    parser.add_argument("--output_dir", type=Path, default=Path("runs/bench-imdb-ratings"))
    parser.add_argument("--results", type=Path, default=HERE / "results" / "imdb_ratings.json")
    parser.add_argument(
        "--parts", default="ridge_subset,logistic_subset,regression,classification,ridge_full,logistic_full"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", default="1,1,1,1", help="epochs of each gradual-unfreezing stage")
    parser.add_argument("--learning_rates", default="2e-2,1e-2,5e-3,2.5e-3", help="peak rate of each stage")
    parser.add_argument("--max_eval_samples", type=int, default=None, help="smoke runs: fewer validation reviews")
    parser.add_argument("--num_test", type=int, default=NUM_TEST, help="smoke runs: fewer test reviews")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rerun", action="store_true", help="run the parts already in --results again")
    return parser.parse_args(argv)


def rating_scores(predictions, ratings) -> dict:
    predictions, ratings = np.asarray(predictions, dtype=np.float64), np.asarray(ratings, dtype=np.float64)
    return {
        "mae": float(np.abs(predictions - ratings).mean()),
        "rmse": float(np.sqrt(((predictions - ratings) ** 2).mean())),
        "pearson": float(pearsonr(predictions, ratings)[0]),
        "spearman": float(spearmanr(predictions, ratings)[0]),
    }


def class_scores(probabilities, classes: np.ndarray, ratings) -> dict:
    """Accuracy, macro-F1, and both rating predictors of an 8-class model (`probabilities`: documents x classes)."""
    from sklearn.metrics import f1_score

    predicted = classes[probabilities.argmax(axis=1)]
    return {
        "accuracy": float((predicted == np.asarray(ratings)).mean()),
        "macro_f1": float(f1_score(ratings, predicted, average="macro")),
        "argmax_rating": rating_scores(predicted, ratings),
        "expected_rating": rating_scores(probabilities @ classes, ratings),
    }


def tfidf(texts):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    return vectorizer, vectorizer.fit_transform(texts)


def run_baseline(model: str, fit: pd.DataFrame, validation: pd.DataFrame, refit, tests: dict) -> dict:
    """TF-IDF + ridge (`model="ridge"`) or + logistic regression (`"logistic"`): the grid is fitted on `fit` and
    chosen on `validation`, then (when `refit` is given) the chosen value is refitted on `refit`."""
    from sklearn.linear_model import LogisticRegression, Ridge

    started = time.perf_counter()
    vectorizer, features = tfidf(fit["text"])
    valid = vectorizer.transform(validation["text"])
    if model == "ridge":
        name, make = "alpha", lambda alpha: Ridge(alpha=alpha)
        grid = {alpha: make(alpha).fit(features, fit["rating"]) for alpha in (0.03, 0.1, 0.3, 1.0, 3.0)}
        chosen = {a: rating_scores(m.predict(valid), validation["rating"])["mae"] for a, m in grid.items()}
        value = min(chosen, key=chosen.get)
    else:
        name, make = "C", lambda c: LogisticRegression(C=c, max_iter=1000)
        grid = {c: make(c).fit(features, fit["rating"]) for c in (1.0, 4.0, 16.0)}
        chosen = {c: float((m.predict(valid) == validation["rating"]).mean()) for c, m in grid.items()}
        value = max(chosen, key=chosen.get)
    estimator = grid[value]
    if refit is not None:  # the chosen value on every review
        vectorizer, features = tfidf(refit["text"])
        estimator = make(value).fit(features, refit["rating"])
    result = {name: value, "validation_" + ("mae" if model == "ridge" else "accuracy"): chosen}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result["train_documents"] = len(fit if refit is None else refit)
    for split, frame in tests.items():
        features = vectorizer.transform(frame["text"])
        if model == "ridge":
            result[split] = rating_scores(estimator.predict(features), frame["rating"])
        else:
            classes = estimator.classes_.astype(np.float64)
            result[split] = class_scores(estimator.predict_proba(features), classes, frame["rating"])
    return result


@torch.no_grad()
def predict_logits(model_dir: Path, texts: list[str], batch_size: int = 64):
    """A saved model's outputs for `texts` (batches sorted by length; a regression's in the target's units)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    ids = tokenizer(list(texts)).input_ids
    order = np.argsort([len(row) for row in ids], kind="stable")
    logits = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = tokenizer.pad([{"input_ids": ids[i]} for i in rows], return_tensors="pt")
        logits[rows] = model(**batch).logits.float().numpy()
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return logits, names, float(np.mean([len(row) for row in ids]))


def run_ulmfit(args, part: str, files: dict, test: pd.DataFrame) -> dict:
    """`scripts/train_classifier.py` in its own process (output to a log), then the saved model on the test reviews."""
    folder = args.output_dir / part
    folder.mkdir(parents=True, exist_ok=True)
    kind = ["--problem_type", "regression", "--normalize_target"] if part.startswith("regression") else []
    if part == "regression_huber":
        kind += ["--loss", "huber"]
    command = [
        *(sys.executable, REPO / "scripts" / "train_classifier.py"),
        *("--model_name_or_path", pretrained_language_model_path(), "--output_dir", folder / "model"),
        *("--train_file", files["train"], "--validation_file", files["validation"], "--label_column", "rating"),
        *kind,
        *("--unfreeze", "1,2,3,all", "--epochs", args.epochs, "--learning_rates", args.learning_rates),
        *("--per_device_train_batch_size", 32, "--per_device_eval_batch_size", 64),
        *("--seed", args.seed, "--cpu", "--overwrite_output_dir"),
    ]
    if args.max_eval_samples:
        command += ["--max_eval_samples", args.max_eval_samples]
    command = [str(value) for value in command]
    print(f"$ {' '.join(command[1:])}   > {folder / 'train.log'}", flush=True)
    started = time.perf_counter()
    with open(folder / "train.log", "w") as log:
        finished = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if finished.returncode:
        sys.exit(f"train_classifier.py failed (exit status {finished.returncode}); see {folder / 'train.log'}")
    result = {"wall_seconds": round(time.perf_counter() - started, 1)}
    script_results = json.loads((folder / "model" / "all_results.json").read_text())
    result["script_results"] = {k: v for k, v in script_results.items() if isinstance(v, (int, float, str))}

    started = time.perf_counter()
    logits, names, mean_tokens = predict_logits(folder / "model", test["text"])
    result.update(test_seconds=round(time.perf_counter() - started, 1), test_mean_tokens=round(mean_tokens, 1))
    if part.startswith("regression"):
        result["test"] = rating_scores(logits[:, 0], test["rating"])
    else:
        probabilities = torch.from_numpy(logits).softmax(-1).numpy().astype(np.float64)
        result["classes"] = names
        result["test"] = class_scores(probabilities, np.array([float(name) for name in names]), test["rating"])
    result["model_dir"] = str((folder / "model").resolve())
    result["settings"] = f"stages 1,2,3,all, epochs {args.epochs}, peak rates {args.learning_rates}, one-cycle, "
    result["settings"] += f"batch 32, {' '.join(kind) or 'cross-entropy'}, no LM fine-tuning"
    return result


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(args.threads)  # read by the training script this process starts
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parts = [part.strip() for part in args.parts.split(",")]
    if set(parts) - set(PARTS):
        sys.exit(f"--parts: unknown {sorted(set(parts) - set(PARTS))}; choose among {', '.join(PARTS)}")

    columns = ["text", "rating"]
    everything = pd.read_parquet(args.imdb_dir / "train.parquet", columns=columns).sample(frac=1.0, random_state=0)
    validation, rest = everything.iloc[:NUM_VALIDATION], everything.iloc[NUM_VALIDATION:]
    train = rest.iloc[: args.train_size]
    test_all = pd.read_parquet(args.imdb_dir / "test.parquet", columns=columns)
    test = test_all.sample(n=NUM_TEST, random_state=0).iloc[: args.num_test]
    data = args.output_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = {"train": data / "train.parquet", "validation": data / "validation.parquet"}
    train.to_parquet(files["train"], index=False)
    validation.to_parquet(files["validation"], index=False)

    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    results["protocol"] = {
        "data": str(args.imdb_dir), "train_documents": len(train), "validation_documents": len(validation),
        "test_documents": len(test), "split": "train shuffled with random_state=0: first 500 validation, next "
        "train_size the subset; test: test.parquet.sample(n=2000, random_state=0); *_test25k: all 25,000",
        "threads": args.threads, "seed": args.seed, "torch": torch.__version__,
        "language_model": "ulmfit.samples.pretrained_language_model_path() (no LM fine-tuning)",
    }  # fmt: skip
    for part in parts:
        if part in results and not args.rerun:
            print(f"{part}: cached in {args.results}, skipped (--rerun to run it again)")
            continue
        print(f"--- {part} ({time.strftime('%H:%M:%S')})", flush=True)
        if part in BASELINES:
            model, full = part.split("_")
            fit, refit = (rest, everything) if full == "full" else (train, None)
            results[part] = run_baseline(model, fit, validation, refit, {"test": test, "test25k": test_all})
        else:
            results[part] = run_ulmfit(args, part, files, test)
        results[part]["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results[part], default=str)[:2000], flush=True)
    return results


if __name__ == "__main__":
    main()
