"""Convert a fastai v2 AWD-LSTM checkpoint (language model, encoder or ULMFiT classifier) into an `ulmfit` folder.

The folder holds safetensors weights, the config, the tokenizer (fastai's vocabulary, same ids) and a model card that
names the source files and their SHA-256; it loads with `from_pretrained`, `pipeline(...)`, or remote code where
`ulmfit` is not installed. The weights and vocabulary are converted by
`ulmfit.models.awd_lstm.convert_fastai_checkpoint`, which executes nothing in the input files; this script adds the
card (the AWD-LSTM family's text for a language model, classifier or bare encoder, and what the conversion recorded).

    # a language model saved with learn.save("lm") (with or without the optimizer state) and its vocabulary
    python scripts/convert_fastai_checkpoint.py --checkpoint models/lm.pth --vocab models/vocab.pkl \\
        --output_dir awd-lstm-lm
    # fastai's pretrained WikiText-103 files
    python scripts/convert_fastai_checkpoint.py --checkpoint wt103-fwd/lstm_fwd.pth \\
        --vocab wt103-fwd/itos_wt103.pkl --output_dir awd-lstm-wt103
    # a text classifier saved with learn.save("clas"), its label names in fastai's order (dls.vocab[1]), and upload
    python scripts/convert_fastai_checkpoint.py --checkpoint models/clas.pth --vocab vocab.txt --labels neg,pos \\
        --output_dir imdb-classifier --push_to_hub --hub_model_id you/imdb-classifier

The vocabulary is `pickle.dump(list(dls.vocab), f)` or a text file with one token per line. The task (`lm`,
`classifier`, `encoder`) is detected from the checkpoint's keys; `--task encoder` extracts the encoder of a language
model or classifier.
"""

import argparse
import shlex
from pathlib import Path

from huggingface_hub import ModelCard
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ulmfit.model_card import ModelCardInfo, push_folder_then_card, render_model_card
from ulmfit.model_card.awd_lstm import awd_lstm_card
from ulmfit.models.awd_lstm.convert_fastai_checkpoint import (
    FASTAI_TASKS,
    TASKS,
    FastaiCheckpointError,
    FastaiConversion,
    convert_fastai_checkpoint,
)
from ulmfit.training import script_steps
from ulmfit.training.safe_writes import SMALL_FILES_BYTES, WEIGHT_FILES, staged_folder, state_bytes
from ulmfit.training.script_steps import UsageError


