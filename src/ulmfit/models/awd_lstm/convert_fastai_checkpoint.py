"""Convert fastai v2 AWD-LSTM checkpoints (language models, encoders, ULMFiT classifiers) into `ulmfit` models.

fastai stores a model as a pickled PyTorch state dict; `ulmfit` stores safetensors, a config and a tokenizer that load
with `from_pretrained`, pipelines and remote code. What can be converted, with the vocabulary that goes with it:

- `learn.save("name")` of a `language_model_learner`, with or without the optimizer state (keys `0.encoder...`,
  `1.decoder...`), and fastai's pretrained WikiText-103 files (`lstm_fwd.pth` + `itos_wt103.pkl`, the same keys)
  -> `AwdLstmForCausalLM`;
- `learn.save_encoder("name")` (keys `encoder...`, `rnns...`) -> `AwdLstmModel`;
- `learn.save("name")` of a `text_classifier_learner` (keys `0.module.encoder...`, `1.layers...`)
  -> `AwdLstmForSequenceClassification`.

The vocabulary is fastai's pickled list of tokens (`pickle.dump(list(dls.vocab), f)`, `itos_wt103.pkl`) or a text
file with one token per line, in id order. Nothing in either file can run code while it is read: the checkpoint goes
through `torch.load(weights_only=True)`, with fastai's optimizer-state classes (`fastcore.foundation.L`, numpy
scalars) mapped to an inert placeholder and dropped, and the vocabulary through an unpickler that knows only `list`,
`str`, `tuple` and `dict`.

The architecture (embedding and hidden sizes, layers, vocabulary size, tied decoder, the head's width and number of
labels) is read from the tensor shapes. What a state dict does not record takes fastai's defaults, overridable with
`config_overrides`: the dropouts (`AwdLstmConfig.fastai_dropouts`: `awd_lstm_lm_config`, or `awd_lstm_clas_config`
x `drop_mult=0.5` as `text_classifier_learner` applies it) and BPT3C's `seq_len=72` / `max_len=1440`
(`bpt3c_chunk_size`, `bpt3c_max_length`). A classifier head with more than one hidden layer (`lin_ftrs` of two or
more sizes), a bidirectional encoder or fastai's `y_range` cannot be represented and is refused or, for `y_range`,
not detectable.

    from ulmfit.models.awd_lstm.convert_fastai_checkpoint import convert_fastai_checkpoint

    model, tokenizer = convert_fastai_checkpoint("models/clas.pth", "models/vocab.pkl", output_dir="imdb-classifier",
                                                 labels=["neg", "pos"])

Like transformers' `convert_*_checkpoint` files, this module is not imported by the package and writes no model card:
`scripts/convert_fastai_checkpoint.py` runs it and adds the card, from the provenance in the returned
[`FastaiConversion`] (file names, SHA-256, what was dropped or reordered). Converted models give fastai's outputs on
the same token ids (eval mode) to float precision; the tests check it on checkpoints written by fastai itself
(`tests/fixtures/fastai/`).
"""

import builtins
import hashlib
import io
import pickle
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers.utils import logging

from .configuration_awd_lstm import AwdLstmConfig
from .modeling_awd_lstm import (
    AwdLstmForCausalLM,
    AwdLstmForSequenceClassification,
    AwdLstmModel,
    AwdLstmPreTrainedModel,
)
from .text_processing_awd_lstm import SPECIAL_TOKENS
from .tokenization_awd_lstm import AwdLstmTokenizer


logger = logging.get_logger(__name__)

# What each task is in fastai's words (for error messages and the card of a converted model)
FASTAI_TASKS = {
    "lm": "language model (`language_model_learner`)",
    "classifier": "text classifier (`text_classifier_learner`)",
    "encoder": "encoder (`learn.save_encoder`)",
}
TASKS = tuple(FASTAI_TASKS)
_MODEL_CLASSES = {"lm": AwdLstmForCausalLM, "classifier": AwdLstmForSequenceClassification, "encoder": AwdLstmModel}

