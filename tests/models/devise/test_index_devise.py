import importlib.util
import sys

import pytest
import torch
from safetensors.torch import save_file
from torch.nn import functional as F
from transformers.dynamic_module_utils import get_imports
from transformers.testing_utils import CaptureLogger

from ulmfit import DeviseIndex
from ulmfit.models.devise import index_devise
from ulmfit.models.devise.index_devise import exact_search


requires_faiss = pytest.mark.skipif(index_devise.faiss is None, reason="faiss is not installed (the `ann` extra)")
BACKENDS = ["exact", "ivf", pytest.param("faiss", marks=requires_faiss)]


def clustered_vectors(count: int = 3000, dim: int = 16, clusters: int = 30, seed: int = 0) -> torch.Tensor:
    """Unit vectors around a few directions, as image embeddings of a few classes are."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=generator)
    members = centres[torch.randint(clusters, (count,), generator=generator)]
    return F.normalize(members + 0.35 * torch.randn(count, dim, generator=generator), dim=-1)


def recall_at(k: int, found: torch.Tensor, expected: torch.Tensor) -> float:
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, expected))
    return hits / (k * len(found))


@pytest.fixture
def without_faiss(monkeypatch):
    """The module as it runs where faiss is not installed."""
    monkeypatch.setattr(index_devise, "faiss", None)


def test_exact_search_is_brute_force_cosine():
    vectors, queries = torch.randn(50, 4), torch.randn(3, 4)
    scores, indices = exact_search(vectors, queries, k=5)
    cosines = F.cosine_similarity(queries[:, None], vectors[None], dim=-1)
    torch.testing.assert_close(scores, cosines.topk(5).values)
    assert torch.equal(indices, cosines.topk(5).indices)


def test_index_recall_at_10_against_exact_search():
    vectors = clustered_vectors()
    queries = clustered_vectors(count=200, seed=1)
    index = DeviseIndex.build(vectors, num_lists=32, nprobe=8)
    _, expected = exact_search(vectors, queries, k=10)
    _, found = index.search(queries, k=10)
    assert recall_at(10, found, expected) >= 0.95
    _, found_all = index.search(queries, k=10, nprobe=index.num_lists)  # every cell: exact
    assert recall_at(10, found_all, expected) == 1.0


def test_results_carry_the_callers_ids_and_pad_missing_places():
    vectors = clustered_vectors(count=40)
    ids = torch.arange(1000, 1040)
    index = DeviseIndex.build(vectors, ids=ids, num_lists=8, nprobe=1)
    scores, found = index.search(vectors[7], k=3)  # one query: 1-D results
    assert found.shape == (3,) and found[0].item() == 1007 and scores[0].item() == pytest.approx(1.0)
    scores, found = index.search(vectors[:2], k=60, nprobe=8)  # more than the index holds
    assert (found[:, 40:] == -1).all() and torch.isinf(scores[:, 40:]).all()
    assert sorted(found[0, :40].tolist()) == ids.tolist()


def test_save_and_load_round_trip(tmp_path):
    vectors = clustered_vectors(count=500)
    index = DeviseIndex.build(vectors, num_lists=10, nprobe=3)
    index.save(tmp_path / "gallery.safetensors")
    reloaded = DeviseIndex.load(tmp_path / "gallery.safetensors")
    assert reloaded.nprobe == 3 and len(reloaded) == 500
    for a, b in zip(index.search(vectors[:20], k=5), reloaded.search(vectors[:20], k=5)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="ids"):
        DeviseIndex.build(vectors, ids=torch.arange(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_gives_cosine_scores_and_the_callers_ids_best_first(backend):
    vectors = 3 * clustered_vectors(count=800)  # any norm: cosine, not inner product
    ids = torch.arange(800) * 7 + 5
    queries = torch.randn(12, 16)
    index = DeviseIndex.build(vectors, ids=ids, backend=backend)
    assert index.backend == backend and len(index) == 800 and index.dim == 16
    scores, found = index.search(queries, k=6)
    assert scores.shape == found.shape == (12, 6) and found.dtype == torch.long
    cosines = F.cosine_similarity(queries[:, None], vectors[(found - 5) // 7], dim=-1)
    torch.testing.assert_close(scores, cosines, atol=1e-5, rtol=1e-5)
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    one_scores, one_found = index.search(queries[3], k=6)
    assert one_found.shape == (6,) and torch.equal(one_found, found[3])
    empty_scores, empty_found = index.search(queries[:0], k=6)
    assert empty_scores.shape == empty_found.shape == (0, 6)


def test_exact_backend_is_exact_search_and_pads_past_the_end():
    vectors, queries = clustered_vectors(count=300), clustered_vectors(count=20, seed=1)
    index = DeviseIndex.build(vectors, backend="exact")
    expected_scores, expected = exact_search(vectors, queries, k=10)
    scores, found = index.search(queries, k=10)
    assert torch.equal(found, expected)
    torch.testing.assert_close(scores, expected_scores)
    scores, found = index.search(queries, k=305)
    assert (found[:, 300:] == -1).all() and torch.isinf(scores[:, 300:]).all()
    assert sorted(found[0, :300].tolist()) == list(range(300))


@requires_faiss
def test_faiss_backend_recall_at_10_against_exact_search():
    vectors = clustered_vectors()
    queries = clustered_vectors(count=200, seed=1)
    index = DeviseIndex.build(vectors, backend="faiss", num_neighbors=16, ef_search=128)
    assert index.ef_search == 128
    _, expected = exact_search(vectors, queries, k=10)
    _, found = index.search(queries, k=10)
    assert recall_at(10, found, expected) >= 0.95
    _, found_wide = index.search(queries, k=10, ef_search=400)  # more candidates: no worse
    assert recall_at(10, found_wide, expected) >= recall_at(10, found, expected)
    _, found_narrow = index.search(queries, k=10, ef_search=16)
    assert recall_at(10, found_narrow, expected) < recall_at(10, found, expected)
    _, found_at_k = index.search(queries, k=10, ef_search=10)  # fewer candidates than k are raised to k
    assert torch.equal(index.search(queries, k=10, ef_search=1)[1], found_at_k)


@requires_faiss
def test_auto_backend_is_faiss_where_it_is_installed():
    index = DeviseIndex.build(clustered_vectors(count=100))
    assert index.backend == "faiss"


def test_auto_backend_is_the_torch_ivf_index_without_faiss(without_faiss):
    vectors = clustered_vectors(count=500)
    index = DeviseIndex.build(vectors)
    assert index.backend == "ivf"
    _, found = index.search(vectors[:5], k=1)
    assert found[:, 0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ImportError, match=r"ulmfit\[ann\]"):
        DeviseIndex.build(vectors, backend="faiss")
    with pytest.raises(ImportError, match=r"ulmfit\[ann\]"):
        DeviseIndex.build(vectors, ef_search=16)  # a faiss setting asks for faiss, not for whatever is installed


def test_auto_backend_follows_the_settings_given_and_rejects_settings_of_another_backend():
    vectors = clustered_vectors(count=500)
    assert DeviseIndex.build(vectors, num_lists=4).backend == "ivf"
    with pytest.raises(ValueError, match="`ef_search` is not a setting of the 'ivf' backend"):
        DeviseIndex.build(vectors, backend="ivf", ef_search=10)
    with pytest.raises(ValueError, match="`nprobe` is not a setting of the 'exact' backend"):
        DeviseIndex.build(vectors, backend="exact", nprobe=3)
    with pytest.raises(ValueError, match="`backend` must be one of"):
        DeviseIndex.build(vectors, backend="annoy")
    exact = DeviseIndex.build(vectors, backend="exact")
    with pytest.raises(ValueError, match="`nprobe` is a setting of the 'ivf' backend"):
        exact.search(vectors[:2], nprobe=4)
    with pytest.raises(ValueError, match="`ef_search` is a setting of the 'faiss' backend"):
        exact.search(vectors[:2], ef_search=4)
    with pytest.raises(AttributeError, match="IVF"):
        exact.num_lists  # noqa: B018


@requires_faiss
def test_faiss_settings_choose_the_faiss_backend():
    index = DeviseIndex.build(clustered_vectors(count=500), ef_search=20, num_neighbors=8)
    assert index.backend == "faiss" and index.ef_search == 20
    with pytest.raises(ValueError, match="`nprobe` is a setting of the 'ivf' backend"):
        index.search(clustered_vectors(count=2), nprobe=4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_saves_and_loads_back_identically(tmp_path, backend):
    vectors, queries = clustered_vectors(count=600), clustered_vectors(count=30, seed=1)
    index = DeviseIndex.build(vectors, ids=torch.arange(600) + 10, backend=backend)
    index.save(tmp_path / "gallery.safetensors")
    reloaded = DeviseIndex.load(tmp_path / "gallery.safetensors")
    assert reloaded.backend == backend and len(reloaded) == 600
    assert torch.equal(reloaded.vectors, index.vectors) and torch.equal(reloaded.ids, index.ids)
    for a, b in zip(index.search(queries, k=10), reloaded.search(queries, k=10)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("saved", BACKENDS)
@pytest.mark.parametrize("loaded", BACKENDS)
def test_a_saved_index_loads_with_any_backend(tmp_path, saved, loaded):
    vectors, queries = clustered_vectors(count=600), clustered_vectors(count=30, seed=1)
    DeviseIndex.build(vectors, ids=torch.arange(600) + 10, backend=saved).save(tmp_path / "gallery.safetensors")
    reloaded = DeviseIndex.load(tmp_path / "gallery.safetensors", backend=loaded)
    assert reloaded.backend == loaded and len(reloaded) == 600
    _, expected = exact_search(vectors, queries, k=10)
    _, found = reloaded.search(queries, k=10)
    assert recall_at(10, found - 10, expected) >= (1.0 if loaded == "exact" else 0.8)  # 0.84 for the default IVF


@requires_faiss
def test_a_faiss_index_loaded_without_faiss_is_rebuilt_as_the_ivf_index_with_a_warning(tmp_path, monkeypatch):
    vectors, queries = clustered_vectors(count=600), clustered_vectors(count=30, seed=1)
    DeviseIndex.build(vectors, backend="faiss").save(tmp_path / "gallery.safetensors")
    monkeypatch.setattr(index_devise, "faiss", None)
    with CaptureLogger(index_devise.logger) as captured:
        reloaded = DeviseIndex.load(tmp_path / "gallery.safetensors")
    assert "faiss is not installed" in captured.out and "torch IVF" in captured.out
    assert reloaded.backend == "ivf" and len(reloaded) == 600
    _, expected = exact_search(vectors, queries, k=10)
    assert recall_at(10, reloaded.search(queries, k=10)[1], expected) >= 0.8
    with pytest.raises(ImportError, match=r"ulmfit\[ann\]"):
        DeviseIndex.load(tmp_path / "gallery.safetensors", backend="faiss")


def test_the_ivf_only_file_format_of_earlier_versions_still_loads(tmp_path):
    vectors, queries = clustered_vectors(count=400), clustered_vectors(count=10, seed=1)
    index = DeviseIndex.build(vectors, ids=torch.arange(400) + 1, num_lists=8, nprobe=2)
    tensors = {"centroids": index.centroids, "vectors": index.vectors, "ids": index.ids}
    tensors["offsets"] = index._search.offsets  # the IVF file's tensors as they were, metadata included
    save_file(tensors, tmp_path / "old.safetensors", metadata={"format": "devise-ivf", "config": '{"nprobe": 2}'})
    reloaded = DeviseIndex.load(tmp_path / "old.safetensors")
    assert reloaded.backend == "ivf" and reloaded.nprobe == 2
    for a, b in zip(index.search(queries, k=5), reloaded.search(queries, k=5)):
        assert torch.equal(a, b)
    save_file({"vectors": vectors}, tmp_path / "other.safetensors", metadata={"format": "something-else"})
    with pytest.raises(ValueError, match="not a DeviseIndex file"):
        DeviseIndex.load(tmp_path / "other.safetensors")


@pytest.mark.parametrize("backend", ["exact", "ivf"])
def test_large_batches_are_searched_in_chunks_with_the_same_results(monkeypatch, backend):
    vectors, queries = clustered_vectors(count=1000), clustered_vectors(count=50, seed=1)
    index = DeviseIndex.build(vectors, backend=backend)
    whole = index.search(queries, k=10)
    monkeypatch.setattr(index_devise, "SEARCH_CHUNK_FLOATS", 2000)  # a chunk or two of queries at a time
    chunked = index.search(queries, k=10)
    torch.testing.assert_close(chunked[0], whole[0])  # the same floats up to the matrix product's blocking
    assert torch.equal(chunked[1], whole[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "query, k, argument",
    [
        (torch.randn(2, 15), 3, "queries"),  # wrong dimension
        (torch.randn(2, 3, 16), 3, "queries"),  # not one vector or a batch
        (torch.tensor([[float("nan")] * 16]), 3, "queries"),
        (torch.full((1, 16), float("inf")), 3, "queries"),
        (torch.randn(16), 0, "k"),
        (torch.randn(16), 2.5, "k"),
        (torch.randn(16), True, "k"),
    ],
)
def test_bad_queries_fail_with_errors_naming_the_argument(backend, query, k, argument):
    index = DeviseIndex.build(clustered_vectors(count=200), backend=backend)
    with pytest.raises(ValueError, match=f"`{argument}`"):
        index.search(query, k=k)


def test_bad_search_settings_fail_with_errors_naming_the_argument():
    index = DeviseIndex.build(clustered_vectors(count=200), backend="ivf")
    with pytest.raises(ValueError, match="`nprobe`"):
        index.search(torch.randn(16), nprobe=0)


@requires_faiss
def test_bad_faiss_settings_fail_with_errors_naming_the_argument():
    vectors = clustered_vectors(count=200)
    with pytest.raises(ValueError, match="`ef_search`"):
        DeviseIndex.build(vectors, backend="faiss").search(torch.randn(16), ef_search=-1)
    with pytest.raises(ValueError, match="`num_neighbors`"):
        DeviseIndex.build(vectors, backend="faiss", num_neighbors=0)


@pytest.mark.parametrize(
    "vectors, ids, argument",
    [
        (torch.empty(0, 16), None, "vectors"),  # an empty index
        (torch.randn(16), None, "vectors"),
        (torch.cat([torch.randn(3, 16), torch.full((1, 16), float("nan"))]), None, "vectors"),
        (torch.cat([torch.randn(3, 16), torch.full((1, 16), float("-inf"))]), None, "vectors"),
        (torch.cat([torch.randn(3, 16), torch.zeros(1, 16)]), None, "vectors"),
        (torch.randn(4, 16), torch.tensor([0, 1, 2, -5]), "ids"),
        (torch.randn(4, 16), torch.tensor([0.0, 1.0, 2.0, 3.0]), "ids"),
        (torch.randn(4, 16), torch.arange(5), "ids"),
    ],
)
def test_bad_vectors_and_ids_fail_with_errors_naming_the_argument(vectors, ids, argument):
    for backend in ("exact", "ivf"):
        with pytest.raises(ValueError, match=f"`{argument}`"):
            DeviseIndex.build(vectors, ids=ids, backend=backend)


def test_bad_vector_errors_say_which_row():
    vectors = torch.randn(6, 16)
    vectors[4, 2] = float("nan")
    with pytest.raises(ValueError, match="row 4"):
        DeviseIndex.build(vectors, backend="exact")


def test_the_file_runs_as_remote_code_without_faiss(monkeypatch):
    # transformers' remote-code check requires every import outside a `try`: faiss must not be one of them
    assert "faiss" not in get_imports(index_devise.__file__)
    # the file alone, as a remote-code folder holds it, where `import faiss` raises an ImportError
    monkeypatch.setitem(sys.modules, "faiss", None)
    spec = importlib.util.spec_from_file_location("remote_index_devise", index_devise.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.faiss is None
    index = module.DeviseIndex.build(torch.randn(300, 8))
    assert index.backend == "ivf"
    assert index.search(index.vectors[:1], k=1)[1].item() == index.ids[0].item()


def test_files_that_are_not_indexes_and_folders_that_do_not_exist_are_named(tmp_path):
    index = DeviseIndex.build(torch.nn.functional.normalize(torch.randn(20, 8), dim=-1), backend="exact")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match=f"'{garbage}' is not a DeviseIndex file: it cannot be read as safetensors"):
        DeviseIndex.load(garbage)
    missing = tmp_path / "no" / "such" / "index.safetensors"
    with pytest.raises(FileNotFoundError, match=f"the folder '{missing.parent}' does not exist"):
        index.save(missing)
    assert not missing.parent.exists()


def test_a_zero_query_has_no_direction_and_is_refused():
    index = DeviseIndex.build(torch.nn.functional.normalize(torch.randn(20, 8), dim=-1), backend="exact")
    queries = torch.randn(3, 8)
    queries[1] = 0
    with pytest.raises(ValueError, match="`queries` row 1 is all zeros"):
        index.search(queries, k=2)
