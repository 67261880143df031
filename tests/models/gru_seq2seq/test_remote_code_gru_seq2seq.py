"""A saved translator must load, generate and translate where `ulmfit` is not importable (remote code only)."""

import json

import pytest
import torch
from gru_seq2seq_fixtures import SOURCES
from transformers.pipelines import PIPELINE_REGISTRY


# Run by `run_without_ulmfit`, in a fresh interpreter in which any import of `ulmfit` fails.
CHILD = """
    import json, sys
    import torch
    from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    folder, texts = sys.argv[1], json.loads(sys.argv[2])
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True).eval()
    base = AutoModel.from_pretrained(folder, trust_remote_code=True)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=torch.full((len(texts), 1), 2)).logits
    translator = pipeline("translation", model=folder, trust_remote_code=True)
    print(json.dumps({
        "classes": [type(tokenizer).__name__, type(model).__name__, type(base).__name__, type(translator).__name__],
        "modules": sorted({type(o).__module__.split(".")[0] for o in (tokenizer, model, translator)}),
        "ulmfit_loaded": any(name.startswith("ulmfit") for name in sys.modules),
        "input_ids": batch.input_ids.tolist(),
        "logits": logits.tolist(),
        "greedy": model.generate(**batch, max_new_tokens=8).tolist(),
        "beam": model.generate(**batch, num_beams=3, max_new_tokens=8).tolist(),
        "translations": translator(texts, batch_size=2, max_new_tokens=8),
    }))
"""


@pytest.fixture
def saved_translator(trained_model, tmp_path):
    model, tokenizer = trained_model
    folder = tmp_path / "tiny-fr-en"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_saved_folder_has_remote_code_and_the_translation_pipeline(saved_translator):
    names = {path.name for path in saved_translator.iterdir()}
    expected = {"configuration_gru_seq2seq.py", "modeling_gru_seq2seq.py", "tokenization_gru_seq2seq.py"}
    assert expected | {"text_processing_gru_seq2seq.py", "translation.py"} <= names
    assert {"source_vocab.json", "target_vocab.json", "model.safetensors", "generation_config.json"} <= names
    config = json.loads((saved_translator / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForSeq2SeqLM"}
    assert config["custom_pipelines"] == {
        "translation": {"impl": "translation.TranslationPipeline", "pt": ["AutoModelForSeq2SeqLM"]}
    }
    tokenizer_config = json.loads((saved_translator / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"]["AutoTokenizer"][0] == "tokenization_gru_seq2seq.GruSeq2SeqTokenizer"


def test_saving_without_a_registered_pipeline_drops_the_entry(trained_model, tmp_path, monkeypatch):
    model, _ = trained_model
    model.config.custom_pipelines = {"translation": {"impl": "translation.TranslationPipeline", "pt": []}}
    monkeypatch.delitem(PIPELINE_REGISTRY.supported_tasks, "translation")
    try:
        model.save_pretrained(tmp_path)
    finally:
        vars(model.config).pop("custom_pipelines", None)
    assert "custom_pipelines" not in json.loads((tmp_path / "config.json").read_text())
    assert not (tmp_path / "translation.py").exists()


def test_the_base_model_is_saved_without_the_translation_pipeline(trained_model, tmp_path):
    model, _ = trained_model
    model.config.custom_pipelines = {"translation": {"impl": "translation.TranslationPipeline", "pt": []}}
    model.model.save_pretrained(tmp_path)  # the base model shares the translator's config
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_gru_seq2seq.GruSeq2SeqModel"
    assert "custom_pipelines" not in config and not (tmp_path / "translation.py").exists()


def test_saved_folder_works_without_ulmfit(saved_translator, trained_model, run_without_ulmfit):
    model, tokenizer = trained_model
    texts = SOURCES[:3]
    child = run_without_ulmfit(CHILD, saved_translator, json.dumps(texts))

    assert child["classes"] == [
        "GruSeq2SeqTokenizer",
        "GruSeq2SeqForConditionalGeneration",
        "GruSeq2SeqModel",
        "TranslationPipeline",
    ]
    assert child["modules"] == ["transformers_modules"] and not child["ulmfit_loaded"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert child["input_ids"] == batch.input_ids.tolist()
    with torch.no_grad():
        expected = model(**batch, decoder_input_ids=torch.full((3, 1), 2)).logits
    torch.testing.assert_close(torch.tensor(child["logits"]), expected, rtol=0, atol=1e-6)
    assert child["greedy"] == model.generate(**batch, max_new_tokens=8).tolist()
    assert child["beam"] == model.generate(**batch, num_beams=3, max_new_tokens=8).tolist()
    expected_texts = tokenizer.batch_decode(model.generate(**batch, max_new_tokens=8), skip_special_tokens=True)
    assert child["translations"] == [{"translation_text": text} for text in expected_texts]
