import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from transformers import HfArgumentParser

from ulmfit.model_card.awd_lstm import awd_lstm_card
from ulmfit.training import SortishBatchSampler, script_steps
from ulmfit.training.script_steps import (
    TrainingScriptArguments,
    backward_and_step,
    checkpoint_due,
    epoch_batches,
    make_accelerator,
    push_to_hub,
    save_model,
    save_results_and_card,
)


@dataclass
class ToyArguments(TrainingScriptArguments):
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate."})
    output_dir: str = field(default="runs/toy", metadata={"help": "Where the toy goes."})


def parse(*argv) -> ToyArguments:
    (args,) = HfArgumentParser(ToyArguments).parse_args_into_dataclasses(args=[str(a) for a in argv])
    return args


@pytest.fixture
def accelerator():
    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)


def test_a_script_extends_the_shared_arguments_and_keeps_its_own_defaults():
    args = parse("--learning_rate", 0.1, "--cpu", "--checkpointing_steps", 5)
    assert (args.learning_rate, args.cpu, args.checkpointing_steps, args.seed) == (0.1, True, "5", 42)
    assert args.output_dir == "runs/toy" and args.mixed_precision == "no" and not parse().cpu


@pytest.mark.parametrize("value", ["5", "epoch", None])
def test_checkpointing_steps_accepts_a_number_or_epoch(value):
    assert TrainingScriptArguments(checkpointing_steps=value).checkpointing_steps == value


@pytest.mark.parametrize("value", ["often", "-1", "2.5", "Epoch"])
def test_checkpointing_steps_must_be_a_number_or_epoch(value):
    expected = f"--checkpointing_steps must be a number of steps or `epoch`, not '{value}'."
    with pytest.raises(ValueError) as error:
        parse("--checkpointing_steps", value)
    assert str(error.value) == expected


def test_the_hub_repo_is_the_output_folder_unless_named():
    assert TrainingScriptArguments(output_dir="runs/my-model").hub_repo_id == "my-model"
    assert TrainingScriptArguments(output_dir="runs/x", hub_model_id="me/y").hub_repo_id == "me/y"


def test_checkpoint_due_every_n_steps():
    assert [step for step in range(1, 13) if checkpoint_due("5", step)] == [5, 10]
    assert not checkpoint_due("5", 10, end_of_epoch=True)  # the step checkpoint is taken in the loop, not again


def test_checkpoint_due_at_every_epoch_end_only():
    assert checkpoint_due("epoch", 3, end_of_epoch=True)
    assert not any(checkpoint_due("epoch", step) for step in range(1, 10))


@pytest.mark.parametrize("value", [None, "0"])
def test_no_checkpoints_without_checkpointing_steps_or_with_zero(value):
    assert not any(checkpoint_due(value, step, end) for step in range(1, 10) for end in (False, True))


def test_cpu_flag_and_mixed_precision_reach_the_accelerator(monkeypatch):
    made = []
    monkeypatch.setattr(script_steps, "Accelerator", lambda **kwargs: made.append(kwargs))
    make_accelerator(parse("--cpu", "--mixed_precision", "bf16"), gradient_accumulation_steps=2)
    make_accelerator(parse())
    assert made == [
        {"cpu": True, "mixed_precision": "bf16", "gradient_accumulation_steps": 2},
        {"cpu": False, "mixed_precision": "no"},
    ]


def test_with_tracking_the_report_to_trackers_log_under_the_output_folder(monkeypatch):
    made = []
    monkeypatch.setattr(script_steps, "Accelerator", lambda **kwargs: made.append(kwargs))
    make_accelerator(parse("--with_tracking", "--report_to", "tensorboard", "--output_dir", "runs/x"))
    assert made == [{"cpu": False, "mixed_precision": "no", "log_with": "tensorboard", "project_dir": "runs/x"}]
    assert parse().report_to == "all"  # as in transformers' `*_no_trainer` examples


def test_start_tracking_sends_the_arguments_without_the_token(monkeypatch):
    started = []
    tracker = type("Tracked", (), {"init_trackers": lambda self, *args: started.append(args)})()
    script_steps.start_tracking(tracker, parse("--hub_token", "secret"), "toy")
    assert started == []  # without --with_tracking
    script_steps.start_tracking(tracker, parse("--with_tracking", "--hub_token", "secret"), "toy")
    ((project, config),) = started
    assert project == "toy" and config["learning_rate"] == 1e-3 and "hub_token" not in config


def test_log_metrics_sends_the_numbers_of_a_row_at_its_step():
    logged = []
    tracker = type("Tracked", (), {"log": lambda self, values, step: logged.append((values, step))})()
    row = {"step": 7, "epoch": 1, "stage": "unfreeze_1", "accuracy": 0.5, "train_loss": None}
    script_steps.log_metrics(tracker, parse(), row)
    script_steps.log_metrics(tracker, parse("--with_tracking"), row)
    assert logged == [({"epoch": 1, "accuracy": 0.5}, 7)]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--dataset_name", "stanfordnlp/imdb", "--train_file", "t.csv"], "stanfordnlp/imdb"),
        (["--train_file", "data/t.csv", "--validation_file", "data/v.csv"], "v.csv"),
        (["--train_file", "data/t.csv"], "held-out 10% of t.csv"),
        (["--train_dir", "images/train", "--validation_dir", "images/valid"], "valid"),
    ],
)
def test_the_card_names_the_evaluation_data_never_the_training_file_alone(argv, expected):
    names = ("dataset_name", "train_file", "validation_file", "train_dir", "validation_dir")
    args = argparse.Namespace(validation_split_percentage=10, **dict.fromkeys(names))
    for flag, value in zip(argv[::2], argv[1::2]):
        setattr(args, flag[2:], value)
    assert script_steps.evaluation_data_name(args) == expected


