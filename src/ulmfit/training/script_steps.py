"""The steps that every training script in `scripts/` takes in the same way, written once.

A script keeps what belongs to it alone: its data, its model, its plan and the order of its loop. It takes these steps
from here:

- [`TrainingScriptArguments`]: the arguments every script takes (output folder, seed, precision, `--cpu`, checkpoints,
  experiment tracking, Hub, `--debug`). Each script's argument dataclass extends it; the shared values are checked
  here, once, as the arguments are read.
- Checks before any work: [`UsageError`] is a mistake of the user's (a flag, a file, a folder), found before the
  `Accelerator` starts or anything is written. [`parse_arguments`] reads the command line, [`check_numbers`],
  [`check_input_file`], [`check_input_folder`], [`check_model_source`] and [`check_output_location`] find the usual
  mistakes, and [`run_script`] reports one in a single line and exits with status 2, as argparse does (with
  `--debug`, with its traceback).
- [`make_accelerator`]: the run's `Accelerator`. As in accelerate's own examples, it uses the CPU only when `--cpu`
  asks; otherwise accelerate chooses the device itself (CUDA, MPS, XPU, ..., or the CPU when there is nothing else).
  With `--with_tracking` it logs to the `--report_to` trackers under the output folder, as transformers'
  `*_no_trainer` examples do; [`start_tracking`] starts them with the run's arguments, [`log_metrics`] sends them each
  row of the training log, and every process calls `accelerator.end_training()` after the last collective step.
- [`epoch_batches`]: one epoch of a loader driven by a seeded batch sampler, resumable mid-epoch.
- [`backward_and_step`]: one optimizer step (stop on a non-finite loss, backward, clip, step, schedule, zero_grad).
- [`checkpoint_due`]: whether `--checkpointing_steps` asks for a checkpoint now.
- [`evaluation_data_name`]: what the card's results were measured on (never the training file).
- [`save_model`], [`save_results_and_card`] and [`push_to_hub`]: how every run ends. The weights (with their remote
  code) and the tokenizer or processor, then `all_results.json`, `training_log.json` and the model card, then with
  `--push_to_hub` the folder, with the card uploaded last.
"""

import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.tracking import get_available_trackers
from accelerate.utils import LoggerType
from huggingface_hub import ModelCard, is_offline_mode, repo_exists, try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import HfArgumentParser

from ..model_card import (
    CHECKPOINT_PATTERNS,
    FamilyCard,
    ModelCardInfo,
    push_folder_then_card,
    render_model_card,
    script_command,
    script_hyperparameters,
)
from ..plotting import plot_training_curve
from .safe_writes import SMALL_FILES_BYTES, WEIGHT_FILES, DiskWriteError, staged_folder, state_bytes


# ---------------------------------------------------------------------------------------------------------------------
# Usage errors: found before any work, reported in one line


class UsageError(ValueError):
    """
    A mistake in a script's flags or inputs (a number out of range, a missing file or column, an output folder that
    cannot be written), found before the `Accelerator` starts or anything is written. Its message names the flag or
    file and the fix; [`run_script`] prints it in one line and exits with status 2.
    """


class MissingInputError(UsageError, FileNotFoundError):
    """A file or folder that a flag names does not exist (a `UsageError` that is also a `FileNotFoundError`)."""


def run_script(main: Callable[[], object]) -> None:
    """
    Run a script's `main()`: a [`UsageError`] prints `<script>: error: <message>` in one line on stderr and exits
    with status 2 (argparse's convention for a bad command line), a [`DiskWriteError`] (full disk, folder no longer
    writable; nothing half-written is left) the same way with status 1; with `--debug` both keep their traceback. Any
    other exception is a bug or a failure during the run and keeps its traceback.
    """
    try:
        main()
    except (UsageError, DiskWriteError) as error:
        if "--debug" in sys.argv[1:]:
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
        sys.exit(2 if isinstance(error, UsageError) else 1)


def parse_arguments(dataclass_type, argv: Sequence[str] | None = None):
    """
    The script's argument dataclass read from `argv` (default: the command line). argparse reports a flag it cannot
    read itself (exit status 2); the dataclass's `__post_init__` raises [`UsageError`] for a value out of range, and
    so does an argument nobody takes.
    """
    args, unknown = HfArgumentParser(dataclass_type).parse_args_into_dataclasses(
        args=None if argv is None else [str(value) for value in argv], return_remaining_strings=True
    )
    if unknown:
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)} (see --help for the flags).")
    return args


