"""fastai v2 text pre-processing and spaCy English word splitting, in plain Python.

ULMFiT / AWD-LSTM checkpoints trained with fastai expect their input tokenized exactly the way fastai's
``TokenizeWithRules(SpacyTokenizer())`` does it (fastai 2.8, spaCy 3.8):

1. the pre-rules ``fix_html``, ``replace_rep``, ``replace_wrep``, ``spec_add_spaces``, ``rm_useless_spaces``,
   ``replace_all_caps``, ``replace_maj`` and ``lowercase`` (which also prepends ``xxbos``);
2. the tokenizer of ``spacy.blank("en")`` with fastai's nine special tokens added as special cases;
3. the post-rule ``replace_space`` (a space inside a token becomes ``"▁"``).

This module reproduces that pipeline without fastai or spaCy, because it is shipped as Hugging Face "remote
code" next to converted checkpoints: it may only depend on the standard library (plus the generated rule
tables in the sibling ``spacy_rules_awd_lstm`` module, see ``generate_spacy_rules.py`` beside it).
``scripts/benchmarks/bench_tokenizer.py`` compares it with fastai on IMDb reviews (identical output).

The spaCy algorithm (``spacy/tokenizer.pyx``) reproduced here:

* The text is cut into alternating runs of non-whitespace and whitespace.  A whitespace run that follows a
  word loses its first character if that is a plain space (that space is the word's trailing ``whitespace_``);
  whatever remains of it (e.g. ``"\\n"`` or ``" \\n"``) becomes a token.
* Each non-empty run ("chunk") is looked up in the special cases (tokenizer exceptions).  Otherwise prefixes
  and suffixes are stripped repeatedly, re-checking the special cases after every step; the remaining core
  is a special case, a URL, or is split on infixes.
* Finally spaCy's PhraseMatcher pass re-applies special cases whose text contains affixes (emoticons such as
  ``":)"`` after ``"hello:)"`` was split into ``hello : )``).  A matched span only applies if its text equals
  the special case, so this is done per chunk, except for the rare documents where a match straddling two
  chunks could block one inside a chunk; those take an exact whole-document path.

Speed (pure Python, ~20x fastai on a warm cache): results are cached per space-delimited piece of text, so a
piece seen before -- most words -- costs one dict lookup; fastai's case rules and ``lower()`` are folded into
that cache (they act within a piece); the other rules and the affix scans run behind cheap pre-checks that
are proven not to change any result (see the comments at each one).
"""

from __future__ import annotations

import html
import operator
import re
from itertools import chain, islice

from .spacy_rules_awd_lstm import (
    INFIX_FIRST_CHARS,
    INFIX_PATTERN,
    MATCHER_PATTERNS,
    PREFIX_PATTERN,
    SPECIAL_CASES,
    SUFFIX_LAST_CHARS,
    SUFFIX_MAX_WIDTH,
    SUFFIX_PATTERN,
    SUFFIX_UNBOUNDED_LAST_CHARS,
    URL_PATTERN,
)


__all__ = ["SPECIAL_TOKENS", "apply_pre_rules", "apply_rules", "split_words", "tokenize", "detokenize"]

UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ = (
    "xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj",
)  # fmt: skip
#: fastai's special tokens, in fastai's order (vocabulary ids 0..8 of a fastai text vocab).
SPECIAL_TOKENS = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ]


# ----------------------------------------------------------------------------------------------------------
# fastai pre-rules (fastai/text/core.py).
#
# Where a rule is rewritten for speed, the comment explains why the output cannot differ; the benchmark
# (scripts/benchmarks/bench_tokenizer.py) checks the whole pipeline against fastai.
# ----------------------------------------------------------------------------------------------------------

