"""AwdLstmTokenizer with `tokenizer_type="unigram"` / `"bpe"`: fastai's rules, then a `tokenizers` subword model."""

import importlib.util
import json
import random
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmForSequenceClassification, AwdLstmTokenizer
from ulmfit.models.awd_lstm.subword_awd_lstm import apply_rules_any_script, build_normalizer
from ulmfit.models.awd_lstm.text_processing_awd_lstm import SPECIAL_TOKENS, apply_rules
from ulmfit.training.script_steps import UsageError


SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
SUBWORD = ["unigram", "bpe"]
ENGLISH = [
    "the",
    "a",
    "movie",
    "film",
    "was",
    "is",
    "great",
    "bad",
    "good",
    "story",
    "acting",
    "plot",
    "really",
    "very",
    "not",
    "and",
    "but",
    "it",
    "loved",
    "hated",
]
# Each of these is in the training corpus, so every character of it is in the vocabulary
SAMPLES = [
    "Привет, МИР! Это тест 123 😀",
    "Ελληνικά ΚΕΙΜΕΝΑ και Οδός 42.",
    "日本語のテキストです。",
    "中文文本测试 🎉 好的",
    "The movie was GREAT!!! And sooo good, 10/10 😀",
]
# Lower-case, no repeated characters or words, no HTML references: where tokenizer.json alone is the tokenizer
LOWER_CASE = [
    "the movie was good and the story was great.",
    "привет мир, это тест 123 😀",
    "ελληνικά κείμενα και οδός 42.",
    "日本語のテキストです。 中文文本测试 🎉",
    "a plot... not bad / really #1 <br />the acting\nand the film",
    "  it was good \\n and fine  ",
]


def make_corpus(size: int = 300) -> list[str]:
    """Short texts: English sentences with capitals, shouting and repetitions, plus the non-Latin samples."""
    generator = random.Random(0)
    texts = []
    for index in range(size):
        words = [generator.choice(ENGLISH) for _ in range(generator.randint(5, 14))]
        if index % 5 == 0:
            words[generator.randrange(len(words))] = generator.choice(ENGLISH).upper()
        text = " ".join(words).capitalize() + generator.choice([".", "!!!", "?", " 😀", f" {index}."])
        texts.append(text)
    return texts + SAMPLES * 10


CORPUS = make_corpus()


@pytest.fixture(scope="module", params=SUBWORD)
def subword_tokenizer(request):
    return AwdLstmTokenizer.train(CORPUS, tokenizer_type=request.param, vocab_size=300)


def test_special_tokens_keep_fastai_ids(subword_tokenizer):
    assert subword_tokenizer.convert_ids_to_tokens(list(range(9))) == SPECIAL_TOKENS
    assert (subword_tokenizer.unk_token_id, subword_tokenizer.pad_token_id, subword_tokenizer.bos_token_id) == (
        0,
        1,
        2,
    )
    assert subword_tokenizer("a film").input_ids[0] == 2
    assert subword_tokenizer.suppress_token_ids == [0, 1]
    assert 100 < len(subword_tokenizer) <= 300


@pytest.mark.parametrize("tokenizer_type", SUBWORD)
def test_training_twice_gives_the_same_ids(tokenizer_type):
    first, second = (AwdLstmTokenizer.train(CORPUS, tokenizer_type=tokenizer_type, vocab_size=300) for _ in range(2))
    assert first.get_vocab() == second.get_vocab()
    assert first(SAMPLES).input_ids == second(SAMPLES).input_ids


def test_rule_markers_are_whole_tokens(subword_tokenizer):
    tokens = subword_tokenizer.tokenize("The movie was GREAT!!! Sooo good")
    # ("Sooo" is "S xxrep 3 o" first, and a one-letter capital gets no marker, as in fastai)
    assert [token for token in tokens if "xx" in token] == ["xxmaj", "xxup", "xxrep", "xxrep"]
    ids = subword_tokenizer("The film WAS good!!!").input_ids
    assert {5, 7, 8} <= set(ids)  # xxrep, xxup, xxmaj


