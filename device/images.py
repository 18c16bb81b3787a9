"""Reading image files safely: sniff the header, refuse what we cannot trust, decode to RGB.

Only JPEG and PNG are accepted: that is what microscope cameras and the dataset produce.
The header is parsed before decoding so an over-large image (a decompression bomb) is
refused without allocating its pixels, and so a CMYK JPEG or a truncated file is named
rather than silently decoded into something the model never saw.
"""
import struct

import cv2
import numpy as np

# 40 megapixels: well above any microscope camera frame (a 12 MP Pi HQ camera frame is
# 4056x3040), far below what would exhaust a Pi's memory once decoded (40 MP RGB = 120 MB).
MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """An input file that cannot be used; `reason` is a short machine-readable word."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def sniff(data):
    """Return (format, width, height, channels, bit_depth) from a JPEG or PNG header.

    Raises ImageError for anything else. Does not decode pixels.
    """
    if len(data) == 0:
        raise ImageError("empty", "zero-byte file")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _sniff_png(data)
    if data[:3] == b"\xff\xd8\xff":
        return _sniff_jpeg(data)
    raise ImageError("not-image", "not a JPEG or PNG image")


def _sniff_png(data):
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError("truncated", "PNG header is truncated")
    width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour_type)
    if channels is None:
        raise ImageError("corrupt", f"PNG has an unknown colour type {colour_type}")
    if not data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82"):
        raise ImageError("truncated", "PNG is truncated (no IEND chunk)")
    return "png", width, height, channels, depth


# SOF markers that carry frame dimensions (baseline, extended, progressive, lossless...).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _sniff_jpeg(data):
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ImageError("corrupt", f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF:
            if i + 10 > len(data):
                break
            depth, height, width, channels = struct.unpack(">BHHB", data[i + 4:i + 10])
            # The entropy-coded data must end with the EOI marker; libjpeg only warns
            # about a missing end and fills the rest grey, so check it ourselves.
            if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                raise ImageError("truncated", "JPEG is truncated (no end-of-image marker)")
            return "jpeg", width, height, channels, depth
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise ImageError("corrupt", "JPEG has no readable frame header")


def check_header(data):
    """Validate the header and apply the import policy; returns the sniff tuple.

    Policy: grayscale, grayscale+alpha, RGBA and 16-bit PNGs are converted to 8-bit RGB;
    CMYK/YCCK JPEGs (4 components) are rejected, because the model reads stain colour and
    a CMYK-to-RGB conversion without the file's colour profile would change it.
    """
    fmt, width, height, channels, depth = sniff(data)
    if width == 0 or height == 0:
        raise ImageError("corrupt", "image has zero width or height")
    if width * height > MAX_PIXELS:
        raise ImageError(
            "too-large",
            f"image is {width}x{height} = {width * height} pixels, over the {MAX_PIXELS} limit",
        )
    if fmt == "jpeg" and channels == 4:
        raise ImageError("wrong-mode", "CMYK JPEG rejected: convert it to RGB first")
    return fmt, width, height, channels, depth


def decode_rgb(data):
    """Decode JPEG/PNG bytes to an HxWx3 uint8 RGB array, or raise ImageError."""
    check_header(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError("corrupt", "image data is corrupt (decoder failed)")
    return to_rgb8(img, bgr=True)


def to_rgb8(img, bgr=True):
    """Bring any decoded array (gray, gray+alpha, BGR(A), 8/16-bit) to HxWx3 uint8 RGB."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageError("wrong-mode", f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:  # gray + alpha: drop alpha
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if bgr else img.copy()


def read_file(path):
    """File contents, or ImageError naming why they cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise ImageError("not-file", "is a directory") from None
    except FileNotFoundError:
        raise ImageError("missing", "no such file") from None
    except OSError as e:
        raise ImageError("unreadable", f"cannot read file: {e.strerror}") from None


def read_rgb(path):
    """Read an image file to HxWx3 uint8 RGB, or raise ImageError (also for I/O errors)."""
    return decode_rgb(read_file(path))
