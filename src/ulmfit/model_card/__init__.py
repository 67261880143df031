"""Model cards for the models this package trains and converts: metadata, results, the exact command, citations.

A card has two authors. Each model family supplies what every card of its models says: a [`FamilyCard`] (prose,
usage snippet, model class, pipeline tag, tags, citations), kept beside the others of its family in
`ulmfit.model_card.<family>` (`awd_lstm`, `gru_seq2seq`, `devise`), as setfit keeps its card data with the model. A
training or conversion script supplies what it knows about one run: a [`ModelCardInfo`] (data, metrics, command,
hyperparameters, log). `render_model_card` turns both into a `huggingface_hub.ModelCard` (YAML metadata with a
`model-index` of the measured metrics, then the prose of `template.md`, shipped as package data). It renders offline;
`push_model_card_last` uploads it after the weights (see its docstring for why).

The metadata names only what the Hub can link to. As transformers' `Trainer.create_model_card` leaves out a base model
that is a local folder, and setfit writes `type: unknown` for data that are not a Hub dataset, a base model or dataset
that is a local path (see [`is_hub_id`]) stays out of `base_model`, `datasets` and the `model-index` dataset `type`;
the card's prose still names it.
"""

import dataclasses
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id


# the `model-index` metric type (an `evaluate` metric id) of the metrics whose name is not one
METRIC_TYPES = {
    "micro_f1": "f1",
    "macro_f1": "f1",
    "micro_precision": "precision",
    "micro_recall": "recall",
    "subset_accuracy": "accuracy",
    "pearson": "pearsonr",
    "spearman": "spearmanr",
}

# the files `datasets` reads locally (csv/json/parquet/text/arrow builders): a name ending so is a file, not a Hub id
DATA_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".arrow")


@dataclass(frozen=True)
class FamilyCard:
    """
    What every card of one model family says, whoever trained the model.

    Args:
        architecture: one line naming the architecture and its paper.
        description: the card's opening paragraph (a run may replace it with `ModelCardInfo.description`).
        intended_use: what the model is for.
        limitations: what it cannot do, and its biases.
        usage: a Python snippet that loads and uses the model; `{model_id}` stands for the repo id.
        model_class: the transformers class the weights load into, e.g. `AwdLstmForCausalLM`.
        pipeline_tag: the Hub's pipeline tag (also the task of the `model-index` results).
        tags: the Hub tags.
        citations: BibTeX entries, the family's papers first.
        task_name: the `model-index` task's pretty name when it is more precise than the pipeline tag (e.g.
            "Multi-label text classification").
    """

    architecture: str
    description: str
    intended_use: str
    limitations: str
    usage: str
    model_class: str
    pipeline_tag: str
    tags: tuple[str, ...] = ("ulmfit", "fastai")
    citations: tuple[str, ...] = ()
    task_name: str | None = None

    def replace(self, **changes) -> "FamilyCard":
        """A variant of this card (e.g. the backward model of a family), with `changes` applied."""
        return dataclasses.replace(self, **changes)


@dataclass
class ModelCardInfo:
    """
    What a card says about one trained model, besides its family's text. Fields left empty are left out.

    `base_model` and `datasets` may be Hub ids or local paths: only Hub ids reach the metadata (see [`is_hub_id`]).
    `dataset_name` is the pretty name of the data the `metrics` were measured on (the validation or test data, never
    the training file); `dataset_type` is their Hub dataset id, left empty when they are local.
    """

    model_id: str
    family: FamilyCard
    description: str = ""
    base_model: str | None = None
    language: str | list[str] = "en"
    license: str = "apache-2.0"
    datasets: list[str] = field(default_factory=list)
    datasets_description: str = ""
    dataset_name: str = ""
    dataset_type: str = ""
    dataset_split: str = "validation"
    # metric name -> value, e.g. {"perplexity": 49.8, "accuracy": 0.312}
    metrics: dict[str, float] = field(default_factory=dict)
    training_command: str = ""
    hyperparameters: dict[str, object] = field(default_factory=dict)
    # one row per label, e.g. [{"label": "joy", "f1": 0.61, "threshold": 0.35}], shown under the results
    per_label: list[dict] = field(default_factory=list)
    # rows of the training log, e.g. [{"epoch": 1, "train_loss": 4.2, "valid_loss": 4.1, ...}]
    training_log: list[dict] = field(default_factory=list)
    extra_citations: list[str] = field(default_factory=list)


