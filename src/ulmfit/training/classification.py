"""Labels of a text classifier's data, and its evaluation: for `scripts/train_classifier.py`.

Three kinds of label, as transformers' `problem_type` names them:

- `single_label_classification`: one class per text, from strings, integers or a `ClassLabel` column;
- `multi_label_classification`: any number of tags per text, from a list column, a string column split on
  `--label_separator`, or several 0/1 columns (`--label_columns`); trained with binary cross-entropy, decided by
  thresholds chosen on the validation data ([`choose_thresholds`]);
- `regression`: a number per text, from a float column (or any numeric column with `--problem_type regression`),
  optionally learnt standardised (`--normalize_target`; the model gives its predictions back in the target's units),
  predictions clipped to the training targets' range (unless `--no_clip_to_target_range`).

[`prepare_labels`] reads the kind from the data (a float column is a regression, a list column or `--label_separator`
or `--label_columns` multi-label, anything else single-label) unless `--problem_type` names it, checks every value
(a message names the column, the split and the row), and returns the `labels` column the model trains on with a
[`LabelSet`] whose [`~LabelSet.config_overrides`] go into the model's config.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch

from .. import metrics
from .script_steps import UsageError


PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


@dataclass
class LabelSet:
    """What the model learns to predict: the kind, the label names in id order, and a regression's scaling."""

    problem_type: str
    names: list[str]
    target_mean: float | None = None
    target_std: float | None = None
    target_range: list[float] | None = None
    pos_weight: list[float] | None = None

    @property
    def num_labels(self) -> int:
        return len(self.names)

    def config_overrides(self) -> dict:
        """The config fields that describe these labels (`from_pretrained(..., **overrides)`)."""
        return {
            "problem_type": self.problem_type,
            "num_labels": self.num_labels,
            "id2label": dict(enumerate(self.names)),
            "label2id": {name: index for index, name in enumerate(self.names)},
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "target_range": self.target_range,
            "pos_weight": self.pos_weight,
        }


class _Rows:
    """Where a split's rows came from, to name a row in a message: its file (or Hub split) and its position there."""

    def __init__(self, dataset: datasets.Dataset, source: str):
        self.numbers = dataset["__row__"] if "__row__" in dataset.column_names else None
        self.source = source

    def where(self, row: int, flag: str, column: str) -> str:
        number = row if self.numbers is None else self.numbers[row]
        return f"{flag} {column!r}, row {number} of {self.source} (counting from 0)"


def _is_list_feature(feature) -> bool:
    return isinstance(feature, (datasets.List, datasets.LargeList))


def detect_problem_type(feature, label_columns: Sequence[str], separator: str | None) -> str:
    """The kind of label a column holds: multi-label (a list, split strings, 0/1 columns), regression (floats)."""
    if label_columns or separator is not None or _is_list_feature(feature):
        return "multi_label_classification"
    if getattr(feature, "dtype", None) in ("float16", "float32", "float64"):
        return "regression"
    return "single_label_classification"


