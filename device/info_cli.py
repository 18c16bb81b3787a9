"""`alledge info [--bundle DIR] [--json]`: the runtime, the delegates found, the bundle in use.

It diagnoses, so it reports a missing or broken bundle instead of stopping on it (exit 0),
unless the bundle was asked for with --bundle (then exit BAD_BUNDLE).
"""
import json
import sys

import click
import cv2
import numpy as np

from . import exitcodes
from .bundle import BundleError, load_selected_bundle, resolve_bundle_dir
from .options import bundle_option
from .runtime import RuntimeUnavailable, edgetpu_library, runtime


@click.command("info")
@bundle_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(bundle_dir, as_json):
    """Show the interpreter, Edge TPU support and the bundle in use."""
    report = {"alledge": _version("alledge"), "python": sys.version.split()[0],
              "numpy": np.__version__, "opencv": cv2.__version__}
    try:
        module, version, _, _ = runtime()
        report["runtime"] = {"module": module, "version": version}
    except RuntimeUnavailable as e:
        report["runtime"] = {"error": str(e)}
    report["delegates"] = {"edgetpu": edgetpu_library()}
    report["bundle"] = {"path": str(resolve_bundle_dir(bundle_dir))}
    code = exitcodes.OK
    try:
        bundle = load_selected_bundle(bundle_dir)
        report["bundle"].update(id=bundle.id, verified=True, manifest=bundle.manifest)
    except BundleError as e:
        report["bundle"].update(verified=False, error=str(e))
        code = exitcodes.BAD_BUNDLE if bundle_dir else exitcodes.OK
    click.echo(json.dumps(report) if as_json else _text(report))
    sys.exit(code)


def _text(r):
    rt = r["runtime"]
    lines = [f"alledge {r['alledge']}  python {r['python']}  numpy {r['numpy']}  "
             f"opencv {r['opencv']}",
             f"runtime: {rt['module']} {rt['version']}" if "module" in rt
             else f"runtime: none ({rt['error']})",
             "delegates: edgetpu " + (f"found ({r['delegates']['edgetpu']})"
                                      if r["delegates"]["edgetpu"] else "not found "
                                      "(libedgetpu.so.1 not installed)")]
    b = r["bundle"]
    if b["verified"]:
        m = b["manifest"]
        lines += [f"bundle: {b['path']}  ({b['id']}, verified)",
                  f"  kind {m['kind']}  quantization {m.get('quantization')}  input "
                  f"{m['input']['size']}x{m['input']['size']} {m['input']['dtype']}  "
                  f"edgetpu model: {m.get('edgetpu_model_file') or 'none'}",
                  "  manifest: " + json.dumps(m, indent=1).replace("\n", "\n  ")]
    else:
        lines.append(f"bundle: not usable: {b['error']}")
    return "\n".join(lines)


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
