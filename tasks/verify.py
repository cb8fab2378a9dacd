"""`verify`: the walkthrough's last step, "test the deployment", done every release.

1. Every published artifact is read back with py-rattler (index.json, paths.json) and every
   file's sha256 and size in paths.json is checked against the archive's bytes.
2. The packages for this machine's subdir are installed with py-rattler from the published local
   channel into a temporary prefix.  `python` and the run dependencies come from a throw-away
   channel of empty stand-ins, so the check needs no network and no real interpreter.
3. The recipe's test imports are run by the host Python against that prefix, where it can: an
   import that fails for want of a third-party dependency is reported as skipped, not passed.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from . import fsio, render, subdirs
from . import project as P
from .config import Config
from .errors import UserError


def check_archive(path: Path) -> dict[str, Any]:
    """Read index.json and paths.json with py-rattler and check them against the payload bytes."""
    from conda_package_streaming.package_streaming import stream_conda_component
    from rattler.package import IndexJson, PathsJson

    try:
        index = IndexJson.from_package_archive(path)
        declared = {str(e.relative_path): e for e in PathsJson.from_package_archive(path).paths}
        actual: dict[str, tuple[str, int]] = {}
        with open(path, "rb") as handle:
            for tar, member in stream_conda_component(path.name, handle, "pkg"):
                if member.isfile() and not member.name.startswith("info/"):
                    data = tar.extractfile(member).read()
                    actual[member.name] = (hashlib.sha256(data).hexdigest(), len(data))
    except Exception as err:  # rattler and tarfile raise many types for a damaged archive
        raise UserError(f"{path.name} is corrupt or not a conda package ({str(err).splitlines()[0]}): "
                        "delete it and run doit to rebuild it") from None
    _compare(path.name, declared, actual)
    return {"file": path.name, "subdir": index.subdir, "files": len(declared)}


def _compare(name: str, declared: dict[str, Any], actual: dict[str, tuple[str, int]]) -> None:
    for relative, entry in declared.items():
        if entry.path_type.softlink:
            continue
        if relative not in actual:
            raise UserError(f"{name}: paths.json lists {relative}, which the archive lacks: delete it and run doit to rebuild it")
        sha, size = actual[relative]
        if (entry.sha256 and entry.sha256.hex() != sha) or (entry.size_in_bytes not in (None, size)):
            raise UserError(f"{name}: {relative} does not match its paths.json hash or size: delete it and run doit to rebuild it")
    extra = sorted(set(actual) - set(declared))
    if extra:
        raise UserError(f"{name}: {extra[0]} is in the archive but not in paths.json: delete it and run doit to rebuild it")


def install_check(config: Config, artifacts: Sequence[P.Artifact], subdir: str,
                  meta_text: str) -> list[dict[str, Any]]:
    """Install each artifact for `subdir` from the channel into a fresh prefix; run its tests."""
    results = []
    for artifact in artifacts:
        meta = render.render(meta_text, artifact.python, artifact.subdir)
        with tempfile.TemporaryDirectory(prefix="verify-", dir=P.paths(config).work) as tmp:
            prefix = _install(config, artifact, subdir, meta, Path(tmp))
            tests = tests_of(config, artifact, meta, prefix, Path(tmp))
            results.append({"file": artifact.key, "installed": True, **tests})
    return results


def wheel_install_check(config: Config, artifacts: Sequence[P.Artifact], native: str) -> list[dict[str, Any]]:
    """binaries=wheels: install every artifact for its own subdir (rattler links any platform's
    package); for this machine's subdir, run the wheel's imports (its extension modules too)."""
    results = []
    for artifact in artifacts:
        wheel, meta = _wheel_meta(config, artifact)
        with tempfile.TemporaryDirectory(prefix="verify-", dir=P.paths(config).work) as tmp:
            prefix = _install(config, artifact, artifact.subdir, meta, Path(tmp))
            if artifact.subdir != native:
                why = f"skipped (a {artifact.subdir} package; this machine is {native})"
                tests = {"imports": {m: why for m in meta.test_imports}, "scripts": {}}
            else:
                tests = tests_of(config, artifact, meta, prefix, Path(tmp), wheel=wheel)
            results.append({"file": artifact.key, "installed": True, **tests})
    return results


def _wheel_meta(config: Config, artifact: P.Artifact) -> tuple[Path, render.Rendered]:
    """With no recipe, the tests come from the wheel: its importable and compiled modules and
    its console scripts."""
    from . import wheelmeta, wheels

    assert artifact.python is not None  # wheels mode builds one package per Python
    choice = P.paths(config).wheel_choice(config.package, config.version, artifact.subdir, artifact.python)
    wheel = wheels.chosen_wheel(choice)
    if wheel is None:
        raise UserError(f"the wheel {artifact.key} was made from is gone from {choice.parent}: run doit again")
    info = wheelmeta.read(wheel)
    imports = tuple(dict.fromkeys([*info.modules, *wheels.extension_modules(wheel)]))
    meta = render.Rendered(config.package, config.version, config.build_number, None, (), (), imports, (),
                           info.console_scripts, None, None, {})
    return wheel, meta


def _install(config: Config, artifact: P.Artifact, subdir: str, meta: render.Rendered, tmp: Path) -> Path:
    import rattler

    from rattler.package import IndexJson

    depends = list(IndexJson.from_package_archive(artifact.path).depends)
    # `__glibc >=2.17`, `__osx >=11.0`: the target system's, given to the solver, never packages.
    virtual = [spec for spec in depends if spec.startswith("__")]
    spec = f"{meta.name} =={meta.version} {artifact.filename.rsplit('-', 1)[1].split('.')[0]}"
    real = [spec for spec in depends if spec not in virtual]
    urls = install_channels(config, lambda: stub_channel(tmp / "stubs", subdir, real))
    channels = [rattler.Channel(url) for url in urls]

    async def solve_and_install() -> None:
        records = await rattler.solve(channels, [spec], platforms=[subdir, "noarch"],
                                      virtual_packages=[_virtual(spec) for spec in virtual],
                                      channel_priority=rattler.ChannelPriority.Disabled)
        await rattler.install(records, tmp / "prefix", cache_dir=tmp / "cache",
                              platform=rattler.Subdir(subdir), show_progress=False)

    try:
        asyncio.run(solve_and_install())
    except Exception as err:  # the solver's and installer's errors are many; report in one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{artifact.key} does not install from the channel ({first}): check its depends") from None
    return tmp / "prefix"


def install_channels(config: Config, stubs: Callable[[], Path]) -> list[str]:
    """Where the install resolves from: the published channel first, then the `channels` setting
    (python and the real dependencies), or, with none given, a throw-away channel of stand-ins
    (py-rattler reads no .condarc, so "the user's configuration" would be nothing; offline)."""
    published = published_channel(config)
    return [published, *config.channels] if config.channels else [published, stubs().as_uri()]


def _virtual(spec: str):
    """The system a virtual-package spec asks for, at its floor (`__glibc >=2.17` -> 2.17)."""
    import rattler

    name, version = stub_version(spec)
    return rattler.GenericVirtualPackage(rattler.PackageName(name), rattler.Version(version), rattler.BuildString("0"))


def stub_channel(folder: Path, subdir: str, depends: Sequence[str]) -> Path:
    """A channel of empty stand-ins for python and every dependency, at versions the specs accept."""
    import rattler.index
    from rattler_build import ArchiveType, assemble_package

    empty = fsio.fresh_dir(folder / "empty")
    stamp = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    for spec in depends:
        name, version = stub_version(spec)
        assemble_package(name, version, subdir, "stub_0", folder / subdir, files_dir=empty,
                         archive_type=ArchiveType.TarBz2, timestamp=stamp)
    (folder / "noarch").mkdir(exist_ok=True)
    for name in dict.fromkeys((subdir, "noarch")):  # plain repodata.json is all rattler reads here
        asyncio.run(rattler.index.index_fs(folder, target_platform=rattler.Subdir(name),
                                           write_zst=False, write_shards=False))
    return folder


def stub_version(spec: str) -> tuple[str, str]:
    """A (name, version) that satisfies a simple match spec: its lowest named bound, or 0."""
    name, _, constraint = spec.strip().partition(" ")
    bounds = re.findall(r"(<=|>=|==|!=|~=|<|>|=)?\s*([0-9][0-9A-Za-z.*]*)", constraint.split("|")[0])
    for operator, version in bounds:  # upper bounds (`<2`) and exclusions say nothing of a floor
        if operator in ("==", ">=", "~=", "=", ""):
            return name, version.rstrip(".*") or "0"
        if operator == ">":
            return name, version + ".1"
    return name, "0"


def tests_of(config: Config, artifact: P.Artifact, meta: render.Rendered, prefix: Path,
             tmp: Path, wheel: Path | None = None) -> dict[str, dict[str, str]]:
    """The recipe's test imports and each console script's `--help` (or `--version`), run by this
    machine's Python from the installed prefix with the run dependencies beside it, fetched by
    pip as conda would resolve them.  Only a build for this machine's Python can be run."""
    scripts = [entry.split("=")[0].strip() for entry in meta.entry_points]
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    if artifact.python not in (None, host):
        why = f"skipped (a Python {artifact.python} build; this machine runs {host})"
        return {"imports": {m: why for m in meta.test_imports}, "scripts": {s: why for s in scripts}}
    site = _site_packages(prefix, artifact.python, subdirs.is_windows(artifact.subdir))
    log = P.paths(config).log(f"check-{artifact.python or 'noarch'}")
    deps, missing = _run_dependencies(config, tmp / "deps", log, wheel)
    folders = [site] + ([deps] if deps else [])
    imports = {m: _judge(_python(folders, f"import {m}", prefix), m, site, missing) for m in meta.test_imports}
    failed = [f"import {m} {r}" for m, r in imports.items() if r.startswith("failed")]
    if failed:
        raise UserError(f"{artifact.key}: {failed[0]}: fix the package or the recipe's test imports")
    ran = {name: _script(folders, prefix, name, subdirs.is_windows(artifact.subdir)) for name in scripts}
    failed = [f"{name} {r}" for name, r in ran.items() if r.startswith("failed")]
    if failed:
        raise UserError(f"{artifact.key}: console script {failed[0]}: fix the entry point or the package")
    return {"imports": imports, "scripts": ran}


