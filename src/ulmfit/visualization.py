"""Attention heat-maps for encoder-decoder translators (the notebook's "what does it attend to" plots).

`generation_attentions` turns the per-step cross-attentions that `generate(..., output_attentions=True,
return_dict_in_generate=True)` returns into one `(target, source)` matrix per output sequence (following the beams
for beam search); `plot_attention` draws such a matrix as a PNG with matplotlib's Agg canvas (no display and no
global backend change); `plot_translation_attention` does both for one sentence. matplotlib is an optional
dependency (`pip install ulmfit[train]`).
"""

import os

import torch


def generation_attentions(outputs) -> torch.Tensor:
    """
    The attention of every generated token over the source, from a `generate()` output with attentions.

    Args:
        outputs: `generate(..., output_attentions=True, return_dict_in_generate=True)`'s result. Its
            `cross_attentions` hold, per step, per layer, `(rows, heads, 1, source_length)`; the last layer is used,
            averaged over heads (the GRU translator has one of each).

    Returns:
        `torch.FloatTensor` of shape `(num_sequences, generated_length, source_length)`: row `i` belongs to
        `outputs.sequences[i]`; with beam search each step is read from the beam that sequence came through
        (`outputs.beam_indices`), and steps after a sequence ended are zeros.
    """
    if not getattr(outputs, "cross_attentions", None):
        raise ValueError(
            "No cross-attentions in this output: call `generate(..., output_attentions=True, "
            "return_dict_in_generate=True)` on an encoder-decoder model."
        )
    steps = [step[-1][:, :, -1, :].mean(dim=1) for step in outputs.cross_attentions]  # each (rows, source)
    beam_indices = getattr(outputs, "beam_indices", None)
    if beam_indices is None:
        return torch.stack(steps, dim=1)  # (sequences, steps, source)
    rows = []
    for step_index in range(beam_indices.size(1)):
        index = beam_indices[:, step_index].to(torch.long)  # (sequences,), -1 once a sequence has ended
        weights = steps[step_index][index.clamp(min=0).to(steps[step_index].device)]
        rows.append(weights * (index >= 0).to(weights)[:, None])
    return torch.stack(rows, dim=1)  # (sequences, steps, source)


def plot_attention(
    attention: torch.Tensor,
    source_tokens: list[str],
    target_tokens: list[str],
    path: str | os.PathLike,
    title: str | None = None,
) -> str:
    """
    Draw one attention matrix as a heat-map PNG: source tokens on the x axis, generated tokens on the y axis.

    Args:
        attention: `(target_length, source_length)` weights (rows may be longer or shorter than the token lists;
            they are cut to fit).
        source_tokens, target_tokens: the axis labels.
        path: where the PNG is written.
        title: an optional title (e.g. the source sentence).

    Returns:
        The path written.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("Attention plots need matplotlib: `pip install matplotlib` (or `ulmfit[train]`).") from error
    weights = torch.as_tensor(attention, dtype=torch.float32).detach().cpu()
    if weights.dim() != 2:
        raise ValueError(f"`attention` must be a (target, source) matrix, got shape {tuple(weights.shape)}.")
    rows, columns = min(weights.size(0), len(target_tokens)), min(weights.size(1), len(source_tokens))
    if rows == 0 or columns == 0:
        raise ValueError("Nothing to plot: the attention matrix or a token list is empty.")
    weights = weights[:rows, :columns]

    figure = Figure(figsize=(max(4.0, 0.45 * columns + 2), max(3.0, 0.4 * rows + 1.5)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(columns), source_tokens[:columns], rotation=60, ha="right")
    axes.set_yticks(range(rows), target_tokens[:rows])
    axes.set_xlabel("source")
    axes.set_ylabel("generated")
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.04)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    return os.fspath(path)


def plot_translation_attention(model, tokenizer, text: str, path: str | os.PathLike, **generate_kwargs) -> str:
    """
    Translate `text`, plot where each generated word attended in the source, and return the translation.

    Args:
        model: an encoder-decoder model (e.g. `GruSeq2SeqForConditionalGeneration`), in eval mode.
        tokenizer: its tokenizer (its `tokenize(text)` gives the source labels, its `convert_ids_to_tokens` the
            generated ones).
        text: the source sentence.
        path: where the PNG is written.
        generate_kwargs: passed to `generate()` (e.g. `num_beams=4`, `max_new_tokens=40`).
    """
    encoding = tokenizer(text, return_tensors="pt").to(model.device)
    with torch.no_grad():
        outputs = model.generate(**encoding, output_attentions=True, return_dict_in_generate=True, **generate_kwargs)
    attention = generation_attentions(outputs)[0]  # (steps, source)
    source_ids = encoding["input_ids"][0].tolist()
    source_tokens = tokenizer.tokenize(text)
    if len(source_tokens) + 1 == len(source_ids) and source_ids[-1] == tokenizer.eos_token_id:
        source_tokens = source_tokens + [tokenizer.eos_token]  # words, then the end-of-sentence token
    else:
        source_tokens = tokenizer.convert_ids_to_tokens(source_ids)
    generated = outputs.sequences[0, 1:].tolist()  # after the decoder start token
    if tokenizer.eos_token_id in generated:
        generated = generated[: generated.index(tokenizer.eos_token_id) + 1]
    plot_attention(attention, source_tokens, tokenizer.convert_ids_to_tokens(generated), path, title=text)
    return tokenizer.decode(generated, skip_special_tokens=True)


__all__ = ["generation_attentions", "plot_attention", "plot_translation_attention"]
