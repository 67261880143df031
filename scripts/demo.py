"""The main job: ULMFiT end to end on the IMDb sample shipped in the package, on a CPU, in a few minutes.

1. The data: the sample's 4,000 labelled reviews (IMDb train split) are cut once, with a fixed seed, into 3,500 to
   train on and 500 held out; the language model reads the 3,500 and the sample's 1,000 unlabelled reviews.
2. Language-model fine-tuning (`scripts/train_language_model.py`): the small AWD-LSTM pretrained on IMDb's unsup
   split that ships in the package (`ulmfit.samples.pretrained_language_model_path()`, see its model card) is
   fine-tuned on those 4,500 texts: a frozen stage, then every layer with discriminative learning rates.
3. The classifier (`scripts/train_classifier.py`): the fine-tuned encoder with a new concat-pooling head, trained on
   the 3,500 labelled reviews with gradual unfreezing, discriminative learning rates and one-cycle schedules,
   documents read whole with BPT3C.
4. Predictions through `pipeline("text-classification")`: accuracy on the 500 held-out reviews, and a few examples.

The last line printed is the classifier's folder: `pipeline("text-classification", model=<that line>)` loads it.

`--tokenizer_type unigram` (or `bpe`) swaps the shipped word-level vocabulary for a subword one of `--vocab_size`
pieces, trained on the language-model texts (`--train_tokenizer`): the shipped model's LSTM weights carry over, and a
piece takes the embedding row of the word it spells ("▁the" that of "the"); other pieces start from the mean row
(fastai's `match_embeds`) and the step-2 fine-tuning has to learn them. That measures a new vocabulary on a word-level
pretrained model, not a subword-pretrained one.

    python scripts/demo.py                      # about 6 minutes on 2 CPU cores
    python scripts/demo.py --lm_steps 20 --mixed_precision bf16     # a quicker look
    python scripts/demo.py --tokenizer_type unigram --vocab_size 8000      # a subword vocabulary
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from datasets import concatenate_datasets
from transformers import pipeline

from ulmfit.samples import load_imdb_sample, pretrained_language_model_path
from ulmfit.training import script_steps
from ulmfit.training.script_steps import UsageError


SCRIPTS = Path(__file__).resolve().parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/demo-ulmfit"))
    parser.add_argument("--language_model", default=None, help="default: the small AWD-LSTM shipped in the package")
    parser.add_argument("--lm_steps", type=int, default=120, help="optimizer steps of language-model fine-tuning")
    parser.add_argument("--classifier_epochs", default="1,1,1,1", help="epochs of each gradual-unfreezing stage")
    parser.add_argument(
        "--classifier_learning_rates", default="2e-2,1e-2,5e-3,2.5e-3", help="peak learning rate of each stage"
    )
    parser.add_argument(
        "--mixed_precision", default="no", choices=("no", "bf16"), help="no | bf16 (faster on CPUs with AVX512-BF16)"
    )
    parser.add_argument(
        "--tokenizer_type",
        default="word",
        choices=("word", "unigram", "bpe"),
        help="word: keep the LM's own vocabulary (word or subword); unigram | bpe: train a new one (see above)",
    )
    parser.add_argument("--vocab_size", type=int, default=15000, help="pieces of a unigram/bpe vocabulary")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--debug", action="store_true", help="Show the traceback of a usage error too.")
    return parser.parse_args(None if argv is None else [str(value) for value in argv])


def check_arguments(args) -> None:
    """The demo's flags, checked before anything is written: its two training runs would otherwise fail midway."""
    if args.lm_steps < 1:
        raise UsageError(f"--lm_steps must be at least 1, got {args.lm_steps}.")
    if args.vocab_size < 10:  # fastai's nine special tokens and one piece
        raise UsageError(f"--vocab_size must be at least 10, got {args.vocab_size}.")
    # one value per gradual-unfreezing stage (1, 2, 3, all)
    epochs = script_steps.parse_number_list(args.classifier_epochs, "--classifier_epochs", int, count=4)
    if min(epochs) < 1:
        raise UsageError(f"--classifier_epochs must all be at least 1, got {args.classifier_epochs!r}.")
    rates = script_steps.parse_number_list(args.classifier_learning_rates, "--classifier_learning_rates", count=4)
    if not all(0 < rate < float("inf") for rate in rates):
        raise UsageError(f"--classifier_learning_rates must all be above 0, got {args.classifier_learning_rates!r}.")
    script_steps.check_model_source(args.language_model, "--language_model")
    # the demo's own folder: written over by a new demo run, but never a file or an unwritable place
    script_steps.check_output_folder(str(args.output_dir), overwrite=True)


