"""Signing bundles with Ed25519: `alledge keys new`, `alledge keys sign`, `convert --sign`.

The private key stays on the desktop that builds bundles; its public key goes into each
device's trust store (alledge.device.trust, which also defines what is signed). Keys are
PEM files (PKCS#8 private, SubjectPublicKeyInfo public), the same that
`openssl genpkey -algorithm ed25519` writes, so either tool can make them.
"""
import base64
import os
from pathlib import Path

import click

from alledge.device import exitcodes
from alledge.device.bundle import BundleError, load_bundle
from alledge.device.cli import fail
from alledge.device.fileio import atomic_write_bytes, atomic_write_json
from alledge.device.messages import first_line
from alledge.device.trust import SIG_FORMAT, SIGNATURE_FILE, key_id, signed_message

MAX_KEY_BYTES = 16 * 1024


class SignError(Exception):
    """A key cannot be made, read or used; one line."""


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SignError("signing needs the 'cryptography' package: "
                        "pip install 'alledge[train]'") from None
    return serialization, ed25519


def new_key_pair(out_dir, name="alledge-signing"):
    """Write NAME.key (private, mode 0600) and NAME.pub in out_dir; returns (key, pub, id).
    Never overwrites a key: losing one means re-signing every bundle made with it."""
    serialization, ed25519 = _crypto()
    out_dir = Path(out_dir)
    key_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for p in (key_path, pub_path):
        if os.path.lexists(p):
            raise SignError(f"{p}: already exists; choose another --name or folder")
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pub = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        atomic_write_bytes(pub_path, pub)
    except OSError as e:
        raise SignError(f"{out_dir}: cannot write the key pair ({e.strerror})") from None
    return key_path, pub_path, key_id(private.public_key())


def load_private_key(path):
    serialization, ed25519 = _crypto()
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size > MAX_KEY_BYTES:
            raise SignError(f"{path}: not a key file")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except SignError:
        raise
    except (ValueError, TypeError, OSError) as e:
        raise SignError(f"{path}: not an unencrypted PEM private key ({first_line(e)})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignError(f"{path}: not an Ed25519 private key")
    return key


def sign_bundle(bundle_dir, key):
    """Verify the bundle, then write its bundle.sig with `key` (a path or a private key).
    Returns the key id. Re-signing (a new key) replaces the old signature."""
    if not hasattr(key, "sign"):
        key = load_private_key(key)
    bundle = load_bundle(bundle_dir)  # never sign what the device would refuse
    signature = key.sign(signed_message(bundle.manifest["integrity"]))
    kid = key_id(key.public_key())
    atomic_write_json(Path(bundle_dir) / SIGNATURE_FILE, {
        "format": SIG_FORMAT, "algorithm": "ed25519", "key_id": kid,
        "signature": base64.b64encode(signature).decode("ascii")})
    return kid


@click.group("keys")
def keys():
    """Ed25519 keys that sign bundles (devices trust their public halves)."""


@keys.command("new")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for NAME.key (private, keep it off devices) and NAME.pub.")
@click.option("--name", default="alledge-signing", show_default=True)
def keys_new(out, name):
    """Create a signing key pair."""
    try:
        key_path, pub_path, kid = new_key_pair(out, name)
    except SignError as e:
        fail(str(e), exitcodes.USAGE)
    click.echo(f"key {kid}: private {key_path} (keep it secret), public {pub_path} "
               "(copy it into each device's trusted-keys folder)")


@keys.command("sign")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="Private key (PEM) from 'alledge keys new'.")
def keys_sign(bundle_dir, key_path):
    """Sign an existing bundle (or re-sign it with a new key)."""
    try:
        kid = sign_bundle(bundle_dir, key_path)
    except SignError as e:
        fail(str(e), exitcodes.USAGE)
    except BundleError as e:
        fail(str(e), exitcodes.BAD_BUNDLE)
    except OSError as e:
        fail(f"{bundle_dir}: cannot write {SIGNATURE_FILE} ({e.strerror})", exitcodes.USAGE)
    click.echo(f"signed {bundle_dir} with key {kid}")
