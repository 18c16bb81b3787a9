"""`alledge scale BUNDLE --data DATA --split CSV`: record the training scale in a bundle."""
import click

from alledge.device.cli import fail

from .build import ConvertError, scale_bundle


@click.command("scale")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="The dataset the bundle was trained on.")
@click.option("--split", "split_csv", required=True, type=click.Path(dir_okay=False),
              help="The bundle's split CSV (its training images are measured).")
def scale(bundle_dir, data_dir, split_csv):
    """Measure the red-cell diameter of the training images (the device's own estimator) and
    write it into the bundle's manifest as `scale`, keeping every file: the device then
    brings each capture to that scale."""
    try:
        manifest = scale_bundle(bundle_dir, data_dir, split_csv, log=click.echo)
    except ConvertError as e:
        fail(str(e), e.code)
    click.echo(f"{bundle_dir}: scale {manifest['scale']['rbc_diameter_px']} px")
