"""The subword side of `AwdLstmTokenizer`: fastai v2's `SentencePieceTokenizer` path on the `tokenizers` library.

fastai v2 (and MultiFiT, Eisenschlos et al. 2019) runs its text rules on a document and hands the result to a
SentencePiece model, with its special tokens as user-defined symbols. Here the model is a `tokenizers` Unigram
(SentencePiece's algorithm) or BPE model trained by `tokenizers`' own trainers, and the text is split SentencePiece's
way: spaces become "▁" (`Metaspace`) and start a piece, so there is no word splitting and no language to know.

The rules live in two places, and none of them acts twice:

* Python (`apply_rules_any_script`) runs all of fastai's rules, `fix_html` to `lowercase`, in fastai's order, on the
  whole text. Its case rules mark capitals of any script (`str.isupper`: Cyrillic, Greek, accented Latin...), a
  deliberate widening of fastai's `[A-Z]` regexes, which leave "École" or "МИР" unmarked; the word-level path keeps
  fastai's regexes exactly.
* The backend's normalizer (`build_normalizer`) holds what a `tokenizers` normalizer can express, so that
  `tokenizer.json` works on its own: the `fix_html` replacements that cannot survive the Python rules (those with
  `#`, `\\`, `/` or `...`), `spec_add_spaces`, `rm_useless_spaces`, `lowercase` and the stripping of the text. On
  text that Python has processed it changes nothing (every `#`, `/`, `\\` is already spaced, every `...` is already
  `" …"` or `xxrep`, the text is lower-case and single-spaced); the tests check this on hostile input.

So `tokenizers.Tokenizer.from_file("tokenizer.json").encode(text).ids` equals the class's ids for text that is
lower-case and has none of what only Python can do: no character repeated 3+ times in a row (`xxrep`) or word repeated
(`xxwrep`) (a `...` is fine), no HTML character reference such as `&amp;` (`html.unescape`), none of `fix_html`'s
other fixed strings (`amp;`, `nbsp;`, `quot;`, `<unk>`, ` @.@ `, ` @-@ `), no line break or other whitespace but spaces
at its end (the file cannot tell the end of the text from the end of the stretch before a marker, where a line break
stays), and for a backwards tokenizer the ids reversed. On other text the file gives no `xxmaj`/`xxup`/`xxrep`/`xxwrep`
markers and loses what `html.unescape` would have fixed; use the class (remote code) for the exact ids.
"""

import functools
import itertools
import json
import os
import re
import string
from collections.abc import Iterable

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

from .text_processing_awd_lstm import (
    BOS,
    EOS,
    FLD,
    PAD,
    SPECIAL_TOKENS,
    TK_MAJ,
    TK_REP,
    TK_UP,
    TK_WREP,
    apply_pre_rules,
    apply_rules,
)


TOKENIZER_TYPES = ("word", "unigram", "bpe")
SUBWORD_MODELS = {"unigram": "Unigram", "bpe": "BPE"}  # tokenizer_type -> `tokenizers` model class
DEFAULT_VOCAB_SIZE = 15000
# SentencePiece's word-start marker: a space becomes "▁" and begins a piece
SPACE = "▁"
# Characters every subword vocabulary holds, seen in training or not: digits, ASCII letters (the text is lower-case
# by then) and punctuation, fix_html's "…", "▁" and the line break. Anything else needs to appear in the texts.
INITIAL_ALPHABET = sorted(set(string.digits + string.ascii_lowercase + string.punctuation + "…\n" + SPACE))
# fix_html's fixed replacements that a normalizer repeats harmlessly (see the module docstring), in fastai's order
NORMALIZER_FIXES = (
    ("#39;", "'"), ("#146;", "'"), ("#36;", "$"), ("\\n", "\n"), ("<br />", "\n"), ('\\"', '"'), ("...", " …"),
)  # fmt: skip
_MARKERS = re.compile("|".join(SPECIAL_TOKENS))
_DROPPED = frozenset({BOS, EOS, PAD, FLD})  # dropped by `undo_rules`, as `detokenize` drops them
# A repeated character that attaches to the word before it when decoded ("GREAT!!!", not "GREAT !!!")
_CLOSING = frozenset(".,!?;:)]}%…'\"")


