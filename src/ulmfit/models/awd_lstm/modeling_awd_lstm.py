"""PyTorch AWD-LSTM, as a transformers model.

AWD-LSTM is the regularised LSTM language model of Merity, Keskar & Socher, "Regularizing and Optimizing LSTM Language
Models" (ICLR 2018, arXiv:1708.02182), the encoder of ULMFiT (Howard & Ruder 2018, arXiv:1801.06146). This port follows
fastai v2's `AWD_LSTM` + `LinearDecoder` + `RNNRegularizer` numerically, with four deliberate differences:

- the recurrent state is passed in and returned (`state=`), never stored on the module, so one model serves any batch
  size, `generate()` carries it token by token, and a training loop detaches it between BPTT windows;
- DropConnect swaps a dropped copy of `weight_hh_l0` into the LSTM call (`torch.func.functional_call`), so the fused
  cuDNN / oneDNN kernel still runs and the state-dict keys stay those of a plain `nn.LSTM`;
- embedding dropout masks the looked-up rows instead of multiplying the whole vocabulary matrix (the same row mask, the
  same gradient, without an O(vocab x embedding) product per step);
- padding given by `attention_mask` (left or right) is skipped exactly: padded positions neither read nor change the
  state, so a left-padded batch gives what each sequence gives alone. AR/TAR and the loss ignore them too.

The file also holds the ULMFiT classifier, `AwdLstmForSequenceClassification`: the same encoder read with BPT3C
(Howard & Ruder §3.3), masked concat pooling and fastai's `PoolingLinearClassifier` head. The layers, dropouts and
input checks they are built from are in `layers_awd_lstm.py`.
"""

from dataclasses import dataclass

import torch
from safetensors import safe_open
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import SAFE_WEIGHTS_NAME, ModelOutput, cached_file, logging

from .configuration_awd_lstm import AwdLstmConfig
from .layers_awd_lstm import (  # noqa: F401 (the building blocks are importable from here too)
    AwdLstmClassificationHead,
    EmbeddingDropout,
    LockedDropout,
    WeightDroppedLstm,
    _check_documents,
    _check_floats,
    _check_generation_counts,
    _check_target_ids,
    _check_token_ids,
    _describe_type,
    _init_batch_norm,
    _mask_is_full,
    _PaddingLayout,
    _unreadable_weights,
    activation_regularization,
    masked_concat_pool,
)


logger = logging.get_logger(__name__)

# Every head in this file, for the `auto_map` of a folder saved with remote code (see `save_pretrained`).
_AUTO_MAP = {
    "AutoModel": "modeling_awd_lstm.AwdLstmModel",
    "AutoModelForCausalLM": "modeling_awd_lstm.AwdLstmForCausalLM",
    "AutoModelForSequenceClassification": "modeling_awd_lstm.AwdLstmForSequenceClassification",
}

# One `(h, c)` pair per LSTM layer, each of shape (batch_size, layer_output_size).
AwdLstmState = tuple[tuple[torch.Tensor, torch.Tensor], ...]


def _checkpoint_vocab_size(pretrained_model_name_or_path, kwargs: dict) -> int | None:
    """Rows of the embedding in a safetensors checkpoint, read from its header only; None if it cannot be found."""
    try:
        path = cached_file(
            pretrained_model_name_or_path,
            SAFE_WEIGHTS_NAME,
            subfolder=kwargs.get("subfolder", ""),
            revision=kwargs.get("revision"),
            cache_dir=kwargs.get("cache_dir"),
            local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
        )
        if path is None:
            return None
        with safe_open(path, framework="pt") as checkpoint:
            names = checkpoint.keys()  # noqa: SIM118 (a safetensors handle, not a dict)
            key = next((name for name in names if name.endswith("embed_tokens.weight")), None)
            return None if key is None else checkpoint.get_slice(key).get_shape()[0]
    except (OSError, ValueError):
        return None


class CheckpointSizeMismatchError(RuntimeError, ValueError):
    """A checkpoint whose tensors do not fit the configuration. A `RuntimeError`, as transformers raises for size
    mismatches (callers catch that), and a `ValueError`, as this package raised before."""


