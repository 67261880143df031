"""
DeViSE training helpers (fast.ai 2018, lesson 11, `devise.ipynb`; Frome et al., NeurIPS 2013), used by
`scripts/train_devise.py` and its zero-shot benchmark:

- Data: [`load_image_datasets`] (a Hub dataset, a parquet/csv/json(l)/arrow file or an imagefolder, images left
  undecoded), [`class_synonyms`] (the class names and every image's class id), [`parse_unseen_classes`] (the classes
  held out for zero-shot evaluation), and [`build_devise_data`], which puts them together into a [`DeviseData`]:
  the unseen classes out of the training images, the classes without a word vector dropped or refused.
- Word vectors: [`build_label_vocabulary`] gives every class name a vector, with a report of what had to be borrowed.
- Batches: [`ImageRows`] and [`image_collator`] (images decoded per batch, a bad file named by split, row and path),
  [`image_processor_for`] (the backbone's own preprocessing).
- Features: [`backbone_features`] and [`precompute_backbone_features`], the frozen backbone's concat-pooled features
  cached under [`feature_cache_key`] (the notebook's `precompute=True`).
- Metrics: [`embed_validation`] (the validation images' embeddings, gathered across processes) and
  [`evaluate_embeddings`] (seen-class top-k, zero-shot and generalized hit@k, via [`ranked`]).

A class name may list ImageNet-style synonyms after commas, the first being the class's name. A word with no vector
borrows one, in order: a closed compound split into two frequent words ("birdhouse" = bird + house), a synonym whose
words all have vectors ("jinrikisha" -> rickshaw), the rest of the name; the borrowed word joins the vocabulary, so the
class name works as a candidate label.
"""

import difflib
import hashlib
import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import AutoImageProcessor

from .. import metrics
from ..models.devise.image_processing_devise import DeviseImageProcessor, open_image
from ..models.devise.tokenization_devise import DeviseTokenizer, load_devise_word_vectors, read_word_vectors
from .data import load_dataset_or_explain
from .safe_writes import SMALL_FILES_BYTES, DiskWriteError, state_bytes, write_file_atomically
from .samplers import SortedBatchSampler, loader_for
from .script_steps import MissingInputError, UsageError


# how DeviseTokenizer cuts a text into words, and the punctuation it strips around them
_WORD_SEPARATORS = re.compile(r"[\s_+,;/]+")
_STRIP = "\"'.,;:!?()[]{}"
# a closed compound ("birdhouse") is split only into two words of at least 3 letters among the most frequent ones
COMPOUND_PART_MAX_RANK = 20_000


_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}


# ---------------------------------------------------------------------------------------------------------------------
# Data: images, class names, held-out classes


