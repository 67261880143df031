import numpy as np
import PIL.Image
import pytest

from ulmfit.plotting import make_image_grid, plot_lr_find, plot_training_curve, save_image_grid


def images(count: int, seed: int = 0) -> list[PIL.Image.Image]:
    rng = np.random.default_rng(seed)
    return [PIL.Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)) for _ in range(count)]


def test_lr_find_plot_is_a_png(tmp_path):
    rates = [1e-5 * 1.5**step for step in range(20)]
    losses = [5.0 - 0.1 * step + (0.02 * step) ** 3 for step in range(20)]
    plot_lr_find(rates, losses, suggestion=rates[8], path=tmp_path / "lr_find.png")
    image = PIL.Image.open(tmp_path / "lr_find.png")
    assert image.format == "PNG" and image.size == (7 * 120, int(4.5 * 120))


def test_training_curve_plot_is_a_png_with_or_without_validation(tmp_path):
    train = [{"step": step, "train_loss": 5.0 / step, "learning_rate": 1e-3} for step in range(1, 11)]
    plot_training_curve([*train, {"step": 10, "valid_loss": 0.7}], tmp_path / "curve.png")
    plot_training_curve(train, tmp_path / "train_only.png")
    for name in ("curve.png", "train_only.png"):
        image = PIL.Image.open(tmp_path / name)
        assert image.format == "PNG" and image.size == (8 * 120, 6 * 120)


def test_image_grid_shows_the_query_and_its_neighbours(tmp_path):
    neighbours = images(6)
    path = save_image_grid(tmp_path / "grid.png", "engine + boat", neighbours, captions=["0.9"] * 6, columns=4)
    grid = PIL.Image.open(path)
    assert grid.format == "PNG" and grid.size == (4 * 128, 2 * (128 + 16))
    image_query = make_image_grid(neighbours[0], neighbours[1:3], tile_size=32)
    assert image_query.size == (5 * 32, 32 + 16)
    with pytest.raises(ValueError, match="captions"):
        make_image_grid("boat", neighbours, captions=["x"])
