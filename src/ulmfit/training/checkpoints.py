"""Checkpoints that survive a kill: accelerate's `save_state` plus what a BPTT loop must also carry.

A checkpoint folder (`step_<N>` or `epoch_<N>` in the output directory) holds accelerate's state (model, optimizer,
every process's RNG states), `training_state.json` (where in the schedule the run stopped), `scheduler.pt`, and one
`recurrent_state_<rank>.pt` per process: the detached LSTM state carried into the next window, without which a resumed
run would start its next window from zeros and drift from the uninterrupted one.

It is written to `<name>.tmp` and renamed once complete, so a run killed mid-write leaves no folder that `latest`
could pick up.
"""

import json
import os
import re
import shutil
from pathlib import Path

import torch


_CHECKPOINT_NAME = re.compile(r"^(step|epoch)_(\d+)$")


def save_checkpoint(accelerator, output_dir, name: str, training_state: dict, scheduler, recurrent_state) -> Path:
    """Write checkpoint `name` atomically; every process must call it."""
    final = Path(output_dir) / name
    partial = final.with_name(name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    state = None if recurrent_state is None else [(h.cpu(), c.cpu()) for h, c in recurrent_state]
    torch.save(state, partial / f"recurrent_state_{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), partial / "scheduler.pt")
        (partial / "training_state.json").write_text(json.dumps(training_state, indent=2))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
    accelerator.wait_for_everyone()
    return final


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


__all__ = ["latest_checkpoint", "load_checkpoint", "resume_from", "save_checkpoint"]
