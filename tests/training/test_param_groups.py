import pytest
import torch

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM
from ulmfit.training import discriminative_learning_rates, discriminative_param_groups, freeze_to, unfreeze


@pytest.fixture
def model():
    return AwdLstmForCausalLM(AwdLstmConfig(vocab_size=40, embedding_size=8, hidden_size=12, num_hidden_layers=3))


def test_discriminative_rates_divide_by_2_6_per_group():
    assert discriminative_learning_rates(4, 1e-2) == pytest.approx([1e-2 / 2.6**3, 1e-2 / 2.6**2, 1e-2 / 2.6, 1e-2])


def test_param_groups_follow_layer_groups(model):
    groups = discriminative_param_groups(model, lr=1e-3, weight_decay=0.01)
    assert [len(g["params"]) for g in groups] == [len(g) for g in model.layer_groups()]
    assert groups[-1]["lr"] == 1e-3 and groups[0]["lr"] == pytest.approx(1e-3 / 2.6**3)
    torch.optim.AdamW(groups)  # every parameter once: the optimizer accepts them


def test_freeze_to_trains_only_the_last_groups(model):
    freeze_to(model, -1)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in model.layer_groups()[-1]}
    freeze_to(model, -2)
    assert all(p.requires_grad for p in model.layer_groups()[-2])
    assert not any(p.requires_grad for p in model.layer_groups()[0])
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="4 layer groups"):
        freeze_to(model, 7)