def prepare_labels(
    raw: datasets.DatasetDict,
    label_column: str,
    problem_type: str = "auto",
    label_columns: Sequence[str] = (),
    label_separator: str | None = None,
    allow_empty_labels: bool = False,
    normalize_target: bool = False,
    pos_weight: str | None = None,
    sources: dict[str, str] | None = None,
    clip_to_target_range: bool = False,
) -> tuple[datasets.DatasetDict, LabelSet]:
    """
    The `train` and `validation` splits with their label column(s) replaced by `labels` (a class id, a multi-hot
    float vector or a float), and the `LabelSet`. Raises a `UsageError` naming the flag, column, split and row for a
    value the kind cannot take (a text where a number is expected, NaN or infinite targets, an empty tag list unless
    `allow_empty_labels`, a 0/1 column holding 2, mixed types), a validation label never seen in training, and a
    training set with fewer than two classes (or constant regression targets with `normalize_target`).

    `sources` names where each split's rows come from (e.g. `{"train": "--train_file data.csv"}`); a `__row__` column
    (`load_text_datasets(..., row_numbers=True)`) gives each row's position there, and is dropped.
    `clip_to_target_range` keeps a regression's training range (`[min, max]`) in the `LabelSet`: the model clips its
    predictions to it.
    """
    sources = sources or {}
    rows = {split: _Rows(raw[split], sources.get(split, f"the {split} data")) for split in ("train", "validation")}
    columns = list(label_columns) or [label_column]
    flag = "--label_columns" if label_columns else "--label_column"
    feature = raw["train"].features[columns[0]]
    detected = detect_problem_type(feature, label_columns, label_separator)
    kind = detected if problem_type == "auto" else problem_type
    if kind not in PROBLEM_TYPES:
        raise UsageError(f"--problem_type must be auto or one of {', '.join(PROBLEM_TYPES)}, not {problem_type!r}.")
    if kind != "multi_label_classification" and (label_columns or label_separator is not None):
        raise UsageError(f"--label_columns and --label_separator describe multi-label data, not {kind}.")
    if kind == "multi_label_classification" and detected != kind:
        raise UsageError(
            f"--label_column {label_column!r} holds one {feature.dtype} value per row: for multi-label data give a "
            "list column, --label_separator to split its strings, or --label_columns naming 0/1 columns."
        )
    if kind != "multi_label_classification" and _is_list_feature(feature):
        raise UsageError(f"--label_column {label_column!r} holds lists (multi-label data), not {kind} labels.")

    values = {split: [raw[split][column] for column in columns] for split in ("train", "validation")}
    if kind == "regression":
        targets = {split: _numbers(values[split][0], rows[split], flag, label_column) for split in values}
        labels = LabelSet(kind, [label_column])
        if normalize_target:
            mean, std = float(np.mean(targets["train"])), float(np.std(targets["train"]))
            if not std > 0:
                raise UsageError(f"--normalize_target: every training value of {label_column!r} is {mean:g}.")
            labels.target_mean, labels.target_std = mean, std
        if clip_to_target_range:
            labels.target_range = [min(targets["train"]), max(targets["train"])]
        encoded = targets
    elif kind == "single_label_classification":
        names = _class_names(raw["train"], label_column)
        if len(names) < 2:
            raise UsageError(
                f"--label_column {label_column!r} holds a single label ({names}) in the training data: a classifier "
                "needs at least two."
            )
        labels = LabelSet(kind, names)
        encoded = {split: _class_ids(raw[split], label_column, names, rows[split]) for split in values}
    else:
        class_names = getattr(getattr(feature, "feature", None), "names", None)  # a list of `ClassLabel` ids
        if class_names is not None and not label_columns:
            values = {split: [[[class_names[i] for i in row] for row in values[split][0]]] for split in values}
        tags = {
            split: _tag_lists(values[split], columns, label_separator, rows[split], flag, allow_empty_labels)
            for split in values
        }
        names = columns if label_columns else _sorted_names({tag for row in tags["train"] for tag in row})
        names = list(class_names) if class_names is not None and not label_columns else names
        if len(names) < 1 + (not label_columns):  # a list column needs two tags for a choice to exist
            raise UsageError(f"{flag} {label_column!r} holds only the tag(s) {names} in the training data.")
        index = {name: position for position, name in enumerate(names)}
        for row, row_tags in enumerate(tags["validation"]):
            unseen = sorted(set(row_tags) - set(index))
            if unseen:
                where = rows["validation"].where(row, flag, label_column)
                raise UsageError(f"{where}: tags {unseen} never occur in the training data (tags: {names}).")
        encoded = {split: [_multi_hot(row, index) for row in tags[split]] for split in tags}
        labels = LabelSet(kind, list(names))
        if pos_weight == "auto":
            positives = np.sum(encoded["train"], axis=0)
            labels.pos_weight = [float((len(encoded["train"]) - p) / max(p, 1)) for p in positives]

    label_feature = {
        "regression": datasets.Value("float32"),
        "single_label_classification": datasets.Value("int64"),
        "multi_label_classification": datasets.Sequence(datasets.Value("float32")),
    }[kind]
    prepared = datasets.DatasetDict()
    for split in ("train", "validation"):
        dataset = raw[split].remove_columns([c for c in raw[split].column_names if c in (*columns, "__row__")])
        prepared[split] = dataset.add_column("labels", encoded[split], feature=label_feature)
    return prepared, labels


def _numbers(values: list, rows: _Rows, flag: str, column: str) -> list[float]:
    numbers = []
    for row, value in enumerate(values):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{rows.where(row, flag, column)}: {value!r} is not a number.") from None
        if not math.isfinite(number):
            raise UsageError(f"{rows.where(row, flag, column)}: the target is {value!r}; targets must be finite.")
        numbers.append(number)
    return numbers


