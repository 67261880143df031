"""Word-level tokenizer for DeViSE: maps labels and text queries onto the rows of the model's word-vector table.

DeViSE embeds a label by its word vectors, so this tokenizer only has to find the words of a label ("European fire
salamander", "potter's wheel", "engine + boat") in the vocabulary of the word vectors, and to say clearly which word
has no vector instead of silently dropping it. It also reads word2vec/GloVe/fastText text files
(`load_devise_word_vectors`), which give both the tokenizer and the table for [`DeviseModel.set_word_vectors`].
"""

import os
import re

import numpy as np
import torch
from transformers import PreTrainedTokenizer
from transformers.utils import logging


logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "vocab.txt"}

# Words are separated by white space, underscores (WordNet-style names) and "+" (a sum of words, as "engine + boat")
_WORD_SEPARATORS = re.compile(r"[\s_+,;/]+")
# Punctuation around a word that no word vector includes ("goldfish." in a sentence)
_STRIP = "\"'.,;:!?()[]{}"
# The parts of a compound missing as a whole: "potter's" -> "potter" "'s" (GloVe's split), "sulphur-crested" -> two
_COMPOUND_PARTS = re.compile(r"'s\b|[^\W_]+")
_LEADING_ARTICLE = re.compile(r"^\s*(an?|the)\s+(?=\S)", re.IGNORECASE)


