"""Everything `ulmfit` draws for a person to look at, as PNG files.

- Training: `plot_lr_find` (fastai's learning-rate finder: loss against learning rate, the suggestion marked) and
  `plot_training_curve` (training and validation loss with the learning rate), written by the training scripts.
- Translation: `generation_attentions` turns the per-step cross-attentions that `generate(..., output_attentions=True,
  return_dict_in_generate=True)` returns into one `(target, source)` matrix per output sequence (following the beams
  for beam search); `plot_attention` draws such a matrix as a heat-map; `plot_translation_attention` does both for
  one sentence (the 2018 notebook's "what does it attend to" plots).
- Image search: `make_image_grid` / `save_image_grid`, a query and its neighbours in a grid, as the DeViSE notebook
  shows them.

Figures are drawn on matplotlib's Agg canvas (no display, no pyplot state, no global backend change). matplotlib is an
optional dependency (`pip install 'ulmfit[train]'`); the image grid needs only Pillow.
"""

import os
from collections.abc import Sequence

import PIL.Image
import PIL.ImageDraw
import torch

from .models.devise.image_processing_devise import open_image


def _figure(figsize: tuple[float, float]):
    """A matplotlib figure on its own Agg canvas, with a clear message when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "Plots need matplotlib: `pip install 'ulmfit[train]'` (or `pip install matplotlib`)."
        ) from error
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


# ---------------------------------------------------------------------------------------------------------------------
# Training


def plot_lr_find(learning_rates: list[float], losses: list[float], suggestion: float, path) -> None:
    """Loss against learning rate (log scale), the suggestion marked, saved as a PNG."""
    figure = _figure(figsize=(7, 4.5))
    axis = figure.add_subplot()
    axis.plot(learning_rates, losses)
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("loss (smoothed)")
    index = min(range(len(learning_rates)), key=lambda i: abs(learning_rates[i] - suggestion))
    axis.plot(learning_rates[index], losses[index], "o", color="tab:red", label=f"valley: {suggestion:.2e}")
    axis.legend()
    axis.set_title("Learning-rate finder")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def plot_training_curve(log: list[dict], path) -> None:
    """
    Training loss per step and validation loss per evaluation, with the learning rate, saved as a PNG; a translator's
    log adds a panel of BLEU per evaluation (validation, and the test pairs when they were scored).
    """
    train = [row for row in log if "train_loss" in row]
    valid = [row for row in log if "valid_loss" in row]
    scored = [row for row in valid if "bleu" in row]
    figure = _figure(figsize=(8, 8 if scored else 6))
    if scored:
        loss_axis, bleu_axis, lr_axis = figure.subplots(3, 1, sharex=True, height_ratios=(3, 2, 1))
        bleu_axis.plot([r["step"] for r in scored], [r["bleu"] for r in scored], "o-", label="validation BLEU")
        tested = [row for row in scored if "test_bleu" in row]
        if tested:
            bleu_axis.plot([r["step"] for r in tested], [r["test_bleu"] for r in tested], "s-", label="test BLEU")
        bleu_axis.set_ylabel("sacreBLEU")
        bleu_axis.legend()
    else:
        loss_axis, lr_axis = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    loss_axis.plot([r["step"] for r in train], [r["train_loss"] for r in train], label="train loss", alpha=0.7)
    if valid:
        loss_axis.plot([r["step"] for r in valid], [r["valid_loss"] for r in valid], "o-", label="validation loss")
    loss_axis.set_ylabel("cross-entropy")
    loss_axis.legend()
    lr_axis.plot([r["step"] for r in train], [r["learning_rate"] for r in train], color="tab:green")
    lr_axis.set_ylabel("learning rate")
    lr_axis.set_xlabel("optimizer step")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


# ---------------------------------------------------------------------------------------------------------------------
# Translation: where each generated word attended


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
    weights = torch.as_tensor(attention, dtype=torch.float32).detach().cpu()
    if weights.dim() != 2:
        raise ValueError(f"`attention` must be a (target, source) matrix, got shape {tuple(weights.shape)}.")
    rows, columns = min(weights.size(0), len(target_tokens)), min(weights.size(1), len(source_tokens))
    if rows == 0 or columns == 0:
        raise ValueError("Nothing to plot: the attention matrix or a token list is empty.")
    weights = weights[:rows, :columns]

    figure = _figure(figsize=(max(4.0, 0.45 * columns + 2), max(3.0, 0.4 * rows + 1.5)))
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


# ---------------------------------------------------------------------------------------------------------------------
# Image search: a query and its neighbours


def make_image_grid(
    query,
    neighbours: Sequence,
    captions: Sequence[str] | None = None,
    query_caption: str | None = None,
    columns: int = 5,
    tile_size: int = 128,
    caption_height: int = 16,
) -> PIL.Image.Image:
    """
    One RGB image: the query in the first tile (a text query is written out), then the neighbours row by row.

    Args:
        query: the query image (PIL image, path or raw bytes), or the query text.
        neighbours: the neighbour images, best first.
        captions: one caption per neighbour (e.g. its score or label).
        query_caption: a caption for the query tile; defaults to "query".
        columns: tiles per row.
        tile_size: side of each square tile in pixels; images are fitted inside, keeping their aspect ratio.
        caption_height: pixels under each tile for its caption.
    """
    if captions is not None and len(captions) != len(neighbours):
        raise ValueError(f"Got {len(captions)} captions for {len(neighbours)} neighbours.")
    if columns < 1 or tile_size < 8:
        raise ValueError(f"`columns` must be >= 1 and `tile_size` >= 8, got {columns} and {tile_size}.")
    tiles = [query, *neighbours]
    labels = [query_caption or "query", *(captions or [""] * len(neighbours))]
    rows = -(-len(tiles) // columns)  # ceil
    cell_height = tile_size + caption_height
    grid = PIL.Image.new("RGB", (columns * tile_size, rows * cell_height), "white")
    draw = PIL.ImageDraw.Draw(grid)
    for position, (tile, label) in enumerate(zip(tiles, labels)):
        left, top = (position % columns) * tile_size, (position // columns) * cell_height
        if isinstance(tile, str) and not os.path.isfile(tile):  # a text query
            draw.rectangle([left, top, left + tile_size - 1, top + tile_size - 1], outline="black")
            draw.multiline_text((left + 4, top + 4), _wrap(tile, tile_size // 7), fill="black")
        else:
            image = open_image(tile, f"tile {position}").convert("RGB")
            image.thumbnail((tile_size, tile_size))
            grid.paste(image, (left + (tile_size - image.width) // 2, top + (tile_size - image.height) // 2))
        draw.text((left + 2, top + tile_size + 2), label[: tile_size // 6], fill="black")
    return grid


def save_image_grid(path: str | os.PathLike, query, neighbours: Sequence, **kwargs) -> str:
    """Write [`make_image_grid`] to a PNG file and return its path."""
    path = os.fspath(path)
    make_image_grid(query, neighbours, **kwargs).save(path, format="PNG")
    return path


def _wrap(text: str, width: int) -> str:
    """Break `text` into lines of at most `width` characters at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


__all__ = [
    "generation_attentions",
    "make_image_grid",
    "plot_attention",
    "plot_lr_find",
    "plot_training_curve",
    "plot_translation_attention",
    "save_image_grid",
]