def _class_names(dataset: datasets.Dataset, column: str) -> list[str]:
    """A `ClassLabel`'s names, or the sorted distinct training values (numbers sorted as numbers)."""
    feature = dataset.features[column]
    if hasattr(feature, "names"):
        return list(feature.names)
    return _sorted_names(set(dataset[column]))


def _sorted_names(values: set) -> list[str]:
    kinds = {type(value) for value in values}
    if len(kinds) > 1 and not kinds <= {int, float}:
        mixed = ", ".join(sorted(kind.__name__ for kind in kinds))
        raise UsageError(f"The labels mix types ({mixed}): {sorted(map(str, values))[:10]}; make them all one type.")
    return [str(value) for value in sorted(values)]


def _class_ids(dataset: datasets.Dataset, column: str, names: list[str], rows: _Rows) -> list[int]:
    if hasattr(dataset.features[column], "names"):  # a ClassLabel holds ids already
        return list(dataset[column])
    index = {name: position for position, name in enumerate(names)}
    ids = []
    for row, value in enumerate(dataset[column]):
        if str(value) not in index:
            unseen = sorted({str(v) for v in dataset[column]} - set(index))
            raise UsageError(
                f"{rows.where(row, '--label_column', column)}: labels {unseen[:10]} never occur in the training "
                f"data (labels: {names})."
            )
        ids.append(index[str(value)])
    return ids


def _tag_lists(
    values: list[list], columns: list[str], separator: str | None, rows: _Rows, flag: str, allow_empty: bool
) -> list[list[str]]:
    """Each row's tags, from 0/1 columns, a list column, or strings split on `separator`."""
    tag_rows = []
    if len(columns) > 1 or flag == "--label_columns":
        for row, flags in enumerate(zip(*values)):
            for column, value in zip(columns, flags):
                if isinstance(value, bool) or value in (0, 1):
                    continue
                raise UsageError(f"{rows.where(row, flag, column)}: {value!r} is not 0 or 1.")
            tag_rows.append([column for column, value in zip(columns, flags) if value])
        return tag_rows
    column = columns[0]
    for row, value in enumerate(values[0]):
        if separator is not None:
            if not isinstance(value, str):
                raise UsageError(f"{rows.where(row, flag, column)}: {value!r} is not a string to split.")
            tags = [tag.strip() for tag in value.split(separator) if tag.strip()]
        else:
            tags = list(value)
            kinds = {type(tag) for tag in tags}
            if len(kinds) > 1 or kinds - {str, int}:
                where = rows.where(row, flag, column)
                raise UsageError(f"{where}: tags must all be strings or all integers, got {value!r}.")
            tags = [str(tag) for tag in tags]
        if not tags and not allow_empty:
            raise UsageError(
                f"{rows.where(row, flag, column)}: no tag. Pass --allow_empty_labels if a text may have none."
            )
        tag_rows.append(tags)
    return tag_rows


def _multi_hot(tags: list[str], index: dict[str, int]) -> list[float]:
    vector = [0.0] * len(index)
    for tag in tags:
        vector[index[tag]] = 1.0
    return vector


# ---------------------------------------------------------------------------------------------------------------------
# The script's label flags


def check_label_flags(args) -> None:
    """The label flags of `scripts/train_classifier.py`, checked as they are read (`--schedule stlr` is normalised)."""
    if args.problem_type not in ("auto", *PROBLEM_TYPES):
        raise UsageError(
            f"--problem_type must be auto or one of {', '.join(PROBLEM_TYPES)}, not {args.problem_type!r}."
        )
    args.lr_scheduler_type = {"stlr": "slanted_triangular"}.get(args.lr_scheduler_type, args.lr_scheduler_type)
    if args.lr_scheduler_type not in ("one_cycle", "slanted_triangular"):
        raise UsageError(f"--schedule must be one_cycle or stlr (slanted_triangular), not {args.lr_scheduler_type!r}.")
    if args.loss not in ("auto", "mse", "huber"):
        raise UsageError(f"--loss must be auto, mse or huber (regression), not {args.loss!r}.")
    if args.pos_weight not in (None, "auto"):
        raise UsageError(f"--pos_weight takes `auto` (negatives / positives of each label), not {args.pos_weight!r}.")
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise UsageError(f"--threshold must be a probability in (0, 1), got {args.threshold!r}.")
    if args.threshold is not None and args.per_label_thresholds:
        raise UsageError("--threshold fixes one threshold; --per_label_thresholds chooses one per label: pick one.")
    if args.label_separator == "":
        raise UsageError("--label_separator must not be empty.")