# fastai v1's order of the same nine special tokens, kept by vocabularies of that era (fastai v2 moved the case and
# repetition markers): such a vocabulary is accepted, its first nine rows permuted into fastai v2's order.
FASTAI_V1_SPECIAL_TOKENS = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep"]

# `text_classifier_learner`'s default `drop_mult`; an LM keeps `awd_lstm_lm_config`, the AwdLstmConfig defaults, and a
# classifier's `classifier_dropout` default (0.1) is fastai's `ps=[0.1]`
CLASSIFIER_DROP_MULT = 0.5
# Fields read from the tensor shapes, which `config_overrides` may not change
_INFERRED_FIELDS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "tie_word_embeddings",
    "lm_head_bias",
    "classifier_hidden_size",
    "num_labels",
    "id2label",
    "label2id",
)

# fastai's classifier head: `1.layers.<block>.<module>.<field>` -> ours, block by block (BatchNorm, then Linear)
_HEAD_NAMES = (("classifier.norm_in", "classifier.dense"), ("classifier.norm_hidden", "classifier.out_proj"))


class FastaiCheckpointError(ValueError):
    """A checkpoint or vocabulary that is not what it claims to be, or that `ulmfit` cannot represent."""


# ---------------------------------------------------------------------------------------------------------------------
# Reading files without running code


class _DiscardedOptimizerState:
    """
    Stands in for the classes fastai pickles in its optimizer state (`fastcore.foundation.L`, numpy scalars and
    dtypes), so that `torch.load(weights_only=True)` can read past them. It stores nothing: the optimizer state is
    dropped, and a placeholder found anywhere else is rejected as a non-tensor.
    """

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


