"""Render a classic meta.yaml for one Python version and subdir, as conda-build would.

The embedded engine's stand-in for conda-build's rendering, for the recipes grayskull and
`conda skeleton` write: selectors, then Jinja2, then selectors again (conda-build's
FilteredLoader selects before Jinja, `parse` after it), then YAML with numbers kept as strings.
Lines a selector drops are blanked, not removed, so every error names the line of the file.
"""

from __future__ import annotations

import ntpath
import posixpath
import re
import traceback
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import jinja2
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from . import subdirs
from .errors import UserError

# conda-forge's global pin for `{{ python_min }}` (CFEP-25, conda-forge-pinning's
# conda_build_config.yaml): 3.9 when it was introduced, 3.10 once 3.9 left the build matrix in
# 2025.  conda-build itself defines no python_min; a recipe's `{% set python_min %}` wins.
PYTHON_MIN = "3.10"
ABOUT = ("home", "license", "license_family", "license_file", "summary", "description", "doc_url", "dev_url")
_FIX = "fix recipe/patch.yaml or the recipe"
# conda-build's RE_SELECTOR: `[expr]` at the end of the line, or anywhere in a trailing comment.
_SELECTOR = re.compile(r"(.+?)\s*(#.*)?\[([^\[\]]+)\](?(2)[^\(\)]*)$")
_READS_FILES = ("load_setup_py_data", "load_file_data", "load_file_regex", "load_str_data")
_NEEDS_BUILD_TOOLS = ("compiler", "stdlib", "pin_compatible", "pin_subpackage", "cdt")


@dataclass(frozen=True)
class Rendered:
    """What the build needs from meta.yaml; requirements exactly as written (the build pins python)."""

    name: str
    version: str
    build_number: int
    noarch: str | None
    host: tuple[str, ...]
    run: tuple[str, ...]
    test_imports: tuple[str, ...]
    test_requires: tuple[str, ...]
    entry_points: tuple[str, ...]
    script: str | None
    source_path: str | None
    about: dict  # the ABOUT keys, each a string or None; license_file a tuple of file names


def render(meta_text: str, python: str | None, subdir: str) -> Rendered:
    """meta.yaml as conda-build reads it when building for python on subdir.

    python None is a noarch build: selectors and `environ` see PYTHON_MIN, the Python conda-forge
    builds noarch packages with, and the platform of the machine building it (subdir `noarch`).
    """
    namespace = selectors(python or PYTHON_MIN, subdirs.native() if subdir == "noarch" else subdir)
    text = select_lines(meta_text, namespace)
    text = select_lines(_jinja(text, namespace), namespace)
    return _rendered(_parse(text))


# --- selectors -----------------------------------------------------------------------------


def selectors(python: str, subdir: str) -> dict[str, Any]:
    """conda-build's selector names (metadata `get_selectors`) for one python and subdir.

    As in conda-build, the pyXY booleans stop at py36 (write `py==37`, not `py37`), and any
    name it does not define (py37, np, an environment variable) evaluates as False.
    """
    major, minor = python.split(".")[:2]
    py = int(major + minor)
    names: dict[str, Any] = {
        "py": py, "py3k": major == "3", "py2k": major == "2",
        **{f"py{v}": py == v for v in (26, 27, 33, 34, 35, 36)},
        "linux32": subdir == "linux-32", "linux64": subdir == "linux-64",
        "win32": subdir == "win-32", "win64": subdir == "win-64",
        "arm": subdir.startswith("linux-arm"), "unix": subdirs.os_of(subdir) in ("linux", "osx"),
        "build_platform": subdir, "target_platform": subdir, "python": python,
    }
    return names | _os_and_arch(subdir)


def _os_and_arch(subdir: str) -> dict[str, bool]:
    """One name per os and per arch of the known subdirs: linux, osx, win, x86_64, aarch64..."""
    names: dict[str, bool] = {}
    for known in {*subdirs.ALL, subdir}:
        names[subdirs.os_of(known)] = subdirs.os_of(known) == subdirs.os_of(subdir)
        names[subdirs.arch_of(known)] = subdirs.arch_of(known) == subdirs.arch_of(subdir)
    names["x86"] = subdir.endswith(("-32", "-64"))  # conda-build: x86 means 32- or 64-bit Intel
    return names


