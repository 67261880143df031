"""Faults on disk: a full disk, a folder that became unwritable, a kill mid-write, a stale temporary.

No small filesystem can be mounted here, so a full disk is a patched writer: it writes a few bytes, as a real one
does before the disk fills, then fails the way torch or safetensors do, while `shutil.disk_usage` reports what is
free. Each test asserts what is left on disk afterwards.
"""

import errno
import hashlib
import importlib.util
import inspect
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers.modeling_utils
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from huggingface_hub import ModelCard
from safetensors import SafetensorError
from safetensors.torch import load_file

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM
from ulmfit.model_card.awd_lstm import awd_lstm_card
from ulmfit.training import devise, script_steps
from ulmfit.training.checkpoints import checkpoint_bytes, latest_checkpoint, resume_from, save_checkpoint
from ulmfit.training.safe_writes import SMALL_FILES_BYTES, DiskWriteError


ROOT = Path(__file__).resolve().parents[2]
FASTAI = ROOT / "tests" / "fixtures" / "fastai"
# what torch and safetensors raise when the disk fills under them (torch keeps no error number)
TORCH_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
SAFETENSORS_FULL_DISK = "Error while serializing: I/O error: No space left on device (os error 28)"
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def tiny_training(accelerator, hidden_size=8):
    """A prepared tiny language model, its optimizer (with state, after one step) and its scheduler."""
    torch.manual_seed(0)
    config = AwdLstmConfig(vocab_size=20, embedding_size=8, hidden_size=hidden_size, num_hidden_layers=2)
    model = AwdLstmForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    input_ids = torch.randint(0, 20, (2, 7))
    accelerator.backward(model(input_ids=input_ids, labels=input_ids).loss)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return model, optimizer, scheduler


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (and every empty folder) with the SHA-256 of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        for path in sorted(folder.rglob("*"))
        if path.is_file() or not any(path.iterdir())
    }


class SavedTokenizer:
    """A processor whose `save_pretrained` writes one small file, as a tokenizer does."""

    def __init__(self, text: str = "{}"):
        self.text = text

    def save_pretrained(self, folder):
        (Path(folder) / "tokenizer.json").write_text(self.text)


@pytest.fixture
def accelerator():
    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def disk(monkeypatch):
    """The disk's free space as `shutil.disk_usage` reports it: `disk.free`, plenty until a test fills it."""
    real_disk_usage = shutil.disk_usage
    disk = SimpleNamespace(free=10**12)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real_disk_usage(path)._replace(free=disk.free))
    return disk


def torch_save_filling(disk):
    """A `torch.save` on a disk that fills during the write: a few bytes land, then torch's own error."""

    def save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04" + bytes(60))
        disk.free = 0
        raise RuntimeError(TORCH_FULL_DISK)

    return save


def safetensors_save_filling(disk):
    """A safetensors `save_file` on a disk that fills during the write."""

    def save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(bytes(64))
        disk.free = 0
        raise SafetensorError(SAFETENSORS_FULL_DISK)

    return save_file


def _can_create_in(folder: Path) -> bool:
    try:
        (folder / "probe").mkdir()
    except OSError:
        return False
    (folder / "probe").rmdir()
    return True


@pytest.fixture
def make_unwritable():
    """
    `make_unwritable(folder)`: nothing can be created in `folder` from then on. chmod does it for a user; root
    ignores permissions, so there the folder is made immutable (`chattr +i`), or the test is skipped.
    """
    changed, immutable = [], []

    def make(folder: Path):
        folder.chmod(0o555)
        changed.append(folder)
        if not _can_create_in(folder):
            return
        chattr = shutil.which("chattr")
        if chattr and subprocess.run([chattr, "+i", folder], capture_output=True).returncode == 0:
            immutable.append(folder)
            if not _can_create_in(folder):
                return
        pytest.skip("as root, neither chmod nor chattr +i stops writes into a folder here")

    yield make
    for folder in immutable:
        subprocess.run([shutil.which("chattr"), "-i", folder], capture_output=True)
    for folder in changed:
        folder.chmod(0o755)


# --- checkpoints -----------------------------------------------------------------------------------------------------