# what `check_numbers` requires of each kind of number, and how its message says so
_NUMBER_RULES = {
    "positive": (lambda v: math.isfinite(v) and v > 0, "a finite number above 0"),
    "at_least_one": (lambda v: v >= 1, "at least 1"),
    "non_negative": (lambda v: math.isfinite(v) and v >= 0, "a finite number, 0 or more"),
    "open_fraction": (lambda v: 0 < v < 1, "between 0 and 1 (both excluded)"),
    "probability": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "percentage": (lambda v: 0 < v < 100, "a percentage between 0 and 100 (both excluded)"),
}


def check_numbers(args, **kinds: Sequence[str]) -> None:
    """
    Check the numeric arguments named in `kinds` (keyword: `positive`, `at_least_one`, `non_negative`,
    `open_fraction`, `probability`, `percentage`; value: field names). An unset (None) optional value passes.
    """
    for kind, names in kinds.items():
        accepts, rule = _NUMBER_RULES[kind]
        for name in names:
            value = getattr(args, name)
            if value is not None and not accepts(value):
                raise UsageError(f"--{name} must be {rule}, got {value!r}.")


def parse_number_list(value: str, flag: str, cast: type = float, count: int | None = None) -> list:
    """A comma-separated list of numbers (`cast` int or float), with the flag named when an item is not one."""
    items = [item.strip() for item in value.split(",")]
    try:
        numbers = [cast(item) for item in items]
    except ValueError:
        bad = next(item for item in items if not _castable(item, cast))
        kind = "whole numbers" if cast is int else "numbers"
        raise UsageError(f"{flag} takes {kind} separated by commas, e.g. 1,2; {bad!r} is not one.") from None
    if count is not None and len(numbers) != count:
        raise UsageError(f"{flag} needs {count} values separated by commas, got {len(numbers)}: {value!r}.")
    return numbers


def _castable(item: str, cast: type) -> bool:
    try:
        cast(item)
    except ValueError:
        return False
    return True


def check_input_file(path: str | None, flag: str, formats: Sequence[str] | None = None) -> None:
    """`path` (when given) is a readable, non-empty file, with one of `formats` (suffixes such as `.csv`) if given."""
    if path is None:
        return
    file = Path(path)
    if not file.exists():
        raise MissingInputError(f"{flag} {path} does not exist.")
    if file.is_dir():
        raise UsageError(f"{flag} {path} is a folder, not a file.")
    if not os.access(file, os.R_OK):
        raise UsageError(f"{flag} {path} cannot be read (permission denied).")
    if file.stat().st_size == 0:
        raise UsageError(f"{flag} {path} is empty.")
    if formats is not None and file.suffix.lower() not in formats:
        raise UsageError(f"{flag} {path}: unknown format {file.suffix!r}, use one of {', '.join(sorted(formats))}.")


def check_input_folder(path: str | None, flag: str) -> None:
    """`path` (when given) is a readable folder."""
    if path is None:
        return
    folder = Path(path)
    if not folder.exists():
        raise MissingInputError(f"{flag} {path} does not exist.")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder.")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UsageError(f"{flag} {path} cannot be read (permission denied).")


def check_model_source(name: str | None, flag: str, filename: str = "config.json") -> None:
    """
    `name` (when given) is a local folder holding `filename` (what `save_pretrained` writes), or a Hub repo id that
    exists: in the local cache when offline, on the Hub otherwise. A path that cannot be a repo id (`./x`, `a/b/c`,
    an absolute path) is a missing folder.
    """
    if name is None:
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / filename).is_file():
            raise UsageError(f"{flag} {name} is a folder without {filename}: give the folder save_pretrained wrote.")
        return
    if path.exists():
        raise UsageError(f"{flag} {name} is a file: give the folder save_pretrained wrote, or a Hub repo id.")
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise UsageError(f"{flag} {name}: no such folder.") from None
    if is_offline_mode():
        if not isinstance(try_to_load_from_cache(name, filename), str):
            raise UsageError(
                f"{flag} {name}: no such folder, and no Hub model of that name in the cache (offline mode, "
                "HF_HUB_OFFLINE=1): check the path, or download the model once while online."
            )
        return
    try:
        found = repo_exists(name)
    except Exception:  # no network, a proxy, the Hub down: loading it will say what went wrong
        return
    if not found:
        raise UsageError(f"{flag} {name}: no such folder, and no such model on the Hub (or it is private).")


