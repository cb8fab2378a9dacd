"""tasks/archive.py: safe reading and reproducible writing of both conda package formats."""

from __future__ import annotations

import bz2
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import rattler
from conda_package_handling import api as cph

from _convert_helpers import file_info, index_json, link_info, tar_package
from tasks.archive import Member, read_package, write_package, zstd
from tasks.errors import UserError

STAMP = 1614834367
MEMBERS = [
    Member("lib/python3.6/site-packages/demo/__init__.py", b"x = 1\n", 0o664),
    Member("bin/demo", b"#!/opt/anaconda1anaconda2anaconda3/bin/python\n", 0o775),
    Member("share/demo/link.txt", b"", 0o777, "data.txt"),
    Member("share/demo/data.txt", b"data\n", 0o600),
    Member("info/index.json", json.dumps(index_json()).encode(), 0o644),
    Member("info/paths.json", b'{"paths": [], "paths_version": 1}', 0o644),
]
FORMATS = (".tar.bz2", ".conda")


def _normalised(members: list[Member]) -> list[Member]:
    """What a reader gets back: sorted, modes folded to 0o644 / 0o755, links 0o777."""
    def mode(member: Member) -> int:
        return 0o777 if member.link else 0o755 if member.mode & 0o111 else 0o644

    return sorted((Member(m.path, m.data, mode(m), m.link) for m in members), key=lambda m: m.path)


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_keeps_paths_bytes_links_and_normalised_modes(tmp_path: Path, suffix: str) -> None:
    package = tmp_path / f"demo-1.0-py36_0{suffix}"
    write_package(package, MEMBERS, timestamp=STAMP)
    assert sorted(read_package(package), key=lambda member: member.path) == _normalised(MEMBERS)


@pytest.mark.parametrize("suffix", FORMATS)
def test_same_members_in_any_order_give_identical_bytes(tmp_path: Path, suffix: str) -> None:
    first, second = tmp_path / f"a/demo-1.0-py36_0{suffix}", tmp_path / f"b/demo-1.0-py36_0{suffix}"
    write_package(first, MEMBERS, timestamp=STAMP)
    write_package(second, list(reversed(MEMBERS)), timestamp=STAMP)
    assert first.read_bytes() == second.read_bytes()
    assert [path.name for path in first.parent.iterdir()] == [first.name]  # no temporary file left


def test_tar_bz2_puts_info_first_and_records_nothing_of_the_writer(tmp_path: Path) -> None:
    package = tmp_path / "demo-1.0-py36_0.tar.bz2"
    write_package(package, MEMBERS, timestamp=STAMP)
    with tarfile.open(package, "r:bz2") as tar:
        infos = tar.getmembers()
    names = [info.name for info in infos]
    payload = sorted(name for name in names if not name.startswith("info/"))
    assert names == ["info/index.json", "info/paths.json", *payload]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname) for i in infos} == {(STAMP, 0, 0, "", "")}
    assert {info.name: info.mode for info in infos}["bin/demo"] == 0o755


def test_conda_is_a_stored_zip_with_fixed_dates_and_info_last(tmp_path: Path) -> None:
    package = tmp_path / "demo-1.0-py36_0.conda"
    write_package(package, MEMBERS, timestamp=STAMP)
    with zipfile.ZipFile(package) as archive:
        entries = archive.infolist()
        metadata = json.loads(archive.read("metadata.json"))
    assert [entry.filename for entry in entries] == [
        "metadata.json", "pkg-demo-1.0-py36_0.tar.zst", "info-demo-1.0-py36_0.tar.zst",
    ]
    assert metadata == {"conda_pkg_format_version": 2}
    stored_1980_unix = (zipfile.ZIP_STORED, (1980, 1, 1, 0, 0, 0), 3)
    assert {(e.compress_type, e.date_time, e.create_system) for e in entries} == {stored_1980_unix}


