"""Small real-data samples shipped inside the package, so demos and tests run offline on a fresh machine."""

from importlib import resources

import datasets


def imdb_sample_path() -> str:
    """Path of `imdb_sample.parquet`: 4,000 labelled IMDb train reviews and 1,000 unsup ones (see data/README.md)."""
    return str(resources.files("ulmfit") / "data" / "imdb_sample.parquet")


def pretrained_language_model_path() -> str:
    """
    Folder of `awd-lstm-imdb-small`, the small AWD-LSTM language model shipped with the package (3.5M parameters,
    pretrained with `scripts/train_language_model.py` on IMDb's 50,000 unlabelled reviews; model_cards/ says how).
    `AutoModelForCausalLM.from_pretrained(path)` and `AutoTokenizer.from_pretrained(path)` load it.
    """
    return str(resources.files("ulmfit") / "data" / "awd-lstm-imdb-small")


def load_imdb_sample(split: str | None = None) -> datasets.Dataset:
    """
    The shipped IMDb sample as a `datasets.Dataset` with columns `text`, `label` (1 pos, 0 neg, -1 unlabelled),
    `split` and `id`. `split="train"` keeps the labelled reviews, `split="unsup"` the unlabelled ones.
    """
    if split not in (None, "train", "unsup"):
        raise ValueError(f"`split` must be None, 'train' or 'unsup', got {split!r}.")
    sample = datasets.load_dataset("parquet", data_files=imdb_sample_path(), split="train")
    return sample if split is None else sample.filter(lambda row: row["split"] == split)


def translation_sample_path() -> str:
    """
    Path of `tatoeba_fr_en_sample.parquet`: 4,000 train and 500 validation French -> English pairs (columns `fr`,
    `en`, `split`, `row`) of the project's fixed Tatoeba split, never any of its test pairs (see data/README.md).
    """
    return str(resources.files("ulmfit") / "data" / "tatoeba_fr_en_sample.parquet")


def translation_test_path() -> str:
    """
    Path of `tatoeba_fr_en_test.parquet`: the 1,000 held-out Tatoeba test pairs (columns `fr`, `en`, `row`) on which
    the translator's BLEU is reported. Neither side of any test pair occurs in the split's train or validation parts.
    """
    return str(resources.files("ulmfit") / "data" / "tatoeba_fr_en_test.parquet")


def load_translation_sample(split: str | None = None) -> datasets.Dataset:
    """
    The shipped Tatoeba pairs as a `datasets.Dataset`: `split="train"` or `"validation"` from the sample, `"test"`
    the held-out test pairs, `None` the whole sample (train and validation).
    """
    if split not in (None, "train", "validation", "test"):
        raise ValueError(f"`split` must be None, 'train', 'validation' or 'test', got {split!r}.")
    if split == "test":
        return datasets.load_dataset("parquet", data_files=translation_test_path(), split="train")
    sample = datasets.load_dataset("parquet", data_files=translation_sample_path(), split="train")
    return sample if split is None else sample.filter(lambda row: row["split"] == split)


__all__ = [
    "imdb_sample_path",
    "load_imdb_sample",
    "load_translation_sample",
    "pretrained_language_model_path",
    "translation_sample_path",
    "translation_test_path",
]