# fix_html's literal replacements, in fastai's order, each with a character it contains that no replacement
# produces: when that character is absent from the document, the pattern cannot occur at any step, and the
# ``in`` scan for it is skipped (most documents have no ";", "\\", "<" other than "<br />", or "@").
_HTML_FIXES = (
    ("#39;", "'", ";"), ("amp;", "&", ";"), ("#146;", "'", ";"), ("nbsp;", " ", ";"), ("#36;", "$", ";"),
    ("\\n", "\n", "\\"), ("quot;", "'", ";"), ("<br />", "\n", "<"), ('\\"', '"', "\\"), ("<unk>", UNK, "<"),
    (" @.@ ", ".", "@"), (" @-@ ", "-", "@"), ("...", " …", "."),
)  # fmt: skip
_HTML_GUARDS = (";", "\\", "<", "@", ".")


def _fix_html(t: str) -> str:
    """fastai's ``fix_html``."""
    present = {c for c in _HTML_GUARDS if c in t}
    for old, new, guard in _HTML_FIXES:
        if guard in present and old in t:  # ``in`` is cheaper than a no-op ``replace`` (which copies)
            t = t.replace(old, new)
    return html.unescape(t)


# replace_rep: fastai's regex.  It needs three equal characters in a row, which the much cheaper ``(.)\1\1``
# (no ``{2,}`` repeat) detects first; most documents have none.
_RE_REP = re.compile(r"(\S)(\1{2,})")
_has_triple = re.compile(r"(.)\1\1").search

# replace_wrep: fastai's regex.  A match needs a word W that appears twice in a row as a whole
# whitespace-delimited token -- (\s|^) W \s+ W \s+ ... -- i.e. two equal neighbours in ``t.split()``.  That
# pre-check is cheaper than the regex scan, and few documents pass it.
_RE_WREP = re.compile(r"(?:\s|^)(\w+)\s+((?:\1\s+)+)\1(\s|\W|$)")


def _may_have_wrep(t: str) -> bool:
    words = t.split()
    return True in map(operator.eq, words, islice(words, 1, None))


_RE_SPEC = re.compile(r"([/#\\])")
_RE_SPACE = re.compile(" {2,}")

# replace_all_caps / replace_maj.  fastai's regexes are ``(\s|^)([A-Z]+[^a-z\s]*)(?=(\s|$))`` and
# ``(\s|^)([A-Z][^A-Z\s]*)(?=(\s|$))``: a match is a whole whitespace-delimited token, and it consumes the
# whitespace before the token but not the one after, so each token is matched or not independently of the
# others.  The versions below match the same tokens but start with ``[A-Z]`` -- letting sre skip every other
# character in C -- and check the preceding character with a look-behind instead of consuming it.
# They also skip one-letter tokens: fastai only lower-cases those ("I" -> "i"), which the final ``lower()``
# does anyway, and a one-letter token left upper-case cannot be matched by the (2+ letter) maj pattern.
# _maj_sub leaves the case to the final ``lower()`` as well; only all-caps words must be lowered at once,
# otherwise e.g. "A1" would then be seen as a capitalised word by replace_maj.
_RE_ALL_CAPS2 = re.compile(r"[A-Z](?<!\S[A-Z])[^a-z\s]+(?=\s|$)")
_RE_MAJ2 = re.compile(r"[A-Z](?<!\S[A-Z])[^A-Z\s]+(?=\s|$)")


def _rep_sub(m: re.Match) -> str:
    c, cc = m.groups()
    return f" {TK_REP} {len(cc) + 1} {c} "


def _wrep_sub(m: re.Match) -> str:
    c, cc, e = m.groups()
    return f" {TK_WREP} {len(cc.split()) + 2} {c} {e}"


def _all_caps_sub(m: re.Match) -> str:
    return f"{TK_UP} {m.group().lower()}"


def _maj_sub(m: re.Match) -> str:
    # (a callback is faster than the equivalent template r"xxmaj \g<0>", which Python 3.11 expands in Python)
    return f"{TK_MAJ} {m.group()}"


def _pre_rules(t: str) -> str:
    """fastai's rules up to ``rm_useless_spaces``: the ones that may look across whitespace."""
    t = _fix_html(t)
    if _has_triple(t):
        t = _RE_REP.sub(_rep_sub, t)
    if _may_have_wrep(t):
        t = _RE_WREP.sub(_wrep_sub, t)
    if "/" in t or "#" in t or "\\" in t:
        t = _RE_SPEC.sub(r" \1 ", t)
    if "  " in t:
        t = _RE_SPACE.sub(" ", t)
    return t


