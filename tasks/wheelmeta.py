"""What a built wheel declares about itself, in conda's terms.

The wheel is the one description of a package that every build backend writes the same way
(core metadata, entry_points.txt, its file list).  grayskull reads the sdist instead, which it
cannot always do (setup.py introspection, dynamic metadata); this module reads the wheel and says
it as a recipe would: conda-forge names, specs, selectors, entry points, importable modules.
Pure apart from reading the wheel file.
"""

from __future__ import annotations

import configparser
import dataclasses
import email.parser
import functools
import re
import zipfile
from pathlib import Path, PurePosixPath

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

from .errors import UserError

# Folders a wheel ships that are not what users import (find_packages leaves them in often).
_NOT_IMPORTS = {"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks", "scripts"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# An entry point is `name = module:attr [extra1, extra2]`; conda-build wants `name = module:attr`.
_ENTRY = re.compile(r"^\s*([^=\s]+)\s*=\s*([A-Za-z0-9_.]+)\s*(?::\s*([A-Za-z0-9_.]+))?\s*(\[[^\]]*\])?\s*$")


@dataclasses.dataclass(frozen=True)
class WheelInfo:
    """The parts of a wheel a recipe needs."""

    name: str
    version: str
    summary: str
    home: str
    license: str
    requires_python: str
    requires: tuple[str, ...]          # Requires-Dist lines that are not extras, as written
    console_scripts: tuple[str, ...]   # `name = module:func`, extras stripped
    gui_scripts: tuple[str, ...]
    license_files: tuple[str, ...]     # License-File, as the metadata names them
    modules: tuple[str, ...]           # what `import` finds: packages, modules, namespace children


def read(path: Path) -> WheelInfo:
    """Read a wheel's METADATA, entry_points.txt and file list."""
    try:
        with zipfile.ZipFile(path) as wheel:
            names = wheel.namelist()
            info_dir = _dist_info(names, path)
            meta = email.parser.HeaderParser().parsestr(wheel.read(f"{info_dir}/METADATA").decode("utf-8"))
            entry_text = _read_optional(wheel, f"{info_dir}/entry_points.txt")
            inits = {name: wheel.read(name) for name in names if name.endswith("/__init__.py")}
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, OSError) as err:
        raise UserError(f"{path.name} is not a readable wheel ({err}): delete it and run doit again") from None
    entries = _entry_points(entry_text)
    return WheelInfo(
        name=meta.get("Name", ""), version=meta.get("Version", ""), summary=meta.get("Summary", "") or "",
        home=_home(meta), license=_license(meta), requires_python=meta.get("Requires-Python", "") or "",
        requires=tuple(r for r in meta.get_all("Requires-Dist") or [] if not _is_extra(r)),
        console_scripts=entries.get("console_scripts", ()), gui_scripts=entries.get("gui_scripts", ()),
        license_files=tuple(meta.get_all("License-File") or ()),
        modules=importable_modules(names, inits),
    )


def _dist_info(names: list[str], path: Path) -> str:
    folders = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")})
    if len(folders) != 1:
        raise KeyError(f"{len(folders)} .dist-info folders")
    return folders[0]


def _read_optional(wheel: zipfile.ZipFile, name: str) -> str:
    try:
        return wheel.read(name).decode("utf-8")
    except KeyError:
        return ""


def _home(meta) -> str:
    if meta.get("Home-page"):
        return meta["Home-page"]
    urls = [url.split(",", 1) for url in meta.get_all("Project-URL") or [] if "," in url]
    preferred = ("homepage", "home", "source", "repository", "documentation")
    for label in preferred:
        for name, url in urls:
            if name.strip().lower().replace("-", "") == label:
                return url.strip()
    return urls[0][1].strip() if urls else ""


def _license(meta) -> str:
    expression = meta.get("License-Expression")
    if expression:
        return expression
    text = (meta.get("License") or "").strip()
    return text if text and "\n" not in text and len(text) < 80 else ""


def _is_extra(requirement: str) -> bool:
    try:
        marker = Requirement(requirement).marker
    except InvalidRequirement:
        return False  # reported when converted
    return marker is not None and "extra" in str(marker)


def _entry_points(text: str) -> dict[str, tuple[str, ...]]:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # script names keep their case
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    return {section: tuple(entry_point(f"{key} = {value}") for key, value in parser[section].items())
            for section in ("console_scripts", "gui_scripts") if section in parser}


def entry_point(text: str) -> str:
    """`name = module:func [extra]` as conda-build takes it: `name = module:func`."""
    match = _ENTRY.match(text)
    if not match:
        return text.strip()
    name, module, attribute, _ = match.groups()
    return f"{name} = {module}:{attribute}" if attribute else f"{name} = {module}"


def importable_modules(names: list[str], inits: dict[str, bytes]) -> tuple[str, ...]:
    """The modules a user imports from these wheel paths, most useful first.

    A top-level `x.py` or package `x/` is imported as `x`; a namespace package (no __init__.py,
    or a pkgutil/pkg_resources one) is not itself a test of anything, so its children are named
    instead (`zope.interface`).  Test and doc folders and private modules come last, and only
    when nothing else is there."""
    paths = [PurePosixPath(n) for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))]
    found: list[str] = []
    _collect(paths, (), inits, found)
    public = [m for m in found if m.split(".")[0] not in _NOT_IMPORTS and not m.split(".")[-1].startswith("_")]
    return tuple(public or found)


