"""What the training scripts' tests share: resume a run from a checkpoint, compare two runs, the tracking flags."""

import json
import shutil

import torch
from safetensors.torch import load_file


def assert_same_run(resumed, reference):
    """Bit-identical weights and the same training log."""
    expected, actual = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    log = json.loads((reference / "training_log.json").read_text())
    assert json.loads((resumed / "training_log.json").read_text()) == log


def resume(script, args, reference, checkpoint, tmp_path):
    """Run the script again in a new folder holding only `checkpoint` of `reference`, resuming from it."""
    resumed = tmp_path / f"resumed-{checkpoint}"
    shutil.copytree(reference / checkpoint, resumed / checkpoint)
    script([*args, "--output_dir", resumed, "--resume_from_checkpoint", "latest"])
    return resumed


# The experiment-tracking flags every training script takes (transformers' `*_no_trainer` examples)
TRACKING_ARGS = ["--with_tracking", "--report_to", "tensorboard"]
