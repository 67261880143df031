"""The Tatoeba pairs shipped in the package, and the split they come from (scripts/make_translation_split.py)."""

import importlib.util
import os
from pathlib import Path

import pytest

from ulmfit.samples import load_translation_sample, translation_sample_path, translation_test_path


def load_split_script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "make_translation_split.py"
    spec = importlib.util.spec_from_file_location("make_translation_split", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_sample_and_test_pairs_are_small_and_never_share_a_sentence():
    sample, test = load_translation_sample(), load_translation_sample("test")
    assert len(load_translation_sample("train")) == 4000 and len(load_translation_sample("validation")) == 500
    assert len(test) == 1000 and set(sample.column_names) == {"fr", "en", "split", "row"}
    assert not set(test["fr"]) & set(sample["fr"]) and not set(test["en"]) & set(sample["en"])
    assert os.path.getsize(translation_sample_path()) + os.path.getsize(translation_test_path()) < 1_000_000
    with pytest.raises(ValueError, match="split"):
        load_translation_sample("dev")


def test_the_split_drops_every_training_pair_that_shares_a_sentence_with_a_test_pair():
    # every English sentence has two French translations and the reverse, so collisions are certain
    french = [f"fr {i // 2}" for i in range(200)]
    english = [f"en {(i + 1) // 2}" for i in range(200)]
    parts = load_split_script().carve(french, english, seed=2018, test_size=10, validation_size=20)
    test_french, test_english = {french[i] for i in parts["test"]}, {english[i] for i in parts["test"]}
    for name in ("train", "validation"):
        assert not {french[i] for i in parts[name]} & test_french
        assert not {english[i] for i in parts[name]} & test_english
    assert len(parts["test"]) == 10 and len(parts["validation"]) == 20 and parts["train_dropped"] > 0
    kept = len(parts["test"]) + len(parts["validation"]) + len(parts["train"])
    assert kept + parts["train_dropped"] + parts["validation_skipped"] == 200
