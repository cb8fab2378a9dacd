"""`skeleton`: meta.yaml generated from the sdist by grayskull, in the classic format.

The walkthrough runs `conda skeleton pypi btrdb`; the embedded engine asks grayskull, which
conda-build's own documentation now recommends.  grayskull can return without writing a file,
so the result is checked before it is moved into place.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tarfile
import tempfile
from pathlib import Path

from . import fsio
from . import project as P
from .config import Config
from .errors import UserError


def generate(config: Config) -> None:
    paths = P.paths(config)
    paths.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="skeleton-", dir=paths.work) as tmp:
        text = _grayskull(_sdist(config, Path(tmp)), Path(tmp) / "out")
    fsio.write_text(paths.skeleton, text)


def _sdist(config: Config, folder: Path) -> Path:
    """The downloaded sdist; for a checkout, its copied tree packed as NAME-VERSION.tar.gz."""
    paths = P.paths(config)
    record = json.loads(paths.source_record.read_text())
    if record["origin"] == "index":
        return paths.downloads / record["sdist"]
    top = f"{config.package}-{config.version}"
    sdist = folder / f"{top}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(paths.source_tree, arcname=top)
    return sdist


def _grayskull(sdist: Path, out: Path) -> str:
    # Imported here: grayskull costs ~0.5 s to import and only this action needs it.
    from grayskull.main import create_python_recipe
    from grayskull.utils import generate_recipe

    out.mkdir()
    chatter = io.StringIO()
    logging.disable(logging.INFO)  # grayskull logs every licence it compares at INFO
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), _cwd(out):
            recipe, gs_config = create_python_recipe(str(sdist), from_local_sdist=True)
            generate_recipe(recipe, gs_config, str(out), use_v1_format=False)
    except Exception as err:  # grayskull raises anything from setup.py; report it as one line
        raise UserError(f"grayskull could not generate a recipe for {sdist.name} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}): check the sdist builds with pip") from None
    finally:
        logging.disable(logging.NOTSET)
    written = sorted(out.glob("*/meta.yaml"))
    if not written:
        raise UserError(f"grayskull wrote no meta.yaml for {sdist.name}: check that it is a Python sdist")
    return written[0].read_text(encoding="utf-8")


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