def row_sources(args) -> dict[str, str]:
    """Where the rows of each split come from, as a label error names them."""
    if args.dataset_name:
        return {split: f"--dataset_name {args.dataset_name}" for split in ("train", "validation")}
    train = f"--train_file {args.train_file}"
    return {
        "train": train,
        "validation": f"--validation_file {args.validation_file}" if args.validation_file else train,
    }


def prepare_script_labels(raw: datasets.DatasetDict, args) -> tuple[datasets.DatasetDict, LabelSet]:
    """[`prepare_labels`] with `scripts/train_classifier.py`'s flags, then [`check_label_kind`]."""
    prepared, labels = prepare_labels(
        raw,
        args.label_column,
        args.problem_type,
        args.label_column_names if args.label_columns else (),
        args.label_separator,
        args.allow_empty_labels,
        args.normalize_target,
        args.pos_weight,
        row_sources(args),
        args.clip_to_target_range,
    )
    check_label_kind(args, labels)
    return prepared, labels


def check_label_kind(args, labels: LabelSet) -> None:
    """The flags that only one kind of label takes are not given for another."""
    only = {
        "regression": [
            ("--loss", args.loss not in ("auto", "mse")),
            ("--normalize_target", args.normalize_target),
            ("--no_clip_to_target_range", not args.clip_to_target_range),
        ],
        "multi_label_classification": [
            ("--pos_weight", args.pos_weight is not None),
            ("--threshold", args.threshold is not None),
            ("--per_label_thresholds", args.per_label_thresholds),
            ("--allow_empty_labels", args.allow_empty_labels),
        ],
    }
    for kind, flags in only.items():
        given = [flag for flag, is_given in flags if is_given]
        if given and labels.problem_type != kind:
            raise UsageError(f"{', '.join(given)} applies to {kind} only; these labels are {labels.problem_type}.")


# ---------------------------------------------------------------------------------------------------------------------
# Thresholds and evaluation


def choose_thresholds(
    probabilities: np.ndarray, references: np.ndarray, per_label: bool = False, grid: Sequence[float] | None = None
) -> float | list[float]:
    """
    The decision threshold(s) that maximise macro-F1 on `(examples, labels)` probabilities and 0/1 references: one
    for every label, or with `per_label` each label's own F1-maximising threshold. Ties go to the threshold nearest
    0.5.
    """
    grid = np.asarray(grid if grid is not None else np.round(np.arange(0.02, 0.99, 0.01), 2))
    truth = references.astype(bool)
    positives = truth.sum(0)
    f1 = np.empty((len(grid), truth.shape[1]))  # (thresholds, labels); one threshold at a time bounds the memory
    for row, threshold in enumerate(grid):
        predicted = probabilities >= threshold
        f1[row] = 2 * (predicted & truth).sum(0) / np.maximum(predicted.sum(0) + positives, 1)
    preference = -np.abs(grid - 0.5)  # ties: the threshold nearest 0.5

    def best(scores: np.ndarray) -> float:
        top = np.flatnonzero(np.isclose(scores, scores.max()))
        return float(grid[top[np.argmax(preference[top])]])

    if per_label:
        return [best(f1[:, label]) for label in range(f1.shape[1])]
    return best(f1.mean(1))


def multi_label_scores(probabilities: np.ndarray, references: np.ndarray, thresholds, names: list[str]) -> dict:
    """micro/macro F1, subset accuracy, Hamming loss and per-label F1 (by name) at `thresholds`."""
    predictions = (probabilities >= np.asarray(thresholds)).astype(int)
    scores = metrics.load("multilabel").compute(
        predictions=predictions.tolist(), references=references.astype(int).tolist()
    )
    scores["per_label_f1"] = dict(zip(names, (float(f) for f in scores["per_label_f1"])))
    return scores


