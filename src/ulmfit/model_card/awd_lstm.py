"""The AWD-LSTM family's model-card text: language models and ULMFiT classifiers (forward and backward) and bare
encoders (`learn.save_encoder`), for `scripts/train_language_model.py`, `scripts/train_classifier.py` and
`scripts/convert_fastai_checkpoint.py`."""

from . import FamilyCard


AWD_LSTM_CITATION = """@inproceedings{merity2018regularizing,
  title={Regularizing and Optimizing {LSTM} Language Models},
  author={Merity, Stephen and Keskar, Nitish Shirish and Socher, Richard},
  booktitle={International Conference on Learning Representations},
  year={2018},
  url={https://arxiv.org/abs/1708.02182}
}"""
ULMFIT_CITATION = """@inproceedings{howard2018universal,
  title={Universal Language Model Fine-tuning for Text Classification},
  author={Howard, Jeremy and Ruder, Sebastian},
  booktitle={Proceedings of the 56th Annual Meeting of the Association for Computational Linguistics},
  pages={328--339},
  year={2018},
  url={https://arxiv.org/abs/1801.06146}
}"""

# Why a saved AWD-LSTM tokenizer has a `vocab.json` and no `tokenizer.json` (see `AwdLstmTokenizer`)
NO_TOKENIZER_JSON = (
    " The tokenizer folder has no `tokenizer.json`: fastai's rules (`xxmaj`, `xxup`, `xxrep`, spaCy's word splitting) "
    "run in Python and cannot be written as a `tokenizers` pipeline, so tools that read only that file (the "
    "`tokenizers` library, TGI, the Hub widget) cannot tokenize for this model; load it with `AutoTokenizer` and "
    "`trust_remote_code=True`."
)

LANGUAGE_MODEL_CARD = FamilyCard(
    architecture=(
        "AWD-LSTM language model (Merity et al. 2017): embedding, stacked weight-dropped LSTMs, a decoder tied to the "
        "embedding"
    ),
    description=(
        "A word-level AWD-LSTM language model trained with the `ulmfit` package, the first stage of ULMFiT (Howard & "
        "Ruder 2018)."
    ),
    intended_use=(
        "Generate or score English text (perplexity), or serve as the pretrained encoder of a ULMFiT text classifier."
    ),
    limitations=(
        "It knows only the words of its vocabulary (others become `xxunk`) and the style and biases of its training "
        "corpus; it is small by today's standards and its generations are not factual. The tokenizer lower-cases text "
        "and marks capitals with `xxmaj`/`xxup` (fastai's rules), which `decode` undoes." + NO_TOKENIZER_JSON
    ),
    usage="""from transformers import pipeline

generator = pipeline("text-generation", model="{model_id}", trust_remote_code=True)
print(generator("This movie was", max_new_tokens=30, do_sample=True, top_k=40)[0]["generated_text"])""",
    model_class="AwdLstmForCausalLM",
    pipeline_tag="text-generation",
    tags=("ulmfit", "awd-lstm", "fastai"),
    citations=(
        AWD_LSTM_CITATION,
        ULMFIT_CITATION,
    ),
)

# Backward models (fastai's `backwards=True`: the tokenizer reverses every text), the second half of ULMFiT's
# forward + backward ensemble
BACKWARD_LANGUAGE_MODEL_CARD = LANGUAGE_MODEL_CARD.replace(
    description=(
        "A word-level **backward** AWD-LSTM language model trained with the `ulmfit` package: its tokenizer reverses "
        "every text, so the model reads from the last word to the first and predicts the word that comes before. It "
        "is the pretrained encoder of the backward half of ULMFiT's forward + backward ensemble (Howard & Ruder 2018)."
    ),
    intended_use=(
        "The pretrained encoder of a backward ULMFiT classifier (`scripts/train_classifier.py --model_name_or_path` "
        "this model), to average with a forward one through `ulmfit.pipelines.ForwardBackwardEnsemble`; scoring "
        "English text (perplexity of the reversed text)."
    ),
    usage="""from transformers import AutoModelForSequenceClassification

# the encoder of a backward classifier (new head); the tokenizer saved with it keeps `backwards=True`
model = AutoModelForSequenceClassification.from_pretrained("{model_id}", num_labels=2, trust_remote_code=True)""",
)

CLASSIFIER_CARD = FamilyCard(
    architecture=(
        "ULMFiT text classifier (Howard & Ruder 2018): an AWD-LSTM encoder read with BPT3C, concat pooling [last, "
        "max, mean], and a two-layer BatchNorm/Dropout/Linear head"
    ),
    description=(
        "A ULMFiT text classifier trained with the `ulmfit` package: a pretrained AWD-LSTM language model fine-tuned "
        "on the target domain, then a classifier trained with gradual unfreezing and discriminative learning rates."
    ),
    intended_use="Classify English documents of any length into the labels of its `id2label`.",
    limitations=(
        "It only knows the labels and the kind of text it was trained on, and inherits the biases of its corpora; "
        "scores are not calibrated probabilities. Words outside its vocabulary become `xxunk`." + NO_TOKENIZER_JSON
    ),
    usage="""from transformers import pipeline

classifier = pipeline("text-classification", model="{model_id}", trust_remote_code=True)
print(classifier(["A wonderful film.", "Two hours I will never get back."], top_k=None))""",
    model_class="AwdLstmForSequenceClassification",
    pipeline_tag="text-classification",
    tags=("ulmfit", "awd-lstm", "fastai"),
    citations=(
        ULMFIT_CITATION,
        AWD_LSTM_CITATION,
    ),
)

