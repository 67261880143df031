"""Model cards for the models this package trains: metadata, measured results, the exact command, and citations.

`ModelCardInfo` collects what a training script knows; `render_model_card` turns it into a `huggingface_hub.ModelCard`
(YAML metadata with a `model-index` of the measured metrics, then prose from `model_card_template.md`, shipped as
package data). It renders offline; `push_model_card_last` uploads it after the weights (see its docstring for why).
"""

import platform
import shlex
import sys
from dataclasses import asdict, dataclass, field
from importlib import resources

from huggingface_hub import EvalResult, ModelCard, ModelCardData


CITATIONS = {
    "awd_lstm": """@inproceedings{merity2018regularizing,
  title={Regularizing and Optimizing {LSTM} Language Models},
  author={Merity, Stephen and Keskar, Nitish Shirish and Socher, Richard},
  booktitle={International Conference on Learning Representations},
  year={2018},
  url={https://arxiv.org/abs/1708.02182}
}""",
    "ulmfit": """@inproceedings{howard2018universal,
  title={Universal Language Model Fine-tuning for Text Classification},
  author={Howard, Jeremy and Ruder, Sebastian},
  booktitle={Proceedings of the 56th Annual Meeting of the Association for Computational Linguistics},
  pages={328--339},
  year={2018},
  url={https://arxiv.org/abs/1801.06146}
}""",
    "bahdanau": """@inproceedings{bahdanau2015neural,
  title={Neural Machine Translation by Jointly Learning to Align and Translate},
  author={Bahdanau, Dzmitry and Cho, Kyunghyun and Bengio, Yoshua},
  booktitle={International Conference on Learning Representations},
  year={2015},
  url={https://arxiv.org/abs/1409.0473}
}""",
    "sacrebleu": """@inproceedings{post-2018-call,
  title={A Call for Clarity in Reporting {BLEU} Scores},
  author={Post, Matt},
  booktitle={Proceedings of the Third Conference on Machine Translation: Research Papers},
  pages={186--191},
  year={2018},
  url={https://aclanthology.org/W18-6319}
}""",
    "devise": """@inproceedings{frome2013devise,
  title={{DeViSE}: A Deep Visual-Semantic Embedding Model},
  author={Frome, Andrea and Corrado, Greg S. and Shlens, Jon and Bengio, Samy and Dean, Jeff and Ranzato,
          Marc'Aurelio and Mikolov, Tomas},
  booktitle={Advances in Neural Information Processing Systems},
  year={2013}
}""",
    "imdb": """@inproceedings{maas2011learning,
  title={Learning Word Vectors for Sentiment Analysis},
  author={Maas, Andrew L. and Daly, Raymond E. and Pham, Peter T. and Huang, Dan and Ng, Andrew Y.
          and Potts, Christopher},
  booktitle={Proceedings of the 49th Annual Meeting of the Association for Computational Linguistics},
  pages={142--150},
  year={2011}
}""",
}