@pytest.mark.parametrize("text", SAMPLES)
def test_any_script_and_emoji_round_trip_without_xxunk(subword_tokenizer, text):
    ids = subword_tokenizer(text).input_ids
    assert subword_tokenizer.unk_token_id not in ids
    assert subword_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_decode_keeps_special_tokens_unless_skipped_and_continuations_start_with_a_space(subword_tokenizer):
    ids = subword_tokenizer("Good film").input_ids
    assert subword_tokenizer.decode(ids) == "xxbos Good film"
    assert subword_tokenizer.decode(subword_tokenizer("a good film", add_special_tokens=False).input_ids) == (
        " a good film"
    )
    assert subword_tokenizer.decode(ids[1:]) == " Good film"  # a marker starts a word


def test_capitals_of_any_script_are_marked_while_the_word_path_keeps_fastais_rules():
    assert apply_rules_any_script("Привет МИР École ΟΔΟΣ I") == "xxmaj привет xxup мир xxmaj école xxup οδος i"
    assert apply_rules("Привет МИР École Hello") == "привет мир école xxmaj hello"
    assert apply_rules_any_script("The movie was GREAT!!!") == apply_rules("The movie was GREAT!!!")


def test_backwards_reverses_ids_and_pads_on_the_left(subword_tokenizer):
    backward = AwdLstmTokenizer(
        tokenizer_type=subword_tokenizer.tokenizer_type,
        tokenizer_object=subword_tokenizer.backend_tokenizer,
        backwards=True,
    )
    text = "The movie was GREAT!!! 😀"
    assert backward(text).input_ids == subword_tokenizer(text).input_ids[::-1]
    batch = backward([text, "A film."], padding=True, return_tensors="pt")
    assert batch.input_ids[1, 0] == backward.pad_token_id and batch.attention_mask[1, 0] == 0
    assert backward.decode(batch.input_ids[0], skip_special_tokens=True) == text


def test_batches_pad_on_the_left_and_pairs_join_with_xxfld(subword_tokenizer):
    batch = subword_tokenizer(["A film.", "The movie was really very good."], padding=True, return_tensors="pt")
    assert batch.input_ids.shape[0] == 2 and batch.input_ids[0, 0] == 1 and batch.attention_mask[0, 0] == 0
    assert batch.input_ids[1, 0] == 2 and batch.attention_mask[1].all()
    single = subword_tokenizer("A film.").input_ids
    pair = subword_tokenizer("A film.", "Good.").input_ids
    assert pair[: len(single)] == single and pair[len(single)] == 4  # xxfld
    assert subword_tokenizer("A film.", max_length=3, truncation=True).input_ids == single[:3]


def test_save_and_reload_gives_identical_ids_from_a_tokenizer_json(tmp_path, subword_tokenizer):
    subword_tokenizer.save_pretrained(tmp_path)
    names = {path.name for path in tmp_path.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "subword_awd_lstm.py"} <= names and "vocab.json" not in names
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_type"] == subword_tokenizer.tokenizer_type
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(reloaded, AwdLstmTokenizer) and reloaded.tokenizer_type == subword_tokenizer.tokenizer_type
    expected = subword_tokenizer(SAMPLES + CORPUS[:20]).input_ids
    assert reloaded(SAMPLES + CORPUS[:20]).input_ids == expected
    assert reloaded.batch_decode(expected) == subword_tokenizer.batch_decode(expected)


def test_tokenizer_json_alone_is_the_tokenizer_on_lower_case_text(tmp_path, subword_tokenizer):
    subword_tokenizer.save_pretrained(tmp_path)
    alone = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for text in LOWER_CASE:
        assert alone.encode(text).ids == subword_tokenizer(text).input_ids, text
    # where Python's rules act, the file gives no markers
    assert 8 in subword_tokenizer("The film").input_ids and 8 not in alone.encode("The film").ids


