"""Tokenizer of the GRU translator: fastai-style words, one vocabulary per language.

The 2018 translate notebook keeps a French (source) and an English (target) vocabulary, each fastai's special tokens
followed by the most frequent words; `xxeos` ends every sequence. `GruSeq2SeqTokenizer` does the same, with the
rules of `text_processing_gru_seq2seq.py`, and follows Marian's tokenizer for the transformers side:
`tokenizer(source_texts, text_target=target_texts)` encodes the targets with the target vocabulary into `labels`,
and `decode` reads target ids. Encoding is plain Python, one dict lookup per word.
"""

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sized

from transformers import PythonBackend
from transformers.tokenization_utils_base import BatchEncoding, PaddingStrategy, TruncationStrategy
from transformers.utils import logging

from .text_processing_gru_seq2seq import SPECIAL_TOKENS, detokenize, tokenize


logger = logging.get_logger(__name__)

# Lone UTF-16 surrogates: valid in a Python `str`, impossible in UTF-8 (files, the `tokenizers` backend)
_SURROGATE = re.compile("[\ud800-\udfff]")
VOCAB_FILES_NAMES = {"source_vocab_file": "source_vocab.json", "target_vocab_file": "target_vocab.json"}


# Copied from ulmfit.models.awd_lstm.tokenization_awd_lstm._check_text with AwdLstm->GruSeq2Seq
def _check_text(text, where: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"GruSeq2SeqTokenizer expects text as `str`, got {type(text).__name__} ({where}).")
    return text