def _case_rules(t: str) -> str:
    """fastai's ``replace_all_caps`` + ``replace_maj``, minus the lower-casing left to the final ``lower()``.

    Both only look at one whitespace-delimited token at a time (and at whether whitespace or the start/end of
    the text surrounds it), so they may also be applied to any space-delimited piece of a text on its own.
    """
    return _RE_MAJ2.sub(_maj_sub, _RE_ALL_CAPS2.sub(_all_caps_sub, t))


def apply_rules(text: str) -> str:
    """Apply fastai's default pre-processing rules to one document.

    Same result as fastai's ``fix_html``, ``replace_rep``, ``replace_wrep``, ``spec_add_spaces``,
    ``rm_useless_spaces``, ``replace_all_caps``, ``replace_maj`` followed by ``lowercase(t, add_bos=False)``
    (i.e. ``t.lower().strip()``).  ``xxbos``/``xxeos`` are added by :func:`tokenize`, not here.
    """
    return _case_rules(_pre_rules(text)).lower().strip()


def apply_pre_rules(text: str) -> str:
    """fastai's ``fix_html``, ``replace_rep``, ``replace_wrep``, ``spec_add_spaces`` and ``rm_useless_spaces``:
    ``apply_rules`` without the case rules and ``lowercase``; the subword tokenizer adds case rules for any script."""
    return _pre_rules(text)


# ----------------------------------------------------------------------------------------------------------
# spaCy English tokenizer (spacy/tokenizer.pyx) on the generated rule tables.
# ----------------------------------------------------------------------------------------------------------

_prefix_search = re.compile(PREFIX_PATTERN).search
_suffix_search = re.compile(SUFFIX_PATTERN).search
_infix_finditer = re.compile(INFIX_PATTERN).finditer
_url_match = re.compile(URL_PATTERN).match
# Pre-checks derived from the patterns by the generator (see spacy_rules_awd_lstm): no infix can match a
# string without one of INFIX_FIRST_CHARS; no suffix can end with a character outside SUFFIX_LAST_CHARS; a
# suffix match longer than SUFFIX_MAX_WIDTH needs a last character in SUFFIX_UNBOUNDED_LAST_CHARS ("...").
_may_have_infix = re.compile(INFIX_FIRST_CHARS).search
_may_end_suffix = re.compile(SUFFIX_LAST_CHARS).match
_may_be_long_suffix = re.compile(SUFFIX_UNBOUNDED_LAST_CHARS).match
# One more than the widest bounded suffix: ``$`` may match before a final "\n" (whitespace chunks only).
_SUFFIX_WINDOW = SUFFIX_MAX_WIDTH + 1

#: chunk -> tokens for every tokenizer exception (lower-case ones only) plus fastai's special tokens.
_SPECIALS: dict[str, tuple[str, ...]] = dict(SPECIAL_CASES)
for _tok in SPECIAL_TOKENS:
    _SPECIALS[_tok] = (_tok,)

# PhraseMatcher patterns indexed by their first token.  A one-token pattern whose special case is that same
# single token can never change anything (it is also the last to be considered when matches overlap), so
# those are dropped; every other pattern is kept, including no-op multi-token ones, because they still take
# part in the overlap resolution.
_PATTERNS_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _key, _pattern in MATCHER_PATTERNS.items():
    if len(_pattern) == 1 and _SPECIALS.get(_key) == _pattern:
        continue
    _PATTERNS_BY_FIRST.setdefault(_pattern[0], []).append(_pattern)
_PATTERN_FIRSTS = frozenset(_PATTERNS_BY_FIRST)

