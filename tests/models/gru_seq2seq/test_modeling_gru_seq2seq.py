import pytest
import torch
from gru_seq2seq_fixtures import SOURCES, TARGETS, make_config
from transformers import AutoModel, AutoModelForSeq2SeqLM

from ulmfit import GruSeq2SeqForConditionalGeneration, GruSeq2SeqModel, GruSeq2SeqState
from ulmfit.models.gru_seq2seq.modeling_gru_seq2seq import shift_tokens_right


def test_output_shapes(tiny_model, batch):
    outputs = tiny_model(**batch, output_attentions=True, output_hidden_states=True)
    batch_size, source_length = batch["input_ids"].shape
    target_length = batch["labels"].size(1)
    config = tiny_model.config
    assert outputs.logits.shape == (batch_size, target_length, config.decoder_vocab_size)
    assert outputs.encoder_last_hidden_state.shape == (batch_size, source_length, 2 * config.hidden_size)
    assert outputs.cross_attentions[0].shape == (batch_size, 1, target_length, source_length)
    assert outputs.state.hidden_state.shape == (config.num_hidden_layers, batch_size, config.embedding_size)
    assert outputs.state.attention_keys.shape == (batch_size, source_length, config.embedding_size)
    assert len(outputs.decoder_hidden_states) == 2 and len(outputs.encoder_hidden_states) == 2
    assert outputs.decoder_attentions is None


def test_architecture_follows_the_notebook(tiny_model):
    encoder, decoder = tiny_model.model.encoder, tiny_model.model.decoder
    assert encoder.gru.bidirectional and encoder.gru.num_layers == 2 and encoder.gru.dropout == 0.25
    assert (decoder.gru.input_size, decoder.gru.hidden_size, decoder.gru.dropout) == (16, 16, 0.1)
    assert decoder.input_projection.in_features == 16 + 2 * 12  # [embedding, context] -> embedding
    assert tiny_model.lm_head.weight is decoder.embed_tokens.weight  # tied, same storage
    assert tiny_model.lm_head.bias is not None


def test_labels_are_shifted_right_behind_the_start_token():
    labels = torch.tensor([[5, 6, 3, -100]])
    assert shift_tokens_right(labels, pad_token_id=1, decoder_start_token_id=2).tolist() == [[2, 5, 6, 3]]


def test_loss_is_finite_and_reaches_every_parameter(tiny_model, batch):
    tiny_model.train()
    loss = tiny_model(**batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    missing = [name for name, p in tiny_model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_loss_ignores_padded_targets(tiny_model, tokenizer):
    lone = tokenizer([SOURCES[0]], text_target=[TARGETS[0]], return_tensors="pt")
    padded = torch.nn.functional.pad(lone["labels"], (0, 3), value=tokenizer.pad_token_id)
    as_ignore = torch.nn.functional.pad(lone["labels"], (0, 3), value=-100)
    loss = tiny_model(**lone).loss
    torch.testing.assert_close(tiny_model(input_ids=lone["input_ids"], labels=padded).loss, loss)
    torch.testing.assert_close(tiny_model(input_ids=lone["input_ids"], labels=as_ignore).loss, loss)


def test_source_padding_does_not_change_results(tiny_model, tokenizer):
    batch = tokenizer(SOURCES[:3], text_target=TARGETS[:3], padding=True, return_tensors="pt")
    together = tiny_model(**batch, output_attentions=True)
    for row in range(3):
        alone = tokenizer([SOURCES[row]], text_target=[TARGETS[row]], return_tensors="pt")
        single = tiny_model(**alone, output_attentions=True)
        length, source_length = single.logits.size(1), alone["input_ids"].size(1)
        torch.testing.assert_close(together.logits[row, :length], single.logits[0], rtol=1e-5, atol=1e-5)
        weights = together.cross_attentions[0][row, 0, :length]
        torch.testing.assert_close(weights[:, :source_length], single.cross_attentions[0][0, 0])
        assert weights[:, source_length:].abs().sum() == 0  # padded source positions get no attention


def test_teacher_forcing_fast_path_equals_the_step_by_step_path(tiny_model, batch):
    fast = tiny_model(**batch).logits
    # below 1.0 the output layer runs inside the loop; so close to 1.0 every draw still feeds the gold word
    stepwise = tiny_model(**batch, teacher_forcing_ratio=1.0 - 1e-9).logits
    torch.testing.assert_close(stepwise, fast)


def test_decoding_in_chunks_with_the_state_carried_equals_one_pass(tiny_model, batch):
    decoder_input_ids = tiny_model.prepare_decoder_input_ids_from_labels(batch["labels"])
    whole = tiny_model(batch["input_ids"], batch["attention_mask"], decoder_input_ids=decoder_input_ids)
    first = tiny_model(batch["input_ids"], batch["attention_mask"], decoder_input_ids=decoder_input_ids[:, :3])
    rest = tiny_model(
        attention_mask=batch["attention_mask"],
        decoder_input_ids=decoder_input_ids[:, 3:],
        encoder_outputs=tiny_model.get_encoder()(batch["input_ids"], batch["attention_mask"]),
        state=first.state,
    )
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], dim=1), whole.logits)
    torch.testing.assert_close(rest.state.hidden_state, whole.state.hidden_state)