@pytest.mark.parametrize(
    "text",
    [
        "AT&AMP;T &amp; &lt;br /&gt; &#35;39; <BR /> <UNK> Wait... .... ......",
        "a/b#c\\d \\n x  @.@  y //// ### NBSP; QUOT;",
        "Ω ΣΟΦΟΣ İstanbul ǅemal ﬁne ÉCOLE Straße",
        "\n\n  The end.\n\nNext   line\t\tHERE  ",
    ],
)
def test_the_normalizer_changes_nothing_the_python_rules_produced(text):
    processed = apply_rules_any_script(text)
    assert build_normalizer().normalize_str(processed) == processed


def test_the_fast_encoding_path_gives_the_full_backends_ids(subword_tokenizer):
    # the encoding path skips the normalizer steps that repeat the Python rules: the ids must not change
    texts = [*ENGLISH, *SAMPLES, "  spaces  at both ends  ", "End.\n\nThe NEXT one", "a/b#c <br /> &amp; ... z"]
    rules_applied = [subword_tokenizer._split_text(text) for text in texts]
    full = subword_tokenizer._tokenizer.encode_batch(rules_applied, add_special_tokens=False)
    expected = [[subword_tokenizer.bos_token_id, *encoding.ids] for encoding in full]
    if subword_tokenizer.backwards:
        expected = [ids[::-1] for ids in expected]
    assert subword_tokenizer(texts).input_ids == expected


def test_pre_split_words_go_through_the_rules_as_the_text_does(subword_tokenizer):
    text = "The MOVIE was grand , Привет мир 🎬"
    words = subword_tokenizer(text.split(), is_split_into_words=True).input_ids
    assert words == subword_tokenizer(text).input_ids
    assert subword_tokenizer.convert_ids_to_tokens(words)[:2] == ["xxbos", "xxmaj"]


def test_added_tokens_are_kept_whole(subword_tokenizer):
    tokenizer = AwdLstmTokenizer(
        tokenizer_type=subword_tokenizer.tokenizer_type, tokenizer_object=subword_tokenizer.backend_tokenizer
    )
    tokenizer.add_tokens(["zzfilm"])
    ids = tokenizer("A zzfilm, Good").input_ids
    assert tokenizer.convert_tokens_to_ids("zzfilm") in ids and 8 in ids


def test_train_new_from_iterator_keeps_the_type(subword_tokenizer):
    new = subword_tokenizer.train_new_from_iterator(CORPUS[:200], vocab_size=150)
    assert new.tokenizer_type == subword_tokenizer.tokenizer_type and len(new) <= 150
    assert new.convert_ids_to_tokens(list(range(9))) == SPECIAL_TOKENS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokenizer_type": "wordpiece"}, "tokenizer_type"),
        ({"tokenizer_type": "unigram", "vocab_size": 9}, "vocab_size"),
        ({"tokenizer_type": "bpe", "vocab_size": "300"}, "vocab_size"),
        ({"tokenizer_type": "bpe", "vocab_size": True}, "vocab_size"),
        ({"tokenizer_type": "unigram", "max_vocab": 300}, "max_vocab"),
        ({"vocab_size": 300}, "vocab_size"),
    ],
)
def test_bad_settings_raise_value_errors_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AwdLstmTokenizer.train(CORPUS[:20], **kwargs)


def test_a_unigram_vocabulary_too_small_for_the_characters_names_the_size_to_use():
    texts = ["Hello World, this is a test of the tokenizer. " * 3, "Another SENTENCE here!!! ok"] * 50
    with pytest.raises(ValueError, match=r"vocab_size=60 is too small .* 72 characters .* at least 81"):
        AwdLstmTokenizer.train(texts, tokenizer_type="unigram", vocab_size=60)
    assert len(AwdLstmTokenizer.train(texts, tokenizer_type="unigram", vocab_size=81)) == 81


