"""Recall@10 and speed of `DeviseIndex` (IVF, pure torch) against exact cosine search.

The vectors are GloVe word vectors (100,000 x 50, `--vectors`), the searches of the notebook's image -> word step, or
synthetic clustered unit vectors (`--synthetic N`), standing in for image embeddings, which cluster by class. Queries
are database vectors with a little noise, searched one at a time (an interactive search) and as one batch.

    PYTHONPATH=src python scripts/benchmarks/bench_devise_index.py \
        --vectors ../shared/data/vectors/glove.6B.50d.100k.txt
    PYTHONPATH=src python scripts/benchmarks/bench_devise_index.py --synthetic 100000 --dim 300

It prints, for each `nprobe`, recall@10 against exact search and the speed-up over exact search, and the smallest
`nprobe` that reaches the target recall.
"""

import argparse
import time

import torch
from torch.nn import functional as F

from ulmfit.models.devise.index_devise import DeviseIndex, exact_search
from ulmfit.models.devise.tokenization_devise import read_word_vectors


def clustered(count: int, dim: int, clusters: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=generator)
    members = centres[torch.randint(clusters, (count,), generator=generator)]
    return F.normalize(members + 0.5 * torch.randn(count, dim, generator=generator), dim=-1)


def recall(found: torch.Tensor, expected: torch.Tensor) -> float:
    """Share of the exact top-k that the index also returned."""
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, expected))
    return hits / expected.numel()


def per_query_seconds(search, queries: torch.Tensor, batched: bool = False, repeats: int = 3) -> float:
    """
    Wall time per query of searching the queries one by one (or as one batch), the best of `repeats` runs after a
    warm-up, as `timeit` does: on a shared machine the best run is the one least disturbed by other work.
    """
    search(queries[:1])
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        if batched:
            search(queries)
        else:
            for query in queries:
                search(query[None])
        runs.append((time.perf_counter() - start) / len(queries))
    return min(runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--vectors", help="word2vec/GloVe text file (e.g. glove.6B.50d.100k.txt)")
    source.add_argument("--synthetic", type=int, help="number of synthetic clustered vectors")
    parser.add_argument("--dim", type=int, default=300, help="dimension of the synthetic vectors")
    parser.add_argument("--max_vectors", type=int, default=None, help="use only the first this-many vectors")
    parser.add_argument("--queries", type=int, default=500, help="number of queries")
    parser.add_argument("--k", type=int, default=10, help="neighbours per query (recall@k)")
    parser.add_argument("--num_lists", type=int, default=None, help="IVF cells (default ~8 sqrt(N))")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 48, 64, 96], help="values to try")
    parser.add_argument("--target_recall", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    # 1. Data and queries
    if args.vectors:
        _, array = read_word_vectors(args.vectors, max_words=args.max_vectors)
        vectors = torch.from_numpy(array)
    else:
        vectors = clustered(args.synthetic, args.dim, clusters=max(10, args.synthetic // 500), seed=args.seed)
    vectors = F.normalize(vectors, dim=-1)
    generator = torch.Generator().manual_seed(args.seed + 1)
    picked = torch.randperm(vectors.shape[0], generator=generator)[: args.queries]
    noise = 0.1 * torch.randn(args.queries, vectors.shape[1], generator=generator) / vectors.shape[1] ** 0.5
    queries = F.normalize(vectors[picked] + noise, dim=-1)

    # 2. Index
    start = time.perf_counter()
    index = DeviseIndex.build(vectors, num_lists=args.num_lists, seed=args.seed)
    build_seconds = time.perf_counter() - start
    print(
        f"{vectors.shape[0]:,} vectors x {vectors.shape[1]} dims, {args.queries} queries, "
        f"{index.num_lists} cells, built in {build_seconds:.1f} s, {args.threads} thread(s)"
    )

    # 3. Exact search: the reference results and timings
    _, expected = exact_search(vectors, queries, k=args.k)
    exact_one = per_query_seconds(lambda q: exact_search(vectors, q, k=args.k), queries)
    exact_batch = per_query_seconds(lambda q: exact_search(vectors, q, k=args.k), queries, batched=True)
    print(f"exact: {1000 * exact_one:.3f} ms/query one at a time, {1000 * exact_batch:.3f} ms/query batched")

    # 4. The index at each nprobe
    print(
        f"{'nprobe':>6} {'recall@' + str(args.k):>10} {'ms/query':>9} {'speed-up':>9} {'batched':>9} {'speed-up':>9}"
    )
    best = None
    for nprobe in args.nprobe:
        if nprobe > index.num_lists:
            break
        _, found = index.search(queries, k=args.k, nprobe=nprobe)
        found_recall = recall(found, expected)  # the index ids are row numbers, as exact search returns
        search = lambda q, n=nprobe: index.search(q, k=args.k, nprobe=n)  # noqa: E731
        one = per_query_seconds(search, queries)
        batch = per_query_seconds(search, queries, batched=True)
        print(
            f"{nprobe:>6} {found_recall:>10.4f} {1000 * one:>9.3f} {exact_one / one:>8.1f}x "
            f"{1000 * batch:>9.3f} {exact_batch / batch:>8.1f}x"
        )
        if best is None and found_recall >= args.target_recall:
            best = (nprobe, found_recall, exact_one / one, exact_batch / batch)
    if best is None:
        print(f"No nprobe tried reaches recall@{args.k} >= {args.target_recall}.")
    else:
        nprobe, found_recall, speed_one, speed_batch = best
        print(
            f"smallest nprobe with recall@{args.k} >= {args.target_recall}: {nprobe} (recall {found_recall:.4f}, "
            f"{speed_one:.1f}x faster one query at a time, {speed_batch:.1f}x batched)"
        )


if __name__ == "__main__":
    main()