@pytest.mark.parametrize("suffix", FORMATS)
def test_other_tools_read_what_we_write(tmp_path: Path, suffix: str) -> None:
    package = tmp_path / f"demo-1.0-py36_0{suffix}"
    write_package(package, MEMBERS, timestamp=STAMP)
    cph.extract(str(package), dest_dir=str(tmp_path / "out"))
    assert (tmp_path / "out/bin/demo").read_bytes() == MEMBERS[1].data
    assert (tmp_path / "out/share/demo/link.txt").read_text() == "data\n"
    assert rattler.package.IndexJson.from_package_archive(package).subdir == "linux-64"


# Each row: what a hostile package holds, as (tar header, body).
HOSTILE = {
    "absolute path": (file_info("/etc/cron.d/evil", b"x"), b"x"),
    "dot-dot component": (file_info("lib/../../x", b"x"), b"x"),
    "backslash dot-dot": (file_info("..\\x", b"x"), b"x"),
    "windows drive": (file_info("C:/Windows/evil.dll", b"x"), b"x"),
    "symlink to /etc/passwd": (link_info("share/passwd", "/etc/passwd"), b""),
    "symlink escaping by ..": (link_info("share/demo/up", "../../../etc/passwd"), b""),
    "hardlink to a missing file": (link_info("share/hard", "share/none", tarfile.LNKTYPE), b""),
    "device file": (link_info("dev/sda", "", tarfile.CHRTYPE), b""),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_tar_bz2_is_refused(tmp_path: Path, case: str) -> None:
    package = tar_package(tmp_path / "demo-1.0-py36_0.tar.bz2", [HOSTILE[case]])
    with pytest.raises(UserError, match="refusing|outside|device|hardlink"):
        read_package(package)


def test_hostile_conda_is_refused(tmp_path: Path) -> None:
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as handle:
        handle.addfile(file_info("../evil", b"x"), io.BytesIO(b"x"))
    package = tmp_path / "demo-1.0-py36_0.conda"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("metadata.json", '{"conda_pkg_format_version": 2}')
        archive.writestr("pkg-demo-1.0-py36_0.tar.zst", zstd.compress(tar.getvalue()))
        archive.writestr("info-demo-1.0-py36_0.tar.zst", zstd.compress(tar.getvalue()))
    with pytest.raises(UserError, match="outside the install prefix"):
        read_package(package)


def test_a_path_twice_is_refused(tmp_path: Path) -> None:
    twice = (file_info("share/x", b"a"), b"a")
    with pytest.raises(UserError, match="twice"):
        read_package(tar_package(tmp_path / "demo-1.0-py36_0.tar.bz2", [twice, twice]))


def test_hardlink_becomes_a_copy_of_its_file(tmp_path: Path) -> None:
    entries = [
        (file_info("share/a", b"abc", 0o755), b"abc"),
        (link_info("share/b", "share/a", tarfile.LNKTYPE), b""),
    ]
    members = {m.path: m for m in read_package(tar_package(tmp_path / "demo-1.0-py36_0.tar.bz2", entries))}
    assert members["share/b"] == Member("share/b", b"abc", 0o755)


@pytest.mark.parametrize("suffix", FORMATS)
def test_truncated_package_is_corrupt(tmp_path: Path, suffix: str) -> None:
    package = tmp_path / f"demo-1.0-py36_0{suffix}"
    write_package(package, MEMBERS, timestamp=STAMP)
    package.write_bytes(package.read_bytes()[: package.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupt"):
        read_package(package)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("demo-1.0-py36_0.tar.bz2", bz2.compress(b"not a tar" * 100), "corrupt"),
        ("demo-1.0-py36_0.conda", b"PK not a zip", "corrupt"),
        ("demo-1.0-py36_0.zip", b"", "must end in"),
        ("missing-1.0-py36_0.conda", None, "does not exist"),
    ],
)
def test_unreadable_package_is_one_user_error(
    tmp_path: Path, name: str, data: bytes | None, message: str
) -> None:
    if data is not None:
        (tmp_path / name).write_bytes(data)
    with pytest.raises(UserError, match=message):
        read_package(tmp_path / name)
