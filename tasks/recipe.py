"""The walkthrough's "Modify the meta.yaml file" step: patch a generated meta.yaml.

Two kinds of change reach the skeleton (grayskull's or `conda skeleton`'s classic meta.yaml):
the release settings (`Settings`: local source, build number, maintainer, per-Python or noarch),
applied first, then the maintainer's edits from `recipe/patch.yaml` (`load_patch`), so an edit
can refine what a setting wrote.  The text is edited with ruamel.yaml's jinja2 plug-in, which
keeps `{% set %}` lines, `{{ version }}`, comments, selectors, quotes and key order.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from . import fsio
from . import project as P
from .config import Config
from .errors import UserError

OPS = ("add", "remove", "set", "delete")
EVERY_PACKAGE = "*"
_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
# A python spec carrying a version constraint: `python >=3.4,<4.0`, `python >={{ python_min }}`.
_PYTHON_SPEC = re.compile(r"^python(\s+\S|\s*[<>=!~])")
# The lists whose python specs become plain `python` in a per-Python recipe.
_PYTHON_LISTS = (("requirements", "host"), ("requirements", "run"), ("test", "requires"))
_SETTINGS = "the release settings"
_Node = CommentedMap | CommentedSeq
_Encode = Callable[[Any], Any]


@dataclass(frozen=True)
class Settings:
    """What the release config contributes to every recipe."""

    maintainer: str
    build_number: int
    source_path: str
    noarch: bool
    name: str = ""  # the conda package name; empty keeps the skeleton's


@dataclass(frozen=True)
class Edit:
    """One change to meta.yaml; `origin` names where it was written, for error messages."""

    op: str
    path: tuple[str, ...]
    value: Any
    origin: str

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def apply(config: Config) -> None:
    """The `recipe` task: the skeleton, patched by the settings and recipe/patch.yaml, as the recipe."""
    paths = P.paths(config)
    # Relative, as the walkthrough's `path: .`: conda-build resolves it from the recipe folder.
    source = os.path.relpath(paths.source_tree, paths.recipe_dir)
    settings = Settings(config.maintainer, config.build_number, source, config.noarch, config.package)
    edits = load_patch(P.PATCH, config.package)
    skeleton = paths.skeleton.read_text(encoding="utf-8")
    if config.skeleton != "conda":  # grayskull's, checked against the wheel (conda skeleton's as it is)
        from .skeleton import checked

        skeleton = checked(config, skeleton)
    fsio.write_text(paths.meta, patch(skeleton, edits, settings))


# --- recipe/patch.yaml ---------------------------------------------------------------------


def load_patch(path: Path, package: str) -> list[Edit]:
    """The edits for package: the `"*"` entry's, then the package's own; the whole file is checked."""
    shown = _shown(path)
    entries = _read_patch(path, shown)
    edits = {name: _edits(shown, name, items) for name, items in entries.items()}
    return edits.get(EVERY_PACKAGE, []) + edits.get(package, [])


def _shown(path: Path) -> Path:
    """The path as the user would type it: relative to the folder doit runs in, when inside it."""
    cwd = Path.cwd()
    return path.relative_to(cwd) if path.is_absolute() and path.is_relative_to(cwd) else path


def _read_patch(path: Path, shown: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{shown} is missing: create it (an empty file means no edits)") from None
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as err:
        raise UserError(f"{shown} is not valid YAML ({_first_line(err)}): fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise UserError(f"{shown} must map package names to lists of edits: fix the file")
    return data


def _first_line(err: YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark else ""
    return where + str(getattr(err, "problem", None) or err).splitlines()[0]


def _edits(path: Path, package: str, items: Any) -> list[Edit]:
    if items is None:  # `btrdb:` with nothing under it
        return []
    if not isinstance(items, list):
        raise UserError(f"{path}: {package} must hold a list of edits (- add: PATH): fix the file")
    return [_edit(f"{path}: {package} edit {n}", item) for n, item in enumerate(items, 1)]


def _edit(origin: str, item: Any) -> Edit:
    if not isinstance(item, dict):
        raise UserError(f"{origin} is not a mapping: write it as `- add: PATH` and `value: ...`")
    ops = [key for key in item if key in OPS]
    if len(ops) != 1 or any(key not in OPS and key != "value" for key in item):
        found = ", ".join(map(str, item)) or "nothing"
        raise UserError(f"{origin} has {found}: give exactly one of {', '.join(OPS)}, and value")
    op = ops[0]
    if (op == "delete") == ("value" in item):
        need = "takes no value" if op == "delete" else "needs a value"
        raise UserError(f"{origin}: {op} {need}: fix the edit")
    if op in ("add", "remove"):
        _check_items(origin, item["value"])
    return Edit(op, _path(origin, item[op]), item.get("value"), origin)


def _path(origin: str, text: Any) -> tuple[str, ...]:
    if not isinstance(text, str) or not _PATH.match(text):
        raise UserError(f"{origin}: {text!r} is not a dotted path like requirements.run: fix the edit")
    return tuple(text.split("."))


def _check_items(origin: str, value: Any) -> None:
    """add and remove take one list item, or a list of them; items are scalars (package specs)."""
    items = value if isinstance(value, list) else [value]
    if not items or any(item is None or isinstance(item, (dict, list)) for item in items):
        raise UserError(f"{origin}: value must be a list item (or a list of them), e.g. pytest-runner")


# --- patching ------------------------------------------------------------------------------


def patch(skeleton: str, edits: Sequence[Edit], settings: Settings) -> str:
    """The new meta.yaml text: settings applied, then edits; everything else as it was."""

    def change(recipe: CommentedMap, encode: _Encode) -> None:
        _apply_settings(recipe, settings, encode)
        for edit in edits:
            _apply(recipe, edit, encode)

    return _edited(skeleton, change)


def edit_text(skeleton: str, change: Callable[[CommentedMap], None]) -> str:
    """meta.yaml text changed in place by `change`, which gets the round-trip tree."""
    return _edited(skeleton, lambda recipe, encode: change(recipe))


def _edited(skeleton: str, change: Callable[[CommentedMap, _Encode], None]) -> str:
    yaml = _yaml()
    try:
        recipe = yaml.load(skeleton)
    except YAMLError as err:
        problem = _first_line(err)
        raise UserError(f"the skeleton meta.yaml is not valid YAML ({problem}): regenerate it") from None
    if not isinstance(recipe, CommentedMap):
        raise UserError("the skeleton meta.yaml is not a mapping of sections: regenerate it")
    change(recipe, _encoder(yaml))
    stream = io.StringIO()
    yaml.dump(recipe, stream)
    return stream.getvalue()


def _yaml() -> YAML:
    """The round-trip loader/dumper; one instance must load and dump (it keeps the Jinja escapes)."""
    yaml = YAML(typ="jinja2")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long summary or url
    return yaml


def _encoder(yaml: YAML) -> _Encode:
    """Turn a value from patch.yaml into a node as the plug-in holds it: `{{` escaped like the text."""
    # The plug-in keeps the escapes it chose for this text (`{{` -> `<{` ...) on the YAML object.
    escapes = {jinja: escape for escape, jinja in yaml._plug_in_jinja2["reverse"].items()}

    def encode(value: Any) -> Any:
        if isinstance(value, str):
            for jinja, escape in escapes.items():
                value = value.replace(jinja, escape)
            return value
        if isinstance(value, dict):
            return CommentedMap((key, encode(item)) for key, item in value.items())
        if isinstance(value, list):
            return CommentedSeq(encode(item) for item in value)
        return value

    return encode


def _apply_settings(recipe: CommentedMap, settings: Settings, encode: _Encode) -> None:
    """The walkthrough's generic changes; a section a setting needs is created.  The package is
    named as the settings name it, the conda name (lower case), whatever case the index uses."""
    name = recipe.get("package", {}).get("name")
    if settings.name and isinstance(name, str) and name != settings.name and _canonical(name) == _canonical(settings.name):
        _set_creating(recipe, ("package", "name"), settings.name, encode)
    _apply(recipe, Edit("set", ("source",), {"path": settings.source_path}, _SETTINGS), encode)
    _set_creating(recipe, ("build", "number"), settings.build_number, encode)
    _set_creating(recipe, ("extra", "recipe-maintainers"), [settings.maintainer], encode)
    if settings.noarch:
        _set_creating(recipe, ("build", "noarch"), "python", encode)
    else:
        _apply(recipe, Edit("delete", ("build", "noarch"), None, _SETTINGS), encode)
        _plain_python(recipe)


def _canonical(name: str) -> str:
    """A distribution name as the index compares them: case and runs of `-_.` do not count."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _set_creating(recipe: CommentedMap, path: tuple[str, str], value: Any, encode: _Encode) -> None:
    """Set section.key, or the whole section when the skeleton has none."""
    section, key = path
    if isinstance(recipe.get(section), CommentedMap):
        _apply(recipe, Edit("set", path, value, _SETTINGS), encode)
    else:
        _apply(recipe, Edit("set", (section,), {key: value}, _SETTINGS), encode)


