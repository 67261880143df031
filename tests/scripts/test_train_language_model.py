"""scripts/train_language_model.py run for real on a tiny corpus: in-process, as subprocesses, as two processes."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from resume_helpers import TRACKING_ARGS
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from ulmfit import AwdLstmTokenizer
from ulmfit.model_card import check_hub_metadata


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_language_model.py"
WORDS = [
    "the",
    "a",
    "movie",
    "film",
    "was",
    "is",
    "great",
    "bad",
    "good",
    "story",
    "acting",
    "plot",
    "really",
    "very",
    "not",
    "and",
    "but",
    "it",
    "i",
    "loved",
    "hated",
]
TINY = [
    "--config_overrides",
    "embedding_size=16,hidden_size=32,num_hidden_layers=2",
    "--max_vocab",
    "200",
    "--min_freq",
    "1",
    "--per_device_train_batch_size",
    "4",
    "--per_device_eval_batch_size",
    "4",
    "--bptt",
    "12",
    "--logging_steps",
    "2",
]


@pytest.fixture
def corpus(tmp_path) -> Path:
    generator = torch.Generator().manual_seed(0)
    lines = []
    for _ in range(120):
        length = int(torch.randint(8, 30, (), generator=generator))
        words = [WORDS[int(i)] for i in torch.randint(0, len(WORDS), (length,), generator=generator)]
        lines.append(" ".join(words).capitalize() + ".")
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def script(load_script):
    return load_script("train_language_model")


def subprocess_env(tmp_path):
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": src, "HF_DATASETS_CACHE": str(tmp_path / "cache")}


def test_smoke_run_saves_a_loadable_model_with_results_and_card(script, corpus, tmp_path):
    out = tmp_path / "out"
    script(["--train_file", corpus, "--output_dir", out, "--max_train_steps", 6, *TINY])
    results = json.loads((out / "all_results.json").read_text())
    assert results["train_steps"] == 6 and results["perplexity"] > 1 and 0 <= results["eval_accuracy"] <= 1
    assert {"model.safetensors", "vocab.json", "modeling_awd_lstm.py", "training_curve.png"} <= {
        p.name for p in out.iterdir()
    }
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.embedding_size == 16 and model.generation_config.suppress_tokens
    card = (out / "README.md").read_text()
    assert "model-index" in card and "--max_train_steps 6" in card
    check_hub_metadata(ModelCard.load(out / "README.md"))
    assert "name: held-out 5% of corpus.txt" in card and "split: validation" in card
    log = json.loads((out / "training_log.json").read_text())
    assert [row["step"] for row in log if "train_loss" in row] == [2, 4, 6]


def test_with_tracking_starts_the_trackers_logs_every_evaluation_and_ends_them(
    script, corpus, tmp_path, tracking_calls
):
    calls = tracking_calls
    out = tmp_path / "tracked"
    script(["--train_file", corpus, "--output_dir", out, "--max_train_steps", 2, *TINY, *TRACKING_ARGS])
    names = [name for name, _ in calls]
    assert names[0] == "init_trackers" and names[-1] == "end_training" and "log" in names
    project, config = calls[0][1]
    assert project == "train_language_model" and config["report_to"] == "tensorboard" and "hub_token" not in config
    assert all(isinstance(value, (int, float)) for name, args in calls if name == "log" for value in args[0].values())


def test_with_tracking_writes_tensorboard_event_files(script, corpus, tmp_path):
    out = tmp_path / "tracked"
    script(["--train_file", corpus, "--output_dir", out, "--max_train_steps", 2, *TINY, *TRACKING_ARGS])
    assert list((out / "train_language_model").rglob("events.out.tfevents.*"))


def test_bf16_mixed_precision_trains_and_scores_on_the_cpu(script, corpus, tmp_path):
    out = tmp_path / "out"
    script(["--train_file", corpus, "--output_dir", out, "--max_train_steps", 2, "--mixed_precision", "bf16", *TINY])
    results = json.loads((out / "all_results.json").read_text())
    assert results["perplexity"] > 1 and 0 <= results["eval_accuracy"] <= 1
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.float32  # autocast keeps float32 weights


def test_backwards_run_saves_a_reversing_tokenizer_and_a_backward_card(script, corpus, tmp_path):
    out = tmp_path / "out"
    script(["--train_file", corpus, "--output_dir", out, "--max_train_steps", 2, "--backwards", *TINY])
    tokenizer = AutoTokenizer.from_pretrained(out)
    forward = AwdLstmTokenizer.from_pretrained(out, backwards=False)
    assert tokenizer.backwards
    assert tokenizer("The plot was good.").input_ids == forward("The plot was good.").input_ids[::-1]
    card = (out / "README.md").read_text()
    assert "**backward** AWD-LSTM" in card and "--backwards" in card


def test_learning_rate_finder_writes_a_plot_and_a_suggestion(script, corpus, tmp_path, capsys):
    out = tmp_path / "out"
    script(["--train_file", corpus, "--output_dir", out, "--find_lr", *TINY])
    assert (out / "lr_find.png").stat().st_size > 1000
    suggestion = float(re.search(r"suggested learning rate \(valley\): (\S+);", capsys.readouterr().out).group(1))
    assert 1e-7 < suggestion < 10
    assert not (out / "model.safetensors").exists()


def test_fine_tuning_with_a_new_vocabulary_matches_embeddings(script, corpus, tmp_path, capsys):
    base = tmp_path / "base"
    script(["--train_file", corpus, "--output_dir", base, "--max_train_steps", 2, *TINY])
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text().replace("movie", "documentary") * 2)
    out = tmp_path / "tuned"
    script(
        [
            "--model_name_or_path",
            base,
            "--train_file",
            other,
            "--output_dir",
            out,
            "--train_tokenizer",
            "--max_train_steps",
            4,
            "--max_vocab",
            200,
            "--min_freq",
            1,
            "--per_device_train_batch_size",
            4,
            "--per_device_eval_batch_size",
            4,
            "--bptt",
            12,
        ]
    )
    printed = capsys.readouterr().out
    assert re.search(
        r"vocabulary matched: \d+ tokens kept their embedding, \d+ pieces took their word.s, [1-9]\d* new", printed
    )
    assert "epoch 0 (frozen)" in printed and "epoch 1 (all)" in printed  # ULMFiT: frozen stage, then all layers
    base_vocab = AutoTokenizer.from_pretrained(base).get_vocab()
    tuned_vocab = AutoTokenizer.from_pretrained(out).get_vocab()
    assert "documentary" in tuned_vocab and "documentary" not in base_vocab
    base_model, tuned = AutoModelForCausalLM.from_pretrained(base), AutoModelForCausalLM.from_pretrained(out)
    kept = base_model.get_input_embeddings().weight[base_vocab["the"]]
    # a word of both vocabularies keeps its trained row: it only moved by the fine-tuning steps
    assert torch.allclose(tuned.get_input_embeddings().weight[tuned_vocab["the"]], kept, atol=0.05)
    card = ModelCard.load(out / "README.md")  # a local base model is named in the prose, not as `base_model`
    check_hub_metadata(card)
    assert card.data.base_model is None and f"**Fine-tuned from:** `{base}`" in card.text


def test_drop_mult_scales_fastais_dropouts_when_fine_tuning(script, corpus, tmp_path):
    base = tmp_path / "base"
    script(["--train_file", corpus, "--output_dir", base, "--max_train_steps", 1, *TINY])
    out = tmp_path / "tuned"
    sizes = ["--per_device_train_batch_size", 4, "--per_device_eval_batch_size", 4, "--bptt", 12]
    script(["--model_name_or_path", base, "--train_file", corpus, "--output_dir", out, "--drop_mult", 0.3, *sizes])
    tuned = AutoModelForCausalLM.from_pretrained(out).config
    untouched = AutoModelForCausalLM.from_pretrained(base).config
    # fastbook's language_model_learner(..., drop_mult=0.3): fastai's awd_lstm_lm_config dropouts times 0.3
    expected = {"input_dropout": 0.075, "weight_dropout": 0.06, "hidden_dropout": 0.045, "output_dropout": 0.03}
    assert {name: getattr(tuned, name) for name in expected} == pytest.approx(expected)
    assert tuned.embedding_dropout == pytest.approx(0.006) and untouched.input_dropout == 0.25
    assert "| drop_mult | 0.3 |" in (out / "README.md").read_text()


@pytest.mark.parametrize("drop_mult", [-0.1, 4])
def test_a_drop_mult_that_makes_no_dropout_probability_fails_before_writing(script, corpus, tmp_path, drop_mult):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"--drop_mult must be at least 0 and below 4 .* got"):
        script(["--train_file", corpus, "--output_dir", out, "--drop_mult", drop_mult, *TINY])
    assert not out.exists()


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: d / "missing.txt", "does not exist"),
        (lambda d: (d / "empty.txt").write_text("") and d / "empty.txt" or d / "empty.txt", "is empty"),
        (lambda d: (d / "x.csv").write_text("review\nsome text\n") and d / "x.csv", "not found"),
    ],
)
def test_bad_train_files_fail_fast_with_a_clear_message(script, tmp_path, setup, message):
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        script(["--train_file", setup(tmp_path), "--output_dir", tmp_path / "out", *TINY])
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_diverging_run_stops_without_saving(script, corpus, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="stopping before anything is saved"):
        script(
            [
                "--train_file",
                corpus,
                "--output_dir",
                out,
                "--max_train_steps",
                20,
                "--learning_rate",
                1e12,
                "--max_grad_norm",
                0,
                "--lr_scheduler_type",
                "constant",
                *TINY,
            ]
        )
    assert not (out / "model.safetensors").exists()


def test_push_to_hub_uploads_the_folder_then_the_card(script, corpus, tmp_path, fake_hub):
    remote, uploads = fake_hub
    out = tmp_path / "out"
    script(
        [
            "--train_file",
            corpus,
            "--output_dir",
            out,
            "--max_train_steps",
            2,
            "--push_to_hub",
            "--hub_model_id",
            "me/tiny-awd-lstm",
            "--checkpointing_steps",
            1,
            *TINY,
        ]
    )
    pushed = remote / "me" / "tiny-awd-lstm"
    assert uploads == ["folder", "README.md"]  # the card goes last, so nothing overwrites it
    assert not list(pushed.glob("step_*"))  # checkpoints stay local
    assert "model-index" in (pushed / "README.md").read_text()
    reloaded = AutoModelForCausalLM.from_pretrained(pushed)
    torch.testing.assert_close(reloaded.lm_head.bias, AutoModelForCausalLM.from_pretrained(out).lm_head.bias)


def test_killed_run_resumes_to_the_same_weights(corpus, tmp_path):
    """SIGKILL mid-run, resume from the latest checkpoint: the weights equal those of an uninterrupted run."""
    common = [
        sys.executable,
        str(SCRIPT),
        "--train_file",
        str(corpus),
        "--max_train_steps",
        "40",
        "--checkpointing_steps",
        "5",
        "--config_overrides",
        "embedding_size=64,hidden_size=256,num_hidden_layers=3",
        "--max_vocab",
        "200",
        "--min_freq",
        "1",
        "--per_device_train_batch_size",
        "8",
        "--bptt",
        "30",
    ]
    env = subprocess_env(tmp_path)
    reference = tmp_path / "reference"
    subprocess.run([*common, "--output_dir", str(reference)], env=env, check=True, capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*common, "--output_dir", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not (killed / "step_10" / "training_state.json").exists():
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists()

    resumed = subprocess.run(
        [*common, "--output_dir", str(killed), "--resume_from_checkpoint", "latest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(r"resumed from .*step_(\d+) at optimizer step \1", resumed.stdout)
    expected, actual = load_file(reference / "model.safetensors"), load_file(killed / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)


def test_two_processes_split_the_stream_and_agree_on_the_weights(corpus, tmp_path):
    env = {**subprocess_env(tmp_path), "ACCELERATE_USE_CPU": "1"}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--main_process_port",
        "29517",
        str(SCRIPT),
        "--train_file",
        str(corpus),
        "--output_dir",
        str(tmp_path / "out"),
        "--max_train_steps",
        "6",
        *map(str, TINY),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es), DistributedType.MULTI_CPU" in result.stdout
    assert re.search(r"weight checksums per process: \[\S+, \S+\]; identical: True", result.stdout)
    firsts = json.loads(re.search(r"first token of each row, per process: (\[.*\])", result.stdout).group(1))
    assert len(firsts) == 2 and firsts[0] != firsts[1]  # each process reads its own rows of the stream
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_streaming_run_needs_max_steps_and_trains(script, corpus, tmp_path):
    valid = tmp_path / "valid.txt"
    valid.write_text("\n".join(corpus.read_text().splitlines()[:20]))
    args = ["--train_file", corpus, "--validation_file", valid, "--streaming", "--output_dir", tmp_path / "out", *TINY]
    with pytest.raises(ValueError, match="--max_train_steps"):
        script(args)
    script([*args, "--max_train_steps", 6, "--max_eval_samples", 10, "--max_tokenizer_samples", 50])
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert results["train_steps"] == 6 and results["perplexity"] > 1
