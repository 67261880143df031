"""Checkpoints that survive a kill: accelerate's `save_state` plus what a BPTT loop must also carry.

A checkpoint folder (`step_<N>` or `epoch_<N>` in the output directory) holds accelerate's state (model, optimizer,
every process's RNG states), `training_state.json` (where in the schedule the run stopped), `scheduler.pt`, and one
`recurrent_state_<rank>.pt` per process: the detached LSTM state carried into the next window, without which a resumed
run would start its next window from zeros and drift from the uninterrupted one.

It is written to `<name>.tmp` and renamed once complete, so a run killed mid-write leaves no folder that `latest`
could pick up; the next save, and a resumed run, remove such a stale `.tmp`. A save that fails (a full disk, a folder
that became unwritable) is refused before writing when the free space is clearly too small, and otherwise removes its
partial `.tmp` and raises a one-line `DiskWriteError` on every process: the earlier checkpoints stay as they were.
"""

import errno
import json
import os
import re
import shutil
from pathlib import Path

import torch

from .safe_writes import (
    SMALL_FILES_BYTES,
    DiskWriteError,
    check_free_space,
    disk_write_error,
    remove_stale_temporaries,
    state_bytes,
)


_CHECKPOINT_NAME = re.compile(r"^(step|epoch)_(\d+)$")


def checkpoint_bytes(accelerator, recurrent_state) -> int:
    """Roughly what `save_checkpoint` writes: the prepared models' weights, the optimizers' states (both registered
    by `prepare`, which is where `save_state` finds them too), the recurrent state, and the small files."""
    models = [model.state_dict() for model in accelerator._models]
    optimizers = [optimizer.state_dict()["state"] for optimizer in accelerator._optimizers]
    return state_bytes(models, optimizers, recurrent_state) + SMALL_FILES_BYTES


def save_checkpoint(accelerator, output_dir, name: str, training_state: dict, scheduler, recurrent_state) -> Path:
    """
    Write checkpoint `name` atomically; every process must call it. A save that fails on any process removes the
    partial `<name>.tmp` and raises a `DiskWriteError` (or the original error, when it was no disk fault) on every
    process, so that none waits for the others forever; the earlier checkpoints are left as they were.
    """
    output_dir = Path(output_dir)
    final = output_dir / name
    partial = final.with_name(name + ".tmp")
    what = f"checkpoint {name}"
    needed = checkpoint_bytes(accelerator, recurrent_state)
    if accelerator.is_main_process:
        remove_stale_temporaries(output_dir)
    accelerator.wait_for_everyone()
    failure = None
    try:
        check_free_space(output_dir, needed, what)
        accelerator.save_state(str(partial))
        state = None if recurrent_state is None else [(h.cpu(), c.cpu()) for h, c in recurrent_state]
        torch.save(state, partial / f"recurrent_state_{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            torch.save(scheduler.state_dict(), partial / "scheduler.pt")
            (partial / "training_state.json").write_text(json.dumps(training_state, indent=2))
    except Exception as error:  # kept until every process knows, below
        failure = error
        accelerator.set_trigger()
    # Every process learns whether any of them failed; this collective also waits until all have written.
    if accelerator.check_trigger():
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        accelerator.wait_for_everyone()
        raise _save_failure(failure, output_dir, needed, what, partial.name)
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
    accelerator.wait_for_everyone()
    return final


def _save_failure(failure: Exception | None, output_dir: Path, needed: int, what: str, partial: str) -> Exception:
    """What a process raises after a failed checkpoint save: its own error as a `DiskWriteError`, the error as it
    was when it was no disk fault, or (on a process whose own writes worked) that another process failed."""
    left_on_disk = f"no partial {partial} is left, earlier checkpoints are intact"
    if failure is None:
        message = f"{what} not saved: another process failed to write it; {left_on_disk}"
        return DiskWriteError(errno.EIO, message, str(output_dir))
    return disk_write_error(failure, output_dir, needed, what, left_on_disk) or failure


def latest_checkpoint(output_dir) -> Path | None:
    """The complete checkpoint with the most optimizer steps in `output_dir`, or None."""
    candidates = []
    for path in Path(output_dir).glob("*"):
        state_file = path / "training_state.json"
        if path.is_dir() and _CHECKPOINT_NAME.match(path.name) and state_file.exists():
            candidates.append((json.loads(state_file.read_text())["completed_steps"], path))
    return max(candidates)[1] if candidates else None


def load_checkpoint(accelerator, checkpoint, scheduler_factory):
    """
    Restore a checkpoint written by `save_checkpoint`. `scheduler_factory(training_state)` must rebuild the scheduler
    of the stage the run was in; its state is then loaded. Returns (training_state, scheduler, recurrent_state).
    """
    checkpoint = Path(checkpoint)
    state_file = checkpoint / "training_state.json"
    if not state_file.exists():
        raise FileNotFoundError(f"{checkpoint} is not a complete checkpoint (no training_state.json).")
    training_state = json.loads(state_file.read_text())
    # The scheduler is rebuilt first: building one writes its starting learning rates and momenta into the optimizer,
    # which `load_state` then replaces with the saved ones.
    scheduler = scheduler_factory(training_state)
    accelerator.load_state(str(checkpoint))
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
    saved = torch.load(checkpoint / f"recurrent_state_{accelerator.process_index}.pt", weights_only=True)
    recurrent_state = (
        None if saved is None else tuple((h.to(accelerator.device), c.to(accelerator.device)) for h, c in saved)
    )
    return training_state, scheduler, recurrent_state


def resume_from(accelerator, resume_from_checkpoint: str | None, output_dir, scheduler_factory, start: dict):
    """
    Where a script's run starts: from the checkpoint that `--resume_from_checkpoint` names (a checkpoint folder, or
    `latest` in `output_dir`), or afresh at `start` when it names none or there is none yet. Returns `(position,
    training_log, scheduler, recurrent_state)`: the saved training state and the training log the scripts keep in it
    under `log`, with what `load_checkpoint` restores. A fresh start gives `start`, an empty log, and no scheduler
    or recurrent state.
    """
    if accelerator.is_main_process:
        for stale in remove_stale_temporaries(output_dir):
            accelerator.print(f"removed {stale.name}, left by an interrupted save")
    accelerator.wait_for_everyone()
    checkpoint = None
    if resume_from_checkpoint:
        checkpoint = latest_checkpoint(output_dir) if resume_from_checkpoint == "latest" else resume_from_checkpoint
        if checkpoint is None:
            accelerator.print("no checkpoint to resume from: starting afresh")
    if checkpoint is None:
        return start, [], None, None
    training_state, scheduler, recurrent_state = load_checkpoint(accelerator, checkpoint, scheduler_factory)
    accelerator.print(f"resumed from {checkpoint} at optimizer step {training_state['completed_steps']}")
    training_log = training_state.pop("log", [])
    return training_state, training_log, scheduler, recurrent_state


__all__ = ["checkpoint_bytes", "latest_checkpoint", "load_checkpoint", "resume_from", "save_checkpoint"]