def check_dataset_source(name: str | None, flag: str = "--dataset_name") -> None:
    """`name` (when given) is a local folder or could be a Hub dataset id (whether it exists shows when loading)."""
    if name is None or Path(name).expanduser().is_dir():
        return
    if Path(name).exists():
        raise UsageError(f"{flag} {name} is a file: give it with --train_file instead.")
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise UsageError(f"{flag} {name}: no such folder, nor a Hub dataset id.") from None


def check_text_data_flags(args) -> None:
    """
    The data flags of a text script: exactly one of `--dataset_name` and `--train_file`, and the flags that only go
    with one of them.
    """
    if (args.dataset_name is None) == (args.train_file is None):
        raise UsageError("Give either --dataset_name (a Hub dataset) or --train_file (a local file), not both.")
    if args.dataset_name is not None and args.validation_file is not None:
        raise UsageError("--validation_file goes with --train_file; a --dataset_name brings its own splits.")
    if args.dataset_name is None and args.dataset_config_name is not None:
        raise UsageError("--dataset_config_name goes with --dataset_name, not with --train_file.")


def check_text_data_sources(args, formats: Sequence[str]) -> None:
    """The files or the dataset of [`check_text_data_flags`] can be read (`formats`: the suffixes accepted)."""
    check_input_file(args.train_file, "--train_file", formats)
    check_input_file(args.validation_file, "--validation_file", formats)
    check_dataset_source(args.dataset_name)


# files and folders that show a folder holds a run: the saved model, its results, or its checkpoints
_RUN_FILES = ("config.json", "model.safetensors", "all_results.json", "training_log.json")
_CHECKPOINT_FOLDER = re.compile(r"^(step|epoch)_\d+$")


def run_files(folder: Path) -> list[str]:
    """The names in `folder` that belong to a saved model or a training run (see `_RUN_FILES`)."""
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name in _RUN_FILES or (entry.is_dir() and _CHECKPOINT_FOLDER.match(entry.name))
    )


def check_output_folder(output_dir: str, overwrite: bool, resuming: bool = False, flag: str = "--output_dir") -> None:
    """
    `output_dir` can be written: it is a folder or can be created as one, under a writable parent, and it does not
    hold another run (a saved model, results or checkpoints) unless `resuming` or `overwrite` say to go on with it.
    Nothing is created here: a script makes the folder once every check has passed.
    """
    folder = Path(output_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {output_dir} is an existing file: give a folder (it is created if missing).")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {output_dir} cannot be created: {existing} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {output_dir} cannot be written: {existing} is not writable by you.")
    if folder.is_dir() and not (resuming or overwrite):
        found = run_files(folder)
        if found:
            raise UsageError(
                f"{flag} {output_dir} already holds a run ({', '.join(found[:4])}): pass --resume_from_checkpoint "
                "latest to go on with it, --overwrite_output_dir to write over it, or choose another folder."
            )


def check_output_location(args: "TrainingScriptArguments") -> None:
    """
    The output folder and the checkpoint to resume from, before any work: see [`check_output_folder`]; a
    `--resume_from_checkpoint` other than `latest` must be a complete checkpoint folder.
    """
    checkpoint = args.resume_from_checkpoint
    if checkpoint not in (None, "latest"):
        if not Path(checkpoint).is_dir():
            raise UsageError(f"--resume_from_checkpoint {checkpoint}: no such folder (or pass `latest`).")
        if not (Path(checkpoint) / "training_state.json").is_file():
            raise UsageError(
                f"--resume_from_checkpoint {checkpoint} is not a complete checkpoint (no training_state.json)."
            )
    check_output_folder(args.output_dir, args.overwrite_output_dir, resuming=checkpoint is not None)


