"""Publish one conda package file to a quetz channel, with the rules of tasks/anaconda.py.

quetz has no client library, so this speaks its REST API with `requests`:
  GET  /api/channels/{channel}/packages/{name}/versions/{subdir}/{file}   the record (info.sha256)
  POST /api/channels/{channel}/upload/{file}?sha256=..&force=..            raw bytes → 201, 409 if held
  GET  /api/channels/{channel}                                             does the channel exist
Files are served from /get/{channel}/{subdir}/{file}.  The key travels in the X-API-Key header only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import requests
from rattler.package import IndexJson

from . import progress
from .anaconda import Confirmed, network_reason, redact, with_retries
from .errors import UserError
from .fsio import file_digests

__all__ = ["Confirmed", "publish"]

KEY_FIX = "set QUETZ_API_KEY to an API key of an owner or maintainer of the channel"


class _ServerError(Exception):
    """A 5xx answer, or bytes that arrived damaged: worth another try."""


@dataclasses.dataclass
class _Upload:
    session: requests.Session
    path: Path
    subdir: str
    name: str
    local: dict[str, Any]
    url: str
    channel: str
    force: bool
    timeout: float
    api_key: str | None
    sent: bool = False
    channel_checked: bool = False

    @property
    def where(self) -> str:
        return f"{self.channel}/{self.subdir}/{self.path.name}"

    def attempt(self) -> Confirmed:
        remote = self.lookup()
        if remote is not None:
            if remote.get("sha256") == self.local["sha256"]:
                return self._confirmed(remote, "uploaded" if self.sent else "skipped")
            if not self.force:
                raise UserError(self._mismatch(remote))
            print(f"replacing {self.where} on {self.url} (force=true)", flush=True)
        elif not self.channel_checked:
            self._check_channel()
        self._send(replace=remote is not None)
        remote = self.lookup()
        if remote is None:
            raise UserError(f"{self.url} accepted {self.where} but has no record of it: re-run")
        if remote.get("sha256") != self.local["sha256"]:
            raise UserError(self._mismatch(remote))
        return self._confirmed(remote, "uploaded")

    def lookup(self) -> dict[str, Any] | None:
        """The server's record (quetz's `info`: index.json plus md5, sha256, size), or None."""
        answer = self.session.get(
            f"{self.url}/api/channels/{self.channel}/packages/{self.name}/versions/{self.subdir}/{self.path.name}",
            timeout=self.timeout,
        )
        if answer.status_code == 404:
            return None
        self._check(answer)
        return dict(answer.json().get("info") or {})

    def _check_channel(self) -> None:
        answer = self.session.get(f"{self.url}/api/channels/{self.channel}", timeout=self.timeout)
        if answer.status_code == 404:
            raise UserError(f"channel {self.channel} does not exist on {self.url}: create it, or check channel=")
        self._check(answer)
        self.channel_checked = True

    def _send(self, *, replace: bool) -> None:
        if not self.sent:
            kib = -(-self.local["size"] // 1024)
            print(f"uploading {self.path.name} ({kib} KiB) to {self.channel} on {self.url}", flush=True)
        self.sent = True
        params = {"sha256": self.local["sha256"], "force": "true" if replace else "false"}
        with open(self.path, "rb") as stream, progress.bar(self.local["size"], self.path.name) as sent:
            answer = self.session.post(
                f"{self.url}/api/channels/{self.channel}/upload/{self.path.name}",
                params=params, data=progress.reading(stream, sent), timeout=self.timeout,
            )
        if answer.status_code == 409:  # someone, or our earlier unanswered attempt, got there first
            return
        if answer.status_code == 406:  # quetz's sha256 of what arrived differs from ours
            raise _ServerError("damaged bytes (HTTP 406)")
        self._check(answer)

    def _check(self, answer: requests.Response) -> None:
        status = answer.status_code
        if status < 300:
            return
        if status >= 500:
            raise _ServerError(f"HTTP {status}")
        if status == 401:
            raise UserError(f"{self.url} refused the API key for channel {self.channel} (401): {KEY_FIX}")
        if status == 403:
            raise UserError(f"{self.url} does not let this API key upload to channel {self.channel} (403): {KEY_FIX}")
        try:
            detail = answer.json().get("detail", "")
        except ValueError:
            detail = answer.text[:200]
        raise UserError(
            f"{self.url} answered HTTP {status} for {self.where} ({redact(detail, self.api_key)}): "
            "check the package and channel="
        )

    def _mismatch(self, remote: dict[str, Any]) -> str:
        return (
            f"{self.where} on {self.url} has sha256 {remote.get('sha256')} but the local file has sha256 "
            f"{self.local['sha256']}: set force=true to replace it"
        )

    def _confirmed(self, remote: dict[str, Any], state: str) -> Confirmed:
        size = remote.get("size")
        return Confirmed(
            state, f"{self.url}/get/{self.channel}/{self.subdir}/{self.path.name}",
            remote.get("sha256"), remote.get("md5"), int(size) if size is not None else None,
        )


def _transient(err: BaseException) -> str | None:
    if isinstance(err, _ServerError):
        return str(err)
    return network_reason(err)


def _package_name(path: Path, subdir: str) -> str:
    try:
        index = IndexJson.from_package_archive(path)
    except Exception as err:  # noqa: BLE001 - any unreadable archive is the same user problem
        raise UserError(f"{path} is not a readable conda package ({redact(err, None)}): delete it and run doit to rebuild it") from None
    if index.subdir != subdir:
        raise UserError(
            f"{path.name} says subdir {index.subdir!r} in info/index.json, not {subdir!r}: "
            "rebuild or convert it for the right platform"
        )
    return index.name.normalized


def publish(
    path: Path,
    subdir: str,
    *,
    url: str,
    channel: str,
    api_key: str | None,
    force: bool,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 60,
) -> Confirmed:
    """Make the quetz channel hold exactly this file, and return what the server confirms.

    Same sha256 already there → "skipped" with no bytes sent; a different file under the same name →
    UserError naming both hashes unless `force`; absent → upload, then read the record back.
    """
    session = requests.Session()
    if api_key:
        session.headers["X-API-Key"] = api_key
    url = url.rstrip("/")
    upload = _Upload(session, path, subdir, _package_name(path, subdir), file_digests(path), url, channel, force,
                     timeout, api_key)
    with session:
        return with_retries(
            upload.attempt, _transient, what=f"publishing {path.name} to {url}",
            retries=retries, backoff=backoff, secret=api_key,
        )


def download(url: str, into: Path, *, api_key: str | None, timeout: float = 60) -> None:
    """Stream the file quetz serves at url into `into` (the key in its header: private channels)."""
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        with requests.get(url, headers=headers, timeout=timeout, stream=True) as answer:
            if answer.status_code != 200:
                raise UserError(f"{url} answered HTTP {answer.status_code}")
            with open(into, "wb") as handle:
                for chunk in answer.iter_content(1 << 20):
                    handle.write(chunk)
    except requests.RequestException as err:
        raise UserError(f"{url} unreachable ({type(err).__name__})") from None


def held(name: str, subdir: str, filename: str, *, url: str, channel: str, api_key: str | None,
         timeout: float = 60) -> str | None:
    """The sha256 of the file the quetz channel holds under this name, or None."""
    session = requests.Session()
    if api_key:
        session.headers["X-API-Key"] = api_key
    lookup = _Upload(session, Path(filename), subdir, name, {}, url.rstrip("/"), channel, False, timeout, api_key)
    with session:
        try:
            record = lookup.lookup()
        except (_ServerError, requests.RequestException) as err:
            raise UserError(f"could not ask {url} about {lookup.where} ({redact(err, api_key)}): check the "
                            "server, or run `doit status` without --remote") from None
    return record.get("sha256") if record is not None else None
