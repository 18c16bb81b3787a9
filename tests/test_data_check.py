"""`alledge data check` on made folders: every kind of bad input gets its own message and code.

Exit codes: 0 clean, 1 problems found, 2 unusable input. Never a traceback.
"""
import io
import json
import struct
import zlib

import cv2
import numpy as np
import pytest

from alledge.device import CLASSES
from alledge.device.images import MAX_PIXELS


def noise_jpeg(seed, size=64):
    """Bytes of a small random RGB JPEG; different seeds give unrelated pHashes."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)
    return cv2.imencode(".jpg", img)[1].tobytes()


def make_clean(root, per_class=2):
    """root/<Class>/img-N.jpg, distinct images, nothing wrong."""
    seed = 0
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"img-{i}.jpg").write_bytes(noise_jpeg(seed))
            seed += 1
    return root


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png_header(width, height):
    """A tiny PNG whose header claims width x height (a decompression-bomb shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def corrupt_jpeg():
    """Valid markers and frame header, but the Huffman table is garbage: decoding fails."""
    data = bytearray(noise_jpeg(99))
    i = data.find(b"\xff\xc4")  # DHT
    data[i + 4:i + 30] = b"\xff" * 26
    return bytes(data)


def cmyk_jpeg():
    from PIL import Image
    buf = io.BytesIO()
    Image.new("CMYK", (32, 32), (0, 60, 120, 10)).save(buf, "JPEG")
    return buf.getvalue()


def gray_png():
    return cv2.imencode(".png", np.full((32, 32), 128, np.uint8))[1].tobytes()


def png16():
    img = np.zeros((32, 32, 3), np.uint16)
    img[..., 2] = 65535  # red in OpenCV's BGR order
    return cv2.imencode(".png", img)[1].tobytes()


def over_limit_png():
    """A real, valid PNG of 7000x6000 = 42 MP (all zero, so it compresses to ~50 kB)."""
    assert 7000 * 6000 > MAX_PIXELS
    return cv2.imencode(".png", np.zeros((6000, 7000), np.uint8))[1].tobytes()


# name, file name, bytes maker, JSON reason, text the user reads
UNUSABLE = [
    ("corrupt", "bad.jpg", corrupt_jpeg, "corrupt", "image data is corrupt"),
    ("truncated", "half.jpg", lambda: noise_jpeg(7)[:300], "truncated",
     "JPEG is truncated (no end-of-image marker)"),
    ("text", "notes.jpg", lambda: b"this is not an image\n", "not-image",
     "not a JPEG or PNG image"),
    ("zero-byte", "empty.jpg", lambda: b"", "empty", "zero-byte file"),
    ("cmyk", "cmyk.jpg", cmyk_jpeg, "wrong-mode", "CMYK JPEG rejected"),
    ("over-limit", "huge.png", over_limit_png, "too-large",
     f"image is 7000x6000 = 42000000 pixels, over the {MAX_PIXELS} limit"),
    ("bomb-header", "bomb.png", lambda: huge_png_header(100_000, 100_000), "too-large",
     f"over the {MAX_PIXELS} limit"),
]

CONVERTED = [
    ("grayscale", "gray.png", gray_png, "grayscale, converted to RGB (stain colour is lost)"),
    ("16-bit", "deep.png", png16, "16-bit PNG, converted to 8-bit RGB"),
]


def check(run_cli, path):
    """(exit code, text report, JSON report) of `alledge data check PATH`."""
    text = run_cli("data", "check", path)
    js = run_cli("data", "check", path, "--json")
    for r in (text, js):
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        assert "Traceback" not in r.output
    assert text.exit_code == js.exit_code
    report = json.loads(js.stdout) if js.stdout.strip() else None
    return text.exit_code, text.output, report


def test_clean_folder_exits_0(tmp_path, run_cli):
    code, out, report = check(run_cli, make_clean(tmp_path / "data"))
    assert code == 0
    assert "result: clean" in out
    assert "usable images: Benign 2, Early 2, Pre 2, Pro 2 = 8" in out
    assert report["usable"] == 8 and report["unusable"] == [] and report["converted"] == []


def test_accepts_parent_of_original_and_any_case(tmp_path, run_cli):
    root = tmp_path / "kaggle" / "Original"
    make_clean(root)
    (root / "Benign").rename(root / "benign")
    (tmp_path / "kaggle" / "Segmented").mkdir()
    code, out, report = check(run_cli, tmp_path / "kaggle")
    assert code == 0, out
    assert report["root"].endswith("Original")
    assert report["counts"] == {c: 2 for c in CLASSES}


@pytest.mark.parametrize("name,fname,make,reason,message", UNUSABLE, ids=[u[0] for u in UNUSABLE])
def test_unusable_file_is_named_with_its_reason(tmp_path, run_cli, name, fname, make, reason,
                                                message):
    root = make_clean(tmp_path / "data")
    (root / "Pre" / fname).write_bytes(make())
    code, out, report = check(run_cli, root)
    assert code == 1
    assert f"unusable: Pre/{fname}: " in out and message in out and f"[{reason}]" in out
    assert "result: problems found" in out
    assert report["unusable"] == [{"path": f"Pre/{fname}", "reason": reason,
                                   "message": report["unusable"][0]["message"]}]
    assert message in report["unusable"][0]["message"]
    assert report["counts"]["Pre"] == 2  # the bad file is not counted


@pytest.mark.parametrize("name,fname,make,note", CONVERTED, ids=[c[0] for c in CONVERTED])
def test_converted_mode_is_reported_and_still_counted(tmp_path, run_cli, name, fname, make, note):
    root = make_clean(tmp_path / "data")
    (root / "Early" / fname).write_bytes(make())
    code, out, report = check(run_cli, root)
    assert code == 1
    assert f"converted: Early/{fname}: {note}" in out
    assert report["converted"] == [{"path": f"Early/{fname}", "note": note}]
    assert report["counts"]["Early"] == 3 and report["unusable"] == []


def test_converted_modes_decode_to_8bit_rgb(tmp_path):
    from alledge.device.images import read_rgb
    (tmp_path / "g.png").write_bytes(gray_png())
    (tmp_path / "d.png").write_bytes(png16())
    gray, deep = read_rgb(tmp_path / "g.png"), read_rgb(tmp_path / "d.png")
    assert gray.shape == deep.shape == (32, 32, 3)
    assert gray.dtype == deep.dtype == np.uint8
    assert (gray == 128).all()
    assert (deep == [255, 0, 0]).all()  # 16-bit red stays red, scaled to 8 bits


def test_empty_class_folder(tmp_path, run_cli):
    root = make_clean(tmp_path / "data")
    for f in (root / "Pre").iterdir():
        f.unlink()
    code, out, report = check(run_cli, root)
    assert code == 1
    assert "empty class folder: Pre" in out
    assert report["empty_classes"] == ["Pre"] and report["counts"]["Pre"] == 0


def test_missing_class_folder(tmp_path, run_cli):
    root = make_clean(tmp_path / "data")
    for f in (root / "Pro").iterdir():
        f.unlink()
    (root / "Pro").rmdir()
    code, out, report = check(run_cli, root)
    assert code == 1
    assert "missing class folder: Pro" in out and report["missing_classes"] == ["Pro"]


def test_unknown_folder_and_stray_file(tmp_path, run_cli):
    root = make_clean(tmp_path / "data")
    (root / "Blasts").mkdir()
    (root / "Blasts" / "x.jpg").write_bytes(noise_jpeg(50))
    (root / "readme.txt").write_text("hello")
    code, out, report = check(run_cli, root)
    assert code == 1
    assert "unknown folder (not a class, ignored): Blasts" in out
    assert "file outside the class folders (ignored): readme.txt" in out
    assert report["unknown_folders"] == ["Blasts"] and report["stray_files"] == ["readme.txt"]
    assert report["usable"] == 8  # the unknown folder's image is not read


def test_duplicates_in_made_folder(tmp_path, run_cli):
    root = make_clean(tmp_path / "data")
    same = (root / "Benign" / "img-0.jpg").read_bytes()
    (root / "Pro" / "copy.jpg").write_bytes(same)  # exact, across classes
    rgb = cv2.imdecode(np.frombuffer(same, np.uint8), cv2.IMREAD_COLOR)
    (root / "Benign" / "resaved.jpg").write_bytes(
        cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes())
    code, out, report = check(run_cli, root)
    assert code == 1
    [exact] = report["exact_duplicates"]
    assert exact["paths"] == ["Benign/img-0.jpg", "Pro/copy.jpg"] and exact["cross_class"]
    assert "(ACROSS CLASSES)" in out
    near = {tuple(d["paths"]) for d in report["near_duplicates"]}
    assert ("Benign/img-0.jpg", "Benign/resaved.jpg") in near or \
        ("Benign/resaved.jpg", "Benign/img-0.jpg") in near
    assert all(d["bits"] <= report["near_dup_bits"] for d in report["near_duplicates"])


@pytest.mark.parametrize("layout", ["missing", "no-class-folders", "a-file", "nothing-usable"])
def test_unusable_input_exits_2(tmp_path, run_cli, layout):
    path = tmp_path / "data"
    if layout == "no-class-folders":
        (path / "photos").mkdir(parents=True)
    elif layout == "a-file":
        path.write_bytes(noise_jpeg(1))
    elif layout == "nothing-usable":
        for c in CLASSES:
            (path / c).mkdir(parents=True)
            (path / c / "zero.jpg").write_bytes(b"")
    r = run_cli("data", "check", path)
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "Traceback" not in r.output
    expected = {"missing": "is not a folder", "no-class-folders": "holds no class folders",
                "a-file": "is a file", "nothing-usable": "no usable images"}[layout]
    assert expected in r.output
