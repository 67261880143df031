import json

import pytest
import torch
from gru_seq2seq_fixtures import SOURCES, TARGETS

from ulmfit.plotting import generation_attentions, plot_attention, plot_translation_attention


def encode(tokenizer, texts):
    return tokenizer(texts, padding=True, return_tensors="pt")


def manual_greedy(model, input_ids, attention_mask, steps):
    """One decoder step per token with the state carried, as a user would write the loop by hand."""
    config = model.config
    encoder_outputs = model.get_encoder()(input_ids, attention_mask)
    tokens = torch.full((input_ids.size(0), 1), config.decoder_start_token_id)
    finished = torch.zeros(input_ids.size(0), dtype=torch.bool)
    state = None
    for _ in range(steps):
        outputs = model(
            attention_mask=attention_mask,
            decoder_input_ids=tokens[:, -1:],
            encoder_outputs=encoder_outputs,
            state=state,
        )
        state = outputs.state
        next_tokens = outputs.logits[:, -1].argmax(-1).masked_fill(finished, config.pad_token_id)
        finished |= next_tokens == config.eos_token_id
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
        if finished.all():
            break
    return tokens


def sequence_log_probability(model, input_ids, attention_mask, sequences):
    """Sum of the model's log-probabilities of each generated sequence (up to its `xxeos`)."""
    labels = sequences[:, 1:].clone()
    with torch.no_grad():
        logits = model(input_ids, attention_mask, decoder_input_ids=sequences[:, :-1]).logits
    log_probs = logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    keep = torch.ones_like(labels, dtype=torch.bool)
    for row, tokens in enumerate(labels.tolist()):
        if model.config.eos_token_id in tokens:
            keep[row, tokens.index(model.config.eos_token_id) + 1 :] = False
    return (log_probs * keep).sum(-1)


def test_greedy_generate_equals_a_manual_decoding_loop(trained_model):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES[:5])
    generated = model.generate(**batch, do_sample=False, max_new_tokens=12)
    manual = manual_greedy(model, batch["input_ids"], batch["attention_mask"], steps=12)
    assert generated.tolist() == manual[:, : generated.size(1)].tolist()


def test_generation_learned_the_toy_translations(trained_model):
    model, tokenizer = trained_model
    generated = model.generate(**encode(tokenizer, SOURCES), do_sample=False, max_new_tokens=12)
    decoded = tokenizer.batch_decode(generated, skip_special_tokens=True)
    assert sum(d == t for d, t in zip(decoded, TARGETS)) >= len(TARGETS) // 2


def test_carried_state_equals_redecoding_the_prefix(trained_model):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES[:4])
    for num_beams in (1, 3):
        cached = model.generate(**batch, num_beams=num_beams, max_new_tokens=10)
        recomputed = model.generate(**batch, num_beams=num_beams, max_new_tokens=10, use_cache=False)
        assert cached.tolist() == recomputed.tolist()


def test_one_beam_equals_greedy(trained_model):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES[:6])
    greedy = model.generate(**batch, do_sample=False, max_new_tokens=10)
    one_beam = model.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=10)
    assert one_beam.tolist() == greedy.tolist()


def test_beam_search_scores_at_least_as_well_as_greedy(trained_model):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES)
    greedy = model.generate(**batch, do_sample=False, max_new_tokens=12)
    beam = model.generate(**batch, num_beams=4, length_penalty=0.0, max_new_tokens=12)
    greedy_score = sequence_log_probability(model, batch["input_ids"], batch["attention_mask"], greedy)
    beam_score = sequence_log_probability(model, batch["input_ids"], batch["attention_mask"], beam)
    assert bool((beam_score >= greedy_score - 1e-4).all())


