"""JPEGs decoded smaller in the DCT domain keep the strict decoder's guarantees."""
import cv2
import numpy as np
import pytest

from alledge.device.images import ImageError, decode_rgb


def jpeg(h=480, w=640):
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8), (w, h))
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.mark.parametrize("reduce,shape", [(1, (480, 642)), (2, (240, 321)), (4, (120, 161)),
                                          (8, (60, 81))])
def test_reduced_sizes_round_up(reduce, shape):
    assert decode_rgb(jpeg(480, 642), reduce).shape == shape + (3,)


def test_reduced_pixels_are_opencvs():
    data = jpeg()
    ours = decode_rgb(data, 4)
    theirs = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_4)
    assert np.array_equal(ours, theirs[:, :, ::-1])


@pytest.mark.parametrize("reduce", [2, 4, 8])
def test_corrupt_data_is_still_an_error(reduce):
    data = bytearray(jpeg())
    for i in range(2000, len(data) - 100, 97):
        data[i] = (data[i] + 77) % 256
    with pytest.raises(ImageError):
        decode_rgb(bytes(data), reduce)
    with pytest.raises(ImageError, match="truncated"):
        decode_rgb(bytes(jpeg()[:3000]), reduce)


def test_a_png_is_decoded_whole_and_other_reductions_refused():
    png = cv2.imencode(".png", np.zeros((50, 60, 3), np.uint8))[1].tobytes()
    assert decode_rgb(png, 4).shape == (50, 60, 3)
    with pytest.raises(ValueError):
        decode_rgb(png, 3)
