"""Planning is pure: from a `Config` to the packages a release builds, converts and publishes."""

from __future__ import annotations

import dataclasses

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
    """One `convert:<python>-<subdir>` task: a built package rewritten for another subdir."""

    build: Build
    artifact: P.Artifact

    @property
    def name(self) -> str:
        return f"{self.build.name}-{self.artifact.subdir}"


@dataclasses.dataclass(frozen=True)
class Plan:
    builds: tuple[Build, ...]
    conversions: tuple[Conversion, ...]
    published: tuple[P.Artifact, ...]

    def checks(self) -> dict[str, tuple[P.Artifact, ...]]:
        """One `check:<python>` task per build: the published files made from it, every subdir."""
        files: dict[str | None, list[P.Artifact]] = {build.python: [] for build in self.builds}
        for artifact in self.published:
            files[artifact.python].append(artifact)
        return {build.name: tuple(files[build.python]) for build in self.builds}


def make(config: Config, native: str) -> Plan:
    """What to build, convert and publish; the native build is published when its subdir is asked."""
    paths = P.paths(config)
    if config.noarch:
        build = _build(config, None, "noarch", paths.conda_bld)
        return Plan((build,), (), (build.artifact,))
    builds = tuple(_build(config, py, native, paths.conda_bld) for py in config.pythons)
    platform_builds = paths.platform_builds
    conversions = tuple(
        Conversion(build, _artifact(config, build.python, subdir, platform_builds))
        for build in builds
        for subdir in config.platforms
        if subdir != native
    )
    native_published = tuple(b.artifact for b in builds if native in config.platforms)
    return Plan(builds, conversions, native_published + tuple(c.artifact for c in conversions))


def _build(config: Config, python: str | None, subdir: str, folder) -> Build:
    return Build(python, _artifact(config, python, subdir, folder))


def _artifact(config: Config, python: str | None, subdir: str, folder) -> P.Artifact:
    filename = P.filename(config, python)
    return P.Artifact(subdir, filename, folder.joinpath(subdir, filename), python)
