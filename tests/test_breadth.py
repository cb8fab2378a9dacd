"""Regression tests for the failure classes real packages from the index showed, each released
whole (offline) from a small sdist written here.  The corpus itself is tests/test_corpus.py."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import new_project
from test_bad_input import one_clear_line
from tiny import make_sdist

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
ARGS = (f"pythons={HOST}", "platforms=linux-64,win-64")
TAG = "py" + HOST.replace(".", "")


def _release(tmp_path, name: str, files: dict[str, str], *args: str, check: bool = True):
    sdist = make_sdist(tmp_path / "sdist", files, top=f"{name}-1.0.0")
    project = new_project(tmp_path / "proj", (sdist,))
    proc = project.doit(f"package={name.lower()}", "version=1.0.0", *ARGS, *args, check=check)
    return project, proc


CAPS = {
    "setup.py": (
        "from setuptools import setup\n"
        "setup(name='CrdagCaps', version='1.0.0', packages=['crdag_caps_impl'], license='MIT',\n"
        "      extras_require={'colour': []}, install_requires=['crdag-wincolour; sys_platform == \"win32\"'],\n"
        "      entry_points={'console_scripts': ['crdag-caps = crdag_caps_impl.cli:main [colour]']})\n"
    ),
    "crdag_caps_impl/__init__.py": "VALUE = 42\n",
    "crdag_caps_impl/cli.py": (
        "import sys\n"
        "def main():\n"
        "    print('usage: crdag-caps' if '--help' in sys.argv else 'nothing asked')\n"
    ),
}


@pytest.fixture(scope="module")
def caps(tmp_path_factory):
    return _release(tmp_path_factory.mktemp("caps"), "CrdagCaps", CAPS)


def test_a_capitalised_name_is_packaged_and_installed_under_its_conda_name(caps):
    """Class 3: `CrdagCaps` was packaged as `"name": "CrdagCaps"` and then not found in the channel."""
    project, _ = caps
    package = project.build / "channel" / "linux-64" / f"crdagcaps-1.0.0-{TAG}_0.tar.bz2"
    from rattler.package import IndexJson

    assert IndexJson.from_package_archive(package).name.normalized == "crdagcaps"
    assert "name: crdagcaps" in (project.build / "work" / "recipe" / "meta.yaml").read_text()


def test_test_imports_are_the_wheels_modules_and_run_for_real(caps):
    """Class 3: the import test was `import CrdagCaps`, the distribution's name."""
    project, proc = caps
    record = json.loads((project.build / "stamps" / "verify-local.json").read_text())
    [install] = record["installs"]
    assert install["imports"] == {"crdag_caps_impl": "ok"}
    assert f"verified linux-64/crdagcaps-1.0.0-{TAG}_0.tar.bz2: import crdag_caps_impl ok" in proc.stdout


def test_entry_points_lose_their_extras_and_the_script_runs(caps):
    """Class 6: `name = module:func [extra]` was copied into the recipe as it was."""
    project, _ = caps
    meta = (project.build / "work" / "recipe" / "meta.yaml").read_text()
    assert "- crdag-caps = crdag_caps_impl.cli:main\n" in meta and "[colour]" not in meta
    record = json.loads((project.build / "stamps" / "verify-local.json").read_text())
    assert record["installs"][0]["scripts"] == {"crdag-caps": "--help ok"}


def test_a_platform_marked_requirement_reaches_the_converted_package_of_that_platform(caps):
    """`conda convert` keeps the native build's depends for every subdir: a Windows-only
    requirement would be missing from the win-64 package."""
    from rattler.package import IndexJson

    project, _ = caps
    meta = (project.build / "work" / "recipe" / "meta.yaml").read_text()
    assert "- crdag-wincolour  # [win]" in meta
    depends = {subdir: IndexJson.from_package_archive(
        project.build / "channel" / subdir / f"crdagcaps-1.0.0-{TAG}_0.tar.bz2").depends for subdir in ("linux-64", "win-64")}
    assert "crdag-wincolour" in depends["win-64"] and "crdag-wincolour" not in depends["linux-64"]


def test_the_release_says_where_the_recipe_came_from(caps):
    project, proc = caps
    assert "recipe from grayskull, completed from the wheel (" in proc.stdout
    origin = json.loads((project.build / "work" / "skeleton" / "origin.json").read_text())
    assert origin["origin"] == "grayskull" and "entry points without their extras" in origin["completed"]
    assert json.loads((project.build / "release.json").read_text())["recipe"] == origin


