"""`skeleton`: meta.yaml generated from the sdist by grayskull, in the classic format.

The walkthrough runs `conda skeleton pypi btrdb`; the embedded engine asks grayskull, which
conda-build's own documentation now recommends.  grayskull can return without writing a file,
so the result is checked before it is moved into place.
"""

from __future__ import annotations

import contextlib
import importlib.util
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
    logging.disable(logging.WARNING)  # grayskull's licence matching, setuptools' warnings
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), _cwd(out), \
                _no_setup_installs():
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
def _no_setup_installs():
    """Keep grayskull from installing what setup.py needs when it runs it for its metadata.

    grayskull runs `pip install DEP --target=...` for every third-party module setup.py imports,
    and setuptools fetches the `setup_requires` (btrdb's pytest-runner) before running setup.py:
    seconds of child processes and index look-ups, for modules this Python mostly imports
    already.  Here a module this Python can import is recorded as grayskull records it, without
    pip; others still go to grayskull's pip.  setup_requires are read from setup()'s arguments,
    not installed.  The meta.yaml is the same either way (tests/test_skeleton.py)."""
    import setuptools
    from grayskull.strategy import py_base

    pip_install_dep = py_base.pip_install_dep

    def install_if_missing(data_dist: dict, dep_name: str, pip_dir: str) -> None:
        name = "setuptools" if dep_name == "pkg_resources" else dep_name
        if not _importable(name):
            return pip_install_dep(data_dist, dep_name, pip_dir)
        if not data_dist.get("setup_requires"):
            data_dist["setup_requires"] = []
        if name.lower() not in ("setuptools", *data_dist["setup_requires"]):
            data_dist["setup_requires"].append(name.lower())
        return None

    fetch = getattr(setuptools, "_install_setup_requires", None)
    py_base.pip_install_dep = install_if_missing
    if fetch is not None:
        setuptools._install_setup_requires = lambda attrs: None
    try:
        yield
    finally:
        py_base.pip_install_dep = pip_install_dep
        if fetch is not None:
            setuptools._install_setup_requires = fetch


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
