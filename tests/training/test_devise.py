import io
from types import SimpleNamespace

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from torch.nn import functional as F

from ulmfit import DeviseImageProcessor
from ulmfit.training.devise import (
    ImageRows,
    backbone_features,
    build_devise_data,
    class_synonyms,
    embed_validation,
    evaluate_embeddings,
    feature_cache_key,
    image_collator,
    image_processor_for,
    load_image_datasets,
    parse_unseen_classes,
)


WORDS = ["the", "goldfish", "fire", "salamander", "boat", "bird", "house", "tabby", "cat", "dog"]
NAMES = ["goldfish", "fire salamander", "boat", "birdhouse", "tabby cat, tabby", "axolotl"]


def png(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (12, 12), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def vectors(tmp_path):
    rng = np.random.default_rng(0)
    lines = [f"{len(WORDS)} 4"] + [f"{word} " + " ".join(f"{v:.4f}" for v in rng.normal(size=4)) for word in WORDS]
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def splits_with_labels(train: list, validation: list, feature=None) -> dict[str, datasets.Dataset]:
    features = datasets.Features({"image": datasets.Value("binary"), "label": feature or datasets.Value("int64")})
    return {
        split: datasets.Dataset.from_dict({"image": [b"x"] * len(labels), "label": labels}, features=features)
        for split, labels in (("train", train), ("validation", validation))
    }


def test_unseen_classes_come_from_a_comma_list_or_a_file_in_any_case(tmp_path):
    names = ["goldfish", "boat", "Tabby cat"]
    assert parse_unseen_classes(None, names) == []
    assert parse_unseen_classes(" tabby CAT , goldfish", names) == [0, 2]
    listed = tmp_path / "unseen.txt"
    listed.write_text("boat\n\n")
    assert parse_unseen_classes(str(listed), names) == [1]


@pytest.mark.parametrize(
    "value, message",
    [
        (" , ", "names no class"),
        ("goldfsh", r"unknown classes .*'goldfsh': \['goldfish'\]"),
        ("boat,goldfish", "every"),
    ],
)
def test_bad_unseen_class_lists_fail_clearly(value, message):
    with pytest.raises(ValueError, match=message):
        parse_unseen_classes(value, ["goldfish", "boat"])


def test_class_names_come_from_a_file_with_synonyms(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("goldfish\ntabby cat, tabby\n")
    synonyms, labels = class_synonyms(splits_with_labels([1, 0], [0]), "label", str(path))
    assert synonyms == [["goldfish"], ["tabby cat", "tabby"]]
    assert labels == {"train": [1, 0], "validation": [0]}


def test_class_names_come_from_a_class_label_or_from_string_labels():
    synonyms, labels = class_synonyms(
        splits_with_labels([1], [0], datasets.ClassLabel(names=["fish", "boat"])), "label"
    )
    assert (synonyms, labels) == ([["fish"], ["boat"]], {"train": [1], "validation": [0]})
    strings = splits_with_labels(["dog", "boat"], ["dog"], datasets.Value("string"))
    assert class_synonyms(strings, "label") == ([["boat"], ["dog"]], {"train": [1, 0], "validation": [1]})


def test_class_ids_without_names_or_out_of_range_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="ids without names; .*--class_names"):
        class_synonyms(splits_with_labels([0], [1]), "label")
    path = tmp_path / "classes.txt"
    path.write_text("goldfish\nboat\n")
    with pytest.raises(ValueError, match=r"validation labels \[7\] are not among the 2 class names"):
        class_synonyms(splits_with_labels([0], [7]), "label", str(path))


def test_devise_data_holds_unseen_classes_out_of_training_and_drops_classes_without_vectors(tmp_path, vectors):
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(NAMES) + "\n")
    splits = splits_with_labels([0, 1, 2, 3, 4, 5, 0], [5, 4, 3, 2, 1, 0])
    arguments = {"class_names": str(path), "unseen_classes": "boat"}
    with pytest.raises(ValueError, match=r"No word of these class names has a vector .*\['axolotl'\]"):
        build_devise_data(splits, "image", "label", str(vectors), None, **arguments)

    data = build_devise_data(
        splits, "image", "label", str(vectors), None, drop_classes_without_vectors=True, **arguments
    )
    assert data.names == ["goldfish", "fire salamander", "boat", "birdhouse", "tabby cat"]
    assert (data.seen, data.unseen, data.dropped) == ([0, 1, 3, 4], [2], ["axolotl"])
    assert data.vocabulary.borrowed == {"birdhouse": "bird + house"}
    assert (data.train.rows, data.train.labels) == ([0, 1, 3, 4, 6], [0, 1, 2, 3, 0])  # positions among `seen`
    assert (data.validation.rows, data.validation.labels) == ([1, 2, 3, 4, 5], [4, 3, 2, 1, 0])  # class ids


def test_image_datasets_from_a_csv_of_relative_paths_hold_out_a_validation_share(tmp_path):
    (tmp_path / "images").mkdir()
    rows = ["path,animal"]
    for index in range(10):
        (tmp_path / "images" / f"{index}.png").write_bytes(png())
        rows.append(f"images/{index}.png,{['boat', 'dog'][index % 2]}")
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n")
    splits = load_image_datasets(
        "path", "animal", train_file=str(tmp_path / "pets.csv"), validation_split_percentage=20, max_train_samples=5
    )
    assert (len(splits["train"]), len(splits["validation"])) == (5, 2)
    assert all(path.startswith(str(tmp_path / "images")) for path in splits["validation"]["path"])


