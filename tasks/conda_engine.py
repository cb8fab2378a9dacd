"""The conda engine: the walkthrough's own tools (`conda skeleton`, `conda-build`, `conda convert`,
`conda create`) driving the same tasks, targets and stamps as the embedded engine.

conda and conda-build cannot be installed on this project's machines, so this engine is tested
by contract: the argv builders and output parsers below are pure and checked against conda-build's
documented command lines and output (tests/test_conda_engine.py), and a stand-in `conda` /
`conda-build` on PATH (tests/fake_conda/) drives the actions end to end.  Nothing here has run
against a real conda-build in CI.

Rules every command here follows:
- argv lists, never a shell string; no token on any command line;
- no global configuration change (never `conda config --set ...`): the walkthrough's
  `conda config --set anaconda_upload no` becomes the per-run flag `--no-anaconda-upload`;
- every output is checked where the tool said it would be, because several conda-build versions
  print one path and write another (conda-build issues #2189, #2306, #5567).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from . import fsio
from . import project as P
from .config import Config
from .errors import UserError
from .runner import Result, Runner, pip, run

INSTALL = "conda install conda-build anaconda-client"
# conda-build 24.11 added --package-format; older ones reject the flag (and 25.1+ default to .conda).
PACKAGE_FORMAT_SINCE = (24, 11)
_PACKAGE = re.compile(r"\.(tar\.bz2|conda)$")
_VERSION = re.compile(r"(\d+(?:\.\d+)+)")
# `anaconda --version` (old clients: "anaconda Command line client (version 1.7.2)") or the
# `anaconda versions` table of anaconda-cli-base clients ("│ anaconda-client │ 1.16.0 │").
_CLIENT_VERSION = re.compile(r"client\W+(?:version\s+)?(\d+(?:\.\d+)+)")
# Settings whose value "conda" runs a conda-build command, and the setting that avoids it.
_ALTERNATIVES = {"engine": "embedded", "skeleton": "grayskull", "converter": "in-house"}


# --- which engine, which tools ----------------------------------------------------------------


def resolve(engine: str, which: Callable[[str], str | None] = shutil.which) -> str:
    """`auto` -> `conda` when conda-build is on PATH, else `embedded`; `conda` needs conda-build."""
    found = which("conda-build") is not None
    if engine == "auto":
        return "conda" if found else "embedded"
    if engine == "conda" and not found:
        raise UserError(f"engine=conda needs conda-build on PATH: {INSTALL}, or use engine=embedded")
    return engine


def toolchain(config: Config, runner: Runner = run,
              which: Callable[[str], str | None] = shutil.which) -> dict[str, str]:
    """The engine in use and the versions of the conda tools the settings need.

    A missing or unusable tool ends in one line naming what to install, before any task runs it.
    """
    engine = resolve(config.engine, which)
    report = {"engine": engine}
    users = conda_settings(config, engine)
    if not users:
        return report
    if which("conda-build") is None:
        name = users[0]
        raise UserError(f"{name}=conda needs conda-build on PATH: {INSTALL}, or use {name}={_ALTERNATIVES[name]}")
    report["conda"] = _version(runner, ["conda", "--version"])
    report["conda-build"] = _version(runner, ["conda-build", "--version"])
    if engine == "conda":
        check_package_format_support(report["conda-build"])
    if config.target == "anaconda":
        report["anaconda-client"] = _anaconda_version(runner)
    return report


def report(config: Config) -> None:
    """The `toolchain` task: print the engine and tool versions (or stop on a missing tool)."""
    print(", ".join(f"{name} {version}" for name, version in toolchain(config).items()))


def conda_settings(config: Config, engine: str) -> list[str]:
    """The settings (of engine, skeleton, converter) that run a conda-build command."""
    values = {"engine": engine, "skeleton": config.skeleton, "converter": config.converter}
    return [name for name, value in values.items() if value == "conda"]


def check_package_format_support(version: str) -> None:
    """The conda engine always passes --package-format, which conda-build < 24.11 rejects."""
    if _numbers(version) < PACKAGE_FORMAT_SINCE:
        raise UserError(f"conda-build {version} predates --package-format (24.11): conda update conda-build, "
                        "or use engine=embedded")


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _version(runner: Runner, argv: list[str]) -> str:
    result = _call(runner, argv)
    # Old conda printed its version on stderr: read both streams.
    match = _VERSION.search(result.stdout + result.stderr)
    if result.returncode != 0 or not match:
        raise UserError(f"`{' '.join(argv)}` does not answer ({_said(result)}): reinstall with {INSTALL}")
    return match.group(1)


def _anaconda_version(runner: Runner) -> str:
    """anaconda-client's version; clients built on anaconda-cli-base answer `versions`, not --version."""
    quiet = {"ANACONDA_TELEMETRY_ENABLED": "false"}  # telemetry costs ~0.7 s a call
    for argv in (["anaconda", "--version"], ["anaconda", "versions"]):
        result = _call(runner, argv, env=quiet)
        match = _CLIENT_VERSION.search(result.stdout + result.stderr)
        if result.returncode == 0 and match:
            return match.group(1)
    raise UserError(f"target=anaconda needs anaconda-client on PATH (anaconda did not say its version): {INSTALL}")


