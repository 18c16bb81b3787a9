"""A model bundle: a directory the device can trust before it runs anything from it.

    manifest.json   what the model is and the sha256 of every other file
    model.tflite    the model (for kind 'svm': the feature extractor)
    *_edgetpu.tflite  optional, the same model compiled for the Coral Edge TPU
    svm.npz         kind 'svm' only: the calibrated SVM as plain weights (alledge.device.svm)

manifest.json (format_version 1):
    format_version 1; kind "cnn" | "svm"; name; classes [label order];
    input {size, dtype "uint8"|"float32", quantization {scale, zero_point} | null};
    output {kind "probabilities"|"features", dtype, quantization | null};
    preprocessing {color "RGB", resize "cv2.INTER_AREA", range "0-255",
                   normalization "inside the model"};
    quantization "float32"|"float16"|"dynamic"|"int8"; model_file; edgetpu_model_file | null;
    svm_file | null; source_model {id, backbone, weights}; split_id; metrics {} | null;
    files {name: sha256}; created; alledge_version.

`load_bundle` refuses, with one line naming the file, a bundle whose format version it does
not know, whose files are missing or whose hashes do not match: a model that is not the one
the manifest describes must never classify a patient's smear.
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KINDS = ("cnn", "svm")
INPUT_DTYPES = ("uint8", "float32")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
DEFAULT_BUNDLE = Path(__file__).parent / "bundles" / "default"


class BundleError(Exception):
    """The bundle cannot be used; the message is one line naming the file at fault."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict
    id: str  # name@ first 12 hex of the manifest's sha256: names every file's content too

    @property
    def kind(self):
        return self.manifest["kind"]

    @property
    def classes(self):
        return tuple(self.manifest["classes"])

    @property
    def input_size(self):
        return int(self.manifest["input"]["size"])

    @property
    def input_dtype(self):
        return self.manifest["input"]["dtype"]

    @property
    def model_path(self):
        return self.path / self.manifest["model_file"]

    @property
    def edgetpu_model_path(self):
        name = self.manifest.get("edgetpu_model_file")
        return self.path / name if name else None

    @property
    def svm_path(self):
        name = self.manifest.get("svm_file")
        return self.path / name if name else None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_bundle(path):
    """Read and verify a bundle directory; returns a Bundle or raises BundleError."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: bundle directory not found")
    manifest_path = path / MANIFEST
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{manifest_path}: missing (not a bundle directory)") from None
    except OSError as e:
        raise BundleError(f"{manifest_path}: unreadable ({e.strerror})") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{manifest_path}: not valid JSON ({e})") from None
    _check_manifest(manifest_path, manifest)
    _check_files(path, manifest)
    bundle_id = f"{manifest['name']}@{hashlib.sha256(raw).hexdigest()[:12]}"
    return Bundle(path=path, manifest=manifest, id=bundle_id)


def _check_manifest(manifest_path, m):
    def bad(msg):
        raise BundleError(f"{manifest_path}: {msg}")

    if not isinstance(m, dict):
        bad("not a JSON object")
    version = m.get("format_version")
    if version != FORMAT_VERSION:
        bad(f"unknown format_version {version!r}; this alledge reads version {FORMAT_VERSION}"
            " (update alledge or rebuild the bundle)")
    for key in ("kind", "name", "classes", "input", "model_file", "files"):
        if key not in m:
            bad(f"missing field '{key}'")
    if m["kind"] not in KINDS:
        bad(f"unknown kind {m['kind']!r} (expected one of {', '.join(KINDS)})")
    classes = m["classes"]
    if not (isinstance(classes, list) and len(classes) >= 2
            and all(isinstance(c, str) for c in classes)):
        bad("'classes' must be a list of class names")
    inp = m["input"]
    if not (isinstance(inp, dict) and isinstance(inp.get("size"), int) and inp["size"] > 0):
        bad("'input.size' must be a positive integer")
    if inp.get("dtype") not in INPUT_DTYPES:
        bad(f"unknown input dtype {inp.get('dtype')!r} (expected {', '.join(INPUT_DTYPES)})")
    if m["kind"] == "svm" and not m.get("svm_file"):
        bad("kind 'svm' needs an 'svm_file'")
    if not isinstance(m["files"], dict):
        bad("'files' must map file names to sha256")
    for role in ("model_file", "edgetpu_model_file", "svm_file"):
        name = m.get(role)
        if name is None:
            continue
        if not _plain_name(name):
            bad(f"'{role}' must be a file name inside the bundle, got {name!r}")
        if name not in m["files"]:
            bad(f"'{role}' {name!r} has no sha256 in 'files'")


def _plain_name(name):
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name \
        and "\\" not in name


def _check_files(path, m):
    for name, digest in m["files"].items():
        if not _plain_name(name) or name == MANIFEST:
            raise BundleError(f"{path / MANIFEST}: bad file name {name!r} in 'files'")
        file = path / name
        if not file.is_file():
            raise BundleError(f"{file}: missing from the bundle")
        if sha256_file(file) != digest:
            raise BundleError(f"{file}: sha256 does not match the manifest (file changed or "
                              "damaged); rebuild or re-copy the bundle")


def resolve_bundle_dir(option=None, environ=None):
    """--bundle, else $ALLEDGE_BUNDLE, else the default bundle shipped in the package."""
    import os
    environ = os.environ if environ is None else environ
    if option:
        return Path(option)
    if environ.get("ALLEDGE_BUNDLE"):
        return Path(environ["ALLEDGE_BUNDLE"])
    return DEFAULT_BUNDLE


def load_selected_bundle(option=None):
    """load_bundle of the bundle in use, with a hint when the default one is not installed."""
    path = resolve_bundle_dir(option)
    if path == DEFAULT_BUNDLE and not (path / MANIFEST).is_file():
        raise BundleError(f"{path}: no default bundle shipped with this install; pass "
                          "--bundle DIR or set ALLEDGE_BUNDLE")
    return load_bundle(path)