_NUMPY_DTYPES = ("Float16DType", "Float32DType", "Float64DType", "Int32DType", "Int64DType", "BoolDType")
_OPTIMIZER_GLOBALS = [
    (_DiscardedOptimizerState, name)
    for name in (
        "fastcore.foundation.L",
        "numpy.dtype",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        *(f"numpy.dtypes.{dtype}" for dtype in _NUMPY_DTYPES),
    )
]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_fastai_state_dict(checkpoint: str | Path) -> tuple[dict[str, torch.Tensor], bool]:
    """
    The model state dict in a fastai `.pth` (`learn.save` with or without the optimizer, `learn.save_encoder`, or a
    pretrained weights file), read with `torch.load(weights_only=True)`; and whether an optimizer state was dropped.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}.")
    with open(path, "rb") as file:
        legacy_format = file.read(1) == pickle.PROTO  # torch.save before PyTorch 1.6: a bare pickle
    if not (zipfile.is_zipfile(path) or legacy_format):
        raise FastaiCheckpointError(
            f"{path.name} is not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy torch pickle)."
        )
    try:
        with torch.serialization.safe_globals(_OPTIMIZER_GLOBALS):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip, a pickle that is not torch's, code... each fails differently
        raise FastaiCheckpointError(_unreadable_message(path, error)) from error

    # fastai's `save_model`: {"model": state, "opt": optimizer state} when with_opt, else the bare state dict
    has_optimizer = isinstance(loaded, dict) and "model" in loaded and isinstance(loaded["model"], dict)
    state_dict = loaded["model"] if has_optimizer else loaded
    if not isinstance(state_dict, dict) or not state_dict:
        raise FastaiCheckpointError(
            f"{path.name} holds a {type(state_dict).__name__}, not a model state dict (a dict of tensors)."
        )
    not_tensors = [name for name, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors or not all(isinstance(name, str) for name in state_dict):
        raise FastaiCheckpointError(
            f"{path.name} is not a model state dict: {not_tensors[:5] or 'some keys'} are not tensors."
        )
    return state_dict, has_optimizer


def _unreadable_message(path: Path, error: Exception) -> str:
    """Why `torch.load(weights_only=True)` failed: globals that could run code (named), or not a torch file at all."""
    names = []
    if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error):
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # the legacy (pre-zip) format cannot be listed; torch's message names the global
            names = re.findall(r"GLOBAL ([\w.]+)", str(error))
        names = [name for name in names if name not in {alias for _, alias in _OPTIMIZER_GLOBALS}]
    if not names:
        reason = str(error).split("WeightsUnpickler error:")[-1].strip().split("\n")[0]
        return (
            f"{path.name} is not a PyTorch checkpoint written by fastai's `learn.save` or `torch.save` "
            f"({type(error).__name__}: {reason})."
        )
    message = (
        f"Refusing to load {path.name}: its pickle needs {names} besides tensors, and unpickling those could run "
        "arbitrary code (it is read with `torch.load(weights_only=True)`; nothing was executed)."
    )
    if any(name.startswith("fastai.") for name in names):
        message += (
            " This looks like a whole pickled Learner (`learn.export`, `export.pkl`): in fastai, save the weights "
            "with `learn.save('name')` (or `learn.save_encoder`) and convert `models/name.pth` instead."
        )
    return message


class _VocabularyUnpickler(pickle.Unpickler):
    """An unpickler that can build lists, tuples, dicts and strings, and refuses every other import."""

    _ALLOWED = {"list", "str", "tuple", "dict"}

    def __init__(self, file, source: Path):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if module in ("builtins", "__builtin__") and name in self._ALLOWED:
            return getattr(builtins, name)
        raise FastaiCheckpointError(
            f"Refusing to load the vocabulary {self.source.name}: its pickle imports `{module}.{name}`, and a "
            "vocabulary is a plain list of strings (nothing was executed). Pickle `list(dls.vocab)` (a classifier's "
            "`list(dls.vocab[0])`) instead, or write one token per line to a .txt file."
        )

    def persistent_load(self, pid):
        raise FastaiCheckpointError(
            f"Refusing to load the vocabulary {self.source.name}: it references external data."
        )


def load_fastai_vocab(vocab: str | Path | list[str]) -> list[str]:
    """
    fastai's vocabulary, in id order: a pickled list of str (`.pkl`, read without running code), a text file with one
    token per line (`.txt`), or the list itself.
    """
    if isinstance(vocab, (list, tuple)):
        tokens, source = list(vocab), "the vocabulary"
    else:
        path = Path(vocab)
        source = path.name
        if not path.is_file():
            raise FileNotFoundError(f"No vocabulary file at {path}.")
        if path.suffix == ".txt":
            lines = path.read_text(encoding="utf-8").split("\n")
            tokens = [line.removesuffix("\r") for line in (lines[:-1] if lines[-1] == "" else lines)]
        else:
            try:
                tokens = _VocabularyUnpickler(io.BytesIO(path.read_bytes()), path).load()
            except FastaiCheckpointError:
                raise
            except Exception as error:
                raise FastaiCheckpointError(
                    f"{path.name} is not a pickled vocabulary ({type(error).__name__}: {error}); give a fastai "
                    "vocabulary pickle (.pkl) or a text file with one token per line (.txt)."
                ) from error
    if not isinstance(tokens, (list, tuple)) or not all(isinstance(token, str) for token in tokens):
        raise FastaiCheckpointError(f"{source} does not hold a list of tokens (str), but a {type(tokens).__name__}.")
    return list(tokens)


# ---------------------------------------------------------------------------------------------------------------------
# State dict: detection, shapes, renaming


def detect_task(state_dict: dict[str, torch.Tensor]) -> str:
    """`lm`, `classifier` or `encoder`, from fastai's key layout."""
    keys = list(state_dict)
    if any(key.startswith("1.layers.") for key in keys) and any(key.startswith("0.module.") for key in keys):
        return "classifier"
    if any(key.startswith("1.decoder.") for key in keys):
        return "lm"
    if "encoder.weight" in state_dict:
        return "encoder"
    raise FastaiCheckpointError(
        f"Not a fastai AWD-LSTM state dict: none of fastai's key layouts matches (first keys: {keys[:5]}). Expected "
        "`0.encoder.weight` + `1.decoder.weight` (a language model), `0.module.encoder.weight` + `1.layers...` (a "
        "text classifier) or `encoder.weight` (an encoder saved with `save_encoder`)."
    )


