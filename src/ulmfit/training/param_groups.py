"""ULMFiT's discriminative fine-tuning and gradual unfreezing, over a model's `layer_groups()`.

Every ulmfit model that can be fine-tuned the ULMFiT way exposes `layer_groups()`: its parameters in ordered groups,
from the input side to the head. Nothing here matches parameter names or module positions.
"""

from torch import nn


def discriminative_learning_rates(num_groups: int, lr: float, factor: float = 2.6) -> list[float]:
    """
    One learning rate per layer group, the last group at `lr` and each earlier one divided by `factor` (the paper's
    eta^{l-1} = eta^l / 2.6; fastai's `slice(lr / 2.6**(n-1), lr)` spreads them the same way, geometrically).
    """
    if num_groups < 1:
        raise ValueError(f"`num_groups` must be at least 1, got {num_groups}.")
    if factor < 1:
        raise ValueError(f"The discriminative `factor` must be at least 1, got {factor}.")
    return [lr / factor ** (num_groups - 1 - index) for index in range(num_groups)]


def discriminative_param_groups(
    model: nn.Module, lr: float, factor: float = 2.6, weight_decay: float = 0.0
) -> list[dict]:
    """Optimizer parameter groups, one per layer group of `model`, with discriminative learning rates."""
    groups = model.layer_groups()
    rates = discriminative_learning_rates(len(groups), lr, factor)
    return [
        {"params": params, "lr": rate, "weight_decay": weight_decay} for params, rate in zip(groups, rates) if params
    ]


def freeze_to(model: nn.Module, n: int) -> None:
    """
    fastai's `freeze_to`: train only the layer groups from index `n` on (negative counts from the end:
    `freeze_to(model, -1)` trains the last group only), freeze the others.
    """
    groups = model.layer_groups()
    if not -len(groups) <= n < len(groups):
        raise ValueError(f"The model has {len(groups)} layer groups; cannot freeze to {n}.")
    start = n % len(groups)
    for index, params in enumerate(groups):
        for param in params:
            param.requires_grad_(index >= start)


def unfreeze(model: nn.Module) -> None:
    """Train every layer group."""
    for params in model.layer_groups():
        for param in params:
            param.requires_grad_(True)


__all__ = ["discriminative_learning_rates", "discriminative_param_groups", "freeze_to", "unfreeze"]
