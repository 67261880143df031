"""scripts/train_translator.py, run for real on a few dozen made-up French -> English pairs."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from huggingface_hub import ModelCard
from resume_helpers import TRACKING_ARGS, assert_same_run, resume
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

from ulmfit.model_card import check_hub_metadata
from ulmfit.training.translation import smoothed_loss


SUBJECTS = [
    ("Je suis", "I am"),
    ("Tu es", "You are"),
    ("Il est", "He is"),
    ("Elle est", "She is"),
    ("Nous sommes", "We are"),
    ("Vous êtes", "You are"),
    ("Ils sont", "They are"),
]
STATES = [("content", "happy"), ("fatigué", "tired"), ("malade", "sick"), ("prêt", "ready"), ("ici", "here")]
PAIRS = [(f"{fr} {fr_state}.", f"{en} {en_state}.") for fr, en in SUBJECTS for fr_state, en_state in STATES]
LONG_PAIR = (
    "Je suis content parce que nous sommes ici et vous êtes prêt.",
    "I am happy because we are here and you are ready.",
)
TINY = ["--config_overrides", "embedding_size=16,hidden_size=12", "--per_device_train_batch_size", 8]
TINY += ["--per_device_eval_batch_size", 16, "--learning_rate", 1e-2, "--logging_steps", 1, "--seed", 0]


def write_pairs(path: Path, pairs, columns=("fr", "en")) -> Path:
    pq.write_table(pa.table({columns[0]: [p[0] for p in pairs], columns[1]: [p[1] for p in pairs]}), str(path))
    return path


@pytest.fixture
def script(load_script):
    return load_script("train_translator")


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    """Train (with two over-long pairs and a blank one), validation and test files."""
    train = PAIRS[::2] + PAIRS[1::4] + [LONG_PAIR, LONG_PAIR[::-1], ("Bonjour.", "  ")]
    return {
        "train": write_pairs(tmp_path / "train.parquet", train),
        "validation": write_pairs(tmp_path / "validation.parquet", PAIRS[3::4]),
        "test": write_pairs(tmp_path / "test.parquet", PAIRS[7::8]),
    }


def vectors_file(path: Path, words, dimension: int) -> Path:
    generator = torch.Generator().manual_seed(1)
    rows = [f"{w} " + " ".join(f"{v:.4f}" for v in torch.randn(dimension, generator=generator)) for w in words]
    path.write_text(f"{len(rows)} {dimension}\n" + "\n".join(rows) + "\n")
    return path


def files(data, *splits):
    return [arg for split in splits for arg in (f"--{split}_file", data[split])]


def test_end_to_end_run_saves_a_pipeline_ready_translator_with_card_log_and_scores(script, data, tmp_path, capsys):
    out = tmp_path / "translator"
    source_vectors = vectors_file(tmp_path / "fr.vec", ["suis", "est", "sommes", "content", "ailleurs"], 16)
    target_vectors = vectors_file(tmp_path / "en.txt", ["am", "is", "happy", "tired"], 8)  # smaller: projected
    args = [*TINY, *files(data, "train", "validation", "test"), "--output_dir", out, "--num_train_epochs", 3]
    args += ["--max_target_length", 8, "--eval_num_beams", 2, "--source_vectors", source_vectors]
    script([*args, "--target_vectors", target_vectors, "--project_vectors"])
    printed = capsys.readouterr().out
    assert "train: dropped 1 pairs with an empty or missing sentence" in printed
    assert "dropped 2 of 29 training pairs longer than max_source_length=30 / max_target_length=8" in printed
    assert "source vectors fr.vec: 4/" in printed and "target vectors en.txt: 4/" in printed
    assert "(epoch 2): validation loss" in printed

    results = json.loads((out / "all_results.json").read_text())
    assert {"eval_bleu", "eval_chrf", "eval_bleu_beam2", "test_bleu", "test_chrf", "test_bleu_beam2"} <= set(results)
    assert 0 <= results["test_bleu"] <= 100 and "tok:13a" in results["bleu_signature"]
    assert results["vector_coverage"]["target"]["found"] == 4
    # the saved decoding settings: the best of the grid on the validation pairs, and what the saved model uses
    settings, rows = results["generation_settings"], results["generation_tuning"]
    assert len(rows) == 8 and {row["num_beams"] for row in rows} == {1, 4}
    best = max(rows, key=lambda row: (round(row["bleu"], 2), -row["repeat_rate"]))
    assert settings == {key: best[key] for key in ("num_beams", "repetition_penalty", "no_immediate_repeat")}
    assert 0 <= results["test_repeat_rate"] <= 1
    log = json.loads((out / "training_log.json").read_text())
    assert [row["epoch"] for row in log if "bleu" in row] == [0, 1, 2]
    assert (out / "training_curve.png").stat().st_size > 0

    card = (out / "README.md").read_text()
    assert "pipeline_tag: translation" in card and "model-index" in card and "type: bleu" in card
    assert "split: test" in card and "type: bleu_beam2" in card and "--eval_num_beams 2" in card  # + the command
    assert "target embedding from `en.txt` (4/" in card
    loaded = ModelCard.load(out / "README.md")
    check_hub_metadata(loaded)
    assert {(r.dataset_type, r.dataset_name, r.dataset_split) for r in loaded.data.eval_results} == {
        ("unknown", "test.parquet", "test")
    }

    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.generation_config.max_new_tokens == 6  # the longest kept target (xxmaj you are happy . xxeos)
    assert model.generation_config.num_beams == settings["num_beams"]
    assert model.generation_config.no_immediate_repeat == settings["no_immediate_repeat"]
    assert tokenizer.target_vocab_size == model.config.decoder_vocab_size
    translate = pipeline("translation", model=str(out), trust_remote_code=True)
    result = translate(["Je suis content.", "Ils sont ici."], batch_size=2)
    assert [sorted(r) for r in result] == [["translation_text"], ["translation_text"]]


def test_with_tracking_starts_the_trackers_logs_every_evaluation_and_ends_them(script, data, tmp_path, tracking_calls):
    calls = tracking_calls
    out = tmp_path / "tracked"
    script([*TINY, *files(data, "train", "validation"), "--output_dir", out, "--num_train_epochs", 1, *TRACKING_ARGS])
    names = [name for name, _ in calls]
    assert names[0] == "init_trackers" and names[-1] == "end_training" and "log" in names
    project, config = calls[0][1]
    assert project == "train_translator" and config["report_to"] == "tensorboard" and "hub_token" not in config
    assert all(isinstance(value, (int, float)) for name, args in calls if name == "log" for value in args[0].values())


def test_with_tracking_writes_tensorboard_event_files(script, data, tmp_path):
    out = tmp_path / "tracked"
    script([*TINY, *files(data, "train", "validation"), "--output_dir", out, "--num_train_epochs", 1, *TRACKING_ARGS])
    assert list((out / "train_translator").rglob("events.out.tfevents.*"))


def test_bf16_mixed_precision_trains_and_scores_on_the_cpu(script, data, tmp_path):
    out = tmp_path / "translator"
    script([*TINY, *files(data, "train", "validation"), "--output_dir", out, "--mixed_precision", "bf16"])
    results = json.loads((out / "all_results.json").read_text())
    assert 0 <= results["eval_bleu"] <= 100 and results["train_steps"] > 0
    assert AutoModelForSeq2SeqLM.from_pretrained(out).dtype == torch.float32  # autocast keeps float32 weights


def test_teacher_forcing_decays_linearly_over_the_run_by_default(script, data, tmp_path):
    out = tmp_path / "translator"
    script([*TINY, *files(data, "train", "validation"), "--output_dir", out, "--num_train_epochs", 2])
    log = json.loads((out / "training_log.json").read_text())
    ratios = [row["teacher_forcing"] for row in log if "train_loss" in row]  # one row per step
    # from 1 to the default end, 0.5 (the measured recipe), over the whole run
    assert len(ratios) > 4 and ratios == pytest.approx([1 - 0.5 * step / len(ratios) for step in range(len(ratios))])


def test_label_smoothing_is_the_training_loss_of_every_step_and_only_that(load_script, data, tmp_path, monkeypatch):
    calls = []

    def spy(logits, labels, pad_token_id, factor):
        loss = smoothed_loss(logits, labels, pad_token_id, factor)
        calls.append((factor, loss.item()))
        return loss

    monkeypatch.setattr("ulmfit.training.translation.smoothed_loss", spy)
    script = load_script("train_translator")  # imports the spy
    for factor in (0.0, 0.2):
        out = tmp_path / f"smoothing_{factor}"
        script([*TINY, *files(data, "train", "validation"), "--output_dir", out, "--label_smoothing_factor", factor])
        log = json.loads((out / "training_log.json").read_text())
        steps = [row for row in log if "train_loss" in row]  # --logging_steps 1: one row per step
        if factor == 0.0:
            assert not calls  # the model's own loss
            continue
        assert [call[0] for call in calls] == [0.2] * len(steps)  # each training step, no validation batch
        assert [row["train_loss"] for row in steps] == pytest.approx([call[1] for call in calls])


def test_a_resumed_run_ends_with_the_same_weights_and_log(script, data, tmp_path):
    args = [*TINY, "--train_file", data["train"], "--validation_split_percentage", 20, "--num_train_epochs", 2]
    args += ["--teacher_forcing_end", 0.2, "--eval_steps", 2]  # forcing draws, dropout, batch order, one-cycle
    reference = tmp_path / "reference"
    script([*args, "--output_dir", reference, "--checkpointing_steps", 1])
    log = json.loads((reference / "training_log.json").read_text())
    steps_per_epoch = log[-1]["step"] // 2
    assert steps_per_epoch == 3
    assert [row["step"] for row in log if "bleu" in row] == [2, 3, 4, 6]  # every 2 steps, and each epoch's end
    for checkpoint in ("step_2", f"step_{steps_per_epoch + 1}"):  # mid-epoch, in each epoch
        assert_same_run(resume(script, args, reference, checkpoint, tmp_path), reference)


def test_epoch_checkpoint_resume_and_push_to_hub_uploads_the_translator_then_its_card(
    script, data, tmp_path, fake_hub
):
    remote, uploads = fake_hub
    args = [*TINY, *files(data, "train", "validation"), "--num_train_epochs", 2]
    reference = tmp_path / "reference"
    script([*args, "--output_dir", reference, "--checkpointing_steps", "epoch"])
    assert_same_run(resume(script, args, reference, "epoch_0", tmp_path), reference)

    again = ["--overwrite_output_dir", "--push_to_hub", "--hub_model_id", "me/tiny-translator"]  # a second run there
    script([*args, "--output_dir", reference, *again])
    pushed = remote / "me" / "tiny-translator"
    assert uploads == ["folder", "README.md"]  # the card last, so that nothing overwrites it
    assert not list(pushed.glob("epoch_*")) and not (pushed / "tokenizer").exists()
    assert (pushed / "translation.py").exists()
    assert json.loads((pushed / "config.json").read_text())["custom_pipelines"]["translation"]
    assert "me/tiny-translator" in (pushed / "README.md").read_text()
    assert AutoModelForSeq2SeqLM.from_pretrained(pushed).config.model_type == "gru_seq2seq"


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--source_column", "french"], r"\['french'\] not found.*--source_column/--target_column"),
        (["--max_source_length", 4, "--max_target_length", 4], "Every training pair is longer"),
        (["--teacher_forcing_schedule", "cosine"], "--teacher_forcing_schedule must be one of"),
        (["--checkpointing_steps", "often"], "--checkpointing_steps"),
        (["--source_vectors", "VECTORS"], "holds 8-d vectors but the model's embedding_size is 16.*--project_vectors"),
    ],
)
def test_bad_inputs_fail_clearly(script, data, tmp_path, extra, match):
    vectors = vectors_file(tmp_path / "v.txt", ["suis"], 8)
    extra = [vectors if value == "VECTORS" else value for value in extra]
    with pytest.raises(ValueError, match=match):
        script([*TINY, *files(data, "train", "validation"), "--output_dir", tmp_path / "out", *extra])


def test_an_empty_training_file_fails_clearly(script, data, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        script([*TINY, "--train_file", empty, "--output_dir", tmp_path / "out"])
