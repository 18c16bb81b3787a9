"""Signed bundles: with a trust store configured, a device runs only bundles signed by a key
it trusts; without one, bundles are still checked for integrity but not for a signature.

Real keys (Ed25519 through `cryptography`), real bundles (copies of the shipped default),
real runs of the `alledge` command.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alledge.device import exitcodes
from alledge.device.bundle import DEFAULT_BUNDLE, seal
from alledge.device.trust import SIGNATURE_FILE
from bundles import image_dir

ALLEDGE = str(Path(sys.executable).parent / "alledge")


def alledge(env, *args):
    r = subprocess.run([ALLEDGE, *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def refused(r, code, words):
    lines = r.stderr.splitlines()
    assert r.returncode == code and r.stdout == "", r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], r.stderr


@pytest.fixture
def keys(env, tmp_path):
    """Two key pairs, 'old' and 'new', made by `alledge keys new`."""
    for name in ("old", "new"):
        r = alledge(env, "keys", "new", "--out", tmp_path / "keys", "--name", name)
        assert r.returncode == 0 and "key " in r.stdout
    return tmp_path / "keys"


@pytest.fixture
def bundle(tmp_path):
    return shutil.copytree(DEFAULT_BUNDLE, tmp_path / "bundle")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return sorted(image_dir(tmp_path_factory).glob("*.jpg"))[0]


def classify(env, bundle, image, *flags):
    return alledge(env, "classify", image, "--bundle", bundle, "--no-log", "--json", *flags)


def trust_dir(tmp_path, keys, *names):
    d = tmp_path / "trusted"
    d.mkdir(exist_ok=True)
    for n in names:
        shutil.copy(keys / f"{n}.pub", d)
    return d


def test_keys_new_writes_a_private_key_only_its_owner_reads(keys, env):
    assert oct((keys / "old.key").stat().st_mode & 0o777) == "0o600"
    assert (keys / "old.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    r = alledge(env, "keys", "new", "--out", keys, "--name", "old")  # never overwritten
    refused(r, exitcodes.USAGE, "already exists")


def test_a_signed_bundle_runs_with_its_key_trusted_every_way(env, keys, bundle, image,
                                                             tmp_path):
    r = alledge(env, "keys", "sign", bundle, "--key", keys / "old.key")
    assert r.returncode == 0 and (bundle / SIGNATURE_FILE).is_file()
    assert classify(env, bundle, image, "--trust", keys / "old.pub").returncode == 0
    assert classify(env, bundle, image, "--trust", trust_dir(tmp_path, keys, "old")) \
        .returncode == 0
    assert classify(dict(env, ALLEDGE_TRUST=str(keys / "old.pub")), bundle, image) \
        .returncode == 0
    default_store = Path(env["XDG_CONFIG_HOME"]) / "alledge" / "trusted-keys"
    default_store.mkdir(parents=True)
    shutil.copy(keys / "old.pub", default_store)
    assert classify(env, bundle, image).returncode == 0


def test_with_a_trust_store_an_unsigned_bundle_is_refused(env, keys, bundle, image):
    refused(classify(env, bundle, image, "--trust", keys / "old.pub"), exitcodes.BAD_BUNDLE,
            "not signed")


def test_without_a_trust_store_an_unsigned_bundle_runs(env, bundle, image):
    r = classify(env, bundle, image)
    assert r.returncode == 0 and "error" not in json.loads(r.stdout)


def test_a_bundle_signed_by_an_untrusted_key_is_refused(env, keys, bundle, image):
    alledge(env, "keys", "sign", bundle, "--key", keys / "new.key")
    refused(classify(env, bundle, image, "--trust", keys / "old.pub"), exitcodes.BAD_BUNDLE,
            "not in the trust store")


def test_a_bundle_changed_after_signing_is_refused_even_when_resealed(env, keys, bundle, image):
    alledge(env, "keys", "sign", bundle, "--key", keys / "old.key")
    m = json.loads((bundle / "manifest.json").read_text())
    m["metrics"]["accuracy"] = 1.0  # a claim edited, integrity recomputed: self-consistent
    (bundle / "manifest.json").write_text(json.dumps(seal(m), indent=1))
    assert classify(env, bundle, image).returncode == 0  # no trust store: nothing to tell
    refused(classify(env, bundle, image, "--trust", keys / "old.pub"), exitcodes.BAD_BUNDLE,
            "does not verify")


def test_a_forged_or_garbled_signature_is_refused(env, keys, bundle, image):
    alledge(env, "keys", "sign", bundle, "--key", keys / "old.key")
    sig = json.loads((bundle / SIGNATURE_FILE).read_text())
    sig["signature"] = sig["signature"][::-1]
    (bundle / SIGNATURE_FILE).write_text(json.dumps(sig))
    r = classify(env, bundle, image, "--trust", keys / "old.pub")
    assert r.returncode == exitcodes.BAD_BUNDLE and len(r.stderr.splitlines()) == 1
    (bundle / SIGNATURE_FILE).write_text("[" * 100000)
    refused(classify(env, bundle, image, "--trust", keys / "old.pub"), exitcodes.BAD_BUNDLE,
            "unreadable signature")


def test_a_missing_or_empty_trust_store_refuses_every_bundle(env, keys, bundle, image,
                                                             tmp_path):
    alledge(env, "keys", "sign", bundle, "--key", keys / "old.key")
    refused(classify(env, bundle, image, "--trust", tmp_path / "nowhere"), exitcodes.BAD_BUNDLE,
            "trust store not found")
    (tmp_path / "empty").mkdir()
    refused(classify(env, bundle, image, "--trust", tmp_path / "empty"), exitcodes.BAD_BUNDLE,
            "holds no public keys")
    refused(classify(env, bundle, image, "--trust", keys / "old.key"), exitcodes.BAD_BUNDLE,
            "not a PEM public key")


def test_key_rotation_trust_both_re_sign_then_retire_the_old_key(env, keys, bundle, image,
                                                                 tmp_path):
    alledge(env, "keys", "sign", bundle, "--key", keys / "old.key")
    store = trust_dir(tmp_path, keys, "old", "new")  # 1. devices trust both keys
    assert classify(env, bundle, image, "--trust", store).returncode == 0
    alledge(env, "keys", "sign", bundle, "--key", keys / "new.key")  # 2. re-sign
    assert classify(env, bundle, image, "--trust", store).returncode == 0
    (store / "old.pub").unlink()  # 3. retire the old key
    assert classify(env, bundle, image, "--trust", store).returncode == 0
    old_signed = shutil.copytree(DEFAULT_BUNDLE, tmp_path / "old-signed")
    alledge(env, "keys", "sign", old_signed, "--key", keys / "old.key")
    refused(classify(env, old_signed, image, "--trust", store), exitcodes.BAD_BUNDLE,
            "not in the trust store")


def test_signing_refuses_a_damaged_bundle(env, keys, bundle):
    (bundle / "ood.npz").write_bytes(b"changed")
    refused(alledge(env, "keys", "sign", bundle, "--key", keys / "old.key"),
            exitcodes.BAD_BUNDLE, "sha256 does not match")
    assert not (bundle / SIGNATURE_FILE).exists()


def without_cryptography(env, tmp_path):
    """The environment of a device where the `cryptography` package is not installed."""
    fake = tmp_path / "no-crypto" / "cryptography"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('cryptography is not installed')\n")
    return dict(env, PYTHONPATH=str(fake.parent))


def test_without_cryptography_only_a_configured_trust_store_is_an_error(env, keys, bundle,
                                                                        image, tmp_path):
    alledge(env, "keys", "sign", bundle, "--key", keys / "old.key")
    bare = without_cryptography(env, tmp_path)
    assert classify(bare, bundle, image).returncode == 0
    refused(classify(bare, bundle, image, "--trust", keys / "old.pub"), exitcodes.BAD_BUNDLE,
            "pip install 'alledge[device]'")


@pytest.mark.slow
def test_convert_sign_writes_a_bundle_the_device_trusts(env, keys, trained, image, tmp_path):
    out = tmp_path / "signed"
    r = alledge(env, "convert", trained["models"] / "improved-cnn", "--out", out,
                "--quant", "float32", "--no-eval", "--sign", keys / "new.key")
    assert r.returncode == 0 and "signed by key" in r.stdout, r.stderr
    assert classify(env, out, image, "--trust", keys / "new.pub").returncode == 0
    refused(classify(env, out, image, "--trust", keys / "old.pub"), exitcodes.BAD_BUNDLE,
            "not in the trust store")
    bad = alledge(env, "convert", trained["models"] / "improved-cnn", "--out", tmp_path / "x",
                  "--quant", "float32", "--no-eval", "--sign", keys / "new.pub")
    refused(bad, exitcodes.USAGE, "private key")
    assert not (tmp_path / "x").exists()  # refused before converting


def test_trust_flag_holds_for_its_command_only(keys, bundle, image, monkeypatch):
    # in one process (the web app, a test session) --trust must not outlive its command
    from click.testing import CliRunner
    from alledge.device.cli import main
    monkeypatch.delenv("ALLEDGE_TRUST", raising=False)
    r = CliRunner().invoke(main, ["classify", str(image), "--bundle", str(bundle), "--no-log",
                                  "--trust", str(keys / "old.pub")])
    assert r.exit_code == exitcodes.BAD_BUNDLE and "not signed" in r.output
    assert "ALLEDGE_TRUST" not in os.environ