def _call(runner: Runner, argv: Sequence[str], **kwargs: Any) -> Result:
    """Run argv; a tool that is not there is the user's to install, not a traceback."""
    try:
        return runner(argv, **kwargs)
    except OSError as err:
        raise UserError(f"cannot run {argv[0]} ({err.strerror or err}): {INSTALL}") from None


# The line naming the cause: `RuntimeError: …`, `conda_build.exceptions.CondaBuildUserError: …`,
# `PackagesNotFoundError: …`.  conda's error report ends with boilerplate under it (`Example:
# CONDA_NO_PLUGINS=true conda install <package>`), so the last line is rarely the cause.
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Failure)(?:\([^)]*\))?: \S")


def _said(result: Result) -> str:
    """The tool's exception line (the last one, stderr first), else its last line: stderr first
    (tracebacks), else stdout, where conda-build's main() prints the errors it catches."""
    for stream in (result.stderr, result.stdout):
        lines = [line.strip() for line in stream.splitlines() if line.strip()]
        causes = [line for line in lines if _EXCEPTION.match(line)]
        if causes:
            return causes[-1]
    for stream in (result.stderr, result.stdout):
        lines = [line.strip() for line in stream.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"exit status {result.returncode}, no output"


def _failed(result: Result, log: Path) -> str:
    """Keep a failed tool's whole output in log (build/logs/…); the words for the error line:
    its exception line and where the rest is."""
    fsio.write_text(log, f"$ {' '.join(result.argv)}\n# exit status {result.returncode}\n"
                         f"# stdout\n{result.stdout}\n# stderr\n{result.stderr}")
    return f"{_said(result)}; full output in {log}"


# --- skeleton ---------------------------------------------------------------------------------


def skeleton_argv(package: str, version: str, output_dir: Path | str, python: str | None = None,
                  pypi_url: str | None = None) -> list[str]:
    """`conda skeleton pypi NAME --version V --output-dir D [--python-version X] [--pypi-url U]`.

    --python-version: the first build's, not conda's own Python, decides what setup.py reports;
    --pypi-url: the index pip is configured for, not conda skeleton's legacy default host."""
    argv = ["conda", "skeleton", "pypi", package, "--version", version, "--output-dir", str(output_dir)]
    if python is not None:
        argv += ["--python-version", python]
    if pypi_url is not None:
        argv += ["--pypi-url", pypi_url]
    return argv


def skeleton(config: Config, runner: Runner = run) -> None:
    """`conda skeleton pypi NAME --version V` in a temporary folder under build/work, as the
    walkthrough does (conda skeleton refuses an existing NAME folder), then meta.yaml moved into
    place.  conda-build's root (CONDA_BLD_PATH: its src_cache, the `skeleton_*` folders a failure
    leaves) is inside that folder too, so nothing is written outside the build folder."""
    paths = P.paths(config)
    paths.work.mkdir(parents=True, exist_ok=True)
    python = config.pythons[0] if config.pythons else None
    with tempfile.TemporaryDirectory(prefix="conda-skeleton-", dir=paths.work) as tmp:
        out, root = Path(tmp) / "out", Path(tmp) / "conda-bld"
        argv = skeleton_argv(config.package, config.version, out, python, pypi_api_url(pip_index_url(runner)))
        result = _call(runner, argv, cwd=tmp, env={"CONDA_BLD_PATH": str(root)})
        # conda skeleton writes OUTPUT_DIR/<name, lower-cased>/meta.yaml.
        written = out / config.package.lower() / "meta.yaml"
        if result.returncode != 0 or not written.is_file():
            said = _failed(result, paths.log("conda-skeleton"))
            raise UserError(f"conda skeleton pypi {config.package} wrote no meta.yaml ({said}): "
                            "check the package and version exist on the index, or use skeleton=grayskull")
        fsio.copy_file(written, paths.skeleton)


# `pip config list` lines: `global.index-url='https://…/simple'`, `:env:.index-url='…'`.
_INDEX_URL = re.compile(r"^([^\s=]*)\.index-url='([^']*)'$")
# Which configured value pip's download command uses: its environment variable, then the command's
# own section, then [global].
_INDEX_ORDER = (":env:", "download", "global")
# pip's own default index, asked of pip rather than written here.
_PIP_DEFAULT_INDEX = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"


def pip_index_url(runner: Runner = run) -> str:
    """The index pip is configured for: `pip config list`, else pip's own default index."""
    listed = _call(runner, pip("config", "list"))
    found = dict(match.groups() for line in listed.stdout.splitlines() if (match := _INDEX_URL.match(line.strip())))
    for section in _INDEX_ORDER:
        if found.get(section):
            return found[section]
    default = _call(runner, [sys.executable, "-c", _PIP_DEFAULT_INDEX])
    if default.returncode != 0 or not default.stdout.strip():
        raise UserError(f"cannot read pip's index ({_said(default)}): "
                        "set it with `pip config set global.index-url URL`")
    return default.stdout.strip()


def pypi_api_url(index_url: str) -> str:
    """conda skeleton's --pypi-url is the JSON API root (`…/pypi/`), beside an index's `…/simple`."""
    base = index_url.rstrip("/")
    return (base.removesuffix("/simple") + "/pypi/") if base.endswith("/simple") else base + "/"


# --- build ------------------------------------------------------------------------------------


def build_argv(recipe_dir: Path | str, python: str | None, croot: Path | str,
               output_folder: Path | str | None = None, output: bool = False,
               package_format: str = "tar.bz2", channels: Sequence[str] = ()) -> list[str]:
    """`conda-build RECIPE --python X --croot CROOT --no-anaconda-upload --package-format F
    [-c CH … --override-channels]`.

    channels, when given, replace the user's configured `channels` for this build only (no
    configuration changes); none given, conda-build resolves from the user's configuration, as
    the walkthrough's build did.

    --croot rather than relying on --output-folder: conda-build's --output has ignored
    --output-folder in some versions (#1731, #2306) but honours --croot.  --package-format is
    explicit because conda-build >= 25.1 writes .conda by default and `conda convert` reads only
    .tar.bz2.  python is None for a noarch recipe (conda-build then needs no --python).
    """
    argv = ["conda-build", str(recipe_dir)]
    if python is not None:
        argv += ["--python", python]
    argv += ["--croot", str(croot), "--no-anaconda-upload", "--package-format", package_format]
    if channels:
        argv += [*_channel_args(channels), "--override-channels"]
    if output_folder is not None:
        argv += ["--output-folder", str(output_folder)]
    if output:
        argv.append("--output")
    return argv


def _channel_args(channels: Sequence[str]) -> list[str]:
    return [arg for channel in channels for arg in ("-c", channel)]


# Words conda-build prints before a package path: `TEST END: /…/x.tar.bz2`, `anaconda upload \`
# then the path alone on the next line.
_LEAD = re.compile(r"^[A-Z][A-Za-z ]*:\s+(?=\S*[\\/])")


def parse_output(stdout: str, expected_name: str) -> Path:
    """The path `conda-build --output` gives for expected_name.

    --output prints one path per output and variant, sorted, and some versions mix in log lines
    (#2173) or a `Skipped: ...` line for a configuration the recipe skips; the path may sit under
    another folder than asked (#2306).  So: the line whose file name is expected_name, else a
    UserError naming what conda-build said.
    """
    lines = [_LEAD.sub("", line.strip()) for line in stdout.splitlines() if line.strip()]
    packages = [line for line in lines if _PACKAGE.search(line) and re.search(r"[\\/]", line)]
    for line in packages:
        if _basename(line) == expected_name:
            return Path(line)
    skipped = [line for line in lines if line.startswith("Skipped:")]
    if skipped:
        raise UserError(f"conda-build skips this build ({skipped[0]}): remove build/skip from the recipe "
                        "or drop that Python from pythons")
    if packages:
        names = ", ".join(_basename(line) for line in packages)
        raise UserError(f"conda-build would write {names}, not {expected_name}: {_why(names, expected_name)}")
    said = lines[-1] if lines else "nothing"
    raise UserError(f"conda-build --output named no package (it said: {said}): check that "
                    "`conda render` reads the recipe")


def _basename(line: str) -> str:
    # Split on both separators: conda-build on Windows prints backslashed paths.
    return re.split(r"[\\/]", line)[-1]


def _why(names: str, expected: str) -> str:
    """The likely cause of a name mismatch, as a fix."""
    if _PACKAGE.sub("", expected) in names:
        return "conda-build writes another package format: set format to match, or update conda-build (>= 24.11)"
    return ("its build string differs from the plan's pyXY_N (a variant hash, #5567, or --python ignored, #2189): "
            "give the recipe an explicit build/string, or use engine=embedded")


def build(config: Config, python: str | None, subdir: str, output: Path, runner: Runner = run) -> None:
    """Build, read where the package went from the build's own output, check it is there and
    for this platform, put it at output.

    One run of conda-build, so one render: a separate `--output` first renders the recipe fully
    again (about 7 s for btrdb).  conda-build ends a build run with `anaconda upload <path>` (with
    --no-anaconda-upload) and `TEST END: <path>`, the path it wrote."""
    paths = P.paths(config)
    argv = build_argv(paths.recipe_dir, python, paths.conda_bld, package_format=config.format,
                      channels=config.channels)
    built = _call(runner, argv)
    if built.returncode != 0:
        said = _failed(built, paths.log(f"conda-build-{python or 'noarch'}"))
        raise UserError(f"conda-build failed for python {python or 'noarch'} ({said}): fix the recipe, "
                        "then run doit again")
    promised = parse_output(built.stdout, output.name)
    if promised.parent.name != subdir:
        raise UserError(f"conda-build builds for {promised.parent.name}, the plan for {subdir}: run the conda "
                        "of this machine's platform (an x86 conda under Rosetta builds osx-64)")
    if not promised.is_file():
        raise UserError(f"conda-build exited 0 but wrote no {promised} (found: {_siblings(promised)}): its "
                        "output disagrees with its build (#5567); give the recipe an explicit build/string")
    if promised.resolve() != output.resolve():
        # A user's .condarc `conda_build: output_folder` moves the package; the plan's path is the target.
        fsio.copy_file(promised, output)


def _siblings(promised: Path) -> str:
    name = promised.name.split("-")[0]
    found = sorted(p.name for p in promised.parent.glob(f"{name}-*") if _PACKAGE.search(p.name))
    return ", ".join(found) or "nothing"


# --- convert ----------------------------------------------------------------------------------


def convert_argv(package: Path | str, subdirs: Sequence[str], out_dir: Path | str, force: bool = False) -> list[str]:
    """`conda convert [-f] -p SUBDIR [-p SUBDIR …] -o OUT PKG`.

    The walkthrough always passed -f; here -f follows the `force` setting, as the in-house
    converter does, so a package with compiled code is refused the same way by both converters.
    """
    platforms = [arg for subdir in subdirs for arg in ("-p", subdir)]
    return ["conda", "convert", *(["-f"] if force else []), *platforms, "-o", str(out_dir), str(package)]


def convert_destination(package: Path, subdir: str, out_dir: Path) -> Path:
    """Where `conda convert` writes: OUT/SUBDIR/<the input's file name> (convert.py
    create_target_archive); it never renames a package."""
    return out_dir / subdir / package.name


def convert(source: Path, outputs: Sequence[tuple[str, Path]], runner: Runner = run, *, force: bool = False,
            log: Path | None = None) -> None:
    """One `conda convert` of source for every (subdir, output) pair, into a temporary folder
    beside the outputs, each written file then renamed to its output.

    conda convert exits 0 without writing when it skips (same platform as the source, or, in old
    versions, compiled code without -f), so each file is looked for, not assumed; none is renamed
    into place unless all were written.  conda convert re-packs with the files' current times, so
    converting the same build again gives other bytes: an output already holding the same files
    is kept as it is, and a conversion rerun for one missing platform re-uploads nothing.
    """
    if not source.name.endswith(".tar.bz2"):
        raise UserError(f"{source.name}: conda convert reads only .tar.bz2 packages: use converter=in-house "
                        "(it converts .conda too), or format=tar.bz2")
    if not outputs:
        return
    root = Path(os.path.commonpath([output.parent.parent for _, output in outputs]))
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".conda-convert-", dir=root) as tmp:
        result = _call(runner, convert_argv(source, [subdir for subdir, _ in outputs], tmp, force=force))
        written = [(convert_destination(source, subdir, Path(tmp)), subdir, output) for subdir, output in outputs]
        missing = [subdir for path, subdir, _ in written if not path.is_file()]
        if result.returncode != 0 or missing:
            said = _failed(result, log or P.Paths(root.parent).log(f"conda-convert-{source.name}"))
            what = f"wrote no {', '.join(missing)} package from" if missing else "failed on"
            raise UserError(f"conda convert {what} {source.name} ({said}): "
                            "fix the package, or use converter=in-house")
        for path, _, output in written:
            if output.is_file() and _same_files(path, output):
                continue
            output.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, output)  # same file system, so each rename is atomic