BACKWARD_CLASSIFIER_CARD = CLASSIFIER_CARD.replace(
    description=(
        "A **backward** ULMFiT text classifier trained with the `ulmfit` package: its encoder is a backward AWD-LSTM "
        "(the tokenizer reverses every document), fine-tuned on the target domain, then trained with gradual "
        "unfreezing and discriminative learning rates. Averaged with a forward classifier it gives ULMFiT's forward + "
        "backward ensemble."
    ),
    usage="""from ulmfit.pipelines import ForwardBackwardEnsemble

ensemble = ForwardBackwardEnsemble("<a forward classifier>", "{model_id}")  # averages the two models' probabilities
print(ensemble(["A wonderful film.", "Two hours I will never get back."], top_k=None))""",
)

# A bare encoder (fastai's `learn.save_encoder`): hidden states, or the start of a new classifier
ENCODER_CARD = LANGUAGE_MODEL_CARD.replace(
    architecture="AWD-LSTM encoder (Merity et al. 2017): embedding and stacked weight-dropped LSTMs, without a head",
    description="An AWD-LSTM encoder, the part of a language model or ULMFiT classifier that reads text.",
    intended_use="Hidden states for English text, or the pretrained encoder of a new ULMFiT classifier "
    "(fastai's `learn.load_encoder`).",
    usage="""from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{model_id}", trust_remote_code=True)
encoder = AutoModel.from_pretrained("{model_id}", trust_remote_code=True)
hidden_states = encoder(**tokenizer(["A great film."], return_tensors="pt")).last_hidden_state
# fastai's `learn.load_encoder`: a ULMFiT classifier on this encoder, with a new head to train
classifier = AutoModelForSequenceClassification.from_pretrained("{model_id}", num_labels=2, trust_remote_code=True)""",
    model_class="AwdLstmModel",
    pipeline_tag="feature-extraction",
)


MULTI_LABEL_CLASSIFIER_CARD = CLASSIFIER_CARD.replace(
    description=(
        "A multi-label ULMFiT text classifier trained with the `ulmfit` package: a pretrained AWD-LSTM language model "
        "fine-tuned on the target domain, then a classifier trained with gradual unfreezing and discriminative "
        "learning rates and a binary cross-entropy loss, so that a text may have any number of its labels. The "
        "decision thresholds were chosen on the validation data and are stored in the config (`label_thresholds`)."
    ),
    intended_use="Tag English documents of any length with the labels of its `id2label` (none, one or several).",
    limitations=(
        "It only knows the labels and the kind of text it was trained on, and inherits the biases of its corpora; the "
        "scores are per-label sigmoid outputs, not calibrated probabilities, and the thresholds were tuned on the "
        "validation data, so its validation scores are optimistic. Words outside its vocabulary become `xxunk`."
        + NO_TOKENIZER_JSON
    ),
    usage="""from transformers import pipeline
from ulmfit.pipelines import AwdLstmTextClassificationPipeline

# the labels above their stored thresholds (`top_k=None`: every label's score, as the stock pipeline gives them)
tagger = pipeline("text-classification", model="{model_id}", pipeline_class=AwdLstmTextClassificationPipeline)
print(tagger(["Thanks, that made my day!", "I can't believe they did that."]))""",
    tags=("ulmfit", "awd-lstm", "fastai", "multi-label-classification"),
    task_name="Multi-label text classification",
)

REGRESSION_CARD = CLASSIFIER_CARD.replace(
    description=(
        "A ULMFiT text regression model trained with the `ulmfit` package: a pretrained AWD-LSTM language model "
        "fine-tuned on the target domain, then a one-output head trained with gradual unfreezing and discriminative "
        "learning rates on a number per document. Its score is in the target's units."
    ),
    intended_use="Predict the number its training data attached to English documents (e.g. a rating) from the text.",
    limitations=(
        "It only knows the kind of text and the range of targets it was trained on, and inherits the biases of its "
        "corpora; predictions regress towards the mean of the training targets. Words outside its vocabulary become "
        "`xxunk`." + NO_TOKENIZER_JSON
    ),
    usage="""from transformers import pipeline

scorer = pipeline("text-classification", model="{model_id}", trust_remote_code=True)
print(scorer(["A wonderful film.", "Two hours I will never get back."]))  # "score": the prediction""",
    tags=("ulmfit", "awd-lstm", "fastai", "regression"),
    task_name="Text regression",
)


def awd_lstm_card(task: str, backwards: bool = False, problem_type: str | None = None) -> FamilyCard:
    """
    The card text of an AWD-LSTM `lm`, `classifier` or `encoder`, forward or backward; a forward classifier's
    `problem_type` picks the multi-label or regression text.
    """
    if task == "classifier" and not backwards and problem_type == "multi_label_classification":
        return MULTI_LABEL_CLASSIFIER_CARD
    if task == "classifier" and not backwards and problem_type == "regression":
        return REGRESSION_CARD
    cards = {
        ("lm", False): LANGUAGE_MODEL_CARD,
        ("lm", True): BACKWARD_LANGUAGE_MODEL_CARD,
        ("classifier", False): CLASSIFIER_CARD,
        ("classifier", True): BACKWARD_CLASSIFIER_CARD,
        ("encoder", False): ENCODER_CARD,
        ("encoder", True): ENCODER_CARD,
    }
    if (task, backwards) not in cards:
        raise ValueError(f"No AWD-LSTM card for task {task!r}; choose `lm`, `classifier` or `encoder`.")
    return cards[task, backwards]


__all__ = [
    "BACKWARD_CLASSIFIER_CARD",
    "BACKWARD_LANGUAGE_MODEL_CARD",
    "CLASSIFIER_CARD",
    "ENCODER_CARD",
    "LANGUAGE_MODEL_CARD",
    "MULTI_LABEL_CLASSIFIER_CARD",
    "REGRESSION_CARD",
    "awd_lstm_card",
]
