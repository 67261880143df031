"""PyTorch GRU encoder-decoder with additive attention, as a transformers model.

This is the French -> English translator of fast.ai's 2018 course (`courses/dl2/translate.ipynb`, lesson 11, the
"All" model: bidirectional encoder + attention + teacher forcing), itself a small version of Bahdanau, Cho & Bengio,
"Neural Machine Translation by Jointly Learning to Align and Translate" (ICLR 2015, arXiv:1409.0473):

- the encoder is a bidirectional GRU over the source embeddings; its final state (both directions concatenated per
  layer) is projected to the decoder's initial state (the notebook's `out_enc`);
- at every step the decoder scores each source position with additive attention, `v . tanh(W1 e_s + W2 h)`, where
  `h` is the decoder's top-layer state before the step, and feeds `[embedding of the previous word, context]` through a
  linear layer (`l3`) into its GRU ("input feeding");
- the output layer is tied to the decoder embedding, and the loss is cross-entropy over the target words.

What we changed from the notebook:

- padding is masked: the encoder packs the source sequences, attention gives padded positions zero weight, and the
  loss ignores padded targets (the notebook's loss counted pad positions);
- the recurrent state is passed in and returned (`state=`, a [`GruSeq2SeqState`]), so `generate()` decodes one token
  per step with the state carried (greedy and beam search), and the source keys `W1 e_s` are projected once per
  sentence instead of once per step;
- teacher forcing is a forward argument (`teacher_forcing_ratio`), drawn once per step for the whole batch as the
  notebook's `Seq2SeqStepper` does; the schedule that decays it lives in the training script;
- the two vocabularies resize separately: `resize_token_embeddings` the source one (the input embedding, as in
  transformers), `resize_decoder_token_embeddings` the target one (decoder embedding and tied output layer);
- gradient checkpointing recomputes the encoder GRU as one block and the decoder one step at a time.

With full teacher forcing the decoder still runs step by step, because each step's attention reads the state the
previous step produced (input feeding); what the fast path saves is the output layer, computed once for all steps.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, LogitsProcessor, LogitsProcessorList, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, logging

from .configuration_gru_seq2seq import GruSeq2SeqConfig


logger = logging.get_logger(__name__)

# Every head in this file, for the `auto_map` of a folder saved with remote code (see `save_pretrained`).
_AUTO_MAP = {
    "AutoModel": "modeling_gru_seq2seq.GruSeq2SeqModel",
    "AutoModelForSeq2SeqLM": "modeling_gru_seq2seq.GruSeq2SeqForConditionalGeneration",
}


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: `decoder_start_token_id` followed by the labels but the last (Marian's)."""
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def _check_ids(ids: torch.Tensor, vocab_size: int, name: str):
    """
    A clear error for ids an embedding cannot look up, instead of an error deep inside torch: not an integer tensor,
    not `(batch_size, sequence_length)`, no sentence or no token (the encoder packs its sources, and
    `pack_padded_sequence` cannot pack nothing), or outside the vocabulary (one device sync).
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32):
        found = f"dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"`{name}` must be an integer tensor, got {found}.")
    if ids.dim() != 2:
        raise ValueError(f"`{name}` must have shape (batch_size, sequence_length), got {tuple(ids.shape)}.")
    if 0 in ids.shape:
        raise ValueError(f"`{name}` has shape {tuple(ids.shape)}: it needs at least one sentence and one token.")
    low, high = torch.stack([ids.min(), ids.max()]).tolist()  # one sync for both ends
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"`{name}` holds ids in [{low}, {high}] but its vocabulary has {vocab_size} tokens: was it encoded with "
            "another model's tokenizer?"
        )


@dataclass
class GruSeq2SeqState(ModelOutput):
    """
    The decoder's recurrent state, carried between calls (and between generation steps).

    Args:
        hidden_state (`torch.FloatTensor` of shape `(num_hidden_layers, batch_size, embedding_size)`):
            The decoder GRU's state, layer-first as `nn.GRU` takes it.
        attention_keys (`torch.FloatTensor` of shape `(batch_size, source_length, embedding_size)`):
            The encoder outputs projected by the attention's `W1` (the notebook's `w1e`), computed once per sentence.
    """

    hidden_state: torch.FloatTensor | None = None
    attention_keys: torch.FloatTensor | None = None

    def index_select(self, batch_index: torch.LongTensor) -> "GruSeq2SeqState":
        """The state of the rows `batch_index` (beam search keeps the surviving beams this way)."""
        return GruSeq2SeqState(
            hidden_state=self.hidden_state.index_select(1, batch_index.to(self.hidden_state.device)),
            attention_keys=self.attention_keys.index_select(0, batch_index.to(self.attention_keys.device)),
        )


@dataclass
class GruSeq2SeqEncoderOutput(ModelOutput):
    """
    Output of [`GruSeq2SeqEncoder`]. Every tensor is batch-first, so that `generate()` can repeat it for beams.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, source_length, 2 * hidden_size)`):
            Forward and backward GRU outputs of the top layer, concatenated (zeros at padded positions).
        final_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_hidden_layers, 2 * hidden_size)`):
            Each layer's final forward and backward states, concatenated (the notebook's reshaped `h`).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The embedded source and the top layer's outputs (`nn.GRU` does not expose the layers in between).
    """

    last_hidden_state: torch.FloatTensor | None = None
    final_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class GruSeq2SeqModelOutput(ModelOutput):
    """
    Output of [`GruSeq2SeqModel`], named as transformers' `Seq2SeqModelOutput`.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, target_length, embedding_size)`):
            Decoder GRU outputs of the top layer.
        state ([`GruSeq2SeqState`]):
            The decoder state after the last step; feed it back as `state=` to continue (`None` when
            `use_cache=False`).
        decoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The embedded decoder inputs and the decoder outputs.
        decoder_attentions (`None`):
            Always `None`: a recurrent decoder has no self-attention (the field exists for `generate()`).
        cross_attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            One tensor of shape `(batch_size, 1, target_length, source_length)`: the attention weights of each decoder
            step over the source positions (one "layer" with one "head", in transformers' layout).
        encoder_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, source_length, 2 * hidden_size)`):
            The encoder outputs.
        encoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            As in [`GruSeq2SeqEncoderOutput`].
    """

    last_hidden_state: torch.FloatTensor | None = None
    state: GruSeq2SeqState | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class GruSeq2SeqLMOutput(ModelOutput):
    """
    Output of [`GruSeq2SeqForConditionalGeneration`], named as transformers' `Seq2SeqLMOutput`.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is provided):
            Cross-entropy over the target words; padded targets (pad id or -100) are ignored.
        logits (`torch.FloatTensor` of shape `(batch_size, target_length, decoder_vocab_size)`):
            Next-word scores at each decoder step.
        state, decoder_hidden_states, decoder_attentions, cross_attentions, encoder_last_hidden_state,
        encoder_hidden_states: as in [`GruSeq2SeqModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    state: GruSeq2SeqState | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None


