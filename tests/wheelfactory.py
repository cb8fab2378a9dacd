"""Small real wheels the wheels-mode tests make themselves: a C extension compiled here for this
platform, a pure one, and copies of them re-tagged for other platforms and Pythons."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

NAME = "crdagext"
HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
HOST_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"

EXT_FILES = {
    "setup.py": (
        "from setuptools import Extension, setup\n"
        "setup(name='crdagext', version='1.0.0', packages=['crdagext'], license='MIT',\n"
        "      description='A tiny compiled package the tests release.', license_files=['LICENSE'],\n"
        "      ext_modules=[Extension('crdagext._native', ['crdagext/_native.c'])],\n"
        "      install_requires=['colorama>=0.4; sys_platform == \"win32\"', 'crdag-old; python_version < \"3.8\"'],\n"
        "      data_files=[('share/crdagext', ['share/notes.txt'])], headers=['include/crdagext.h'],\n"
        "      scripts=['bin/crdagext-raw'],\n"
        "      entry_points={'console_scripts': ['crdagext-add = crdagext.cli:main'],\n"
        "                    'gui_scripts': ['crdagext-gui = crdagext.cli:main']})\n"
    ),
    "crdagext/__init__.py": "from ._native import add\n",
    "crdagext/cli.py": "import sys\ndef main():\n    from crdagext import add\n    print(add(2, 3))\n",
    "crdagext/_native.c": (
        "#include <Python.h>\n"
        "static PyObject *add(PyObject *s, PyObject *a) { return PyNumber_Add(PyTuple_GET_ITEM(a, 0), PyTuple_GET_ITEM(a, 1)); }\n"
        "static PyMethodDef m[] = {{\"add\", add, METH_VARARGS, 0}, {0}};\n"
        "static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, \"_native\", 0, -1, m};\n"
        "PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&d); }\n"
    ),
    "share/notes.txt": "notes\n",
    "include/crdagext.h": "#define CRDAGEXT 1\n",
    "bin/crdagext-raw": "#!python\nprint('raw script')\n",
    "LICENSE": "MIT License\n",
}

PURE_FILES = {
    "setup.py": ("from setuptools import setup\n"
                 "setup(name='crdagpure', version='1.0.0', packages=['crdagpure'], license='MIT')\n"),
    "crdagpure/__init__.py": "VALUE = 1\n",
}


def build_wheel(folder: Path, files: dict[str, str]) -> Path:
    """Build the project of `files` with setuptools' PEP 517 hook here (gcc for an extension)."""
    source = folder / "src"
    for name, text in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    out = folder / "dist"
    out.mkdir(parents=True, exist_ok=True)
    code = "import sys, setuptools.build_meta as b; b.build_wheel(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, check=True, capture_output=True)
    [wheel] = out.glob("*.whl")
    return wheel


def retag(wheel: Path, folder: Path, tag: str) -> Path:
    """A copy of `wheel` tagged `tag` (`cp312-cp312-win_amd64`, dotted platforms allowed): the WHEEL
    file's Tag lines, the file name and RECORD's line for WHEEL rewritten, as a real build's are."""
    name, version = wheel.name.split("-")[:2]
    interpreter, abi, platforms = tag.split("-")
    tags = [f"{i}-{a}-{p}" for i in interpreter.split(".") for a in abi.split(".") for p in platforms.split(".")]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        entries = source.infolist()
        record_name = next(e.filename for e in entries if e.filename.endswith(".dist-info/RECORD"))
        wheel_name = record_name.replace("RECORD", "WHEEL")
        text = source.read(wheel_name).decode()
        kept = [line for line in text.splitlines() if not line.startswith(("Tag:", "Root-Is-Purelib:"))]
        pure = "true" if platforms == "any" else "false"
        new_wheel = "\n".join(kept + [f"Root-Is-Purelib: {pure}"] + [f"Tag: {t}" for t in tags]) + "\n"
        digest = base64.urlsafe_b64encode(hashlib.sha256(new_wheel.encode()).digest()).rstrip(b"=").decode()
        for entry in entries:
            if entry.filename == wheel_name:
                out.writestr(entry, new_wheel)
            elif entry.filename == record_name:
                lines = [f"{wheel_name},sha256={digest},{len(new_wheel)}" if line.startswith(wheel_name + ",")
                         else line for line in source.read(record_name).decode().splitlines()]
                out.writestr(entry, "\n".join(lines) + "\n")
            else:
                out.writestr(entry, source.read(entry.filename))
    return target