def _take(state: dict, key: str, source: str) -> torch.Tensor:
    """Pop a tensor every fastai AWD-LSTM has, or fail naming it."""
    if key not in state:
        raise FastaiCheckpointError(f"{source} has no `{key}`, which a fastai AWD-LSTM always has.")
    return state.pop(key)


def _convert_encoder(state: dict, prefix: str, source: str) -> tuple[dict, dict]:
    """fastai `AWD_LSTM` tensors under `prefix` (popped from `state`) -> ours, and the sizes they imply."""
    converted = {}
    embedding = _take(state, f"{prefix}encoder.weight", source)
    if embedding.dim() != 2:
        raise FastaiCheckpointError(f"{source}: `{prefix}encoder.weight` has shape {tuple(embedding.shape)}.")
    dropped_copy = state.pop(f"{prefix}encoder_dp.emb.weight", None)  # the same Parameter, saved twice
    if dropped_copy is not None and not torch.equal(dropped_copy, embedding):
        raise FastaiCheckpointError(
            f"{source}: `{prefix}encoder_dp.emb.weight` differs from `{prefix}encoder.weight`."
        )
    converted["awd_lstm.embed_tokens.weight"] = embedding
    vocab_size, embedding_size = embedding.shape

    layer_indices = sorted(
        {int(m.group(1)) for key in state if (m := re.match(rf"{re.escape(prefix)}rnns\.(\d+)\.", key))}
    )
    if layer_indices != list(range(len(layer_indices))) or not layer_indices:
        raise FastaiCheckpointError(f"{source}: LSTM layers {layer_indices} are not numbered 0, 1, ...")
    num_layers = len(layer_indices)
    hidden_size = embedding_size
    for index in layer_indices:
        layer = f"{prefix}rnns.{index}."
        # WeightDropout keeps the raw hidden-to-hidden weight outside the LSTM; files from fastai v1 (the WikiText-103
        # weights) also hold the LSTM's own copy, which fastai's `clean_raw_keys` drops in favour of the raw one
        legacy = state.pop(f"{layer}module.weight_hh_l0", None)
        raw = state.pop(f"{layer}weight_hh_l0_raw", legacy)
        if raw is None:
            raise FastaiCheckpointError(f"{source} has no `{layer}weight_hh_l0_raw`.")
        tensors = {"weight_hh_l0": raw}
        for field in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0"):
            tensors[field] = _take(state, f"{layer}module.{field}", source)
        output_size = raw.shape[-1]
        input_size = tensors["weight_ih_l0"].shape[-1]
        if index == 0:
            hidden_size = output_size if num_layers > 1 else embedding_size
        expected_input = embedding_size if index == 0 else hidden_size
        expected_output = embedding_size if index == num_layers - 1 else hidden_size
        expected = {
            "weight_ih_l0": (4 * expected_output, expected_input),
            "weight_hh_l0": (4 * expected_output, expected_output),
            "bias_ih_l0": (4 * expected_output,),
            "bias_hh_l0": (4 * expected_output,),
        }
        for field, shape in expected.items():
            if tuple(tensors[field].shape) != shape:
                raise FastaiCheckpointError(
                    f"{source}: LSTM layer {index} `{field}` has shape {tuple(tensors[field].shape)}, expected "
                    f"{shape} for an AWD-LSTM with embedding {embedding_size}, hidden {hidden_size} and "
                    f"{num_layers} layers (input {input_size}, output {output_size} here)."
                )
            converted[f"awd_lstm.layers.{index}.lstm.{field}"] = tensors[field]
    sizes = dict(
        vocab_size=vocab_size, embedding_size=embedding_size, hidden_size=hidden_size, num_hidden_layers=num_layers
    )
    return converted, sizes