def select_lines(text: str, namespace: dict[str, Any]) -> str:
    """Blank comment lines and lines whose selector is false; strip the selector from the rest."""
    lines = [_select(line, number, namespace) for number, line in enumerate(text.splitlines(), 1)]
    return "\n".join(lines) + "\n"


def _select(line: str, number: int, namespace: dict[str, Any]) -> str:
    line = line.rstrip()
    if line.lstrip().startswith("#"):
        return ""
    match = _SELECTOR.match(line) if "[" in line and "]" in line else None
    if not match:
        return line
    quote = line[-1] if line[-1] in "'\"" else ""  # a line quoted whole keeps its closing quote
    return (match.group(1) + quote).rstrip() if _evaluate(match.group(3), number, namespace) else ""


def _evaluate(selector: str, number: int, namespace: dict[str, Any]) -> bool:
    """conda-build's eval_selector: an unknown name is replaced by False and the eval retried."""
    expression = selector
    while True:
        try:
            return bool(eval(expression, {"__builtins__": {}}, namespace))  # a selector is Python
        except NameError as err:
            known = re.sub(rf"\b{re.escape(err.name or '')}\b", "False", expression)
            if known == expression:
                raise _bad_selector(selector, number, err) from None
            expression = known
        except Exception as err:
            raise _bad_selector(selector, number, err) from None


def _bad_selector(selector: str, number: int, err: Exception) -> UserError:
    return UserError(f"meta.yaml line {number}: invalid selector [{selector}] ({err}): {_FIX}")


# --- Jinja ---------------------------------------------------------------------------------


class _Unsupported(Exception):
    """A conda-build Jinja function the embedded engine cannot run; the message names the fix."""


def _jinja(text: str, namespace: dict[str, Any]) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.from_string(text).render(_context(namespace))
    except jinja2.TemplateSyntaxError as err:
        raise UserError(f"meta.yaml line {err.lineno}: bad Jinja ({err.message}): {_FIX}") from None
    except _Unsupported as err:
        raise UserError(f"meta.yaml line {_template_line(err)}: {err}") from None
    except Exception as err:  # the template's own errors: undefined names, bad filters, types
        raise UserError(f"meta.yaml line {_template_line(err)}: bad Jinja ({err}): {_FIX}") from None


def _template_line(err: Exception) -> int | str:
    """The template line an error was raised from: Jinja rewrites tracebacks to show it."""
    frames = traceback.extract_tb(err.__traceback__)
    lines = [frame.lineno for frame in frames if frame.filename == "<template>"]
    return lines[-1] if lines else "?"


def _context(namespace: dict[str, Any]) -> dict[str, Any]:
    """conda-build's Jinja globals: the selector names, the build environment, its functions."""
    subdir = namespace["target_platform"]
    environ = {"PY_VER": namespace["python"], "SUBDIR": subdir}  # no variable from this machine
    context = dict(namespace, PYTHON="python", python_min=PYTHON_MIN, environ=environ, os=_os(subdir, environ))
    context.update({name: _unsupported(name, _reads_files) for name in _READS_FILES})
    context.update({name: _unsupported(name, _needs_build_tools) for name in _NEEDS_BUILD_TOOLS})
    return context


def _os(subdir: str, environ: dict[str, str]) -> SimpleNamespace:
    """The parts of `os` recipes use, as they are on the target platform."""
    path = ntpath if subdirs.is_windows(subdir) else posixpath
    return SimpleNamespace(environ=environ, getenv=environ.get, path=path, sep=path.sep, pathsep=path.pathsep)


