"""tasks/quetz.py against a real quetz server on 127.0.0.1 (skipped when quetz is not installed)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import requests

from tasks import quetz
from tasks.errors import UserError

pytest_plugins = ("_anaconda_fixtures",)  # quetz_server, make_package

FAST = {"backoff": 0.01, "timeout": 30.0, "retries": 1}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish(server, path: Path, **kwargs) -> quetz.Confirmed:
    options = {"url": server.url, "channel": server.channel, "api_key": server.api_key, "force": False,
               **FAST, **kwargs}
    return quetz.publish(path, "linux-64", **options)


def test_upload_then_rerun_uploads_nothing(quetz_server, make_package, capsys):
    path = make_package(name="quetz-once")
    first = publish(quetz_server, path)
    assert (first.state, first.sha256, first.size) == ("uploaded", sha256(path), path.stat().st_size)
    assert hashlib.sha256(requests.get(first.url, timeout=30).content).hexdigest() == sha256(path)
    uploads = quetz_server.uploads()

    again = publish(quetz_server, path)
    assert again == quetz.Confirmed("skipped", first.url, first.sha256, first.md5, first.size)
    assert quetz_server.uploads() == uploads
    out, err = capsys.readouterr()
    assert out.count("uploading quetz-once-1.0-py_0.tar.bz2") == 1
    assert quetz_server.api_key not in out + err


def test_different_file_stops_with_both_hashes_and_force_replaces_it(quetz_server, make_package):
    old, new = make_package(name="quetz-twice"), make_package(name="quetz-twice")
    publish(quetz_server, old)
    uploads = quetz_server.uploads()
    with pytest.raises(UserError) as caught:
        publish(quetz_server, new)
    assert sha256(old) in str(caught.value) and sha256(new) in str(caught.value)
    assert "force=true" in str(caught.value)
    assert quetz_server.uploads() == uploads

    replaced = publish(quetz_server, new, force=True)
    assert (replaced.state, replaced.sha256) == ("uploaded", sha256(new))
    assert hashlib.sha256(requests.get(replaced.url, timeout=30).content).hexdigest() == sha256(new)


def test_rejected_key(quetz_server, make_package):
    with pytest.raises(UserError, match=r"\(401\): set QUETZ_API_KEY") as caught:
        publish(quetz_server, make_package(name="quetz-key"), api_key="wrong-key-123456", retries=3)
    assert "wrong-key-123456" not in str(caught.value)


def test_unknown_channel(quetz_server, make_package):
    with pytest.raises(UserError) as caught:
        publish(quetz_server, make_package(name="quetz-nochan"), channel="nochan", retries=3)
    assert str(caught.value) == f"channel nochan does not exist on {quetz_server.url}: create it, or check channel="


def test_unreachable_server_is_retried_then_given_up(make_package, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(UserError, match=r"gave up after 3 attempts, the last ended in a connection error"):
            quetz.publish(make_package(), "linux-64", url=url, channel="pingthings", api_key=None, force=False,
                          retries=2, backoff=0.01, timeout=2)
    assert capsys.readouterr().out.count("retrying") == 2
