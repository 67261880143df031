"""Every `# Copied from ulmfit.<dotted path>` copy in a model folder must equal its original.

A model folder imports only torch, transformers and its sibling files, so that it can be uploaded as Hub remote code.
A helper that two folders need is therefore copied, not shared, and the copy is marked the way transformers marks
its copies, on the line directly above the `def`/`class`:

    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm._init_batch_norm
    # Copied from ulmfit.models.awd_lstm.tokenization_awd_lstm._check_text with AwdLstm->GruSeq2Seq

`with A->B, C->D` replaces A by B, then C by D, in the original's source before the comparison. The compared source is
the whole definition (decorators, docstring and comments included), dedented, without the marker line itself.
"""

import ast
import difflib
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest


# The markers under src/ulmfit/models today; raise it with each new one, so that the test cannot pass by finding none.
EXPECTED_MARKERS = 15

_MARKER_PREFIX = "# Copied from"
_MARKER = re.compile(r"# Copied from ulmfit\.(?P<target>\w+(?:\.\w+)*)(?: with (?P<replacements>.+))?")
_REPLACEMENT = re.compile(r"(?P<old>\S+)->(?P<new>\S+)")


def _package_root() -> Path:
    """The `ulmfit` package directory, found without importing it."""
    return Path(importlib.util.find_spec("ulmfit").submodule_search_locations[0])


def _find_definition(tree: ast.Module, qualified_name: list[str]) -> ast.AST | None:
    """The function or class `a.b.c` of a module: `a` at the top level, `b` in its body, and so on."""
    node = tree
    for name in qualified_name:
        node = next(
            (
                child
                for child in getattr(node, "body", [])
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child.name == name
            ),
            None,
        )
        if node is None:
            return None
    return node


def _definition_source(lines: list[str], node: ast.AST) -> str:
    """A definition's lines from its first decorator to its end, without `# Copied from` lines, dedented."""
    start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
    body = [line for line in lines[start - 1 : node.end_lineno] if not line.lstrip().startswith(_MARKER_PREFIX)]
    return textwrap.dedent("\n".join(body))


def _resolve(target: str, package_root: Path) -> tuple[Path, list[str]] | None:
    """`models.x.modeling_x.Name.method` -> (`<package_root>/models/x/modeling_x.py`, ["Name", "method"])."""
    parts = target.split(".")
    path = package_root
    while parts and (path / parts[0]).is_dir():
        path = path / parts.pop(0)
    if len(parts) < 2 or not (path / f"{parts[0]}.py").is_file():
        return None
    return path / f"{parts[0]}.py", parts[1:]


