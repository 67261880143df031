"""Writes that a full disk, a folder that became unwritable, or a kill cannot leave half done.

A run writes its largest files (checkpoints, the final model) hours after it started, into a folder that may have
filled up or lost its write permission in the meantime. torch reports a full disk as `RuntimeError: [enforce fail at
inline_container.cc:672] . unexpected pos ...`, safetensors as a `SafetensorError`; neither names the folder or the
space the write needed, and both leave a partial file behind. What writes through this module:

- checks the free space first ([`check_free_space`], with [`state_bytes`] estimating what tensors will take) and
  refuses a write that clearly cannot fit, before anything is written;
- writes into a temporary next to its destination ([`staged_folder`], [`write_file_atomically`]) and moves it into
  place only once complete, so an earlier good file survives a failed write;
- turns a failed write into a [`DiskWriteError`] ([`disk_write_error`]): one line that says what was not saved, why,
  in which folder and how much space it needed, with the OS's error number kept;
- and leaves nothing that the next run cannot clean: [`remove_stale_temporaries`] deletes what a killed run left.
"""

import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError


# The folder a final save is written into before its files move into the output folder
STAGING_NAME = "saving.tmp"
# The temporaries of this package that a killed run can leave in an output folder: checkpoints being written
# (`step_12.tmp`, `epoch_3.tmp`, see `checkpoints.py`) and the final save's staging folder. Nothing else is removed.
_TEMPORARY_NAME = re.compile(r"^((step|epoch)_\d+|saving)\.tmp$")
# The weight files of a transformers folder, whole or sharded, and their index: a new save replaces them all
WEIGHT_FILES = re.compile(r"^(model|pytorch_model)(-\d{5}-of-\d{5})?\.(safetensors|bin)(\.index\.json)?$")
# What a save writes besides its tensors (config, tokenizer, remote code, RNG states, JSON), generously
SMALL_FILES_BYTES = 2**20
# torch's zip writer keeps no error number when a write fails; the folder is examined instead
_TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed", "unexpected pos", "file write failed")
# safetensors ends an I/O error with the OS's error number: "... No space left on device (os error 28)"
_OS_ERROR_NUMBER = re.compile(r"os error (\d+)")
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class DiskWriteError(OSError):
    """
    A save that failed on the disk: full, over quota, not writable, or gone. `errno` is the OS's error number
    (`errno.ENOSPC` for a full disk), `filename` the folder, and the message one line that says what was not saved,
    why, how much space it needed, and what was left on disk.
    """

    def __str__(self) -> str:
        return self.strerror


def state_bytes(*states) -> int:
    """
    Roughly the bytes that saving `states` (tensors, state dicts, optimizer states: any nesting of dicts, lists and
    tuples) writes: every tensor's size, a tensor shared by two names (tied weights) counted once.
    """
    seen, total, pending = set(), 0, list(states)
    while pending:
        item = pending.pop()
        if isinstance(item, torch.Tensor):
            key = (item.data_ptr(), item.nelement(), item.dtype)
            if key not in seen:
                seen.add(key)
                total += item.nelement() * item.element_size()
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return total


def free_bytes(folder) -> int:
    """The bytes free on the disk of `folder` (or of its nearest existing parent, for a folder not made yet)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 1e6 else f"{size / 1e6:.2g} MB"


def _reason(error_number: int, folder, needed: int, detail: str) -> str:
    """The middle of a `DiskWriteError`'s message: what the disk said, in words, with the folder and the sizes."""
    if error_number == errno.ENOSPC:
        free = _megabytes(free_bytes(folder))
        return f"no space left on device (needed ~{_megabytes(needed)} in {folder}, {free} free)"
    if error_number == errno.EDQUOT:
        return f"disk quota exceeded (needed ~{_megabytes(needed)} in {folder})"
    if error_number in _NOT_WRITABLE:
        return f"{folder} is not writable ({os.strerror(error_number).lower()})"
    return f"could not write to {folder} ({detail})"


def check_free_space(folder, needed: int, what: str) -> None:
    """Raise a `DiskWriteError` (ENOSPC) before saving `what` if `folder`'s disk has less than `needed` bytes free."""
    if free_bytes(folder) < needed:
        message = f"{what} not saved: {_reason(errno.ENOSPC, folder, needed, '')}; nothing was written"
        raise DiskWriteError(errno.ENOSPC, message, str(folder))


