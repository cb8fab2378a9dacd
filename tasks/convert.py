"""`conda convert`, in-house: re-target a pure-Python conda package at another subdir.

Between unix subdirs only info/index.json changes.  Across the unix / Windows line the payload
moves as conda lays out a prefix: `lib/pythonX.Y/` <-> `Lib/`, `bin/` <-> `Scripts/`, and each
entry point `bin/NAME` <-> `Scripts/NAME-script.py` + `Scripts/NAME.exe`.  info/files,
info/paths.json, info/has_prefix and info/no_link are rebuilt from the bytes written; the other
info/ files are kept as they are.  Everything happens in memory, in one pass over the package.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import posixpath
import re
import shlex
from pathlib import Path
from typing import Mapping, Any, Iterator, Sequence

import win_cli_launchers

from . import progress, subdirs
from .archive import Member, format_of, read_package, write_package
from .errors import UserError

# The placeholder conda (and rattler) replace with the install prefix when a has_prefix line names
# no other: conda.base.constants.PREFIX_PLACEHOLDER.
PREFIX_PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
PYTHON_SHEBANG = f"#!{PREFIX_PLACEHOLDER}/bin/python\n".encode()

_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
_MACH_O = ("feedface", "feedfacf", "cefaedfe", "cffaedfe", "cafebabe")  # 32/64-bit, both byte orders, fat
_ELF_MACHO = (b"\x7fELF", *(bytes.fromhex(magic) for magic in _MACH_O))
# The info/ files this module writes; any input copies are replaced.
_REBUILT = ("info/index.json", "info/files", "info/paths.json", "info/has_prefix", "info/no_link")
_LIB_PYTHON = re.compile(r"^lib/python(\d+\.\d+)/")
_UNIX_SCRIPT = re.compile(r"^bin/([^/]+)$")
_WIN_SCRIPT = re.compile(r"^Scripts/([^/]+)-script\.py$")
# A Python shebang, or the /bin/sh trampoline pip writes when the interpreter path is too long.
_SHEBANGS = (
    re.compile(rb"\A#!/bin/sh\n'''exec' [^\n]*python[^\n]*\n' '''\n"),
    re.compile(rb"\A#![^\n]*python[^\n]*\n"),
)
_EXACT_MINOR = re.compile(r"^=?=?(\d+)\.(\d+)(?:\.\*|\.\d+)?$")
_RANGE_MINOR = re.compile(r"^>=(\d+)\.(\d+)(?:\.\d+)*,<(\d+)\.(\d+)(?:\.0)*(?:a0)?$")


@dataclasses.dataclass(frozen=True)
class Prefix:
    """A file conda rewrites at install: the placeholder it holds and how to replace it."""

    placeholder: str
    mode: str  # "text" or "binary"


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How one package moves: its subdirs and the folder renames between their layouts."""

    source: str
    target: str
    moves: tuple[tuple[str, str], ...]

    @property
    def windows_involved(self) -> bool:
        return subdirs.is_windows(self.source) or subdirs.is_windows(self.target)


@dataclasses.dataclass(frozen=True)
class _Info:
    """What the converter needs from the input's info/: index.json, its timestamp in seconds,
    the prefix records and the no_link paths."""

    index: dict[str, Any]
    mtime: int
    prefixes: dict[str, Prefix]
    no_link: set[str]


@dataclasses.dataclass(frozen=True)
class _Output:
    """A payload file to write, the input path it comes from and that input's prefix record."""

    member: Member
    origin: str
    prefix: Prefix | None


def convert(source: Path, target_subdir: str, output: Path, *, force: bool = False) -> Path:
    """Write `source` (a .tar.bz2 or .conda package of one subdir) converted for target_subdir at
    `output` (its suffix .tar.bz2 or .conda chooses the output format); return output.

    Raises UserError for: noarch input, compiled code (unless force), hostile or corrupt archive,
    unknown subdir.
    """
    convert_all(source, [(target_subdir, output)], force=force)
    return output


