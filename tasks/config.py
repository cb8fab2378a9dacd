"""One typed, validated configuration: `recipe/release.toml`, overridden by doit variables.

Only this module reads settings (the file and the environment); every other module receives a
`Config`.  Each validator is a small pure function that raises `UserError` with the fix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from . import subdirs
from .errors import UserError

FORMATS = ("tar.bz2", "conda")
TARGETS = ("local", "anaconda", "quetz")
ENGINES = ("auto", "embedded", "conda")
SKELETONS = ("auto", "grayskull", "conda")
CONVERTERS = ("auto", "in-house", "conda")
BINARIES = ("build", "wheels")

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*([._-]?[a-z0-9]+)*$", re.IGNORECASE)
_PYTHON = re.compile(r"^3\.([0-9]{1,2})$")
_CHANNEL = re.compile(r"^[A-Za-z0-9][^\s,]*$")  # a name (conda-forge), owner/label or a URL
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a release depends on; defaults reproduce the btrdb walkthrough."""

    package: str = "btrdb"
    version: str = "5.2.2"
    source: str = "pypi"
    pythons: tuple[str, ...] = ("3.6", "3.7")
    platforms: tuple[str, ...] = subdirs.WALKTHROUGH
    format: str = "tar.bz2"
    target: str = "local"
    owner: str = "pingthings"
    labels: tuple[str, ...] = ("main",)
    maintainer: str = "looselycoupled"
    build_number: int = 0
    noarch: bool = False
    build_dir: Path = Path("build")
    engine: str = "auto"
    skeleton: str = "auto"      # auto: conda skeleton with the conda engine, grayskull otherwise
    converter: str = "auto"     # auto: conda convert with the conda engine, in-house otherwise
    force: bool = False
    # build: from the sdist (build + convert); wheels: each subdir's package from its own wheel.
    binaries: str = "build"
    channel: str = ""
    quetz_url: str = ""
    # The conda channel `verify` installs from after an upload to anaconda or quetz.
    channel_url: str = ""
    # Conda channels, in order, that builds and the verify install resolve python and dependencies
    # from; empty: the user's own conda configuration (.condarc), as the walkthrough ran.
    channels: tuple[str, ...] = ()
    # Uploads: attempts after the first on a timeout, dropped connection or 5xx; seconds per request.
    retries: int = 4
    timeout: float = 60.0
    # Known sdist hashes, file name -> sha256: a download that differs is refused.
    sha256: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def local_source(self) -> Path | None:
        """The local checkout to release, or None when the sdist comes from PyPI."""
        return None if self.source == "pypi" else Path(self.source)

    @property
    def all_platforms(self) -> bool:
        """platforms=all: with binaries=wheels, every subdir the package has a wheel for."""
        return self.platforms == subdirs.ALL

    def subset(self, *names: str) -> dict[str, Any]:
        """The named settings as plain data, for doit's `config_changed`."""
        return {name: _plain(getattr(self, name)) for name in names}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


# Setting name as typed (file key or doit variable) -> dataclass field.
_ALIASES = {
    "build-dir": "build_dir", "build-number": "build_number", "quetz-url": "quetz_url",
    "channel-url": "channel_url",
    "label": "labels", "python": "pythons", "platform": "platforms",
}
_STATUS_OPTIONS = ("remote", "json")
_FIELDS = {field.name: field for field in dataclasses.fields(Config)}


def load(root: Path, overrides: Mapping[str, str]) -> Config:
    """Read `recipe/release.toml` under root, apply command-line overrides, validate."""
    raw: dict[str, Any] = dict(_read_file(root / "recipe" / "release.toml"))
    raw.update(overrides)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = _ALIASES.get(key, key.replace("-", "_"))
        if name in _STATUS_OPTIONS:  # an option of one task, not a release setting
            raise UserError(f"{key}= is not a setting: give it to the status task, `doit status --{key}`")
        if name not in _FIELDS:
            known = ", ".join(sorted(k.replace("_", "-") for k in _FIELDS))
            raise UserError(f"unknown setting '{key}': use one of {known}")
        values[name] = _coerce(name, value)
    config = Config(**values)
    if not config.build_dir.is_absolute():
        config = dataclasses.replace(config, build_dir=root / config.build_dir)
    if config.local_source is not None and not config.local_source.is_absolute():
        config = dataclasses.replace(config, source=str((root / config.local_source).resolve()))
    validate(config)
    return config


def _read_file(path: Path) -> Mapping[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path} is not valid TOML ({err}): fix the file") from None
    return data.get("release", data)


def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML value or a command-line string into the field's type."""
    kind = _FIELDS[name].type
    if "tuple" in str(kind):
        items = value.split(",") if isinstance(value, str) else list(value)
        items = [str(item).strip() for item in items if str(item).strip()]
        if name == "platforms" and items == ["all"]:
            return subdirs.ALL
        return tuple(dict.fromkeys(items))
    if kind in ("int", int):
        return _to_int(name, value)
    if kind in ("float", float):
        return _to_positive(name, value)
    if kind in ("bool", bool):
        return _to_bool(name, value)
    if "dict" in str(kind):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise UserError(f"{name} must be a table of file name = \"hex digest\" in recipe/release.toml")
        return dict(value)
    if "Path" in str(kind):
        return Path(str(value))
    if name == "package":  # conda names are lower case; the index does not mind the case
        return str(value).strip().lower()
    return str(value).strip()