def _convert_classifier_head(state: dict, source: str, embedding_size: int) -> tuple[dict, dict]:
    """fastai's `PoolingLinearClassifier` (two `LinBnDrop` blocks) -> `AwdLstmClassificationHead`."""
    blocks: dict[int, dict[int, dict[str, torch.Tensor]]] = {}
    for key in [key for key in state if key.startswith("1.layers.")]:
        match = re.fullmatch(r"1\.layers\.(\d+)\.(\d+)\.(\w+)", key)
        if match is None:
            raise FastaiCheckpointError(f"{source}: unexpected classifier-head key `{key}`.")
        block, module, field = int(match.group(1)), int(match.group(2)), match.group(3)
        blocks.setdefault(block, {}).setdefault(module, {})[field] = state.pop(key)
    if sorted(blocks) != [0, 1]:
        raise FastaiCheckpointError(
            f"{source}: the classifier head has {len(blocks)} BatchNorm/Linear blocks; ulmfit's ULMFiT head has "
            "exactly two (fastai `lin_ftrs` with one hidden size, e.g. the default [50])."
        )
    converted = {}
    for block, (norm_name, linear_name) in zip(sorted(blocks), _HEAD_NAMES, strict=True):
        modules = blocks[block]
        norms = [fields for fields in modules.values() if "running_mean" in fields]
        linears = [fields for fields in modules.values() if "running_mean" not in fields]
        if len(norms) != 1 or len(linears) != 1 or set(linears[0]) != {"weight"}:
            raise FastaiCheckpointError(
                f"{source}: head block {block} is not fastai's LinBnDrop (BatchNorm1d, then a Linear without bias)."
            )
        for field, tensor in norms[0].items():
            converted[f"{norm_name}.{field}"] = tensor
        converted[f"{linear_name}.weight"] = linears[0]["weight"]
    dense, out_proj = converted["classifier.dense.weight"], converted["classifier.out_proj.weight"]
    if (
        dense.dim() != 2
        or out_proj.dim() != 2
        or dense.shape[1] != 3 * embedding_size
        or out_proj.shape[1] != dense.shape[0]
        or converted["classifier.norm_in.weight"].shape != (3 * embedding_size,)
        or converted["classifier.norm_hidden.weight"].shape != (dense.shape[0],)
    ):
        raise FastaiCheckpointError(
            f"{source}: the head's shapes (Linear {tuple(dense.shape)} then {tuple(out_proj.shape)}) do not fit "
            f"concat pooling of an encoder with embedding {embedding_size} (3 x {embedding_size} features)."
        )
    return converted, {"classifier_hidden_size": dense.shape[0], "num_labels": out_proj.shape[0]}