def _site_packages(prefix: Path, python: str | None, windows: bool = False) -> Path:
    """Where the package landed: a noarch one goes to the site-packages of the prefix's python;
    a Windows package (checked on a Windows runner) keeps it in Lib/, as conda lays it out there."""
    if python is None:
        found = sorted(prefix.glob("lib/python*/site-packages")) + sorted(prefix.glob("Lib/site-packages"))
        return found[0] if found else prefix / "site-packages"
    return prefix / "Lib" / "site-packages" if windows else prefix / f"lib/python{python}/site-packages"


def _run_dependencies(config: Config, folder: Path, log: Path, wheel: Path | None = None) -> tuple[Path | None, str]:
    """pip installs the wheel's run requirements (markers as pip evaluates them here) into a
    throw-away folder; (None, why) when pip cannot."""
    from . import build, logs, wheelmeta
    from .runner import pip, run as run_tool

    try:
        requires = list(wheelmeta.read(wheel or build.wheel_file(config)).requires)
    except (OSError, KeyError, ValueError, UserError):
        requires = []  # the conda engine built without a wheel: the recipe's own test decides
    if not requires:
        return None, ""
    result = run_tool(pip("install", "--quiet", "--prefer-binary", "--no-warn-script-location",
                          "--target", str(folder), *requires))
    logs.write(log, result)
    if result.returncode != 0:
        return None, f"its run dependencies could not be fetched: {logs.last_error(result.stderr)}; see {logs.shown(log)}"
    return folder, ""


