"""
DeViSE training helpers: give every class name a word vector (with a report of what had to be borrowed), and score
image embeddings against class vectors (seen-class top-k, zero-shot and generalized hit@k).

Used by `scripts/train_devise.py` and its benchmark; a class name may list ImageNet-style synonyms after commas, the
first being the class's name. A word with no vector borrows one, in order: a closed compound split into two frequent
words ("birdhouse" = bird + house), a synonym whose words all have vectors ("jinrikisha" -> rickshaw), the rest of
the name; the borrowed word joins the vocabulary, so the class name works as a candidate label.
"""

import re
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .. import metrics
from ..models.devise.tokenization_devise import DeviseTokenizer, load_devise_word_vectors, read_word_vectors


# how DeviseTokenizer cuts a text into words, and the punctuation it strips around them
_WORD_SEPARATORS = re.compile(r"[\s_+,;/]+")
_STRIP = "\"'.,;:!?()[]{}"
# a closed compound ("birdhouse") is split only into two words of at least 3 letters among the most frequent ones
COMPOUND_PART_MAX_RANK = 20_000


@dataclass
class LabelVocabulary:
    """The word vocabulary and table a model is trained with, and what had to be done to give every class a vector."""

    tokenizer: DeviseTokenizer
    table: torch.Tensor  # (vocab_size, dim), row i = the vector of the tokenizer's id i (row 0: padding)
    without_vector: list[int]  # classes none of whose words has a vector
    borrowed: dict[str, str]  # word added to the vocabulary -> where its vector came from


def _words(name: str) -> list[str]:
    return [word for word in _WORD_SEPARATORS.split(name) if word.strip(_STRIP)]


def _word_ids(tokenizer: DeviseTokenizer, word: str) -> list[int] | None:
    """The ids of a word as the tokenizer reads it (with its own splits), or None if it has no vector."""
    try:
        return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
    except ValueError:
        return None


def _compound_ids(tokenizer: DeviseTokenizer, word: str) -> list[int] | None:
    """A closed compound split into two frequent words ("birdhouse" -> bird + house), the most frequent pair."""
    key, best = word.lower().strip(_STRIP), None
    for cut in range(3, len(key) - 2):
        parts = [tokenizer.vocab.get(key[:cut]), tokenizer.vocab.get(key[cut:])]  # ids follow the file's order
        if all(parts) and max(parts) <= COMPOUND_PART_MAX_RANK and (best is None or max(parts) < max(best)):
            best = parts
    return best


def build_label_vocabulary(path: str, synonyms: list[list[str]], max_words: int | None) -> LabelVocabulary:
    """
    The first `max_words` words of a vectors file, plus any class word found further down, plus a borrowed vector
    for each class word that has none (see the module docstring).
    """
    tokenizer, table = load_devise_word_vectors(path, max_words=max_words)
    # 1. Class words further down the file than max_words: a second pass, when the first stopped early. Synonyms are
    # looked up only for a class whose name lacks a vector.
    wanted = set()
    if max_words is not None and tokenizer.vocab_size - 1 >= max_words:
        for names in synonyms:
            lacking = any(_word_ids(tokenizer, word) is None for word in _words(names[0]))
            for word in (word for name in (names if lacking else []) for word in _words(name)):
                if _word_ids(tokenizer, word) is None:
                    key = word.lower().strip(_STRIP)
                    wanted.update(part for part in (key, *re.findall(r"[^\W_]+", key)) if part not in tokenizer.vocab)
    if wanted:
        try:
            found, vectors = read_word_vectors(path, words=sorted(wanted))
        except ValueError:  # none of them is in the file
            found = []
        if found:
            tokenizer.add_words(found)
            table = torch.cat([table, torch.from_numpy(vectors)])

    # 2. Every class name: the words with vectors, and a borrowed vector for the others
    unit = F.normalize(table, dim=-1)

    def mean_of(ids: list[int]) -> torch.Tensor:
        return F.normalize(unit[ids].mean(dim=0), dim=0)

    borrowed, without_vector = {}, []
    for class_id, names in enumerate(synonyms):
        found_ids, missing = [], []
        for word in _words(names[0]):
            ids = _word_ids(tokenizer, word)
            if ids is None and (parts := _compound_ids(tokenizer, word)):
                source = " + ".join(tokenizer.convert_ids_to_tokens(parts))
                borrowed.setdefault(word.lower().strip(_STRIP), (mean_of(parts), source))
                ids = parts
            if ids is None:
                missing.append(word.lower().strip(_STRIP))
            else:
                found_ids.extend(ids)
        if not missing:
            continue
        # a synonym whose words all have vectors, else the rest of the name, stands for the missing words
        stand_in = None
        for synonym in names[1:]:
            ids = [_word_ids(tokenizer, word) or _compound_ids(tokenizer, word) for word in _words(synonym)]
            if ids and all(ids):
                stand_in = (mean_of([id_ for part in ids for id_ in part]), f"synonym {synonym!r}")
                break
        if stand_in is None and found_ids:
            stand_in = (mean_of(found_ids), f"the rest of {names[0]!r}")
        if stand_in is None:
            without_vector.append(class_id)
            continue
        for word in missing:
            borrowed.setdefault(word, stand_in)
    if borrowed:
        tokenizer.add_words(list(borrowed))
        table = torch.cat([table, torch.stack([vector for vector, _ in borrowed.values()])])
    return LabelVocabulary(tokenizer, table, without_vector, {word: source for word, (_, source) in borrowed.items()})