def _to_int(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{name.replace('_', '-')}={value!r} is not a whole number: give e.g. 0") from None
    if number < 0:
        raise UserError(f"{name.replace('_', '-')}={number} is negative: give 0 or more")
    return number


def _to_positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise UserError(f"{name.replace('_', '-')}={value!r} is not a positive number of seconds: give e.g. 60")
    return number


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UserError(f"{name.replace('_', '-')}={value!r} is not true or false: give true or false")


def validate(config: Config) -> None:
    """Check every setting; the first problem found raises a UserError naming its fix."""
    check_package(config.package)
    check_version(config.version)
    for python in config.pythons or ("",):
        check_python(python)
    for subdir in config.platforms or ("",):
        check_platform(subdir)
    _check_choice("format", config.format, FORMATS)
    _check_choice("target", config.target, TARGETS)
    _check_choice("engine", config.engine, ENGINES)
    _check_choice("skeleton", config.skeleton, SKELETONS)
    _check_choice("converter", config.converter, CONVERTERS)
    _check_choice("binaries", config.binaries, BINARIES)
    if config.binaries == "wheels":
        _check_wheels(config)
    if not _OWNER.match(config.owner):
        raise UserError(f"owner={config.owner!r} is not an anaconda.org user or organisation name")
    for label in config.labels or ("",):
        if not _OWNER.match(label):
            raise UserError(f"label={label!r} is not a valid channel label: use letters, digits, . _ -")
    if config.local_source is not None and not config.local_source.is_dir():
        raise UserError(f"source={config.source} does not exist: give the path of a checkout, or source=pypi")
    if config.local_source is not None and not (config.local_source / "setup.py").exists() \
            and not (config.local_source / "pyproject.toml").exists():
        raise UserError(
            f"source={config.source} is not a Python project (no setup.py or pyproject.toml): "
            "give the path of a checkout, or source=pypi"
        )
    if config.target == "quetz" and not (config.quetz_url and config.channel):
        raise UserError("target=quetz needs quetz-url=URL and channel=NAME")
    for channel in config.channels:
        if not _CHANNEL.match(channel):
            raise UserError(f"channels: {channel!r} is not a conda channel: give names or URLs, e.g. "
                            "channels=conda-forge,defaults")
    if config.converter == "conda" and config.format == "conda":
        raise UserError("converter=conda reads and writes only .tar.bz2: use format=tar.bz2 or converter=in-house")


def _check_wheels(config: Config) -> None:
    """The wheels come from the index, one per Python: settings about the sdist do not apply."""
    if config.local_source is not None:
        raise UserError(f"binaries=wheels takes the package's wheels from the package index, not source={config.source}: "
                        "use source=pypi, or binaries=build")
    if config.noarch:
        raise UserError("binaries=wheels makes one package per platform and Python, not noarch: "
                        "drop noarch=true, or use binaries=build")


@dataclasses.dataclass(frozen=True)
class Secrets:
    """Credentials, read from the environment when an upload needs them; never part of Config,
    so they never reach doit's database, a stamp or a message."""

    anaconda_token: str | None
    quetz_api_key: str | None

    def __repr__(self) -> str:
        return "Secrets(<hidden>)"


def secrets(environ: Mapping[str, str] | None = None) -> Secrets:
    from . import anaconda  # its stored-login lookup is anaconda-client's own

    environ = os.environ if environ is None else environ
    return Secrets(anaconda.stored_token(environ), environ.get("QUETZ_API_KEY") or None)


def settle(config: Config, engine: str) -> Config:
    """The config with `auto` choices made: engine as resolved, skeleton and converter to match."""
    conda = engine == "conda"
    return dataclasses.replace(
        config, engine=engine,
        skeleton=config.skeleton if config.skeleton != "auto" else ("conda" if conda else "grayskull"),
        converter=config.converter if config.converter != "auto" else
        ("conda" if conda and config.format == "tar.bz2" else "in-house"),
    )


def check_package(name: str) -> None:
    if not _NAME.match(name):
        raise UserError(f"package={name!r} is not a valid package name: use lower-case letters, digits, . _ -")


def check_version(version: str) -> None:
    if not _VERSION.match(version):
        raise UserError(f"version={version!r} is not a version number: give e.g. 5.2.2")


def check_python(python: str) -> None:
    if not re.match(r"^[0-9]+\.[0-9]+$", python):
        raise UserError(f"python version {python!r} is malformed: give MAJOR.MINOR, e.g. pythons=3.6,3.7")
    match = _PYTHON.match(python)
    if not match or not 6 <= int(match.group(1)) <= 14:
        raise UserError(f"python {python} is not supported: give a version from 3.6 to 3.14")


def check_platform(subdir: str) -> None:
    if subdir not in subdirs.ALL:
        raise UserError(f"unknown platform {subdir!r}: use 'all' or some of {', '.join(subdirs.ALL)}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{name}={value!r} is not known: use one of {', '.join(choices)}")
