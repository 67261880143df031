"""AWD-LSTM configuration (Merity, Keskar & Socher 2017, arXiv:1708.02182), with fastai v2's defaults."""

from transformers import PretrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)


class AwdLstmConfig(PretrainedConfig):
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
    """

    model_type = "awd_lstm"

    def __init__(
        self,
        vocab_size: int = 60000,
        embedding_size: int = 400,
        hidden_size: int = 1152,
        num_hidden_layers: int = 3,
        embedding_dropout: float = 0.02,
        input_dropout: float = 0.25,
        weight_dropout: float = 0.2,
        hidden_dropout: float = 0.15,
        output_dropout: float = 0.1,
        activation_regularization: float = 2.0,
        temporal_activation_regularization: float = 1.0,
        lm_head_bias: bool = True,
        tie_word_embeddings: bool = True,
        initializer_range: float = 0.1,
        classifier_hidden_size: int = 50,
        classifier_dropout: float = 0.1,
        bpt3c_chunk_size: int = 72,
        bpt3c_max_length: int = 1440,
        pad_token_id: int = 1,
        bos_token_id: int = 2,
        eos_token_id: int = 3,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.embedding_dropout = embedding_dropout
        self.input_dropout = input_dropout
        self.weight_dropout = weight_dropout
        self.hidden_dropout = hidden_dropout
        self.output_dropout = output_dropout
        self.activation_regularization = activation_regularization
        self.temporal_activation_regularization = temporal_activation_regularization
        self.lm_head_bias = lm_head_bias
        self.tie_word_embeddings = tie_word_embeddings
        self.initializer_range = initializer_range
        self.classifier_hidden_size = classifier_hidden_size
        self.classifier_dropout = classifier_dropout
        self.bpt3c_chunk_size = bpt3c_chunk_size
        self.bpt3c_max_length = bpt3c_max_length
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        super().__init__(**kwargs)
        self._validate_awd_lstm()

    def _validate_awd_lstm(self):
        """Reject values no AWD-LSTM can be built from, naming the field and the value."""
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
        dropouts = ("embedding_dropout", "input_dropout", "weight_dropout", "hidden_dropout", "output_dropout")
        for name in (*dropouts, "classifier_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` is a dropout probability and must be in [0, 1), got {value!r}.")
        for name in ("activation_regularization", "temporal_activation_regularization", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative number, got {value!r}.")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"`{name}`={value!r} is outside the vocabulary (vocab_size={self.vocab_size}).")


__all__ = ["AwdLstmConfig"]
