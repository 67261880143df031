"""scripts/imdb_full_recipe.sh in its SMOKE mode, run for real: IMDb-shaped files cut from the shipped sample, and
fastai's WikiText-103 file layout from the fastai fixtures standing in for the downloaded weights."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoTokenizer

from ulmfit.samples import load_imdb_sample


REPO = Path(__file__).resolve().parents[2]
WT103_FIXTURE = REPO / "tests" / "fixtures" / "fastai" / "wt103_style"


@pytest.fixture
def imdb_dir(tmp_path) -> Path:
    """train/test/unsup parquet files laid out as IMDb's (label 0/1, unsup -1)."""
    labelled, unlabelled = load_imdb_sample("train"), load_imdb_sample("unsup")
    folder = tmp_path / "imdb"
    folder.mkdir()
    labelled.select(range(300)).to_parquet(str(folder / "train.parquet"))
    labelled.select(range(300, 600)).to_parquet(str(folder / "test.parquet"))
    unlabelled.select(range(300)).to_parquet(str(folder / "unsup.parquet"))
    return folder


@pytest.fixture
def wt103_dir(tmp_path) -> Path:
    """fastai's wt103-fwd/ and wt103-bwd/ folders (the fixture's weights serve as both directions)."""
    folder = tmp_path / "wt103"
    for direction in ("fwd", "bwd"):
        (folder / f"wt103-{direction}").mkdir(parents=True)
        shutil.copy(WT103_FIXTURE / "lstm_fwd.pth", folder / f"wt103-{direction}" / f"lstm_{direction}.pth")
        shutil.copy(WT103_FIXTURE / "itos_wt103.pkl", folder / f"wt103-{direction}" / "itos_wt103.pkl")
    return folder


def run_recipe(tmp_path, imdb_dir, wt103, **settings) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SMOKE": "1",
        "IMDB_DIR": str(imdb_dir),
        "WT103": str(wt103),
        "OUT": str(tmp_path / "out"),
        "PYTHON": sys.executable,
        "LAUNCH": sys.executable,  # `accelerate launch` itself is tested with the training scripts
        "PYTHONPATH": str(REPO / "src"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "cache"),
        **settings,
    }
    command = ["bash", str(REPO / "scripts" / "imdb_full_recipe.sh")]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_the_recipe_converts_tunes_classifies_and_averages_then_skips_what_is_done(tmp_path, imdb_dir, wt103_dir):
    run = run_recipe(tmp_path, imdb_dir, wt103_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "out"
    commands = [line for line in run.stderr.splitlines() if line.startswith("+ ")]
    assert sum("convert_fastai_checkpoint.py" in c for c in commands) == 2
    assert sum("train_language_model.py" in c and "--train_tokenizer --drop_mult 0.3" in c for c in commands) == 2
    assert sum("train_classifier.py" in c for c in commands) == 2
    # the labels are readable and the LMs carry fastbook's fine-tuning dropouts (fastai's x 0.3)
    classifier = AutoConfig.from_pretrained(out / "classifier-fwd")
    assert classifier.id2label == {0: "negative", 1: "positive"}
    assert AutoConfig.from_pretrained(out / "lm-fwd").input_dropout == pytest.approx(0.075)
    assert AutoTokenizer.from_pretrained(out / "classifier-bwd").backwards
    assert not AutoTokenizer.from_pretrained(out / "classifier-fwd").backwards
    assert json.loads((out / "classifier-bwd" / "all_results.json").read_text())["eval_accuracy"] >= 0
    assert "forward+backward   accuracy" in run.stdout

    again = run_recipe(tmp_path, imdb_dir, wt103_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = [line for line in again.stderr.splitlines() if line.startswith("+ ")]
    assert len(rerun) == 1 and "bench_forward_backward.py" in rerun[0]  # every finished step is skipped


def test_without_wt103_the_language_model_learns_from_scratch_with_every_layer_training(tmp_path, imdb_dir):
    run = run_recipe(tmp_path, imdb_dir, "none", DIRECTIONS="fwd")
    assert run.returncode == 0, run.stderr[-3000:]
    commands = [line for line in run.stderr.splitlines() if line.startswith("+ ")]
    assert not any("convert_fastai_checkpoint.py" in c or "bench_forward_backward.py" in c for c in commands)
    (lm_command,) = [c for c in commands if "train_language_model.py" in c]
    assert "--model_name_or_path" not in lm_command and "--frozen_epochs 0 --learning_rate 1e-2" in lm_command
    assert "epoch 0 (all)" in run.stdout and "(frozen)" not in run.stdout  # no frozen stage for a new model
    assert (tmp_path / "out" / "classifier-fwd" / "model.safetensors").exists()


def test_a_wt103_folder_without_fastais_files_is_a_clear_error(tmp_path, imdb_dir):
    (tmp_path / "empty" / "wt103-fwd").mkdir(parents=True)
    run = run_recipe(tmp_path, imdb_dir, tmp_path / "empty")
    assert run.returncode == 1
    assert "holds no lstm_fwd.pth and itos_wt103.pkl" in run.stderr
    assert not (tmp_path / "out" / "lm-fwd").exists()


def test_an_imdb_dir_without_the_three_splits_is_a_clear_error(tmp_path, imdb_dir, wt103_dir):
    (imdb_dir / "unsup.parquet").unlink()
    run = run_recipe(tmp_path, imdb_dir, wt103_dir)
    assert run.returncode == 1
    assert f"IMDB_DIR={imdb_dir} lacks {imdb_dir / 'unsup.parquet'}" in run.stderr
    assert not (tmp_path / "out" / "data" / ".complete").exists()