def convert_all(source: Path, outputs: Sequence[tuple[str, Path]], *, force: bool = False,
                depends: Mapping[str, Sequence[str]] | None = None) -> None:
    """Write `source` converted for each (subdir, output) pair, as one `conda convert -p A -p B …`.

    `depends` gives a subdir its own run requirements where the recipe selects them per platform
    (`colorama  # [win]`); `conda convert` keeps the input's for every subdir.

    The package is read and checked once.  Every subdir and output name is checked before the
    first write; each output is written whole under a temporary name and renamed (write_package),
    so a failure part-way leaves the outputs written so far complete and the others untouched.
    """
    if not outputs:
        return
    for target_subdir, output in outputs:
        if target_subdir not in subdirs.ALL:
            raise UserError(f"unknown subdir {target_subdir!r}: use one of {', '.join(subdirs.ALL)}")
        format_of(output)  # a bad output name fails before any work
    members = read_package(source)
    info = {member.path: member for member in members if member.path.startswith("info/")}
    payload = [member for member in members if not member.path.startswith("info/")]
    found = _read_info(source, info)
    plans = [(_plan(source, found.index, payload, subdir), output) for subdir, output in outputs]
    launchers = _launchers(payload, plans[0][0].source)
    if not force:
        _refuse_compiled(source, payload, launchers)
    kept = [member for path, member in info.items() if path not in _REBUILT]
    with progress.bar(len(plans), f"converting {source.name}", unit="file") as done:
        for plan, output in plans:
            _write_converted(source, plan, output, payload, found, launchers, kept, (depends or {}).get(plan.target))
            done.update()


def _write_converted(source: Path, plan: _Plan, output: Path, payload: list[Member], found: _Info,
                     launchers: set[str], kept: list[Member], depends: Sequence[str] | None) -> None:
    """One output: the payload rewritten for plan.target, with its info/ files rebuilt (and its
    own run requirements, when given)."""
    converted = list(_convert_payload(payload, plan, found.prefixes, launchers))
    _refuse_collisions(source, converted)
    index = {**found.index, **_index_fields(plan.target)}
    if depends is not None:
        index["depends"] = list(depends)
    rebuilt = _info_files(index, converted, found.no_link)
    write_package(output, [*kept, *rebuilt, *(out.member for out in converted)], timestamp=found.mtime)


def _read_info(source: Path, info: dict[str, Member]) -> _Info:
    """The input's metadata; any malformed part of it is one UserError."""
    if "info/index.json" not in info:
        raise UserError(f"{source.name} has no info/index.json: it is not a conda package")
    try:
        index = json.loads(info["info/index.json"].data)
        paths = json.loads(info["info/paths.json"].data)["paths"] if "info/paths.json" in info else []
        no_link = {entry["_path"] for entry in paths if entry.get("no_link")}
        if "info/no_link" in info:
            no_link.update(info["info/no_link"].data.decode().splitlines())
        prefixes = {**_has_prefix(info.get("info/has_prefix")), **_paths_prefixes(paths)}
        return _Info(index, _seconds(index.get("timestamp")), prefixes, no_link)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UserError(f"{source.name} has malformed info/ metadata ({err!r}): delete it and run doit to rebuild it") from None


def _has_prefix(member: Member | None) -> dict[str, Prefix]:
    """info/has_prefix lines: `PATH` alone (default placeholder, text) or `PLACEHOLDER MODE PATH`."""
    found: dict[str, Prefix] = {}
    for line in member.data.decode().splitlines() if member else ():
        parts = [part.strip("\"'") for part in shlex.split(line, posix=False)]
        if len(parts) == 1:
            found[parts[0]] = Prefix(PREFIX_PLACEHOLDER, "text")
        elif len(parts) == 3:
            found[parts[2]] = Prefix(parts[0], parts[1])
    return found


def _paths_prefixes(paths: list[dict[str, Any]]) -> dict[str, Prefix]:
    return {
        entry["_path"]: Prefix(entry["prefix_placeholder"], entry.get("file_mode", "text"))
        for entry in paths
        if entry.get("prefix_placeholder")
    }


