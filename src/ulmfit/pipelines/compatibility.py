"""Does a tokenizer belong to a model? A check of the two sizes, for code that loads them from separate places.

transformers loads a tokenizer and a model without comparing them. A tokenizer larger than the model's embedding
fails only when one of its high ids occurs (an `IndexError` deep in the model, or a wrong row on a GPU); a smaller one
runs silently with wrong predictions, since every id then means another word than the one the model was trained on.
[`check_tokenizer_fits_model`] compares them once, at load time: ulmfit's pipelines call it when they are built, and
scripts call it after loading a tokenizer and a model separately.

A pipeline file is saved beside a model as remote code with its sibling imports, so this module imports only
transformers.
"""

from transformers.utils import logging


logger = logging.get_logger(__name__)

# Below this share of the embedding rows, a smaller tokenizer looks like another model's
SMALLER_TOKENIZER_SHARE = 0.9
# Vocabularies are often padded to a multiple of these (fastai's `xxfake` rows: 8; `pad_to_multiple_of=64`)
PADDING_MULTIPLES = (8, 64)


def _where(obj) -> str:
    """' (from <folder>)' for an object loaded with `from_pretrained`, '' for one built in memory."""
    path = getattr(obj, "name_or_path", "") or ""
    return f" (from {path})" if str(path) else ""


def _rows(module) -> int | None:
    """Rows of an embedding or output layer's weight, or None without one."""
    weight = getattr(module, "weight", None)
    return None if weight is None else int(weight.shape[0])


def _input_rows(model) -> int | None:
    """Rows of the model's input embedding; `config.vocab_size` for models without one (DeViSE's word table)."""
    try:
        rows = _rows(model.get_input_embeddings())
    except (NotImplementedError, AttributeError):
        rows = None
    return rows if rows is not None else getattr(model.config, "vocab_size", None)


def _target_rows(model) -> int | None:
    """Rows of a translator's target side (`config.decoder_vocab_size`, GRU translator style), or None."""
    if getattr(model.config, "decoder_vocab_size", None) is None:
        return None
    try:
        rows = _rows(model.get_output_embeddings())
    except (NotImplementedError, AttributeError):
        rows = None
    return rows if rows is not None else model.config.decoder_vocab_size


def _is_padding(tokens: int, rows: int) -> bool:
    """Whether `rows` is `tokens` rounded up to one of the usual multiples."""
    return any(rows % multiple == 0 and rows - tokens < multiple for multiple in PADDING_MULTIPLES)


def _compare(tokens: int, rows: int, side: str, tokenizer, model):
    """Raise for a tokenizer larger than the embedding; warn for one that looks like another model's."""
    side = f"{side} " if side else ""
    if tokens > rows:
        raise ValueError(
            f"The tokenizer{_where(tokenizer)} has {tokens} {side}tokens but the model{_where(model)} has only {rows} "
            f"{side}embedding rows: ids {rows}..{tokens - 1} would index past the embedding. They are not a pair; "
            "load the tokenizer saved with this model (or, after adding tokens on purpose, resize its embeddings)."
        )
    if tokens < SMALLER_TOKENIZER_SHARE * rows and not _is_padding(tokens, rows):
        logger.warning(
            f"The tokenizer{_where(tokenizer)} has {tokens} {side}tokens but the model{_where(model)} has {rows} "
            f"{side}embedding rows. This looks like the wrong pair: its ids would mean other words than the model "
            "was trained on, and predictions would be silently wrong. Load the tokenizer saved with this model."
        )


def check_tokenizer_fits_model(tokenizer, model) -> None:
    """
    Check that `tokenizer` can be the tokenizer of `model`, by their vocabulary sizes.

    A tokenizer with more tokens than the model's embedding has rows is an error: its high ids have no row. One with
    fewer is allowed (transformers allows it, and a model may keep spare rows), but when it has fewer than 90 % of the
    rows, and the difference is not the usual padding to a multiple of 8 or 64, a warning says that the two look like
    the wrong pair. A translator's target vocabulary (`tokenizer.target_vocab_size`) is checked against its
    `config.decoder_vocab_size` in the same way. Nothing is checked when either is missing.

    Args:
        tokenizer: a tokenizer (any `PreTrainedTokenizerBase`; its size is `len(tokenizer)`, added tokens included).
        model: a `PreTrainedModel`.

    Raises:
        `ValueError`: the tokenizer is larger than the embedding; the message gives both sizes and both folders.
    """
    if tokenizer is None or model is None:
        return
    rows = _input_rows(model)
    if rows is not None:
        _compare(len(tokenizer), rows, "source" if _target_rows(model) is not None else "", tokenizer, model)
    target_rows = _target_rows(model)
    target_tokens = getattr(tokenizer, "target_vocab_size", None)
    if target_rows is not None and target_tokens is not None:
        _compare(target_tokens, target_rows, "target", tokenizer, model)


__all__ = ["check_tokenizer_fits_model"]
