"""The release DAG on real runs in temporary folders, offline, with a tiny sdist the tests make."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from conftest import CHECKS, TINY_ARGS, new_project, read_summary
from tasks.verify import stub_channel

TINY_SUBDIRS = ("linux-64", "win-64", "osx-arm64")


def artifacts(build: Path) -> dict[str, bytes]:
    found = sorted((build / "conda-bld").glob("*/*.tar.bz2")) + sorted((build / "platform-builds").glob("*/*.tar.bz2"))
    return {f"{p.parent.parent.name}/{p.parent.name}/{p.name}": p.read_bytes() for p in found}


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_sdist):
    """One full release of crdagtiny, shared by the read-only tests below."""
    project = new_project(tmp_path_factory.mktemp("released") / "proj", (tiny_sdist,))
    first = project.doit(*TINY_ARGS)
    return project, first


def test_full_release_builds_converts_publishes_and_verifies(released):
    project, first = released
    names = set(project.executed(first))
    assert {"source", "skeleton", "recipe", "wheel", "build:3.6", "build:3.7", "manifest", *CHECKS, "verify"} <= names
    assert {"convert:3.6", "convert:3.7"} <= names
    channel = project.build / "channel"
    for subdir in TINY_SUBDIRS:
        repodata = json.loads((channel / subdir / "repodata.json").read_text())
        assert sorted(repodata["packages"]) == ["crdagtiny-1.0.0-py36_0.tar.bz2", "crdagtiny-1.0.0-py37_0.tar.bz2"]
    manifest = json.loads((project.build / "release.json").read_text())
    assert len(manifest["files"]) == 6 and {f["state"] for f in manifest["files"]} == {"uploaded"}
    assert read_summary(first.stdout).totals == {"built": 2, "converted": 4, "uploaded": 6}


def test_second_run_executes_no_task(released):
    project, _ = released
    again = project.doit(*TINY_ARGS)
    assert project.executed(again) == []
    assert read_summary(again.stdout).totals == {"skipped": 6}  # the six published files, each up to date


def test_patched_recipe_is_the_walkthrough_shape(released):
    project, _ = released
    meta = (project.build / "work" / "recipe" / "meta.yaml").read_text()
    assert "noarch" not in meta
    assert "looselycoupled" in meta
    assert "path:" in meta and "url:" not in meta


def test_every_artifact_reads_and_installs_for_its_subdir(released, tmp_path):
    import rattler
    from rattler.package import IndexJson

    project, _ = released
    channel = project.build / "channel"
    for subdir in TINY_SUBDIRS:
        for package in sorted((channel / subdir).glob("*.tar.bz2")):
            index = IndexJson.from_package_archive(package)
            assert index.subdir == subdir and index.name.normalized == "crdagtiny"
        stubs = stub_channel(tmp_path / f"stubs-{subdir}", subdir, ["python 3.7.9", "attrs >=20.0"])
        prefix = tmp_path / f"prefix-{subdir}"

        async def go():
            records = await rattler.solve([rattler.Channel(channel.as_uri()), rattler.Channel(stubs.as_uri())],
                                          ["crdagtiny ==1.0.0 py37_0"], platforms=[subdir, "noarch"],
                                          channel_priority=rattler.ChannelPriority.Disabled)
            await rattler.install(records, prefix, cache_dir=tmp_path / "cache", platform=rattler.Subdir(subdir),
                                  show_progress=False)

        asyncio.run(go())
        site = "Lib/site-packages" if subdir.startswith("win") else "lib/python3.7/site-packages"
        assert (prefix / site / "crdagtiny" / "data" / "greeting.txt").read_text() == "hello from crdagtiny\n"
        script = "Scripts/crdagtiny-hello-script.py" if subdir.startswith("win") else "bin/crdagtiny-hello"
        assert (prefix / script).exists()


def test_changed_patch_reruns_recipe_and_downstream_only(project):
    project.doit(*TINY_ARGS)
    patch = project.root / "recipe" / "patch.yaml"
    patch.write_text(patch.read_text() + "\ncrdagtiny:\n  - add: requirements.run\n    value: six\n")
    # Same file names, new content: the channel refuses to change a published file silently ...
    refused = project.doit(*TINY_ARGS, check=False)
    assert refused.returncode != 0 and "force=true" in refused.stdout and "Traceback" not in refused.stdout + refused.stderr
    assert {"source", "skeleton", "wheel"}.isdisjoint(project.executed(refused))
    # ... and replaces it when told to.
    rerun = set(project.executed(project.doit(*TINY_ARGS, "force=true")))
    assert {"source", "skeleton", "wheel", "recipe", "build:3.6", "build:3.7"}.isdisjoint(rerun)
    assert {"convert:3.6", "convert:3.7"} <= rerun
    assert sum(name.startswith("upload:") for name in rerun) == 6
    for subdir in TINY_SUBDIRS:
        repodata = json.loads((project.build / "channel" / subdir / "repodata.json").read_text())
        assert all("six" in record["depends"] for record in repodata["packages"].values())


def test_adding_a_platform_adds_only_its_conversions_and_uploads(project):
    project.doit(*TINY_ARGS)
    before = artifacts(project.build)
    wider = [a if not a.startswith("platforms=") else a + ",linux-aarch64" for a in TINY_ARGS]
    rerun = set(project.executed(project.doit(*wider)))
    # each build's conversion runs again, rewriting its other platforms byte for byte: not re-uploaded
    assert rerun == {"convert:3.6", "convert:3.7",
                     "upload:linux-aarch64/crdagtiny-1.0.0-py36_0.tar.bz2",
                     "upload:linux-aarch64/crdagtiny-1.0.0-py37_0.tar.bz2", "manifest", *CHECKS, "verify"}
    after = artifacts(project.build)
    assert {key: value for key, value in after.items() if "linux-aarch64" not in key} == before


def test_deleting_one_converted_file_restores_it_from_the_channel(project):
    project.doit(*TINY_ARGS)
    converted = project.build / "platform-builds" / "win-64" / "crdagtiny-1.0.0-py36_0.tar.bz2"
    before = artifacts(project.build)
    converted.unlink()
    rerun = project.doit(*TINY_ARGS)
    # the published copy comes back (tasks/restore.py); its upload confirms it and records `restored`
    assert set(project.executed(rerun)) == {"convert:3.6", "upload:win-64/crdagtiny-1.0.0-py36_0.tar.bz2",
                                            "manifest", *CHECKS, "verify"}
    table = read_summary(rerun.stdout)
    assert table.by_state("crdagtiny", "1.0.0")["restored"] == {"win-64/crdagtiny-1.0.0-py36_0.tar.bz2"}
    assert table.totals.get("restored") == 1 and "uploaded" not in table.totals
    assert artifacts(project.build) == before


def test_a_new_python_builds_only_the_new_version(project):
    project.doit(*TINY_ARGS)
    more = [a if not a.startswith("pythons=") else "pythons=3.6,3.7,3.12" for a in TINY_ARGS]
    rerun = set(project.executed(project.doit(*more)))
    assert "build:3.12" in rerun and not {"build:3.6", "build:3.7", "source", "skeleton", "recipe"} & rerun
    assert {name for name in rerun if name.startswith("convert:")} == {"convert:3.12"}


def test_clean_then_release_publishes_identical_files_and_uploads_nothing(project):
    project.doit(*TINY_ARGS)
    before = artifacts(project.build)
    channel = {p: p.read_bytes() for p in (project.build / "channel").rglob("*.tar.bz2")}
    project.doit("clean", *TINY_ARGS)
    assert not (project.build / "conda-bld").exists() and not (project.build / "platform-builds").exists()
    assert (project.build / "channel").exists()
    again = project.doit(*TINY_ARGS)
    assert artifacts(project.build) == before
    assert {p: p.read_bytes() for p in (project.build / "channel").rglob("*.tar.bz2")} == channel
    manifest = json.loads((project.build / "release.json").read_text())
    assert {f["state"] for f in manifest["files"]} == {"restored"}  # fetched back, nothing published
    assert "uploaded" not in read_summary(again.stdout).totals


def test_upload_alone_runs_only_uploads_and_what_they_need(project):
    proc = project.doit("upload", *TINY_ARGS)
    names = set(project.executed(proc))
    assert names.isdisjoint({"manifest", *CHECKS, "verify"})
    assert sum(n.startswith("upload:") for n in names) == 6
    assert project.executed(project.doit("upload", *TINY_ARGS)) == []


def test_conda_format_release(project):
    project.doit(*TINY_ARGS, "format=conda")
    for subdir in TINY_SUBDIRS:
        repodata = json.loads((project.build / "channel" / subdir / "repodata.json").read_text())
        assert sorted(repodata["packages.conda"]) == ["crdagtiny-1.0.0-py36_0.conda", "crdagtiny-1.0.0-py37_0.conda"]


def test_noarch_release_builds_once(project):
    proc = project.doit(*TINY_ARGS, "noarch=true")
    names = project.executed(proc)
    assert "build:noarch" in names and not any(n.startswith("convert:") for n in names)
    repodata = json.loads((project.build / "channel" / "noarch" / "repodata.json").read_text())
    assert list(repodata["packages"]) == ["crdagtiny-1.0.0-py_0.tar.bz2"]
    assert "noarch: python" in (project.build / "work" / "recipe" / "meta.yaml").read_text()


def test_local_checkout_source_and_its_edits(project, tiny_sdist, tmp_path):
    import tarfile

    with tarfile.open(tiny_sdist) as archive:
        archive.extractall(tmp_path / "checkout", filter="data")
    checkout = tmp_path / "checkout" / "crdagtiny-1.0.0"
    args = [a for a in TINY_ARGS if not a.startswith("platforms=")] + ["platforms=linux-64", f"source={checkout}"]
    first = project.doit(*args)
    assert "source" in project.executed(first)
    assert project.executed(project.doit(*args)) == []
    (checkout / "crdagtiny" / "extra.py").write_text("VALUE = 1\n")
    rerun = project.executed(project.doit(*args, "force=true"))
    assert "source" in rerun and "build:3.6" in rerun


def test_embedded_about_json_keeps_what_conda_build_keeps(released):
    """doc_url, dev_url, license_file, license_family and extra, as the recipe gives them, and the
    license files under info/licenses/ (conda-build's layout); rebuilds stay byte-identical
    (test_clean_then_release_publishes_identical_files_and_uploads_nothing)."""
    import tarfile

    from tasks import render

    project, _ = released
    meta = render.render((project.build / "work" / "recipe" / "meta.yaml").read_text(), "3.6", "linux-64")
    package = project.build / "conda-bld" / "linux-64" / "crdagtiny-1.0.0-py36_0.tar.bz2"
    with tarfile.open(package) as archive:
        about = json.loads(archive.extractfile("info/about.json").read())
        license_text = archive.extractfile("info/licenses/LICENSE").read()
    assert about["extra"] == {"recipe-maintainers": ["looselycoupled"]}
    assert about["license_file"] == "LICENSE" and meta.about["license_file"] == ("LICENSE",)
    assert license_text == b"MIT License\n"
    for key in ("doc_url", "dev_url", "license_family", "license", "summary"):
        assert about.get(key) == (meta.about[key] or None), key