def _plan(source: Path, index: dict[str, Any], payload: list[Member], target: str) -> _Plan:
    subdir = index.get("subdir")
    if index.get("noarch") or subdir == "noarch":
        raise UserError(f"{source.name} is noarch: it serves every platform already and needs no conversion")
    if subdir not in subdirs.ALL:
        known = ", ".join(subdirs.ALL)
        raise UserError(f"{source.name} is for unknown subdir {subdir!r}: convert packages of {known}")
    if subdirs.is_windows(subdir) == subdirs.is_windows(target):
        return _Plan(subdir, target, ())
    python = _python_version(source, index, payload, subdirs.is_windows(subdir))
    unix_to_win = [(f"lib/python{python}/", "Lib/")] if python else []
    unix_to_win.append(("bin/", "Scripts/"))
    if subdirs.is_windows(target):
        return _Plan(subdir, target, tuple(unix_to_win))
    return _Plan(subdir, target, tuple((win, unix) for unix, win in unix_to_win))


def _python_version(source: Path, index: dict[str, Any], payload: list[Member], windows: bool) -> str | None:
    """X.Y from the package's python dependency, else from its one lib/pythonX.Y folder."""
    pinned = pinned_python(index.get("depends", []))
    if windows:
        if pinned is None and any(member.path.startswith("Lib/") for member in payload):
            raise UserError(
                f"{source.name} has files under Lib/ but no python dependency naming their version: "
                "add one such as `python >=3.6,<3.7.0a0` to its run requirements"
            )
        return pinned
    folders = {match[1] for member in payload if (match := _LIB_PYTHON.match(member.path))}
    python = pinned or (next(iter(folders)) if len(folders) == 1 else None)
    if folders and folders != {python}:
        found = ", ".join(f"lib/python{folder}" for folder in sorted(folders))
        raise UserError(
            f"{source.name} has files under {found} but depends on python {python or '(unpinned)'}: "
            "rebuild it for one Python version"
        )
    return python


def pinned_python(depends: list[str]) -> str | None:
    """X.Y of the first python dependency that allows one minor only (`>=3.6,<3.7.0a0`, `3.12.*`)."""
    for spec in depends:
        name, _, rest = spec.strip().partition(" ")
        if name == "python" and rest.split() and (minor := _pinned_minor(rest.split()[0])):
            return minor
    return None


def _pinned_minor(version: str) -> str | None:
    if exact := _EXACT_MINOR.match(version):
        return f"{exact[1]}.{exact[2]}"
    bounds = _RANGE_MINOR.match(version)
    if bounds and bounds[1] == bounds[3] and int(bounds[4]) == int(bounds[2]) + 1:
        return f"{bounds[1]}.{bounds[2]}"
    return None


def _launchers(payload: list[Member], subdir: str) -> set[str]:
    """Each Scripts/NAME.exe beside a Scripts/NAME-script.py of a Windows package: ours to replace."""
    if not subdirs.is_windows(subdir):
        return set()
    return {f"Scripts/{match[1]}.exe" for member in payload if (match := _WIN_SCRIPT.match(member.path))}


def _refuse_compiled(source: Path, payload: list[Member], launchers: set[str]) -> None:
    for member in payload:
        if member.path in launchers:
            continue
        by_name = member.path.lower().endswith(_COMPILED_SUFFIXES)
        if by_name or (member.link is None and _is_binary_code(member.data)):
            raise UserError(
                f"{source.name} holds compiled code ({member.path}), which would not run on the target: "
                "build it on that platform, or pass force=true to convert it anyway"
            )


def _is_binary_code(data: bytes) -> bool:
    """ELF, Mach-O (thin or fat) or a Windows PE image."""
    if data.startswith(_ELF_MACHO):
        return True
    # "MZ" alone also starts ordinary text; a real PE image points at its "PE\0\0" header at 0x3c.
    if not data.startswith(b"MZ") or len(data) < 0x40:
        return False
    offset = int.from_bytes(data[0x3C:0x40], "little")
    return data[offset : offset + 4] == b"PE\0\0"


def _convert_payload(
    payload: list[Member], plan: _Plan, prefixes: dict[str, Prefix], launchers: set[str]
) -> Iterator[_Output]:
    for member in payload:
        if member.path in launchers:
            continue  # made again for the target below, or dropped for unix
        prefix = prefixes.get(member.path)
        name = _entry_point_name(member, plan.source) if plan.windows_involved else None
        if name is None:
            yield _Output(_moved(member, plan), member.path, prefix)
        elif subdirs.is_windows(plan.target):
            body = member.data if subdirs.is_windows(plan.source) else _strip_shebang(member.data)
            yield _Output(Member(f"Scripts/{name}-script.py", body, 0o644), member.path, prefix)
            yield _Output(Member(f"Scripts/{name}.exe", _launcher(plan.target), 0o755), member.path, None)
        else:
            script = Member(f"bin/{name}", PYTHON_SHEBANG + _strip_shebang(member.data), 0o755)
            yield _Output(script, member.path, Prefix(PREFIX_PLACEHOLDER, "text"))