def parse_overrides(text: str | None) -> dict:
    """`name=value,name=value` -> a dict, each value read as an int, a float, a bool, or left a string."""
    overrides = {}
    for item in filter(None, (text or "").split(",")):
        name, separator, value = item.partition("=")
        if not separator:
            raise UsageError(f"--config_overrides takes name=value pairs separated by commas, got {item!r}.")
        for cast in (int, float):
            try:
                overrides[name.strip()] = cast(value)
                break
            except ValueError:
                continue
        else:
            overrides[name.strip()] = {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    return overrides


def parse_args(argv=None) -> argparse.Namespace:
    """The command-line flags: the fastai files and what they hold, then the output folder and the Hub."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # --- input ------------------------------------------------------------------------------------------------------
    parser.add_argument("--checkpoint", required=True, help="fastai .pth: learn.save, save_encoder, lstm_fwd.pth")
    parser.add_argument("--vocab", required=True, help="fastai's vocabulary: a pickled list (.pkl) or a .txt file")
    parser.add_argument("--task", choices=TASKS, default=None, help="What to convert (default: from the keys).")
    parser.add_argument("--labels", default=None, help="Classifier label names in fastai's order, e.g. neg,pos.")
    parser.add_argument("--backwards", action="store_true", help="A backward model (fastai's backwards=True).")
    parser.add_argument(
        "--config_overrides",
        default=None,
        help="AwdLstmConfig fields the checkpoint does not record, e.g. bpt3c_chunk_size=72,bpt3c_max_length=1440 "
        "(fastai's seq_len, max_len of text_classifier_learner) or dropouts.",
    )
    # --- output and hub ---------------------------------------------------------------------------------------------
    parser.add_argument("--output_dir", required=True, help="The folder to write.")
    parser.add_argument("--push_to_hub", action="store_true", help="Upload the folder, model card last.")
    parser.add_argument("--hub_model_id", default=None, help="Repo id (default: the output folder's name).")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one).")
    parser.add_argument("--debug", action="store_true", help="Show the traceback of a usage error too.")
    return parser.parse_args(None if argv is None else [str(value) for value in argv])


def parse_labels(text: str | None) -> list[str] | None:
    """`--labels neg,pos` -> ["neg", "pos"]; every name must be there (no empty item)."""
    if text is None:
        return None
    labels = [label.strip() for label in text.split(",")]
    if not all(labels):
        raise UsageError(f"--labels takes label names separated by commas, e.g. neg,pos; got {text!r}.")
    return labels


def check_arguments(args: argparse.Namespace) -> None:
    """
    The input files can be read and the output folder written, before anything is converted. A folder that holds a
    model already is converted into again (the same files give the same folder; a failed save leaves the old one).
    """
    script_steps.check_input_file(args.checkpoint, "--checkpoint")
    script_steps.check_input_file(args.vocab, "--vocab")
    script_steps.check_output_folder(args.output_dir, overwrite=True)
    if args.push_to_hub:
        repo_id = args.hub_model_id or Path(args.output_dir).name
        try:
            validate_repo_id(repo_id)
        except HFValidationError as error:
            raise UsageError(f"--hub_model_id {repo_id!r} is not a Hub repo id: {error}") from error


def conversion_command(args: argparse.Namespace, task: str, labels: list[str] | None, overrides: dict) -> str:
    """The command line that makes the same folder, with file and folder names only (no local paths)."""
    parts = ["python", "scripts/convert_fastai_checkpoint.py", "--checkpoint", Path(args.checkpoint).name]
    parts += ["--vocab", Path(args.vocab).name, "--output_dir", Path(args.output_dir).name, "--task", task]
    if labels:
        parts += ["--labels", ",".join(labels)]
    if overrides:
        parts += ["--config_overrides", ",".join(f"{name}={value}" for name, value in overrides.items())]
    if args.backwards:
        parts.append("--backwards")
    return " ".join(shlex.quote(part) for part in parts)


def conversion_card(conversion: FastaiConversion, model_id: str, command: str, backwards: bool) -> ModelCard:
    """The card of a converted model: where it came from (files, SHA-256, fastai task) and how to load it."""
    task, config = conversion.task, conversion.model.config
    vocab_line = (
        "a vocabulary given as a list"
        if conversion.vocab is None
        else f"`{conversion.vocab.name}` (sha256 `{conversion.vocab_sha256}`)"
    )
    dropped = ", the optimizer state dropped" if conversion.optimizer_state_dropped else ""
    moved = ""
    if conversion.special_tokens_reordered:
        moved = " (the nine special tokens moved from fastai v1's order to v2's)"
    description = (
        f"An AWD-LSTM {FASTAI_TASKS[task]} trained with fastai and converted to 🤗 transformers by `ulmfit`: "
        f"weights from `{conversion.checkpoint.name}` (sha256 `{conversion.checkpoint_sha256}`{dropped}), "
        f"vocabulary from {vocab_line}. Token ids are fastai's{moved}, and in eval mode the model gives fastai's "
        "outputs on the same ids. Dropouts and BPT3C settings, which a fastai checkpoint does not record, are "
        "fastai's defaults unless the command below overrides them."
    )
    hyperparameters = {
        "fastai task": FASTAI_TASKS[task],
        "source checkpoint": conversion.checkpoint.name,
        "source sha256": conversion.checkpoint_sha256,
        "vocab_size": config.vocab_size,
        "embedding_size": config.embedding_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
    }
    if task == "lm":
        hyperparameters["tie_word_embeddings"] = config.tie_word_embeddings
    if task == "classifier":
        hyperparameters.update(
            classifier_hidden_size=config.classifier_hidden_size,
            labels=", ".join(config.id2label[index] for index in range(config.num_labels)),
            bpt3c_chunk_size=config.bpt3c_chunk_size,
            bpt3c_max_length=config.bpt3c_max_length,
        )
    # the family's text (usage snippet, model class, pipeline tag, citations); this conversion's own description
    info = ModelCardInfo(
        model_id=model_id,
        family=awd_lstm_card(task, backwards),
        description=description,
        training_command=command,
        hyperparameters=hyperparameters,
    )
    return render_model_card(info)


def main(argv=None):
    """
    Convert, write the folder and its card, and optionally upload. A bad flag or file raises a `UsageError` before
    anything is written (on the command line: one line, exit status 2).
    """
    args = parse_args(argv)
    check_arguments(args)
    output_dir = Path(args.output_dir)
    repo_id = args.hub_model_id or output_dir.name
    labels = parse_labels(args.labels)
    overrides = parse_overrides(args.config_overrides)

    # 1. Convert, in memory: the folder is written once the card is ready too
    try:
        conversion = convert_fastai_checkpoint(
            args.checkpoint,
            args.vocab,
            task=args.task,
            labels=labels,
            config_overrides=overrides,
            backwards=args.backwards,
        )
    except FastaiCheckpointError as error:  # the files are not what the flags say (the message names the file)
        raise UsageError(str(error)) from error
    config = conversion.model.config
    print(
        f"{type(conversion.model).__name__}: embedding {config.embedding_size}, hidden {config.hidden_size}, "
        f"{config.num_hidden_layers} layers, vocabulary {len(conversion.tokenizer)}"
        + (f", labels {list(config.id2label.values())}" if conversion.task == "classifier" else "")
    )

    # 2. The model card, from what the conversion recorded (the checkpoint is not read again)
    command = conversion_command(args, conversion.task, labels, overrides)
    card = conversion_card(conversion, repo_id, command, args.backwards)

    # 3. Write the folder (weights, config, tokenizer, card) through a staging folder: a save that fails on the disk
    # leaves a model converted there before as it was
    needed = state_bytes(conversion.model.state_dict()) + SMALL_FILES_BYTES
    with staged_folder(output_dir, needed, "the converted model", stale=WEIGHT_FILES) as staging:
        conversion.model.save_pretrained(staging)
        conversion.tokenizer.save_pretrained(staging)
        card.save(staging / "README.md")

    # 4. Upload: the folder, then the card (push_to_hub of the weights would replace a card uploaded first)
    if args.push_to_hub:
        push_folder_then_card(output_dir, card, repo_id, args.hub_token, ())
        print(f"pushed to {repo_id}")
    print(output_dir.resolve())


if __name__ == "__main__":
    # a bad file or flag: one line, exit status 2; a full disk or an unwritable folder (nothing half-written is
    # left): one line, exit status 1
    script_steps.run_script(main)
