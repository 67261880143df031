"""Small real-data samples shipped inside the package, so demos and tests run offline on a fresh machine."""

from importlib import resources

import datasets


def imdb_sample_path() -> str:
    """Path of `imdb_sample.parquet`: 3,000 labelled IMDb train reviews and 2,000 unsup ones (see data/README.md)."""
    return str(resources.files("ulmfit") / "data" / "imdb_sample.parquet")


def load_imdb_sample(split: str | None = None) -> datasets.Dataset:
    """
    The shipped IMDb sample as a `datasets.Dataset` with columns `text`, `label` (1 pos, 0 neg, -1 unlabelled),
    `split` and `id`. `split="train"` keeps the labelled reviews, `split="unsup"` the unlabelled ones.
    """
    if split not in (None, "train", "unsup"):
        raise ValueError(f"`split` must be None, 'train' or 'unsup', got {split!r}.")
    sample = datasets.load_dataset("parquet", data_files=imdb_sample_path(), split="train")
    return sample if split is None else sample.filter(lambda row: row["split"] == split)


__all__ = ["imdb_sample_path", "load_imdb_sample"]
