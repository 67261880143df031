import json

import pytest
import torch
from devise_fixtures import PROJECTION_DIM, random_images, tiny_lite_config, tiny_resnet_config
from safetensors.torch import load_file, save_file
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, AutoModelForZeroShotImageClassification, ViTConfig

from ulmfit import DeviseConfig, DeviseModel, EfficientNetLiteModel
from ulmfit.models.devise.modeling_devise import cosine_loss, hinge_rank_loss


def make_model(backbone_config=None, **kwargs) -> DeviseModel:
    torch.manual_seed(0)
    config = DeviseConfig(
        backbone_config=backbone_config or tiny_lite_config(),
        projection_dim=PROJECTION_DIM,
        head_hidden_size=12,
        **kwargs,
    )
    return DeviseModel(config)


def with_label_table(model: DeviseModel, num_labels: int = 4) -> torch.Tensor:
    table = torch.randn(num_labels, PROJECTION_DIM, generator=torch.Generator().manual_seed(1))
    model.set_label_embeddings(table, labels=[f"class {index}" for index in range(num_labels)])
    return table


VIT = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)


@pytest.mark.parametrize(
    "backbone_config", [tiny_lite_config(), tiny_resnet_config(), VIT], ids=["lite", "resnet", "vit"]
)
def test_image_embeds_are_unit_vectors_of_projection_dim(backbone_config, pixel_values):
    model = make_model(backbone_config).eval()
    with torch.no_grad():
        outputs = model(pixel_values=pixel_values)
    assert outputs.image_embeds.shape == (3, PROJECTION_DIM)
    torch.testing.assert_close(outputs.image_embeds.norm(dim=-1), torch.ones(3))
    assert outputs.pooler_output.shape == (3, 2 * model.config.backbone_hidden_size)  # max and mean pooled
    assert outputs.loss is None and outputs.logits_per_image is None


def test_concat_pooling_is_max_then_mean():
    feature_map = torch.arange(2 * 3 * 4, dtype=torch.float).reshape(1, 2, 3, 4)
    pooled = make_model().pooling(feature_map)
    torch.testing.assert_close(pooled, torch.tensor([[11.0, 23.0, 5.5, 17.5]]))


def test_eval_is_deterministic(pixel_values):
    model = make_model().eval()
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=pixel_values).image_embeds, model(pixel_values).image_embeds)


def test_cosine_loss_on_a_hand_made_case():
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    targets = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # cosines 1 and 0: the targets' length does not matter
    assert cosine_loss(images, targets).item() == pytest.approx(0.5)


def test_hinge_rank_loss_on_a_hand_made_case():
    image = torch.tensor([[1.0, 0.0]])
    candidates = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])  # cosines 1, 0.8, 0 to the image
    # label 0 beats every other label by more than the margin: no loss
    assert hinge_rank_loss(image, candidates, torch.tensor([0]), margin=0.1).item() == pytest.approx(0.0)
    # label 1 (0.8) is beaten by label 0 (1.0): 0.1 - 0.8 + 1.0; label 2 is far below: nothing
    assert hinge_rank_loss(image, candidates, torch.tensor([1]), margin=0.1).item() == pytest.approx(0.3)


def test_loss_with_class_ids_equals_loss_with_their_vectors(pixel_values):
    model = make_model().eval()
    table = with_label_table(model)
    labels = torch.tensor([2, 0, 2])
    with torch.no_grad():
        by_ids = model(pixel_values=pixel_values, labels=labels)
        by_vectors = model(pixel_values=pixel_values, label_embeds=table[labels])
    expected = 1 - F.cosine_similarity(by_ids.image_embeds, table[labels]).mean()
    torch.testing.assert_close(by_ids.loss, expected)
    torch.testing.assert_close(by_vectors.loss, expected)


def test_hinge_rank_loss_option_trains(pixel_values):
    model = make_model(loss_type="hinge_rank").train()
    with_label_table(model)
    loss = model(pixel_values=pixel_values, labels=torch.tensor([0, 1, 3])).loss
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.head.projection.weight.grad.abs().sum() > 0


def test_label_errors_are_clear(pixel_values):
    model = make_model().eval()
    with pytest.raises(ValueError, match="set_label_embeddings"):
        model(pixel_values=pixel_values, labels=torch.tensor([0, 0, 0]))
    with_label_table(model, num_labels=4)
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        model(pixel_values=pixel_values, labels=torch.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="label_embeds"):
        model(pixel_values=pixel_values, label_embeds=torch.randn(3, PROJECTION_DIM + 1))


def test_precomputed_features_give_the_full_path_outputs(pixel_values):
    model = make_model(freeze_backbone=True).eval()
    table = with_label_table(model)
    labels = torch.tensor([1, 2, 3])
    with torch.no_grad():
        full = model(pixel_values=pixel_values, label_embeds=table[labels])
        cached = model.get_backbone_features(pixel_values)[0]
        head_only = model(image_features=cached, label_embeds=table[labels])
    torch.testing.assert_close(head_only.image_embeds, full.image_embeds)
    torch.testing.assert_close(head_only.loss, full.loss)
    torch.testing.assert_close(cached, full.pooler_output)
    with pytest.raises(ValueError, match="image_features"):
        model(image_features=cached[:, :5])