def test_a_full_disk_mid_checkpoint_removes_the_partial_folder_and_keeps_the_previous_one(
    accelerator, tmp_path, disk, monkeypatch
):
    out = tmp_path / "out"
    model, optimizer, scheduler = tiny_training(accelerator)
    save_checkpoint(accelerator, out, "step_2", {"completed_steps": 2}, scheduler, None)
    before = snapshot(out)
    monkeypatch.setattr(torch, "save", torch_save_filling(disk))
    with pytest.raises(DiskWriteError) as failure:
        save_checkpoint(accelerator, out, "step_4", {"completed_steps": 4}, scheduler, None)
    assert failure.value.errno == errno.ENOSPC
    message = str(failure.value)
    assert message.startswith("checkpoint step_4 not saved: no space left on device (needed ~")
    assert f" MB in {out}, 0 MB free); no partial step_4.tmp is left, earlier checkpoints are intact" in message
    assert "\n" not in message
    assert "inline_container" not in message and failure.value.__cause__ is None
    assert snapshot(out) == before  # no step_4.tmp, step_2 byte for byte
    assert latest_checkpoint(out) == out / "step_2"


def test_a_clearly_too_full_disk_is_refused_before_anything_is_written(accelerator, tmp_path, disk, monkeypatch):
    out = tmp_path / "out"
    model, optimizer, scheduler = tiny_training(accelerator, hidden_size=128)
    save_checkpoint(accelerator, out, "step_2", {"completed_steps": 2}, scheduler, None)
    before = snapshot(out)
    tensors_size = sum((out / "step_2" / name).stat().st_size for name in ("model.safetensors", "optimizer.bin"))
    estimate = checkpoint_bytes(accelerator, None) - SMALL_FILES_BYTES
    assert 0.9 * tensors_size <= estimate <= 1.1 * tensors_size
    disk.free = tensors_size // 2
    writes = []
    monkeypatch.setattr(torch, "save", lambda *args, **kwargs: writes.append(args))
    with pytest.raises(DiskWriteError, match=r"^checkpoint step_4 not saved: no space left on device") as failure:
        save_checkpoint(accelerator, out, "step_4", {"completed_steps": 4}, scheduler, None)
    assert failure.value.errno == errno.ENOSPC and failure.value.filename == str(out)
    assert f"(needed ~{(estimate + SMALL_FILES_BYTES) / 1e6:.1f} MB in {out}, " in str(failure.value)
    assert "nothing was written" in str(failure.value)
    assert writes == [] and snapshot(out) == before


