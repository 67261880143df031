"""The steps that every training script in `scripts/` takes in the same way, written once.

A script keeps what belongs to it alone: its data, its model, its plan and the order of its loop. It takes these steps
from here:

- [`TrainingScriptArguments`]: the arguments every script takes (output folder, seed, precision, `--cpu`, checkpoints,
  experiment tracking, Hub). Each script's argument dataclass extends it, and `--checkpointing_steps` is checked here,
  once.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from huggingface_hub import ModelCard

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

    def __post_init__(self):
        # checked as the arguments are read, before any data is loaded or anything written
        if self.checkpointing_steps not in (None, "epoch") and not self.checkpointing_steps.isdigit():
            raise ValueError(
                f"--checkpointing_steps must be a number of steps or `epoch`, not {self.checkpointing_steps!r}."
            )

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
    return Accelerator(cpu=args.cpu, mixed_precision=args.mixed_precision, **tracking, **kwargs)


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
    remote code) and its tokenizer or processor to `--output_dir`. With `--with_tracking` the trackers end here, on
    every process, after the run's last collective step.
    """
    accelerator.wait_for_everyone()
    accelerator.unwrap_model(model).save_pretrained(
        args.output_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save
    )
    if accelerator.is_main_process:
        processor.save_pretrained(args.output_dir)
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
    """
    output_dir = Path(args.output_dir)
    (output_dir / "all_results.json").write_text(json.dumps(results, indent=2))
    (output_dir / "training_log.json").write_text(json.dumps(training_log, indent=2))
    if plot_curve and any("train_loss" in row for row in training_log):
        try:
            plot_training_curve(training_log, output_dir / "training_curve.png")
        except ImportError as error:  # the curve is a convenience; the model and its card are saved regardless
            accelerator.print(f"no training_curve.png: {error}")
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
    card.save(output_dir / "README.md")
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
    "TrainingScriptArguments",
    "backward_and_step",
    "checkpoint_due",
    "epoch_batches",
    "evaluation_data_name",
    "log_metrics",
    "make_accelerator",
    "push_to_hub",
    "save_model",
    "save_results_and_card",
    "start_tracking",
]