def _refuse_collisions(source: Path, outputs: list[_Output]) -> None:
    seen: dict[str, str] = {}
    for out in outputs:
        if out.member.path in seen:
            raise UserError(
                f"{source.name}: {seen[out.member.path]} and {out.origin} would both become "
                f"{out.member.path}: rename one in the recipe"
            )
        seen[out.member.path] = out.origin


def _entry_point_name(member: Member, subdir: str) -> str | None:
    """NAME if member is a Python entry point: a text bin/NAME with a python shebang on unix,
    Scripts/NAME-script.py on Windows."""
    if member.link is not None:
        return None
    if subdirs.is_windows(subdir):
        match = _WIN_SCRIPT.match(member.path)
        return match[1] if match else None
    match = _UNIX_SCRIPT.match(member.path)
    return match[1] if match and any(shebang.match(member.data) for shebang in _SHEBANGS) else None


def _strip_shebang(script: bytes) -> bytes:
    for shebang in _SHEBANGS:
        if match := shebang.match(script):
            return script[match.end() :]
    return script


@functools.cache
def _launcher(subdir: str) -> bytes:
    """The console launcher conda puts beside Scripts/NAME-script.py, for the target's arch."""
    folder = Path(win_cli_launchers.__file__).parent
    name = {"win-32": "cli-32.exe", "win-64": "cli-64.exe"}.get(subdir)
    if name is None:
        # win_cli_launchers 0.1 ships no arm64 launcher; Windows on Arm runs cli-64.exe emulated.
        name = "cli-arm64.exe" if (folder / "cli-arm64.exe").is_file() else "cli-64.exe"
    return (folder / name).read_bytes()


def _moved(member: Member, plan: _Plan) -> Member:
    """member at its place in the target layout; a symlink re-aimed at its moved target."""
    path = _move(member.path, plan)
    if member.link is None or not plan.moves:
        return dataclasses.replace(member, path=path)
    target = _move(_link_target(member), plan)
    link = posixpath.relpath(target, posixpath.dirname(path) or ".")
    return dataclasses.replace(member, path=path, link=link)


def _link_target(link: Member) -> str:
    """The package path a symlink points at."""
    assert link.link is not None
    return posixpath.normpath(posixpath.join(posixpath.dirname(link.path), link.link))


def _move(path: str, plan: _Plan) -> str:
    for old, new in plan.moves:
        if (path + "/").startswith(old):
            return (new + path[len(old) :]).rstrip("/")
    return path


def _index_fields(subdir: str) -> dict[str, str]:
    return {"subdir": subdir, "platform": subdirs.os_of(subdir), "arch": subdirs.arch_of(subdir)}


def _seconds(timestamp: Any) -> int:
    """index.json's timestamp in seconds: the mtime of every entry, so rebuilds are identical."""
    stamp = int(timestamp or 0)
    # conda-build writes milliseconds; packages older than that wrote seconds.
    return stamp // 1000 if stamp > 10**11 else stamp


def _info_files(index: dict[str, Any], outputs: list[_Output], no_link: set[str]) -> list[Member]:
    """info/index.json, paths.json, files, has_prefix and no_link for the payload written."""
    outputs = sorted(outputs, key=lambda out: out.member.path)
    files = {out.member.path: out.member for out in outputs}
    prefixes = {out.member.path: out.prefix for out in outputs if _holds(out.member, out.prefix)}
    unlinked = {out.member.path for out in outputs if out.origin in no_link}
    entries = [
        _paths_entry(out.member, files, prefixes.get(out.member.path), out.member.path in unlinked)
        for out in outputs
    ]
    texts = {
        "info/index.json": json.dumps(index, indent=2, sort_keys=True),
        "info/paths.json": json.dumps({"paths": entries, "paths_version": 1}, indent=2, sort_keys=True),
        "info/files": "".join(f"{path}\n" for path in files),
        "info/has_prefix": "".join(
            f"{_quote(prefix.placeholder)} {prefix.mode} {_quote(path)}\n"
            for path, prefix in prefixes.items()
        ),
        "info/no_link": "".join(f"{path}\n" for path in sorted(unlinked)),
    }
    return [Member(path, text.encode(), 0o644) for path, text in texts.items() if text]


