"""
Nearest-neighbour search over unit vectors (image embeddings, word vectors) for DeViSE: one class, three backends.

[`DeviseIndex`] returns the `k` stored vectors of highest cosine similarity to each query: vectors and queries are
normalised, then compared by inner product, which orders results as the 2018 notebook's angular distance did. The
backend only changes how much of the collection a query looks at:

- `"exact"`: brute force, one matrix product in torch; the reference every approximate index is judged by.
- `"ivf"`: the inverted-file index of faiss' `IndexIVFFlat` (Jegou, Douze & Schmid, "Product Quantization for
  Nearest Neighbor Search", TPAMI 2011, sec. IV-A), written with torch only: a spherical k-means coarse quantiser
  splits the vectors into `num_lists` cells, and a query scans, exactly, the `nprobe` cells whose centroids are
  closest to it.
- `"faiss"`: a hierarchical navigable small world graph (HNSW; Malkov & Yashunin, TPAMI 2018, arXiv:1603.09320), the
  structure of the notebook's nmslib index, as faiss' `IndexHNSWFlat` with inner product; a query walks the graph
  greedily, keeping the `ef_search` best candidates.

`"auto"` is `"faiss"` where faiss is installed (`pip install "ulmfit[ann]"`) and `"ivf"` otherwise. faiss is an
optional import, so this file also runs as Hub remote code where only torch and transformers are installed. On
1,000,000 clustered 300-d vectors, at recall@10 >= 0.95, the faiss HNSW index answered one query at a time about 100x
faster than exact search, and the torch IVF index about 8x (`scripts/benchmarks/bench_devise_index.py`; the numbers
are in `scripts/benchmarks/README.md`).

An index is saved as one safetensors file (no pickle) with the unit vectors, the caller's ids and the backend's own
structure (IVF: centroids and cell offsets; faiss: its HNSW graph, serialised by faiss without its copy of the
vectors). Any file loads with any backend: the stored structure is reused when the backend matches and rebuilt from
the stored vectors otherwise. A faiss file loaded where faiss is missing logs a warning and is rebuilt as the torch
IVF index (`backend="exact"` loads any file with no rebuild at all).
"""

import inspect
import json
import math
import os

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.nn import functional as F
from transformers.utils import logging


try:  # optional: without faiss, "auto" is the torch IVF index. Remote code skips imports inside a `try` when it checks
    import faiss  # what a file needs, so this file also runs where only torch and transformers are installed
except ImportError:
    faiss = None


logger = logging.get_logger(__name__)

BACKENDS = ("auto", "exact", "ivf", "faiss")
# the file format: "devise-ivf" is the IVF-only format written before the backends existed, still read
FILE_FORMAT = "devise-index"
# floats a torch search materialises at once (256 MiB): queries are searched in chunks that stay under it
SEARCH_CHUNK_FLOATS = 2**26


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


