"""Every script checks its flags, inputs and output folder before any work, and reports a mistake in one line.

In-process: `main(argv)` raises a `UsageError` (a `ValueError`) that names the flag or file, and leaves no output
folder behind; argparse's own complaints (a value of the wrong type) exit with status 2. As subprocesses, one run
per script: exit status 2, one `error:` line on stderr, no traceback, no output folder.
"""

import importlib.util
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from accelerate.state import AcceleratorState

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmTokenizer
from ulmfit.training.script_steps import UsageError


REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
FIXTURES = REPO / "tests" / "fixtures" / "fastai"
TEXTS = [f"the film number {i} was {'good' if i % 2 else 'bad'} and the story was {i % 5}" for i in range(24)]
_modules = {}


def script_main(name: str):
    """scripts/<name>.py's `main`, imported once."""
    if name not in _modules:
        spec = importlib.util.spec_from_file_location(f"bad_inputs_{name}", SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[name] = module
    return _modules[name].main


def run(name: str, argv) -> None:
    try:
        script_main(name)([str(value) for value in argv])
    finally:  # a check that runs after the Accelerator started leaves its state behind
        AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Tiny inputs of every kind the scripts read, and a tiny saved language model."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = {"folder": folder}
    paths["corpus"] = folder / "corpus.txt"
    paths["corpus"].write_text("\n".join(TEXTS))
    paths["reviews"] = folder / "reviews.csv"
    paths["reviews"].write_text(
        "review,sentiment\n" + "\n".join(f"{t},{'pos' if i % 2 else 'neg'}" for i, t in enumerate(TEXTS))
    )
    paths["one_label"] = folder / "one_label.csv"
    paths["one_label"].write_text("text,label\n" + "\n".join(f"{t},pos" for t in TEXTS))
    paths["no_label"] = folder / "no_label.csv"
    paths["no_label"].write_text(
        "text,label\n" + "\n".join(f"{t},{'' if i == 3 else 'pos' if i % 2 else 'neg'}" for i, t in enumerate(TEXTS))
    )
    paths["numbers"] = folder / "numbers.parquet"
    pq.write_table(pa.table({"text": list(range(24))}), paths["numbers"])
    paths["header_only"] = folder / "header_only.csv"
    paths["header_only"].write_text("text,label\n")
    paths["empty"] = folder / "empty.txt"
    paths["empty"].write_text("")
    paths["xml"] = folder / "corpus.xml"
    paths["xml"].write_text("<texts/>")
    paths["pairs"] = folder / "pairs.parquet"
    pq.write_table(
        pa.table({"fr": [f"je suis {i}" for i in range(20)], "en": [f"i am {i}" for i in range(20)]}), paths["pairs"]
    )
    paths["vectors8"] = folder / "vectors8.txt"
    paths["vectors8"].write_text("2 8\nje " + " ".join(["0.1"] * 8) + "\nsuis " + " ".join(["0.2"] * 8) + "\n")
    paths["images"] = folder / "images.parquet"
    pq.write_table(pa.table({"image": [b"not decoded yet"] * 6, "label": [0, 1, 2] * 2}), paths["images"])
    paths["classes"] = folder / "classes.txt"
    paths["classes"].write_text("goldfish\nboat\ndog\n")
    paths["backbone"] = folder / "backbone"  # only its config.json is looked at before the data are read
    paths["backbone"].mkdir()
    (paths["backbone"] / "config.json").write_text("{}")
    paths["a_file"] = folder / "a_file"
    paths["a_file"].write_text("not a folder")
    paths["finished"] = folder / "finished"  # a folder another run finished in
    paths["finished"].mkdir()
    (paths["finished"] / "all_results.json").write_text("{}")
    (paths["finished"] / "model.safetensors").write_bytes(b"")
    tokenizer = AwdLstmTokenizer.train(TEXTS, min_freq=1)
    config = AwdLstmConfig(vocab_size=len(tokenizer), embedding_size=8, hidden_size=12, num_hidden_layers=2)
    torch.manual_seed(0)
    paths["lm"] = folder / "tiny-lm"
    AwdLstmForCausalLM(config).save_pretrained(paths["lm"])
    tokenizer.save_pretrained(paths["lm"])
    return paths


def resolve(argv, files, out):
    """`{name}` in an item is that path of the files fixture; `OUT` is the output folder."""
    resolved = []
    for item in argv:
        if item == "OUT":
            item = out
        elif isinstance(item, str) and "{" in item:
            item = item.format(**{name: str(path) for name, path in files.items()})
        resolved.append(item)
    return resolved


LM = ["--train_file", "{corpus}", "--output_dir", "OUT"]
CLASSIFIER = ["--model_name_or_path", "{lm}", "--train_file", "{reviews}", "--text_column", "review"]
CLASSIFIER += ["--label_column", "sentiment", "--output_dir", "OUT"]
TRANSLATOR = ["--train_file", "{pairs}", "--output_dir", "OUT"]
DEVISE = ["--train_file", "{images}", "--class_names", "{classes}", "--word_vectors", "{vectors8}"]
DEVISE += ["--backbone_checkpoint", "{backbone}", "--output_dir", "OUT"]
CONVERTER = ["--checkpoint", FIXTURES / "lm.pth", "--vocab", FIXTURES / "vocab.txt", "--output_dir", "OUT"]

# (script, its valid flags, the mistake, what the message must name); grouped by the kind of mistake
CASES = {
    "number out of range": [
        ("train_language_model", LM, ["--learning_rate", -1], "--learning_rate"),
        ("train_language_model", LM, ["--learning_rate", "nan"], "--learning_rate"),
        ("train_language_model", LM, ["--num_train_epochs", 0], "--num_train_epochs"),
        ("train_language_model", LM, ["--per_device_train_batch_size", 0], "--per_device_train_batch_size"),
        ("train_language_model", LM, ["--validation_split_percentage", 100], "--validation_split_percentage"),
        ("train_language_model", LM, ["--adam_beta2", 1], "--adam_beta2"),
        ("train_language_model", LM, ["--pct_start", 0], "--pct_start"),
        ("train_language_model", LM, ["--max_grad_norm", -1], "--max_grad_norm"),
        ("train_language_model", LM, ["--drop_mult", 5], "--drop_mult"),
        ("train_classifier", CLASSIFIER, ["--learning_rates", "1e-2,-1,1e-3,1e-3"], "--learning_rates"),
        ("train_classifier", CLASSIFIER, ["--epochs", "1,0,1,1"], "--epochs"),
        ("train_classifier", CLASSIFIER, ["--per_device_eval_batch_size", 0], "--per_device_eval_batch_size"),
        ("train_translator", TRANSLATOR, ["--learning_rate", "inf"], "--learning_rate"),
        ("train_translator", TRANSLATOR, ["--eval_num_beams", 0], "--eval_num_beams"),
        ("train_translator", TRANSLATOR, ["--teacher_forcing_start", 1.5], "--teacher_forcing_start"),
        ("train_translator", TRANSLATOR, ["--max_source_length", 1], "--max_source_length"),
        ("train_translator", TRANSLATOR, ["--label_smoothing_factor", 1], "--label_smoothing_factor"),
        ("train_devise", DEVISE, ["--pooled_dropout", 1], "--pooled_dropout"),
        ("train_devise", DEVISE, ["--num_train_epochs", 0], "--num_train_epochs"),
        ("train_devise", DEVISE, ["--dataloader_num_workers", -1], "--dataloader_num_workers"),
    ],
    "list or value that does not parse": [
        ("train_classifier", CLASSIFIER, ["--learning_rates", "abc,1e-2,5e-3,1e-3"], "--learning_rates"),
        ("train_classifier", CLASSIFIER, ["--unfreeze", "1,x,3,all"], "--unfreeze"),
        ("train_classifier", CLASSIFIER, ["--epochs", "1,1"], "--epochs"),
        ("train_language_model", LM, ["--config_overrides", "hidden_size=abc"], "--config_overrides"),
        ("train_translator", TRANSLATOR, ["--config_overrides", "no_such_field=1"], "--config_overrides"),
        ("train_language_model", LM, ["--checkpointing_steps", "often"], "--checkpointing_steps"),
        ("convert_fastai_checkpoint", CONVERTER, ["--config_overrides", "bpt3c_chunk_size"], "--config_overrides"),
        ("convert_fastai_checkpoint", CONVERTER, ["--labels", "neg,,pos"], "--labels"),
    ],
    "unknown choice": [
        ("train_language_model", LM, ["--lr_scheduler_type", "cosine"], "--lr_scheduler_type"),
        ("train_language_model", LM, ["--mixed_precision", "fp32"], "--mixed_precision"),
        ("train_language_model", LM, ["--with_tracking", "--report_to", "tensorbord"], "--report_to"),
        ("train_translator", TRANSLATOR, ["--teacher_forcing_schedule", "cosine"], "--teacher_forcing_schedule"),
        ("train_devise", DEVISE, ["--loss", "mse"], "--loss"),
        ("train_language_model", LM, ["--no_such_flag", 1], "--no_such_flag"),
    ],
    "flags that do not go together": [
        ("train_language_model", LM, ["--dataset_name", "wikitext"], "--dataset_name"),
        ("train_language_model", LM, ["--dataset_config_name", "raw"], "--dataset_config_name"),
        ("train_language_model", LM, ["--streaming"], "--max_train_steps"),
        ("train_language_model", LM, ["--train_tokenizer", "--tokenizer_name", "{lm}"], "--tokenizer_name"),
        (
            "train_language_model",
            LM,
            ["--model_name_or_path", "{lm}", "--config_overrides", "hidden_size=8"],
            "--config_overrides",
        ),
        ("train_translator", TRANSLATOR, ["--target_column", "fr"], "--target_column"),
        ("train_translator", TRANSLATOR, ["--config_overrides", "vocab_size=10"], "--config_overrides"),
        ("train_devise", DEVISE, ["--train_dir", "{folder}"], "--train_dir"),
        ("train_devise", DEVISE, ["--cache_dir", "{folder}"], "--cache_dir"),
        ("train_devise", [a for a in DEVISE if a not in ("--word_vectors", "{vectors8}")], [], "--word_vectors"),
        (
            "train_classifier",
            [a for a in CLASSIFIER if a not in ("--model_name_or_path", "{lm}")],
            [],
            "--model_name_or_path",
        ),
    ],
    "missing or unreadable input": [
        ("train_language_model", ["--train_file", "{folder}/missing.txt", "--output_dir", "OUT"], [], "--train_file"),
        ("train_language_model", ["--train_file", "{empty}", "--output_dir", "OUT"], [], "--train_file"),
        ("train_language_model", ["--train_file", "{xml}", "--output_dir", "OUT"], [], "--train_file"),
        ("train_language_model", ["--train_file", "{folder}", "--output_dir", "OUT"], [], "--train_file"),
        ("train_classifier", CLASSIFIER, ["--validation_file", "{folder}/nope.csv"], "--validation_file"),
        ("train_translator", TRANSLATOR, ["--test_file", "{folder}/nope.parquet"], "--test_file"),
        ("train_translator", TRANSLATOR, ["--source_vectors", "{folder}/nope.vec"], "--source_vectors"),
        ("train_translator", TRANSLATOR, ["--source_vectors", "{vectors8}"], "--project_vectors"),
        ("train_devise", DEVISE, ["--class_names", "{folder}/nope.txt"], "--class_names"),
        ("train_devise", DEVISE, ["--unseen_classes", "{folder}/unseen.txt"], "--unseen_classes"),
        ("convert_fastai_checkpoint", CONVERTER, ["--vocab", "{folder}/nope.pkl"], "--vocab"),
        ("convert_fastai_checkpoint", CONVERTER, ["--checkpoint", FIXTURES / "vocab.txt"], "vocab.txt"),
    ],
    "column not in the data": [
        ("train_language_model", LM, ["--text_column", "body"], "--text_column"),
        ("train_classifier", CLASSIFIER, ["--label_column", "stars"], "--label_column"),
        ("train_translator", TRANSLATOR, ["--source_column", "de"], "--source_column"),
        ("train_devise", DEVISE, ["--image_column", "picture"], "--image_column"),
        # a column of numbers is not text: found by a second campaign (it left an empty output folder)
        ("train_language_model", ["--train_file", "{numbers}", "--output_dir", "OUT"], [], "--text_column"),
    ],
    "too little data, or labels that cannot be used": [
        ("train_language_model", LM, ["--per_device_train_batch_size", 512], "--per_device_train_batch_size"),
        ("train_translator", TRANSLATOR, ["--max_source_length", 2], "--max_source_length"),
        (
            "train_classifier",
            CLASSIFIER[:2] + ["--train_file", "{header_only}", "--output_dir", "OUT"],
            [],
            "--train_file",
        ),
        (
            "train_classifier",
            CLASSIFIER[:2] + ["--train_file", "{one_label}", "--output_dir", "OUT"],
            [],
            "--label_column",
        ),
        (
            "train_classifier",
            CLASSIFIER[:2] + ["--train_file", "{no_label}", "--output_dir", "OUT"],
            [],
            "--label_column",
        ),
    ],
    "model that is not there": [
        ("train_classifier", CLASSIFIER, ["--model_name_or_path", "{folder}/tiny-lmm"], "no such folder"),
        ("train_classifier", CLASSIFIER, ["--model_name_or_path", "someone/no-such-model"], "offline"),
        ("train_classifier", CLASSIFIER, ["--model_name_or_path", "{folder}"], "config.json"),
        ("train_language_model", LM, ["--model_name_or_path", "./runs/imdb-lm"], "no such folder"),
        ("train_translator", TRANSLATOR, ["--tokenizer_name", "{folder}/nope"], "--tokenizer_name"),
        ("train_devise", DEVISE, ["--backbone_checkpoint", "{a_file}"], "--backbone_checkpoint"),
        ("train_classifier", CLASSIFIER, ["--model_name_or_path", "{backbone}"], "--model_name_or_path"),
    ],
    "output location": [
        ("train_language_model", LM, ["--output_dir", "{a_file}"], "--output_dir"),
        ("train_classifier", CLASSIFIER, ["--output_dir", "{a_file}"], "--output_dir"),
        ("train_translator", TRANSLATOR, ["--output_dir", "{a_file}/run"], "--output_dir"),
        ("train_devise", DEVISE, ["--output_dir", "{finished}"], "--overwrite_output_dir"),
        ("train_language_model", LM, ["--output_dir", "{finished}"], "--resume_from_checkpoint"),
        ("train_language_model", LM, ["--resume_from_checkpoint", "{folder}"], "--resume_from_checkpoint"),
        ("train_classifier", CLASSIFIER, ["--push_to_hub", "--hub_model_id", "a/b/c"], "--hub_model_id"),
        ("convert_fastai_checkpoint", CONVERTER, ["--output_dir", "{a_file}"], "--output_dir"),
    ],
}
PARAMS = [
    pytest.param(script, base, mistake, named, id=f"{kind}: {script} {' '.join(map(str, mistake))}"[:90])
    for kind, cases in CASES.items()
    for script, base, mistake, named in cases
]


@pytest.mark.parametrize("script, base, mistake, named", PARAMS)
def test_a_mistake_is_a_usage_error_naming_the_flag_before_anything_is_written(
    files, tmp_path, script, base, mistake, named
):
    out = tmp_path / "out"
    argv = resolve([*base, *mistake], files, out)
    before = {path: path.stat().st_mtime for path in files["folder"].rglob("*")}
    with pytest.raises(UsageError) as error:
        run(script, argv)
    message = str(error.value)
    assert named in message
    assert not out.exists() and not list(tmp_path.iterdir())  # a failed start leaves no folder behind
    assert {path: path.stat().st_mtime for path in files["folder"].rglob("*")} == before  # nor touches the inputs


@pytest.mark.parametrize(
    "script, base, mistake",
    [
        ("train_language_model", LM, ["--learning_rate", "abc"]),
        ("train_classifier", CLASSIFIER, ["--seed", "x"]),
        ("train_translator", TRANSLATOR, ["--num_train_epochs", "1.5"]),
        ("train_devise", DEVISE, ["--image_size", "big"]),
        ("convert_fastai_checkpoint", CONVERTER, ["--task", "tagger"]),
    ],
)
def test_a_value_of_the_wrong_type_is_argparses_exit_2_naming_the_flag(files, tmp_path, capsys, script, base, mistake):
    with pytest.raises(SystemExit) as exit_info:
        run(script, resolve([*base, *mistake], files, tmp_path / "out"))
    assert exit_info.value.code == 2 and mistake[0] in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_resume_and_overwrite_are_the_ways_into_a_finished_run(files, tmp_path):
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "all_results.json").write_text("{}")
    # the folder is accepted with either flag: the run goes on to read the data (a column is wrong here)
    for flag in (["--overwrite_output_dir"], ["--resume_from_checkpoint", "latest"]):
        with pytest.raises(UsageError, match="--text_column"):
            run(
                "train_language_model",
                ["--train_file", files["corpus"], "--output_dir", finished, "--text_column", "x", *flag],
            )
    assert sorted(p.name for p in finished.iterdir()) == ["all_results.json"]


