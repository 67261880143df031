"""transformers' common model and generation tests (see tests/common_model_tests.py), applied to the GRU translator.

Hidden states differ by design from transformers' assumption of `num_hidden_layers + 1` tensors of one width: the
encoder is bidirectional (`2 * hidden_size` features), the decoder runs at `embedding_size`, and `nn.GRU` does not
expose the layers in between. With `E = embedding_size`, `H = hidden_size`, `B = batch_size`, `S` source and `T`
target positions:

- `encoder_hidden_states` = (embedded source `(B, S, E)`, top encoder layer, both directions `(B, S, 2H)`, zeros
  at padded source positions);
- `decoder_hidden_states` = (embedded decoder inputs `(B, T, E)`, top decoder layer `(B, T, E)`);
- `generate()`: `encoder_hidden_states` once per source, `(B, ...)` even with beams (transformers repeats the
  encoder's tensors per beam, not its tuple of hidden states), and one `decoder_hidden_states` tuple per step,
  `(B * num_beams, 1, E)` each (the state carries the rest).

The decoder's cross-attention is returned as one "layer" with one "head": `cross_attentions[0]` is
`(B, 1, T, S)`; a recurrent decoder has no self-attention, so `decoder_attentions` is None.
"""

import torch

from common_model_tests import GenerationTesterMixin, ModelTesterMixin
from ulmfit import GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration, GruSeq2SeqModel


SOURCE_VOCAB_SIZE, TARGET_VOCAB_SIZE = 40, 30
PAD = 1
TARGET_LENGTH = 5


def random_ids(batch_size: int, length: int, vocab_size: int, seed: int = 0) -> torch.Tensor:
    """Ids of ordinary words (the special tokens are 0-3)."""
    return torch.randint(4, vocab_size, (batch_size, length), generator=torch.Generator().manual_seed(seed))


