"""Reading image files safely: sniff the header, refuse what we cannot trust, decode to RGB.

Only JPEG and PNG are accepted: that is what microscope cameras and the dataset produce.
Every read is bounded: only regular files are opened (a FIFO or /dev/zero would hang or
never end), their size is checked before reading, and the header is parsed before decoding
so an over-large image (a decompression bomb) is refused without allocating its pixels, and
so a CMYK JPEG or a truncated file is named rather than silently decoded into something the
model never saw. Decoding is strict: corrupt data is an error, not a picture.
"""
import os
import stat
import struct
import zlib

import cv2
import numpy as np
import simplejpeg

from .messages import first_line

# 40 megapixels: well above any microscope camera frame (a 12 MP Pi HQ camera frame is
# 4056x3040), far below what would exhaust a Pi's memory once decoded (40 MP RGB = 120 MB).
MAX_PIXELS = 40_000_000
# The decoded array, width x height x channels x bytes per sample, before conversion to
# 8-bit RGB: the 120 MB of a 40 MP RGB image. A 16-bit RGBA PNG (8 bytes a pixel) may have
# 15 MP; peak memory stays near twice this budget plus the interpreter's.
MAX_DECODED_BYTES = 120_000_000
# A file larger than the largest image we would decode cannot be one we accept: refuse it
# before reading (a 40 MP PNG stored without compression is 120 MB).
MAX_FILE_BYTES = 128 * 1024 * 1024


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
    decoded = width * height * channels * (2 if depth > 8 else 1)
    if decoded > MAX_DECODED_BYTES:
        raise ImageError(
            "too-large",
            f"image is {width}x{height}, {channels} channels of {depth} bits: {decoded} bytes "
            f"decoded, over the {MAX_DECODED_BYTES} byte memory budget",
        )
    if fmt == "jpeg" and channels == 4:
        raise ImageError("wrong-mode", "CMYK JPEG rejected: convert it to RGB first")
    return fmt, width, height, channels, depth


def decode_rgb(data, reduce=1):
    """Decode JPEG/PNG bytes to an HxWx3 uint8 RGB array, or raise ImageError.

    Strict: a decoder warning (corrupt entropy data, a premature end, a bad CRC, zlib data
    that does not match the header) is an error, never a guessed picture.

    reduce (1, 2, 4 or 8): a JPEG is decoded that many times smaller in the DCT domain
    (libjpeg-turbo's scaled IDCT: ceil(width / reduce) x ceil(height / reduce), the entropy
    data still read and checked in full, so corrupt data is still an error), several times
    faster than decoding it whole and shrinking it. A PNG is always decoded whole. The header
    and memory checks are those of the full-size image.
    """
    if reduce not in (1, 2, 4, 8):
        raise ValueError(f"reduce must be 1, 2, 4 or 8, not {reduce!r}")
    fmt, width, height, channels, depth = check_header(data)
    if fmt == "jpeg":
        return _decode_jpeg(data, depth, reduce, width, height)
    return _decode_png(data)


