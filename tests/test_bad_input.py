"""Everything a user can get wrong, each through a real `doit` run of the tiny release.

Every case must end with: a non-zero exit; exactly one line starting `error:` that names the
problem and the fix (the words checked below); no "Traceback" anywhere in stdout or stderr; no
temporary `.part` file or staging folder left; and the failing task's target absent or unchanged
(for errors found while loading the settings: the whole release tree unchanged).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.register_assert_rewrite("_crash_fixtures")
import _convert_helpers as h  # noqa: E402
from _crash_fixtures import (OWNER, PY36, PY37, full_disk, leftovers, outputs, read_only,  # noqa: E402
                             run_doit)
from conftest import TINY_ARGS, new_project  # noqa: E402
from tiny import TINY_FILES as _TINY_FILES, make_sdist  # noqa: E402

pytest_plugins = ("_crash_fixtures",)

NATIVE36 = f"conda-bld/linux-64/{PY36}"
WIN36 = f"platform-builds/win-64/{PY36}"


def one_clear_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The run failed with exactly one `error:` line holding every word, and no traceback."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def nothing_half_written(build: Path, target: Path | None = None, before: bytes | None = None,
                         known: tuple[str, ...] = ()) -> None:
    """No temporary file left (but `known` ones, each the subject of its own xfail test); the
    target absent (before None) or unchanged."""
    assert [left for left in leftovers(build) if left not in known] == []
    if target is not None:
        if before is None:
            assert not target.exists(), f"{target} was left behind"
        else:
            assert target.read_bytes() == before, f"{target} was changed"


# -- settings: found when dodo.py loads, before anything is written --------------------------------

SETTINGS = {
    "malformed-python": (["pythons=36"], ["'36' is malformed", "pythons=3.6,3.7"]),
    "unsupported-python": (["pythons=3.5"], ["3.5 is not supported", "from 3.6 to 3.14"]),
    "unknown-platform": (["platforms=linux-64,amiga-68k"], ["'amiga-68k'", "use 'all' or some of", "win-64"]),
    "malformed-build-number": (["build-number=x"], ["build-number='x' is not a whole number", "give e.g. 0"]),
    "unknown-setting": (["colour=blue"], ["unknown setting 'colour'", "use one of", "platforms"]),
    "malformed-boolean": (["noarch=maybe"], ["noarch='maybe' is not true or false", "give true or false"]),
    "unknown-target": (["target=ftp"], ["target='ftp' is not known", "local, anaconda, quetz"]),
    "source-path-missing": (["source=/nonexistent/checkout"], ["source=/nonexistent/checkout", "source=pypi"]),
}


@pytest.mark.parametrize("kind", SETTINGS, ids=list(SETTINGS))
def test_bad_setting(tiny_release, kind):
    args, words = SETTINGS[kind]
    tiny_release.restore()
    one_clear_line(tiny_release.project.doit(*TINY_ARGS, *args, check=False), *words)
    nothing_half_written(tiny_release.build)
    assert outputs(tiny_release.build) == tiny_release.reference


def test_python_2_is_unsupported_not_malformed(tiny_release):
    tiny_release.restore()
    one_clear_line(tiny_release.project.doit(*TINY_ARGS, "pythons=2.7", check=False), "2.7", "not supported")


def test_release_toml_that_does_not_parse(tiny_release):
    tiny_release.restore()
    toml = tiny_release.project.root / "recipe" / "release.toml"
    kept = toml.read_text()
    toml.write_text(kept + "\nplatforms = [linux-64\n")
    try:
        one_clear_line(tiny_release.project.doit(*TINY_ARGS, check=False), "release.toml is not valid TOML", "fix the file")
    finally:
        toml.write_text(kept)
    assert outputs(tiny_release.build) == tiny_release.reference


# -- the recipe ------------------------------------------------------------------------------------

PATCHES = {
    "patch-names-missing-section": ("crdagtiny:\n  - add: requirements.nonexistent\n    value: pytest-runner\n",
                                    ["names requirements.nonexistent, which meta.yaml does not have", "fix the path"]),
    "patch-does-not-parse": ("crdagtiny:\n  - add: [requirements.run\n    value: x\n",
                             ["patch.yaml is not valid YAML (line 3", "fix the file"]),
    "patch-edit-not-a-list": ("crdagtiny:\n  add: requirements.run\n",
                              ["crdagtiny must hold a list of edits", "fix the file"]),
}


@pytest.mark.parametrize("kind", PATCHES, ids=list(PATCHES))
def test_bad_recipe_patch(tiny_release, kind):
    text, words = PATCHES[kind]
    tiny_release.restore()
    patch = tiny_release.project.root / "recipe" / "patch.yaml"
    kept, meta = patch.read_text(), tiny_release.build / "work" / "recipe" / "meta.yaml"
    before = meta.read_bytes()
    patch.write_text(text)
    try:
        line = one_clear_line(tiny_release.project.doit(*TINY_ARGS, check=False), *words)
    finally:
        patch.write_text(kept)
    assert line.startswith("error: recipe: recipe/patch.yaml")
    nothing_half_written(tiny_release.build, meta, before)


def test_skeleton_meta_yaml_that_does_not_parse(tiny_release):
    tiny_release.restore()
    (tiny_release.build / "work" / "skeleton" / "meta.yaml").write_text("package:\n  name: [unclosed\n  version: 1\n")
    meta = tiny_release.build / "work" / "recipe" / "meta.yaml"
    before = meta.read_bytes()
    one_clear_line(tiny_release.project.doit(*TINY_ARGS, check=False),
                   "error: recipe: the skeleton meta.yaml is not valid YAML (line 3", "regenerate it")
    nothing_half_written(tiny_release.build, meta, before)


# -- the source ------------------------------------------------------------------------------------


@pytest.mark.pypi
def test_unknown_package(tmp_path):
    project = new_project(tmp_path / "proj")
    proc = project.doit("package=crdagtiny-no-such-package-7f3a9c1e", "version=1.0.0", "pythons=3.6",
                        "platforms=linux-64", check=False)
    one_clear_line(proc, "'crdagtiny-no-such-package-7f3a9c1e' has no source release on the package index",
                   "check package=")
    nothing_half_written(project.build, project.build / "work" / "source" / "source.json")


@pytest.mark.pypi
def test_unknown_version(tmp_path):
    project = new_project(tmp_path / "proj")
    proc = project.doit("package=six", "version=999.0.0", "pythons=3.6", "platforms=linux-64", check=False)
    one_clear_line(proc, "six has no version '999.0.0' on the package index", "give version= one of", "1.16.0")
    nothing_half_written(project.build, project.build / "work" / "source" / "source.json")


def test_source_path_that_does_not_exist_is_named(tiny_release, tmp_path):
    tiny_release.restore()
    missing = tmp_path / "no" / "such" / "checkout"
    one_clear_line(tiny_release.project.doit(*TINY_ARGS, f"source={missing}", check=False), str(missing))
    assert outputs(tiny_release.build) == tiny_release.reference


STAGING = "work/source/tree.part"


def _corrupt_sdist(tiny_release, tiny_sdist, tmp_path) -> tuple[Path, tuple[str, ...]]:
    sdist = tiny_release.build / "downloads" / tiny_sdist.name
    sdist.write_bytes(sdist.read_bytes()[: sdist.stat().st_size // 2])
    return sdist, (f"{sdist} is not a readable sdist", "delete it and run again")


def _hostile_sdist(tiny_release, tiny_sdist, tmp_path) -> tuple[Path, tuple[str, ...]]:
    hostile = make_sdist(tmp_path / "hostile", {**_TINY_FILES, "../../escaped.txt": "gotcha\n"})
    sdist = tiny_release.build / "downloads" / hostile.name
    sdist.write_bytes(hostile.read_bytes())
    return sdist, ("the sdist holds an unsafe path 'crdagtiny-1.0.0/../../escaped.txt'", "will not be unpacked")


SDISTS = {"corrupt-sdist": _corrupt_sdist, "sdist-path-outside-its-folder": _hostile_sdist}


@pytest.mark.parametrize("kind", SDISTS, ids=list(SDISTS))
def test_bad_sdist(tiny_release, tiny_sdist, tmp_path, kind):
    tiny_release.restore("work/source/source.json")
    _, words = SDISTS[kind](tiny_release, tiny_sdist, tmp_path)
    one_clear_line(tiny_release.project.doit(*TINY_ARGS, check=False), *words)
    nothing_half_written(tiny_release.build, tiny_release.build / "work" / "source" / "source.json", known=(STAGING,))
    assert not list(tiny_release.project.root.parent.rglob("escaped.txt"))


@pytest.mark.parametrize("kind", SDISTS, ids=list(SDISTS))
def test_refused_sdist_leaves_no_staging_folder(tiny_release, tiny_sdist, tmp_path, kind):
    tiny_release.restore("work/source/source.json")
    SDISTS[kind](tiny_release, tiny_sdist, tmp_path)
    assert tiny_release.project.doit(*TINY_ARGS, check=False).returncode != 0
    assert leftovers(tiny_release.build) == []


# -- packages sent to the converter ----------------------------------------------------------------


def test_package_with_compiled_code_is_refused_at_the_wheel(tmp_path):
    """An sdist whose package ships a shared library as package data: the wheel is tagged pure,
    but its content is what counts; nothing is built or converted from it."""
    files = {**_TINY_FILES, "crdagtiny/_speedups.so": "\x7fELF\x02\x01\x01\x00 not really a library\n"}
    files["setup.py"] = files["setup.py"].replace("['data/*.txt']", "['data/*.txt', '*.so']")
    project = new_project(tmp_path / "proj", (make_sdist(tmp_path / "sdist", files),))
    proc = project.doit(*TINY_ARGS, check=False)
    one_clear_line(proc, "crdagtiny-1.0.0-py3-none-any.whl holds compiled code",
                   "the embedded engine builds pure-Python packages only; use engine=conda",
                   "or binaries=wheels")
    assert not (project.build / "work" / "wheel" / "wheel.json").exists()
    for subdir in ("win-64", "osx-arm64"):
        for name in (PY36, PY37):
            nothing_half_written(project.build, project.build / "platform-builds" / subdir / name)


# The py36 files' stamps dropped: not published, so convert:3.6 must read the build (published
# conversions from the same inputs come back from the channel without it, tasks/restore.py).
UNPUBLISHED36 = (f"stamps/local/*/{PY36}.json",)


def _hostile_build(tiny_release, member: str) -> Path:
    """The native py36 build replaced by a hand-written package holding `member`."""
    path = tiny_release.build / NATIVE36
    index = {**h.index_json(), "name": "crdagtiny", "version": "1.0.0"}
    h.tar_package(path, [(h.file_info(member, b"gotcha\n"), b"gotcha\n")], index)
    return path


@pytest.mark.parametrize("member", ["../../escaped.txt", "/etc/escaped.txt"], ids=["dot-dot", "absolute"])
def test_archive_with_a_path_outside_the_prefix(tiny_release, member):
    tiny_release.restore(*UNPUBLISHED36)
    _hostile_build(tiny_release, member)
    target = tiny_release.build / WIN36
    before = target.read_bytes()
    one_clear_line(tiny_release.project.doit("convert:3.6", *TINY_ARGS, check=False),
                   f"{PY36} is unsafe to install ('{member}' would land outside the install prefix)",
                   "get it from a channel you trust")
    nothing_half_written(tiny_release.build, target, before)
    assert not list(tiny_release.project.root.parent.rglob("escaped.txt"))


def test_corrupt_package_sent_to_the_converter(tiny_release):
    tiny_release.restore(*UNPUBLISHED36)
    native = tiny_release.build / NATIVE36
    native.write_bytes(native.read_bytes()[: native.stat().st_size // 2])
    target = tiny_release.build / WIN36
    before = target.read_bytes()
    one_clear_line(tiny_release.project.doit("convert:3.6", *TINY_ARGS, check=False),
                   f"{PY36} is corrupt", "rebuild")
    nothing_half_written(tiny_release.build, target, before)


def test_corrupt_package_is_not_published(tiny_release):
    tiny_release.restore(f"channel/linux-64/{PY36}", f"stamps/local/linux-64/{PY36}.json")
    native = tiny_release.build / NATIVE36
    native.write_bytes(native.read_bytes()[: native.stat().st_size // 2])
    proc = tiny_release.project.doit(f"upload:linux-64/{PY36}", *TINY_ARGS, check=False)
    assert not (tiny_release.build / "channel" / "linux-64" / PY36).exists(), "the corrupt file was published"
    one_clear_line(proc, f"{PY36}", "corrupt")
    nothing_half_written(tiny_release.build, tiny_release.build / f"stamps/local/linux-64/{PY36}.json")


# -- publishing to anaconda.org --------------------------------------------------------------------

ANACONDA_ARGS = (*TINY_ARGS, "target=anaconda")


def _no_stamps(build: Path) -> None:
    """No upload that failed left a stamp: every anaconda stamp there names a file the server took."""
    for stamp in (build / "stamps" / "anaconda").glob("*/*.json"):
        assert json.loads(stamp.read_text())["state"] in ("uploaded", "skipped")


def test_missing_token(tiny_release, anaconda, tmp_path):
    tiny_release.restore()
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    proc = tiny_release.project.doit(*ANACONDA_ARGS, check=False, env={"HOME": str(empty_home)})
    one_clear_line(proc, "no anaconda.org token", "run `anaconda login`, or set ANACONDA_API_TOKEN")
    nothing_half_written(tiny_release.build)
    assert not (tiny_release.build / "stamps" / "anaconda").exists() or not list((tiny_release.build / "stamps" / "anaconda").rglob("*.json"))


def test_rejected_token(tiny_release, anaconda):
    tiny_release.restore()
    proc = tiny_release.project.doit(*ANACONDA_ARGS, check=False, env=anaconda.env(token="tok-wrong-0000000000"))
    one_clear_line(proc, f"{anaconda.server.url} refused the credentials for {OWNER} (401)",
                   "log in with `anaconda login` or set ANACONDA_API_TOKEN")
    nothing_half_written(tiny_release.build)
    assert anaconda.held() == {} and not list(tiny_release.build.glob("stamps/anaconda/*/*.json"))


def test_unknown_owner(tiny_release, anaconda):
    tiny_release.restore()
    proc = tiny_release.project.doit(*ANACONDA_ARGS, "owner=nobody", check=False, env=anaconda.env())
    one_clear_line(proc, f"owner nobody does not exist on {anaconda.server.url}", "check owner=")
    nothing_half_written(tiny_release.build)
    assert anaconda.held() == {} and not list(tiny_release.build.glob("stamps/anaconda/*/*.json"))


def test_same_name_different_content_on_the_server(tiny_release, anaconda):
    tiny_release.restore()
    basename = f"linux-64/{PY36}"
    other = (tiny_release.build / f"conda-bld/linux-64/{PY37}").read_bytes()  # a real package, other bytes
    anaconda.server.seed(OWNER, "crdagtiny", "1.0.0", basename, other)
    proc = tiny_release.project.doit(*ANACONDA_ARGS, check=False, env=anaconda.env())
    one_clear_line(proc, f"{OWNER}/crdagtiny/1.0.0/{basename} on {anaconda.server.url} has sha256",
                   "but the local file has sha256", "set force=true to replace it")
    nothing_half_written(tiny_release.build, tiny_release.build / f"stamps/anaconda/{basename}.json")
    assert [d.data == other for d in anaconda.server.copies(OWNER, basename)] == [True]
    _no_stamps(tiny_release.build)


# -- the machine: read-only and full file systems --------------------------------------------------


def test_read_only_build_folder(tiny_release):
    tiny_release.restore()
    with read_only(tiny_release.build):
        proc = tiny_release.project.doit(*TINY_ARGS, "pythons=3.6,3.7,3.8", check=False)
    one_clear_line(proc, f"cannot write to the build folder {tiny_release.build} (Read-only file system)",
                   "make it writable or choose another with build-dir=")
    assert outputs(tiny_release.build) == tiny_release.reference


def test_read_only_channel_folder(tiny_release):
    tiny_release.restore(f"channel/win-64/{PY36}", f"stamps/local/win-64/{PY36}.json")
    with read_only(tiny_release.build / "channel"):
        proc = tiny_release.project.doit(*TINY_ARGS, check=False)
    one_clear_line(proc, "channel", "Read-only file system")
    nothing_half_written(tiny_release.build, tiny_release.build / f"stamps/local/win-64/{PY36}.json")


def test_full_disk(tiny_release):
    tiny_release.restore(WIN36)
    folder = tiny_release.build / "platform-builds"
    with full_disk(folder):
        proc = tiny_release.project.doit(*TINY_ARGS, check=False)
        # no temporary file left on the full disk (the subdir folders it made are empty)
        assert [f for f in folder.rglob("*") if not f.is_dir()] == [folder / "filler"]
    nothing_half_written(tiny_release.build, tiny_release.build / WIN36)
    one_clear_line(proc, "No space left on device")
