"""Tokenizer for AWD-LSTM / ULMFiT: fastai v2's word-level tokenization on the `tokenizers` backend.

Text goes through fastai's rules (`fix_html`, `replace_rep`, `replace_wrep`, `spec_add_spaces`, `rm_useless_spaces`,
`replace_all_caps`, `replace_maj`, `lowercase`) and a re-implementation of the spaCy English word splitter fastai uses,
both in `text_processing_awd_lstm.py` (no spaCy at run time). The words are then looked up by a `tokenizers` WordLevel
model, which also adds `xxbos`, pads, truncates and builds tensors. Special tokens keep fastai's order and ids:
`xxunk xxpad xxbos xxeos xxfld xxrep xxwrep xxup xxmaj` = 0..8, so fastai vocabularies and checkpoints line up.

`tokenizer_type="unigram"` or `"bpe"` swaps the English word splitter and the WordLevel model for a `tokenizers`
Unigram (SentencePiece) or BPE model after the same rules, as fastai v2's `SentencePieceTokenizer` does: any language,
a small vocabulary. That backend lives in `subword_awd_lstm.py`.
"""

import itertools
import json
import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sized

from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors
from transformers import TokenizersBackend
from transformers.tokenization_utils_base import (
    TOKENIZER_CONFIG_FILE,
    BatchEncoding,
    PaddingStrategy,
    TruncationStrategy,
)
from transformers.utils import logging

from .subword_awd_lstm import (
    DEFAULT_VOCAB_SIZE,
    SPACE,
    apply_rules_any_script,
    check_tokenizer_type,
    check_vocab_size,
    decode_pieces,
    load_backend,
    strip_normalizer,
    train_backend,
    training_texts,
)
from .text_processing_awd_lstm import SPECIAL_TOKENS, detokenize, tokenize


logger = logging.get_logger(__name__)

# Below this many texts, counting words in worker processes costs more than it saves.
_PARALLEL_MIN_TEXTS = 4000
_COUNT_BATCH_SIZE = 1000
# Lone UTF-16 surrogates: valid in a Python `str`, impossible in UTF-8 (files, the `tokenizers` backend)
_SURROGATE = re.compile("[\ud800-\udfff]")
VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}
# What earlier versions saved instead of `vocab.json`; only its vocabulary and added tokens are read.
LEGACY_TOKENIZER_FILE = "tokenizer.json"


def _check_text(text, where: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"AwdLstmTokenizer expects text as `str`, got {type(text).__name__} ({where}).")
    return text


def _count_words(texts: list[str]) -> Counter:
    """Word counts of one batch of texts (run in worker processes by `AwdLstmTokenizer.train`)."""
    counts = Counter()
    for text in texts:
        counts.update(tokenize(text, add_bos=False))
    return counts


def _batches(texts: Iterable[str], size: int):
    iterator = iter(texts)
    start = 0
    while batch := list(itertools.islice(iterator, size)):
        for offset, text in enumerate(batch):
            _check_text(text, f"item {start + offset} of the training texts")
        start += len(batch)
        yield batch