# Chunks as the tokenizer sees them: non-whitespace runs, and whitespace runs other than a lone " " (which
# always disappears: it is the previous word's trailing space).  ``\s`` and ``str.isspace`` (spaCy's test)
# agree on every code point.
_chunks = re.compile(r"\S+|\s{2,}|[^\S ]").findall
_runs = re.compile(r"\S+|\s+").findall
# A whitespace character followed by a space: the space is then part of a whitespace token (see split_words).
_ws_before_space = re.compile(r"[^\S ] ").search

# Caches, each cleared when it grows past _CACHE_MAX entries (~150 bytes per entry, so ~80 MB when full;
# the 25,000 IMDb test reviews need ~270k).  ``_cache``: chunk or piece of rule-processed text -> tokens (see
# split_words).  ``_piece_cache``: space-delimited piece of text *before* the case rules -> tokens of the
# processed piece, xxup/xxmaj included (see tokenize).
_CACHE_MAX = 1 << 19
_cache: dict[str, tuple[str, ...]] = {}
_piece_cache: dict[str, tuple[str, ...]] = {}


def _is_plain_word(string: str) -> bool:
    """Whether ``string`` is made of ASCII letters only: no affix rule or URL can then match (see _chunk_tokens)."""
    return string.isascii() and string.isalpha()


def _find_suffix(string: str) -> int:
    """Length of spaCy's suffix match for ``string`` (``Tokenizer.find_suffix``), 0 if none."""
    last = string[-1]
    if last == "\n":  # ``$`` can match before a final newline: no short-cut
        m = _suffix_search(string)
    elif not _may_end_suffix(last):
        return 0
    elif _may_be_long_suffix(last):
        m = _suffix_search(string)
    else:
        # Every possible match starts within the last _SUFFIX_WINDOW characters, and ``search(string, pos)``
        # still lets look-behinds see the characters before ``pos``.  The leftmost match is therefore the same.
        m = _suffix_search(string, max(0, len(string) - _SUFFIX_WINDOW))
    return m.end() - m.start() if m is not None else 0


def _split_affixes(string: str) -> tuple[list[str], str, list[str]]:
    """spaCy's ``Tokenizer._split_affixes`` (``token_match`` is None for English)."""
    specials = _SPECIALS
    prefixes: list[str] = []
    suffixes: list[str] = []
    last_size = 0
    while string and len(string) != last_size:
        if string in specials or _is_plain_word(string):
            break
        last_size = len(string)
        m = _prefix_search(string)
        pre_len = m.end() - m.start() if m is not None else 0
        if pre_len:
            prefix = string[:pre_len]
            minus_pre = string[pre_len:]
            if minus_pre and minus_pre in specials:
                string = minus_pre
                prefixes.append(prefix)
                break
        suf_len = _find_suffix(string[pre_len:]) if len(string) > pre_len else 0
        if suf_len:
            # Sliced from the end like spaCy does (not from the match start): they differ when ``$`` matched
            # before a final newline, and we must differ from spaCy in nothing.
            suffix = string[-suf_len:]
            minus_suf = string[:-suf_len]
            if minus_suf and minus_suf in specials:
                string = minus_suf
                suffixes.append(suffix)
                break
        if pre_len and suf_len and (pre_len + suf_len) <= len(string):
            string = string[pre_len:-suf_len]
            prefixes.append(prefix)
            suffixes.append(suffix)
        elif pre_len:
            string = minus_pre
            prefixes.append(prefix)
        elif suf_len:
            string = minus_suf
            suffixes.append(suffix)
    return prefixes, string, suffixes


def _split_core(string: str, out: list[str]) -> None:
    """spaCy's ``Tokenizer._attach_tokens`` for the part left once the affixes are gone."""
    special = _SPECIALS.get(string)
    if special is not None:
        out.extend(special)
        return
    if _is_plain_word(string):
        out.append(string)
        return
    if "." in string and _url_match(string):  # every host alternative of URL_PATTERN contains a literal "."
        out.append(string)
        return
    if not _may_have_infix(string):
        out.append(string)
        return
    start = 0
    for m in _infix_finditer(string):
        infix_start, infix_end = m.span()
        if infix_start == 0:  # spaCy ignores an infix at the very start of the string
            continue
        if infix_start != start:
            out.append(string[start:infix_start])
        if infix_start != infix_end:
            out.append(string[infix_start:infix_end])
        start = infix_end
    if string[start:]:
        out.append(string[start:])