def _plain_python(recipe: CommentedMap) -> None:
    """Per-Python build: constrained python specs become `python`, as `conda skeleton` writes them."""
    for section, key in _PYTHON_LISTS:
        mapping = recipe.get(section)
        specs = mapping.get(key) if isinstance(mapping, CommentedMap) else None
        if not isinstance(specs, CommentedSeq):
            continue
        for index, spec in enumerate(specs):
            if isinstance(spec, str) and _PYTHON_SPEC.match(spec):
                specs[index] = "python"  # the item's comment (a selector) stays: it is keyed by index
                _shift_comment(specs, index, len("python") - len(spec))


def _shift_comment(items: CommentedSeq, index: int, by: int) -> None:
    """Keep an item's end-of-line comment as far from its changed value as it was before."""
    token = _token(items, index)
    if token is not None and not token.value.startswith("\n"):
        token.column = max(token.column + by, 0)


# --- applying one edit ---------------------------------------------------------------------


def _apply(recipe: CommentedMap, edit: Edit, encode: _Encode) -> None:
    """Find the mapping that holds the edit's last key, then change it in place."""
    *parents, key = edit.path
    holder, at = _walk([recipe], 0, parents, edit)
    mapping = holder[at]
    if edit.op == "set":
        _set(holder, at, key, encode(edit.value))
    elif edit.op == "delete":
        if key in mapping:
            _delete(holder, at, key)
    else:
        items = mapping.get(key)
        if not isinstance(items, CommentedSeq):
            raise UserError(_missing(edit) if items is None else _not_a_list(edit))
        values = edit.value if isinstance(edit.value, list) else [edit.value]
        change = _add if edit.op == "add" else _remove
        change(mapping, key, [encode(value) for value in values])


