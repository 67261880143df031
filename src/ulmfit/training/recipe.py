"""ULMFiT's training plan, shared by the training scripts: stages, their learning rates and schedules.

A plan is a list of stages. Each stage trains the model's last layer groups (`freeze_to`, fastai's gradual
unfreezing) or all of them, for some epochs, with one schedule (one-cycle per stage, as fastai's `fit_one_cycle` calls)
peaking at the stage's learning rate, spread over the layer groups by the discriminative factor.
"""

from dataclasses import dataclass

import torch
from transformers import PretrainedConfig

from .param_groups import discriminative_learning_rates, freeze_to, unfreeze
from .schedules import one_cycle_schedule, slanted_triangular_schedule


@dataclass
class Stage:
    """One stage of a plan: `freeze_to=None` trains every layer group; `-k` trains the last k groups."""

    name: str
    epochs: int
    learning_rate: float
    freeze_to: int | None = None
    discriminative_factor: float = 1.0


def language_model_stages(
    fine_tuning: bool,
    num_train_epochs: int,
    learning_rate: float,
    frozen_epochs: int | None = None,
    frozen_learning_rate: float = 2e-2,
    discriminative_factor: float = 2.6,
) -> list[Stage]:
    """
    ULMFiT's language-model plan: when fine-tuning, `frozen_epochs` (default 1) of the last group only (the
    embedding and decoder: new words must find their place first), then every layer with discriminative learning
    rates; from scratch, every layer at one rate.
    """
    frozen_epochs = frozen_epochs if frozen_epochs is not None else int(fine_tuning)
    stages = []
    if frozen_epochs:
        stages.append(Stage("frozen", frozen_epochs, frozen_learning_rate, freeze_to=-1))
    factor = discriminative_factor if fine_tuning else 1.0
    stages.append(Stage("all", num_train_epochs, learning_rate, discriminative_factor=factor))
    return stages


def start_stage(model, optimizer: torch.optim.Optimizer, stage: Stage) -> None:
    """Freeze or unfreeze for `stage`; set each group's peak learning rate (one optimizer group per layer group)."""
    rates = discriminative_learning_rates(len(model.layer_groups()), stage.learning_rate, stage.discriminative_factor)
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = group["initial_lr"] = rate
    if stage.freeze_to is None:
        unfreeze(model)
    else:
        freeze_to(model, stage.freeze_to)


def make_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    pct_start: float = 0.25,
    moms: tuple[float, float, float] = (0.8, 0.7, 0.8),
    cut_frac: float = 0.1,
    ratio: float = 32.0,
):
    """`one_cycle` (fastai), `slanted_triangular` (ULMFiT's STLR) or `constant`, over `total_steps`."""
    if name == "one_cycle":
        return one_cycle_schedule(optimizer, total_steps, pct_start=pct_start, moms=moms)
    if name == "slanted_triangular":
        return slanted_triangular_schedule(optimizer, total_steps, cut_frac=cut_frac, ratio=ratio)
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"Unknown schedule {name!r}: use one_cycle, slanted_triangular or constant.")


def apply_config_overrides(config: PretrainedConfig, overrides: str) -> PretrainedConfig:
    """
    transformers' `--config_overrides "a=1,b=0.5"` (`PretrainedConfig.update_from_string`, spaces after commas
    allowed), then the config is rebuilt so that its own checks see the new values.
    """
    parts = [part.strip() for part in overrides.split(",") if part.strip()]
    typed = []
    for part in parts:
        key, _, value = part.partition("=")
        if hasattr(config, key.strip()) and getattr(config, key.strip()) is None:
            # `update_from_string` takes the type from the current value, and an optional field unset has none
            setattr(config, key.strip(), _literal(value.strip()))
        else:
            typed.append(part)
    if typed:
        config.update_from_string(",".join(typed))
    return type(config).from_dict(config.to_dict())


def _literal(value: str):
    """`1` -> 1, `0.5` -> 0.5, `true`/`false` -> bool, anything else the string itself."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


__all__ = ["Stage", "apply_config_overrides", "language_model_stages", "make_scheduler", "start_stage"]
