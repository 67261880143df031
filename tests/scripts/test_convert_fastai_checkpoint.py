import runpy
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from ulmfit.models.awd_lstm.convert_fastai_checkpoint import FastaiCheckpointError, file_sha256
from ulmfit.training.script_steps import UsageError


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fastai"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "convert_fastai_checkpoint.py"


@pytest.fixture
def script(load_script):
    return load_script("convert_fastai_checkpoint")


@pytest.fixture(scope="module")
def fastai_outputs():
    return load_file(FIXTURES / "outputs.safetensors")


def test_language_model_task_is_detected(script, tmp_path, fastai_outputs, capsys):
    output_dir = tmp_path / "awd-lstm-lm"
    script(["--checkpoint", FIXTURES / "lm.pth", "--vocab", FIXTURES / "vocab.txt", "--output_dir", output_dir])
    assert "AwdLstmForCausalLM: embedding 12, hidden 20, 2 layers, vocabulary 40" in capsys.readouterr().out
    model = AutoModelForCausalLM.from_pretrained(output_dir).eval()
    with torch.no_grad():
        logits = model(fastai_outputs["lm_input_ids"]).logits
    assert (logits - fastai_outputs["lm_logits"]).abs().max() <= 1e-5
    assert len(AutoTokenizer.from_pretrained(output_dir)) == 40
    card = (output_dir / "README.md").read_text()
    assert "--checkpoint lm.pth --vocab vocab.txt --output_dir awd-lstm-lm --task lm" in card


def test_language_model_card_names_the_source_files(script, tmp_path):
    folder = tmp_path / "awd-lstm-from-fastai"
    script(["--checkpoint", FIXTURES / "lm.pth", "--vocab", FIXTURES / "vocab.pkl", "--output_dir", folder])
    card = (folder / "README.md").read_text()
    assert file_sha256(FIXTURES / "lm.pth") in card and file_sha256(FIXTURES / "vocab.pkl") in card
    assert "`lm.pth`" in card and "language model (`language_model_learner`)" in card
    assert "optimizer state dropped" in card and "pipeline_tag: text-generation" in card


def test_classifier_card_lists_the_labels(script, tmp_path):
    folder = tmp_path / "classifier"
    script(
        [
            "--checkpoint", FIXTURES / "clas.pth",
            "--vocab", FIXTURES / "vocab.pkl",
            "--labels", "neg,pos",
            "--config_overrides", "bpt3c_chunk_size=8,bpt3c_max_length=24",
            "--output_dir", folder,
        ]
    )  # fmt: skip
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "| labels | neg, pos |" in card


def test_encoder_card_shows_how_to_load_an_encoder(script, tmp_path):
    folder = tmp_path / "encoder"
    script(["--checkpoint", FIXTURES / "enc.pth", "--vocab", FIXTURES / "vocab.txt", "--output_dir", folder])
    card = (folder / "README.md").read_text()
    assert "AutoModel.from_pretrained" in card and 'pipeline("text-generation"' not in card


def test_classifier_is_converted_and_pushed_card_last(script, tmp_path, fake_hub, fastai_outputs):
    remote, uploads = fake_hub
    output_dir = tmp_path / "fastai-classifier"
    script(
        [
            "--checkpoint", FIXTURES / "clas.pth",
            "--vocab", FIXTURES / "vocab.pkl",
            "--labels", "neg,pos",
            "--config_overrides", "bpt3c_chunk_size=8,bpt3c_max_length=24",
            "--output_dir", output_dir,
            "--push_to_hub", "--hub_model_id", "me/fastai-classifier",
        ]
    )  # fmt: skip
    pushed = remote / "me" / "fastai-classifier"
    assert uploads == ["folder", "README.md"]  # the card last, so that nothing overwrites it
    assert (pushed / "model.safetensors").is_file() and (pushed / "vocab.json").is_file()
    card = (pushed / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and file_sha256(FIXTURES / "clas.pth") in card
    assert 'model="me/fastai-classifier"' in card  # the usage snippet names the Hub repo
    model = AutoModelForSequenceClassification.from_pretrained(pushed).eval()
    assert model.config.id2label == {0: "neg", 1: "pos"} and model.config.bpt3c_chunk_size == 8
    with torch.no_grad():
        logits = model(fastai_outputs["clas_input_ids_long"]).logits
    assert (logits - fastai_outputs["clas_logits_long"]).abs().max() <= 1e-5
    results = pipeline("text-classification", model=str(pushed))(["A great film, I loved it."])
    assert results[0]["label"] in {"neg", "pos"}


def test_encoder_of_a_classifier_on_request(script, tmp_path):
    output_dir = tmp_path / "encoder"
    args = ["--checkpoint", FIXTURES / "clas.pth", "--vocab", FIXTURES / "vocab.pkl", "--output_dir", output_dir]
    script([*args, "--task", "encoder"])
    assert "AwdLstmModel" in (output_dir / "config.json").read_text()


def test_bad_input_fails_with_a_clear_error(script, tmp_path):
    args = ["--vocab", FIXTURES / "vocab.pkl", "--output_dir", tmp_path / "out"]
    with pytest.raises(UsageError, match="not a PyTorch checkpoint") as error:
        script(["--checkpoint", FIXTURES / "vocab.txt", *args])
    assert isinstance(error.value.__cause__, FastaiCheckpointError)
    with pytest.raises(ValueError, match="name=value pairs"):
        script(["--checkpoint", FIXTURES / "clas.pth", *args, "--config_overrides", "bpt3c_chunk_size"])
    assert not (tmp_path / "out").exists()


def test_command_line_reports_a_bad_file_in_one_line(tmp_path, monkeypatch, capsys):
    args = [
        "--checkpoint",
        FIXTURES / "vocab.txt",
        "--vocab",
        FIXTURES / "vocab.pkl",
        "--output_dir",
        tmp_path / "out",
    ]
    monkeypatch.setattr(sys, "argv", [SCRIPT.name, *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_info.value.code == 2  # a usage error, as argparse reports a bad flag
    message = capsys.readouterr().err
    assert message.startswith("convert_fastai_checkpoint.py: error: vocab.txt is not a PyTorch checkpoint")
    assert message.count("\n") == 1 and not (tmp_path / "out").exists()
