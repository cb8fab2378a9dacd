"""`wheel` and `build:<python>`: the embedded engine's conda-build.

conda-build runs the recipe's `pip install .` into a host prefix and packs what landed there.
The embedded engine does the same in two steps: the source's build backend makes one wheel
(pure Python, so one serves every Python version), then each build installs it into a staging prefix
laid out for its Python (`lib/pythonX.Y/site-packages`, entry points in `bin/` with conda's
prefix placeholder in the shebang) and py-rattler-build's `assemble_package` packs it.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from . import convert, fsio, logs, recipe, render
from . import project as P
from .config import Config
from .errors import UserError
from .runner import Runner, pip, run

# conda's classic prefix placeholder: conda and rattler replace it with the install prefix.
PLACEHOLDER = convert.PREFIX_PLACEHOLDER


def wheel(config: Config, runner: Runner = run) -> None:
    """One wheel of the source tree, built by its PEP 517 backend without fetching anything.

    conda recipes run `pip install . --no-build-isolation`: the build uses the pipeline's own
    backend.  Its hook is called here in one child Python, which costs a fifth of a `pip wheel`
    (pip's start-up and metadata pass).  A project whose build requirements this Python lacks
    is built by `pip wheel` with isolation, which fetches them through the user's pip
    configuration.  For the embedded engine the build runs with no C compiler, so that a
    package whose speedups are optional falls back to pure Python as it does on a machine
    without one; what the tools say goes to build/logs/wheel.log."""
    paths = P.paths(config)
    record = paths.wheel_dir / "wheel.json"
    record.unlink(missing_ok=True)
    out = fsio.fresh_dir(paths.wheel_dir / "dist")
    tree = paths.source_tree
    system = build_system(tree)
    backend = local_backend(system)
    env = NO_COMPILER if config.engine != "conda" else None
    if backend is None:
        result = runner(pip("wheel", "--no-deps", "--wheel-dir", str(out), str(tree)), env=env)
    else:
        inside = [str(tree / folder) for folder in system.get("backend-path", [])]
        result = runner([sys.executable, "-c", _BUILD_WHEEL, backend, str(out), *inside], cwd=str(tree), env=env)
    log = logs.write(paths.log("wheel"), result)
    wheels = sorted(out.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise UserError(_wheel_failure(config, result, log, compiler_off=env is not None))
    if config.engine != "conda" and compiled(wheels[0]):
        raise UserError(f"{wheels[0].name} holds compiled code: the embedded engine builds pure-Python "
                        "packages only; use engine=conda, or binaries=wheels to release the package's own wheels")
    # The digest makes the record change with the wheel's content: builds depend on the record.
    fsio.write_json(record, {"wheel": wheels[0].name, "sha256": fsio.file_digests(wheels[0])["sha256"]})


# A compiler that always fails: setuptools' build_ext and meson/cmake front ends read these, and a
# package with optional speedups (markupsafe, simplejson, wrapt, pyyaml) then builds pure Python.
NO_COMPILER = {"CC": "false", "CXX": "false", "LDSHARED": "false", "CYTHON_BUILD_DISABLED": "1"}


def _wheel_failure(config: Config, result, log: Path, compiler_off: bool) -> str:
    said = logs.last_error(result.stdout + "\n" + result.stderr)
    where = f"see {logs.shown(log)}"
    if compiler_off and re.search(r"command '?false'? failed|error: command .*false|exit status 1.*false|"
                                  r"\['false'|unable to execute 'false'|C compiler|compiler cannot", result.stdout +
                                  result.stderr):
        return (f"{config.package} {config.version} needs compiled code to build (its extension does not "
                f"build without a C compiler; {where}): the embedded engine builds pure-Python packages "
                "only; use engine=conda, or binaries=wheels to release the package's own wheels")
    return f"could not build a wheel of {config.package} ({said}; {where}): check that the source builds with `pip wheel .`"


_BINARY = (".so", ".pyd", ".dll", ".dylib")


def compiled(wheel: Path) -> bool:
    """Whether a wheel holds compiled code.  Its tag is not enough: a package whose speedups are
    optional declares its extensions, so a build that fell back to pure Python is still tagged
    for the platform (`cp311-cp311-linux_x86_64`) while holding none."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        return any(name.endswith(_BINARY) or ".so." in name.rsplit("/", 1)[-1] for name in archive.namelist())


def wheel_file(config: Config) -> Path:
    """The wheel the `wheel` task built."""
    folder = P.paths(config).wheel_dir
    return folder / "dist" / json.loads((folder / "wheel.json").read_text())["wheel"]


# The child's program: import the backend named "module:object" and call its build_wheel hook.
# With `-c`, the source tree (the working directory) is on sys.path, as setup.py expects; an
# in-tree backend's folders (backend-path) come first, as PEP 517 says.
_BUILD_WHEEL = """\
import importlib, sys
sys.path[:0] = sys.argv[3:]
module, _, attribute = sys.argv[1].partition(":")
backend = importlib.import_module(module)
for part in filter(None, attribute.split(".")):
    backend = getattr(backend, part)
backend.build_wheel(sys.argv[2])
"""

_LEGACY = "setuptools.build_meta:__legacy__"


def build_system(tree: Path) -> dict:
    """The source's pyproject.toml [build-system] table ({} without one)."""
    import tomllib

    pyproject = tree / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8")).get("build-system", {}) \
            if pyproject.is_file() else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"the source's pyproject.toml is not valid TOML ({err}): fix it in the package") from None


def local_backend(system: dict) -> str | None:
    """The build backend (of a build_system table) to call in place, or None when pip must build
    with isolation because this Python lacks one of the project's build requirements (or has a
    version they exclude).  The pipeline ships the common backends (setuptools, flit-core,
    hatchling, poetry-core, pdm-backend, setuptools-scm, hatch-vcs) as a conda build's host
    environment would."""
    from packaging.requirements import InvalidRequirement, Requirement

    backend = system.get("build-backend", _LEGACY)
    for text in system.get("requires", ["setuptools"]):
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
    _check_python(config, python)
    stage = fsio.fresh_dir(paths.stage(python))
    _install(wheel_file(config), stage, python)
    _pack(config, meta, python, subdir, stage, output)


def _check_python(config: Config, python: str | None) -> None:
    """A build for a Python the package says it does not support would install and then fail."""
    from . import wheelmeta

    needs = wheelmeta.read(wheel_file(config)).requires_python
    if python and needs and not wheelmeta.requires_python_allows(needs, python):
        raise UserError(f"{config.package} {config.version} requires Python {needs}: "
                        f"drop {python} from pythons=")


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
    paths = P.paths(config)
    epoch = json.loads(paths.source_record.read_text())["epoch"]
    about = meta.about
    assemble(Package(meta.name, meta.version, subdir, P.build_string(python, meta.build_number),
                     meta.build_number, tuple(depends(meta, python)), "python" if python is None else None,
                     {key: about.get(key) or None for key in ("home", "license", "license_family", "summary",
                                                              "description")}, epoch),
             stage, output, paths.work, recipe_dir=paths.recipe_dir,
             license_files=license_files(about.get("license_file"), paths.source_tree, paths.recipe_dir),
             extras=about_extras(meta, paths))


@dataclasses.dataclass(frozen=True)
class Package:
    """What index.json and about.json say of a package, whoever staged its files."""

    name: str
    version: str
    subdir: str
    build_string: str
    build_number: int
    depends: tuple[str, ...]
    noarch: str | None
    about: dict  # home, license, license_family, summary, description: a string or None each
    epoch: int   # every entry's mtime and index.json's timestamp, so rebuilds are identical


def assemble(package: Package, stage: Path, output: Path, work: Path, *, recipe_dir: Path | None = None,
             license_files: Sequence[Path] = (), info_only: bool = False,
             extras: dict[str, Any] | None = None) -> None:
    """Pack a staging prefix as `output` (its suffix chooses the format) with py-rattler-build's
    assemble_package, then complete info/ as conda-build would (convert.complete).

    info_only: assemble_package writes info/ alone and the payload goes from the stage straight
    into the final archive, not through an intermediate one (a wheel's repack, where that pass
    was a fifth of the cost; the sdist builds keep their bytes as they were).  extras: about.json
    keys assemble_package has no argument for (convert.complete)."""
    from rattler_build import ArchiveType, RattlerBuildError, assemble_package

    from .archive import read_folder

    about = package.about
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pack-", dir=work) as tmp:
        files_dir = fsio.fresh_dir(Path(tmp) / "empty") if info_only else stage
        try:
            packed = assemble_package(
                package.name, package.version, package.subdir, package.build_string, Path(tmp) / "out",
                files_dir=files_dir, depends=list(package.depends), build_number=package.build_number,
                noarch=package.noarch, homepage=about.get("home"), license=about.get("license"),
                license_family=about.get("license_family"), summary=about.get("summary"),
                description=about.get("description"), recipe_dir=recipe_dir,
                license_files=[str(path) for path in license_files] or None,
                archive_type=ArchiveType.Conda, compression_level=1, detect_prefix=False,
                timestamp=datetime.datetime.fromtimestamp(package.epoch, datetime.timezone.utc),
            )
        except RattlerBuildError as err:
            raise UserError(f"could not assemble {package.name} for {package.subdir} ({err}): check the recipe") from None
        # Packed fast (.conda, zstd level 1: a tenth of bzip2's time to write and to read back;
        # no prefix scan, which complete does), then completed and compressed once, in the final format.
        convert.complete(Path(packed.path), output, about=extras, payload=read_folder(stage) if info_only else None)


def license_names(value: str | Sequence[str] | None) -> list[str]:
    """about/license_file as a list: conda-build takes one file name or a list of them."""
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(name) for name in value if name]


