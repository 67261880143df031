"""fastai-style word tokenization for French and English, in plain Python (shipped as Hub remote code).

The 2018 translate notebook tokenized both languages with fastai's rules and spaCy's word splitters. This module
applies the same rules, and splits words the way spaCy's French and English tokenizers do on the sentences a
translator sees, without spaCy at run time:

1. text rules (fastai `replace_rep`, `replace_wrep`): a character repeated 3+ times becomes `xxrep n c` (unlike
   fastai, not digits or ".": numbers and "..." stay whole), a word repeated 3+ times in a row `xxwrep n w`; the
   typographic apostrophe `’` becomes `'`;
2. each whitespace-delimited piece is split into words and punctuation: a run of letters/digits (with inner `'`, `-`
   or `.`) is one word, and so is a number such as `2:30` or `1,000.5`; any other character is a token of its own,
   `...` stays whole;
3. language rules, as spaCy splits them (and as the French fastText and English GloVe vocabularies spell them):
   French elisions `l' d' j' m' n' s' t' c' qu' jusqu' lorsqu' puisqu' quoiqu'` are split off the word (`l'` +
   `homme`), and so is the pronoun of an inversion (`est-ce` -> `est -ce`, `a-t-il` -> `a -t -il`); English clitics
   `n't 's 're 've 'll 'm 'd` are split off theirs (`don't` -> `do n't`);
4. case rules (fastai `replace_all_caps`, `replace_maj`), per word: an all-caps word of 2+ letters becomes
   `xxup word`, a capitalised one `xxmaj word`, everything is lower-cased. Unlike fastai, a one-letter capital also
   gets `xxmaj` ("A", "À"), except the English pronoun "I", which `detokenize` restores on its own.

Results are cached per whitespace-delimited piece, so a piece seen before costs one dict lookup.
"""

import re
from itertools import chain


__all__ = ["SPECIAL_TOKENS", "detokenize", "tokenize"]

UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ = (
    "xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj",
)  # fmt: skip
#: fastai's special tokens, in fastai's order (ids 0..8 of both vocabularies).
SPECIAL_TOKENS = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ]

# ----------------------------------------------------------------------------------------------------------------
# 1. Text rules

_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'"})
# fastai's replace_rep, minus "." ("..." is a word of its own, as spaCy keeps it) and digits ("2000" stays a number).
_RE_REP = re.compile(r"([^\s.\d])(\1{2,})")
_has_triple = re.compile(r"([^\s.\d])\1\1").search
# fastai's replace_wrep.
_RE_WREP = re.compile(r"(?:\s|^)(\w+)\s+((?:\1\s+)+)\1(\s|\W|$)")


def _may_have_wrep(words: list[str]) -> bool:
    """A word repeated 3+ times needs two equal neighbours: a cheap test before the regex scan."""
    return any(a == b for a, b in zip(words, words[1:]))


def _text_rules(text: str) -> str:
    text = text.translate(_APOSTROPHES)
    if _has_triple(text):
        text = _RE_REP.sub(lambda m: f" {TK_REP} {len(m.group(2)) + 1} {m.group(1)} ", text)
    if _may_have_wrep(text.split()):
        text = _RE_WREP.sub(lambda m: f" {TK_WREP} {len(m.group(2).split()) + 2} {m.group(1)} {m.group(3)}", text)
    return text


# ----------------------------------------------------------------------------------------------------------------
# 2-4. Word splitting and case rules, per whitespace-delimited piece

_PIECE_PARTS = re.compile(r"\d+(?:[:.,]\d+)+|\w+(?:['\-.]\w+)*|\.{2,}|\S").findall
_FRENCH_ELISIONS = ("jusqu'", "lorsqu'", "puisqu'", "quoiqu'", "qu'", "l'", "d'", "j'", "m'", "n'", "s'", "t'", "c'")
# The pronouns of a French inversion ("viens-tu", "a-t-il", "dis-le-moi"), split off with their hyphen.
_FRENCH_INVERSIONS = frozenset(
    ("-t", "-il", "-ils", "-elle", "-elles", "-on", "-ce", "-je", "-tu", "-nous", "-vous", "-moi", "-toi", "-le")
    + ("-la", "-les", "-lui", "-leur", "-y", "-en")
)
_ENGLISH_CLITICS = ("'s", "'re", "'ve", "'ll", "'m", "'d")


def _split_french(part: str) -> list[str]:
    lower = part.lower()
    words = []
    for elision in _FRENCH_ELISIONS:
        if lower.startswith(elision) and len(part) > len(elision):
            words.append(part[: len(elision)])
            part, lower = part[len(elision) :], lower[len(elision) :]
            break
    inversions = []
    while True:
        hyphen = lower.rfind("-")
        if hyphen <= 0 or lower[hyphen:] not in _FRENCH_INVERSIONS:
            break
        inversions.append(part[hyphen:])
        part, lower = part[:hyphen], lower[:hyphen]
    return words + [part] + inversions[::-1]


def _split_english(part: str) -> list[str]:
    lower = part.lower()
    if lower.endswith("n't") and len(part) > 3:
        return [part[:-3], part[-3:]]
    for clitic in _ENGLISH_CLITICS:
        if lower.endswith(clitic) and len(part) > len(clitic):
            return [part[: -len(clitic)], part[-len(clitic) :]]
    return [part]


_LANGUAGE_SPLITTERS = {"fr": _split_french, "en": _split_english}