# Run in the host Python with -S: the prefix's site-packages and the fetched dependencies are the
# only site folders (their .pth files processed), so nothing of this tool's own venv leaks in.
_BOOT = "import os, site, sys\nfor folder in sys.argv[1].split(os.pathsep):\n    site.addsitedir(folder)\n"


def _python(folders: Sequence[Path], code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    boot = _BOOT + "sys.argv = sys.argv[2:]\n" + code
    argv = [sys.executable, "-S", "-c", boot, os.pathsep.join(map(str, folders)), *args]
    try:
        return subprocess.run(argv, cwd=cwd, env={"PYTHONNOUSERSITE": "1", "PATH": os.environ.get("PATH", ""),
                                                 "HOME": str(cwd), "TERM": "dumb"},
                              capture_output=True, text=True, check=False, timeout=120, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 1, "", "did not finish within 120 s")


def _judge(proc: subprocess.CompletedProcess, module: str, site: Path, missing: str) -> str:
    if proc.returncode == 0:
        return "ok"
    absent = re.search(r"No module named '([^']+)'", proc.stderr)
    if missing and absent and not (site / absent.group(1).split(".")[0]).exists():
        return f"skipped ({missing})"
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return f"failed ({last.strip()})"


def _script(folders: Sequence[Path], prefix: Path, name: str, windows: bool = False) -> str:
    """A console script runs when `--help` or `--version` exits 0 (some take only one).  On
    Windows the script is Scripts/NAME-script.py (beside the NAME.exe launcher that runs it)."""
    script = prefix / "Scripts" / f"{name}-script.py" if windows else prefix / "bin" / name
    if not script.is_file():
        return f"failed (not installed in {script.parent.name}/)"
    run_it = "import runpy\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    for flag in ("--help", "--version"):
        proc = _python(folders, run_it, prefix, str(script), flag)
        if proc.returncode == 0:
            return f"{flag} ok"
    said = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
    return f"failed ({said.strip()[:160]})"


def _installer(config: Config) -> Callable[..., list[dict[str, Any]]]:
    """conda itself installs when the conda engine made a local channel; py-rattler otherwise."""
    if config.engine == "conda" and config.target == "local":
        from .conda_engine import install_check as conda_install_check

        return conda_install_check
    return install_check


def published_channel(config: Config) -> str | None:
    """The conda channel the release went to: the local folder, or the configured channel-url."""
    if config.target == "local":
        return P.paths(config).channel.as_uri()
    return config.channel_url or None


def check(config: Config, build: str, artifacts: Sequence[P.Artifact], subdir: str) -> None:
    """`check:<python>`: check one build's archives, install the one for this platform, then
    write its check stamp (last).  One task per build, so `doit -n 2` checks them side by side."""
    stamp = P.check_stamp(config, build)
    for old in (stamp, P.verify_stamp(config)):  # a failed check leaves no verify stamp standing
        old.unlink(missing_ok=True)
    archives = [check_archive(a.path) for a in artifacts]
    mine = [a for a in artifacts if a.subdir in (subdir, "noarch")]
    installs: list[dict[str, Any]] = []
    if published_channel(config) is not None and config.binaries == "wheels":
        installs = wheel_install_check(config, artifacts, subdir)
    elif published_channel(config) is not None and mine:
        meta_text = P.paths(config).meta.read_text(encoding="utf-8")
        installs = _installer(config)(config, mine, subdir, meta_text)
    fsio.write_json(stamp, {"archives": archives, "installs": installs})


def run(config: Config, builds: Sequence[str]) -> None:
    """`verify`: every build's check stamp merged into the verify stamp, and the results shown."""
    records = [json.loads(P.check_stamp(config, build).read_text()) for build in builds]
    archives = [entry for record in records for entry in record["archives"]]
    installs = [entry for record in records for entry in record["installs"]]
    if published_channel(config) is None:
        print(f"install check skipped: give channel-url= (the conda channel of {config.owner}) to install "
              "from what was published")
    fsio.write_json(P.verify_stamp(config), {"archives": archives, "installs": installs})
    for item in installs:
        print(f"verified {item['file']}: {said(item)}")


def said(item: dict[str, Any]) -> str:
    """One install's tests in a line: `import x ok, x --help ok`; one reason once when all skipped."""
    results = {f"import {m}": r for m, r in item["imports"].items()}
    results |= {name: r for name, r in item.get("scripts", {}).items()}
    if not results:
        return "installed (the recipe has no tests)"
    reasons = set(results.values())
    if len(reasons) == 1 and next(iter(reasons)).startswith("skipped"):
        return f"installed; tests {next(iter(reasons))}"
    return ", ".join(f"{name} {result}" for name, result in results.items())

