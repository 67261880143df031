"""The building blocks of the AWD-LSTM models in `modeling_awd_lstm.py`, and the checks at their door.

- the dropouts of AWD-LSTM (Merity et al. 2017, §4): embedding dropout on whole words, variational (locked) dropout,
  and DropConnect on the hidden-to-hidden matrix of each LSTM layer (`WeightDroppedLstm`);
- the exact handling of padding: `_PaddingLayout` splits a padded batch into columns real in every row (the fused
  kernel) and the padded columns around them (packed, or held at a zero state);
- AR/TAR, ULMFiT's masked concat pooling and fastai's classifier head;
- the input checks every head runs first: clear errors naming the argument instead of failures deep inside torch.
"""

import os

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_awd_lstm import AwdLstmConfig


def _bernoulli_mask(reference: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """A {0, 1/(1-p)} mask of `shape`, so that the expectation of the masked tensor is unchanged (inverted dropout)."""
    return reference.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


def _describe_type(value) -> str:
    """ "dtype torch.float32" for a tensor, the type's name for anything else (for error messages)."""
    return f"dtype {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__


def _check_token_ids(ids: torch.Tensor, name: str, vocab_size: int):
    """
    A clear error for ids an embedding cannot look up, instead of one deep inside torch: not an integer tensor, not
    `(batch_size, sequence_length)`, no token, or outside the vocabulary. An empty batch is fine (empty outputs, as
    torch's layers give). The range costs one device sync.
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"`{name}` must be an integer tensor, got {_describe_type(ids)}.")
    if ids.dim() != 2:
        raise ValueError(f"`{name}` must have shape (batch_size, sequence_length), got {tuple(ids.shape)}.")
    if ids.size(1) == 0:
        raise ValueError(f"`{name}` has shape {tuple(ids.shape)}: every row needs at least one token.")
    if ids.numel():
        low, high = torch.stack([ids.min(), ids.max()]).tolist()  # one sync for both ends
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"`{name}` holds ids in [{low}, {high}] but the vocabulary has {vocab_size} tokens: was this text "
                "encoded with another model's tokenizer?"
            )


def _check_target_ids(labels: torch.Tensor, name: str, shape: tuple[int, ...], vocab_size: int):
    """Next-token targets: integers of `shape`, each in the vocabulary or -100 (ignored). One device sync."""
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"`{name}` must be an integer tensor, got {_describe_type(labels)}.")
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(f"`{name}` has shape {tuple(labels.shape)}, expected {tuple(shape)} (one per input token).")
    if bool((((labels < 0) & (labels != -100)) | (labels >= vocab_size)).any()):
        real = labels[labels != -100]
        raise ValueError(
            f"`{name}` holds ids in [{int(real.min())}, {int(real.max())}] but the vocabulary has {vocab_size} tokens "
            "(only -100, ignored, may lie outside it)."
        )


def _check_floats(tensor: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
    """
    A float input cast to the model's `dtype` (as transformers' vision models cast `pixel_values`), with a clear error
    for an integer or boolean tensor and for NaN or infinite values (one device sync).
    """
    if not tensor.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {tensor.dtype}.")
    tensor = tensor.to(dtype)
    if tensor.numel() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"`{name}` holds NaN or infinite values (in {dtype}).")
    return tensor


def _mask_is_full(attention_mask: torch.Tensor) -> bool:
    """Whether `attention_mask` marks every position real, with a clear error for values other than 0 and 1. One
    device sync for both answers."""
    if attention_mask.dtype == torch.bool:
        return bool(attention_mask.all())
    binary = ((attention_mask == 0) | (attention_mask == 1)).all()
    binary, full = torch.stack([binary, (attention_mask == 1).all()]).tolist()
    if not binary:
        values = attention_mask.unique()[:5].tolist()
        raise ValueError(
            f"`attention_mask` must hold 0 (padding) and 1 (real token) only, got values such as {values}."
        )
    return bool(full)


def _check_documents(attention_mask: torch.Tensor):
    """
    The classifier's mask: each row one contiguous run of real tokens (left or right padding), at least one of them,
    and only 0 and 1. A clear error naming the rows otherwise; one device sync when the mask is fine.
    """
    mask = attention_mask.bool()  # (batch, seq)
    lengths, starts = mask.sum(1), mask.int().argmax(1)  # (batch,)
    positions = torch.arange(mask.size(1), device=mask.device)
    one_run = (positions >= starts[:, None]) & (positions < (starts + lengths)[:, None])  # (batch, seq)
    holes, empty = (one_run != mask).any(1), lengths == 0
    values = torch.zeros_like(empty) if attention_mask.dtype == torch.bool else (mask != attention_mask).any(1)
    if not bool((holes | empty | values).any()):
        return
    problems = (
        (values, "hold values other than 0 and 1"),
        (empty, "have no real token: a prediction from no text would be a silent wrong result; drop those documents"),
        (holes, "have padding between real tokens: each row must be one contiguous block of real tokens"),
    )
    for rows, problem in problems:
        if bool(rows.any()):
            raise ValueError(f"`attention_mask` rows {rows.nonzero()[:, 0].tolist()} {problem}.")


# generate() settings that must be whole numbers: at least 1, or at least 0 (transformers checks some of them only
# after dividing by them, or compares them with ints: `num_beams=0` is a ZeroDivisionError, `num_beams="2"` a
# TypeError)
_GENERATION_COUNTS = {
    "num_beams": 1,
    "num_return_sequences": 1,
    "num_beam_groups": 1,
    "max_new_tokens": 1,
    "max_length": 1,
    "min_new_tokens": 0,
    "min_length": 0,
    "no_repeat_ngram_size": 0,
    "top_k": 0,
}


def _check_generation_counts(generation_config, kwargs: dict) -> None:
    """Raise a `ValueError` naming the setting for a count of `generate()` that is not a whole number in range."""
    for name, low in _GENERATION_COUNTS.items():
        value = kwargs[name] if name in kwargs else getattr(generation_config, name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"generate(): `{name}` must be a whole number of at least {low}, got {value!r}.")


def _unreadable_weights(name_or_path, error: Exception) -> OSError | None:
    """
    An `OSError` naming the model for weights `from_pretrained` could not read (a truncated or empty
    `model.safetensors`, a file given where a folder is expected), or None when `error` is not one of those.
    """
    if type(error).__name__ not in ("SafetensorError", "UnpicklingError", "HeaderTooLarge", "EOFError"):
        return None
    path = os.fspath(name_or_path) if isinstance(name_or_path, (str, os.PathLike)) else str(name_or_path)
    if os.path.isfile(path):
        return OSError(
            f"{path} is a file: `from_pretrained` takes the folder holding config.json and the weights, or a Hub id."
        )
    weights = [os.path.join(path, name) for name in ("model.safetensors", "pytorch_model.bin")]
    found = ", ".join(f"{file} ({os.path.getsize(file):,} bytes)" for file in weights if os.path.isfile(file))
    return OSError(
        f"The weights of {path} cannot be read ({type(error).__name__}: {error}){': ' + found if found else ''}. The "
        "file is truncated, empty or not a checkpoint: save or download the model again."
    )


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
