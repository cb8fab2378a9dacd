"""What the stand-in `conda` and `conda-build` do: the documented behaviour, small and honest.

Each mirrors conda-build's own code (conda_build/cli/main_build.py, api.get_output_file_paths,
skeletons/pypi.py, convert.py) or conda's documented CLI, for the options the conda engine uses:

- `conda-build --version`, `conda --version`: `conda-build 25.1.2`, `conda 25.1.1`.
  FAKE_CONDA_BUILD_VERSION sets another; below 24.11 `--package-format` is rejected as argparse
  rejects an unknown option (exit 2), as those versions did.
- `conda-build RECIPE [--python X] --croot C [--no-anaconda-upload] [--package-format F]
  [--output-folder O] [--output]`: with --output, prints where the package goes
  (O or C, then SUBDIR/NAME-VERSION-pyXY_N.EXT) and builds nothing; otherwise builds a real
  package there with py-rattler-build's `assemble_package`, from the recipe's source: each
  top-level Python package folder of the source copied into lib/pythonX.Y/site-packages (no pip,
  no build script run), with what makes conda-build's output differ every run (build time,
  .pyc headers, work paths in dist-info and info/recipe).  Every render is logged as
  ["render", RECIPE, PYTHON] and lasts FAKE_CONDA_RENDER_SECONDS.  Without --package-format it writes .conda, as conda-build >= 25.1 does.
  A missing source exits 1.  FAKE_CONDA_BLD_OUTPUT_FOLDER stands for a user's .condarc
  `conda_build: output_folder:`, which moves the package (and what --output prints).
  FAKE_CONDA_SUBDIR stands for a conda of another platform (an osx-64 conda under Rosetta).
- `url:` sources are not downloaded: NAME-VERSION.tar.gz is taken from FAKE_CONDA_SRC_CACHE or
  CROOT/src_cache, as conda-build reuses its cache.  The same folder is the fake's PyPI for
  `conda skeleton pypi`.
- `conda skeleton pypi NAME --version V --output-dir D`: refuses an existing D/name (as
  skeletons/pypi.py does), writes D/name/meta.yaml in its classic format.
- `conda convert [-f] -p SUBDIR -o OUT PKG`: reads .tar.bz2 only ("cannot convert"), skips the
  package's own subdir with a message and exit 0, writes OUT/SUBDIR/PKGNAME through the project's
  in-house converter (tasks.convert.convert), every member then stamped with the current time.
- `conda create --yes --quiet -p PREFIX [--override-channels] -c file://CH ... NAME=VERSION
  [python=X]`: takes NAME from an indexed file:// channel (no solve: dependencies are not
  installed), unpacks it into PREFIX, records conda-meta/NAME-VERSION-BUILD.json with its url and
  writes PREFIX/bin/python (the test interpreter with PREFIX's site-packages first).

Every call appends [program, *argv] as one JSON line to the file FAKE_CONDA_LOG names.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import py_compile
import random
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

CONDA_VERSION = "25.1.1"
CONDA_BUILD_VERSION = "25.1.2"
_FORMATS = {"1": ".tar.bz2", "tar.bz2": ".tar.bz2", ".tar.bz2": ".tar.bz2",
            "2": ".conda", "conda": ".conda", ".conda": ".conda"}


def main(prog: str, argv: list[str]) -> int:
    _log(prog, argv)
    if prog == "conda-build":
        return conda_build(argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"conda {CONDA_VERSION}")
        return 0
    commands = {"build": conda_build, "skeleton": skeleton, "convert": convert, "create": create}
    if not argv or argv[0] not in commands:
        print(f"fake conda: no command {argv[:1]}", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


def _log(prog: str, argv: list[str]) -> None:
    log = os.environ.get("FAKE_CONDA_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps([prog, *argv]) + "\n")


def _fail(message: str, status: int = 1) -> int:
    print(message, file=sys.stderr)
    return status


# --- conda-build ------------------------------------------------------------------------------


def _build_version() -> str:
    return os.environ.get("FAKE_CONDA_BUILD_VERSION", CONDA_BUILD_VERSION)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conda-build")
    parser.add_argument("--version", action="version", version=f"conda-build {_build_version()}")
    parser.add_argument("recipe", nargs="+")
    parser.add_argument("--python")
    parser.add_argument("--croot")
    parser.add_argument("--no-anaconda-upload", action="store_true")
    parser.add_argument("--output-folder")
    parser.add_argument("--output", action="store_true")
    parser.add_argument("-c", "--channel", dest="channels", action="append", default=[])
    parser.add_argument("--override-channels", action="store_true")
    version = tuple(int(part) for part in _build_version().split(".")[:2])
    if version >= (24, 11):  # the flag came in 24.11; the default became .conda in 25.1
        default = "conda" if version >= (25, 1) else "tar.bz2"
        parser.add_argument("--package-format", choices=sorted(_FORMATS), default=default)
    return parser


def conda_build(argv: list[str]) -> int:
    args = _build_parser().parse_args(argv)
    ext = _FORMATS[getattr(args, "package_format", "tar.bz2")]
    croot = Path(args.croot or Path(sys.prefix) / "conda-bld").absolute()
    recipe = Path(args.recipe[0]).absolute()
    platform = os.environ.get("FAKE_CONDA_SUBDIR") or _native()
    try:
        meta = _render(recipe, args.python, platform)
    except Exception as err:  # the project's renderer raises UserError; conda-build its own
        return _fail(f"conda_build.exceptions.RecipeError: {err}")
    subdir = "noarch" if meta.noarch else platform
    folder = Path(args.output_folder or os.environ.get("FAKE_CONDA_BLD_OUTPUT_FOLDER") or croot)
    target = folder / subdir / f"{meta.name}-{meta.version}-{_build_string(meta, args.python)}{ext}"
    if args.output:
        print(target)  # api.get_output_file_paths: one sorted path per output, nothing else
        return 0
    print(f"BUILD START: ['{target.name}']")
    source = _source(meta, recipe, croot)
    if isinstance(source, str):
        return _fail(source)
    # conda-build works in CROOT/NAME_<ms>/ and leaves it there: the time is in every work path.
    build_id = f"{meta.name}_{time.time_ns() // 1_000_000}"
    work = croot / build_id / "work"
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("__pycache__"))
    with tempfile.TemporaryDirectory(prefix="fake-conda-build-") as tmp:
        error = _pack(meta, args.python, subdir, recipe, work, croot / build_id, Path(tmp), target)
    if error:
        return _fail(error)
    print(f"TEST END: {target}")
    print(f"# Automatic uploading is disabled\n# If you want to upload package(s) to anaconda.org later, type:\n\n"
          f"anaconda upload \\\n    {target}")
    return 0


def _render(recipe: Path, python: str | None, platform: str):
    """A full render, as every conda-build run (an --output one too) does first: logged as
    ["render", RECIPE, PYTHON] so tests count them, and FAKE_CONDA_RENDER_SECONDS long (real
    conda-build: about 7 s for btrdb on a 2-core machine; 0 unless set)."""
    from tasks import render

    _log("render", [str(recipe), python or "noarch"])
    time.sleep(float(os.environ.get("FAKE_CONDA_RENDER_SECONDS") or 0))
    return render.render((recipe / "meta.yaml").read_text(encoding="utf-8"), python, platform)


def _native() -> str:
    from tasks import subdirs

    return subdirs.native()


def _build_string(meta, python: str | None) -> str:
    """conda-build's build string for a pure-Python recipe: pyXY_N, or py_N when noarch."""
    tag = "py" if meta.noarch or python is None else "py" + python.replace(".", "")
    return f"{tag}_{meta.build_number}"


