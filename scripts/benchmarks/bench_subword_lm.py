"""Subword (unigram) against word-level AWD-LSTM language models at an equal wall-clock budget (issue 21).

Two parts (`--parts french,imdb`); each writes `results/subword_lm_<part>.json` with every number and command line.

- `french`: an AWD-LSTM trained from scratch (`scripts/train_language_model.py`, the shipped small LM's shape
  200/300/3, only the vocabulary differs) on the French side of the fixed Tatoeba translator split
  (`--fr_train`, `fr` column), fastai's word tokenizer (`--tokenizer_type word`, fastai's defaults max_vocab 60,000,
  min_freq 3) against a unigram one (`--tokenizer_type unigram --vocab_size --fr_vocab_size`); scored on the split's
  validation sentences (`--fr_validation`).
- `imdb`: the same from-scratch pretraining on IMDb's unsup reviews, the recipe of the shipped small model
  (`model_cards/awd-lstm-imdb-small`: 2 % of unsup held out, 9,000 words, 200/300/3, one-cycle to 1e-2, batch
  64 x 70) shortened to `--imdb_budget_s` of training and `--imdb_max_train_samples` reviews, against a
  `--imdb_vocab_size` unigram vocabulary; then each LM goes through the main job's recipe (`scripts/demo.py`'s two
  commands: LM fine-tuning on the IMDb sample's 4,500 texts, then the classifier with gradual unfreezing), shortened
  with `--classifier_train_samples`, and the classifier is scored on the project's standard 2,000 IMDb test reviews
  (`test.parquet`.sample(n=2000, random_state=0)) through `pipeline("text-classification")`.

Equal wall-clock budget: before training, one LM training step (64 x 70 tokens: forward with AR/TAR, backward,
clipping, AdamW) is timed in this process for each vocabulary size (`--calibration_steps` after 3 warm-up steps,
median); each tokenizer then gets round(budget / seconds per step) optimizer steps (`--max_train_steps`, with
enough `--num_train_epochs` that the step count, not the epoch, ends the run; one one-cycle over those steps). The
training loop's real time is read from the script's own progress bar (timestamped here) and reported next to it.

Bits per character, on exactly the same raw texts for both tokenizers: the texts are tokenized as the training script
does (`tokenizer(texts).input_ids`: each starts with xxbos), laid end to end in `--eval_rows` rows of whole texts,
each row ending with one more xxbos; the state is carried across 70-token windows. Every token after a row's first
xxbos is predicted and counted: each text's tokens (fastai's xx tokens included) and the xxbos that ends it. bits/char
= total NLL (nats) / characters of the raw texts (`len(str)`) / ln 2; perplexity per token = exp(NLL / tokens);
tokens/char = those predicted tokens / characters. A word vocabulary maps rare words to xxunk, which costs one
token's probability rather than the word's spelling, so its bits/char is flattered by its unknown-token rate
(reported as `unk_tokens`).

Training tokens/s = optimizer steps x 64 rows x mean window length (the script's variable-BPTT draws, reproduced
with its seed) / training-loop seconds. Everything runs on `--threads` threads (one by default: time on a shared
machine compares only when both sides run alike).

Each finished run is cached under `--output_dir` (`bench_run.json` next to the model): a rerun skips it.

    cd <repo> && HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 \\
        MKL_NUM_THREADS=1 PYTHONPATH=src python scripts/benchmarks/bench_subword_lm.py --parts french,imdb \\
        --imdb_dir ../shared/data/imdb --output_dir /tmp/subword-lm
"""

