"""Pretrain or fine-tune an AWD-LSTM language model with Accelerate, the AWD-LSTM / ULMFiT way.

Data come from the Hub (`--dataset_name wikitext --dataset_config_name wikitext-103-raw-v1`) or local files
(csv/tsv, json/jsonl, parquet, txt). Documents are laid end to end in one stream cut into `batch_size` rows per
process; BPTT windows of variable length (AWD-LSTM §4.1, learning rate scaled by seq_len/bptt) carry the recurrent
state. Optimisation: AdamW with betas (0.8, 0.99), one-cycle (fastai `fit_one_cycle`, momentum cycled) or slanted
triangular learning rates, gradient clipping and accumulation, mixed precision. Fine-tuning a pretrained model follows
ULMFiT: `--frozen_epochs` with only the embedding/decoder training, then everything with discriminative learning rates
(÷2.6 per layer group); with `--train_tokenizer` the target corpus gets its own vocabulary and new words start from
the mean embedding (fastai's `match_embeds`); `--drop_mult` sets fastai's dropouts times a factor, as
`language_model_learner(..., drop_mult=...)` does.

    # CPU smoke run on a text file (`--cpu` keeps it there even when a GPU is available)
    python scripts/train_language_model.py --train_file corpus.txt --output_dir runs/tiny --cpu \\
        --config_overrides "embedding_size=64,hidden_size=128,num_hidden_layers=2" --max_train_steps 50
    # the same with a 15k-piece unigram (SentencePiece) vocabulary: any language, a smaller softmax
    python scripts/train_language_model.py --train_file corpus.txt --output_dir runs/tiny-unigram --cpu \\
        --tokenizer_type unigram --vocab_size 15000 --max_train_steps 50
    # the learning-rate finder (writes lr_find.png and prints a suggestion)
    python scripts/train_language_model.py --train_file corpus.txt --output_dir runs/tiny --find_lr
    # fine-tune a pretrained model on IMDb with the ULMFiT recipe, on one GPU, bf16
    accelerate launch --mixed_precision bf16 scripts/train_language_model.py --model_name_or_path runs/wt103 \\
        --train_file imdb.parquet --train_tokenizer --drop_mult 0.3 --frozen_epochs 1 --num_train_epochs 10 \\
        --output_dir runs/imdb-lm
    # two processes on a CPU-only machine (gloo): ACCELERATE_USE_CPU=1 is what makes them one distributed run
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 scripts/train_language_model.py ...
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from accelerate import DistributedDataParallelKwargs
from accelerate.utils import set_seed
from datasets import Dataset
from datasets.distributed import split_dataset_by_node
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmTokenizer
from ulmfit.model_card import CHECKPOINT_PATTERNS
from ulmfit.model_card.awd_lstm import awd_lstm_card
from ulmfit.plotting import plot_lr_find
from ulmfit.training import discriminative_param_groups, scale_learning_rates, script_steps, unfreeze
from ulmfit.training.checkpoints import resume_from, save_checkpoint
from ulmfit.training.data import (
    TEXT_FILE_FORMATS,
    LanguageModelStream,
    StreamingLanguageModelStream,
    load_text_datasets,
)
from ulmfit.training.language_modeling import (
    evaluate_language_model,
    find_learning_rate,
    match_embeddings,
)
from ulmfit.training.recipe import apply_config_overrides, language_model_stages, make_scheduler, start_stage
from ulmfit.training.script_steps import UsageError


LR_SCHEDULERS = ("one_cycle", "slanted_triangular", "constant")
TOKENIZER_TYPES = ("word", "unigram", "bpe")


@dataclass
class LanguageModelTrainingArguments(script_steps.TrainingScriptArguments):
    """The language model's arguments; output, seed, precision, `--cpu`, checkpoints and Hub come from the base."""

    # --- data -------------------------------------------------------------------------------------------------------
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset, e.g. `wikitext`."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "e.g. `wikitext-103-raw-v1`."})
    train_file: str | None = field(default=None, metadata={"help": "Local csv/tsv/json/jsonl/parquet/txt file."})
    validation_file: str | None = field(default=None, metadata={"help": "Same format as --train_file."})
    text_column: str = field(default="text", metadata={"help": "Column holding the documents."})
    validation_split_percentage: float = field(default=5, metadata={"help": "Held out when there is no validation."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Read the training corpus as a stream (larger than memory); needs --max_train_steps."},
    )
    shuffle_buffer_size: int = field(default=10000, metadata={"help": "Streaming: documents in the shuffle buffer."})
    max_tokenizer_samples: int = field(
        default=100000, metadata={"help": "Streaming: documents read to build the vocabulary."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training documents."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep only this many validation documents (streaming: default 2,000)."}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for `datasets.map`."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-tokenize instead of using the datasets cache."})
    # --- tokenizer --------------------------------------------------------------------------------------------------
    tokenizer_name: str | None = field(default=None, metadata={"help": "Reuse this tokenizer (folder or Hub id)."})
    train_tokenizer: bool = field(
        default=False,
        metadata={
            "help": "Fine-tuning: build a new vocabulary from this corpus (always done when training from scratch "
            "without --tokenizer_name); new words start from the mean embedding."
        },
    )
    max_vocab: int = field(default=60000, metadata={"help": "Vocabulary size when training a tokenizer (fastai)."})
    min_freq: int = field(default=3, metadata={"help": "Fewest occurrences of a kept word (fastai)."})
    tokenizer_type: str = field(
        default="word",
        metadata={
            "help": "A new tokenizer's kind: word (fastai's English words) | unigram | bpe (subword, any language)."
        },
    )
    vocab_size: int = field(
        default=15000,
        metadata={"help": "Pieces of a new unigram/bpe tokenizer (a word one: --max_vocab, --min_freq)."},
    )
    backwards: bool = field(default=False, metadata={"help": "Train a backward LM (reversed token order)."})
    # --- model ------------------------------------------------------------------------------------------------------
    model_name_or_path: str | None = field(default=None, metadata={"help": "Pretrained LM to fine-tune."})
    config_overrides: str | None = field(
        default=None, metadata={"help": 'From scratch: e.g. "hidden_size=64,num_hidden_layers=2".'}
    )
    drop_mult: float | None = field(
        default=None,
        metadata={"help": "fastai's LM dropouts times this (fastbook's IMDb fine-tuning: 0.3); default: the model's."},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow remote code when loading from the Hub."})
    # --- optimisation -----------------------------------------------------------------------------------------------
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Rows of the token stream per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Rows of the validation stream."})
    bptt: int = field(default=70, metadata={"help": "Mean BPTT window length."})
    fixed_bptt: bool = field(default=False, metadata={"help": "Fixed windows instead of AWD-LSTM's variable ones."})
    learning_rate: float = field(default=2e-3, metadata={"help": "Peak learning rate (of the last layer group)."})
    frozen_learning_rate: float = field(default=2e-2, metadata={"help": "Peak learning rate of the frozen stage."})
    frozen_epochs: int | None = field(
        default=None, metadata={"help": "Epochs training only embedding+decoder first (default 1 when fine-tuning)."}
    )
    discriminative_factor: float = field(default=2.6, metadata={"help": "LR divisor per layer group (fine-tuning)."})
    num_train_epochs: int = field(default=1, metadata={"help": "Epochs with every layer training."})
    max_train_steps: int | None = field(default=None, metadata={"help": "Stop after this many optimizer steps."})
    lr_scheduler_type: str = field(default="one_cycle", metadata={"help": "one_cycle | slanted_triangular | constant"})
    pct_start: float = field(default=0.25, metadata={"help": "One-cycle warm-up fraction."})
    cut_frac: float = field(default=0.1, metadata={"help": "STLR rising fraction."})
    stlr_ratio: float = field(default=32.0, metadata={"help": "STLR max/min learning rate ratio."})
    adam_beta1: float = field(default=0.8, metadata={"help": "Adam beta1 (cycled 0.8-0.7-0.8 by one-cycle)."})
    adam_beta2: float = field(default=0.99, metadata={"help": "Adam beta2."})
    weight_decay: float = field(default=0.01, metadata={"help": "Decoupled weight decay (fastai's default)."})
    max_grad_norm: float = field(default=0.25, metadata={"help": "Gradient clipping (AWD-LSTM: 0.25); 0 disables."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Windows per optimizer step."})
    # --- logging and checkpoints ------------------------------------------------------------------------------------
    output_dir: str = field(default="runs/awd-lstm", metadata={"help": "Where the model, logs and plots go."})
    logging_steps: int = field(default=20, metadata={"help": "Log the training loss every N optimizer steps."})
    find_lr: bool = field(default=False, metadata={"help": "Run the learning-rate finder, save lr_find.png, exit."})

    def __post_init__(self):
        # every value checked as it is read: a bad one stops the run before any data is loaded
        super().__post_init__()
        script_steps.check_numbers(
            self,
            positive=("learning_rate", "frozen_learning_rate", "discriminative_factor"),
            at_least_one=(
                "shuffle_buffer_size",
                "max_tokenizer_samples",
                "max_train_samples",
                "max_eval_samples",
                "preprocessing_num_workers",
                "max_vocab",
                "min_freq",
                "per_device_train_batch_size",
                "per_device_eval_batch_size",
                "bptt",
                "num_train_epochs",
                "max_train_steps",
                "gradient_accumulation_steps",
                "logging_steps",
                "stlr_ratio",
            ),
            non_negative=("frozen_epochs", "weight_decay", "max_grad_norm"),
            open_fraction=("pct_start", "cut_frac"),
            probability=("adam_beta1", "adam_beta2"),
            percentage=("validation_split_percentage",),
        )
        if self.lr_scheduler_type not in LR_SCHEDULERS:
            raise UsageError(
                f"--lr_scheduler_type must be one of {', '.join(LR_SCHEDULERS)}, not {self.lr_scheduler_type!r}."
            )
        script_steps.check_text_data_flags(self)
        if self.streaming and self.max_train_steps is None:
            raise UsageError("--streaming needs --max_train_steps: a stream has no known length to make epochs of.")
        if self.train_tokenizer and self.tokenizer_name:
            raise UsageError("--train_tokenizer builds a new vocabulary: leave out --tokenizer_name, or that flag.")
        if self.tokenizer_type not in TOKENIZER_TYPES:
            raise UsageError(
                f"--tokenizer_type must be one of {', '.join(TOKENIZER_TYPES)}, not {self.tokenizer_type!r}."
            )
        if self.vocab_size < 10:  # fastai's nine special tokens and one piece
            raise UsageError(f"--vocab_size must be at least 10, got {self.vocab_size}.")
        if self.tokenizer_type != "word" and (
            self.tokenizer_name or (self.model_name_or_path and not self.train_tokenizer)
        ):
            raise UsageError(
                f"--tokenizer_type {self.tokenizer_type} trains a new tokenizer: leave out --tokenizer_name, and add "
                "--train_tokenizer when fine-tuning a --model_name_or_path."
            )
        try:
            language_model_dropouts(self.drop_mult)
        except ValueError as error:
            raise UsageError(str(error).replace("`drop_mult`", "--drop_mult")) from error
        if self.config_overrides:
            if self.model_name_or_path is not None:
                raise UsageError("--config_overrides shapes a new model; a --model_name_or_path keeps its own.")
            if "vocab_size" in self.config_overrides:
                raise UsageError("--config_overrides cannot set vocab_size: it is the tokenizer's.")
            try:
                apply_config_overrides(AwdLstmConfig(), self.config_overrides)
            except (ValueError, TypeError) as error:
                raise UsageError(f"--config_overrides {self.config_overrides!r}: {error}") from error


def language_model_dropouts(drop_mult: float | None) -> dict[str, float]:
    """fastai's `awd_lstm_lm_config` dropouts times `drop_mult` (`language_model_learner`); None: the model's."""
    return {} if drop_mult is None else AwdLstmConfig.fastai_dropouts("language_model", drop_mult)


def token_stream(documents, batch_size: int, flag: str, **kwargs) -> LanguageModelStream:
    """A `LanguageModelStream`; a split too small to fill `batch_size` rows is a usage error that names `flag`."""
    try:
        return LanguageModelStream(documents, batch_size, **kwargs)
    except ValueError as error:
        raise UsageError(f"{flag} {batch_size}: {error}") from error


def check_inputs(args: LanguageModelTrainingArguments) -> None:
    """The data, the model and the tokenizer the flags name exist and can be read; nothing is loaded yet."""
    script_steps.check_text_data_sources(args, TEXT_FILE_FORMATS)
    script_steps.check_model_source(args.model_name_or_path, "--model_name_or_path")
    script_steps.check_model_source(args.tokenizer_name, "--tokenizer_name", "tokenizer_config.json")


def main(argv: list[str] | None = None):
    # 0. Every flag, input and the output folder checked before any work (a mistake: one line, exit status 2)
    args = script_steps.parse_arguments(LanguageModelTrainingArguments, argv)
    check_inputs(args)
    script_steps.check_output_location(args)
    fine_tuning = args.model_name_or_path is not None
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)  # frozen groups get no gradient
    accelerator = script_steps.make_accelerator(
        args,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        kwargs_handlers=[ddp],
    )
    set_seed(args.seed)
    dropouts = language_model_dropouts(args.drop_mult)
    output_dir = Path(args.output_dir)
    accelerator.print(f"{accelerator.num_processes} process(es), {accelerator.distributed_type}, {accelerator.device}")

    # 1-3 write the new tokenizer before the data are known to fill a batch: a mistake found there removes it
    with script_steps.removed_if_start_fails(accelerator, args.output_dir):
        # 1. Data and tokenizer (the main process goes first, so the others reuse its tokenizer and datasets cache)
        with accelerator.main_process_first():
            raw = load_text_datasets(
                args.dataset_name,
                args.dataset_config_name,
                args.train_file,
                args.validation_file,
                args.text_column,
                args.validation_split_percentage,
                streaming=args.streaming,
                seed=args.seed,
            )
            if args.streaming:
                # the validation texts are read into memory; the training texts stay a stream
                raw["validation"] = Dataset.from_list(list(raw["validation"].take(args.max_eval_samples or 2000)))
                if args.max_train_samples:
                    raw["train"] = raw["train"].take(args.max_train_samples)
            else:
                if args.max_train_samples:
                    raw["train"] = raw["train"].select(range(min(args.max_train_samples, len(raw["train"]))))
                if args.max_eval_samples:
                    raw["validation"] = raw["validation"].select(
                        range(min(args.max_eval_samples, len(raw["validation"])))
                    )
            output_dir.mkdir(parents=True, exist_ok=True)  # the inputs are read and checked: the run starts here
            train_tokenizer = args.train_tokenizer or not (fine_tuning or args.tokenizer_name)
            tokenizer_dir = output_dir / "tokenizer"
            if train_tokenizer and accelerator.is_main_process:
                texts = (
                    (row["text"] for row in raw["train"].take(args.max_tokenizer_samples))
                    if args.streaming
                    else raw["train"]["text"]
                )
                if args.tokenizer_type == "word":
                    tokenizer = AwdLstmTokenizer.train(texts, args.max_vocab, args.min_freq, args.backwards)
                else:  # fastai's rules, then a subword model of --vocab_size pieces
                    tokenizer = AwdLstmTokenizer.train(
                        texts, backwards=args.backwards, tokenizer_type=args.tokenizer_type, vocab_size=args.vocab_size
                    )
                tokenizer.save_pretrained(tokenizer_dir)
        with accelerator.main_process_first():
            source = tokenizer_dir if train_tokenizer else (args.tokenizer_name or args.model_name_or_path)
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=args.trust_remote_code)

            def encode(batch):
                return {"input_ids": tokenizer(batch["text"]).input_ids}

            in_memory = {"num_proc": args.preprocessing_num_workers, "load_from_cache_file": not args.overwrite_cache}
            tokenized = {
                split: raw[split].map(
                    encode, batched=True, remove_columns=["text"]
                )  # a stream: tokenized as it is read
                if args.streaming and split == "train"
                else raw[split].map(encode, batched=True, remove_columns=["text"], desc="Tokenizing", **in_memory)
                for split in ("train", "validation")
            }
        size = "a stream" if args.streaming else f"{len(tokenized['train'])} documents"
        accelerator.print(
            f"vocabulary: {len(tokenizer)} tokens; train: {size}; validation: {len(tokenized['validation'])}"
        )

        # 2. Model: a pretrained one (its vocabulary matched to ours if we built a new one) or a new one
        if fine_tuning:
            model = AutoModelForCausalLM.from_pretrained(
                args.model_name_or_path, trust_remote_code=args.trust_remote_code, **dropouts
            )
            if train_tokenizer:
                old_vocab = AutoTokenizer.from_pretrained(
                    args.model_name_or_path, trust_remote_code=args.trust_remote_code
                ).get_vocab()
                counts = match_embeddings(model, old_vocab, tokenizer.get_vocab())
                accelerator.print(
                    f"vocabulary matched: {counts['kept']} tokens kept their embedding, {counts['spelled']} pieces "
                    f"took their word's, {counts['new']} new"
                )
        else:
            config = AwdLstmConfig(vocab_size=len(tokenizer), **dropouts)
            model = AwdLstmForCausalLM(apply_config_overrides(config, args.config_overrides or ""))
        if len(tokenizer) != model.config.vocab_size:
            raise UsageError(
                f"The tokenizer has {len(tokenizer)} tokens but the model {model.config.vocab_size}: give the model's "
                "own tokenizer (leave out --tokenizer_name), or --train_tokenizer to match a new vocabulary to it."
            )
        model.generation_config.suppress_tokens = tokenizer.suppress_token_ids
        accelerator.print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")

        # 3. Streams (each process its own rows), optimizer, and the training plan
        stream_kwargs = {"num_processes": accelerator.num_processes, "process_index": accelerator.process_index}
        if args.streaming:
            shuffled = tokenized["train"].shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
            own = split_dataset_by_node(shuffled, rank=accelerator.process_index, world_size=accelerator.num_processes)
            train_stream = StreamingLanguageModelStream(
                own, args.per_device_train_batch_size, args.bptt, variable_length=not args.fixed_bptt, seed=args.seed
            )
        else:
            train_stream = token_stream(
                tokenized["train"]["input_ids"],
                args.per_device_train_batch_size,
                "--per_device_train_batch_size",
                bptt=args.bptt,
                variable_length=not args.fixed_bptt,
                seed=args.seed,
                **stream_kwargs,
            )
        valid_stream = token_stream(
            tokenized["validation"]["input_ids"],
            args.per_device_eval_batch_size,
            "--per_device_eval_batch_size",
            bptt=args.bptt,
            variable_length=False,
            shuffle=False,
            **stream_kwargs,
        )
    groups = discriminative_param_groups(model, args.learning_rate, weight_decay=args.weight_decay)
    optimizer = torch.optim.AdamW(groups, betas=(args.adam_beta1, args.adam_beta2))
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)

    if args.find_lr:
        if accelerator.is_main_process:
            unfreeze(unwrapped)
        windows = ({k: v.to(accelerator.device) for k, v in w.items()} for w in train_stream)
        lrs, losses, suggestion = find_learning_rate(model, optimizer, windows, accelerator)
        if accelerator.is_main_process:
            plot_lr_find(lrs, losses, suggestion, output_dir / "lr_find.png")
        accelerator.print(f"suggested learning rate (valley): {suggestion:.2e}; plot: {output_dir / 'lr_find.png'}")
        return

    stages = language_model_stages(
        fine_tuning,
        args.num_train_epochs,
        args.learning_rate,
        args.frozen_epochs,
        args.frozen_learning_rate,
        args.discriminative_factor,
    )
    if args.streaming:
        # no epochs in a stream: each stage is one pass that lasts its share of --max_train_steps
        stage_steps = [stage.epochs for stage in stages]
        stages = [replace(stage, epochs=1) for stage in stages]
    else:
        windows_per_epoch = [[] for _ in stages]
        for stage_index, stage in enumerate(stages):
            for epoch in range(stage.epochs):
                train_stream.set_epoch(sum(s.epochs for s in stages[:stage_index]) + epoch)
                windows_per_epoch[stage_index].append(len(train_stream))
        stage_steps = [sum(n // args.gradient_accumulation_steps for n in epochs) for epochs in windows_per_epoch]
    if args.max_train_steps is not None and (args.streaming or args.max_train_steps < sum(stage_steps)):
        # a shorter run: every stage keeps its share, so each one-cycle still completes within its stage
        shares = [max(1, round(args.max_train_steps * n / sum(stage_steps))) for n in stage_steps]
        shares[-1] = max(1, args.max_train_steps - sum(shares[:-1]))
        stage_steps = shares
    total_steps = sum(stage_steps)

    def schedule(total_steps):
        return make_scheduler(
            args.lr_scheduler_type,
            optimizer,
            total_steps,
            pct_start=args.pct_start,
            cut_frac=args.cut_frac,
            ratio=args.stlr_ratio,
        )

    # 4. Resume, if asked: the stage, epoch and window the run stopped at, with its scheduler and carried state
    def rebuild(saved):
        start_stage(unwrapped, optimizer, stages[saved["stage"]])
        return schedule(stage_steps[saved["stage"]])

    start = {"stage": 0, "epoch": 0, "window": 0, "completed_steps": 0}
    position, log, scheduler, state = resume_from(accelerator, args.resume_from_checkpoint, output_dir, rebuild, start)

    script_steps.start_tracking(accelerator, args, "train_language_model")

    # 5. Train: stages -> epochs -> BPTT windows
    completed_steps = position["completed_steps"]
    progress = tqdm(total=total_steps, initial=completed_steps, disable=not accelerator.is_local_main_process)
    model.train()
    for stage_index in range(position["stage"], len(stages)):
        stage = stages[stage_index]
        stage_end = sum(stage_steps[: stage_index + 1])  # the optimizer step at which this stage is over
        done = completed_steps >= stage_end
        if scheduler is None or stage_index != position["stage"]:
            start_stage(unwrapped, optimizer, stage)
            scheduler = schedule(stage_steps[stage_index])
        first_epoch = position["epoch"] if stage_index == position["stage"] else 0
        for epoch in range(first_epoch, stage.epochs):
            global_epoch = sum(s.epochs for s in stages[:stage_index]) + epoch
            train_stream.set_epoch(global_epoch)
            start = position["window"] if (stage_index, epoch) == (position["stage"], position["epoch"]) else 0
            if start == 0:
                state = None  # a new epoch reads a new shuffle of the documents
            for window_index, window in enumerate(train_stream.iter_from(start), start=start):
                if done:
                    break
                inputs = window["input_ids"].to(accelerator.device)
                targets = window["labels"].to(accelerator.device)
                with accelerator.accumulate(model):
                    scale_learning_rates(optimizer, inputs.size(1) / args.bptt)  # AWD-LSTM §4.1
                    outputs = model(input_ids=inputs, state=state, labels=targets, shift_labels=targets)
                    state = tuple((h.detach(), c.detach()) for h, c in outputs.state)
                    script_steps.backward_and_step(
                        accelerator, model, optimizer, scheduler, outputs.loss, args.max_grad_norm, completed_steps
                    )
                if not accelerator.sync_gradients:
                    continue
                completed_steps += 1
                progress.update(1)
                done = completed_steps >= stage_end
                if completed_steps % args.logging_steps == 0 or done:
                    loss = accelerator.reduce(outputs.loss.detach(), reduction="mean").item()
                    lr = optimizer.param_groups[-1]["lr"]
                    progress.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", stage=stage.name)
                    row = {"step": completed_steps, "epoch": global_epoch, "train_loss": loss, "learning_rate": lr}
                    log.append(row)
                    script_steps.log_metrics(accelerator, args, row)
                if script_steps.checkpoint_due(args.checkpointing_steps, completed_steps):
                    here = {
                        "stage": stage_index,
                        "epoch": epoch,
                        "window": window_index + 1,
                        "completed_steps": completed_steps,
                        "log": log,
                    }
                    save_checkpoint(accelerator, output_dir, f"step_{completed_steps}", here, scheduler, state)

            # end of an epoch: validation, and an epoch checkpoint
            results = evaluate_language_model(model, valid_stream, accelerator)
            if accelerator.is_main_process:
                row = {
                    "step": completed_steps,
                    "epoch": global_epoch,
                    "valid_loss": results["loss"],
                    "perplexity": results["perplexity"],
                    "accuracy": results["accuracy"],
                }
                log.append(row)
                accelerator.print(
                    f"epoch {global_epoch} ({stage.name}): validation loss {results['loss']:.4f}, "
                    f"perplexity {results['perplexity']:.2f}, accuracy {results['accuracy']:.4f}"
                )
                script_steps.log_metrics(accelerator, args, row)
            if script_steps.checkpoint_due(args.checkpointing_steps, completed_steps, end_of_epoch=True):
                here = {
                    "stage": stage_index,
                    "epoch": epoch + 1,
                    "window": 0,
                    "completed_steps": completed_steps,
                    "log": log,
                }
                save_checkpoint(accelerator, output_dir, f"epoch_{global_epoch}", here, scheduler, None)
            if done:
                break
    progress.close()

    # 6. Several processes must end with the same weights, having read different rows of the stream
    if accelerator.num_processes > 1:
        checksum = torch.stack([p.detach().double().sum() for p in unwrapped.parameters()]).sum().reshape(1)
        first_tokens = next(iter(train_stream))["input_ids"][:, 0].to(accelerator.device)
        checksums = accelerator.gather(checksum.to(accelerator.device)).tolist()
        firsts = accelerator.gather(first_tokens).view(accelerator.num_processes, -1).tolist()
        accelerator.print(f"weight checksums per process: {checksums}; identical: {len(set(checksums)) == 1}")
        accelerator.print(f"first token of each row, per process: {firsts}")

    # 7. Save: model, tokenizer (with remote code), results, log, plot, model card; then push
    script_steps.save_model(accelerator, args, model, tokenizer)
    if not accelerator.is_main_process:
        return
    final = next((row for row in reversed(log) if "valid_loss" in row), {})
    results = {
        "eval_loss": final.get("valid_loss"),
        "perplexity": final.get("perplexity"),
        "eval_accuracy": final.get("accuracy"),
        "train_steps": completed_steps,
    }
    card = script_steps.save_results_and_card(
        accelerator,
        args,
        results,
        log,
        awd_lstm_card("lm", backwards=getattr(tokenizer, "backwards", False)),
        plot_curve=True,
        base_model=args.model_name_or_path if fine_tuning else None,
        datasets=[args.dataset_name] if args.dataset_name else [],
        dataset_name=script_steps.evaluation_data_name(args),
        dataset_type=args.dataset_name,
        datasets_description=args.dataset_name or f"local file `{Path(args.train_file).name}`",
        metrics={
            k: v
            for k, v in (("perplexity", final.get("perplexity")), ("accuracy", final.get("accuracy")))
            if v is not None
        },
    )
    accelerator.print(f"validation perplexity {results['perplexity']}, accuracy {results['eval_accuracy']}")
    if args.push_to_hub:
        (output_dir / ".gitignore").write_text("step_*\nepoch_*\n*.tmp\n")
        script_steps.push_to_hub(accelerator, args, card, [*CHECKPOINT_PATTERNS, "tokenizer/*"])
    accelerator.print(str(output_dir.resolve()))


if __name__ == "__main__":
    script_steps.run_script(main)