@dataclass
class AwdLstmOutput(ModelOutput):
    """
    Output of [`AwdLstmModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, embedding_size)`):
            Output of the last LSTM layer (zeros at padded positions).
        state (`tuple` of `(h, c)` pairs, one per layer, each `(batch_size, layer_size)`):
            Recurrent state after the last real token of each row; feed it back as `state=` to continue the sequences.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The embedding output and the raw output of every LSTM layer, before inter-layer dropout.
    """

    last_hidden_state: torch.FloatTensor | None = None
    state: AwdLstmState | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class AwdLstmCausalLMOutput(ModelOutput):
    """
    Output of [`AwdLstmForCausalLM`].

    Args:
        loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `labels` is provided):
            Next-token cross-entropy; in training mode plus the AR and TAR penalties.
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
            Next-token scores.
        state (`tuple` of `(h, c)` pairs):
            Recurrent state to carry into the next call (`None` when `use_cache=False`).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            As in [`AwdLstmOutput`].
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, embedding_size)`):
            Raw output of the last LSTM layer, the input of TAR (fastai `raw_out`).
        dropped_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, embedding_size)`):
            The same after output dropout, what the decoder reads and the input of AR (fastai `out`).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    state: AwdLstmState | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    last_hidden_state: torch.FloatTensor | None = None
    dropped_hidden_state: torch.FloatTensor | None = None


class AwdLstmPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the generation plumbing shared by every AWD-LSTM head."""

    config_class = AwdLstmConfig
    config: AwdLstmConfig
    base_model_prefix = "awd_lstm"
    main_input_name = "input_ids"
    _no_split_modules = ["WeightDroppedLstm"]
    supports_gradient_checkpointing = True
    # The state of an RNN cannot be rolled back, so assisted decoding must refuse rather than give wrong results.
    _is_stateful = True

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() would otherwise build a key/value `DynamicCache`; our cache is the `state` output.
        return False

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, *args, **kwargs):
        # generate() feeds one new token per step after the prompt, so the recurrent state must come along. From
        # transformers 5.25 on it only carries an output named `cache`; carry our `state` ourselves, for any version.
        model_kwargs = super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)
        if outputs.get("state") is not None:
            model_kwargs["state"] = outputs["state"]
        return model_kwargs

    def _prepare_attention_mask_for_generation(self, inputs_tensor, generation_config, model_kwargs):
        """
        The mask `generate()` infers when none is given. transformers masks every pad id; here only the pad ids
        before a row's first other token are padding (a left-padded prompt), and any later one is read as a token, as
        fastai reads it: an RNN reads each row as one run of real tokens, so it cannot skip holes. Pass
        `attention_mask` to say otherwise.
        """
        attention_mask = super()._prepare_attention_mask_for_generation(inputs_tensor, generation_config, model_kwargs)
        return attention_mask.cummax(dim=-1).values if attention_mask.dim() == 2 else attention_mask

    def generate(self, *args, generation_config=None, **kwargs):
        """`GenerationMixin.generate`, with clear errors for counts that are not whole numbers in range."""
        _check_generation_counts(generation_config, kwargs)
        return super().generate(*args, generation_config=generation_config, **kwargs)

    def _validate_generation_mode(self, generation_mode, *args, **kwargs):
        # Assisted decoding verifies draft tokens and rolls back the rejected ones: a recurrent state cannot be rolled
        # back (transformers 5.25 no longer reads `_is_stateful`, so refuse here, clearly, for any version).
        if generation_mode == "assisted_generation":
            raise ValueError(
                f"Assisted generation (assistant_model, prompt_lookup_num_tokens, ...) is not supported with stateful "
                f"models such as {self.__class__.__name__}: a recurrent state cannot be rolled back to a shorter text."
            )
        return super()._validate_generation_mode(generation_mode, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """fastai's initialisation: uniform(+-initializer_range) embedding and decoder, PyTorch's LSTM default."""
        if isinstance(module, nn.BatchNorm1d):
            _init_batch_norm(module)
        elif isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -self.config.initializer_range, self.config.initializer_range)
        elif isinstance(module, nn.LSTM):
            bound = module.hidden_size**-0.5
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, nn.Linear) and any(module is linear for linear in self._head_linears()):
            # fastai's LinBnDrop keeps PyTorch's default initialisation of its linear layers (no bias)
            bound = module.in_features**-0.5
            init.uniform_(module.weight, -bound, bound)
        elif isinstance(module, nn.Linear):
            init.uniform_(module.weight, -self.config.initializer_range, self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`; a folder saved with remote code loads with every AWD-LSTM Auto class."""
        self._update_auto_map()
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _update_auto_map(self):
        """With remote code, add this file's `_AUTO_MAP` to `config.auto_map` (entries already there win)."""
        if self._auto_class is not None:
            self.config.auto_map = {**_AUTO_MAP, **(getattr(self.config, "auto_map", None) or {})}

    def _head_linears(self) -> tuple[nn.Module, ...]:
        head = getattr(self, "classifier", None)
        return (head.dense, head.out_proj) if isinstance(head, AwdLstmClassificationHead) else ()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with clear errors for unreadable weights and another vocabulary."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except Exception as error:
            unreadable = _unreadable_weights(pretrained_model_name_or_path, error)
            if unreadable is not None:
                raise unreadable from error
            if not isinstance(error, RuntimeError) or "ignore_mismatched_sizes" not in str(error):
                raise
            config = kwargs.get("config")
            rows = _checkpoint_vocab_size(pretrained_model_name_or_path, kwargs)
            if rows is None or not isinstance(config, AwdLstmConfig) or rows == config.vocab_size:
                raise
            raise CheckpointSizeMismatchError(
                f"The checkpoint in {pretrained_model_name_or_path} has a vocabulary of {rows} tokens but the "
                f"configuration says vocab_size={config.vocab_size}. Load it with its own config.json, or pass "
                "`ignore_mismatched_sizes=True` to re-initialise the embedding and decoder."
            ) from error

    def _check_input_ids(self, input_ids: torch.Tensor):
        """A clear error for ids the embedding cannot look up, instead of an index error deep inside torch."""
        _check_token_ids(input_ids, "input_ids", self.config.vocab_size)

    def _prepare_model_inputs(self, *args, **kwargs):
        """
        `GenerationMixin._prepare_model_inputs`, with a clear error for prompts `generate()` cannot take: not
        `(batch_size, sequence_length)`, no row (transformers' generation loop cannot run on an empty batch) or no
        token (a recurrent state needs something to read).
        """
        inputs_tensor, input_name, model_kwargs = super()._prepare_model_inputs(*args, **kwargs)
        rank = 3 if input_name == "inputs_embeds" else 2
        if not isinstance(inputs_tensor, torch.Tensor) or inputs_tensor.dim() != rank or 0 in inputs_tensor.shape[:2]:
            shape = tuple(inputs_tensor.shape) if isinstance(inputs_tensor, torch.Tensor) else type(inputs_tensor)
            expected = "(batch_size, sequence_length" + (", hidden_size)" if rank == 3 else ")")
            raise ValueError(
                f"generate() needs `{input_name}` of shape {expected} with at least one row and one token, got "
                f"{shape}."
            )
        return inputs_tensor, input_name, model_kwargs


class AwdLstmModel(AwdLstmPreTrainedModel):
    """
    The AWD-LSTM encoder: embedding (with embedding dropout) -> input dropout -> a stack of weight-dropped LSTMs with
    variational dropout between them. The last layer outputs `embedding_size` features so the decoder can be tied.
    """

    def __init__(self, config: AwdLstmConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.embedding_dropout = EmbeddingDropout(config.embedding_dropout)
        self.input_dropout = LockedDropout(config.input_dropout)
        sizes = (
            [config.embedding_size] + [config.hidden_size] * (config.num_hidden_layers - 1) + [config.embedding_size]
        )
        self.layers = nn.ModuleList(
            WeightDroppedLstm(sizes[i], sizes[i + 1], config.weight_dropout) for i in range(config.num_hidden_layers)
        )
        self.hidden_dropouts = nn.ModuleList(
            LockedDropout(config.hidden_dropout) for _ in range(config.num_hidden_layers - 1)
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embed_tokens = value

    def initial_state(self, batch_size: int, device=None, dtype=None) -> AwdLstmState:
        """The all-zeros state fastai's `reset()` creates, one `(h, c)` pair per layer."""
        weight = self.embed_tokens.weight
        device, dtype = device or weight.device, dtype or weight.dtype
        return tuple(
            (torch.zeros(batch_size, layer.lstm.hidden_size, device=device, dtype=dtype),) * 2 for layer in self.layers
        )

    def _check_state(self, state, batch_size: int, dtype: torch.dtype) -> AwdLstmState:
        """
        A given `state`, cast to `dtype`, with a clear error for one that does not fit: one `(h, c)` pair per layer,
        each `(batch_size, layer_size)` and floating-point. Its values are not checked: it is normally the model's own
        output, carried between calls, and a check would cost a device sync per generated token.
        """
        if not isinstance(state, (tuple, list)) or len(state) != len(self.layers):
            found = f"{len(state)} layers" if isinstance(state, (tuple, list)) else f"a {type(state).__name__}"
            raise ValueError(
                f"`state` must hold one (h, c) pair per layer; the model has {len(self.layers)} layers, got {found}."
            )
        checked = []
        for layer_index, (layer, pair) in enumerate(zip(self.layers, state)):
            expected = (batch_size, layer.lstm.hidden_size)
            is_pair = isinstance(pair, (tuple, list)) and len(pair) == 2
            if not (is_pair and all(isinstance(t, torch.Tensor) and tuple(t.shape) == expected for t in pair)):
                found = (
                    [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in pair]
                    if is_pair
                    else type(pair).__name__
                )
                raise ValueError(
                    f"`state` layer {layer_index} must be an (h, c) pair of shape {expected} each (batch_size, "
                    f"layer size), got {found}."
                )
            if not all(t.is_floating_point() for t in pair):
                raise TypeError(f"`state` layer {layer_index} must be floating-point, got {[t.dtype for t in pair]}.")
            checked.append((pair[0].to(dtype), pair[1].to(dtype)))
        return tuple(checked)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        state: AwdLstmState | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AwdLstmOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Token ids from [`AwdLstmTokenizer`].
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)` or longer, *optional*):
                1 for real tokens, 0 for padding (left or right). Padded positions are skipped: they do not change
                the state and their outputs are zeros. During generation the mask covers the whole text so far;
                only its last `sequence_length` columns are used.
            state (`tuple` of `(h, c)` pairs, *optional*):
                The state returned by the previous call, to continue the same sequences (BPTT, generation). Zeros
                when omitted.
            inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, embedding_size)`, *optional*):
                Embedded inputs instead of `input_ids` (embedding dropout is then skipped, as fastai's `from_embeds`).

        Inputs the model cannot take raise a `ValueError` or `TypeError` naming the argument: ids that are not
        integers or not in the vocabulary, a tensor of the wrong rank or size, no token (`sequence_length` 0), mask
        values other than 0 and 1, a `state` that does not fit, NaN or infinite `inputs_embeds`. An empty batch gives
        empty outputs, as torch's layers do. Floating-point `inputs_embeds` and `state` of another dtype are cast to
        the model's.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")

        # 1. Embedding -> embedding dropout (whole words) -> input dropout (one mask per sequence)
        if inputs_embeds is None:
            self._check_input_ids(input_ids)
            inputs_embeds = self.embedding_dropout(self.embed_tokens(input_ids), input_ids, self.config.vocab_size)
        else:
            size = self.config.embedding_size
            if inputs_embeds.dim() != 3 or inputs_embeds.size(-1) != size or inputs_embeds.size(1) == 0:
                raise ValueError(
                    f"`inputs_embeds` must have shape (batch_size, sequence_length, {size}) with at least one token, "
                    f"got {tuple(inputs_embeds.shape)}."
                )
            inputs_embeds = _check_floats(inputs_embeds, "inputs_embeds", self.embed_tokens.weight.dtype)
        hidden_states = self.input_dropout(inputs_embeds)  # (batch, seq, embedding_size)
        batch_size, sequence_length, _ = hidden_states.shape
        if state is None:
            state = self.initial_state(batch_size, hidden_states.device, hidden_states.dtype)
        else:
            state = self._check_state(state, batch_size, hidden_states.dtype)

        # 2. Padding: keep only the mask columns of this chunk; a full mask takes the plain (unpacked) path
        layout = None
        if attention_mask is not None:
            if (
                attention_mask.dim() != 2
                or attention_mask.size(0) != batch_size
                or attention_mask.size(1) < sequence_length
            ):
                raise ValueError(
                    f"`attention_mask` has shape {tuple(attention_mask.shape)}, expected ({batch_size}, "
                    f"{sequence_length}) or longer."
                )
            attention_mask = attention_mask[:, -sequence_length:]
            if not _mask_is_full(attention_mask):
                layout = _PaddingLayout(attention_mask)

        # 3. The LSTM stack; each layer's state is (1, batch, size) for nn.LSTM and (batch, size) outside it
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        new_state = []
        for layer_index, layer in enumerate(self.layers):
            h, c = state[layer_index]
            output, (h_n, c_n) = layer(hidden_states, (h.unsqueeze(0), c.unsqueeze(0)), layout)
            new_state.append((h_n[0], c_n[0]))  # an all-padding row keeps the state it came with
            hidden_states = output
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if layer_index < len(self.layers) - 1:
                hidden_states = self.hidden_dropouts[layer_index](hidden_states)

        new_state = None if use_cache is False else tuple(new_state)
        if not return_dict:
            return tuple(v for v in (hidden_states, new_state, all_hidden_states) if v is not None)
        return AwdLstmOutput(last_hidden_state=hidden_states, state=new_state, hidden_states=all_hidden_states)


class AwdLstmForCausalLM(AwdLstmPreTrainedModel, GenerationMixin):
    """
    AWD-LSTM language model: the encoder, output (variational) dropout, and a decoder tied to the embedding. With
    `labels`, the loss is the next-token cross-entropy, plus AR and TAR in training mode (fastai's `RNNRegularizer`),
    so any training loop can simply backpropagate `outputs.loss`.
    """

    _tied_weights_keys = {"lm_head.weight": "awd_lstm.embed_tokens.weight"}

    def __init__(self, config: AwdLstmConfig):
        super().__init__(config)
        self.awd_lstm = AwdLstmModel(config)
        self.output_dropout = LockedDropout(config.output_dropout)
        self.lm_head = nn.Linear(config.embedding_size, config.vocab_size, bias=config.lm_head_bias)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.awd_lstm.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.awd_lstm.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.lm_head = new_embeddings

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """
        The parameters in ULMFiT's layer groups, in order: one group per LSTM layer, then the embedding with the
        decoder (fastai's `awd_lstm_lm_split`). Discriminative learning rates divide by 2.6 per group from the last
        one, and `freeze_to(-1)` trains only the last group (the embedding and decoder, as fastai does first when
        fine-tuning on a new vocabulary). Tied parameters appear once.
        """
        groups = [list(layer.parameters()) for layer in self.awd_lstm.layers]
        groups.append(list(self.awd_lstm.embed_tokens.parameters()) + list(self.lm_head.parameters()))
        seen, deduplicated = set(), []
        for group in groups:
            deduplicated.append([p for p in group if id(p) not in seen and not seen.add(id(p))])
        return deduplicated

    def _reorder_cache(self, state: AwdLstmState, beam_idx: torch.LongTensor) -> AwdLstmState:
        """Beam search: keep the state rows of the surviving beams."""
        return tuple(
            (h.index_select(0, beam_idx.to(h.device)), c.index_select(0, beam_idx.to(c.device))) for h, c in state
        )

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        state: AwdLstmState | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AwdLstmCausalLMOutput | tuple:
        r"""
        Args:
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Targets as in every transformers causal LM: usually `input_ids` itself, shifted inside the loss; -100
                (and padded positions) are ignored. For a BPTT stream whose targets are already the next tokens, pass
                them as `shift_labels=` as well (the transformers loss API), so the last position keeps its target.
                Ids outside the vocabulary (other than -100), another shape than `input_ids`, or an empty batch (whose
                mean loss would be NaN) raise a `ValueError` naming `labels`.

        See [`AwdLstmModel.forward`] for the other arguments and the inputs it rejects.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.awd_lstm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            state=state,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        raw = outputs.last_hidden_state  # (batch, seq, embedding_size)
        dropped = self.output_dropout(raw)
        logits = self.lm_head(dropped)  # (batch, seq, vocab_size)

        loss = None
        if labels is not None:
            _check_target_ids(labels, "labels", raw.shape[:2], self.config.vocab_size)
            if raw.size(0) == 0:
                raise ValueError("`labels` were given for an empty batch: a loss needs at least one sequence.")
            if kwargs.get("shift_labels") is not None:
                _check_target_ids(kwargs["shift_labels"], "shift_labels", raw.shape[:2], self.config.vocab_size)
            mask = None if attention_mask is None else attention_mask[:, -raw.size(1) :]
            loss_kwargs = {k: kwargs[k] for k in ("shift_labels", "num_items_in_batch") if k in kwargs}
            if loss_kwargs.get("shift_labels") is not None:
                loss_kwargs["shift_labels"] = loss_kwargs["shift_labels"].contiguous()
            elif mask is not None:
                # Neither predict a padded position nor predict from one (its output is a placeholder).
                labels = labels.masked_fill(mask == 0, -100)
                shifted = F.pad(labels[:, 1:], (0, 1), value=-100)
                loss_kwargs["shift_labels"] = shifted.masked_fill(mask == 0, -100)
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **loss_kwargs)
            if self.training:
                loss = loss + activation_regularization(
                    raw,
                    dropped,
                    mask,
                    self.config.activation_regularization,
                    self.config.temporal_activation_regularization,
                )

        output = AwdLstmCausalLMOutput(
            loss=loss,
            logits=logits,
            state=outputs.state,
            hidden_states=outputs.hidden_states,
            last_hidden_state=raw,
            dropped_hidden_state=dropped,
        )
        return output if return_dict else output.to_tuple()


class AwdLstmForSequenceClassification(AwdLstmPreTrainedModel):
    """
    The ULMFiT classifier (Howard & Ruder 2018): the AWD-LSTM encoder read with BPT3C, masked concat pooling, and
    fastai's two-block head. Loads the encoder of an `AwdLstmForCausalLM` folder with `from_pretrained` (the head is
    then newly initialised). `problem_type` follows transformers: single-label (cross-entropy), multi-label
    (binary cross-entropy, weighted by `config.pos_weight` if set; `config.label_thresholds` are the decision
    thresholds) or regression (`num_labels=1`; MSE or Huber, `config.regression_loss`; with `config.target_std` the
    head learns standardised targets and `logits` come back in the target's units; `config.target_range` clips
    them). In training mode the loss adds AR and TAR on the encoder output, as fastai's `TextLearner` does for
    classifiers too.
    """

    _keys_to_ignore_on_load_unexpected = [r"lm_head\."]
    # Inference reads columns in blocks of this many (`_pool_for_inference`): a document that ends inside a block
    # runs to the block's end, so fewer, longer LSTM calls against a few wasted steps per document
    _INFERENCE_BLOCK = 16

    def __init__(self, config: AwdLstmConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.awd_lstm = AwdLstmModel(config)
        self.classifier = AwdLstmClassificationHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.awd_lstm.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.awd_lstm.embed_tokens = value

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """
        ULMFiT's layer groups in order (fastai's `awd_lstm_clas_split`): the embedding, each LSTM layer, the head.
        Gradual unfreezing trains the last group first, then the last two, and so on.
        """
        groups = [list(self.awd_lstm.embed_tokens.parameters())]
        groups += [list(layer.parameters()) for layer in self.awd_lstm.layers]
        groups.append(list(self.classifier.parameters()))
        return groups

    def _window_starts(self, lengths: torch.Tensor) -> torch.Tensor:
        """
        Each document's first pooled token, counted from its own first token. BPT3C (§3.3) reads a document in chunks
        of `bpt3c_chunk_size` tokens from its start and pools the chunks that start within its last
        `bpt3c_max_length` tokens (fastai's `sl - i <= max_len`): the window depends on the document's length only,
        never on the batch it is read in.
        """
        chunk_size, max_length = self.config.bpt3c_chunk_size, self.config.bpt3c_max_length
        return ((lengths - max_length).clamp(min=0) + chunk_size - 1) // chunk_size * chunk_size

    def _read_bpt3c(self, input_ids, spans: list, attention_mask=None, output_hidden_states: bool = False):
        """BPT3C's reading loop, for training and inference: the encoder over `spans` `(start, end, rows, grad)` in
        order, on the first `rows` documents (those that ended have left), the state carried and detached between spans
        as fastai does between chunks; only `grad` spans build a graph. Yields each span's `AwdLstmOutput`."""
        state = None
        for start, end, rows, grad in spans:
            state = None if state is None else tuple((h[:rows].detach(), c[:rows].detach()) for h, c in state)
            mask = None if attention_mask is None else attention_mask[:rows, start:end]
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                encoded = self.awd_lstm(
                    input_ids[:rows, start:end],
                    mask,
                    state=state,
                    output_hidden_states=output_hidden_states,
                    return_dict=True,
                )
            state = encoded.state
            yield encoded

    def _encode_bpt3c(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, output_hidden_states: bool):
        """
        BPT3C for training (real tokens at the end of each row): chunks of `bpt3c_chunk_size` columns, a graph only
        for the chunks that hold some document's window (`_window_starts`), the others read without one. Returns the
        outputs of the graph chunks (batch, kept, embedding_size), each document's window over them (batch, kept), and
        with `output_hidden_states` every layer's output over all columns.
        """
        batch_size, length = input_ids.shape
        lengths = attention_mask.sum(1)
        first_columns = length - lengths + self._window_starts(lengths)  # (batch,) each window's first column
        first = int(first_columns.min()) if batch_size else length
        chunk_size = self.config.bpt3c_chunk_size
        chunks = [
            (i, min(i + chunk_size, length), batch_size, i + chunk_size > first) for i in range(0, length, chunk_size)
        ]
        outputs, all_hidden_states = [], []
        for (*_, pooled), encoded in zip(
            chunks, self._read_bpt3c(input_ids, chunks, attention_mask, output_hidden_states)
        ):
            if pooled:
                outputs.append(encoded.last_hidden_state)
            if output_hidden_states:
                all_hidden_states.append(encoded.hidden_states)
        kept_from = next(start for start, *_, pooled in chunks if pooled)
        columns = torch.arange(kept_from, length, device=input_ids.device)
        window = columns[None, :] >= first_columns[:, None]  # (batch, kept)
        hidden_states = None
        if output_hidden_states:
            hidden_states = tuple(torch.cat(layer, 1) for layer in zip(*all_hidden_states))
        return torch.cat(outputs, 1), window, hidden_states

    def _pool_for_inference(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, output_hidden_states: bool):
        """
        What `masked_concat_pool(*self._encode_bpt3c(...))` gives, for inference (no gradient, eval mode), reading
        only the tokens that are there: the documents are read longest first, real tokens at the front, in segments of
        columns (`_read_bpt3c` spans, the state carried exactly); a document leaves the batch after the segment where
        it ends (fastai's `real_bs`, the other way round), so only the few steps after a text that ends inside a
        segment run on padding, after its real tokens. Pooling is accumulated per segment over each document's window
        (`_window_starts`), so memory stays bounded by `bpt3c_max_length` columns whatever the length (unless
        `output_hidden_states` asks for every layer's output over every token). Returns the pooled features in input
        order, and the hidden states (real tokens first, longest document first) or None.
        """
        sequence_length, max_length = input_ids.size(1), self.config.bpt3c_max_length

        # 1. Longest document first, real tokens at the front (`forward` put them at the end)
        lengths = attention_mask.sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        lengths = lengths[order]
        positions = torch.arange(sequence_length, device=input_ids.device)
        to_front = (positions[None, :] + (sequence_length - lengths)[:, None]) % max(sequence_length, 1)
        input_ids = input_ids[order].gather(1, to_front)
        window_starts = self._window_starts(lengths)  # (batch,) first pooled column of each document

        # 2. Segments: blocks of columns, merged while the same documents are in them (up to `bpt3c_max_length`)
        lengths_list = lengths.tolist()
        block = min(self._INFERENCE_BLOCK, max_length)
        segments = []  # (start, end, documents still being read, no graph)
        for start in range(0, lengths_list[0] if lengths_list else 0, block):
            rows, end = sum(length > start for length in lengths_list), min(start + block, lengths_list[0])
            merge = segments and segments[-1][2] == rows and end - segments[-1][0] <= max_length
            segments.append((segments.pop()[0] if merge else start, end, rows, False))

        # 3. The encoder segment by segment (dropouts are off in eval mode); pooling accumulated in float32
        batch_size, size = input_ids.size(0), self.config.embedding_size
        weight = self.awd_lstm.embed_tokens.weight
        last = weight.new_zeros(batch_size, size, dtype=torch.float32)  # float32 under autocast too (bf16 outputs)
        total = weight.new_zeros(batch_size, size, dtype=torch.float32)
        maximum = weight.new_full((batch_size, size), float("-inf"), dtype=torch.float32)
        hidden_states = None
        for (start, end, rows, _), encoded in zip(
            segments, self._read_bpt3c(input_ids, segments, None, output_hidden_states)
        ):
            columns = positions[None, start:end]  # (1, segment)
            pooled = (columns >= window_starts[:rows, None]) & (columns < lengths[:rows, None])  # (rows, segment)
            output = encoded.last_hidden_state.float()  # (rows, segment, embedding_size)
            segment_max = output.masked_fill(~pooled.unsqueeze(-1), float("-inf")).amax(1)
            maximum[:rows] = torch.maximum(maximum[:rows], segment_max)
            total[:rows] += (output * pooled.unsqueeze(-1)).sum(1)
            ending = ((lengths[:rows] - 1 >= start) & (lengths[:rows] - 1 < end)).nonzero()[:, 0]
            last[ending] = output[ending, lengths[ending] - 1 - start]
            if output_hidden_states:
                if hidden_states is None:
                    hidden_states = tuple(
                        h.new_zeros(batch_size, sequence_length, h.size(-1)) for h in encoded.hidden_states
                    )
                for layer, layer_output in zip(hidden_states, encoded.hidden_states):
                    layer[:rows, start:end] = layer_output
        maximum = torch.where(torch.isinf(maximum), torch.zeros_like(maximum), maximum)  # a document with no token
        mean = total / (lengths - window_starts).clamp(min=1)[:, None]
        pooled = torch.cat([last, maximum, mean], dim=-1).to(weight.dtype)
        inverse = torch.argsort(order)
        if hidden_states is not None:  # back to input order, zeros after each document's real tokens
            real = (positions[None, :] < lengths[:, None])[inverse]
            hidden_states = tuple(layer[inverse] * real.unsqueeze(-1) for layer in hidden_states)
        return pooled[inverse], hidden_states  # (batch, 3 * embedding_size), in input order

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Token ids of whole documents, of any length (BPT3C reads them in chunks). A document's logits depend on
                its own tokens only, whatever its batch and padding.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for real tokens, 0 for padding, on either side: one contiguous block of real tokens per row, as for
                [`AwdLstmForCausalLM`] (a mask with a hole, `[1, 0, 1]`, raises a `ValueError`: an RNN cannot skip
                it). A row with no real token raises a `ValueError` naming it, rather than a prediction from no text
                (transformers' classifiers have no convention for it; our tokenizer always gives at least `xxbos`).
            labels (`torch.Tensor`, *optional*):
                Class ids `(batch_size,)` for single-label, multi-hot `(batch_size, num_labels)` for multi-label
                (values in [0, 1]), floats `(batch_size,)` (or `(batch_size, num_labels)`) for regression. A class
                id outside `num_labels`, another batch size, a shape or dtype the `problem_type` cannot take, NaN
                targets, or labels for an empty batch raise a `ValueError` or `TypeError` naming `labels`.
            output_hidden_states (`bool`, *optional*):
                Return the embedding output and every LSTM layer's output over the whole documents (as
                [`AwdLstmModel`]: `(batch_size, sequence_length, embedding_size)` for the embedding and the last layer,
                `hidden_size` for the others; zeros at padding). Memory then grows with the documents' length.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if input_ids is None:
            raise ValueError("AwdLstmForSequenceClassification needs `input_ids`.")
        self._check_input_ids(input_ids)
        if self.training and input_ids.size(0) < 2:
            raise ValueError(
                "In training mode the classifier head's BatchNorm needs at least 2 documents per batch (as fastai's "
                "head does); use a larger batch, drop a last batch of one, or call model.eval()."
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        elif attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)}, `input_ids` {tuple(input_ids.shape)}."
            )
        else:
            _check_documents(attention_mask)
        given_mask = attention_mask.bool()

        # 1. Real tokens of every row end at the last position (right padding is moved to the left)
        trailing = attention_mask.flip(1).int().argmax(1)  # (batch,) pads after the last real token
        if trailing.any():
            positions = torch.arange(input_ids.size(1), device=input_ids.device)
            index = (positions[None, :] - trailing[:, None]) % input_ids.size(1)  # (batch, seq)
            input_ids, attention_mask = input_ids.gather(1, index), attention_mask.gather(1, index)

        # 2. BPT3C encoding, concat pooling over each document's window, head
        if self.training or torch.is_grad_enabled():
            hidden_states, window, all_hidden_states = self._encode_bpt3c(
                input_ids, attention_mask, output_hidden_states
            )
            pooled = masked_concat_pool(hidden_states, window)
            real = attention_mask.bool()  # where `all_hidden_states` holds each document's tokens
        else:
            pooled, all_hidden_states = self._pool_for_inference(input_ids, attention_mask, output_hidden_states)
            real = torch.arange(input_ids.size(1), device=input_ids.device)[None, :] < attention_mask.sum(1)[:, None]
        scores = self.classifier(pooled)  # (batch, num_labels); standardised targets when `target_std` is set
        logits = self._in_target_units(scores)
        if output_hidden_states:
            all_hidden_states = self._hidden_states_in_place(all_hidden_states, real, given_mask)

        loss = None
        if labels is not None:
            loss = self._classification_loss(scores, labels)
            if self.training:  # fastai's RNNRegularizer reads the encoder output for both AR and TAR here
                loss = loss + activation_regularization(
                    hidden_states,
                    hidden_states,
                    window,
                    self.config.activation_regularization,
                    self.config.temporal_activation_regularization,
                )
        if not return_dict:
            output = (logits, all_hidden_states) if output_hidden_states else (logits,)
            return output if loss is None else (loss, *output)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=all_hidden_states)

    def _hidden_states_in_place(self, hidden_states, real: torch.Tensor, given_mask: torch.Tensor):
        """Each document's per-token outputs moved from where the encoder read them (`real`) to where its tokens were
        given (`given_mask`), zeros elsewhere: one `(batch, sequence_length, size)` tensor per layer."""
        config = self.config
        if hidden_states is None:  # an empty batch
            sizes = [config.embedding_size] + [config.hidden_size] * (config.num_hidden_layers - 1)
            weight = self.awd_lstm.embed_tokens.weight
            return tuple(weight.new_zeros(*given_mask.shape, size) for size in sizes + [config.embedding_size])
        placed = []
        for layer in hidden_states:
            out = layer.new_zeros(*given_mask.shape, layer.size(-1))
            out[given_mask] = layer[real]
            placed.append(out)
        return tuple(placed)

    def _in_target_units(self, scores: torch.Tensor) -> torch.Tensor:
        """A regression head's output in the target's units (`target_mean + target_std * scores`), clipped to
        `target_range`; else `scores`."""
        config = self.config
        if config.problem_type not in (None, "regression") or self.num_labels != 1:
            return scores
        if config.target_std is not None:
            scores = scores * config.target_std + config.target_mean
        if config.target_range is not None:
            scores = scores.clamp(*config.target_range)
        return scores

    def _classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """transformers' convention for `problem_type`, with a clear error for labels the loss cannot take."""
        if logits.size(0) == 0:
            raise ValueError("`labels` were given for an empty batch: a loss needs at least one document.")
        problem_type = self.config.problem_type
        if problem_type is None:
            if self.num_labels == 1:
                problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem_type = "single_label_classification"
            else:
                problem_type = "multi_label_classification"
        loss = self._loss_for(problem_type, logits, labels)
        self.config.problem_type = problem_type  # inferred from labels that proved usable, as transformers does
        return loss

    def _loss_for(self, problem_type: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        batch_size, shape = logits.size(0), tuple(labels.shape)
        if problem_type == "regression":
            if labels.numel() != logits.numel() or labels.size(0) != batch_size:
                expected = (batch_size,) if self.num_labels == 1 else tuple(logits.shape)
                raise ValueError(f"Regression `labels` must have shape {expected}, got {shape}.")
            if labels.dtype == torch.bool:
                raise TypeError("Regression `labels` must be numbers, got dtype torch.bool.")
            labels = _check_floats(labels if labels.is_floating_point() else labels.float(), "labels", logits.dtype)
            labels = labels.reshape(logits.shape)
            if self.config.target_std is not None and self.num_labels == 1:  # the head predicts standardised targets
                labels = (labels - self.config.target_mean) / self.config.target_std
            if self.config.regression_loss == "huber":
                return F.huber_loss(logits, labels, delta=1.0)
            return F.mse_loss(logits, labels)
        if problem_type == "single_label_classification":
            if labels.dtype not in (torch.int64, torch.int32):
                raise TypeError(
                    f"Single-label `labels` must be class ids (an integer tensor), got dtype {labels.dtype}."
                )
            if labels.numel() != batch_size or labels.dim() > 2:
                raise ValueError(
                    f"Single-label `labels` must be one class id per document, ({batch_size},); got {shape}."
                )
            low, high = torch.stack([labels.min(), labels.max()]).tolist()  # one sync for both ends
            if low < 0 or high >= self.num_labels:
                raise ValueError(
                    f"`labels` must be class ids in [0, {self.num_labels - 1}] (id2label={self.config.id2label}); got "
                    f"values in [{low}, {high}]."
                )
            return F.cross_entropy(logits, labels.reshape(-1).long())
        if tuple(labels.shape) != tuple(logits.shape):
            raise ValueError(f"Multi-label `labels` must have shape {tuple(logits.shape)}, got {shape}.")
        if not bool(((labels >= 0) & (labels <= 1)).all()):  # NaN fails both comparisons
            raise ValueError("Multi-label `labels` must be multi-hot targets with values in [0, 1].")
        pos_weight = self.config.pos_weight
        if pos_weight is not None:
            pos_weight = torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=pos_weight)


__all__ = [
    "CheckpointSizeMismatchError",
    "AwdLstmPreTrainedModel",
    "AwdLstmModel",
    "AwdLstmForCausalLM",
    "AwdLstmForSequenceClassification",
    "AwdLstmOutput",
    "AwdLstmCausalLMOutput",
]