def _walk(holder: Any, at: Any, keys: Sequence[str], edit: Edit) -> tuple[Any, Any]:
    """(holder, key) of the mapping the keys lead to; ruamel keeps a node's comments in its holder."""
    for key in keys:
        holder, at = holder[at], key
        if not isinstance(holder, CommentedMap) or key not in holder:
            raise UserError(_missing(edit))
    if not isinstance(holder[at], CommentedMap):
        raise UserError(_missing(edit))
    return holder, at


def _missing(edit: Edit) -> str:
    return f"{edit.origin} names {edit.dotted}, which meta.yaml does not have: fix the path"


def _not_a_list(edit: Edit) -> str:
    return f"{edit.origin} names {edit.dotted}, which is not a list in meta.yaml: fix the path or use set"


def _set(holder: Any, at: Any, key: str, value: Any) -> None:
    mapping = holder[at]
    with _tail_kept(holder, at):
        if key not in mapping and not hasattr(holder, "ca"):  # only the top has a plain list holder
            _push_tail(holder, at, "\n")  # a new section gets a blank line before it
        if key in mapping:
            with _tail_kept(mapping, key):
                mapping[key] = value
        else:
            mapping[key] = value


def _delete(holder: Any, at: Any, key: str) -> None:
    mapping = holder[at]
    keys = list(mapping)
    previous = keys[keys.index(key) - 1] if keys.index(key) else None
    with _tail_kept(holder, at):
        tail = _pop_tail(mapping, key)
        del mapping[key]
        mapping.ca.items.pop(key, None)  # the deleted line's own comment (a selector) goes with it
        _push_tail(mapping, previous, tail)


