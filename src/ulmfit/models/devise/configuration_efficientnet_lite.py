"""EfficientNet-Lite configuration (Tan & Le 2019, arXiv:1905.11946; the "Lite" variants of the TF model garden)."""

from transformers import PreTrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)

# The per-stage fields: lists of one length, one entry per stage.
STAGE_FIELDS = ("kernel_sizes", "strides", "expand_ratios", "out_channels", "num_block_repeats")


class EfficientNetLiteConfig(PreTrainedConfig):
    r"""
    Configuration of an EfficientNet-Lite image model. The defaults are EfficientNet-Lite0: EfficientNet-B0's 16 MBConv
    blocks in 7 stages, without squeeze-and-excitation and with ReLU6 instead of swish (the changes Google made for
    mobile accelerators), a 32-channel stem and a 1280-channel head. transformers' own `EfficientNetConfig` always
    builds squeeze-and-excitation and scales the stem and head, so it cannot express these networks.

    Every stage is given explicitly (Lite1-4 only change the lists and the input size), so a tiny network for tests is
    just shorter lists.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the input images.
        stem_channels (`int`, *optional*, defaults to 32):
            Output channels of the stride-2 3x3 stem convolution (fixed at 32 in every Lite model).
        kernel_sizes (`list[int]`, *optional*, defaults to `[3, 3, 5, 3, 5, 5, 3]`):
            Depthwise kernel size of each stage.
        strides (`list[int]`, *optional*, defaults to `[1, 2, 2, 2, 1, 2, 1]`):
            Stride of the first block of each stage (the other blocks have stride 1).
        expand_ratios (`list[int]`, *optional*, defaults to `[1, 6, 6, 6, 6, 6, 6]`):
            Width multiplier of the inverted bottleneck of each stage (1 means no expansion convolution).
        out_channels (`list[int]`, *optional*, defaults to `[16, 24, 40, 80, 112, 192, 320]`):
            Output channels of each stage.
        num_block_repeats (`list[int]`, *optional*, defaults to `[1, 2, 2, 3, 3, 4, 1]`):
            Number of MBConv blocks in each stage.
        hidden_dim (`int`, *optional*, defaults to 1280):
            Channels of the 1x1 head convolution, i.e. of the final feature map (transformers' EfficientNet name).
        hidden_act (`str`, *optional*, defaults to `"relu6"`):
            Activation after every convolution but the projections.
        batch_norm_eps (`float`, *optional*, defaults to 1e-3):
            Epsilon of every BatchNorm (TF's value; PyTorch's default 1e-5 gives different outputs).
        batch_norm_momentum (`float`, *optional*, defaults to 0.01):
            BatchNorm momentum in PyTorch's convention (weight of the new batch), i.e. TF's decay 0.99.
        drop_connect_rate (`float`, *optional*, defaults to 0.2):
            Stochastic depth: the probability of dropping a residual branch grows linearly from 0 to this value over
            the blocks (lukemelas `drop_connect_rate`).
        dropout_rate (`float`, *optional*, defaults to 0.2):
            Dropout before the classifier of [`EfficientNetLiteForImageClassification`].

    Example:
    ```python
    >>> from ulmfit.models.devise import EfficientNetLiteConfig, EfficientNetLiteModel
    >>> tiny = EfficientNetLiteConfig(
    ...     stem_channels=8, kernel_sizes=[3, 5], strides=[1, 2], expand_ratios=[1, 4], out_channels=[8, 16],
    ...     num_block_repeats=[1, 2], hidden_dim=32,
    ... )
    >>> model = EfficientNetLiteModel(tiny)
    ```

    Like every transformers 5 config this is a dataclass of the typed fields below, built from keyword arguments only;
    the per-stage lists may be given as tuples and are stored as lists. Impossible values raise a `ValueError` naming
    the field and the value, from [`~EfficientNetLiteConfig.validate_architecture`].
    """

    model_type = "efficientnet_lite"

    num_channels: int = 3
    stem_channels: int = 32
    # tuples: a dataclass field cannot default to a (mutable) list; `__post_init__` stores lists
    kernel_sizes: list[int] | tuple[int, ...] = (3, 3, 5, 3, 5, 5, 3)
    strides: list[int] | tuple[int, ...] = (1, 2, 2, 2, 1, 2, 1)
    expand_ratios: list[int] | tuple[int, ...] = (1, 6, 6, 6, 6, 6, 6)
    out_channels: list[int] | tuple[int, ...] = (16, 24, 40, 80, 112, 192, 320)
    num_block_repeats: list[int] | tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
    hidden_dim: int = 1280
    hidden_act: str = "relu6"
    batch_norm_eps: float = 1e-3
    batch_norm_momentum: float = 0.01
    drop_connect_rate: float = 0.2
    dropout_rate: float = 0.2

    def __post_init__(self, **kwargs):
        for name in STAGE_FIELDS:
            setattr(self, name, list(getattr(self, name)))
        super().__post_init__(**kwargs)
        # Not `@strict`: its checks would raise huggingface_hub's StrictDataclass*Error rather than a ValueError, and
        # its `float` fields reject ints (`drop_connect_rate=0`), so the hook runs here, unwrapped.
        self.validate_architecture()

    def validate_architecture(self):
        """Reject values no EfficientNet-Lite can be built from, naming the field and the value."""
        super().validate_architecture()
        for name in ("num_channels", "stem_channels", "hidden_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        lengths = {name: len(getattr(self, name)) for name in STAGE_FIELDS}
        if len(set(lengths.values())) != 1 or not lengths["out_channels"]:
            raise ValueError(f"The per-stage lists must be non-empty and of one length, got lengths {lengths}.")
        for name in STAGE_FIELDS:
            values = getattr(self, name)
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"`{name}` must hold positive integers, got {values!r}.")
        if any(size % 2 == 0 for size in self.kernel_sizes):
            raise ValueError(f"`kernel_sizes` must be odd, got {self.kernel_sizes!r}.")
        for name in ("drop_connect_rate", "dropout_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` is a probability and must be in [0, 1), got {value!r}.")
        if not 0.0 < self.batch_norm_momentum <= 1.0:
            raise ValueError(
                f"`batch_norm_momentum` is PyTorch's (the weight of a new batch, TF's 1 - decay) and must be in "
                f"(0, 1], got {self.batch_norm_momentum!r}."
            )

    @property
    def num_blocks(self) -> int:
        """Total number of MBConv blocks."""
        return sum(self.num_block_repeats)


__all__ = ["EfficientNetLiteConfig"]
