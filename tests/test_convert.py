"""tasks/convert.py: packages converted to every subdir install where conda puts files.

Inputs are real packages built by rattler-build from staged prefixes (or, for hostile and
conda-build-only shapes, tars written by hand); outputs are checked with py-rattler (index.json,
paths.json against the extracted bytes) and installed from an indexed file:// channel with
rattler's solver and installer.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from rattler.package import IndexJson, PathsEntry, PathsJson
from rattler.package_streaming import extract

import _convert_helpers as h
from tasks import subdirs
from tasks.archive import read_package
from tasks.convert import PREFIX_PLACEHOLDER, convert, convert_all, pinned_python
from tasks.errors import UserError

FORMATS = (".tar.bz2", ".conda")
OTHER = {".tar.bz2": ".conda", ".conda": ".tar.bz2"}
PY36 = "demo-1.0-py36_0"
SITE = "lib/python3.6/site-packages/demo/__init__.py"
DATA = ("share/demo/data.txt", "share/demo/link.txt")
ALL_CASES = [pytest.param(sub, suffix, id=f"{sub}{suffix}") for sub in subdirs.ALL for suffix in FORMATS]


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The linux-64 py36 package in both formats, built from one staged prefix."""
    root = tmp_path_factory.mktemp("sources")
    staged = h.stage_unix(root / "stage")
    return {suffix: h.assemble(root / suffix, staged, "linux-64", suffix) for suffix in FORMATS}


@pytest.fixture(scope="session")
def channels(tmp_path_factory: pytest.TempPathFactory, sources: dict[str, Path]) -> dict[str, Path]:
    """Per output format, an indexed channel of the package converted (from the other format)
    to all 13 subdirs."""
    root = tmp_path_factory.mktemp("channels")
    found = {}
    for suffix in FORMATS:
        channel = root / suffix.strip(".")
        for subdir in subdirs.ALL:
            convert(sources[OTHER[suffix]], subdir, channel / subdir / f"{PY36}{suffix}")
        found[suffix] = h.publish(channel, subdirs.ALL)
    return found


