import pytest
import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmForSequenceClassification, AwdLstmModel
from ulmfit.models.awd_lstm.modeling_awd_lstm import (
    CheckpointSizeMismatchError,
    EmbeddingDropout,
    LockedDropout,
    WeightDroppedLstm,
)


VOCAB = 50


def make_model(**overrides) -> AwdLstmForCausalLM:
    torch.manual_seed(0)
    config = AwdLstmConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=24, num_hidden_layers=3, **overrides)
    return AwdLstmForCausalLM(config).eval()


def random_ids(batch_size=3, length=11, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(9, VOCAB, (batch_size, length), generator=generator)


def no_dropout():
    names = ("embedding_dropout", "input_dropout", "weight_dropout", "hidden_dropout", "output_dropout")
    return dict.fromkeys(names, 0.0)


def test_output_shapes_and_state_layout():
    model = make_model()
    outputs = model(random_ids(), output_hidden_states=True)
    assert outputs.logits.shape == (3, 11, VOCAB)
    assert outputs.last_hidden_state.shape == (3, 11, 16)
    assert [tuple(h.shape) for h, _ in outputs.state] == [(3, 24), (3, 24), (3, 16)]
    assert len(outputs.hidden_states) == 4  # embeddings + 3 layers


def test_layer_sizes_follow_fastai():
    model = make_model()
    sizes = [(layer.lstm.input_size, layer.lstm.hidden_size) for layer in model.awd_lstm.layers]
    assert sizes == [(16, 24), (24, 24), (24, 16)]


def test_decoder_is_tied_to_the_embedding_and_has_a_bias():
    model = make_model()
    assert model.lm_head.weight is model.awd_lstm.embed_tokens.weight
    assert model.lm_head.bias is not None


def test_untied_config_gives_separate_weights():
    model = make_model(tie_word_embeddings=False, lm_head_bias=False)
    assert model.lm_head.weight is not model.awd_lstm.embed_tokens.weight
    assert model.lm_head.bias is None


def test_eval_is_deterministic():
    model = make_model()
    ids = random_ids()
    torch.testing.assert_close(model(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_whole_sequence_equals_chunks_with_state_carried():
    model = make_model()
    ids = random_ids(length=20)
    with torch.no_grad():
        whole = model(ids)
        state, logits = None, []
        for chunk in ids.split(6, dim=1):
            out = model(chunk, state=state)
            logits.append(out.logits)
            state = out.state
    torch.testing.assert_close(torch.cat(logits, 1), whole.logits, rtol=0, atol=1e-5)
    for (h, c), (h_ref, c_ref) in zip(state, whole.state):
        torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(c, c_ref, rtol=0, atol=1e-5)


def test_left_and_right_padding_equal_each_sequence_alone():
    model = make_model()
    short, long = random_ids(1, 5, seed=2)[0], random_ids(1, 9, seed=3)[0]
    for side in ("left", "right"):
        batch = torch.full((2, 9), 1)
        mask = torch.zeros(2, 9, dtype=torch.long)
        span = slice(4, 9) if side == "left" else slice(0, 5)
        batch[0, span], mask[0, span] = short, 1
        batch[1], mask[1] = long, 1
        with torch.no_grad():
            padded = model(batch, attention_mask=mask)
            alone = model(short[None])
        torch.testing.assert_close(padded.logits[0, span], alone.logits[0], rtol=0, atol=1e-5)
        for (h, _), (h_alone, _) in zip(padded.state, alone.state):
            torch.testing.assert_close(h[0], h_alone[0], rtol=0, atol=1e-5)
        assert padded.last_hidden_state[0, mask[0] == 0].abs().max() == 0


def test_an_all_padding_row_keeps_its_state():
    model = make_model()
    ids = random_ids(2, 6)
    with torch.no_grad():
        first = model(ids)
        mask = torch.tensor([[0] * 4, [1] * 4])
        second = model(random_ids(2, 4, seed=5), attention_mask=mask, state=first.state)
    for (h, c), (h_before, c_before) in zip(second.state, first.state):
        torch.testing.assert_close(h[0], h_before[0], rtol=0, atol=0)
        torch.testing.assert_close(c[0], c_before[0], rtol=0, atol=0)
        assert not torch.equal(h[1], h_before[1])


def test_mask_with_padding_between_tokens_is_rejected():
    model = make_model()
    with pytest.raises(ValueError, match="contiguous"):
        model(random_ids(1, 5), attention_mask=torch.tensor([[1, 0, 1, 1, 1]]))


def record_lstm_runs(model):
    """
    (layer, path, columns, id of the hidden-to-hidden matrix) for every LSTM run of each layer; path is "fused" (the
    sequence kernel), "packed" (step by step) or "zero-held" (leading padding through the fused kernel).
    """
    calls = []
    for index, layer in enumerate(model.awd_lstm.layers):
        run, run_holding_zero = layer._run, layer._run_holding_zero

        def spy(inputs, state, weight_hh, index=index, run=run):
            packed = isinstance(inputs, nn.utils.rnn.PackedSequence)
            columns = int(inputs.batch_sizes.numel()) if packed else inputs.size(1)
            calls.append((index, "packed" if packed else "fused", columns, weight_hh.data_ptr()))
            return run(inputs, state, weight_hh)

        def spy_zero(inputs, state, weight_hh, padding, index=index, run=run_holding_zero):
            calls.append((index, "zero-held", inputs.size(1), weight_hh.data_ptr()))
            return run(inputs, state, weight_hh, padding)

        layer._run, layer._run_holding_zero = spy, spy_zero
    return calls


def padded_batch(rows, side):
    length = max(len(row) for row in rows)
    batch, mask = torch.ones(len(rows), length, dtype=torch.long), torch.zeros(len(rows), length, dtype=torch.long)
    spans = []
    for i, row in enumerate(rows):
        span = slice(length - len(row), length) if side == "left" else slice(0, len(row))
        batch[i, span], mask[i, span] = row, 1
        spans.append(span)
    return batch, mask, spans


def test_padding_takes_the_fused_kernel_where_it_can_and_the_result_is_each_row_alone():
    rows = [random_ids(1, n, seed=n)[0] for n in (12, 9, 7)]
    # right padding: the 7 columns real in every row are fused, the 5 after them packed (the state must not move);
    # left padding from a zero state: the 5 padded columns are fused too, holding the state at zero
    for side, expected in (("right", [("fused", 7), ("packed", 5)]), ("left", [("zero-held", 5), ("fused", 7)])):
        model = make_model()
        batch, mask, spans = padded_batch(rows, side)
        calls = record_lstm_runs(model)
        with torch.no_grad():
            padded = model(batch, attention_mask=mask)
        assert [(path, columns) for layer, path, columns, _ in calls if layer == 0] == expected
        for i, (row, span) in enumerate(zip(rows, spans)):
            with torch.no_grad():
                alone = model(row[None])
            torch.testing.assert_close(padded.logits[i, span], alone.logits[0], rtol=0, atol=1e-5)
            for (h, c), (h_alone, c_alone) in zip(padded.state, alone.state):
                torch.testing.assert_close(h[i], h_alone[0], rtol=0, atol=1e-5)
                torch.testing.assert_close(c[i], c_alone[0], rtol=0, atol=1e-5)
        assert padded.last_hidden_state[mask == 0].abs().max() == 0


def test_chunks_of_a_left_padded_batch_hold_the_state_at_zero_while_a_row_is_all_padding():
    model = make_model()
    rows = [random_ids(1, 10, seed=1)[0], random_ids(1, 3, seed=2)[0]]
    batch, mask, _ = padded_batch(rows, "left")  # row 1 is padding in columns 0-6
    calls = record_lstm_runs(model)
    state, outputs = None, []
    with torch.no_grad():
        for start in (0, 4, 8):  # BPT3C-style chunks, state carried
            out = model.awd_lstm(batch[:, start : start + 4], attention_mask=mask[:, start : start + 4], state=state)
            state, outputs = out.state, [*outputs, out.last_hidden_state]
            if start == 0:  # row 1 saw only padding: its state is still exactly zero
                assert all(not tensor[1].any() for pair in state for tensor in pair)
        # chunk 1: row 1 all padding, no column real in every row: one fused call holding row 1 at zero;
        # chunk 2: 3 padded columns held at zero, then the full column; chunk 3: no padding
        assert [(path, columns) for layer, path, columns, _ in calls if layer == 0] == [
            ("zero-held", 4),
            ("zero-held", 3),
            ("fused", 1),
            ("fused", 2),
        ]
        hidden = torch.cat(outputs, 1)
        for i, row in enumerate(rows):
            alone = model.awd_lstm(row[None])
            torch.testing.assert_close(hidden[i, 10 - len(row) :], alone.last_hidden_state[0], rtol=0, atol=1e-5)
            for (h, c), (h_alone, c_alone) in zip(state, alone.state):
                torch.testing.assert_close(h[i], h_alone[0], rtol=0, atol=1e-5)
                torch.testing.assert_close(c[i], c_alone[0], rtol=0, atol=1e-5)


def test_left_padding_after_a_nonzero_state_takes_the_packed_path():
    model = make_model()
    rows = [random_ids(1, n, seed=n)[0] for n in (8, 5)]
    prefix = random_ids(2, 4, seed=3)
    batch, mask, spans = padded_batch(rows, "left")
    with torch.no_grad():
        state = model(prefix).state
        calls = record_lstm_runs(model)
        padded = model(batch, attention_mask=mask, state=state)
        assert [(path, columns) for layer, path, columns, _ in calls if layer == 0] == [("packed", 3), ("fused", 5)]
        for i, (row, span) in enumerate(zip(rows, spans)):
            alone = model(row[None], state=tuple((h[i : i + 1], c[i : i + 1]) for h, c in state))
            torch.testing.assert_close(padded.logits[i, span], alone.logits[0], rtol=0, atol=1e-5)


def test_a_padded_batch_trains_as_each_row_alone_with_one_weight_dropout_mask_per_call():
    model = make_model(**no_dropout())
    model.train()
    rows = [random_ids(1, n, seed=n)[0] for n in (10, 6)]
    for side in ("left", "right"):
        batch, mask, _ = padded_batch(rows, side)
        # the gradient flows through the state between the segments (nothing is detached)
        model.zero_grad()
        model(batch, attention_mask=mask).last_hidden_state.pow(2).sum().backward()
        padded_grads = [p.grad.clone() for p in model.awd_lstm.parameters()]
        model.zero_grad()
        for row in rows:
            model(row[None]).last_hidden_state.pow(2).sum().backward()
        for padded_grad, p in zip(padded_grads, model.awd_lstm.parameters()):
            torch.testing.assert_close(padded_grad, p.grad, rtol=1e-4, atol=1e-6)

    model = make_model(weight_dropout=0.5)
    model.train()
    calls = record_lstm_runs(model)
    model(*padded_batch(rows, "right")[:2])
    model(*padded_batch(rows, "left")[:2])
    for index, layer in enumerate(model.awd_lstm.layers):
        runs = [call for call in calls if call[0] == index]
        assert [path for _, path, _, _ in runs] == ["fused", "packed", "zero-held", "fused"]
        for first, second in (runs[:2], runs[2:]):  # the segments of one call share the one dropped matrix
            assert first[3] == second[3] != layer.lstm.weight_hh_l0.data_ptr()


def test_loss_is_cross_entropy_in_eval_and_adds_ar_tar_in_training():
    model = make_model(**no_dropout())
    ids = random_ids()
    eval_out = model(ids, labels=ids)
    expected_ce = nn.functional.cross_entropy(eval_out.logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(eval_out.loss, expected_ce)

    model.train()  # no dropout configured, so only AR and TAR change the loss
    train_out = model(ids, labels=ids)
    raw = train_out.last_hidden_state
    ar = 2.0 * raw.pow(2).mean()
    tar = 1.0 * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
    torch.testing.assert_close(train_out.loss, expected_ce + ar + tar, rtol=1e-5, atol=1e-6)


def test_shift_labels_keeps_the_last_position():
    model = make_model()
    stream = random_ids(2, 13)
    inputs, targets = stream[:, :-1], stream[:, 1:]
    out = model(inputs, labels=targets, shift_labels=targets)
    expected = nn.functional.cross_entropy(out.logits.reshape(-1, VOCAB), targets.reshape(-1))
    torch.testing.assert_close(out.loss, expected)


def test_padding_is_ignored_by_the_loss():
    model = make_model()
    ids = random_ids(1, 8)
    padded = torch.cat([torch.ones(1, 3, dtype=torch.long), ids], 1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 8, dtype=torch.long)], 1)
    torch.testing.assert_close(model(padded, attention_mask=mask, labels=padded).loss, model(ids, labels=ids).loss)


def test_backward_reaches_every_trainable_parameter():
    model = make_model().train()
    ids = random_ids()
    model(ids, labels=ids).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert all(layer.lstm.weight_hh_l0.grad.abs().sum() > 0 for layer in model.awd_lstm.layers)


def test_weight_dropout_runs_the_fused_lstm_kernel():
    model = make_model().train()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        model(random_ids())
    names = [event.name for event in profile.events()]
    assert names.count("aten::lstm") == 3  # one fused call per layer, no Python loop over time steps
    assert "aten::lstm_cell" not in names


def test_one_time_step_runs_the_lstm_cell_kernel_and_equals_the_sequence_kernel():
    model = make_model()
    ids = random_ids(length=7)
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        whole = model(ids)
        state, logits = None, []
        for step in ids.split(1, dim=1):
            out = model(step, state=state)
            logits.append(out.logits)
            state = out.state
    names = [event.name for event in profile.events()]
    assert names.count("aten::lstm") == 3 and names.count("aten::lstm_cell") == 7 * 3
    torch.testing.assert_close(torch.cat(logits, 1), whole.logits, rtol=0, atol=1e-5)
    for (h, c), (h_ref, c_ref) in zip(state, whole.state):
        torch.testing.assert_close(torch.stack([h, c]), torch.stack([h_ref, c_ref]), rtol=0, atol=1e-5)

    # in training, the one-step path applies DropConnect too, and its gradient reaches the raw weight
    layer = WeightDroppedLstm(4, 6, weight_dropout=0.5).train()
    inputs, zeros = torch.randn(2, 1, 4), (torch.zeros(1, 2, 6), torch.zeros(1, 2, 6))
    torch.manual_seed(3)
    dropped = layer(inputs, zeros)[0]
    torch.manual_seed(3)
    mask = nn.functional.dropout(torch.ones_like(layer.lstm.weight_hh_l0), p=0.5)
    h_zero_reference = torch.lstm_cell(
        inputs[:, 0],
        (zeros[0][0], zeros[1][0]),
        layer.lstm.weight_ih_l0,
        layer.lstm.weight_hh_l0 * mask,
        layer.lstm.bias_ih_l0,
        layer.lstm.bias_hh_l0,
    )[0]
    torch.testing.assert_close(dropped[:, 0], h_zero_reference)
    dropped.sum().backward()
    assert layer.lstm.weight_ih_l0.grad is not None


def test_weight_dropout_masks_recurrent_weights_only_in_training():
    torch.manual_seed(0)
    layer = WeightDroppedLstm(4, 6, weight_dropout=0.5)
    inputs, state = torch.randn(2, 5, 4), (torch.zeros(1, 2, 6), torch.zeros(1, 2, 6))
    raw = layer.lstm.weight_hh_l0.detach().clone()
    layer.eval()
    torch.testing.assert_close(layer(inputs, state)[0], layer.lstm(inputs, state)[0])
    layer.train()
    assert not torch.allclose(layer(inputs, state)[0], layer.lstm(inputs, state)[0])
    torch.testing.assert_close(layer.lstm.weight_hh_l0, raw)  # the raw weight is never overwritten


def test_embedding_dropout_drops_whole_words_and_rescales():
    torch.manual_seed(0)
    dropout = EmbeddingDropout(0.5).train()
    ids = torch.tensor([[3, 3, 4, 4, 5, 5, 6, 6] * 4])
    embeds = torch.ones(1, 32, 8)
    out = dropout(embeds, ids, vocab_size=10)
    for word in (3, 4, 5, 6):
        rows = out[ids == word]
        assert torch.all(rows == 0) or torch.all(rows == 2.0)  # every occurrence shares one draw, kept rows x1/(1-p)
    assert torch.equal(dropout.eval()(embeds, ids, vocab_size=10), embeds)


def test_locked_dropout_shares_one_mask_across_time():
    torch.manual_seed(0)
    dropout = LockedDropout(0.5).train()
    out = dropout(torch.ones(4, 7, 10))
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(dropout.eval()(torch.ones(4, 7, 10)), torch.ones(4, 7, 10))


def test_layer_groups_cover_every_parameter_once_in_ulmfit_order():
    model = make_model()
    groups = model.layer_groups()
    assert len(groups) == 4
    assert groups[0] == list(model.awd_lstm.layers[0].parameters())
    last = [id(p) for p in groups[-1]]
    assert id(model.awd_lstm.embed_tokens.weight) in last and id(model.lm_head.bias) in last
    flat = [id(p) for group in groups for p in group]
    assert len(flat) == len(set(flat)) == len(list(model.parameters()))


def test_save_and_reload_gives_identical_outputs_with_safetensors_only(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt*"))
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, AwdLstmForCausalLM)
    assert reloaded.lm_head.weight is reloaded.awd_lstm.embed_tokens.weight
    ids = random_ids()
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_encoder_loads_from_a_language_model_folder(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path)
    encoder = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(encoder, AwdLstmModel)
    ids = random_ids()
    torch.testing.assert_close(encoder(ids).last_hidden_state, model(ids).last_hidden_state, rtol=0, atol=0)


def test_checkpoint_with_another_vocabulary_size_fails_clearly(tmp_path):
    make_model().save_pretrained(tmp_path)
    config = AwdLstmConfig.from_pretrained(tmp_path)
    config.vocab_size = VOCAB + 8
    # transformers raises RuntimeError on a size mismatch: callers that catch it catch ours, with the clearer message
    with pytest.raises(RuntimeError, match=f"vocabulary of {VOCAB} tokens.*vocab_size={VOCAB + 8}") as raised:
        AwdLstmForCausalLM.from_pretrained(tmp_path, config=config)
    assert isinstance(raised.value, CheckpointSizeMismatchError) and isinstance(raised.value, ValueError)


def test_ids_outside_the_vocabulary_fail_clearly():
    model = make_model()
    with pytest.raises(ValueError, match="vocabulary has 50 tokens"):
        model(torch.tensor([[3, 4, VOCAB + 7]]))
    with pytest.raises(TypeError, match="integer"):
        model(torch.rand(1, 4))


def test_a_100k_token_document_runs_in_one_call():
    model = make_model()
    ids = torch.randint(9, VOCAB, (1, 100_000))
    with torch.no_grad():
        outputs = model.awd_lstm(ids)
    assert outputs.last_hidden_state.shape == (1, 100_000, 16)
    assert torch.isfinite(outputs.last_hidden_state).all()


def test_greedy_generate_matches_a_manual_greedy_loop():
    model = make_model()
    prompt = random_ids(1, 6)
    generated = model.generate(prompt, max_new_tokens=8, do_sample=False)
    ids = prompt
    with torch.no_grad():
        for _ in range(8):
            next_id = model(ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_id], 1)
    assert torch.equal(generated, ids)


def test_generate_scores_equal_rereading_the_whole_text():
    # Continuous scores catch a state that is not carried between steps (a greedy argmax on a random model may not).
    model = make_model()
    prompt = random_ids(2, 6)
    out = model.generate(prompt, max_new_tokens=5, do_sample=False, output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        reread = model(out.sequences[:, :-1]).logits[:, prompt.size(1) - 1 :]
    torch.testing.assert_close(torch.stack(out.scores, dim=1), reread, rtol=1e-4, atol=1e-5)


def test_beam_search_scores_equal_rereading_the_chosen_beams():
    model = make_model()
    out = model.generate(
        random_ids(1, 6),
        max_new_tokens=5,
        num_beams=3,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        length_penalty=0.0,
    )
    with torch.no_grad():
        log_probs = model(out.sequences).logits[:, 5:-1].log_softmax(-1)
    chosen = log_probs.gather(-1, out.sequences[:, 6:, None]).sum()
    torch.testing.assert_close(out.sequences_scores[0], chosen, rtol=1e-4, atol=1e-4)


def test_assisted_generation_is_refused():
    model = make_model()
    with pytest.raises(ValueError, match="stateful"):
        model.generate(random_ids(1, 6), assistant_model=model, max_new_tokens=3)


def test_generate_feeds_one_token_per_step():
    model = make_model()
    lengths = []
    hook = model.awd_lstm.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    model.generate(random_ids(2, 7), max_new_tokens=6, do_sample=False)
    hook.remove()
    assert lengths == [7] + [1] * 5  # the prompt once, then O(1) work per new token


def test_batched_left_padded_generation_equals_one_prompt_at_a_time():
    model = make_model()
    prompts = [random_ids(1, n, seed=n)[0] for n in (3, 8, 5)]
    width = max(len(p) for p in prompts)
    batch = torch.stack([torch.cat([torch.ones(width - len(p), dtype=torch.long), p]) for p in prompts])
    mask = torch.stack([torch.cat([torch.zeros(width - len(p)), torch.ones(len(p))]).long() for p in prompts])
    batched = model.generate(batch, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=1)
    for row, prompt in zip(batched, prompts):
        alone = model.generate(prompt[None], max_new_tokens=6, do_sample=False)
        assert torch.equal(row[width:], alone[0, len(prompt) :])


def test_generate_without_a_mask_treats_only_leading_pad_ids_as_padding():
    # transformers would mask every pad id; an RNN reads a row as one run, so a pad id after the first token is a token
    model = make_model()
    prompts = [random_ids(1, n, seed=n)[0] for n in (3, 6)]
    batch = torch.stack([torch.cat([torch.ones(6 - len(p), dtype=torch.long), p]) for p in prompts])
    batch[1, 2] = 1  # the pad id inside the second prompt
    inferred = model.generate(batch, max_new_tokens=4, do_sample=False, pad_token_id=1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    given = model.generate(batch, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=1)
    assert torch.equal(inferred, given)
    alone = model.generate(prompts[0][None], max_new_tokens=4, do_sample=False)
    assert torch.equal(inferred[0, 6:], alone[0, 3:])


@pytest.mark.parametrize("head", ["lm", "classifier"])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(head):
    def loss_and_gradients(checkpointing):
        model = make_model() if head == "lm" else AwdLstmForSequenceClassification(make_model().config)
        model.train()
        if checkpointing and head == "lm":
            with pytest.warns(FutureWarning):  # transformers 5.25's name for it is `activation_checkpointing_enable`
                model.gradient_checkpointing_enable()
        elif checkpointing:
            model.activation_checkpointing_enable()
        assert all(layer.gradient_checkpointing == checkpointing for layer in model.awd_lstm.layers)
        ids = random_ids(4, 12)
        labels = ids if head == "lm" else torch.tensor([0, 1, 1, 0])
        layer, calls = model.awd_lstm.layers[1], []
        run = layer._forward
        layer._forward = lambda *args, **kwargs: calls.append(1) or run(*args, **kwargs)
        torch.manual_seed(3)  # the same dropout masks in both runs
        loss = model(ids, labels=labels).loss
        loss.backward()
        return loss, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}, len(calls)

    loss, gradients, calls = loss_and_gradients(False)
    checkpointed_loss, checkpointed_gradients, checkpointed_calls = loss_and_gradients(True)
    torch.testing.assert_close(checkpointed_loss, loss, rtol=0, atol=1e-6)
    assert checkpointed_gradients.keys() == gradients.keys() and len(gradients) > 5
    for name, gradient in gradients.items():
        torch.testing.assert_close(checkpointed_gradients[name], gradient, rtol=1e-5, atol=1e-6, msg=name)
    assert checkpointed_calls > calls  # the layers ran again in the backward pass


def test_beam_search_and_sampling():
    model = make_model()
    prompt = random_ids(2, 5)
    beams = model.generate(prompt, max_new_tokens=6, num_beams=3, do_sample=False, num_return_sequences=2)
    assert beams.shape == (4, 11)
    torch.manual_seed(0)
    sampled = model.generate(prompt, max_new_tokens=6, do_sample=True, top_k=5)
    assert sampled.shape == (2, 11) and torch.equal(sampled[:, :5], prompt)
