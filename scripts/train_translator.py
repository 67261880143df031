"""Train the attention GRU translator (fast.ai 2018, lesson 11) on sentence pairs, with Accelerate.

Data are sentence pairs from the Hub (`--dataset_name`) or local csv/tsv/json/jsonl/parquet files with a source and a
target column (`--source_column fr --target_column en`). A `GruSeq2SeqTokenizer` is trained on the training pairs
(at most 40,000 words per language, each seen twice: `--min_freq 2`) unless `--tokenizer_name` gives one; word vectors
(`--source_vectors/--target_vectors`, word2vec/fastText text) can start the embeddings, as the notebook's fastText
vectors did (smaller ones through a fixed orthogonal projection with `--project_vectors`); coverage is reported.

The recipe is the notebook's "All" model, with the defaults measured best on Tatoeba (scripts/benchmarks/README.md):
teacher forcing decaying linearly from 1.0 to 0.5, AdamW (betas 0.8, 0.99) under one-cycle peaking at 3e-3, gradient
clipping, batches of pairs of similar length (padding masked in the encoder, the attention and the loss), pairs longer
than `--max_source_length/--max_target_length` (30) tokens dropped from training and counted, never truncated. Every
epoch (and every `--eval_steps`) reports the validation loss, sacreBLEU and chrF, and those of `--test_file` for the
learning curve (`training_curve.png`). After training, the decoding settings saved in `generation_config` (greedy or 4
beams, `repetition_penalty`, the ban on a word following itself) are chosen on the validation pairs
(`--tune_generation`, on by default); the test scores use them, and `--eval_num_beams 4` adds beam search on both.

    # a smoke run on the Tatoeba sample shipped in the package (a few minutes on a CPU)
    python scripts/train_translator.py --train_file src/ulmfit/data/tatoeba_fr_en_sample.parquet \\
        --test_file src/ulmfit/data/tatoeba_fr_en_test.parquet --num_train_epochs 2 --output_dir runs/translator-tiny
    # the fixed Tatoeba split (scripts/make_translation_split.py), about 25 minutes on one CPU core
    python scripts/train_translator.py --train_file runs/data/tatoeba-fr-en/train.parquet \\
        --validation_file runs/data/tatoeba-fr-en/validation.parquet \\
        --test_file runs/data/tatoeba-fr-en/test.parquet \\
        --source_vectors ../shared/data/vectors/fr.spacy-fasttext-cbow.300d.10k.txt \\
        --target_vectors ../shared/data/vectors/glove.6B.50d.100k.txt --project_vectors \\
        --per_device_train_batch_size 128 --num_train_epochs 1 --max_train_steps 1000 \\
        --eval_steps 250 --eval_num_beams 4 --checkpointing_steps 500 --logging_steps 25 \\
        --output_dir runs/translator-fr-en
    # one GPU, bf16, or several GPUs
    accelerate launch --mixed_precision bf16 scripts/train_translator.py ...
"""

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from ulmfit import GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration, GruSeq2SeqTokenizer
from ulmfit.model_card.gru_seq2seq import TRANSLATOR_CARD
from ulmfit.training import SortedBatchSampler, SortishBatchSampler, loader_for, script_steps
from ulmfit.training.checkpoints import resume_from, save_checkpoint
from ulmfit.training.recipe import apply_config_overrides, make_scheduler
from ulmfit.training.script_steps import UsageError
from ulmfit.training.translation import (
    apply_word_vectors,
    check_translator_flags,
    check_translator_inputs,
    drop_blank_pairs,
    drop_long_pairs,
    evaluate_translator,
    final_scores,
    load_pairs,
    pair_collator,
    smoothed_loss,
    teacher_forcing_ratio,
)


# the local files of sentence pairs: a column per language
PAIR_FILE_FORMATS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


