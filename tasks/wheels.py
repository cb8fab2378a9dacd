"""`select` and `pack:<subdir>/<python>` (binaries=wheels): each subdir's package from its own wheel.

A compiled package cannot be converted between platforms, but most publish a wheel per platform
(cibuildwheel, maturin, meson-python): those are the native builds.  `select` asks pip for the
best wheel of each (subdir, Python) (so the user's index settings apply; pip checks the index's
hash) and caches it in build/downloads; `pack` installs it into a staging prefix laid out as
conda-build lays out that subdir and packs it with the engine's own packer (build.assemble).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import functools
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import fsio, logs, plan, subdirs, wheeltags
from . import project as P
from .config import Config
from .errors import UserError
from .plan import Pack
from .runner import Runner, pip, run

if TYPE_CHECKING:
    from . import wheelmeta

# Loaded by dodo.py on every run with binaries=wheels (for `gaps`): what only `pack` needs
# (installer, rattler-build, the converter) is imported there.

_NOT_FOUND = ("No matching distribution found", "Could not find a version that satisfies")
_PARALLEL = 3  # pip calls at once: each waits on the index far more than on the CPU


# --- select ------------------------------------------------------------------------------------


def select(config: Config, packs: Sequence[Pack], runner: Runner = run) -> None:
    """Record the wheel of each (subdir, Python); one line names every one that has none.  With
    platforms=all, those are recorded as gaps and left out instead (`gaps`)."""
    todo = [pack for pack in packs if chosen_wheel(pack.choice) is None]
    with concurrent.futures.ThreadPoolExecutor(_PARALLEL) as pool:
        found = list(pool.map(lambda pack: _choose(config, pack, runner), todo))
    missing = [pack.name for pack, wheel in zip(todo, found) if wheel is None]
    if config.all_platforms:
        _record_gaps(config, [pack.name for pack in packs], missing)
        if missing:
            print(f"no wheel of {config.package} {config.version} for {', '.join(missing)}: "
                  "left out of platforms=all")
        return
    if missing:
        asked = [subdir for subdir in config.platforms
                 if not any(name.startswith(subdir + "/") for name in missing)]
        keep = f"platforms={','.join(asked)}" if asked else "another version"
        raise UserError(f"{config.package} {config.version} has no wheel for {', '.join(missing)}: drop them from "
                        f"platforms= ({keep}), or build natively on those platforms (binaries=build engine=conda)")


def gaps(config: Config, runner: Runner = run) -> frozenset[str]:
    """platforms=all: the `subdir/python` pairs the index has no wheel for, so that planning
    leaves them out.  Read from build/downloads; pairs never asked are asked first (pip, once:
    what the plan holds depends on the answer)."""
    if not config.all_platforms:
        return frozenset()
    pairs = plan.wheel_pairs(config)
    asked, missing = _read_gaps(config)
    if not set(pairs) <= asked:
        print(f"choosing {config.package} {config.version}'s wheels for platforms=all")
        packs = plan.make(config, "", frozenset()).packs
        select(config, [pack for pack in packs if pack.name not in asked], runner)
        asked, missing = _read_gaps(config)
    return frozenset(missing & set(pairs))


def _read_gaps(config: Config) -> tuple[set[str], set[str]]:
    try:
        record = json.loads(P.paths(config).wheel_gaps(config.package, config.version).read_text())
        return set(record["asked"]), set(record["missing"])
    except (OSError, ValueError, KeyError, TypeError):
        return set(), set()


def _record_gaps(config: Config, asked: list[str], missing: list[str]) -> None:
    before_asked, before_missing = _read_gaps(config)
    fsio.write_json(P.paths(config).wheel_gaps(config.package, config.version), {
        "asked": sorted(before_asked | set(asked)),
        "missing": sorted((before_missing - set(asked)) | set(missing)),
    })


def chosen_wheel(choice: Path) -> Path | None:
    """The cached wheel a choice names, if the choice is there and the wheel still has its hash."""
    try:
        record = json.loads(choice.read_text())
    except (OSError, ValueError):
        return None
    wheel = choice.parent / record.get("wheel", "")
    if not wheel.is_file() or fsio.file_digests(wheel)["sha256"] != record.get("sha256"):
        return None
    return wheel


def download_argv(config: Config, subdir: str, python: str, dest: str) -> list[str]:
    """pip download of the one best wheel for subdir and CPython X.Y (tags best first)."""
    return pip("download", "--no-deps", "--only-binary=:all:", *wheeltags.pip_platform_args(subdir),
               *wheeltags.pip_python_args(python), "--dest", dest, f"{config.package}=={config.version}")


def _choose(config: Config, pack: Pack, runner: Runner) -> Path | None:
    """Download the wheel of one (subdir, Python) into the cache and record it; None if none exists."""
    if not wheeltags.platform_tags(pack.subdir):
        return None  # linux-armv6l, say: no wheel tag describes it
    cache = pack.choice.parent
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".select-", dir=cache) as tmp:
        result = runner(download_argv(config, pack.subdir, pack.python, tmp))
        if result.returncode != 0 and any(text in result.stderr for text in _NOT_FOUND):
            return None
        log = P.paths(config).log(f"select-{pack.subdir}-{P.pytag(pack.python)}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            logs.write(log, result)
            raise UserError(f"pip could not download {config.package}=={config.version} for {pack.name} "
                            f"({logs.last_error(result.stderr or result.stdout)}; see {logs.shown(log)}): "
                            "check the network and pip's index settings")
        if not wheeltags.serves(wheels[0].name, pack.subdir, pack.python):
            return None  # an index that ignores the tags asked (a plain folder of files) gave another
        wheel = cache / wheels[0].name
        os.replace(wheels[0], wheel)  # the same file whichever (subdir, Python) fetched it
    fsio.write_json(pack.choice, {"wheel": wheel.name, "sha256": fsio.file_digests(wheel)["sha256"],
                                  "subdir": pack.subdir, "python": pack.python})
    return wheel


# --- pack --------------------------------------------------------------------------------------


def pack(config: Config, item: Pack) -> None:
    """The conda package of one (subdir, Python), from the wheel `select` chose for it."""
    from . import build, wheelmeta

    wheel = chosen_wheel(item.choice)
    if wheel is None:
        raise UserError(f"the wheel chosen for {item.name} is missing or changed in {item.choice.parent}: "
                        f"delete {item.choice.name} there and run doit again")
    info = wheelmeta.read(wheel)
    if info.requires_python and not wheelmeta.requires_python_allows(info.requires_python, item.python):
        raise UserError(f"{config.package} {config.version} requires Python {info.requires_python}: "
                        f"drop {item.python} from pythons=")
    paths = P.paths(config)
    stage = fsio.fresh_dir(paths.wheel_stage(item.subdir, item.python))
    install(wheel, stage, item.subdir, item.python)
    package = build.Package(
        config.package, config.version, item.subdir, P.build_string(item.python, config.build_number),
        config.build_number, tuple(depends(info, wheel.name, item.subdir, item.python)), None,
        {"home": info.home or None, "license": info.license or None, "license_family": None,
         "summary": info.summary or None, "description": None}, wheel_epoch(wheel))
    build.assemble(package, stage, item.artifact.path, paths.work, license_files=license_files(stage, info),
                   info_only=True)


def layout(subdir: str, python: str) -> dict[str, str]:
    """Where each wheel scheme goes in a conda prefix of subdir, as conda-build's pip install
    puts it: site-packages for purelib and platlib, bin/ or Scripts/, include/, and the `data`
    scheme at the prefix root."""
    windows = subdirs.is_windows(subdir)
    lib = "Lib/site-packages" if windows else f"lib/python{python}/site-packages"
    return {"purelib": lib, "platlib": lib, "scripts": "Scripts" if windows else "bin",
            "headers": "include", "data": ""}


def install(wheel: Path, stage: Path, subdir: str, python: str) -> None:
    """The wheel installed by `installer` into stage, laid out for subdir."""
    from installer import install as install_wheel
    from installer.sources import WheelFile

    scheme = {name: str(stage / folder) if folder else str(stage) for name, folder in layout(subdir, python).items()}
    destination = _conda_destination()(scheme, subdir)
    with WheelFile.open(wheel) as source:
        install_wheel(source, destination, additional_metadata={"INSTALLER": b"conda\n"})


@functools.cache
def _conda_destination():
    from installer.destinations import SchemeDictionaryDestination

    from . import build, convert

    class CondaDestination(SchemeDictionaryDestination):
        """installer's destination with conda's entry points: on unix `bin/NAME` with the prefix
        placeholder in its shebang (conda rewrites it at install); on Windows `Scripts/NAME-script.py`
        beside a launcher exe, as conda-build writes them (installer's own would be one .exe each)."""

        def __init__(self, scheme: dict[str, str], subdir: str) -> None:
            windows = subdirs.is_windows(subdir)
            python = f"{build.PLACEHOLDER}/python.exe" if windows else f"{build.PLACEHOLDER}/bin/python"
            super().__init__(scheme, interpreter=python, script_kind="posix")
            self.subdir, self.windows, self.launchers = subdir, windows, []

        def write_script(self, name, module, attr, section):
            if not self.windows:
                return super().write_script(name, module, attr, section)
            from installer.scripts import Script

            _, script = Script(name, module, attr, section).generate(self.interpreter, "posix")
            body = convert._strip_shebang(script)  # the launcher runs the prefix's python.exe
            record = self.write_file("scripts", f"{name}-script.py", io.BytesIO(body), is_executable=False)
            exe = self.write_file("scripts", f"{name}.exe", io.BytesIO(launcher(self.subdir, section)), is_executable=True)
            self.launchers.append(("scripts", exe))
            return record

        def finalize_installation(self, scheme, record_file_path, records):
            super().finalize_installation(scheme, record_file_path, [*records, *self.launchers])

    return CondaDestination


def launcher(subdir: str, section: str) -> bytes:
    """The launcher for an entry point: a GUI one (no console window) where win_cli_launchers
    ships it, the console launcher otherwise (0.1 ships only cli-32/cli-64)."""
    import win_cli_launchers

    from . import convert

    if section == "gui":
        bits = {"win-32": "32", "win-64": "64", "win-arm64": "arm64"}[subdir]
        gui = Path(win_cli_launchers.__file__).parent / f"gui-{bits}.exe"
        if gui.is_file():
            return gui.read_bytes()
    return convert._launcher(subdir)


def depends(info: wheelmeta.WheelInfo, wheel_name: str, subdir: str, python: str) -> list[str]:
    """Python pinned to the minor version, the run requirements whose markers hold for this
    Python and subdir (in conda-forge names), and the floor the wheel's platform tag sets."""
    from packaging.requirements import Requirement

    from . import wheelmeta

    major, minor = python.split(".")
    specs = [f"python >={python},<{major}.{int(minor) + 1}.0a0"]
    environment = wheeltags.marker_environment(subdir, python)
    for text in info.requires:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        requirement.marker = None
        converted = wheelmeta.conda_spec(str(requirement))
        if converted is not None:
            specs.append(converted[0])
    floor = wheeltags.floor(wheel_name, subdir)
    return specs + ([floor] if floor else [])


def license_files(stage: Path, info: wheelmeta.WheelInfo) -> tuple[Path, ...]:
    """The license files the wheel's dist-info holds: `licenses/NAME` (metadata 2.4) or, as
    older setuptools wrote them, `NAME` at the dist-info's top."""
    found: list[Path] = []
    for dist_info in sorted(stage.glob("**/*.dist-info")):
        for name in info.license_files:
            for candidate in (dist_info / "licenses" / name, dist_info / name):
                if candidate.is_file():
                    found.append(candidate)
                    break
    return tuple(found)


def extension_modules(wheel: Path) -> tuple[str, ...]:
    """The compiled modules a wheel ships (`msgpack/_cmsgpack.cpython-311-x86_64-linux-gnu.so`
    -> `msgpack._cmsgpack`): importing them, not only the package, proves the native code loads,
    where a package with a pure fallback would import without it.  Vendored libraries (auditwheel's
    `NAME.libs/`, delocate's `.dylibs/`) sit in folders no import reaches, and are left out."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    found = []
    for name in names:
        folders, _, file = name.rpartition("/")
        if not file.endswith((".so", ".pyd")) or ".data/" in name or ".dist-info/" in name:
            continue
        parts = [*filter(None, folders.split("/")), file.split(".", 1)[0]]
        if all(part.isidentifier() for part in parts):
            found.append(".".join(parts))
    return tuple(sorted(dict.fromkeys(found)))


def wheel_epoch(wheel: Path) -> int:
    """The newest member's date in the wheel: the package's timestamp, so a repack of the same
    wheel is byte-identical whenever it runs."""
    with zipfile.ZipFile(wheel) as archive:
        newest = max((entry.date_time for entry in archive.infolist()), default=(1980, 1, 1, 0, 0, 0))
    return int(datetime.datetime(*newest, tzinfo=datetime.timezone.utc).timestamp())
