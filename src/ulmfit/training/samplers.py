"""Length-bucketed batching for classifiers: fastai's `SortishSampler` (training) and `SortSampler` (evaluation).

Both are *batch* samplers over whole documents: they yield lists of dataset indices, one list per batch, so little
padding is wasted on documents of similar length. They know nothing about processes: `accelerator.prepare` shards
their batches across processes (process r takes batches r, r + n, ...), and because every process draws the same
order from `(seed, epoch)`, the shards are disjoint and cover the data. That is what went wrong in fastai/fastai#2501,
where every process saw the same unshuffled order under DDP and accuracy fell to 50 %.
"""

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Sampler


class SortishBatchSampler(Sampler[list[int]]):
    """
    fastai's `SortishSampler`, as batches: every epoch, a seeded permutation of the documents is cut into chunks of
    `batch_size * chunk_batches`, each chunk is sorted by length (longest first) and cut into batches, and the batches
    are shuffled, except that the batch holding the longest document goes first (an out-of-memory error then shows
    at once, as fastai arranges).

    Args:
        lengths: the length (in tokens) of every document.
        batch_size: documents per batch.
        seed: seed of the shuffles; every process must use the same.
        chunk_batches: batches per sorted chunk (fastai sorts chunks of 50 batches).
        drop_last: drop a last, smaller batch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        chunk_batches: int = 50,
        drop_last: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
        if len(lengths) == 0:
            raise ValueError("Cannot batch an empty dataset.")
        self.lengths = torch.as_tensor(list(lengths))
        self.batch_size, self.seed, self.chunk_batches, self.drop_last = batch_size, seed, chunk_batches, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int):
        """Select the epoch whose order `__iter__` yields (call it every epoch, as with `DistributedSampler`)."""
        self.epoch = epoch

    def __len__(self) -> int:
        count = len(self.lengths) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator)
        chunk_size = self.batch_size * self.chunk_batches
        batches = []
        for chunk in order.split(chunk_size):
            by_length = chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)]
            batches.extend(by_length.split(self.batch_size))
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        longest = max(range(len(batches)), key=lambda i: int(self.lengths[batches[i]].max()))
        rest = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist() if i != longest]
        for batch in [batches[longest], *rest]:
            yield batch.tolist()


class SortedBatchSampler(Sampler[list[int]]):
    """fastai's `SortSampler`, as batches: documents longest first, for evaluation and inference (no shuffling)."""

    def __init__(self, lengths: Sequence[int], batch_size: int):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
        self.order = torch.argsort(torch.as_tensor(list(lengths)), descending=True, stable=True)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.order.split(self.batch_size):
            yield batch.tolist()


def loader_for(dataset, batch_sampler: Sampler[list[int]], collate_fn=None, num_workers: int = 0) -> DataLoader:
    """
    A `DataLoader` over `batch_sampler`'s batches with its own generator: building or iterating it never draws from
    the global RNG, so a resumed run builds its loaders without shifting the dropout masks (or teacher-forcing draws)
    it continues with.
    """
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
    )


__all__ = ["SortedBatchSampler", "SortishBatchSampler", "loader_for"]