# Prose per model family, merged into the template unless the caller gives its own.
FAMILY_TEXT = {
    "awd_lstm_lm": {
        "architecture": "AWD-LSTM language model (Merity et al. 2017): embedding, stacked weight-dropped LSTMs, "
        "a decoder tied to the embedding",
        "description": "A word-level AWD-LSTM language model trained with the `ulmfit` package, the first stage of "
        "ULMFiT (Howard & Ruder 2018).",
        "intended_use": "Generate or score English text (perplexity), or serve as the pretrained encoder of a "
        "ULMFiT text classifier.",
        "limitations": "It knows only the words of its vocabulary (others become `xxunk`) and the style and biases of "
        "its training corpus; it is small by today's standards and its generations are not factual. The tokenizer "
        "lower-cases text and marks capitals with `xxmaj`/`xxup` (fastai's rules), which `decode` undoes.",
        "usage": """from transformers import pipeline

generator = pipeline("text-generation", model="{model_id}", trust_remote_code=True)
print(generator("This movie was", max_new_tokens=30, do_sample=True, top_k=40)[0]["generated_text"])""",
        "citations": ["awd_lstm", "ulmfit"],
    },
    "awd_lstm_classifier": {
        "architecture": "ULMFiT text classifier (Howard & Ruder 2018): an AWD-LSTM encoder read with BPT3C, concat "
        "pooling [last, max, mean], and a two-layer BatchNorm/Dropout/Linear head",
        "description": "A ULMFiT text classifier trained with the `ulmfit` package: a pretrained AWD-LSTM language "
        "model fine-tuned on the target domain, then a classifier trained with gradual unfreezing and discriminative "
        "learning rates.",
        "intended_use": "Classify English documents of any length into the labels of its `id2label`.",
        "limitations": "It only knows the labels and the kind of text it was trained on, and inherits the biases of "
        "its corpora; scores are not calibrated probabilities. Words outside its vocabulary become `xxunk`.",
        "usage": """from transformers import pipeline

classifier = pipeline("text-classification", model="{model_id}", trust_remote_code=True)
print(classifier(["A wonderful film.", "Two hours I will never get back."], top_k=None))""",
        "citations": ["ulmfit", "awd_lstm"],
    },
    "gru_seq2seq_translator": {
        "architecture": "attention GRU encoder-decoder (Bahdanau et al. 2015, as in fast.ai's 2018 lesson 11): a "
        "bidirectional GRU encoder, a GRU decoder with additive attention and input feeding, an output layer tied to "
        "the decoder embedding",
        "description": "A French -> English translator trained with the `ulmfit` package: the attention "
        "sequence-to-sequence model of fast.ai's 2018 course (`translate.ipynb`), trained with teacher forcing that "
        "decays over training and a one-cycle schedule.",
        "intended_use": "Translate short, everyday French sentences into English, like the sentence pairs it was "
        "trained on.",
        "limitations": "Its vocabularies are words: a French word unseen in training becomes `xxunk`, and an English "
        "word outside its vocabulary can never be produced. It is small, was trained on short sentences, and degrades "
        "on long or specialised text; it inherits the biases of its training pairs. BLEU and chrF are sacreBLEU's "
        "corpus scores on detokenized text (signatures in `all_results.json`).",
        "usage": """from transformers import pipeline

translator = pipeline("translation", model="{model_id}", trust_remote_code=True)
print(translator(["Je suis fatigué.", "Où est la gare ?"], num_beams=4))""",
        "citations": ["bahdanau", "sacrebleu"],
    },
    "devise": {
        "architecture": "DeViSE (Frome et al. 2013) as in fast.ai's 2018 lesson 11: a pretrained image backbone, "
        "concat pooling and a two-layer BatchNorm/Dropout/Linear head that regresses images onto their labels' word "
        "vectors",
        "description": "A DeViSE model trained with the `ulmfit` package: images are mapped into a word-vector space, "
        "so they can be labelled with any words that have vectors (zero-shot) and searched by text or by image.",
        "intended_use": "Zero-shot image classification over candidate labels made of words in its vocabulary, "
        "text-to-image and image-to-image search, and image embeddings (`image-feature-extraction`).",
        "limitations": "It knows only the words of its word-vector vocabulary (a label with another word is an error "
        "that names it). Its hit rates on classes it never trained on are far below those on its training classes, "
        "and it inherits the biases of its images and of the word vectors.",
        "usage": """from transformers import pipeline

classifier = pipeline("zero-shot-image-classification", model="{model_id}", trust_remote_code=True)
print(classifier("photo.jpg", candidate_labels=["goldfish", "tabby cat", "school bus"]))""",
        "citations": ["devise"],
    },
}


# Backward models (fastai's `backwards=True`: the tokenizer reverses every text), the second half of ULMFiT's
# forward + backward ensemble
FAMILY_TEXT["awd_lstm_lm_backward"] = {
    **FAMILY_TEXT["awd_lstm_lm"],
    "description": "A word-level **backward** AWD-LSTM language model trained with the `ulmfit` package: its "
    "tokenizer reverses every text, so the model reads from the last word to the first and predicts the word that "
    "comes before. It is the pretrained encoder of the backward half of ULMFiT's forward + backward ensemble "
    "(Howard & Ruder 2018).",
    "intended_use": "The pretrained encoder of a backward ULMFiT classifier (`scripts/train_classifier.py "
    "--model_name_or_path` this model), to average with a forward one through "
    "`ulmfit.pipelines.ForwardBackwardEnsemble`; scoring English text (perplexity of the reversed text).",
    "usage": """from transformers import AutoModelForSequenceClassification

# the encoder of a backward classifier (new head); the tokenizer saved with it keeps `backwards=True`
model = AutoModelForSequenceClassification.from_pretrained("{model_id}", num_labels=2, trust_remote_code=True)""",
}
FAMILY_TEXT["awd_lstm_classifier_backward"] = {
    **FAMILY_TEXT["awd_lstm_classifier"],
    "description": "A **backward** ULMFiT text classifier trained with the `ulmfit` package: its encoder is a "
    "backward AWD-LSTM (the tokenizer reverses every document), fine-tuned on the target domain, then trained with "
    "gradual unfreezing and discriminative learning rates. Averaged with a forward classifier it gives ULMFiT's "
    "forward + backward ensemble.",
    "usage": """from ulmfit.pipelines import ForwardBackwardEnsemble

ensemble = ForwardBackwardEnsemble("<a forward classifier>", "{model_id}")  # averages the two models' probabilities
print(ensemble(["A wonderful film.", "Two hours I will never get back."], top_k=None))""",
}


