"""`skeleton`: meta.yaml generated from the sdist by grayskull, in the classic format.

The walkthrough runs `conda skeleton pypi btrdb`; the embedded engine asks grayskull, which
conda-build's own documentation now recommends.  grayskull can return without writing a file,
so the result is checked before it is moved into place.
"""

from __future__ import annotations

import contextlib
import io
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
    with tempfile.TemporaryDirectory(prefix="skeleton-", dir=paths.work) as tmp:
        sdist = _sdist_of_tree(paths.source_tree, Path(tmp), config)
        text = _grayskull(sdist, Path(tmp) / "out", config.package)
    fsio.write_text(paths.skeleton, text)


def _sdist_of_tree(tree: Path, folder: Path, config: Config) -> Path:
    """grayskull reads sdists: pack the unpacked tree back as NAME-VERSION.tar.gz."""
    top = f"{config.package}-{config.version}"
    sdist = folder / f"{top}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(tree, arcname=top)
    return sdist


def _grayskull(sdist: Path, out: Path, package: str) -> str:
    # Imported here: grayskull costs ~0.5 s to import and only this action needs it.
    from grayskull.main import create_python_recipe
    from grayskull.utils import generate_recipe

    out.mkdir()
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), _cwd(out):
            recipe, gs_config = create_python_recipe(str(sdist), from_local_sdist=True)
            generate_recipe(recipe, gs_config, str(out), use_v1_format=False)
    except Exception as err:  # grayskull raises anything from setup.py; report it as one line
        raise UserError(f"grayskull could not generate a recipe for {sdist.name} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}): check the sdist builds with pip") from None
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