def run(script: str, *args):
    """Run one of the training scripts as its own process, so that its progress streams to this terminal."""
    command = [sys.executable, str(SCRIPTS / script), *map(str, args)]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    finished = subprocess.run(command)
    if finished.returncode:  # the script has said what went wrong
        sys.exit(finished.returncode)


def main(argv=None):
    args = parse_args(argv)
    check_arguments(args)
    started = time.perf_counter()
    data = args.output_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    language_model = args.language_model or pretrained_language_model_path()

    # 1. Data: a fixed cut of the labelled reviews; the language model reads every text but the held-out ones
    sentiment = {0: "negative", 1: "positive"}
    labelled = load_imdb_sample("train").map(lambda row: {"label": sentiment[row["label"]]}, desc="Labels")
    labelled = labelled.select_columns(["text", "label"]).train_test_split(test_size=500, seed=args.seed)
    train, heldout = labelled["train"], labelled["test"]
    texts = concatenate_datasets([load_imdb_sample("unsup").select_columns(["text"]), train.select_columns(["text"])])
    train.to_parquet(data / "train.parquet")
    heldout.to_parquet(data / "heldout.parquet")
    texts.to_parquet(data / "texts.parquet")
    print(f"IMDb sample: {len(train)} labelled reviews to train on, {len(heldout)} held out, {len(texts)} LM texts")

    # 2. Fine-tune the pretrained language model on the training texts (with a new subword vocabulary if asked)
    lm_dir = args.output_dir / "language-model"
    subword = []
    if args.tokenizer_type != "word":
        subword = ["--train_tokenizer", "--tokenizer_type", args.tokenizer_type, "--vocab_size", args.vocab_size]
    run(
        "train_language_model.py",
        *("--model_name_or_path", language_model, "--output_dir", lm_dir),
        *("--train_file", data / "texts.parquet", "--validation_split_percentage", 5),
        *("--max_train_steps", args.lm_steps, "--per_device_train_batch_size", 32),
        *("--frozen_learning_rate", 2e-2, "--learning_rate", 2e-3, "--logging_steps", 20),
        *("--mixed_precision", args.mixed_precision, "--seed", args.seed, "--overwrite_output_dir"),
        *subword,
    )

    # 3. The classifier: gradual unfreezing, discriminative learning rates, one-cycle per stage
    classifier_dir = args.output_dir / "classifier"
    run(
        "train_classifier.py",
        *("--model_name_or_path", lm_dir, "--output_dir", classifier_dir),
        *("--train_file", data / "train.parquet", "--validation_file", data / "heldout.parquet"),
        *("--unfreeze", "1,2,3,all", "--learning_rates", args.classifier_learning_rates),
        *("--epochs", args.classifier_epochs),
        *("--mixed_precision", args.mixed_precision, "--seed", args.seed, "--overwrite_output_dir"),
    )

    # 4. Predictions through the standard pipeline (batched by length inside, results in input order)
    classify = pipeline("text-classification", model=str(classifier_dir))
    predictions = classify(heldout["text"], batch_size=64)
    correct = sum(p["label"] == label for p, label in zip(predictions, heldout["label"], strict=True))
    print(f"\nheld-out accuracy through the pipeline: {correct / len(heldout):.2%} ({correct}/{len(heldout)})")
    examples = [
        "One of the best films I have seen in years: moving, funny, and beautifully acted.",
        "I wanted to like it, but the plot made no sense and the dialogue was painful.",
        "Not bad at all. The first half drags, yet the ending more than makes up for it.",
    ]
    for text, result in zip(examples, classify(examples), strict=True):
        print(f"  {result['label']} ({result['score']:.2f})  {text}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    print(str(classifier_dir.resolve()))


if __name__ == "__main__":
    script_steps.run_script(main)
