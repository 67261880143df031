"""A saved DeViSE folder must load where `ulmfit` is not importable, through transformers' remote code alone."""

import json

import torch
from devise_fixtures import random_images


LABELS = ["goldfish", "fire salamander", "engine + boat"]

# Run by `run_without_ulmfit`, in a fresh interpreter in which any import of `ulmfit` fails.
CHILD = """
    import json, sys
    import torch
    from transformers import AutoModel, AutoProcessor, pipeline

    folder, image_path, labels = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**processor(images=[image_path], text=labels)).logits_per_image
    classifier = pipeline("zero-shot-image-classification", model=folder, trust_remote_code=True)
    print(json.dumps({
        "classes": [type(model).__name__, type(processor).__name__, type(processor.tokenizer).__name__],
        "modules": sorted({type(model).__module__.split(".")[0], type(processor).__module__.split(".")[0]}),
        "ulmfit_loaded": any(name.startswith("ulmfit") for name in sys.modules),
        "logits": logits.tolist(),
        "zero_shot": classifier(image_path, candidate_labels=labels),
    }))
"""


def test_saved_folder_has_remote_code_files(saved_devise):
    names = {path.name for path in saved_devise.iterdir()}
    assert {"configuration_devise.py", "modeling_devise.py", "modeling_efficientnet_lite.py"} <= names
    assert {"tokenization_devise.py", "image_processing_devise.py", "processing_devise.py"} <= names
    auto_map = json.loads((saved_devise / "config.json").read_text())["auto_map"]
    assert set(auto_map) >= {"AutoConfig", "AutoModel", "AutoModelForZeroShotImageClassification"}


def test_saved_folder_loads_without_ulmfit_with_identical_outputs(
    saved_devise, tiny_model, processor, tmp_path, run_without_ulmfit
):
    image_path = tmp_path / "query.png"
    random_images(1)[0].save(image_path)
    child = run_without_ulmfit(CHILD, saved_devise, image_path, json.dumps(LABELS))

    assert child["classes"] == ["DeviseModel", "DeviseProcessor", "DeviseTokenizer"]
    assert child["modules"] == ["transformers_modules"] and not child["ulmfit_loaded"]
    with torch.no_grad():
        expected = tiny_model(**processor(images=[str(image_path)], text=LABELS)).logits_per_image
    torch.testing.assert_close(torch.tensor(child["logits"]), expected, rtol=0, atol=1e-5)
    assert [result["label"] for result in child["zero_shot"]] == [
        LABELS[index] for index in expected[0].argsort(descending=True).tolist()
    ]
