"""Tests for the pure-Python fastai/spaCy tokenizer port.

Every expected token list below was produced by real fastai 2.8.12 (``TokenizeWithRules(SpacyTokenizer())``,
spaCy 3.8) and pasted here, so these tests need neither fastai nor spaCy.  The large-scale comparison lives in
``scripts/benchmarks/bench_tokenizer.py``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest


MODULE_PATH = Path(__file__).resolve().parents[3] / "src/ulmfit/models/awd_lstm/text_processing_awd_lstm.py"


def _load_module():
    try:
        return importlib.import_module("ulmfit.models.awd_lstm.text_processing_awd_lstm")
    except Exception:  # the package (or its heavy __init__) is unavailable: load the self-contained file itself
        pkg = types.ModuleType("_tp_awd_lstm")
        pkg.__path__ = [str(MODULE_PATH.parent)]
        sys.modules["_tp_awd_lstm"] = pkg
        spec = importlib.util.spec_from_file_location("_tp_awd_lstm.text_processing_awd_lstm", MODULE_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


tp = _load_module()

# (raw document, fastai tokens)
FASTAI_CASES = {
    "contractions": (
        "I don't think you can't, won't or shouldn't.",
        ["xxbos", "i", "do", "n't", "think", "you", "ca", "n't", ",", "wo", "n't", "or", "should", "n't", "."],
    ),
    "url": (
        "Visit https://www.imdb.com/title/tt0111161/ or www.example.com for more.",
        ["xxbos", "xxmaj", "visit", "https", ":", "/", "/", "xxrep", "3", "w", ".imdb.com", "/", "title", "/",
         "tt0", "xxrep", "4", "1", "61", "/", "or", "xxrep", "3", "w", ".example.com", "for", "more", "."],
    ),
    "email": (
        "Mail me at john.doe@example.com please",
        ["xxbos", "xxmaj", "mail", "me", "at", "john.doe@example.com", "please"],
    ),
    "emoticons": (
        "Great movie :) but the ending :( hmm... hello:) ;-)",
        ["xxbos", "xxmaj", "great", "movie", ":)", "but", "the", "ending", ":(", "hmm", "…", "hello", ":)",
         ";-)"],
    ),
    "hyphens": (
        "A well-known, over-the-top B-movie from 1999-2000.",
        ["xxbos", "a", "well", "-", "known", ",", "over", "-", "the", "-", "top", "xxmaj", "b", "-", "movie",
         "from", "1", "xxrep", "3", "9", "-2", "xxrep", "3", "0", "."],
    ),
    "abbreviations": (
        "The U.S. army, e.g. Mr. Smith, arrived at 10 a.m. vs. them.",
        ["xxbos", "xxmaj", "the", "xxup", "u.s", ".", "army", ",", "e.g.", "xxmaj", "mr", ".", "xxmaj", "smith",
         ",", "arrived", "at", "10", "a.m.", "vs.", "them", "."],
    ),
    "ellipsis": ("Well... I guess...so", ["xxbos", "xxmaj", "well", "…", "i", "guess", "…", "so"]),
    "html_line_breaks": (
        "First line.<br /><br />Second line.<br /><br /> Third.",
        ["xxbos", "xxmaj", "first", "line", ".", "\n\n", "xxmaj", "second", "line", ".", "\n\n▁", "xxmaj",
         "third", "."],
    ),
    "char_repetition": (
        "Wow!!!! Sooooo good",
        ["xxbos", "xxmaj", "wow", "xxrep", "4", "!", "s", "xxrep", "5", "o", "good"],
    ),
    "word_repetition": ("this is very very very very good", ["xxbos", "this", "is", "xxwrep", "4", "very", "good"]),
    "all_caps": (
        "This is AMAZING and I LOVE IT",
        ["xxbos", "xxmaj", "this", "is", "xxup", "amazing", "and", "i", "xxup", "love", "xxup", "it"],
    ),
    "one_letter_capitals": (
        "I think I am. A film by Ridley Scott",
        ["xxbos", "i", "think", "i", "am", ".", "a", "film", "by", "xxmaj", "ridley", "xxmaj", "scott"],
    ),
    "non_ascii": (
        "Amélie est très jolie, naïve café — Ça va? Привет мир 東京",
        ["xxbos", "xxmaj", "amélie", "est", "très", "jolie", ",", "naïve", "café", "—", "ça", "va", "?", "привет",
         "мир", "東京"],
    ),
    "html_entities": (
        "Tom &amp; Jerry said &quot;hi&quot; #39;ok#39; &lt;3",
        ["xxbos", "xxmaj", "tom", "&", "&", "xxmaj", "jerry", "said", "&", "'", "hi", "&", "'", "'", "ok", "'",
         "<3"],
    ),
    "slash_hash_backslash": (
        "Rated 7/10 #1 movie and/or w/o doubt C:\\path",
        ["xxbos", "xxmaj", "rated", "7", "/", "10", "#", "1", "movie", "and", "/", "or", "w", "/", "o", "doubt",
         "xxup", "c", ":", "\\", "path"],
    ),
    "quotes_and_brackets": (
        "He said \"it's 'fine'\" (really) [sic] {x}",
        ["xxbos", "xxmaj", "he", "said", '"', "it", "'s", "'", "fine", "'", '"', "(", "really", ")", "[", "sic",
         "]", "{", "x", "}"],
    ),
    "numbers_units_currency": (
        "It cost $5.50, about 20% more than 3km at 10pm on 12/25.",
        ["xxbos", "xxmaj", "it", "cost", "$", "5.50", ",", "about", "20", "%", "more", "than", "3", "km", "at",
         "10", "pm", "on", "12", "/", "25", "."],
    ),
    "mixed_whitespace": (
        "one\ttwo\n\nthree \n four  five",
        ["xxbos", "one", "\t", "two", "\n\n", "three", "\n▁", "four", "five"],
    ),
    "apostrophes": (
        "The boys' toys; Rock'n'roll; 'tis the cast's best role ’s",
        ["xxbos", "xxmaj", "the", "boys", "'", "toys", ";", "xxmaj", "rock'n'roll", ";", "'", "tis", "the", "cast",
         "'s", "best", "role", "’s"],
    ),
    "all_caps_with_punctuation": (
        "WOW!!! THE END. U.S.A. A1 OK?",
        ["xxbos", "xxup", "wow", "xxrep", "3", "!", "xxup", "the", "xxup", "end", ".", "xxup", "u.s.a", ".", "xxup",
         "a1", "xxup", "ok", "?"],
    ),
    "empty": ("", ["xxbos"]),
    "whitespace_only": ("   \n\t  ", ["xxbos"]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FASTAI_CASES))
def test_tokenize_matches_fastai(name):
    text, expected = FASTAI_CASES[name]
    assert tp.tokenize(text) == expected


@pytest.mark.parametrize("name", sorted(FASTAI_CASES))
def test_tokenize_equals_split_words_of_apply_rules(name):
    # tokenize() takes short-cuts; the plain composition of the public pieces must agree with it
    text, expected = FASTAI_CASES[name]
    assert tp.split_words("xxbos " + tp.apply_rules(text)) == expected


def test_tokenize_is_stable_across_cold_and_warm_caches():
    docs = [text for text, _ in FASTAI_CASES.values()]
    tp._cache.clear()
    tp._piece_cache.clear()
    cold = [tp.tokenize(d) for d in docs]
    warm = [tp.tokenize(d) for d in docs]
    assert cold == warm == [expected for _, expected in FASTAI_CASES.values()]


def test_markers_match_fastai_lowercase_rule_options():
    # fastai lowercase(add_eos=True) / lowercase(add_bos=False)
    assert tp.tokenize("Hello world.", add_eos=True) == ["xxbos", "xxmaj", "hello", "world", ".", "xxeos"]
    assert tp.tokenize("", add_eos=True) == ["xxbos", "▁", "xxeos"]  # "xxbos  xxeos": the 2nd space is a token
    assert tp.tokenize("Hello world.", add_bos=False) == ["xxmaj", "hello", "world", "."]
    assert tp.tokenize("", add_bos=False) == []


def test_special_tokens_in_fastai_order():
    assert tp.SPECIAL_TOKENS == ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "This is AMAZING!!! I  said  <br />  NO no no no.",
            "xxmaj this is xxup amazing xxrep 3 ! i said \n xxup no xxwrep 3 no .",
        ),
        ("Tom &amp; Jerry: 7/10 #1", "xxmaj tom && xxmaj jerry: 7 / 10 # 1"),
        ("A1 and Hello World OK", "xxup a1 and xxmaj hello xxmaj world xxup ok"),
        ("", ""),
    ],
)
def test_apply_rules_matches_fastai(text, expected):
    assert tp.apply_rules(text) == expected


# (rule-processed text, tokens of fastai's SpacyTokenizer + replace_space)
SPLIT_CASES = [
    ("hello:) (:) :):)", ["hello", ":)", "(", ":)", ":", "):", ")"]),  # special-case matcher, overlaps
    ("  leading spaces", ["▁▁", "leading", "spaces"]),
    ("a  b   c", ["a", "▁", "b", "▁▁", "c"]),
    ("\n\nx \n y", ["\n\n", "x", "\n▁", "y"]),
    ("(e.g. u.s.) i.e., etc.", ["(", "e.g.", "u.s", ".", ")", "i.e.", ",", "etc", "."]),
    ("cannot gonna dunno", ["can", "not", "gon", "na", "dunno"]),
    ("xxbos xxmaj hello xxunk", ["xxbos", "xxmaj", "hello", "xxunk"]),
    ("it's 'em 'cause", ["it", "'s", "'em", "'cause"]),
    ("co-operate 3-4 10:30 a+b", ["co", "-", "operate", "3", "-", "4", "10:30", "a+b"]),
    ("lol;-)", ["lol;-", ")"]),
    ("trailing\n", ["trailing", "\n"]),
    # a pattern straddling two chunks (":" "(" | ":" ")") blocks the ":)" inside the second one
    ("can't:( :)–vs’s?", ["ca", "n't", ":(", ":", ")", "–", "vs", "’s", "?"]),
]


@pytest.mark.parametrize(("text", "expected"), SPLIT_CASES)
def test_split_words_matches_spacy(text, expected):
    assert tp.split_words(text) == expected


def test_split_words_of_empty_text():
    assert tp.split_words("") == []


@pytest.mark.parametrize(
    "text",
    [
        "I don't think you can't, won't or shouldn't.",
        "The U.S. army (and its allies) arrived.",
        'He said "it\'s fine" and left!',
        "Wow!!!! This is AMAZING.",
        "First line.\n\nSecond line.",
        "It's 100% true; really?",
        "this is very very very very good",
        "Rated 7/10 by John's friends.",
        "Amélie est très jolie, naïve café.",
        "The boys' toys were 'fine', she said.",
    ],
)
def test_detokenize_round_trips_ordinary_prose(text):
    assert tp.detokenize(tp.tokenize(text)) == text


def test_detokenize_expands_markers():
    tokens = ["xxbos", "xxmaj", "wow", "xxrep", "4", "!", "xxup", "so", "xxwrep", "3", "good", "xxpad", "xxeos"]
    assert tp.detokenize(tokens) == "Wow!!!! SO good good good"


def test_detokenize_rejoins_character_repetition_with_its_word():
    assert tp.detokenize(tp.tokenize("Sooooo good, it cost $1000!")) == "sooooo good, it cost $1000!"


def test_detokenize_restores_spaces_and_newlines():
    assert tp.detokenize(["a", "\n▁", "b", "▁▁", "c", "\n\n", "d"]) == "a\n b  c\n\nd"


def test_detokenize_never_glues_words():
    assert tp.detokenize(["hello", "world", "-", "again"]) == "hello world - again"
    assert tp.detokenize([]) == ""


def test_module_is_self_contained():
    # shipped as Hugging Face remote code: stdlib imports only, plus the sibling generated rule tables
    for path in (MODULE_PATH, MODULE_PATH.with_name("spacy_rules_awd_lstm.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert node.module == "spacy_rules_awd_lstm" and node.level == 1, path
                    continue
                names = [node.module.split(".")[0]]
            else:
                continue
            assert all(name in sys.stdlib_module_names or name == "__future__" for name in names), (path, names)