def check_tokenizer_type(tokenizer_type) -> str:
    """`tokenizer_type` itself, or a `ValueError` naming the allowed values."""
    if tokenizer_type not in TOKENIZER_TYPES:
        raise ValueError(f"`tokenizer_type` must be one of {', '.join(TOKENIZER_TYPES)}; got {tokenizer_type!r}.")
    return tokenizer_type


def check_vocab_size(vocab_size) -> int:
    """`vocab_size` itself, or a `ValueError`: the vocabulary needs fastai's special tokens and at least one piece."""
    smallest = len(SPECIAL_TOKENS) + 1
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < smallest:
        raise ValueError(
            f"`vocab_size` must be an integer of at least {smallest} (fastai's {len(SPECIAL_TOKENS)} special tokens "
            f"and one piece); got {vocab_size!r}."
        )
    return vocab_size


# ----------------------------------------------------------------------------------------------------------------
# The rules, any script


def _char_class(predicate) -> str:
    """A regex character class body with every code point of the first two planes for which `predicate` holds."""
    ranges, start, previous = [], None, None
    for code in range(0x20000):  # no cased letter lies beyond plane 1
        if predicate(chr(code)):
            if start is None:
                start = code
            previous = code
        elif start is not None:
            ranges.append(f"\\U{start:08x}-\\U{previous:08x}" if previous > start else f"\\U{start:08x}")
            start = None
    return "".join(ranges)


@functools.cache
def _case_patterns() -> tuple[re.Pattern, re.Pattern]:
    """fastai's `replace_all_caps` / `replace_maj` patterns with `[A-Z]`/`[a-z]` widened to any script's case.

    As in the word path's versions, a match is a whole whitespace-delimited token of 2+ characters that starts with a
    capital: all-caps has no lower-case letter, capitalised no other capital.
    """
    upper, lower = _char_class(str.isupper), _char_class(str.islower)
    all_caps = re.compile(rf"[{upper}](?<!\S[{upper}])[^{lower}\s]+(?=\s|$)")
    capitalised = re.compile(rf"[{upper}](?<!\S[{upper}])[^{upper}\s]+(?=\s|$)")
    return all_caps, capitalised


def apply_rules_any_script(text: str) -> str:
    """fastai's default rules with case markers for any script: `fix_html` ... `lowercase`, as `apply_rules` does."""
    if text.isascii():  # the Unicode classes reduce to fastai's [A-Z]/[a-z]: the word path's faster patterns agree
        return apply_rules(text)
    all_caps, capitalised = _case_patterns()
    text = apply_pre_rules(text)
    text = all_caps.sub(lambda match: f"{TK_UP} {match.group().lower()}", text)
    return capitalised.sub(lambda match: f"{TK_MAJ} {match.group()}", text).lower().strip()


def training_texts(texts: list[str]) -> list[str]:
    """The rules, then fastai's special tokens blanked out: the backend splits them off before its model sees a
    piece, so the trainer must not learn pieces that contain them."""
    return [_MARKERS.sub(" ", apply_rules_any_script(text)) for text in texts]


# ----------------------------------------------------------------------------------------------------------------
# The `tokenizers` backend


def build_normalizer() -> normalizers.Normalizer:
    """The rules a `tokenizers` normalizer can express (see the module docstring), in fastai's order."""
    steps = [normalizers.Replace(old, new) for old, new in NORMALIZER_FIXES]
    steps += [normalizers.Replace(character, f" {character} ") for character in "/#\\"]  # spec_add_spaces
    steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Lowercase()]  # rm_useless_spaces, lowercase
    # strip: the backend normalizes the text between two special tokens on its own, and a line break before `xxmaj`
    # is kept ("end.\n\nxxmaj the"), so only spaces go at the end; `\A`/`\z` because `^`/`$` also match at line ends
    steps += _strip_steps()
    return normalizers.Sequence(steps)


def _strip_steps() -> list[normalizers.Normalizer]:
    return [normalizers.Replace(Regex(r"\A\s+"), ""), normalizers.Replace(Regex(r" +\z"), "")]


def strip_normalizer() -> normalizers.Normalizer:
    """The last steps of `build_normalizer` alone: what text the Python rules produced still needs (the backend
    normalizes the text between two special tokens on its own, and its ends must lose their spaces)."""
    return normalizers.Sequence(_strip_steps())


