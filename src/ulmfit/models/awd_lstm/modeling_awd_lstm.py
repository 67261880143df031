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
(Howard & Ruder §3.3), masked concat pooling and fastai's `PoolingLinearClassifier` head.
"""

from dataclasses import dataclass

import torch
from safetensors import safe_open
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import SAFE_WEIGHTS_NAME, ModelOutput, cached_file, logging

from .configuration_awd_lstm import AwdLstmConfig


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


def _bernoulli_mask(reference: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """A {0, 1/(1-p)} mask of `shape`, so that the expectation of the masked tensor is unchanged (inverted dropout)."""
    return reference.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


def _init_batch_norm(module: nn.Module):
    """
    A BatchNorm layer at identity. Its running statistics are buffers, which transformers 5 does not initialise on its
    own: a layer that `from_pretrained` creates (a new head) has nothing else to set them.
    """
    init.ones_(module.weight)
    init.zeros_(module.bias)
    init.zeros_(module.running_mean)
    init.ones_(module.running_var)
    init.zeros_(module.num_batches_tracked)


class EmbeddingDropout(nn.Module):
    """
    Embedding dropout (Gal & Ghahramani 2016; AWD-LSTM §4.3, fastai `EmbeddingDropout`, salesforce `dropoute`).

    Drops whole words: one Bernoulli draw per vocabulary row, so every occurrence of a dropped word in the batch is
    zeroed, and the kept rows are rescaled by 1/(1-p). Masking the gathered rows with the row mask is equivalent to
    masking the matrix first, and much cheaper for a 60k-word vocabulary.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, inputs_embeds: torch.Tensor, input_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
        if not self.training or self.p == 0:
            return inputs_embeds
        row_mask = _bernoulli_mask(inputs_embeds, (vocab_size, 1), self.p)  # (vocab_size, 1)
        return inputs_embeds * row_mask[input_ids]  # (batch, seq, emb) * (batch, seq, 1)