def right_pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Source sentences of different lengths, right-padded as the tokenizer pads them, and their attention mask."""
    length = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), length), PAD)
    attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = row
        attention_mask[index, : len(row)] = 1
    return input_ids, attention_mask


class TestGruSeq2SeqCommon(ModelTesterMixin, GenerationTesterMixin):
    config_class = GruSeq2SeqConfig
    all_model_classes = (GruSeq2SeqModel, GruSeq2SeqForConditionalGeneration)
    all_generative_model_classes = (GruSeq2SeqForConditionalGeneration,)
    common_properties = {
        "vocab_size": 50,
        "decoder_vocab_size": 45,
        "embedding_size": 20,
        "hidden_size": 10,
        "num_hidden_layers": 3,
    }
    hidden_state_fields = ("encoder_hidden_states", "decoder_hidden_states")
    no_attention_reason = None
    cache_skip_reason = (
        "The decoder state is the cache (`state`, a GruSeq2SeqState: the GRU's hidden state and the projected "
        "attention keys), not a key/value cache; its reordering and carrying are tested in test_modeling_gru_seq2seq."
    )

    def get_config(self, **overrides) -> GruSeq2SeqConfig:
        sizes = {"embedding_size": 16, "hidden_size": 12, "num_hidden_layers": 2}
        vocabularies = {"vocab_size": SOURCE_VOCAB_SIZE, "decoder_vocab_size": TARGET_VOCAB_SIZE}
        return GruSeq2SeqConfig(**{**vocabularies, **sizes, **overrides})

    def prepare_inputs(self, model_class, config, with_labels: bool = False) -> dict:
        # three sources, the second right-padded by three tokens; targets of one length
        input_ids = random_ids(3, 7, config.vocab_size)
        attention_mask = torch.ones_like(input_ids)
        input_ids[1, 4:], attention_mask[1, 4:] = PAD, 0
        targets = random_ids(3, TARGET_LENGTH, config.decoder_vocab_size, seed=1)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        inputs["decoder_input_ids"] = torch.cat(
            [torch.full((3, 1), config.decoder_start_token_id), targets[:, :-1]], 1
        )
        if with_labels and model_class is GruSeq2SeqForConditionalGeneration:
            inputs["labels"] = targets
        return inputs

    def prepare_padded_batch(self, model_class, config) -> tuple[dict, list[dict]]:
        rows = [random_ids(1, length, SOURCE_VOCAB_SIZE, seed=length)[0] for length in (7, 4, 6)]
        input_ids, attention_mask = right_pad(rows)
        decoder_input_ids = random_ids(3, TARGET_LENGTH, TARGET_VOCAB_SIZE, seed=1)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "decoder_input_ids": decoder_input_ids}
        singles = [
            {"input_ids": row[None], "decoder_input_ids": decoder_input_ids[index : index + 1]}
            for index, row in enumerate(rows)
        ]
        return batch, singles

    def batching_fields(self, model_class) -> dict[str, str]:
        # the source axis is padded, the target axis is not; `state` is layer-first and not compared here
        fields = {"encoder_last_hidden_state": "sequence", "encoder_hidden_states": "sequence"}
        fields["decoder_hidden_states"] = "row"
        fields["logits" if model_class is GruSeq2SeqForConditionalGeneration else "last_hidden_state"] = "row"
        return fields

    def check_hidden_states_output(self, outputs, inputs, config, model_class):
        batch_size, source_length = inputs["input_ids"].shape
        target_length = inputs["decoder_input_ids"].shape[1]
        embedded, encoded = outputs.encoder_hidden_states
        assert embedded.shape == (batch_size, source_length, config.embedding_size)
        assert encoded.shape == (batch_size, source_length, 2 * config.hidden_size)  # bidirectional
        assert encoded[inputs["attention_mask"] == 0].abs().sum() == 0
        torch.testing.assert_close(encoded, outputs.encoder_last_hidden_state)
        shapes = [tuple(tensor.shape) for tensor in outputs.decoder_hidden_states]
        assert shapes == [(batch_size, target_length, config.embedding_size)] * 2
        if model_class is GruSeq2SeqModel:
            torch.testing.assert_close(outputs.decoder_hidden_states[-1], outputs.last_hidden_state)

    def mismatched_head_overrides(self, model_class) -> dict:
        return {"decoder_vocab_size": TARGET_VOCAB_SIZE - 5}  # the output layer and the decoder embedding

    def prepare_generation_inputs(self, config) -> dict:
        rows = [random_ids(1, length, config.vocab_size, seed=length)[0] for length in (6, 4)]
        input_ids, attention_mask = right_pad(rows)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def check_generate_hidden_states(self, output, inputs, config, num_sequences):
        batch_size, source_length = inputs["input_ids"].shape
        embedded, encoded = output.encoder_hidden_states
        assert embedded.shape == (batch_size, source_length, config.embedding_size)
        assert encoded.shape == (batch_size, source_length, 2 * config.hidden_size)
        assert len(output.decoder_hidden_states) == self.max_new_tokens
        for step_hidden_states in output.decoder_hidden_states:
            shapes = [tuple(tensor.shape) for tensor in step_hidden_states]
            assert shapes == [(num_sequences, 1, config.embedding_size)] * 2

    def test_attention_outputs(self):
        """Cross-attention only, from the keyword or the config; padded source positions get no weight."""
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.prepare_inputs(model_class, config)
            batch_size, source_length = inputs["input_ids"].shape
            target_length = inputs["decoder_input_ids"].shape[1]
            with torch.no_grad():
                outputs = model(**inputs, output_attentions=True)
                assert model(**inputs).cross_attentions is None
                model.config.output_attentions = True
                from_config = model(**inputs)
            assert outputs.decoder_attentions is None
            (weights,) = outputs.cross_attentions
            assert weights.shape == (batch_size, 1, target_length, source_length)
            torch.testing.assert_close(weights.sum(dim=-1), torch.ones(batch_size, 1, target_length))
            assert weights[1, :, :, 4:].abs().sum() == 0  # the second source is padded after 4 tokens
            torch.testing.assert_close(from_config.cross_attentions[0], weights)
