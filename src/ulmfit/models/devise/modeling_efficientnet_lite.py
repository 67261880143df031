"""PyTorch EfficientNet-Lite, as a transformers model (the image backbone of the DeViSE checkpoints we publish).

EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
arXiv:1905.11946) stacks MBConv blocks (Sandler et al. 2018, arXiv:1801.04381): 1x1 expansion -> depthwise conv ->
1x1 projection, with a residual when shape allows. The Lite variants (TensorFlow model garden, 2020) remove
squeeze-and-excitation, use ReLU6 and fix the stem and head widths. This file follows lukemelas' `efficientnet_pytorch`
numerically, so its checkpoints convert key for key (`convert_efficientnet_lite.py`); what differs from
transformers' `EfficientNetModel` is deliberate:

- no squeeze-and-excitation (transformers always builds it);
- TF "SAME" padding computed from the actual input size, so any resolution gives TF's result (transformers pads for
  one fixed size, lukemelas for the `image_size` given at construction);
- stochastic depth drops whole residual branches per sample (transformers applies element-wise dropout instead);
- BatchNorm momentum in PyTorch's convention (transformers passes TF's 0.99 to PyTorch, where it means 0.01);
- gradient checkpointing, block by block (transformers' EfficientNet has none), with the BatchNorm statistics updated
  once per step, not again when the backward pass recomputes a block.
"""

import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)
from transformers.utils import logging

from .configuration_efficientnet_lite import EfficientNetLiteConfig


