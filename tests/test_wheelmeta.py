"""Reading a wheel in conda's terms, and completing grayskull's recipe from it (pure)."""

from __future__ import annotations

import zipfile

import pytest
from packaging.markers import Marker

from tasks import fromwheel, render, wheelmeta
from tasks.errors import UserError


def make_wheel(folder, files: dict[str, str], metadata: str, entry_points: str = "",
               info: str = "demo-1.0.dist-info"):
    """A small wheel written by hand: the files, METADATA and entry_points.txt."""
    path = folder / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{info}/METADATA", metadata)
        if entry_points:
            wheel.writestr(f"{info}/entry_points.txt", entry_points)
        wheel.writestr(f"{info}/RECORD", "")
    return path


METADATA = """Metadata-Version: 2.4
Name: Demo.Pkg
Version: 1.0
Summary: A demo.
License-Expression: MIT
License-File: LICENSE
License-File: NOTICE
Project-URL: Source, https://crdag.invalid/src
Requires-Python: >=3.9
Requires-Dist: PyYAML>=5
Requires-Dist: msgpack<2,>=1
Requires-Dist: colorama; sys_platform == "win32"
Requires-Dist: tomli>=1; python_version < "3.11"
Requires-Dist: pypy-only; implementation_name == "pypy"
Requires-Dist: pytest; extra == "test"
"""


@pytest.fixture
def info(tmp_path):
    files = {"demo/__init__.py": "", "demo/cli.py": "", "single.py": "", "_private.py": "",
             "zope/event/__init__.py": "", "ns/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)",
             "ns/child/__init__.py": "", "tests/__init__.py": "", "demo-1.0.data/scripts/x": ""}
    entry = "[console_scripts]\ndemo = demo.cli:main [colour]\nother=demo.cli:other\n[gui_scripts]\ndemo-gui = demo.cli:gui\n"
    return wheelmeta.read(make_wheel(tmp_path, files, METADATA, entry))


def test_the_wheel_is_read_in_conda_terms(info):
    assert (info.name, info.version, info.requires_python, info.license) == ("Demo.Pkg", "1.0", ">=3.9", "MIT")
    assert info.home == "https://crdag.invalid/src"
    assert info.license_files == ("LICENSE", "NOTICE")
    assert "pytest; extra == \"test\"" not in info.requires  # extras are not run requirements
    assert info.console_scripts == ("demo = demo.cli:main", "other = demo.cli:other")
    assert info.gui_scripts == ("demo-gui = demo.cli:gui",)


def test_importable_modules_skip_namespaces_tests_and_private_modules(info):
    assert info.modules == ("demo", "ns.child", "single", "zope.event")


def test_only_private_modules_are_still_named():
    assert wheelmeta.importable_modules(["_impl.py", "x.dist-info/METADATA"], {}) == ("_impl",)


@pytest.mark.parametrize("marker, selector", [
    ('python_version < "3.8"', "py<38"),
    ('python_version >= "3.10"', "py>=310"),
    ('sys_platform == "win32"', "win"),
    ('platform_system != "Windows"', "not win"),
    ('os_name == "posix"', "unix"),
    ('sys_platform == "darwin" and platform_machine == "arm64"', "osx and arm64"),
    ('(sys_platform == "win32" or sys_platform == "darwin") and python_version < "3.11"', "(win or osx) and py<311"),
    ('implementation_name == "cpython" and python_version < "3.13"', "py<313"),
    ('platform_python_implementation == "PyPy"', "False"),
    ('python_version < "3.8" or implementation_name == "cpython"', "True"),
    ('python_full_version >= "3.8.1"', "py>38"),
])
def test_markers_become_selectors(marker, selector):
    assert wheelmeta.selector_of(Marker(marker)) == selector


def test_selectors_render_as_conda_build_evaluates_them():
    """The selector written for a marker selects the dependency exactly where pip would install it."""
    meta = "package:\n  name: x\n  version: 1\nrequirements:\n  run:\n"
    for spec in ('colorama; sys_platform == "win32"', 'tomli>=1; python_version < "3.11"'):
        name, selector = wheelmeta.conda_spec(spec)
        meta += f"    - {name}  # [{selector}]\n"
    assert render.render(meta, "3.10", "win-64").run == ("colorama", "tomli >=1")
    assert render.render(meta, "3.12", "linux-64").run == ()


