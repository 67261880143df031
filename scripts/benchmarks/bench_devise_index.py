"""Recall@k and speed of `DeviseIndex`'s backends (exact, torch IVF, faiss HNSW), and of faiss' IVF and nmslib's HNSW.

The data is a synthetic gallery (`--synthetic N`, the default 1,000,000 x 300) or word vectors (`--vectors FILE`).
The synthetic vectors are a Gaussian mixture of 1,000 classes, standing in for image embeddings (which cluster by
class): each vector is its class centre (a standard normal draw) plus noise with a decaying spectrum (standard
deviation proportional to 1/sqrt(i) along the i-th axis of a random basis, `--noise` in root-mean-square per
dimension), then normalised. With the default `--noise 1.75`, on 1,000,000 vectors, the torch IVF index needs 64 of
its 4,000 cells (1.6%) for recall@10 0.95, against 32 of 1,264 (2.5%) on real GloVe vectors: a little easier than
real word vectors, where uniform random vectors would be far harder and near-duplicates trivial (with 1,000 classes,
noise 1.5 needs 16 cells and 1.25 needs 8). Queries are never in the index: fresh draws from the mixture, or words held
out of the index.

Each method is built once (build time, memory of its own arrays) and searched at each value of its knob (`nprobe` for
IVF, `ef_search` for HNSW): recall@k against exact search, and queries/s for all queries in one call ("batched", on
`--threads` threads: torch, faiss and nmslib alike) and for one query at a time ("single", the first
`--single_queries`, on one thread: one query per thread, as a server answering concurrent requests runs; on a shared
machine, waking a second thread for every small query costs milliseconds), the best of `--repeats` runs after a
warm-up, with the ratio to exact search measured in the same run. The summary keeps, for each method, its cheapest
setting with recall@k >= `--target_recall`.

    PYTHONPATH=src python scripts/benchmarks/bench_devise_index.py --synthetic 1000000 --methods ivf faiss faiss-ivf
    PYTHONPATH=src python scripts/benchmarks/bench_devise_index.py \
        --vectors ../shared/data/vectors/glove.6B.50d.100k.txt --methods ivf faiss faiss-ivf nmslib

faiss' IVF (`faiss-ivf`: faiss' `IndexIVFFlat` with its own k-means) and nmslib's HNSW (`nmslib`: the 2018 notebook's
library, `pip install nmslib`) are references; they are not `DeviseIndex` backends.
"""

import argparse
import contextlib
import json
import math
import resource
import time

import torch
from torch.nn import functional as F

from ulmfit.models.devise import index_devise
from ulmfit.models.devise.index_devise import DeviseIndex
from ulmfit.models.devise.tokenization_devise import read_word_vectors


faiss = index_devise.faiss  # None where faiss is not installed: its rows are skipped


def mixture(count: int, dim: int, num_classes: int, noise: float, seed: int, generator: torch.Generator):
    """
    `count` unit vectors of a Gaussian mixture: the centres and the noise basis come from `seed` (the same for the
    gallery and its queries), the draws from `generator`.
    """
    fixed = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=fixed)
    spectrum = torch.arange(1, dim + 1).float() ** -0.5
    spectrum = noise * spectrum / spectrum.pow(2).mean().sqrt()  # root-mean-square `noise` per dimension
    basis = torch.linalg.qr(torch.randn(dim, dim, generator=fixed))[0]
    vectors = torch.empty(count, dim)
    for chunk in torch.arange(count).split(2**18):  # in chunks: the noise of 1,000,000 vectors is 1.2 GB
        classes = torch.randint(num_classes, (len(chunk),), generator=generator)
        draws = (torch.randn(len(chunk), dim, generator=generator) * spectrum) @ basis.T
        vectors[chunk] = F.normalize(centres[classes] + draws, dim=-1)
    return vectors


def recall(found: torch.Tensor, expected: torch.Tensor) -> float:
    """Share of the exact top-k that the index also returned."""
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, expected))
    return hits / expected.numel()


