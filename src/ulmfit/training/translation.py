"""The translator's training helpers (fast.ai 2018, lesson 11, `translate.ipynb`): pretrained word vectors for its
embeddings, and the teacher-forcing schedule.

The notebook starts both translator embeddings from fastText vectors: each vocabulary word with a vector gets it
(times 3, to match `nn.Embedding`'s N(0, 1) scale), the others keep their random initialisation. `load_word_vectors`
reads the word2vec / fastText text format, and `initialize_embeddings` copies the vectors into an embedding for a
tokenizer vocabulary and reports how much of the vocabulary they cover. `teacher_forcing_ratio` is the probability of
feeding the gold previous word at a training step (the notebook's `pr_force`), decaying over training.
"""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn


# fastai's special tokens and markers have no pretrained vector and are left out of the coverage.
_SPECIAL_TOKENS = frozenset(["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"])


@dataclass
class WordVectors:
    """
    Word vectors read by [`load_word_vectors`].

    Args:
        words: the words, in file order (usually most frequent first).
        vectors: `(len(words), dimension)` float tensor, row `i` for `words[i]`.
    """

    words: list[str]
    vectors: torch.Tensor
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        if self.vectors.dim() != 2 or self.vectors.size(0) != len(self.words):
            raise ValueError(
                f"`vectors` must have one row per word, got {tuple(self.vectors.shape)} for {len(self.words)} words."
            )
        self.index = {}
        for row, word in enumerate(self.words):
            self.index.setdefault(word, row)  # a repeated word keeps its first (most frequent) row

    @property
    def dimension(self) -> int:
        return self.vectors.size(1)

    def lookup(self, word: str) -> int | None:
        """The row of `word`: exact match first, then a case-insensitive one (the most frequent spelling)."""
        row = self.index.get(word)
        if row is None:
            row = self._lowercase_index().get(word.lower())
        return row

    def _lowercase_index(self) -> dict[str, int]:
        if not hasattr(self, "_lowercase"):
            self._lowercase = {}
            for row, word in enumerate(self.words):
                self._lowercase.setdefault(word.lower(), row)
        return self._lowercase


@dataclass
class VectorCoverage:
    """
    How much of a vocabulary pretrained vectors covered.

    Args:
        coverage: fraction of the vocabulary's words (special tokens excluded) that got a vector.
        found: how many words got one.
        total: how many words were looked up.
        missing: the words without a vector, in vocabulary order (most frequent first for a trained vocabulary).
    """

    coverage: float
    found: int
    total: int
    missing: list[str]


def load_word_vectors(path: str | os.PathLike, max_words: int | None = None) -> WordVectors:
    """
    Read word vectors in the word2vec / fastText text format: an optional header line `count dimension`, then one
    `word v1 ... vD` line per word (GloVe's files, without the header, read too). A word may contain spaces.

    Args:
        path: the `.txt` / `.vec` file (UTF-8).
        max_words: read only the first this-many words (the files are sorted by frequency).
    """
    words, rows = [], []
    dimension = None
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n").rstrip(" ")
            if not line:
                continue
            if line_number == 1:
                fields = line.split(" ")
                if len(fields) == 2 and all(value.isdigit() for value in fields):
                    dimension = int(fields[1])  # the word2vec header
                    continue
            if dimension is None:
                dimension = len(line.split(" ")) - 1
            fields = line.rsplit(" ", dimension)
            if len(fields) != dimension + 1 or not fields[0]:
                raise ValueError(
                    f"{path}, line {line_number}: expected a word and {dimension} numbers, got {len(fields) - 1}."
                )
            try:
                rows.append([float(value) for value in fields[1:]])
            except ValueError as error:
                raise ValueError(f"{path}, line {line_number}: {error}") from error
            words.append(fields[0])
            if max_words is not None and len(words) >= max_words:
                break
    if not words:
        raise ValueError(f"{path} holds no word vectors.")
    return WordVectors(words=words, vectors=torch.tensor(rows, dtype=torch.float32))


@torch.no_grad()
def initialize_embeddings(
    embedding: nn.Embedding | torch.Tensor,
    vocab: Mapping[str, int] | Iterable[str],
    word_vectors: WordVectors,
    scale: float = 1.0,
) -> VectorCoverage:
    """
    Copy pretrained vectors into the rows of `embedding` for the words of `vocab` that have one; the other rows
    keep their initialisation (the notebook's `create_emb`).

    Args:
        embedding: an `nn.Embedding` (or its weight), `(vocab_size, dimension)`. A tied output layer shares it.
        vocab: token -> id (e.g. `tokenizer.get_vocab()`, or `tokenizer.get_target_vocab()` for the decoder), or
            the tokens in id order.
        word_vectors: from [`load_word_vectors`]; their dimension must be the embedding's.
        scale: multiply the vectors (the 2018 notebook used 3, so that 0.3-std fastText vectors match the N(0, 1)
            rows around them; the 2019 one used 1).

    Returns:
        [`VectorCoverage`]: the fraction of the vocabulary found (exactly or case-insensitively), and the misses.
    """
    weight = embedding.weight if isinstance(embedding, nn.Embedding) else embedding
    if not isinstance(vocab, Mapping):
        vocab = {token: index for index, token in enumerate(vocab)}
    if weight.size(1) != word_vectors.dimension:
        raise ValueError(
            f"The embedding has {weight.size(1)} dimensions but the word vectors {word_vectors.dimension}: use "
            f"vectors of the model's `embedding_size`, or build it with embedding_size={word_vectors.dimension}."
        )
    too_large = [token for token, index in vocab.items() if not 0 <= index < weight.size(0)]
    if too_large:
        raise ValueError(
            f"The vocabulary has ids outside the embedding's {weight.size(0)} rows, e.g. {too_large[:3]}."
        )

    rows, sources, missing = [], [], []
    for token, index in sorted(vocab.items(), key=lambda item: item[1]):
        if token in _SPECIAL_TOKENS:
            continue
        source = word_vectors.lookup(token)
        if source is None:
            missing.append(token)
        else:
            rows.append(index)
            sources.append(source)
    if rows:
        vectors = word_vectors.vectors[sources].to(device=weight.device, dtype=weight.dtype) * scale
        weight[torch.tensor(rows, device=weight.device)] = vectors
    total = len(rows) + len(missing)
    return VectorCoverage(coverage=len(rows) / total if total else 0.0, found=len(rows), total=total, missing=missing)


# ---------------------------------------------------------------------------------------------------------------------
# Teacher forcing

TEACHER_FORCING_SCHEDULES = ("linear", "exponential", "constant")


def teacher_forcing_ratio(step: int, decay_steps: int, schedule: str, start: float, end: float) -> float:
    """
    The probability of feeding the gold previous word at optimizer step `step` (the notebook's `pr_force`, which fell
    linearly from 1 to 0 over 10 epochs): `linear` or `exponential` (geometric) from `start` to `end` over
    `decay_steps`, then `end`; `constant` stays at `start`.
    """
    progress = min(1.0, step / max(1, decay_steps))
    if schedule == "linear":
        return start + (end - start) * progress
    if schedule == "exponential":
        return start * (end / start) ** progress
    return start


__all__ = [
    "TEACHER_FORCING_SCHEDULES",
    "VectorCoverage",
    "WordVectors",
    "initialize_embeddings",
    "load_word_vectors",
    "teacher_forcing_ratio",
]
