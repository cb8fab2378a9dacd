"""Which wheels serve which conda subdir: platform tags, interpreter tags, and the floor a tag sets.

Pure.  A conda subdir is one OS and architecture with a CPython interpreter; a wheel's platform
tag says the same with a minimum OS (glibc for manylinux, the macOS release for macosx).  The map
covers every manylinux level (the legacy aliases manylinux1 / 2010 / 2014 and manylinux_2_5 …
2_39), macOS 10.9 … 15.0 for the arch and universal2, and the three Windows tags; musllinux and
PyPy wheels never serve a conda subdir, since conda's Python is glibc-linked CPython.
"""

from __future__ import annotations

import re

from packaging.tags import mac_platforms
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

# subdir -> the machine name wheel tags use.
_LINUX_ARCH = {
    "linux-64": "x86_64", "linux-32": "i686", "linux-aarch64": "aarch64", "linux-ppc64le": "ppc64le",
    "linux-ppc64": "ppc64", "linux-s390x": "s390x", "linux-armv7l": "armv7l",
}
_MAC_ARCH = {"osx-64": "x86_64", "osx-arm64": "arm64"}
_WINDOWS = {"win-32": "win32", "win-64": "win_amd64", "win-arm64": "win_arm64"}
# The legacy manylinux names and the glibc they stand for (PEP 600), with the arches they cover.
_LEGACY = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_LEGACY_ARCHES = {"manylinux1": ("x86_64", "i686"), "manylinux2010": ("x86_64", "i686")}
NEWEST_GLIBC = 39
OLDEST_MAC = (10, 9)
NEWEST_MAC = (15, 0)
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
_MACOSX = re.compile(r"^macosx_(\d+)_(\d+)_(.+)$")


def platform_tags(subdir: str) -> tuple[str, ...]:
    """The wheel platform tags that run on subdir, best (newest floor) first; () when none does
    (linux-armv6l: no portable wheel standard covers it)."""
    if subdir in _WINDOWS:
        return (_WINDOWS[subdir],)
    if subdir in _MAC_ARCH:
        arch = _MAC_ARCH[subdir]
        return tuple(tag for tag in mac_platforms(NEWEST_MAC, arch) if _mac_wanted(tag, arch))
    if subdir in _LINUX_ARCH:
        return _manylinux(_LINUX_ARCH[subdir])
    return ()


def _mac_wanted(tag: str, arch: str) -> bool:
    """The arch's own tags and universal2 (both arches in one file), from macOS 10.9 on."""
    match = _MACOSX.match(tag)
    return bool(match) and match[3] in (arch, "universal2") and (int(match[1]), int(match[2])) >= OLDEST_MAC


def _manylinux(arch: str) -> tuple[str, ...]:
    tags: list[str] = []
    for minor in range(NEWEST_GLIBC, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        tags.extend(f"{legacy}_{arch}" for legacy, glibc in _LEGACY.items()
                    if glibc == (2, minor) and arch in _LEGACY_ARCHES.get(legacy, (arch,)))
    return tuple(tags)


def pip_platform_args(subdir: str) -> list[str]:
    """`--platform TAG` for every tag of subdir: pip expands neither manylinux_2_x nor the
    legacy aliases to the older levels, so each is named."""
    return [arg for tag in platform_tags(subdir) for arg in ("--platform", tag)]


def pip_python_args(python: str) -> list[str]:
    """pip's interpreter options for CPython X.Y: its own ABI, the stable ABI, and none (pure)."""
    nodot = python.replace(".", "")
    return ["--python-version", python, "--implementation", "cp",
            "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]


def serves(wheel_name: str, subdir: str, python: str) -> bool:
    """Whether the wheel file name carries a tag for CPython `python` on subdir."""
    return any(_platform_ok(tag.platform, subdir) and _interpreter_ok(tag.interpreter, tag.abi, python)
               for tag in _tags(wheel_name))


def is_pure(wheel_name: str) -> bool:
    """A wheel for any platform (`py3-none-any`): one serves every subdir."""
    return all(tag.platform == "any" for tag in _tags(wheel_name))


def floor(wheel_name: str, subdir: str) -> str | None:
    """The virtual package the wheel's platform tag asks of subdir: `__glibc >=2.17` for
    manylinux_2_17 (or manylinux2014), `__osx >=11.0` for macosx_11_0; the lowest of the tags
    that fit, since any one of them makes the wheel installable.  None for Windows and pure."""
    floors = [found for tag in _tags(wheel_name) if _platform_ok(tag.platform, subdir)
              and (found := _floor_of(tag.platform)) is not None]
    if not floors:
        return None
    name, version = min(floors, key=lambda item: item[1])
    return f"{name} >={version[0]}.{version[1]}"


def _floor_of(platform: str) -> tuple[str, tuple[int, int]] | None:
    if match := _MANYLINUX.match(platform):
        return "__glibc", (int(match[1]), int(match[2]))
    for name, glibc in _LEGACY.items():  # manylinux2014_x86_64 and the like
        if platform.startswith(name + "_"):
            return "__glibc", glibc
    if match := _MACOSX.match(platform):
        return "__osx", (int(match[1]), int(match[2]))
    return None


def _platform_ok(platform: str, subdir: str) -> bool:
    return platform == "any" or platform in platform_tags(subdir)


def _interpreter_ok(interpreter: str, abi: str, python: str) -> bool:
    """cpXY with its ABI; abi3 from the version it names on; py3 / pyXY pure."""
    nodot = python.replace(".", "")
    minor = int(python.split(".")[1])
    if interpreter in ("py3", f"py{nodot}") and abi == "none":
        return True
    if not interpreter.startswith("cp3") or not interpreter[3:].isdigit():
        return False  # pp…, ip…: other Python implementations
    if abi == "abi3":
        return int(interpreter[3:]) <= minor
    return interpreter == f"cp{nodot}" and abi in (f"cp{nodot}", "none")


def _tags(wheel_name: str):
    try:
        return parse_wheel_filename(wheel_name)[3]
    except InvalidWheelFilename:
        return frozenset()


_SYSTEM = {"linux": ("linux", "Linux", "posix"), "osx": ("darwin", "Darwin", "posix"), "win": ("win32", "Windows", "nt")}
# platform.machine() on each subdir: Windows says AMD64 / x86 / ARM64, macOS x86_64 / arm64.
_MACHINE = {"win-32": "x86", "win-64": "AMD64", "win-arm64": "ARM64", **_MAC_ARCH, **_LINUX_ARCH}


def marker_environment(subdir: str, python: str) -> dict[str, str]:
    """The PEP 508 marker variables of CPython X.Y on subdir, for `Marker.evaluate`."""
    sys_platform, system, os_name = _SYSTEM[subdir.split("-", 1)[0]]
    return {
        "python_version": python, "python_full_version": f"{python}.0", "implementation_version": f"{python}.0",
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "sys_platform": sys_platform, "platform_system": system, "os_name": os_name,
        "platform_machine": _MACHINE.get(subdir, subdir.split("-", 1)[1]), "platform_release": "",
        "platform_version": "", "extra": "",
    }