def load_image_datasets(
    image_column: str = "image",
    label_column: str = "label",
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_split: str = "train",
    validation_split: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    train_dir: str | None = None,
    validation_dir: str | None = None,
    validation_split_percentage: float = 10,
    seed: int = 42,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> dict[str, datasets.Dataset]:
    """
    `train` and `validation` splits with undecoded images (decoding is ours, so a bad file is named), from exactly one
    of a Hub dataset (`dataset_name`; validation: `validation_split`, else its validation, valid or test split), a
    local parquet/csv/json(l)/arrow file (`train_file`; image paths in it are relative to it) or an imagefolder
    (`train_dir`, one sub-folder per class). Without a validation split, `validation_split_percentage` percent of the
    training images are held out; `max_train_samples`/`max_eval_samples` keep the first images of each split.
    """
    sources = [dataset_name, train_file, train_dir]
    if sum(source is not None for source in sources) != 1:
        raise UsageError("Give exactly one of --dataset_name, --train_file and --train_dir.")
    for flag, value, goes_with, source in (
        ("--validation_file", validation_file, "--train_file", train_file),
        ("--validation_dir", validation_dir, "--train_dir", train_dir),
        ("--validation_split", validation_split, "--dataset_name", dataset_name),
        ("--dataset_config_name", dataset_config_name, "--dataset_name", dataset_name),
    ):
        if value is not None and source is None:
            raise UsageError(f"{flag} goes with {goes_with}, which is not given.")
    if dataset_name is not None:
        raw = load_dataset_or_explain(
            dataset_name, dataset_config_name, flags={"name": f"--dataset_name {dataset_name}"}
        )
        for flag, split in (("--train_split", train_split), ("--validation_split", validation_split)):
            if split is not None and split not in raw:
                raise UsageError(f"{flag} {split!r} is not a split of {dataset_name}; its splits are {list(raw)}.")
        names = [validation_split] if validation_split else ["validation", "valid", "test"]
        splits = {"train": raw[train_split]}
        if present := [name for name in names if name in raw]:
            splits["validation"] = raw[present[0]]
    elif train_dir is not None:
        data_files = {"train": os.path.join(train_dir, "**")}
        flags = {"name": f"--train_dir {train_dir}", "train": f"--train_dir {train_dir}"}
        if validation_dir:
            data_files["validation"] = os.path.join(validation_dir, "**")
            flags["validation"] = f"--validation_dir {validation_dir}"
        for flag, folder in (("--train_dir", train_dir), ("--validation_dir", validation_dir)):
            if folder is not None and not os.path.isdir(folder):
                raise MissingInputError(f"{flag} {folder}: no such folder.")
        splits = dict(load_dataset_or_explain("imagefolder", data_files=data_files, flags=flags))
    else:
        data_files = {
            "train": train_file,
            **({"validation": validation_file} if validation_file else {}),
        }
        for split, path in data_files.items():
            if not os.path.isfile(path):
                raise MissingInputError(f"--{split}_file {path} does not exist.")
            suffix = Path(path).suffix.lower()
            if suffix not in _BUILDERS:
                raise UsageError(
                    f"Unsupported file type {suffix!r} for --{split}_file: use one of {sorted(_BUILDERS)}."
                )
        if Path(train_file).suffix.lower() != Path(data_files.get("validation", train_file)).suffix.lower():
            raise UsageError("--train_file and --validation_file must have the same format.")
        flags = {
            "name": f"--train_file {train_file}",
            **{split: f"--{split}_file {p}" for split, p in data_files.items()},
        }
        builder = _BUILDERS[Path(train_file).suffix.lower()]
        splits = dict(load_dataset_or_explain(builder, data_files=data_files, flags=flags))
        for split, dataset in splits.items():
            if getattr(dataset.features.get(image_column), "dtype", None) in ("string", "large_string"):
                # image paths in a csv/json file are relative to that file
                folder = os.path.dirname(os.path.abspath(data_files[split]))
                splits[split] = dataset.map(
                    lambda paths, folder=folder: {image_column: [os.path.join(folder, p) for p in paths]},
                    input_columns=image_column,
                    batched=True,
                )
    if not 0 < validation_split_percentage < 100:
        raise UsageError(f"--validation_split_percentage must be in (0, 100), got {validation_split_percentage}.")
    if "validation" not in splits:
        rows = len(splits["train"])
        if math.ceil(rows * validation_split_percentage / 100) >= rows:
            raise UsageError(
                f"The training images ({rows or 'none'}) are too few to hold {validation_split_percentage:g}% out "
                "for validation: give more, or validation images."
            )
        held_out = splits["train"].train_test_split(validation_split_percentage / 100, seed=seed)
        splits = {"train": held_out["train"], "validation": held_out["test"]}
    for split, dataset in splits.items():
        flags = {image_column: "--image_column", label_column: "--label_column"}
        missing = [name for name in (image_column, label_column) if name not in dataset.column_names]
        if missing:
            raise UsageError(
                f"Column(s) {missing} not in the {split} data; its columns are {dataset.column_names}. Pick "
                f"{'it' if len(missing) == 1 else 'them'} with {' / '.join(flags[name] for name in missing)}."
            )
        if len(dataset) == 0:
            raise UsageError(f"The {split} data has no images.")
        if isinstance(dataset.features[image_column], datasets.Image):
            splits[split] = dataset.cast_column(image_column, datasets.Image(decode=False))
    for split, limit in (("train", max_train_samples), ("validation", max_eval_samples)):
        if limit:
            splits[split] = splits[split].select(range(min(limit, len(splits[split]))))
    return splits


def class_synonyms(
    splits: dict[str, datasets.Dataset], label_column: str, class_names: str | None = None
) -> tuple[list[list[str]], dict[str, list[int]]]:
    """
    The names of every class (each a list of synonyms, the first being its name) from the `class_names` file (one
    class per line, synonyms after commas), the label column's `ClassLabel`, or the distinct string labels; and the
    class id of every image of each split.
    """
    feature = splits["train"].features[label_column]
    values = {split: dataset[label_column] for split, dataset in splits.items()}
    if class_names:
        names = [line.strip() for line in Path(class_names).read_text(encoding="utf-8").rstrip().splitlines()]
        if "" in names:
            raise UsageError(f"Line {names.index('') + 1} of --class_names {class_names} is empty.")
    elif hasattr(feature, "names"):
        names = list(feature.names)
    elif all(isinstance(value, str) for split_values in values.values() for value in split_values):
        names = sorted({value for split_values in values.values() for value in split_values})
    else:
        raise UsageError(
            f"The labels of --label_column {label_column!r} are ids without names; give the name of every id "
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
            source = f" of --class_names {class_names}" if class_names else ""
            raise UsageError(
                f"{split} labels {bad[:10]} are not among the {len(names)} class names{source} (--label_column "
                f"{label_column})."
            )
        labels[split] = ids
    return synonyms, labels


def parse_unseen_classes(value: str | None, names: list[str]) -> list[int]:
    """Class ids of --unseen_classes: names from a file (one per line) or a comma-separated list, any case."""
    if value is None:
        return []
    entries = Path(value).read_text(encoding="utf-8").splitlines() if os.path.isfile(value) else value.split(",")
    entries = [entry.strip() for entry in entries if entry.strip()]
    if not entries:
        raise UsageError(f"--unseen_classes {value!r} names no class; leave it out to hold no class out.")
    by_name = {}
    for class_id, name in enumerate(names):
        by_name.setdefault(name.lower(), []).append(class_id)
    unknown = [entry for entry in entries if entry.lower() not in by_name]
    if unknown:
        hints = {entry: difflib.get_close_matches(entry, names, n=3) for entry in unknown}
        raise UsageError(f"--unseen_classes names unknown classes (closest class names): {hints}.")
    unseen = sorted({class_id for entry in entries for class_id in by_name[entry.lower()]})
    if len(unseen) == len(names):
        raise UsageError("--unseen_classes holds out every class: nothing would be left to train on.")
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


@dataclass
class LabelVocabulary:
    """The word vocabulary and table a model is trained with, and what had to be done to give every class a vector."""

    tokenizer: DeviseTokenizer
    table: torch.Tensor  # (vocab_size, dim), row i = the vector of the tokenizer's id i (row 0: padding)
    without_vector: list[int]  # classes none of whose words has a vector
    borrowed: dict[str, str]  # word added to the vocabulary -> where its vector came from


def _words(name: str) -> list[str]:
    return [word for word in _WORD_SEPARATORS.split(name) if word.strip(_STRIP)]


def _word_ids(tokenizer: DeviseTokenizer, word: str) -> list[int] | None:
    """The ids of a word as the tokenizer reads it (with its own splits), or None if it has no vector."""
    try:
        return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
    except ValueError:
        return None


def _compound_ids(tokenizer: DeviseTokenizer, word: str) -> list[int] | None:
    """A closed compound split into two frequent words ("birdhouse" -> bird + house), the most frequent pair."""
    key, best = word.lower().strip(_STRIP), None
    for cut in range(3, len(key) - 2):
        parts = [tokenizer.vocab.get(key[:cut]), tokenizer.vocab.get(key[cut:])]  # ids follow the file's order
        if all(parts) and max(parts) <= COMPOUND_PART_MAX_RANK and (best is None or max(parts) < max(best)):
            best = parts
    return best


def build_label_vocabulary(path: str, synonyms: list[list[str]], max_words: int | None) -> LabelVocabulary:
    """
    The first `max_words` words of a vectors file, plus any class word found further down, plus a borrowed vector
    for each class word that has none (see the module docstring).
    """
    tokenizer, table = load_devise_word_vectors(path, max_words=max_words)
    # 1. Class words further down the file than max_words: a second pass, when the first stopped early. Synonyms are
    # looked up only for a class whose name lacks a vector.
    wanted = set()
    if max_words is not None and tokenizer.vocab_size - 1 >= max_words:
        for names in synonyms:
            lacking = any(_word_ids(tokenizer, word) is None for word in _words(names[0]))
            for word in (word for name in (names if lacking else []) for word in _words(name)):
                if _word_ids(tokenizer, word) is None:
                    key = word.lower().strip(_STRIP)
                    wanted.update(part for part in (key, *re.findall(r"[^\W_]+", key)) if part not in tokenizer.vocab)
    if wanted:
        try:
            found, vectors = read_word_vectors(path, words=sorted(wanted))
        except ValueError:  # none of them is in the file
            found = []
        if found:
            tokenizer.add_words(found)
            table = torch.cat([table, torch.from_numpy(vectors)])

    # 2. Every class name: the words with vectors, and a borrowed vector for the others
    unit = F.normalize(table, dim=-1)

    def mean_of(ids: list[int]) -> torch.Tensor:
        return F.normalize(unit[ids].mean(dim=0), dim=0)

    borrowed, without_vector = {}, []
    for class_id, names in enumerate(synonyms):
        found_ids, missing = [], []
        for word in _words(names[0]):
            ids = _word_ids(tokenizer, word)
            if ids is None and (parts := _compound_ids(tokenizer, word)):
                source = " + ".join(tokenizer.convert_ids_to_tokens(parts))
                borrowed.setdefault(word.lower().strip(_STRIP), (mean_of(parts), source))
                ids = parts
            if ids is None:
                missing.append(word.lower().strip(_STRIP))
            else:
                found_ids.extend(ids)
        if not missing:
            continue
        # a synonym whose words all have vectors, else the rest of the name, stands for the missing words
        stand_in = None
        for synonym in names[1:]:
            ids = [_word_ids(tokenizer, word) or _compound_ids(tokenizer, word) for word in _words(synonym)]
            if ids and all(ids):
                stand_in = (mean_of([id_ for part in ids for id_ in part]), f"synonym {synonym!r}")
                break
        if stand_in is None and found_ids:
            stand_in = (mean_of(found_ids), f"the rest of {names[0]!r}")
        if stand_in is None:
            without_vector.append(class_id)
            continue
        for word in missing:
            borrowed.setdefault(word, stand_in)
    if borrowed:
        tokenizer.add_words(list(borrowed))
        table = torch.cat([table, torch.stack([vector for vector, _ in borrowed.values()])])
    return LabelVocabulary(tokenizer, table, without_vector, {word: source for word, (_, source) in borrowed.items()})


# ---------------------------------------------------------------------------------------------------------------------
# What a run trains and evaluates on


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


def build_devise_data(
    splits: dict[str, datasets.Dataset],
    image_column: str,
    label_column: str,
    word_vectors: str,
    max_words: int | None,
    class_names: str | None = None,
    unseen_classes: str | None = None,
    drop_classes_without_vectors: bool = False,
) -> DeviseData:
    """
    The class names ([`class_synonyms`]) and word vectors ([`build_label_vocabulary`]) of loaded `splits`, with the
    `unseen_classes` ([`parse_unseen_classes`]) out of the training images. A class none of whose words has a vector
    is an error, or with `drop_classes_without_vectors` is left out, images and all.
    """
    synonyms, labels = class_synonyms(splits, label_column, class_names)
    vocabulary = build_label_vocabulary(word_vectors, synonyms, max_words)
    names = [alternatives[0] for alternatives in synonyms]
    unseen = parse_unseen_classes(unseen_classes, names)
    dropped = [names[class_id] for class_id in vocabulary.without_vector]
    if dropped and not drop_classes_without_vectors:
        raise UsageError(
            f"No word of these class names has a vector in {word_vectors}: {dropped}. Rename them (a synonym "
            "after a comma in --class_names), use other vectors, or leave them out with "
            "--drop_classes_without_vectors."
        )
    kept = [class_id for class_id in range(len(names)) if class_id not in set(vocabulary.without_vector)]
    new_id = {class_id: position for position, class_id in enumerate(kept)}  # class ids after the drop
    unseen = [new_id[class_id] for class_id in unseen if class_id in new_id]
    if unseen_classes is not None and not unseen:
        raise UsageError("Every class of --unseen_classes was dropped for want of a word vector.")
    seen = [class_id for class_id in range(len(kept)) if class_id not in set(unseen)]
    seen_position = {class_id: position for position, class_id in enumerate(seen)}
    train_rows = [row for row, y in enumerate(labels["train"]) if new_id.get(y) in seen_position]
    train_labels = [seen_position[new_id[labels["train"][row]]] for row in train_rows]
    valid_rows = [row for row, y in enumerate(labels["validation"]) if y in new_id]
    valid_labels = [new_id[labels["validation"][row]] for row in valid_rows]
    if not train_rows or not valid_rows:
        raise UsageError(
            f"{len(train_rows)} training and {len(valid_rows)} validation images are left to use: check "
            "--unseen_classes and the data."
        )
    return DeviseData(
        splits=splits,
        names=[names[class_id] for class_id in kept],
        seen=seen,
        unseen=unseen,
        dropped=dropped,
        vocabulary=vocabulary,
        train=ImageRows(splits["train"], image_column, train_labels, train_rows),
        validation=ImageRows(splits["validation"], image_column, valid_labels, valid_rows),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Batches and the frozen backbone's features


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


def feature_cache_key(
    backbone: str, image_processor: DeviseImageProcessor, dataset: datasets.Dataset, rows: list[int]
) -> str:
    """
    What the features depend on: the `backbone` checkpoint (a folder: its path and its files' sizes and times; else
    the Hub id), the preprocessing and the rows.
    """
    folder = Path(backbone)
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime) for f in folder.glob("*")) if folder.is_dir() else []
    identity = [str(folder.resolve()) if folder.is_dir() else backbone, files]
    identity += [image_processor.to_dict(), dataset._fingerprint, hashlib.sha256(str(rows).encode()).hexdigest()]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


@torch.no_grad()
def backbone_features(model, loader: DataLoader, device, cache_file: Path | None, description: str) -> torch.Tensor:
    """The concat-pooled features `(images, 2 * backbone_hidden_size)` of a loader's images, read from or written to
    `cache_file` (the notebook's `precompute=True`). A cache that cannot be written (a full disk, a read-only
    folder) leaves no partial file and is only warned about."""
    if cache_file is not None and cache_file.exists():
        return load_file(cache_file)["features"]
    model.eval()
    chunks = [
        model.get_backbone_features(batch["pixel_values"].to(device))[0].float().cpu()
        for batch in tqdm(loader, desc=description)
    ]
    features = torch.cat(chunks).contiguous()
    if cache_file is not None:
        try:
            write_file_atomically(
                cache_file,
                lambda path: save_file({"features": features}, str(path)),
                state_bytes(features) + SMALL_FILES_BYTES,
                "the feature cache",
            )
        except DiskWriteError as error:
            # The cache only spares the next run this work; this run has the features, and the other processes
            # (waiting for this one in `main_process_first`) compute their own.
            warnings.warn(str(error), stacklevel=2)
    return features


def precompute_backbone_features(
    model,
    image_processor: DeviseImageProcessor,
    data: DeviseData,
    accelerator,
    backbone: str,
    batch_size: int,
    cache_dir: str | None = None,
    num_workers: int = 0,
) -> dict[str, torch.Tensor]:
    """
    The frozen backbone's features of the training and validation images of `data`, in batches of `batch_size`,
    cached in `cache_dir` if given under a [`feature_cache_key`] of the `backbone` checkpoint. The main process
    computes them first; `accelerator` may be an `Accelerator` or a `PartialState`.
    """
    features = {}
    for split, images in (("train", data.train), ("validation", data.validation)):
        cache_file = None
        if cache_dir:
            key = feature_cache_key(backbone, image_processor, data.splits[split], images.rows)
            cache_file = Path(cache_dir) / f"features-{split}-{key}.safetensors"
        with accelerator.main_process_first():
            cached = cache_file is not None and cache_file.exists()
            sampler = SortedBatchSampler([1] * len(images), batch_size)
            loader = loader_for(images, sampler, image_collator(image_processor, split), num_workers)
            features[split] = backbone_features(model, loader, accelerator.device, cache_file, f"{split} features")
        accelerator.print(f"{split} features: {'read from' if cached else 'computed'} {cache_file or 'in memory'}")
    return features


# ---------------------------------------------------------------------------------------------------------------------
# Metrics


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


def ranked(image_embeds: torch.Tensor, class_vectors: torch.Tensor, candidates: list[int], k: int) -> list[list[int]]:
    """The top-k of `candidates` (class ids) by cosine to each image embedding, best first."""
    scores = image_embeds @ class_vectors[candidates].T  # (images, candidates), both unit length
    top = scores.topk(min(k, len(candidates)), dim=-1).indices
    return torch.tensor(candidates)[top].tolist()


def evaluate_embeddings(
    image_embeds: torch.Tensor, labels: torch.Tensor, class_vectors: torch.Tensor, unseen: list[int]
) -> dict[str, float]:
    """
    DeViSE's metrics from unit image embeddings, their class ids and the unit class vectors: cosine loss and top-1/5
    among the seen classes (seen images), zero-shot hit@1/5 among the unseen classes (unseen images), generalized
    hit@1/5 among all classes (all images) and generalized hit@5 of the unseen images.
    """
    everyone = list(range(class_vectors.shape[0]))
    seen = sorted(set(everyone) - set(unseen))
    is_unseen = torch.isin(labels, torch.tensor(unseen, dtype=labels.dtype))
    groups = [  # (which images, which classes they are ranked among, hit@k -> result name)
        (~is_unseen, seen, {"hit@1": "seen_top1", "hit@5": "seen_top5"}),
        (is_unseen, unseen, {"hit@1": "zero_shot_hit@1", "hit@5": "zero_shot_hit@5"}),
        (torch.ones_like(is_unseen), everyone, {"hit@1": "generalized_hit@1", "hit@5": "generalized_hit@5"}),
        (is_unseen, everyone, {"hit@5": "generalized_unseen_hit@5"}),
    ]
    results = {}
    if (~is_unseen).any():
        targets = class_vectors[labels[~is_unseen]]
        results["cosine_loss"] = 1.0 - F.cosine_similarity(image_embeds[~is_unseen], targets, dim=-1).mean().item()
    for mask, candidates, keys in groups:
        if not mask.any() or not candidates:
            continue
        metric = metrics.load("hit_at_k", keep_in_memory=True)  # every process scores the gathered embeddings
        scores = metric.compute(
            predictions=ranked(image_embeds[mask], class_vectors, candidates, 5),
            references=labels[mask].tolist(),
            k=[1, 5],
        )
        results.update({name: scores[key] for key, name in keys.items()})
    return results


__all__ = [
    "DeviseData",
    "ImageRows",
    "LabelVocabulary",
    "backbone_features",
    "build_devise_data",
    "build_label_vocabulary",
    "class_synonyms",
    "embed_validation",
    "evaluate_embeddings",
    "feature_cache_key",
    "image_collator",
    "image_processor_for",
    "load_image_datasets",
    "parse_unseen_classes",
    "precompute_backbone_features",
    "ranked",
]
