"""Every pipeline of a saved folder works with the package (no remote code) and, with the same results, where the
package is missing (`trust_remote_code=True`); `import ulmfit` adds pipelines without changing transformers' own."""

import inspect
import json
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, ResNetConfig, pipeline
from transformers.pipelines import PIPELINE_REGISTRY, REMOVED_TASKS

from ulmfit import (
    AwdLstmConfig,
    AwdLstmForSequenceClassification,
    DeviseConfig,
    DeviseImageProcessor,
    DeviseIndex,
    DeviseModel,
    DeviseProcessor,
    DeviseTokenizer,
    GruSeq2SeqConfig,
    GruSeq2SeqForConditionalGeneration,
    GruSeq2SeqPreTrainedModel,
    GruSeq2SeqTokenizer,
    ImageSearchPipeline,
    TranslationPipeline,
)
from ulmfit.pipelines import register_custom_pipeline
from ulmfit.pipelines.registration import save_pipeline_code


# What transformers' pipeline registry holds, printed before and after `import ulmfit` in a fresh interpreter
SNAPSHOT = """
import json, sys
from transformers.pipelines import PIPELINE_REGISTRY, REMOVED_TASKS

def name(impl):  # a class, or the dotted path of one
    return impl if isinstance(impl, str) else f"{impl.__module__}.{impl.__name__}"

def snapshot():
    tasks = {
        task: [name(entry["impl"]), [name(c) for c in entry["pt"]]]
        for task, entry in PIPELINE_REGISTRY.supported_tasks.items()
    }
    return {"tasks": tasks, "aliases": dict(PIPELINE_REGISTRY.task_aliases), "removed": sorted(REMOVED_TASKS)}

before = snapshot()
import ulmfit
print(json.dumps({"before": before, "after": snapshot()}))
"""


def test_importing_ulmfit_only_adds_tasks_to_transformers():
    result = subprocess.run([sys.executable, "-c", SNAPSHOT], capture_output=True, text=True, check=True, timeout=300)
    snapshot = json.loads(result.stdout.strip().splitlines()[-1])
    before, after = snapshot["before"], snapshot["after"]

    assert {task: after["tasks"][task] for task in before["tasks"]} == before["tasks"]  # text-classification too
    assert set(after["tasks"]) - set(before["tasks"]) == {"translation", "image-search"}
    assert after["tasks"]["translation"] == [
        "ulmfit.pipelines.translation.TranslationPipeline",
        ["transformers.models.auto.modeling_auto.AutoModelForSeq2SeqLM"],
    ]
    assert after["tasks"]["image-search"] == [
        "ulmfit.pipelines.image_search.ImageSearchPipeline",
        ["transformers.models.auto.modeling_auto.AutoModel"],
    ]
    assert after["aliases"] == before["aliases"]
    assert after["removed"] == [task for task in before["removed"] if task != "translation"]
    assert "translation" in before["removed"]


def test_registering_again_changes_nothing():
    save_pretrained = GruSeq2SeqForConditionalGeneration.save_pretrained
    register_custom_pipeline("translation", TranslationPipeline, GruSeq2SeqPreTrainedModel, AutoModelForSeq2SeqLM)
    assert GruSeq2SeqForConditionalGeneration.save_pretrained is save_pretrained
    assert PIPELINE_REGISTRY.supported_tasks["translation"]["impl"] is TranslationPipeline
    assert "translation" not in REMOVED_TASKS


def test_saving_leaves_the_live_config_as_it_was(tmp_path):
    model = GruSeq2SeqForConditionalGeneration(
        GruSeq2SeqConfig(vocab_size=12, decoder_vocab_size=10, embedding_size=4, hidden_size=4)
    )
    model.save_pretrained(tmp_path / "plain")
    assert "custom_pipelines" not in vars(model.config)
    model.config.custom_pipelines = {"summarization": {"impl": "summary.SummaryPipeline", "pt": []}}
    model.save_pretrained(tmp_path / "with-another")
    assert model.config.custom_pipelines == {"summarization": {"impl": "summary.SummaryPipeline", "pt": []}}
    saved = json.loads((tmp_path / "with-another" / "config.json").read_text())["custom_pipelines"]
    assert set(saved) == {"summarization", "translation"}  # another package's entry is kept beside ours


def test_models_without_a_registered_pipeline_are_saved_without_one(tmp_path, tiny_config):
    AwdLstmForSequenceClassification(tiny_config).save_pretrained(tmp_path)
    assert "custom_pipelines" not in json.loads((tmp_path / "config.json").read_text())


