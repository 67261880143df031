"""Approximate nearest-neighbour search over unit vectors (image embeddings, word vectors) in pure PyTorch.

The 2018 notebook used nmslib's HNSW with angular distance. Neither nmslib nor faiss is installable everywhere this
package runs, so this is the inverted-file index of faiss' `IndexIVFFlat` (Jegou, Douze & Schmid, "Product
Quantization for Nearest Neighbor Search", TPAMI 2011, sec. IV-A), written with torch only: a spherical k-means coarse
quantiser splits the vectors into `num_lists` cells, and a query scans the `nprobe` cells whose centroids are closest
to it, exactly, instead of every vector. Similarity is the cosine (vectors are normalised when added), the notebook's
angular distance ordering.
"""

import json
import math
import os

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.nn import functional as F


def exact_search(vectors: torch.Tensor, queries: torch.Tensor, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force cosine top-k: `(scores, indices)`, each `(num_queries, k)`; the reference an index is judged by."""
    scores = F.normalize(queries, dim=-1) @ F.normalize(vectors, dim=-1).T  # (queries, vectors)
    return scores.topk(min(k, vectors.shape[0]), dim=-1)


def nearest_centroid(vectors: torch.Tensor, centroids: torch.Tensor, chunk_size: int = 16384) -> torch.Tensor:
    """Index of the highest-cosine centroid of every unit vector, in chunks so that memory stays small."""
    return torch.cat([(chunk @ centroids.T).argmax(dim=1) for chunk in vectors.split(chunk_size)])


def spherical_kmeans(
    vectors: torch.Tensor, num_clusters: int, num_iterations: int = 20, seed: int = 0
) -> torch.Tensor:
    """
    k-means on the unit sphere (Dhillon & Modha 2001): assign each vector to the centroid of highest cosine, move each
    centroid to the normalised mean of its vectors. An emptied cluster is re-seeded with a random vector.
    Returns unit centroids `(num_clusters, dim)`.
    """
    generator = torch.Generator().manual_seed(seed)
    vectors = F.normalize(vectors.float(), dim=-1)
    centroids = vectors[torch.randperm(vectors.shape[0], generator=generator)[:num_clusters]].clone()
    for _ in range(num_iterations):
        assignment = nearest_centroid(vectors, centroids)  # (vectors,)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, vectors)
        counts = torch.bincount(assignment, minlength=num_clusters)
        empty = counts == 0
        if empty.any():
            sums[empty] = vectors[torch.randint(vectors.shape[0], (int(empty.sum()),), generator=generator)]
        centroids = F.normalize(sums, dim=-1)
    return centroids


class DeviseIndex:
    """
    An inverted-file (IVF) index over unit vectors with exact re-scoring inside the probed cells.

    The vectors are stored sorted by cell, so a cell is a contiguous slice; `offsets[c]:offsets[c + 1]` are the rows
    of cell c and `ids` maps rows back to the caller's ids. Build one with [`DeviseIndex.build`].

    Args:
        centroids (`torch.Tensor` of shape `(num_lists, dim)`): unit centroids of the cells.
        vectors (`torch.Tensor` of shape `(num_vectors, dim)`): unit vectors, sorted by cell.
        ids (`torch.LongTensor` of shape `(num_vectors,)`): the caller's id of each row.
        offsets (`torch.LongTensor` of shape `(num_lists + 1,)`): where each cell starts in `vectors`.
        nprobe (`int`): how many cells a query scans by default; more is slower and closer to exact.
    """

    def __init__(
        self, centroids: torch.Tensor, vectors: torch.Tensor, ids: torch.Tensor, offsets: torch.Tensor, nprobe: int
    ):
        self.centroids = centroids
        self.vectors = vectors
        self.ids = ids
        self.offsets = offsets
        self.sizes = offsets[1:] - offsets[:-1]
        self.nprobe = nprobe

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def num_lists(self) -> int:
        return self.centroids.shape[0]

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        vectors: torch.Tensor,
        ids: torch.Tensor | None = None,
        num_lists: int | None = None,
        nprobe: int | None = None,
        num_iterations: int = 20,
        training_size: int | None = None,
        seed: int = 0,
    ) -> "DeviseIndex":
        """
        Cluster `vectors` and store them by cell.

        Args:
            vectors: `(num_vectors, dim)`, any norm (they are normalised).
            ids: the caller's id of each vector; defaults to its row number.
            num_lists: number of cells; defaults to about 8 * sqrt(num_vectors), within faiss' 4-16 sqrt(N) rule.
            nprobe: cells scanned per query by default; defaults to num_lists / 50, at least 8 (on 100,000 GloVe
                vectors that gives recall@10 0.96, see `scripts/benchmarks/bench_devise_index.py`).
            num_iterations: k-means iterations.
            training_size: cluster a random sample of this many vectors (faiss uses 256 per cell); defaults to
                256 * num_lists.
            seed: seeds the sample and the initial centroids.
        """
        if vectors.dim() != 2 or vectors.shape[0] == 0:
            raise ValueError(
                f"`vectors` must be a non-empty (num_vectors, dim) tensor, got shape {tuple(vectors.shape)}."
            )
        num_vectors = vectors.shape[0]
        ids = torch.arange(num_vectors) if ids is None else torch.as_tensor(ids, dtype=torch.long)
        if ids.shape != (num_vectors,):
            raise ValueError(f"`ids` must hold one id per vector ({num_vectors}), got shape {tuple(ids.shape)}.")
        num_lists = min(num_lists or max(1, round(8 * math.sqrt(num_vectors))), num_vectors)
        nprobe = min(nprobe or max(8, num_lists // 50), num_lists)
        vectors = F.normalize(vectors.float(), dim=-1)

        # 1. Coarse quantiser: spherical k-means on a sample
        training_size = min(training_size or 256 * num_lists, num_vectors)
        generator = torch.Generator().manual_seed(seed)
        sample = vectors[torch.randperm(num_vectors, generator=generator)[:training_size]]
        centroids = spherical_kmeans(sample, num_lists, num_iterations=num_iterations, seed=seed)

        # 2. Inverted lists: every vector in its closest cell, stored cell by cell
        assignment = nearest_centroid(vectors, centroids)
        order = torch.argsort(assignment, stable=True)
        counts = torch.bincount(assignment, minlength=num_lists)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        return cls(centroids, vectors[order].contiguous(), ids[order].contiguous(), offsets, nprobe)

    @torch.no_grad()
    def search(
        self, queries: torch.Tensor, k: int = 10, nprobe: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The `k` vectors of highest cosine to each query among the `nprobe` closest cells.

        Returns `(scores, ids)`, each `(num_queries, k)`, best first. Where the probed cells hold fewer than `k`
        vectors, the missing places have score `-inf` and id -1.
        """
        single = queries.dim() == 1
        queries = F.normalize(queries.float().reshape(-1, self.vectors.shape[1]), dim=-1)
        nprobe = min(nprobe or self.nprobe, self.num_lists)

        # 1. The nprobe closest cells of every query, and the rows they span
        probes = (queries @ self.centroids.T).topk(nprobe, dim=1).indices  # (queries, nprobe)
        starts, lengths = torch.take(self.offsets, probes), torch.take(self.sizes, probes)  # (queries, nprobe)
        ends = lengths.cumsum(dim=1)  # end of each probed cell in a query's concatenated candidate list
        totals = ends[:, -1]  # (queries,)
        width = max(int(totals.max()), 1)

        # 2. Candidate rows, one padded list per query: position j falls in the probe whose span contains it
        positions = torch.arange(width).expand(queries.shape[0], width).contiguous()  # (queries, width)
        probe = torch.searchsorted(ends, positions, right=True).clamp_(max=nprobe - 1)
        rows = (starts - ends + lengths).gather(1, probe).add_(positions)  # cell start + offset within the cell
        padding = positions >= totals[:, None]
        rows.masked_fill_(padding, 0)

        # 3. Exact cosine on the candidates only (index_select and bmm: much faster than fancy indexing and einsum)
        candidates = self.vectors.index_select(0, rows.flatten()).view(*rows.shape, -1)  # (queries, width, dim)
        scores = torch.bmm(candidates, queries[:, :, None])[:, :, 0].masked_fill_(padding, float("-inf"))
        top_scores, top = scores.topk(min(k, width), dim=1)
        top_ids = torch.take(self.ids, rows.gather(1, top)).masked_fill_(torch.isinf(top_scores), -1)
        if top_scores.shape[1] < k:  # fewer candidates than k in the whole probe
            missing = k - top_scores.shape[1]
            top_scores = F.pad(top_scores, (0, missing), value=float("-inf"))
            top_ids = F.pad(top_ids, (0, missing), value=-1)
        return (top_scores[0], top_ids[0]) if single else (top_scores, top_ids)

    def save(self, path: str | os.PathLike):
        """Write the index to one safetensors file (no pickle)."""
        tensors = {"centroids": self.centroids, "vectors": self.vectors, "ids": self.ids, "offsets": self.offsets}
        save_file(
            tensors, os.fspath(path), metadata={"format": "devise-ivf", "config": json.dumps({"nprobe": self.nprobe})}
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DeviseIndex":
        """Read an index written by `save`."""
        tensors = load_file(os.fspath(path))
        with safe_open(os.fspath(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != "devise-ivf":
            raise ValueError(f"{os.fspath(path)!r} is not a DeviseIndex file.")
        config = json.loads(metadata["config"])
        return cls(tensors["centroids"], tensors["vectors"], tensors["ids"], tensors["offsets"], config["nprobe"])


__all__ = ["DeviseIndex", "exact_search", "spherical_kmeans"]
