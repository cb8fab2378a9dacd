"""Real conda packages for the archive and converter tests: staged trees, rattler-build, tar by hand,
and a file:// channel that py-rattler solves and installs from."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable

import rattler
import win_cli_launchers
from rattler_build import ArchiveType, assemble_package

NAME, VERSION = "demo", "1.0"
TIMESTAMP = datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
ARCHIVE_TYPES = {".tar.bz2": ArchiveType.TarBz2, ".conda": ArchiveType.Conda}
BUILD_PREFIX = "/home/builder/conda-bld/demo_1614834367/_h_env"
GREETING = "demo says hi"
INIT_PY = f'def main():\n    print("{GREETING}")\n    return 0\n'
# conda-build's entry point template, without its first (shebang) line.
ENTRY_POINT = """# -*- coding: utf-8 -*-
import re
import sys

from demo import main

if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def stage_unix(root: Path, python: str = "3.6") -> Path:
    """A unix prefix as conda-build leaves it: a package, an entry point, data and a symlink."""
    _write(root / f"lib/python{python}/site-packages/demo/__init__.py", INIT_PY)
    _write(root / "bin/demo", f"#!{BUILD_PREFIX}/bin/python\n{ENTRY_POINT}", 0o755)
    _stage_data(root)
    return root


def stage_windows(root: Path, launcher: bytes, python: str = "3.6") -> Path:
    """The same package as conda-build lays it out on Windows."""
    _write(root / "Lib/site-packages/demo/__init__.py", INIT_PY)
    _write(root / "Scripts/demo-script.py", ENTRY_POINT)
    (root / "Scripts/demo.exe").write_bytes(launcher)
    _stage_data(root)
    return root


def launcher(subdir: str) -> bytes:
    """The launcher conda puts beside Scripts/NAME-script.py (x64 also serves win-arm64 today)."""
    name = "cli-32.exe" if subdir == "win-32" else "cli-64.exe"
    return (Path(win_cli_launchers.__file__).parent / name).read_bytes()


def _stage_data(root: Path) -> None:
    _write(root / "share/demo/data.txt", "data\n")
    (root / "share/demo/link.txt").symlink_to("data.txt")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def assemble(
    out_dir: Path, files_dir: Path, subdir: str, suffix: str, *, python: str = "3.6",
    depends: list[str] | None = None, noarch: str | None = None,
) -> Path:
    """A package of files_dir built by rattler-build, depending on that python minor."""
    minor = int(python.split(".")[1])
    output = assemble_package(
        NAME, VERSION, subdir, f"py{python.replace('.', '')}_0", out_dir,
        files_dir=files_dir,
        depends=[f"python >={python},<3.{minor + 1}.0a0"] if depends is None else depends,
        noarch=noarch, archive_type=ARCHIVE_TYPES[suffix], timestamp=TIMESTAMP,
    )
    return Path(output.path)


def publish(channel: Path, subdirs: Iterable[str]) -> Path:
    """Index channel, first adding for each subdir a `python` 3.6.15 holding no file: enough for
    the solver to satisfy the packages' python dependency."""
    with tempfile.TemporaryDirectory() as empty:
        for subdir in subdirs:
            assemble_package(
                "python", "3.6.15", subdir, "0", channel / subdir,
                files_dir=empty, archive_type=ArchiveType.Conda, timestamp=TIMESTAMP,
            )
    (channel / "noarch").mkdir(exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel))  # async: not awaiting it would index nothing
    return channel


def install(channel: Path, subdir: str, prefix: Path, cache: Path) -> Path:
    """Solve `demo` from channel for subdir and install it at prefix, as conda would."""

    async def run() -> None:
        channels = [rattler.Channel(channel.as_uri())]
        records = await rattler.solve(channels, [NAME], platforms=[subdir, "noarch"])
        await rattler.install(
            records, prefix, platform=rattler.Subdir(subdir), cache_dir=cache, show_progress=False
        )

    asyncio.run(run())
    return prefix


def index_json(subdir: str = "linux-64") -> dict[str, object]:
    return {
        "name": NAME, "version": VERSION, "build": "py36_0", "build_number": 0, "subdir": subdir,
        "depends": ["python >=3.6,<3.7.0a0"], "timestamp": int(TIMESTAMP.timestamp() * 1000),
    }


def tar_package(
    path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], index: dict[str, object] | str | None = None
) -> Path:
    """A .tar.bz2 written by hand with tarfile: info/index.json (index, or its text as given),
    then entries exactly as given."""
    body = (index if isinstance(index, str) else json.dumps(index or index_json())).encode()
    with tarfile.open(path, "w:bz2") as tar:
        tar.addfile(file_info("info/index.json", body), io.BytesIO(body))
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def file_info(name: str, data: bytes, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info


def link_info(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info