def test_pipeline_code_is_written_with_sibling_imports(tmp_path):
    written = save_pipeline_code(ImageSearchPipeline, tmp_path)
    names = {path.name for path in written}
    assert names == {"image_search.py", "image_processing_devise.py", "index_devise.py", "compatibility.py"}
    code = (tmp_path / "image_search.py").read_text()
    assert "from .image_processing_devise import open_image" in code and "from .." not in code
    written = save_pipeline_code(TranslationPipeline, tmp_path / "t")
    assert [path.name for path in written] == ["translation.py", "compatibility.py"]


def test_a_pipeline_importing_a_package_cannot_be_written(tmp_path):
    module = tmp_path / "pkg" / "pipelines"
    module.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "models").mkdir()
    (tmp_path / "pkg" / "models" / "__init__.py").write_text("VALUE = 1\n")
    (module / "__init__.py").write_text("")
    (module / "search.py").write_text(
        "from transformers import Pipeline\n\nfrom ..models import VALUE\n\n\nclass Search(Pipeline):\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        from pkg.pipelines.search import Search

        with pytest.raises(ValueError, match="pkg.models"):
            save_pipeline_code(Search, tmp_path / "out")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == "pkg" or name.startswith("pkg.")]:
            del sys.modules[name]


def test_a_package_config_leaves_out_only_the_entries_for_the_pipelines_it_registers():
    ours = {"impl": "translation.TranslationPipeline", "pt": ["AutoModelForSeq2SeqLM"]}
    theirs = {"impl": "summary.SummaryPipeline", "pt": []}
    config = GruSeq2SeqConfig(custom_pipelines={"translation": ours, "summarization": theirs})
    assert config.custom_pipelines == {"summarization": theirs}
    other_translation = {"impl": "their_translation.TranslationPipeline", "pt": []}  # not the registered class
    assert GruSeq2SeqConfig(custom_pipelines={"translation": other_translation}).custom_pipelines == {
        "translation": other_translation
    }
    assert not hasattr(GruSeq2SeqConfig(custom_pipelines={"translation": ours}), "custom_pipelines")


# --- one saved folder per model, each pipeline run with the package here and without it in a child ------------------
SOURCES = ["Je suis fatigué.", "Où est la gare ?", "Elle a un chat noir."]
TARGETS = ["I'm tired.", "Where is the station?", "She has a black cat."]
DOCUMENTS = ["Good.", "The story was not good but the acting was great. " * 3, "", "Bad film."]
PROMPTS = ["I loved", "The music was beautiful and"]
WORDS = ["goldfish", "fire", "salamander", "boat", "engine", "ship", "cat", "dog"]
LABELS = ["goldfish", "fire salamander", "engine + boat"]


def colour_images() -> list[PIL.Image.Image]:
    """Plain and striped colours: images a random network tells apart."""
    plain = [np.array(PIL.Image.new("RGB", (40, 40), colour)) for colour in ["red", "green", "blue", "white"]]
    striped = [pixels.copy() for pixels in plain]
    for pixels in striped:
        pixels[::4] = 128
    return [PIL.Image.fromarray(pixels) for pixels in plain + striped]


@pytest.fixture
def folders(tmp_path, saved_lm, tokenizer):
    """A tiny random translator, AWD-LSTM classifier and DeViSE model (with a gallery index), and the language model
    of conftest, each saved as a user would save it; and a query image."""
    torch.manual_seed(0)
    translator = tmp_path / "translator"
    translation_tokenizer = GruSeq2SeqTokenizer.train(SOURCES, TARGETS)
    GruSeq2SeqForConditionalGeneration(
        GruSeq2SeqConfig(
            vocab_size=translation_tokenizer.vocab_size,
            decoder_vocab_size=translation_tokenizer.target_vocab_size,
            embedding_size=8,
            hidden_size=8,
        )
    ).save_pretrained(translator)
    translation_tokenizer.save_pretrained(translator)

    classifier = tmp_path / "classifier"
    labels = {0: "negative", 1: "positive", 2: "mixed"}
    AwdLstmForSequenceClassification(
        AwdLstmConfig(
            vocab_size=len(tokenizer), embedding_size=8, hidden_size=12, num_hidden_layers=2, id2label=labels
        )
    ).save_pretrained(classifier)
    tokenizer.save_pretrained(classifier)

    devise = tmp_path / "devise"
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    devise_tokenizer = DeviseTokenizer(words=WORDS)
    model = DeviseModel(
        DeviseConfig(backbone_config=backbone, projection_dim=6, head_hidden_size=10, vocab_size=len(devise_tokenizer))
    ).eval()
    model.set_word_vectors(torch.cat([torch.zeros(1, 6), torch.randn(len(WORDS), 6)]))
    model.save_pretrained(devise)
    image_processor = DeviseImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    DeviseProcessor(image_processor=image_processor, tokenizer=devise_tokenizer).save_pretrained(devise)
    with torch.no_grad():
        gallery = model.get_image_features(**image_processor(colour_images(), return_tensors="pt"))
    DeviseIndex.build(gallery, ids=torch.arange(100, 108), num_lists=2, nprobe=2).save(devise / "gallery.safetensors")

    image = tmp_path / "query.png"
    colour_images()[5].save(image)
    return {"translator": translator, "classifier": classifier, "lm": saved_lm, "devise": devise, "image": image}


