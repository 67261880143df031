"""Train a ULMFiT text classifier with Accelerate: gradual unfreezing and discriminative learning rates.

Starts from a fine-tuned AWD-LSTM language model (its encoder; the head is new) or from a classifier. Documents are
batched by length (fastai's sortish sampler for training, sorted batches for evaluation) and read whole with BPT3C.
The recipe is fastbook's: one stage per unfreezing step (`--unfreeze "1,2,3,all"`: the last layer group, then the last
two, three, all), each a one-cycle (momentum 0.8-0.7-0.8; or ULMFiT's slanted triangular rates, `--schedule stlr`) at
its own peak rate spread as slice(lr / 2.6**4, lr) over the layer groups, with AR/TAR in the loss and gradient
clipping.

The labels may be of three kinds (`ulmfit.training.classification`), read from the data unless `--problem_type`
names one: one class per text (strings or integers), several tags per text (a list column, strings split on
`--label_separator`, or 0/1 columns named by `--label_columns`; binary cross-entropy, `--pos_weight auto`, decision
thresholds chosen on the validation data and saved in the config), or a number (a float column; MSE or `--loss huber`,
`--normalize_target`; predictions clipped to the training range unless `--no_clip_to_target_range`).

    python scripts/train_classifier.py --model_name_or_path runs/imdb-lm --train_file reviews.csv \\
        --text_column text --label_column label --output_dir runs/imdb-classifier
    python scripts/train_classifier.py ... --train_file comments.parquet --label_column labels   # lists: multi-label
    python scripts/train_classifier.py ... --label_column rating --problem_type regression --normalize_target
    python scripts/train_classifier.py ... --lr_find    # the learning-rate finder: lr_find.png and a suggestion
    accelerate launch --mixed_precision bf16 scripts/train_classifier.py ...   # one GPU, or several
    python scripts/train_classifier.py ... --with_tracking --report_to tensorboard   # logs under --output_dir
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import DistributedDataParallelKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from ulmfit import AwdLstmConfig
from ulmfit.model_card.awd_lstm import awd_lstm_card
from ulmfit.pipelines.compatibility import check_tokenizer_fits_model
from ulmfit.plotting import plot_lr_find
from ulmfit.training import (
    SortedBatchSampler,
    SortishBatchSampler,
    discriminative_param_groups,
    loader_for,
    script_steps,
)
from ulmfit.training.checkpoints import resume_from, save_checkpoint
from ulmfit.training.classification import (
    check_label_flags,
    choose_label_thresholds,
    evaluate_classifier,
    per_label_rows,
    prepare_script_labels,
)
from ulmfit.training.data import load_text_datasets
from ulmfit.training.language_modeling import find_learning_rate
from ulmfit.training.recipe import Stage, make_scheduler, start_stage
from ulmfit.training.script_steps import UsageError


# the local files a classifier reads: a text column and a label column (a .txt file has no label column)
CLASSIFIER_FILE_FORMATS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


@dataclass
class ClassifierTrainingArguments(script_steps.TrainingScriptArguments):
    """The classifier's arguments; output, seed, precision, `--cpu`, checkpoints and Hub come from the base."""

    # --- data -------------------------------------------------------------------------------------------------------
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset, e.g. `stanfordnlp/imdb`."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    train_file: str | None = field(default=None, metadata={"help": "Local csv/tsv/json/jsonl/parquet file."})
    validation_file: str | None = field(default=None, metadata={"help": "Same format as --train_file."})
    text_column: str = field(default="text", metadata={"help": "Column holding the documents."})
    label_column: str = field(default="label", metadata={"help": "Column holding the labels (ids or names)."})
    label_columns: str | None = field(default=None, metadata={"help": "Multi-label: 0/1 columns, comma-separated."})
    label_separator: str | None = field(default=None, metadata={"help": "Multi-label: split label strings on it."})
    problem_type: str = field(
        default="auto",
        metadata={"help": "auto | single_label_classification | multi_label_classification | regression"},
    )
    allow_empty_labels: bool = field(default=False, metadata={"help": "Multi-label: a text may have no tag."})
    normalize_target: bool = field(default=False, metadata={"help": "Regression: learn the standardised target."})
    clip_to_target_range: bool = field(
        default=True, metadata={"help": "Regression: clip predictions to the training targets' range."}
    )
    validation_split_percentage: float = field(default=10, metadata={"help": "Held out when there is no validation."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training documents."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation documents."})
    # --- model ------------------------------------------------------------------------------------------------------
    model_name_or_path: str = field(default=None, metadata={"help": "A fine-tuned LM folder, or a classifier."})
    drop_mult: float = field(default=0.5, metadata={"help": "Scales fastai's classifier dropouts (from an LM)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow remote code when loading from the Hub."})
    # --- optimisation -----------------------------------------------------------------------------------------------
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Documents per training batch."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Documents per evaluation batch."})
    unfreeze: str = field(default="1,2,3,all", metadata={"help": "Layer groups trained at each stage."})
    learning_rates: str = field(default="2e-2,1e-2,5e-3,1e-3", metadata={"help": "Peak rate of each stage."})
    epochs: str = field(default="1,1,1,2", metadata={"help": "Epochs of each stage."})
    discriminative_factor: float = field(default=2.6, metadata={"help": "LR divisor per layer group."})
    weight_decay: float = field(default=0.01, metadata={"help": "Decoupled weight decay (fastai's default)."})
    max_grad_norm: float = field(default=0.25, metadata={"help": "Gradient clipping (2018 notebook: 0.25)."})
    lr_scheduler_type: str = field(
        default="one_cycle", metadata={"help": "one_cycle | stlr (slanted_triangular)", "aliases": ["--schedule"]}
    )
    find_lr: bool = field(
        default=False,
        metadata={"help": "Run the learning-rate finder, save lr_find.png, exit.", "aliases": ["--lr_find"]},
    )
    loss: str = field(default="auto", metadata={"help": "Regression: mse or huber (auto: the kind's usual loss)."})
    pos_weight: str | None = field(
        default=None, metadata={"help": "Multi-label: `auto` weighs each label's positives."}
    )
    threshold: float | None = field(default=None, metadata={"help": "Multi-label: a fixed threshold (else chosen)."})
    per_label_thresholds: bool = field(default=False, metadata={"help": "Multi-label: a threshold per label."})
    # --- output -----------------------------------------------------------------------------------------------------
    output_dir: str = field(default="runs/ulmfit-classifier", metadata={"help": "Where the model and logs go."})

    def __post_init__(self):
        # every value checked as it is read: a bad one stops the run before any data is loaded
        super().__post_init__()
        script_steps.check_numbers(
            self,
            positive=("discriminative_factor",),
            at_least_one=(
                "max_train_samples",
                "max_eval_samples",
                "per_device_train_batch_size",
                "per_device_eval_batch_size",
            ),
            non_negative=("weight_decay", "max_grad_norm"),
            percentage=("validation_split_percentage",),
        )
        script_steps.check_text_data_flags(self)
        if self.per_device_train_batch_size < 2:  # the head's BatchNorm needs two documents in training mode
            raise UsageError("--per_device_train_batch_size must be at least 2 (the classifier head has BatchNorm).")
        if self.model_name_or_path is None:
            raise UsageError("--model_name_or_path is required: a fine-tuned language model folder or a classifier.")
        if self.text_column in self.label_column_names:
            raise UsageError(f"--text_column {self.text_column!r} is also a label column.")
        check_label_flags(self)
        try:
            AwdLstmConfig.fastai_dropouts("classifier", self.drop_mult)
        except ValueError as error:
            raise UsageError(str(error).replace("`drop_mult`", "--drop_mult")) from error
        plan(self)

    @property
    def label_column_names(self) -> list[str]:
        """The columns holding the labels: `--label_columns`, else `--label_column`."""
        if self.label_columns is not None:
            return [name.strip() for name in self.label_columns.split(",") if name.strip()]
        return [self.label_column]


