"""Planning is pure: from a `Config` to the packages a release builds, converts and publishes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import project as P
from .config import Config


@dataclasses.dataclass(frozen=True)
class Build:
    """One `build:<python>` task: the package built natively (or once, noarch)."""

    python: str | None
    artifact: P.Artifact

    @property
    def name(self) -> str:
        return self.python or "noarch"


@dataclasses.dataclass(frozen=True)
class Conversion:
    """One `convert:<python>` task: a built package rewritten for every other subdir asked, as one
    `conda convert -p A -p B …` of that package does."""

    build: Build
    artifacts: tuple[P.Artifact, ...]

    @property
    def name(self) -> str:
        return self.build.name


@dataclasses.dataclass(frozen=True)
class Pack:
    """One `pack:<subdir>/<python>` task (binaries=wheels): the wheel pip chose for that subdir
    and Python (named in `choice`), turned into that subdir's conda package."""

    python: str
    subdir: str
    choice: Path
    artifact: P.Artifact

    @property
    def name(self) -> str:
        return f"{self.subdir}/{self.python}"


@dataclasses.dataclass(frozen=True)
class Plan:
    builds: tuple[Build, ...]
    conversions: tuple[Conversion, ...]
    published: tuple[P.Artifact, ...]
    packs: tuple[Pack, ...] = ()

    def checks(self) -> dict[str, tuple[P.Artifact, ...]]:
        """One `check:<python>` task per build (or per Python, from wheels): the published files
        made from it, every subdir."""
        pythons = [build.python for build in self.builds] or list(dict.fromkeys(p.python for p in self.packs))
        files: dict[str | None, list[P.Artifact]] = {python: [] for python in pythons}
        for artifact in self.published:
            files[artifact.python].append(artifact)
        return {python or "noarch": tuple(files[python]) for python in pythons}


def make(config: Config, native: str, no_wheel: frozenset[str] = frozenset()) -> Plan:
    """What to build, convert and publish; the native build is published when its subdir is asked.
    no_wheel: the `subdir/python` pairs the index has no wheel for, left out (platforms=all)."""
    paths = P.paths(config)
    if config.binaries == "wheels":
        return _from_wheels(config, paths, no_wheel)
    if config.noarch:
        build = _build(config, None, "noarch", paths.conda_bld)
        return Plan((build,), (), (build.artifact,))
    builds = tuple(_build(config, py, native, paths.conda_bld) for py in config.pythons)
    platform_builds = paths.platform_builds
    others = [subdir for subdir in config.platforms if subdir != native]
    conversions = tuple(
        Conversion(build, tuple(_artifact(config, build.python, subdir, platform_builds) for subdir in others))
        for build in builds
        if others
    )
    native_published = tuple(b.artifact for b in builds if native in config.platforms)
    converted = tuple(artifact for conversion in conversions for artifact in conversion.artifacts)
    return Plan(builds, conversions, native_published + converted)


def wheel_pairs(config: Config) -> list[str]:
    """`subdir/python` for each package binaries=wheels makes, before any is left out."""
    return [f"{subdir}/{python}" for python in config.pythons for subdir in config.platforms]


def _from_wheels(config: Config, paths: P.Paths, no_wheel: frozenset[str]) -> Plan:
    """binaries=wheels: no build and no conversion; one package per (subdir, Python) asked, each
    from its own wheel, so compiled code is never re-targeted."""
    packs = tuple(
        Pack(python, subdir, paths.wheel_choice(config.package, config.version, subdir, python),
             _artifact(config, python, subdir, paths.wheel_builds))
        for python in config.pythons for subdir in config.platforms if f"{subdir}/{python}" not in no_wheel
    )
    return Plan((), (), tuple(pack.artifact for pack in packs), packs)


def _build(config: Config, python: str | None, subdir: str, folder) -> Build:
    return Build(python, _artifact(config, python, subdir, folder))


def _artifact(config: Config, python: str | None, subdir: str, folder) -> P.Artifact:
    filename = P.filename(config, python)
    return P.Artifact(subdir, filename, folder.joinpath(subdir, filename), python)
