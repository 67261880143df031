"""Language-model recipe pieces used by `scripts/train_language_model.py`, kept here so they can be unit-tested.

- `match_embeddings`: fastai's `match_embeds` for fine-tuning on a corpus with another vocabulary.
- `evaluate_language_model`: validation loss, perplexity and next-token accuracy over a BPTT stream, with the state
  carried, gathered across processes, computed by the shipped `evaluate` module.
- `find_learning_rate` / `suggest_learning_rate`: fastai's `lr_find` (exponentially growing rate, smoothed loss,
  stop on divergence) and its `valley` suggestion.
"""

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from .. import metrics
from .schedules import scale_learning_rates


@torch.no_grad()
def match_embeddings(model, old_vocab: dict[str, int], new_vocab: dict[str, int]) -> dict[str, int]:
    """
    Re-index the embedding (and the tied decoder with its bias) of a pretrained `AwdLstmForCausalLM` from `old_vocab`
    to `new_vocab`: words in both keep their trained row; new words start from the mean row and the mean bias, as
    fastai's `match_embeds` (and the 2018 notebook's `row_m`) do. A word-initial subword piece (`"▁the"`, a
    unigram/BPE vocabulary replacing a word-level one) takes the row of the word it spells (`"the"`) when it is not
    in the old vocabulary itself. Returns counts: `kept` (same token), `spelled` (a piece from its word), `new`.
    """
    old_weight = model.get_input_embeddings().weight
    mean_row = old_weight.mean(0)
    new_weight = mean_row.repeat(len(new_vocab), 1)
    head = model.get_output_embeddings()
    old_bias = head.bias
    new_bias = None if old_bias is None else old_bias.mean().repeat(len(new_vocab))
    kept = spelled = 0
    for word, new_index in new_vocab.items():
        old_index, same = old_vocab.get(word), True
        if old_index is None and word.startswith("▁") and len(word) > 1:
            old_index, same = old_vocab.get(word[1:]), False
        if old_index is not None and old_index < old_weight.size(0):
            new_weight[new_index] = old_weight[old_index]
            if new_bias is not None:
                new_bias[new_index] = old_bias[old_index]
            kept, spelled = kept + same, spelled + (not same)

    embedding = nn.Embedding(len(new_vocab), new_weight.size(1), padding_idx=model.config.pad_token_id)
    embedding.weight.data.copy_(new_weight)
    model.set_input_embeddings(embedding)
    new_head = nn.Linear(new_weight.size(1), len(new_vocab), bias=new_bias is not None)
    new_head.weight.data.copy_(new_weight)
    if new_bias is not None:
        new_head.bias.data.copy_(new_bias)
    model.set_output_embeddings(new_head)
    model.config.vocab_size = len(new_vocab)
    if model.config.tie_word_embeddings:
        model.tie_weights()
    return {"kept": kept, "spelled": spelled, "new": len(new_vocab) - kept - spelled}


@torch.no_grad()
def evaluate_language_model(model, stream, accelerator, max_windows: int | None = None) -> dict[str, float]:
    """
    Loss, perplexity and next-token accuracy of `model` on `stream` (a `LanguageModelStream`), the state carried
    across windows as in training. Every process scores its rows; the metric sees all of them.
    """
    metric = metrics.load("language_model")
    was_training = model.training
    model.eval()
    state = None
    for index, window in enumerate(stream):
        if max_windows is not None and index >= max_windows:
            break
        inputs, targets = window["input_ids"].to(accelerator.device), window["labels"].to(accelerator.device)
        outputs = model(input_ids=inputs, state=state)
        state = outputs.state
        logits = outputs.logits.float()
        losses = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        predictions = logits.argmax(-1).flatten()
        predictions, targets, losses = accelerator.gather_for_metrics((predictions, targets.flatten(), losses))
        if accelerator.is_main_process:
            metric.add_batch(predictions=predictions.cpu(), references=targets.cpu(), losses=losses.cpu())
    model.train(was_training)
    return metric.compute() if accelerator.is_main_process else {}


