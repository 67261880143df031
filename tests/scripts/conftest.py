import importlib.util
import io
import shutil
import sys
from pathlib import Path

import pytest
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from huggingface_hub import CommitInfo, HfApi, RepoUrl


SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture
def load_script(monkeypatch):
    """`load_script(name)` returns `run(args)`, which calls scripts/<name>.py's main() with those arguments."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

        def run(args):
            monkeypatch.setattr(sys, "argv", [f"{name}.py", *map(str, args)])
            try:
                module.main()
            finally:  # the next run builds its own Accelerator
                AcceleratorState._reset_state(reset_partial_state=True)

        return run

    return load


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """`HfApi` uploads land in `<tmp>/remote/<repo_id>`; returns (remote folder, the uploads in order)."""
    remote, uploads = tmp_path / "remote", []

    def create_repo(self, repo_id, **kwargs):
        (remote / repo_id).mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, folder_path, repo_id, ignore_patterns=(), **kwargs):
        uploads.append("folder")
        shutil.copytree(
            folder_path, remote / repo_id, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*ignore_patterns)
        )
        return CommitInfo(f"https://huggingface.co/{repo_id}/commit/1", "", "", "1" * 40)

    def upload_file(self, *, path_or_fileobj, path_in_repo, repo_id, **kwargs):
        uploads.append(path_in_repo)
        data = path_or_fileobj if isinstance(path_or_fileobj, bytes) else io.BytesIO(path_or_fileobj).read()
        (remote / repo_id / path_in_repo).write_bytes(data)
        return CommitInfo(f"https://huggingface.co/{repo_id}/commit/2", "", "", "2" * 40)

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(HfApi, "upload_file", upload_file)
    return remote, uploads


@pytest.fixture
def tracking_calls(monkeypatch) -> list[tuple[str, tuple]]:
    """The run's `init_trackers`, `log` and `end_training` calls, in order; each still does its work."""
    calls = []
    for name in ("init_trackers", "log", "end_training"):
        original = getattr(Accelerator, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls.append((_name, args))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Accelerator, name, spy)
    return calls
