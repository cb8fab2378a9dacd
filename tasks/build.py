"""`wheel` and `build:<python>`: the embedded engine's conda-build.

conda-build runs the recipe's `pip install .` into a host prefix and packs what landed there.
The embedded engine does the same in two steps: the source's build backend makes one wheel
(pure Python, so one serves every Python version), then each build installs it into a staging prefix
laid out for its Python (`lib/pythonX.Y/site-packages`, entry points in `bin/` with conda's
prefix placeholder in the shebang) and py-rattler-build's `assemble_package` packs it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import convert, fsio, recipe, render
from . import project as P
from .config import Config
from .errors import UserError
from .runner import Runner, pip, run

# conda's classic prefix placeholder: conda and rattler replace it with the install prefix.
PLACEHOLDER = convert.PREFIX_PLACEHOLDER


def wheel(config: Config, runner: Runner = run) -> None:
    """One wheel of the source tree, built by its PEP 517 backend without fetching anything.

    conda recipes run `pip install . --no-build-isolation`: the build uses the pipeline's own
    setuptools.  The same backend hook is called here in one child Python, which costs a fifth of
    a `pip wheel` (pip's start-up and metadata pass).  A project that names another backend, or
    build requirements this Python lacks, is built by `pip wheel` with isolation, which fetches
    them through the user's pip configuration."""
    paths = P.paths(config)
    record = paths.wheel_dir / "wheel.json"
    record.unlink(missing_ok=True)
    out = fsio.fresh_dir(paths.wheel_dir / "dist")
    tree = paths.source_tree
    backend = local_backend(tree)
    if backend is None:
        result = runner(pip("wheel", "--no-deps", "--wheel-dir", str(out), str(tree)))
    else:
        result = runner([sys.executable, "-c", _BUILD_WHEEL, backend, str(out)], cwd=str(tree))
    wheels = sorted(out.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"could not build a wheel of {config.package} ({tail.strip()}): "
                        "check that the source builds with `pip wheel .`")
    if not wheels[0].name.endswith("-none-any.whl"):
        raise UserError(f"{wheels[0].name} holds compiled code: the embedded engine builds pure-Python "
                        "packages only; use engine=conda")
    # The digest makes the record change with the wheel's content: builds depend on the record.
    fsio.write_json(record, {"wheel": wheels[0].name, "sha256": fsio.file_digests(wheels[0])["sha256"]})


# The child's program: import the backend named "module:object" and call its build_wheel hook.
# With `-c`, the source tree (the working directory) is on sys.path, as setup.py expects.
_BUILD_WHEEL = """\
import importlib, sys
module, _, attribute = sys.argv[1].partition(":")
backend = importlib.import_module(module)
for part in filter(None, attribute.split(".")):
    backend = getattr(backend, part)
backend.build_wheel(sys.argv[2])
"""

_SETUPTOOLS = ("setuptools.build_meta", "setuptools.build_meta:__legacy__")


def local_backend(tree: Path) -> str | None:
    """The setuptools backend to call in place, or None when pip must build with isolation: the
    project names another backend (or its own backend-path), or this Python lacks one of its
    build requirements."""
    import tomllib

    from packaging.requirements import InvalidRequirement, Requirement

    pyproject = tree / "pyproject.toml"
    try:
        system = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("build-system", {}) \
            if pyproject.is_file() else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"the source's pyproject.toml is not valid TOML ({err}): fix it in the package") from None
    backend = system.get("build-backend", _SETUPTOOLS[1])
    if backend not in _SETUPTOOLS or system.get("backend-path"):
        return None
    for text in system.get("requires", []):
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            return None  # pip reports it, in its own words
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            return None
        if not requirement.specifier.contains(installed, prereleases=True):
            return None
    return backend


def build(config: Config, python: str | None, subdir: str, output: Path) -> None:
    """Render the recipe for `python`, install the wheel into a staging prefix, pack it."""
    paths = P.paths(config)
    meta = render.render(paths.meta.read_text(encoding="utf-8"), python, subdir)
    _check_pure(meta)
    wheel_file = paths.wheel_dir / "dist" / json.loads((paths.wheel_dir / "wheel.json").read_text())["wheel"]
    stage = fsio.fresh_dir(paths.stage(python))
    _install(wheel_file, stage, python)
    _pack(config, meta, python, subdir, stage, output)


