"""Common model tests, in the spirit of transformers' `ModelTesterMixin`, `GenerationTesterMixin` and `ConfigTester`.

transformers checks every model it ships with the same battery of tests (config round trips, save/load, tuple versus
`ModelOutput`, hidden states, batching, resizing, gradient checkpointing, dtypes, generation ...). Its test suite is
not installed with the wheel, so these mixins check the same behaviours, written for this project. A test class per
model subclasses them (tests/models/<model>/test_modeling_<model>_common.py), sets `config_class` and
`all_model_classes`, and provides the hooks below, as transformers' `<Model>ModelTester` classes do. Where a model
differs by design (hidden-state widths, inputs that are images), the test class overrides the hook and documents the
shapes, as rwkv's and mamba's tests do.

Tests that cannot apply to a recurrent or convolutional model (attention weights, SDPA / flash attention, key/value
caches) are kept as tests that skip with the reason, so that the difference from transformers' suite is written down.
"""

import copy
import functools
import json
import warnings

import pytest
import torch
from torch import nn
from transformers.utils import ModelOutput


def assert_nested_close(actual, expected, rtol: float = 0.0, atol: float = 0.0, path: str = "output"):
    """Tensors compared with `torch.testing.assert_close`, through ModelOutputs, tuples and lists; None must match."""
    if isinstance(expected, ModelOutput):
        expected = expected.to_tuple()
    if isinstance(actual, ModelOutput):
        actual = actual.to_tuple()
    if expected is None or actual is None:
        assert actual is None and expected is None, f"{path}: {type(actual).__name__} vs {type(expected).__name__}"
    elif isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)), f"{path}: {type(actual).__name__} is not a tuple"
        assert len(actual) == len(expected), f"{path}: {len(actual)} items vs {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected)):
            assert_nested_close(left, right, rtol, atol, f"{path}[{index}]")
    else:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda message: f"{path}: {message}")


def select_row(value, kind: str, row: int, mask: torch.Tensor):
    """
    Row `row` of a batch-first output, as the row would give it alone: `"row"` outputs are indexed; `"sequence"`
    outputs `(batch, time, ...)` keep the positions `mask[row]` marks real. Tuples are walked through.
    """
    if isinstance(value, ModelOutput):
        value = value.to_tuple()
    if isinstance(value, (tuple, list)):
        return tuple(select_row(item, kind, row, mask) for item in value)
    if kind == "sequence":
        return value[row][mask[row].bool()]
    return value[row]