def ranked(image_embeds: torch.Tensor, class_vectors: torch.Tensor, candidates: list[int], k: int) -> list[list[int]]:
    """The top-k of `candidates` (class ids) by cosine to each image embedding, best first."""
    scores = image_embeds @ class_vectors[candidates].T  # (images, candidates), both unit length
    top = scores.topk(min(k, len(candidates)), dim=-1).indices
    return torch.tensor(candidates)[top].tolist()


def evaluate_embeddings(
    image_embeds: torch.Tensor, labels: torch.Tensor, class_vectors: torch.Tensor, unseen: list[int]
) -> dict[str, float]:
    """
    DeViSE's metrics from unit image embeddings, their class ids and the unit class vectors: cosine loss and top-1/5
    among the seen classes (seen images), zero-shot hit@1/5 among the unseen classes (unseen images), generalized
    hit@1/5 among all classes (all images) and generalized hit@5 of the unseen images.
    """
    everyone = list(range(class_vectors.shape[0]))
    seen = sorted(set(everyone) - set(unseen))
    is_unseen = torch.isin(labels, torch.tensor(unseen, dtype=labels.dtype))
    groups = [  # (which images, which classes they are ranked among, hit@k -> result name)
        (~is_unseen, seen, {"hit@1": "seen_top1", "hit@5": "seen_top5"}),
        (is_unseen, unseen, {"hit@1": "zero_shot_hit@1", "hit@5": "zero_shot_hit@5"}),
        (torch.ones_like(is_unseen), everyone, {"hit@1": "generalized_hit@1", "hit@5": "generalized_hit@5"}),
        (is_unseen, everyone, {"hit@5": "generalized_unseen_hit@5"}),
    ]
    results = {}
    if (~is_unseen).any():
        targets = class_vectors[labels[~is_unseen]]
        results["cosine_loss"] = 1.0 - F.cosine_similarity(image_embeds[~is_unseen], targets, dim=-1).mean().item()
    for mask, candidates, keys in groups:
        if not mask.any() or not candidates:
            continue
        metric = metrics.load("hit_at_k", keep_in_memory=True)  # every process scores the gathered embeddings
        scores = metric.compute(
            predictions=ranked(image_embeds[mask], class_vectors, candidates, 5),
            references=labels[mask].tolist(),
            k=[1, 5],
        )
        results.update({name: scores[key] for key, name in keys.items()})
    return results


__all__ = ["LabelVocabulary", "build_label_vocabulary", "evaluate_embeddings", "ranked"]