def _check_positive_int(value, name: str):
    """Raise a `ValueError` naming `name` unless `value` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _check_finite(tensor: torch.Tensor, name: str):
    """Raise a `ValueError` naming `name` and the first bad row if `tensor`, `(rows, dim)`, holds NaN or infinity."""
    if math.isfinite(tensor.sum().item()):  # NaN and infinity make the sum non-finite: cheap for a single query
        return
    bad_rows = (~torch.isfinite(tensor)).any(dim=1).nonzero()
    if len(bad_rows):  # else only the sum overflowed
        raise ValueError(
            f"`{name}` holds NaN or infinite values ({len(bad_rows)} row(s), the first is row {int(bad_rows[0])})."
        )


def _chunk_size(floats_per_query: int) -> int:
    """How many queries a torch search takes at once so that it materialises at most `SEARCH_CHUNK_FLOATS` floats."""
    return max(1, SEARCH_CHUNK_FLOATS // max(floats_per_query, 1))


class ExactSearch:
    """The `"exact"` backend: every query against every vector, one matrix product per chunk of queries."""

    backend = "exact"

    def __init__(self, vectors: torch.Tensor):
        self.vectors = vectors

    @classmethod
    def build(cls, vectors: torch.Tensor) -> tuple["ExactSearch", None]:
        """Nothing to build; the rows keep their order (hence `None`)."""
        return cls(vectors), None

    @classmethod
    def from_saved(cls, vectors: torch.Tensor, tensors: dict[str, torch.Tensor], config: dict) -> "ExactSearch":
        return cls(vectors)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def nbytes(self) -> int:
        return self.vectors.nbytes

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The tensors and settings saved next to the vectors and ids: none."""
        return {}, {}

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`(scores, rows)`, each `(num_queries, min(k, num_vectors))`, for unit queries."""
        k = min(k, self.vectors.shape[0])
        results = [(chunk @ self.vectors.T).topk(k, dim=1) for chunk in queries.split(_chunk_size(len(self.vectors)))]
        return torch.cat([scores for scores, _ in results]), torch.cat([rows for _, rows in results])


class IvfSearch:
    """
    The `"ivf"` backend: an inverted-file index with exact re-scoring inside the probed cells, in pure torch.

    The vectors are stored sorted by cell, so a cell is a contiguous slice: `offsets[c]:offsets[c + 1]` are the rows
    of cell c.

    Args:
        centroids (`torch.Tensor` of shape `(num_lists, dim)`): unit centroids of the cells.
        vectors (`torch.Tensor` of shape `(num_vectors, dim)`): unit vectors, sorted by cell.
        offsets (`torch.LongTensor` of shape `(num_lists + 1,)`): where each cell starts in `vectors`.
        nprobe (`int`): how many cells a query scans by default; more is slower and closer to exact.
    """

    backend = "ivf"

    def __init__(self, centroids: torch.Tensor, vectors: torch.Tensor, offsets: torch.Tensor, nprobe: int):
        self.centroids = centroids
        self.vectors = vectors
        self.offsets = offsets
        self.sizes = offsets[1:] - offsets[:-1]
        self.nprobe = nprobe

    @property
    def num_lists(self) -> int:
        return self.centroids.shape[0]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @classmethod
    def build(
        cls,
        vectors: torch.Tensor,
        num_lists: int | None = None,
        nprobe: int | None = None,
        num_iterations: int = 20,
        training_size: int | None = None,
        seed: int = 0,
    ) -> tuple["IvfSearch", torch.Tensor]:
        """
        Cluster the unit `vectors` and store them by cell; also returns the order the rows were stored in.

        Args:
            num_lists: number of cells; defaults to about 8 * sqrt(num_vectors), within faiss' 4-16 sqrt(N) rule.
            nprobe: cells scanned per query by default; defaults to num_lists / 50, at least 8 (on 100,000 GloVe
                vectors that gives recall@10 0.96, see `scripts/benchmarks/bench_devise_index.py`).
            num_iterations: k-means iterations.
            training_size: cluster a random sample of this many vectors (faiss uses 256 per cell); defaults to
                256 * num_lists.
            seed: seeds the sample and the initial centroids.
        """
        for name, value in (("num_lists", num_lists), ("nprobe", nprobe), ("training_size", training_size)):
            if value is not None:
                _check_positive_int(value, name)
        _check_positive_int(num_iterations, "num_iterations")
        num_vectors = vectors.shape[0]
        num_lists = min(num_lists or max(1, round(8 * math.sqrt(num_vectors))), num_vectors)
        nprobe = min(nprobe or max(8, num_lists // 50), num_lists)

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
        return cls(centroids, vectors[order].contiguous(), offsets, nprobe), order

    @classmethod
    def from_saved(cls, vectors: torch.Tensor, tensors: dict[str, torch.Tensor], config: dict) -> "IvfSearch":
        return cls(tensors["centroids"], vectors, tensors["offsets"], config["nprobe"])

    @property
    def nbytes(self) -> int:
        return self.vectors.nbytes + self.centroids.nbytes + self.offsets.nbytes

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The tensors and settings saved next to the vectors and ids: the cells and the default `nprobe`."""
        return {"centroids": self.centroids, "offsets": self.offsets}, {"nprobe": self.nprobe}

    def search(self, queries: torch.Tensor, k: int, nprobe: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """
        `(scores, rows)`, each `(num_queries, k)`, for unit queries among the `nprobe` closest cells; where those
        cells hold fewer than `k` vectors, the missing places have score `-inf` and row -1.
        """
        if nprobe is not None:
            _check_positive_int(nprobe, "nprobe")
        nprobe = min(nprobe or self.nprobe, self.num_lists)
        probes = (queries @ self.centroids.T).topk(nprobe, dim=1).indices  # (queries, nprobe)
        # chunks of queries whose padded candidate lists, (chunk, width, dim), stay under SEARCH_CHUNK_FLOATS
        widest = int(torch.take(self.sizes, probes).sum(dim=1).max()) if len(queries) else 1
        chunk_size = _chunk_size(widest * self.vectors.shape[1])
        results = [
            self._search_chunk(chunk, probe_chunk, k)
            for chunk, probe_chunk in zip(queries.split(chunk_size), probes.split(chunk_size))
        ]
        return torch.cat([scores for scores, _ in results]), torch.cat([rows for _, rows in results])

    def _search_chunk(self, queries: torch.Tensor, probes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact cosine over the rows of the probed cells of a chunk of queries."""
        # 1. The rows the probed cells span
        nprobe = probes.shape[1]
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
        top_rows = rows.gather(1, top).masked_fill_(torch.isinf(top_scores), -1)
        if top_scores.shape[1] < k:  # fewer candidates than k in the whole probe
            missing = k - top_scores.shape[1]
            top_scores = F.pad(top_scores, (0, missing), value=float("-inf"))
            top_rows = F.pad(top_rows, (0, missing), value=-1)
        return top_scores, top_rows


class FaissSearch:
    """
    The `"faiss"` backend: faiss' `IndexHNSWFlat` with inner product, an HNSW graph over the unit vectors.

    Args:
        index (`faiss.IndexHNSWFlat`): the graph and its copy of the vectors.
        ef_search (`int`): candidates a query keeps while it walks the graph (HNSW's ef), by default; more is slower
            and closer to exact.
    """

    backend = "faiss"

    def __init__(self, index, ef_search: int):
        self.index = index
        self.ef_search = ef_search
        self._parameters = {}  # ef -> faiss.SearchParametersHNSW: building one costs as much as a small search

    @classmethod
    def build(
        cls, vectors: torch.Tensor, num_neighbors: int = 32, ef_construction: int = 40, ef_search: int = 128
    ) -> tuple["FaissSearch", None]:
        """
        Insert the unit `vectors` into an HNSW graph; the rows keep their order (hence `None`). faiss inserts in
        parallel threads, so two builds can differ slightly; a saved index loads back exactly.

        Args:
            num_neighbors: links per vector in the graph (HNSW's M; faiss and nmslib default to 32 and 16). More is
                a larger index with better recall at the same `ef_search`.
            ef_construction: candidates kept while inserting (HNSW's efConstruction; faiss' default).
            ef_search: candidates kept per query by default (HNSW's ef); 128 gives recall@10 >= 0.95 on the
                1,000,000-vector benchmark (`scripts/benchmarks/bench_devise_index.py`).
        """
        for name, value in (("num_neighbors", num_neighbors), ("ef_construction", ef_construction)):
            _check_positive_int(value, name)
        _check_positive_int(ef_search, "ef_search")
        index = faiss.IndexHNSWFlat(vectors.shape[1], num_neighbors, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.add(vectors.numpy())
        return cls(index, ef_search), None

    @classmethod
    def from_saved(cls, vectors: torch.Tensor, tensors: dict[str, torch.Tensor], config: dict) -> "FaissSearch":
        """The saved graph, given back its vectors (saved once, in the file's `vectors`, not again by faiss)."""
        index = faiss.deserialize_index(tensors["hnsw_graph"].numpy(), faiss.IO_FLAG_SKIP_STORAGE)
        storage = faiss.IndexFlatIP(vectors.shape[1])
        storage.add(vectors.numpy())
        index.storage = storage
        index.referenced_objects = [storage]  # faiss' own way of keeping a Python-made member alive
        return cls(index, config["ef_search"])

    @property
    def dim(self) -> int:
        return self.index.d

    @property
    def vectors(self) -> torch.Tensor:
        """A copy of the unit vectors, read back from faiss' storage."""
        return torch.from_numpy(self.index.reconstruct_n(0, self.index.ntotal))

    @property
    def nbytes(self) -> int:
        hnsw = self.index.hnsw
        graph = 4 * hnsw.neighbors.size() + 8 * hnsw.offsets.size() + 4 * hnsw.levels.size()
        return 4 * self.index.ntotal * self.index.d + graph

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The tensors and settings saved next to the vectors and ids: the graph and the default `ef_search`."""
        graph = torch.from_numpy(faiss.serialize_index(self.index, faiss.IO_FLAG_SKIP_STORAGE))
        return {"hnsw_graph": graph}, {"ef_search": self.ef_search}

    def search(self, queries: torch.Tensor, k: int, ef_search: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`(scores, rows)`, each `(num_queries, k)`, for unit queries; missing places have score `-inf`, row -1."""
        if ef_search is not None:
            _check_positive_int(ef_search, "ef_search")
        # at least k candidates, as hnswlib and nmslib require (faiss would return fewer results than it could)
        ef_search = max(ef_search or self.ef_search, k)
        if ef_search not in self._parameters:
            self._parameters[ef_search] = faiss.SearchParametersHNSW(efSearch=ef_search)
        scores, rows = self.index.search(queries.contiguous().numpy(), k, params=self._parameters[ef_search])
        scores, rows = torch.from_numpy(scores), torch.from_numpy(rows)
        return scores.masked_fill_(rows < 0, float("-inf")), rows


SEARCHES = {search.backend: search for search in (ExactSearch, IvfSearch, FaissSearch)}


def settings_of(backend: str) -> list[str]:
    """The names of the build settings of `backend` (`"exact"`, `"ivf"` or `"faiss"`)."""
    return list(inspect.signature(SEARCHES[backend].build).parameters)[1:]  # after `vectors`


def resolve_backend(backend: str, settings: dict | None = None) -> str:
    """
    The backend `backend` names here. `"auto"` is the backend that the build `settings` belong to, if any are given
    (so that a call means the same with or without faiss installed), else `"faiss"` where faiss is installed and
    `"ivf"` otherwise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        owners = [owner for owner in ("ivf", "faiss") if settings and set(settings) <= set(settings_of(owner))]
        backend = owners[0] if owners else ("faiss" if faiss is not None else "ivf")
    if backend == "faiss" and faiss is None:
        raise ImportError('`backend="faiss"` needs faiss: `pip install "ulmfit[ann]"` (or `faiss-cpu`).')
    return backend


class DeviseIndex:
    """
    Cosine nearest-neighbour search over unit vectors, exact or approximate, behind one interface.

    Build one with [`DeviseIndex.build`], search it with [`DeviseIndex.search`], and save and load it with
    [`DeviseIndex.save`] and [`DeviseIndex.load`]. Results are `(scores, ids)` for every backend: cosine similarities
    and the caller's ids, best first.

    Args:
        search (`ExactSearch`, `IvfSearch` or `FaissSearch`): the backend, holding the unit vectors.
        ids (`torch.LongTensor` of shape `(num_vectors,)`): the caller's id of each of the backend's rows.
    """

    def __init__(self, search: ExactSearch | IvfSearch | FaissSearch, ids: torch.Tensor):
        self._search = search
        self.ids = ids
        self._ids_or_missing = F.pad(ids, (0, 1), value=-1)  # row -1, a missing result, reads id -1

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __repr__(self) -> str:
        return f"DeviseIndex(backend={self.backend!r}, num_vectors={len(self)}, dim={self.dim})"

    @property
    def backend(self) -> str:
        """`"exact"`, `"ivf"` or `"faiss"`."""
        return self._search.backend

    @property
    def vectors(self) -> torch.Tensor:
        """The unit vectors, `(num_vectors, dim)`, in the order of `ids` (the IVF index stores them by cell)."""
        return self._search.vectors

    @property
    def dim(self) -> int:
        return self._search.dim

    @property
    def nbytes(self) -> int:
        """Memory the index holds: the vectors and the backend's structure, ids included."""
        return self._search.nbytes + self.ids.nbytes

    @property
    def num_lists(self) -> int:
        """The IVF index's number of cells."""
        return self._ivf().num_lists

    @property
    def nprobe(self) -> int:
        """The IVF index's default number of cells scanned per query."""
        return self._ivf().nprobe

    @property
    def centroids(self) -> torch.Tensor:
        """The IVF index's unit cell centroids, `(num_lists, dim)`."""
        return self._ivf().centroids

    @property
    def ef_search(self) -> int:
        """The faiss HNSW index's default number of candidates kept per query."""
        if self.backend != "faiss":
            raise AttributeError(f"`ef_search` is a setting of the faiss backend; this index is {self.backend!r}.")
        return self._search.ef_search

    @classmethod
    @torch.no_grad()
    def build(
        cls, vectors: torch.Tensor, ids: torch.Tensor | None = None, backend: str = "auto", **settings
    ) -> "DeviseIndex":
        """
        Normalise `vectors` and index them.

        Args:
            vectors: `(num_vectors, dim)`, any norm, finite and non-zero.
            ids: the caller's id of each vector (integers >= 0); defaults to its row number.
            backend: `"exact"`, `"ivf"`, `"faiss"` or `"auto"`: the backend `settings` belong to if any are given,
                else `"faiss"` where faiss is installed and `"ivf"` otherwise.
            settings: the backend's settings, each with a default: for `"ivf"` `num_lists`, `nprobe`,
                `num_iterations`, `training_size`, `seed` (see [`IvfSearch.build`]); for `"faiss"` `num_neighbors`,
                `ef_construction`, `ef_search` (see [`FaissSearch.build`]); `"exact"` has none.
        """
        backend = resolve_backend(backend, settings)
        allowed = settings_of(backend)
        unknown = sorted(set(settings) - set(allowed))
        if unknown:
            raise ValueError(
                f"{', '.join(f'`{name}`' for name in unknown)} is not a setting of the {backend!r} backend "
                f"(its settings: {', '.join(allowed) or 'none'}); pick the backend it belongs to with `backend=`."
            )
        vectors = torch.as_tensor(vectors)
        if vectors.dim() != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
            raise ValueError(
                f"`vectors` must be a non-empty (num_vectors, dim) tensor, got shape {tuple(vectors.shape)}."
            )
        _check_finite(vectors, "vectors")
        zero_rows = (torch.linalg.vector_norm(vectors.float(), dim=1) == 0).nonzero()
        if len(zero_rows):
            raise ValueError(f"`vectors` row {int(zero_rows[0])} is all zeros: its cosine similarity is undefined.")
        num_vectors = vectors.shape[0]
        ids = torch.arange(num_vectors) if ids is None else torch.as_tensor(ids)
        if ids.shape != (num_vectors,) or ids.is_floating_point() or ids.is_complex():
            raise ValueError(
                f"`ids` must hold one integer id per vector ({num_vectors}), got {ids.dtype} of shape "
                f"{tuple(ids.shape)}."
            )
        if (ids < 0).any():
            raise ValueError("`ids` must be >= 0 (-1 marks a missing result).")

        vectors = F.normalize(vectors.detach().cpu().float(), dim=-1).contiguous()
        search, order = SEARCHES[backend].build(vectors, **settings)
        ids = ids.long().cpu()
        return cls(search, ids if order is None else ids[order].contiguous())

    @torch.no_grad()
    def search(
        self, queries: torch.Tensor, k: int = 10, nprobe: int | None = None, ef_search: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The `k` vectors of highest cosine similarity to each query.

        Args:
            queries: one query `(dim,)` or a batch `(num_queries, dim)`, any norm, finite.
            k: results per query.
            nprobe: `"ivf"` only: cells scanned (the index's `nprobe` by default).
            ef_search: `"faiss"` only: candidates kept while walking the graph (the index's `ef_search` by default).

        Returns:
            `(scores, ids)`, each `(num_queries, k)` (or `(k,)` for one query), best first. Where the index returns
            fewer than `k` vectors (it holds fewer, or the probed cells do), the missing places have score `-inf` and
            id -1.
        """
        _check_positive_int(k, "k")
        for name, value, backend in (("nprobe", nprobe, "ivf"), ("ef_search", ef_search, "faiss")):
            if value is not None and self.backend != backend:
                raise ValueError(f"`{name}` is a setting of the {backend!r} backend; this index is {self.backend!r}.")
        queries = torch.as_tensor(queries)
        single = queries.dim() == 1
        if queries.dim() not in (1, 2) or queries.shape[-1] != self.dim:
            raise ValueError(
                f"`queries` must be one ({self.dim},) vector or a (num_queries, {self.dim}) batch, got shape "
                f"{tuple(queries.shape)}."
            )
        queries = queries.detach().cpu().float().reshape(-1, self.dim)
        _check_finite(queries, "queries")
        zero = (queries == 0).all(dim=1).nonzero()
        if len(zero):  # a zero vector has no direction: every cosine similarity would be 0
            raise ValueError(f"`queries` row {int(zero[0])} is all zeros: a query needs a direction to search.")
        queries = F.normalize(queries, dim=-1)

        settings = {name: value for name, value in (("nprobe", nprobe), ("ef_search", ef_search)) if value is not None}
        if len(queries):
            scores, rows = self._search.search(queries, k, **settings)
        else:  # an empty batch
            scores, rows = torch.empty(0, k), torch.empty(0, k, dtype=torch.long)
        if scores.shape[1] < k:  # exact search over fewer than k vectors
            scores = F.pad(scores, (0, k - scores.shape[1]), value=float("-inf"))
            rows = F.pad(rows, (0, k - rows.shape[1]), value=-1)
        ids = self._ids_or_missing[rows]
        return (scores[0], ids[0]) if single else (scores, ids)

    def save(self, path: str | os.PathLike):
        """Write the index to one safetensors file: the unit vectors, the ids and the backend's structure."""
        tensors, config = self._search.state()
        tensors = {"vectors": self.vectors, "ids": self.ids, **tensors}
        metadata = {"format": FILE_FORMAT, "backend": self.backend, "config": json.dumps(config)}
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"Cannot save the index to {os.fspath(path)!r}: the folder {folder!r} does not exist."
            )
        save_file(tensors, os.fspath(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = "auto") -> "DeviseIndex":
        """
        Read an index written by `save`.

        Args:
            backend: `"auto"` loads the saved backend as it was saved, unless it is `"faiss"` and faiss is missing:
                then the torch IVF index is rebuilt from the stored vectors, with a warning. Another backend is
                rebuilt from the stored vectors with its default settings (`"exact"` needs no building).
        """
        path = os.fspath(path)
        try:
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
        except FileNotFoundError:
            raise
        except Exception as error:  # safetensors' own error for a file that is not one
            raise ValueError(
                f"{path!r} is not a DeviseIndex file: it cannot be read as safetensors ({error})."
            ) from error
        if metadata.get("format") not in (FILE_FORMAT, "devise-ivf"):
            raise ValueError(f"{path!r} is not a DeviseIndex file.")
        saved = metadata.get("backend", "ivf")
        if backend == "auto" and saved == "faiss" and faiss is None:
            logger.warning(
                f"{path!r} holds a faiss HNSW index, but faiss is not installed: rebuilding it as the torch IVF index "
                'from the stored vectors (`pip install "ulmfit[ann]"` to load it as saved).'
            )
            backend = "ivf"
        backend = saved if backend == "auto" else resolve_backend(backend)
        tensors = load_file(path)
        vectors, ids = tensors.pop("vectors"), tensors.pop("ids")
        if backend == saved:
            return cls(SEARCHES[backend].from_saved(vectors, tensors, json.loads(metadata["config"])), ids)
        return cls.build(vectors, ids=ids, backend=backend)

    def _ivf(self) -> IvfSearch:
        if self.backend != "ivf":
            raise AttributeError(f"Only the IVF backend has cells; this index is {self.backend!r}.")
        return self._search


__all__ = ["BACKENDS", "DeviseIndex", "ExactSearch", "FaissSearch", "IvfSearch", "exact_search", "spherical_kmeans"]