def _unsupported(name: str, message: Callable[[str], str]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise _Unsupported(message(name))

    return call


def _reads_files(name: str) -> str:
    return (f"{name}() reads the project, which the embedded engine cannot: "
            "write the values into the recipe, or use engine=conda")


def _needs_build_tools(name: str) -> str:
    return (f"{name}() needs conda-build, and the embedded engine builds pure-Python packages only: "
            "use engine=conda, or binaries=wheels to release the package's own wheels")


# --- YAML ----------------------------------------------------------------------------------


# YAML's spellings of null: the base loader below leaves every scalar as text.
_NULLS = ("", "~", "null", "Null", "NULL")


def _null(value: Any) -> bool:
    return value is None or value in _NULLS


def _parse(text: str) -> dict[str, Any]:
    # Every scalar stays text, as conda-build's StringifyNumbersLoader keeps numbers: `5.10` is
    # not the float 5.1.  A repeated key is an error here, where conda-build keeps the last one.
    yaml = YAML(typ="base")
    try:
        data = yaml.load(text)
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        line = mark.line + 1 if mark else "?"
        raise UserError(f"meta.yaml line {line}: not valid YAML ({problem}): {_FIX}") from None
    if not isinstance(data, dict):
        raise UserError(f"meta.yaml does not render to a mapping of sections: {_FIX}")
    return data


# --- fields --------------------------------------------------------------------------------


def _rendered(meta: dict[str, Any]) -> Rendered:
    build, about = _section(meta, "build"), _section(meta, "about")
    return Rendered(
        name=_required(meta, "package", "name"),
        version=_required(meta, "package", "version"),
        build_number=_number(build.get("number")),
        noarch=_text(build.get("noarch")),
        host=_list(meta, "requirements", "host"),
        run=_list(meta, "requirements", "run"),
        test_imports=_list(meta, "test", "imports"),
        test_requires=_list(meta, "test", "requires"),
        entry_points=_list(meta, "build", "entry_points"),
        script=_script(build.get("script")),
        source_path=_source_path(meta.get("source")),
        about={key: _files(about.get(key)) if key == "license_file" else _text(about.get(key)) for key in ABOUT},
    )


def _section(meta: dict[str, Any], name: str) -> dict[str, Any]:
    value = {} if _null(meta.get(name)) else meta[name]  # `test:` alone is an empty section
    if not isinstance(value, dict):
        raise UserError(f"meta.yaml section {name} is not a mapping: {_FIX}")
    return value


def _required(meta: dict[str, Any], section: str, key: str) -> str:
    value = _text(_section(meta, section).get(key))
    if not value:
        raise UserError(f"meta.yaml has no {section}/{key}: {_FIX}")
    return value


def _list(meta: dict[str, Any], section: str, key: str) -> tuple[str, ...]:
    value = _section(meta, section).get(key)
    value = [] if _null(value) else value
    if not isinstance(value, list) or any(isinstance(item, (dict, list)) for item in value):
        raise UserError(f"meta.yaml {section}/{key} is not a list of strings: {_FIX}")
    return tuple(item for item in value if not _null(item))


def _number(value: Any) -> int:
    try:
        return int(_text(value) or 0)
    except (TypeError, ValueError):
        raise UserError(f"meta.yaml build/number {value!r} is not a whole number: {_FIX}") from None


def _text(value: Any) -> str | None:
    """A scalar as text; an empty value (`license_file:`) is None."""
    if isinstance(value, (dict, list)):
        raise UserError(f"meta.yaml has a list or mapping where text belongs ({value!r}): {_FIX}")
    return None if _null(value) else value


def _files(value: Any) -> tuple[str, ...]:
    """about/license_file: one file or a list of them (conda-build takes both)."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, (dict, list)) for item in items):
        raise UserError(f"meta.yaml about/license_file must be a file name or a list of them ({value!r}): {_FIX}")
    return tuple(str(item) for item in items if not _null(item))


def _script(value: Any) -> str | None:
    """build/script; a list is one command a line, as conda-build writes it into build.sh."""
    return "\n".join(map(str, value)) if isinstance(value, list) else _text(value)


def _source_path(source: Any) -> str | None:
    """source/path; with several sources, the first that has a path."""
    sources = source if isinstance(source, list) else [source]
    paths = [_text(item.get("path")) for item in sources if isinstance(item, dict)]
    return next(filter(None, paths), None)