@pytest.mark.parametrize("texts", [[], ["", "  \n "]])
def test_training_on_empty_texts_is_refused(texts):
    with pytest.raises(ValueError, match="`texts` is empty"):
        AwdLstmTokenizer.train(texts, tokenizer_type="unigram", vocab_size=100)


def test_bad_texts_and_files_are_refused(tmp_path, subword_tokenizer):
    with pytest.raises(TypeError, match="item 1"):
        AwdLstmTokenizer.train(["a film", 3], tokenizer_type="bpe", vocab_size=100)
    with pytest.raises(ValueError, match="tokenizer.json"):
        AwdLstmTokenizer(tokenizer_type="unigram", name_or_path=str(tmp_path))
    subword_tokenizer.save_pretrained(tmp_path)
    other = "bpe" if subword_tokenizer.tokenizer_type == "unigram" else "unigram"
    with pytest.raises(ValueError, match="tokenizer_type"):
        AwdLstmTokenizer(tokenizer_type=other, tokenizer_file=str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="tokenizer_type"):  # a subword file read as a word-level one
        AwdLstmTokenizer(tokenizer_file=str(tmp_path / "tokenizer.json"))


def test_a_tiny_language_model_trains_a_step_on_the_subword_vocabulary(subword_tokenizer):
    torch.manual_seed(0)
    config = AwdLstmConfig(vocab_size=len(subword_tokenizer), embedding_size=16, hidden_size=24, num_hidden_layers=2)
    model = AwdLstmForCausalLM(config)
    batch = subword_tokenizer(CORPUS[:4], padding=True, return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = model(batch.input_ids, attention_mask=batch.attention_mask, labels=batch.input_ids).loss
    first.backward()
    optimizer.step()
    optimizer.zero_grad()
    model.eval()
    after = model(batch.input_ids, attention_mask=batch.attention_mask, labels=batch.input_ids).loss
    assert torch.isfinite(first) and after < first


def test_a_classifier_runs_through_the_text_classification_pipeline(tmp_path, subword_tokenizer):
    torch.manual_seed(0)
    config = AwdLstmConfig(
        vocab_size=len(subword_tokenizer),
        embedding_size=16,
        hidden_size=24,
        num_hidden_layers=2,
        id2label={0: "negative", 1: "positive"},
    )
    AwdLstmForSequenceClassification(config).save_pretrained(tmp_path)
    subword_tokenizer.save_pretrained(tmp_path)
    classify = pipeline("text-classification", model=str(tmp_path))
    results = classify(SAMPLES)
    assert [sorted(result) for result in results] == [["label", "score"]] * len(SAMPLES)
    assert {result["label"] for result in results} <= {"negative", "positive"}


# Run by `run_without_ulmfit`, in a fresh interpreter in which any import of `ulmfit` fails.
LOAD_WITH_REMOTE_CODE = """
    import json, sys
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts, results = json.loads(sys.argv[1]), []
    for folder in sys.argv[2:]:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
        ids = tokenizer(texts).input_ids
        results.append({
            "modules": sorted({type(tokenizer).__module__.split(".")[0], type(model).__module__.split(".")[0]}),
            "tokenizer_type": tokenizer.tokenizer_type,
            "input_ids": ids,
            "decoded": tokenizer.batch_decode(ids, skip_special_tokens=True),
        })
    print(json.dumps(results))
"""


def test_saved_subword_models_load_through_remote_code_without_ulmfit(tmp_path, run_without_ulmfit):
    tokenizers = [AwdLstmTokenizer.train(CORPUS, tokenizer_type=kind, vocab_size=300) for kind in SUBWORD]
    for tokenizer in tokenizers:
        config = AwdLstmConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=24, num_hidden_layers=2)
        AwdLstmForCausalLM(config).save_pretrained(tmp_path / tokenizer.tokenizer_type)
        tokenizer.save_pretrained(tmp_path / tokenizer.tokenizer_type)
    children = run_without_ulmfit(LOAD_WITH_REMOTE_CODE, json.dumps(SAMPLES), *(tmp_path / kind for kind in SUBWORD))
    for tokenizer, child in zip(tokenizers, children, strict=True):
        assert child["modules"] == ["transformers_modules"]
        assert child["tokenizer_type"] == tokenizer.tokenizer_type
        assert child["input_ids"] == tokenizer(SAMPLES).input_ids
        assert child["decoded"] == SAMPLES


