"""Signed bundles: an Ed25519 signature in `bundle.sig`, checked against trusted public keys.

A bundle's `integrity` digest covers its manifest, and the manifest names the sha256 of every
file, so signing that digest signs every byte of the bundle. `bundle.sig` (JSON):

    {"format": "alledge-bundle-sig/1", "algorithm": "ed25519",
     "key_id": first 16 hex of sha256(raw public key), "signature": base64 of 64 bytes}

The signed message is b"alledge-bundle/1\\n" + the integrity digest (hex, ASCII).

The trust store is `--trust PATH`, else $ALLEDGE_TRUST, else ~/.config/alledge/trusted-keys/
($XDG_CONFIG_HOME respected) when that folder exists. PATH is one public key file (PEM) or
a folder of them (*.pem, *.pub). With a trust store, a bundle that is unsigned, signed by a
key not in it, or whose signature does not verify is refused; without one, signatures are
not checked (the bundle is still checked for integrity). `cryptography` is needed only when
a trust store is configured.
"""
import base64
import hashlib
import json
import os
from pathlib import Path

from .bundle import BundleError
from .messages import first_line

SIGNATURE_FILE = "bundle.sig"
SIG_FORMAT = "alledge-bundle-sig/1"
MESSAGE_PREFIX = b"alledge-bundle/1\n"
KEY_SUFFIXES = (".pem", ".pub")
MAX_KEY_BYTES = 16 * 1024


class TrustUnavailable(BundleError):
    """A trust store is configured but `cryptography` is not installed: the bundle cannot
    be verified, so it is refused like any other unverifiable bundle."""


def default_trust_dir(environ=None):
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "alledge" / "trusted-keys"


def resolve_trust(option=None, environ=None):
    """The configured trust store path, or None when none is configured."""
    environ = os.environ if environ is None else environ
    if option:
        return Path(option)
    if environ.get("ALLEDGE_TRUST"):
        return Path(environ["ALLEDGE_TRUST"])
    folder = default_trust_dir(environ)
    return folder if folder.is_dir() else None


def signed_message(integrity):
    return MESSAGE_PREFIX + integrity.encode("ascii")


def key_id(public_key):
    """Short fingerprint of an Ed25519 public key object: names it in bundle.sig and errors."""
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


def raw_public_bytes(public_key):
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        from cryptography.exceptions import InvalidSignature
    except ImportError:
        raise TrustUnavailable("a trust store is configured but the 'cryptography' package "
                               "is not installed: pip install 'alledge[device]'") from None
    return serialization, ed25519, InvalidSignature


def load_trusted_keys(trust):
    """{key_id: Ed25519PublicKey} of a key file or folder; BundleError when unusable."""
    serialization, ed25519, _ = _crypto()
    trust = Path(trust)
    if trust.is_dir():
        files = sorted(p for p in trust.iterdir() if p.suffix in KEY_SUFFIXES and p.is_file())
    elif trust.is_file():
        files = [trust]
    else:
        raise BundleError(f"{trust}: trust store not found (--trust / $ALLEDGE_TRUST)")
    keys = {}
    for file in files:
        try:
            if file.stat().st_size > MAX_KEY_BYTES:
                raise ValueError("too large for a public key")
            key = serialization.load_pem_public_key(file.read_bytes())
        except (ValueError, TypeError, OSError) as e:
            raise BundleError(f"{file}: not a PEM public key ({first_line(e)})") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise BundleError(f"{file}: not an Ed25519 public key")
        keys[key_id(key)] = key
    if not keys:
        raise BundleError(f"{trust}: trust store holds no public keys (*.pem, *.pub)")
    return keys


def read_signature(bundle_path):
    """(key_id, signature bytes) from bundle.sig, or BundleError."""
    file = Path(bundle_path) / SIGNATURE_FILE
    if file.is_symlink() or not file.is_file():
        raise BundleError(f"{Path(bundle_path)}: bundle is not signed (no {SIGNATURE_FILE}) "
                          "and a trust store is configured")
    try:
        if file.stat().st_size > MAX_KEY_BYTES:
            raise ValueError("too large")
        sig = json.loads(file.read_bytes())
        if not isinstance(sig, dict) or sig.get("format") != SIG_FORMAT \
                or sig.get("algorithm") != "ed25519":
            raise ValueError(f"not an {SIG_FORMAT} Ed25519 signature")
        signature = base64.b64decode(sig["signature"], validate=True)
        if len(signature) != 64 or not isinstance(sig.get("key_id"), str):
            raise ValueError("malformed signature")
    except (ValueError, KeyError, TypeError, RecursionError, OSError) as e:
        raise BundleError(f"{file}: unreadable signature ({first_line(e)})") from None
    return sig["key_id"], signature


def verify(bundle, trust):
    """Raise BundleError unless `bundle` is signed by a key of the trust store `trust`."""
    _, _, InvalidSignature = _crypto()
    keys = load_trusted_keys(trust)
    kid, signature = read_signature(bundle.path)
    key = keys.get(kid)
    if key is None:
        raise BundleError(f"{bundle.path / SIGNATURE_FILE}: signed by key {kid}, which is not "
                          f"in the trust store {trust}")
    try:
        key.verify(signature, signed_message(bundle.manifest["integrity"]))
    except InvalidSignature:
        raise BundleError(f"{bundle.path / SIGNATURE_FILE}: signature does not verify with key "
                          f"{kid} (bundle changed after signing, or a forged signature)") from None
