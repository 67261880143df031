"""The ULMFiT training recipe, shared by the scripts in `scripts/`: schedules, layer-group learning rates, data,
samplers, checkpoints and the staged plan (`recipe`)."""

from .param_groups import discriminative_learning_rates, discriminative_param_groups, freeze_to, unfreeze
from .samplers import SortedBatchSampler, SortishBatchSampler
from .schedules import (
    one_cycle_schedule,
    scale_learning_rates,
    slanted_triangular_factor,
    slanted_triangular_schedule,
)


__all__ = [
    "SortedBatchSampler",
    "SortishBatchSampler",
    "discriminative_learning_rates",
    "discriminative_param_groups",
    "freeze_to",
    "one_cycle_schedule",
    "scale_learning_rates",
    "slanted_triangular_factor",
    "slanted_triangular_schedule",
    "unfreeze",
]
