import importlib.util
import sys
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState


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
