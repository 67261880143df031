"""Image processor for DeViSE: any image in, a normalised 224 x 224 RGB tensor out, a clear error for a bad file."""

import io
import os

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    PILImageResampling,
    make_flat_list_of_images,
)
from transformers.utils import logging


logger = logging.get_logger(__name__)


def open_image(image, where: str = "the image") -> PIL.Image.Image:
    """
    A fully decoded PIL image from a path, raw bytes or a PIL image. Decoding happens here, so that a truncated or
    corrupt file fails now with a message naming it, not later inside a resize.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        what, opener = f"its {len(image)} bytes are", lambda: PIL.Image.open(io.BytesIO(bytes(image)))
    elif isinstance(image, (str, os.PathLike)):
        if not os.path.isfile(image):
            raise ValueError(f"Cannot read {where}: there is no file {os.fspath(image)!r}.")
        what, opener = f"{os.fspath(image)!r} is", lambda: PIL.Image.open(image)
    elif isinstance(image, PIL.Image.Image):
        what, opener = "it is", lambda: image
    else:
        raise TypeError(f"Cannot read {where}: expected a path, bytes or a PIL image, got {type(image).__name__}.")
    try:
        decoded = opener()
        decoded.load()
    except PIL.UnidentifiedImageError as error:
        raise ValueError(f"Cannot read {where}: {what} not an image file PIL knows.") from error
    except (OSError, SyntaxError) as error:  # truncated or damaged data
        raise ValueError(f"Cannot read {where}: the image data is corrupt or truncated ({error}).") from error
    return decoded


class DeviseImageProcessor(PilBackend):
    r"""
    Prepares images for [`DeviseModel`]: converts any mode to RGB (greyscale replicated, transparency composited on
    white), resizes the shorter side to 224 with bicubic resampling, crops the centre 224 x 224, scales to [0, 1] and
    normalises. The defaults are the notebook's (ImageNet statistics, as its ResNet-50 expects). Google's
    EfficientNet-Lite weights expect `(x - 127) / 128` on 0-255 pixels instead, i.e. `image_mean = 127/255` and
    `image_std = 128/255`, which `convert_efficientnet_lite.py` writes next to the converted weights.

    Images may be PIL images, numpy arrays, tensors, file paths or the raw bytes of a file (as stored in a `datasets`
    image column or a parquet file). A file PIL cannot decode raises a `ValueError` that says which input it was. A
    2-D `(height, width)` array or tensor is a greyscale image and is replicated to 3 channels, as a greyscale PIL
    image is. An empty list of images, an array of another rank, an image with no pixel or a float image holding NaN
    or infinite values raise a `ValueError` that names the image and its shape.

    Args:
        size (`dict[str, int]`, *optional*, defaults to `{"shortest_edge": 224}`):
            Size of the shorter side after resizing.
        crop_size (`dict[str, int]`, *optional*, defaults to `{"height": 224, "width": 224}`):
            Size of the centre crop.
        resample (`PILImageResampling`, *optional*, defaults to `BICUBIC`):
            Resampling filter.
        image_mean (`list[float]`, *optional*, defaults to ImageNet's mean):
            Per-channel mean subtracted after rescaling.
        image_std (`list[float]`, *optional*, defaults to ImageNet's standard deviation):
            Per-channel standard deviation divided by.
        kwargs:
            Any other option of transformers' image processors (`do_resize`, `do_center_crop`, `do_rescale`,
            `rescale_factor`, `do_normalize`, `do_convert_rgb`).
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True

    def _prepare_images_structure(self, images, expected_ndims: int = 3) -> list:
        """
        `fetch_images`, then a flat list of single images, as transformers makes it, but with 2-D `(height, width)`
        greyscale arrays taken as images too (transformers only takes them inside `process_image`), and clear errors
        for what cannot be an image.
        """
        images = self.fetch_images(images)
        single = (PIL.Image.Image, np.ndarray, torch.Tensor)
        if isinstance(images, single):
            _check_array_rank(images, "the image", allowed=(2, 3, 4))
            flat = (
                [images]
                if getattr(images, "ndim", 3) == 2
                else make_flat_list_of_images(images, expected_ndims=expected_ndims)
            )
        elif isinstance(images, (list, tuple)) and all(isinstance(image, single) for image in images):
            for index, image in enumerate(images):
                _check_array_rank(image, f"image {index}", allowed=(2, 3, 4))
            ranks = {getattr(image, "ndim", 3) for image in images}  # a PIL image counts as one image
            flat = list(images) if ranks <= {2, 3} else make_flat_list_of_images(images, expected_ndims=expected_ndims)
        else:
            flat = make_flat_list_of_images(images, expected_ndims=expected_ndims)  # nested lists
        if not flat:
            raise ValueError("`images` is empty: give at least one image.")
        for index, image in enumerate(flat):
            _check_pixels(image, f"image {index}")
        return flat

    def process_image(self, image, *args, input_data_format=None, **kwargs) -> np.ndarray:
        """`PilBackend.process_image`, with a 2-D greyscale image replicated to 3 channels first."""
        if getattr(image, "ndim", None) == 2:
            image = image.numpy() if isinstance(image, torch.Tensor) else image
            image, input_data_format = np.repeat(image[None], 3, axis=0), ChannelDimension.FIRST  # (3, height, width)
        return super().process_image(image, *args, input_data_format=input_data_format, **kwargs)

    def fetch_images(self, images):
        """Open paths and raw bytes (with a clear error for a corrupt one); leave other images as they are."""
        if isinstance(images, (list, tuple)):
            return [self._open(image, f"image {index}") for index, image in enumerate(images)]
        return self._open(images, "the image")

    @staticmethod
    def _open(image, where: str):
        if isinstance(image, (list, tuple)):
            return [DeviseImageProcessor._open(item, f"{where}.{index}") for index, item in enumerate(image)]
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            raise ValueError(
                f"Cannot read {where}: download {image!r} first (DeviseImageProcessor reads local files)."
            )
        if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview, PIL.Image.Image)):
            return open_image(image, where)
        if isinstance(image, np.ndarray) and image.dtype == object:
            raise TypeError(f"Cannot read {where}: an object array is not an image.")
        return image


def _check_array_rank(image, where: str, allowed: tuple[int, ...]):
    """A clear error, naming the image and its shape, for an array that is no image (nor a batch of them)."""
    if not isinstance(image, PIL.Image.Image) and image.ndim not in allowed:
        raise ValueError(
            f"Cannot read {where}: an array of shape {tuple(image.shape)} is not an image; expected (height, width), "
            "(height, width, channels) or (channels, height, width)."
        )


def _check_pixels(image, where: str):
    """A clear error for an image with no pixel, or a float array holding NaN or infinite values."""
    empty = (
        0 in image.size
        if isinstance(image, PIL.Image.Image)
        else image.numel() == 0
        if isinstance(image, torch.Tensor)
        else image.size == 0
    )
    if empty:
        shape = image.size if isinstance(image, PIL.Image.Image) else tuple(image.shape)
        raise ValueError(f"Cannot read {where}: it has no pixel (shape {shape}).")
    if isinstance(image, torch.Tensor) and image.is_floating_point() and not bool(torch.isfinite(image).all()):
        raise ValueError(f"Cannot read {where}: it holds NaN or infinite values.")
    if isinstance(image, np.ndarray) and np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError(f"Cannot read {where}: it holds NaN or infinite values.")


__all__ = ["DeviseImageProcessor", "open_image"]