def test_an_error_that_is_no_disk_fault_is_raised_as_it_is_and_the_partial_folder_removed(
    accelerator, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    model, optimizer, scheduler = tiny_training(accelerator)

    def cannot_pickle(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK")
        raise TypeError("cannot pickle 'generator' object")

    monkeypatch.setattr(torch, "save", cannot_pickle)
    with pytest.raises(TypeError, match="cannot pickle"):
        save_checkpoint(accelerator, out, "step_2", {"completed_steps": 2}, scheduler, None)
    assert snapshot(out) == {}


# A run that saves step_2, prints its files' hashes, then is killed while writing step_4's optimizer state
KILLED_CHILD = """
import hashlib, json, os, signal, sys
from pathlib import Path

import torch
from accelerate import Accelerator

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM
from ulmfit.training.checkpoints import save_checkpoint

HELPERS

out = Path(sys.argv[1])
accelerator = Accelerator(cpu=True)
model, optimizer, scheduler = tiny_training(accelerator)
save_checkpoint(accelerator, out, "step_2", {"completed_steps": 2}, scheduler, None)
print(json.dumps(snapshot(out / "step_2")), flush=True)


def killed_midway(obj, f, *args, **kwargs):
    Path(f).write_bytes(b"PK")  # the first bytes of the optimizer state, then the process is killed
    os.kill(os.getpid(), signal.SIGKILL)


torch.save = killed_midway
save_checkpoint(accelerator, out, "step_4", {"completed_steps": 4}, scheduler, None)
"""


def test_a_kill_mid_checkpoint_leaves_the_previous_one_for_latest_and_resuming_cleans_up(accelerator, tmp_path):
    out = tmp_path / "out"
    child = KILLED_CHILD.replace("HELPERS", inspect.getsource(tiny_training) + "\n\n" + inspect.getsource(snapshot))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", child, out], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert (out / "step_4.tmp" / "optimizer.bin").read_bytes() == b"PK"  # the kill left a partial folder
    assert snapshot(out / "step_2") == json.loads(result.stdout.splitlines()[-1])
    assert latest_checkpoint(out) == out / "step_2"

    model, optimizer, scheduler = tiny_training(accelerator)
    position, log, _, _ = resume_from(accelerator, "latest", out, lambda state: scheduler, {"completed_steps": 0})
    assert position["completed_steps"] == 2
    assert sorted(path.name for path in out.iterdir()) == ["step_2"]  # the stale step_4.tmp is gone


def test_resuming_removes_only_this_packages_stale_temporaries(accelerator, tmp_path):
    out = tmp_path / "out"
    model, optimizer, scheduler = tiny_training(accelerator)
    save_checkpoint(accelerator, out, "step_2", {"completed_steps": 2}, scheduler, None)
    for stale in ("step_6.tmp", "epoch_1.tmp", "saving.tmp"):
        (out / stale).mkdir()
        (out / stale / "optimizer.bin").write_bytes(b"PK")
    (out / "notes.tmp").mkdir()
    (out / "step_x.tmp").write_text("a user's file")
    resume_from(accelerator, None, out, lambda state: scheduler, {"completed_steps": 0})
    assert sorted(path.name for path in out.iterdir()) == ["notes.tmp", "step_2", "step_x.tmp"]


def test_nothing_is_written_into_a_folder_that_became_unwritable(accelerator, tmp_path, make_unwritable):
    out = tmp_path / "out"
    model, optimizer, scheduler = tiny_training(accelerator)
    save_checkpoint(accelerator, out, "step_2", {"completed_steps": 2}, scheduler, None)
    args = script_steps.TrainingScriptArguments(output_dir=str(out))
    script_steps.save_model(accelerator, args, model, SavedTokenizer())
    before = snapshot(out)
    make_unwritable(out)
    with pytest.raises(DiskWriteError, match=rf"^checkpoint step_4 not saved: {out} is not writable") as failure:
        save_checkpoint(accelerator, out, "step_4", {"completed_steps": 4}, scheduler, None)
    assert failure.value.errno in NOT_WRITABLE
    with pytest.raises(DiskWriteError, match=rf"^the final model not saved: {out} is not writable") as failure:
        script_steps.save_model(accelerator, args, model, SavedTokenizer('{"new": 1}'))
    assert failure.value.errno in NOT_WRITABLE
    assert snapshot(out) == before


# --- the final save --------------------------------------------------------------------------------------------------


def test_a_failed_final_save_keeps_the_earlier_model_and_a_later_one_replaces_it(
    accelerator, tmp_path, disk, monkeypatch
):
    out = tmp_path / "out"
    args = script_steps.TrainingScriptArguments(output_dir=str(out))
    model, optimizer, scheduler = tiny_training(accelerator)
    script_steps.save_model(accelerator, args, model, SavedTokenizer('{"first": 1}'))
    before = snapshot(out)
    with torch.no_grad():
        accelerator.unwrap_model(model).lm_head.bias.fill_(1.0)
    with monkeypatch.context() as patched:
        patched.setattr(transformers.modeling_utils, "safe_save_file", safetensors_save_filling(disk))
        with pytest.raises(DiskWriteError) as failure:
            script_steps.save_model(accelerator, args, model, SavedTokenizer('{"second": 2}'))
    message = str(failure.value)
    assert failure.value.errno == errno.ENOSPC
    assert message.startswith("the final model not saved: no space left on device (needed ~")
    assert f" MB in {out}, 0 MB free); the files already in {out} are unchanged" in message
    assert snapshot(out) == before  # the earlier model, config and tokenizer; no saving.tmp

    disk.free = 10**12
    script_steps.save_model(accelerator, args, model, SavedTokenizer('{"second": 2}'))
    assert sorted(snapshot(out)) == sorted(before)
    assert (load_file(out / "model.safetensors")["lm_head.bias"] == 1).all()
    assert (out / "tokenizer.json").read_text() == '{"second": 2}'


def test_a_failed_results_and_card_save_keeps_the_earlier_ones(accelerator, tmp_path, disk, monkeypatch):
    out = tmp_path / "out"
    args = script_steps.TrainingScriptArguments(output_dir=str(out))
    log = [{"step": 2, "valid_loss": 3.0}]
    script_steps.save_results_and_card(accelerator, args, {"perplexity": 20.1}, log, awd_lstm_card("lm"))
    before = snapshot(out)

    def card_on_a_full_disk(card, filepath):
        Path(filepath).write_text("---\npartial")
        disk.free = 0
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ModelCard, "save", card_on_a_full_disk)
    with pytest.raises(DiskWriteError, match=r"^the results and model card not saved: no space left on device"):
        script_steps.save_results_and_card(accelerator, args, {"perplexity": 9.9}, log, awd_lstm_card("lm"))
    assert snapshot(out) == before
    assert json.loads((out / "all_results.json").read_text()) == {"perplexity": 20.1}


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_converted_model_survives_a_failed_conversion_into_its_folder(tmp_path, disk, monkeypatch, capsys):
    out = tmp_path / "converted"
    converter = _load_script("convert_fastai_checkpoint")
    converter.main(["--checkpoint", FASTAI / "lm.pth", "--vocab", FASTAI / "vocab.txt", "--output_dir", out])
    before = snapshot(out)
    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", safetensors_save_filling(disk))
    argv = ["--checkpoint", FASTAI / "enc.pth", "--vocab", FASTAI / "vocab.txt", "--output_dir", out]
    monkeypatch.setattr(sys, "argv", ["convert_fastai_checkpoint.py", *map(str, argv)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / "convert_fastai_checkpoint.py"), run_name="__main__")
    assert exit_info.value.code == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' progress bars
    assert message.startswith("convert_fastai_checkpoint.py: error: the converted model not saved: no space left")
    assert f"in {out}" in message and "\n" not in message
    assert snapshot(out) == before


# --- the DeViSE feature cache ----------------------------------------------------------------------------------------


class FeaturesOfPixels(torch.nn.Module):
    def get_backbone_features(self, pixel_values):
        return (pixel_values.flatten(1),)


def test_a_feature_cache_that_cannot_be_written_leaves_no_partial_file(tmp_path, disk, monkeypatch):
    cache_file = tmp_path / "cache" / "features-train-0123.safetensors"
    loader = [{"pixel_values": torch.ones(2, 3)}, {"pixel_values": torch.zeros(1, 3)}]
    monkeypatch.setattr(devise, "save_file", safetensors_save_filling(disk))
    with pytest.warns(UserWarning, match=r"^the feature cache not saved: no space left on device \(needed ~"):
        features = devise.backbone_features(FeaturesOfPixels(), loader, "cpu", cache_file, "train")
    assert features.shape == (3, 3)
    assert list(cache_file.parent.iterdir()) == []  # no partial cache, no .tmp

    monkeypatch.undo()
    devise.backbone_features(FeaturesOfPixels(), loader, "cpu", cache_file, "train")
    assert [path.name for path in cache_file.parent.iterdir()] == [cache_file.name]
    torch.testing.assert_close(load_file(cache_file)["features"], features)


# --- a training script -----------------------------------------------------------------------------------------------


def test_a_training_run_stopped_by_a_full_disk_resumes_from_its_last_checkpoint(tmp_path, disk, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    words = ["the", "movie", "was", "great", "and", "the", "plot", "was", "not", "bad", "but", "good"]
    corpus.write_text("\n".join(" ".join(words[i % 7 :] + words[: i % 7]).capitalize() + "." for i in range(60)))
    out = tmp_path / "out"
    args = ["--train_file", corpus, "--output_dir", out, "--max_train_steps", 4, "--checkpointing_steps", 2]
    args += ["--config_overrides", "embedding_size=8,hidden_size=16,num_hidden_layers=2", "--min_freq", 1]
    args += ["--per_device_train_batch_size", 4, "--per_device_eval_batch_size", 4, "--bptt", 8]
    script = _load_script("train_language_model")
    real_save = torch.save

    def full_disk_from_step_4(obj, f, *rest, **kwargs):
        if "step_4.tmp" in str(f):
            return torch_save_filling(disk)(obj, f)
        return real_save(obj, f, *rest, **kwargs)

    def run(argv):
        monkeypatch.setattr(sys, "argv", ["train_language_model.py", *map(str, argv)])
        try:
            script.main()
        finally:
            AcceleratorState._reset_state(reset_partial_state=True)

    with monkeypatch.context() as patched:
        patched.setattr(torch, "save", full_disk_from_step_4)
        with pytest.raises(DiskWriteError, match=r"^checkpoint step_4 not saved: no space left on device"):
            run(args)
    assert latest_checkpoint(out) == out / "step_2"
    assert not (out / "step_4.tmp").exists() and not (out / "model.safetensors").exists()

    disk.free = 10**12
    run([*args, "--resume_from_checkpoint", "latest"])
    assert json.loads((out / "all_results.json").read_text())["train_steps"] == 4
    assert (out / "step_4").is_dir() and not list(out.glob("*.tmp"))
