"""Train a ULMFiT text classifier with Accelerate: gradual unfreezing and discriminative learning rates.

Starts from a fine-tuned AWD-LSTM language model (its encoder; the head is new) or from a classifier. Documents are
batched by length (fastai's sortish sampler for training, sorted batches for evaluation) and read whole with BPT3C.
The recipe is fastbook's: one stage per unfreezing step (`--unfreeze "1,2,3,all"`: the last layer group, then the last
two, three, all), each a one-cycle (momentum 0.8-0.7-0.8) at its own peak rate spread as slice(lr / 2.6**4, lr) over
the layer groups, with AR/TAR in the loss and gradient clipping.

    python scripts/train_classifier.py --model_name_or_path runs/imdb-lm --train_file reviews.csv \\
        --text_column text --label_column label --output_dir runs/imdb-classifier
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

from ulmfit import AwdLstmConfig, metrics
from ulmfit.model_card.awd_lstm import awd_lstm_card
from ulmfit.pipelines.compatibility import check_tokenizer_fits_model
from ulmfit.training import (
    SortedBatchSampler,
    SortishBatchSampler,
    discriminative_param_groups,
    loader_for,
    script_steps,
)
from ulmfit.training.checkpoints import resume_from, save_checkpoint
from ulmfit.training.data import load_text_datasets
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
        if self.model_name_or_path is None:
            raise UsageError("--model_name_or_path is required: a fine-tuned language model folder or a classifier.")
        if self.text_column == self.label_column:
            raise UsageError(f"--text_column and --label_column are both {self.text_column!r}.")
        try:
            AwdLstmConfig.fastai_dropouts("classifier", self.drop_mult)
        except ValueError as error:
            raise UsageError(str(error).replace("`drop_mult`", "--drop_mult")) from error
        plan(self)


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


def check_labels(raw, label_column: str) -> list[str]:
    """The class names of the training labels; a classifier needs two, and every validation label among them."""
    names = label_names(raw["train"], label_column)
    if len(names) < 2:
        raise UsageError(
            f"--label_column {label_column!r} holds a single label ({names}) in the training data: a classifier "
            "needs at least two."
        )
    unseen = sorted({str(v) for v in raw["validation"][label_column]} - set(names))
    if unseen and not hasattr(raw["train"].features[label_column], "names"):
        raise UsageError(f"Validation labels {unseen[:10]} never occur in the training data (labels: {names}).")
    return names


def label_names(dataset, column: str) -> list[str]:
    """Class names: a `ClassLabel`'s names, or the sorted distinct values of the training labels."""
    feature = dataset.features[column]
    if hasattr(feature, "names"):
        return list(feature.names)
    return [str(value) for value in sorted(set(dataset[column]))]


@torch.no_grad()
def evaluate_classifier(model, eval_loader, accelerator, average: str) -> dict:
    """Accuracy and F1 over sorted batches, gathered across processes (duplicates of the last batch dropped)."""
    model.eval()
    accuracy, f1 = metrics.load("accuracy"), metrics.load("f1")
    for batch in eval_loader:
        predictions = model(**batch).logits.argmax(-1)
        predictions, references = accelerator.gather_for_metrics((predictions, batch["labels"]))
        accuracy.add_batch(predictions=predictions, references=references)
        f1.add_batch(predictions=predictions, references=references)
    model.train()
    return {**accuracy.compute(), **f1.compute(average=average)}


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
            extra_columns=[args.label_column],
            column_flags={args.label_column: "--label_column"},
        )
        for split, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples)):
            if limit:
                raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
        names = check_labels(raw, args.label_column)
        label2id = {name: index for index, name in enumerate(names)}
        class_label = hasattr(raw["train"].features[args.label_column], "names")  # values are already ids
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)

        def encode(batch):
            labels = [value if class_label else label2id[str(value)] for value in batch[args.label_column]]
            return {"input_ids": tokenizer(batch["text"]).input_ids, "labels": labels}

        tokenized = raw.map(encode, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")
    accelerator.print(f"labels: {names}; documents: {len(tokenized['train'])} train, {len(tokenized['validation'])}")

    # 2. Model: the encoder of the language model (fastai's classifier dropouts) and a new head, or a classifier
    config = AutoConfig.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    overrides = {"num_labels": len(names), "id2label": dict(enumerate(names)), "label2id": label2id}
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
    def collate(features):
        return tokenizer.pad(features, return_tensors="pt")

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

    # 4. Resume, if asked: the stage, epoch and batch the run stopped at, with its scheduler and RNG states
    average = "binary" if len(names) == 2 else "macro"

    def rebuild(saved):
        start_stage(unwrapped, optimizer, stages[saved["stage"]])
        return make_scheduler("one_cycle", optimizer, stage_steps(stages[saved["stage"]]))

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
            scheduler = make_scheduler("one_cycle", optimizer, stage_steps(stage))
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
            row.update(evaluate_classifier(model, eval_loader, accelerator, average))
            log.append(row)
            accelerator.print(
                f"epoch {epoch_index} ({stage.name}): accuracy {row['accuracy']:.4f}, f1 {row['f1']:.4f}"
            )
            script_steps.log_metrics(accelerator, args, row)
            epoch_index += 1
            if script_steps.checkpoint_due(args.checkpointing_steps, step, end_of_epoch=True):
                here = {"stage": stage_index, "epoch": epoch + 1, "batch": 0, "completed_steps": step, "log": log}
                save_checkpoint(accelerator, output_dir, f"epoch_{epoch_index - 1}", here, scheduler, None)

    # 6. Save: model, tokenizer (with remote code), results, log, card; then push
    script_steps.save_model(accelerator, args, model, tokenizer)
    if not accelerator.is_main_process:
        return
    results = {"eval_accuracy": log[-1]["accuracy"], "eval_f1": log[-1]["f1"], "train_steps": step}
    card = script_steps.save_results_and_card(
        accelerator,
        args,
        results,
        log,
        awd_lstm_card("classifier", backwards=getattr(tokenizer, "backwards", False)),
        base_model=args.model_name_or_path,
        datasets=[args.dataset_name] if args.dataset_name else [],
        datasets_description=args.dataset_name or f"local file `{Path(args.train_file).name}`",
        dataset_name=script_steps.evaluation_data_name(args),
        dataset_type=args.dataset_name,
        metrics={"accuracy": results["eval_accuracy"], "f1": results["eval_f1"]},
    )
    accelerator.print(f"accuracy {results['eval_accuracy']:.4f}, f1 {results['eval_f1']:.4f}")
    if args.push_to_hub:
        script_steps.push_to_hub(accelerator, args, card)
    accelerator.print(str(output_dir.resolve()))


if __name__ == "__main__":
    script_steps.run_script(main)