def enable_gradient_checkpointing(model: nn.Module, **checkpoint_kwargs):
    """`model.gradient_checkpointing_enable()`, the name the Trainer and PEFT call (transformers 5.25 added
    `activation_checkpointing_enable` and warns about the old name); `checkpoint_kwargs` go to torch's checkpoint."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpoint_kwargs or None)


def count_checkpointed_runs(model: nn.Module) -> dict[str, int]:
    """
    Counts the checkpoints `model` takes (`checkpoints`) and the runs of the checkpointed functions (`runs`): with
    gradient checkpointing each function runs once in the forward pass and again in the backward pass.
    """
    counts = {"checkpoints": 0, "runs": 0}

    def counting(checkpoint_function, function, *args, **kwargs):
        counts["checkpoints"] += 1

        def run(*run_args, **run_kwargs):
            counts["runs"] += 1
            return function(*run_args, **run_kwargs)

        return checkpoint_function(run, *args, **kwargs)

    for module in model.modules():
        checkpoint_function = getattr(module, "_gradient_checkpointing_func", None)
        if checkpoint_function is not None:
            module._gradient_checkpointing_func = functools.partial(counting, checkpoint_function)
    return counts


class ConfigTesterMixin:
    """transformers' `ConfigTester`: the config's serialisation and the attributes every config has."""

    config_class = None
    # Attributes every config of this model has (transformers' `common_properties`), each set to a new value in tests
    common_properties: dict = {}

    def get_config(self, **overrides):
        """A tiny config for tests."""
        raise NotImplementedError

    def test_config_common_properties(self):
        config = self.get_config()
        for name, value in self.common_properties.items():
            assert hasattr(config, name), name
            setattr(config, name, value)
            assert getattr(config, name) == value, name
            assert getattr(self.get_config(**{name: value}), name) == value, name

    def test_config_to_dict_and_to_json_string_round_trip(self):
        config = self.get_config()
        assert self.config_class.from_dict(config.to_dict()).to_dict() == config.to_dict()
        serialised = json.loads(config.to_json_string())
        for name in self.common_properties:
            assert serialised[name] == getattr(config, name), name
        assert serialised["model_type"] == self.config_class.model_type

    def test_config_save_pretrained_and_json_file_round_trip(self, tmp_path):
        config = self.get_config()
        config.save_pretrained(tmp_path)
        assert self.config_class.from_pretrained(tmp_path).to_dict() == config.to_dict()
        config.to_json_file(tmp_path / "other.json")
        assert self.config_class.from_json_file(tmp_path / "other.json").to_dict() == config.to_dict()

    def test_config_init_without_parameters(self):
        config = self.config_class()
        assert config.model_type == self.config_class.model_type
        assert config.return_dict and not config.output_hidden_states

    def test_config_num_labels_sets_id2label_and_label2id(self, tmp_path):
        config = self.get_config(num_labels=5)
        assert config.num_labels == 5 and len(config.id2label) == 5 and len(config.label2id) == 5
        config.num_labels = 3
        assert config.num_labels == 3 and sorted(config.id2label) == [0, 1, 2]
        config.id2label = {0: "negative", 1: "positive"}
        config.label2id = {"negative": 0, "positive": 1}
        config.save_pretrained(tmp_path)
        loaded = self.config_class.from_pretrained(tmp_path)
        assert loaded.id2label == {0: "negative", 1: "positive"}  # keys are ints again after JSON
        assert loaded.label2id == {"negative": 0, "positive": 1} and loaded.num_labels == 2

    def test_config_output_flags_round_trip(self, tmp_path):
        config = self.get_config(return_dict=False, output_hidden_states=True)
        assert config.return_dict is False and config.output_hidden_states is True
        config.save_pretrained(tmp_path)
        loaded = self.config_class.from_pretrained(tmp_path)
        assert loaded.return_dict is False and loaded.output_hidden_states is True
        overridden = self.config_class.from_pretrained(tmp_path, return_dict=True, output_hidden_states=False)
        assert overridden.return_dict is True and overridden.output_hidden_states is False


class ModelTesterMixin(ConfigTesterMixin):
    """transformers' `ModelTesterMixin`, for the models of this project (no attention, no key/value cache)."""

    all_model_classes: tuple = ()
    # The output fields holding hidden states (None unless asked for)
    hidden_state_fields: tuple[str, ...] = ("hidden_states",)
    # Whether the model's input is token ids with an input embedding (`get_input_embeddings`, `resize_...`)
    has_token_embeddings = True
    # Why the attention-output test does not apply (None: the test class overrides `test_attention_outputs`)
    no_attention_reason = "A recurrent model has no attention weights to return (`output_attentions`)."
    # Where the model keeps what transformers' key/value cache keeps, for the reason of the skipped cache tests
    cache_skip_reason = "The model's recurrent state is its cache, not a key/value cache."

    # ----------------------------------------------------------------------------------------------------------------
    # Hooks

    def make_model(self, model_class, config):
        """A seeded model in eval mode (a test class may also fill tables that a trained model would have)."""
        torch.manual_seed(0)
        return model_class(config).eval()

    def prepare_inputs(self, model_class, config, with_labels: bool = False) -> dict:
        """A small seeded batch for `model_class` (with the targets its loss needs when `with_labels`)."""
        raise NotImplementedError

    def prepare_padded_batch(self, model_class, config) -> tuple[dict, list[dict]]:
        """A batch whose rows have different lengths, padded with an `attention_mask`, and each row alone."""
        raise NotImplementedError

    def batching_fields(self, model_class) -> dict[str, str]:
        """
        The outputs compared between a row alone and the same row in a padded batch, each `"row"` (batch-first, no
        time axis to align) or `"sequence"` (batch-first, then the time axis that the batch's `attention_mask` pads).
        """
        raise NotImplementedError

    def sequence_mask(self, inputs: dict) -> torch.Tensor | None:
        """What marks the real positions of `"sequence"` outputs: the `attention_mask` (all ones if only ids)."""
        if "attention_mask" in inputs:
            return inputs["attention_mask"]
        return torch.ones_like(inputs["input_ids"]) if "input_ids" in inputs else None

    def check_hidden_states_output(self, outputs, inputs: dict, config, model_class):
        """Assert the number and the shapes of the hidden states: every model documents its own."""
        raise NotImplementedError

    def mismatched_head_overrides(self, model_class) -> dict | None:
        """Config changes that give the head (or the vocabulary) another size; None when the class has no head."""
        raise NotImplementedError

    def training_loss(self, outputs) -> torch.Tensor:
        """The loss to backpropagate: the head's loss, or for a base model a scalar of its first output."""
        if getattr(outputs, "loss", None) is not None:
            return outputs.loss
        return outputs[0].float().pow(2).mean()

    # ----------------------------------------------------------------------------------------------------------------
    # Tests

    def test_model_common_attributes(self):
        for model_class in self.all_model_classes:
            model = self.make_model(model_class, self.get_config())
            if not self.has_token_embeddings:
                with pytest.raises(NotImplementedError):
                    model.get_input_embeddings()
                assert model.get_output_embeddings() is None
                continue
            embeddings = model.get_input_embeddings()
            assert isinstance(embeddings, nn.Embedding)
            replacement = nn.Embedding(10, embeddings.embedding_dim)
            model.set_input_embeddings(replacement)
            assert model.get_input_embeddings() is replacement
            output_embeddings = model.get_output_embeddings()
            assert output_embeddings is None or isinstance(output_embeddings, nn.Linear)

    def test_save_load_gives_identical_outputs_with_safetensors(self, tmp_path):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.prepare_inputs(model_class, config, with_labels=True)
            folder = tmp_path / model_class.__name__
            model.save_pretrained(folder)
            assert (folder / "model.safetensors").is_file() and not (folder / "pytorch_model.bin").exists()
            loaded = model_class.from_pretrained(folder)
            assert not loaded.training  # from_pretrained returns the model in eval mode
            with torch.no_grad():
                assert_nested_close(loaded(**inputs), model(**inputs), rtol=1e-5, atol=1e-6)
            for target, source in (getattr(model_class, "_tied_weights_keys", None) or {}).items():
                if config.tie_word_embeddings:
                    assert loaded.get_parameter(target) is loaded.get_parameter(source)
            # saving the loaded model again gives the same weights
            loaded.save_pretrained(tmp_path / "again")
            reloaded, saved = model_class.from_pretrained(tmp_path / "again").state_dict(), model.state_dict()
            assert reloaded.keys() == saved.keys()
            for key, tensor in reloaded.items():
                torch.testing.assert_close(tensor, saved[key], rtol=0, atol=0, msg=key)

    def test_return_dict_false_gives_the_model_output_as_a_tuple(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.prepare_inputs(model_class, config, with_labels=True)
            with torch.no_grad():
                as_dict = model(**inputs, output_hidden_states=True, return_dict=True)
                as_tuple = model(**inputs, output_hidden_states=True, return_dict=False)
            assert isinstance(as_dict, ModelOutput) and type(as_tuple) is tuple
            assert_nested_close(as_tuple, as_dict.to_tuple(), path=f"{model_class.__name__} tuple")

            # the config's `return_dict` is the default
            model.config.return_dict = False
            with torch.no_grad():
                assert type(model(**inputs)) is tuple
                assert isinstance(model(**inputs, return_dict=True), ModelOutput)

    def test_hidden_states_output(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.prepare_inputs(model_class, config)
            with torch.no_grad():
                self.check_hidden_states_output(
                    model(**inputs, output_hidden_states=True), inputs, config, model_class
                )
                outputs = model(**inputs)
            assert all(getattr(outputs, field) is None for field in self.hidden_state_fields)

            # the same from the config, and the keyword still wins over it
            config.output_hidden_states = True
            model = self.make_model(model_class, config)
            with torch.no_grad():
                self.check_hidden_states_output(model(**inputs), inputs, config, model_class)
                outputs = model(**inputs, output_hidden_states=False)
            assert all(getattr(outputs, field) is None for field in self.hidden_state_fields)

    def test_eval_is_deterministic(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.prepare_inputs(model_class, config, with_labels=True)
            with torch.no_grad():
                first = model(**inputs, output_hidden_states=True)
                torch.manual_seed(123)  # another seed: nothing random may run in eval mode
                second = model(**inputs, output_hidden_states=True)
            assert_nested_close(second, first)

    def test_train_and_eval_modes(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.prepare_inputs(model_class, config)
            assert not any(module.training for module in model.modules())
            with torch.no_grad():
                evaluated = model(**inputs)
            model.train()
            assert all(module.training for module in model.modules())
            with torch.no_grad():
                outputs = []
                for _ in range(2):
                    torch.manual_seed(7)
                    outputs.append(model(**inputs))
            assert_nested_close(outputs[1], outputs[0])  # training-mode randomness follows torch's seed
            assert not torch.allclose(outputs[0][0], evaluated[0])  # dropout (or batch statistics) acts
            model.eval()
            assert not any(module.training for module in model.modules())
            with torch.no_grad():
                first = model(**inputs)
                torch.manual_seed(8)
                assert_nested_close(model(**inputs), first)  # eval mode again: deterministic

    def test_batching_equivalence(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            batch, rows = self.prepare_padded_batch(model_class, config)
            fields = self.batching_fields(model_class)
            with torch.no_grad():
                together = model(**batch, output_hidden_states=True)
                for row, single_inputs in enumerate(rows):
                    alone = model(**single_inputs, output_hidden_states=True)
                    for name, kind in fields.items():
                        assert_nested_close(
                            select_row(getattr(together, name), kind, row, self.sequence_mask(batch)),
                            select_row(getattr(alone, name), kind, 0, self.sequence_mask(single_inputs)),
                            rtol=1e-4,
                            atol=1e-5,
                            path=f"{model_class.__name__}.{name}, row {row}",
                        )

    def test_training_reaches_every_trainable_parameter(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config).train()
            loss = self.training_loss(model(**self.prepare_inputs(model_class, config, with_labels=True)))
            assert loss.dim() == 0 and torch.isfinite(loss)
            loss.backward()
            missing = [
                name
                for name, parameter in model.named_parameters()
                if parameter.requires_grad and parameter.grad is None
            ]
            assert missing == [], model_class.__name__

    @pytest.mark.parametrize("use_reentrant", [False, True], ids=["non-reentrant", "reentrant"])
    def test_gradient_checkpointing_gives_the_same_loss_and_gradients(self, use_reentrant):
        for model_class in self.all_model_classes:
            assert model_class.supports_gradient_checkpointing, model_class.__name__
            config = self.get_config()
            reference = self.make_model(model_class, config).train()
            checkpointed = copy.deepcopy(reference)
            enable_gradient_checkpointing(checkpointed, use_reentrant=use_reentrant)
            assert any(getattr(module, "gradient_checkpointing", False) for module in checkpointed.modules())
            assert not any(getattr(module, "gradient_checkpointing", False) for module in reference.modules())
            inputs = self.prepare_inputs(model_class, config, with_labels=True)
            counts = count_checkpointed_runs(checkpointed)
            results = []
            for model in (reference, checkpointed):
                torch.manual_seed(1)  # the same dropout masks for both
                loss = self.training_loss(model(**inputs))
                loss.backward()
                gradients = {name: parameter.grad for name, parameter in model.named_parameters()}
                buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
                results.append((loss.detach(), gradients, buffers))
            (loss, gradients, buffers), (loss_cp, gradients_cp, buffers_cp) = results
            name = model_class.__name__
            # every checkpointed block ran again in the backward pass
            assert counts["checkpoints"] > 0 and counts["runs"] == 2 * counts["checkpoints"], (name, counts)
            torch.testing.assert_close(loss_cp, loss, rtol=1e-5, atol=1e-6)
            assert gradients_cp.keys() == gradients.keys()
            for key, gradient in gradients.items():
                assert (gradient is None) == (gradients_cp[key] is None), key
                if gradient is not None:
                    torch.testing.assert_close(gradients_cp[key], gradient, rtol=1e-4, atol=1e-6, msg=key)
            # running statistics (BatchNorm) are updated once per step, not again when a block is recomputed
            assert_nested_close(
                tuple(buffers_cp.values()), tuple(buffers.values()), rtol=1e-5, atol=1e-6, path=f"{name} buffers"
            )

            # without gradients (evaluation) the checkpointed model runs as it is
            checkpointed.eval()
            reference.eval()
            with torch.no_grad():
                assert_nested_close(checkpointed(**inputs), reference(**inputs), rtol=1e-5, atol=1e-6)

    def test_resize_token_embeddings(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            if not self.has_token_embeddings:
                with pytest.raises(NotImplementedError):
                    model.resize_token_embeddings(10)
                continue
            vocab_size = config.vocab_size
            old = model.get_input_embeddings().weight.detach().clone()
            for new_size in (vocab_size + 10, vocab_size - 5):
                model.resize_token_embeddings(new_size)
                embeddings = model.get_input_embeddings()
                assert embeddings.weight.shape == (new_size, old.shape[1])
                assert model.config.vocab_size == new_size
                kept = min(new_size, vocab_size)
                torch.testing.assert_close(embeddings.weight[:kept], old[:kept], rtol=0, atol=0)
                output_embeddings = model.get_output_embeddings()
                tied_output = output_embeddings is not None and model.config.tie_word_embeddings
                if tied_output and output_embeddings.weight.shape[0] == new_size:  # an output over this vocabulary
                    assert output_embeddings.weight is embeddings.weight
                    if output_embeddings.bias is not None:
                        assert output_embeddings.bias.shape == (new_size,)
                # the model still runs, on the new ids too
                inputs = self.prepare_inputs(model_class, model.config)
                ids = inputs["input_ids"].clamp(max=new_size - 1)
                first_real = int(inputs["attention_mask"][0].nonzero()[0]) if "attention_mask" in inputs else 0
                ids[0, first_real] = new_size - 1
                inputs["input_ids"] = ids
                with torch.no_grad():
                    outputs = model(**inputs)
                if output_embeddings is not None and output_embeddings.weight is embeddings.weight:
                    assert outputs.logits.shape[-1] == new_size
            model.resize_token_embeddings(vocab_size + 1, pad_to_multiple_of=8)
            assert model.get_input_embeddings().weight.shape[0] % 8 == 0
            assert model.config.vocab_size == model.get_input_embeddings().weight.shape[0]

    @pytest.mark.parametrize("dtype_argument", ["dtype", "torch_dtype"])
    def test_from_pretrained_with_bfloat16_dtype(self, dtype_argument, tmp_path):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self.make_model(model_class, config)
            folder = tmp_path / model_class.__name__
            model.save_pretrained(folder)
            with warnings.catch_warnings():  # `torch_dtype` is the deprecated name
                warnings.simplefilter("ignore")
                loaded = model_class.from_pretrained(folder, **{dtype_argument: torch.bfloat16})
            assert loaded.dtype == torch.bfloat16
            assert all(parameter.dtype == torch.bfloat16 for parameter in loaded.parameters())
            inputs = self.prepare_inputs(model_class, config)
            inputs = {
                key: value.to(torch.bfloat16) if torch.is_tensor(value) and value.is_floating_point() else value
                for key, value in inputs.items()
            }
            with torch.no_grad():
                first = loaded(**inputs)[0]
                reference = model(**self.prepare_inputs(model_class, config))[0]
            assert first.dtype == torch.bfloat16 and torch.isfinite(first).all()
            torch.testing.assert_close(first.float(), reference, rtol=0.1, atol=0.05)

    def test_from_pretrained_with_a_mismatched_head_size(self, tmp_path):
        for model_class in self.all_model_classes:
            overrides = self.mismatched_head_overrides(model_class)
            if overrides is None:
                continue
            config = self.get_config()
            model = self.make_model(model_class, config)
            folder = tmp_path / model_class.__name__
            model.save_pretrained(folder)
            other_config = self.config_class.from_pretrained(folder, **overrides)
            # transformers raises RuntimeError (callers catch it); a clearer message may come in a subclass of it
            with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
                model_class.from_pretrained(folder, config=other_config)

            loaded, info = model_class.from_pretrained(
                folder, config=other_config, ignore_mismatched_sizes=True, output_loading_info=True
            )
            mismatched = {key for key, _, _ in info["mismatched_keys"]}
            assert mismatched, model_class.__name__
            expected = self.make_model(model_class, other_config).state_dict()
            saved = model.state_dict()
            for key, tensor in loaded.state_dict().items():
                assert tensor.shape == expected[key].shape, key
                if key not in mismatched and tensor.shape == saved[key].shape:  # not a weight tied to one that is
                    torch.testing.assert_close(tensor, saved[key], rtol=0, atol=0, msg=key)
            with torch.no_grad():
                assert torch.isfinite(loaded(**self.prepare_inputs(model_class, other_config))[0]).all()

    def test_attention_outputs(self):
        pytest.skip(self.no_attention_reason)

    def test_sdpa_and_flash_attention_dispatch(self):
        pytest.skip("No attention kernels to dispatch: the model has no self-attention (`attn_implementation`).")

    def test_cache_format(self):
        pytest.skip(self.cache_skip_reason)


class GenerationTesterMixin:
    """transformers' `GenerationTesterMixin`: greedy, sampling and beam search through `generate()`."""

    all_generative_model_classes: tuple = ()
    max_new_tokens = 3

    def prepare_generation_inputs(self, config) -> dict:
        """Prompts (decoder-only) or sources (encoder-decoder), with their `attention_mask`."""
        raise NotImplementedError

    def check_generate_hidden_states(self, output, inputs: dict, config, num_sequences: int):
        """Assert the hidden states `generate()` returns, per step: every model documents its own shapes."""
        raise NotImplementedError

    def _generate(self, model, inputs: dict, **kwargs):
        kwargs.setdefault("max_new_tokens", self.max_new_tokens)
        kwargs.setdefault("min_new_tokens", kwargs["max_new_tokens"])  # no early end-of-sequence: fixed lengths
        return model.generate(**inputs, **kwargs)

    def _expected_length(self, model, inputs: dict, new_tokens: int) -> int:
        """Prompt + new tokens, or for an encoder-decoder the decoder start token + new tokens."""
        return (1 if model.config.is_encoder_decoder else inputs["input_ids"].shape[1]) + new_tokens

    def _generative_models(self):
        for model_class in self.all_generative_model_classes:
            config = self.get_config()
            yield self.make_model(model_class, config), self.prepare_generation_inputs(config), config

    def test_greedy_generate_dict_outputs(self):
        for model, inputs, _ in self._generative_models():
            batch_size, vocab_size = inputs["input_ids"].shape[0], model.get_output_embeddings().out_features
            output = self._generate(model, inputs, do_sample=False, output_scores=True, return_dict_in_generate=True)
            assert output.sequences.shape == (batch_size, self._expected_length(model, inputs, self.max_new_tokens))
            assert len(output.scores) == self.max_new_tokens
            assert all(scores.shape == (batch_size, vocab_size) for scores in output.scores)
            chosen = torch.stack([scores.argmax(dim=-1) for scores in output.scores], dim=1)
            assert torch.equal(output.sequences[:, -self.max_new_tokens :], chosen)  # greedy: the best score
            assert torch.equal(self._generate(model, inputs, do_sample=False), output.sequences)

    def test_max_new_tokens_sets_the_length(self):
        for model, inputs, _ in self._generative_models():
            for new_tokens in (1, 5):
                sequences = self._generate(model, inputs, do_sample=False, max_new_tokens=new_tokens)
                assert sequences.shape[1] == self._expected_length(model, inputs, new_tokens)

    def test_sample_generate_with_num_return_sequences(self):
        for model, inputs, _ in self._generative_models():
            batch_size, vocab_size = inputs["input_ids"].shape[0], model.get_output_embeddings().out_features
            outputs = []
            for _ in range(2):
                torch.manual_seed(0)
                outputs.append(
                    self._generate(
                        model,
                        inputs,
                        do_sample=True,
                        top_k=0,
                        num_return_sequences=2,
                        output_scores=True,
                        return_dict_in_generate=True,
                    )
                )
            output = outputs[0]
            assert torch.equal(outputs[1].sequences, output.sequences)  # sampling follows torch's seed
            assert output.sequences.shape == (
                2 * batch_size,
                self._expected_length(model, inputs, self.max_new_tokens),
            )
            assert len(output.scores) == self.max_new_tokens
            for step, scores in enumerate(output.scores):
                assert scores.shape == (2 * batch_size, vocab_size)
                token = output.sequences[:, -self.max_new_tokens + step]
                assert torch.isfinite(scores.gather(1, token[:, None])).all()  # only allowed tokens are drawn

    def test_beam_search_generate_with_num_return_sequences(self):
        for model, inputs, _ in self._generative_models():
            batch_size, vocab_size = inputs["input_ids"].shape[0], model.get_output_embeddings().out_features
            output = self._generate(
                model,
                inputs,
                do_sample=False,
                num_beams=3,
                num_return_sequences=2,
                output_scores=True,
                return_dict_in_generate=True,
            )
            assert output.sequences.shape == (
                2 * batch_size,
                self._expected_length(model, inputs, self.max_new_tokens),
            )
            assert output.sequences_scores.shape == (2 * batch_size,)
            assert len(output.scores) == self.max_new_tokens
            assert all(scores.shape == (3 * batch_size, vocab_size) for scores in output.scores)
            assert output.beam_indices.shape[0] == 2 * batch_size
            best, second = output.sequences_scores.view(batch_size, 2).unbind(dim=1)
            assert (best >= second).all()  # the beams come best first
            sequences = output.sequences.view(batch_size, 2, -1)
            assert all(not torch.equal(pair[0], pair[1]) for pair in sequences)  # two different hypotheses
            best_only = self._generate(model, inputs, do_sample=False, num_beams=3)
            assert torch.equal(best_only, sequences[:, 0])

    @pytest.mark.parametrize("num_beams", [1, 2])
    def test_generate_hidden_states(self, num_beams):
        for model, inputs, config in self._generative_models():
            output = self._generate(
                model,
                inputs,
                do_sample=False,
                num_beams=num_beams,
                output_hidden_states=True,
                return_dict_in_generate=True,
            )
            self.check_generate_hidden_states(
                output, inputs, config, num_sequences=num_beams * len(inputs["input_ids"])
            )

    def test_generate_continue_from_past_key_values(self):
        pytest.skip(
            "No key/value cache to pass back: the recurrent state is carried by `generate()` itself "
            "(`_update_model_kwargs_for_generation`); carrying it by hand is tested in the model's own tests."
        )

    def test_generate_with_static_cache(self):
        pytest.skip("A static key/value cache does not apply: the recurrent state already has a fixed size.")
