"""scripts/train_devise.py, run for real on tiny generated images, a tiny word-vector file and a tiny backbone."""

import io
import json
import shutil

import numpy as np
import PIL.Image
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from huggingface_hub import ModelCard
from resume_helpers import TRACKING_ARGS, assert_same_run, resume
from safetensors.torch import load_file
from transformers import pipeline

from ulmfit import DeviseModel, EfficientNetLiteConfig, EfficientNetLiteModel
from ulmfit.model_card import check_hub_metadata


CLASSES = ["goldfish", "fire salamander", "boat", "birdhouse", "tabby cat, tabby", "dog"]
COLOURS = [(220, 120, 0), (200, 30, 30), (30, 30, 200), (120, 80, 40), (150, 150, 150), (30, 160, 30)]
WORDS = ["the", "goldfish", "fire", "salamander", "boat", "bird", "house", "tabby", "cat", "dog", "ship", "engine"]
UNSEEN = "tabby cat,dog"


def png(colour, rng, mode: str = "RGB") -> bytes:
    pixels = np.clip(np.array(colour) + rng.integers(-40, 40, (20, 20, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def write_images(path, per_class: int, seed: int):
    """A parquet split as the shared Tiny-ImageNet one: raw image bytes and int labels; one greyscale, one RGBA."""
    rng = np.random.default_rng(seed)
    modes = {1: "L", 2: "RGBA"}
    cells = [(label, colour) for label, colour in enumerate(COLOURS) for _ in range(per_class)]
    images = [png(colour, rng, modes.get(index, "RGB")) for index, (_, colour) in enumerate(cells)]
    pq.write_table(pa.table({"image": images, "label": [label for label, _ in cells]}), path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Parquet splits (4 + 2 images per class), class names, 8-d word vectors and a tiny EfficientNet-Lite folder."""
    folder = tmp_path_factory.mktemp("devise-data")
    write_images(folder / "train.parquet", per_class=4, seed=0)
    write_images(folder / "validation.parquet", per_class=2, seed=1)
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    rng = np.random.default_rng(0)
    lines = [f"{len(WORDS)} 8"] + [f"{word} " + " ".join(f"{v:.4f}" for v in rng.normal(size=8)) for word in WORDS]
    (folder / "vectors.txt").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    config = EfficientNetLiteConfig(
        stem_channels=8,
        kernel_sizes=[3, 5],
        strides=[1, 2],
        expand_ratios=[1, 4],
        out_channels=[8, 16],
        num_block_repeats=[1, 1],
        hidden_dim=16,
    )
    EfficientNetLiteModel(config).save_pretrained(folder / "backbone")
    return folder


@pytest.fixture
def script(load_script):
    return load_script("train_devise")


def common_args(data, *extra):
    return [
        "--train_file",
        data / "train.parquet",
        "--validation_file",
        data / "validation.parquet",
        "--class_names",
        data / "classes.txt",
        "--word_vectors",
        data / "vectors.txt",
        "--backbone_checkpoint",
        data / "backbone",
        "--image_size",
        32,
        "--head_hidden_size",
        16,
        "--per_device_train_batch_size",
        4,
        "--per_device_eval_batch_size",
        8,
        "--num_train_epochs",
        2,
        "--learning_rate",
        1e-2,
        *extra,
    ]


def labelled_images(data) -> dict[bytes, tuple[str, int]]:
    """Every image of both splits, by its bytes: (split, class id)."""
    table = {}
    for split in ("train", "validation"):
        rows = pq.read_table(data / f"{split}.parquet").to_pydict()
        table.update({image: (split, label) for image, label in zip(rows["image"], rows["label"])})
    return table


def test_precomputed_run_saves_a_model_that_the_zero_shot_and_search_pipelines_load(script, data, tmp_path, capsys):
    out = tmp_path / "devise"
    cache = tmp_path / "cache"
    # the first 9 words of the file; "dog" (10th) is read by a second pass because a class needs it
    args = common_args(data, "--unseen_classes", UNSEEN, "--precompute", "--cache_dir", cache, "--max_words", 9)
    script([*args, "--output_dir", out])
    printed = capsys.readouterr().out
    assert "classes: 4 seen, 2 unseen ['tabby cat', 'dog']" in printed and "vocabulary: 12 words" in printed
    assert (out / "vocab.txt").read_text().split() == ["[PAD]", *WORDS[:9], "dog", "birdhouse"]
    assert "no vector for 'birdhouse': it borrows that of bird + house" in printed
    assert len(list(cache.glob("features-*.safetensors"))) == 2

    results = json.loads((out / "all_results.json").read_text())
    assert results["train_steps"] == 8 and results["train_images"] == 16 and results["validation_images"] == 12
    for name in ("seen_top1", "seen_top5", "zero_shot_hit@1", "zero_shot_hit@5", "generalized_hit@5"):
        assert 0 <= results[f"eval_{name}"] <= 1
    assert results["eval_zero_shot_hit@5"] == 1.0  # two unseen classes: both are always in the top 5
    log = json.loads((out / "training_log.json").read_text())
    assert [row["epoch"] for row in log] == [0, 1] and "generalized_unseen_hit@5" in log[-1]
    card = (out / "README.md").read_text()
    assert "pipeline_tag: zero-shot-image-classification" in card and "zero_shot_hit@5" in card
    assert "--unseen_classes 'tabby cat,dog'" in card  # the exact command
    loaded = ModelCard.load(out / "README.md")
    check_hub_metadata(loaded)  # the local backbone folder is not a base model
    assert loaded.data.base_model is None and f"`{data / 'backbone'}`" in loaded.text
    assert {(r.dataset_name, r.dataset_split) for r in loaded.data.eval_results} == {
        ("validation.parquet", "validation")
    }

    model = DeviseModel.from_pretrained(out)
    assert list(model.config.id2label.values()) == [
        "goldfish",
        "fire salamander",
        "boat",
        "birdhouse",
        "tabby cat",
        "dog",
    ]
    image = PIL.Image.open(io.BytesIO(next(iter(labelled_images(data)))))
    classify = pipeline("zero-shot-image-classification", model=str(out))
    ranked = classify(image, candidate_labels=list(model.config.id2label.values()))
    assert sorted(result["label"] for result in ranked) == sorted(model.config.id2label.values())
    search = pipeline("image-search", model=str(out), index=str(out / "validation_index.safetensors"))
    found = search("birdhouse", top_k=3)
    assert len(found) == 3 and all(0 <= result["id"] < 12 for result in found)
    assert search(image, top_k=1, target="words")[0]["word"] in {"the", *WORDS, "birdhouse"}


def test_with_tracking_starts_the_trackers_logs_every_evaluation_and_ends_them(script, data, tmp_path, tracking_calls):
    calls = tracking_calls
    out = tmp_path / "tracked"
    script([*common_args(data, "--precompute", "--num_train_epochs", 1), "--output_dir", out, *TRACKING_ARGS])
    names = [name for name, _ in calls]
    assert names[0] == "init_trackers" and names[-1] == "end_training" and "log" in names
    project, config = calls[0][1]
    assert project == "train_devise" and config["report_to"] == "tensorboard" and "hub_token" not in config
    assert all(isinstance(value, (int, float)) for name, args in calls if name == "log" for value in args[0].values())


def test_with_tracking_writes_tensorboard_event_files(script, data, tmp_path):
    out = tmp_path / "tracked"
    script([*common_args(data, "--precompute", "--num_train_epochs", 1), "--output_dir", out, *TRACKING_ARGS])
    assert list((out / "train_devise").rglob("events.out.tfevents.*"))


def test_bf16_mixed_precision_trains_and_scores_on_the_cpu(script, data, tmp_path):
    out = tmp_path / "devise"
    script([*common_args(data, "--unseen_classes", UNSEEN, "--mixed_precision", "bf16"), "--output_dir", out])
    results = json.loads((out / "all_results.json").read_text())
    assert 0 <= results["eval_seen_top1"] <= 1 and results["train_steps"] > 0
    assert DeviseModel.from_pretrained(out).dtype == torch.float32  # autocast keeps float32 weights


def test_unseen_classes_are_never_read_for_training_when_fine_tuning_the_whole_network(
    script, data, tmp_path, monkeypatch
):
    from ulmfit.training import devise

    opened, open_image = [], devise.open_image

    def spy(image, where="the image"):
        opened.append(image)
        return open_image(image, where)

    monkeypatch.setattr(devise, "open_image", spy)  # where the image collator looks it up
    out = tmp_path / "devise"
    script(common_args(data, "--unseen_classes", UNSEEN, "--num_train_epochs", 1, "--output_dir", out))
    images = labelled_images(data)
    read = [images[image] for image in opened if isinstance(image, bytes) and image in images]
    assert {label for split, label in read if split == "train"} == {0, 1, 2, 3}  # the four seen classes only
    assert {label for split, label in read if split == "validation"} == set(range(6))  # unseen ones evaluated
    backbone = load_file(data / "backbone" / "model.safetensors")
    trained = load_file(out / "model.safetensors")
    assert any(not torch.equal(trained[f"backbone.{name}"], tensor) for name, tensor in backbone.items())


def test_precomputed_features_train_the_head_as_the_frozen_backbone_does(script, data, tmp_path):
    runs = {}
    for mode in ("--precompute", "--freeze_backbone"):
        out = tmp_path / mode.strip("-")
        script(common_args(data, "--unseen_classes", UNSEEN, mode, "--output_dir", out))
        runs[mode] = (load_file(out / "model.safetensors"), json.loads((out / "training_log.json").read_text()))
    (precomputed, precomputed_log), (frozen, frozen_log) = runs.values()
    for name, tensor in frozen.items():
        torch.testing.assert_close(precomputed[name], tensor, rtol=1e-4, atol=1e-4, msg=name)
    for row, other in zip(precomputed_log, frozen_log):
        assert row == pytest.approx(other, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("mode", [["--precompute"], []], ids=["precomputed", "fine-tuned"])
def test_a_run_resumed_mid_epoch_or_at_an_epoch_boundary_ends_with_the_same_weights(
    script, data, tmp_path, capsys, mode
):
    args = common_args(data, "--unseen_classes", UNSEEN, *mode)
    reference = tmp_path / "reference"
    script([*args, "--output_dir", reference, "--checkpointing_steps", 1])
    # mid-epoch (dropout and drop-connect masks, batch order, one cycle), an epoch's end, mid-way through a later one
    for checkpoint in ("step_2", "step_4", "step_6"):
        capsys.readouterr()
        assert_same_run(resume(script, args, reference, checkpoint, tmp_path), reference)
        assert f"at optimizer step {checkpoint[5:]}" in capsys.readouterr().out


def test_a_class_without_word_vectors_fails_clearly_or_is_dropped_and_reported(script, data, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("goldfish\nfire newt\nboatyard, boat\nbirdhouse\ntabby cat, tabby\naxolotl\n")
    args = common_args(data, "--class_names", classes, "--unseen_classes", "tabby cat", "--precompute")
    with pytest.raises(ValueError, match=r"No word of these class names has a vector .*\['axolotl'\]"):
        script([*args, "--output_dir", tmp_path / "failed"])
    out = tmp_path / "dropped"
    script([*args, "--drop_classes_without_vectors", "--num_train_epochs", 1, "--output_dir", out])
    results = json.loads((out / "all_results.json").read_text())
    assert results["classes_without_vectors"] == ["axolotl"] and results["validation_images"] == 10
    assert results["borrowed_word_vectors"] == {
        "newt": "the rest of 'fire newt'",
        "boatyard": "synonym 'boat'",
        "birdhouse": "bird + house",
    }
    classify = pipeline("zero-shot-image-classification", model=str(out))
    labels = ["fire newt", "boatyard", "birdhouse", "goldfish"]
    assert len(classify(PIL.Image.new("RGB", (20, 20), "red"), candidate_labels=labels)) == 4


def test_a_corrupt_image_file_is_named(script, data, tmp_path):
    for split, per_class in (("train", 2), ("validation", 1)):
        for label, colour in enumerate(COLOURS):
            folder = tmp_path / split / CLASSES[label].split(",")[0].replace(" ", "_")
            folder.mkdir(parents=True)
            rng = np.random.default_rng(label)
            for index in range(per_class):
                (folder / f"{index}.png").write_bytes(png(colour, rng))
    (tmp_path / "train" / "boat" / "broken.png").write_bytes(b"\x89PNG truncated")
    args = common_args(data, "--precompute", "--output_dir", tmp_path / "out")
    args[: args.index("--word_vectors")] = [
        "--train_dir",
        tmp_path / "train",
        "--validation_dir",
        tmp_path / "validation",
    ]
    with pytest.raises(ValueError, match=r"Cannot read train image \d+ \(.*broken\.png\)"):
        script(args)


@pytest.mark.parametrize(
    "unseen, message",
    [
        ("", "names no class"),
        (" , ", "names no class"),
        ("tabby cat,unicorn", r"unknown classes .*'unicorn'"),
        (",".join(name.split(",")[0] for name in CLASSES), "every class"),
    ],
)
def test_bad_unseen_class_lists_fail_clearly(script, data, tmp_path, unseen, message):
    with pytest.raises(ValueError, match=message):
        script(common_args(data, "--unseen_classes", unseen, "--output_dir", tmp_path / "out"))


def test_a_csv_of_relative_image_paths_and_class_names_trains(script, data, tmp_path):
    rng, rows = np.random.default_rng(2), ["path,animal"]
    for index in range(12):
        label = ["goldfish", "boat", "dog"][index % 3]
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / f"{index}.png").write_bytes(png(COLOURS[index % 3], rng))
        rows.append(f"images/{index}.png,{label}")
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n")
    args = common_args(data, "--precompute", "--num_train_epochs", 1, "--output_dir", tmp_path / "out")
    args[: args.index("--word_vectors")] = ["--train_file", tmp_path / "pets.csv", "--image_column", "path"]
    script([*args, "--label_column", "animal", "--validation_split_percentage", 25, "--unseen_classes", "dog"])
    model = DeviseModel.from_pretrained(tmp_path / "out")
    assert list(model.config.id2label.values()) == ["boat", "dog", "goldfish"]  # the sorted label names
    assert json.loads((tmp_path / "out" / "all_results.json").read_text())["validation_images"] == 3


def test_class_ids_without_names_fail_clearly(script, data, tmp_path):
    args = common_args(data, "--output_dir", tmp_path / "out")
    del args[args.index("--class_names") : args.index("--class_names") + 2]
    with pytest.raises(ValueError, match="--class_names"):
        script(args)


def test_hinge_loss_run_on_a_dataset_by_name_is_pushed_model_then_card(script, data, tmp_path, fake_hub):
    remote, uploads = fake_hub
    out, dataset = tmp_path / "devise", tmp_path / "my-dataset"  # train + test splits: "test" validates
    dataset.mkdir()
    shutil.copy(data / "train.parquet", dataset / "train.parquet")
    shutil.copy(data / "validation.parquet", dataset / "test.parquet")
    args = common_args(data, "--unseen_classes", UNSEEN, "--precompute", "--loss", "hinge", "--num_train_epochs", 1)
    args[: args.index("--class_names")] = ["--dataset_name", dataset]
    script(
        [*args, "--output_dir", out, "--checkpointing_steps", "epoch", "--push_to_hub", "--hub_model_id", "me/devise"]
    )
    pushed = remote / "me" / "devise"
    assert uploads == ["folder", "README.md"]  # the card last, so that nothing overwrites it
    assert list(out.glob("epoch_*")) and not list(pushed.glob("epoch_*"))  # checkpoints stay local
    assert "model-index" in (pushed / "README.md").read_text()
    reloaded = DeviseModel.from_pretrained(pushed)
    assert reloaded.config.loss_type == "hinge_rank" and reloaded.config.num_labels == 6
    assert json.loads((out / "all_results.json").read_text())["validation_images"] == 12
