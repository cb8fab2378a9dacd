"""Real PyPI packages of other shapes through the whole pipeline, proven by installing.

pyflakes has a console_scripts entry point; certifi ships package data (cacert.pem).  Each is
released for all 13 platforms, then every published package is installed with py-rattler into a
prefix of its subdir (stand-ins for python and dependencies) and the files checked where conda
puts them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from conftest import new_project
from tasks import subdirs
from tasks.verify import stub_channel

pytestmark = pytest.mark.pypi

CASES = {
    "pyflakes": ("3.2.0", "pyflakes/__init__.py", "pyflakes"),
    "certifi": ("2024.8.30", "certifi/cacert.pem", None),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def released(request, tmp_path_factory):
    name = request.param
    version, _, _ = CASES[name]
    project = new_project(tmp_path_factory.mktemp(name) / "proj")
    project.doit(f"package={name}", f"version={version}", "pythons=3.12", "platforms=all")
    return name, project


def _install(package, subdir: str, folder) -> object:
    import rattler
    from rattler.package import IndexJson

    stubs = stub_channel(folder / "stubs", subdir, IndexJson.from_package_archive(package).depends)
    channel = package.parent.parent
    prefix = folder / "prefix"

    async def go() -> None:
        records = await rattler.solve([rattler.Channel(channel.as_uri()), rattler.Channel(stubs.as_uri())],
                                      [IndexJson.from_package_archive(package).name.normalized],
                                      platforms=[subdir, "noarch"], channel_priority=rattler.ChannelPriority.Disabled)
        await rattler.install(records, prefix, cache_dir=folder / "cache", platform=rattler.Subdir(subdir),
                              show_progress=False)

    asyncio.run(go())
    return prefix


@pytest.mark.parametrize("subdir", subdirs.ALL)
def test_installs_where_conda_puts_files(released, subdir, tmp_path):
    name, project = released
    version, payload, script = CASES[name]
    package = project.build / "channel" / subdir / f"{name}-{version}-py312_0.tar.bz2"
    prefix = _install(package, subdir, tmp_path)
    windows = subdirs.is_windows(subdir)
    site = prefix / ("Lib/site-packages" if windows else "lib/python3.12/site-packages")
    assert (site / payload).is_file()
    if script and windows:
        assert (prefix / "Scripts" / f"{script}-script.py").is_file()
        launcher = (prefix / "Scripts" / f"{script}.exe").read_bytes()
        assert launcher[:2] == b"MZ"
    elif script:
        entry = prefix / "bin" / script
        assert entry.read_text().startswith(f"#!{prefix}/bin/python")  # placeholder rewritten
        run = subprocess.run([sys.executable, str(entry), "--version"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(site)})
        assert run.returncode == 0 and run.stdout.strip().startswith(version)
