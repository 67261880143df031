"""README.md stays true: every ```python block runs, and every relative link reaches a file (and heading).

The blocks run in order in one temporary folder (a block may read what an earlier one saved, as a reader pasting
them one after the other would), offline, on the CPU. Each runs in its own forked child of one interpreter that has
imported torch and transformers but never `ulmfit`, so a block gets a fresh namespace and a fresh `ulmfit` import and
cannot lean on an earlier block's variables or registrations. The temporary folder links the repository's
`tests/fixtures/`, so blocks may read `tests/fixtures/...` as from a clone's root.

A block that cannot run here (it needs a GPU, the Hub or data outside the package) carries the marker
`<!-- no-test: the reason -->` on the line above its fence; it is still compiled and its imports still run, then the
test is skipped with that reason.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NO_TEST = re.compile(r"<!--\s*no-test:\s*(.+?)\s*-->")
FENCE = re.compile(r"^```(\S*)\s*$")
MAX_LINES = 300  # the README is the front page: measurements and their history go to scripts/benchmarks/README.md
BLOCK_TIMEOUT_S = 120


def python_blocks(path: Path = README) -> list[dict]:
    """The ```python blocks of a markdown file: line of the first code line, code, skip reason (or None)."""
    lines = path.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        language, start = match.group(1), index + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if language == "python":
            above = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            marker = NO_TEST.search(above)
            code = "\n".join(lines[start:end])
            blocks.append({"line": start + 1, "code": code, "skip": marker.group(1) if marker else None})
        index = end + 1
    return blocks


def block_id(block: dict) -> str:
    first = next((line for line in block["code"].splitlines() if line.strip()), "")
    return f"L{block['line']}:" + re.sub(r"\W+", "_", first)[:40].strip("_")


# Runs in a fresh interpreter: reads the blocks (JSON) on stdin, runs each in a forked child, prints JSON results.
RUNNER = r"""
import json, os, signal, sys, tempfile, time, traceback

import torch, transformers, datasets, PIL.Image  # the slow imports, once; children inherit them
import transformers.pipelines
assert "ulmfit" not in sys.modules

blocks, timeout = json.load(sys.stdin), float(sys.argv[1])
results = []
for block in blocks:
    code = "\n" * (block["line"] - 1) + block["code"]  # tracebacks then name README.md's own line numbers
    if block["skip"]:  # compile, and run only the imports
        import ast
        tree = ast.parse(code, "README.md")
        tree.body = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        code = tree
    report = tempfile.mktemp(suffix=".txt")
    started = time.monotonic()
    sys.stdout.flush(); sys.stderr.flush()  # or the child inherits, and prints again, what is still buffered
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
        except BaseException:
            with open(report, "w") as file:
                file.write(traceback.format_exc())
            status = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(status)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > timeout:
            os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
            status = None
            break
        time.sleep(0.05)
    seconds = round(time.monotonic() - started, 1)
    if status is None:
        error = f"timed out after {timeout:.0f} s"
    elif status == 0:
        error = None
    elif os.path.exists(report):
        error = open(report).read()
    else:
        error = f"the child died (wait status {status})"
    if os.path.exists(report):
        os.remove(report)
    results.append({"line": block["line"], "error": error, "seconds": seconds})
    print(f"README.md:{block['line']} {'ok' if error is None else 'FAILED'} in {seconds} s", file=sys.stderr)
print("RESULTS " + json.dumps(results))
"""


BLOCKS = python_blocks()


@pytest.fixture(scope="module")
def readme_results(tmp_path_factory):
    """Run every block (imports only for no-test blocks) once, in order, in one temporary folder."""
    workdir = tmp_path_factory.mktemp("readme")
    (workdir / "tests").mkdir()
    (workdir / "tests" / "fixtures").symlink_to(ROOT / "tests" / "fixtures", target_is_directory=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(workdir / ".hf-home"),  # an empty cache: nothing can come from an earlier download
        "TOKENIZERS_PARALLELISM": "false",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",  # tiny models; on a shared CPU threads only wait on each other
    }
    process = subprocess.run(
        [sys.executable, "-c", RUNNER, str(BLOCK_TIMEOUT_S)],
        input=json.dumps(BLOCKS),
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=BLOCK_TIMEOUT_S * (len(BLOCKS) + 1),
    )
    print("\n".join(line for line in process.stderr.splitlines() if line.startswith("README.md:")))  # timings, -s
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULTS ")]
    if process.returncode or not lines:
        pytest.fail(f"The README runner failed (exit {process.returncode}):\n{process.stderr[-4000:]}")
    return {result["line"]: result for result in json.loads(lines[-1][len("RESULTS ") :])}


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_readme_python_block_runs(block, readme_results):
    result = readme_results[block["line"]]
    first_line = block["code"].splitlines()[0]
    if result["error"] is not None:
        what = "imports of the no-test block" if block["skip"] else "block"
        pytest.fail(f"README.md line {block['line']}, {what} starting {first_line!r}:\n{result['error']}", False)
    if block["skip"]:
        pytest.skip(f"README.md line {block['line']} ({first_line!r}) is marked no-test: {block['skip']}")


def test_readme_has_runnable_blocks_and_few_exceptions():
    assert len(BLOCKS) >= 4, "the quick tours are ```python blocks"
    skipped = [block["line"] for block in BLOCKS if block["skip"]]
    assert len(skipped) <= 2, f"no-test blocks at lines {skipped}: keep the exceptions rare"


def test_readme_is_short():
    count = len(README.read_text().splitlines())
    assert count <= MAX_LINES, (
        f"README.md has {count} lines (at most {MAX_LINES}): measurements, their commands and their history belong "
        "in scripts/benchmarks/README.md and the model cards"
    )


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a markdown file (outside code blocks)."""
    anchors, in_code = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize(
    "markdown", ["README.md", "scripts/benchmarks/README.md", "model_cards/README.md"], ids=lambda path: path
)
def test_relative_links_resolve(markdown):
    path = ROOT / markdown
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{markdown}: broken links: {broken}"
