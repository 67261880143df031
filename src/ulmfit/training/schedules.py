"""Learning-rate (and momentum) schedules of ULMFiT and fastai.

- `one_cycle_schedule`: fastai's `fit_one_cycle` (Smith 2018): cosine warm-up from `lr_max / div` to `lr_max` over
  `pct_start` of the steps, cosine annealing down to `lr_max / div_final`, and momentum (Adam's beta1) cycled the
  other way, high -> low -> high. It is `torch.optim.lr_scheduler.OneCycleLR` with fastai's parameters translated.
- `slanted_triangular_schedule`: ULMFiT's STLR (Howard & Ruder 2018, eq. 3): a linear rise over `cut_frac` of the
  steps, then a linear decay, from `lr_max / ratio` to `lr_max` and back.

Both take an optimizer whose groups already hold their (discriminative) learning rates as `lr`: every group follows
the same shape, scaled to its own peak.
"""

import math

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR


def one_cycle_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    pct_start: float = 0.25,
    div: float = 25.0,
    div_final: float = 1e5,
    moms: tuple[float, float, float] | None = (0.8, 0.7, 0.8),
) -> LRScheduler:
    """
    fastai's one-cycle policy over `total_steps` optimizer steps, each group peaking at its current `lr`.

    Args:
        optimizer: the optimizer; each group's `lr` is its peak learning rate.
        total_steps: number of `scheduler.step()` calls in the cycle.
        pct_start: fraction of the steps spent warming up (fastai 0.25).
        div: the cycle starts at `lr / div` (fastai 25).
        div_final: and ends at `lr / div_final` (fastai 1e5).
        moms: (start, middle, end) momentum, i.e. Adam's beta1 (fastai's `TextLearner` uses (0.8, 0.7, 0.8));
            `None` leaves momentum alone.
    """
    if total_steps < 1:
        raise ValueError(f"`total_steps` must be at least 1, got {total_steps}.")
    if not 0 < pct_start < 1:
        raise ValueError(f"`pct_start` must be in (0, 1), got {pct_start}.")
    if pct_start * total_steps == 1:
        # OneCycleLR's warm-up would then span zero steps and divide by zero; start at the peak instead
        pct_start *= 0.999
    cycle_momentum = moms is not None
    high, low = (moms[0], moms[1]) if cycle_momentum else (0.95, 0.85)
    return OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=pct_start,
        anneal_strategy="cos",
        cycle_momentum=cycle_momentum,
        base_momentum=low,
        max_momentum=high,
        div_factor=div,
        final_div_factor=div_final / div,  # torch divides the *initial* lr by this
    )


def slanted_triangular_factor(step: int, total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """The STLR multiplier of the peak learning rate at `step` (0-based), from `1 / ratio` up to 1 and back."""
    cut = max(1, math.floor(total_steps * cut_frac))
    # p rises from 0 to 1 over the first `cut` steps, then falls back to 0 at the end
    p = step / cut if step < cut else 1 - (step - cut) / max(1, cut * (1 / cut_frac - 1))
    return (1 + max(p, 0.0) * (ratio - 1)) / ratio


def slanted_triangular_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0
) -> LRScheduler:
    """ULMFiT's slanted triangular learning rates (STLR) over `total_steps`, peaking at each group's current `lr`."""
    if total_steps < 1:
        raise ValueError(f"`total_steps` must be at least 1, got {total_steps}.")
    if not 0 < cut_frac < 1:
        raise ValueError(f"`cut_frac` must be in (0, 1), got {cut_frac}.")
    if ratio < 1:
        raise ValueError(f"`ratio` must be at least 1, got {ratio}.")
    return LambdaLR(optimizer, lambda step: slanted_triangular_factor(step, total_steps, cut_frac, ratio))


def scale_learning_rates(optimizer: torch.optim.Optimizer, scale: float) -> None:
    """
    Multiply every group's scheduled learning rate by `scale` for the coming step: AWD-LSTM's variable-length BPTT
    scales it by seq_len / bptt, so that short windows do not take full-size steps. Scales never compound: when the
    scheduler has not stepped since the last call (gradient accumulation), the scale applies to the same scheduled
    value.
    """
    for group in optimizer.param_groups:
        unscaled = group["_unscaled_lr"] if group.get("_scaled_lr") == group["lr"] else group["lr"]
        group["_unscaled_lr"], group["lr"] = unscaled, unscaled * scale
        group["_scaled_lr"] = group["lr"]


__all__ = [
    "one_cycle_schedule",
    "scale_learning_rates",
    "slanted_triangular_factor",
    "slanted_triangular_schedule",
]