def test_debug_keeps_the_traceback(files, tmp_path, monkeypatch):
    from ulmfit.training.script_steps import run_script

    argv = ["--train_file", str(files["corpus"]), "--output_dir", str(tmp_path / "out"), "--learning_rate", "-1"]
    main = script_main("train_language_model")
    monkeypatch.setattr(sys, "argv", ["train_language_model.py", *argv])
    with pytest.raises(SystemExit):
        run_script(lambda: main(argv))
    monkeypatch.setattr(sys, "argv", ["train_language_model.py", *argv, "--debug"])
    with pytest.raises(UsageError, match="--learning_rate"):
        run_script(lambda: main([*argv, "--debug"]))


AS_MAIN_CASES = {
    "train_language_model": [*LM, "--learning_rate", "-1"],
    "train_classifier": [*CLASSIFIER, "--learning_rates", "abc,1e-2,5e-3,1e-3"],
    "train_translator": [*TRANSLATOR, "--source_column", "de"],
    "train_devise": [*DEVISE, "--label_column", "kind"],
    "convert_fastai_checkpoint": [*CONVERTER[:-1], "{a_file}"],
    "demo": ["--lm_steps", "0", "--output_dir", "OUT"],
}


@pytest.mark.parametrize("name", list(AS_MAIN_CASES))
def test_each_script_run_as_a_program_exits_2_with_one_line_and_leaves_nothing(
    files, tmp_path, monkeypatch, capsys, name
):
    argv = [str(value) for value in resolve(AS_MAIN_CASES[name], files, tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(SCRIPTS / f"{name}.py"), run_name="__main__")
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    stderr = capsys.readouterr().err  # progress bars of the data read end in "\r"; the message is the last line
    assert exit_info.value.code == 2 and stderr.endswith("\n") and "Traceback" not in stderr
    assert [line for line in stderr.split("\n") if "error:" in line] == [stderr.split("\n")[-2]]
    assert stderr.split("\n")[-2].split("\r")[-1].startswith(f"{name}.py: error: ")
    assert not (tmp_path / "out").exists()


def test_a_real_process_exits_2_with_one_line_and_no_traceback(files, tmp_path):
    """The issue's case: an output folder that is a file, found before any training."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    argv = [*CLASSIFIER[:-1], "{a_file}"]
    command = [sys.executable, str(SCRIPTS / "train_classifier.py"), *map(str, resolve(argv, files, None))]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1].startswith("train_classifier.py: error: --output_dir ")
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