def _same_files(made: Path, held: Path) -> bool:
    """Whether two packages hold the same files (paths, bytes, modes, links), whatever the times
    and owners in their archives; an unreadable `held` is not the same."""
    from .archive import read_package

    def files(path: Path) -> list:
        return sorted(read_package(path), key=lambda member: member.path)

    try:
        old = files(held)
    except UserError:
        return False
    return files(made) == old


# --- verify -----------------------------------------------------------------------------------


def create_argv(prefix: Path | str, channel_dir: Path, package: str, version: str,
                python: str | None, channels: Sequence[str] = ()) -> list[str]:
    """`conda create --yes --quiet -p TMP [--override-channels] -c file://CHANNEL [-c CH …]
    NAME=VERSION python=X`.

    The published channel comes first, so NAME is taken from what we published.  python and the
    dependencies come from the `channels` setting when given (--override-channels: the user's
    .condarc `channels:` then decide nothing); with none given, from the user's own conda
    configuration, as the walkthrough's install did.  It changes no configuration.
    """
    argv = ["conda", "create", "--yes", "--quiet", "-p", str(prefix)]
    if channels:
        argv.append("--override-channels")
    argv += ["-c", channel_url(channel_dir), *_channel_args(channels), f"{package}={version}"]
    if python is not None:
        argv.append(f"python={python}")
    return argv


