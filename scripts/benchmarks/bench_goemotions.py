"""GoEmotions (28 emotions, 1-5 per Reddit comment): multi-label ULMFiT against a linear baseline, on a CPU.

The data: `train.parquet` (43,410 comments) and `validation.parquet` (5,426) of `--data_dir`, columns `text`,
`labels` (a list of emotion names) and `id`. The official test split is held back: every number here is on the
validation split, which also picks the decision thresholds (as the baseline's anchor does). The saved models keep
their thresholds in the config, so the test split is scored later with `--score_only MODEL_DIR --test_file F`.

The parts (`--parts`), run one after the other on `--threads` threads, each cached in `--results` when it finishes
(a re-run skips the parts already there unless `--rerun`):

- `baseline`: TF-IDF (1-2-grams, sublinear tf, min_df 2) and one-vs-rest logistic regression (C 4, balanced class
  weights), one decision threshold for all labels chosen on validation for macro-F1 (grid 0.02..0.98, step 0.01).
  Wall time: fit, validation probabilities and the threshold search.
- `ulmfit`: ULMFiT without language-model fine-tuning: `scripts/train_classifier.py` from the small AWD-LSTM shipped
  in the package (`ulmfit.samples.pretrained_language_model_path()`, 200/300/3, vocabulary 9,000, pretrained on IMDb
  reviews: another domain and vocabulary than Reddit), gradual unfreezing (1, 2, 3, all layer groups),
  discriminative learning rates, one-cycle schedules, binary cross-entropy.
- `ulmfit_lm`: ULMFiT's stage 2 first: `scripts/train_language_model.py` fine-tunes that language model on the
  training comments (5 % of them held out for its validation perplexity), with a vocabulary rebuilt from the
  comments (`--train_tokenizer`; rows of known words copied, new words start from the mean embedding), a frozen
  epoch then every layer; then the same classifier recipe from the fine-tuned model.

For both ULMFiT parts, the saved classifier's validation probabilities are read back here and scored with two
threshold schemes, chosen by `ulmfit.training.classification.choose_thresholds`: one global threshold, and one per
label. Validation picks and scores the thresholds, so both are optimistic; the "cross-fitted" macro-F1 picks them on
one half of validation and scores the other half (both ways, averaged), a fairer guess of the test number. The
scheme with the better cross-fitted macro-F1 is written into the saved model's config (`label_thresholds`).
With `--test_file` (and no `--score_only`) the baseline also scores that file at its validation threshold.
`--variant +pos_weight --pos_weight auto` runs the classifier again with positive-class weights under another name;
`--language_model` reuses the language model an earlier `ulmfit_lm` run fine-tuned (its time is not counted again).

The runs of 2026-12-07 (`results/goemotions.json`; the machine was busy with other jobs: the times are upper bounds),
a smoke run, and the scoring of a saved classifier on the test split:

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/benchmarks/bench_goemotions.py --output_dir runs/goemotions
    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/benchmarks/bench_goemotions.py --output_dir runs/goemotions \\
        --parts ulmfit_lm --variant +pos_weight --pos_weight auto \\
        --language_model runs/goemotions/ulmfit_lm/language-model
    PYTHONPATH=src python scripts/benchmarks/bench_goemotions.py --max_train_samples 640 --max_eval_samples 256 \\
        --lm_max_steps 6 --classifier_epochs 1,1,1,1 --output_dir /tmp/ge_smoke --results /tmp/ge_smoke.json
    PYTHONPATH=src python scripts/benchmarks/bench_goemotions.py \\
        --score_only runs/goemotions/ulmfit_lm/classifier --test_file ../shared/data/goemotions/test.parquet
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
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import ulmfit  # noqa: F401  (registers the AWD-LSTM classes with the Auto* factories)
from ulmfit.samples import pretrained_language_model_path
from ulmfit.training.classification import choose_thresholds, multi_label_scores


HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PARTS = ("baseline", "ulmfit", "ulmfit_lm")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, default=REPO.parent / "shared" / "data" / "goemotions")
    parser.add_argument("--output_dir", type=Path, default=Path("runs/goemotions"), help="models and logs")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "goemotions.json")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    parser.add_argument("--rerun", action="store_true", help="run the parts already in --results again")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP/BLAS threads, here and in the scripts")
    parser.add_argument("--max_train_samples", type=int, default=None, help="the first N training comments only")
    parser.add_argument("--max_eval_samples", type=int, default=None, help="the first N validation comments only")
    parser.add_argument("--batch_size", type=int, default=64, help="classifier: comments per batch")
    parser.add_argument("--classifier_epochs", default="1,1,1,2", help="epochs of each gradual-unfreezing stage")
    parser.add_argument("--classifier_learning_rates", default="2e-2,1e-2,5e-3,2.5e-3", help="peak rate per stage")
    parser.add_argument("--pos_weight", default=None, help="`auto`: train_classifier.py's positive-class weights")
    parser.add_argument("--variant", default="", help="suffix of the parts' names and folders (e.g. `+pos_weight`)")
    parser.add_argument("--language_model", type=Path, default=None, help="ulmfit_lm: reuse this fine-tuned LM")
    parser.add_argument("--lm_epochs", type=int, default=2, help="LM fine-tuning: epochs with every layer")
    parser.add_argument("--lm_frozen_epochs", type=int, default=1, help="LM fine-tuning: epochs of the frozen stage")
    parser.add_argument("--lm_max_steps", type=int, default=None, help="LM fine-tuning: stop after N steps")
    parser.add_argument("--lm_batch_size", type=int, default=64, help="LM fine-tuning: rows of the token stream")
    parser.add_argument("--max_vocab", type=int, default=60000, help="LM fine-tuning: vocabulary size cap (fastai)")
    parser.add_argument("--min_freq", type=int, default=3, help="LM fine-tuning: fewest occurrences of a kept word")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--score_only", type=Path, default=None, help="score this saved classifier, train nothing")
    parser.add_argument("--test_file", type=Path, default=None, help="a labelled parquet file (the test split)")
    return parser.parse_args(argv)


def read_split(path: Path, limit: int | None = None) -> pd.DataFrame:
    frame = pd.read_parquet(path, columns=["text", "labels"])
    return frame.iloc[:limit].reset_index(drop=True) if limit else frame


def multi_hot(tag_lists, names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = {tag for tags in tag_lists for tag in tags} - index.keys()
    if unknown:
        raise ValueError(f"labels the model does not know: {sorted(unknown)}")
    references = np.zeros((len(tag_lists), len(names)), dtype=np.float32)
    for row, tags in enumerate(tag_lists):
        references[row, [index[tag] for tag in tags]] = 1
    return references


def summary(scores: dict, thresholds) -> dict:
    """The headline metrics of `multi_label_scores`, rounded, with the thresholds they were taken at."""
    shown = [round(t, 2) for t in thresholds] if isinstance(thresholds, list) else round(float(thresholds), 2)
    kept = ("macro_f1", "micro_f1", "subset_accuracy", "hamming_loss")
    return {**{k: round(float(scores[k]), 4) for k in kept if k in scores}, "thresholds": shown}


def cross_fitted_macro_f1(probabilities, references, per_label: bool, seed: int) -> float:
    """Thresholds chosen on one random half of the data and scored on the other, both ways: the mean macro-F1."""
    order = np.random.default_rng(seed).permutation(len(references))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    results = []
    for pick, score in (halves, halves[::-1]):
        chosen = choose_thresholds(probabilities[pick], references[pick], per_label)
        predicted = probabilities[score] >= np.asarray(chosen)
        truth = references[score].astype(bool)
        f1 = 2 * (predicted & truth).sum(0) / np.maximum(predicted.sum(0) + truth.sum(0), 1)
        results.append(f1.mean())
    return round(float(np.mean(results)), 4)


def threshold_schemes(probabilities, references, names: list[str], seed: int) -> dict:
    """Global and per-label thresholds chosen on these probabilities, each with its scores and cross-fitted F1."""
    schemes = {}
    for scheme, per_label in (("global", False), ("per_label", True)):
        thresholds = choose_thresholds(probabilities, references, per_label)
        scores = multi_label_scores(probabilities, references, thresholds, names)
        schemes[scheme] = {
            **summary(scores, thresholds),
            "cross_fitted_macro_f1": cross_fitted_macro_f1(probabilities, references, per_label, seed),
            "per_label_f1": {name: round(value, 4) for name, value in scores["per_label_f1"].items()},
        }
    return schemes


def run_baseline(train, validation, names: list[str], seed: int, test: pd.DataFrame | None = None) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    features = vectorizer.fit_transform(train["text"])
    classifier = OneVsRestClassifier(LogisticRegression(C=4, class_weight="balanced", max_iter=1000))
    classifier.fit(features, multi_hot(train["labels"], names))
    probabilities = classifier.predict_proba(vectorizer.transform(validation["text"]))
    references = multi_hot(validation["labels"], names)
    threshold = choose_thresholds(probabilities, references)
    scores = multi_label_scores(probabilities, references, threshold, names)
    seconds = time.perf_counter() - started
    result = {
        "settings": "TF-IDF 1-2-grams, sublinear tf, min_df 2; OvR LogisticRegression(C=4, class_weight=balanced, "
        f"lbfgs, max_iter 1000); {features.shape[1]} features",
        "global": {
            **summary(scores, threshold),
            "cross_fitted_macro_f1": cross_fitted_macro_f1(probabilities, references, False, seed),
        },
        "macro_f1_at_0_5": round(float(multi_label_scores(probabilities, references, 0.5, names)["macro_f1"]), 4),
        "wall_seconds": round(seconds, 1),
        "per_label_f1": {name: round(value, 4) for name, value in scores["per_label_f1"].items()},
    }
    if test is not None:  # the same model and threshold on the test split, for the ULMFiT models' `--score_only`
        test_probabilities = classifier.predict_proba(vectorizer.transform(test["text"]))
        test_references = multi_hot(test["labels"], names)
        result["test"] = summary(multi_label_scores(test_probabilities, test_references, threshold, names), threshold)
    return result


@torch.no_grad()
def predict_probabilities(model_dir: Path, texts: list[str], batch_size: int = 128):
    """A saved classifier's sigmoid outputs for `texts` (batches sorted by length), its label names and thresholds."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    ids = tokenizer(list(texts)).input_ids
    order = np.argsort([len(row) for row in ids], kind="stable")
    probabilities = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = tokenizer.pad([{"input_ids": ids[i]} for i in rows], return_tensors="pt")
        probabilities[rows] = model(**batch).logits.float().sigmoid().numpy()
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return probabilities, names, model.config.thresholds()


