"""The skeleton checked against the built wheel: completed where grayskull dropped what the wheel
declares, or written from the wheel alone where grayskull failed.

Both work on the round-trip YAML tree of tasks/recipe.py, so grayskull's comments, selectors and
order stay; every change is named in the returned notes, which the release prints.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from . import recipe, wheelmeta
from .wheelmeta import WheelInfo

_BACKEND_DEFAULT = ("setuptools",)


def complete(skeleton: str, info: WheelInfo, source_files: set[str], pure: bool) -> tuple[str, list[str]]:
    """grayskull's meta.yaml with the wheel's run requirements, entry points, importable modules
    and license files where grayskull's differ from what the wheel holds; with a pure wheel, no
    compilers (grayskull asks for one whenever the sdist has C sources, optional or not)."""
    notes: list[str] = []

    def change(meta: CommentedMap) -> None:
        if pure:
            _no_compilers(meta, notes)
        _run_requirements(meta, info, notes)
        _entry_points(meta, info, notes)
        _imports(meta, info, notes)
        _license_files(meta, info, source_files, notes)

    return recipe.edit_text(skeleton, change), notes


def write(info: WheelInfo, build_requires: list[str], sdist_url: str, sha256: str) -> str:
    """A classic meta.yaml from the wheel alone, shaped as grayskull writes one."""
    lines = [
        f'{{% set version = "{info.version}" %}}', "",
        "package:", f"  name: {_quote(wheelmeta.conda_name(info.name))}", "  version: {{ version }}", "",
        "source:", *([f"  url: {sdist_url}", f"  sha256: {sha256}"] if sha256 else [f"  path: {sdist_url}"]), "",
        "build:", "  noarch: python",
    ]
    if info.console_scripts:
        lines += ["  entry_points:", *(f"    - {_quote(entry)}" for entry in info.console_scripts)]
    lines += ["  script: {{ PYTHON }} -m pip install . -vv --no-deps --no-build-isolation", "  number: 0", ""]
    python = f"python {info.requires_python}".strip() if info.requires_python else "python"
    lines += ["requirements:", "  host:", f"    - {_quote(python)}",
              *(f"    - {_quote(spec)}" for spec in build_requires), "    - pip",
              "  run:", f"    - {_quote(python)}", *(_item(spec, 4) for spec in _run_specs(info)), ""]
    lines += ["test:", "  imports:", *(f"    - {module}" for module in info.modules or (info.name,)),
              "  commands:", "    - pip check",
              *(f"    - {_quote(entry.split('=')[0].strip() + ' --help')}" for entry in info.console_scripts),
              "  requires:", "    - pip", ""]
    lines += ["about:"]
    for key, value in (("home", info.home), ("summary", info.summary), ("license", info.license)):
        if value:
            lines.append(f"  {key}: {_quote(value)}")
    if info.license_files:
        lines += ["  license_file:", *(f"    - {_quote(name)}" for name in info.license_files)]
    return "\n".join(lines) + "\n"


def build_requirements(system: dict[str, Any]) -> list[str]:
    """The host requirements a pip install of the source needs: its [build-system] requires."""
    specs = []
    for text in system.get("requires", _BACKEND_DEFAULT):
        converted = wheelmeta.conda_spec(text)
        if converted is not None and converted[1] is None:
            specs.append(converted[0])
    return specs


def _quote(text: str) -> str:
    """A YAML scalar for text that may hold `:`, `#`, `>` or a leading special character."""
    if re.match(r"^[A-Za-z0-9_.{][^#:]*$", text) and not text.startswith("{%"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _item(spec: tuple[str, str | None], indent: int) -> str:
    name, selector = spec
    return " " * indent + f"- {_quote(name)}" + (f"  # [{selector}]" if selector else "")


def _run_specs(info: WheelInfo) -> list[tuple[str, str | None]]:
    return [spec for spec in map(wheelmeta.conda_spec, info.requires) if spec is not None]


def _name(spec: Any) -> str:
    return re.split(r"[\s<>=!~]", str(spec).strip(), maxsplit=1)[0].lower()


def _section(meta: CommentedMap, name: str) -> CommentedMap:
    if not isinstance(meta.get(name), CommentedMap):
        meta[name] = CommentedMap()
    return meta[name]


def _list(section: CommentedMap, key: str) -> CommentedSeq:
    if not isinstance(section.get(key), CommentedSeq):
        section[key] = CommentedSeq()
    return section[key]


def _no_compilers(meta: CommentedMap, notes: list[str]) -> None:
    requirements = meta.get("requirements")
    tools = requirements.get("build") if isinstance(requirements, CommentedMap) else None
    if not isinstance(tools, CommentedSeq):
        return
    kept = [item for item in tools if not re.search(r"\b(compiler|stdlib)\s*\(", str(item))]
    if len(kept) == len(tools):
        return
    if kept:
        requirements["build"] = CommentedSeq(kept)
    else:
        del requirements["build"]
    notes.append("no compilers: the wheel is pure Python")


def _run_requirements(meta: CommentedMap, info: WheelInfo, notes: list[str]) -> None:
    """Add each run requirement of the wheel that grayskull's list lacks (with its selector);
    grayskull's own entries stay: they may carry pins the maintainer relies on."""
    requirements = meta.get("requirements") if isinstance(meta.get("requirements"), CommentedMap) else {}
    present = {_name(item) for item in requirements.get("run") or []}
    added = []
    for spec, selector in _run_specs(info):
        if _name(spec) in present:
            continue
        run = _list(_section(meta, "requirements"), "run")
        run.append(spec)
        if selector:
            run.yaml_add_eol_comment(f"# [{selector}]", len(run) - 1, column=0)
        present.add(_name(spec))
        added.append(_name(spec))
    if added:
        notes.append(f"run requirements from the wheel: {', '.join(added)}")


