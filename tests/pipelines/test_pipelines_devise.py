import json

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoConfig, ResNetConfig, pipeline

from ulmfit import (
    DeviseConfig,
    DeviseImageProcessor,
    DeviseIndex,
    DeviseModel,
    DeviseProcessor,
    DeviseTokenizer,
    ImageSearchPipeline,
)
from ulmfit.models.devise import index_devise


requires_faiss = pytest.mark.skipif(index_devise.faiss is None, reason="faiss is not installed (the `ann` extra)")
WORDS = ["goldfish", "fire", "salamander", "boat", "engine", "ship", "cat", "dog", "sail"]


def images(count: int, seed: int = 0) -> list[PIL.Image.Image]:
    rng = np.random.default_rng(seed)
    return [PIL.Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)) for _ in range(count)]


def gallery_images() -> list[PIL.Image.Image]:
    """Twelve images a random network tells apart: plain colours and their stripes (random noise all looks alike)."""
    colours = ["red", "green", "blue", "yellow", "black", "white"]
    plain = [PIL.Image.new("RGB", (40, 40), colour) for colour in colours]
    striped = []
    for colour in colours:
        pixels = np.array(PIL.Image.new("RGB", (40, 40), colour))
        pixels[::4] = 128
        striped.append(PIL.Image.fromarray(pixels))
    return plain + striped


@pytest.fixture
def saved_devise(tmp_path):
    """A tiny DeViSE model (ResNet backbone), its processor and a gallery index, saved as a user would."""
    torch.manual_seed(0)
    tokenizer = DeviseTokenizer(words=WORDS)
    image_processor = DeviseImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    config = DeviseConfig(backbone_config=backbone, projection_dim=6, head_hidden_size=10, vocab_size=len(tokenizer))
    model = DeviseModel(config).eval()
    model.set_word_vectors(torch.cat([torch.zeros(1, 6), torch.randn(len(WORDS), 6)]))
    folder = tmp_path / "tiny-devise"
    model.save_pretrained(folder)
    DeviseProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    with torch.no_grad():
        pixel_values = image_processor(gallery_images(), return_tensors="pt")["pixel_values"]
        gallery = model.get_image_features(pixel_values=pixel_values)
    DeviseIndex.build(gallery, ids=torch.arange(100, 112), num_lists=3, nprobe=3).save(folder / "gallery.safetensors")
    return folder


def test_stock_zero_shot_pipeline_ranks_any_candidate_labels(saved_devise):
    classifier = pipeline("zero-shot-image-classification", model=str(saved_devise))
    labels = ["goldfish", "fire salamander", "engine + boat"]
    results = classifier(images(1)[0], candidate_labels=labels)
    assert sorted(result["label"] for result in results) == sorted(labels)
    assert sum(result["score"] for result in results) == pytest.approx(1.0)
    assert [result["score"] for result in results] == sorted((result["score"] for result in results), reverse=True)
    # the pipeline's default prompt ("This is a photo of {}.") is not averaged into the labels
    assert classifier(images(1)[0], candidate_labels=labels, hypothesis_template="{}") == results
    json.dumps(results)


def test_zero_shot_batches_keep_the_order_of_the_images(saved_devise):
    classifier = pipeline("zero-shot-image-classification", model=str(saved_devise))
    queries = images(3, seed=2)
    batched = classifier(queries, candidate_labels=["cat", "dog", "ship"], batch_size=2)
    alone = [classifier(image, candidate_labels=["cat", "dog", "ship"]) for image in queries]
    for one, other in zip(batched, alone):
        assert [result["label"] for result in one] == [result["label"] for result in other]
        assert [result["score"] for result in one] == pytest.approx([result["score"] for result in other], abs=1e-6)


def test_zero_shot_bad_labels_fail_clearly(saved_devise):
    classifier = pipeline("zero-shot-image-classification", model=str(saved_devise))
    with pytest.raises(ValueError, match="'axolotl'"):
        classifier(images(1)[0], candidate_labels=["goldfish", "axolotl"])
    with pytest.raises(ValueError, match="candidate"):
        classifier(images(1)[0], candidate_labels=[])


def test_stock_image_feature_extraction_gives_the_image_embeddings(saved_devise):
    extractor = pipeline("image-feature-extraction", model=str(saved_devise))
    queries = images(3, seed=3)
    features = extractor(queries, batch_size=2)
    model = DeviseModel.from_pretrained(saved_devise).eval()
    processor = DeviseProcessor.from_pretrained(saved_devise)
    with torch.no_grad():
        expected = model.get_image_features(pixel_values=processor(images=queries)["pixel_values"])
    torch.testing.assert_close(torch.tensor([row[0] for row in features]), expected, rtol=0, atol=1e-5)