def test_no_teacher_forcing_decodes_like_greedy_generation(trained_model):
    model, tokenizer = trained_model
    batch = tokenizer(SOURCES[:3], text_target=TARGETS[:3], padding=True, return_tensors="pt")
    free_running = model(**batch, teacher_forcing_ratio=0.0).logits.argmax(-1)  # (batch, target)
    greedy = model.generate(
        batch["input_ids"],
        attention_mask=batch["attention_mask"],
        do_sample=False,
        max_new_tokens=free_running.size(1),
    )[:, 1:]
    for row in range(3):
        produced = greedy[row].tolist()
        length = produced.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in produced else len(produced)
        assert free_running[row, :length].tolist() == produced[:length]


def test_scheduled_sampling_changes_inputs_only_below_one(tiny_model, batch):
    torch.manual_seed(0)
    sampled = tiny_model(**batch, teacher_forcing_ratio=0.0).logits
    assert not torch.allclose(sampled, tiny_model(**batch).logits)


def test_eval_is_deterministic_and_dropout_acts_in_training(tiny_model, batch):
    torch.testing.assert_close(tiny_model(**batch).logits, tiny_model(**batch).logits, rtol=0, atol=0)
    tiny_model.train()
    assert not torch.allclose(tiny_model(**batch).logits, tiny_model(**batch).logits)


def test_save_and_load_give_identical_outputs(tiny_model, batch, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, GruSeq2SeqForConditionalGeneration)
    assert loaded.lm_head.weight is loaded.model.decoder.embed_tokens.weight
    torch.testing.assert_close(loaded(**batch).logits, tiny_model(**batch).logits, rtol=0, atol=0)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, GruSeq2SeqModel)
    torch.testing.assert_close(
        base(
            **{k: batch[k] for k in ("input_ids", "attention_mask")}, decoder_input_ids=batch["labels"]
        ).last_hidden_state,
        tiny_model.model(
            batch["input_ids"], batch["attention_mask"], decoder_input_ids=batch["labels"]
        ).last_hidden_state,
    )


def test_word_embeddings_start_from_the_notebooks_initialisation(tokenizer):
    torch.manual_seed(0)
    model = GruSeq2SeqForConditionalGeneration(make_config(tokenizer, embedding_size=64, hidden_size=200))
    assert abs(model.model.encoder.embed_tokens.weight[2:].std().item() - 1.0) < 0.1  # nn.Embedding's N(0, 1)
    assert model.model.decoder.embed_tokens.weight[1].abs().sum() == 0  # padding row
    key = model.model.decoder.attention.key_projection.weight  # rand_p: randn / sqrt(2 * hidden)
    assert abs(key.std().item() - 400**-0.5) < 0.005


def test_state_reordering_selects_rows(tiny_model, batch):
    state = tiny_model(**batch).state
    reordered = tiny_model._reorder_cache(state, torch.tensor([2, 2, 0, 1]))
    assert isinstance(reordered, GruSeq2SeqState)
    torch.testing.assert_close(reordered.hidden_state[:, 0], state.hidden_state[:, 2])
    torch.testing.assert_close(reordered.attention_keys[3], state.attention_keys[1])


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"input_ids": torch.tensor([[5, 99999]])}, ValueError, "input_ids"),
        ({"input_ids": torch.tensor([[5.0, 6.0]])}, TypeError, "integer"),
        ({"attention_mask": torch.tensor([[0, 1]])}, ValueError, "right-padded"),
        ({"attention_mask": torch.tensor([[0, 0]])}, ValueError, "at least one token"),
        ({"labels": torch.tensor([[99999, 3]])}, ValueError, "labels"),
        ({"labels": None}, ValueError, "decoder_input_ids"),
        ({"teacher_forcing_ratio": 1.5}, ValueError, "teacher_forcing_ratio"),
        ({"labels": torch.tensor([[5, 3], [6, 3]])}, ValueError, "rows"),
        ({"decoder_input_ids": torch.tensor([[2, 5, 6]])}, ValueError, "same length"),
    ],
)
def test_bad_inputs_raise_clear_errors(tiny_model, changes, error, message):
    inputs = {
        "input_ids": torch.tensor([[5, 6]]),
        "attention_mask": torch.tensor([[1, 1]]),
        "labels": torch.tensor([[5, 3]]),
    }
    with pytest.raises(error, match=message):
        tiny_model(**{**inputs, **changes})
