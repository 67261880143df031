import pytest
import torch
from torch.nn import functional as F

from ulmfit import DeviseIndex
from ulmfit.models.devise.index_devise import exact_search


def clustered_vectors(count: int = 3000, dim: int = 16, clusters: int = 30, seed: int = 0) -> torch.Tensor:
    """Unit vectors around a few directions, as image embeddings of a few classes are."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=generator)
    members = centres[torch.randint(clusters, (count,), generator=generator)]
    return F.normalize(members + 0.35 * torch.randn(count, dim, generator=generator), dim=-1)


def recall_at(k: int, found: torch.Tensor, expected: torch.Tensor) -> float:
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, expected))
    return hits / (k * len(found))


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