def run_script(script: str, log: Path, *args) -> float:
    """One of the training scripts in its own process (its output to `log`); returns its wall time."""
    command = [sys.executable, str(REPO / "scripts" / script), *map(str, args)]
    print(f"$ {' '.join(command[1:])}   > {log}", flush=True)
    started = time.perf_counter()
    with open(log, "w") as stream:
        finished = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT)
    if finished.returncode:
        sys.exit(f"{script} failed (exit status {finished.returncode}); see {log}")
    return time.perf_counter() - started


def run_ulmfit(args, files: dict, validation: pd.DataFrame, part: str) -> dict:
    folder = args.output_dir / part
    folder.mkdir(parents=True, exist_ok=True)
    result, model = {}, pretrained_language_model_path()
    if part.startswith("ulmfit_lm") and args.language_model:  # stage 2 done by an earlier run: not timed again
        result["lm_reused"] = str(args.language_model.resolve())
        model = args.language_model
    elif part.startswith("ulmfit_lm"):
        lm_dir = folder / "language-model"
        lm_args = [
            *("--model_name_or_path", model, "--output_dir", lm_dir, "--train_file", files["lm"]),
            *("--validation_split_percentage", 5, "--train_tokenizer", "--max_vocab", args.max_vocab),
            *("--min_freq", args.min_freq, "--frozen_epochs", args.lm_frozen_epochs),
            *("--num_train_epochs", args.lm_epochs, "--per_device_train_batch_size", args.lm_batch_size),
            *("--seed", args.seed, "--cpu", "--overwrite_output_dir"),
        ]
        if args.lm_max_steps:
            lm_args += ["--max_train_steps", args.lm_max_steps]
        result["lm_wall_seconds"] = round(run_script("train_language_model.py", folder / "lm.log", *lm_args), 1)
        lm_results = json.loads((lm_dir / "all_results.json").read_text())
        result["lm_results"] = {k: v for k, v in lm_results.items() if isinstance(v, (int, float))}
        result["lm_vocab_size"] = json.loads((lm_dir / "config.json").read_text())["vocab_size"]
        model = lm_dir
    classifier_dir = folder / "classifier"
    classifier_args = [
        *("--model_name_or_path", model, "--output_dir", classifier_dir),
        *("--train_file", files["train"], "--validation_file", files["validation"], "--label_column", "labels"),
        *("--per_device_train_batch_size", args.batch_size, "--per_device_eval_batch_size", 128),
        *("--unfreeze", "1,2,3,all", "--epochs", args.classifier_epochs),
        *("--learning_rates", args.classifier_learning_rates, "--seed", args.seed, "--cpu", "--overwrite_output_dir"),
    ]
    if args.pos_weight:
        classifier_args += ["--pos_weight", args.pos_weight]
    seconds = run_script("train_classifier.py", folder / "classifier.log", *classifier_args)
    result["classifier_wall_seconds"] = round(seconds, 1)
    result["wall_seconds"] = round(result.get("lm_wall_seconds", 0) + seconds, 1)
    script_results = json.loads((classifier_dir / "all_results.json").read_text())
    result["script_results"] = {k: v for k, v in script_results.items() if k != "eval_per_label_f1"}

    # both threshold schemes from the saved model's validation probabilities; the better one (cross-fitted) is kept
    probabilities, names, _ = predict_probabilities(classifier_dir, validation["text"])
    schemes = threshold_schemes(probabilities, multi_hot(validation["labels"], names), names, args.seed)
    kept = max(schemes, key=lambda scheme: schemes[scheme]["cross_fitted_macro_f1"])
    config_path = classifier_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["label_thresholds"] = schemes[kept]["thresholds"]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    settings = f"batch {args.batch_size}, stages 1,2,3,all, epochs {args.classifier_epochs}, peak rates "
    settings += f"{args.classifier_learning_rates}, one-cycle, pos_weight {args.pos_weight}"
    return {**result, **schemes, "kept_scheme": kept, "model_dir": str(classifier_dir.resolve()), "settings": settings}