def _apply_special_matcher(tokens: list[str], spaces: list[bool] | None = None) -> tuple[list[str], bool]:
    """spaCy's final PhraseMatcher pass (``Tokenizer._apply_special_cases``).

    ``spaces[i]`` tells whether token ``i`` is followed by a (dropped) space; None means no token is (one
    chunk).  Returns the new tokens and whether any pattern matched at all.
    """
    matches = []
    n = len(tokens)
    for i, tok in enumerate(tokens):
        for pattern in _PATTERNS_BY_FIRST.get(tok, ()):
            j = i + len(pattern)
            if j <= n and tuple(tokens[i:j]) == pattern:
                matches.append((i, j))
    if not matches:
        return tokens, False
    # _filter_special_spans: longest first, then leftmost; a span survives if neither its first nor its last
    # token was covered by an earlier *considered* span (covered tokens are marked even for rejected spans).
    matches.sort(key=lambda se: (se[0] - se[1], se[0]))
    seen: set[int] = set()
    kept = []
    for s, e in matches:
        if s not in seen and e - 1 not in seen:
            kept.append((s, e))
        seen.update(range(s, e))
    kept.sort()
    out: list[str] = []
    i = 0
    for s, e in kept:
        out.extend(tokens[i:s])
        if spaces is None:
            text = "".join(tokens[s:e])
        else:  # the span's text, with the spaces between its tokens (those never match a special case)
            text = (
                "".join(t + " " * sp for t, sp in zip(tokens[s : e - 1], spaces[s : e - 1], strict=True))
                + tokens[e - 1]
            )
        out.extend(_SPECIALS.get(text, tokens[s:e]))
        i = e
    out.extend(tokens[i:])
    return out, True


# spaCy runs the matcher over the whole document, so a pattern can also straddle two chunks ("x:(" + ":)").
# Such a match never applies (its text contains the space or whitespace token between the chunks, which no
# special case does) but it can still block an overlapping match inside a chunk.  Per-chunk results are
# therefore only valid for chunks that had no match, or whose edge tokens cannot be part of a straddling
# match; the others are "boundary-sensitive" and send their document down the exact whole-document path.
_PATTERN_HEADS = frozenset(p[:k] for p in MATCHER_PATTERNS.values() for k in range(1, len(p)))
_PATTERN_TAILS = frozenset(p[k:] for p in MATCHER_PATTERNS.values() for k in range(1, len(p)))
_MAX_PATTERN_LEN = max(map(len, MATCHER_PATTERNS.values()))


def _is_boundary_sensitive(tokens: list[str]) -> bool:
    """Whether a pattern could straddle an edge of a chunk with these (pre-matcher) tokens."""
    for k in range(1, min(len(tokens), _MAX_PATTERN_LEN - 1) + 1):
        if tuple(tokens[-k:]) in _PATTERN_HEADS or tuple(tokens[:k]) in _PATTERN_TAILS:
            return True
    return False


# Punctuation for the one-mark short-cuts of _chunk_tokens.  For a chunk "word," (ASCII letters + one of
# these, not itself a special case) spaCy's only prefix/suffix match is that one character: no prefix starts
# with a lower-case letter, and no suffix ending with one of these marks can also cover a letter.  So spaCy
# splits off the mark, and the word is a special case or a single token; likewise for "(word".
_TRAILING_MARKS = frozenset(",.!?;:)\"'")
_LEADING_MARKS = frozenset("(\"'")


