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

from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import DistributedDataParallelKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, HfArgumentParser

from ulmfit import AwdLstmConfig, metrics
from ulmfit.model_card.awd_lstm import awd_lstm_card
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


def plan(args) -> list[Stage]:
    """The stages of `--unfreeze`, `--learning_rates` and `--epochs` (one value each per stage)."""
    groups, rates, epochs = (value.split(",") for value in (args.unfreeze, args.learning_rates, args.epochs))
    if not len(groups) == len(rates) == len(epochs):
        raise ValueError("--unfreeze, --learning_rates and --epochs need one value per stage each.")
    return [
        Stage(
            f"unfreeze_{g.strip()}",
            int(e),
            float(r),
            None if g.strip() == "all" else -int(g),
            args.discriminative_factor,
        )
        for g, r, e in zip(groups, rates, epochs)
    ]


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


def main():
    (args,) = HfArgumentParser(ClassifierTrainingArguments).parse_args_into_dataclasses()
    if args.model_name_or_path is None:
        raise ValueError("--model_name_or_path is required: a fine-tuned language model folder or a classifier.")
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
        )
        for split, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples)):
            if limit:
                raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
        names = label_names(raw["train"], args.label_column)
        unseen = sorted({str(v) for v in raw["validation"][args.label_column]} - set(names))
        if unseen and not hasattr(raw["train"].features[args.label_column], "names"):
            raise ValueError(f"Validation labels {unseen[:10]} never occur in the training data (labels: {names}).")
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
    main()
