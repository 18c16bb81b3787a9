"""Options and set-up shared by the device commands; every failure is one line + exit code."""
import os

import click

from . import exitcodes
from .bundle import BundleError, load_selected_bundle
from .cli import fail
from .messages import first_line
from .results_log import LogError, ResultsLog
from .runtime import DelegateError, RuntimeUnavailable

MAX_THREADS = 64  # more threads than a Pi (4 cores) or this desktop has only slow it down


def _set_trust(ctx, param, value):
    # --trust is $ALLEDGE_TRUST for this command, so every bundle loader in it sees it; put
    # back when the command ends (a test runs many commands in one process)
    if value is not None:
        if value == "":
            raise click.BadParameter("an empty path", ctx=ctx, param=param)
        before = os.environ.get("ALLEDGE_TRUST")
        os.environ["ALLEDGE_TRUST"] = value
        ctx.call_on_close(lambda: _restore_env("ALLEDGE_TRUST", before))
    return value


def _restore_env(name, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def bundle_option(f):
    f = click.option(
        "--trust", type=click.Path(), default=None, expose_value=False, callback=_set_trust,
        help="Trusted public key (PEM) or folder of them: refuse bundles not signed by one. "
             "Default: $ALLEDGE_TRUST, else ~/.config/alledge/trusted-keys/ if it exists.")(f)
    return click.option(
        "--bundle", "bundle_dir", type=click.Path(file_okay=False),
        help="Bundle directory. Default: $ALLEDGE_BUNDLE, else the bundle shipped with "
             "alledge.")(f)


threads_option = click.option(
    "--threads", type=click.IntRange(min=1, max=MAX_THREADS), default=None,
    help=f"Interpreter threads, 1 to {MAX_THREADS} (default: the runtime's choice).")
delegate_option = click.option(
    "--delegate", type=click.Choice(["edgetpu"]), default=None,
    help="Run the bundle's Edge TPU model on a Coral accelerator (needs libedgetpu.so.1).")


def _check_db(ctx, param, value):
    if value is not None and not value.strip():
        raise click.BadParameter("an empty path (leave --db out for the default log)",
                                 ctx=ctx, param=param)
    return value


db_option = click.option(
    "--db", type=click.Path(dir_okay=False), default=None, callback=_check_db,
    help="Results database. Default: $ALLEDGE_DB, else $ALLEDGE_HOME/results.db, "
         "else ~/.local/share/alledge/results.db.")
no_log_option = click.option("--no-log", is_flag=True, help="Do not write the results log.")


def open_bundle(bundle_dir):
    try:
        return load_selected_bundle(bundle_dir)
    except BundleError as e:
        fail(str(e), exitcodes.BAD_BUNDLE)


def open_classifier(bundle_dir, threads=None, delegate=None):
    from .classify import Classifier
    bundle = open_bundle(bundle_dir)
    try:
        return Classifier(bundle, threads=threads, delegate=delegate)
    except DelegateError as e:
        fail(str(e), exitcodes.NO_DELEGATE)
    except BundleError as e:
        fail(str(e), exitcodes.BAD_BUNDLE)
    except RuntimeUnavailable as e:
        fail(str(e), exitcodes.USAGE)
    except (ValueError, RuntimeError) as e:  # the interpreter refused the model file
        fail(f"{bundle.model_path}: the interpreter cannot load it ({first_line(e)})",
             exitcodes.BAD_BUNDLE)


def open_log(db, enabled=True):
    if not enabled:
        return None
    try:
        return ResultsLog(db)
    except LogError as e:
        fail(str(e), exitcodes.USAGE)
