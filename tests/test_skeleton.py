"""The skeleton step: grayskull reads setup.py without installing what it imports or requires."""

from __future__ import annotations

import setuptools
from grayskull.strategy import py_base

from tasks import skeleton
from tiny import TINY_FILES, make_sdist


def _sdist(tmp_path, prelude: str = "", setup_requires: str = ""):
    files = dict(TINY_FILES)
    setup = files["setup.py"]
    if setup_requires:
        setup = setup.replace("install_requires=", f"setup_requires={setup_requires}, install_requires=")
    files["setup.py"] = prelude + setup
    return make_sdist(tmp_path / "sdist", files)


def _pip_calls(monkeypatch) -> list[str]:
    """grayskull's `pip install DEP --target` replaced by a recorder (no test runs pip)."""
    calls: list[str] = []
    monkeypatch.setattr(py_base, "pip_install_dep", lambda data, name, folder: calls.append(name))
    return calls


def _section(meta: str, name: str) -> list[str]:
    lines = meta.split(f"  {name}:\n", 1)[1].splitlines()
    return [line.strip()[2:] for line in lines[: next(i for i, l in enumerate(lines) if not l.startswith("    - "))]]


def test_importable_setup_imports_and_setup_requires_are_not_installed(tmp_path, monkeypatch):
    calls = _pip_calls(monkeypatch)

    def fetch(attrs):  # setuptools' setup_requires download
        raise AssertionError("setup_requires were fetched")

    monkeypatch.setattr(setuptools, "_install_setup_requires", fetch)
    sdist = _sdist(tmp_path, prelude="import xxhash\n", setup_requires="['crdag-absent-tool>=1']")
    meta = skeleton._grayskull(sdist, tmp_path / "out")
    assert calls == []
    assert "crdag-absent-tool >=1" in _section(meta, "host")  # read from setup(), not installed
    assert "attrs >=17.4" in _section(meta, "run")
    # both seams are handed back as they were found
    assert setuptools._install_setup_requires is fetch
    py_base.pip_install_dep("data", "name", "folder")
    assert calls == ["name"]


def test_a_module_this_python_lacks_is_not_installed_and_nothing_reaches_the_terminal(tmp_path, monkeypatch, capfd):
    """Class 4: setup.py importing a name that is no distribution (a custom command class) used to
    send grayskull to `pip install` it, with pages of pip errors on the terminal."""
    calls = _pip_calls(monkeypatch)
    sdist = _sdist(tmp_path, prelude="try:\n    import crdag_absent_module\nexcept ImportError:\n    pass\n")
    log = tmp_path / "skeleton.log"
    from tasks import logs
    with logs.captured(log):
        meta = skeleton._grayskull(sdist, tmp_path / "out")
        print("chatter from grayskull")
    assert calls == []
    assert "attrs >=17.4" in _section(meta, "run")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert "chatter from grayskull" in log.read_text()


def test_setuptools_static_strings_are_written_as_plain_yaml(tmp_path, monkeypatch):
    """Class 1: setuptools >= 75.8 hands grayskull `setuptools._static.Str` values (a project URL),
    which ruamel.yaml refused: `RepresenterError: cannot represent an object: 'https://…'`."""
    _pip_calls(monkeypatch)
    files = dict(TINY_FILES)
    files["setup.py"] = "from setuptools import setup\nsetup()\n"
    files["setup.cfg"] = ("[metadata]\nname = crdagtiny\nversion = 1.0.0\nurl = https://crdag.invalid/home\n"
                          "license = MIT\n[options]\npackages = crdagtiny\ninstall_requires = attrs>=17.4\n")
    meta = skeleton._grayskull(make_sdist(tmp_path / "sdist", files), tmp_path / "out")
    assert "home: https://crdag.invalid/home" in meta


def test_pkg_resources_counts_as_setuptools(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(py_base, "pip_install_dep", lambda data, name, folder: calls.append(name))
    data: dict = {}
    with skeleton._no_setup_installs():
        py_base.pip_install_dep(data, "pkg_resources", "unused")
        py_base.pip_install_dep(data, "xxhash", "unused")
        py_base.pip_install_dep(data, "xxhash", "unused")
        py_base.pip_install_dep(data, "crdag_absent_module", "unused")
    assert data["setup_requires"] == ["xxhash"]  # as grayskull records them; setuptools is implied
    assert calls == []  # nothing is installed, not even what this Python lacks


def test_when_grayskull_fails_the_recipe_comes_from_the_wheel(tmp_path, monkeypatch, capsys):
    import json

    from tasks import build, fsio, render
    from tasks import project as P
    from tasks.config import Config
    from tasks.errors import UserError

    config = Config(package="crdagtiny", version="1.0.0", build_dir=tmp_path / "build")
    paths = P.paths(config)
    sdist = make_sdist(paths.downloads, TINY_FILES)
    for name, text in TINY_FILES.items():
        (paths.source_tree / name).parent.mkdir(parents=True, exist_ok=True)
        (paths.source_tree / name).write_text(text)
    fsio.write_json(paths.source_record, {"origin": "index", "sdist": sdist.name, "sha256": "0", "epoch": 0})
    build.wheel(config)

    def fails(sdist, out):
        raise UserError("grayskull could not read crdagtiny-1.0.0.tar.gz (KeyError: 'name')")

    monkeypatch.setattr(skeleton, "_grayskull", fails)
    skeleton.generate(config)
    assert paths.skeleton.read_text().startswith(skeleton.FAILED)
    assert "the recipe will come from the wheel's metadata" in capsys.readouterr().out
    text = skeleton.checked(config, paths.skeleton.read_text())
    said = capsys.readouterr().out
    assert said.startswith("recipe from the wheel's metadata: grayskull could not read crdagtiny-1.0.0.tar.gz")
    assert json.loads(paths.recipe_origin.read_text())["origin"] == "wheel"
    meta = render.render(text, "3.11", "linux-64")
    assert (meta.name, meta.version, meta.run) == ("crdagtiny", "1.0.0", ("python >=3.6", "attrs >=17.4"))
    assert meta.entry_points == ("crdagtiny-hello = crdagtiny.cli:main",)
    assert meta.test_imports == ("crdagtiny",)
    assert meta.about["license"] == "MIT"