import argparse
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
SENTIMENT = {0: "negative", 1: "positive"}
PARTS = ("french", "imdb")
TQDM = re.compile(r"(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="french,imdb", help="which of french,imdb to run")
    parser.add_argument("--tokenizers", default="word,unigram", help="which of word,unigram,bpe to compare")
    parser.add_argument("--output_dir", type=Path, default=Path("/tmp/subword-lm"), help="runs and cache")
    parser.add_argument("--results_dir", type=Path, default=REPO / "scripts/benchmarks/results")
    parser.add_argument("--config_overrides", default="embedding_size=200,hidden_size=300,num_hidden_layers=3")
    parser.add_argument("--learning_rate", type=float, default=1e-2, help="one-cycle peak (the shipped LM's)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--bptt", type=int, default=70)
    parser.add_argument("--calibration_steps", type=int, default=10, help="timed steps (after 3 warm-up ones)")
    parser.add_argument("--eval_rows", type=int, default=32, help="rows of the bits-per-character stream")
    parser.add_argument("--threads", type=int, default=1, help="torch threads here and in the training scripts")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--note", default="", help="free text kept in the results (e.g. what was shortened)")
    # french
    parser.add_argument("--fr_train", type=Path, default=Path("/tmp/tatoeba-split/train.parquet"))
    parser.add_argument("--fr_validation", type=Path, default=Path("/tmp/tatoeba-split/validation.parquet"))
    parser.add_argument("--fr_column", default="fr")
    parser.add_argument("--fr_vocab_size", type=int, default=8000, help="unigram pieces (French words: ~12.6k)")
    parser.add_argument("--fr_budget_s", type=float, default=600, help="training seconds per tokenizer")
    # imdb
    parser.add_argument("--imdb_dir", type=Path, default=REPO.parent / "shared" / "data" / "imdb")
    parser.add_argument("--imdb_vocab_size", type=int, default=15000, help="unigram pieces")
    parser.add_argument("--imdb_max_vocab", type=int, default=9000, help="word vocabulary (the shipped LM's)")
    parser.add_argument("--imdb_budget_s", type=float, default=900, help="pretraining seconds per tokenizer")
    parser.add_argument("--imdb_max_train_samples", type=int, default=20000, help="unsup reviews read (of 49,000)")
    parser.add_argument("--imdb_max_eval_samples", type=int, default=1000, help="held-out unsup reviews scored")
    parser.add_argument("--num_test", type=int, default=2000, help="test reviews scored by the classifiers")
    parser.add_argument("--bpc_texts", type=int, default=1000, help="the first N of those for bits/char")
    parser.add_argument("--lm_finetune_steps", type=int, default=120, help="the demo's --lm_steps")
    parser.add_argument("--classifier_train_samples", type=int, default=3500, help="of the demo's 3,500")
    parser.add_argument("--classifier_eval_samples", type=int, default=500, help="of the demo's 500 held out")
    parser.add_argument("--classifier_epochs", default="1,1,1,1", help="the demo's")
    parser.add_argument("--classifier_learning_rates", default="2e-2,1e-2,5e-3,2.5e-3", help="the demo's")
    return parser.parse_args(argv)


# --- running the training scripts ------------------------------------------------------------------------------------


def script_env(args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def shown(command: list[str]) -> str:
    """The command line as run from the repository root (paths inside it made relative)."""
    parts = [os.path.relpath(p, REPO) if p.startswith(str(REPO) + os.sep) else p for p in map(str, command)]
    return shlex.join(["python", *parts[1:]])


def run_timed(args, script: str, flags: list, log_path: Path) -> dict:
    """
    Run a training script as its own process; every output segment (lines and tqdm's carriage-return updates) is
    timestamped, so the training loop's time (the progress bar's first to its last step) is separated from loading,
    tokenization and evaluation. Returns the timings and what the script printed about the run.
    """
    command = [sys.executable, str(REPO / "scripts" / script), *map(str, flags)]
    print(f"$ {shown(command)}", flush=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, env=script_env(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    segments, pending = [], b""
    with open(log_path, "w") as log:
        while True:
            chunk = os.read(process.stdout.fileno(), 65536)
            now = time.perf_counter() - start
            if not chunk:
                break
            pending += chunk
            *complete, pending = re.split(rb"[\r\n]", pending)
            for raw in complete:
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    segments.append((now, text))
                    log.write(f"[{now:8.2f}] {text}\n")
                    if not TQDM.search(text) and "Warning" not in text:
                        print(f"    {text[:200]}", flush=True)
        if pending.strip():
            segments.append((time.perf_counter() - start, pending.decode("utf-8", "replace").strip()))
    returncode = process.wait()
    wall = time.perf_counter() - start
    if returncode:
        tail = "\n".join(text for _, text in segments[-15:])
        raise RuntimeError(f"{script} failed with exit status {returncode}:\n{tail}")
    return {"command": shown(command), "wall_seconds": round(wall, 2), **training_timings(segments)}


def training_timings(segments) -> dict:
    """The progress bar's timeline: its 0/N (start), its first N/N (the last step, before the final evaluation)."""
    # the training loop's bar has no description (datasets' and transformers' bars do: "Tokenizing: 40%|...")
    bars = [(t, TQDM.search(text)) for t, text in segments if re.match(r"\d+%\|", text)]
    bars = [(t, int(m.group(1)), int(m.group(2)), m) for t, m in bars if m]
    out = {}
    for pattern, key, kind in (
        (r"model: ([\d,]+) parameters", "parameters", int),
        (r"vocabulary: (\d+) tokens", "vocabulary", int),
        (r"train: (\d+) documents", "train_documents", int),
        (r"validation: (\d+)$", "validation_documents", int),
        (r"validation perplexity ([\d.]+)", "script_perplexity", float),
        (r"accuracy ([\d.]+)$", "script_accuracy", float),
    ):
        for _, text in segments:
            m = re.search(pattern, text)
            if m:
                out[key] = kind(m.group(1).replace(",", ""))
    # the bars of the LM script: one; of the classifier: one per stage (plus evaluation bars): keep the longest
    if bars:
        total = max(b[2] for b in bars)
        mine = [b for b in bars if b[2] == total]
        first = mine[0]
        last = next((b for b in mine if b[1] == total), mine[-1])
        elapsed_tqdm = int(last[3].group(3) or 0) * 3600 + int(last[3].group(4)) * 60 + int(last[3].group(5))
        out.update(
            steps=last[1],
            bar_start_s=round(first[0], 2),
            bar_end_s=round(last[0], 2),
            train_loop_seconds=round(last[0] - first[0], 2),
            tqdm_elapsed_seconds=elapsed_tqdm,
        )
    return out


# --- calibration and measurements ------------------------------------------------------------------------------------


def seconds_per_step(args, vocab_size: int) -> float:
    """Median time of one from-scratch LM training step of the script's shape, on random tokens of this vocabulary."""
    import torch

    from ulmfit import AwdLstmConfig, AwdLstmForCausalLM
    from ulmfit.training.recipe import apply_config_overrides

    torch.manual_seed(0)
    model = AwdLstmForCausalLM(apply_config_overrides(AwdLstmConfig(vocab_size=vocab_size), args.config_overrides))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.99), weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    state, times = None, []
    for _ in range(3 + args.calibration_steps):
        tokens = torch.randint(9, vocab_size, (args.batch_size, args.bptt + 1), generator=generator)
        start = time.perf_counter()
        outputs = model(input_ids=tokens[:, :-1], state=state, labels=tokens[:, 1:], shift_labels=tokens[:, 1:])
        state = tuple((h.detach(), c.detach()) for h, c in outputs.state)
        outputs.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:])


def mean_window_length(args, num_documents: int, steps: int) -> float:
    """The mean BPTT window of the script's first `steps` windows (its generator: seed, epoch 0, one shuffle)."""
    import torch

    from ulmfit.training.data import draw_bptt_length

    generator = torch.Generator().manual_seed(args.seed * 1_000_003)
    torch.randperm(num_documents, generator=generator)
    return statistics.fmean(draw_bptt_length(args.bptt, generator) for _ in range(steps))


def bits_per_character(args, model_dir: Path, texts: list[str]) -> dict:
    """Total NLL of every predicted token over the raw texts' characters (see the module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import ulmfit  # noqa: F401

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    start = time.perf_counter()
    ids = tokenizer(texts).input_ids
    bos, pad, unk = tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id
    if any(not doc or doc[0] != bos for doc in ids):
        raise ValueError("every tokenized text should start with xxbos")
    # whole texts into rows of about equal length, in order; `owners`: the text each input position belongs to (the
    # token it predicts is that text's next token, or the xxbos that ends it)
    total, rows, owners, current, owner = sum(map(len, ids)), [], [], [], []
    target = total / args.eval_rows
    for index, doc in enumerate(ids):
        current.extend(doc)
        owner.extend([index] * len(doc))
        if len(current) >= target and len(rows) < args.eval_rows - 1:
            rows.append(current + [bos])
            owners.append(owner)
            current, owner = [], []
    if current:
        rows.append(current + [bos])
        owners.append(owner)
    length = max(map(len, rows))
    batch = torch.full((len(rows), length), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), length - 1), dtype=torch.bool)
    owner_of = torch.zeros((len(rows), length - 1), dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row) - 1] = True
        owner_of[i, : len(row) - 1] = torch.tensor(owners[i])
    inputs, targets = batch[:, :-1], batch[:, 1:]
    state = None
    per_text = torch.zeros(len(texts), dtype=torch.float64)
    with torch.no_grad():
        for s in range(0, inputs.size(1), args.bptt):
            outputs = model(input_ids=inputs[:, s : s + args.bptt], state=state)
            state = outputs.state
            losses = torch.nn.functional.cross_entropy(
                outputs.logits.float().flatten(0, 1), targets[:, s : s + args.bptt].flatten(), reduction="none"
            )
            kept = mask[:, s : s + args.bptt].flatten()
            per_text.index_add_(0, owner_of[:, s : s + args.bptt].flatten()[kept], losses[kept].double())
    predicted, nll = int(mask.sum()), per_text.sum().item()
    characters = sum(len(text) for text in texts)
    assert predicted == total, (predicted, total)
    return {
        "texts": len(texts),
        "characters": characters,
        "predicted_tokens": predicted,
        "unk_tokens": sum(token == unk for doc in ids for token in doc),
        "nll_nats": nll,
        "bits_per_char": nll / characters / math.log(2),
        "perplexity_per_token": math.exp(nll / predicted),
        "tokens_per_char": predicted / characters,
        "vocabulary": len(tokenizer),
        "eval_seconds": round(time.perf_counter() - start, 2),
        # per text, for `known_word_subset` (not written to the results)
        "_nll_per_text": per_text.tolist(),
        "_has_unk": [unk in doc for doc in ids],
    }


def known_word_subset(scores: dict, texts: list[str]) -> dict | None:
    """
    bits/char of every tokenizer on the texts that the word vocabulary covers fully (no xxunk in their word
    tokenization): there the word model's NLL is a real cost of the text, not of an unknown-word placeholder.
    Strips the per-text lists from `scores` (tokenizer -> `bits_per_character` result).
    """
    per_text = {name: (score.pop("_nll_per_text"), score.pop("_has_unk")) for name, score in scores.items()}
    if "word" not in per_text:
        return None
    keep = [i for i, has_unk in enumerate(per_text["word"][1]) if not has_unk]
    characters = sum(len(texts[i]) for i in keep)
    return {
        "texts": len(keep),
        "characters": characters,
        "bits_per_char": {
            name: sum(nll[i] for i in keep) / characters / math.log(2) for name, (nll, _) in per_text.items()
        },
    }


def pretrain(args, part: str, tokenizer_type: str, data_flags: list, vocab_flags: list, vocab_size: int,
             budget: float, num_train_documents_hint: int | None, folder: Path) -> dict:  # fmt: skip
    """Calibrate, train one from-scratch LM at the budget, cache the run's record."""
    record_path = folder / "bench_run.json"
    if record_path.exists():
        return json.loads(record_path.read_text())
    step_seconds = seconds_per_step(args, vocab_size)
    steps = max(1, round(budget / step_seconds))
    print(f"[{part}/{tokenizer_type}] vocabulary {vocab_size}: {step_seconds:.3f} s/step -> {steps} steps", flush=True)
    flags = [
        *data_flags,
        *vocab_flags,
        *("--config_overrides", args.config_overrides, "--learning_rate", args.learning_rate),
        *("--per_device_train_batch_size", args.batch_size, "--bptt", args.bptt),
        *("--num_train_epochs", 50, "--max_train_steps", steps, "--mixed_precision", "no"),
        *("--logging_steps", 50, "--seed", args.seed, "--cpu", "--overwrite_output_dir", "--output_dir", folder),
    ]
    run = run_timed(args, "train_language_model.py", flags, folder.parent / f"{folder.name}.log")
    window = mean_window_length(args, run.get("train_documents", num_train_documents_hint or 1), run["steps"])
    tokens = run["steps"] * args.batch_size * window
    record = {
        "tokenizer_type": tokenizer_type,
        "calibrated_seconds_per_step": round(step_seconds, 4),
        "calibration_vocabulary": vocab_size,
        "budget_seconds": budget,
        "planned_steps": steps,
        **run,
        "mean_window_length": round(window, 2),
        "train_tokens": round(tokens),
        "seconds_per_step": round(run["train_loop_seconds"] / run["steps"], 4),
        "train_tokens_per_second": round(tokens / run["train_loop_seconds"], 1),
    }
    results_file = folder / "all_results.json"
    if results_file.exists():
        record["script_results"] = json.loads(results_file.read_text())
    record_path.write_text(json.dumps(record, indent=2))
    return record


def word_vocabulary_size(texts, max_vocab=60000, min_freq=3) -> int:
    from ulmfit import AwdLstmTokenizer

    return len(AwdLstmTokenizer.train(texts, max_vocab, min_freq))


def vocab_flags_for(tokenizer_type: str, pieces: int, max_vocab: int | None) -> list:
    if tokenizer_type == "word":
        return [] if max_vocab is None else ["--max_vocab", max_vocab]
    return ["--tokenizer_type", tokenizer_type, "--vocab_size", pieces]


def write_results(args, part: str, report: dict) -> Path:
    path = args.results_dir / f"subword_lm_{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **report}, indent=2) + "\n")
    return path


def settings(args) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def this_command() -> str:
    flags = [os.path.relpath(a, REPO) if a.startswith(str(REPO) + os.sep) else a for a in sys.argv[1:]]
    return (
        f"HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "
        f"PYTHONPATH=src python {os.path.relpath(Path(__file__).resolve(), REPO)} {shlex.join(flags)}"
    )


# --- the parts -------------------------------------------------------------------------------------------------------


def run_french(args) -> dict:
    import pandas as pd

    train = pd.read_parquet(args.fr_train, columns=[args.fr_column])[args.fr_column].tolist()
    validation = pd.read_parquet(args.fr_validation, columns=[args.fr_column])[args.fr_column].tolist()
    data_flags = [
        "--train_file",
        args.fr_train,
        "--validation_file",
        args.fr_validation,
        "--text_column",
        args.fr_column,
    ]
    results = {}
    for tokenizer_type in args.tokenizers.split(","):
        folder = args.output_dir / "french" / tokenizer_type
        vocab_size = word_vocabulary_size(train) if tokenizer_type == "word" else args.fr_vocab_size
        record = pretrain(
            args, "french", tokenizer_type, data_flags, vocab_flags_for(tokenizer_type, args.fr_vocab_size, None),
            vocab_size, args.fr_budget_s, len(train), folder,
        )  # fmt: skip
        record["validation_bpc"] = bits_per_character(args, folder, validation)
        shown_score = {k: v for k, v in record["validation_bpc"].items() if not k.startswith("_")}
        print(f"[french/{tokenizer_type}] {json.dumps(shown_score)}", flush=True)
        results[tokenizer_type] = record
    subset = known_word_subset({name: record["validation_bpc"] for name, record in results.items()}, validation)
    return {
        "part": "french",
        "date": time.strftime("%Y-%m-%d"),
        "command": this_command(),
        "settings": settings(args),
        "data": {
            "train_sentences": len(train),
            "train_characters": sum(map(len, train)),
            "validation_sentences": len(validation),
            "validation_characters": sum(map(len, validation)),
        },
        "results": results,
        "validation_without_word_unk": subset,
        "training_wall_seconds_total": round(sum(record["wall_seconds"] for record in results.values()), 1),
    }


def demo_data(args, folder: Path) -> Path:
    """`scripts/demo.py`'s step 1 as it writes it: 3,500 labelled reviews to train on, 500 held out, 4,500 LM texts."""
    if folder.joinpath("done").exists():
        return folder
    from datasets import concatenate_datasets

    from ulmfit.samples import load_imdb_sample

    folder.mkdir(parents=True, exist_ok=True)
    labelled = load_imdb_sample("train").map(lambda row: {"label": SENTIMENT[row["label"]]}, desc="Labels")
    labelled = labelled.select_columns(["text", "label"]).train_test_split(test_size=500, seed=42)
    train, heldout = labelled["train"], labelled["test"]
    texts = concatenate_datasets([load_imdb_sample("unsup").select_columns(["text"]), train.select_columns(["text"])])
    train.to_parquet(folder / "train.parquet")
    heldout.to_parquet(folder / "heldout.parquet")
    texts.to_parquet(folder / "texts.parquet")
    folder.joinpath("done").write_text("")
    return folder


def classify_with(args, language_model: Path, data: Path, folder: Path, test) -> dict:
    """The demo's steps 2-3 from `language_model` (its own vocabulary kept), then the 2,000 test reviews."""
    record_path = folder / "bench_classifier.json"
    if record_path.exists():
        return json.loads(record_path.read_text())
    lm_dir, classifier_dir = folder / "language-model", folder / "classifier"
    fine_tune = run_timed(
        args,
        "train_language_model.py",
        [
            *("--model_name_or_path", language_model, "--output_dir", lm_dir),
            *("--train_file", data / "texts.parquet", "--validation_split_percentage", 5),
            *("--max_train_steps", args.lm_finetune_steps, "--per_device_train_batch_size", 32),
            *("--frozen_learning_rate", 2e-2, "--learning_rate", 2e-3, "--logging_steps", 20),
            *("--mixed_precision", "no", "--seed", args.seed, "--overwrite_output_dir", "--cpu"),
        ],
        folder / "language-model.log",
    )
    classifier = run_timed(
        args,
        "train_classifier.py",
        [
            *("--model_name_or_path", lm_dir, "--output_dir", classifier_dir),
            *("--train_file", data / "train.parquet", "--validation_file", data / "heldout.parquet"),
            *("--unfreeze", "1,2,3,all", "--learning_rates", args.classifier_learning_rates),
            *("--epochs", args.classifier_epochs),
            *("--max_train_samples", args.classifier_train_samples),
            *("--max_eval_samples", args.classifier_eval_samples),
            *("--mixed_precision", "no", "--seed", args.seed, "--overwrite_output_dir", "--cpu"),
        ],
        folder / "classifier.log",
    )
    from transformers import pipeline

    import ulmfit  # noqa: F401

    start = time.perf_counter()
    classify = pipeline("text-classification", model=str(classifier_dir), device="cpu")
    predictions = classify(test[0], batch_size=64)
    correct = sum(p["label"] == r for p, r in zip(predictions, test[1], strict=True))
    record = {
        "lm_fine_tuning": fine_tune,
        "classifier": classifier,
        "classifier_results": json.loads((classifier_dir / "all_results.json").read_text())
        if (classifier_dir / "all_results.json").exists()
        else None,
        "test_reviews": len(test[1]),
        "test_correct": correct,
        "test_accuracy": correct / len(test[1]),
        "test_seconds": round(time.perf_counter() - start, 2),
    }
    record_path.write_text(json.dumps(record, indent=2))
    return record


def run_imdb(args) -> dict:
    import pandas as pd

    unsup = args.imdb_dir / "unsup.parquet"
    reviews = pd.read_parquet(args.imdb_dir / "test.parquet").sample(n=args.num_test, random_state=0)
    test = (reviews["text"].tolist(), [SENTIMENT[int(label)] for label in reviews["label"]])
    bpc_texts = test[0][: args.bpc_texts]
    data_flags = [
        *("--train_file", unsup, "--validation_split_percentage", 2),
        *("--max_train_samples", args.imdb_max_train_samples, "--max_eval_samples", args.imdb_max_eval_samples),
    ]
    data = demo_data(args, args.output_dir / "imdb" / "demo-data")
    unsup_characters = 0.98 * pd.read_parquet(unsup, columns=["text"])["text"].str.len().sum()
    results = {}
    for tokenizer_type in args.tokenizers.split(","):
        folder = args.output_dir / "imdb" / tokenizer_type / "pretrained"
        vocab_size = args.imdb_max_vocab if tokenizer_type == "word" else args.imdb_vocab_size
        record = pretrain(
            args, "imdb", tokenizer_type, data_flags,
            vocab_flags_for(tokenizer_type, args.imdb_vocab_size, args.imdb_max_vocab),
            vocab_size, args.imdb_budget_s, args.imdb_max_train_samples, folder,
        )  # fmt: skip
        record["test_bpc"] = bits_per_character(args, folder, bpc_texts)
        # a full epoch of the shipped recipe (98 % of the 50,000 unsup reviews), projected from tokens/char and speed
        steps = (
            unsup_characters * record["test_bpc"]["tokens_per_char"] / (args.batch_size * record["mean_window_length"])
        )
        record["projected_full_unsup_epoch"] = {
            "steps": round(steps),
            "hours": round(steps * record["seconds_per_step"] / 3600, 2),
        }
        shown_score = {k: v for k, v in record["test_bpc"].items() if not k.startswith("_")}
        print(f"[imdb/{tokenizer_type}] {json.dumps(shown_score)}", flush=True)
        results[tokenizer_type] = record
    subset = known_word_subset({name: record["test_bpc"] for name, record in results.items()}, bpc_texts)
    write_results(args, "imdb", {"results": results})  # partial results survive a later failure
    for tokenizer_type in args.tokenizers.split(","):
        folder = args.output_dir / "imdb" / tokenizer_type
        results[tokenizer_type]["ulmfit"] = classify_with(args, folder / "pretrained", data, folder, test)
        print(f"[imdb/{tokenizer_type}] test accuracy {results[tokenizer_type]['ulmfit']['test_accuracy']:.4f}")
        write_results(args, "imdb", {"results": results})
    return {
        "part": "imdb",
        "date": time.strftime("%Y-%m-%d"),
        "command": this_command(),
        "settings": settings(args),
        "data": {
            "pretraining": f"{unsup} (2 % held out, seed {args.seed}; first {args.imdb_max_train_samples} reviews)",
            "test_reviews": args.num_test,
            "bpc_texts": len(bpc_texts),
            "bpc_characters": sum(map(len, bpc_texts)),
        },
        "results": results,
        "test_bpc_without_word_unk": subset,
        "training_wall_seconds_total": round(
            sum(
                r["wall_seconds"]
                + r["ulmfit"]["lm_fine_tuning"]["wall_seconds"]
                + r["ulmfit"]["classifier"]["wall_seconds"]
                for r in results.values()
            ),
            1,
        ),
    }


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    parts = [part for part in args.parts.split(",") if part]
    if any(part not in PARTS for part in parts):
        raise SystemExit(f"--parts must be among {','.join(PARTS)}, got {args.parts!r}.")
    for part in parts:
        started = time.perf_counter()
        report = run_french(args) if part == "french" else run_imdb(args)
        report["wall_seconds_this_run"] = round(time.perf_counter() - started, 1)
        path = write_results(args, part, report)
        print(f"{part}: {path}", flush=True)
        for name, record in report["results"].items():
            scored = record.get("validation_bpc") or record.get("test_bpc")
            extra = f", test accuracy {record['ulmfit']['test_accuracy']:.2%}" if "ulmfit" in record else ""
            print(
                f"  {name:8} vocab {scored['vocabulary']:>6}  params {record.get('parameters', 0):>10,}  "
                f"steps {record['steps']:>5}  loop {record['train_loop_seconds']:>7.1f} s  "
                f"{record['train_tokens_per_second']:>7.0f} tok/s  {scored['tokens_per_char']:.4f} tok/char  "
                f"ppl/token {scored['perplexity_per_token']:.2f}  {scored['bits_per_char']:.4f} bits/char{extra}"
            )


if __name__ == "__main__":
    main()
