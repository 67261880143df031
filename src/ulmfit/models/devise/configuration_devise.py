"""DeViSE configuration (Frome et al., NeurIPS 2013), with the defaults of fast.ai's 2018 `devise.ipynb`."""

from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto import AutoConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.utils import logging

from .configuration_efficientnet_lite import EfficientNetLiteConfig


logger = logging.get_logger(__name__)

LOSS_TYPES = ("cosine", "hinge_rank")


def backbone_config_from_dict(config_dict: dict) -> PreTrainedConfig:
    """
    The config class of a serialised vision config. EfficientNet-Lite is resolved here rather than through
    `AutoConfig`, so that a saved DeViSE model loads as remote code where this package is not installed.
    """
    model_type = config_dict.get("model_type")
    if model_type == EfficientNetLiteConfig.model_type:
        return EfficientNetLiteConfig.from_dict(config_dict)
    if model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"`backbone_config` has model_type={model_type!r}, which transformers does not know; give a vision "
            "config such as ResNetConfig, ConvNextConfig, EfficientNetConfig or EfficientNetLiteConfig."
        )
    return CONFIG_MAPPING[model_type].from_dict(config_dict)


def backbone_hidden_size(backbone_config: PreTrainedConfig) -> int:
    """Channels of the backbone's last feature map, read from its config (what the pooling and head are sized by)."""
    if getattr(backbone_config, "hidden_dim", None):  # EfficientNet, EfficientNet-Lite: the head convolution
        return backbone_config.hidden_dim
    if getattr(backbone_config, "hidden_sizes", None):  # ResNet, ConvNext, RegNet, ...: the last stage
        return backbone_config.hidden_sizes[-1]
    if getattr(backbone_config, "hidden_size", None):  # ViT-style encoders: the token width
        return backbone_config.hidden_size
    raise ValueError(
        f"Cannot tell the output width of a {type(backbone_config).__name__} backbone: its config has none of "
        "`hidden_dim`, `hidden_sizes` or `hidden_size`."
    )


# Copied from ulmfit.models.gru_seq2seq.configuration_gru_seq2seq.without_registered_pipelines
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