def check_file(path: Path, package_root: Path) -> tuple[int, list[str]]:
    """
    The `# Copied from` markers of one file: how many there are, and one message per marker whose copy is not its
    original (after the replacements), whose original cannot be found, or that is malformed or misplaced. Each
    message names both places.
    """
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    copies = {
        node.lineno: node
        for node in ast.walk(ast.parse(text, filename=str(path)))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    count, problems = 0, []
    for number, line in enumerate(lines, start=1):
        if not line.lstrip().startswith(_MARKER_PREFIX):
            continue
        count += 1
        where = f"{path}:{number}"
        marker = _MARKER.fullmatch(line.strip())
        replacements = []
        if marker is not None and marker["replacements"]:
            replacements = [_REPLACEMENT.fullmatch(item.strip()) for item in marker["replacements"].split(",")]
        if marker is None or not all(replacements):
            problems.append(
                f"{where}: malformed marker {line.strip()!r}; expected "
                "`# Copied from ulmfit.<module path>.<name>[ with A->B[, C->D]]`."
            )
            continue
        copy = copies.get(number + 1)
        if copy is None:
            problems.append(f"{where}: a `# Copied from` marker must be directly above a `def` or `class`.")
            continue
        target = f"ulmfit.{marker['target']}"
        resolved = _resolve(marker["target"], package_root)
        original_tree = None if resolved is None else ast.parse(resolved[0].read_text(encoding="utf-8"))
        original = None if resolved is None else _find_definition(original_tree, resolved[1])
        if original is None:
            problems.append(f"{where}: {copy.name} is marked as a copy of {target}, which does not exist.")
            continue
        original_path = resolved[0]
        expected = _definition_source(original_path.read_text(encoding="utf-8").splitlines(), original)
        for replacement in replacements:
            expected = expected.replace(replacement["old"], replacement["new"])
        actual = _definition_source(lines, copy)
        if actual != expected:
            diff = "\n".join(
                difflib.unified_diff(
                    expected.splitlines(),
                    actual.splitlines(),
                    fromfile=f"{original_path}:{original.lineno} ({target}, after the replacements)",
                    tofile=f"{where} (the copy)",
                    lineterm="",
                )
            )
            problems.append(
                f"{where}: {copy.name} is marked as a copy of {target} ({original_path}:{original.lineno}) but "
                f"differs from it. Make the two identical again, or remove the marker.\n{diff}"
            )
    return count, problems


def test_marked_copies_match_their_originals():
    package_root = _package_root()
    count, problems = 0, []
    for path in sorted((package_root / "models").rglob("*.py")):
        file_count, file_problems = check_file(path, package_root)
        count += file_count
        problems += file_problems
    assert not problems, "\n\n".join(problems)
    assert count >= EXPECTED_MARKERS, (
        f"Found {count} `# Copied from` markers under {package_root / 'models'}, expected at least {EXPECTED_MARKERS}."
    )


# ---------------------------------------------------------------------------------------------------------------------
# The checker itself, on a small package in tmp_path

ORIGINAL = '''\
class AlphaModel:
    @staticmethod
    def helper(x):
        """Used by AlphaModel."""
        return x + 1  # one more
'''

FAITHFUL_COPY = '''\
class BetaModel:
    @staticmethod
    # Copied from ulmfit.models.alpha.modeling_alpha.AlphaModel.helper with Alpha->Beta
    def helper(x):
        """Used by BetaModel."""
        return x + 1  # one more
'''


@pytest.fixture
def package(tmp_path) -> Path:
    """`ulmfit/models/alpha/modeling_alpha.py` (the original) and an empty `ulmfit/models/beta/`."""
    root = tmp_path / "ulmfit"
    (root / "models" / "alpha").mkdir(parents=True)
    (root / "models" / "beta").mkdir()
    (root / "models" / "alpha" / "modeling_alpha.py").write_text(ORIGINAL)
    return root


def _copy_file(package: Path, source: str) -> Path:
    path = package / "models" / "beta" / "modeling_beta.py"
    path.write_text(source)
    return path


def test_check_file_accepts_a_faithful_copy(package):
    assert check_file(_copy_file(package, FAITHFUL_COPY), package) == (1, [])


@pytest.mark.parametrize(
    ("copy_source", "expected"),
    [
        (FAITHFUL_COPY.replace("x + 1", "x + 2"), "differs from it"),  # drifted code
        (FAITHFUL_COPY.replace("# one more", "# plus one"), "differs from it"),  # drifted comment
        (FAITHFUL_COPY.replace("    @staticmethod\n", ""), "differs from it"),  # drifted decorator
        (FAITHFUL_COPY.replace(" with Alpha->Beta", ""), "differs from it"),  # a replacement missing
        (FAITHFUL_COPY.replace("AlphaModel.helper", "AlphaModel.assist"), "does not exist"),
        (FAITHFUL_COPY.replace("modeling_alpha.", "modeling_gamma."), "does not exist"),
        (FAITHFUL_COPY.replace("Alpha->Beta", "Alpha=>Beta"), "malformed marker"),
        (FAITHFUL_COPY.replace("from ulmfit.", "from transformers."), "malformed marker"),
        (FAITHFUL_COPY.replace("    def helper", "\n    def helper"), "directly above"),
    ],
)
def test_check_file_reports_a_broken_copy(package, copy_source, expected):
    copy_path = _copy_file(package, copy_source)
    count, problems = check_file(copy_path, package)
    assert count == 1
    assert len(problems) == 1
    assert expected in problems[0]
    marker_line = next(n for n, line in enumerate(copy_source.splitlines(), 1) if "# Copied from" in line)
    assert f"{copy_path}:{marker_line}:" in problems[0]  # the copy's marker
    if expected == "differs from it":  # and the original, with a diff
        assert f"{package / 'models' / 'alpha' / 'modeling_alpha.py'}:3" in problems[0]
        assert "ulmfit.models.alpha.modeling_alpha.AlphaModel.helper" in problems[0]
        assert "\n-" in problems[0] and "\n+" in problems[0]