def _holds(member: Member, prefix: Prefix | None) -> bool:
    """Whether the written bytes still hold the placeholder (a dropped shebang may have taken it)."""
    return prefix is not None and member.link is None and prefix.placeholder.encode() in member.data


def _paths_entry(
    member: Member, files: dict[str, Member], prefix: Prefix | None, no_link: bool
) -> dict[str, Any]:
    """paths.json's record of member; a symlink gets its own size and its target's hash, as
    rattler-build writes them."""
    path_type = "hardlink" if member.link is None else "softlink"
    entry: dict[str, Any] = {"_path": member.path, "path_type": path_type}
    content = _resolve(member, files)
    if content is not None:
        entry["sha256"] = hashlib.sha256(content.data).hexdigest()
    entry["size_in_bytes"] = len(member.data if member.link is None else member.link.encode())
    if prefix is not None:
        entry.update(file_mode=prefix.mode, prefix_placeholder=prefix.placeholder)
    if no_link:
        entry["no_link"] = True
    return entry


def _resolve(member: Member, files: dict[str, Member]) -> Member | None:
    """The file a (chain of) symlink(s) ends at inside the package, None if it leaves or loops."""
    seen: set[str] = set()
    current: Member | None = member
    while current is not None and current.link is not None and current.path not in seen:
        seen.add(current.path)
        current = files.get(_link_target(current))
    return current if current is not None and current.link is None else None


def _quote(text: str) -> str:
    return f'"{text}"' if " " in text else text


def complete(source: Path, output: Path, about: dict[str, Any] | None = None,
             payload: Sequence[Member] | None = None) -> Path:
    """Finish a package freshly packed from a staging prefix, as conda-build would have.

    py-rattler-build's `assemble_package` records no prefix placeholders and writes neither
    info/files nor info/has_prefix.  Every text file holding conda's placeholder (entry-point
    shebangs) is recorded for rewriting at install; output's suffix chooses its format.  `about`
    adds the keys conda-build keeps in info/about.json that assemble_package has no argument for
    (doc_url, dev_url, license_file, extra).  payload: the package's files, when source holds
    only its info/ (they are not read back).
    """
    format_of(output)
    members = read_package(source)
    info = {member.path: member for member in members if member.path.startswith("info/")}
    found = _read_info(source, info)
    text = Prefix(PREFIX_PLACEHOLDER, "text")
    files = [member for member in members if not member.path.startswith("info/")] if payload is None else payload
    outputs = [_Output(member, member.path, text if PREFIX_PLACEHOLDER.encode() in member.data else None)
               for member in files]
    kept = [_about(member, about) if path == "info/about.json" and about else member
            for path, member in info.items() if path not in _REBUILT]
    rebuilt = _info_files(found.index, outputs, found.no_link)
    write_package(output, [*kept, *rebuilt, *(out.member for out in outputs)], timestamp=found.mtime)
    return output


def convert_release(config, python: str | None, source: Path, outputs: Sequence[tuple[str, Path]], *,
                    force: bool = False) -> None:
    """The `convert:<python>` task: convert_all, with each subdir's run requirements as the
    recipe renders them for that subdir where they differ from the native build's (whose subdir
    is the folder the build sits in)."""
    from . import build, render
    from . import project as P

    text = P.paths(config).meta.read_text(encoding="utf-8")

    def depends(subdir: str) -> list[str]:
        return build.depends(render.render(text, python, subdir), python)

    native = depends(source.parent.name)
    own = {subdir: depends(subdir) for subdir, _ in outputs}
    convert_all(source, outputs, force=force, depends={s: d for s, d in own.items() if d != native})


def _about(member: Member, about: dict[str, Any]) -> Member:
    """info/about.json with `about`'s keys added; sorted keys, so rebuilds stay byte-identical."""
    merged = {**json.loads(member.data), **about}
    return dataclasses.replace(member, data=json.dumps(merged, indent=2, sort_keys=True).encode())