def _build_pipeline(backend: Tokenizer) -> Tokenizer:
    """Everything around the model: normalizer, Metaspace pre-tokenizer and decoder, `xxbos` post-processor."""
    backend.normalizer = build_normalizer()
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {FLD} $B",
        special_tokens=[(BOS, SPECIAL_TOKENS.index(BOS)), (FLD, SPECIAL_TOKENS.index(FLD))],
    )
    return backend


def train_backend(batches: Iterable[list[str]], tokenizer_type: str, vocab_size: int) -> Tokenizer:
    """A Unigram or BPE `tokenizers.Tokenizer` trained on batches of texts that have been through `training_texts`.

    Every character of the texts stays in the vocabulary (SentencePiece's `character_coverage=1`, no BPE
    `limit_alphabet`), so a character seen in training never becomes `xxunk`; a corpus with more distinct
    characters than `vocab_size` gets a larger vocabulary. fastai's special tokens take ids 0..8.
    """
    if tokenizer_type == "unigram":
        backend = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            unk_token=SPECIAL_TOKENS[0],
            initial_alphabet=INITIAL_ALPHABET,
            show_progress=False,
        )
    else:
        backend = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS[0], fuse_unk=True))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=INITIAL_ALPHABET,  # and no `limit_alphabet`: every character seen is kept
            show_progress=False,
        )
    _build_pipeline(backend)
    counted, characters = {"texts": 0, "with_words": 0}, set(INITIAL_ALPHABET)
    # the first batch before training starts: worker processes that apply the rules fork before the trainer's threads
    remaining = iter(batches)
    first = next(remaining, [])

    def texts():
        for batch in itertools.chain([first], remaining):
            counted["texts"] += len(batch)
            counted["with_words"] += sum(map(bool, map(str.strip, batch)))
            characters.update(*batch)
            yield from batch

    try:
        backend.train_from_iterator(texts(), trainer)
    except Exception as error:  # the Rust trainer's bare `Exception`
        if "not large enough to contain all chars" not in str(error):
            raise
        raise ValueError(
            f"vocab_size={vocab_size} is too small for a unigram vocabulary of these texts: it must hold fastai's "
            f"{len(SPECIAL_TOKENS)} special tokens and each of the {len(characters)} characters they use (after "
            f"fastai's rules), so at least {len(SPECIAL_TOKENS) + len(characters)}. Raise `vocab_size`, or use "
            "tokenizer_type='bpe', which grows the vocabulary to fit."
        ) from None
    if not counted["with_words"]:
        raise ValueError(f"Cannot train a vocabulary: `texts` is empty ({counted['texts']} texts, no words in them).")
    if tokenizer_type == "unigram":
        # the trainer numbers the same pieces differently from run to run (Rust's hash order): fix the numbering,
        # special tokens first, then the pieces in alphabetical order
        pieces = [tuple(piece) for piece in json.loads(backend.to_str())["model"]["vocab"]]
        ordered = pieces[: len(SPECIAL_TOKENS)] + sorted(pieces[len(SPECIAL_TOKENS) :])
        backend.model = models.Unigram(ordered, unk_id=0, byte_fallback=False)
    # special tokens are matched in the raw text before the normalizer, and kept whole
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    return backend


def load_backend(tokenizer_type: str, vocab, tokenizer_file: str | None, tokenizer_object, folder) -> Tokenizer:
    """The backend of a subword `AwdLstmTokenizer`: the one `train` built, or the saved `tokenizer.json`."""
    if vocab is not None:
        raise ValueError(
            f"`vocab` is a word-level vocabulary; a {tokenizer_type!r} tokenizer is trained with "
            f"`AwdLstmTokenizer.train(texts, tokenizer_type={tokenizer_type!r})` or loaded from its folder."
        )
    if tokenizer_object is not None:
        return check_backend(tokenizer_object, tokenizer_type, "`tokenizer_object`")
    if not (tokenizer_file and os.path.isfile(tokenizer_file)):
        missing = tokenizer_file or os.path.join(str(folder or "."), "tokenizer.json")
        raise ValueError(
            f"A {tokenizer_type!r} AwdLstmTokenizer is read from its tokenizer.json, and {missing} does not exist: "
            "copy it from where the tokenizer was saved, or train one with "
            f"`AwdLstmTokenizer.train(texts, tokenizer_type={tokenizer_type!r})`."
        )
    try:
        backend = Tokenizer.from_file(tokenizer_file)
    except Exception as error:  # the Rust side's errors are plain `Exception`s
        raise ValueError(
            f"{tokenizer_file} is not a readable tokenizer.json ({error}); it may have been truncated. Save the "
            "tokenizer again, or copy the file again from where it was saved."
        ) from error
    return check_backend(backend, tokenizer_type, tokenizer_file)