def _markdown_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines)


# A card's log table shows at most this many rows; a longer log is thinned, its evaluations kept.
MAX_LOG_ROWS = 60


def _log_table(rows: list[dict], limit: int = MAX_LOG_ROWS) -> str:
    """
    The training log as a table: every row, or for a longer log every k-th training row (k as small as fits `limit`)
    with every row that adds keys (an evaluation) and the last one, and a line saying where the full log is.
    """
    if len(rows) <= limit:
        return _markdown_table(rows)
    plain = set(rows[0])
    evaluations = {index for index, row in enumerate(rows) if set(row) - plain}
    room = max(1, limit - len(evaluations) - 1)
    every = -(-(len(rows) - len(evaluations)) // room)  # ceiling division
    kept = [row for index, row in enumerate(rows) if index in evaluations or index % every == every - 1]
    if kept[-1] is not rows[-1]:
        kept.append(rows[-1])
    shown = f"{len(kept)} of {len(rows)} rows (all in `training_log.json`)"
    return _markdown_table(kept) + f"\n\nOne training row in {every}, and every evaluation: {shown}."


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _versions() -> list[dict]:
    """The versions of the libraries that made the model, as installed."""
    libraries = ("ulmfit", "transformers", "torch", "tokenizers", "datasets")
    rows = [{"library": name, "version": _installed_version(name)} for name in libraries]
    return [*rows, {"library": "python", "version": platform.python_version()}]


def _installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # e.g. ulmfit run from a source tree that is not installed
        return "not installed"


def is_hub_id(name: str | None) -> bool:
    """
    Whether `name` is a Hub repo id rather than something on this machine. Like transformers' Trainer, which writes a
    `base_model` only when it is not a local folder, a path that exists here is local; so is a name the Hub's
    `validate_repo_id` rejects (`runs/a/b`, `/tmp/x`) and a data file's name (`unsup.parquet`).
    """
    if not name or Path(name).exists() or name.lower().endswith(DATA_FILE_SUFFIXES):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def check_hub_metadata(card: ModelCard) -> None:
    """
    Raise `ValueError` if the card's metadata is what the Hub would reject or mislabel: a `base_model` or `datasets`
    entry that is not a repo id, or a `model-index` result without a dataset type or split.
    """
    data = ModelCard(str(card)).data  # read back as the Hub reads it: this is what was written
    problems = []
    base_models = data.base_model if isinstance(data.base_model, list) else [data.base_model]
    for kind, names in (("base_model", base_models), ("datasets", data.datasets or [])):
        problems += [f"{kind} {name!r} is not a Hub repo id" for name in names if name and not is_hub_id(name)]
    for result in data.eval_results or []:
        if not result.dataset_split:
            problems.append(f"the result {result.metric_type!r} has no split")
        if result.dataset_type != "unknown" and not is_hub_id(result.dataset_type):
            problems.append(f"the result {result.metric_type!r} has the dataset type {result.dataset_type!r}")
    if problems:
        raise ValueError("; ".join(problems))


def render_model_card(info: ModelCardInfo) -> ModelCard:
    """
    The card of one trained model, rendered offline from the shipped template. Local base models and data are named
    in the prose only (see the module docstring).
    """
    family = info.family
    hub_base_model = info.base_model if is_hub_id(info.base_model) else None
    hub_datasets, local_datasets = [], []
    for name in info.datasets:
        (hub_datasets if is_hub_id(name) else local_datasets).append(name)
    dataset_type = info.dataset_type if is_hub_id(info.dataset_type) else "unknown"  # setfit's word for local data
    eval_results = [
        EvalResult(
            task_type=family.pipeline_tag,
            task_name=family.task_name,
            dataset_type=dataset_type,
            dataset_name=info.dataset_name or info.dataset_type or "Unknown",
            dataset_split=info.dataset_split,
            metric_type=METRIC_TYPES.get(name, name),
            metric_name=name,
            metric_value=float(value),
        )
        for name, value in info.metrics.items()
    ]
    card_data = ModelCardData(
        language=info.language,
        license=info.license,
        library_name="transformers",
        pipeline_tag=family.pipeline_tag,
        tags=list(family.tags),
        datasets=hub_datasets or None,
        base_model=hub_base_model,
        model_name=info.model_id,
        eval_results=eval_results or None,
    )
    results = [{"split": info.dataset_split, "metric": name, "value": value} for name, value in info.metrics.items()]
    hyperparameters = [{"name": name, "value": value} for name, value in info.hyperparameters.items()]
    citations = [*family.citations, *info.extra_citations]
    template = resources.files(__package__) / "template.md"
    return ModelCard.from_template(
        card_data,
        template_str=template.read_text(encoding="utf-8"),
        model_name=info.model_id.split("/")[-1],
        model_description=info.description or family.description,
        architecture=family.architecture,
        model_class=f"`{family.model_class}`",
        base_model=info.base_model,  # the prose names a local base model too
        datasets_description=info.datasets_description or ", ".join(f"`{name}`" for name in local_datasets),
        usage_snippet=family.usage.format(model_id=info.model_id),
        results_table=_markdown_table(results),
        per_label_table=_markdown_table(info.per_label),
        intended_use=family.intended_use,
        limitations=family.limitations,
        training_command=info.training_command,
        hyperparameters_table=_markdown_table(hyperparameters),
        training_log_table=_log_table(info.training_log),
        versions_table=_markdown_table(_versions()),
        citations=citations,
    )


def push_model_card_last(card: ModelCard, repo_id: str, token: str | None = None) -> None:
    """
    Upload the card as the repo's README.md, after the weights: `PreTrainedModel.push_to_hub` rewrites README.md from
    the remote copy, so a card pushed earlier would be overwritten by a generic one.
    """
    from huggingface_hub import HfApi

    HfApi(token=token).upload_file(
        path_or_fileobj=str(card).encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        commit_message="Add model card",
    )


# what a training run writes beside the model and never uploads: resumable checkpoints, half-written files
CHECKPOINT_PATTERNS = ("step_*", "epoch_*", "*.tmp")


def push_folder_then_card(
    output_dir, card: ModelCard, repo_id: str, token: str | None = None, ignore_patterns=CHECKPOINT_PATTERNS
) -> None:
    """Create the Hub repo, upload the output folder in one commit (without `ignore_patterns`), then the card last."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(
        folder_path=str(output_dir),
        repo_id=repo_id,
        commit_message="Upload model",
        ignore_patterns=[*ignore_patterns, "README.md"],
    )
    push_model_card_last(card, repo_id, token=token)


def script_command() -> str:
    """The command line that started this script, shell-quoted, for the card's "how it was made"."""
    return " ".join(shlex.quote(part) for part in ["python", *sys.argv])


# Arguments that say how a run was handled, not how the model was trained
_NOT_HYPERPARAMETERS = {"hub_token", "overwrite_output_dir", "debug"}


def script_hyperparameters(args) -> dict:
    """A training script's arguments as the card's hyperparameter table (unset ones, the token and the run-handling
    flags left out)."""
    return {
        name: value for name, value in asdict(args).items() if value is not None and name not in _NOT_HYPERPARAMETERS
    }


__all__ = [
    "CHECKPOINT_PATTERNS",
    "FamilyCard",
    "ModelCardInfo",
    "check_hub_metadata",
    "is_hub_id",
    "push_folder_then_card",
    "push_model_card_last",
    "render_model_card",
    "script_command",
    "script_hyperparameters",
]