def test_each_step_feeds_one_token_and_the_encoder_runs_once(trained_model):
    model, tokenizer = trained_model
    decoder_inputs, encoder_calls = [], []
    hooks = [
        model.model.decoder.gru.register_forward_hook(lambda module, args, out: decoder_inputs.append(args[0].shape)),
        model.model.encoder.gru.register_forward_hook(lambda module, args, out: encoder_calls.append(1)),
    ]
    try:
        for num_beams in (1, 3):
            decoder_inputs.clear()
            encoder_calls.clear()
            generated = model.generate(
                **encode(tokenizer, SOURCES[:3]), num_beams=num_beams, min_new_tokens=10, max_new_tokens=10
            )
            assert generated.size(1) == 11
            assert len(encoder_calls) == 1
            # one decoder GRU call of one time step per generated token, over batch * beams rows: O(1) per token
            assert decoder_inputs == [torch.Size([3 * num_beams, 1, model.config.embedding_size])] * 10
    finally:
        for hook in hooks:
            hook.remove()


def test_max_new_tokens_and_length_penalty_are_honoured(trained_model):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES[:4])
    assert model.generate(**batch, max_new_tokens=2).size(1) <= 3
    for penalty in (0.0, 1.0, 2.0):
        outputs = model.generate(
            **batch,
            num_beams=3,
            length_penalty=penalty,
            max_new_tokens=10,
            output_scores=True,
            return_dict_in_generate=True,
        )
        log_probability = sequence_log_probability(
            model, batch["input_ids"], batch["attention_mask"], outputs.sequences
        )
        eos = model.config.eos_token_id
        lengths = torch.tensor(
            [row.index(eos) + 1 if eos in row else len(row) for row in outputs.sequences[:, 1:].tolist()]
        )
        # beam search ranks by sum(log p) / length ** length_penalty
        torch.testing.assert_close(outputs.sequences_scores, log_probability / lengths**penalty, rtol=1e-4, atol=1e-4)


def test_generate_returns_the_attention_of_every_step(trained_model):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES[:3])
    outputs = model.generate(**batch, max_new_tokens=6, output_attentions=True, return_dict_in_generate=True)
    steps = outputs.sequences.size(1) - 1
    assert len(outputs.cross_attentions) == steps
    assert outputs.cross_attentions[0][0].shape == (3, 1, 1, batch["input_ids"].size(1))
    attention = generation_attentions(outputs)  # (batch, steps, source)
    assert attention.shape == (3, steps, batch["input_ids"].size(1))
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, steps))
    padded = batch["attention_mask"] == 0
    assert attention.masked_select(padded[:, None, :].expand_as(attention)).abs().sum() == 0


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_returns_what_the_config_asks_for(trained_model, num_beams):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES[:2])
    settings = {"max_new_tokens": 4, "num_beams": num_beams, "return_dict_in_generate": True}
    model.config.output_attentions = model.config.output_hidden_states = True
    try:
        outputs = model.generate(**batch, **settings)
        overridden = model.generate(**batch, **settings, output_attentions=False, output_hidden_states=False)
    finally:
        model.config.output_attentions = model.config.output_hidden_states = False
    steps = outputs.sequences.size(1) - 1
    assert len(outputs.cross_attentions) == len(outputs.decoder_hidden_states) == steps
    assert outputs.cross_attentions[0][0].shape == (2 * num_beams, 1, 1, batch["input_ids"].size(1))
    assert len(outputs.encoder_hidden_states) == 2
    assert overridden.cross_attentions is overridden.decoder_hidden_states is overridden.encoder_hidden_states is None
    plain = model.generate(**batch, **settings)
    assert plain.cross_attentions is plain.encoder_hidden_states is None


def test_beam_attentions_follow_the_chosen_beams(trained_model):
    model, tokenizer = trained_model
    batch = encode(tokenizer, SOURCES[:2])
    outputs = model.generate(
        **batch, num_beams=3, max_new_tokens=6, output_attentions=True, return_dict_in_generate=True
    )
    attention = generation_attentions(outputs)
    matches = []
    for row in range(2):  # recompute each chosen sequence's attention with one teacher-forced pass
        sequence = outputs.sequences[row : row + 1]
        weights = model(
            batch["input_ids"][row : row + 1],
            batch["attention_mask"][row : row + 1],
            decoder_input_ids=sequence[:, :-1],
            output_attentions=True,
        ).cross_attentions[0][0, 0]
        steps = int((outputs.beam_indices[row] >= 0).sum())
        matches.append(torch.allclose(weights[:steps], attention[row, :steps], atol=1e-5))
    assert all(matches)