def test_image_search_by_text_image_and_word_sums(saved_devise):
    search = pipeline("image-search", model=str(saved_devise), index=str(saved_devise / "gallery.safetensors"))
    assert isinstance(search, ImageSearchPipeline)
    by_text = search("engine + boat", top_k=3)
    assert len(by_text) == 3 and all(100 <= result["id"] < 112 for result in by_text)
    assert by_text == search("boat engine", top_k=3)  # a sum of unit vectors, in any order
    by_image = search(gallery_images()[6], top_k=2)  # a gallery image finds itself first
    assert by_image[0]["id"] == 106 and by_image[0]["score"] == pytest.approx(1.0, abs=1e-5)
    words = search(images(1)[0], target="words", top_k=4)
    assert len(words) == 4 and {result["word"] for result in words} <= set(WORDS)
    json.dumps([by_text, by_image, words])


def test_image_search_batches_mixed_queries_in_order(saved_devise, tmp_path):
    search = pipeline("image-search", model=str(saved_devise), index=str(saved_devise / "gallery.safetensors"))
    gallery = gallery_images()
    gallery[6].save(tmp_path / "query.png")
    queries = ["boat", gallery[1], "fire salamander", str(tmp_path / "query.png"), "cat", gallery[0]]
    batched = search(queries, top_k=3, batch_size=2)
    alone = [search(query, top_k=3) for query in queries]
    for one, other in zip(batched, alone):
        assert [result["score"] for result in one] == pytest.approx([result["score"] for result in other], abs=1e-5)
    assert [rows[0]["id"] for rows in batched[1::2]] == [101, 106, 100]  # each image query finds itself


def test_image_search_errors_are_clear(saved_devise):
    without_index = pipeline("image-search", model=str(saved_devise))
    with pytest.raises(ValueError, match="index"):
        without_index("boat")
    with pytest.raises(ValueError, match="'submarine'"):
        without_index("submarine", target="words")
    with pytest.raises(ValueError, match="target"):
        without_index("boat", target="videos")


@pytest.mark.parametrize("backend", ["exact", pytest.param("faiss", marks=requires_faiss)])
def test_image_search_gives_the_same_results_on_any_index_backend(saved_devise, tmp_path, backend):
    ivf_gallery = DeviseIndex.load(saved_devise / "gallery.safetensors")  # 3 cells, all probed: exact
    gallery = DeviseIndex.build(ivf_gallery.vectors, ids=ivf_gallery.ids, backend=backend)
    gallery.save(tmp_path / "gallery.safetensors")
    reference = pipeline("image-search", model=str(saved_devise), index=ivf_gallery)
    search = pipeline("image-search", model=str(saved_devise), index=str(tmp_path / "gallery.safetensors"))
    assert search.index.backend == backend
    for query in ["engine + boat", gallery_images()[6]]:  # plain colours tie, so ids are compared as sets
        expected, found = reference(query, top_k=12), search(query, top_k=12)
        assert sorted(result["id"] for result in found) == list(range(100, 112))
        assert [result["score"] for result in found] == pytest.approx([result["score"] for result in expected])
    assert search(gallery_images()[6], top_k=1)[0]["id"] == 106
    with pytest.raises(ValueError, match="`nprobe` is a setting of the 'ivf' backend"):
        search("boat", nprobe=2)
    if backend == "faiss":
        assert search("boat", top_k=12, ef_search=16) == search("boat", top_k=12)


def test_the_folder_names_image_search_for_remote_code_and_the_package_serves_it_itself(saved_devise):
    saved = json.loads((saved_devise / "config.json").read_text())["custom_pipelines"]
    assert saved == {"image-search": {"impl": "image_search.ImageSearchPipeline", "pt": ["AutoModel"]}}
    # remote code imports only the folder's own files: the pipeline's imports from the package become sibling imports
    code = (saved_devise / "image_search.py").read_text()
    assert "from .index_devise import DeviseIndex" in code and "from .." not in code
    assert (saved_devise / "index_devise.py").is_file() and (saved_devise / "image_processing_devise.py").is_file()
    assert not hasattr(AutoConfig.from_pretrained(saved_devise), "custom_pipelines")
    assert type(pipeline("image-search", model=str(saved_devise), trust_remote_code=True)) is ImageSearchPipeline


def test_the_pipeline_saves_a_folder_that_names_it(saved_devise, tmp_path):
    model = DeviseModel.from_pretrained(saved_devise)
    processor = DeviseProcessor.from_pretrained(saved_devise)
    search = ImageSearchPipeline(model=model, tokenizer=processor.tokenizer, image_processor=processor.image_processor)
    search.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["custom_pipelines"] == {
        "image-search": {"impl": "image_search.ImageSearchPipeline", "pt": ["AutoModel"]}
    }
    again = pipeline("image-search", model=str(tmp_path))
    assert again("boat", target="words", top_k=3) == search("boat", target="words", top_k=3)