def _check_pure(meta: render.Rendered) -> None:
    if meta.script and "pip install" not in meta.script:
        raise UserError(f"the recipe's build script {meta.script!r} is not a `pip install .`: "
                        "the embedded engine runs only those; use engine=conda")


def site_packages(python: str | None) -> str:
    return f"lib/python{python}/site-packages" if python else "site-packages"


def _install(wheel_file: Path, stage: Path, python: str | None) -> None:
    # Imported here: only build actions need the installer.
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    lib = str(stage / site_packages(python))
    scheme = {"purelib": lib, "platlib": lib, "scripts": str(stage / ("bin" if python else "python-scripts")),
              "headers": str(stage / "include"), "data": str(stage)}
    destination = SchemeDictionaryDestination(scheme, interpreter=f"{PLACEHOLDER}/bin/python",
                                              script_kind="posix")
    with WheelFile.open(wheel_file) as source:
        install(source, destination, additional_metadata={"INSTALLER": b"conda\n"})


def depends(meta: render.Rendered, python: str | None) -> list[str]:
    """Run requirements, with `python` pinned to the build's minor version as conda-build does."""
    others = [spec for spec in meta.run if _name(spec) != "python"]
    if python is None:
        return [spec for spec in meta.run if _name(spec) == "python"] + others
    major, minor = python.split(".")
    return [f"python >={python},<{major}.{int(minor) + 1}.0a0", *others]


def _name(spec: str) -> str:
    return spec.split()[0].split("=")[0].split("<")[0].split(">")[0].lower()


def _pack(config: Config, meta: render.Rendered, python: str | None, subdir: str, stage: Path,
          output: Path) -> None:
    from rattler_build import ArchiveType, RattlerBuildError, assemble_package

    paths = P.paths(config)
    epoch = json.loads(paths.source_record.read_text())["epoch"]
    about = meta.about
    with tempfile.TemporaryDirectory(prefix="pack-", dir=paths.work) as tmp:
        try:
            packed = assemble_package(
                meta.name, meta.version, subdir, P.build_string(python, meta.build_number), tmp,
                files_dir=stage, depends=depends(meta, python), build_number=meta.build_number,
                noarch="python" if python is None else None,
                homepage=about.get("home") or None, license=about.get("license") or None,
                license_family=about.get("license_family") or None,
                summary=about.get("summary") or None, description=about.get("description") or None,
                license_files=license_files(about.get("license_file"), paths.source_tree, paths.recipe_dir) or None,
                recipe_dir=paths.recipe_dir, archive_type=ArchiveType.TarBz2, compression_level=1,
                timestamp=datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc),
            )
        except RattlerBuildError as err:
            raise UserError(f"could not assemble {meta.name} for {subdir} ({err}): check the recipe") from None
        # Packed fast (level 1), then completed and compressed once, in the final format.
        convert.complete(Path(packed.path), output, about_extras(meta, paths))


def license_names(value: str | list[str] | None) -> list[str]:
    """about/license_file as a list: conda-build takes one file name or a list of them."""
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(name) for name in value if name]


def license_files(value: str | list[str] | None, source: Path, recipe_dir: Path) -> list[Path]:
    """The license files conda-build ships under info/licenses/, each looked for in the source
    tree, then beside the recipe.  One in neither is left out (conda-build would stop): grayskull
    writes a placeholder name when it finds none, and that must not stop a release."""
    found = (next((folder / name for folder in (source, recipe_dir) if (folder / name).is_file()), None)
             for name in license_names(value))
    return [path for path in found if path is not None]


def about_extras(meta: render.Rendered, paths: P.Paths) -> dict[str, Any]:
    """What conda-build's info/about.json holds beyond assemble_package's fields: doc_url,
    dev_url, license_file (as the recipe gives it) and `extra` (the recipe maintainers)."""
    about = meta.about
    extras: dict[str, Any] = {key: about[key] for key in ("doc_url", "dev_url", "license_family") if about.get(key)}
    shipped = [path.name for path in license_files(about.get("license_file"), paths.source_tree, paths.recipe_dir)]
    if shipped:  # as the recipe gives it: one name, or a list
        extras["license_file"] = shipped[0] if isinstance(about["license_file"], str) else shipped
    extra = recipe.extra(paths.meta.read_text(encoding="utf-8"))
    if extra:
        extras["extra"] = extra
    return extras