def test_attention_heat_map_is_written(trained_model, tmp_path):
    pytest.importorskip("matplotlib")
    model, tokenizer = trained_model
    translation = plot_translation_attention(
        model, tokenizer, SOURCES[0], tmp_path / "attention.png", max_new_tokens=8
    )
    assert isinstance(translation, str)
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = plot_attention(torch.rand(2, 3), ["a", "b", "c"], ["x", "y"], tmp_path / "small.png", title="t")
    assert path.endswith("small.png")
    with pytest.raises(ValueError, match="matrix"):
        plot_attention(torch.rand(3), ["a"], ["x"], tmp_path / "bad.png")


def test_assisted_generation_is_refused_for_a_stateful_model(trained_model):
    model, tokenizer = trained_model
    with pytest.raises(ValueError, match="stateful"):
        model.generate(**encode(tokenizer, SOURCES[:1]), assistant_model=model, max_new_tokens=3)


def stuttering(tiny_model):
    """The random tiny model, made to prefer one word above all others (the stutter of an undertrained decoder)."""
    with torch.no_grad():
        tiny_model.lm_head.bias[7] = 50.0
    return tiny_model


def immediate_repeats(sequences, eos_token_id, pad_token_id):
    """How many rows repeat a token at once, before their end."""
    rows = 0
    for tokens in sequences[:, 1:].tolist():
        tokens = tokens[: tokens.index(eos_token_id)] if eos_token_id in tokens else tokens
        rows += any(a == b != pad_token_id for a, b in zip(tokens, tokens[1:]))
    return rows


@pytest.mark.parametrize("decoding", [{}, {"num_beams": 3}, {"do_sample": True, "top_k": 1}])
def test_a_word_never_follows_itself_unless_the_ban_is_turned_off(tiny_model, tokenizer, decoding):
    model = stuttering(tiny_model)
    batch = encode(tokenizer, SOURCES[:4])
    assert model.generation_config.no_immediate_repeat  # on for a new model
    ids = (model.config.eos_token_id, model.config.pad_token_id)
    banned = model.generate(**batch, max_new_tokens=8, **decoding)
    assert immediate_repeats(banned, *ids) == 0
    assert banned[:, 1].tolist() == [7] * 4 and 7 in banned[:, 3].tolist()  # the favourite word, every other step
    allowed = model.generate(**batch, max_new_tokens=8, no_immediate_repeat=False, **decoding)
    assert immediate_repeats(allowed, *ids) == 4 and allowed[:, 1:4].tolist() == [[7, 7, 7]] * 4


def test_the_ban_is_saved_with_the_model_and_off_in_older_folders(tiny_model, tokenizer, tmp_path):
    model = stuttering(tiny_model)
    batch = encode(tokenizer, SOURCES[:2])
    model.generation_config.no_immediate_repeat = False
    model.save_pretrained(tmp_path / "off")
    loaded = type(model).from_pretrained(tmp_path / "off")
    assert loaded.generation_config.no_immediate_repeat is False
    # a folder saved before the setting existed: its generation_config.json lacks it, and it decodes as it did
    saved = json.loads((tmp_path / "off" / "generation_config.json").read_text())
    del saved["no_immediate_repeat"]
    (tmp_path / "off" / "generation_config.json").write_text(json.dumps(saved))
    older = type(model).from_pretrained(tmp_path / "off")
    assert not hasattr(older.generation_config, "no_immediate_repeat")
    ids = (model.config.eos_token_id, model.config.pad_token_id)
    assert immediate_repeats(older.generate(**batch, max_new_tokens=6), *ids) == 2
    assert immediate_repeats(older.generate(**batch, max_new_tokens=6, no_immediate_repeat=True), *ids) == 0
    with pytest.raises(ValueError, match="no_immediate_repeat"):
        older.generate(**batch, max_new_tokens=6, no_immediate_repeat="yes")
