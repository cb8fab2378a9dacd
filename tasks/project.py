"""Every path and artifact file name of a release; nothing else builds paths.

Pure: computed from a `Config`, touching no file.  Imported as `P` by convention.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

from .config import Config

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipe"
PATCH = RECIPE / "patch.yaml"
CONFIG_FILE = RECIPE / "release.toml"
BUILD_CONFIG = RECIPE / "conda_build_config.yaml"
DOIT_DB = ".doit.db"
# What `doit ci` writes by default: the release as a GitHub Actions matrix.
WORKFLOW = ROOT / ".github" / "workflows" / "conda-release.yml"


def pytag(python: str) -> str:
    """`3.6` -> `py36`, as conda-build writes it in build strings."""
    return "py" + python.replace(".", "")


def build_string(python: str | None, number: int) -> str:
    """conda-build's build string for a pure-Python package: `py36_0`, or `py_0` when noarch."""
    return f"{pytag(python)}_{number}" if python else f"py_{number}"


@dataclasses.dataclass(frozen=True)
class Paths:
    """The layout of one build folder."""

    build: Path

    @property
    def downloads(self) -> Path:
        """sdists fetched by pip; kept by `doit clean` so a clean release needs no network."""
        return self.build / "downloads"

    @property
    def work(self) -> Path:
        return self.build / "work"

    @property
    def source_root(self) -> Path:
        return self.work / "source"

    @property
    def source_record(self) -> Path:
        """Where the source came from (and the sdist's sha256): the `source` task's target."""
        return self.source_root / "source.json"

    @property
    def source_tree(self) -> Path:
        return self.source_root / "tree"

    @property
    def skeleton(self) -> Path:
        return self.work / "skeleton" / "meta.yaml"

    @property
    def recipe_origin(self) -> Path:
        """Where the skeleton came from (grayskull, completed from the wheel, or the wheel alone)."""
        return self.work / "skeleton" / "origin.json"

    @property
    def logs(self) -> Path:
        """What the tools said (grayskull, pip, setuptools): one file per step, named in errors."""
        return self.build / "logs"

    def log(self, step: str) -> Path:
        return self.logs / f"{step.replace(':', '-')}.log"

    @property
    def recipe_dir(self) -> Path:
        return self.work / "recipe"

    @property
    def meta(self) -> Path:
        return self.recipe_dir / "meta.yaml"

    @property
    def wheel_dir(self) -> Path:
        return self.work / "wheel"

    def stage(self, python: str | None) -> Path:
        return self.work / "stage" / (pytag(python) if python else "noarch")

    @property
    def stubs(self) -> Path:
        """A throw-away channel of stand-in `python` and dependency packages for `verify`."""
        return self.work / "stubs"

    @property
    def conda_bld(self) -> Path:
        return self.build / "conda-bld"

    @property
    def platform_builds(self) -> Path:
        return self.build / "platform-builds"

    @property
    def wheel_builds(self) -> Path:
        """binaries=wheels: each subdir's package, made from that subdir's own wheel."""
        return self.build / "wheel-builds"

    def wheel_cache(self, package: str, version: str) -> Path:
        """The wheels pip chose, kept by `doit clean` as the sdists are."""
        return self.downloads / "wheels" / f"{package}-{version}"

    def wheel_choice(self, package: str, version: str, subdir: str, python: str) -> Path:
        """Which wheel serves (subdir, python), with its sha256: the `select` task's target."""
        return self.wheel_cache(package, version) / f"{subdir}-{pytag(python)}.json"

    def wheel_gaps(self, package: str, version: str) -> Path:
        """With platforms=all: which (subdir, Python) pairs were asked of the index and which have
        no wheel there, so planning leaves those out without asking again."""
        return self.wheel_cache(package, version) / "gaps.json"

    def wheel_stage(self, subdir: str, python: str) -> Path:
        return self.work / "wheel-stage" / f"{subdir}-{pytag(python)}"

    @property
    def channel(self) -> Path:
        return self.build / "channel"

    @property
    def stamps(self) -> Path:
        """Upload and verify stamps; kept by `doit clean`: they record what a server holds."""
        return self.build / "stamps"

    @property
    def logs(self) -> Path:
        """What a failed conda tool printed, one file per step; kept by `doit clean`."""
        return self.build / "logs"

    def log(self, step: str) -> Path:
        """`logs/conda-build-3.6.log`: the full output of the tool a step ran, when it failed."""
        return self.logs / f"{step}.log"

    @property
    def manifest(self) -> Path:
        return self.build / "release.json"

    @property
    def lock(self) -> Path:
        return self.build / ".lock"

    def cleaned(self) -> tuple[Path, ...]:
        """What `doit clean` removes: the build outputs, never stamps, downloads or the channel."""
        return (self.conda_bld, self.platform_builds, self.wheel_builds, self.work)


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One package file the release publishes."""

    subdir: str
    filename: str
    path: Path
    python: str | None

    @property
    def key(self) -> str:
        """The name doit shows: `linux-64/btrdb-5.2.2-py36_0.tar.bz2`."""
        return f"{self.subdir}/{self.filename}"


def paths(config: Config) -> Paths:
    return Paths(config.build_dir)


def filename(config: Config, python: str | None) -> str:
    build = build_string(python, config.build_number)
    return f"{config.package}-{config.version}-{build}.{config.format}"


def stamp(config: Config, artifact: Artifact) -> Path:
    """What the target confirmed about one published file."""
    return _stamp_in(paths(config).stamps / config.target, artifact)


def stamps(config: Config, artifacts: Iterable[Artifact]) -> dict[str, Path]:
    """`stamp` of many artifacts by key, their common folder made once (a thousand, at scale)."""
    folder = paths(config).stamps / config.target
    return {artifact.key: _stamp_in(folder, artifact) for artifact in artifacts}


def _stamp_in(folder: Path, artifact: Artifact) -> Path:
    return folder.joinpath(artifact.subdir, f"{artifact.filename}.json")


def restored_marker(package: Path) -> Path:
    """Beside a build or conversion output: its bytes were fetched back from the target, not made
    (the upload then records `restored`).  Hidden, so no tool takes it for a package."""
    return package.with_name(f".{package.name}.restored.json")


def verify_stamp(config: Config) -> Path:
    return paths(config).stamps / f"verify-{config.target}.json"


def check_stamp(config: Config, build: str) -> Path:
    """What `check:<python>` found for one build's files; `verify` merges them."""
    return paths(config).stamps / f"verify-{config.target}-{build}.json"
