"""The conda engine driven end to end through the DAG, by contract.

conda and conda-build cannot be installed on our machines: tests/fake_conda puts stand-ins on
PATH that behave as the documented tools do (see its README).  These tests prove the DAG drives
the conda engine's code paths, with the command lines it must use; they do not prove conda-build.
"""

from __future__ import annotations

import json
import shutil

from conftest import TINY_ARGS
from fake_conda import install


def fake_tools(project, tmp_path) -> dict[str, str]:
    """The stand-ins on PATH; the downloads folder doubles as their PyPI, as their README says."""
    env = install(tmp_path / "bin", tmp_path / "conda.log")
    return {**env, "FAKE_CONDA_SRC_CACHE": str(project.build / "downloads")}


def test_contract_conda_engine_release_through_the_dag(project, tmp_path):
    log = tmp_path / "conda.log"
    env = fake_tools(project, tmp_path)
    proc = project.doit(*TINY_ARGS, "engine=conda", env=env)
    names = project.executed(proc)
    assert "toolchain" in names and "wheel" not in names
    assert {"build:3.6", "build:3.7", "convert:3.6", "verify"} <= set(names)
    text = log.read_text()
    assert '"skeleton", "pypi", "crdagtiny", "--version", "1.0.0"' in text
    assert "--no-anaconda-upload" in text and '"--package-format", "tar.bz2"' in text
    assert '"convert"' in text and '"create"' in text
    assert '"config"' not in text  # never `conda config --set anaconda_upload no`
    for subdir in ("linux-64", "win-64", "osx-arm64"):
        repodata = json.loads((project.build / "channel" / subdir / "repodata.json").read_text())
        assert sorted(repodata["packages"]) == ["crdagtiny-1.0.0-py36_0.tar.bz2", "crdagtiny-1.0.0-py37_0.tar.bz2"]


def test_contract_both_engines_publish_the_same_file_names(project, tmp_path):
    for folder in ("out-embedded", "out-conda"):
        shutil.copytree(project.build / "downloads", project.root / folder / "downloads")
    embedded = project.doit(*TINY_ARGS, "build-dir=out-embedded")
    env = fake_tools(project, tmp_path)
    conda = project.doit(*TINY_ARGS, "engine=conda", "build-dir=out-conda", env=env)
    assert embedded.returncode == conda.returncode == 0

    def published(folder: str) -> list[str]:
        manifest = json.loads((project.root / folder / "release.json").read_text())
        return sorted(f"{f['subdir']}/{f['file']}" for f in manifest["files"])

    assert published("out-embedded") == published("out-conda") and len(published("out-conda")) == 6


def test_engine_conda_without_conda_is_one_line(project):
    proc = project.doit(*TINY_ARGS, "engine=conda", check=False, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert lines == ["error: engine=conda needs conda-build on PATH: conda install conda-build anaconda-client, "
                     "or use engine=embedded"]


def test_channels_are_named_in_doit_info_and_the_manifest(project):
    info = project.doit("info", "check:3.6", *TINY_ARGS, "channels=conda-forge,defaults", check=False)  # status: to run
    assert "'channels': ['conda-forge', 'defaults']" in info.stdout
    project.doit("manifest", *TINY_ARGS, "channels=conda-forge")
    assert json.loads((project.build / "release.json").read_text())["channels"] == ["conda-forge"]
