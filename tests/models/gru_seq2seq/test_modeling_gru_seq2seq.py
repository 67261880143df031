import warnings

import pytest
import torch
from gru_seq2seq_fixtures import SOURCES, TARGETS, make_config
from transformers import AutoModel, AutoModelForSeq2SeqLM

from ulmfit import GruSeq2SeqForConditionalGeneration, GruSeq2SeqModel, GruSeq2SeqState, GruSeq2SeqTokenizer
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


def base_model_inputs(batch):
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "decoder_input_ids": batch["labels"],
    }


@pytest.mark.parametrize("model_class", [GruSeq2SeqModel, GruSeq2SeqForConditionalGeneration])
def test_output_flags_come_from_the_config_unless_passed(tokenizer, batch, model_class):
    torch.manual_seed(0)
    model = model_class(make_config(tokenizer)).eval()
    inputs = base_model_inputs(batch) if model_class is GruSeq2SeqModel else batch
    plain = model(**inputs)
    assert (plain.cross_attentions, plain.encoder_hidden_states, plain.decoder_hidden_states) == (None, None, None)

    model.config.output_attentions = True
    model.config.output_hidden_states = True
    outputs = model(**inputs)
    assert outputs.cross_attentions[0].shape[:2] == (batch["input_ids"].size(0), 1)
    assert len(outputs.encoder_hidden_states) == 2 and len(outputs.decoder_hidden_states) == 2
    assert len(model.get_encoder()(batch["input_ids"], batch["attention_mask"]).hidden_states) == 2

    overridden = model(**inputs, output_attentions=False, output_hidden_states=False)
    assert (overridden.cross_attentions, overridden.encoder_hidden_states, overridden.decoder_hidden_states) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("model_class", [GruSeq2SeqModel, GruSeq2SeqForConditionalGeneration])
def test_return_dict_comes_from_the_config_unless_passed(tokenizer, batch, model_class):
    model = model_class(make_config(tokenizer, return_dict=False)).eval()
    inputs = base_model_inputs(batch) if model_class is GruSeq2SeqModel else batch
    as_tuple = model(**inputs)
    assert isinstance(as_tuple, tuple)
    as_dict = model(**inputs, return_dict=True)
    torch.testing.assert_close(as_tuple[0], as_dict[0])


def test_resize_token_embeddings_resizes_the_source_side_only(tiny_model, batch):
    config = tiny_model.config
    source_size, target_size = config.vocab_size, config.decoder_vocab_size
    old_source = tiny_model.get_input_embeddings().weight.detach().clone()
    old_target = tiny_model.lm_head.weight.detach().clone()
    before = tiny_model(**batch).logits

    embeddings = tiny_model.resize_token_embeddings(source_size + 5)
    assert embeddings is tiny_model.model.encoder.embed_tokens
    assert embeddings.weight.shape == (source_size + 5, config.embedding_size)
    assert (config.vocab_size, config.decoder_vocab_size) == (source_size + 5, target_size)
    assert tiny_model.lm_head.weight.shape == tiny_model.model.decoder.embed_tokens.weight.shape == old_target.shape
    assert tiny_model.lm_head.bias.shape == (target_size,)
    assert tiny_model.lm_head.weight is tiny_model.model.decoder.embed_tokens.weight
    torch.testing.assert_close(embeddings.weight[:source_size], old_source)
    torch.testing.assert_close(tiny_model(**batch).logits, before)  # known words translate as before
    new_ids = torch.tensor([[source_size + 4, tiny_model.config.eos_token_id]])
    assert tiny_model.generate(new_ids, max_new_tokens=3).shape[0] == 1
    assert tiny_model.resize_token_embeddings(pad_to_multiple_of=8).weight.size(0) % 8 == 0


@pytest.mark.parametrize("tie_word_embeddings", [True, False])
def test_resize_decoder_token_embeddings_resizes_the_target_side(tokenizer, batch, tmp_path, tie_word_embeddings):
    torch.manual_seed(0)
    model = GruSeq2SeqForConditionalGeneration(make_config(tokenizer, tie_word_embeddings=tie_word_embeddings)).eval()
    config = model.config
    source_size, target_size = config.vocab_size, config.decoder_vocab_size
    old_bias = model.lm_head.bias.detach().clone()
    old_output = model.lm_head.weight.detach().clone()
    before = model(**batch).logits

    embeddings = model.resize_decoder_token_embeddings(target_size + 3)
    assert embeddings is model.model.decoder.embed_tokens
    assert (config.vocab_size, config.decoder_vocab_size) == (source_size, target_size + 3)
    assert model.model.config.decoder_vocab_size == target_size + 3
    assert embeddings.weight.shape == model.lm_head.weight.shape == (target_size + 3, config.embedding_size)
    assert model.lm_head.bias.shape == (target_size + 3,)
    assert (model.lm_head.weight is embeddings.weight) == tie_word_embeddings
    torch.testing.assert_close(model.lm_head.bias[:target_size], old_bias)
    torch.testing.assert_close(model.lm_head.weight[:target_size], old_output)
    after = model(**batch).logits
    assert after.shape[-1] == target_size + 3
    torch.testing.assert_close(after[..., :target_size], before)  # old words keep their scores

    labels = batch["labels"].clone()
    labels[:, 0] = target_size + 2  # a word only the resized model knows
    assert torch.isfinite(
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    )
    generated = model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=4)
    assert generated.size(0) == batch["input_ids"].size(0)

    model.save_pretrained(tmp_path)
    loaded = GruSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.decoder_vocab_size == target_size + 3
    assert (loaded.lm_head.weight is loaded.model.decoder.embed_tokens.weight) == tie_word_embeddings
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    # the same weights, but loaded at another memory alignment: the matmul kernels may round differently
    torch.testing.assert_close(loaded(**batch).logits, after)