@torch.no_grad()
def predict(model, loader, accelerator) -> tuple[np.ndarray, np.ndarray]:
    """Every validation document's output (probabilities for multi-label, logits otherwise) and its labels, gathered
    across processes (duplicates of the last batch dropped)."""
    model.eval()
    outputs, references = [], []
    multi_label = accelerator.unwrap_model(model).config.problem_type == "multi_label_classification"
    for batch in loader:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
        logits = logits.sigmoid() if multi_label else logits
        logits, labels = accelerator.gather_for_metrics((logits, batch["labels"]))
        outputs.append(logits.cpu().numpy())
        references.append(labels.float().cpu().numpy())
    model.train()
    return np.concatenate(outputs), np.concatenate(references)


def evaluate_classifier(model, loader, accelerator, labels: LabelSet, thresholds=0.5) -> dict:
    """The validation metrics of the kind of label: accuracy and F1; micro/macro F1, subset accuracy and Hamming loss
    (at `thresholds`), with the best global threshold and its macro-F1; or MAE, RMSE, Pearson and Spearman in the
    target's units."""
    outputs, references = predict(model, loader, accelerator)
    if labels.problem_type == "single_label_classification":
        predictions = outputs.argmax(-1).tolist()
        references = references.astype(int).tolist()
        average = "binary" if labels.num_labels == 2 else "macro"
        return {
            **metrics.load("accuracy").compute(predictions=predictions, references=references),
            **metrics.load("f1").compute(predictions=predictions, references=references, average=average),
        }
    if labels.problem_type == "regression":
        return metrics.load("regression").compute(predictions=outputs[:, 0].tolist(), references=references.tolist())
    scores = multi_label_scores(outputs, references, thresholds, labels.names)
    scores.pop("per_label_f1")
    # a BCE-trained head rarely clears 0.5 for rare labels: the best global threshold shows where the run stands
    best = choose_thresholds(outputs, references)
    scores.update(best_threshold=best, macro_f1_at_best=multi_label_scores(outputs, references, best, [])["macro_f1"])
    return scores


def choose_label_thresholds(model, loader, accelerator, labels: LabelSet, args) -> dict:
    """
    A multi-label classifier's decision thresholds: `--threshold`, else chosen on the validation data (one, or one per
    label with `--per_label_thresholds`), set in the model's config. Returns the validation results at them (with
    `per_label_f1`), the macro/micro F1 at 0.5 for comparison, and the thresholds.
    """
    probabilities, references = predict(model, loader, accelerator)
    thresholds = args.threshold or choose_thresholds(probabilities, references, args.per_label_thresholds)
    config = accelerator.unwrap_model(model).config
    config.label_thresholds = thresholds
    at_half = multi_label_scores(probabilities, references, 0.5, labels.names)
    chosen = multi_label_scores(probabilities, references, config.thresholds(), labels.names)
    results = {f"eval_{name}": value for name, value in chosen.items()}
    results.update(eval_macro_f1_at_0_5=at_half["macro_f1"], eval_micro_f1_at_0_5=at_half["micro_f1"])
    results["label_thresholds"] = thresholds
    shown = [round(t, 2) for t in thresholds] if isinstance(thresholds, list) else f"{thresholds:g}"
    accelerator.print(
        f"thresholds {shown}: macro-F1 {chosen['macro_f1']:.4f} (at 0.5: {at_half['macro_f1']:.4f}), micro-F1 "
        f"{chosen['micro_f1']:.4f}"
    )
    return results


def per_label_rows(results: dict) -> list[dict]:
    """A multi-label run's per-label F1 and threshold, one row per label, for the model card (else no rows)."""
    scores = results.get("eval_per_label_f1") or {}
    thresholds = results.get("label_thresholds")
    rows = []
    for index, (label, f1) in enumerate(scores.items()):
        threshold = thresholds[index] if isinstance(thresholds, list) else thresholds
        rows.append({"label": label, "f1": f1, "threshold": threshold})
    return rows


__all__ = [
    "PROBLEM_TYPES",
    "LabelSet",
    "check_label_flags",
    "check_label_kind",
    "choose_label_thresholds",
    "row_sources",
    "choose_thresholds",
    "detect_problem_type",
    "evaluate_classifier",
    "multi_label_scores",
    "per_label_rows",
    "predict",
    "prepare_labels",
    "prepare_script_labels",
]
