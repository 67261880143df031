"""The cards in `model_cards/` load as the Hub loads them, name only Hub repos in their metadata, and have splits."""

from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.utils import validate_repo_id

from ulmfit.model_card import check_hub_metadata


CARDS = sorted((Path(__file__).resolve().parents[1] / "model_cards").glob("*/README.md"))


def test_every_shipped_model_has_a_card():
    assert len(CARDS) >= 4


@pytest.mark.parametrize("path", CARDS, ids=lambda path: path.parent.name)
def test_shipped_card_loads_with_valid_repo_ids_and_results_with_splits(path):
    card = ModelCard.load(path)
    data = card.data
    base_models = data.base_model if isinstance(data.base_model, list) else [data.base_model]
    for repo_id in [*base_models, *(data.datasets or [])]:
        if repo_id is not None:
            validate_repo_id(repo_id)
    assert data.eval_results, "a shipped card reports its measured results"
    for result in data.eval_results:
        assert result.dataset_split in {"validation", "test"} and result.metric_value is not None
        assert not result.dataset_type.endswith((".parquet", ".csv", ".json", ".txt"))  # a file is not a dataset
    check_hub_metadata(card)
