"""Patching meta.yaml: golden skeleton -> expected files, each edit op, every error a user can cause.

Golden inputs in tests/data: `btrdb-skeleton.yaml` is grayskull 3.2's classic output for the
btrdb 5.2.2 sdist; `btrdb-python-min.yaml` is its conda-forge strict output (`is_strict_cf=True`)
for the same sdist with python_requires changed to >=3.6, which writes `{{ python_min }}`;
`btrdb-conda-skeleton.yaml` is hand-written in `conda skeleton pypi`'s style (the walkthrough's
"before"), with two selector lines added for the renderer.  The *.expected.yaml files were
checked by hand against the walkthrough's diff.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tasks import project as P
from tasks.config import Config
from tasks.errors import UserError
from tasks.recipe import Edit, Settings, apply, load_patch, patch

DATA = Path(__file__).parent / "data"
WALKTHROUGH = Settings(maintainer="looselycoupled", build_number=0, source_path=".", noarch=False)

GOLDEN = [
    ("btrdb-skeleton.yaml", WALKTHROUGH, "btrdb-skeleton.expected.yaml"),
    ("btrdb-conda-skeleton.yaml", WALKTHROUGH, "btrdb-conda-skeleton.expected.yaml"),
    ("btrdb-python-min.yaml", Settings("looselycoupled", 1, "/src/btrdb-python", False),
     "btrdb-python-min.expected.yaml"),
    ("btrdb-conda-skeleton.yaml", Settings("pingthings", 2, ".", True), "btrdb-conda-skeleton.noarch.expected.yaml"),
]
SMALL = textwrap.dedent("""\
    {% set version = "1.0" %}

    package:
      name: tiny
      version: {{ version }}

    requirements:
      run:
        - python
        - attrs  # [py<37]
        # trailing comment of the run list

    about:
      home: http://example.org/
    """)


def _load(text: str) -> dict:
    """meta.yaml text as data, Jinja left in place (the lines are escaped the way the plug-in does)."""
    return YAML(typ="jinja2").load(text)


def _patch_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "patch.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _one(op: str, path: str, value: object = None) -> list[Edit]:
    return [Edit(op, tuple(path.split(".")), value, "test edit")]


# --- golden files --------------------------------------------------------------------------


@pytest.mark.parametrize("skeleton, settings, expected", GOLDEN, ids=[case[2] for case in GOLDEN])
def test_golden(skeleton, settings, expected):
    edits = load_patch(P.PATCH, "btrdb")
    assert patch((DATA / skeleton).read_text(), edits, settings) == (DATA / expected).read_text()


@pytest.mark.parametrize("skeleton, settings, expected", GOLDEN, ids=[case[2] for case in GOLDEN])
def test_patching_twice_changes_nothing(skeleton, settings, expected):
    """add skips an item already there and remove an absent one: a patched recipe is a fixed point."""
    text = (DATA / expected).read_text()
    assert patch(text, load_patch(P.PATCH, "btrdb"), settings) == text


def test_a_skeleton_round_trips_when_nothing_changes():
    skeleton = (DATA / "btrdb-skeleton.expected.yaml").read_text()
    assert patch(skeleton, [], WALKTHROUGH) == skeleton


def test_apply_writes_the_recipe_with_a_relative_source(tmp_path):
    config = Config(build_dir=tmp_path, skeleton="conda")  # conda skeleton's output, taken as it is
    paths = P.paths(config)
    paths.skeleton.parent.mkdir(parents=True)
    paths.skeleton.write_text((DATA / "btrdb-conda-skeleton.yaml").read_text())
    apply(config)
    expected = (DATA / "btrdb-conda-skeleton.expected.yaml").read_text()
    assert paths.meta.read_text() == expected.replace("path: .", "path: ../source/tree")


# --- settings ------------------------------------------------------------------------------


def test_settings_create_missing_sections_with_a_blank_line():
    text = patch("package:\n  name: tiny\n  version: 1\n", [], Settings("me", 4, "../src", False))
    assert text.split("\n\n")[1:] == ["source:\n  path: ../src", "build:\n  number: 4",
                                      "extra:\n  recipe-maintainers:\n    - me\n"]


def test_noarch_keeps_python_constraints():
    skeleton = (DATA / "btrdb-python-min.yaml").read_text()
    recipe = _load(patch(skeleton, [], Settings("me", 0, ".", True)))
    original = _load(skeleton)
    assert recipe["build"]["noarch"] == "python"
    assert recipe["requirements"] == original["requirements"] and recipe["test"] == original["test"]


def test_per_python_keeps_the_python_min_set_line_and_selectors():
    text = patch(SMALL.replace("- python\n", "- python >={{ python_min }}  # [unix]\n"), [], WALKTHROUGH)
    assert "    - python  # [unix]\n" in text
    assert "    - attrs  # [py<37]\n    # trailing comment of the run list\n" in text
    assert text.startswith('{% set version = "1.0" %}\n\n')


# --- each operation ------------------------------------------------------------------------


def test_add_appends_new_items_before_the_lines_that_followed_the_list():
    text = patch(SMALL, _one("add", "requirements.run", ["six", "python", "six"]), WALKTHROUGH)
    assert "    - attrs  # [py<37]\n    - six\n    # trailing comment of the run list\n\nabout:" in text


def test_remove_drops_the_item_and_its_selector_and_keeps_what_followed():
    text = patch(SMALL, _one("remove", "requirements.run", "attrs"), WALKTHROUGH)
    assert "attrs" not in text and "py<37" not in text
    assert "    - python\n    # trailing comment of the run list\n\nabout:" in text


def test_set_replaces_a_value_and_keeps_its_quoted_jinja():
    text = patch(SMALL, _one("set", "about.home", "{{ version }}/docs"), WALKTHROUGH)
    assert "  home: {{ version }}/docs\n" in text


def test_set_creates_a_key_and_a_mapping():
    value = {"doc_url": "http://example.org/docs", "tags": ["a", "b"]}
    recipe = _load(patch(SMALL, _one("set", "about.more", value), WALKTHROUGH))
    assert recipe["about"]["more"] == value and recipe["about"]["home"] == "http://example.org/"


def test_delete_removes_a_key_and_ignores_a_missing_one():
    edits = _one("delete", "about.home") + _one("delete", "about.nothing")
    recipe = _load(patch(SMALL, edits, WALKTHROUGH))
    assert "home" not in recipe["about"]


def test_star_edits_come_first_and_apply_to_every_package(tmp_path):
    path = _patch_file(tmp_path, """\
        "*":
          - delete: about.doc_url
        btrdb:
          - set: about.doc_url
            value: x
        """)
    assert [edit.op for edit in load_patch(path, "btrdb")] == ["delete", "set"]
    assert [edit.op for edit in load_patch(path, "six")] == ["delete"]


def test_a_package_without_an_entry_gets_no_edits(tmp_path):
    assert load_patch(P.PATCH, "six") == []
    assert load_patch(_patch_file(tmp_path, "# nothing yet\n"), "btrdb") == []


def test_the_shipped_patch_is_the_walkthrough_diff():
    edits = load_patch(P.PATCH, "btrdb")
    assert [(e.op, e.dotted, e.value) for e in edits] == [
        ("add", "requirements.host", "pytest-runner"),
        ("add", "requirements.run", "pytest-runner"),
        ("remove", "test.imports", "btrdb4"),
        ("add", "test.imports", ["btrdb.grpcinterface", "btrdb.utils", "tests.btrdb"]),
    ]


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, fragment", [
    ("btrdb: [\n", "not valid YAML (line"),
    ("- add: requirements.run\n", "must map package names to lists of edits"),
    ("btrdb:\n  add: requirements.run\n", "btrdb must hold a list of edits"),
    ("btrdb:\n  - requirements.run\n", "btrdb edit 1 is not a mapping"),
    ("btrdb:\n  - value: x\n", "btrdb edit 1 has value: give exactly one of add, remove, set, delete"),
    ("btrdb:\n  - add: a.b\n    set: a.c\n    value: x\n", "btrdb edit 1 has add, set, value"),
    ("btrdb:\n  - add: a.b\n    valeu: x\n", "btrdb edit 1 has add, valeu"),
    ("btrdb:\n  - delete: a.b\n    value: x\n", "btrdb edit 1: delete takes no value"),
    ("btrdb:\n  - set: a.b\n", "btrdb edit 1: set needs a value"),
    ("btrdb:\n  - delete: a..b\n", "btrdb edit 1: 'a..b' is not a dotted path"),
    ("btrdb:\n  - delete: 3\n", "btrdb edit 1: 3 is not a dotted path"),
    ("btrdb:\n  - add: a.b\n    value: {x: 1}\n", "btrdb edit 1: value must be a list item"),
    ("btrdb:\n  - remove: a.b\n    value: []\n", "btrdb edit 1: value must be a list item"),
    ("six: []\nbtrdb:\n  - remove: a.b\n    value: [x, null]\n", "btrdb edit 1: value must be a list item"),
])
def test_malformed_patch_files(tmp_path, text, fragment):
    path = _patch_file(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_patch(path, "six")  # the whole file is checked, not only the package's entry
    assert fragment in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_patch_file(tmp_path):
    with pytest.raises(UserError, match="patch.yaml is missing: create it"):
        load_patch(tmp_path / "patch.yaml", "btrdb")


def test_patch_file_is_named_as_the_user_types_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _patch_file(tmp_path, "btrdb: 1\n")
    with pytest.raises(UserError, match=r"^patch\.yaml: btrdb must hold"):
        load_patch(tmp_path / "patch.yaml", "btrdb")


@pytest.mark.parametrize("edit, message", [
    ("- remove: test.importz\n    value: x", "btrdb edit 3 names test.importz, which meta.yaml does not have: fix the path"),
    ("- add: nothing.run\n    value: x", "btrdb edit 3 names nothing.run, which meta.yaml does not have"),
    ("- set: about.home.page\n    value: x", "btrdb edit 3 names about.home.page, which meta.yaml does not have"),
    ("- delete: extras.recipe-maintainers", "btrdb edit 3 names extras.recipe-maintainers, which meta.yaml"),
    ("- add: about.home\n    value: x", "btrdb edit 3 names about.home, which is not a list in meta.yaml: fix the path or use set"),
])
def test_edits_naming_what_meta_yaml_lacks(tmp_path, edit, message):
    path = _patch_file(tmp_path, "btrdb:\n  - delete: about.doc_url\n  - delete: about.dev_url\n  " + edit + "\n")
    with pytest.raises(UserError) as err:
        patch((DATA / "btrdb-skeleton.yaml").read_text(), load_patch(path, "btrdb"), WALKTHROUGH)
    assert str(err.value).startswith(f"{path}: {message}") and "\n" not in str(err.value)


@pytest.mark.parametrize("skeleton, fragment", [
    ("package:\n  name: [tiny\n", "not valid YAML (line"),
    ("- just\n- a list\n", "not a mapping of sections"),
])
def test_unreadable_skeletons(skeleton, fragment):
    with pytest.raises(UserError, match="the skeleton meta.yaml") as err:
        patch(skeleton, [], WALKTHROUGH)
    assert fragment in str(err.value) and "\n" not in str(err.value)