def test_image_datasets_leave_image_features_undecoded_and_name_bad_sources(tmp_path):
    table = {"image": [{"bytes": png(), "path": None}] * 2, "label": [0, 1]}
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(tmp_path / "train.parquet"))
    splits = load_image_datasets(
        train_file=str(tmp_path / "train.parquet"), validation_file=str(tmp_path / "train.parquet")
    )
    assert splits["train"].features["image"].decode is False
    assert isinstance(splits["validation"][0]["image"]["bytes"], bytes)
    with pytest.raises(ValueError, match="exactly one of"):
        load_image_datasets(train_file=str(tmp_path / "train.parquet"), train_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--validation_file"):
        load_image_datasets(train_file=str(tmp_path / "train.parquet"), validation_file=str(tmp_path / "no.parquet"))
    with pytest.raises(ValueError, match=r"Column\(s\) \['picture'\] not in the train data"):
        load_image_datasets("picture", train_file=str(tmp_path / "train.parquet"))


def test_image_collator_decodes_a_batch_and_names_a_file_it_cannot_read():
    images = [
        {"bytes": png(), "path": None},
        {"bytes": png((0, 0, 200)), "path": "b.png"},
        {"bytes": b"bad", "path": "c.png"},
    ]
    dataset = datasets.Dataset.from_dict(
        {"image": images}, features=datasets.Features({"image": datasets.Image(decode=False)})
    )
    processor = DeviseImageProcessor(size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8})
    images = ImageRows(dataset, "image", labels=[3, 1], rows=[1, 0])
    batch = image_collator(processor, "train")([images[0], images[1]])
    assert batch["pixel_values"].shape == (2, 3, 8, 8)
    assert batch["labels"].tolist() == [3, 1] and batch["rows"].tolist() == [1, 0]
    broken = ImageRows(dataset, "image", labels=[0], rows=[2])
    with pytest.raises(ValueError, match=r"Cannot read validation image 2 \(c\.png\)"):
        image_collator(processor, "validation")([broken[0]])


def test_image_processor_for_a_backbone_without_one_uses_imagenet_statistics(tmp_path):
    processor = image_processor_for(str(tmp_path), None)
    assert processor.crop_size == {"height": 224, "width": 224}
    assert image_processor_for(str(tmp_path), 32).size == {"shortest_edge": 32}


def test_the_feature_cache_key_follows_the_backbone_preprocessing_and_rows(tmp_path):
    dataset = datasets.Dataset.from_dict({"image": [b"a", b"b"]})
    processor = DeviseImageProcessor()
    key = feature_cache_key(str(tmp_path), processor, dataset, [0, 1])
    assert key == feature_cache_key(str(tmp_path), processor, dataset, [0, 1]) and len(key) == 20
    assert key != feature_cache_key(str(tmp_path), processor, dataset, [1])
    assert key != feature_cache_key("microsoft/resnet-50", processor, dataset, [0, 1])
    (tmp_path / "model.safetensors").write_bytes(b"new weights")
    assert key != feature_cache_key(str(tmp_path), processor, dataset, [0, 1])


def test_backbone_features_are_written_to_the_cache_and_read_back(tmp_path):
    calls = []

    def get_backbone_features(pixel_values):
        calls.append(pixel_values.shape[0])
        return (pixel_values.flatten(1),)

    model = SimpleNamespace(eval=lambda: None, get_backbone_features=get_backbone_features)
    loader = [{"pixel_values": torch.ones(2, 3)}, {"pixel_values": torch.zeros(1, 3)}]
    cache = tmp_path / "cache" / "features.safetensors"
    features = backbone_features(model, loader, "cpu", cache, "features")
    assert features.shape == (3, 3) and calls == [2, 1]
    torch.testing.assert_close(backbone_features(model, loader, "cpu", cache, "features"), features)
    assert calls == [2, 1]  # the second time, from the cache


def test_validation_embeddings_are_computed_in_eval_mode_and_gathered():
    class Head(torch.nn.Module):
        def forward(self, image_features):
            assert not self.training
            return SimpleNamespace(image_embeds=2 * image_features)

    gathered = []
    accelerator = SimpleNamespace(gather_for_metrics=lambda values: gathered.append(values) or values)
    loader = [{"image_features": torch.eye(2), "labels": torch.tensor([1, 0]), "rows": torch.tensor([5, 6])}] * 2
    head = Head()
    embeds, labels, rows = embed_validation(head, loader, accelerator)
    torch.testing.assert_close(embeds, 2 * torch.eye(2).repeat(2, 1))
    assert labels.tolist() == [1, 0, 1, 0] and rows.tolist() == [5, 6, 5, 6]
    assert len(gathered) == 2 and head.training  # one gather per batch; back in training mode


def test_embeddings_on_their_class_vectors_score_every_metric_perfectly():
    class_vectors = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    labels = torch.tensor([0, 1, 2, 3])
    results = evaluate_embeddings(class_vectors[labels], labels, class_vectors, unseen=[2, 3])
    assert results.pop("cosine_loss") == pytest.approx(0.0, abs=1e-6)
    assert set(results.values()) == {1.0}
    assert set(results) == {
        "seen_top1",
        "seen_top5",
        "zero_shot_hit@1",
        "zero_shot_hit@5",
        "generalized_hit@1",
        "generalized_hit@5",
        "generalized_unseen_hit@5",
    }
