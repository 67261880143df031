"""Training code shared by the scripts in `scripts/`, in four parts.

- The steps every script takes in the same way (`script_steps`): the shared arguments (with `--cpu`), the
  `Accelerator`, resumable epochs of batches, the optimizer step, when to checkpoint, and the ending (model,
  results, model card, Hub).
- ULMFiT, the training recipe: `schedules` (one-cycle, slanted triangular), `param_groups` (discriminative learning
  rates, gradual unfreezing), `recipe` (the staged plan and its schedulers) and `samplers` (length-bucketed batches and
  their loaders).
  `ulmfit.training` itself exports the schedules, the layer-group functions and the samplers.
- Data and state: `data` (loading text corpora, AWD-LSTM's BPTT token stream) and `checkpoints` (resumable runs).
- Helpers for one model family each: `language_modeling` (vocabulary matching, evaluation, the learning-rate finder),
  `translation` (sentence pairs, their batches and evaluation, word vectors, teacher forcing) and `devise` (image
  datasets and batches, class-name vectors, cached backbone features, zero-shot metrics).

The other modules are imported by their path, e.g. `from ulmfit.training import script_steps`.
"""

from .param_groups import discriminative_learning_rates, discriminative_param_groups, freeze_to, unfreeze
from .samplers import SortedBatchSampler, SortishBatchSampler, loader_for
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
    "loader_for",
    "one_cycle_schedule",
    "scale_learning_rates",
    "slanted_triangular_factor",
    "slanted_triangular_schedule",
    "unfreeze",
]