def _source(meta, recipe: Path, croot: Path) -> Path | str:
    """The source tree (a Path), or the error conda-build would print (a str)."""
    if meta.source_path:
        tree = (recipe / meta.source_path).resolve()
        missing = f"conda_build.exceptions.CondaBuildUserError: source path {tree} does not exist"
        return tree if tree.is_dir() else missing
    sdist = _cached_sdist(f"{meta.name}-{meta.version}.tar.gz", croot / "src_cache")
    if sdist is None:
        return f"fake conda-build: {meta.name}-{meta.version}.tar.gz is not in the source cache (it never downloads)"
    work = croot / "work" / f"{meta.name}-{meta.version}"
    shutil.rmtree(work, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    tops = [p for p in work.iterdir() if p.is_dir()]
    return tops[0] if len(tops) == 1 else work


def _cached_sdist(name: str, *folders: Path) -> Path | None:
    for folder in (os.environ.get("FAKE_CONDA_SRC_CACHE"), *folders):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def _pack(meta, python: str | None, subdir: str, recipe: Path, work: Path, build_root: Path, tmp: Path,
          target: Path) -> str | None:
    """Stage the work tree's packages as pip would install them into the host prefix, and pack
    them with what conda-build adds and varies each run: the build time in index.json, `.pyc`
    files (their headers hold the sources' mtimes: now), a dist-info naming the work folder,
    the rendered recipe with the host prefix, the variant config in another key order."""
    from rattler_build import ArchiveType, assemble_package

    packages = sorted(p for p in work.iterdir() if (p / "__init__.py").is_file())
    if not packages:
        return f"fake conda-build: no Python package folder in {work}"
    site = tmp / "stage" / (f"lib/python{python}/site-packages" if python and not meta.noarch else "site-packages")
    for package in packages:
        shutil.copytree(package, site / package.name)
    _compile(site)
    _dist_info(meta, site, work)
    about = meta.about
    license_files = [work / name for name in _license_names(about.get("license_file")) if (work / name).is_file()]
    built = assemble_package(
        meta.name, meta.version, subdir, _build_string(meta, python), tmp / "out",
        files_dir=tmp / "stage", depends=_depends(meta, python), build_number=meta.build_number,
        noarch="python" if meta.noarch else None,
        homepage=about.get("home"), license=about.get("license"), license_family=about.get("license_family"),
        summary=about.get("summary"), license_files=license_files or None,
        recipe_dir=_info_recipe(recipe, build_root, python, tmp / "info-recipe"),
        archive_type=ArchiveType.TarBz2 if target.name.endswith(".tar.bz2") else ArchiveType.Conda,
        timestamp=datetime.datetime.now(datetime.timezone.utc),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(built.path, target)
    return None


def _license_names(value) -> list[str]:
    return [] if not value else [value] if isinstance(value, str) else list(value)


def _compile(site: Path) -> None:
    """conda-build compiles every .py it packs; a .pyc header holds its source's mtime, and a
    freshly unpacked source's mtime is the time of the build."""
    now = time.time()
    for source in site.rglob("*.py"):
        os.utime(source, (now, now))
        py_compile.compile(str(source), doraise=True)


def _dist_info(meta, site: Path, work: Path) -> None:
    """What `pip install .` from the work folder leaves: INSTALLER, direct_url.json, RECORD."""
    info = site / f"{meta.name.replace('-', '_')}-{meta.version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta.name}\nVersion: {meta.version}\n")
    (info / "INSTALLER").write_text("conda\n")
    (info / "direct_url.json").write_text(json.dumps({"dir_info": {}, "url": work.as_uri()}))
    rows = [f"{path.relative_to(site).as_posix()},sha256={hashlib.sha256(path.read_bytes()).hexdigest()},"
            f"{path.stat().st_size}" for path in sorted(site.rglob("*")) if path.is_file()]
    (info / "RECORD").write_text("\n".join([*rows, f"{info.name}/RECORD,,"]) + "\n")


def _info_recipe(recipe: Path, build_root: Path, python: str | None, folder: Path) -> Path:
    """info/recipe as conda-build writes it: the recipe as given (meta.yaml.template), as
    rendered (with the host prefix of this build) and the variant, keys in no fixed order."""
    folder.mkdir(parents=True)
    text = (recipe / "meta.yaml").read_text(encoding="utf-8")
    (folder / "meta.yaml.template").write_text(text, encoding="utf-8")
    host = build_root / ("_h_env_placehold" + "_placehold" * 8)
    (folder / "meta.yaml").write_text(f"# host prefix: {host}\n{text}", encoding="utf-8")
    variant = [f"python: {python or ''}", "target_platform: here", f"build_id: {build_root.name}"]
    random.shuffle(variant)
    (folder / "conda_build_config.yaml").write_text("\n".join(variant) + "\n")
    return folder


def _depends(meta, python: str | None) -> list[str]:
    """Run requirements; python pinned to the minor version, as python's run_exports pin it."""
    if meta.noarch or python is None:
        return list(meta.run)
    major, minor = python.split(".")
    pinned = f"python >={python},<{major}.{int(minor) + 1}.0a0"
    return [pinned if spec.split()[0] == "python" else spec for spec in meta.run]


# --- conda skeleton pypi ----------------------------------------------------------------------

_SKELETON = """{{% set name = "{name}" %}}
{{% set version = "{version}" %}}

package:
  name: "{{{{ name|lower }}}}"
  version: "{{{{ version }}}}"

source:
  url: {url}
  sha256: {sha256}

build:
  number: 0
  script: "{{{{ PYTHON }}}} -m pip install . -vv"

requirements:
  host:
    - pip
    - python
  run:
    - python

test:
  imports:
    - {name}

about:
  home: The package home page
  license: UNKNOWN
  license_family: OTHER
  license_file: 
  summary: "{name}, from the fake PyPI"
  doc_url: 
  dev_url: 

extra:
  recipe-maintainers:
    - your-github-id-here
"""


def skeleton(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="conda skeleton")
    parser.add_argument("repo", choices=["pypi"])
    parser.add_argument("packages", nargs="+")
    parser.add_argument("--version")
    parser.add_argument("--output-dir", default=".")
    parser.add_argument("--python-version")
    parser.add_argument("--pypi-url", default="https://pypi.io/pypi/")  # skeletons/pypi.py's default
    args = parser.parse_args(argv)
    # Its source cache is conda-build's: CONDA_BLD_PATH, else ~/conda-bld (outside any project).
    cache = Path(os.environ.get("CONDA_BLD_PATH") or Path.home() / "conda-bld") / "src_cache"
    for package in args.packages:
        folder = Path(args.output_dir) / package.lower()
        if folder.exists():
            return _fail(f"RuntimeError: directory already exists: {folder}")
        sdist = _cached_sdist(f"{package}-{args.version}.tar.gz")
        if args.version is None or sdist is None:
            return _fail(f"Error: Version {args.version} of {package} is not available on PyPI.")
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(sdist, cache / sdist.name)
        folder.mkdir(parents=True)
        sha256 = hashlib.sha256(sdist.read_bytes()).hexdigest()
        print(f"Writing recipe for {package.lower()}")
        text = _SKELETON.format(name=package, version=args.version, sha256=sha256, url=sdist.resolve().as_uri())
        (folder / "meta.yaml").write_text(text, encoding="utf-8")
    return 0


# --- conda convert ----------------------------------------------------------------------------


def convert(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="conda convert")
    parser.add_argument("files", nargs="+")
    parser.add_argument("-p", "--platform", dest="platforms", action="append", default=[])
    parser.add_argument("-o", "--output-dir", default=".")
    parser.add_argument("-f", "--force", action="store_true")
    args = parser.parse_args(argv)
    for name in args.files:
        package = Path(name).absolute()
        if not package.name.endswith(".tar.bz2"):
            return _fail(f"RuntimeError: cannot convert: {package}")  # api.convert's message
        error = _convert_one(package, args.platforms, Path(args.output_dir), args.force)
        if error:
            return _fail(error)
    return 0


def _convert_one(package: Path, platforms: list[str], out: Path, force: bool) -> str | None:
    from rattler.package import IndexJson

    from tasks.convert import convert as in_house  # imported late: written alongside this fake
    from tasks.errors import UserError

    source = IndexJson.from_package_archive(package).subdir
    for platform in platforms:
        if platform == source:
            print(f"Source platform '{source}' and target platform '{platform}' are identical. Skipping conversion.")
            continue
        print(f"Converting {package.name} from {source} to {platform}")
        try:
            in_house(package, platform, out / platform / package.name, force=force)
        except UserError as err:
            return f"CondaBuildUserError: {err}"
        _restamp(out / platform / package.name)
    return None


def _restamp(path: Path) -> None:
    """conda convert packs every member with the current time (to the microsecond, in pax
    headers here), so no two runs write the same bytes."""
    with tarfile.open(path, "r:bz2") as archive:
        members = [(member, archive.extractfile(member).read() if member.isfile() else None)
                   for member in archive.getmembers()]
    now = time.time()
    with tarfile.open(path, "w:bz2", format=tarfile.PAX_FORMAT) as archive:
        for member, data in members:
            member.mtime = now
            archive.addfile(member, io.BytesIO(data) if data is not None else None)


# --- conda create -----------------------------------------------------------------------------


def create(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="conda create")
    parser.add_argument("--yes", "-y", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("-p", "--prefix", required=True)
    parser.add_argument("--override-channels", action="store_true")
    parser.add_argument("-c", "--channel", dest="channels", action="append", default=[])
    parser.add_argument("specs", nargs="+")
    args = parser.parse_args(argv)
    wanted = dict(spec.split("=", 1) for spec in args.specs)
    python = wanted.pop("python", None)
    (name, version), = wanted.items()
    found = _find(args.channels, name, version, python)
    if found is None:
        return _fail("PackagesNotFoundError: The following packages are not available from current channels:\n\n"
                     f"  - {name}={version}")
    channel_url, subdir, package = found
    prefix = Path(args.prefix)
    _unpack(package, prefix)
    _record(prefix, package, f"{channel_url}/{subdir}")
    _write_python(prefix, python)
    print("Preparing transaction: done\nVerifying transaction: done\nExecuting transaction: done")
    return 0


def _find(channels: list[str], name: str, version: str, python: str | None) -> tuple[str, str, Path] | None:
    """The first indexed file:// channel holding name-version for this platform and python."""
    tag = f"py{python.replace('.', '')}_" if python else "py_"
    for url in channels:
        if not url.startswith("file://"):
            continue  # the fake resolves nothing from the network (conda-forge)
        root = Path(unquote(urlparse(url).path))
        for subdir in (_native(), "noarch"):
            if not (root / subdir / "repodata.json").is_file():
                continue
            for package in sorted((root / subdir).glob(f"{name}-{version}-*")):
                build = package.name[len(f"{name}-{version}-"):]
                if build.startswith(tag) or build.startswith("py_"):
                    return url.rstrip("/"), subdir, package
    return None


def _unpack(package: Path, prefix: Path) -> None:
    from conda_package_streaming.package_streaming import stream_conda_component

    prefix.mkdir(parents=True, exist_ok=True)
    with open(package, "rb") as handle:
        for tar, member in stream_conda_component(package.name, handle, "pkg"):
            if not member.name.startswith("info/"):
                tar.extract(member, prefix, filter="data")


def _record(prefix: Path, package: Path, channel: str) -> None:
    stem = package.name.removesuffix(".tar.bz2").removesuffix(".conda")
    name, version, build = stem.rsplit("-", 2)
    record = {"name": name, "version": version, "build": build, "fn": package.name,
              "channel": channel, "url": f"{channel}/{package.name}"}
    (prefix / "conda-meta").mkdir(exist_ok=True)
    (prefix / "conda-meta" / f"{stem}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")


def _write_python(prefix: Path, python: str | None) -> None:
    site = prefix / (f"lib/python{python}/site-packages" if python else "site-packages")
    launcher = prefix / "bin" / "python"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(
        f"#!{sys.executable}\n# fake conda env python: the test interpreter, this environment's site-packages first\n"
        "import os, sys\n"
        f"os.execve(sys.executable, [sys.executable, *sys.argv[1:]], {{**os.environ, 'PYTHONPATH': {str(site)!r}}})\n"
    )
    launcher.chmod(0o755)
