"""The package's layout rules (STYLE.md §1), checked on the source rather than trusted.

- A model folder imports only the standard library, torch, transformers and the few libraries they bring, plus its own
  sibling files, so that each folder can be uploaded as Hub remote code; it never reaches into `ulmfit.pipelines`,
  `ulmfit.training` or `ulmfit.model_card`.
- No module inside the package imports the package itself (`import ulmfit`), which would make import order matter.
- `import ulmfit` does not import the checkpoint converters: they are tools, run on request.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ulmfit"
# What a model folder may import besides its siblings: what transformers itself depends on, and Pillow for images
MODEL_FOLDER_LIBRARIES = {"torch", "transformers", "huggingface_hub", "safetensors", "tokenizers", "numpy", "PIL"}
# Libraries a model folder may use when they are there, imported inside a `try` (which transformers' remote-code check
# skips) with a fallback: faiss for DeviseIndex's HNSW backend
OPTIONAL_LIBRARIES = {"faiss"}
# Tools that live beside what they make and are never imported: the spaCy-rules generator needs spaCy itself
TOOLS = {"generate_spacy_rules.py"}


def optional_imports(path: Path) -> set[str]:
    """The top-level modules a file imports inside a `try` block."""
    found = set()
    for block in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(block, ast.Try):
            for node in (inner for statement in block.body for inner in ast.walk(statement)):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    found.add((node.module or "").split(".")[0])
    return found


def imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in a file; `from . import x` gives (1, '')."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


MODEL_FILES = sorted(path for path in (PACKAGE / "models").rglob("*.py") if path.name not in TOOLS)


def test_the_rules_see_every_model_folder():
    assert {path.parent.name for path in MODEL_FILES} >= {"awd_lstm", "gru_seq2seq", "devise"}


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_model_folders_import_only_libraries_and_siblings(path):
    for level, module in imports(path):
        if path.parent.name == "models":  # models/__init__.py
            assert level == 0 and not module.startswith("ulmfit"), module
        elif level == 1:
            assert (path.parent / f"{module.split('.')[0]}.py").is_file() or not module, module
        else:
            assert level == 0, f"{path.name} imports from outside its folder (level {level}: {module!r})"
            root = module.split(".")[0]
            allowed = root in sys.stdlib_module_names or root in MODEL_FOLDER_LIBRARIES
            allowed = allowed or (root in OPTIONAL_LIBRARIES and root in optional_imports(path))
            assert allowed, f"{path.name}: {module}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_imports_the_package_itself(path):
    for level, module in imports(path):
        assert not (level == 0 and (module == "ulmfit" or module.startswith("ulmfit."))), f"{path.name}: {module}"


def test_importing_ulmfit_imports_no_converter_and_no_plotting_library():
    code = "import json, sys, ulmfit; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    assert "ulmfit.models.awd_lstm" in modules
    assert not [name for name in modules if name.startswith("ulmfit.") and ".convert_" in name]
    assert "matplotlib" not in modules
