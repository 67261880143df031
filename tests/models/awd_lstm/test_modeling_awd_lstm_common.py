"""transformers' common model and generation tests (see tests/common_model_tests.py), applied to AWD-LSTM.

Hidden states differ by design from transformers' assumption of `num_hidden_layers + 1` tensors of `hidden_size`
features: the embedding and the last LSTM layer have `embedding_size` features (so that the decoder can be tied to the
embedding), the layers in between `hidden_size`. With `E = embedding_size`, `H = hidden_size`, `L = num_hidden_layers`,
`B = batch_size`, `T = sequence_length`:

- `AwdLstmModel`, `AwdLstmForCausalLM`: `hidden_states` = (embedding output `(B, T, E)`, layers 1 .. L-1 `(B, T, H)`,
  layer L `(B, T, E)`), L + 1 tensors, zeros at padded positions;
- `AwdLstmForSequenceClassification`: the same tensors over the whole documents, each token at the position it was
  given (padding on either side), zeros at padding;
- `generate()`: one tuple per step, the L + 1 tensors of that step's forward: `(B * num_beams, T, width)` for the
  prompt, then `(B * num_beams, 1, width)` per new token (the state carries the rest).
"""

import pytest
import torch

from common_model_tests import GenerationTesterMixin, ModelTesterMixin
from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmForSequenceClassification, AwdLstmModel


VOCAB_SIZE = 99
PAD = 1
BATCH_SIZE, SEQUENCE_LENGTH = 3, 7


def random_ids(batch_size: int, length: int, seed: int = 0) -> torch.Tensor:
    """Ids of ordinary words (the special tokens are 0-3)."""
    return torch.randint(4, VOCAB_SIZE, (batch_size, length), generator=torch.Generator().manual_seed(seed))


def left_pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths, left-padded (as for generation), and their attention mask."""
    length = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), length), PAD)
    attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, length - len(row) :] = row
        attention_mask[index, length - len(row) :] = 1
    return input_ids, attention_mask


class TestAwdLstmCommon(ModelTesterMixin, GenerationTesterMixin):
    config_class = AwdLstmConfig
    all_model_classes = (AwdLstmModel, AwdLstmForCausalLM, AwdLstmForSequenceClassification)
    all_generative_model_classes = (AwdLstmForCausalLM,)
    common_properties = {"vocab_size": 120, "embedding_size": 10, "hidden_size": 14, "num_hidden_layers": 4}
    cache_skip_reason = (
        "The recurrent state is the cache (`state`: one `(h, c)` pair per LSTM layer, of a fixed size), not a "
        "key/value cache; its carrying and beam reordering are tested in test_modeling_awd_lstm."
    )

    def get_config(self, **overrides) -> AwdLstmConfig:
        sizes = {"vocab_size": VOCAB_SIZE, "embedding_size": 8, "hidden_size": 12, "num_hidden_layers": 2}
        return AwdLstmConfig(**{**sizes, "num_labels": 3, **overrides})

    def prepare_inputs(self, model_class, config, with_labels: bool = False) -> dict:
        # the first row is left-padded by two tokens, the others are full
        input_ids = random_ids(BATCH_SIZE, SEQUENCE_LENGTH).clamp(max=config.vocab_size - 1)
        attention_mask = torch.ones_like(input_ids)
        input_ids[0, :2], attention_mask[0, :2] = PAD, 0
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if with_labels and model_class is AwdLstmForCausalLM:
            inputs["labels"] = input_ids
        elif with_labels and model_class is AwdLstmForSequenceClassification:
            inputs["labels"] = torch.tensor([0, 2, 1]) % config.num_labels
        return inputs

    def prepare_padded_batch(self, model_class, config) -> tuple[dict, list[dict]]:
        rows = [random_ids(1, length, seed=length)[0] for length in (7, 4, 6)]
        input_ids, attention_mask = left_pad(rows)
        return {"input_ids": input_ids, "attention_mask": attention_mask}, [{"input_ids": row[None]} for row in rows]

    def batching_fields(self, model_class) -> dict[str, str]:
        if model_class is AwdLstmForSequenceClassification:
            return {"logits": "row", "hidden_states": "sequence"}
        fields = {"last_hidden_state": "sequence", "state": "row", "hidden_states": "sequence"}
        if model_class is AwdLstmForCausalLM:
            fields.update(logits="sequence", dropped_hidden_state="sequence")
        return fields

    def check_hidden_states_output(self, outputs, inputs, config, model_class):
        hidden_states = outputs.hidden_states
        batch_size, length = inputs["input_ids"].shape
        widths = [config.embedding_size] + [config.hidden_size] * (config.num_hidden_layers - 1)
        widths.append(config.embedding_size)
        assert len(hidden_states) == config.num_hidden_layers + 1
        assert [tuple(layer.shape) for layer in hidden_states] == [(batch_size, length, width) for width in widths]
        padding = inputs["attention_mask"] == 0
        assert all(layer[padding].abs().sum() == 0 for layer in hidden_states[1:])  # the layers skip padding
        if model_class is not AwdLstmForSequenceClassification:
            torch.testing.assert_close(hidden_states[-1], outputs.last_hidden_state)

    def mismatched_head_overrides(self, model_class) -> dict:
        if model_class is AwdLstmForSequenceClassification:
            return {"num_labels": 5}
        return {"vocab_size": VOCAB_SIZE - 10}  # the embedding, and the language model's tied decoder

    def prepare_generation_inputs(self, config) -> dict:
        input_ids, attention_mask = left_pad([random_ids(1, length, seed=length)[0] for length in (5, 3)])
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def check_generate_hidden_states(self, output, inputs, config, num_sequences):
        widths = [config.embedding_size] + [config.hidden_size] * (config.num_hidden_layers - 1)
        widths.append(config.embedding_size)
        assert len(output.hidden_states) == self.max_new_tokens
        for step, step_hidden_states in enumerate(output.hidden_states):
            length = inputs["input_ids"].shape[1] if step == 0 else 1  # the prompt, then one token per step
            shapes = [tuple(layer.shape) for layer in step_hidden_states]
            assert shapes == [(num_sequences, length, width) for width in widths], step

    # ----------------------------------------------------------------------------------------------------------------
    # AWD-LSTM specifics

    def test_generate_on_a_prompt_holding_the_pad_id_without_attention_mask(self):
        model = self.make_model(AwdLstmForCausalLM, self.get_config())
        prompt = random_ids(1, 5)
        prompt[0, 2] = PAD  # a pad id inside the text
        sequences = model.generate(prompt, max_new_tokens=3, min_new_tokens=3, do_sample=False)
        assert sequences.shape == (1, 8) and torch.equal(sequences[:, :5], prompt)

        # a left-padded batch without a mask generates as with the mask that marks the padding
        input_ids, attention_mask = left_pad([random_ids(1, length, seed=length)[0] for length in (5, 3)])
        with_mask = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=3, do_sample=False)
        assert torch.equal(model.generate(input_ids, max_new_tokens=3, do_sample=False), with_mask)

    @pytest.mark.parametrize("model_class", [AwdLstmModel, AwdLstmForCausalLM])
    def test_vocabulary_mismatch_message_names_the_sizes(self, model_class, tmp_path):
        self.make_model(model_class, self.get_config()).save_pretrained(tmp_path)
        config = AwdLstmConfig.from_pretrained(tmp_path, vocab_size=VOCAB_SIZE - 10)
        with pytest.raises(RuntimeError, match=f"{VOCAB_SIZE} tokens.*vocab_size={VOCAB_SIZE - 10}"):
            model_class.from_pretrained(tmp_path, config=config)