def channel_url(channel_dir: Path) -> str:
    """`file:///abs/path/channel`: how conda names a local channel, in argv and in conda-meta."""
    return channel_dir.absolute().as_uri()


def install_check(config: Config, artifacts: Sequence[P.Artifact], subdir: str, meta_text: str,
                  runner: Runner = run) -> list[dict[str, Any]]:
    """Create a conda environment from the published channel for each artifact installable on
    subdir; check conda took that very file; import the recipe's test imports with its python."""
    from . import render  # jinja2 and ruamel: only this action needs them

    paths = P.paths(config)
    paths.work.mkdir(parents=True, exist_ok=True)
    results = []
    for artifact in (a for a in artifacts if a.subdir in (subdir, "noarch")):
        meta = render.render(meta_text, artifact.python, artifact.subdir)
        with tempfile.TemporaryDirectory(prefix="verify-conda-", dir=paths.work) as tmp:
            prefix = Path(tmp) / "env"
            created = _call(runner, create_argv(prefix, paths.channel, meta.name, meta.version, artifact.python,
                                                config.channels))
            if created.returncode != 0:
                said = _failed(created, paths.log(f"conda-create-{artifact.python or 'noarch'}"))
                raise UserError(f"{artifact.key} does not install with conda ({said}): check its "
                                "dependencies exist on the channels for this Python (the channels setting)")
            _check_installed(prefix, artifact, paths.channel)
            imports = {module: _import(runner, prefix, module, Path(tmp)) for module in meta.test_imports}
        results.append({"file": artifact.key, "installed": True, "imports": imports})
    return results