def plan(args) -> list[Stage]:
    """The stages of `--unfreeze`, `--learning_rates` and `--epochs` (one value each per stage)."""
    groups = [group.strip() for group in args.unfreeze.split(",")]
    rates = script_steps.parse_number_list(args.learning_rates, "--learning_rates", float)
    epochs = script_steps.parse_number_list(args.epochs, "--epochs", int)
    if not len(groups) == len(rates) == len(epochs):
        raise UsageError(
            f"--unfreeze, --learning_rates and --epochs need one value per stage each, got {len(groups)}, "
            f"{len(rates)} and {len(epochs)}."
        )
    for group in groups:
        if group != "all" and not (group.isdigit() and int(group) >= 1):
            raise UsageError(
                f"--unfreeze takes layer-group counts (1, 2, ...) or `all`, e.g. 1,2,3,all; not {group!r}."
            )
    for rate in rates:
        if not (math.isfinite(rate) and rate > 0):
            raise UsageError(f"--learning_rates must all be finite numbers above 0, got {rate!r}.")
    if min(epochs) < 1:
        raise UsageError(f"--epochs must all be at least 1, got {args.epochs!r}.")
    return [
        Stage(f"unfreeze_{g}", e, r, None if g == "all" else -int(g), args.discriminative_factor)
        for g, r, e in zip(groups, rates, epochs)
    ]


