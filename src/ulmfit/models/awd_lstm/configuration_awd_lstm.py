"""AWD-LSTM configuration (Merity, Keskar & Socher 2017, arXiv:1708.02182), with fastai v2's defaults."""

import math
from dataclasses import fields

from transformers import PreTrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)

# The five AWD-LSTM dropouts, in fastai's `embed_p, input_p, weight_p, hidden_p, output_p` order.
DROPOUT_FIELDS = ("embedding_dropout", "input_dropout", "weight_dropout", "hidden_dropout", "output_dropout")
# fastai v2's `awd_lstm_clas_config` dropouts, before `drop_mult` (`text_classifier_learner` uses 0.5). Those of
# `awd_lstm_lm_config` are `AwdLstmConfig`'s defaults.
FASTAI_CLASSIFIER_DROPOUTS = {
    "embedding_dropout": 0.05,
    "input_dropout": 0.4,
    "weight_dropout": 0.5,
    "hidden_dropout": 0.3,
    "output_dropout": 0.4,
}
FASTAI_DROPOUT_PRESETS = ("language_model", "classifier")


def check_model_type(config_class: type, name_or_path, kwargs: dict) -> None:
    """
    Refuse a checkpoint of another model type: transformers only warns and builds the model with random weights
    (the architectures of this package share no weights). `kwargs` are those of `from_pretrained`.
    """
    options = {k: v for k, v in kwargs.items() if k not in ("return_unused_kwargs",)}
    config_dict, _ = config_class.get_config_dict(name_or_path, **options)
    found = config_dict.get("model_type")
    if found and found != config_class.model_type:
        raise ValueError(
            f"{name_or_path} holds a {found!r} model, not {config_class.model_type!r}: load it with its own class, or "
            "an Auto class (AutoModel, AutoModelForCausalLM, ...), which picks the right one."
        )


