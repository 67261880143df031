import math

import pytest
import torch

from ulmfit.training import (
    one_cycle_schedule,
    scale_learning_rates,
    slanted_triangular_factor,
    slanted_triangular_schedule,
)


def optimizer_with(lrs):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    return torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], betas=(0.9, 0.99))


def run(scheduler, optimizer, steps):
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        moms.append(optimizer.param_groups[0]["betas"][0])
        optimizer.step()
        scheduler.step()
    return lrs, moms


def test_one_cycle_follows_fastai_shape_for_every_group():
    optimizer = optimizer_with([1e-3 / 2.6, 1e-3])
    lrs, moms = run(one_cycle_schedule(optimizer, total_steps=100), optimizer, 100)
    top = [row[1] for row in lrs]
    assert top[0] == pytest.approx(1e-3 / 25)  # starts at lr_max / div
    assert max(top) == pytest.approx(1e-3) and top.index(max(top)) == 24  # peaks after pct_start of the steps
    assert top[-1] < 1e-3 / 1000  # anneals towards lr_max / div_final
    assert lrs[50][0] / lrs[50][1] == pytest.approx(1 / 2.6)  # discriminative ratio kept throughout
    assert moms[0] == pytest.approx(0.8) and moms[24] == pytest.approx(0.7) and moms[-1] > 0.79


def test_slanted_triangular_matches_the_paper():
    total, cut_frac, ratio = 1000, 0.1, 32
    assert slanted_triangular_factor(0, total, cut_frac, ratio) == pytest.approx(1 / 32)
    assert slanted_triangular_factor(100, total, cut_frac, ratio) == pytest.approx(1.0)
    assert slanted_triangular_factor(50, total, cut_frac, ratio) == pytest.approx((1 + 0.5 * 31) / 32)
    # decays linearly back to lr/ratio at the last step
    assert slanted_triangular_factor(1000, total, cut_frac, ratio) == pytest.approx(1 / 32)
    optimizer = optimizer_with([0.01])
    lrs, _ = run(slanted_triangular_schedule(optimizer, total_steps=total), optimizer, 200)
    assert lrs[100][0] == pytest.approx(0.01) and lrs[0][0] == pytest.approx(0.01 / 32)


def test_length_scaling_never_compounds():
    optimizer = optimizer_with([1e-2])
    scheduler = slanted_triangular_schedule(optimizer, total_steps=10)
    scheduled = optimizer.param_groups[0]["lr"]
    scale_learning_rates(optimizer, 0.5)
    scale_learning_rates(optimizer, 0.5)  # no scheduler step in between: still half the scheduled value
    assert optimizer.param_groups[0]["lr"] == pytest.approx(scheduled * 0.5)
    optimizer.step()
    scheduler.step()
    fresh = optimizer.param_groups[0]["lr"]
    scale_learning_rates(optimizer, 2.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(fresh * 2.0)
    assert not math.isclose(fresh, scheduled)


@pytest.mark.parametrize("bad", [{"total_steps": 0}, {"total_steps": 10, "pct_start": 1.5}])
def test_one_cycle_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        one_cycle_schedule(optimizer_with([1e-3]), **bad)


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5])
def test_one_cycle_handles_very_short_stages(total_steps):
    optimizer = optimizer_with([1e-3])
    lrs, _ = run(one_cycle_schedule(optimizer, total_steps=total_steps), optimizer, total_steps)
    assert all(0 < row[0] <= 1e-3 for row in lrs)