def score_only(args) -> dict:
    frame = read_split(args.test_file)
    probabilities, names, thresholds = predict_probabilities(args.score_only, frame["text"])
    scores = multi_label_scores(probabilities, multi_hot(frame["labels"], names), thresholds, names)
    result = {**summary(scores, thresholds), "per_label_f1": scores["per_label_f1"]}
    result.update(model=str(args.score_only), test_file=str(args.test_file), documents=len(frame))
    print(json.dumps(result, indent=2))
    return result


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(args.threads)  # read by the training scripts this process starts
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.score_only:
        return score_only(args)
    parts = [part.strip() for part in args.parts.split(",")]
    if set(parts) - set(PARTS):
        sys.exit(f"--parts: unknown {sorted(set(parts) - set(PARTS))}; choose among {', '.join(PARTS)}")
    names = (args.data_dir / "labels.txt").read_text(encoding="utf-8").split()
    train = read_split(args.data_dir / "train.parquet", args.max_train_samples)
    validation = read_split(args.data_dir / "validation.parquet", args.max_eval_samples)
    data = args.output_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = {"train": data / "train.parquet", "validation": data / "validation.parquet", "lm": data / "lm.parquet"}
    train.to_parquet(files["train"])
    validation.to_parquet(files["validation"])
    train[["text"]].to_parquet(files["lm"])

    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    results["protocol"] = {
        "data": str(args.data_dir), "train_documents": len(train), "validation_documents": len(validation),
        "threads": args.threads, "seed": args.seed, "torch": torch.__version__,
        "scores": "validation split; thresholds chosen on it for macro-F1 (grid 0.02..0.98 step 0.01)",
    }  # fmt: skip
    for part in (part + args.variant for part in parts):
        if part in results and not args.rerun:
            print(f"{part}: cached in {args.results}, skipped (--rerun to run it again)")
            continue
        print(f"--- {part} ({time.strftime('%H:%M:%S')})", flush=True)
        if part.startswith("baseline"):
            test = read_split(args.test_file) if args.test_file else None
            results[part] = run_baseline(train, validation, names, args.seed, test)
        else:
            results[part] = run_ulmfit(args, files, validation, part)
        results[part]["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
        shown = {k: v for k, v in results[part].items() if k not in ("per_label_f1", "script_results", "lm_results")}
        print(json.dumps(shown, default=str)[:1500], flush=True)
    return results


if __name__ == "__main__":
    main()