def test_cpu_flag_puts_a_real_accelerator_on_the_cpu():
    try:
        assert make_accelerator(parse("--cpu")).device.type == "cpu"
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def linear_setup(accelerator, learning_rate=0.1):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (step + 1))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    return model, optimizer, scheduler


def test_backward_and_step_clips_steps_schedules_and_zeroes(accelerator):
    model, optimizer, scheduler = linear_setup(accelerator)
    before = model.weight.detach().clone()
    loss = model(torch.full((2, 4), 100.0)).pow(2).mean()
    gradients = torch.autograd.grad(loss, [model.weight, model.bias], retain_graph=True)
    total_norm = torch.stack([gradient.norm() for gradient in gradients]).norm()
    backward_and_step(accelerator, model, optimizer, scheduler, loss, max_grad_norm=0.5, completed_steps=0)
    clipped = gradients[0] * 0.5 / (total_norm + 1e-6)  # torch's clip_grad_norm_
    torch.testing.assert_close(model.weight.detach(), before - 0.1 * clipped)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)  # the schedule moved on
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_backward_and_step_without_clipping_takes_the_plain_gradient_step(accelerator):
    model, optimizer, scheduler = linear_setup(accelerator)
    before = model.weight.detach().clone()
    loss = model(torch.ones(2, 4)).sum()
    backward_and_step(accelerator, model, optimizer, scheduler, loss, max_grad_norm=0.0, completed_steps=0)
    torch.testing.assert_close(model.weight.detach(), before - 0.1 * 2 * torch.ones(1, 4))


def test_a_non_finite_loss_stops_before_any_step(accelerator):
    model, optimizer, scheduler = linear_setup(accelerator)
    before = model.weight.detach().clone()
    loss = model(torch.ones(2, 4)).sum() * float("nan")
    with pytest.raises(RuntimeError, match="nan at optimizer step 7 .*stopping before anything is saved"):
        backward_and_step(accelerator, model, optimizer, scheduler, loss, max_grad_norm=1.0, completed_steps=7)
    torch.testing.assert_close(model.weight.detach(), before)


def test_a_resumed_epoch_reads_the_rest_of_the_same_batches(accelerator):
    def loader():
        sampler = SortishBatchSampler([1 + i % 5 for i in range(24)], batch_size=3, seed=0)
        data = torch.utils.data.DataLoader(
            list(range(24)), batch_sampler=sampler, generator=torch.Generator().manual_seed(0)
        )
        return accelerator.prepare(data), sampler

    train_loader, sampler = loader()
    whole = [batch.tolist() for batch in epoch_batches(accelerator, train_loader, sampler, epoch=2)]
    train_loader, sampler = loader()
    rest = [batch.tolist() for batch in epoch_batches(accelerator, train_loader, sampler, epoch=2, skip=3)]
    assert rest == whole[3:]
    train_loader, sampler = loader()
    assert [batch.tolist() for batch in epoch_batches(accelerator, train_loader, sampler, epoch=1)] != whole


class RecordingTokenizer:
    def save_pretrained(self, output_dir):
        (Path(output_dir) / "tokenizer.json").write_text("{}")


def test_save_model_writes_the_unwrapped_model_and_its_tokenizer(accelerator, tmp_path):
    from ulmfit import AwdLstmConfig, AwdLstmForCausalLM

    model = accelerator.prepare(AwdLstmForCausalLM(AwdLstmConfig(vocab_size=20, embedding_size=8, hidden_size=8)))
    save_model(accelerator, parse("--output_dir", tmp_path), model, RecordingTokenizer())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {path.name for path in tmp_path.iterdir()}


def test_results_log_and_card_are_written_with_the_run_arguments(accelerator, tmp_path):
    args = parse("--output_dir", tmp_path / "tiny-lm", "--hub_token", "secret")
    (tmp_path / "tiny-lm").mkdir()
    log = [{"step": 1, "train_loss": 4.0, "learning_rate": 1e-3}, {"step": 1, "valid_loss": 3.9}]
    card = save_results_and_card(
        accelerator, args, {"perplexity": 49.4}, log, awd_lstm_card("lm"), metrics={"perplexity": 49.4}
    )
    output_dir = tmp_path / "tiny-lm"
    assert json.loads((output_dir / "all_results.json").read_text()) == {"perplexity": 49.4}
    assert json.loads((output_dir / "training_log.json").read_text()) == log
    text = (output_dir / "README.md").read_text()
    assert text == str(card) and "model-index" in text and "pipeline_tag: text-generation" in text
    assert "| learning_rate | 0.001 |" in text and "secret" not in text  # the arguments, without the token
    assert not (output_dir / "training_curve.png").exists()  # only asked for with plot_curve


def test_push_uploads_the_output_folder_then_the_card(accelerator, tmp_path, monkeypatch):
    pushed = []
    monkeypatch.setattr(script_steps, "push_folder_then_card", lambda *args: pushed.append(args))
    args = parse("--output_dir", tmp_path / "tiny-lm", "--hub_model_id", "me/tiny", "--hub_token", "t")
    push_to_hub(accelerator, args, "CARD", ["step_*", "tokenizer/*"])
    push_to_hub(accelerator, args, "CARD")
    assert pushed == [
        (tmp_path / "tiny-lm", "CARD", "me/tiny", "t", ["step_*", "tokenizer/*"]),
        (tmp_path / "tiny-lm", "CARD", "me/tiny", "t", ["step_*", "epoch_*", "*.tmp"]),
    ]