class AwdLstmConfig(PreTrainedConfig):
    r"""
    Configuration of an AWD-LSTM ("ASGD Weight-Dropped LSTM") language model. The defaults reproduce fastai v2's
    `awd_lstm_lm_config` (embedding 400, hidden 1152, 3 layers, tied weights with an output bias, and its five
    dropouts), plus the AR/TAR coefficients of fastai's `RNNRegularizer` (alpha 2, beta 1). The vocabulary defaults
    follow fastai's special tokens: `xxunk xxpad xxbos xxeos ...` have ids 0, 1, 2, 3.

    Args:
        vocab_size (`int`, *optional*, defaults to 60000):
            Number of tokens in the vocabulary (fastai `vocab_sz`; `max_vocab` is 60,000 by default).
        embedding_size (`int`, *optional*, defaults to 400):
            Size of the word embeddings and of the last LSTM layer's output, so that the decoder can be tied to the
            embedding (fastai `emb_sz`).
        hidden_size (`int`, *optional*, defaults to 1152):
            Size of the hidden state of every LSTM layer but the last (fastai `n_hid`; the paper used 1150, fastai
            1152 so that the pretrained WikiText-103 weights load).
        num_hidden_layers (`int`, *optional*, defaults to 3):
            Number of stacked single-layer LSTMs (fastai `n_layers`).
        embedding_dropout (`float`, *optional*, defaults to 0.02):
            Probability of dropping a whole row of the embedding matrix, i.e. every occurrence of a word in a batch
            (fastai `embed_p`, the paper's "embedding dropout", salesforce `dropoute`).
        input_dropout (`float`, *optional*, defaults to 0.25):
            Variational (locked) dropout on the embedded inputs: one mask per sequence, shared across time steps
            (fastai `input_p`, salesforce `dropouti`).
        weight_dropout (`float`, *optional*, defaults to 0.2):
            DropConnect on the hidden-to-hidden weights of every LSTM, one mask per forward pass
            (fastai `weight_p`, salesforce `wdrop`).
        hidden_dropout (`float`, *optional*, defaults to 0.15):
            Variational dropout between LSTM layers (fastai `hidden_p`, salesforce `dropouth`).
        output_dropout (`float`, *optional*, defaults to 0.1):
            Variational dropout on the last LSTM layer's output, before the decoder (fastai `output_p`,
            salesforce `dropout`).
        activation_regularization (`float`, *optional*, defaults to 2.0):
            AR coefficient alpha: adds `alpha * mean(h_t ** 2)` over the dropped last-layer output to the training
            loss.
        temporal_activation_regularization (`float`, *optional*, defaults to 1.0):
            TAR coefficient beta: adds `beta * mean((h_t - h_{t-1}) ** 2)` over the raw last-layer output to the
            training loss.
        lm_head_bias (`bool`, *optional*, defaults to `True`):
            Whether the decoder (language-model head) has a bias (fastai `out_bias`).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Whether the decoder shares its weight with the embedding (fastai `tie_weights`).
        initializer_range (`float`, *optional*, defaults to 0.1):
            Half-width of the uniform initialisation of the embedding (fastai `initrange`).
        classifier_hidden_size (`int`, *optional*, defaults to 50):
            Width of the hidden layer of the ULMFiT classifier head (fastai `lin_ftrs=[50]`).
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout before the head's last linear layer (fastai `ps=[0.1]`). The dropout on the pooled features before
            its first layer is `output_dropout` (fastai moves `output_p` there).
        bpt3c_chunk_size (`int`, *optional*, defaults to 72):
            BPT3C (ULMFiT §3.3): a document is read in chunks of this many tokens, the state carried between them
            (fastai `seq_len`).
        bpt3c_max_length (`int`, *optional*, defaults to 1440):
            BPT3C: only the outputs of the last this-many tokens are pooled and receive gradients (fastai
            `max_len = 20 * seq_len`); earlier chunks only advance the state, so memory does not grow with length.
        label_thresholds (`float` or `list[float]`, *optional*):
            Multi-label classifiers: the probability above which a label is predicted, one for every label or one
            per label (in `id2label` order); chosen on validation data by `scripts/train_classifier.py`. `None`
            means 0.5. [`~pipelines.AwdLstmTextClassificationPipeline`] returns the labels above it.
        pos_weight (`list[float]`, *optional*):
            Multi-label classifiers: the weight of each label's positive examples in the binary cross-entropy
            (torch's `pos_weight`, one per label), e.g. negatives / positives for rare labels.
        regression_loss (`str`, *optional*, defaults to `"mse"`):
            Regression: `"mse"` or `"huber"` (smooth L1 with delta 1, on the standardised target when
            `target_std` is set).
        target_mean (`float`, *optional*):
        target_std (`float`, *optional*):
            Regression: the training targets' mean and standard deviation when the model learns them standardised.
            The head predicts `(y - target_mean) / target_std`; `logits` are given back in the target's units, and
            `labels` are taken in them.
        target_range (`list[float]`, *optional*):
            Regression: `[low, high]`, the training targets' range; predictions (`logits`) are clipped to it, so that
            a 1-10 rating is never predicted as 11 (every error on a target inside the range can only shrink).
            `scripts/train_classifier.py` sets it unless `--no_clip_to_target_range`; `None` leaves them unbounded.
        pad_token_id (`int`, *optional*, defaults to 1):
            Id of `xxpad`.
        bos_token_id (`int`, *optional*, defaults to 2):
            Id of `xxbos`.
        eos_token_id (`int`, *optional*, defaults to 3):
            Id of `xxeos`.

    Example:
    ```python
    >>> from ulmfit import AwdLstmConfig, AwdLstmForCausalLM
    >>> config = AwdLstmConfig(vocab_size=1000, embedding_size=32, hidden_size=64, num_hidden_layers=2)
    >>> model = AwdLstmForCausalLM(config)
    ```

    Like every transformers 5 config this is a dataclass of the typed fields below, built from keyword arguments only;
    unknown keys (`auto_map`, `custom_pipelines`, ...) are kept as attributes. Impossible values raise a `ValueError`
    naming the field and the value, from [`~AwdLstmConfig.validate_architecture`] and
    [`~AwdLstmConfig.validate_token_ids`].
    """

    model_type = "awd_lstm"

    vocab_size: int = 60000
    embedding_size: int = 400
    hidden_size: int = 1152
    num_hidden_layers: int = 3
    embedding_dropout: float = 0.02
    input_dropout: float = 0.25
    weight_dropout: float = 0.2
    hidden_dropout: float = 0.15
    output_dropout: float = 0.1
    activation_regularization: float = 2.0
    temporal_activation_regularization: float = 1.0
    lm_head_bias: bool = True
    tie_word_embeddings: bool = True
    initializer_range: float = 0.1
    classifier_hidden_size: int = 50
    classifier_dropout: float = 0.1
    bpt3c_chunk_size: int = 72
    bpt3c_max_length: int = 1440
    label_thresholds: float | list[float] | None = None
    pos_weight: list[float] | None = None
    regression_loss: str = "mse"
    target_mean: float | None = None
    target_std: float | None = None
    target_range: list[float] | None = None
    pad_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`PreTrainedConfig.from_pretrained`, refusing a checkpoint of another model type (see `check_model_type`)."""
        check_model_type(cls, pretrained_model_name_or_path, kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Not `@strict`: its checks would raise huggingface_hub's StrictDataclass*Error rather than a ValueError, and
        # its `float` fields reject ints (`activation_regularization=0`), so the hooks run here, unwrapped.
        self.validate_architecture()
        self.validate_token_ids()

    @classmethod
    def fastai_dropouts(cls, preset: str = "language_model", drop_mult: float = 1.0) -> dict[str, float]:
        """
        fastai's five AWD-LSTM dropouts (embedding_dropout, input_dropout, weight_dropout, hidden_dropout,
        output_dropout) for `preset` "language_model" (`awd_lstm_lm_config`, = this config's defaults) or
        "classifier" (`awd_lstm_clas_config`), each multiplied by `drop_mult` as fastai's learners do
        (`text_classifier_learner` uses drop_mult=0.5).

        Example:
        ```python
        >>> AwdLstmConfig.fastai_dropouts("classifier", drop_mult=0.5)["output_dropout"]
        0.2
        ```
        """
        if preset == "language_model":
            defaults = {field.name: field.default for field in fields(cls)}
            base = {name: defaults[name] for name in DROPOUT_FIELDS}
        elif preset == "classifier":
            base = dict(FASTAI_CLASSIFIER_DROPOUTS)
        else:
            raise ValueError(f"`preset` must be one of {FASTAI_DROPOUT_PRESETS}, got {preset!r}.")
        largest = max(base.values())
        scaled = {}
        if not isinstance(drop_mult, bool) and isinstance(drop_mult, (int, float)) and drop_mult >= 0:
            scaled = {name: p * drop_mult for name, p in base.items()}
        if not scaled or any(not p < 1.0 for p in scaled.values()):
            bound = 1 / largest if largest else math.inf
            raise ValueError(
                f"`drop_mult` must be at least 0 and below {bound:g} (it scales fastai's {preset} dropouts, the "
                f"largest {largest}), got {drop_mult!r}."
            )
        return scaled

    def validate_architecture(self):
        """Reject sizes, dropouts and coefficients no AWD-LSTM can be built from, naming the field and the value."""
        super().validate_architecture()
        for name in (
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "classifier_hidden_size",
            "bpt3c_chunk_size",
            "bpt3c_max_length",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        for name in (*DROPOUT_FIELDS, "classifier_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` is a dropout probability and must be in [0, 1), got {value!r}.")
        for name in ("activation_regularization", "temporal_activation_regularization", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative number, got {value!r}.")
        self.validate_classification_fields()

    def validate_classification_fields(self):
        """Reject thresholds, label weights and target scaling that do not fit the labels, naming the field."""
        for name, low, high in (("label_thresholds", 0.0, 1.0), ("pos_weight", 0.0, math.inf)):
            value = getattr(self, name)
            if value is None:
                continue
            values = [value] if name == "label_thresholds" and _is_number(value) else value
            if not isinstance(values, (list, tuple)) or not all(_is_number(v) and low < v < high for v in values):
                kind = "probabilities in (0, 1)" if high == 1.0 else "positive numbers"
                raise ValueError(f"`{name}` must be {kind} (a list, one per label), got {value!r}.")
            if isinstance(value, (list, tuple)) and len(values) != self.num_labels:
                raise ValueError(f"`{name}` has {len(values)} values for {self.num_labels} labels ({value!r}).")
        if self.regression_loss not in ("mse", "huber"):
            raise ValueError(f"`regression_loss` must be 'mse' or 'huber', got {self.regression_loss!r}.")
        if (self.target_mean is None) != (self.target_std is None):
            raise ValueError("`target_mean` and `target_std` go together: set both or neither.")
        if self.target_std is not None:
            if not (_is_number(self.target_mean) and math.isfinite(self.target_mean)):
                raise ValueError(f"`target_mean` must be a finite number, got {self.target_mean!r}.")
            if not (_is_number(self.target_std) and 0 < self.target_std < math.inf):
                raise ValueError(f"`target_std` must be a positive finite number, got {self.target_std!r}.")
        if self.target_range is not None:
            low_high = self.target_range
            if not (
                isinstance(low_high, (list, tuple))
                and len(low_high) == 2
                and all(_is_number(v) and math.isfinite(v) for v in low_high)
                and low_high[0] <= low_high[1]
            ):
                raise ValueError(
                    f"`target_range` must be [low, high], two finite numbers, low <= high; got {low_high!r}."
                )

    def thresholds(self) -> list[float]:
        """The multi-label decision threshold of each label, in `id2label` order (0.5 where none was chosen)."""
        value = 0.5 if self.label_thresholds is None else self.label_thresholds
        return [float(value)] * self.num_labels if _is_number(value) else [float(v) for v in value]

    def validate_token_ids(self):
        """Reject special-token ids outside the vocabulary (transformers only warns; the embedding would be indexed
        out of range)."""
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"`{name}`={value!r} is outside the vocabulary (vocab_size={self.vocab_size}).")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = ["AwdLstmConfig"]