logger = logging.get_logger(__name__)


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding of one dimension: the output has ceil(size / stride) positions, the odd pixel at the end."""
    output_size = math.ceil(size / stride)
    total = max((output_size - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def drop_path(hidden_states: torch.Tensor, probability: float, training: bool) -> torch.Tensor:
    """Stochastic depth (Huang et al. 2016): zero a residual branch for a whole sample, rescale the kept ones."""
    if not training or probability == 0.0:
        return hidden_states
    keep = 1.0 - probability
    mask = hidden_states.new_empty((hidden_states.shape[0], 1, 1, 1)).bernoulli_(keep)  # one draw per sample
    return hidden_states * mask / keep


def _check_pixel_values(pixel_values: torch.Tensor, num_channels: int | None, dtype: torch.dtype) -> torch.Tensor:
    """
    `pixel_values` cast to the model's `dtype`, as transformers' vision models cast them (float64 from numpy is fine),
    with a clear error naming them instead of one deep inside a convolution, or a silent NaN: not `(batch_size,
    num_channels, height, width)`, no pixel, integer pixels (not run through the image processor), NaN or infinite
    values (one device sync). An empty batch passes and gives empty outputs, as torch's layers do.
    """
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"`pixel_values` must be a tensor, got {type(pixel_values).__name__}.")
    channels = "num_channels" if num_channels is None else num_channels
    if pixel_values.dim() != 4 or (num_channels is not None and pixel_values.size(1) != num_channels):
        raise ValueError(
            f"`pixel_values` must have shape (batch_size, {channels}, height, width), got {tuple(pixel_values.shape)}."
        )
    if 0 in pixel_values.shape[2:]:
        raise ValueError(f"`pixel_values` has shape {tuple(pixel_values.shape)}: an image needs at least one pixel.")
    if not pixel_values.is_floating_point():
        raise TypeError(
            f"`pixel_values` must be floating-point (normalised images, as the image processor returns them), got "
            f"dtype {pixel_values.dtype}."
        )
    pixel_values = pixel_values.to(dtype)
    if pixel_values.numel() and not bool(torch.isfinite(pixel_values).all()):
        raise ValueError(f"`pixel_values` holds NaN or infinite values (in {dtype}).")
    return pixel_values


@contextmanager
def batch_norm_statistics_kept(module: nn.Module):
    """
    Inside, the BatchNorm layers of `module` still normalise with the batch statistics in training mode but leave their
    running statistics as they are (momentum 0, batch count restored). The backward pass's recomputation of a
    checkpointed block needs this: its forward pass has already updated them once.
    """
    norms = [norm for norm in module.modules() if isinstance(norm, nn.BatchNorm2d)]
    saved = [(norm.momentum, norm.num_batches_tracked.clone()) for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    try:
        yield
    finally:
        for norm, (momentum, num_batches_tracked) in zip(norms, saved):
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(num_batches_tracked)


# Copied from ulmfit.models.awd_lstm.layers_awd_lstm._init_batch_norm
def _init_batch_norm(module: nn.Module):
    """
    A BatchNorm layer at identity. Its running statistics are buffers, which transformers 5 does not initialise on its
    own: a layer that `from_pretrained` creates (a new head) has nothing else to set them.
    """
    init.ones_(module.weight)
    init.zeros_(module.bias)
    init.zeros_(module.running_mean)
    init.ones_(module.running_var)
    init.zeros_(module.num_batches_tracked)


class EfficientNetLiteConv2d(nn.Conv2d):
    """A bias-free convolution with TF "SAME" padding (lukemelas `Conv2dDynamicSamePadding`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        height, width = hidden_states.shape[-2:]
        top, bottom = same_padding(height, self.kernel_size[0], self.stride[0])
        left, right = same_padding(width, self.kernel_size[1], self.stride[1])
        if top or bottom or left or right:
            hidden_states = F.pad(hidden_states, (left, right, top, bottom))
        return super().forward(hidden_states)


class EfficientNetLiteEmbeddings(nn.Module):
    """The stem: stride-2 3x3 convolution -> BatchNorm -> ReLU6."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__()
        self.convolution = EfficientNetLiteConv2d(config.num_channels, config.stem_channels, 3, stride=2)
        self.batchnorm = nn.BatchNorm2d(
            config.stem_channels, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum
        )
        self.activation = ACT2FN[config.hidden_act]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.activation(self.batchnorm(self.convolution(pixel_values)))


class EfficientNetLiteBlock(nn.Module):
    """
    MBConv without squeeze-and-excitation: [1x1 expand -> BN -> ReLU6] -> depthwise kxk -> BN -> ReLU6 -> 1x1 project
    -> BN, plus the input when stride is 1 and the width is unchanged (with stochastic depth on the branch).
    """

    def __init__(
        self,
        config: EfficientNetLiteConfig,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        drop_path_rate: float,
    ):
        super().__init__()
        expanded = in_channels * expand_ratio
        norm = {"eps": config.batch_norm_eps, "momentum": config.batch_norm_momentum}
        self.expand_conv = EfficientNetLiteConv2d(in_channels, expanded, 1) if expand_ratio != 1 else None
        self.expand_bn = nn.BatchNorm2d(expanded, **norm) if expand_ratio != 1 else None
        self.depthwise_conv = EfficientNetLiteConv2d(expanded, expanded, kernel_size, stride=stride, groups=expanded)
        self.depthwise_bn = nn.BatchNorm2d(expanded, **norm)
        self.project_conv = EfficientNetLiteConv2d(expanded, out_channels, 1)
        self.project_bn = nn.BatchNorm2d(out_channels, **norm)
        self.activation = ACT2FN[config.hidden_act]
        self.has_residual = stride == 1 and in_channels == out_channels
        self.drop_path_rate = drop_path_rate
        # Set by `model.gradient_checkpointing_enable()`: the block keeps only its input and is recomputed in the
        # backward pass (`_gradient_checkpointing_func`, set alongside)
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if not (self.gradient_checkpointing and self.training and torch.is_grad_enabled()):
            return self._forward(hidden_states)
        # The checkpoint calls `run` twice, in the forward pass and again in the backward pass, where the BatchNorm
        # statistics must not move a second time (the stochastic-depth draw is replayed from the saved RNG state)
        first_run = True

        def run(hidden_states: torch.Tensor) -> torch.Tensor:
            nonlocal first_run
            if first_run:
                first_run = False
                return self._forward(hidden_states)
            with batch_norm_statistics_kept(self):
                return self._forward(hidden_states)

        return self._gradient_checkpointing_func(run, hidden_states)

    def _forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = hidden_states
        if self.expand_conv is not None:
            hidden_states = self.activation(self.expand_bn(self.expand_conv(hidden_states)))
        hidden_states = self.activation(self.depthwise_bn(self.depthwise_conv(hidden_states)))
        hidden_states = self.project_bn(self.project_conv(hidden_states))  # linear bottleneck: no activation
        if self.has_residual:
            hidden_states = drop_path(hidden_states, self.drop_path_rate, self.training) + residual
        return hidden_states


class EfficientNetLiteEncoder(nn.Module):
    """The MBConv blocks of every stage, then the 1x1 head convolution -> BN -> ReLU6 (lukemelas `_conv_head`)."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__()
        blocks = []
        in_channels = config.stem_channels
        stages = zip(
            config.kernel_sizes, config.strides, config.expand_ratios, config.out_channels, config.num_block_repeats
        )
        for kernel_size, stride, expand_ratio, out_channels, repeats in stages:
            for repeat in range(repeats):
                # lukemelas scales the drop rate by the block's position: deeper blocks are dropped more often
                drop_path_rate = config.drop_connect_rate * len(blocks) / config.num_blocks
                blocks.append(
                    EfficientNetLiteBlock(
                        config,
                        in_channels=in_channels,
                        out_channels=out_channels,
                        kernel_size=kernel_size,
                        stride=stride if repeat == 0 else 1,
                        expand_ratio=expand_ratio,
                        drop_path_rate=drop_path_rate,
                    )
                )
                in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.top_conv = EfficientNetLiteConv2d(in_channels, config.hidden_dim, 1)
        self.top_bn = nn.BatchNorm2d(config.hidden_dim, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)
        self.top_activation = ACT2FN[config.hidden_act]

    def forward(
        self, hidden_states: torch.Tensor, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for block in self.blocks:
            hidden_states = block(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        hidden_states = self.top_activation(self.top_bn(self.top_conv(hidden_states)))
        return hidden_states, all_hidden_states


class EfficientNetLitePreTrainedModel(PreTrainedModel):
    """Weight initialisation shared by the EfficientNet-Lite models."""

    config_class = EfficientNetLiteConfig
    config: EfficientNetLiteConfig
    base_model_prefix = "efficientnet_lite"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["EfficientNetLiteBlock"]
    # `gradient_checkpointing_enable()` recomputes each MBConv block in the backward pass (the stem and the head
    # convolution keep their activations)
    supports_gradient_checkpointing = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """TF EfficientNet's initialisation: convolutions normal(0, sqrt(2 / fan_out)), dense uniform(+-out^-1/2)."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            _init_batch_norm(module)
        elif isinstance(module, nn.Linear):
            bound = module.out_features**-0.5
            init.uniform_(module.weight, -bound, bound)
            init.zeros_(module.bias)


class EfficientNetLiteModel(EfficientNetLitePreTrainedModel):
    """
    EfficientNet-Lite without its classifier: `last_hidden_state` is the head's feature map
    `(batch_size, hidden_dim, height / 32, width / 32)` and `pooler_output` its spatial average.
    """

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        self.embeddings = EfficientNetLiteEmbeddings(config)
        self.encoder = EfficientNetLiteEncoder(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                Images, normalised as the checkpoint expects (`(x - 127) / 128` for Google's Lite weights). Another
                floating dtype (float64 from numpy) is cast to the model's, as transformers' vision models do; the
                wrong rank or channel count, no pixel, integer pixels or NaN / infinite values raise a `ValueError` or
                `TypeError` naming `pixel_values`. An empty batch gives empty outputs.
            output_hidden_states (`bool`, *optional*):
                Also return the stem output and the output of every block.
            return_dict (`bool`, *optional*):
                Return a `ModelOutput` (default) or a tuple.
        """
        if pixel_values is None:
            raise ValueError("EfficientNetLiteModel needs `pixel_values`.")
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        weight = self.embeddings.convolution.weight
        pixel_values = _check_pixel_values(pixel_values, self.config.num_channels, weight.dtype)
        hidden_states = self.embeddings(pixel_values)
        last_hidden_state, all_hidden_states = self.encoder(hidden_states, output_hidden_states=output_hidden_states)
        pooled_output = last_hidden_state.mean(dim=(2, 3))  # (batch, hidden_dim, h, w) -> (batch, hidden_dim)
        if not return_dict:
            return tuple(v for v in (last_hidden_state, pooled_output, all_hidden_states) if v is not None)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last_hidden_state, pooler_output=pooled_output, hidden_states=all_hidden_states
        )


class EfficientNetLiteForImageClassification(EfficientNetLitePreTrainedModel):
    """EfficientNet-Lite with its classifier: average pooling -> dropout -> linear (lukemelas `_fc`)."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        self.efficientnet_lite = EfficientNetLiteModel(config)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.classifier = nn.Linear(config.hidden_dim, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        """
        Args:
            pixel_values: as in [`EfficientNetLiteModel`].
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Class ids in `[0, num_labels)`; the loss is their cross-entropy. Another dtype, batch size or range,
                or labels for an empty batch, raise a `ValueError` or `TypeError` naming `labels`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.efficientnet_lite(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None if labels is None else F.cross_entropy(logits, self._check_labels(labels, logits.size(0)))
        if not return_dict:
            output = tuple(v for v in (logits, outputs.hidden_states) if v is not None)
            return output if loss is None else (loss, *output)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)

    def _check_labels(self, labels: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Class ids `(batch_size,)` in `[0, num_labels)`, with a clear error otherwise (one device sync)."""
        if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
            found = f"dtype {labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise TypeError(f"`labels` must be class ids (an integer tensor), got {found}.")
        if batch_size == 0:
            raise ValueError("`labels` were given for an empty batch: a loss needs at least one image.")
        if tuple(labels.shape) != (batch_size,):
            raise ValueError(
                f"`labels` must have shape ({batch_size},), one class id per image, got {tuple(labels.shape)}."
            )
        low, high = torch.stack([labels.min(), labels.max()]).tolist()  # one sync for both ends
        if low < 0 or high >= self.config.num_labels:
            raise ValueError(
                f"`labels` must be class ids in [0, {self.config.num_labels - 1}], got values in [{low}, {high}]."
            )
        return labels.long()


__all__ = [
    "EfficientNetLiteForImageClassification",
    "EfficientNetLiteModel",
    "EfficientNetLitePreTrainedModel",
]
