import pytest
import torch

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM
from ulmfit.training import discriminative_param_groups
from ulmfit.training.recipe import Stage, apply_config_overrides, language_model_stages, make_scheduler, start_stage


def test_language_model_plan_is_ulmfit_when_fine_tuning():
    tuned = language_model_stages(fine_tuning=True, num_train_epochs=10, learning_rate=2e-3)
    assert tuned == [Stage("frozen", 1, 2e-2, freeze_to=-1), Stage("all", 10, 2e-3, discriminative_factor=2.6)]
    assert language_model_stages(fine_tuning=False, num_train_epochs=3, learning_rate=1e-3) == [Stage("all", 3, 1e-3)]


def test_start_stage_freezes_and_spreads_learning_rates():
    model = AwdLstmForCausalLM(AwdLstmConfig(vocab_size=30, embedding_size=8, hidden_size=12, num_hidden_layers=3))
    optimizer = torch.optim.AdamW(discriminative_param_groups(model, 1.0))
    start_stage(model, optimizer, Stage("frozen", 1, 0.02, freeze_to=-1))
    assert [g["lr"] for g in optimizer.param_groups] == [0.02] * 4
    assert [any(p.requires_grad for p in g) for g in model.layer_groups()] == [False, False, False, True]
    start_stage(model, optimizer, Stage("all", 1, 0.01, discriminative_factor=2.6))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 / 2.6**3)
    assert all(p.requires_grad for p in model.parameters())


def test_config_overrides_cast_to_the_field_types():
    config = apply_config_overrides(AwdLstmConfig(), "hidden_size=64, weight_dropout=0.5,tie_word_embeddings=false")
    assert (config.hidden_size, config.weight_dropout, config.tie_word_embeddings) == (64, 0.5, False)
    with pytest.raises(ValueError, match="hidden isn't in the original config"):
        apply_config_overrides(AwdLstmConfig(), "hidden=3")
    with pytest.raises(ValueError, match="weight_dropout"):  # the config's own check sees the new value
        apply_config_overrides(AwdLstmConfig(), "weight_dropout=1.5")


def test_config_overrides_set_optional_fields_that_are_unset():
    from ulmfit import GruSeq2SeqConfig

    config = apply_config_overrides(GruSeq2SeqConfig(), "encoder_bidirectional_layers=1, hidden_size=128")
    assert (config.encoder_bidirectional_layers, config.hidden_size) == (1, 128)
    with pytest.raises(ValueError, match="encoder_bidirectional_layers"):
        apply_config_overrides(GruSeq2SeqConfig(), "encoder_bidirectional_layers=3")


def test_unknown_schedule_is_named():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="cosine"):
        make_scheduler("cosine", optimizer, 10)


def test_a_subword_vocabulary_takes_the_rows_of_the_words_its_pieces_spell():
    from ulmfit import AwdLstmForCausalLM
    from ulmfit.training.language_modeling import match_embeddings

    old_vocab = {"xxunk": 0, "xxpad": 1, "the": 2, "movie": 3}
    model = AwdLstmForCausalLM(AwdLstmConfig(vocab_size=4, embedding_size=8, hidden_size=8, pad_token_id=1))
    old = model.get_input_embeddings().weight.detach().clone()
    counts = match_embeddings(model, old_vocab, {"xxunk": 0, "xxpad": 1, "▁the": 2, "▁mov": 3, "ie": 4})
    assert counts == {"kept": 2, "spelled": 1, "new": 2}
    new = model.get_input_embeddings().weight
    torch.testing.assert_close(new[2], old[2])  # "▁the" from "the"
    torch.testing.assert_close(new[3], old.mean(0))  # no word "mov": the mean row