def suggest_learning_rate(learning_rates: list[float], losses: list[float]) -> float:
    """fastai's `valley` suggestion: the middle of the longest stretch over which the loss keeps decreasing."""
    n = len(losses)
    if n < 2:
        raise ValueError("The learning-rate finder needs at least two points.")
    valley_length = [1] * n
    best_start, best_end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and valley_length[i] < valley_length[j] + 1:
                valley_length[i] = valley_length[j] + 1
            if valley_length[best_end] < valley_length[i]:
                best_end = i
                best_start = best_end - valley_length[best_end]
    sections = (best_end - best_start) / 3
    return float(learning_rates[best_start + int(sections) + int(sections / 2)])


def find_learning_rate(
    model,
    optimizer: torch.optim.Optimizer,
    windows,
    accelerator,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iterations: int = 100,
    smoothing: float = 0.98,
    loss_of: Callable[[dict], torch.Tensor] | None = None,
) -> tuple[list[float], list[float], float]:
    """
    fastai's `lr_find`: one step per window at a learning rate growing exponentially from `start_lr` to `end_lr`,
    recording the exponentially smoothed loss; stops when it exceeds 4x the best. The model and optimizer are restored
    afterwards. Returns (learning rates, smoothed losses, suggested learning rate).

    `windows` are a language model's BPTT windows (the state carried from one to the next), unless `loss_of` gives
    the loss of a batch (a classifier's documents).
    """
    saved_model = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    initial = [group["lr"] for group in optimizer.param_groups]
    peak = max(initial)
    model.train()
    # At the top of the sweep saturated LSTM gates make subnormal gradients, which x86 CPUs process ~100x slower;
    # the sweep does not need them.
    torch.set_flush_denormal(True)
    try:
        learning_rates, losses = _sweep(model, optimizer, windows, accelerator, initial, peak, start_lr, end_lr,
                                        num_iterations, smoothing, loss_of)  # fmt: skip
    finally:
        torch.set_flush_denormal(False)
    accelerator.unwrap_model(model).load_state_dict(saved_model)
    optimizer.load_state_dict(saved_optimizer)
    for group, group_lr in zip(optimizer.param_groups, initial):
        group["lr"] = group_lr
    scale_learning_rates(optimizer, 1.0)
    return learning_rates, losses, suggest_learning_rate(learning_rates, losses)


def _sweep(
    model, optimizer, windows, accelerator, initial, peak, start_lr, end_lr, num_iterations, smoothing, loss_of
):
    """The steps of `find_learning_rate`; returns the learning rates and smoothed losses recorded."""
    learning_rates, losses = [], []
    average, best, state = 0.0, math.inf, None
    for iteration, window in enumerate(windows):
        if iteration >= num_iterations:
            break
        lr = start_lr * (end_lr / start_lr) ** (iteration / max(1, num_iterations - 1))
        for group, group_lr in zip(optimizer.param_groups, initial):
            group["lr"] = lr * group_lr / peak  # keep the discriminative ratios
        if loss_of is None:
            outputs = model(
                input_ids=window["input_ids"], state=state, labels=window["labels"], shift_labels=window["labels"]
            )
            state = tuple((h.detach(), c.detach()) for h, c in outputs.state)
            step_loss = outputs.loss
        else:
            step_loss = loss_of(window)
        loss = accelerator.reduce(step_loss.detach(), reduction="mean").item()
        accelerator.backward(step_loss)
        optimizer.step()
        optimizer.zero_grad()
        average = smoothing * average + (1 - smoothing) * loss
        smoothed = average / (1 - smoothing ** (iteration + 1))
        if not math.isfinite(smoothed) or smoothed > 4 * best:
            break
        best = min(best, smoothed)
        learning_rates.append(lr)
        losses.append(smoothed)
    return learning_rates, losses


__all__ = [
    "evaluate_language_model",
    "find_learning_rate",
    "match_embeddings",
    "suggest_learning_rate",
]
