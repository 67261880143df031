"""A PNG grid of a search query and its neighbours, as the notebook shows them (fast.ai 2018, lesson 11)."""

import os
from collections.abc import Sequence

import PIL.Image
import PIL.ImageDraw

from ..models.devise.image_processing_devise import open_image


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


__all__ = ["make_image_grid", "save_image_grid"]
