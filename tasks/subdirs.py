"""What conda calls a platform: subdir names, their os and arch, and this machine's own."""

from __future__ import annotations

import platform
import sys

# `conda convert --platform all` today (conda_build/utils.py DEFAULT_SUBDIRS, minus noarch).
ALL = (
    "linux-32", "linux-64", "linux-ppc64", "linux-ppc64le", "linux-s390x",
    "linux-armv6l", "linux-armv7l", "linux-aarch64",
    "osx-64", "osx-arm64",
    "win-32", "win-64", "win-arm64",
)
# The nine the walkthrough built for: osx-64 natively, eight converted.
WALKTHROUGH = (
    "linux-32", "linux-64", "linux-ppc64le", "linux-armv6l", "linux-armv7l",
    "linux-aarch64", "osx-64", "win-32", "win-64",
)
# The `arch` field conda writes in index.json for each architecture suffix.
_ARCH = {"32": "x86", "64": "x86_64"}


def os_of(subdir: str) -> str:
    """`linux`, `osx` or `win`."""
    return subdir.split("-", 1)[0]


def arch_of(subdir: str) -> str:
    """index.json's `arch`: x86 / x86_64 for 32 / 64, the suffix itself otherwise."""
    suffix = subdir.split("-", 1)[1]
    return _ARCH.get(suffix, suffix)


def is_windows(subdir: str) -> bool:
    return os_of(subdir) == "win"


def native() -> str:
    """The subdir of this machine, as conda-build would name its output folder."""
    machine = platform.machine().lower()
    os_name = {"linux": "linux", "darwin": "osx", "win32": "win"}.get(sys.platform, "linux")
    suffix = {
        "x86_64": "64", "amd64": "64", "i386": "32", "i686": "32",
        "arm64": "arm64" if os_name != "linux" else "aarch64", "aarch64": "aarch64",
    }.get(machine, machine)
    return f"{os_name}-{suffix}"