def disk_write_error(error: Exception, folder, needed: int, what: str, left_on_disk: str) -> DiskWriteError | None:
    """
    What a failed save of `what` into `folder` means, as a `DiskWriteError` whose message ends with `left_on_disk`
    (what was removed, what is intact); None when `error` is not a failed write (a bug, an object that cannot be
    saved), which the caller then raises as it is. Call it after removing the partial files, so the free space
    it reports is what is left.
    """
    if isinstance(error, DiskWriteError):
        return error
    text = str(error).strip()
    detail = text.splitlines()[0] if text else type(error).__name__
    if isinstance(error, OSError) and error.errno is not None:
        error_number, detail = error.errno, error.strerror or detail
    elif isinstance(error, SafetensorError) and _OS_ERROR_NUMBER.search(text):
        error_number = int(_OS_ERROR_NUMBER.search(text).group(1))
    elif isinstance(error, SafetensorError) or (
        isinstance(error, RuntimeError) and any(failure in text for failure in _TORCH_WRITE_FAILURES)
    ):
        # no error number: a folder that cannot be written, or that has less room than the save needs, says why
        if not os.access(folder, os.W_OK):
            error_number = errno.EACCES
        elif free_bytes(folder) < needed:
            error_number = errno.ENOSPC
        else:
            error_number = errno.EIO
    else:
        return None
    message = f"{what} not saved: {_reason(error_number, folder, needed, detail)}; {left_on_disk}"
    return DiskWriteError(error_number, message, str(folder))


def _move_into(staging: Path, destination: Path, stale: re.Pattern | None) -> None:
    """Move every entry of `staging` into `destination`, replacing what is there, then remove `staging` and the
    `stale`-named files of `destination` that the move did not replace."""
    moved = set()
    for entry in sorted(staging.iterdir()):
        target = destination / entry.name
        if entry.is_dir() and target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
        moved.add(entry.name)
    staging.rmdir()
    if stale is not None:
        for old in destination.iterdir():
            if stale.match(old.name) and old.name not in moved and old.is_file():
                old.unlink()


@contextmanager
def staged_folder(destination, needed: int, what: str, stale: re.Pattern | None = None) -> Iterator[Path]:
    """
    Save `what` into the folder this yields (`saving.tmp` inside `destination`, so on the same disk); once every
    write succeeded, each file moves into `destination`, replacing the one of that name (and the files matching
    `stale` that no file replaced, e.g. the old shards of a model that is now saved whole are removed). A save that
    fails removes the staging folder and raises a `DiskWriteError`, leaving `destination` as it was: a model or card
    saved there before survives. One left by a kill is removed by the next save or resumed run.

    `needed` is the estimated size of the save, checked against the free space before anything is written.
    """
    destination = Path(destination)
    staging = destination / STAGING_NAME
    try:
        destination.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        check_free_space(destination, needed, what)
        staging.mkdir()
        yield staging
        _move_into(staging, destination, stale)
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        left_on_disk = f"the files already in {destination} are unchanged"
        failure = disk_write_error(error, destination, needed, what, left_on_disk)
        if failure is None:
            raise
        raise failure from None


def write_file_atomically(path, write: Callable[[Path], None], needed: int, what: str) -> None:
    """
    Save `what` to `path` by `write(temporary)`, a file beside it that is renamed onto `path` only once complete.
    A failure removes the temporary and raises a `DiskWriteError`; an earlier file at `path` is left as it was.
    """
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        check_free_space(path.parent, needed, what)
        write(temporary)
        os.replace(temporary, path)
    except Exception as error:
        temporary.unlink(missing_ok=True)
        failure = disk_write_error(error, path.parent, needed, what, f"no partial {temporary.name} is left")
        if failure is None:
            raise
        raise failure from None


def remove_stale_temporaries(folder) -> list[Path]:
    """
    Delete what an interrupted save left in `folder`: the `step_<N>.tmp` and `epoch_<N>.tmp` checkpoint folders
    and the final save's `saving.tmp`. Nothing else is touched. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [path for path in folder.iterdir() if _TEMPORARY_NAME.match(path.name) and not path.is_symlink()]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return sorted(stale)


__all__ = [
    "DiskWriteError",
    "STAGING_NAME",
    "WEIGHT_FILES",
    "check_free_space",
    "disk_write_error",
    "free_bytes",
    "remove_stale_temporaries",
    "staged_folder",
    "state_bytes",
    "write_file_atomically",
]
