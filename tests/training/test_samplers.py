import pytest
import torch
from accelerate.data_loader import BatchSamplerShard

from ulmfit.training.samplers import SortedBatchSampler, SortishBatchSampler, loader_for


LENGTHS = torch.randint(5, 500, (1000,), generator=torch.Generator().manual_seed(0)).tolist()


def padding_waste(batches):
    return sum(max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in batches)


def test_every_document_once_per_epoch_longest_batch_first():
    sampler = SortishBatchSampler(LENGTHS, batch_size=32)
    batches = list(sampler)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000)) and len(batches) == len(sampler) == 32
    assert max(LENGTHS) in [LENGTHS[i] for i in batches[0]]


def test_sortish_batches_waste_far_less_padding_than_random_ones():
    sortish = list(SortishBatchSampler(LENGTHS, batch_size=32))
    random_batches = torch.randperm(1000, generator=torch.Generator().manual_seed(1)).split(32)
    assert padding_waste(sortish) < 0.2 * padding_waste([b.tolist() for b in random_batches])


def test_order_is_reproducible_and_changes_every_epoch():
    a, b = SortishBatchSampler(LENGTHS, 32, seed=3), SortishBatchSampler(LENGTHS, 32, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert sorted(i for batch in a for i in batch) == list(range(1000))


def test_accelerate_shards_are_disjoint_and_cover_the_data():
    sampler = SortishBatchSampler(LENGTHS, batch_size=32, seed=5)
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=rank)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1])  # every process takes the same number of steps
    seen = [i for shard in shards for batch in shard for i in batch]
    assert set(seen) == set(range(1000))
    assert set(i for b in shards[0] for i in b).isdisjoint(i for b in shards[1][:-1] for i in b)


def test_drop_last_and_sorted_evaluation_batches():
    assert all(len(batch) == 32 for batch in SortishBatchSampler(LENGTHS, 32, drop_last=True))
    sorted_batches = list(SortedBatchSampler(LENGTHS, batch_size=100))
    flat = [LENGTHS[i] for batch in sorted_batches for i in batch]
    assert flat == sorted(LENGTHS, reverse=True) and len(sorted_batches) == 10
    with pytest.raises(ValueError, match="empty"):
        SortishBatchSampler([], 4)


def test_a_loader_never_draws_from_the_global_random_generator():
    state = torch.get_rng_state()
    loader = loader_for(list(range(6)), SortedBatchSampler([1] * 6, 4))
    assert [batch.tolist() for batch in loader] == [[0, 1, 2, 3], [4, 5]]
    assert torch.equal(torch.get_rng_state(), state)