def test_freeze_backbone_trains_the_head_only_and_keeps_batch_norm_statistics(pixel_values, tmp_path):
    model = make_model(freeze_backbone=True).train()
    with_label_table(model)
    statistics = model.backbone.embeddings.batchnorm.running_mean.clone()
    model(pixel_values=pixel_values, labels=torch.tensor([0, 1, 2])).loss.backward()
    assert all(parameter.grad is None for parameter in model.backbone.parameters())
    assert all(parameter.grad is not None for parameter in model.head.parameters())
    assert not model.backbone.training  # fastai's bn_freeze
    torch.testing.assert_close(model.backbone.embeddings.batchnorm.running_mean, statistics)

    model.save_pretrained(tmp_path)
    reloaded = DeviseModel.from_pretrained(tmp_path)
    assert not any(parameter.requires_grad for parameter in reloaded.backbone.parameters())

    model.unfreeze_backbone()
    model.zero_grad()
    model(pixel_values=pixel_values, labels=torch.tensor([0, 1, 2])).loss.backward()
    assert all(parameter.grad is not None for parameter in model.backbone.parameters())


def test_backward_reaches_every_trainable_parameter(pixel_values):
    model = make_model().train()
    with_label_table(model)
    model(pixel_values=pixel_values, labels=torch.tensor([0, 1, 2])).loss.backward()
    missing = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert not missing
    assert not any(name.startswith("word_embeddings") for name, _ in model.named_parameters())  # a frozen buffer


def test_text_features_average_unit_word_vectors(tiny_model, tokenizer):
    batch = tokenizer(["fire salamander", "boat", "Fire_Salamander."], padding=True, return_tensors="pt")
    features = tiny_model.get_text_features(batch["input_ids"], batch["attention_mask"])
    vectors = F.normalize(tiny_model.word_embeddings.weight, dim=-1)
    fire, salamander, boat = (tokenizer.convert_tokens_to_ids(word) for word in ("fire", "salamander", "boat"))
    torch.testing.assert_close(features[0], F.normalize(vectors[fire] + vectors[salamander], dim=0))
    torch.testing.assert_close(features[1], vectors[boat])  # padding does not count
    torch.testing.assert_close(features[2], features[0])


def test_text_errors_are_clear(tiny_model):
    with pytest.raises(ValueError, match="no words"):
        tiny_model.get_text_features(torch.tensor([[1, 0]]), torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="another model's tokenizer"):
        tiny_model.get_text_features(torch.tensor([[999]]))
    with pytest.raises(ValueError, match="vocab_size=0"):
        make_model().get_text_features(torch.tensor([[1]]))


def test_logits_per_image_are_scaled_cosines(tiny_model, tokenizer, pixel_values):
    texts = tokenizer(["goldfish", "boat", "engine + boat"], padding=True, return_tensors="pt")
    with torch.no_grad():
        outputs = tiny_model(pixel_values=pixel_values, **texts)
    assert outputs.logits_per_image.shape == (3, 3)
    expected = tiny_model.config.logit_scale * outputs.image_embeds @ outputs.text_embeds.T
    torch.testing.assert_close(outputs.logits_per_image, expected)
    torch.testing.assert_close(outputs.logits_per_text, expected.T)


def test_save_and_reload_gives_identical_outputs(tiny_model, tokenizer, pixel_values, tmp_path):
    with_label_table(tiny_model)
    tiny_model.save_pretrained(tmp_path)
    reloaded = DeviseModel.from_pretrained(tmp_path).eval()
    texts = tokenizer(["goldfish", "fire salamander"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = tiny_model(pixel_values=pixel_values, labels=torch.tensor([0, 1, 2]), **texts)
        after = reloaded(pixel_values=pixel_values, labels=torch.tensor([0, 1, 2]), **texts)
    for name in ("loss", "logits_per_image", "image_embeds", "text_embeds"):
        torch.testing.assert_close(getattr(after, name), getattr(before, name), rtol=0, atol=1e-6)
    assert reloaded.config.id2label == {0: "class 0", 1: "class 1", 2: "class 2", 3: "class 3"}
    assert (tmp_path / "model.safetensors").is_file()


def test_auto_classes_load_a_saved_model(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), DeviseConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), DeviseModel)
    assert isinstance(AutoModelForZeroShotImageClassification.from_pretrained(tmp_path), DeviseModel)


def test_head_batch_norm_statistics_are_initialised_when_missing_from_a_checkpoint(tiny_model, tmp_path):
    """transformers 5 initialises buffers only if `_init_weights` does; a head missing from a checkpoint needs it."""
    tiny_model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("head.")}, tmp_path / "model.safetensors")
    reloaded = DeviseModel.from_pretrained(tmp_path)
    for norm in (reloaded.head.norm_pooled, reloaded.head.norm_hidden):
        torch.testing.assert_close(norm.running_mean, torch.zeros_like(norm.running_mean))
        torch.testing.assert_close(norm.running_var, torch.ones_like(norm.running_var))
        assert norm.num_batches_tracked.item() == 0


def test_pretrained_backbone_is_loaded_and_saved_as_part_of_the_model(tmp_path):
    torch.manual_seed(3)
    backbone = EfficientNetLiteModel(tiny_lite_config())
    backbone.save_pretrained(tmp_path / "backbone")
    config = DeviseConfig(
        backbone=str(tmp_path / "backbone"), use_pretrained_backbone=True, projection_dim=PROJECTION_DIM
    )
    model = DeviseModel(config)
    for name, tensor in backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], tensor)
    model.save_pretrained(tmp_path / "devise")
    assert json.loads((tmp_path / "devise" / "config.json").read_text())["use_pretrained_backbone"] is False
    assert model.config.use_pretrained_backbone  # the in-memory config is left as it was


def test_random_images_fixture_is_not_constant():
    first, second = random_images(2)
    assert first.tobytes() != second.tobytes()
