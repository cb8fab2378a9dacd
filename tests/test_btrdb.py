"""The walkthrough itself: btrdb 5.2.2 from the package index, on the shipped defaults."""

from __future__ import annotations

import json

import pytest

from conftest import new_project

pytestmark = pytest.mark.pypi

WALKTHROUGH_SUBDIRS = {"linux-32", "linux-64", "linux-ppc64le", "linux-armv6l", "linux-armv7l",
                       "linux-aarch64", "osx-64", "win-32", "win-64"}


@pytest.fixture(scope="module")
def btrdb_release(tmp_path_factory):
    project = new_project(tmp_path_factory.mktemp("btrdb") / "proj")
    return project, project.doit()


def test_defaults_release_btrdb_to_nine_platforms(btrdb_release):
    project, proc = btrdb_release
    manifest = json.loads((project.build / "release.json").read_text())
    files = {(f["subdir"], f["file"]) for f in manifest["files"]}
    assert {subdir for subdir, _ in files} == WALKTHROUGH_SUBDIRS
    assert {name for _, name in files} == {"btrdb-5.2.2-py36_0.tar.bz2", "btrdb-5.2.2-py37_0.tar.bz2"}
    assert len(files) == 18
    source = json.loads((project.build / "work" / "source" / "source.json").read_text())
    assert source["sha256"] == "7a282ec39f887d336fe90977c0909c44bb9735e04ba6a6777d603e8922286b11"
    assert "verified" in proc.stdout


def test_recipe_carries_the_walkthrough_diff(btrdb_release):
    project, _ = btrdb_release
    meta = (project.build / "work" / "recipe" / "meta.yaml").read_text()
    host = meta.split("host:")[1].split("run:")[0]
    run = meta.split("run:")[1].split("test:")[0]
    imports = meta.split("imports:")[1].split("commands:")[0]
    assert "pytest-runner" in host and "pytest-runner" in run
    assert "btrdb4" not in imports and "tests.btrdb" in imports
    assert "looselycoupled" in meta and "noarch" not in meta


def test_packages_pin_python_and_land_in_the_walkthrough_layout(btrdb_release):
    from rattler.package import IndexJson, PathsJson

    project, _ = btrdb_release
    win = project.build / "channel" / "win-64" / "btrdb-5.2.2-py36_0.tar.bz2"
    index = IndexJson.from_package_archive(win)
    assert index.depends[0] == "python >=3.6,<3.7.0a0" and "pytest-runner" in index.depends
    paths = {str(p.relative_path) for p in PathsJson.from_package_archive(win).paths}
    assert "Lib/site-packages/btrdb/__init__.py" in paths and "Lib/site-packages/btrdb4/__init__.py" in paths


def test_second_run_does_nothing(btrdb_release):
    project, _ = btrdb_release
    assert project.executed(project.doit()) == []