class LockedDropout(nn.Module):
    """
    Variational ("locked") dropout (Gal & Ghahramani 2016; AWD-LSTM §4.2, fastai `RNNDropout`): one mask per sequence,
    shared by every time step, instead of a fresh mask per element.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return hidden_states
        batch_size, _, hidden_size = hidden_states.shape
        return hidden_states * _bernoulli_mask(hidden_states, (batch_size, 1, hidden_size), self.p)


def _autocast_lstm_unsupported(hidden_states: torch.Tensor) -> bool:
    """Whether CPU autocast would send an LSTM to a oneDNN kernel this CPU does not have (bf16/fp16 need AVX-512)."""
    if hidden_states.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return False
    dtype = torch.get_autocast_dtype("cpu")
    if dtype == torch.bfloat16:
        return not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return dtype == torch.float16 and not torch.ops.mkldnn._is_mkldnn_fp16_supported()


class WeightDroppedLstm(GradientCheckpointingLayer):
    """
    A one-layer LSTM with DropConnect on its hidden-to-hidden matrix (Wan et al. 2013; AWD-LSTM §2, fastai
    `WeightDropout`, salesforce `WeightDrop`): one mask per forward call, shared by every time step.

    The dropped matrix is substituted for `weight_hh_l0` for the duration of one call through `functional_call`, so
    `nn.LSTM` still runs its fused kernel and gradients flow to the raw weight. Under `gradient_checkpointing_enable()`
    the layer keeps only its inputs for the backward pass and runs again there, with the same DropConnect mask (torch's
    checkpoint restores the random state).
    """

    def __init__(self, input_size: int, hidden_size: int, weight_dropout: float):
        super().__init__()
        self.weight_dropout = weight_dropout
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, hidden_states: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], layout=None):
        if _autocast_lstm_unsupported(hidden_states):
            # CPU autocast sends LSTMs to oneDNN, which has no bf16/fp16 LSTM on CPUs without AVX-512: this layer runs
            # in its weights' dtype instead (the other ops keep autocast's), rather than failing inside torch
            dtype = self.lstm.weight_ih_l0.dtype
            with torch.autocast("cpu", enabled=False):
                return self._forward(hidden_states.to(dtype), (state[0].to(dtype), state[1].to(dtype)), layout)
        return self._forward(hidden_states, state, layout)

    def _forward(self, hidden_states: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], layout=None):
        weight_hh = self.lstm.weight_hh_l0
        if self.training and self.weight_dropout > 0:
            weight_hh = F.dropout(weight_hh, p=self.weight_dropout, training=True)
        if layout is None:
            return self._run(hidden_states, state, weight_hh)
        # Padded: segment by segment with the one dropped matrix; the state runs on undetached, as in one packed call
        outputs = []
        for start, end, packing in layout.segments:
            inputs = hidden_states[:, start:end]
            if packing is None:  # columns real in every row
                output, state = self._run(inputs, state, weight_hh)
            elif start == 0 and layout.holds_zero_state(state):
                output, state = self._run_holding_zero(inputs, state, weight_hh, layout.leading_padding)
            else:
                output, new_state = self._run(packing.pack(inputs), state, weight_hh)
                output, state = packing.unpack(output, state, new_state)
            outputs.append(output)
        return torch.cat(outputs, 1) if len(outputs) > 1 else outputs[0], state

    def _run(self, hidden_states, state: tuple[torch.Tensor, torch.Tensor], weight_hh: torch.Tensor):
        if isinstance(hidden_states, torch.Tensor) and hidden_states.size(1) == 1:
            # One time step (generation): the LSTM cell kernel is several times faster than the sequence kernel here
            h, c = torch.lstm_cell(
                hidden_states[:, 0],
                (state[0][0], state[1][0]),
                self.lstm.weight_ih_l0,
                weight_hh,
                self.lstm.bias_ih_l0,
                self.lstm.bias_hh_l0,
            )
            return h.unsqueeze(1), (h.unsqueeze(0), c.unsqueeze(0))
        if weight_hh is not self.lstm.weight_hh_l0:
            return functional_call(self.lstm, {"weight_hh_l0": weight_hh}, (hidden_states, state), strict=False)
        return self.lstm(hidden_states, state)

    def _run_holding_zero(self, hidden_states, state, weight_hh: torch.Tensor, padding: torch.Tensor):
        """
        Padding that comes before each row's real tokens, from an all-zeros state, through the fused kernel: one
        extra input feature, 1 at padding, shuts the input gate and opens the forget gate there (pre-activations
        pushed by -/+ `_GATE_SATURATION`, where the sigmoid is exactly 0 and 1). From `h = c = 0` the state then stays
        all zeros through the padding, exactly as if it had been skipped, and the padded outputs are zeros.
        """
        size = self.lstm.hidden_size
        weight_ih = self.lstm.weight_ih_l0
        # the extra feature, then zeros up to a multiple of 16 features (oneDNN is much slower on odd sizes)
        extra = 16 - weight_ih.size(1) % 16
        shift = weight_ih.new_zeros(4 * size, extra)  # PyTorch's gate order: input, forget, cell, output
        shift[:size, 0], shift[size : 2 * size, 0] = -_GATE_SATURATION, _GATE_SATURATION
        is_padding = padding.unsqueeze(-1).to(hidden_states.dtype)  # (batch, seq, 1)
        features = torch.cat([is_padding, is_padding.new_zeros(*is_padding.shape[:2], extra - 1)], dim=-1)
        inputs = torch.cat([hidden_states * (1 - is_padding), features], dim=-1)
        weights = [torch.cat([weight_ih, shift], dim=1), weight_hh, self.lstm.bias_ih_l0, self.lstm.bias_hh_l0]
        output, h, c = torch.lstm(inputs, state, weights, train=self.training, **_ONE_LAYER_LSTM)
        return output * (1 - is_padding), (h, c)


# Gate pre-activation shift for padding in `_run_holding_zero`: sigmoid(+-1e4) is exactly 1 / 0 in float32 and bf16
_GATE_SATURATION = 1e4
# `torch.lstm`'s flags for `WeightDroppedLstm.lstm`, as `nn.LSTM` passes them: one batch-first layer, no dropout
_ONE_LAYER_LSTM = {"has_biases": True, "num_layers": 1, "dropout": 0.0, "bidirectional": False, "batch_first": True}


class _PackedSegment:
    """The columns of a padded batch that some rows pad: `pack` moves each row's real tokens to the front and packs
    them, `unpack` puts the outputs back (zeros at padding) and keeps the state of a row with no real token."""

    def __init__(self, mask: torch.Tensor):
        self.mask = mask  # (batch, seq) bool, one contiguous run of real tokens (or none) per row
        self.lengths = mask.sum(dim=1)  # (batch,)
        self.starts = mask.int().argmax(dim=1)  # first real position; 0 for an all-padding row
        positions = torch.arange(mask.size(1), device=mask.device)
        # (batch, seq): for the aligned position t, the original position starts + t
        self.gather_index = (self.starts[:, None] + positions).clamp(max=mask.size(1) - 1)
        # (batch, seq): for the original position p, the aligned position p - starts
        self.scatter_index = (positions - self.starts[:, None]).clamp(min=0)
        self.empty_rows = self.lengths == 0

    def pack(self, hidden_states: torch.Tensor) -> nn.utils.rnn.PackedSequence:
        index = self.gather_index.unsqueeze(-1).expand(-1, -1, hidden_states.size(-1))
        aligned = hidden_states.gather(1, index)  # (batch, seq, hidden), real tokens first
        lengths = self.lengths.clamp(min=1).cpu()  # an all-padding row runs one step; its state is restored after
        return nn.utils.rnn.pack_padded_sequence(aligned, lengths, batch_first=True, enforce_sorted=False)

    def unpack(self, packed: nn.utils.rnn.PackedSequence, state_before: tuple, state_after: tuple):
        aligned, _ = nn.utils.rnn.pad_packed_sequence(packed, batch_first=True, total_length=self.mask.size(1))
        index = self.scatter_index.unsqueeze(-1).expand(-1, -1, aligned.size(-1))
        output = aligned.gather(1, index) * self.mask.unsqueeze(-1).to(aligned.dtype)  # zeros at padding
        keep = self.empty_rows[None, :, None]  # (1, batch, 1): a row with no real token here keeps its state
        return output, tuple(torch.where(keep, old, new) for old, new in zip(state_before, state_after))


class _PaddingLayout:
    """
    Where the real tokens of a padded batch are; `WeightDroppedLstm.forward` reads it. Each row of `attention_mask`
    must hold one contiguous run of ones (left or right padding). `segments` are `(start, end, packing)`: the block of
    columns real in every row (`packing` None, the fused kernel) and the padded columns around it (`_PackedSegment`,
    the exact packed path). `leading_padding` marks padding before each row's text, which takes the fused kernel
    from an all-zeros state (`holds_zero_state`, `WeightDroppedLstm._run_holding_zero`).
    """

    def __init__(self, attention_mask: torch.Tensor):
        mask, sequence_length = attention_mask.bool(), attention_mask.size(1)  # (batch, seq)
        lengths, starts = mask.sum(dim=1), mask.int().argmax(dim=1)
        positions = torch.arange(sequence_length, device=mask.device)
        expected = (positions >= starts[:, None]) & (positions < (starts + lengths)[:, None])
        if not torch.equal(expected, mask):
            raise ValueError(
                "`attention_mask` must mark one contiguous block of real tokens per row (left or right padding); "
                "got a row with padding between real tokens."
            )
        full = mask.all(dim=0).nonzero()  # every row's run covers these columns: they are one block
        first, last = (int(full[0]), int(full[-1]) + 1) if len(full) else (sequence_length, sequence_length)
        self.segments = [
            (start, end, None if plain else _PackedSegment(mask[:, start:end]))
            for start, end, plain in ((0, first, False), (first, last, True), (last, sequence_length, False))
            if end > start
        ]
        # before a full block every row's run reaches into the block, so its padding there comes first; without a
        # full block, so it does when every run ends at the last column (left padding, some rows still all padding).
        left_padded = bool(((starts + lengths == sequence_length) | (lengths == 0)).all())
        self.leading_padding = ~mask[:, :first] if first > 0 and (first < sequence_length or left_padded) else None

    def holds_zero_state(self, state: tuple[torch.Tensor, torch.Tensor]) -> bool:
        """Whether the leading padding can run from zeros: there is some, and its rows have h = c = 0."""
        if self.leading_padding is None:
            return False
        rows = self.leading_padding.any(dim=1)  # (batch,) the rows that pad before their text
        return not any(bool(tensor[:, rows].any()) for tensor in state)


def activation_regularization(
    raw: torch.Tensor, dropped: torch.Tensor, mask: torch.Tensor | None, alpha: float, beta: float
) -> torch.Tensor:
    """
    AR + TAR (AWD-LSTM §4.6, fastai `RNNRegularizer`): `alpha * mean(dropped ** 2)` plus
    `beta * mean((raw_t - raw_{t-1}) ** 2)`, over real tokens only (and pairs of consecutive real tokens for TAR).
    `raw` is the last LSTM layer's output, `dropped` the same after output dropout, both (batch, seq, hidden).
    """
    if mask is None:
        mask = raw.new_ones(raw.shape[:2])
    mask = mask.to(raw.dtype).unsqueeze(-1)  # (batch, seq, 1)
    hidden_size = raw.size(-1)
    penalty = raw.new_zeros(())
    if alpha:
        penalty = penalty + alpha * (dropped.float().pow(2) * mask).sum() / (mask.sum() * hidden_size).clamp(min=1)
    if beta and raw.size(1) > 1:
        pair_mask = mask[:, 1:] * mask[:, :-1]  # both ends of the step are real tokens
        step = (raw[:, 1:] - raw[:, :-1]).float().pow(2) * pair_mask
        penalty = penalty + beta * step.sum() / (pair_mask.sum() * hidden_size).clamp(min=1)
    return penalty


def masked_concat_pool(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """
    ULMFiT's concat pooling (§3.3) over real tokens only: [last real token, max, mean] (fastai `masked_concat_pool`).
    Real tokens must end at the last position of each row (left padding), as `AwdLstmForSequenceClassification`
    arranges.
    """
    mask = mask.bool().unsqueeze(-1)  # (batch, seq, 1)
    count = mask.sum(1).clamp(min=1).to(hidden_states.dtype)  # (batch, 1)
    last = hidden_states[:, -1]  # (batch, hidden)
    maximum = hidden_states.masked_fill(~mask, float("-inf")).max(1).values
    maximum = torch.where(torch.isinf(maximum), torch.zeros_like(maximum), maximum)  # a row with no real token
    mean = (hidden_states * mask).sum(1) / count
    return torch.cat([last, maximum, mean], dim=-1)  # (batch, 3 * hidden)


class AwdLstmClassificationHead(nn.Module):
    """
    fastai's `PoolingLinearClassifier` head: two `LinBnDrop` blocks, BatchNorm -> Dropout -> Linear (no bias), with a
    ReLU between them, from the 3 x embedding_size pooled features to `num_labels`.
    """

    def __init__(self, config: AwdLstmConfig):
        super().__init__()
        pooled_size = 3 * config.embedding_size
        self.norm_in = nn.BatchNorm1d(pooled_size)
        self.dropout_in = nn.Dropout(config.output_dropout)
        self.dense = nn.Linear(pooled_size, config.classifier_hidden_size, bias=False)
        self.activation = nn.ReLU()
        self.norm_hidden = nn.BatchNorm1d(config.classifier_hidden_size)
        self.dropout_hidden = nn.Dropout(config.classifier_dropout)
        self.out_proj = nn.Linear(config.classifier_hidden_size, config.num_labels, bias=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.dense(self.dropout_in(self.norm_in(pooled))))
        return self.out_proj(self.dropout_hidden(self.norm_hidden(hidden)))


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
        """`PreTrainedModel.from_pretrained`, with a clear error when the checkpoint's vocabulary does not fit."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
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
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"`input_ids` must be an integer tensor, got dtype {input_ids.dtype}.")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise ValueError(
                f"`input_ids` holds ids in [{int(input_ids.min())}, {int(input_ids.max())}] but the vocabulary has "
                f"{self.config.vocab_size} tokens: was this text encoded with another model's tokenizer?"
            )


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
        hidden_states = self.input_dropout(inputs_embeds)  # (batch, seq, embedding_size)
        batch_size, sequence_length, _ = hidden_states.shape
        if state is None:
            state = self.initial_state(batch_size, hidden_states.device, hidden_states.dtype)
        elif len(state) != len(self.layers):
            raise ValueError(f"`state` has {len(state)} layers, the model has {len(self.layers)}.")

        # 2. Padding: keep only the mask columns of this chunk; a full mask takes the plain (unpacked) path
        layout = None
        if attention_mask is not None:
            attention_mask = attention_mask[:, -sequence_length:]
            if attention_mask.shape != (batch_size, sequence_length):
                raise ValueError(
                    f"`attention_mask` has shape {tuple(attention_mask.shape)}, expected ({batch_size}, "
                    f"{sequence_length}) or longer."
                )
            if not attention_mask.bool().all():
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

        See [`AwdLstmModel.forward`] for the other arguments.
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
    (binary cross-entropy) or regression (`num_labels=1`). In training mode the loss adds AR and TAR on the encoder
    output, as fastai's `TextLearner` does for classifiers too.
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
                1 for real tokens, 0 for padding, on either side.
            labels (`torch.Tensor`, *optional*):
                Class ids `(batch_size,)` for single-label, multi-hot `(batch_size, num_labels)` for multi-label,
                floats `(batch_size,)` for regression.
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
        logits = self.classifier(pooled)  # (batch, num_labels)
        if output_hidden_states:
            all_hidden_states = self._hidden_states_in_place(all_hidden_states, real, given_mask)

        loss = None
        if labels is not None:
            loss = self._classification_loss(logits, labels)
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
        if hidden_states is None:  # no document has a token
            sizes = [config.embedding_size] + [config.hidden_size] * (config.num_hidden_layers - 1)
            weight = self.awd_lstm.embed_tokens.weight
            return tuple(weight.new_zeros(*given_mask.shape, size) for size in sizes + [config.embedding_size])
        placed = []
        for layer in hidden_states:
            out = layer.new_zeros(*given_mask.shape, layer.size(-1))
            out[given_mask] = layer[real]
            placed.append(out)
        return tuple(placed)

    def _classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """transformers' convention for `problem_type`, with a clear error for labels outside `num_labels`."""
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).view(-1))
        if self.config.problem_type == "single_label_classification":
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_labels):
                raise ValueError(
                    f"Labels must be class ids in [0, {self.num_labels - 1}] (id2label={self.config.id2label}); got "
                    f"values in [{int(labels.min())}, {int(labels.max())}]."
                )
            return F.cross_entropy(logits, labels.view(-1))
        if labels.shape != logits.shape:
            raise ValueError(f"Multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}.")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


__all__ = [
    "CheckpointSizeMismatchError",
    "AwdLstmPreTrainedModel",
    "AwdLstmModel",
    "AwdLstmForCausalLM",
    "AwdLstmForSequenceClassification",
    "AwdLstmOutput",
    "AwdLstmCausalLMOutput",
]
