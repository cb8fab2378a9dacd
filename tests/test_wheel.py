"""The wheel step: the source's setuptools backend called in place, pip for anything else."""

from __future__ import annotations

import json
import zipfile

import pytest

from tasks import build
from tasks import project as P
from tasks.config import Config
from tasks.errors import UserError
from tiny import TINY_FILES


def _tree(folder, pyproject: str | None = None, files: dict[str, str] = TINY_FILES):
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    if pyproject is not None:
        (folder / "pyproject.toml").write_text(pyproject)
    return folder


@pytest.mark.parametrize("pyproject, backend", [
    (None, "setuptools.build_meta:__legacy__"),
    ("[project]\nname = 'x'\n", "setuptools.build_meta:__legacy__"),
    ("[build-system]\nrequires = ['setuptools>=40', 'wheel']\nbuild-backend = 'setuptools.build_meta'\n",
     "setuptools.build_meta"),
    ("[build-system]\nrequires = ['setuptools', 'crdag-absent; python_version < \"3\"']\n",
     "setuptools.build_meta:__legacy__"),  # a requirement whose marker excludes this Python
    ("[build-system]\nrequires = ['flit_core>=3']\nbuild-backend = 'flit_core.buildapi'\n", "flit_core.buildapi"),
    ("[build-system]\nrequires = ['hatchling', 'hatch-vcs']\nbuild-backend = 'hatchling.build'\n", "hatchling.build"),
    ("[build-system]\nrequires = ['setuptools', 'crdag-absent-plugin']\n", None),
    ("[build-system]\nrequires = ['setuptools>=9999']\n", None),
    ("[build-system]\nrequires = []\nbuild-backend = 'backend'\nbackend-path = ['.']\n", "backend"),
], ids=["no-pyproject", "no-build-system", "setuptools", "marker", "flit", "hatchling", "absent-requirement",
        "too-old", "backend-path"])
def test_which_backend_is_called_in_place(tmp_path, pyproject, backend):
    assert build.local_backend(build.build_system(_tree(tmp_path, pyproject))) == backend


def test_a_pyproject_that_is_not_toml_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"pyproject.toml is not valid TOML .*: fix it in the package"):
        build.build_system(_tree(tmp_path, "[build-system\n"))


def _config(tmp_path) -> Config:
    return Config(package="crdagtiny", version="1.0.0", build_dir=tmp_path / "build")


def test_the_wheel_is_built_by_the_backend_in_one_child(tmp_path):
    config = _config(tmp_path)
    _tree(P.paths(config).source_tree)
    argvs = []

    def runner(argv, **kwargs):
        argvs.append((argv, kwargs.get("cwd")))
        from tasks.runner import run
        return run(argv, **kwargs)

    build.wheel(config, runner)
    record = json.loads((P.paths(config).wheel_dir / "wheel.json").read_text())
    assert record["wheel"] == "crdagtiny-1.0.0-py3-none-any.whl"
    assert len(argvs) == 1 and "pip" not in argvs[0][0]
    assert argvs[0][1] == str(P.paths(config).source_tree)
    names = zipfile.ZipFile(P.paths(config).wheel_dir / "dist" / record["wheel"]).namelist()
    assert "crdagtiny/data/greeting.txt" in names and "crdagtiny/cli.py" in names


def test_a_setup_py_that_fails_is_one_clear_error_and_no_record(tmp_path):
    config = _config(tmp_path)
    files = {**TINY_FILES, "setup.py": "raise SystemExit('crdag: this setup.py refuses')\n"}
    _tree(P.paths(config).source_tree, files=files)
    with pytest.raises(UserError, match=r"could not build a wheel of crdagtiny \(crdag: this setup.py "
                                        r"refuses; see .*wheel.log\): check that the source builds with `pip wheel .`"):
        build.wheel(config)
    assert "crdag: this setup.py refuses" in (P.paths(config).logs / "wheel.log").read_text()
    assert not (P.paths(config).wheel_dir / "wheel.json").exists()
    assert list((P.paths(config).wheel_dir / "dist").iterdir()) == []


def test_other_backends_go_to_pip_with_isolation(tmp_path):
    config = _config(tmp_path)
    _tree(P.paths(config).source_tree, "[build-system]\nrequires = ['flit_core>=3', 'crdag-absent-plugin']\n"
                                       "build-backend = 'flit_core.buildapi'\n")
    argvs = []

    def runner(argv, **kwargs):  # records the command; builds nothing
        argvs.append(argv)
        from tasks.runner import Result
        return Result(tuple(argv), 1, "", "ERROR: no index here")

    with pytest.raises(UserError, match=r"\(ERROR: no index here; see .*build/logs/wheel.log\)"):
        build.wheel(config, runner)
    assert argvs[0][1:4] == ["-m", "pip", "--disable-pip-version-check"]
    assert "wheel" in argvs[0] and "--no-build-isolation" not in argvs[0]
