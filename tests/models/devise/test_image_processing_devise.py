import io
import time

import numpy as np
import PIL.Image
import pytest
import torch

from ulmfit import DeviseImageProcessor


def jpeg_bytes(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "CMYK"])
def test_any_mode_becomes_three_normalised_channels(image_processor, mode):
    image = PIL.Image.new(mode, (50, 40))
    pixel_values = image_processor(image, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, 32, 32) and pixel_values.dtype == torch.float32


def test_greyscale_is_replicated_and_transparency_composited_on_white():
    processor = DeviseImageProcessor(do_normalize=False, do_resize=False, do_center_crop=False)
    grey = processor(PIL.Image.new("L", (4, 4), 100), return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(grey, torch.full((3, 4, 4), 100 / 255))
    transparent = processor(PIL.Image.new("RGBA", (4, 4), (0, 0, 0, 0)), return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(transparent, torch.ones(3, 4, 4))


def test_paths_and_raw_bytes_are_read(image_processor, tmp_path):
    image = PIL.Image.new("RGB", (48, 48), (10, 200, 30))
    image.save(tmp_path / "image.png")
    from_pil = image_processor(image, return_tensors="pt")["pixel_values"]
    from_path = image_processor(str(tmp_path / "image.png"), return_tensors="pt")["pixel_values"]
    from_bytes = image_processor([(tmp_path / "image.png").read_bytes()], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(from_path, from_pil)
    torch.testing.assert_close(from_bytes, from_pil)


def test_corrupt_files_fail_with_a_message_naming_the_input(image_processor, tmp_path):
    good = jpeg_bytes(PIL.Image.new("RGB", (64, 64), "red"))
    with pytest.raises(ValueError, match=r"image 1: its 9 bytes are not an image"):
        image_processor([good, b"not a jpg"], return_tensors="pt")
    with pytest.raises(ValueError, match="image 0: the image data is corrupt or truncated"):
        image_processor([good[: len(good) // 2]], return_tensors="pt")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.jpg"):
        image_processor(str(tmp_path / "empty.jpg"), return_tensors="pt")
    with pytest.raises(ValueError, match="no file"):
        image_processor(str(tmp_path / "missing.jpg"), return_tensors="pt")


def test_a_ten_megapixel_photo_is_processed(image_processor):
    gradient = np.linspace(0, 255, 3648, dtype=np.uint8)[None, :, None].repeat(2736, axis=0).repeat(3, axis=2)
    photo = jpeg_bytes(PIL.Image.fromarray(gradient))  # 3648 x 2736 = 10 megapixels
    start = time.perf_counter()
    pixel_values = image_processor(photo, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, 32, 32)
    assert time.perf_counter() - start < 10
    assert pixel_values[0, 0, 0, 0] < pixel_values[0, 0, 0, -1]  # the gradient survives, left dark, right bright


def test_save_and_reload_round_trip(image_processor, tmp_path):
    image_processor.save_pretrained(tmp_path)
    reloaded = DeviseImageProcessor.from_pretrained(tmp_path)
    image = PIL.Image.new("RGB", (40, 50), (1, 2, 3))
    torch.testing.assert_close(
        reloaded(image, return_tensors="pt")["pixel_values"],
        image_processor(image, return_tensors="pt")["pixel_values"],
    )


def test_defaults_are_the_notebooks_224_bicubic_with_imagenet_statistics():
    processor = DeviseImageProcessor()
    assert processor.size.shortest_edge == 224 and processor.crop_size.height == 224
    assert processor.resample == PIL.Image.Resampling.BICUBIC
    assert processor.image_mean == pytest.approx((0.485, 0.456, 0.406))