LICENSES = {
    "setup.py": "from setuptools import setup\nsetup()\n",
    "setup.cfg": ("[metadata]\nname = crdaglic\nversion = 1.0.0\nlicense = MIT\n"
                  "license_files = LICENSE\n    NOTICE\n[options]\npackages = crdaglic\n"),
    "crdaglic/__init__.py": "",
    "LICENSE": "MIT License\n",
    "NOTICE": "Notice\n",
}


def test_several_license_files_build(tmp_path):
    """Class 2: `about.license_file` as a list was refused: `meta.yaml has a list or mapping …`."""
    project, proc = _release(tmp_path, "crdaglic", LICENSES)
    meta = (project.build / "work" / "recipe" / "meta.yaml").read_text()
    assert "license_file:\n    - NOTICE\n    - LICENSE\n" in meta  # grayskull's list, kept as given
    assert (project.build / "channel" / "win-64" / f"crdaglic-1.0.0-{TAG}_0.tar.bz2").is_file()


SPEEDUPS = {
    "setup.py": (
        "from setuptools import Extension, setup\n"
        "setup(name='crdagfast', version='1.0.0', packages=['crdagfast'],\n"
        "      ext_modules=[Extension('crdagfast._speedups', ['crdagfast/_speedups.c'], optional=True)])\n"
    ),
    "crdagfast/__init__.py": "try:\n    from ._speedups import add\nexcept ImportError:\n    def add(a, b):\n        return a + b\n",
    "crdagfast/_speedups.c": (
        "#include <Python.h>\n"
        "static PyObject *add(PyObject *s, PyObject *a) { return PyNumber_Add(PyTuple_GET_ITEM(a, 0), PyTuple_GET_ITEM(a, 1)); }\n"
        "static PyMethodDef m[] = {{\"add\", add, METH_VARARGS, 0}, {0}};\n"
        "static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, \"_speedups\", 0, -1, m};\n"
        "PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&d); }\n"
    ),
}


def test_optional_speedups_build_as_pure_python_although_a_compiler_is_here(tmp_path):
    """Class 5: the compiler on this machine built the optional extension, and the wheel was
    refused as compiled code."""
    project, proc = _release(tmp_path, "crdagfast", SPEEDUPS)
    from conda_package_handling.api import list_contents  # noqa: F401  (the package reads as conda's)
    import tarfile

    package = project.build / "channel" / "linux-64" / f"crdagfast-1.0.0-{TAG}_0.tar.bz2"
    with tarfile.open(package) as archive:
        names = archive.getnames()
    assert any(name.endswith("crdagfast/__init__.py") for name in names)
    assert not any(name.endswith((".so", ".c")) for name in names)
    assert "compilers" not in proc.stdout or "no compilers: the wheel is pure Python" in proc.stdout


def test_a_mandatory_extension_stops_with_one_line_naming_the_engine(tmp_path):
    files = dict(SPEEDUPS)
    files["setup.py"] = files["setup.py"].replace(", optional=True", "")
    project, proc = _release(tmp_path, "crdagfast", files, check=False)
    line = one_clear_line(proc, "crdagfast 1.0.0 needs compiled code to build", "see build/logs/wheel.log",
                          "use engine=conda", "or binaries=wheels")
    assert len(line) < 400
    assert "gcc" not in proc.stdout + proc.stderr or "gcc" in line  # the compiler's pages stay in the log
    assert (project.build / "logs" / "wheel.log").stat().st_size > 0


def test_an_import_that_fails_fails_the_release(tmp_path):
    files = {"setup.py": "from setuptools import setup\nsetup(name='crdagbad', version='1.0.0', packages=['crdagbad'])\n",
             "crdagbad/__init__.py": "raise RuntimeError('broken on import')\n"}
    project, proc = _release(tmp_path, "crdagbad", files, check=False)
    one_clear_line(proc, f"linux-64/crdagbad-1.0.0-{TAG}_0.tar.bz2: import crdagbad failed",
                   "RuntimeError: broken on import", "fix the package or the recipe's test imports")
    assert not (project.build / "stamps" / f"verify-local-{HOST}.json").exists()


def test_a_python_the_package_excludes_is_one_line(tmp_path):
    files = {"setup.py": ("from setuptools import setup\nsetup(name='crdagnew', version='1.0.0', "
                          "packages=['crdagnew'], python_requires='>=3.99')\n"),
             "crdagnew/__init__.py": ""}
    _, proc = _release(tmp_path, "crdagnew", files, check=False)
    one_clear_line(proc, "crdagnew 1.0.0 requires Python >=3.99", f"drop {HOST} from pythons=")