def convert_fastai_state_dict(
    state_dict: dict[str, torch.Tensor], task: str | None = None, source: str = "the checkpoint"
) -> tuple[str, dict[str, torch.Tensor], dict]:
    """
    fastai's AWD-LSTM state dict -> (task, ulmfit state dict, architecture read from the shapes). `task` may ask for
    the encoder of a language model or classifier checkpoint; otherwise it must match what the keys say.
    """
    found = detect_task(state_dict)
    task = task or found
    if task not in TASKS:
        raise FastaiCheckpointError(f"`task` must be one of {TASKS}, got {task!r}.")
    if task != found and task != "encoder":
        raise FastaiCheckpointError(
            f"{source} holds a fastai {FASTAI_TASKS[found]}, not a {FASTAI_TASKS[task]}. "
            + (
                "To start a classifier from a language model, convert it as `lm` and load the folder with "
                "`AutoModelForSequenceClassification.from_pretrained(folder, num_labels=...)` (a new head)."
                if task == "classifier"
                else "Leave `task` unset to convert what the file holds."
            )
        )
    state = dict(state_dict)
    prefix = {"lm": "0.", "classifier": "0.module.", "encoder": ""}[found]
    converted, architecture = _convert_encoder(state, prefix, source)

    if found == "lm":
        decoder_weight = _take(state, "1.decoder.weight", source)
        decoder_bias = state.pop("1.decoder.bias", None)
        embedding = converted["awd_lstm.embed_tokens.weight"]
        if decoder_weight.shape != embedding.shape or (
            decoder_bias is not None and decoder_bias.shape != embedding.shape[:1]
        ):
            raise FastaiCheckpointError(
                f"{source}: the decoder has shape {tuple(decoder_weight.shape)}, the embedding "
                f"{tuple(embedding.shape)}."
            )
        if task == "lm":
            converted["lm_head.weight"] = decoder_weight
            if decoder_bias is not None:
                converted["lm_head.bias"] = decoder_bias
            # fastai's `tie_weights` shares one Parameter, saved under both names
            architecture.update(
                tie_word_embeddings=torch.equal(decoder_weight, embedding), lm_head_bias=decoder_bias is not None
            )
    elif found == "classifier":
        head, sizes = _convert_classifier_head(state, source, architecture["embedding_size"])
        if task == "classifier":
            converted.update(head)
            architecture.update(sizes)
    if state:
        raise FastaiCheckpointError(
            f"{source} has keys that a fastai AWD-LSTM {FASTAI_TASKS[found]} does not: {sorted(state)[:5]} "
            "(a bidirectional encoder, or another architecture, cannot be converted)."
        )
    return task, converted, architecture


# ---------------------------------------------------------------------------------------------------------------------
# Vocabulary -> tokenizer


def _tokenizer_vocabulary(tokens: list[str], vocab_size: int, source: str) -> tuple[list[str], list[int] | None]:
    """
    The tokenizer's vocabulary for fastai's `tokens`, same ids, and the row permutation to apply to the embedding
    (None when fastai's order is kept, i.e. always for a fastai v2 vocabulary).
    """
    if len(tokens) != vocab_size:
        raise FastaiCheckpointError(
            f"The vocabulary {source} has {len(tokens)} tokens but the checkpoint's embedding has {vocab_size} rows: "
            "give the vocabulary this model was trained with (fastai's `dls.vocab`)."
        )
    order = None
    if tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
        if tokens[: len(SPECIAL_TOKENS)] != FASTAI_V1_SPECIAL_TOKENS:
            raise FastaiCheckpointError(
                f"The vocabulary {source} does not start with fastai's special tokens {SPECIAL_TOKENS}; it starts "
                f"with {tokens[: len(SPECIAL_TOKENS)]}. Is it a fastai vocabulary, in id order?"
            )
        order = [tokens.index(token) for token in SPECIAL_TOKENS] + list(range(len(SPECIAL_TOKENS), len(tokens)))
        tokens = [tokens[index] for index in order]
        logger.warning(
            f"{source} lists fastai v1's special tokens ({FASTAI_V1_SPECIAL_TOKENS}); their embedding rows are moved "
            "to fastai v2's ids 0..8. Every other token keeps its id."
        )
    # fastai pads its vocabulary to a multiple of 8 with repeated `xxfake`, rows no text maps to; the tokenizer needs
    # distinct names, so the repeats become xxfake1, xxfake2, ... at the same ids
    renamed, fakes = [], 0
    for token in tokens:
        if token == "xxfake":
            renamed.append(f"xxfake{fakes}" if fakes else "xxfake")
            fakes += 1
        else:
            renamed.append(token)
    duplicates = sorted(token for token, count in Counter(renamed).items() if count > 1)
    if duplicates:
        raise FastaiCheckpointError(f"The vocabulary {source} repeats tokens: {duplicates[:5]}.")
    return renamed, order