def _chunk_tokens(chunk: str) -> list[str]:
    """spaCy's tokens for one whitespace-free run or one whitespace run, before the matcher pass."""
    special = _SPECIALS.get(chunk)
    if special is not None:
        return list(special)
    if _is_plain_word(chunk):
        # A string of ASCII letters has no prefix, suffix or infix and is no URL: every English affix rule
        # needs a punctuation mark, symbol or digit (letter-only suffixes such as units "km" need a digit
        # before them), and a URL needs a ".".  This short-cut skips the regex scans for ~45% of new chunks.
        return [chunk]
    if chunk[-1] in _TRAILING_MARKS and _is_plain_word(chunk[:-1]):
        word = chunk[:-1]
        return [*_SPECIALS.get(word, (word,)), chunk[-1]]
    if chunk[0] in _LEADING_MARKS and _is_plain_word(chunk[1:]):
        word = chunk[1:]
        return [chunk[0], *_SPECIALS.get(word, (word,))]
    prefixes, core, suffixes = _split_affixes(chunk)
    tokens = prefixes
    if core:
        _split_core(core, tokens)
    tokens.extend(reversed(suffixes))
    return tokens


def _tokenize_chunk(chunk: str) -> tuple[str, ...] | None:
    """Final tokens (after ``replace_space``) of one chunk, or None if it is boundary-sensitive."""
    tokens = _chunk_tokens(chunk)
    if len(tokens) > 1 and not _PATTERN_FIRSTS.isdisjoint(tokens):
        matched_tokens, matched = _apply_special_matcher(tokens)
        # (the whole-document matcher sees the tokens from before this chunk's own matches are applied)
        if matched and _is_boundary_sensitive(tokens):
            return None
        tokens = matched_tokens
    return tuple([t.replace(" ", "▁") for t in tokens])


def _tokenize_run(run: str) -> tuple[str, ...] | None:
    """Tokens of a run produced by ``_chunks``; whitespace runs lose a leading plain space (see module doc)."""
    if run[0] == " ":
        run = run[1:]
    return _tokenize_chunk(run) if run else ()


def _tokenize_piece(piece: str) -> tuple[str, ...] | None:
    """Tokens of a space-free piece that ends with a non-whitespace character (see ``split_words``)."""
    if piece.isprintable():  # no whitespace at all (the only printable whitespace is " ")
        return _tokenize_chunk(piece)
    parts = [_tokenize_chunk(run) for run in _runs(piece)]
    return None if None in parts else tuple(chain.from_iterable(parts))


def _split_words_exact(text: str) -> list[str]:
    """spaCy's algorithm on the whole document at once, the matcher pass included (the slow, exact path)."""
    tokens: list[str] = []
    spaces: list[bool] = []
    for run in _runs(text):
        if tokens and run[0] == " ":  # a word's trailing space (the first run is never anybody's)
            spaces[-1] = True
            run = run[1:]
            if not run:
                continue
        chunk_tokens = _chunk_tokens(run)
        tokens.extend(chunk_tokens)
        spaces.extend([False] * len(chunk_tokens))
    tokens, _ = _apply_special_matcher(tokens, spaces)
    return [t.replace(" ", "▁") for t in tokens]


def _cached(cache: dict[str, tuple[str, ...]], keys: list[str], tokenize_key) -> list[str] | None:
    """Concatenated cached tokens of ``keys``, filling the cache; None if a key is boundary-sensitive."""
    try:
        return list(chain.from_iterable(map(cache.__getitem__, keys)))
    except KeyError:
        pass
    for some_cache in (cache, _cache):  # (_tokenize_raw_piece also fills _cache)
        if len(some_cache) > _CACHE_MAX:
            some_cache.clear()
    for key in set(keys).difference(cache):
        tokens = tokenize_key(key)
        if tokens is None:  # (never cached, so such documents always come back here)
            return None
        cache[key] = tokens
    return list(chain.from_iterable(map(cache.__getitem__, keys)))


