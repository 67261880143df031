"""A saved folder must load where `ulmfit` is not importable, through transformers' remote code alone."""

import json

import torch


TEXTS = ["The movie was GREAT!!! I loved it.", "I didn't like the ending."]

# Run by `run_without_ulmfit`, in a fresh interpreter in which any import of `ulmfit` fails.
CHILD = """
    import json, sys
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    folder, texts = sys.argv[1], json.loads(sys.argv[2])
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    encoder = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    generated = model.generate(**batch, max_new_tokens=5, do_sample=False)
    print(json.dumps({
        "classes": [type(tokenizer).__name__, type(model).__name__, type(encoder).__name__],
        "modules": sorted({type(model).__module__.split(".")[0], type(tokenizer).__module__.split(".")[0]}),
        "ulmfit_loaded": any(name.startswith("ulmfit") for name in sys.modules),
        "input_ids": batch.input_ids.tolist(),
        "logits": logits.tolist(),
        "generated": generated.tolist(),
        "decoded": tokenizer.decode(batch.input_ids[0], skip_special_tokens=True),
    }))
"""


def test_saved_folder_has_remote_code_files(saved_lm):
    names = {path.name for path in saved_lm.iterdir()}
    assert {"configuration_awd_lstm.py", "modeling_awd_lstm.py", "tokenization_awd_lstm.py"} <= names
    assert "text_processing_awd_lstm.py" in names
    auto_map = json.loads((saved_lm / "config.json").read_text())["auto_map"]
    assert set(auto_map) >= {"AutoConfig", "AutoModel", "AutoModelForCausalLM"}


def test_saved_folder_loads_without_ulmfit_with_identical_outputs(saved_lm, tiny_model, tokenizer, run_without_ulmfit):
    child = run_without_ulmfit(CHILD, saved_lm, json.dumps(TEXTS))

    assert child["classes"] == ["AwdLstmTokenizer", "AwdLstmForCausalLM", "AwdLstmModel"]
    assert child["modules"] == ["transformers_modules"] and not child["ulmfit_loaded"]
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert child["input_ids"] == batch.input_ids.tolist()
    with torch.no_grad():
        expected = tiny_model(**batch).logits
    torch.testing.assert_close(torch.tensor(child["logits"]), expected, rtol=0, atol=1e-6)
    expected_generation = tiny_model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert child["generated"] == expected_generation.tolist()
    assert child["decoded"] == tokenizer.decode(batch.input_ids[0], skip_special_tokens=True)