def test_requirements_use_conda_forge_names_and_order(info):
    specs = [wheelmeta.conda_spec(r) for r in info.requires]
    assert specs == [("pyyaml >=5", None), ("msgpack-python >=1,<2", None), ("colorama", "win"),
                     ("tomli >=1", "py<311"), None]


def test_a_requirement_pip_cannot_parse_is_one_line():
    with pytest.raises(UserError, match=r"requirement pip cannot parse .*: fix it in the package's metadata"):
        wheelmeta.conda_spec("demo >>> 1")


def test_entry_points_lose_their_extras():
    assert wheelmeta.entry_point("x = a.b:c [one, two]") == "x = a.b:c"
    assert wheelmeta.entry_point("x=a.b") == "x = a.b"


@pytest.mark.parametrize("requires, python, allowed", [
    (">=3.9", "3.11", True), (">=3.12", "3.11", False), ("<3.12,>=3.8", "3.12", False),
    (">=3.11.4", "3.11", True), ("", "3.6", True), ("not a specifier", "3.6", True),
])
def test_requires_python(requires, python, allowed):
    assert wheelmeta.requires_python_allows(requires, python) is allowed


SKELETON = """{% set version = "1.0" %}

package:
  name: Demo.Pkg
  version: {{ version }}

build:
  entry_points:
    - demo = demo.cli:main [colour]
  script: {{ PYTHON }} -m pip install . -vv
  number: 0

requirements:
  build:
    - {{ compiler('c') }}
  host:
    - python
    - pip
  run:
    - python
    - pyyaml >=5  # grayskull's pin stays

test:
  imports:
    - Demo.Pkg
    - zope
  commands:
    - pip check

about:
  license: MIT
  license_file: COPYING
"""


def test_grayskulls_recipe_is_completed_from_the_wheel(info):
    text, notes = fromwheel.complete(SKELETON, info, {"LICENSE", "NOTICE", "setup.py"}, pure=True)
    meta = render.render(text, "3.10", "win-64")
    assert meta.run == ("python", "pyyaml >=5", "msgpack-python >=1,<2", "colorama", "tomli >=1")
    assert render.render(text, "3.12", "linux-64").run == ("python", "pyyaml >=5", "msgpack-python >=1,<2")
    assert meta.entry_points == ("demo = demo.cli:main", "other = demo.cli:other")
    assert meta.test_imports == ("demo", "ns.child", "single", "zope.event")
    assert meta.about["license_file"] == ("LICENSE", "NOTICE")
    assert "compiler" not in text and "# grayskull's pin stays" in text
    assert len(notes) == 5


def test_a_recipe_that_agrees_with_the_wheel_is_left_as_it_is(tmp_path):
    files = {"good/__init__.py": "", "LICENSE": ""}
    info = wheelmeta.read(make_wheel(tmp_path, files, "Metadata-Version: 2.1\nName: good\nVersion: 1\n"
                                                      "Requires-Dist: attrs\n"))
    skeleton = ("package:\n  name: good\n  version: 1\n\nrequirements:\n  run:\n    - python\n    - attrs\n\n"
                "test:\n  imports:\n    - good\n\nabout:\n  license_file: LICENSE\n")
    assert fromwheel.complete(skeleton, info, {"LICENSE"}, pure=True) == (skeleton, [])


def test_the_wheel_alone_writes_a_recipe_that_renders(info):
    text = fromwheel.write(info, ["hatchling", "hatch-vcs"], "file:///tmp/demo-1.0.tar.gz", "0" * 64)
    meta = render.render(text, "3.10", "win-64")
    assert (meta.name, meta.version) == ("demo.pkg", "1.0")
    assert meta.host == ("python >=3.9", "hatchling", "hatch-vcs", "pip")
    assert meta.run == ("python >=3.9", "pyyaml >=5", "msgpack-python >=1,<2", "colorama", "tomli >=1")
    assert meta.entry_points == ("demo = demo.cli:main", "other = demo.cli:other")
    assert meta.test_imports == ("demo", "ns.child", "single", "zope.event")
    assert meta.about["license_file"] == ("LICENSE", "NOTICE")
    assert meta.about["home"] == "https://crdag.invalid/src"


def test_build_requirements_come_from_pyproject():
    assert fromwheel.build_requirements({}) == ["setuptools"]
    system = {"requires": ["flit_core>=3.2,<4", "tomli; python_version < '3.11'"]}
    assert fromwheel.build_requirements(system) == ["flit-core >=3.2,<4"]  # conda-forge's name