@pytest.fixture(scope="session")
def windows_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A win-64 package as conda-build makes it on Windows, launcher included."""
    root = tmp_path_factory.mktemp("windows")
    staged = h.stage_windows(root / "stage", h.launcher("win-64"))
    return h.assemble(root / "out", staged, "win-64", ".tar.bz2")


@pytest.mark.parametrize(("subdir", "suffix"), ALL_CASES)
def test_metadata_names_the_target_and_hashes_the_bytes(
    channels: dict[str, Path], tmp_path: Path, subdir: str, suffix: str
) -> None:
    package = channels[suffix] / subdir / f"{PY36}{suffix}"
    index = IndexJson.from_package_archive(package)
    assert (index.subdir, index.platform) == (subdir, subdirs.os_of(subdir))
    assert index.arch == subdirs.arch_of(subdir)
    extract(package, tmp_path)
    declared = _paths(package)
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if not p.is_dir()}
    assert set(declared) == {path for path in on_disk if not path.startswith("info/")}
    for relative, entry in declared.items():
        data = (tmp_path / relative).read_bytes()  # a symlink's hash is its target's
        assert entry.sha256 == hashlib.sha256(data).digest(), relative
        assert entry.path_type.softlink or entry.size_in_bytes == len(data), relative
    assert (tmp_path / "info/files").read_text().splitlines() == sorted(declared)


@pytest.mark.parametrize(("subdir", "suffix"), ALL_CASES)
def test_installs_where_conda_puts_files(
    channels: dict[str, Path], tmp_path: Path, subdir: str, suffix: str
) -> None:
    prefix = h.install(channels[suffix], subdir, tmp_path / "env", tmp_path / "cache")
    if subdirs.is_windows(subdir):
        assert (prefix / "Lib/site-packages/demo/__init__.py").read_text() == h.INIT_PY
        assert (prefix / "Scripts/demo-script.py").read_text() == h.ENTRY_POINT
        assert (prefix / "Scripts/demo.exe").read_bytes() == h.launcher(subdir)
        assert not (prefix / "bin").exists() and not (prefix / "lib").exists()
    else:
        assert (prefix / SITE).read_text() == h.INIT_PY
        assert (prefix / "bin/demo").read_text() == f"#!{h.BUILD_PREFIX}/bin/python\n{h.ENTRY_POINT}"
    assert (prefix / DATA[1]).read_text() == "data\n"


def test_native_entry_point_runs(channels: dict[str, Path], tmp_path: Path) -> None:
    prefix = h.install(channels[".conda"], "linux-64", tmp_path / "env", tmp_path / "cache")
    assert _run(prefix) == h.GREETING


def test_windows_to_linux_gets_a_shebang_conda_rewrites(windows_source: Path, tmp_path: Path) -> None:
    channel = tmp_path / "channel"
    output = convert(windows_source, "linux-64", channel / f"linux-64/{PY36}.conda")
    paths = _paths(output)
    assert set(paths) == {SITE, "bin/demo", *DATA}
    placeholder = paths["bin/demo"].prefix_placeholder
    assert placeholder.placeholder == PREFIX_PLACEHOLDER and placeholder.file_mode.text
    prefix = h.install(h.publish(channel, ["linux-64"]), "linux-64", tmp_path / "env", tmp_path / "cache")
    assert (prefix / "bin/demo").read_text() == f"#!{prefix}/bin/python\n{h.ENTRY_POINT}"
    assert os.access(prefix / "bin/demo", os.X_OK)
    assert _run(prefix) == h.GREETING


def test_windows_to_windows_swaps_the_launcher(windows_source: Path, tmp_path: Path) -> None:
    output = convert(windows_source, "win-32", tmp_path / f"{PY36}.tar.bz2")
    members = {m.path: m.data for m in read_package(output)}
    assert members["Scripts/demo.exe"] == h.launcher("win-32")
    assert members["Scripts/demo-script.py"].decode() == h.ENTRY_POINT


def test_unix_to_windows_and_back_restores_the_layout(sources: dict[str, Path], tmp_path: Path) -> None:
    windows = convert(sources[".conda"], "win-arm64", tmp_path / f"win/{PY36}.conda")
    back = convert(windows, "osx-arm64", tmp_path / f"osx/{PY36}.tar.bz2")
    before = {m.path: m.data for m in read_package(sources[".conda"]) if not m.path.startswith("info/")}
    after = {m.path: m.data for m in read_package(back) if not m.path.startswith("info/")}
    assert set(after) == set(before) and after[SITE] == before[SITE]
    assert after["bin/demo"] == f"#!{PREFIX_PLACEHOLDER}/bin/python\n{h.ENTRY_POINT}".encode()


def test_python_312_package_converts_by_its_dependency(tmp_path: Path) -> None:
    staged = h.stage_unix(tmp_path / "stage", python="3.12")
    source = h.assemble(tmp_path / "in", staged, "osx-64", ".conda", python="3.12")
    assert source.name == "demo-1.0-py312_0.conda"
    windows = _paths(convert(source, "win-64", tmp_path / "win/demo-1.0-py312_0.tar.bz2"))
    assert "Lib/site-packages/demo/__init__.py" in windows and not any(p.startswith("lib/") for p in windows)
    linux = _paths(convert(tmp_path / "win/demo-1.0-py312_0.tar.bz2", "linux-aarch64", tmp_path / "x.conda"))
    assert "lib/python3.12/site-packages/demo/__init__.py" in linux


def test_folder_names_the_python_when_the_dependency_does_not(tmp_path: Path) -> None:
    staged = h.stage_unix(tmp_path / "stage")
    source = h.assemble(tmp_path / "in", staged, "linux-64", ".conda", depends=["python"])
    output = convert(source, "win-64", tmp_path / f"{PY36}.conda")
    assert "Lib/site-packages/demo/__init__.py" in _paths(output)


def test_folder_and_dependency_disagreeing_is_refused(tmp_path: Path) -> None:
    staged = h.stage_unix(tmp_path / "stage")
    source = h.assemble(tmp_path / "in", staged, "linux-64", ".conda", depends=["python 3.7.*"])
    with pytest.raises(UserError, match=r"lib/python3\.6 but depends on python 3\.7"):
        convert(source, "win-64", tmp_path / f"out/{PY36}.conda")


@pytest.mark.parametrize(
    ("depends", "expected"),
    [
        (["python >=3.6,<3.7.0a0"], "3.6"),
        (["python >=3.12,<3.13.0a0", "python_abi 3.12.* *_cp312"], "3.12"),
        (["python_abi 3.11.* *_cp311", "python 3.11.* *_cpython"], "3.11"),
        (["python ==3.10.4"], "3.10"),
        (["python >=3.4,<4"], None),
        (["python >=3.6"], None),
        (["pythonnet 3.0.*"], None),
        ([], None),
    ],
)
def test_pinned_python_reads_one_minor_from_depends(depends: list[str], expected: str | None) -> None:
    assert pinned_python(depends) == expected


@pytest.mark.parametrize("suffix", FORMATS)
def test_same_package_gives_identical_bytes_whatever_its_format(
    sources: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    inputs = [*FORMATS, ".tar.bz2"]  # the last converts the first again
    outputs = [convert(sources[i], "win-64", tmp_path / f"{n}/{PY36}{suffix}") for n, i in enumerate(inputs)]
    assert len({output.read_bytes() for output in outputs}) == 1


def test_one_read_many_writes_gives_the_bytes_of_one_conversion_each(sources: dict[str, Path], tmp_path: Path) -> None:
    targets = [(subdir, tmp_path / "all" / subdir / f"{PY36}.tar.bz2") for subdir in subdirs.ALL]
    convert_all(sources[".conda"], targets)
    for subdir, path in targets:
        alone = convert(sources[".conda"], subdir, tmp_path / "one" / subdir / f"{PY36}.tar.bz2")
        assert path.read_bytes() == alone.read_bytes(), subdir


@pytest.mark.parametrize(("target", "output"), [("linux-riscv64", f"{PY36}.conda"), ("win-64", "demo.zip")])
def test_one_bad_target_among_many_writes_nothing(
    sources: dict[str, Path], tmp_path: Path, target: str, output: str
) -> None:
    targets = [("win-64", tmp_path / "win-64" / f"{PY36}.conda"), (target, tmp_path / "bad" / output)]
    with pytest.raises(UserError):
        convert_all(sources[".conda"], targets)
    assert list(tmp_path.iterdir()) == []


def test_entries_carry_the_package_timestamp(sources: dict[str, Path], tmp_path: Path) -> None:
    with tarfile.open(convert(sources[".conda"], "osx-64", tmp_path / f"{PY36}.tar.bz2")) as tar:
        assert {info.mtime for info in tar} == {int(h.TIMESTAMP.timestamp())}


def test_prefix_records_follow_the_bytes(tmp_path: Path) -> None:
    """A conda-build package with has_prefix and no_link: a record stays where the placeholder
    stays and goes with a dropped shebang; conda's installer then rewrites what was kept."""
    config = "lib/python3.6/site-packages/demo/config.py"
    files = {
        "bin/demo": f"#!{h.BUILD_PREFIX}/bin/python\n{h.ENTRY_POINT}",
        config: f'prefix = "{h.BUILD_PREFIX}"\n',
        "info/has_prefix": f"{h.BUILD_PREFIX} text bin/demo\n{h.BUILD_PREFIX} text {config}\n",
        "info/no_link": f"{config}\n",
    }
    source = h.tar_package(tmp_path / f"{PY36}.tar.bz2", [_text(path, text) for path, text in files.items()])
    windows_package = convert(source, "win-64", tmp_path / f"win/{PY36}.tar.bz2")
    windows = _paths(windows_package)
    assert windows["Scripts/demo-script.py"].prefix_placeholder is None
    assert windows["Lib/site-packages/demo/config.py"].prefix_placeholder.placeholder == h.BUILD_PREFIX
    assert windows["Lib/site-packages/demo/config.py"].no_link
    info = {m.path: m.data.decode() for m in read_package(windows_package) if m.path.startswith("info/")}
    assert info["info/has_prefix"] == f"{h.BUILD_PREFIX} text Lib/site-packages/demo/config.py\n"
    assert info["info/no_link"] == "Lib/site-packages/demo/config.py\n"
    channel = tmp_path / "channel"
    convert(source, "linux-64", channel / f"linux-64/{PY36}.conda")
    prefix = h.install(h.publish(channel, ["linux-64"]), "linux-64", tmp_path / "env", tmp_path / "cache")
    assert (prefix / "bin/demo").read_text().startswith(f"#!{prefix}/bin/python\n")
    assert (prefix / config).read_text() == f'prefix = "{prefix}"\n'


