"""Configuration of the attention GRU encoder-decoder of fast.ai's 2018 `translate.ipynb` (lesson 11)."""

from transformers import PreTrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)


def without_registered_pipelines(config_class: type, custom_pipelines: dict | None) -> dict:
    """
    The entries of a saved folder's `custom_pipelines` that name no pipeline registered with transformers by the
    package defining `config_class`. A folder names its pipelines for remote code; where the package itself is
    installed, `pipeline()` should build the registered class, which it refuses to do without `trust_remote_code` for
    any task the config names. A config loaded as remote code (`transformers_modules`) keeps every entry.
    """
    if not custom_pipelines:
        return {}
    from transformers.pipelines import PIPELINE_REGISTRY  # only for a folder that names pipelines

    package = config_class.__module__.split(".")[0]
    kept = {}
    for task, entry in custom_pipelines.items():
        impl = PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl")
        served = isinstance(impl, type) and impl.__module__.split(".")[0] == package and isinstance(entry, dict)
        if not (served and entry.get("impl") == f"{impl.__module__.split('.')[-1]}.{impl.__name__}"):
            kept[task] = entry
    return kept


# Copied from ulmfit.models.awd_lstm.configuration_awd_lstm.check_model_type
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


class GruSeq2SeqConfig(PreTrainedConfig):
    r"""
    Configuration of a GRU encoder-decoder with additive attention (Bahdanau, Cho & Bengio 2014, arXiv:1409.0473), the
    French -> English translator of fast.ai's 2018 course (`courses/dl2/translate.ipynb`, lesson 11). The defaults
    reproduce the notebook's final ("All") model: 300-d embeddings, a 2-layer bidirectional GRU encoder of 256 units
    per direction, a 2-layer GRU decoder of 300 units whose input is the previous word's embedding combined with the
    attention context, an output layer tied to the decoder embedding, and the notebook's dropouts. Special tokens
    follow fastai: `xxunk xxpad xxbos xxeos ...` have ids 0, 1, 2, 3 in both vocabularies; decoding starts from
    `xxbos` and every sequence ends with `xxeos`.

    As in the notebook, the decoder GRU works at `embedding_size` (fastai `em_sz_dec`), so its output feeds the tied
    output layer directly, and the attention's hidden size is `embedding_size` too.

    Args:
        vocab_size (`int`, *optional*, defaults to 24793):
            Size of the source (French) vocabulary (the notebook's French vocabulary had 24,793 tokens).
        decoder_vocab_size (`int`, *optional*, defaults to 17573):
            Size of the target (English) vocabulary, the rows of the decoder embedding and of the output layer
            (the notebook's English vocabulary had 17,573 tokens).
        embedding_size (`int`, *optional*, defaults to 300):
            Size of the source and target word embeddings (fastai `em_sz_enc`, `em_sz_dec`: fastText's 300-d vectors),
            of the decoder GRU, and of the attention.
        hidden_size (`int`, *optional*, defaults to 256):
            Hidden size of each direction of the bidirectional encoder GRU (fastai `nh`), so the encoder outputs have
            `2 * hidden_size` features.
        num_hidden_layers (`int`, *optional*, defaults to 2):
            Layers of the encoder GRU and of the decoder GRU (fastai `nl`): the encoder's final state of layer `i`
            initialises decoder layer `i`.
        encoder_bidirectional_layers (`int`, *optional*):
            How many of the encoder's layers, from the bottom, are bidirectional; `None` (the default, the notebook's
            model) makes all of them so. Google's NMT (Wu et al. 2016, as lesson 11 notes) makes only the first one
            bidirectional: the layers above it are then unidirectional GRUs of `2 * hidden_size` units, so that the
            encoder outputs and final states keep their size.
        input_dropout (`float`, *optional*, defaults to 0.15):
            Dropout on the embedded source words (fastai `emb_enc_drop`; course-v3 `p_inp`).
        encoder_dropout (`float`, *optional*, defaults to 0.25):
            Dropout between the encoder GRU layers (the encoder `nn.GRU(dropout=0.25)`; course-v3 `p_enc`).
        hidden_dropout (`float`, *optional*, defaults to 0.25):
            Dropout on the encoder's final state before it is projected to the decoder's initial state (fastai
            `drop_enc`: 0.25 in the notebook's "All" model, 0.05 in its bidirectional-only one; course-v3 `p_hid`).
        decoder_dropout (`float`, *optional*, defaults to 0.1):
            Dropout between the decoder GRU layers (the decoder `nn.GRU(dropout=0.1)`; course-v3 `p_dec`).
        output_dropout (`float`, *optional*, defaults to 0.35):
            Dropout on the decoder output before the output layer (fastai `out_drop`; course-v3 `p_out`).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Whether the output layer shares its weight with the decoder embedding (the notebook's
            `self.out.weight.data = self.emb_dec.weight.data`).
        initializer_range (`float`, *optional*, defaults to 1.0):
            Standard deviation of the normal initialisation of both embeddings (PyTorch's `nn.Embedding` default,
            which the notebook keeps for words without a pretrained vector).
        pad_token_id (`int`, *optional*, defaults to 1):
            Id of `xxpad` in both vocabularies.
        bos_token_id (`int`, *optional*, defaults to 2):
            Id of `xxbos` in both vocabularies.
        eos_token_id (`int`, *optional*, defaults to 3):
            Id of `xxeos`, appended to every source and target sequence.
        decoder_start_token_id (`int`, *optional*, defaults to 2):
            The decoder's first input (`xxbos`); `labels` are shifted right behind it, as in Marian.

    Example:
    ```python
    >>> from ulmfit import GruSeq2SeqConfig, GruSeq2SeqForConditionalGeneration
    >>> config = GruSeq2SeqConfig(vocab_size=1000, decoder_vocab_size=800, embedding_size=32, hidden_size=24)
    >>> model = GruSeq2SeqForConditionalGeneration(config)
    ```

    Like every transformers 5 config this is a dataclass of the typed fields below, built from keyword arguments only;
    unknown keys (`auto_map`, `custom_pipelines`, ...) are kept as attributes. Impossible values raise a `ValueError`
    naming the field and the value, from [`~GruSeq2SeqConfig.validate_architecture`] and
    [`~GruSeq2SeqConfig.validate_token_ids`].
    """

    model_type = "gru_seq2seq"

    vocab_size: int = 24793
    decoder_vocab_size: int = 17573
    embedding_size: int = 300
    hidden_size: int = 256
    num_hidden_layers: int = 2
    encoder_bidirectional_layers: int | None = None
    input_dropout: float = 0.15
    encoder_dropout: float = 0.25
    hidden_dropout: float = 0.25
    decoder_dropout: float = 0.1
    output_dropout: float = 0.35
    tie_word_embeddings: bool = True
    initializer_range: float = 1.0
    pad_token_id: int = 1
    bos_token_id: int = 2
    eos_token_id: int = 3
    decoder_start_token_id: int = 2
    is_encoder_decoder: bool = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`PreTrainedConfig.from_pretrained`, refusing a checkpoint of another model type (see `check_model_type`)."""
        check_model_type(cls, pretrained_model_name_or_path, kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def __post_init__(self, **kwargs):
        # A folder's `custom_pipelines` entries for pipelines the installed package registers are left out
        if custom_pipelines := without_registered_pipelines(type(self), kwargs.pop("custom_pipelines", None)):
            kwargs["custom_pipelines"] = custom_pipelines
        super().__post_init__(**kwargs)
        # Not `@strict`: its checks would raise huggingface_hub's StrictDataclass*Error rather than a ValueError, and
        # its `float` fields reject ints (`initializer_range=1`), so the hooks run here, unwrapped.
        self.validate_architecture()
        self.validate_token_ids()

    def validate_architecture(self):
        """Reject sizes and dropouts no translator can be built from, naming the field and the value."""
        super().validate_architecture()
        if self.is_encoder_decoder is not True:
            raise ValueError(
                f"GruSeq2Seq is an encoder-decoder: `is_encoder_decoder` must be True, got {self.is_encoder_decoder!r}"
            )
        for name in ("vocab_size", "decoder_vocab_size", "embedding_size", "hidden_size", "num_hidden_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        for name in ("input_dropout", "encoder_dropout", "hidden_dropout", "decoder_dropout", "output_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` is a dropout probability and must be in [0, 1), got {value!r}.")
        value = self.encoder_bidirectional_layers
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.num_hidden_layers
        ):
            raise ValueError(
                f"`encoder_bidirectional_layers` must be None or a layer count in [1, {self.num_hidden_layers}] "
                f"(num_hidden_layers), got {value!r}."
            )
        value = self.initializer_range
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"`initializer_range` must be a positive number, got {value!r}.")

    def validate_token_ids(self):
        """The special tokens exist in both vocabularies, at the same ids (fastai's fixed special tokens)."""
        smallest = min(self.vocab_size, self.decoder_vocab_size)
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < smallest:
                raise ValueError(
                    f"`{name}`={value!r} must be an id in both vocabularies (vocab_size={self.vocab_size}, "
                    f"decoder_vocab_size={self.decoder_vocab_size})."
                )


__all__ = ["GruSeq2SeqConfig"]