class GruSeq2SeqEncoder(nn.Module):
    """
    Source embedding -> dropout -> bidirectional multi-layer GRU (the notebook's `emb_enc`, `emb_enc_drop`,
    `gru_enc`). Padded sequences are packed, so a sentence encodes the same alone or in a padded batch. With
    `config.encoder_bidirectional_layers=k` below `num_hidden_layers`, only the first `k` layers are bidirectional
    (`gru`) and the rest a unidirectional GRU of twice the size (`upper_gru`), as in Google's NMT.
    """

    main_input_name = "input_ids"  # generate() reads it from the attribute named `encoder`

    def __init__(self, config: GruSeq2SeqConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.input_dropout = nn.Dropout(config.input_dropout)
        layers = config.num_hidden_layers
        self.bidirectional_layers = config.encoder_bidirectional_layers or layers
        self.gru = nn.GRU(
            config.embedding_size,
            config.hidden_size,
            num_layers=self.bidirectional_layers,
            # nn.GRU only drops between layers: with one layer there is nothing to drop (and it would warn)
            dropout=config.encoder_dropout if self.bidirectional_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        upper = layers - self.bidirectional_layers
        self.upper_gru = None
        if upper:
            self.upper_gru = nn.GRU(
                2 * config.hidden_size,
                2 * config.hidden_size,
                num_layers=upper,
                dropout=config.encoder_dropout if upper > 1 else 0.0,
                batch_first=True,
            )
            self.between_dropout = nn.Dropout(config.encoder_dropout)  # what nn.GRU drops between its own layers
        # Set by `model.gradient_checkpointing_enable()`: the GRU (all its layers, one `nn.GRU` call) is recomputed in
        # the backward pass instead of keeping its activations.
        self.gradient_checkpointing = False

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> GruSeq2SeqEncoderOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, source_length)`):
                Source token ids (each sentence ends with `xxeos`).
            attention_mask (`torch.Tensor` of shape `(batch_size, source_length)`, *optional*):
                1 for real tokens, 0 for padding, which must be on the right (the tokenizer's default).
            output_attentions (`bool`, *optional*):
                Accepted for `generate()`; a recurrent encoder has no attention weights to return.
            output_hidden_states (`bool`, *optional*):
                Return the embedded source and the encoder outputs (defaults to `config.output_hidden_states`).
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        _check_ids(input_ids, self.config.vocab_size, "input_ids")
        batch_size, source_length = input_ids.shape
        if attention_mask is None:
            lengths = torch.full((batch_size,), source_length, dtype=torch.long)
        else:
            lengths = _right_padded_lengths(attention_mask, input_ids.shape)

        # 1. Embedding -> dropout -> packed bidirectional GRU
        inputs_embeds = self.input_dropout(self.embed_tokens(input_ids))  # (batch, source, embedding)
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            outputs, final, upper = self._gradient_checkpointing_func(self._run_gru, inputs_embeds, lengths.cpu())
        else:
            outputs, final, upper = self._run_gru(inputs_embeds, lengths.cpu())

        # 2. Each layer's forward and backward final states side by side, batch-first (the notebook's
        #    `h.view(2, 2, bs, -1).permute(0, 2, 1, 3).view(2, bs, -1)`, transposed)
        layers = self.bidirectional_layers
        final = final.view(layers, 2, batch_size, -1).permute(2, 0, 1, 3)  # (batch, layers, 2, hidden)
        final = final.reshape(batch_size, layers, -1)  # (batch, layers, 2 * hidden)
        final = torch.cat([final, upper.transpose(0, 1)], dim=1)  # the unidirectional layers' states: 2 * hidden

        hidden_states = (inputs_embeds, outputs) if output_hidden_states else None
        return GruSeq2SeqEncoderOutput(
            last_hidden_state=outputs, final_hidden_state=final, hidden_states=hidden_states
        )

    def _run_gru(self, inputs_embeds: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The packed GRUs over `(batch, source, embedding)` inputs: the outputs, padded back, and the final states of
        the bidirectional layers and of the unidirectional ones above them (none by default)."""
        packed = nn.utils.rnn.pack_padded_sequence(inputs_embeds, lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, final = self.gru(packed)  # final: (bidirectional layers * 2, batch, hidden)
        upper_final = final.new_zeros(0, final.size(1), 2 * final.size(2))
        if self.upper_gru is not None:  # upper_final: (upper layers, batch, 2 * hidden)
            dropped = packed_outputs._replace(data=self.between_dropout(packed_outputs.data))
            packed_outputs, upper_final = self.upper_gru(dropped)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(
            packed_outputs, batch_first=True, total_length=inputs_embeds.size(1)
        )  # (batch, source, 2 * hidden)
        return outputs, final, upper_final


def _right_padded_lengths(attention_mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Lengths of right-padded rows, with clear errors for a mask that is not one."""
    if attention_mask.shape != shape:
        raise ValueError(f"`attention_mask` has shape {tuple(attention_mask.shape)}, `input_ids` {tuple(shape)}.")
    mask = attention_mask.bool()
    if attention_mask.dtype != torch.bool and bool((mask != attention_mask).any()):
        raise ValueError("`attention_mask` must hold 0 (padding) and 1 (real token) only.")
    lengths = mask.sum(dim=1)  # (batch,)
    if not bool((lengths > 0).all()):
        raise ValueError("Every source sentence needs at least one token (`attention_mask` has an all-zero row).")
    positions = torch.arange(shape[1], device=mask.device)
    if not torch.equal(mask, positions[None, :] < lengths[:, None]):
        raise ValueError("`attention_mask` must be right-padded (ones, then zeros), as GruSeq2SeqTokenizer pads.")
    return lengths


class GruSeq2SeqAttention(nn.Module):
    """
    Additive ("concat", Bahdanau et al. 2015) attention, as the notebook writes it:
    `a = softmax_s(v . tanh(W1 e_s + W2 h + b))`, `context = sum_s a_s e_s`, where `e_s` are the encoder outputs and
    `h` the decoder's top-layer state. `W1 e_s` does not depend on the step, so it is computed once per sentence
    (`project_keys`) and kept in the [`GruSeq2SeqState`]. Padded source positions get zero weight.
    """

    def __init__(self, config: GruSeq2SeqConfig):
        super().__init__()
        self.key_projection = nn.Linear(2 * config.hidden_size, config.embedding_size, bias=False)  # notebook `W1`
        self.query_projection = nn.Linear(config.embedding_size, config.embedding_size)  # notebook `l2`
        self.score = nn.Linear(config.embedding_size, 1, bias=False)  # notebook `V`

    def project_keys(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.key_projection(encoder_hidden_states)  # (batch, source, embedding)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        energy = torch.tanh(keys + self.query_projection(query)[:, None, :])  # (batch, source, embedding)
        scores = self.score(energy).squeeze(-1)  # (batch, source)
        if encoder_attention_mask is not None:
            scores = scores.masked_fill(~encoder_attention_mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)  # (batch, source)
        context = torch.bmm(weights[:, None, :], encoder_hidden_states).squeeze(1)  # (batch, 2 * hidden)
        return context, weights


class GruSeq2SeqDecoder(nn.Module):
    """
    The attention decoder: target embedding; initial state from the encoder's final state (dropout -> `bridge`,
    the notebook's `drop_enc` + `out_enc`); per step, attention with the previous top-layer state, then
    `input_projection([embedding, context])` (the notebook's `l3`) into a multi-layer GRU of `embedding_size` units.
    """

    def __init__(self, config: GruSeq2SeqConfig):
        super().__init__()
        self.config = config
        size = config.embedding_size
        self.embed_tokens = nn.Embedding(config.decoder_vocab_size, size, padding_idx=config.pad_token_id)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)
        self.bridge = nn.Linear(2 * config.hidden_size, size, bias=False)
        self.attention = GruSeq2SeqAttention(config)
        self.input_projection = nn.Linear(size + 2 * config.hidden_size, size)
        self.gru = nn.GRU(
            size,
            size,
            num_layers=config.num_hidden_layers,
            dropout=config.decoder_dropout if config.num_hidden_layers > 1 else 0.0,
            batch_first=True,
        )
        # Set by `model.gradient_checkpointing_enable()`: each decoder step (attention, input projection, GRU) is
        # recomputed in the backward pass, so only its inputs are kept, not the `(batch, source, embedding)` attention
        # energies that dominate the memory of a long target.
        self.gradient_checkpointing = False

    def initial_state(self, encoder_outputs: GruSeq2SeqEncoderOutput) -> GruSeq2SeqState:
        """The state before the first step: the projected encoder state and the attention keys."""
        final = self.hidden_dropout(encoder_outputs.final_hidden_state)  # (batch, layers, 2 * hidden)
        hidden_state = self.bridge(final).transpose(0, 1).contiguous()  # (layers, batch, embedding)
        keys = self.attention.project_keys(encoder_outputs.last_hidden_state)  # (batch, source, embedding)
        return GruSeq2SeqState(hidden_state=hidden_state, attention_keys=keys)

    def forward(
        self,
        decoder_input_ids: torch.LongTensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
        state: GruSeq2SeqState,
        next_input_fn: Callable[[int, torch.Tensor], torch.LongTensor | None] | None = None,
    ) -> tuple[torch.Tensor, GruSeq2SeqState, torch.Tensor, torch.Tensor]:
        """
        Runs one step per decoder input. `next_input_fn(step, output)` (scheduled sampling) is called after every
        step with that step's output `(batch, embedding)`; when it returns token ids, they replace the next input.
        Returns the outputs `(batch, target, embedding)`, the new state, the attention weights
        `(batch, target, source)` and the embedded inputs.
        """
        inputs_embeds = self.embed_tokens(decoder_input_ids)  # (batch, target, embedding)
        mask = None if encoder_attention_mask is None else encoder_attention_mask.bool()
        hidden_state, keys = state.hidden_state, state.attention_keys
        outputs, attentions, replacement = [], [], None
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for step in range(decoder_input_ids.size(1)):
            embedded = inputs_embeds[:, step] if replacement is None else self.embed_tokens(replacement)
            step_inputs = (embedded, hidden_state, keys, encoder_hidden_states, mask)
            if checkpointing:
                output, hidden_state, weights = self._gradient_checkpointing_func(self._step, *step_inputs)
            else:
                output, hidden_state, weights = self._step(*step_inputs)
            outputs.append(output)
            attentions.append(weights)
            replacement = None if next_input_fn is None else next_input_fn(step, output)
        new_state = GruSeq2SeqState(hidden_state=hidden_state, attention_keys=keys)
        return torch.stack(outputs, dim=1), new_state, torch.stack(attentions, dim=1), inputs_embeds

    def _step(
        self,
        embedded: torch.Tensor,
        hidden_state: torch.Tensor,
        keys: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder step: the output `(batch, embedding)`, the new GRU state and the attention weights."""
        context, weights = self.attention(hidden_state[-1], keys, encoder_hidden_states, mask)
        step_input = self.input_projection(torch.cat([embedded, context], dim=-1))  # (batch, embedding)
        output, hidden_state = self.gru(step_input[:, None, :], hidden_state)  # (batch, 1, embedding)
        return output[:, 0], hidden_state, weights


class NoImmediateRepeatLogitsProcessor(LogitsProcessor):
    """
    Forbids the token generated last from coming again at once ("we we", "Mary Mary"): the stutter of an undertrained
    attention decoder, which `no_repeat_ngram_size` cannot stop without banning every repeated word, and which
    `repetition_penalty` only lowers by penalising every word already used. Turned on by the generation config's
    `no_immediate_repeat` (see [`GruSeq2SeqForConditionalGeneration`]).
    """

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores.scatter(1, input_ids[:, -1:], -float("inf"))


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


# Copied from ulmfit.models.awd_lstm.layers_awd_lstm._check_generation_counts
def _check_generation_counts(generation_config, kwargs: dict) -> None:
    """Raise a `ValueError` naming the setting for a count of `generate()` that is not a whole number in range."""
    for name, low in _GENERATION_COUNTS.items():
        value = kwargs[name] if name in kwargs else getattr(generation_config, name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"generate(): `{name}` must be a whole number of at least {low}, got {value!r}.")


# Copied from ulmfit.models.awd_lstm.layers_awd_lstm._unreadable_weights
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


class GruSeq2SeqPreTrainedModel(PreTrainedModel):
    """Weight initialisation, remote-code saving and the generation plumbing shared by the GRU translator's heads."""

    config_class = GruSeq2SeqConfig
    config: GruSeq2SeqConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["GruSeq2SeqEncoder", "GruSeq2SeqDecoder"]
    # `gradient_checkpointing_enable()` recomputes the encoder GRU as one block (`nn.GRU` runs its layers in one call,
    # so there is no per-layer boundary to cut at without renaming its weights) and the decoder step by step.
    supports_gradient_checkpointing = True
    # The state of an RNN cannot be rolled back, so assisted decoding must refuse rather than give wrong results.
    _is_stateful = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with a clear error for weights that cannot be read."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except Exception as error:
            unreadable = _unreadable_weights(pretrained_model_name_or_path, error)
            if unreadable is None:
                raise
            raise unreadable from error

    @classmethod
    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm.AwdLstmPreTrainedModel._supports_default_dynamic_cache
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() would otherwise build a key/value `DynamicCache`; our cache is the `state` output.
        return False

    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm.AwdLstmPreTrainedModel._update_model_kwargs_for_generation
    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, *args, **kwargs):
        # generate() feeds one new token per step after the prompt, so the recurrent state must come along. From
        # transformers 5.25 on it only carries an output named `cache`; carry our `state` ourselves, for any version.
        model_kwargs = super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)
        if outputs.get("state") is not None:
            model_kwargs["state"] = outputs["state"]
        return model_kwargs

    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm.AwdLstmPreTrainedModel.generate
    def generate(self, *args, generation_config=None, **kwargs):
        """`GenerationMixin.generate`, with clear errors for counts that are not whole numbers in range."""
        _check_generation_counts(generation_config, kwargs)
        return super().generate(*args, generation_config=generation_config, **kwargs)

    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm.AwdLstmPreTrainedModel._validate_generation_mode
    def _validate_generation_mode(self, generation_mode, *args, **kwargs):
        # Assisted decoding verifies draft tokens and rolls back the rejected ones: a recurrent state cannot be rolled
        # back (transformers 5.25 no longer reads `_is_stateful`, so refuse here, clearly, for any version).
        if generation_mode == "assisted_generation":
            raise ValueError(
                f"Assisted generation (assistant_model, prompt_lookup_num_tokens, ...) is not supported with stateful "
                f"models such as {self.__class__.__name__}: a recurrent state cannot be rolled back to a shorter text."
            )
        return super()._validate_generation_mode(generation_mode, *args, **kwargs)

    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm.AwdLstmPreTrainedModel._prepare_model_inputs
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

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """
        The notebook's initialisation: `nn.Embedding`'s N(0, 1) (words without a pretrained vector keep it),
        `W1` and `V` as `randn / sqrt(fan_in)` (fastai's `rand_p`), PyTorch's defaults for the GRUs and linear layers.
        """
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            # the padding row is sliced, so the flag that protects loaded weights must be checked here
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.GRU):
            bound = module.hidden_size**-0.5
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, nn.Linear) and module in self._attention_rand_p_layers():
            init.normal_(module.weight, std=module.in_features**-0.5)
        elif isinstance(module, nn.Linear):
            bound = module.in_features**-0.5
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.uniform_(module.bias, -bound, bound)

    def _attention_rand_p_layers(self) -> tuple[nn.Module, ...]:
        """The attention's `W1` and `V` (the notebook's `rand_p` parameters; its `l2` is an ordinary linear layer)."""
        decoder = getattr(self, "decoder", None)
        return () if decoder is None else (decoder.attention.key_projection, decoder.attention.score)

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """
        Resizes the **source** embedding (`get_input_embeddings()`, the encoder's) and sets `config.vocab_size`, as
        transformers' `resize_token_embeddings` resizes a model's input embedding. The output layer belongs to the
        target vocabulary and is left alone: resize the target side with
        [`~GruSeq2SeqPreTrainedModel.resize_decoder_token_embeddings`]. Arguments and return value as in
        [`~transformers.PreTrainedModel.resize_token_embeddings`].
        """
        return self._resize_vocabulary(
            self.get_input_embeddings(), None, new_num_tokens, pad_to_multiple_of, mean_resizing, "vocab_size"
        )

    def resize_decoder_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """
        Resizes the **target** side: the decoder embedding and, on [`GruSeq2SeqForConditionalGeneration`], the output
        layer (its weight stays tied to the decoder embedding when `config.tie_word_embeddings`, and its bias grows
        with it); sets `config.decoder_vocab_size`. Call it with `tokenizer.target_vocab_size` after extending the
        target vocabulary. Added rows are drawn around the mean of the old ones (`mean_resizing=True`, as in
        transformers) or from `_init_weights`. Arguments as in [`~GruSeq2SeqPreTrainedModel.resize_token_embeddings`];
        returns the decoder embedding.
        """
        return self._resize_vocabulary(
            self.get_decoder().embed_tokens,
            self.get_output_embeddings(),
            new_num_tokens,
            pad_to_multiple_of,
            mean_resizing,
            "decoder_vocab_size",
        )

    def _resize_vocabulary(
        self,
        embeddings: nn.Embedding,
        output_layer: nn.Linear | None,
        new_num_tokens: int | None,
        pad_to_multiple_of: int | None,
        mean_resizing: bool,
        config_field: str,
    ) -> nn.Embedding:
        """Resizes one side's embedding (and output layer) with transformers' helpers, then its config field."""
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings
        size = embeddings.num_embeddings if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
        special_ids = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id")
        smallest = 1 + max(getattr(self.config, name) for name in special_ids)
        if isinstance(size, bool) or not isinstance(size, int) or size < smallest:
            raise ValueError(
                f"Cannot resize `{config_field}` to {size!r}: the special tokens need at least {smallest} ids."
            )

        # The output layer first: resizing the embedding swaps the data of its weight in place, and with tied weights
        # that is the output layer's weight too, which would then look resized already (and keep its old bias).
        if output_layer is not None:
            resized_output_layer = self._get_resized_lm_head(output_layer, size, mean_resizing=mean_resizing)
            resized_output_layer.requires_grad_(output_layer.weight.requires_grad)
        resized = self._get_resized_embeddings(embeddings, size, mean_resizing=mean_resizing)  # the same module
        if output_layer is not None:
            self.set_output_embeddings(resized_output_layer)
        setattr(self.config, config_field, size)
        # `_tied_weights_keys` names the parameters, not their shapes, so tying again is all a resize needs
        self.tie_weights()
        return resized

    def get_encoder(self, modality: str | None = None) -> GruSeq2SeqEncoder:
        return self.model.encoder if hasattr(self, "model") else self.encoder

    def get_decoder(self) -> GruSeq2SeqDecoder:
        return self.model.decoder if hasattr(self, "model") else self.decoder

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`; with remote code on (`import ulmfit`), every head in `auto_map`."""
        self._update_auto_map()
        return super().save_pretrained(save_directory, *args, **kwargs)

    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm.AwdLstmPreTrainedModel._update_auto_map
    def _update_auto_map(self):
        """With remote code, add this file's `_AUTO_MAP` to `config.auto_map` (entries already there win)."""
        if self._auto_class is not None:
            self.config.auto_map = {**_AUTO_MAP, **(getattr(self.config, "auto_map", None) or {})}


class GruSeq2SeqModel(GruSeq2SeqPreTrainedModel):
    """The encoder and the attention decoder, without the output layer (transformers' `<X>Model`)."""

    def __init__(self, config: GruSeq2SeqConfig):
        super().__init__(config)
        self.encoder = GruSeq2SeqEncoder(config)
        self.decoder = GruSeq2SeqDecoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The source embedding (the decoder's is `get_decoder().embed_tokens`)."""
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.encoder.embed_tokens = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        encoder_outputs: GruSeq2SeqEncoderOutput | tuple | None = None,
        state: GruSeq2SeqState | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        next_input_fn: Callable[[int, torch.Tensor], torch.LongTensor | None] | None = None,
    ) -> GruSeq2SeqModelOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, source_length)`):
                Source token ids; not needed when `encoder_outputs` is given.
            attention_mask (`torch.Tensor` of shape `(batch_size, source_length)`, *optional*):
                1 for real source tokens, 0 for (right) padding.
            decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_length)`):
                Decoder inputs: `decoder_start_token_id` followed by the target words (see `shift_tokens_right`).
                With `state`, only the new tokens.
            encoder_outputs ([`GruSeq2SeqEncoderOutput`], *optional*):
                The encoder's output for these sources, to skip encoding them again.
            state ([`GruSeq2SeqState`], *optional*):
                The state returned by the previous call, to continue decoding the same sentences. When omitted, the
                initial state is computed from `encoder_outputs`.
            output_attentions (`bool`, *optional*):
                Return the cross-attention weights of every decoder step (defaults to `config.output_attentions`).
            output_hidden_states (`bool`, *optional*):
                Return the encoder's and the decoder's hidden states (defaults to `config.output_hidden_states`).
            return_dict (`bool`, *optional*):
                Return a [`GruSeq2SeqModelOutput`] rather than a tuple (defaults to `config.return_dict`).
            next_input_fn (`Callable`, *optional*):
                Scheduled-sampling hook (used by [`GruSeq2SeqForConditionalGeneration`]'s `teacher_forcing_ratio`):
                called after every decoder step with the step index and output; returned token ids replace the next
                decoder input.
        """
        # As in every transformers model: the keyword wins, then the config (`config.output_attentions`, ...)
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if decoder_input_ids is None:
            raise ValueError("GruSeq2SeqModel needs `decoder_input_ids` (or `labels`, for the LM head).")
        _check_ids(decoder_input_ids, self.config.decoder_vocab_size, "decoder_input_ids")

        # 1. Encoder (skipped when generate() passes its output back)
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("Pass `input_ids` (or `encoder_outputs`) for the source sentences.")
            encoder_outputs = self.encoder(
                input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states
            )
        else:
            if not isinstance(encoder_outputs, GruSeq2SeqEncoderOutput):
                encoder_outputs = GruSeq2SeqEncoderOutput(*encoder_outputs)
            self._check_encoder_outputs(encoder_outputs, attention_mask)
        encoder_hidden_states = encoder_outputs.last_hidden_state
        if decoder_input_ids.size(0) != encoder_hidden_states.size(0):
            raise ValueError(
                f"`decoder_input_ids` has {decoder_input_ids.size(0)} rows but there are "
                f"{encoder_hidden_states.size(0)} source sentences."
            )

        # 2. Decoder, from the given state or the encoder's
        if state is None:
            state = self.decoder.initial_state(encoder_outputs)
        else:
            self._check_state(state, encoder_hidden_states.shape[:2])
        outputs, new_state, attention_weights, inputs_embeds = self.decoder(
            decoder_input_ids, encoder_hidden_states, attention_mask, state, next_input_fn=next_input_fn
        )

        output = GruSeq2SeqModelOutput(
            last_hidden_state=outputs,
            state=None if use_cache is False else new_state,
            decoder_hidden_states=(inputs_embeds, outputs) if output_hidden_states else None,
            # one "layer" with one "head": (batch, 1, target, source)
            cross_attentions=(attention_weights[:, None],) if output_attentions else None,
            encoder_last_hidden_state=encoder_hidden_states,
            encoder_hidden_states=encoder_outputs.hidden_states,
        )
        return output if return_dict else output.to_tuple()

    def _check_encoder_outputs(self, encoder_outputs: GruSeq2SeqEncoderOutput, attention_mask: torch.Tensor | None):
        """Shape and dtype checks (free, no device sync) of `encoder_outputs` given back, and of its source mask."""
        outputs, final = encoder_outputs.last_hidden_state, encoder_outputs.final_hidden_state
        size, layers = 2 * self.config.hidden_size, self.config.num_hidden_layers
        if not isinstance(outputs, torch.Tensor) or outputs.dim() != 3 or outputs.size(-1) != size:
            found = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
            raise ValueError(
                f"`encoder_outputs.last_hidden_state` must have shape (batch_size, source_length, {size}), got "
                f"{found}."
            )
        batch_size, source_length = outputs.shape[:2]
        if not isinstance(final, torch.Tensor) or tuple(final.shape) != (batch_size, layers, size):
            found = tuple(final.shape) if isinstance(final, torch.Tensor) else type(final).__name__
            raise ValueError(
                f"`encoder_outputs.final_hidden_state` must have shape ({batch_size}, {layers}, {size}), got {found}."
            )
        if not (outputs.is_floating_point() and final.is_floating_point()):
            raise TypeError(f"`encoder_outputs` must be floating-point, got {outputs.dtype} and {final.dtype}.")
        if attention_mask is not None and tuple(attention_mask.shape) != (batch_size, source_length):
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)} but `encoder_outputs` encode "
                f"{(batch_size, source_length)} source positions."
            )

    def _check_state(self, state: GruSeq2SeqState, source_shape: tuple[int, int]):
        """
        Shape and dtype checks (free, no device sync) of a `state` given back. Its values are not checked: it is
        normally the model's own output, carried between calls (a check would cost a sync per generated token).
        """
        batch_size, source_length = source_shape
        size = self.config.embedding_size
        expected = {
            "hidden_state": (self.config.num_hidden_layers, batch_size, size),
            "attention_keys": (batch_size, source_length, size),
        }
        for name, shape in expected.items():
            tensor = getattr(state, name, None)
            if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
                found = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
                raise ValueError(f"`state.{name}` must have shape {shape}, got {found}.")
            if not tensor.is_floating_point():
                raise TypeError(f"`state.{name}` must be floating-point, got dtype {tensor.dtype}.")


class GruSeq2SeqForConditionalGeneration(GruSeq2SeqPreTrainedModel, GenerationMixin):
    """
    The translator: [`GruSeq2SeqModel`], output dropout and an output layer tied to the decoder embedding. With
    `labels` it returns the cross-entropy loss; `generate()` translates (greedy, beam search, sampling), one decoder
    step per new token with the state carried.

    On top of transformers' decoding settings, the generation config's `no_immediate_repeat` (on for a new model;
    `generate(..., no_immediate_repeat=False)` turns it off) forbids a word to follow itself: on Tatoeba no reference
    does, and the ban removed the stutter ("Mary Mary") of a model trained for 1,500 steps while raising its BLEU.
    """

    _tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}

    def __init__(self, config: GruSeq2SeqConfig):
        super().__init__(config)
        self.model = GruSeq2SeqModel(config)
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.lm_head = nn.Linear(config.embedding_size, config.decoder_vocab_size)
        self.post_init()
        if self.generation_config is not None:
            self.generation_config.no_immediate_repeat = True
            # a config "from the model config" drops attributes transformers does not know when it is loaded again
            self.generation_config._from_model_config = False

    def get_input_embeddings(self) -> nn.Embedding:
        """The source embedding (the decoder's is `get_decoder().embed_tokens`, tied to `lm_head`)."""
        return self.model.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.encoder.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.lm_head = new_embeddings

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """For `DataCollatorForSeq2Seq`: the teacher-forcing decoder inputs of `labels`."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _get_logits_processor(self, generation_config, *args, **kwargs) -> LogitsProcessorList:
        """`GenerationMixin._get_logits_processor`, with the immediate-repeat ban first when it is on."""
        processors = super()._get_logits_processor(generation_config, *args, **kwargs)
        if getattr(generation_config, "no_immediate_repeat", False):
            processors.insert(0, NoImmediateRepeatLogitsProcessor())  # first: top-k must not keep only the banned word
        return processors

    def _prepare_generation_config(self, generation_config=None, **kwargs):
        """
        `GenerationMixin._prepare_generation_config`, with `config.output_attentions` / `config.output_hidden_states`
        honoured when they are set after the model was built: `generate()` copies the model config's flags into
        `generation_config` only once, at construction, and would otherwise drop what the forward returns. A flag
        passed to `generate()` (or set in a `generation_config` passed to it) still wins.
        """
        generation_config_passed = generation_config
        no_immediate_repeat = kwargs.pop("no_immediate_repeat", None)  # our setting: configs saved before it lack it
        generation_config, model_kwargs = super()._prepare_generation_config(generation_config, **kwargs)
        if no_immediate_repeat is not None:
            if not isinstance(no_immediate_repeat, bool):
                raise ValueError(f"generate(): `no_immediate_repeat` is True or False, got {no_immediate_repeat!r}.")
            generation_config.no_immediate_repeat = no_immediate_repeat
        if generation_config.return_dict_in_generate:
            for flag in ("output_attentions", "output_hidden_states"):
                explicit = kwargs.get(flag, getattr(generation_config_passed, flag, None))
                if explicit is None and not getattr(generation_config, flag) and getattr(self.config, flag):
                    setattr(generation_config, flag, True)
                    model_kwargs[flag] = True
        return generation_config, model_kwargs

    def _reorder_cache(self, state: GruSeq2SeqState, beam_idx: torch.LongTensor) -> GruSeq2SeqState:
        """Beam search: keep the state rows of the surviving beams."""
        return state.index_select(beam_idx)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        encoder_outputs: GruSeq2SeqEncoderOutput | tuple | None = None,
        state: GruSeq2SeqState | None = None,
        labels: torch.LongTensor | None = None,
        teacher_forcing_ratio: float = 1.0,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> GruSeq2SeqLMOutput | tuple:
        r"""
        Args:
            labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
                Target token ids (ending with `xxeos`), as `tokenizer(..., text_target=...)` returns them. Pad ids and
                -100 are ignored by the loss. When `decoder_input_ids` is omitted, it is `labels` shifted right behind
                `decoder_start_token_id`.
            teacher_forcing_ratio (`float`, *optional*, defaults to 1.0):
                Probability of feeding the gold previous word rather than the model's own prediction at each decoder
                step (the notebook's `pr_force`; one draw per step for the whole batch, from torch's generator). At
                1.0 (pure teacher forcing) the output layer runs once over all steps; below it, once per step, since
                each prediction may become the next input. At 0.0 the decoder reads only its own predictions, as in
                greedy decoding.
            kwargs:
                `num_items_in_batch` (from the `Trainer`, with gradient accumulation) makes the loss a sum over the
                batch's targets divided by it; other keys are ignored.

        See [`GruSeq2SeqModel.forward`] for the other arguments.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if isinstance(teacher_forcing_ratio, bool) or not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"`teacher_forcing_ratio` is a probability in [0, 1], got {teacher_forcing_ratio!r}.")
        if labels is not None:
            _check_labels(labels, self.config.decoder_vocab_size)
            sources = input_ids if encoder_outputs is None else encoder_outputs[0]
            if isinstance(sources, torch.Tensor) and sources.dim() >= 2 and labels.size(0) != sources.size(0):
                raise ValueError(
                    f"`labels` has {labels.size(0)} rows but there are {sources.size(0)} source sentences."
                )
            if decoder_input_ids is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)

        # 1. Scheduled sampling: each step's prediction may replace the next gold input, so the output layer runs
        #    inside the decoder loop and its logits are kept
        step_logits, next_input_fn = [], None
        target_length = 0 if decoder_input_ids is None else decoder_input_ids.size(1)
        if teacher_forcing_ratio < 1.0 and target_length > 1:
            forced = (torch.rand(target_length - 1) < teacher_forcing_ratio).tolist()  # one draw per step

            def next_input_fn(step: int, output: torch.Tensor) -> torch.LongTensor | None:
                logits = self.lm_head(self.output_dropout(output))  # (batch, decoder_vocab)
                step_logits.append(logits)
                if step + 1 < target_length and not forced[step]:
                    return logits.argmax(dim=-1).detach()
                return None

        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            encoder_outputs=encoder_outputs,
            state=state,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            next_input_fn=next_input_fn,
        )

        # 2. Output layer: once over all steps (teacher forcing), or the per-step logits
        if step_logits:
            logits = torch.stack(step_logits, dim=1)  # (batch, target, decoder_vocab)
        else:
            logits = self.lm_head(self.output_dropout(outputs.last_hidden_state))  # (batch, target, decoder_vocab)

        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(
                    f"`labels` has shape {tuple(labels.shape)} but the decoder ran {tuple(logits.shape[:2])} steps: "
                    "pass `labels` alone, or `decoder_input_ids` of the same length."
                )
            targets = labels.masked_fill(labels == self.config.pad_token_id, -100).to(logits.device)
            num_items = kwargs.get("num_items_in_batch")
            loss = F.cross_entropy(
                logits.flatten(0, 1).float(),
                targets.flatten(),
                ignore_index=-100,
                reduction="mean" if num_items is None else "sum",
            )
            if num_items is not None:
                loss = loss / num_items

        output = GruSeq2SeqLMOutput(
            loss=loss,
            logits=logits,
            state=outputs.state,
            decoder_hidden_states=outputs.decoder_hidden_states,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
        )
        return output if return_dict else output.to_tuple()


def _check_labels(labels: torch.Tensor, vocab_size: int):
    """Labels are `(batch_size, target_length)` target ids or -100; anything else is a tokenizer mix-up (one sync)."""
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        found = f"dtype {labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"`labels` must be an integer tensor of target ids, got {found}.")
    if labels.dim() != 2 or 0 in labels.shape:
        raise ValueError(
            f"`labels` must have shape (batch_size, target_length) with at least one sentence and one token, got "
            f"{tuple(labels.shape)}."
        )
    if bool((((labels < 0) & (labels != -100)) | (labels >= vocab_size)).any()):
        real = labels[labels != -100]
        raise ValueError(
            f"`labels` holds ids in [{int(real.min())}, {int(real.max())}] but the target vocabulary has {vocab_size} "
            "tokens (only -100 may lie outside it)."
        )


__all__ = [
    "GruSeq2SeqPreTrainedModel",
    "GruSeq2SeqModel",
    "GruSeq2SeqForConditionalGeneration",
    "GruSeq2SeqState",
    "GruSeq2SeqEncoderOutput",
    "GruSeq2SeqModelOutput",
    "GruSeq2SeqLMOutput",
    "shift_tokens_right",
]