def _check_installed(prefix: Path, artifact: P.Artifact, channel: Path) -> None:
    """conda records each installed package in conda-meta/NAME-VERSION-BUILD.json with its url."""
    record_path = prefix / "conda-meta" / (_PACKAGE.sub("", artifact.filename) + ".json")
    if not record_path.is_file():
        found = sorted(p.stem for p in (prefix / "conda-meta").glob("*.json"))
        raise UserError(f"conda installed another build than {artifact.filename} "
                        f"(found {', '.join(found) or 'none'}): check the channel holds it and is indexed")
    url = json.loads(record_path.read_text(encoding="utf-8")).get("url", "")
    if not url.startswith(channel_url(channel) + "/"):
        raise UserError(f"conda installed {artifact.filename} from {url or 'an unknown channel'}, not from "
                        f"{channel}: check the channel is indexed")


def _import(runner: Runner, prefix: Path, module: str, cwd: Path) -> str:
    python = prefix / "python.exe" if os.name == "nt" else prefix / "bin" / "python"
    # No PYTHONPATH and no user site: the import must come from the environment conda made.
    result = _call(runner, [str(python), "-c", f"import {module}"], cwd=str(cwd),
                   env={"PYTHONPATH": "", "PYTHONNOUSERSITE": "1"})
    if result.returncode != 0:
        raise UserError(f"import {module} fails in the conda environment ({_said(result)}): fix the package "
                        "or the recipe's test imports")
    return "ok"