def test_an_extended_target_vocabulary_works_after_resizing_the_decoder(tiny_model, tokenizer):
    extended = GruSeq2SeqTokenizer(
        source_vocab=tokenizer.source_tokens, target_vocab=tokenizer.target_tokens + ["zebra"]
    )
    tiny_model.resize_decoder_token_embeddings(extended.target_vocab_size)
    batch = extended([SOURCES[0]], text_target=["I have a zebra."], return_tensors="pt")
    assert extended.target_vocab["zebra"] in batch["labels"][0].tolist()
    assert torch.isfinite(tiny_model(**batch).loss)


def test_the_base_model_resizes_its_decoder_embedding(tokenizer, batch):
    model = GruSeq2SeqModel(make_config(tokenizer)).eval()
    target_size = model.config.decoder_vocab_size
    model.resize_decoder_token_embeddings(target_size + 2)
    assert model.decoder.embed_tokens.weight.size(0) == model.config.decoder_vocab_size == target_size + 2
    decoder_input_ids = torch.full_like(batch["labels"], target_size + 1)
    assert model(batch["input_ids"], batch["attention_mask"], decoder_input_ids=decoder_input_ids).state is not None


@pytest.mark.parametrize("resize", ["resize_token_embeddings", "resize_decoder_token_embeddings"])
def test_resizing_below_the_special_tokens_is_refused(tiny_model, resize):
    with pytest.raises(ValueError, match="special tokens"):
        getattr(tiny_model, resize)(3)


def gradients(tokenizer, batch, teacher_forcing_ratio, checkpointing_kwargs=None):
    torch.manual_seed(0)
    model = GruSeq2SeqForConditionalGeneration(make_config(tokenizer)).train()  # dropout on: masks must replay
    gru_calls = []
    model.model.decoder.gru.register_forward_pre_hook(lambda *args: gru_calls.append(1))
    if checkpointing_kwargs is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers 5.25 renames it activation_checkpointing_*
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing_kwargs)
        assert model.model.encoder.gradient_checkpointing and model.model.decoder.gradient_checkpointing
    torch.manual_seed(1)
    model(**batch, teacher_forcing_ratio=teacher_forcing_ratio).loss.backward()
    return {name: parameter.grad for name, parameter in model.named_parameters()}, len(gru_calls)


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("teacher_forcing_ratio", [1.0, 0.5])
def test_gradient_checkpointing_gives_the_same_gradients(tokenizer, batch, use_reentrant, teacher_forcing_ratio):
    expected, plain_calls = gradients(tokenizer, batch, teacher_forcing_ratio)
    actual, checkpointed_calls = gradients(tokenizer, batch, teacher_forcing_ratio, {"use_reentrant": use_reentrant})
    assert checkpointed_calls == 2 * plain_calls  # every decoder step ran again in the backward pass
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], msg=name)


def test_gradient_checkpointing_is_off_in_eval_and_can_be_disabled(tiny_model, batch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tiny_model.gradient_checkpointing_enable()
        before = tiny_model(**batch).logits  # eval: runs as usual
        tiny_model.gradient_checkpointing_disable()
    assert not tiny_model.model.encoder.gradient_checkpointing and not tiny_model.model.decoder.gradient_checkpointing
    torch.testing.assert_close(tiny_model(**batch).logits, before)


def test_an_encoder_bidirectional_in_its_first_layer_only(tokenizer, batch, tmp_path):
    # Google's NMT: one bidirectional layer, the ones above unidirectional at twice the width
    torch.manual_seed(0)
    model = GruSeq2SeqForConditionalGeneration(
        make_config(tokenizer, num_hidden_layers=3, encoder_bidirectional_layers=1)
    )
    encoder = model.model.encoder
    assert encoder.gru.num_layers == 1 and encoder.gru.bidirectional
    assert encoder.upper_gru.num_layers == 2 and not encoder.upper_gru.bidirectional
    assert encoder.upper_gru.hidden_size == 2 * model.config.hidden_size
    model.eval()
    outputs = model.get_encoder()(batch["input_ids"], batch["attention_mask"])
    assert outputs.final_hidden_state.shape == (batch["input_ids"].size(0), 3, 2 * model.config.hidden_size)
    # the top layer's final state is its output at each sentence's last real token
    last = batch["attention_mask"].sum(1) - 1
    top = outputs.last_hidden_state[torch.arange(len(last)), last]
    torch.testing.assert_close(outputs.final_hidden_state[:, -1], top)
    # padding changes nothing, and the model saves and loads as it is
    alone = tokenizer([SOURCES[0]], return_tensors="pt")
    torch.testing.assert_close(
        model.get_encoder()(**alone).final_hidden_state[0], outputs.final_hidden_state[0], rtol=1e-5, atol=1e-5
    )
    model.save_pretrained(tmp_path)
    reloaded = GruSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
    assert reloaded.config.encoder_bidirectional_layers == 1


def test_the_default_encoder_keeps_its_weight_names(tiny_model):
    # all-bidirectional (the notebook's model): checkpoints saved before the option existed load unchanged
    assert tiny_model.model.encoder.upper_gru is None
    assert not [name for name in tiny_model.state_dict() if "upper_gru" in name]


@pytest.mark.parametrize("value", [0, 3, 1.5, True])
def test_encoder_bidirectional_layers_must_be_a_layer_count(tokenizer, value):
    with pytest.raises(ValueError, match="encoder_bidirectional_layers"):
        make_config(tokenizer, encoder_bidirectional_layers=value)
