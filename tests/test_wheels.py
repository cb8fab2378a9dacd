"""binaries=wheels, offline: a C extension compiled here and copies of its wheel tagged for other
platforms and Pythons, served to pip from a local folder (PIP_NO_INDEX, PIP_FIND_LINKS)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import win_cli_launchers

from conftest import new_project, read_summary
from test_bad_input import one_clear_line
from wheelfactory import EXT_FILES, HOST, PURE_FILES, build_wheel, retag

MINOR = int(HOST.split(".")[1])
OTHER = f"3.{MINOR + 1}"  # a second Python, whose wheels are re-tagged copies
PLATFORMS = {"linux-64": "manylinux_2_17_x86_64.manylinux2014_x86_64", "osx-arm64": "macosx_11_0_arm64",
             "osx-64": "macosx_10_9_universal2", "win-64": "win_amd64"}
ARGS = ("package=crdagext", "version=1.0.0", f"pythons={HOST},{OTHER}", f"platforms={','.join(PLATFORMS)}",
        "binaries=wheels")


def _tag(python: str) -> str:
    return "py" + python.replace(".", "")


def _file(subdir: str, python: str = HOST, suffix: str = "tar.bz2") -> str:
    return f"{subdir}/crdagext-1.0.0-{_tag(python)}_0.{suffix}"


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    """The folder pip finds wheels in: every (subdir, Python) of ARGS but none for aarch64."""
    root = tmp_path_factory.mktemp("wheels")
    native = build_wheel(root / "ext", EXT_FILES)
    pure = build_wheel(root / "pure", PURE_FILES)
    folder = root / "index"
    for python in (HOST, OTHER):
        cp = "cp" + python.replace(".", "")
        for platform in PLATFORMS.values():
            retag(native, folder, f"{cp}-{cp}-{platform}")
    retag(native, folder, f"cp{MINOR}-cp{MINOR}-musllinux_1_1_aarch64")  # never a conda subdir
    retag(pure, folder, "py3-none-any")
    return folder


def _env(index: Path) -> dict[str, str]:
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index)}


@pytest.fixture(scope="module")
def release(tmp_path_factory, index):
    project = new_project(tmp_path_factory.mktemp("release") / "proj")
    proc = project.doit(*ARGS, env=_env(index))
    return project, proc


def _members(package: Path) -> dict[str, bytes]:
    with tarfile.open(package) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def _index(project, key: str) -> dict:
    return json.loads(_members(project.build / "channel" / key)["info/index.json"])


def test_every_subdir_and_python_is_published_from_its_own_wheel(release):
    project, proc = release
    keys = [_file(subdir, python) for python in (HOST, OTHER) for subdir in PLATFORMS]
    assert all((project.build / "channel" / key).is_file() for key in keys)
    totals = read_summary(proc.stdout).totals
    assert totals["packed"] == 8 and totals["uploaded"] == 8
    assert not (project.build / "work" / "source").exists()  # no sdist, no build, no conversion
    assert not any(line.startswith((".  build", ".  convert", ".  source")) for line in proc.stdout.splitlines())


def test_depends_pin_python_evaluate_markers_per_target_and_state_the_platform_floor(release):
    project, _ = release
    assert _index(project, _file("linux-64"))["depends"] == [f"python >={HOST},<3.{MINOR + 1}.0a0", "__glibc >=2.17"]
    assert _index(project, _file("osx-arm64"))["depends"][1:] == ["__osx >=11.0"]
    assert _index(project, _file("osx-64", OTHER))["depends"] == [f"python >={OTHER},<3.{MINOR + 2}.0a0", "__osx >=10.9"]
    win = _index(project, _file("win-64"))
    # colorama only on Windows (sys_platform == "win32"); crdag-old (python < 3.8) never
    assert win["depends"] == [f"python >={HOST},<3.{MINOR + 1}.0a0", "colorama >=0.4"]
    assert (win["subdir"], win["platform"], win["arch"], win["build"]) == ("win-64", "win", "x86_64", f"{_tag(HOST)}_0")


def test_unix_layout_is_conda_builds(release):
    project, _ = release
    files = _members(project.build / "channel" / _file("osx-arm64"))
    site = f"lib/python{HOST}/site-packages"
    assert any(name.startswith(f"{site}/crdagext/_native.") for name in files)
    assert files["share/crdagext/notes.txt"] == b"notes\n"  # .data/data -> the prefix root
    assert "include/crdagext.h" in files                     # .data/headers
    assert files["bin/crdagext-raw"].startswith(b"#!/opt/anaconda1anaconda2anaconda3/bin/python\n")  # .data/scripts
    for script in ("crdagext-add", "crdagext-gui"):  # console and GUI entry points
        assert files[f"bin/{script}"].startswith(b"#!/opt/anaconda1anaconda2anaconda3/bin/python\n")
        assert f"/opt/anaconda1anaconda2anaconda3 text bin/{script}" in files["info/has_prefix"].decode()
    assert files["info/licenses/LICENSE"] == b"MIT License\n"
    assert f"{site}/crdagext-1.0.0.dist-info/INSTALLER" in files
    assert json.loads(files["info/about.json"])["summary"] == "A tiny compiled package the tests release."
    listed = files["info/files"].decode().splitlines()
    assert sorted(listed) == sorted(name for name in files if not name.startswith("info/"))


def test_windows_layout_has_scripts_with_launchers(release):
    project, _ = release
    files = _members(project.build / "channel" / _file("win-64"))
    assert any(name.startswith("Lib/site-packages/crdagext/_native.") for name in files)
    assert not any(name.startswith(("lib/", "bin/")) for name in files)
    launcher = (Path(win_cli_launchers.__file__).parent / "cli-64.exe").read_bytes()
    for script in ("crdagext-add", "crdagext-gui"):
        body = files[f"Scripts/{script}-script.py"]
        assert not body.startswith(b"#!") and b"from crdagext.cli import main" in body
        assert files[f"Scripts/{script}.exe"] == launcher
    paths = json.loads(files["info/paths.json"])["paths"]
    exe = next(entry for entry in paths if entry["_path"] == "Scripts/crdagext-add.exe")
    assert exe["sha256"] == hashlib.sha256(launcher).hexdigest() and exe["size_in_bytes"] == len(launcher)


def test_every_package_installs_for_its_subdir_and_the_native_extension_imports(release):
    project, proc = release
    record = json.loads((project.build / "stamps" / "verify-local.json").read_text())
    assert sorted(item["file"] for item in record["installs"]) == sorted(
        _file(subdir, python) for python in (HOST, OTHER) for subdir in PLATFORMS)
    assert all(item["installed"] for item in record["installs"])
    native = next(item for item in record["installs"] if item["file"] == _file("linux-64"))
    assert native["imports"] == {"crdagext": "ok", "crdagext._native": "ok"}
    assert native["scripts"] == {"crdagext-add": "--help ok"}
    assert f"verified {_file('linux-64')}: import crdagext ok, import crdagext._native ok" in proc.stdout
    assert f"verified {_file('win-64')}: installed; tests skipped (a win-64 package" in proc.stdout


def test_a_second_run_executes_nothing_and_a_clean_rebuild_publishes_nothing_new(release, index):
    project, _ = release
    again = project.doit(*ARGS, env=_env(index))
    assert project.executed(again) == []
    channel = {p: p.read_bytes() for p in (project.build / "channel").rglob("*.tar.bz2")}
    project.doit("clean", *ARGS, env=_env(index))
    assert not (project.build / "wheel-builds").exists()
    rebuilt = project.doit(*ARGS, env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index.parent / "nowhere")})
    ran = project.executed(rebuilt)
    assert "select" not in ran and len([name for name in ran if name.startswith("pack:")]) == 8  # from the cache
    assert not any(name.startswith("upload:") for name in ran) and "uploaded" not in rebuilt.stdout
    assert {p: p.read_bytes() for p in (project.build / "channel").rglob("*.tar.bz2")} == channel


def test_conda_format_is_made_from_the_same_wheels(release, index):
    from rattler.package import IndexJson

    project, _ = release
    proc = project.doit(*ARGS, "format=conda", env=_env(index))
    assert "select" not in project.executed(proc)
    for subdir in PLATFORMS:
        package = project.build / "channel" / _file(subdir, suffix="conda")
        assert IndexJson.from_package_archive(package).subdir == subdir


def test_a_subdir_with_no_wheel_is_one_line_naming_it_and_the_fix(tmp_path, index):
    project = new_project(tmp_path / "proj")
    proc = project.doit("package=crdagext", "version=1.0.0", f"pythons={HOST}", "binaries=wheels",
                        "platforms=linux-64,linux-aarch64,linux-armv6l", check=False, env=_env(index))
    one_clear_line(proc, f"crdagext 1.0.0 has no wheel for linux-aarch64/{HOST}, linux-armv6l/{HOST}",
                   "drop them from platforms= (platforms=linux-64)", "build natively")
    assert not (project.build / "wheel-builds").exists() and not (project.build / "channel").exists()


def test_a_pure_wheel_serves_every_subdir(tmp_path, index):
    project = new_project(tmp_path / "proj")
    proc = project.doit("package=crdagpure", "version=1.0.0", f"pythons={HOST}", "binaries=wheels",
                        "platforms=linux-aarch64,win-arm64,osx-64", env=_env(index))
    wheels = {json.loads(p.read_text())["wheel"] for p in (project.build / "downloads" / "wheels").rglob("*.json")}
    assert wheels == {"crdagpure-1.0.0-py3-none-any.whl"}
    win = json.loads(_members(project.build / "channel" / f"win-arm64/crdagpure-1.0.0-{_tag(HOST)}_0.tar.bz2")["info/index.json"])
    assert win["depends"] == [f"python >={HOST},<3.{MINOR + 1}.0a0"]  # no platform floor for a pure wheel
    assert read_summary(proc.stdout).totals["packed"] == 3


@pytest.mark.parametrize("args, words", [
    (["binaries=prebuilt"], ["binaries='prebuilt' is not known", "build, wheels"]),
    (["binaries=wheels", "noarch=true"], ["not noarch", "drop noarch=true"]),
])
def test_wheels_settings_are_checked(tmp_path, args, words):
    project = new_project(tmp_path / "proj")
    one_clear_line(project.doit("package=crdagext", "version=1.0.0", *args, check=False), *words)


def test_the_wheel_a_package_came_from_is_checked_before_packing(tmp_path, index):
    project = new_project(tmp_path / "proj")
    args = ("package=crdagext", "version=1.0.0", f"pythons={HOST}", "platforms=linux-64", "binaries=wheels")
    project.doit(*args, "select", env=_env(index))
    [wheel] = (project.build / "downloads" / "wheels").rglob("*.whl")
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    proc = project.doit(*args, check=False, env=_env(index))
    one_clear_line(proc, "the wheel chosen for linux-64/", "is missing or changed", "run doit again")
    assert not (project.build / "wheel-builds" / _file("linux-64")).exists()


def test_platforms_all_publishes_every_subdir_that_has_a_wheel_and_says_which_have_none(tmp_path, index):
    project = new_project(tmp_path / "proj")
    args = ("package=crdagext", "version=1.0.0", f"pythons={HOST}", "platforms=all", "binaries=wheels")
    proc = project.doit(*args, env=_env(index))
    left_out = [line for line in proc.stdout.splitlines() if line.startswith("no wheel of crdagext 1.0.0 for ")]
    assert len(left_out) == 1 and f"linux-aarch64/{HOST}" in left_out[0] and "left out of platforms=all" in left_out[0]
    published = sorted(p.parent.name for p in (project.build / "channel").rglob("crdagext-*.tar.bz2"))
    assert published == sorted(PLATFORMS)
    again = project.doit(*args, env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index.parent / "nowhere")})
    assert project.executed(again) == [] and "no wheel of" not in again.stdout  # the gaps are remembered