def _read_words(vocab_file: str | None, folder: str | None) -> list[str]:
    """The words of a `vocab.txt`, one per line; a missing or unreadable file is an error that names it."""
    if vocab_file is None and not folder:
        raise ValueError(
            "DeviseTokenizer needs its words: pass `words=` or a `vocab_file`, build one from word vectors "
            "with `load_devise_word_vectors`, or load a saved one with `from_pretrained`."
        )
    path = vocab_file or os.path.join(str(folder), VOCAB_FILES_NAMES["vocab_file"])
    if not os.path.isfile(path):
        raise ValueError(
            f"DeviseTokenizer found no words: {path} does not exist (a saved DeviseTokenizer folder has a "
            "vocab.txt, one word per line). Copy it from where the tokenizer was saved, or save the tokenizer again."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text (byte {error.start}): it is not a saved vocabulary.") from error
    # one word per line, each ended by "\n" (a last line without it, as an editor may leave it, is a word too)
    words = text.split("\n")
    return words[:-1] if words[-1] == "" else words


class DeviseTokenizer(PreTrainedTokenizer):
    r"""
    The vocabulary of a DeViSE model's word vectors: id 0 is padding, id i the word whose vector is row i of
    `DeviseModel.word_embeddings`. A text becomes the ids of its words; a word with no vector is an error that names
    it. Build one with [`load_devise_word_vectors`], or load a saved one with `from_pretrained`.

    Args:
        vocab_file (`str`, *optional*):
            A `vocab.txt`, one word per line in id order (what `save_pretrained` writes).
        words (`list[str]`, *optional*):
            The words instead of a file; `[PAD]` is put first if it is not there.
        do_lower_case (`bool`, *optional*, defaults to `True`):
            Lower-case text before the lookup (GloVe and the notebook's fastText vectors are lower-case).
        prompt_template (`str`, *optional*, defaults to `"This is a photo of {}."`):
            A text of this form is reduced to its `{}` part. It is the default `hypothesis_template` of transformers'
            zero-shot image classification pipeline, whose words would otherwise be averaged into every label.
            `None` turns this off.

    Example:
    ```python
    >>> from ulmfit import DeviseTokenizer
    >>> tokenizer = DeviseTokenizer(words=["fire", "salamander", "boat", "engine"])
    >>> tokenizer.tokenize("Fire_salamander")
    ['fire', 'salamander']
    >>> tokenizer(["engine + boat", "This is a photo of a boat."], padding=True).input_ids
    [[4, 3], [3, 0]]
    ```
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        words: list[str] | None = None,
        do_lower_case: bool = True,
        prompt_template: str | None = "This is a photo of {}.",
        pad_token: str = "[PAD]",
        **kwargs,
    ):
        if words is None:
            words = _read_words(vocab_file, kwargs.get("name_or_path"))
        pad_token = str(pad_token)  # `from_pretrained` passes an `AddedToken`
        words = list(words) if words[:1] == [pad_token] else [pad_token, *words]
        self.vocab = {}
        for word in words:
            if word in self.vocab:
                raise ValueError(f"The vocabulary repeats the word {word!r}.")
            self.vocab[word] = len(self.vocab)
        self.ids_to_tokens = list(words)
        self.do_lower_case = do_lower_case
        self.prompt_template = prompt_template
        self._prompt = None
        if prompt_template is not None:
            prefix, _, suffix = prompt_template.partition("{}")
            self._prompt = re.compile(rf"\s*{re.escape(prefix)}(.*?){re.escape(suffix)}\s*", re.IGNORECASE)
        super().__init__(do_lower_case=do_lower_case, prompt_template=prompt_template, pad_token=pad_token, **kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self.ids_to_tokens)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def add_words(self, words: list[str]) -> list[int]:
        """
        Append new words (e.g. labels the vectors file lacked) and return their ids; give the model the table grown
        by the same rows with `DeviseModel.set_word_vectors`.
        """
        ids = []
        for word in words:
            if word in self.vocab:
                raise ValueError(f"{word!r} is already in the vocabulary (id {self.vocab[word]}).")
            self.vocab[word] = len(self.ids_to_tokens)
            self.ids_to_tokens.append(word)
            ids.append(self.vocab[word])
        self._update_total_vocab_size()
        return ids

    def __call__(self, text=None, *args, **kwargs):
        """
        `PreTrainedTokenizer.__call__`, with clear errors for an empty list (e.g. empty `candidate_labels`) and for an
        item that is not a text (named by its index).
        """
        if isinstance(text, (list, tuple)) and not text:
            raise ValueError("No texts to encode: the list of labels (`candidate_labels`?) is empty.")
        if isinstance(text, (list, tuple)):
            for index, item in enumerate(text):
                if not isinstance(item, str):
                    raise TypeError(
                        f"DeviseTokenizer expects texts as `str`, got {type(item).__name__} (item {index})."
                    )
        return super().__call__(text, *args, **kwargs)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        """The words of `text` that have vectors; raises for a word that has none."""
        if self._prompt is not None and (match := self._prompt.fullmatch(text)):
            # "This is a photo of a boat." -> "boat": the label, without the article the prompt adds in English
            text = _LEADING_ARTICLE.sub("", match.group(1))
        if self.do_lower_case:
            text = text.lower()
        words = []
        for raw in _WORD_SEPARATORS.split(text):
            word = raw.strip(_STRIP)
            if not word:
                continue
            if word in self.vocab:
                words.append(word)
                continue
            parts = _COMPOUND_PARTS.findall(word)
            missing = [part for part in parts if part not in self.vocab]
            if parts and not missing:
                words.extend(parts)
                continue
            raise ValueError(
                f"No word vector for {word!r} (in {text!r}). Use another word, or add it: "
                "`tokenizer.add_words([...])` and `model.set_word_vectors(...)` with the grown table."
            )
        if not words:
            raise ValueError(f"{text!r} has no words to embed.")
        return words

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab[token]

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write `vocab.txt`, one word per line in id order."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(f"{word}\n" for word in self.ids_to_tokens)
        return (path,)


def read_word_vectors(
    path: str | os.PathLike, max_words: int | None = None, words: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """
    Read a word2vec/GloVe/fastText text file: an optional `count dim` header line, then `word v1 ... vdim` per line.

    Args:
        path: the file.
        max_words: keep only the first this-many words (such files are sorted by frequency).
        words: keep only these words (e.g. a label set); the ones the file lacks are logged as missing.

    Returns:
        The words in file order and a float32 array `(num_words, dim)`.
    """
    wanted = None if words is None else set(words)
    kept_words, rows, dim = [], [], None
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").rstrip(" ").split(" ")
            if line_number == 1 and len(fields) == 2 and all(field.isdigit() for field in fields):
                continue  # word2vec/fastText header `count dim`
            word, values = fields[0], fields[1:]
            if dim is None:
                dim = len(values)
            if len(values) != dim:
                raise ValueError(f"{path}, line {line_number}: {len(values)} values where earlier lines had {dim}.")
            if wanted is not None and word not in wanted:
                continue
            kept_words.append(word)
            rows.append(np.asarray(values, dtype=np.float32))
            if max_words is not None and len(kept_words) >= max_words:
                break
    if wanted is not None and (missing := sorted(wanted - set(kept_words))):
        logger.warning(f"{len(missing)} words have no vector in {path}, e.g. {missing[:10]}.")
    if not rows:
        raise ValueError(f"No word vectors were read from {path}.")
    return kept_words, np.stack(rows)


def load_devise_word_vectors(
    path: str | os.PathLike, max_words: int | None = None, words: list[str] | None = None, **tokenizer_kwargs
) -> tuple[DeviseTokenizer, torch.Tensor]:
    """
    A [`DeviseTokenizer`] over the words of a word-vector file, and the matching table for
    `DeviseModel.set_word_vectors` (row 0, padding, is zero). Arguments as [`read_word_vectors`].
    """
    names, vectors = read_word_vectors(path, max_words=max_words, words=words)
    tokenizer = DeviseTokenizer(words=names, **tokenizer_kwargs)
    table = torch.cat([torch.zeros(1, vectors.shape[1]), torch.from_numpy(vectors)])
    return tokenizer, table


__all__ = ["DeviseTokenizer", "load_devise_word_vectors", "read_word_vectors"]