def split_words(text: str) -> list[str]:
    """Split rule-processed text into words exactly like fastai's ``SpacyTokenizer`` + ``replace_space``.

    ``text`` is expected to be the output of :func:`apply_rules` (lower-cased), optionally with fastai's
    special tokens such as ``xxbos`` in it; upper-case tokenizer exceptions (e.g. ``"Ms."``) are not known.
    """
    if not text:
        return []
    if not (text[0] == " " or text[-1].isspace() or "  " in text or _ws_before_space(text)):
        # Fast path (nearly every document after apply_rules): every space follows a non-whitespace
        # character, so each space is some word's trailing space and is dropped, and the space-separated
        # pieces can be tokenized independently -- a piece such as "end.\n\nthe" contains its whitespace
        # runs whole.  ``str.split`` is several times faster than a regex ``findall``.
        tokens = _cached(_cache, text.split(" "), _tokenize_piece)
    elif text[0].isspace():
        # Leading whitespace is not anybody's trailing space: spaCy keeps the whole run as a token.  Rare
        # enough to be left to the exact path.
        tokens = None
    else:
        # spaCy's own chunking.  The cache is shared: keys here are non-whitespace runs (tokenized as on the
        # fast path) or whitespace runs (never fast-path keys, which contain a non-whitespace character).
        tokens = _cached(_cache, _chunks(text), _tokenize_run)
    return _split_words_exact(text) if tokens is None else tokens


# The case rules applied to a lone whitespace-free token (see _tokenize_raw_piece).
_is_all_caps_token = re.compile(r"[A-Z][^a-z\s]+").fullmatch
_is_maj_token = re.compile(r"[A-Z][^A-Z\s]+").fullmatch


def _tokenize_raw_piece(piece: str) -> tuple[str, ...] | None:
    """Tokens of one space-free piece of pre-processed (not yet case-processed) text; see ``tokenize``."""
    low = piece.lower()
    marker = None
    if low != piece:  # (otherwise there is no [A-Z] for the case rules to match)
        if not piece.isprintable():  # may contain whitespace ("end.\n\nThe"): several tokens, general case
            low = _case_rules(piece).lower()
            tokens = _cached(_cache, low.split(" "), _tokenize_piece)
            return None if tokens is None else tuple(tokens)
        # One whitespace-delimited token: _RE_ALL_CAPS2 / _RE_MAJ2 can only match it whole.
        if _is_all_caps_token(piece):
            marker = TK_UP
        elif _is_maj_token(piece):
            marker = TK_MAJ
    tokens = _cache.get(low)
    if tokens is None:
        tokens = _tokenize_piece(low)
        if tokens is None:
            return None
        _cache[low] = tokens
    return (marker, *tokens) if marker else tokens


def tokenize(text: str, add_bos: bool = True, add_eos: bool = False) -> list[str]:
    """Tokenize one document exactly like fastai's ``TokenizeWithRules(SpacyTokenizer())``.

    With ``add_bos`` (fastai's default) the first token is ``xxbos``; ``add_eos`` appends ``xxeos``.
    Equivalent to ``split_words("xxbos " + apply_rules(text))`` (fastai's ``lowercase`` rule), only faster.
    """
    t = _pre_rules(text).strip()
    tokens = None
    if t and not _ws_before_space(t):
        # Common case: ``t`` is stripped, has no double space and no whitespace before a space, so every space
        # is a dropped trailing space and the space-delimited pieces tokenize independently (see split_words).
        # The case rules and ``lower()`` only act within such a piece (Python's final-sigma rule included), so
        # whole pieces -- "Hello," rather than "xxmaj hello," -- are looked up in one cache.  The markers need
        # no special care: "xxbos " + body tokenizes as ["xxbos"] + tokens(body) for a non-empty stripped body.
        tokens = _cached(_piece_cache, t.split(" "), _tokenize_raw_piece)
    if tokens is None:
        # Rare (an empty document, whitespace such as "\n" followed by a space, a boundary-sensitive chunk):
        # assemble the string the way fastai's ``lowercase`` does.  E.g. an empty document with both markers
        # tokenizes as ``xxbos ▁ xxeos``, in fastai and here.
        body = _case_rules(t).lower()
        return split_words((f"{BOS} " if add_bos else "") + body + (f" {EOS}" if add_eos else ""))
    if add_bos:
        tokens.insert(0, BOS)
    if add_eos:
        tokens.append(EOS)
    return tokens


