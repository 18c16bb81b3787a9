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
    files {name: sha256}; created; alledge_version;
    integrity: sha256 of the canonical manifest without this field (`manifest_digest`).
    Fields not listed here are allowed (and covered by `integrity`).
    bundle.sig      optional: an Ed25519 signature of the integrity digest (alledge.device.trust)

`load_bundle` refuses, with one line naming the file, a bundle whose format version it does
not know, whose manifest has a field of the wrong type or has been edited (its `integrity`
no longer matches), whose files are missing, not regular files inside the bundle, or do not
match their hashes: a model that is not the one the manifest describes must never classify a
patient's smear. The manifest names every file's sha256 and `integrity` covers the manifest,
so the bundle id (name@integrity prefix) names every byte of the bundle. Without a
signature this is self-consistency only (it catches damage and naive edits; whoever can
rewrite the manifest can recompute it): trust comes from a signature (`--trust`).
"""
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KINDS = ("cnn", "svm")
INPUT_DTYPES = ("uint8", "float32")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
OUTPUT_KINDS = {"cnn": "probabilities", "svm": "features"}
MAX_MANIFEST_BYTES = 1 << 20  # a real manifest is a few KB
MAX_INPUT_SIZE = 4096
MAX_BUNDLE_FILE_BYTES = 1 << 30  # models for a Pi are megabytes
DEFAULT_BUNDLE = Path(__file__).parent / "bundles" / "default"


class BundleError(Exception):
    """The bundle cannot be used; the message is one line naming the file at fault."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict
    id: str  # name@ first 12 hex of the manifest's integrity digest: names every file too

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