def _add(mapping: CommentedMap, key: str, values: list[Any]) -> None:
    items = mapping[key]
    with _tail_kept(mapping, key):
        items.extend(value for value in dict.fromkeys(values) if value not in items)


def _remove(mapping: CommentedMap, key: str, values: list[Any]) -> None:
    items = mapping[key]
    with _tail_kept(mapping, key):
        for index in reversed(range(len(items))):
            if items[index] in values:
                tail = _pop_tail(items, index)
                del items[index]  # CommentedSeq shifts the later items' comments
                _push_tail(items, index - 1 if index else None, tail)


# --- the lines after a node ----------------------------------------------------------------
# ruamel stores the blank lines and full-line comments after a node in the comment of the node's
# last scalar.  Appending after, or removing, that scalar would carry them to the wrong place, so
# every change detaches them first and re-attaches them to whatever ends the node afterwards.


@contextlib.contextmanager
def _tail_kept(holder: Any, at: Any) -> Iterator[None]:
    """The lines after holder[at] stay after it, whatever the block changes in it."""
    tail = _pop_tail(holder, at)
    yield
    _push_tail(holder, at, tail)


def _slot(holder: Any, at: Any) -> tuple[Any, Any]:
    """(container, key) whose comment token follows holder[at]'s last line."""
    node = holder[at]
    while isinstance(node, _Node) and len(node):
        holder, at = node, _last(node)
        node = holder[at]
    return holder, at


def _last(node: _Node) -> Any:
    return len(node) - 1 if isinstance(node, CommentedSeq) else next(reversed(node))


def _token_index(container: Any) -> int:
    """Where a seq item's (0) or a mapping value's (2) trailing comment sits in ca.items."""
    return 0 if isinstance(container, CommentedSeq) else 2


def _pop_tail(holder: Any, at: Any) -> str:
    """Detach the lines after holder[at]; the last line's own end-of-line comment stays."""
    container, key = _slot(holder, at)
    token = _token(container, key)
    if token is None or "\n" not in token.value:
        return ""
    head, tail = token.value.split("\n", 1)
    if head.strip():
        token.value = head + "\n"
    else:
        container.ca.items[key][_token_index(container)] = None
    return tail


def _push_tail(holder: Any, at: Any, tail: str) -> None:
    """Attach tail (lines) after holder[at]; at None means the lines are dropped with their node."""
    if not tail or at is None:
        return
    container, key = _slot(holder, at)
    if isinstance(container[key], _Node):
        return  # an emptied list or mapping is written `[]`/`{}`: ruamel has no slot after it
    token = _token(container, key)
    if token is None:
        slots = container.ca.items.setdefault(key, [None, None, None, None])
        slots[_token_index(container)] = CommentToken("\n" + tail, CommentMark(0))
    else:
        token.value = token.value + ("" if token.value.endswith("\n") else "\n") + tail


def _token(container: Any, key: Any) -> CommentToken | None:
    if not hasattr(container, "ca"):
        return None
    slots = container.ca.items.get(key) or [None] * 4
    return slots[_token_index(container)]



def extra(meta_text: str) -> dict[str, Any]:
    """The recipe's `extra` section (recipe-maintainers …) as plain data, for about.json.

    Read from the recipe as written, not rendered: it holds names, not selectors or Jinja."""
    try:
        section = _yaml().load(meta_text).get("extra")
    except (YAMLError, AttributeError):
        return {}
    return json.loads(json.dumps(section)) if isinstance(section, dict) else {}
