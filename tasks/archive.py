"""Conda packages in both formats: read safely into memory, write deterministically.

`.tar.bz2` is one bzip2 tar, info/ first.  `.conda` is a stored zip of `metadata.json`,
`pkg-STEM.tar.zst` and `info-STEM.tar.zst`, in that order (info last, so a reader fetching the
tail of the file over HTTP gets the metadata), as conda-package-handling writes it.
"""

from __future__ import annotations

import bz2
import io
import json
import os
import posixpath
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

try:  # Python 3.14+ has it built in; conda-package-handling installs the backport before that.
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd  # type: ignore[no-redef]

from .errors import UserError
from .fsio import atomic_path

TAR_BZ2 = ".tar.bz2"
CONDA = ".conda"
FORMAT_VERSION = 2
# conda-build's bzip2 level and conda-package-handling's default zstd level for .conda.
BZ2_LEVEL = 9
ZSTD_LEVEL = 19
# The zip format cannot store dates before 1980; a fixed one keeps the bytes reproducible.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_UNIX = 3  # zip "made by" system; zipfile would write 0 on Windows and change the bytes
_SEPARATORS = re.compile(r"[/\\]")  # a Windows install would honour a backslash as well
_READ_ERRORS = (OSError, EOFError, ValueError, tarfile.TarError, zipfile.BadZipFile, zstd.ZstdError)


class _Unsafe(Exception):
    """What makes an archive unsafe to install; read_package turns it into a UserError."""


@dataclass(frozen=True)
class Member:
    """One file of a package: its relative path, bytes and permission bits, or a symlink."""

    path: str
    data: bytes
    mode: int
    link: str | None = None  # symlink target, relative to the link's folder


def format_of(path: Path) -> str:
    """`.tar.bz2` or `.conda`, from the file name."""
    for suffix in (TAR_BZ2, CONDA):
        if path.name.endswith(suffix):
            return suffix
    raise UserError(f"{path.name} is not a conda package name: it must end in {TAR_BZ2} or {CONDA}")


def stem_of(path: Path) -> str:
    """`NAME-VERSION-BUILD`: the file name without its format suffix."""
    return path.name[: -len(format_of(path))]