def _collect(paths: list[PurePosixPath], prefix: tuple[str, ...], inits: dict[str, bytes],
             found: list[str]) -> None:
    depth = len(prefix)
    children = sorted({p.parts[depth] for p in paths if len(p.parts) > depth and p.parts[:depth] == prefix})
    for child in children:
        here = prefix + (child,)
        if len(here) == len(prefix) + 1 and child.endswith(".py") and _IDENTIFIER.match(child[:-3]):
            if any(p.parts == here for p in paths):
                found.append(".".join(prefix + (child[:-3],)))
            continue
        if not _IDENTIFIER.match(child) or not any(len(p.parts) > len(here) and p.parts[:len(here)] == here for p in paths):
            continue
        init = "/".join(here) + "/__init__.py"
        if init in inits and not _namespace_init(inits[init]):
            found.append(".".join(here))
        elif depth < 3:  # a namespace: look one level down
            _collect(paths, here, inits, found)


def _namespace_init(code: bytes) -> bool:
    return b"extend_path" in code or b"declare_namespace" in code


# --- requirements in conda's terms ---------------------------------------------------------


@functools.cache
def _conda_names() -> dict[str, str]:
    """grayskull's map of PyPI names to conda-forge names (`msgpack` -> `msgpack-python`)."""
    from grayskull.base.track_packages import _get_track_info_from_file
    from grayskull.strategy.pypi import PYPI_CONFIG

    return {name: entry["conda_forge"] for name, entry in _get_track_info_from_file(PYPI_CONFIG).items()
            if isinstance(entry, dict) and entry.get("conda_forge")}


def conda_name(pypi_name: str) -> str:
    """The conda-forge package for a PyPI distribution: mapped where conda-forge renamed it,
    otherwise the name in lower case (conda names are lower case; `.` and `_` are kept)."""
    from packaging.utils import canonicalize_name

    return _conda_names().get(canonicalize_name(pypi_name), pypi_name.lower())


def conda_spec(requirement: str) -> tuple[str, str | None] | None:
    """(`name >=1,<2`, selector or None) for one Requires-Dist line; None when it never applies
    to a CPython conda build (a PyPy-only dependency, say)."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        raise UserError(f"the wheel declares a requirement pip cannot parse ({requirement!r}): "
                        "fix it in the package's metadata") from None
    spec = conda_name(parsed.name)
    version = ",".join(sorted((str(s) for s in parsed.specifier), key=lambda s: (not s.startswith(">"), s)))
    if version:
        spec += " " + version
    if parsed.marker is None:
        return spec, None
    selector = selector_of(parsed.marker)
    if selector == "False":
        return None
    return spec, None if selector == "True" else selector


def selector_of(marker: Marker) -> str:
    """A PEP 508 marker as a conda-build selector expression (`py<38`, `win`, `not osx`), or
    "True" / "False" when it holds for every conda build or for none."""
    folded = _fold(marker._markers)
    return folded if isinstance(folded, str) else str(folded)


def _fold(items) -> str | bool:
    """`and` binds tighter than `or` (PEP 508); constants are folded away."""
    if isinstance(items, tuple):
        return _atom(*items)
    groups: list[list[str | bool]] = [[]]
    for item in items:
        if item == "or":
            groups.append([])
        elif item != "and":
            groups[-1].append(_fold(item))
    alternatives: list[str] = []
    for terms in groups:
        if False in terms:
            continue
        kept = [f"({t})" if " or " in t else t for t in terms if t is not True]
        if not kept:
            return True
        alternatives.append(" and ".join(kept))
    return " or ".join(alternatives) if alternatives else False


_PLATFORMS = {  # marker value -> selector, for sys_platform / platform_system / os_name
    "win32": "win", "windows": "win", "nt": "win", "linux": "linux", "darwin": "osx", "posix": "unix",
}
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "arm64",
             "ppc64le": "ppc64le", "s390x": "s390x", "i686": "x86", "x86": "x86"}


def _atom(left, op, right) -> str | bool:
    variable, value = (left.value, right.value) if type(left).__name__ == "Variable" else (right.value, left.value)
    op = op.value
    if variable in ("python_version", "python_full_version"):
        return _python_atom(op, value)
    if variable in ("sys_platform", "platform_system", "os_name"):
        return _equality(op, _PLATFORMS.get(value.lower(), False))
    if variable == "platform_machine":
        return _equality(op, _MACHINES.get(value.lower(), False))
    if variable in ("implementation_name", "platform_python_implementation"):
        return _equality(op, value.lower() == "cpython")
    return False  # platform_release and the like: nothing a conda build can select on


def _equality(op: str, selector: str | bool) -> str | bool:
    if op == "==":
        return selector
    if op == "!=":
        return (not selector) if isinstance(selector, bool) else f"not {selector}"
    return False


def _python_atom(op: str, value: str) -> str | bool:
    """`python_version < "3.8"` -> `py<38`: conda-build's `py` is the major and minor as one number."""
    parts = value.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return False
    number = int(parts[0] + parts[1])
    operators = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!=", "~=": ">="}
    if op not in operators:
        return False
    if len(parts) > 2 and int(parts[2]) > 0:  # 3.8.1: a minor version is only partly in or out
        op = {"<": "<=", ">=": ">", "==": "=="}.get(op, op)
    return f"py{operators[op]}{number}"


def requires_python_allows(requires_python: str, python: str) -> bool:
    """Whether a build for `python` (MAJOR.MINOR) satisfies the wheel's Requires-Python."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        specifiers = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # pip ignores what it cannot parse; so does the build
    return any(specifiers.contains(f"{python}.{patch}", prereleases=True) for patch in (0, 99))
