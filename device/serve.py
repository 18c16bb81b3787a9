"""`alledge serve [--host H] [--port P] [--camera N | --source PATH] [--token-file F]`: the bench
screen, a local web app for the technician (needs the `serve` extra: bottle and waitress).

bottle + waitress: both pure Python with no dependencies of their own, so nothing native to
build or match on a Pi's aarch64 Python; together well under the footprint of an ASGI stack,
and waitress is a threaded production server, which suits a model that runs one image at a
time. The app itself is alledge.device.webapp.
"""
import ipaddress
import re
import secrets
import socket
import sys

import bottle  # noqa: F401  (imported here so a missing extra is one line, from the CLI)
import click
import waitress

from . import exitcodes
from .capture import CameraError, open_source
from .cli import fail
from .live import LiveView
from .options import (bundle_option, db_option, delegate_option, open_classifier, open_log,
                      threads_option)
from .results_log import LogError, default_path
from .sessions import SessionStore
from .webapp import create_app

THREADS = 4


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires the token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="Read the access token from this file (default off loopback: a new token, "
                   "printed at start).")
@click.option("--camera", default=None,
              help="Live view from this camera index (OpenCV/V4L2) or 'picam'.")
@click.option("--source", default=None,
              help="Live view from a video file or folder of images (played in a loop), "
                   "instead of a camera.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.1, max=200), default=20.0,
              show_default=True, help="Refuse uploads larger than this (413).")
@bundle_option
@threads_option
@delegate_option
@db_option
def serve(host, port, token_file, camera, source, max_upload_mb, bundle_dir, threads,
          delegate, db):
    """Serve the bench screen: live view with a focus meter, capture and upload, slide
    sessions, history. Binds 127.0.0.1 unless --host says otherwise."""
    if camera is not None and source is not None:
        fail("give --camera or --source, not both", exitcodes.USAGE)
    loopback = _is_loopback(host)
    token = _read_token(token_file) if token_file else (None if loopback
                                                        else secrets.token_urlsafe(24))
    classifier = open_classifier(bundle_dir, threads, delegate)
    db_path = db or default_path()
    open_log(db_path).close()            # a bad --db fails here, in one line
    try:
        SessionStore(db_path).close()
    except LogError as e:
        fail(str(e), exitcodes.USAGE)
    live = None
    if camera is not None or source is not None:
        try:
            live = LiveView(lambda: open_source(camera, source), classifier.thresholds).start()
        except CameraError as e:
            fail(str(e), exitcodes.NO_CAMERA)
    app = create_app(classifier, db_path, live=live, token=token,
                     max_upload=int(max_upload_mb * (1 << 20)), loopback=loopback)
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):  # every interface: name the machine as the network knows it
        shown = socket.gethostname()
    url = f"http://{shown}:{port}/"
    click.echo(f"alledge serve: {url}  bundle {classifier.bundle.id}  log {db_path}")
    if token is not None:
        click.echo(f"token required; open {url}?token={token}")
    click.echo("this is a research tool, not a diagnosis. Ctrl-C stops.")
    sys.stdout.flush()
    try:
        # max_request_body_size: waitress refuses a larger Content-Length (413) before
        # reading the body; the app checks it again for any other WSGI server
        waitress.serve(app, host=host, port=port, threads=THREADS, ident="alledge",
                       max_request_body_size=int(max_upload_mb * (1 << 20)) + 1,
                       _quiet=True)
    except OSError as e:
        fail(f"cannot listen on {host}:{port} ({e.strerror or e})", exitcodes.USAGE)
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.close()


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: treat as reachable from the network


def _read_token(path):
    try:
        with open(path) as f:
            token = f.read().strip()
    except OSError as e:
        fail(f"{path}: cannot read the token file ({e.strerror})", exitcodes.USAGE)
    # it travels in a header, a URL and a cookie: keep to characters safe in all three
    if not re.fullmatch(r"[A-Za-z0-9._~-]{16,}", token):
        fail(f"{path}: the token must be at least 16 letters, digits or . _ ~ -",
             exitcodes.USAGE)
    return token