# Hostile packages written by hand: each must be refused before anything is written.
HOSTILE = {
    "absolute path": (h.file_info("/tmp/evil", b"x"), b"x"),
    "dot-dot": (h.file_info("../x", b"x"), b"x"),
    "symlink to /etc/passwd": (h.link_info("share/passwd", "/etc/passwd"), b""),
    "symlink escaping by ..": (h.link_info("share/demo/up", "../../../x"), b""),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_package_is_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    source = h.tar_package(tmp_path / f"{PY36}.tar.bz2", [HOSTILE[case]])
    output = tmp_path / f"out/{PY36}.conda"
    with pytest.raises(UserError, match="outside the install prefix"):
        convert(source, "win-64", output)
    assert not output.parent.exists() or not any(output.parent.iterdir())


COMPILED = {
    "ELF in a .py name": ("lib/python3.6/site-packages/demo/fast.py", b"\x7fELF\x02\x01\x01" + bytes(64)),
    ".so by name": ("lib/python3.6/site-packages/demo/_speed.cpython-36m-x86_64-linux-gnu.so", b"text"),
    "Mach-O": ("bin/tool", bytes.fromhex("cffaedfe") + bytes(64)),
    "fat Mach-O": ("lib/libtool", bytes.fromhex("cafebabe") + bytes(64)),
    ".dll by name": ("Library/bin/x.DLL", b"text"),
    "PE image": ("share/tool.exe", None),
}


@pytest.mark.parametrize("case", COMPILED)
def test_compiled_code_is_refused_unless_forced(tmp_path: Path, case: str) -> None:
    path, data = COMPILED[case]
    data = h.launcher("win-64") if data is None else data
    source = h.tar_package(tmp_path / f"{PY36}.tar.bz2", [(h.file_info(path, data), data)])
    with pytest.raises(UserError, match=rf"compiled code \({path}\).*force=true"):
        convert(source, "linux-aarch64", tmp_path / f"refused/{PY36}.tar.bz2")
    forced = convert(source, "linux-aarch64", tmp_path / f"forced/{PY36}.tar.bz2", force=True)
    assert {m.path: m.data for m in read_package(forced)}[path] == data


def test_text_starting_with_mz_is_not_compiled(tmp_path: Path) -> None:
    source = h.tar_package(tmp_path / f"{PY36}.tar.bz2", [_text("share/countries.csv", "MZ,Mozambique\n")])
    assert convert(source, "osx-64", tmp_path / f"out/{PY36}.conda").is_file()


@pytest.mark.parametrize("suffix", FORMATS)
def test_truncated_package_is_corrupt(sources: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    truncated = tmp_path / sources[suffix].name
    truncated.write_bytes(sources[suffix].read_bytes()[:-200])
    with pytest.raises(UserError, match="corrupt"):
        convert(truncated, "win-64", tmp_path / f"out/{PY36}.conda")


@pytest.mark.parametrize(
    ("index", "path", "text"),
    [
        ("{not json", "share/x", ""),
        ("[1, 2]", "share/x", ""),
        (None, "info/paths.json", '{"paths": 3}'),
        (None, "info/has_prefix", '"/unclosed text bin/demo\n'),
    ],
)
def test_malformed_metadata_is_one_user_error(
    tmp_path: Path, index: str | None, path: str, text: str
) -> None:
    source = h.tar_package(tmp_path / f"{PY36}.tar.bz2", [_text(path, text)], index)
    with pytest.raises(UserError, match="malformed info/ metadata"):
        convert(source, "win-64", tmp_path / f"out/{PY36}.conda")


def test_noarch_needs_no_conversion(tmp_path: Path) -> None:
    staged = tmp_path / "stage"
    (staged / "site-packages/demo").mkdir(parents=True)
    (staged / "site-packages/demo/__init__.py").write_text(h.INIT_PY)
    source = h.assemble(tmp_path / "in", staged, "noarch", ".conda", noarch="python", depends=["python"])
    with pytest.raises(UserError, match="noarch: it serves every platform already"):
        convert(source, "win-64", tmp_path / "out/demo-1.0-py_0.conda")


@pytest.mark.parametrize(
    ("target", "output", "message"),
    [
        ("linux-riscv64", f"{PY36}.conda", "unknown subdir 'linux-riscv64'"),
        ("win-64", "demo.zip", "must end in"),
    ],
)
def test_bad_target_or_output_name_is_refused(
    sources: dict[str, Path], tmp_path: Path, target: str, output: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        convert(sources[".conda"], target, tmp_path / output)


def test_unknown_source_subdir_is_refused(tmp_path: Path) -> None:
    source = h.tar_package(tmp_path / "demo-1.0-0.tar.bz2", [], h.index_json(subdir="linux-riscv64"))
    with pytest.raises(UserError, match="unknown subdir 'linux-riscv64'"):
        convert(source, "linux-64", tmp_path / "out/demo-1.0-0.tar.bz2")


def _text(path: str, text: str) -> tuple[tarfile.TarInfo, bytes]:
    """A tar entry for tar_package; executable, as conda-build leaves scripts."""
    return h.file_info(path, text.encode(), 0o755), text.encode()


def _paths(package: Path) -> dict[str, PathsEntry]:
    return {str(entry.relative_path): entry for entry in PathsJson.from_package_archive(package).paths}


def _run(prefix: Path) -> str:
    """The installed entry point, run by the host python (the prefix's own python is a stub)."""
    env = {**os.environ, "PYTHONPATH": str(prefix / "lib/python3.6/site-packages")}
    command = [sys.executable, str(prefix / "bin/demo")]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()