def license_files(value: str | Sequence[str] | None, source: Path, recipe_dir: Path) -> list[Path]:
    """The license files conda-build ships under info/licenses/, each looked for in the source
    tree, then beside the recipe.  One in neither is left out (conda-build would stop): grayskull
    writes a placeholder name when it finds none, and that must not stop a release."""
    found = (next((folder / name for folder in (source, recipe_dir) if (folder / name).is_file()), None)
             for name in license_names(value))
    # They land in info/licenses/ by file name: a vendored library's LICENSE beside the
    # package's own would be a second member of the same name, which installers refuse.
    shipped: dict[str, Path] = {}
    for path in found:
        if path is not None:
            shipped.setdefault(path.name, path)
    return list(shipped.values())


def about_extras(meta: render.Rendered, paths: P.Paths) -> dict[str, Any]:
    """What conda-build's info/about.json holds beyond assemble_package's fields: doc_url,
    dev_url, license_file (as the recipe gives it) and `extra` (the recipe maintainers)."""
    about = meta.about
    extras: dict[str, Any] = {key: about[key] for key in ("doc_url", "dev_url", "license_family") if about.get(key)}
    shipped = [path.name for path in license_files(about.get("license_file"), paths.source_tree, paths.recipe_dir)]
    if shipped:  # as conda-build writes it: one name, or a list of several
        extras["license_file"] = shipped[0] if len(shipped) == 1 else shipped
    extra = recipe.extra(paths.meta.read_text(encoding="utf-8"))
    if extra:
        extras["extra"] = extra
    return extras
