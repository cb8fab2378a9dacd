"""binaries=wheels with real compiled packages from the index, one per build system, each released
for five subdirs from their own wheels: installed with py-rattler for its subdir, the native one
imported for real (its extension modules too).  Needs the network: run with --run-pypi."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import new_project

pytestmark = pytest.mark.pypi

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
SUBDIRS = ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")
# package, version, build system, an extension module the native import must load
PACKAGES = [
    ("markupsafe", "2.1.5", "setuptools, C", "markupsafe._speedups"),
    ("msgpack", "1.0.8", "setuptools, Cython", "msgpack._cmsgpack"),
    ("pyyaml", "6.0.2", "setuptools, Cython + libyaml", "yaml._yaml"),
    ("ujson", "5.10.0", "setuptools, C++ (double-conversion)", "ujson"),
    ("rpds-py", "0.20.0", "maturin, Rust", "rpds.rpds"),
    ("siphash24", "1.9", "meson-python, C", "siphash24"),
]


@pytest.mark.parametrize("package, version, system, extension", PACKAGES, ids=[p[0] for p in PACKAGES])
def test_a_compiled_package_is_released_for_every_subdir_from_its_wheels(tmp_path, package, version, system,
                                                                         extension):
    project = new_project(tmp_path / "proj")
    args = (f"package={package}", f"version={version}", f"pythons={HOST}", f"platforms={','.join(SUBDIRS)}",
            "binaries=wheels")
    proc = project.doit(*args)
    tag = "py" + HOST.replace(".", "")
    files = {subdir: project.build / "channel" / subdir / f"{package}-{version}-{tag}_0.tar.bz2" for subdir in SUBDIRS}
    assert all(path.is_file() for path in files.values()), proc.stdout
    record = json.loads((project.build / "stamps" / "verify-local.json").read_text())
    assert sorted(item["file"] for item in record["installs"]) == sorted(f"{s}/{p.name}" for s, p in files.items())
    native = next(item for item in record["installs"] if item["file"].startswith("linux-64/"))
    assert native["imports"].get(extension) == "ok", native
    assert all(result == "ok" for result in native["imports"].values()), native

    from rattler.package import IndexJson

    depends = {subdir: IndexJson.from_package_archive(path).depends for subdir, path in files.items()}
    assert any(spec.startswith("__glibc >=2.") for spec in depends["linux-aarch64"])
    assert any(spec.startswith("__osx >=1") for spec in depends["osx-arm64"])
    assert not any(spec.startswith("__") for spec in depends["win-64"])
    again = project.doit(*args)
    assert project.executed(again) == []