def _decode_jpeg(data, depth, reduce=1, width=0, height=0):
    if depth != 8:
        raise ImageError("wrong-mode", f"{depth}-bit JPEG is not supported (8-bit only)")
    # libjpeg-turbo through simplejpeg: the same library and settings (accurate integer DCT,
    # smooth upsampling) as OpenCV's decoder, so the pixels are the ones the models were
    # trained on (identical on all 3256 dataset images), but strict=True turns libjpeg's
    # warnings into errors where OpenCV only prints them and returns a grey-filled image.
    try:
        if reduce == 1:
            return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
        # the smallest DCT scaling that is at least this size: exactly 1/reduce
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True,
                                      min_width=-(-width // reduce),
                                      min_height=-(-height // reduce))
    except ValueError as e:
        raise ImageError("corrupt", f"image data is corrupt ({first_line(e)})") from None


def _decode_png(data):
    png_stream_check(data)  # libpng would quietly accept some of what this refuses
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError("corrupt", "image data is corrupt (decoder failed)")
    return to_rgb8(img, bgr=True)


def to_rgb8(img, bgr=True):
    """Bring any decoded array (gray, gray+alpha, BGR(A), 8/16-bit) to HxWx3 uint8 RGB."""
    if img.dtype == np.uint16:
        np.right_shift(img, 8, out=img)  # in place: one less full-size copy of a big PNG
        img = img.astype(np.uint8)
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


def read_file(path, limit=MAX_FILE_BYTES):
    """File contents, or ImageError naming why they cannot be read.

    Bounded: the file is opened without blocking and must be a regular file (a FIFO would
    wait forever, /dev/zero never ends), its size is checked before reading, and its first
    bytes must be a JPEG or PNG signature before the rest is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except IsADirectoryError:
        raise ImageError("not-file", "is a directory") from None
    except FileNotFoundError:
        raise ImageError("missing", "no such file") from None
    except OSError as e:
        raise ImageError("unreadable", f"cannot read file: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError("not-file", f"is {_file_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise ImageError("too-large", f"file is {st.st_size} bytes, over the {limit} "
                                          "byte limit for an image")
        with os.fdopen(os.dup(fd), "rb") as f:
            head = f.read(8)
            if head and not is_image_signature(head):
                raise ImageError("not-image", "not a JPEG or PNG image")
            data = head + f.read(limit + 1 - len(head))  # never more than the limit
        if len(data) > limit:  # it grew after fstat (a file still being written)
            raise ImageError("too-large", f"file is over the {limit} byte limit for an image")
        return data
    except OSError as e:
        raise ImageError("unreadable", f"cannot read file: {e.strerror}") from None
    finally:
        os.close(fd)


def is_image_signature(head):
    return head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff"


def is_regular_file(path):
    """True for a regular file (following links); FIFOs, devices, sockets, folders: False."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _file_kind(mode):
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def read_rgb(path):
    """Read an image file to HxWx3 uint8 RGB, or raise ImageError (also for I/O errors)."""
    return decode_rgb(read_file(path))


# PNG: the zlib stream is checked before libpng sees it. libpng (through OpenCV) accepts
# image data that ends early or runs on past what the header describes; the second is the
# zlib bomb (a 3 MB file inflating to gigabytes). Inflating here in bounded pieces, with
# every chunk's CRC checked, costs one extra inflate of at most MAX_DECODED_BYTES.
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # per pixel in the file, by colour type
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # (x0, y0, dx, dy) of the seven interlace passes


def png_stream_check(data):
    """Raise ImageError unless every chunk's CRC is right and the IDAT data inflates to
    exactly the filtered-scanline size the header gives."""
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    expected = _png_raw_size(width, height, _SAMPLES[colour_type] * depth, interlace)
    inflater = zlib.decompressobj()
    produced = 0
    view = memoryview(data)
    i = 8
    while i + 12 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind, body = bytes(view[i + 4:i + 8]), view[i + 8:i + 8 + length]  # no copies
        if i + 12 + length > len(data):
            raise ImageError("truncated", "PNG chunk runs past the end of the file")
        (crc,) = struct.unpack(">I", data[i + 8 + length:i + 12 + length])
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            raise ImageError("corrupt", f"PNG {kind.decode('latin-1')!r} chunk fails its CRC")
        if kind == b"IDAT":
            produced += _inflate_bounded(inflater, body, expected - produced)
            if produced > expected:  # the bomb: stop inflating at once
                raise ImageError("corrupt", f"PNG image data inflates to more than the "
                                            f"{expected} bytes its {width}x{height} header gives")
        if kind == b"IEND":
            break
        i += 12 + length
    if not inflater.eof or produced != expected:
        raise ImageError("corrupt", f"PNG image data is incomplete ({produced} of the "
                                    f"{expected} bytes its {width}x{height} header gives)")


def _inflate_bounded(inflater, body, room):
    """Inflate `body` in 1 MB pieces; stop as soon as more than `room` bytes came out."""
    produced = 0
    try:
        chunk = inflater.decompress(body, 1 << 20)
        while True:
            produced += len(chunk)
            if produced > room or not inflater.unconsumed_tail:
                return produced
            chunk = inflater.decompress(inflater.unconsumed_tail, 1 << 20)
    except zlib.error as e:
        raise ImageError("corrupt", f"PNG image data is corrupt ({e})") from None


def _png_raw_size(width, height, bits_per_pixel, interlace):
    def rows(w, h):  # each row: one filter-type byte, then the packed samples
        return h * (1 + (w * bits_per_pixel + 7) // 8) if w and h else 0
    if not interlace:
        return rows(width, height)
    return sum(rows(max(0, (width - x0 + dx - 1) // dx), max(0, (height - y0 + dy - 1) // dy))
               for x0, y0, dx, dy in _ADAM7)
