"""Rendering meta.yaml as conda-build would: golden renders, selectors, Jinja context, errors.

tests/data/rendered.json holds, for each "FILE PYTHON SUBDIR", the hand-checked `Rendered` of a
golden recipe (see test_recipe.py for where those come from).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from tasks import subdirs
from tasks.errors import UserError
from tasks.render import ABOUT, PYTHON_MIN, render, select_lines, selectors

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "rendered.json").read_text())
TINY = textwrap.dedent("""\
    {% set name = "tiny" %}
    package:
      name: {{ name }}
      version: "1.0"
    requirements:
      run:
    """)


def _case(key: str) -> tuple[str, str | None, str]:
    filename, python, subdir = key.split()
    return filename, None if python == "noarch" else python, subdir


def _tiny(*run: str, **sections: str) -> str:
    """A small recipe: run requirements (with their selectors), plus extra top-level sections."""
    lines = [f"    - {item}" for item in run] or ["    - python"]
    extra = [textwrap.dedent(text).strip() for text in sections.values()]
    return TINY + "\n".join(lines + extra) + "\n"


# --- golden --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_golden(key):
    filename, python, subdir = _case(key)
    rendered = render((DATA / filename).read_text(), python, subdir)
    assert json.loads(json.dumps(dataclasses.asdict(rendered))) == GOLDEN[key]


def test_golden_covers_both_styles_on_both_platforms_and_pythons():
    cases = {_case(key) for key in GOLDEN}
    for style in ("btrdb-skeleton.expected.yaml", "btrdb-conda-skeleton.expected.yaml"):
        assert {(p, s) for f, p, s in cases if f == style} == {
            (p, s) for p in ("3.6", "3.12") for s in ("linux-64", "win-64")}


def test_selector_lines_follow_python_and_platform():
    """The conda-skeleton golden has `dataclasses  # [py<37]` and `colorama  # [win]`."""
    for key, rendered in GOLDEN.items():
        filename, python, subdir = _case(key)
        if filename.startswith("btrdb-conda-skeleton"):
            assert ("dataclasses" in rendered["run"]) == (python == "3.6")
            assert ("colorama" in rendered["run"]) == subdirs.is_windows(subdir)


# --- selectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("selector, python, subdir, kept", [
    ("py<37", "3.6", "linux-64", True),
    ("py<37", "3.12", "linux-64", False),
    ("py==312", "3.12", "osx-arm64", True),
    ("py36", "3.6", "win-64", True),
    ("py37", "3.7", "linux-64", False),  # conda-build defines py26..py36 only: py37 is unknown
    ("py3k and not py2k", "3.12", "linux-64", True),
    ("win", "3.6", "win-32", True),
    ("not win", "3.6", "win-64", False),
    ("unix", "3.6", "osx-64", True),
    ("linux and aarch64", "3.6", "linux-aarch64", True),
    ("x86_64", "3.6", "linux-aarch64", False),
    ("x86", "3.6", "win-64", True),
    ("x86", "3.6", "osx-arm64", False),
    ("arm64", "3.6", "osx-arm64", True),
    ("ppc64le or s390x", "3.6", "linux-s390x", True),
    ("armv7l", "3.6", "linux-armv7l", True),
    ("arm", "3.6", "linux-armv6l", True),
    ("linux32", "3.6", "linux-32", True),
    ("win64", "3.6", "win-32", False),
    ("osx and not arm64", "3.6", "osx-64", True),
    ("nomkl or FEATURE_X", "3.6", "linux-64", False),  # unknown names are False
    ("target_platform == 'win-64'", "3.6", "win-64", True),
])
def test_selectors(selector, python, subdir, kept):
    text = select_lines(f"key: value  # [{selector}]\n", selectors(python, subdir))
    assert text == ("key: value\n" if kept else "\n")


def test_one_os_and_one_arch_per_subdir():
    for subdir in subdirs.ALL:
        names = selectors("3.6", subdir)
        oses = [name for name in ("linux", "osx", "win") if names[name]]
        assert oses == [subdirs.os_of(subdir)] and names[subdirs.arch_of(subdir)] is True


def test_selecting_keeps_line_numbers_and_drops_comment_lines():
    text = "a: 1\n# a comment [win]\nb: 2  # [win]\n'c: 3  # [linux]'\nd: 4 # note [linux] here\ne: [x]\n"
    selected = select_lines(text, selectors("3.6", "linux-64"))
    # e: a flow list ending a line reads as a selector, in conda-build too: write lists in block style
    assert selected.splitlines() == ["a: 1", "", "", "'c: 3'", "d: 4", ""]


# --- Jinja and the context -----------------------------------------------------------------


def test_python_min_defaults_to_conda_forge_pin_and_a_set_line_wins():
    recipe = _tiny("python >={{ python_min }}")
    assert render(recipe, "3.12", "linux-64").run == (f"python >={PYTHON_MIN}",)
    assert render('{% set python_min = "3.7" %}\n' + recipe, "3.12", "linux-64").run == ("python >=3.7",)


def test_context_names_the_target_platform():
    recipe = _tiny("{{ PYTHON }}-{{ environ['PY_VER'] }}-{{ target_platform }}-{{ py }}",
                   build="build:\n  script: {{ os.path.join('a', 'b') }}")
    linux, win = render(recipe, "3.6", "linux-64"), render(recipe, "3.6", "win-64")
    assert linux.run == ("python-3.6-linux-64-36",) and win.run == ("python-3.6-win-64-36",)
    assert (linux.script, win.script) == ("a/b", "a\\b")


def test_noarch_renders_as_python_min():
    recipe = _tiny("py{{ py }}", "old  # [py<37]")
    assert render(recipe, None, "linux-64").run == ("py" + PYTHON_MIN.replace(".", ""),)


def test_fields_read_as_conda_build_reads_them():
    recipe = _tiny("python", build="""\
        build:
          number: 3
          noarch: python
          entry_points:
            - tiny = tiny.cli:main
          script:
            - pip install .
            - echo done
        """, source="source:\n  - url: file:///tmp/a.tar.gz\n  - path: ../src", about="about:\n  license: MIT")
    rendered = render(recipe.replace('"1.0"', "1.10"), "3.6", "linux-64")
    assert (rendered.version, rendered.build_number, rendered.noarch) == ("1.10", 3, "python")
    assert rendered.entry_points == ("tiny = tiny.cli:main",) and rendered.script == "pip install .\necho done"
    assert rendered.source_path == "../src"
    assert rendered.about == {key: "MIT" if key == "license" else () if key == "license_file" else None for key in ABOUT}


def test_empty_sections_are_empty():
    rendered = render(TINY + "    - python\ntest:\nabout:\n", "3.6", "linux-64")
    assert (rendered.test_imports, rendered.about["home"], rendered.build_number) == ((), None, 0)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("run, line, fragment", [
    ("x  # [py >]", 7, "invalid selector [py >]"),
    ("x  # [os.nothing]", 7, "invalid selector [os.nothing]"),
    ("{{ nothing }}", 7, "bad Jinja ('nothing' is undefined)"),
    ("{% if %}", 7, "bad Jinja (Expected an expression"),
    ("{{ name | nofilter }}", 7, "bad Jinja (No filter named 'nofilter'"),
    ("[unclosed", 8, "not valid YAML"),
])
def test_recipe_errors_name_the_line(run, line, fragment):
    with pytest.raises(UserError) as err:
        render(_tiny(run), "3.6", "linux-64")
    message = str(err.value)
    assert message.startswith(f"meta.yaml line {line}: ") and fragment in message
    assert message.endswith("fix recipe/patch.yaml or the recipe") and "\n" not in message


@pytest.mark.parametrize("call, fix", [
    ("load_setup_py_data()", "write the values into the recipe, or use engine=conda"),
    ("load_file_data('pyproject.toml')", "write the values into the recipe, or use engine=conda"),
    ("compiler('c')", "builds pure-Python packages only: use engine=conda, or binaries=wheels to release the package's own wheels"),
    ("pin_compatible('numpy')", "builds pure-Python packages only: use engine=conda, or binaries=wheels to release the package's own wheels"),
])
def test_conda_build_functions_are_refused(call, fix):
    with pytest.raises(UserError) as err:
        render(_tiny("{{ " + call + " }}"), "3.6", "linux-64")
    assert str(err.value).startswith(f"meta.yaml line 7: {call.split('(')[0]}() ") and str(err.value).endswith(fix)


@pytest.mark.parametrize("text, fragment", [
    ("- a list\n", "does not render to a mapping"),
    ("package:\n  version: 1\n", "has no package/name"),
    (TINY + "    - python\nbuild:\n  number: two\n", "build/number 'two' is not a whole number"),
    (TINY + "    python\n", "requirements/run is not a list of strings"),
    (TINY + "    - python\nabout:\n  - x\n", "section about is not a mapping"),
    (TINY + "    - python\nabout:\n  home:\n    - x\n", "a list or mapping where text belongs"),
    (TINY + "    - python\npackage:\n  name: again\n", "duplicate key"),
])
def test_recipe_shapes(text, fragment):
    with pytest.raises(UserError) as err:
        render(text, "3.6", "linux-64")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_license_file_may_be_one_file_or_several():
    """conda-build takes both; a list used to be refused as `a list or mapping where text belongs`."""
    one = render(TINY + "about:\n  license_file: LICENSE\n", "3.6", "linux-64")
    several = render(TINY + "about:\n  license_file:\n    - LICENSE\n    - NOTICE\n", "3.6", "linux-64")
    assert one.about["license_file"] == ("LICENSE",)
    assert several.about["license_file"] == ("LICENSE", "NOTICE")
    with pytest.raises(UserError, match="about/license_file must be a file name or a list of them"):
        render(TINY + "about:\n  license_file:\n    - {a: b}\n", "3.6", "linux-64")