def manifest_digest(manifest):
    """sha256 of the canonical JSON of the manifest without its 'integrity' field: key order,
    spacing and indentation do not change it, any edit of a value does."""
    body = {k: v for k, v in manifest.items() if k != "integrity"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def seal(manifest):
    """The manifest with its 'integrity' field set: what every bundle writer must write."""
    return {**{k: v for k, v in manifest.items() if k != "integrity"},
            "integrity": manifest_digest(manifest)}


def load_bundle(path):
    """Read and verify a bundle directory; returns a Bundle or raises BundleError."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: bundle directory not found")
    manifest_path = path / MANIFEST
    manifest = _parse_manifest(manifest_path, _read_regular(manifest_path, MAX_MANIFEST_BYTES))
    _check_manifest(manifest_path, manifest)
    try:
        digest = manifest_digest(manifest)
    except (RecursionError, ValueError):  # nested just under the parser's limit
        raise BundleError(f"{manifest_path}: not a manifest (JSON nested too deeply)") from None
    if manifest["integrity"] != digest:
        raise BundleError(f"{manifest_path}: edited after the bundle was built (its integrity "
                          "digest does not match its contents); rebuild or re-copy the bundle")
    _check_files(path, manifest)
    return Bundle(path=path, manifest=manifest, id=f"{manifest['name']}@{digest[:12]}")


def _read_regular(file, limit):
    """Bytes of a regular file (not a link) of at most `limit` bytes, or BundleError."""
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        where = "(not a bundle directory)" if file.name == MANIFEST else "from the bundle"
        raise BundleError(f"{file}: missing {where}") from None
    except OSError as e:
        raise BundleError(f"{file}: unreadable ({e.strerror})") from None
    _check_regular(file, st, limit)
    try:
        with open(file, "rb") as f:
            return f.read(limit + 1)
    except OSError as e:
        raise BundleError(f"{file}: unreadable ({e.strerror})") from None


def _check_regular(file, st, limit):
    if stat.S_ISLNK(st.st_mode):
        raise BundleError(f"{file}: is a symbolic link; a bundle holds its own files only")
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{file}: not a regular file")
    if st.st_size > limit:
        raise BundleError(f"{file}: {st.st_size} bytes, over the {limit} byte limit")


def _parse_manifest(manifest_path, raw):
    def refuse_constant(name):  # NaN, Infinity: not JSON, and not a manifest value
        raise ValueError(f"{name} is not allowed")

    def no_duplicates(pairs):  # two 'classes' keys would let readers disagree
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
        return dict(pairs)

    try:
        return json.loads(raw, parse_constant=refuse_constant, object_pairs_hook=no_duplicates)
    except RecursionError:
        raise BundleError(f"{manifest_path}: not a manifest (JSON nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{manifest_path}: not valid JSON ({e})") from None


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check_manifest(manifest_path, m):
    def bad(msg):
        raise BundleError(f"{manifest_path}: {msg}")

    if not isinstance(m, dict):
        bad("not a JSON object")
    version = m.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # True and 1.0 are not 1
        bad(f"unknown format_version {version!r}; this alledge reads version {FORMAT_VERSION}"
            " (update alledge or rebuild the bundle)")
    for key in ("kind", "name", "classes", "input", "model_file", "files", "integrity"):
        if key not in m:
            bad(f"missing field '{key}'")
    if not isinstance(m["kind"], str) or m["kind"] not in KINDS:
        bad(f"unknown kind {m['kind']!r} (expected one of {', '.join(KINDS)})")
    if not (isinstance(m["name"], str) and 0 < len(m["name"]) <= 200
            and m["name"].isprintable()):
        bad("'name' must be a printable string")
    classes = m["classes"]
    if not (isinstance(classes, list) and len(classes) >= 2
            and all(isinstance(c, str) and c.strip() and c.isprintable() for c in classes)
            and len(set(classes)) == len(classes)):
        bad("'classes' must be a list of two or more distinct, non-empty class names")
    _check_io(bad, m)
    if m.get("quantization") is not None and m["quantization"] not in QUANTIZATIONS:
        bad(f"unknown quantization {m['quantization']!r}")
    if (m["kind"] == "svm") != (m.get("svm_file") is not None):
        bad("kind 'svm' needs an 'svm_file', and only it has one")
    files = m["files"]
    if not (isinstance(files, dict) and all(isinstance(v, str) and _SHA256.fullmatch(v)
                                            for v in files.values())):
        bad("'files' must map file names to sha256 hex digests")
    for role in ("model_file", "edgetpu_model_file", "svm_file"):
        name = m.get(role)
        if name is None:
            continue
        if not _plain_name(name):
            bad(f"'{role}' must be a file name inside the bundle, got {name!r}")
        if name not in files:
            bad(f"'{role}' {name!r} has no sha256 in 'files'")
    for key in ("source_model", "metrics", "preprocessing"):
        if m.get(key) is not None and not isinstance(m[key], dict):
            bad(f"'{key}' must be an object or null")
    for key in ("split_id", "created", "alledge_version"):
        if m.get(key) is not None and not isinstance(m[key], str):
            bad(f"'{key}' must be a string or null")
    if not (isinstance(m["integrity"], str) and _SHA256.fullmatch(m["integrity"])):
        bad("'integrity' must be a sha256 hex digest")


def _check_io(bad, m):
    inp = m["input"]
    if not (isinstance(inp, dict) and type(inp.get("size")) is int
            and 0 < inp["size"] <= MAX_INPUT_SIZE):
        bad(f"'input.size' must be an integer from 1 to {MAX_INPUT_SIZE}")
    if inp.get("dtype") not in INPUT_DTYPES:
        bad(f"unknown input dtype {inp.get('dtype')!r} (expected {', '.join(INPUT_DTYPES)})")
    out = m.get("output")
    if out is not None:
        if not isinstance(out, dict):
            bad("'output' must be an object")
        if out.get("kind") is not None and out["kind"] != OUTPUT_KINDS[m["kind"]]:
            bad(f"a kind '{m['kind']}' bundle's model gives {OUTPUT_KINDS[m['kind']]}, "
                f"not {out['kind']!r}")
    for where, q in (("input", inp.get("quantization")),
                     ("output", (out or {}).get("quantization"))):
        if q is None:
            continue
        if not (isinstance(q, dict) and type(q.get("zero_point")) is int
                and type(q.get("scale")) in (int, float) and q["scale"] > 0):
            bad(f"'{where}.quantization' must be {{scale > 0, zero_point integer}} or null")


def _plain_name(name):
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name \
        and "\\" not in name and "\0" not in name


def _check_files(path, m):
    root = os.path.realpath(path)
    for name, digest in m["files"].items():
        if not _plain_name(name) or name == MANIFEST:
            raise BundleError(f"{path / MANIFEST}: bad file name {name!r} in 'files'")
        file = path / name
        try:
            st = os.lstat(file)
        except FileNotFoundError:
            raise BundleError(f"{file}: missing from the bundle") from None
        except OSError as e:
            raise BundleError(f"{file}: unreadable ({e.strerror})") from None
        _check_regular(file, st, MAX_BUNDLE_FILE_BYTES)
        if os.path.dirname(os.path.realpath(file)) != root:
            raise BundleError(f"{file}: not inside the bundle")
        if sha256_file(file) != digest:
            raise BundleError(f"{file}: sha256 does not match the manifest (file changed or "
                              "damaged); rebuild or re-copy the bundle")


def resolve_bundle_dir(option=None, environ=None):
    """--bundle, else $ALLEDGE_BUNDLE, else the default bundle shipped in the package."""
    environ = os.environ if environ is None else environ
    if option:
        return Path(option)
    if environ.get("ALLEDGE_BUNDLE"):
        return Path(environ["ALLEDGE_BUNDLE"])
    return DEFAULT_BUNDLE


def load_selected_bundle(option=None, trust=None):
    """load_bundle of the bundle in use, with a hint when the default one is not installed,
    and its signature checked when a trust store is configured (--trust, $ALLEDGE_TRUST or
    the trusted-keys folder: alledge.device.trust)."""
    from . import trust as trust_store
    path = resolve_bundle_dir(option)
    if path == DEFAULT_BUNDLE and not (path / MANIFEST).is_file():
        raise BundleError(f"{path}: no default bundle shipped with this install; pass "
                          "--bundle DIR or set ALLEDGE_BUNDLE")
    bundle = load_bundle(path)
    store = trust_store.resolve_trust(trust)
    if store is not None:
        trust_store.verify(bundle, store)
    return bundle
