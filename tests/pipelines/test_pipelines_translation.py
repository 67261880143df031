import json

import pytest
import torch
from transformers import AutoConfig, BartConfig, BartForConditionalGeneration, pipeline

from ulmfit import GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration, GruSeq2SeqTokenizer, TranslationPipeline


SOURCES = ["Je suis fatigué.", "Où est la gare ?", "Tom est très têtu.", "Elle a un chat noir.", "J'ai faim."]
TARGETS = ["I'm tired.", "Where is the station?", "Tom is very stubborn.", "She has a black cat.", "I'm hungry."]


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    """A tiny translator trained for a moment on five pairs, saved as a user would save it."""
    tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    config = GruSeq2SeqConfig(
        vocab_size=tokenizer.vocab_size,
        decoder_vocab_size=tokenizer.target_vocab_size,
        embedding_size=24,
        hidden_size=16,
    )
    torch.manual_seed(0)
    model = GruSeq2SeqForConditionalGeneration(config)
    batch = tokenizer(SOURCES, text_target=TARGETS, padding=True, return_tensors="pt")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    folder = tmp_path_factory.mktemp("translator")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


def translate_one_by_one(model, tokenizer, texts, **generate_kwargs):
    outputs = []
    for text in texts:
        generated = model.generate(**tokenizer(text, return_tensors="pt"), **generate_kwargs)
        outputs.append(tokenizer.decode(generated[0], skip_special_tokens=True))
    return outputs


def test_translation_pipeline_from_a_saved_folder(translator):
    folder, model, tokenizer = translator
    pipe = pipeline("translation", model=str(folder))
    assert type(pipe).__name__ == "TranslationPipeline"
    result = pipe(SOURCES[:2], max_new_tokens=10)
    assert json.loads(json.dumps(result)) == result  # plain JSON-able Python
    assert result == [
        {"translation_text": text} for text in translate_one_by_one(model, tokenizer, SOURCES[:2], max_new_tokens=10)
    ]


def test_batched_translation_preserves_order(translator):
    folder, model, tokenizer = translator
    pipe = pipeline("translation", model=str(folder))
    texts = [SOURCES[4], SOURCES[0], "Tom a faim.", SOURCES[2], SOURCES[1]]
    batched = pipe(texts, batch_size=3, max_new_tokens=10)
    alone = [pipe(text, max_new_tokens=10)[0] for text in texts]
    assert batched == alone
    assert [item["translation_text"] for item in batched] == translate_one_by_one(
        model, tokenizer, texts, max_new_tokens=10
    )
    assert len({item["translation_text"] for item in batched}) > 1


def test_single_sentence_blank_sentence_and_several_returns(translator):
    folder, _, _ = translator
    pipe = pipeline("translation", model=str(folder), num_beams=2)
    assert pipe(SOURCES[0]) == [{"translation_text": TARGETS[0]}]
    assert pipe(["", SOURCES[0], "  "], batch_size=3) == [
        {"translation_text": ""},
        {"translation_text": TARGETS[0]},
        {"translation_text": ""},
    ]
    several = pipe(SOURCES[:2], num_return_sequences=2)
    assert [len(translations) for translations in several] == [2, 2]


def test_a_long_sentence_translates_within_the_default_length(translator):
    folder, _, _ = translator
    pipe = pipeline("translation", model=str(folder))
    text = " ".join(["Tom est très têtu."] * 100)  # 500 words
    translation = pipe(text)[0]["translation_text"]
    assert isinstance(translation, str) and len(translation.split()) <= 2 * 601 + 10


def test_the_package_class_works_without_remote_code(translator):
    folder, model, tokenizer = translator
    pipe = pipeline("translation", model=str(folder), pipeline_class=TranslationPipeline)
    assert type(pipe) is TranslationPipeline and type(pipe.model) is GruSeq2SeqForConditionalGeneration
    direct = TranslationPipeline(model=model, tokenizer=tokenizer)
    assert pipe(SOURCES[:3], batch_size=2) == direct(SOURCES[:3]) == [{"translation_text": t} for t in TARGETS[:3]]


def test_the_folder_names_the_pipeline_for_remote_code_and_the_package_serves_it_itself(translator):
    folder, _, _ = translator
    saved = json.loads((folder / "config.json").read_text())["custom_pipelines"]
    assert saved == {"translation": {"impl": "translation.TranslationPipeline", "pt": ["AutoModelForSeq2SeqLM"]}}
    assert "from transformers import Pipeline" in (folder / "translation.py").read_text()
    # the installed package's config leaves the entry out: `pipeline()` would otherwise insist on remote code
    assert not hasattr(AutoConfig.from_pretrained(folder), "custom_pipelines")
    for trust_remote_code in (None, False, True):  # an installed package's classes win over the folder's copies
        pipe = pipeline("translation", model=str(folder), trust_remote_code=trust_remote_code)
        assert type(pipe) is TranslationPipeline and type(pipe.model) is GruSeq2SeqForConditionalGeneration


def test_other_seq2seq_models_get_the_removed_translation_task_back(translator):
    _, _, tokenizer = translator
    config = BartConfig(
        vocab_size=max(tokenizer.vocab_size, tokenizer.target_vocab_size),
        d_model=8,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=8,
        decoder_ffn_dim=8,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = BartForConditionalGeneration(config).eval()
    pipe = pipeline("translation", model=model, tokenizer=tokenizer)
    assert type(pipe) is TranslationPipeline
    result = pipe(SOURCES[:2], max_new_tokens=3)
    assert [list(item) for item in result] == [["translation_text"]] * 2
    assert all(isinstance(item["translation_text"], str) for item in result)


def test_pipeline_save_pretrained_names_the_pipeline(translator, tmp_path):
    _, model, tokenizer = translator
    TranslationPipeline(model=model, tokenizer=tokenizer).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["custom_pipelines"]["translation"]["impl"] == "translation.TranslationPipeline"
    assert (tmp_path / "translation.py").exists()


def test_non_text_inputs_are_rejected(translator):
    _, model, tokenizer = translator
    with pytest.raises(TypeError, match="str"):
        TranslationPipeline(model=model, tokenizer=tokenizer)([SOURCES[0], 42])