class DeviseConfig(PreTrainedConfig):
    r"""
    Configuration of a DeViSE model ("Deep Visual-Semantic Embedding"): an image backbone whose pooled features a small
    head maps into a word-vector space, so that images can be labelled with, and searched by, any word with a vector.
    The defaults reproduce fast.ai's 2018 `devise.ipynb` (course part 2, lesson 11): a ResNet-50 body, concat pooling,
    `xtra_fc=[1024]`, `ps=[0.2, 0.2]`, 300-d fastText targets and the cosine loss. The backbone follows the
    conventions of transformers' DETR-style configs: `backbone_config` holds any transformers vision config, and
    `backbone` names a checkpoint whose config (and, with `use_pretrained_backbone`, weights) to use.

    Args:
        backbone_config (`PreTrainedConfig` or `dict`, *optional*):
            Config of the image backbone: any transformers vision model whose output is a feature map (ResNet,
            ConvNext, RegNet, EfficientNet, ...) or a token sequence (ViT-style), or an [`EfficientNetLiteConfig`].
            Defaults to `ResNetConfig()` (ResNet-50, the notebook's body), or to the config of `backbone`.
        backbone (`str`, *optional*):
            Hub id or local folder of a pretrained vision checkpoint (e.g. a converted EfficientNet-Lite0). Its config
            is used when `backbone_config` is not given.
        use_pretrained_backbone (`bool`, *optional*, defaults to `False`):
            Load `backbone`'s weights when the model is built from this config. `save_pretrained` writes `False`,
            since a saved model holds its backbone weights itself.
        freeze_backbone (`bool`, *optional*, defaults to `False`):
            Keep the backbone fixed: no gradients and BatchNorm statistics frozen, as fastai's `freeze()` with
            `bn_freeze(True)`; only the head trains (the notebook's `precompute=True` phase).
        projection_dim (`int`, *optional*, defaults to 300):
            Dimension of the word vectors the images are mapped onto (the notebook's fastText vectors: 300).
        head_hidden_size (`int`, *optional*, defaults to 1024):
            Width of the head's hidden layer (fastai `xtra_fc=[1024]`).
        pooled_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the concat-pooled backbone features, before the first linear layer (fastai `ps[0]`).
        hidden_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the hidden layer, before the projection (fastai `ps[1]`).
        loss_type (`str`, *optional*, defaults to `"cosine"`):
            `"cosine"`: 1 - cosine similarity to the label's word vector (the notebook's `cos_loss`). `"hinge_rank"`:
            the paper's hinge rank loss, `sum_j max(0, margin - s(image, label) + s(image, label_j))` over the other
            labels.
        hinge_margin (`float`, *optional*, defaults to 0.1):
            Margin of the hinge rank loss (the paper's 0.1).
        logit_scale (`float`, *optional*, defaults to 10.0):
            Factor applied to cosine similarities in `logits_per_image`, a softmax temperature for zero-shot
            probabilities; rankings do not depend on it.
        vocab_size (`int`, *optional*, defaults to 0):
            Number of rows of the frozen word-vector table (the tokenizer's vocabulary, padding included) that embeds
            text for zero-shot labels and text queries. 0 means the model has no text side.

    Example:
    ```python
    >>> from transformers import ResNetConfig
    >>> from ulmfit import DeviseConfig, DeviseModel
    >>> backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    >>> config = DeviseConfig(backbone_config=backbone, projection_dim=50, head_hidden_size=32)
    >>> model = DeviseModel(config)
    ```

    Like every transformers 5 config this is a dataclass of the typed fields below, built from keyword arguments only;
    unknown keys (`auto_map`, `custom_pipelines`, ...) are kept as attributes. `backbone_config` is resolved to a
    config object in `__post_init__`. Impossible values raise a `ValueError` naming the field and the value, from
    [`~DeviseConfig.validate_architecture`].
    """

    model_type = "devise"
    sub_configs_defaults = {"backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="resnet")}

    backbone_config: PreTrainedConfig | dict | None = None
    backbone: str | None = None
    use_pretrained_backbone: bool = False
    freeze_backbone: bool = False
    projection_dim: int = 300
    head_hidden_size: int = 1024
    pooled_dropout: float = 0.2
    hidden_dropout: float = 0.2
    loss_type: str = "cosine"
    hinge_margin: float = 0.1
    logit_scale: float = 10.0
    vocab_size: int = 0

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`PreTrainedConfig.from_pretrained`, refusing a checkpoint of another model type (see `check_model_type`)."""
        check_model_type(cls, pretrained_model_name_or_path, kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def __post_init__(self, **kwargs):
        # 1. The backbone: given, or read from `backbone`, or the notebook's ResNet-50. Resolved before
        # `super().__post_init__`, whose sub-config handling would look EfficientNet-Lite up in `AutoConfig`, which
        # does not know it when the model is loaded as remote code.
        if self.backbone_config is None and self.backbone is not None:
            self.backbone_config, _ = PreTrainedConfig.get_config_dict(self.backbone)
        if self.backbone_config is None:
            self.backbone_config = CONFIG_MAPPING["resnet"]()
        if isinstance(self.backbone_config, dict):
            self.backbone_config = backbone_config_from_dict(self.backbone_config)
        self._check_backbone_config()
        # 2. The label table is filled by `DeviseModel.set_label_embeddings`; a new config has no labels, not 2
        if self.id2label is None and "num_labels" not in kwargs:
            kwargs["num_labels"] = 0
        # 3. A folder's `custom_pipelines` entries for pipelines the installed package registers are left out
        if custom_pipelines := without_registered_pipelines(type(self), kwargs.pop("custom_pipelines", None)):
            kwargs["custom_pipelines"] = custom_pipelines
        super().__post_init__(**kwargs)
        # Not `@strict`: its checks would raise huggingface_hub's StrictDataclass*Error rather than a ValueError, and
        # its `float` fields reject ints (`hinge_margin=0`), so the hook runs here, unwrapped.
        self.validate_architecture()

    def _check_backbone_config(self):
        if not isinstance(self.backbone_config, PreTrainedConfig):
            raise ValueError(
                f"`backbone_config` must be a transformers config or a dict, got {type(self.backbone_config)}."
            )

    def validate_architecture(self):
        """Reject values no DeViSE model can be built from, naming the field and the value."""
        super().validate_architecture()
        self._check_backbone_config()
        backbone_hidden_size(self.backbone_config)
        for name in ("projection_dim", "head_hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int) or self.vocab_size < 0:
            raise ValueError(f"`vocab_size` must be a non-negative integer, got {self.vocab_size!r}.")
        for name in ("pooled_dropout", "hidden_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` is a dropout probability and must be in [0, 1), got {value!r}.")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {self.loss_type!r}.")
        if (
            isinstance(self.hinge_margin, bool)
            or not isinstance(self.hinge_margin, (int, float))
            or self.hinge_margin < 0
        ):
            raise ValueError(f"`hinge_margin` must be a non-negative number, got {self.hinge_margin!r}.")
        if (
            isinstance(self.logit_scale, bool)
            or not isinstance(self.logit_scale, (int, float))
            or self.logit_scale <= 0
        ):
            raise ValueError(f"`logit_scale` must be a positive number, got {self.logit_scale!r}.")
        if self.use_pretrained_backbone and not self.backbone:
            raise ValueError("`use_pretrained_backbone=True` needs `backbone`, the checkpoint to load weights from.")

    @property
    def backbone_hidden_size(self) -> int:
        """Channels of the backbone's last feature map; the concat-pooled features have twice as many."""
        return backbone_hidden_size(self.backbone_config)


__all__ = ["DeviseConfig"]