def run_pipelines(folders: dict[str, str], inputs: dict[str, list[str]], **options) -> dict:
    """Each task of each folder, built by `pipeline()` with `options` and run on `inputs`, as plain JSON-able Python.
    Run here with the package, and by `WITHOUT_ULMFIT` in a child where any import of `ulmfit` fails."""
    image = folders["image"]
    translate = pipeline("translation", model=folders["translator"], **options)
    classify = pipeline("text-classification", model=folders["classifier"], **options)
    generate = pipeline("text-generation", model=folders["lm"], **options)
    index = folders["devise"] + "/gallery.safetensors"
    search = pipeline("image-search", model=folders["devise"], index=index, **options)
    zero_shot = pipeline("zero-shot-image-classification", model=folders["devise"], **options)
    extract = pipeline("image-feature-extraction", model=folders["devise"], **options)
    pipes = [translate, classify, generate, search, zero_shot, extract]
    results = {
        "classes": [type(pipe).__name__ for pipe in pipes],
        "modules": sorted({type(obj).__module__.split(".")[0] for pipe in pipes for obj in (pipe, pipe.model)}),
        "ulmfit_loaded": any(name.startswith("ulmfit") for name in sys.modules),
        "translation": translate(inputs["sources"], batch_size=2, max_new_tokens=6),
        "text-classification": classify(inputs["documents"], batch_size=2, top_k=None),
        "text-generation": generate(inputs["prompts"], batch_size=2, max_new_tokens=4, do_sample=False),
        "image-search": search(["engine + boat", image, "cat"], batch_size=2, top_k=3),
        "image-search-words": search(image, target="words", top_k=4),
        "zero-shot-image-classification": zero_shot(image, candidate_labels=inputs["labels"]),
        "image-feature-extraction": extract(image),
    }
    return json.loads(json.dumps(results))


WITHOUT_ULMFIT = f"""
import json, sys
from transformers import pipeline

{inspect.getsource(run_pipelines)}
print(json.dumps(run_pipelines(json.loads(sys.argv[1]), json.loads(sys.argv[2]), trust_remote_code=True)))
"""


def assert_same_results(actual, expected, where="result"):
    """The same JSON structure, strings and ints equal, floats to within float error."""
    if isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=1e-5), where
    elif isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), where
        for key in expected:
            assert_same_results(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (one, other) in enumerate(zip(actual, expected)):
            assert_same_results(one, other, f"{where}[{index}]")
    else:
        assert actual == expected, where


def test_every_pipeline_gives_the_same_results_with_the_package_and_with_remote_code_alone(
    folders, run_without_ulmfit
):
    folders = {name: str(path) for name, path in folders.items()}
    inputs = {"sources": SOURCES, "documents": DOCUMENTS, "prompts": PROMPTS, "labels": LABELS}
    without_ulmfit = run_without_ulmfit(WITHOUT_ULMFIT, json.dumps(folders), json.dumps(inputs))
    with_ulmfit = run_pipelines(folders, inputs)  # no `trust_remote_code`

    classes = [
        "TranslationPipeline",
        "TextClassificationPipeline",
        "TextGenerationPipeline",
        "ImageSearchPipeline",
        "ZeroShotImageClassificationPipeline",
        "ImageFeatureExtractionPipeline",
    ]
    assert with_ulmfit["classes"] == without_ulmfit["classes"] == classes
    assert with_ulmfit["modules"] == ["transformers", "ulmfit"] and with_ulmfit["ulmfit_loaded"]
    assert without_ulmfit["modules"] == ["transformers", "transformers_modules"]
    assert not without_ulmfit["ulmfit_loaded"]
    for task in [key for key in with_ulmfit if key not in {"classes", "modules", "ulmfit_loaded"}]:
        assert_same_results(without_ulmfit[task], with_ulmfit[task], task)
    assert with_ulmfit["image-search"][1][0]["id"] == 105  # the query image is gallery image 105
