"""tasks/quetz.py against a real quetz server on 127.0.0.1 (skipped when quetz is not installed)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import requests

from fault_proxy import FaultProxy
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


# -- faults between us and a real quetz: retried within one run, and a failed run then a re-run ----
# tests/fault_proxy.py relays to the real server and breaks the chosen request.

QUETZ_FAULTS = {
    "upload 5xx": (dict(method="POST", path="/upload/", status=503), "uploaded"),
    "upload done, answer lost": (dict(method="POST", path="/upload/", kind="lost", status=502), "skipped"),
    "upload done, connection reset": (dict(method="POST", path="/upload/", kind="reset"), "skipped"),
    "bytes damaged in transit": (dict(method="POST", path="/upload/", kind="damage"), "uploaded"),
    "lookup 5xx": (dict(method="GET", path="/versions/", status=500), "uploaded"),
    "channel check 5xx": (dict(method="GET", path=r"/api/channels/[^/]+$", status=503), "uploaded"),
}


@pytest.fixture
def proxy(quetz_server):
    with FaultProxy(quetz_server.url) as relay:
        yield relay


def held_exactly(quetz_server, path: Path) -> None:
    """The server holds this file, byte for byte, under its name."""
    record = requests.get(f"{quetz_server.url}/api/channels/{quetz_server.channel}/packages/"
                          f"{path.name.rsplit('-', 2)[0]}/versions/linux-64/{path.name}", timeout=30)
    assert record.status_code == 200 and record.json()["info"]["sha256"] == sha256(path)
    served = requests.get(f"{quetz_server.url}/get/{quetz_server.channel}/linux-64/{path.name}", timeout=30)
    assert hashlib.sha256(served.content).hexdigest() == sha256(path)


@pytest.mark.parametrize("fault", QUETZ_FAULTS, ids=list(QUETZ_FAULTS))
def test_quetz_fault_is_retried_to_the_file_held(quetz_server, proxy, make_package, capsys, fault):
    spec, _ = QUETZ_FAULTS[fault]
    proxy.inject(**spec)
    path = make_package(name=f"qf-retry-{list(QUETZ_FAULTS).index(fault)}")
    confirmed = quetz.publish(path, "linux-64", url=proxy.url, channel=quetz_server.channel,
                              api_key=quetz_server.api_key, force=False, retries=3, backoff=0.01, timeout=30)
    assert (confirmed.state, confirmed.sha256) == ("uploaded", sha256(path))
    assert confirmed.url.startswith(proxy.url) and not proxy.faults  # the fault fired
    held_exactly(quetz_server, path)
    out, err = capsys.readouterr()
    assert "retrying publishing" in out and quetz_server.api_key not in out + err


@pytest.mark.parametrize("fault", QUETZ_FAULTS, ids=list(QUETZ_FAULTS))
def test_quetz_fault_fails_the_run_then_a_rerun_converges(quetz_server, proxy, make_package, capsys, fault):
    spec, rerun_state = QUETZ_FAULTS[fault]
    proxy.inject(**spec)
    path = make_package(name=f"qf-rerun-{list(QUETZ_FAULTS).index(fault)}")
    options = dict(url=proxy.url, channel=quetz_server.channel, api_key=quetz_server.api_key, force=False,
                   backoff=0.01, timeout=30)
    with pytest.raises(UserError) as caught:
        quetz.publish(path, "linux-64", retries=0, **options)
    message = str(caught.value)
    assert "gave up after 1 attempt" in message and "\n" not in message and quetz_server.api_key not in message
    confirmed = quetz.publish(path, "linux-64", retries=0, **options)
    assert (confirmed.state, confirmed.sha256) == (rerun_state, sha256(path))
    held_exactly(quetz_server, path)


def test_quetz_failing_every_time_is_given_up_in_one_line(quetz_server, proxy, make_package, capsys):
    proxy.inject(method="GET", path="/versions/", status=503, times=99)
    path = make_package(name="qf-down")
    with pytest.raises(UserError) as caught:
        quetz.publish(path, "linux-64", url=proxy.url, channel=quetz_server.channel, api_key=quetz_server.api_key,
                      force=False, retries=2, backoff=0.01, timeout=30)
    assert str(caught.value).startswith(f"publishing {path.name} to {proxy.url} gave up after 3 attempts")
    assert "HTTP 503" in str(caught.value) and "\n" not in str(caught.value)
    assert [status for method, _, status in proxy.log if method == "POST"] == []  # nothing was sent
    assert capsys.readouterr().out.count("retrying") == 2