# ----------------------------------------------------------------------------------------------------------
# Detokenization (readable text; not an exact inverse -- case and spacing are partly lost by fastai's rules).
# ----------------------------------------------------------------------------------------------------------

_DROP = frozenset({BOS, EOS, PAD, FLD})
# Tokens written without a space before them (besides words made only of _CLOSING characters, e.g. "!!!").
_NO_SPACE_BEFORE = frozenset(
    {"n't", "'s", "'re", "'ve", "'ll", "'m", "'d", "’s", "’re", "’ve", "’ll", "’m", "’d", "n’t", "’", "''", "/"}
)  # fmt: skip
_CLOSING = frozenset(".,!?;:)]}%…")
# Tokens written without a space after them.  ("/" is glued on both sides: fastai's spec_add_spaces put the
# spaces around it, as in "7 / 10" or "and / or".)
_NO_SPACE_AFTER = frozenset({"(", "[", "{", "$", "#", "“", "‘", "``", "/"})


def _expand(tokens: list[str]) -> list[str]:
    """Undo the ``xxrep``/``xxwrep``/``xxup``/``xxmaj`` markers (case restored as well as fastai allows)."""
    words: list[str] = []
    n = len(tokens)
    i = 0
    while i < n:
        tok = tokens[i]
        if tok in _DROP:
            i += 1
        elif tok in (TK_REP, TK_WREP) and i + 2 < n and tokens[i + 1].isdigit():
            count, what = int(tokens[i + 1]), tokens[i + 2]
            if tok == TK_WREP:
                words.extend([what] * count)
            elif words and len(words[-1]) == 1 and words[-1].isalnum() and what.isalnum():
                # "sooo" -> "s xxrep 3 o", "1000" -> "1 xxrep 3 0": rejoin with the lone letter/digit before
                words[-1] += what * count
            else:
                words.append(what * count)
            i += 3
        elif tok in (TK_UP, TK_MAJ) and i + 1 < n:
            nxt = tokens[i + 1]
            words.append(nxt.upper() if tok == TK_UP else nxt[:1].upper() + nxt[1:])
            i += 2
        else:
            words.append(tok)
            i += 1
    return words


def detokenize(tokens: list[str]) -> str:
    """Turn fastai tokens back into readable text.

    ``xxmaj w`` -> ``W``, ``xxup w`` -> ``W``, ``xxrep n c`` -> ``c`` * n, ``xxwrep n w`` -> n times ``w``,
    ``"▁"`` -> ``" "``; ``xxbos``/``xxeos``/``xxpad``/``xxfld`` are dropped, and the pronoun ``i`` (which
    fastai lower-cases without a marker) is written ``I``.  Closing punctuation and clitics (``n't``, ``'s``
    ...) attach to the previous word, opening brackets to the next one, and whitespace tokens (e.g. ``"\n"``)
    are written as they are instead of a space.  Straight quotes are paired: an opening one attaches to the
    next word, a closing one to the previous word (a ``'`` after a word ending in "s" is taken as a plural
    possessive).  The result is readable, not the original: fastai's rules lose some case and spacing.
    """
    pieces: list[str] = []
    glue_next = True  # no space before the first word
    open_double = open_single = False
    prev = ""
    for w in _expand(tokens):
        w = w.replace("▁", " ")
        if not w:
            continue
        if w.isspace():
            pieces.append(w)
            glue_next = True
            prev = w
            continue
        if w == "i":
            w = "I"
        if w == '"' or w == "'":
            if w == '"':
                attach_left = open_double
                open_double = not open_double
            elif open_single or prev.endswith("s"):
                attach_left = True
                open_single = False
            else:
                attach_left = False
                open_single = True
            if not (glue_next or attach_left):
                pieces.append(" ")
            pieces.append(w)
            glue_next = not attach_left
            prev = w
            continue
        if not (glue_next or w in _NO_SPACE_BEFORE or _CLOSING.issuperset(w)):
            pieces.append(" ")
        pieces.append(w)
        glue_next = w in _NO_SPACE_AFTER
        prev = w
    return "".join(pieces).strip()