def _load_vocab(vocab, side: str, folder: str | None = None) -> dict[str, int]:
    """A vocabulary from a token list, a token -> id dict or a JSON file of either; fastai's specials come first."""
    file_name = VOCAB_FILES_NAMES[f"{side}_vocab_file"]
    if vocab is None and folder:  # `from_pretrained` passes no file for one it did not find
        raise ValueError(
            f"GruSeq2SeqTokenizer found no {side} vocabulary: {os.path.join(str(folder), file_name)} does not exist. "
            "A saved tokenizer folder has both source_vocab.json and target_vocab.json; copy the missing one from "
            "where the tokenizer was saved, or save the tokenizer again."
        )
    if vocab is None:
        raise ValueError(
            f"GruSeq2SeqTokenizer needs a {side} vocabulary: pass `source_vocab=`/`target_vocab=`, load a saved "
            "tokenizer with `from_pretrained`, or build one from sentence pairs with `GruSeq2SeqTokenizer.train`."
        )
    if isinstance(vocab, (str, os.PathLike)):
        path = vocab
        try:
            with open(path, encoding="utf-8") as handle:
                vocab = json.load(handle)
        except FileNotFoundError as error:
            raise ValueError(f"GruSeq2SeqTokenizer found no {side} vocabulary: {path} does not exist.") from error
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} is not valid JSON ({error.msg}: line {error.lineno}, column {error.colno}); it may have "
                "been truncated. Save the tokenizer again, or copy the file again from where it was saved."
            ) from error
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{path} is not UTF-8 text (byte {error.start}): it is not a saved vocabulary."
            ) from error
        if not isinstance(vocab, (Mapping, list)):
            raise ValueError(f"{path} must hold a JSON object token -> id or a list of tokens.")
    if isinstance(vocab, Mapping):
        ordered = sorted(vocab, key=vocab.__getitem__)
        if [vocab[token] for token in ordered] != list(range(len(ordered))):
            raise ValueError(f"The {side} vocabulary's ids must be 0..{len(ordered) - 1} without gaps.")
        vocab = ordered
    vocab = list(vocab)
    if len(set(vocab)) != len(vocab):
        duplicates = sorted(token for token, count in Counter(vocab).items() if count > 1)[:5]
        raise ValueError(f"The {side} vocabulary repeats tokens, e.g. {duplicates}.")
    if vocab[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
        raise ValueError(
            f"The {side} vocabulary must start with fastai's special tokens {SPECIAL_TOKENS}; got "
            f"{vocab[: len(SPECIAL_TOKENS)]}."
        )
    return {token: index for index, token in enumerate(vocab)}


# Copied from ulmfit.models.awd_lstm.tokenization_awd_lstm._ranked_vocab with _ranked_vocab->make_vocab
def make_vocab(counts: Counter, max_vocab: int, min_freq: int) -> list[str]:
    """fastai's special tokens, then the words seen `min_freq`+ times, most frequent first (ties alphabetical)."""
    if max_vocab < len(SPECIAL_TOKENS):
        raise ValueError(f"`max_vocab` must be at least {len(SPECIAL_TOKENS)} (the special tokens), got {max_vocab}.")
    if min_freq < 1:
        raise ValueError(f"`min_freq` must be at least 1, got {min_freq}.")
    special = set(SPECIAL_TOKENS)
    # a lone surrogate ("\ud800", e.g. half of a mis-decoded emoji) has no UTF-8 form, so the vocabulary file and the
    # `tokenizers` backend cannot hold a word with one: such words stay out of the vocabulary and encode as `xxunk`
    unstorable = {word for word in counts if _SURROGATE.search(word)}
    if unstorable:
        examples = sorted(unstorable)[:3]
        logger.warning(f"Left {len(unstorable)} words with lone surrogates out of the vocabulary, e.g. {examples}.")
    special |= unstorable
    ranked = sorted(
        (item for item in counts.items() if item[1] >= min_freq and item[0] not in special),
        key=lambda item: (-item[1], item[0]),
    )
    return SPECIAL_TOKENS + [word for word, _ in ranked[: max_vocab - len(SPECIAL_TOKENS)]]


class GruSeq2SeqTokenizer(PythonBackend):
    r"""
    Word-level tokenizer with a source and a target vocabulary (fastai's rules, French elisions and English clitics
    split as spaCy does). Build one from sentence pairs with [`~GruSeq2SeqTokenizer.train`], or load one with
    `from_pretrained` (`source_vocab.json` + `target_vocab.json`).

    Every encoded sequence ends with `xxeos`; an empty or blank text encodes to `[xxeos]` alone. Words outside the
    vocabulary become `xxunk`. `decode` reads target ids (pass `use_source_tokenizer=True` for source ids) and
    gives readable text: capitals restored from `xxmaj`/`xxup`, no space before punctuation.

    Args:
        source_vocab_file (`str`, *optional*), target_vocab_file (`str`, *optional*):
            JSON files (token -> id), as written by `save_pretrained`.
        source_vocab (`list[str]` or `dict[str, int]`, *optional*), target_vocab (*optional*):
            The vocabularies themselves, instead of the files. Each must start with fastai's nine special tokens.
        source_lang (`str`, *optional*, defaults to `"fr"`), target_lang (`str`, *optional*, defaults to `"en"`):
            Languages of the rules: "fr" splits elisions and inversions, "en" clitics; other codes get the generic
            rules only.

    Example:
    ```python
    >>> from ulmfit import GruSeq2SeqTokenizer
    >>> tokenizer = GruSeq2SeqTokenizer.train(["Qu'est-ce que c'est ?"], ["What is it?"])
    >>> tokenizer.tokenize("Qu'est-ce que c'est ?")
    ['xxmaj', "qu'", 'est', '-ce', 'que', "c'", 'est', '?']
    >>> batch = tokenizer(["Qu'est-ce que c'est ?"], text_target=["What is it?"])
    >>> tokenizer.decode(batch["labels"][0], skip_special_tokens=True)
    'What is it?'
    ```
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "right"

    def __init__(
        self,
        source_vocab_file: str | None = None,
        target_vocab_file: str | None = None,
        source_vocab: list[str] | dict[str, int] | None = None,
        target_vocab: list[str] | dict[str, int] | None = None,
        source_lang: str = "fr",
        target_lang: str = "en",
        unk_token: str = "xxunk",
        pad_token: str = "xxpad",
        bos_token: str = "xxbos",
        eos_token: str = "xxeos",
        **kwargs,
    ):
        folder = kwargs.get("name_or_path")
        self.source_vocab = _load_vocab(
            source_vocab if source_vocab is not None else source_vocab_file, "source", folder
        )
        self.target_vocab = _load_vocab(
            target_vocab if target_vocab is not None else target_vocab_file, "target", folder
        )
        self.source_tokens = list(self.source_vocab)
        self.target_tokens = list(self.target_vocab)
        self.source_lang = source_lang
        self.target_lang = target_lang
        self._target_mode = False
        super().__init__(
            source_lang=source_lang,
            target_lang=target_lang,
            unk_token=unk_token,
            pad_token=pad_token,
            bos_token=bos_token,
            eos_token=eos_token,
            **kwargs,
        )

    # ----------------------------------------------------------------------------------------------------------------
    # Vocabularies

    @property
    def vocab_size(self) -> int:
        """Size of the source vocabulary (the model's `vocab_size`)."""
        return len(self.source_vocab)

    @property
    def target_vocab_size(self) -> int:
        """Size of the target vocabulary (the model's `decoder_vocab_size`)."""
        return len(self.target_vocab)

    @property
    def suppress_token_ids(self) -> list[int]:
        """
        Target ids a translation should never contain: `xxunk` (fastai's `no_unk`), `xxpad` and `xxbos`. Training
        scripts copy them into `model.generation_config.suppress_tokens`.
        """
        return sorted(self.target_vocab[token] for token in (self.unk_token, self.pad_token, self.bos_token))

    def get_vocab(self) -> dict[str, int]:
        """The source vocabulary, as Marian's tokenizer returns it."""
        return dict(self.source_vocab)

    def get_target_vocab(self) -> dict[str, int]:
        return dict(self.target_vocab)

    def _switch_to_input_mode(self):
        self._target_mode = False

    def _switch_to_target_mode(self):
        self._target_mode = True

    def _convert_token_to_id(self, token: str) -> int:
        vocab = self.target_vocab if self._target_mode else self.source_vocab
        return vocab.get(token, vocab[self.unk_token])

    def _convert_id_to_token(self, index: int) -> str:
        """Target tokens, since generated ids are what gets decoded (Marian's convention)."""
        return self.target_tokens[index] if 0 <= index < len(self.target_tokens) else self.unk_token

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, str]:
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory.")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        paths = []
        for key, vocab in (("source_vocab_file", self.source_vocab), ("target_vocab_file", self.target_vocab)):
            path = os.path.join(save_directory, prefix + self.vocab_files_names[key])
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(vocab, handle, ensure_ascii=False, indent=0)
            paths.append(path)
        return tuple(paths)

    # ----------------------------------------------------------------------------------------------------------------
    # Training the vocabularies

    @classmethod
    def train(
        cls,
        source_texts: Iterable[str],
        target_texts: Iterable[str],
        max_vocab: int = 40000,
        min_freq: int = 1,
        source_lang: str = "fr",
        target_lang: str = "en",
        **kwargs,
    ) -> "GruSeq2SeqTokenizer":
        """
        Build both vocabularies from parallel texts, as the notebook's `toks2ids` does: fastai's special tokens, then
        every word seen at least `min_freq` times, most frequent first, up to `max_vocab` tokens per language
        (the notebook keeps the 40,000 most frequent words, with no minimum frequency).

        Args:
            source_texts, target_texts: iterables of strings (lists, or `datasets` columns).
            max_vocab: the largest vocabulary, special tokens included.
            min_freq: the fewest occurrences a word needs.
            source_lang, target_lang: see the class docstring.
            kwargs: passed on to the constructor (e.g. `model_max_length`).
        """
        vocabularies = []
        for name, texts, language in (
            ("source_texts", source_texts, source_lang),
            ("target_texts", target_texts, target_lang),
        ):
            if isinstance(texts, str):
                raise TypeError(f"`{name}` must be an iterable of strings, not a single string.")
            counts = Counter()
            for index, text in enumerate(texts):
                counts.update(tokenize(_check_text(text, f"item {index} of `{name}`"), language))
            if not counts:
                raise ValueError(f"Cannot train a vocabulary: `{name}` has no words.")
            vocabularies.append(make_vocab(counts, max_vocab=max_vocab, min_freq=min_freq))
        return cls(
            source_vocab=vocabularies[0],
            target_vocab=vocabularies[1],
            source_lang=source_lang,
            target_lang=target_lang,
            **kwargs,
        )

    # ----------------------------------------------------------------------------------------------------------------
    # Encoding

    def _split(self, text, name: str, language: str):
        """Words of one text or of a batch of texts."""
        if isinstance(text, str):
            return tokenize(text, language)
        if isinstance(text, Sized) and isinstance(text, Iterable) and not isinstance(text, Mapping):
            return [tokenize(_check_text(item, f"item {i} of `{name}`"), language) for i, item in enumerate(text)]
        raise TypeError(
            f"GruSeq2SeqTokenizer expects `{name}` as `str` or a list of `str`, got {type(text).__name__}."
        )

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """
        Refused for words that are not in both vocabularies: the source and target vocabularies are the model's two
        embeddings (and the target one its output layer), so one added id could not mean the same word on both sides,
        and a token added on top of them would never be matched by the word rules. Tokens already in both are
        accepted and add nothing (0). To grow a vocabulary, train the tokenizer again (`GruSeq2SeqTokenizer.train`)
        on texts that contain the new words.
        """
        tokens = [new_tokens] if isinstance(new_tokens, str) or not isinstance(new_tokens, Iterable) else new_tokens
        new = [
            str(token) for token in tokens if not (str(token) in self.source_vocab and str(token) in self.target_vocab)
        ]
        if new:
            raise ValueError(
                f"GruSeq2SeqTokenizer cannot add {new[:5]}: its source and target vocabularies are the translator's "
                "two embeddings, so a token added on top of them would mean nothing to the model. Train the tokenizer "
                "again (`GruSeq2SeqTokenizer.train`) on texts that contain the new words."
            )
        return 0

    def __call__(self, text=None, text_pair=None, text_target=None, *args, **kwargs):
        """The base class's `__call__`, refusing a batch of sources and a batch of targets of different sizes (it
        would return `input_ids` and `labels` with different numbers of rows)."""
        if (
            isinstance(text, (list, tuple))
            and isinstance(text_target, (list, tuple))
            and len(text) != len(text_target)
        ):
            raise ValueError(
                f"`text` has {len(text)} sentences but `text_target` {len(text_target)}: give one translation per "
                "source sentence."
            )
        return super().__call__(text, text_pair, text_target, *args, **kwargs)

    def tokenize(self, text: str, **kwargs) -> list[str]:
        """The words of `text` (source rules; target rules inside `text_target` encoding)."""
        return self._split(text, "text", self.target_lang if self._target_mode else self.source_lang)

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """`xxeos` after the sequence (the notebook appends `_eos_` to every sentence)."""
        if token_ids_1 is not None:
            raise ValueError("GruSeq2SeqTokenizer encodes single sentences; pass targets as `text_target=`.")
        return token_ids_0 + [self.eos_token_id]

    def _encode_plus(
        self,
        text,
        text_pair=None,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors=None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs,
    ) -> BatchEncoding:
        """Rules, dict lookups, `xxeos`, truncation; padding and tensors are the base class's `pad`."""
        if text_pair is not None:
            raise ValueError(
                "GruSeq2SeqTokenizer encodes single sentences, not pairs; pass the translations as `text_target=`."
            )
        if return_offsets_mapping or return_overflowing_tokens:
            raise NotImplementedError("GruSeq2SeqTokenizer has no character offsets and no overflowing windows.")
        language = self.target_lang if self._target_mode else self.source_lang
        vocab = self.target_vocab if self._target_mode else self.source_vocab

        # 1. Words, one list per text
        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
            batch_words = text if is_batched else [text]
        else:
            is_batched = not isinstance(text, str)
            batch_words = self._split(text, "text", language) if is_batched else [self._split(text, "text", language)]

        # 2. Ids, `xxeos`, truncation (which keeps `xxeos`)
        unk, eos = vocab[self.unk_token], vocab[self.eos_token]
        truncate = truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None
        batch_ids, batch_special = [], []
        for words in batch_words:
            ids = [vocab.get(word, unk) for word in words]
            if truncate:
                ids = ids[: max(max_length - int(add_special_tokens), 0)]
            special = [0] * len(ids)
            if add_special_tokens:
                ids, special = ids + [eos], special + [1]
            batch_ids.append(ids)
            batch_special.append(special)

        # 3. Padding, masks and tensors
        return self._pad_encoded(
            batch_ids,
            batch_special,
            is_batched,
            padding_strategy=padding_strategy,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_special_tokens_mask=return_special_tokens_mask,
            return_length=return_length,
            verbose=verbose,
        )

    # Copied from ulmfit.models.awd_lstm.tokenization_awd_lstm.AwdLstmTokenizer._pad_encoded
    def _pad_encoded(
        self,
        batch_ids: list[list[int]],
        batch_special: list[list[int]],
        is_batched: bool,
        padding_strategy: PaddingStrategy,
        max_length: int | None,
        pad_to_multiple_of: int | None,
        padding_side: str | None,
        return_tensors,
        return_token_type_ids: bool | None,
        return_attention_mask: bool | None,
        return_special_tokens_mask: bool,
        return_length: bool,
        verbose: bool,
    ) -> BatchEncoding:
        """The end of `_encode_plus`: the optional fields, the base class's `pad` (masks, tensors), and `length`."""
        encoded = {"input_ids": batch_ids}
        if return_token_type_ids:
            encoded["token_type_ids"] = [[0] * len(ids) for ids in batch_ids]
        if return_special_tokens_mask:
            encoded["special_tokens_mask"] = batch_special
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        # nothing to pad (e.g. one text, as pipelines send them): the masks directly, without the base `pad`
        nothing_to_pad = padding_strategy == PaddingStrategy.DO_NOT_PAD or (
            padding_strategy == PaddingStrategy.LONGEST
            and len({len(ids) for ids in batch_ids}) <= 1
            and not pad_to_multiple_of
        )
        if nothing_to_pad and return_attention_mask:
            encoded["attention_mask"] = [[1] * len(ids) for ids in batch_ids]
        if not is_batched and not return_tensors:
            encoded = {key: value[0] for key, value in encoded.items()}
        if nothing_to_pad:
            padded = BatchEncoding(encoded, tensor_type=return_tensors)
        else:
            padded = self.pad(
                encoded,
                padding=padding_strategy,
                max_length=max_length,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_attention_mask=return_attention_mask,
                return_tensors=return_tensors,
                verbose=verbose,
            )
        if return_length:
            lengths = [len(ids) for ids in batch_ids]
            padded["length"] = lengths if is_batched or return_tensors else lengths[0]
        return padded

    # ----------------------------------------------------------------------------------------------------------------
    # Decoding

    def _decode(
        self,
        token_ids,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        use_source_tokenizer: bool = False,
        **kwargs,
    ) -> str:
        """
        Readable text from target ids (source ids with `use_source_tokenizer=True`). Special tokens are dropped with
        `skip_special_tokens=True`, otherwise kept verbatim between the detokenized runs of words.
        """
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        tokens_of = self.source_tokens if use_source_tokenizer else self.target_tokens
        language = self.source_lang if use_source_tokenizer else self.target_lang
        bad = [int(i) for i in token_ids if not 0 <= int(i) < len(tokens_of)]
        if bad:
            side = "source" if use_source_tokenizer else "target"
            raise ValueError(f"Cannot decode ids {bad[:5]}: the {side} vocabulary has {len(tokens_of)} tokens.")
        special = set(self.all_special_tokens)
        pieces, run = [], []
        for token in (tokens_of[int(i)] for i in token_ids):
            if token in special:
                if run:
                    pieces.append(detokenize(run, language))
                    run = []
                if not skip_special_tokens:
                    pieces.append(token)
            else:
                run.append(token)
        if run:
            pieces.append(detokenize(run, language))
        return " ".join(piece for piece in pieces if piece)


__all__ = ["GruSeq2SeqTokenizer"]