# ----------------------------------------------------------------------------------------------------------------
# The scripts


def run_script(name: str, args: list, monkeypatch) -> None:
    """scripts/<name>.py's main() with these arguments, in this process (as tests/scripts' `load_script`)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *map(str, args)])
    try:
        module.main()
    finally:  # the next run builds its own Accelerator
        AcceleratorState._reset_state(reset_partial_state=True)


TINY = [
    *("--config_overrides", "embedding_size=16,hidden_size=32,num_hidden_layers=2"),
    *("--per_device_train_batch_size", 4, "--per_device_eval_batch_size", 4, "--bptt", 12, "--logging_steps", 2),
]


def test_train_language_model_trains_a_unigram_tokenizer_and_a_tiny_lm(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS[:150]), encoding="utf-8")
    out = tmp_path / "out"
    steps = ["--train_file", corpus, "--max_train_steps", 2]
    run_script(
        "train_language_model",
        [*steps, "--output_dir", out, *TINY, "--tokenizer_type", "unigram", "--vocab_size", 300],
        monkeypatch,
    )
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_type"] == "unigram"
    assert (out / "tokenizer.json").is_file() and not (out / "vocab.json").exists()
    tokenizer, model = AutoTokenizer.from_pretrained(out), AutoModelForCausalLM.from_pretrained(out)
    assert tokenizer.tokenizer_type == "unigram" and model.config.vocab_size == len(tokenizer) <= 300
    assert json.loads((out / "all_results.json").read_text())["train_steps"] == 2
    # the demo's subword path: fine-tune a word-level model with a new BPE vocabulary, embeddings matched by token
    base, tuned = tmp_path / "word", tmp_path / "tuned"
    run_script("train_language_model", [*steps, "--output_dir", base, *TINY, "--max_vocab", 200], monkeypatch)
    run_script(
        "train_language_model",
        [*steps, "--output_dir", tuned, "--model_name_or_path", base, *TINY[2:]]
        + ["--train_tokenizer", "--tokenizer_type", "bpe", "--vocab_size", 200],
        monkeypatch,
    )
    tokenizer, model = AutoTokenizer.from_pretrained(tuned), AutoModelForCausalLM.from_pretrained(tuned)
    assert tokenizer.tokenizer_type == "bpe" and model.config.vocab_size == len(tokenizer)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tokenizer_type", "wordpiece"], "--tokenizer_type"),
        (["--tokenizer_type", "bpe", "--vocab_size", 5], "--vocab_size"),
        (["--tokenizer_type", "bpe", "--tokenizer_name", "somewhere"], "--tokenizer_name"),
    ],
)
def test_train_language_model_checks_the_tokenizer_flags(tmp_path, monkeypatch, flags, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS[:20]), encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        run_script(
            "train_language_model", ["--train_file", corpus, "--output_dir", tmp_path / "o", *flags], monkeypatch
        )
    assert not (tmp_path / "o").exists()


def test_the_demo_accepts_the_tokenizer_flags():
    spec = importlib.util.spec_from_file_location("demo", SCRIPTS / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    args = demo.parse_args(["--tokenizer_type", "unigram", "--vocab_size", 300])
    assert (args.tokenizer_type, args.vocab_size) == ("unigram", 300)
    assert demo.parse_args([]).tokenizer_type == "word"
    with pytest.raises(UsageError, match="--vocab_size"):
        demo.check_arguments(demo.parse_args(["--vocab_size", 3]))
