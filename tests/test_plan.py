"""Planning is pure data: what a configuration builds, converts and publishes."""

from __future__ import annotations

from tasks import plan
from tasks.config import load
from tasks.subdirs import WALKTHROUGH


def test_walkthrough_plan_from_osx(tmp_path):
    result = plan.make(load(tmp_path, {}), native="osx-64")
    assert [b.artifact.key for b in result.builds] == ["osx-64/btrdb-5.2.2-py36_0.tar.bz2", "osx-64/btrdb-5.2.2-py37_0.tar.bz2"]
    # one `conda convert` per build, to the 8 other platforms, as in the walkthrough
    assert [(c.name, len(c.artifacts)) for c in result.conversions] == [("3.6", 8), ("3.7", 8)]
    assert len(result.published) == 18
    assert all(a.path.parent.parent.name == "platform-builds" for c in result.conversions for a in c.artifacts)
    assert all(a.python == c.build.python and a.subdir != "osx-64" for c in result.conversions for a in c.artifacts)


def test_native_outside_platforms_is_built_but_not_published(tmp_path):
    result = plan.make(load(tmp_path, {"platforms": "win-64"}), native="linux-64")
    assert [a.key for a in result.published] == ["win-64/btrdb-5.2.2-py36_0.tar.bz2", "win-64/btrdb-5.2.2-py37_0.tar.bz2"]


def test_noarch_builds_once_and_converts_nothing(tmp_path):
    result = plan.make(load(tmp_path, {"noarch": "true"}), native="linux-64")
    assert [a.key for a in result.published] == ["noarch/btrdb-5.2.2-py_0.tar.bz2"] and result.conversions == ()


def test_format_and_build_number_name_the_files(tmp_path):
    result = plan.make(load(tmp_path, {"format": "conda", "build-number": "2", "pythons": "3.12"}), native="linux-64")
    assert result.builds[0].artifact.filename == "btrdb-5.2.2-py312_2.conda"


def test_a_thousand_artifacts_plan_quickly_as_data(tmp_path):
    pythons = ",".join(f"3.{minor}" for minor in range(6, 15))
    result = plan.make(load(tmp_path, {"pythons": pythons, "platforms": "all"}), native="linux-64")
    assert len(result.published) == 9 * 13


def test_one_check_per_build_covers_every_published_file_once(tmp_path):
    result = plan.make(load(tmp_path, {}), native="linux-64")
    checks = result.checks()
    assert list(checks) == ["3.6", "3.7"]
    assert all(a.python == python and a.filename.endswith(f"py{python.replace('.', '')}_0.tar.bz2")
               for python, files in checks.items() for a in files)
    assert sorted(a.key for files in checks.values() for a in files) == sorted(a.key for a in result.published)
    assert {a.subdir for a in checks["3.6"]} == set(WALKTHROUGH)
    noarch = plan.make(load(tmp_path, {"noarch": "true"}), native="linux-64").checks()
    assert list(noarch) == ["noarch"] and [a.key for a in noarch["noarch"]] == ["noarch/btrdb-5.2.2-py_0.tar.bz2"]


def test_wheels_plan_one_pack_per_subdir_and_python_and_no_build(tmp_path):
    config = load(tmp_path, {"binaries": "wheels", "pythons": "3.11,3.12", "platforms": "linux-64,win-64,osx-arm64"})
    result = plan.make(config, native="linux-64")
    assert result.builds == () and result.conversions == ()
    assert [p.name for p in result.packs][:3] == ["linux-64/3.11", "win-64/3.11", "osx-arm64/3.11"]
    assert [a.key for a in result.published] == [p.artifact.key for p in result.packs]
    assert all(a.path.parent.parent.name == "wheel-builds" for a in result.published)
    assert result.packs[1].choice.name == "win-64-py311.json" and result.packs[1].choice.parent.name == "btrdb-5.2.2"
    checks = result.checks()
    assert list(checks) == ["3.11", "3.12"] and {a.subdir for a in checks["3.12"]} == {"linux-64", "win-64", "osx-arm64"}