@contextmanager
def removed_if_start_fails(accelerator: Accelerator, output_dir: str):
    """
    For the steps of a run that write into `--output_dir` before the last input check (a tokenizer trained on the
    data, before the data are known to fill a batch): a `UsageError` inside removes the folder if this run created
    it, so a failed start leaves nothing behind.
    """
    folder = Path(output_dir)
    created_here = not folder.exists()
    try:
        yield
    except UsageError:
        if created_here and accelerator.is_main_process:
            shutil.rmtree(folder, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------------------------------------
# The steps every script takes


@dataclass
class TrainingScriptArguments:
    """
    The arguments every training script takes. A script's own dataclass extends this one, and may declare
    `output_dir` again with its own default folder.
    """

    # --- output, hardware and reproducibility -----------------------------------------------------------------------
    output_dir: str = field(default="runs/ulmfit", metadata={"help": "Where the model and logs go."})
    seed: int = field(default=42, metadata={"help": "Seed of everything random."})
    mixed_precision: str = field(default="no", metadata={"help": "no | bf16 | fp16"})
    cpu: bool = field(default=False, metadata={"help": "Train on the CPU even when an accelerator is available."})
    # --- checkpoints ------------------------------------------------------------------------------------------------
    checkpointing_steps: str | None = field(default=None, metadata={"help": "N (every N steps) or `epoch`."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint folder or `latest`."})
    # --- experiment tracking ----------------------------------------------------------------------------------------
    with_tracking: bool = field(default=False, metadata={"help": "Also log to the --report_to trackers."})
    report_to: str = field(
        default="all", metadata={"help": "Accelerate trackers (tensorboard, wandb, ...) or `all` installed ones."}
    )
    # --- hub --------------------------------------------------------------------------------------------------------
    push_to_hub: bool = field(default=False, metadata={"help": "Upload the output folder, model card last."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Repo id (default: output folder name)."})
    hub_token: str | None = field(default=None, metadata={"help": "Hub token (default: the logged-in one)."})

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Write over a finished run or its checkpoints in --output_dir (else that is refused)."},
    )
    debug: bool = field(default=False, metadata={"help": "Show the traceback of a usage error too."})

    def __post_init__(self):
        # checked as the arguments are read, before any data is loaded or anything written
        if self.checkpointing_steps not in (None, "epoch") and not self.checkpointing_steps.isdigit():
            raise UsageError(
                f"--checkpointing_steps must be a number of steps or `epoch`, not {self.checkpointing_steps!r}."
            )
        precisions = ("no", "fp16", "bf16", "fp8")
        if self.mixed_precision not in precisions:
            raise UsageError(
                f"--mixed_precision must be one of {', '.join(precisions)}, not {self.mixed_precision!r}."
            )
        if self.with_tracking:
            known = [tracker.value for tracker in LoggerType]
            names = [name.strip() for name in self.report_to.split(",") if name.strip()]
            unknown = [name for name in names if name not in known]
            if unknown or not names:
                raise UsageError(f"--report_to {self.report_to!r}: use `all` or some of {', '.join(known[1:])}.")
            installed = [str(getattr(tracker, "value", tracker)) for tracker in get_available_trackers()]
            missing = [name for name in names if name != "all" and name not in installed]
            if missing or not installed:
                raise UsageError(
                    f"--report_to: {', '.join(missing) or 'no tracker'} is not installed (installed: "
                    f"{', '.join(installed) or 'none'}); install it, or leave out --with_tracking."
                )
        if not self.output_dir:
            raise UsageError("--output_dir must name a folder.")
        if self.push_to_hub:
            try:
                validate_repo_id(self.hub_repo_id)
            except HFValidationError as error:
                flag = "--hub_model_id" if self.hub_model_id else "--output_dir's folder name (no --hub_model_id)"
                raise UsageError(f"{flag} {self.hub_repo_id!r} is not a Hub repo id: {error}") from error

    @property
    def hub_repo_id(self) -> str:
        """The Hub repo the run is named and pushed as: `--hub_model_id`, else the output folder's name."""
        return self.hub_model_id or Path(self.output_dir).name


def make_accelerator(args: TrainingScriptArguments, **kwargs) -> Accelerator:
    """
    The run's `Accelerator`: `--cpu`, `--mixed_precision` and, with `--with_tracking`, the `--report_to` trackers
    (their logs under `--output_dir`) come from `args`; `kwargs` carry what only some scripts set (gradient
    accumulation, `kwargs_handlers`).
    """
    tracking = {"log_with": args.report_to, "project_dir": args.output_dir} if args.with_tracking else {}
    try:
        return Accelerator(cpu=args.cpu, mixed_precision=args.mixed_precision, **tracking, **kwargs)
    except ValueError as error:  # a precision this machine lacks (fp16 on a CPU, ...): nothing has run yet
        raise UsageError(f"--mixed_precision {args.mixed_precision} / --cpu {args.cpu}: {error}") from error


def start_tracking(accelerator: Accelerator, args: TrainingScriptArguments, project_name: str) -> None:
    """With `--with_tracking`, start the trackers with the run's arguments (the unset ones and the token left out)."""
    if args.with_tracking:
        accelerator.init_trackers(project_name, script_hyperparameters(args))


def log_metrics(accelerator: Accelerator, args: TrainingScriptArguments, row: dict) -> None:
    """With `--with_tracking`, send the numbers of a training-log row to the trackers, at the row's `step`."""
    if args.with_tracking:
        numbers = {name: value for name, value in row.items() if name != "step" and isinstance(value, (int, float))}
        accelerator.log(numbers, step=row["step"])


def evaluation_data_name(args) -> str:
    """
    The name of the data a script's results were measured on: the Hub dataset, the validation file or folder, or
    the share of the training file held out for validation (never the training file alone).
    """
    if getattr(args, "dataset_name", None):
        return args.dataset_name
    validation = getattr(args, "validation_file", None) or getattr(args, "validation_dir", None)
    if validation:
        return Path(validation).name
    train = getattr(args, "train_file", None) or getattr(args, "train_dir", None)
    return f"held-out {args.validation_split_percentage:g}% of {Path(train).name}"


def epoch_batches(accelerator: Accelerator, train_loader, batch_sampler, epoch: int, skip: int = 0):
    """
    The batches of `epoch` from a prepared `train_loader` whose order comes from `batch_sampler` (seeded, with a
    `set_epoch`). The first `skip` batches are left out, for a run resumed mid-epoch, so the remaining batches come
    in the same order as in an uninterrupted run.
    """
    batches = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
    # The loader's own epoch count: it passes that count on to the sampler whenever it starts, and would otherwise
    # count from its own start.
    batches.set_epoch(epoch)
    # The sampler is told directly as well, because `set_epoch` does not reach it through accelerate's batch skipper
    # (a resumed epoch) or through its per-process `BatchSamplerShard` (every process would replay epoch 0's order).
    batch_sampler.set_epoch(epoch)
    return batches


def backward_and_step(
    accelerator: Accelerator,
    model,
    optimizer,
    scheduler,
    loss: torch.Tensor,
    max_grad_norm: float | None,
    completed_steps: int,
) -> None:
    """
    One optimizer step after the forward pass: backward, clip the gradients to `max_grad_norm` (0 or None: no
    clipping), step the optimizer and the schedule, and zero the gradients. Under `accelerator.accumulate`, the
    gradients are clipped and the schedule moves on only when they are synchronised. The wrapped optimizer skips its
    own step until then.

    A loss that is not finite stops every process before anything is saved. accelerate's trigger gets every process
    to raise, even when only one of them sees the bad loss, so none is left waiting for the others.
    """
    if not torch.isfinite(loss):
        accelerator.set_trigger()
    if accelerator.check_trigger():
        raise RuntimeError(
            f"The loss became {loss.item()} at optimizer step {completed_steps} (learning rate "
            f"{optimizer.param_groups[-1]['lr']:.2e}); stopping before anything is saved. Try a lower learning rate, "
            "--max_grad_norm, or --mixed_precision no."
        )
    accelerator.backward(loss)
    if accelerator.sync_gradients and max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if accelerator.sync_gradients:
        scheduler.step()
    optimizer.zero_grad()


def checkpoint_due(checkpointing_steps: str | None, completed_steps: int, end_of_epoch: bool = False) -> bool:
    """
    Whether `--checkpointing_steps` asks for a checkpoint now. A number N asks for one after every N-th optimizer step
    (0: never), and `epoch` asks for one at the end of every epoch (`end_of_epoch=True`).
    """
    if checkpointing_steps == "epoch":
        return end_of_epoch
    every = int(checkpointing_steps) if checkpointing_steps else 0
    return not end_of_epoch and every > 0 and completed_steps % every == 0


def save_model(accelerator: Accelerator, args: TrainingScriptArguments, model, processor) -> None:
    """
    Every process waits for the others. The main process then writes the unwrapped model (its weights, config and
    remote code) and its tokenizer or processor to `--output_dir`, through a staging folder whose files move in only
    once all are written: a save that fails (a full disk, a folder that became unwritable) raises a one-line
    `DiskWriteError` and leaves a model saved there before as it was. With `--with_tracking` the trackers end here,
    on every process, after the run's last collective step.
    """
    accelerator.wait_for_everyone()
    try:
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            needed = state_bytes(unwrapped.state_dict()) + SMALL_FILES_BYTES
            with staged_folder(args.output_dir, needed, "the final model", stale=WEIGHT_FILES) as staging:
                unwrapped.save_pretrained(staging)
                processor.save_pretrained(staging)
    finally:
        if args.with_tracking:
            accelerator.end_training()


def save_results_and_card(
    accelerator: Accelerator,
    args: TrainingScriptArguments,
    results: dict,
    training_log: list[dict],
    family: FamilyCard,
    plot_curve: bool = False,
    **card_fields,
) -> ModelCard:
    """
    Write a finished run's `all_results.json`, `training_log.json`, with `plot_curve` its `training_curve.png`, and
    its model card `README.md`. The card gets the repo id, the command, the arguments and the log, plus
    `card_fields` (`ModelCardInfo` fields: metrics, datasets, base model, ...). Call it on the main process only.
    The files move into `--output_dir` together once all are written; a failed save raises a `DiskWriteError` and
    leaves the ones there before as they were.
    """
    card = render_model_card(
        ModelCardInfo(
            model_id=args.hub_repo_id,
            family=family,
            training_command=script_command(),
            hyperparameters=script_hyperparameters(args),
            training_log=training_log,
            **card_fields,
        )
    )
    results_text, log_text = json.dumps(results, indent=2), json.dumps(training_log, indent=2)
    needed = len(results_text) + len(log_text) + len(str(card)) + SMALL_FILES_BYTES
    # written together, like the model: a failed save leaves the results and card of an earlier run as they were
    with staged_folder(args.output_dir, needed, "the results and model card") as staging:
        (staging / "all_results.json").write_text(results_text)
        (staging / "training_log.json").write_text(log_text)
        if plot_curve and any("train_loss" in row for row in training_log):
            try:
                plot_training_curve(training_log, staging / "training_curve.png")
            except ImportError as error:  # the curve is a convenience; the model and its card are saved regardless
                accelerator.print(f"no training_curve.png: {error}")
        card.save(staging / "README.md")
    return card


def push_to_hub(
    accelerator: Accelerator,
    args: TrainingScriptArguments,
    card: ModelCard,
    ignore_patterns: Sequence[str] = CHECKPOINT_PATTERNS,
) -> None:
    """
    Upload the output folder to `args.hub_repo_id`, leaving out `ignore_patterns` (the checkpoints by default), then
    upload the card last so that nothing overwrites it. Call it on the main process only.
    """
    push_folder_then_card(Path(args.output_dir), card, args.hub_repo_id, args.hub_token, list(ignore_patterns))
    accelerator.print(f"pushed to https://huggingface.co/{args.hub_repo_id}")


__all__ = [
    "MissingInputError",
    "TrainingScriptArguments",
    "UsageError",
    "backward_and_step",
    "check_dataset_source",
    "check_input_file",
    "check_input_folder",
    "check_model_source",
    "check_numbers",
    "check_output_folder",
    "check_output_location",
    "check_text_data_flags",
    "check_text_data_sources",
    "checkpoint_due",
    "epoch_batches",
    "evaluation_data_name",
    "log_metrics",
    "make_accelerator",
    "parse_arguments",
    "parse_number_list",
    "push_to_hub",
    "removed_if_start_fails",
    "run_files",
    "run_script",
    "save_model",
    "save_results_and_card",
    "start_tracking",
]