def _map_batches(function, texts: Iterable[str], num_proc: int | None):
    """`function` of each batch of texts, in order; in `num_proc` worker processes when there are enough texts."""
    num_proc = num_proc or os.cpu_count() or 1
    batches = _batches(texts, _COUNT_BATCH_SIZE)
    head = list(itertools.islice(batches, _PARALLEL_MIN_TEXTS // _COUNT_BATCH_SIZE))
    if num_proc > 1 and len(head) == _PARALLEL_MIN_TEXTS // _COUNT_BATCH_SIZE:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with context.Pool(num_proc) as pool:
            yield from pool.imap(function, itertools.chain(head, batches))
    else:
        yield from map(function, itertools.chain(head, batches))


def _is_vocab_padding(token: str) -> bool:
    """`xxfake`, `xxfake1`, ...: rows that only round the vocabulary up to a multiple of 8."""
    return token.startswith("xxfake") and token[6:].isdigit() or token == "xxfake"


def _read_json(path: str):
    """A JSON file; a corrupt one (e.g. truncated by an interrupted copy) is a `ValueError` naming it and the spot."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error.msg}: line {error.lineno}, column {error.colno}); it may have been "
            "truncated. Save the tokenizer again, or copy the file again from where it was saved."
        ) from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text (byte {error.start}): it is not a saved vocabulary.") from error


def _read_vocab(
    vocab_file: str | None, tokenizer_file: str | None, folder: str | None = None
) -> tuple[dict[str, int], dict[int, AddedToken]]:
    """The vocabulary (token -> id) of a `vocab.json`, or the vocabulary and added tokens of an old tokenizer.json."""
    if vocab_file and os.path.isfile(vocab_file):
        vocab = _read_json(vocab_file)
        if not isinstance(vocab, dict) or not all(isinstance(index, int) for index in vocab.values()):
            raise ValueError(f"{vocab_file} must hold a JSON object token -> id, got {type(vocab).__name__}.")
        return vocab, {}
    if tokenizer_file and os.path.isfile(tokenizer_file):
        serialized = _read_json(tokenizer_file)
        model = serialized.get("model") if isinstance(serialized, dict) else None
        if isinstance(model, dict) and model.get("type", "WordLevel") != "WordLevel":
            raise ValueError(
                f"{tokenizer_file} holds a {model['type']} model: load it with the `tokenizer_type` it was saved with "
                '(`"tokenizer_type"` in tokenizer_config.json: "unigram" or "bpe").'
            )
        try:
            vocab = serialized["model"]["vocab"]
            added = {token.pop("id"): AddedToken(**token) for token in serialized.get("added_tokens", [])}
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"{tokenizer_file} is not a tokenizer.json saved by AwdLstmTokenizer (no word-level `model.vocab`)."
            ) from error
        return vocab, added
    if folder or vocab_file or tokenizer_file:
        missing = vocab_file or tokenizer_file or os.path.join(str(folder), VOCAB_FILES_NAMES["vocab_file"])
        raise ValueError(
            f"AwdLstmTokenizer found no vocabulary: {missing} does not exist (a saved AwdLstmTokenizer folder has a "
            f"{VOCAB_FILES_NAMES['vocab_file']}, or a {LEGACY_TOKENIZER_FILE} from earlier versions). Copy the file "
            "from where the tokenizer was saved, or save the tokenizer again."
        )
    raise ValueError(
        "AwdLstmTokenizer needs a vocabulary: pass `vocab=`, load a saved one with `from_pretrained`, or build one "
        "from texts with `AwdLstmTokenizer.train(texts)`."
    )


def _ranked_vocab(counts: Counter, max_vocab: int, min_freq: int) -> list[str]:
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


def make_vocab(counts: Counter, max_vocab: int = 60000, min_freq: int = 3) -> list[str]:
    """
    fastai's `make_vocab`: the special tokens, then the words seen at least `min_freq` times, most frequent first,
    up to `max_vocab` tokens, then `xxfake*` rows up to a multiple of 8. Ties are broken alphabetically (fastai breaks
    them by first occurrence), so the vocabulary does not depend on how many processes counted.
    """
    vocab = _ranked_vocab(counts, max_vocab, min_freq)
    return vocab + [f"xxfake{i}" if i else "xxfake" for i in range(-len(vocab) % 8)]


class AwdLstmTokenizer(TokenizersBackend):
    r"""
    fastai v2's tokenizer on a `tokenizers` backend: fastai's rules, then either (`tokenizer_type="word"`, the
    default) spaCy-style English word splitting and a WordLevel vocabulary, or (`"unigram"`, `"bpe"`) a subword
    model for any language, as fastai's `SentencePieceTokenizer`. Build one from a corpus with
    [`~AwdLstmTokenizer.train`], or load one with `from_pretrained`.

    A subword tokenizer saves a complete `tokenizer.json` (normalizer, Metaspace pre-tokenizer, model, `xxbos`
    post-processor, decoder, special tokens) and `tokenizer_config.json` with its `tokenizer_type`. The rules that a
    `tokenizers` normalizer can express are in the file; the case and repetition rules (`xxmaj`, `xxup`, `xxrep`,
    `xxwrep`) and `html.unescape` run in this class. `Tokenizer.from_file(folder + "/tokenizer.json")` therefore gives
    this class's ids exactly on lower-case text with no character repeated 3+ times, no repeated word, no HTML
    character reference (`&amp;`...), none of fix_html's strings `amp;`, `nbsp;`, `quot;`, `<unk>`, ` @.@ `, ` @-@ `,
    and no line break or other whitespace but spaces at its end (reversed, for `backwards`); on other text it gives
    no markers. The subword path's case rules mark capitals of any script (`str.isupper`), a deliberate widening of
    fastai's `[A-Z]`; the word path keeps fastai's rules exactly. See `subword_awd_lstm.py`.

    A word-level tokenizer's `save_pretrained` writes no `tokenizer.json`. A `tokenizers` pipeline cannot express
    fastai's rules (`xxrep 3 !` counts a repetition; `xxmaj` and `xxup` lower-case a word after spaCy's splitting,
    which has hundreds of exceptions), and other tools (`tokenizers.Tokenizer.from_file`, TGI, the Hub widget) read a
    file of that name as a complete tokenizer, which would map most words to `xxunk`. The vocabulary is in
    `vocab.json` (token -> id, without the rules), added tokens and settings in `tokenizer_config.json`, and the rules
    in this class: other tools must load the folder with `AutoTokenizer.from_pretrained(folder,
    trust_remote_code=True)`, or run this class's `tokenize` and then look the words up in `vocab.json`. Folders saved
    with a `tokenizer.json` by earlier versions still load; saving one again replaces that file with `vocab.json`.

    Args:
        vocab (`dict[str, int]` or `list[str]`, *optional*):
            The vocabulary; a list is numbered in order. It must start with fastai's nine special tokens.
        vocab_file (`str`, *optional*):
            A `vocab.json` (token -> id, what `save_pretrained` writes) to load instead of `vocab`.
        tokenizer_file (`str`, *optional*):
            Word-level: a `tokenizer.json` saved by an earlier version of this class, to load instead of `vocab`
            (only its vocabulary and added tokens are read). Subword: the saved tokenizer, read whole.
        tokenizer_type (`str`, *optional*, defaults to `"word"`):
            `"word"` (fastai's English words, WordLevel), `"unigram"` (SentencePiece's unigram model) or `"bpe"`.
        tokenizer_object (`tokenizers.Tokenizer`, *optional*):
            A subword backend built by [`~AwdLstmTokenizer.train`], instead of `tokenizer_file`.
        backwards (`bool`, *optional*, defaults to `False`):
            Reverse the token order of every encoded text (fastai's `backwards=True`), for the backward language model
            of a forward+backward ULMFiT ensemble. `decode` reverses the ids back.
        padding_side (`str`, *optional*, defaults to `"left"`):
            fastai pads text batches at the start, which also makes batched generation work.

    Example:
    ```python
    >>> from ulmfit import AwdLstmTokenizer
    >>> tokenizer = AwdLstmTokenizer.train(["The movie was GREAT!!!", "I didn't like it."], min_freq=1)
    >>> tokenizer.tokenize("The movie was GREAT!!!")
    ['xxmaj', 'the', 'movie', 'was', 'xxup', 'great', 'xxrep', '3', '!']
    >>> tokenizer.convert_ids_to_tokens(tokenizer("The movie was GREAT!!!").input_ids)  # encoding adds fastai's xxbos
    ['xxbos', 'xxmaj', 'the', 'movie', 'was', 'xxup', 'great', 'xxrep', '3', '!']
    ```
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "left"

    def __init__(
        self,
        vocab: dict[str, int] | list[str] | None = None,
        vocab_file: str | None = None,
        tokenizer_file: str | None = None,
        backwards: bool = False,
        tokenizer_type: str = "word",
        tokenizer_object: Tokenizer | None = None,
        unk_token: str = "xxunk",
        pad_token: str = "xxpad",
        bos_token: str = "xxbos",
        eos_token: str = "xxeos",
        **kwargs,
    ):
        self.tokenizer_type = check_tokenizer_type(tokenizer_type)
        if tokenizer_type != "word":
            backend = load_backend(tokenizer_type, vocab, tokenizer_file, tokenizer_object, kwargs.get("name_or_path"))
        elif tokenizer_object is not None:
            raise ValueError("`tokenizer_object` is a subword backend: pass `tokenizer_type` 'unigram' or 'bpe'.")
        else:
            if vocab is None:
                vocab, added_tokens = _read_vocab(vocab_file, tokenizer_file, kwargs.get("name_or_path"))
                # `from_pretrained` passes the added tokens it read from tokenizer_config.json (or the legacy file)
                if not kwargs.get("added_tokens_decoder"):
                    kwargs["added_tokens_decoder"] = added_tokens
            backend = self._build_backend(vocab)
        self.backwards = backwards
        super().__init__(
            tokenizer_object=backend,
            backwards=backwards,
            tokenizer_type=tokenizer_type,
            unk_token=unk_token,
            pad_token=pad_token,
            bos_token=bos_token,
            eos_token=eos_token,
            **kwargs,
        )

    @staticmethod
    def _build_backend(vocab: dict[str, int] | list[str]) -> Tokenizer:
        """A WordLevel `tokenizers.Tokenizer` that maps pre-split words to ids and adds `xxbos`."""
        if isinstance(vocab, (list, tuple)):
            if len(set(vocab)) != len(vocab):
                duplicates = sorted(w for w, n in Counter(vocab).items() if n > 1)[:5]
                raise ValueError(f"The vocabulary repeats tokens, e.g. {duplicates}.")
            vocab = {word: index for index, word in enumerate(vocab)}
        expected = {word: index for index, word in enumerate(SPECIAL_TOKENS)}
        wrong = {word: vocab.get(word) for word, index in expected.items() if vocab.get(word) != index}
        if wrong:
            raise ValueError(
                f"The vocabulary must start with fastai's special tokens {SPECIAL_TOKENS} (ids 0..8); got {wrong}."
            )
        backend = Tokenizer(models.WordLevel(vocab=dict(vocab), unk_token="xxunk"))
        # Our words never contain a space (fastai writes one as "▁"), so `backend_tokenizer.encode(" ".join(words))`
        # looks up words that `tokenize` already split; the backend knows nothing of the rules.
        backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
        backend.post_processor = processors.TemplateProcessing(
            single="xxbos $A",
            pair="xxbos $A xxfld $B",
            special_tokens=[("xxbos", vocab["xxbos"]), ("xxfld", vocab["xxfld"])],
        )
        return backend

    @classmethod
    def convert_to_native_format(cls, trust_remote_code: bool = False, **kwargs) -> dict:
        """`from_pretrained` hands the vocabulary files to `__init__` as they are: it reads them itself."""
        return kwargs

    @property
    def suppress_token_ids(self) -> list[int]:
        """
        Ids a language model should never generate: `xxunk` (fastai's `predict(no_unk=True)`), `xxpad`, and the
        `xxfake*` rows that only pad the vocabulary to a multiple of 8. Training scripts copy them into
        `model.generation_config.suppress_tokens`.
        """
        vocab = self.get_vocab()
        fake = [index for token, index in vocab.items() if _is_vocab_padding(token)]
        return sorted({self.unk_token_id, self.pad_token_id, *fake})

    # ----------------------------------------------------------------------------------------------------------------
    # Saving

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write `vocab.json`: the word-level vocabulary, token -> id in id order (added tokens are not in it); a
        subword tokenizer writes its `tokenizer.json`."""
        if self.tokenizer_type != "word":
            return TokenizersBackend._save_pretrained(self, save_directory, (), filename_prefix=filename_prefix)
        vocab = self._tokenizer.get_vocab(with_added_tokens=False)
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(dict(sorted(vocab.items(), key=lambda item: item[1])), handle, indent=0, ensure_ascii=False)
            handle.write("\n")
        return (path,)

    def _save_pretrained(
        self,
        save_directory: str | os.PathLike,
        file_names: tuple[str, ...],
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
    ) -> tuple[str, ...]:
        """
        `vocab.json` instead of the backend's `tokenizer.json` (see the class docstring). The added tokens go in
        `tokenizer_config.json`, as for any tokenizer without a `tokenizer.json`: transformers leaves them out there
        for `TokenizersBackend` classes, whose `tokenizer.json` holds them.
        """
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        if self.tokenizer_type != "word":  # the backend's whole tokenizer.json, which holds the added tokens too
            stale = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
            if os.path.isfile(stale):
                os.remove(stale)
                logger.warning(f"Removed {stale}: a {self.tokenizer_type} AwdLstmTokenizer saves a tokenizer.json.")
            return file_names + self.save_vocabulary(save_directory, filename_prefix)
        config_file = os.path.join(save_directory, prefix + TOKENIZER_CONFIG_FILE)
        with open(config_file, encoding="utf-8") as handle:
            config = json.load(handle)
        config["added_tokens_decoder"] = {
            str(index): token.__getstate__() for index, token in sorted(self.added_tokens_decoder.items())
        }
        with open(config_file, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        # A tokenizer.json left by an earlier save would still be read, and mis-tokenize, by other tools.
        stale = os.path.join(save_directory, prefix + LEGACY_TOKENIZER_FILE)
        if os.path.isfile(stale):
            os.remove(stale)
            logger.warning(f"Removed {stale}: AwdLstmTokenizer saves its vocabulary as vocab.json.")
        return file_names + self.save_vocabulary(save_directory, filename_prefix)

    # ----------------------------------------------------------------------------------------------------------------
    # Training a vocabulary

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        max_vocab: int | None = None,
        min_freq: int | None = None,
        backwards: bool = False,
        num_proc: int | None = None,
        *,
        tokenizer_type: str = "word",
        vocab_size: int | None = None,
        **kwargs,
    ) -> "AwdLstmTokenizer":
        """
        Build a tokenizer from `texts`. Word-level (fastai's `Numericalize` setup): fastai's special tokens, then
        every word seen at least `min_freq` times, most frequent first, up to `max_vocab`. Subword: a Unigram or BPE
        model of `vocab_size` pieces trained by `tokenizers` on the texts after fastai's rules, with every character
        of the texts in it (so none of them becomes `xxunk`).

        Args:
            texts: any iterable of strings: a list, a generator, or a `datasets` column such as `dataset["text"]`.
            max_vocab: word-level only: the largest vocabulary (default fastai's 60,000).
            min_freq: word-level only: the fewest occurrences a word needs (default fastai's 3).
            backwards: see the class docstring.
            num_proc: processes that apply the rules; defaults to every core. Small corpora stay in-process.
            tokenizer_type: `"word"`, `"unigram"` or `"bpe"`.
            vocab_size: subword only: the number of pieces, the special tokens included (default 15,000). A
                corpus with more distinct characters than that gets a vocabulary as large as its alphabet.
            kwargs: passed on to the constructor (e.g. `model_max_length`).
        """
        if isinstance(texts, str):
            raise TypeError("`texts` must be an iterable of strings, not a single string.")
        if check_tokenizer_type(tokenizer_type) != "word":
            if max_vocab is not None or min_freq is not None:
                raise ValueError(
                    f"`max_vocab` and `min_freq` size a word-level vocabulary; a {tokenizer_type} one is sized with "
                    "`vocab_size` alone."
                )
            vocab_size = check_vocab_size(DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size)
            backend = train_backend(_map_batches(training_texts, texts, num_proc), tokenizer_type, vocab_size)
            return cls(tokenizer_type=tokenizer_type, tokenizer_object=backend, backwards=backwards, **kwargs)
        if vocab_size is not None:
            raise ValueError(
                "`vocab_size` sizes a subword vocabulary (`tokenizer_type='unigram'` or 'bpe'); a word-level one is "
                "sized with `max_vocab` and `min_freq`."
            )
        counts = Counter()
        for partial_counts in _map_batches(_count_words, texts, num_proc):
            counts.update(partial_counts)
        if not counts:
            raise ValueError("Cannot train a vocabulary: `texts` is empty.")
        max_vocab, min_freq = 60000 if max_vocab is None else max_vocab, 3 if min_freq is None else min_freq
        return cls(vocab=make_vocab(counts, max_vocab=max_vocab, min_freq=min_freq), backwards=backwards, **kwargs)

    def train_new_from_iterator(self, text_iterator, vocab_size: int, length=None, new_special_tokens=None, **kwargs):
        """The standard transformers entry point: a new tokenizer of the same type and rules trained on
        `text_iterator`; `vocab_size` is a word-level tokenizer's `max_vocab`."""
        if new_special_tokens:
            raise ValueError(
                "AwdLstmTokenizer uses fastai's fixed special tokens; `new_special_tokens` is not supported."
            )
        kwargs.pop("special_tokens_map", None)
        size = {"max_vocab": vocab_size} if self.tokenizer_type == "word" else {"vocab_size": vocab_size}
        return type(self).train(
            text_iterator, tokenizer_type=self.tokenizer_type, backwards=self.backwards, **size, **kwargs
        )

    # ----------------------------------------------------------------------------------------------------------------
    # Encoding

    def _split(self, text, name: str):
        """Rules + word splitting (subword: the rules) for one text, a batch of texts, or None."""
        if text is None:
            return None
        if isinstance(text, str):
            return self._split_text(text)
        if isinstance(text, Sized) and isinstance(text, Iterable) and not isinstance(text, Mapping):
            # a list, a tuple, or a `datasets` column such as `dataset["text"]`
            return [self._split_text(_check_text(item, f"item {i} of `{name}`")) for i, item in enumerate(text)]
        raise TypeError(f"AwdLstmTokenizer expects `{name}` as `str` or a list of `str`, got {type(text).__name__}.")

    def _split_text(self, text: str) -> list[str] | str:
        """
        fastai's rules and word splitting for one text; subword: the rule-processed text, for the backend. Tokens
        added with `add_tokens` (the add-then-resize workflow) are matched first, case-sensitively and longest first,
        and kept whole; the rules run on the text around them.
        """
        added = self._added_token_pattern()
        if self.tokenizer_type != "word":
            if added is None:
                return apply_rules_any_script(text)
            pieces = enumerate(added.split(text))  # odd pieces are the added tokens, which the backend matches
            return " ".join(piece if index % 2 else apply_rules_any_script(piece) for index, piece in pieces if piece)
        if added is None:
            return tokenize(text, add_bos=False)
        words = []
        for index, piece in enumerate(added.split(text)):  # odd pieces are the added tokens themselves
            if index % 2:
                words.append(piece)
            elif piece.strip():
                words += tokenize(piece, add_bos=False)
        return words

    def _added_token_pattern(self) -> "re.Pattern | None":
        """A regex that matches the tokens added on top of the vocabulary (None when there are none)."""
        size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        if getattr(self, "_added_pattern_size", None) != size:
            base = self._tokenizer.get_vocab(with_added_tokens=False)
            added = {token.content for token in self._tokenizer.get_added_tokens_decoder().values()} - set(base)
            ordered = sorted(added, key=len, reverse=True)  # longest first, so that "[A]]" wins over "[A]"
            self._added_pattern = re.compile("(" + "|".join(map(re.escape, ordered)) + ")") if added else None
            self._added_pattern_size = size
        return self._added_pattern

    def _word_to_id(self) -> dict[str, int]:
        """The vocabulary as a dict, refreshed if tokens were added since it was built."""
        size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        if getattr(self, "_vocab_cache_size", None) != size:
            self._vocab_cache = self._tokenizer.get_vocab(with_added_tokens=True)
            self._vocab_cache_size = size
        return self._vocab_cache

    def _pieces(self, text: str, name: str) -> list[str]:
        """A subword tokenizer's pieces for one text."""
        rule_processed = self._split_text(_check_text(text, f"`{name}`"))
        return self._tokenizer.encode(rule_processed, add_special_tokens=False).tokens

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """fastai's tokens for `text` (words outside the vocabulary included; ids map them to `xxunk`), or pieces."""
        split = self._split if self.tokenizer_type == "word" else self._pieces
        tokens = split(text, "text")
        if pair is not None:  # fastai's field separator joins a pair, a special token like `xxbos`
            tokens = tokens + (["xxfld"] if add_special_tokens else []) + split(pair, "pair")
        if add_special_tokens:
            tokens = [self.bos_token] + tokens
        return tokens[::-1] if self.backwards else tokens

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
        """
        Encoding in Python: a word-level vocabulary is one dict lookup per word, several times faster than sending
        pre-split words through the `tokenizers` backend; a subword tokenizer sends the rule-processed texts to the
        backend in one batch (pre-split words, `is_split_into_words`, go through the rules word by word). Special
        tokens, truncation and direction are added to the ids here; padding and tensors are the base class's `pad`.
        """
        if return_offsets_mapping or return_overflowing_tokens:
            raise NotImplementedError(
                "AwdLstmTokenizer rewrites the text (fastai's rules) before splitting it, so it has no character "
                "offsets, and it never truncates into overflowing windows (AWD-LSTM reads any length)."
            )
        # 1. Words, one list per text; a batch of (text, pair) tuples is the standard way to pass pairs
        if (
            not is_split_into_words
            and text_pair is None
            and isinstance(text, (list, tuple))
            and text
            and all(isinstance(item, (list, tuple)) and len(item) == 2 for item in text)
        ):
            text, text_pair = [item[0] for item in text], [item[1] for item in text]
        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
            first, second = (text, text_pair) if is_batched else ([text], None if text_pair is None else [text_pair])
            first = [self._split_words(words, "text") for words in first]
            second = None if second is None else [self._split_words(words, "text_pair") for words in second]
        else:
            is_batched = not isinstance(text, str) and text is not None
            first = self._split(text, "text") if is_batched else [self._split(text, "text")]
            second = (
                None
                if text_pair is None
                else (self._split(text_pair, "text_pair") if is_batched else [self._split(text_pair, "text_pair")])
            )
        if second is not None and len(second) != len(first):
            raise ValueError(f"Got {len(first)} texts but {len(second)} text pairs.")

        # 2. Ids, special tokens (fastai's `xxbos`, and `xxfld` joining a pair), truncation, direction
        first = self._ids(first)
        second = None if second is None else self._ids(second)
        bos, fld = self.bos_token_id, self._tokenizer.token_to_id("xxfld")
        truncate = truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None
        if truncate and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"Truncation needs `max_length` of at least 1 token, got {max_length!r}.")
        batch_ids, batch_special = [], []
        for index, ids in enumerate(first):
            special = [0] * len(ids)
            if second is not None:
                pair_ids = second[index]
                separator = [fld] if add_special_tokens else []
                ids, special = ids + separator + pair_ids, special + [1] * len(separator) + [0] * len(pair_ids)
            if add_special_tokens:
                ids, special = [bos] + ids, [1] + special
            if not truncate:  # AWD-LSTM reads any length; warn only when `model_max_length` was set lower
                self._eventual_warn_about_too_long_sequence(ids, max_length, verbose)
            if truncate and len(ids) > max_length:
                keep = (
                    slice(None, max_length) if self.truncation_side == "right" else slice(len(ids) - max_length, None)
                )
                ids, special = ids[keep], special[keep]
            if self.backwards:
                ids, special = ids[::-1], special[::-1]
            batch_ids.append(ids)
            batch_special.append(special)

        # 3. Padding (on the left by default, as fastai), masks and tensors
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

    def _split_words(self, words, name: str) -> list[str] | str:
        """
        Pre-split words (`is_split_into_words=True`) through fastai's rules one by one, as a BERT tokenizer still
        lower-cases pre-split words: "Hello" becomes `xxmaj hello`, and words the rules have processed already
        (`xxmaj`, `hello`) stay as they are. A subword tokenizer gets them back as one rule-processed text.
        """
        if isinstance(words, str) or not isinstance(words, (list, tuple)):
            raise TypeError(
                f"With `is_split_into_words=True`, `{name}` is a list of words (or a list of such lists), got "
                f"{type(words).__name__}."
            )
        split = [self._split_text(_check_text(word, f"word {i} of `{name}`")) for i, word in enumerate(words)]
        if self.tokenizer_type != "word":
            return " ".join(piece for piece in split if piece)
        return [token for tokens in split for token in tokens]

    def _ids(self, batch: list) -> list[list[int]]:
        """Ids without special tokens: of each text's words, or (subword) of each rule-processed text."""
        if self.tokenizer_type == "word":
            vocab, unk = self._word_to_id(), self.unk_token_id
            return [[vocab.get(word, unk) for word in words] for words in batch]
        encodings = self._rules_applied_backend().encode_batch_fast(batch, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def _rules_applied_backend(self) -> Tokenizer:
        """
        The subword backend for text the Python rules have processed: its normalizer keeps only the stripping of the
        text between special tokens; the other steps repeat rules that text has been through already (they are there
        for `tokenizer.json` used alone), so the ids are the same, faster. Rebuilt when tokens are added.
        """
        size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        if getattr(self, "_rules_backend_size", None) != size:
            self._rules_backend = Tokenizer.from_str(self._tokenizer.to_str())
            self._rules_backend.normalizer = strip_normalizer()
            self._rules_backend_size = size
        return self._rules_backend

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
        self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs
    ) -> str:
        """
        Readable text: `xxmaj`/`xxup` restore capitals, `xxrep`/`xxwrep` expand repetitions, punctuation and clitics
        attach to their word. A sequence that does not start with `xxbos` is read as a continuation of running text
        and gets a leading space before a word (as GPT-2's tokens do), so that `prompt + decode(new_ids)`, which is
        what the text-generation pipeline returns, reads correctly. A subword tokenizer keeps the text's own spacing
        ("▁" is a space) and undoes the same markers.
        """
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        token_ids = [int(i) for i in token_ids]
        if self.backwards:
            token_ids = token_ids[::-1]
        vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        bad = [i for i in token_ids if not 0 <= i < vocab_size]
        if bad:
            raise ValueError(f"Cannot decode ids {bad[:5]}: the vocabulary has {vocab_size} tokens.")
        tokens = [self._tokenizer.id_to_token(i) for i in token_ids]
        first = next((token for token in tokens if token != self.pad_token), None)
        continuation = first is not None and first != self.bos_token

        # Special tokens are dropped, or kept verbatim between the detokenized runs of ordinary words.
        special, render = set(self.all_special_tokens), detokenize if self.tokenizer_type == "word" else decode_pieces
        pieces, run = [], []
        if skip_special_tokens:
            tokens = [token for token in tokens if not _is_vocab_padding(token)]
        for token in tokens:
            if token in special:
                if run:
                    pieces.append(render(run))
                    run = []
                if not skip_special_tokens:
                    pieces.append(token)
            else:
                run.append(token)
        if run:
            pieces.append(render(run))
        text = " ".join(piece for piece in pieces if piece)
        if self.tokenizer_type == "word":
            starts_word = text[:1].isalnum() or text[:1] in "\"'(["
        else:  # a piece that starts a word, or a marker (which the rules put at the start of one)
            starts_word = first is not None and (first.startswith(SPACE) or first in SPECIAL_TOKENS)
        if continuation and text and starts_word:
            text = " " + text
        return text


__all__ = ["AwdLstmTokenizer", "make_vocab"]
