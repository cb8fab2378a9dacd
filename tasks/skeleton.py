"""`skeleton`: meta.yaml generated from the sdist by grayskull, in the classic format.

The walkthrough runs `conda skeleton pypi btrdb`; the embedded engine asks grayskull, which
conda-build's own documentation now recommends.  grayskull can return without writing a file,
so the result is checked before it is moved into place.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tarfile
import tempfile
from pathlib import Path

from . import build, fromwheel, fsio, logs, wheelmeta
from . import project as P
from .config import Config
from .errors import UserError


# The first line of a skeleton grayskull could not write: the recipe then comes from the wheel.
FAILED = "# grayskull failed: "


def generate(config: Config) -> None:
    """grayskull's recipe from the sdist; where grayskull fails, a one-line skeleton saying why
    (the `recipe` task then writes the recipe from the wheel).  What grayskull, setuptools and
    pip say goes to build/logs/skeleton.log."""
    paths = P.paths(config)
    paths.work.mkdir(parents=True, exist_ok=True)
    log = paths.log("skeleton")
    with tempfile.TemporaryDirectory(prefix="skeleton-", dir=paths.work) as tmp:
        try:
            with logs.captured(log):
                text = _grayskull(_sdist(config, Path(tmp)), Path(tmp) / "out")
        except UserError as err:
            text = f"{FAILED}{err} (see {logs.shown(log)})\n"
            print(f"{err}: the recipe will come from the wheel's metadata (see {logs.shown(log)})")
    fsio.write_text(paths.skeleton, text)


def checked(config: Config, skeleton: str) -> str:
    """The skeleton checked against the built wheel (tasks/fromwheel.py): completed where grayskull
    dropped what the wheel declares, or written from the wheel where grayskull failed.  Prints
    which, and records it in work/skeleton/origin.json (release.json shows it)."""
    paths = P.paths(config)
    wheel = build.wheel_file(config)
    info = wheelmeta.read(wheel)
    if skeleton.startswith(FAILED):
        failure = skeleton[len(FAILED):].strip()
        url, sha256 = _sdist_of(config)
        text = fromwheel.write(info, fromwheel.build_requirements(build.build_system(paths.source_tree)), url, sha256)
        origin = {"origin": "wheel", "why": failure}
        said = f"recipe from the wheel's metadata: {failure}"
    else:
        files = _source_files(paths.source_tree)
        text, notes = fromwheel.complete(skeleton, info, files, pure=not build.compiled(wheel))
        origin = {"origin": "grayskull", "completed": notes}
        said = "recipe from grayskull" + (f", completed from the wheel ({'; '.join(notes)})" if notes else "")
    fsio.write_json(paths.recipe_origin, origin)
    print(said)
    return text


def _sdist_of(config: Config) -> tuple[str, str]:
    """The sdist's URL and sha256 for a recipe's source (the settings replace it by the tree)."""
    paths = P.paths(config)
    record = json.loads(paths.source_record.read_text())
    if record["origin"] == "index":
        return (paths.downloads / record["sdist"]).as_uri(), record["sha256"]
    return paths.source_tree.as_uri(), ""


def _source_files(tree: Path) -> set[str]:
    return {path.relative_to(tree).as_posix() for path in tree.rglob("*") if path.is_file()}


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
    try:
        with _cwd(out), _no_setup_installs(), _plain_strings():
            recipe, gs_config = create_python_recipe(str(sdist), from_local_sdist=True)
            generate_recipe(recipe, gs_config, str(out), use_v1_format=False)
    except BaseException as err:  # setup.py may raise anything, even SystemExit; one line
        if isinstance(err, KeyboardInterrupt):
            raise
        detail = str(err).splitlines()[0] if str(err) else ""
        raise UserError(f"grayskull could not read {sdist.name} ({type(err).__name__}: {detail})") from None
    written = sorted(out.glob("*/meta.yaml"))
    if not written:
        raise UserError(f"grayskull wrote no meta.yaml for {sdist.name}")
    return written[0].read_text(encoding="utf-8")


@contextlib.contextmanager
def _plain_strings():
    """Let grayskull's YAML writer take setuptools' own str, list and dict subclasses.

    setuptools >= 75.8 hands back static metadata as `setuptools._static.Str` and friends, which
    ruamel.yaml refuses (`RepresenterError: cannot represent an object: 'https://…'`): each is
    written as the plain type it subclasses."""
    from ruamel.yaml.representer import RoundTripRepresenter

    saved = dict(RoundTripRepresenter.yaml_multi_representers)
    for kind, represent in ((str, RoundTripRepresenter.represent_str),
                            (list, RoundTripRepresenter.represent_list),
                            (dict, RoundTripRepresenter.represent_dict),
                            (tuple, RoundTripRepresenter.represent_list)):
        RoundTripRepresenter.add_multi_representer(kind, represent)
    try:
        yield
    finally:
        RoundTripRepresenter.yaml_multi_representers = saved


@contextlib.contextmanager
def _no_setup_installs():
    """Keep grayskull from installing what setup.py needs when it runs it for its metadata.

    grayskull runs `pip install DEP --target=...` for every third-party module setup.py imports,
    and setuptools fetches the `setup_requires` (btrdb's pytest-runner) before running setup.py:
    seconds of child processes, index look-ups and pages of pip errors for names that are no
    distribution at all (a custom command class).  Here a module this Python can import is
    recorded as grayskull records it, and nothing is installed: a module this Python lacks is
    left out, and the wheel's own metadata (tasks/fromwheel.py) supplies what setup.py needs at
    run time.  setup_requires are read from setup()'s arguments, not installed."""
    import setuptools
    from grayskull.strategy import py_base

    pip_install_dep = py_base.pip_install_dep

    def install_if_missing(data_dist: dict, dep_name: str, pip_dir: str) -> None:
        name = "setuptools" if dep_name == "pkg_resources" else dep_name
        if not _importable(name):
            return None
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