@dataclass
class ModelCardInfo:
    """Everything a card says about one trained model. Fields left empty are left out of the card."""

    model_id: str
    family: str = "awd_lstm_lm"
    model_class: str = "AwdLstmForCausalLM"
    description: str = ""
    base_model: str | None = None
    language: str | list[str] = "en"
    license: str = "apache-2.0"
    datasets: list[str] = field(default_factory=list)
    datasets_description: str = ""
    tags: list[str] = field(default_factory=lambda: ["ulmfit", "awd-lstm", "fastai"])
    pipeline_tag: str = "text-generation"
    task_type: str = "text-generation"
    dataset_name: str = ""
    dataset_type: str = ""
    dataset_split: str = "validation"
    # metric name -> value, e.g. {"perplexity": 49.8, "accuracy": 0.312}
    metrics: dict[str, float] = field(default_factory=dict)
    training_command: str = ""
    hyperparameters: dict[str, object] = field(default_factory=dict)
    # rows of the training log, e.g. [{"epoch": 1, "train_loss": 4.2, "valid_loss": 4.1, ...}]
    training_log: list[dict] = field(default_factory=list)
    extra_citations: list[str] = field(default_factory=list)


def _markdown_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _versions() -> list[dict]:
    import datasets
    import tokenizers
    import torch
    import transformers

    import ulmfit

    return [
        {"library": "ulmfit", "version": ulmfit.__version__},
        {"library": "transformers", "version": transformers.__version__},
        {"library": "torch", "version": torch.__version__},
        {"library": "tokenizers", "version": tokenizers.__version__},
        {"library": "datasets", "version": datasets.__version__},
        {"library": "python", "version": platform.python_version()},
    ]


def render_model_card(info: ModelCardInfo) -> ModelCard:
    """The card of one trained model, rendered offline from the shipped template."""
    if info.family not in FAMILY_TEXT:
        raise ValueError(f"Unknown model family {info.family!r}; known: {sorted(FAMILY_TEXT)}.")
    text = FAMILY_TEXT[info.family]
    eval_results = [
        EvalResult(
            task_type=info.task_type,
            dataset_type=info.dataset_type or info.dataset_name or "custom",
            dataset_name=info.dataset_name or info.dataset_type or "custom",
            dataset_split=info.dataset_split,
            metric_type=name,
            metric_name=name,
            metric_value=float(value),
        )
        for name, value in info.metrics.items()
    ]
    card_data = ModelCardData(
        language=info.language,
        license=info.license,
        library_name="transformers",
        pipeline_tag=info.pipeline_tag,
        tags=info.tags,
        datasets=info.datasets or None,
        base_model=info.base_model,
        model_name=info.model_id,
        eval_results=eval_results or None,
    )
    results = [{"split": info.dataset_split, "metric": name, "value": value} for name, value in info.metrics.items()]
    hyperparameters = [{"name": name, "value": value} for name, value in info.hyperparameters.items()]
    citations = [CITATIONS[key] for key in text["citations"]] + list(info.extra_citations)
    template = resources.files("ulmfit") / "model_card_template.md"
    return ModelCard.from_template(
        card_data,
        template_str=template.read_text(encoding="utf-8"),
        model_name=info.model_id.split("/")[-1],
        model_description=info.description or text["description"],
        architecture=text["architecture"],
        model_class=f"`{info.model_class}`",
        base_model=info.base_model,
        datasets_description=info.datasets_description,
        usage_snippet=text["usage"].format(model_id=info.model_id),
        results_table=_markdown_table(results),
        intended_use=text["intended_use"],
        limitations=text["limitations"],
        training_command=info.training_command,
        hyperparameters_table=_markdown_table(hyperparameters),
        training_log_table=_markdown_table(info.training_log),
        versions_table=_markdown_table(_versions()),
        citations=citations,
    )


def push_model_card_last(card: ModelCard, repo_id: str, token: str | None = None) -> None:
    """
    Upload the card as the repo's README.md, after the weights: `PreTrainedModel.push_to_hub` rewrites README.md from
    the remote copy, so a card pushed earlier would be overwritten by a generic one.
    """
    from huggingface_hub import HfApi

    HfApi(token=token).upload_file(
        path_or_fileobj=str(card).encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        commit_message="Add model card",
    )


# what a training run writes beside the model and never uploads: resumable checkpoints, half-written files
CHECKPOINT_PATTERNS = ("step_*", "epoch_*", "*.tmp")


def push_folder_then_card(
    output_dir, card: ModelCard, repo_id: str, token: str | None = None, ignore_patterns=CHECKPOINT_PATTERNS
) -> None:
    """Create the Hub repo, upload the output folder in one commit (without `ignore_patterns`), then the card last."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(
        folder_path=str(output_dir),
        repo_id=repo_id,
        commit_message="Upload model",
        ignore_patterns=[*ignore_patterns, "README.md"],
    )
    push_model_card_last(card, repo_id, token=token)


def script_command() -> str:
    """The command line that started this script, shell-quoted, for the card's "how it was made"."""
    return " ".join(shlex.quote(part) for part in ["python", *sys.argv])


def script_hyperparameters(args) -> dict:
    """A training script's arguments as the card's hyperparameter table (unset ones and the token left out)."""
    return {name: value for name, value in asdict(args).items() if value is not None and name != "hub_token"}


__all__ = [
    "CHECKPOINT_PATTERNS",
    "ModelCardInfo",
    "push_folder_then_card",
    "push_model_card_last",
    "render_model_card",
    "script_command",
    "script_hyperparameters",
]
