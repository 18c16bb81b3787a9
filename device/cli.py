"""The `alledge` command: one Click group.

Device commands are defined in device modules. Desktop commands (data, train, convert,
report) live in alledge.train / alledge.convert and are imported only when invoked, so
the Pi never loads them and a missing extra is one clear line, not a traceback.
"""
import importlib
import sys

import click

from . import exitcodes

# command name -> (module, attribute, extra needed to run it)
LAZY_COMMANDS = {
    "data": ("alledge.train.data_cli", "data", "train"),
    "train": ("alledge.train.cli", "train", "train"),
    "convert": ("alledge.convert.cli", "convert", "train"),
    "report": ("alledge.convert.cli", "report", "train"),
    "gate": ("alledge.convert.cli", "gate", "train"),
    "scale": ("alledge.convert.scale_cli", "scale", "train"),
    "stress": ("alledge.convert.cli", "stress", "train"),
    "matrix": ("alledge.convert.cli", "matrix", "train"),
    "keys": ("alledge.convert.sign", "keys", "train"),
    "classify": ("alledge.device.classify_cli", "classify", "device"),
    "capture": ("alledge.device.capture_cli", "capture", "device"),
    "calibrate": ("alledge.device.calibrate_cli", "calibrate", "device"),
    "history": ("alledge.device.history_cli", "history", "device"),
    "bench": ("alledge.device.bench_cli", "bench", "device"),
    "info": ("alledge.device.info_cli", "info", "device"),
    "serve": ("alledge.device.serve", "serve", "serve"),
    "evaluate": ("alledge.device.evaluate_cli", "evaluate_command", "device"),
}


class LazyGroup(click.Group):
    def main(self, args=None, prog_name=None, **extra):
        """Click's own error handling prints a four-line usage block; a bad flag here is the
        documented one line `error: ...` and exit 2, like every other refusal."""
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            fail(f"{_one_line(e.format_message())}{hint}", exitcodes.USAGE)
        except click.ClickException as e:
            fail(_one_line(e.format_message()), e.exit_code)
        except click.exceptions.Abort:
            fail("aborted", 130)
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx):
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx, name):
        if name not in LAZY_COMMANDS:
            return None
        module, attr, extra = LAZY_COMMANDS[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as e:
            missing = getattr(e, "name", None) or str(e)
            return _missing_extra_command(name, extra, missing)


def _missing_extra_command(name, extra, missing):
    @click.command(name, context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True, "help_option_names": []})
    def stub():
        fail(f"'alledge {name}' needs the {extra} extra ({missing} is not installed): "
             f"pip install 'alledge[{extra}]'", exitcodes.USAGE)
    return stub


def _one_line(text):
    return " ".join(text.split())


def fail(message, code):
    """Print one line to stderr and exit with `code`. The one way commands stop on bad input."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def require(module, extra):
    """Import a heavy dependency at run time, or stop with the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        fail(f"this command needs {module}: pip install 'alledge[{extra}]'", exitcodes.USAGE)


@click.group(cls=LazyGroup)
@click.version_option(package_name="alledge")
def main():
    """alledge: acute lymphoblastic leukemia detection in blood smear images, on the edge."""


if __name__ == "__main__":
    main()