def read_package(path: Path) -> list[Member]:
    """Every file and symlink of the package at path; refuses hostile or corrupt archives."""
    suffix = format_of(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist: build the package first or fix the path")
    try:
        if suffix == CONDA:
            members = _read_conda(path)
        else:
            members = list(_read_tar(bz2.decompress(path.read_bytes())))
        _refuse_duplicates(members)
    except _READ_ERRORS as err:
        raise UserError(f"{path.name} is corrupt ({err}): rebuild or download it again") from None
    except _Unsafe as err:
        fix = "delete it and run doit to rebuild it, or get it from a channel you trust"
        raise UserError(f"{path.name} is unsafe to install ({err}): {fix}") from None
    return members


def read_folder(folder: Path) -> list[Member]:
    """Every file and symlink under folder, as package members (paths relative to it)."""
    members = []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            members.append(Member(name, b"", 0o777, _safe_link(name, os.readlink(path))))
        elif path.is_file():
            members.append(Member(name, path.read_bytes(), path.stat().st_mode & 0o777))
    return members


def write_package(path: Path, members: Iterable[Member], *, timestamp: int) -> None:
    """Write members as the package at path (format from its suffix), byte-reproducibly, atomically.

    timestamp (seconds) becomes every entry's mtime.
    """
    suffix = format_of(path)
    ordered = sorted(members, key=lambda member: (not _is_info(member.path), member.path))
    with atomic_path(path) as tmp:
        if suffix == TAR_BZ2:
            tmp.write_bytes(bz2.compress(_tar(ordered, timestamp), BZ2_LEVEL))
        else:
            _write_conda(tmp, stem_of(path), ordered, timestamp)


def _is_info(path: str) -> bool:
    return path.startswith("info/")


def _read_conda(path: Path) -> list[Member]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if "metadata.json" not in names:
            raise ValueError("no metadata.json")
        version = json.loads(archive.read("metadata.json")).get("conda_pkg_format_version")
        if version != FORMAT_VERSION:
            raise UserError(
                f"{path.name} is .conda format {version}, this converter reads {FORMAT_VERSION}: "
                "repackage it with conda-package-handling"
            )
        members: list[Member] = []
        for component in ("pkg", "info"):
            name = _component(names, component)
            members.extend(_read_tar(zstd.decompress(archive.read(name))))
    return members


def _component(names: list[str], component: str) -> str:
    found = [name for name in names if name.startswith(f"{component}-") and name.endswith(".tar.zst")]
    if len(found) != 1:
        raise ValueError(f"expected one {component}-*.tar.zst, found {len(found)}")
    return found[0]


def _read_tar(blob: bytes) -> Iterator[Member]:
    """The members of an uncompressed tar; hardlinks become copies of the file they name."""
    files: dict[str, Member] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
        for info in tar:
            name = _safe_path(info.name)
            if info.isdir():
                continue  # folders come back with the files inside them
            if info.issym():
                yield Member(name, b"", 0o777, _safe_link(name, info.linkname))
            elif info.islnk():
                yield _hardlink(name, info, files)
            elif info.isreg():
                handle = tar.extractfile(info)
                assert handle is not None  # a regular file always has a body
                files[name] = Member(name, handle.read(), info.mode & 0o777)
                yield files[name]
            else:
                raise _Unsafe(f"{name} is a device or special file")


def _hardlink(name: str, info: tarfile.TarInfo, files: dict[str, Member]) -> Member:
    target = files.get(_safe_path(info.linkname))
    if target is None:
        raise _Unsafe(f"hardlink {name} names {info.linkname}, which is no earlier file")
    return Member(name, target.data, target.mode)


def _safe_path(name: str) -> str:
    """name as a clean relative path; refuses absolute paths and `..`."""
    parts = [part for part in _SEPARATORS.split(name) if part not in ("", ".")]
    if _is_absolute(name) or ".." in parts or not parts:
        raise _Unsafe(f"{name!r} would land outside the install prefix")
    return "/".join(parts)


def _safe_link(name: str, target: str) -> str:
    """target, if the symlink name -> target stays inside the package."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target.replace("\\", "/")))
    if _is_absolute(target) or resolved == ".." or resolved.startswith("../"):
        raise _Unsafe(f"symlink {name} -> {target} points outside the install prefix")
    return target


def _is_absolute(path: str) -> bool:
    """Absolute on unix or on Windows (`/x`, `\\x`, `C:x`)."""
    return path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) is not None


def _refuse_duplicates(members: list[Member]) -> None:
    """A path twice would let the second copy silently replace the first at install."""
    seen: set[str] = set()
    for member in members:
        if member.path in seen:
            raise _Unsafe(f"{member.path} appears twice")
        seen.add(member.path)


def _tar(members: list[Member], mtime: int) -> bytes:
    """An uncompressed tar of members, with nothing of the machine that wrote it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.path)
            info.mtime = mtime
            if member.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, member.link, 0o777
                tar.addfile(info)
            else:
                info.size = len(member.data)
                info.mode = 0o755 if member.mode & 0o111 else 0o644
                tar.addfile(info, io.BytesIO(member.data))
    return buffer.getvalue()


def _write_conda(target: Path, stem: str, members: list[Member], mtime: int) -> None:
    info = [member for member in members if _is_info(member.path)]
    pkg = [member for member in members if not _is_info(member.path)]
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        _store(archive, "metadata.json", json.dumps({"conda_pkg_format_version": FORMAT_VERSION}).encode())
        # A one-shot compress writes the content size in the frame: readers then allocate less.
        _store(archive, f"pkg-{stem}.tar.zst", zstd.compress(_tar(pkg, mtime), level=ZSTD_LEVEL))
        _store(archive, f"info-{stem}.tar.zst", zstd.compress(_tar(info, mtime), level=ZSTD_LEVEL))


def _store(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    entry.create_system = _UNIX
    entry.external_attr = 0o100644 << 16
    archive.writestr(entry, data)