@dataclass
class TranslatorTrainingArguments(script_steps.TrainingScriptArguments):
    """The translator's arguments; output, seed, precision, `--cpu`, checkpoints and Hub come from the base."""

    # --- data -------------------------------------------------------------------------------------------------------
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset with a column per language."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    train_file: str | None = field(default=None, metadata={"help": "Local csv/tsv/json/jsonl/parquet file."})
    validation_file: str | None = field(default=None, metadata={"help": "Same format as --train_file."})
    test_file: str | None = field(default=None, metadata={"help": "Held-out pairs scored once, after training."})
    source_column: str = field(default="fr", metadata={"help": "Column holding the source sentences."})
    target_column: str = field(default="en", metadata={"help": "Column holding their translations."})
    validation_split_percentage: float = field(default=5, metadata={"help": "Held out when there is no validation."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation pairs."})
    max_source_length: int | None = field(
        default=30, metadata={"help": "Drop training pairs whose source has more tokens (xxeos included)."}
    )
    max_target_length: int | None = field(
        default=30, metadata={"help": "Drop training pairs whose target has more tokens (xxeos included)."}
    )
    # --- tokenizer and model ----------------------------------------------------------------------------------------
    tokenizer_name: str | None = field(default=None, metadata={"help": "Reuse this tokenizer (folder or Hub id)."})
    max_vocab: int = field(default=40000, metadata={"help": "Largest vocabulary per language (the notebook's)."})
    min_freq: int = field(default=2, metadata={"help": "Fewest occurrences of a kept word (the notebook: 1)."})
    source_lang: str = field(default="fr", metadata={"help": "Tokenizer rules of the source language."})
    target_lang: str = field(default="en", metadata={"help": "Tokenizer rules of the target language."})
    config_overrides: str | None = field(
        default=None, metadata={"help": 'e.g. "embedding_size=256,hidden_size=128" (GruSeq2SeqConfig fields).'}
    )
    source_vectors: str | None = field(default=None, metadata={"help": "Word vectors for the source embedding."})
    target_vectors: str | None = field(default=None, metadata={"help": "Word vectors for the target embedding."})
    vectors_scale: float | None = field(
        default=None, metadata={"help": "Multiply the vectors by this; default: to the initial rows' mean norm."}
    )
    project_vectors: bool = field(
        default=False, metadata={"help": "Project smaller vectors orthogonally into the embedding (else an error)."}
    )
    # --- optimisation -----------------------------------------------------------------------------------------------
    per_device_train_batch_size: int = field(default=125, metadata={"help": "Pairs per batch (the notebook: 125)."})
    per_device_eval_batch_size: int = field(default=200, metadata={"help": "Pairs per evaluation batch."})
    num_train_epochs: int = field(default=15, metadata={"help": "Epochs (the notebook's attention model: 15)."})
    max_train_steps: int | None = field(default=None, metadata={"help": "Stop after this many optimizer steps."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak learning rate (the notebook: 2e-3)."})
    pct_start: float = field(default=0.25, metadata={"help": "One-cycle warm-up fraction."})
    adam_beta1: float = field(default=0.8, metadata={"help": "Adam beta1 (cycled 0.8-0.7-0.8 by one-cycle)."})
    adam_beta2: float = field(default=0.99, metadata={"help": "Adam beta2 (the notebook: 0.99)."})
    weight_decay: float = field(default=0.01, metadata={"help": "Decoupled weight decay (fastai's default)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping; 0 disables."})
    teacher_forcing_schedule: str = field(default="linear", metadata={"help": "linear | exponential | constant"})
    teacher_forcing_start: float = field(default=1.0, metadata={"help": "Teacher-forcing probability at step 0."})
    teacher_forcing_end: float = field(default=0.5, metadata={"help": "Probability once the decay is over."})
    teacher_forcing_epochs: float | None = field(
        default=None, metadata={"help": "Epochs the decay lasts (default: the whole run; the notebook: 10 of 15)."}
    )
    label_smoothing_factor: float = field(
        default=0.0, metadata={"help": "Spread this share of each target's probability over the vocabulary."}
    )
    # --- evaluation -------------------------------------------------------------------------------------------------
    eval_steps: int | None = field(default=None, metadata={"help": "Also validate every N steps (not only epochs)."})
    eval_num_beams: int = field(default=1, metadata={"help": "Above 1: also score beam search, after training."})
    tune_generation: bool = field(
        default=True, metadata={"help": "Choose the saved decoding settings (beams, repetition bans) on validation."}
    )
    # --- output and logging -----------------------------------------------------------------------------------------
    output_dir: str = field(default="runs/translator", metadata={"help": "Where the model, logs and plots go."})
    logging_steps: int = field(default=50, metadata={"help": "Log the training loss every N optimizer steps."})

    def __post_init__(self):
        # every value checked as it is read: a bad one stops the run before any data is loaded
        super().__post_init__()
        check_translator_flags(self)
        model_config(self)


def model_config(args, vocab_size: int = 100, decoder_vocab_size: int = 100) -> GruSeq2SeqConfig:
    """The translator's config: the tokenizer's vocabulary sizes, then `--config_overrides` (which cannot set them)."""
    config = GruSeq2SeqConfig(vocab_size=vocab_size, decoder_vocab_size=decoder_vocab_size)
    try:
        return apply_config_overrides(config, args.config_overrides or "")
    except (ValueError, TypeError) as error:
        raise UsageError(f"--config_overrides {args.config_overrides!r}: {error}") from error


def main(argv: list[str] | None = None):
    # 0. Every flag, input and the output folder checked before any work (a mistake: one line, exit status 2)
    args = script_steps.parse_arguments(TranslatorTrainingArguments, argv)
    check_translator_inputs(args, PAIR_FILE_FORMATS, model_config(args).embedding_size)
    script_steps.check_output_location(args)
    accelerator = script_steps.make_accelerator(args)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1-3 write the new tokenizer before every pair is checked: a mistake found there removes it
    with script_steps.removed_if_start_fails(accelerator, args.output_dir):
        # 1. Sentence pairs and the tokenizer (trained on the training pairs by the main process, loaded by the others)
        with accelerator.main_process_first():
            options = {
                "source_column": args.source_column,
                "target_column": args.target_column,
                "dataset_config_name": args.dataset_config_name,
                "validation_split_percentage": args.validation_split_percentage,
                "seed": args.seed,
            }
            raw = load_pairs(
                dataset_name=args.dataset_name,
                train_file=args.train_file,
                validation_file=args.validation_file,
                **options,
            )
            for split, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples)):
                if limit:
                    raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
            if args.test_file:
                # the whole file, read through the same checks (as the "validation" of itself)
                test_pairs = load_pairs(train_file=args.test_file, validation_file=args.test_file, **options)
                raw["test"] = test_pairs["validation"]
            for split in raw:
                raw[split] = drop_blank_pairs(raw[split], split, accelerator)
            output_dir.mkdir(parents=True, exist_ok=True)  # the inputs are read and checked: the run starts here
            tokenizer_dir = output_dir / "tokenizer"
            if args.tokenizer_name is None and accelerator.is_main_process:
                GruSeq2SeqTokenizer.train(
                    raw["train"]["source"],
                    raw["train"]["target"],
                    max_vocab=args.max_vocab,
                    min_freq=args.min_freq,
                    source_lang=args.source_lang,
                    target_lang=args.target_lang,
                ).save_pretrained(tokenizer_dir)
        with accelerator.main_process_first():
            tokenizer = AutoTokenizer.from_pretrained(args.tokenizer_name or tokenizer_dir)

            def encode(batch, indices):
                encoded = tokenizer(batch["source"], text_target=batch["target"])
                return {"input_ids": encoded["input_ids"], "labels": encoded["labels"], "index": indices}

            tokenized = {
                split: raw[split].map(
                    encode, batched=True, with_indices=True, remove_columns=["source", "target"], desc="Tokenizing"
                )
                for split in raw
            }
        references = {split: raw[split]["target"] for split in raw if split != "train"}

        # 2. Over-long training pairs are dropped (never truncated), and counted
        tokenized["train"] = drop_long_pairs(
            tokenized["train"], args.max_source_length, args.max_target_length, accelerator
        )
        lengths = {
            split: [max(len(s), len(t)) for s, t in zip(data["input_ids"], data["labels"])]
            for split, data in tokenized.items()
        }
        longest_target = max(len(labels) for labels in tokenized["train"]["labels"])
        accelerator.print(
            f"vocabularies: {tokenizer.vocab_size} source, {tokenizer.target_vocab_size} target tokens; pairs: "
            + ", ".join(f"{len(data)} {split}" for split, data in tokenized.items())
        )

        # 3. Model (built after seeding), pretrained vectors in its embeddings, generation defaults from the data
        config = model_config(args, tokenizer.vocab_size, tokenizer.target_vocab_size)
        model = GruSeq2SeqForConditionalGeneration(config)
        coverage = apply_word_vectors(args, model, tokenizer, accelerator)
        model.generation_config.max_new_tokens = longest_target  # generate() would otherwise stop at 20 tokens
        model.generation_config.suppress_tokens = tokenizer.suppress_token_ids  # never xxunk/xxpad/xxbos (`no_unk`)
        accelerator.print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")

    # 4. Length-bucketed batches (accelerate shards whole batches across processes), optimizer
    train_sampler = SortishBatchSampler(lengths["train"], args.per_device_train_batch_size, seed=args.seed)
    train_loader = loader_for(tokenized["train"], train_sampler, pair_collator(tokenizer.pad_token_id))
    eval_loaders = {
        split: loader_for(
            tokenized[split],
            SortedBatchSampler(lengths[split], args.per_device_eval_batch_size),
            pair_collator(tokenizer.pad_token_id, keep_index=True),
        )
        for split in tokenized
        if split != "train"
    }
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.weight_decay,
    )
    model, optimizer, train_loader, *prepared = accelerator.prepare(
        model, optimizer, train_loader, *eval_loaders.values()
    )
    eval_loaders = dict(zip(eval_loaders, prepared))

    total_steps = args.num_train_epochs * len(train_loader)
    if args.max_train_steps is not None:
        total_steps = min(total_steps, args.max_train_steps)
    epochs = math.ceil(total_steps / len(train_loader))
    decay_steps = total_steps
    if args.teacher_forcing_epochs is not None:
        decay_steps = max(1, round(args.teacher_forcing_epochs * len(train_loader)))

    def forcing(step: int) -> float:
        return teacher_forcing_ratio(
            step, decay_steps, args.teacher_forcing_schedule, args.teacher_forcing_start, args.teacher_forcing_end
        )

    def schedule(_=None):
        return make_scheduler("one_cycle", optimizer, total_steps, pct_start=args.pct_start)

    # 5. Resume, if asked: the epoch and batch the run stopped at, with its scheduler and RNG states
    start = {"epoch": 0, "batch": 0, "completed_steps": 0, "running_loss": [0.0, 0]}
    position, log, scheduler, _ = resume_from(accelerator, args.resume_from_checkpoint, output_dir, schedule, start)
    scheduler = scheduler or schedule()
    script_steps.start_tracking(accelerator, args, "train_translator")

    def validate(epoch: int) -> dict:
        """
        Validation loss, BLEU and chrF into the log, with the model's decoding settings; the test pairs' BLEU and
        chrF too when there are some (for the learning curve: nothing is chosen on them).
        """
        scores = evaluate_translator(
            model, eval_loaders["validation"], accelerator, tokenizer, references["validation"]
        )
        row = {"step": step, "epoch": epoch, "valid_loss": scores["loss"], "bleu": scores["bleu"]}
        row["chrf"] = scores["chrf"]
        tested = ""
        if "test" in eval_loaders:
            test = evaluate_translator(
                model, eval_loaders["test"], accelerator, tokenizer, references["test"], with_loss=False
            )
            row.update(test_bleu=test["bleu"], test_chrf=test["chrf"])
            tested = f", test BLEU {test['bleu']:.2f}"
        log.append(row)
        script_steps.log_metrics(accelerator, args, log[-1])
        accelerator.print(
            f"step {step} (epoch {epoch}): validation loss {scores['loss']:.4f}, BLEU {scores['bleu']:.2f}, "
            f"chrF {scores['chrf']:.2f}{tested}, teacher forcing {forcing(step):.2f}; e.g. {scores['examples'][:2]}"
        )
        return scores

    # 6. Train: epochs of sortish batches, teacher forcing decaying step by step
    step, (loss_sum, loss_count) = position["completed_steps"], position["running_loss"]
    scores = {}
    started = time.perf_counter()
    model.train()
    for epoch in range(position["epoch"], epochs):
        skip = position["batch"] if epoch == position["epoch"] else 0
        progress = tqdm(
            total=len(train_loader), initial=skip, desc=f"epoch {epoch}", disable=not accelerator.is_main_process
        )
        batches = script_steps.epoch_batches(accelerator, train_loader, train_sampler, epoch, skip)
        for batch_index, batch in enumerate(batches, start=skip):
            ratio = forcing(step)
            outputs = model(**batch, teacher_forcing_ratio=ratio)
            loss = outputs.loss
            if args.label_smoothing_factor:  # the validation loss stays the plain cross-entropy
                loss = smoothed_loss(
                    outputs.logits, batch["labels"], tokenizer.pad_token_id, args.label_smoothing_factor
                )
            script_steps.backward_and_step(accelerator, model, optimizer, scheduler, loss, args.max_grad_norm, step)
            step += 1
            loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}", forcing=f"{ratio:.2f}")
            if step % args.logging_steps == 0 or step == total_steps:
                mean = accelerator.reduce(torch.tensor(loss_sum / loss_count, device=accelerator.device), "mean")
                lr = optimizer.param_groups[0]["lr"]
                log.append({"step": step, "epoch": epoch, "train_loss": mean.item(), "learning_rate": lr})
                log[-1]["teacher_forcing"] = ratio
                script_steps.log_metrics(accelerator, args, log[-1])
                loss_sum, loss_count = 0.0, 0
            if args.eval_steps and step % args.eval_steps == 0:
                scores = validate(epoch)
            if script_steps.checkpoint_due(args.checkpointing_steps, step):
                here = {"epoch": epoch, "batch": batch_index + 1, "completed_steps": step}
                here.update(running_loss=[loss_sum, loss_count], log=log)
                save_checkpoint(accelerator, output_dir, f"step_{step}", here, scheduler, None)
            if step >= total_steps:
                break
        progress.close()

        # end of an epoch: validation, unless --eval_steps just did it
        if not (log and "valid_loss" in log[-1] and log[-1]["step"] == step):
            scores = validate(epoch)
        if script_steps.checkpoint_due(args.checkpointing_steps, step, end_of_epoch=True):
            here = {"epoch": epoch + 1, "batch": 0, "completed_steps": step, "running_loss": [loss_sum, loss_count]}
            save_checkpoint(accelerator, output_dir, f"epoch_{epoch}", {**here, "log": log}, scheduler, None)
    train_runtime = time.perf_counter() - started

    # 7. The saved decoding settings, chosen on the validation pairs; then the final scores with them: the last
    #    validation (greedy, as during training), the held-out test pairs, and beam search on both
    final = next(row for row in reversed(log) if "valid_loss" in row)
    results = {"eval_loss": final["valid_loss"], "eval_bleu": final["bleu"], "eval_chrf": final["chrf"]}
    results.update(train_steps=step, train_runtime_s=round(train_runtime, 1))
    beams = args.eval_num_beams
    results.update(final_scores(model, eval_loaders, accelerator, tokenizer, references, args.tune_generation, beams))
    results.setdefault("bleu_signature", scores.get("bleu_signature"))  # the last validation's, without test or beam
    script_steps.log_metrics(accelerator, args, {"step": step, **results})  # with the test and beam scores
    scored = ", ".join(f"{k} {v:.2f}" for k, v in results.items() if "bleu" in k and isinstance(v, float))
    accelerator.print(scored)

    # 8. Save: model (with remote code and the translation pipeline), tokenizer, results, log, plot, card; then push
    script_steps.save_model(accelerator, args, model, tokenizer)
    if not accelerator.is_main_process:
        return
    shutil.rmtree(tokenizer_dir, ignore_errors=True)  # its copy for the other processes; the folder has its own
    results["vector_coverage"] = coverage
    test, split = ("test_bleu" in results), ("test" if "test_bleu" in results else "eval")
    described = [args.dataset_name or f"local file `{Path(args.train_file).name}`"]
    described.append(f"{len(tokenized['train'])} training pairs")
    described += [
        f"{side} embedding from `{c['vectors']}` ({c['found']}/{c['total']} words, {c['coverage']:.1%})"
        for side, c in coverage.items()
    ]
    card = script_steps.save_results_and_card(
        accelerator,
        args,
        results,
        log,
        TRANSLATOR_CARD,
        plot_curve=True,
        language=[args.source_lang, args.target_lang],
        datasets=[args.dataset_name] if args.dataset_name else [],
        dataset_name=Path(args.test_file).name if test else script_steps.evaluation_data_name(args),
        dataset_type=None if test else args.dataset_name,
        datasets_description="; ".join(described),
        dataset_split="test" if test else "validation",
        metrics={
            name: results[f"{split}_{name}"]
            for name in ("bleu", "chrf", f"bleu_beam{beams}", f"chrf_beam{beams}")
            if f"{split}_{name}" in results
        },
    )
    if args.push_to_hub:
        script_steps.push_to_hub(accelerator, args, card)
    accelerator.print(str(output_dir.resolve()))


if __name__ == "__main__":
    script_steps.run_script(main)