def _case_rules(word: str, language: str) -> tuple[str, ...]:
    """fastai's `replace_all_caps` / `replace_maj` on one word, then lower-casing."""
    lower = word.lower()
    if lower == word:
        return (word,)
    letters = [c for c in word if c.isalpha()]
    if len(letters) > 1 and not any(c.islower() for c in letters):
        return (TK_UP, lower)
    if word[0].isupper() and not any(c.isupper() for c in word[1:]):
        if language == "en" and word == "I":
            return (lower,)
        return (TK_MAJ, lower)
    return (lower,)  # mixed case ("McDonald"): lower-cased without a marker, as fastai does


def _tokenize_piece(piece: str, language: str) -> tuple[str, ...]:
    if piece in _SPECIAL_SET:
        return (piece,)
    split_language = _LANGUAGE_SPLITTERS.get(language)
    tokens = []
    for part in _PIECE_PARTS(piece):
        words = split_language(part) if split_language is not None and len(part) > 1 else (part,)
        for word in words:
            tokens.extend(_case_rules(word, language))
    return tuple(tokens)


_SPECIAL_SET = frozenset(SPECIAL_TOKENS)
_CACHE_MAX = 1 << 18
_caches: dict[str, dict[str, tuple[str, ...]]] = {}


def tokenize(text: str, language: str) -> list[str]:
    """
    The words of `text` after the rules above (no `xxbos`/`xxeos`). `language` is an ISO code: "fr" and "en" get
    their elision/clitic rules, any other language only the generic ones. An empty or blank text gives `[]`.
    """
    cache = _caches.setdefault(language, {})
    pieces = _text_rules(text).split()
    try:
        return list(chain.from_iterable(map(cache.__getitem__, pieces)))
    except KeyError:
        pass
    if len(cache) > _CACHE_MAX:
        cache.clear()
    for piece in set(pieces).difference(cache):
        cache[piece] = _tokenize_piece(piece, language)
    return list(chain.from_iterable(map(cache.__getitem__, pieces)))


# ----------------------------------------------------------------------------------------------------------------
# Detokenization (readable text; the inverse of `tokenize` up to whitespace and the case fastai's rules lose)

_DROP = frozenset({BOS, EOS, PAD, FLD})
_MARKERS = frozenset({TK_REP, TK_WREP, TK_UP, TK_MAJ})
_CLOSING = frozenset(".,!?;:)]}%…»")
_OPENING = frozenset({"(", "[", "{", "$", "#", "“", "«", "¿", "¡"})
_NO_SPACE_BEFORE = frozenset({"n't", *_ENGLISH_CLITICS, "”", "/"})
_NO_SPACE_AFTER = frozenset({*_OPENING, "/"})
# French typography puts a space before the high punctuation marks and inside guillemets.
_FRENCH_SPACED = frozenset({"?", "!", ":", ";", "»"})


def _expand(tokens: list[str], language: str) -> list[str]:
    """Undo `xxrep`/`xxwrep`/`xxup`/`xxmaj` (and write the English pronoun `i` as `I`); drop stray markers."""
    words: list[str] = []
    index, count = 0, len(tokens)
    while index < count:
        token = tokens[index]
        if token in _DROP:
            index += 1
        elif token in (TK_REP, TK_WREP) and index + 2 < count and tokens[index + 1].isdigit():
            times, what = int(tokens[index + 1]), tokens[index + 2]
            if token == TK_WREP:
                words.extend([what] * times)
            elif words and len(words[-1]) == 1 and words[-1].isalnum() and what.isalnum():
                words[-1] += what * times  # "nooo" was split as "n xxrep 3 o"
            else:
                words.append(what * times)
            index += 3
        elif token in (TK_UP, TK_MAJ) and index + 1 < count and tokens[index + 1] not in _MARKERS:
            following = tokens[index + 1]
            words.append(following.upper() if token == TK_UP else following[:1].upper() + following[1:])
            index += 2
        elif token in _MARKERS:
            index += 1  # a marker without what it applies to (a model can generate one): nothing to write
        else:
            words.append("I" if language == "en" and token == "i" else token)
            index += 1
    return words


def _is_elision(word: str) -> bool:
    return len(word) > 1 and word.endswith("'") and word[-2].isalpha()


def _is_inversion(word: str) -> bool:
    return len(word) > 1 and word.startswith("-") and word[1:].isalpha()


def detokenize(tokens: list[str], language: str) -> str:
    """
    Readable text from tokens: markers undone; punctuation, clitics and inversions attached to the previous word
    (French typography keeps a space before `? ! : ; »` and after `«`); elisions and opening brackets attached to the
    next one; straight quotes paired (an opening one attaches to the next word, a closing one to the previous word; a
    `'` after a word ending in "s" is a plural possessive).
    """
    pieces: list[str] = []
    glue_next = True  # no space before the first word
    open_double = open_single = False
    previous = ""
    for word in _expand(tokens, language):
        if word == '"':
            attach_left, open_double = open_double, not open_double
        elif word == "'":
            attach_left = open_single or previous.endswith("s")
            open_single = not attach_left
        elif language == "fr" and word in _FRENCH_SPACED:
            attach_left = False
        else:
            attach_left = word in _NO_SPACE_BEFORE or _CLOSING.issuperset(word) or _is_inversion(word)
        if not (glue_next or attach_left):
            pieces.append(" ")
        pieces.append(word)
        # an opening quote attaches to the next word; elisions and opening brackets do too
        glue_next = (not attach_left) if word in ('"', "'") else (word in _NO_SPACE_AFTER or _is_elision(word))
        if language == "fr" and word == "«":
            glue_next = False
        previous = word
    return "".join(pieces)