def check_inputs(args: ClassifierTrainingArguments) -> None:
    """
    The data and the model the flags name exist and can be read, and the model is an AWD-LSTM with enough layer
    groups for `--unfreeze`; only its config is read.
    """
    script_steps.check_text_data_sources(args, CLASSIFIER_FILE_FORMATS)
    script_steps.check_model_source(args.model_name_or_path, "--model_name_or_path")
    try:
        config = AutoConfig.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    except (OSError, ValueError) as error:
        raise UsageError(
            f"--model_name_or_path {args.model_name_or_path}: its config cannot be read: {error}"
        ) from error
    if config.model_type != "awd_lstm":
        raise UsageError(
            f"--model_name_or_path {args.model_name_or_path} is a {config.model_type!r} model: give an AWD-LSTM "
            "language model (or classifier) folder."
        )
    groups = config.num_hidden_layers + 2  # the embedding, each LSTM layer, the head
    deepest = max((int(g) for g in args.unfreeze.split(",") if g.strip() != "all"), default=0)
    if deepest > groups:
        raise UsageError(f"--unfreeze {args.unfreeze!r} asks for {deepest} layer groups; the model has {groups}.")


def main(argv: list[str] | None = None):
    # 0. Every flag, input and the output folder checked before any work (a mistake: one line, exit status 2)
    args = script_steps.parse_arguments(ClassifierTrainingArguments, argv)
    check_inputs(args)
    script_steps.check_output_location(args)
    accelerator = script_steps.make_accelerator(
        args,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],  # frozen groups get no gradient
    )
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    stages = plan(args)

    # 1. Data: texts and labels; a validation label never seen in training is an error, not a silent mistake
    with accelerator.main_process_first():
        raw = load_text_datasets(
            args.dataset_name,
            args.dataset_config_name,
            args.train_file,
            args.validation_file,
            args.text_column,
            args.validation_split_percentage,
            seed=args.seed,
            extra_columns=args.label_column_names,
            column_flags={name: "--label_columns" if args.label_columns else "--label_column"
                          for name in args.label_column_names},
            row_numbers=True,
        )  # fmt: skip
        for split, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples)):
            if limit:
                raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
        raw, labels = prepare_script_labels(raw, args)  # every label checked; a mistake names its file and row
        batch = args.per_device_train_batch_size * accelerator.num_processes
        if len(raw["train"]) < batch:  # an incomplete last batch is dropped: there would be no batch at all
            raise UsageError(
                f"{len(raw['train'])} training documents are fewer than one batch ({batch}: "
                "--per_device_train_batch_size x processes); use a smaller batch size or more documents."
            )
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)

        def encode(batch):
            return {"input_ids": tokenizer(batch["text"]).input_ids}

        tokenized = raw.map(encode, batched=True, remove_columns=["text"], desc="Tokenizing")
    shown = labels.names if len(labels.names) <= 30 else [*labels.names[:30], "..."]
    accelerator.print(
        f"labels: {shown} ({labels.problem_type}); documents: {len(tokenized['train'])} train, "
        f"{len(tokenized['validation'])} validation"
    )

    # 2. Model: the encoder of the language model (fastai's classifier dropouts) and a new head, or a classifier
    config = AutoConfig.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    overrides = labels.config_overrides()
    overrides.update(regression_loss="huber" if args.loss == "huber" else "mse", label_thresholds=None)
    if "AwdLstmForSequenceClassification" not in (config.architectures or []):
        # fastai's `awd_lstm_clas_config` dropouts times drop_mult, as `text_classifier_learner` does (0.5)
        overrides.update(AwdLstmConfig.fastai_dropouts("classifier", args.drop_mult))
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model_name_or_path, trust_remote_code=args.trust_remote_code, **overrides
    )
    try:  # a folder whose tokenizer is not its model's: stop before training on ids that mean other words
        check_tokenizer_fits_model(tokenizer, model)
    except ValueError as error:
        raise UsageError(f"--model_name_or_path: {error} Save the model with its own tokenizer.") from error

    # 3. Length-bucketed batches (accelerate shards whole batches across processes), optimizer
    label_dtype = torch.long if labels.problem_type == "single_label_classification" else torch.float32

    def collate(features):
        targets = torch.tensor([feature.pop("labels") for feature in features], dtype=label_dtype)
        return {**tokenizer.pad(features, return_tensors="pt"), "labels": targets}

    lengths = {split: [len(ids) for ids in tokenized[split]["input_ids"]] for split in tokenized}
    train_sampler = SortishBatchSampler(
        lengths["train"], args.per_device_train_batch_size, seed=args.seed, drop_last=True
    )
    eval_sampler = SortedBatchSampler(lengths["validation"], args.per_device_eval_batch_size)
    train_loader, eval_loader = (
        loader_for(tokenized[split], sampler, collate)
        for split, sampler in (("train", train_sampler), ("validation", eval_sampler))
    )
    groups = discriminative_param_groups(model, stages[0].learning_rate, weight_decay=args.weight_decay)
    optimizer = torch.optim.AdamW(groups, betas=(0.8, 0.99))
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    unwrapped = accelerator.unwrap_model(model)

    def stage_steps(stage: Stage) -> int:
        return max(1, stage.epochs * len(train_loader))

    if args.find_lr:  # fastai's `lr_find` at the first stage's layer groups; the model is restored afterwards
        start_stage(unwrapped, optimizer, stages[0])
        batches = (batch for _ in range(1000) for batch in train_loader)
        rates, losses, suggestion = find_learning_rate(
            model, optimizer, batches, accelerator, loss_of=lambda batch: model(**batch).loss
        )
        if accelerator.is_main_process:
            output_dir.mkdir(parents=True, exist_ok=True)
            plot_lr_find(rates, losses, suggestion, output_dir / "lr_find.png")
        accelerator.print(f"suggested learning rate (valley): {suggestion:.2e}; plot: {output_dir / 'lr_find.png'}")
        return

    # 4. Resume, if asked: the stage, epoch and batch the run stopped at, with its scheduler and RNG states
    def rebuild(saved):
        start_stage(unwrapped, optimizer, stages[saved["stage"]])
        return make_scheduler(args.lr_scheduler_type, optimizer, stage_steps(stages[saved["stage"]]))

    start = {"stage": 0, "epoch": 0, "batch": 0, "completed_steps": 0}
    position, log, scheduler, _ = resume_from(accelerator, args.resume_from_checkpoint, output_dir, rebuild, start)
    script_steps.start_tracking(accelerator, args, "train_classifier")

    # 5. Gradual unfreezing: one one-cycle per stage
    step = position["completed_steps"]
    epoch_index = sum(stage.epochs for stage in stages[: position["stage"]]) + position["epoch"]
    for stage_index, stage in enumerate(stages):
        if stage_index < position["stage"]:
            continue
        resumed_here = stage_index == position["stage"] and scheduler is not None
        if not resumed_here:
            start_stage(unwrapped, optimizer, stage)
            scheduler = make_scheduler(args.lr_scheduler_type, optimizer, stage_steps(stage))
        first_epoch = position["epoch"] if stage_index == position["stage"] else 0
        for epoch in range(first_epoch, stage.epochs):
            skip = position["batch"] if (stage_index, epoch) == (position["stage"], position["epoch"]) else 0
            model.train()
            last_loss = position.get("train_loss") if skip else None
            progress = tqdm(
                total=len(train_loader),
                initial=skip,
                desc=f"{stage.name} epoch {epoch_index}",
                disable=not accelerator.is_main_process,
            )
            batches = script_steps.epoch_batches(accelerator, train_loader, train_sampler, epoch_index, skip)
            for batch_index, batch in enumerate(batches, start=skip):
                loss = model(**batch).loss
                script_steps.backward_and_step(
                    accelerator, model, optimizer, scheduler, loss, args.max_grad_norm, step
                )
                step += 1
                last_loss = loss.item()
                progress.update(1)
                progress.set_postfix(loss=f"{last_loss:.3f}", lr=f"{optimizer.param_groups[-1]['lr']:.2e}")
                if script_steps.checkpoint_due(args.checkpointing_steps, step):
                    here = {"stage": stage_index, "epoch": epoch, "batch": batch_index + 1, "train_loss": last_loss}
                    here.update(completed_steps=step, log=log)
                    save_checkpoint(accelerator, output_dir, f"step_{step}", here, scheduler, None)
            progress.close()

            row = {"epoch": epoch_index, "stage": stage.name, "step": step, "train_loss": last_loss}
            row.update(evaluate_classifier(model, eval_loader, accelerator, labels, args.threshold or 0.5))
            log.append(row)
            shown = ", ".join(
                f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "stage", "step", "train_loss")
            )
            accelerator.print(f"epoch {epoch_index} ({stage.name}): {shown}")
            script_steps.log_metrics(accelerator, args, row)
            epoch_index += 1
            if script_steps.checkpoint_due(args.checkpointing_steps, step, end_of_epoch=True):
                here = {"stage": stage_index, "epoch": epoch + 1, "batch": 0, "completed_steps": step, "log": log}
                save_checkpoint(accelerator, output_dir, f"epoch_{epoch_index - 1}", here, scheduler, None)

    # 6. Multi-label: the decision thresholds, chosen on the validation data (unless --threshold fixes one)
    results = {f"eval_{name}": value for name, value in log[-1].items() if name not in ("epoch", "stage", "step")}
    results.pop("eval_train_loss", None)
    if labels.problem_type == "multi_label_classification":
        results = choose_label_thresholds(model, eval_loader, accelerator, labels, args)
    results["train_steps"] = step

    # 7. Save: model, tokenizer (with remote code), results, log, card; then push
    script_steps.save_model(accelerator, args, model, tokenizer)
    if not accelerator.is_main_process:
        return
    card_metrics = {name[len("eval_") :]: value for name, value in results.items() if name.startswith("eval_")}
    card_metrics = {
        name: value for name, value in card_metrics.items() if isinstance(value, float) and "_at_" not in name
    }
    card = script_steps.save_results_and_card(
        accelerator,
        args,
        results,
        log,
        awd_lstm_card(
            "classifier", backwards=getattr(tokenizer, "backwards", False), problem_type=labels.problem_type
        ),
        base_model=args.model_name_or_path,
        datasets=[args.dataset_name] if args.dataset_name else [],
        datasets_description=args.dataset_name or f"local file `{Path(args.train_file).name}`",
        dataset_name=script_steps.evaluation_data_name(args),
        dataset_type=args.dataset_name,
        metrics=card_metrics,
        per_label=per_label_rows(results),
    )
    accelerator.print(", ".join(f"{name} {value:.4f}" for name, value in card_metrics.items()))
    if args.push_to_hub:
        script_steps.push_to_hub(accelerator, args, card)
    accelerator.print(str(output_dir.resolve()))


if __name__ == "__main__":
    script_steps.run_script(main)