@contextlib.contextmanager
def cpu_threads(count: int):
    """Run torch and faiss (and nmslib, which reads `torch.get_num_threads()` here) on `count` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    if faiss is not None:
        faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        if faiss is not None:
            faiss.omp_set_num_threads(previous)


def queries_per_second(search, queries: torch.Tensor, single: bool, repeats: int) -> float:
    """
    Queries/s of searching `queries` one by one (`single`) or as one batch, the best of `repeats` runs after a
    warm-up, as `timeit` does: on a shared machine the best run is the one least disturbed by other work.
    """
    search(queries[:1])
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        if single:
            for query in queries:
                search(query[None])
        else:
            search(queries)
        runs.append(time.perf_counter() - start)
    return len(queries) / min(runs)


class FaissIvf:
    """faiss' own `IndexIVFFlat` (inner product, faiss' k-means), searched with the same interface as a DeviseIndex."""

    def __init__(self, vectors: torch.Tensor, num_lists: int, num_iterations: int, seed: int):
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        self.index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], num_lists, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.niter = num_iterations
        self.index.cp.seed = seed
        self.index.train(vectors.numpy())
        self.index.add(vectors.numpy())
        sizes = [self.index.invlists.list_size(cell) for cell in range(num_lists)]
        self.nbytes = 4 * sum(sizes) * (vectors.shape[1] + 2) + 4 * num_lists * vectors.shape[1]  # codes, ids, centres

    def search(self, queries: torch.Tensor, k: int, nprobe: int):
        parameters = faiss.SearchParametersIVF(nprobe=nprobe)
        return [torch.from_numpy(a) for a in self.index.search(queries.numpy(), k, params=parameters)]


class NmslibHnsw:
    """nmslib's HNSW with cosine similarity, the 2018 notebook's index, searched like a DeviseIndex."""

    def __init__(self, vectors: torch.Tensor, num_neighbors: int, ef_construction: int, threads: int):
        import nmslib

        self.index = nmslib.init(method="hnsw", space="cosinesimil")
        self.index.addDataPointBatch(vectors.numpy())
        settings = {"M": num_neighbors, "efConstruction": ef_construction, "post": 0, "indexThreadQty": threads}
        self.index.createIndex(settings, print_progress=False)
        self.nbytes = None  # nmslib does not report its memory

    def search(self, queries: torch.Tensor, k: int, ef_search: int):
        self.index.setQueryTimeParams({"efSearch": ef_search})
        results = self.index.knnQueryBatch(queries.numpy(), k=k, num_threads=torch.get_num_threads())
        rows = torch.full((len(queries), k), -1, dtype=torch.long)
        for row, (found, _) in enumerate(results):
            rows[row, : len(found)] = torch.from_numpy(found.astype("int64"))
        return None, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # data
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--vectors", help="word2vec/GloVe text file (e.g. glove.6B.50d.100k.txt)")
    source.add_argument("--synthetic", type=int, default=1_000_000, help="number of synthetic vectors (default)")
    parser.add_argument("--dim", type=int, default=300, help="dimension of the synthetic vectors")
    parser.add_argument("--num_classes", type=int, default=1000, help="classes of the synthetic mixture")
    parser.add_argument("--noise", type=float, default=1.75, help="rms noise per dimension of the synthetic mixture")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries (recall, batched speed)")
    parser.add_argument("--single_queries", type=int, default=100, help="queries timed one at a time")
    parser.add_argument("--k", type=int, default=10, help="neighbours per query (recall@k)")
    # methods and their settings
    parser.add_argument("--num_lists", type=int, default=None, help="IVF cells (default ~4 sqrt(N))")
    parser.add_argument("--num_iterations", type=int, default=10, help="IVF k-means iterations (faiss' default)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 24, 32, 48, 64, 96, 128, 192, 256])
    parser.add_argument("--num_neighbors", type=int, default=32, help="HNSW links per vector (M)")
    parser.add_argument("--ef_construction", type=int, default=40, help="HNSW efConstruction")
    parser.add_argument("--ef_search", type=int, nargs="+", default=[16, 32, 48, 64, 96, 128, 192, 256, 384, 512])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["exact", "ivf", "faiss"],
        choices=["exact", "ivf", "faiss", "faiss-ivf", "nmslib"],
        help="DeviseIndex backends, and the references faiss-ivf and nmslib; exact search always runs first",
    )
    # measurement
    parser.add_argument("--target_recall", type=float, default=0.95)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best is kept)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the batched searches and the builds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if faiss is not None:
        faiss.omp_set_num_threads(args.threads)

    # 1. Data and held-out queries
    generator = torch.Generator().manual_seed(args.seed + 1)
    if args.vectors:
        _, array = read_word_vectors(args.vectors)
        words = F.normalize(torch.from_numpy(array), dim=-1)
        held_out = torch.randperm(len(words), generator=generator)
        vectors, queries = words[held_out[args.queries :]].contiguous(), words[held_out[: args.queries]]
        data = f"{args.vectors}: {len(vectors):,} words indexed, {args.queries:,} held out as queries"
    else:
        vectors = mixture(args.synthetic, args.dim, args.num_classes, args.noise, args.seed, generator)
        queries = mixture(args.queries, args.dim, args.num_classes, args.noise, args.seed, generator)
        data = f"Gaussian mixture, {args.num_classes:,} classes, noise {args.noise}: {len(vectors):,} vectors indexed"
    num_lists = args.num_lists or round(4 * math.sqrt(len(vectors)))
    single_queries = queries[: args.single_queries]
    versions = f"torch {torch.__version__}" + (f", faiss {faiss.__version__}" if faiss is not None else "")
    print(f"{data}; {len(vectors):,} x {vectors.shape[1]}, {args.threads} thread(s) batched, 1 single; {versions}")

    # 2. The methods: name -> (label, knob, build, search(index, queries, value) -> (scores, ids)); exact comes first
    available = {
        "exact": (
            "exact",
            None,
            lambda: DeviseIndex.build(vectors, backend="exact"),
            lambda index, q, _: index.search(q, args.k),
        ),
        "ivf": (
            "ivf (torch)",
            "nprobe",
            lambda: DeviseIndex.build(
                vectors, backend="ivf", num_lists=num_lists, num_iterations=args.num_iterations, seed=args.seed
            ),
            lambda index, q, nprobe: index.search(q, args.k, nprobe=nprobe),
        ),
        "faiss": (
            "faiss HNSW",
            "ef_search",
            lambda: DeviseIndex.build(
                vectors, backend="faiss", num_neighbors=args.num_neighbors, ef_construction=args.ef_construction
            ),
            lambda index, q, ef_search: index.search(q, args.k, ef_search=ef_search),
        ),
        "faiss-ivf": (
            "faiss IVF (reference)",
            "nprobe",
            lambda: FaissIvf(vectors, num_lists, args.num_iterations, args.seed),
            lambda index, q, nprobe: index.search(q, args.k, nprobe),
        ),
        "nmslib": (
            "nmslib HNSW (reference)",
            "ef_search",
            lambda: NmslibHnsw(vectors, args.num_neighbors, args.ef_construction, args.threads),
            lambda index, q, ef_search: index.search(q, args.k, ef_search),
        ),
    }
    if faiss is None and {"faiss", "faiss-ivf"} & set(args.methods):
        print("faiss is not installed: its methods are skipped")
    names = ["exact"] + [name for name in args.methods if name != "exact" and (faiss or "faiss" not in name)]
    methods = [available[name] for name in names]

    # 3. Build, then sweep each method's knob
    rows, expected = [], None
    print(f"{'method':<24} {'setting':>14} {'recall@' + str(args.k):>9} {'batched q/s':>12} {'single q/s':>11}")
    for name, knob, build, search in methods:
        start = time.perf_counter()
        index = build()
        build_seconds = time.perf_counter() - start
        nbytes = index.nbytes
        print(f"{name}: built in {build_seconds:.1f} s" + (f", {nbytes / 2**20:,.0f} MiB" if nbytes else ""))
        values = [None] if knob is None else args.nprobe if knob == "nprobe" else args.ef_search
        for value in values:
            if knob == "nprobe" and value > num_lists:
                break
            _, found = search(index, queries, value)
            if expected is None:  # exact search comes first: the reference
                expected = found
            found_recall = recall(found, expected)
            run = lambda q, index=index, search=search, value=value: search(index, q, value)  # noqa: E731
            batched = queries_per_second(run, queries, False, args.repeats)
            with cpu_threads(1):
                single = queries_per_second(run, single_queries, True, args.repeats)
            setting = "" if knob is None else f"{knob} {value}"
            print(f"{name:<24} {setting:>14} {found_recall:>9.4f} {batched:>12,.0f} {single:>11,.0f}", flush=True)
            rows.append(
                {
                    "method": name,
                    "setting": setting,
                    "recall": found_recall,
                    "batched_qps": batched,
                    "single_qps": single,
                    "build_seconds": build_seconds,
                    "nbytes": nbytes,
                }
            )
            if found_recall >= 0.999 and knob is not None:  # more effort only costs time from here on
                break
        del index

    # 4. Summary: each method's cheapest setting at the target recall, against exact search measured in this run
    exact = rows[0]
    print(f"\nrecall@{args.k} >= {args.target_recall}, the cheapest setting of each method; x = speed-up over exact")
    print("| method | setting | recall@10 | batched q/s | x | single q/s | x | build | memory |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for name, *_ in methods:
        reaching = [row for row in rows if row["method"] == name and row["recall"] >= args.target_recall]
        if not reaching:
            print(f"| {name} | none tried reaches {args.target_recall} | | | | | | | |")
            continue
        row = reaching[0]
        summary.append(row)
        memory = f"{row['nbytes'] / 2**20:,.0f} MiB" if row["nbytes"] else "n/a"
        print(
            f"| {name} | {row['setting'] or '-'} | {row['recall']:.3f} | {row['batched_qps']:,.0f} | "
            f"{row['batched_qps'] / exact['batched_qps']:.1f} | {row['single_qps']:,.0f} | "
            f"{row['single_qps'] / exact['single_qps']:.1f} | {row['build_seconds']:.0f} s | {memory} |"
        )
    fastest = max(summary, key=lambda row: row["single_qps"])
    print(f"fastest one query at a time at recall@{args.k} >= {args.target_recall}: {fastest['method']}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"peak resident memory of the process: {peak:.1f} GiB")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