def check_backend(backend: Tokenizer, tokenizer_type: str, where: str) -> Tokenizer:
    """`backend` if it is a `tokenizer_type` model with fastai's special tokens at ids 0..8, else a `ValueError`."""
    model = type(backend.model).__name__
    if model != SUBWORD_MODELS[tokenizer_type]:
        raise ValueError(
            f"{where} holds a {model} model, but `tokenizer_type` is {tokenizer_type!r} (a "
            f"{SUBWORD_MODELS[tokenizer_type]} model). Save the tokenizer again, or fix `tokenizer_type` in "
            "tokenizer_config.json."
        )
    ids = {token: backend.token_to_id(token) for token in SPECIAL_TOKENS}
    wrong = {token: ids[token] for index, token in enumerate(SPECIAL_TOKENS) if ids[token] != index}
    if wrong:
        raise ValueError(f"{where} must give fastai's special tokens {SPECIAL_TOKENS} ids 0..8; got {wrong}.")
    return backend


# ----------------------------------------------------------------------------------------------------------------
# Decoding


def undo_rules(text: str) -> str:
    """Undo the markers in rule-processed text, keeping its whitespace: `xxmaj w` -> `W`, `xxup w` -> `W`,
    `xxrep n c` -> n times `c` (attached to the word before when `c` is closing punctuation, or when both are one
    letter or digit: "s xxrep 3 o" -> "sooo"), `xxwrep n w` -> n times `w`; `xxbos xxeos xxpad xxfld` go. Then the
    spaces `spec_add_spaces` put around `/` and `\\` and after `#`, and before fix_html's `…`, are taken out."""
    parts = re.split(r"(\s+)", text)
    words, spaces = parts[0::2], [*parts[1::2], ""]  # spaces[i] follows words[i]
    out: list[list[str]] = []  # [word, the whitespace after it]
    index = 0
    while index < len(words):
        word = words[index]
        if word in (TK_UP, TK_MAJ) and index + 1 < len(words) and words[index + 1]:
            following = words[index + 1]
            following = following.upper() if word == TK_UP else following[:1].upper() + following[1:]
            out.append([following, spaces[index + 1]])
            index += 2
        elif word in (TK_REP, TK_WREP) and index + 2 < len(words) and words[index + 1].isdigit():
            count, what = int(words[index + 1]), words[index + 2]
            if word == TK_WREP:
                out.append([" ".join([what] * count), spaces[index + 2]])
            elif (
                out
                and out[-1][1] == " "
                and (what in _CLOSING or (len(out[-1][0]) == 1 and out[-1][0].isalnum() and what.isalnum()))
            ):
                out[-1] = [out[-1][0] + what * count, spaces[index + 2]]
            else:
                out.append([what * count, spaces[index + 2]])
            index += 3
        elif word in _DROPPED:
            index += 1
        else:
            out.append([word, spaces[index]])
            index += 1
    text = "".join(word + space for word, space in out)
    return re.sub(r" ?([/\\]) ?", r"\1", text).replace("# ", "#").replace(" …", "…")


def decode_pieces(pieces: list[str]) -> str:
    """Readable text of a run of pieces without special tokens of the tokenizer (fastai's markers may be in it)."""
    parts = []
    for piece in pieces:
        if (
            piece in SPECIAL_TOKENS
        ):  # the rules put a marker after whitespace ("end.\n\nxxmaj the") and a space after it
            parts.append(piece + " " if not parts or parts[-1][-1:].isspace() else f" {piece} ")
        else:
            parts.append(piece.replace(SPACE, " "))
    return undo_rules(re.sub(" {2,}", " ", "".join(parts)).strip(" "))