# ---------------------------------------------------------------------------------------------------------------------
# The conversion


@dataclass(frozen=True)
class FastaiConversion:
    """
    A converted fastai checkpoint and where it came from (what a model card of it needs). It unpacks as
    `model, tokenizer = convert_fastai_checkpoint(...)`.

    Args:
        model: an `AwdLstmForCausalLM`, `AwdLstmForSequenceClassification` or `AwdLstmModel`, in eval mode.
        tokenizer: an `AwdLstmTokenizer` whose ids are fastai's.
        task: what was converted: `lm`, `classifier` or `encoder` (see `FASTAI_TASKS`).
        checkpoint: the fastai `.pth` read.
        checkpoint_sha256: its hex SHA-256.
        vocab: the vocabulary file read, or None when the vocabulary was given as a list.
        vocab_sha256: its hex SHA-256, or None when the vocabulary was given as a list.
        optimizer_state_dropped: the checkpoint held an optimizer state (`learn.save(with_opt=True)`), not converted.
        special_tokens_reordered: the vocabulary listed fastai v1's special tokens, moved to fastai v2's ids 0..8
            (with their embedding rows).
    """

    model: AwdLstmPreTrainedModel
    tokenizer: AwdLstmTokenizer
    task: str
    checkpoint: Path
    checkpoint_sha256: str
    vocab: Path | None
    vocab_sha256: str | None
    optimizer_state_dropped: bool
    special_tokens_reordered: bool

    def __iter__(self) -> Iterator[AwdLstmPreTrainedModel | AwdLstmTokenizer]:
        """Yield the model, then the tokenizer: `model, tokenizer = convert_fastai_checkpoint(...)`."""
        yield self.model
        yield self.tokenizer