def _entry_points(meta: CommentedMap, info: WheelInfo, notes: list[str]) -> None:
    """conda-build's entry points are the wheel's console scripts, written without extras."""
    build = meta.get("build") if isinstance(meta.get("build"), CommentedMap) else CommentedMap()
    given = [str(entry) for entry in build.get("entry_points") or []]
    wanted = list(info.console_scripts)
    if given == wanted:
        return
    build = _section(meta, "build")
    if wanted:
        build["entry_points"] = CommentedSeq(wanted)
    else:
        del build["entry_points"]
    same = [wheelmeta.entry_point(entry) for entry in given] == wanted
    notes.append("entry points without their extras" if same else "entry points from the wheel")


def _imports(meta: CommentedMap, info: WheelInfo, notes: list[str]) -> None:
    """Keep the test imports that name a module of the wheel; the wheel's modules replace the
    rest (grayskull guesses them from the distribution's name: `Pygments`, `zope`)."""
    if not info.modules:
        return
    tops = set(info.modules) | {module.split(".")[0] for module in info.modules}
    test = _section(meta, "test")
    given = [str(item) for item in test.get("imports") or []]
    kept = [module for module in given
            if module.split(".")[0] in tops and not _namespace_only(module, info.modules)]
    if kept == given and kept:
        return
    test["imports"] = CommentedSeq(kept or list(info.modules))
    notes.append("test imports from the wheel's modules")


def _namespace_only(module: str, modules: tuple[str, ...]) -> bool:
    """`zope` alone, when the wheel's module is `zope.interface`: importing it tests nothing."""
    return module not in modules and any(m.startswith(module + ".") for m in modules)


def _license_files(meta: CommentedMap, info: WheelInfo, source_files: set[str], notes: list[str]) -> None:
    about = meta.get("about")
    given = about.get("license_file") if isinstance(about, CommentedMap) else None
    given_list = [given] if isinstance(given, str) else [str(item) for item in given or []]
    if given_list and all(name in source_files for name in given_list):
        return
    found = [name for name in info.license_files if name in source_files]
    if not found and not given_list:
        return
    about = _section(meta, "about")
    if found:
        about["license_file"] = found[0] if len(found) == 1 else CommentedSeq(found)
    else:
        del about["license_file"]
    notes.append("license files the source holds")
