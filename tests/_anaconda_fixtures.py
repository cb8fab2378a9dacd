"""Fixtures for the publishing tests: the anaconda.org stand-in with anaconda-client configured for
it in a temporary HOME, tiny real conda packages, and a real quetz server.

Test modules load them with `pytest_plugins = ("_anaconda_fixtures",)`.

quetz runs from its own environment (its pins clash with nothing here, but keep it apart):
    python -m venv /work/venv-quetz
    /work/venv-quetz/bin/pip install "quetz-server==0.10.4" "fastapi==0.109.2" "sqlalchemy<2.1"
and is found through QUETZ_BIN=/work/venv-quetz/bin/quetz, else `quetz` on PATH; without it the
quetz tests are skipped.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import rattler_build
import requests

from anaconda_server import AnacondaServer

TOKEN = "tok-4f1c9e2a7b3d"  # distinctive, so a test can search any output for it
OWNER = "pingthings"
USER = "looselycoupled"

MakePackage = Callable[..., Path]


@pytest.fixture
def anaconda_server() -> Iterator[AnacondaServer]:
    """The stand-in, serving on a free port: USER (token TOKEN) is a member of the org OWNER."""
    with AnacondaServer() as server:
        server.add_user(USER, TOKEN)
        server.add_org(OWNER, [USER])
        yield server


@pytest.fixture
def anaconda_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anaconda_server: AnacondaServer) -> Path:
    """A HOME whose anaconda-client config points at the stand-in; no token in the environment."""
    home = tmp_path / "home"
    config = home / ".continuum" / "anaconda-client" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"url: {anaconda_server.url}\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    for name in ("ANACONDA_API_TOKEN", "BINSTAR_API_TOKEN", "BINSTAR_CONFIG_DIR", "CONDA_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANACONDA_TELEMETRY_ENABLED", "false")
    return home


@pytest.fixture
def make_package(tmp_path: Path) -> MakePackage:
    """Build a tiny real conda package; each call has new random content unless `payload` is given."""
    counter = itertools.count()

    def make(name: str = "demo", version: str = "1.0", subdir: str = "linux-64", build: str = "py_0",
             payload: bytes | None = None, size: int = 64 * 1024) -> Path:
        n = next(counter)
        files = tmp_path / f"pkg-files-{n}"
        (files / "share" / name).mkdir(parents=True)
        (files / "share" / name / "payload.bin").write_bytes(os.urandom(size) if payload is None else payload)
        output = rattler_build.assemble_package(
            name, version, subdir, build, tmp_path / f"pkg-out-{n}", files_dir=files,
            archive_type=rattler_build.ArchiveType.TarBz2,
        )
        return Path(output.path)

    return make


# -- quetz -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Quetz:
    url: str
    api_key: str
    channel: str
    log: Path

    def uploads(self) -> int:
        """How many upload requests the server has logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace").count("/upload/")


_QUETZ_CONFIG = """\
[sqlalchemy]
database_url = "sqlite:///./quetz.sqlite"

[session]
secret = "{secret}"
https_only = false

[users]
admins = ["dummy:alice", "dummy:bob", "dummy:carol", "dummy:dave"]
"""


def quetz_executable() -> str | None:
    found = os.environ.get("QUETZ_BIN") or shutil.which("quetz")
    return found if found and Path(found).is_file() else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def quetz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quetz]:
    """A real quetz deployment on 127.0.0.1 with channel OWNER, and an API key of its owner."""
    exe = quetz_executable()
    if exe is None:
        pytest.skip("quetz not found: set QUETZ_BIN or put `quetz` on PATH "
                    "(pip install quetz-server 'fastapi==0.109.2' 'sqlalchemy<2.1' in its own venv)")
    root = tmp_path_factory.mktemp("quetz")
    deployment = root / "deployment"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("QUETZ_CONFIG_FILE", None)
    # Our minimal config, written before `create --dev` makes the dev users and a key: its [users]
    # gives them the server role owner, which creating a channel needs (--create-conf gives none).
    deployment.mkdir()
    (deployment / "config.toml").write_text(_QUETZ_CONFIG.format(secret=secrets.token_hex(32)), encoding="utf-8")
    created = subprocess.run([exe, "create", str(deployment), "--dev"], cwd=root, env=env,
                             capture_output=True, text=True, timeout=120, check=True)
    match = re.search(r'Test API key created for user "[^"]+": (\w+)', created.stdout + created.stderr)
    assert match, created.stdout + created.stderr
    key = match.group(1)
    port, log = _free_port(), root / "quetz.log"
    with open(log, "w", encoding="utf-8") as sink:
        server = subprocess.Popen(
            [exe, "start", str(deployment), "--host", "127.0.0.1", "--port", str(port), "--no-supervisor"],
            cwd=root, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, server, log)
        made = requests.post(f"{url}/api/channels", json={"name": OWNER, "private": False},
                             headers={"X-API-Key": key}, timeout=30)
        assert made.status_code == 201, made.text
        yield Quetz(url, key, OWNER, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_ready(url: str, server: subprocess.Popen, log: Path, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"quetz exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/api/channels", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"quetz did not answer within {limit} s:\n{log.read_text()[-3000:]}")