def convert_fastai_checkpoint(
    checkpoint: str | Path,
    vocab: str | Path | list[str],
    output_dir: str | Path | None = None,
    task: str | None = None,
    labels: list[str] | None = None,
    config_overrides: dict | None = None,
    backwards: bool = False,
) -> FastaiConversion:
    """
    Convert a fastai v2 AWD-LSTM checkpoint and its vocabulary into an `ulmfit` model and tokenizer.

    Args:
        checkpoint: a `.pth` from `learn.save` (language model or text classifier; with or without the optimizer
            state, which is dropped), `learn.save_encoder`, or fastai's pretrained weights (`lstm_fwd.pth`).
        vocab: the model's vocabulary in id order: fastai's pickled list (`.pkl`), a text file with one token per
            line (`.txt`), or a list of str. Its length must be the embedding's number of rows.
        output_dir: if given, the folder to write: safetensors weights, config and tokenizer (and remote code). No
            model card: `scripts/convert_fastai_checkpoint.py` writes one from the returned provenance.
        task: `lm`, `classifier` or `encoder`; detected from the keys when omitted. `encoder` also extracts the
            encoder of a language model or classifier checkpoint.
        labels: the classifier's label names, in fastai's order (`dls.vocab[1]`); default `LABEL_0`, `LABEL_1`, ...
        config_overrides: `AwdLstmConfig` fields the state dict does not record, e.g. `{"bpt3c_chunk_size": 72,
            "bpt3c_max_length": 1440}` (fastai's `seq_len`, `max_len`) or dropouts for further training.
        backwards: the model reads text backwards (fastai's `backwards=True`); the tokenizer then reverses its ids.

    Returns:
        A [`FastaiConversion`]: the model (an `AwdLstmForCausalLM`, `AwdLstmForSequenceClassification` or
        `AwdLstmModel` in eval mode), the `AwdLstmTokenizer` whose ids are fastai's, and the provenance (task,
        source files and their SHA-256, optimizer state dropped, special tokens reordered). It unpacks as
        `model, tokenizer`.

    Raises:
        FastaiCheckpointError: a file that is not what it claims (not a torch file, a pickle that would run code,
            unknown keys, inconsistent shapes, a vocabulary of the wrong length or without fastai's special tokens).
    """
    checkpoint = Path(checkpoint)
    state_dict, has_optimizer = load_fastai_state_dict(checkpoint)
    task, converted, architecture = convert_fastai_state_dict(state_dict, task, source=checkpoint.name)
    vocab_file = None if isinstance(vocab, (list, tuple)) else Path(vocab)
    vocab_source = "the vocabulary" if vocab_file is None else vocab_file.name
    tokens, order = _tokenizer_vocabulary(load_fastai_vocab(vocab), architecture["vocab_size"], vocab_source)
    if order is not None:
        for name in ("awd_lstm.embed_tokens.weight", "lm_head.weight", "lm_head.bias"):
            if name in converted:
                converted[name] = converted[name][order]

    # 1. Config: the shapes, fastai's defaults for what they do not record, then the caller's overrides
    settings = dict(architecture)
    if task == "classifier":
        settings.update(AwdLstmConfig.fastai_dropouts("classifier", drop_mult=CLASSIFIER_DROP_MULT))
        if labels is not None:
            labels = list(labels)
            if len(labels) != architecture["num_labels"]:
                raise FastaiCheckpointError(
                    f"{len(labels)} label names {labels} for a classifier with {architecture['num_labels']} outputs."
                )
            settings["id2label"] = dict(enumerate(labels))
            settings["label2id"] = {label: index for index, label in enumerate(labels)}
    elif labels is not None:
        raise FastaiCheckpointError(f"`labels` are for a classifier; {checkpoint.name} is converted as `{task}`.")
    overrides = dict(config_overrides or {})
    known = set(AwdLstmConfig().to_dict())
    for name in overrides:
        if name in _INFERRED_FIELDS:
            raise FastaiCheckpointError(f"`{name}` is read from the checkpoint's shapes and cannot be overridden.")
        if name not in known:
            raise FastaiCheckpointError(f"`{name}` is not an AwdLstmConfig field (config_overrides).")
    settings.update(overrides)
    config = AwdLstmConfig(**settings)

    # 2. Model: every tensor under its new name, strictly
    model = _MODEL_CLASSES[task](config)
    if task == "encoder":  # the base model's own names have no `awd_lstm.` prefix
        converted = {name.removeprefix("awd_lstm."): tensor for name, tensor in converted.items()}
    model.load_state_dict(converted, strict=True)
    model.eval()

    # 3. Tokenizer: fastai's ids, fastai's special tokens
    tokenizer = AwdLstmTokenizer(vocab=tokens, backwards=backwards)
    if task == "lm":
        model.generation_config.suppress_tokens = tokenizer.suppress_token_ids  # fastai's predict(no_unk=True)

    if output_dir is not None:
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
    # 4. Provenance, for whoever writes a card: which bytes were converted, and what was left out or moved
    return FastaiConversion(
        model=model,
        tokenizer=tokenizer,
        task=task,
        checkpoint=checkpoint,
        checkpoint_sha256=file_sha256(checkpoint),
        vocab=vocab_file,
        vocab_sha256=None if vocab_file is None else file_sha256(vocab_file),
        optimizer_state_dropped=has_optimizer,
        special_tokens_reordered=order is not None,
    )


__all__ = [
    "FASTAI_TASKS",
    "FASTAI_V1_SPECIAL_TOKENS",
    "TASKS",
    "FastaiCheckpointError",
    "FastaiConversion",
    "convert_fastai_checkpoint",
    "convert_fastai_state_dict",
    "detect_task",
    "file_sha256",
    "load_fastai_state_dict",
    "load_fastai_vocab",
]
