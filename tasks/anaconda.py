"""Publish one conda package file to anaconda.org, or any server speaking its API, with anaconda-client.

The file is looked up first and compared by content, so a re-run sends no package bytes; an upload
is confirmed by reading the server's record back.  Transient failures (connection errors, timeouts,
5xx) are retried with exponential backoff; everything a user must fix ends as one `UserError` line.
The token goes to anaconda-client's session only: never to output, logs or exception messages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar
from xml.etree.ElementTree import ParseError

import binstar_client
import requests
from binstar_client import Binstar, errors
from binstar_client.inspect_package.conda import inspect_conda_package
from binstar_client.utils.config import PackageType, get_config, load_token

from . import progress
from .errors import UserError
from .fsio import file_digests

T = TypeVar("T")

LOGIN_FIX = "log in with `anaconda login` or set ANACONDA_API_TOKEN"


@dataclasses.dataclass(frozen=True)
class Confirmed:
    """What the server confirmed it holds for one file (never what we assumed)."""

    state: str  # "uploaded" | "skipped" (already there with the same content)
    url: str  # where the server says the file lives
    sha256: str | None
    md5: str | None
    size: int | None


# ---------------------------------------------------------------------------------------------
# Settings anaconda-client owns: the API URL (its `url` or default site) and the stored login.


def client_settings() -> tuple[str, bool]:
    """The API URL and TLS verification from anaconda-client's own configuration."""
    config = get_config()
    verify = config.get("ssl_verify", config.get("verify_ssl", True))
    return str(config.get("url")), verify is not False


def stored_token(environ: Mapping[str, str]) -> str | None:
    """The token anaconda-client itself would use: its environment variables, else its stored login.

    Same order as the client (`BINSTAR_API_TOKEN` before `ANACONDA_API_TOKEN`), so `anaconda upload`
    and this module always act as the same user.
    """
    for name in ("BINSTAR_API_TOKEN", "ANACONDA_API_TOKEN"):
        if environ.get(name):
            return environ[name]
    return load_token(client_settings()[0]) or None


# ---------------------------------------------------------------------------------------------
# Retries, shared with tasks/quetz.py.


def with_retries(
    action: Callable[[], T],
    transient: Callable[[BaseException], str | None],
    *,
    what: str,
    retries: int,
    backoff: float,
    secret: str | None = None,
) -> T:
    """Run action; retry it while `transient(error)` names a reason, at most `retries` more times."""
    retries = max(retries, 0)
    for attempt in range(retries + 1):
        try:
            return action()
        except Exception as err:  # noqa: BLE001 - classified right below, re-raised otherwise
            reason = transient(err)
            if reason is None:
                raise
            reason = redact(reason, secret)
            if attempt == retries:
                attempts = f"{retries + 1} attempt" + ("s" if retries else "")
                raise UserError(
                    f"{what} gave up after {attempts}, the last ended in {reason}: check the server and re-run"
                ) from None
            delay = backoff * 2**attempt
            print(f"retrying {what} in {delay:.2f} s after {reason}", flush=True)
            time.sleep(delay)
    raise AssertionError("unreachable")


def network_reason(err: BaseException) -> str | None:
    """A short reason when err is a connection problem or a timeout, else None."""
    if isinstance(err, requests.Timeout):
        return f"a timeout ({type(err).__name__})"
    if isinstance(err, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return f"a connection error ({type(err).__name__})"
    return None


def redact(text: object, secret: str | None) -> str:
    """One line of text with the secret cut out (a safety net: messages are built without it)."""
    line = " ".join(str(text).split())
    return line.replace(secret, "***") if secret and len(secret) >= 8 else line


# ---------------------------------------------------------------------------------------------
# The anaconda-client session.


class _Timeouts(requests.adapters.HTTPAdapter):
    """anaconda-client's session sets no timeout; give every call through it ours."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        super().__init__()

    def send(self, request: Any, *args: Any, timeout: Any = None, **kwargs: Any) -> Any:
        return super().send(request, *args, timeout=timeout or self._timeout, **kwargs)


_storage = threading.local()


def _storage_post(*args: Any, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", getattr(_storage, "timeout", None) or 10 * 60 * 60)
    return _storage_post.original(*args, **kwargs)  # type: ignore[attr-defined]


@contextlib.contextmanager
def _storage_timeout(timeout: float, name: str = "upload") -> Iterator[None]:
    """Bound the storage POST by our timeout too.

    `Binstar.upload` posts the file to storage outside its session with a fixed 10-hour timeout; a
    stalled storage would hang the release.  The wrapper reads the timeout per thread, so it is safe
    to leave installed; it changes nothing for callers that set none.
    """
    if binstar_client.multipart_files_upload is not _storage_post:
        _storage_post.original = binstar_client.multipart_files_upload  # type: ignore[attr-defined]
        binstar_client.multipart_files_upload = _storage_post
    # anaconda-client draws its bar whatever the output is; ours appears on a terminal only
    binstar_client.tqdm = _upload_bar
    previous, _storage.timeout = getattr(_storage, "timeout", None), timeout
    _storage.name = name
    try:
        yield
    finally:
        _storage.timeout = previous


def _upload_bar(total: int | None = None, **kwargs: Any) -> Any:
    return progress.bar(total, getattr(_storage, "name", "upload"), **kwargs)


def _client(token: str | None, api_url: str, verify: bool, timeout: float) -> Binstar:
    api = Binstar(token=token, domain=api_url, verify=verify)
    adapter = _Timeouts(timeout)
    api.session.mount("http://", adapter)
    api.session.mount("https://", adapter)
    return api


def _status(err: BaseException) -> int | None:
    """The HTTP status anaconda-client attached to its error, if any."""
    args = getattr(err, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def _transient(err: BaseException) -> str | None:
    if reason := network_reason(err):
        return reason
    if isinstance(err, ParseError):  # storage answered an error that is not S3's XML (a proxy page)
        return "a storage error that was not S3 XML"
    status = _status(err)
    if isinstance(err, errors.BinstarError) and status is not None and status >= 500:
        return f"HTTP {status}"
    return None


# ---------------------------------------------------------------------------------------------
# What the client's own upload reads from the package.


@dataclasses.dataclass(frozen=True)
class Package:
    """Name, version and attributes from info/, as `anaconda upload` reads them."""

    name: str
    version: str
    basename: str  # `subdir/name-version-build.ext`, as `anaconda upload` normalises it
    package_attrs: dict[str, Any]
    release_attrs: dict[str, Any]
    file_attrs: dict[str, Any]


def inspect(path: Path, subdir: str) -> Package:
    """Read the package as anaconda-client's upload does; its subdir must be the one we release."""
    try:
        package_attrs, release_attrs, file_attrs = inspect_conda_package(str(path))
    except Exception as err:  # noqa: BLE001 - any unreadable archive is the same user problem
        raise UserError(f"{path} is not a readable conda package ({redact(err, None)}): delete it and run doit to rebuild it") from None
    attrs = file_attrs["attrs"]
    if attrs.get("subdir") != subdir:
        raise UserError(
            f"{path.name} says subdir {attrs.get('subdir')!r} in info/index.json, not {subdir!r}: "
            "rebuild or convert it for the right platform"
        )
    name, version = package_attrs["name"], release_attrs["version"]
    extension = ".conda" if path.name.endswith(".conda") else ".tar.bz2"
    basename = f"{subdir}/{name}-{version}-{attrs.get('build', '0')}{extension}"
    file_attrs = {**file_attrs, "basename": basename}
    return Package(name, version, basename, package_attrs, release_attrs, file_attrs)


# ---------------------------------------------------------------------------------------------
# Publishing.


@dataclasses.dataclass
class _Upload:
    """One file's publication: the facts, and what this run has already done to the server."""

    api: Binstar
    path: Path
    package: Package
    local: dict[str, Any]  # sha256, md5, size of the local file
    owner: str
    labels: list[str]
    force: bool
    timeout: float
    sent: bool = False
    owner_checked: bool = False

    @property
    def where(self) -> str:
        return f"{self.owner}/{self.package.name}/{self.package.version}/{self.package.basename}"

    def lookup(self) -> dict[str, Any] | None:
        """The server's record of the file, or None."""
        try:
            return self.api.distribution(self.owner, self.package.name, self.package.version, self.package.basename)
        except errors.NotFound:
            return None

    def attempt(self) -> Confirmed:
        remote = self.lookup()
        if remote is not None:
            if self._same(remote):
                return self._confirmed(self._labelled(remote), "uploaded" if self.sent else "skipped")
            if not self.force:
                raise UserError(self._mismatch(remote))
            print(f"replacing {self.where} on {self.api.domain} (force=true)", flush=True)
            self.api.remove_dist(self.owner, self.package.name, self.package.version, self.package.basename)
        elif not self.owner_checked:
            self._check_owner()
        try:
            self._send()
            conflict = False
        except errors.Conflict:  # someone (or our earlier, unanswered attempt) got there first
            conflict = True
        remote = self.lookup()
        if remote is None and conflict:
            raise UserError(
                f"{self.api.domain} says {self.where} exists (409) but shows no such file: "
                f"remove it with `anaconda remove {self.where}` or re-run later"
            )
        if remote is None:
            raise UserError(f"{self.api.domain} accepted {self.where} but has no record of it: re-run")
        if not self._same(remote):
            raise UserError(self._mismatch(remote))
        return self._confirmed(remote, "uploaded")

    def _check_owner(self) -> None:
        try:
            self.api.user(self.owner)
        except errors.NotFound:
            raise UserError(f"owner {self.owner} does not exist on {self.api.domain}: check owner=") from None
        self.owner_checked = True

    def _send(self) -> None:
        """Create the package and release when missing, then stage, store and commit the file."""
        package = self.package
        try:
            self.api.package(self.owner, package.name)
        except errors.NotFound:
            self._create(lambda: self.api.add_package(
                self.owner, package.name, package.package_attrs.get("summary") or "",
                package.package_attrs.get("license"), public=True, attrs=dict(package.package_attrs),
                license_url=package.package_attrs.get("license_url"),
                license_family=package.package_attrs.get("license_family"), package_type=PackageType.CONDA,
            ))
        try:
            self.api.release(self.owner, package.name, package.version)
        except errors.NotFound:
            self._create(lambda: self.api.add_release(self.owner, package.name, package.version, [], None,
                                                      package.release_attrs))
        if not self.sent:
            kib = -(-self.local["size"] // 1024)
            print(f"uploading {self.path.name} ({kib} KiB) to {self.owner}/{','.join(self.labels)}", flush=True)
        self.sent = True
        with open(self.path, "rb") as stream, _storage_timeout(self.timeout, self.path.name):
            self.api.upload(
                self.owner, package.name, package.version, package.basename, stream, PackageType.CONDA,
                None, dependencies=package.file_attrs.get("dependencies"),
                attrs=dict(package.file_attrs["attrs"]), channels=self.labels,
            )

    @staticmethod
    def _create(call: Callable[[], Any]) -> None:
        """Create a package or release; a 409 means a parallel upload created it first: fine.
        Only a 409 from staging the file itself means the file is there."""
        try:
            call()
        except errors.Conflict:
            pass

    def _labelled(self, remote: dict[str, Any]) -> dict[str, Any]:
        """Give a file already on the server the labels asked for that it lacks; the server's
        record must then show them all (the stamp lists the labels)."""
        missing = [label for label in self.labels if label not in (remote.get("labels") or [])]
        if not missing:
            return remote
        for label in missing:
            self.api.add_channel(label, self.owner, self.package.name, self.package.version, self.package.basename)
        remote = self.lookup() or {}
        still = [label for label in self.labels if label not in (remote.get("labels") or [])]
        if still:
            raise UserError(f"{self.api.domain} did not add label {still[0]} to {self.where}: add it with "
                            f"`anaconda label`, or check owner= and label=")
        return remote

    def _same(self, remote: Mapping[str, Any]) -> bool:
        if remote.get("sha256"):
            return remote["sha256"] == self.local["sha256"]
        if remote.get("md5"):
            return remote["md5"] == self.local["md5"]
        raise UserError(f"{self.api.domain} gives no sha256 or md5 for {self.where}: cannot compare, check the server")

    def _mismatch(self, remote: Mapping[str, Any]) -> str:
        algorithm = "sha256" if remote.get("sha256") else "md5"
        return (
            f"{self.where} on {self.api.domain} has {algorithm} {remote.get(algorithm)} but the local file has "
            f"{algorithm} {self.local[algorithm]}: set force=true to replace it"
        )

    def _confirmed(self, remote: Mapping[str, Any], state: str) -> Confirmed:
        url = str(remote.get("download_url") or f"{self.api.domain}/download/{self.where}")
        if url.startswith("//"):  # anaconda.org answers scheme-relative URLs
            url = self.api.domain.split("//", 1)[0] + url
        size = remote.get("size")
        return Confirmed(state, url, remote.get("sha256"), remote.get("md5"), int(size) if size is not None else None)


def publish(
    path: Path,
    subdir: str,
    *,
    owner: str,
    labels: Sequence[str],
    force: bool,
    token: str | None,
    api_url: str | None = None,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 60,
) -> Confirmed:
    """Make the server hold exactly this file under OWNER/labels, and return what it confirms.

    Same content already there → "skipped" with no package bytes sent; different content → UserError
    naming both hashes unless `force`; absent → upload, then read the record back and compare.
    `api_url` None means anaconda-client's configured site.  Up to `retries` retries.
    """
    configured_url, verify = client_settings()
    api = _client(token, (api_url or configured_url).rstrip("/"), verify, timeout)
    package, local = inspect(path, subdir), file_digests(path)
    upload = _Upload(api, path, package, local, owner, list(labels) or ["main"], force, timeout)
    try:
        return with_retries(
            upload.attempt, _transient, what=f"publishing {path.name} to {api.domain}",
            retries=retries, backoff=backoff, secret=token,
        )
    except errors.BinstarError as err:
        raise _user_error(err, upload, token) from None


def _user_error(err: errors.BinstarError, upload: _Upload, token: str | None) -> UserError:
    """One line naming the fix for an error a retry cannot cure."""
    server, status = upload.api.domain, _status(err)
    if str(err).startswith("Error uploading package"):  # the storage POST, not the API
        return UserError(
            f"{server}'s storage refused {upload.where} (HTTP {status}): re-run; if it persists, check the server"
        )
    if isinstance(err, errors.Unauthorized) or status == 401:
        return UserError(f"{server} refused the credentials for {upload.owner} (401): {LOGIN_FIX}")
    if status == 403:
        return UserError(
            f"{server} does not let this login write to {upload.owner} (403): "
            f"log in with `anaconda login` as a member of {upload.owner} or set ANACONDA_API_TOKEN"
        )
    detail = redact(getattr(err, "message", None) or err, token)
    return UserError(f"{server} rejected {upload.where} ({detail}): check owner=, labels and the package")


def download(basename: str, into: Path, *, owner: str, token: str | None, timeout: float = 60) -> None:
    """Write OWNER's file `subdir/name-version-build.ext` as the server serves it into `into`,
    through anaconda-client (its session carries the token, for private packages)."""
    configured_url, verify = client_settings()
    api = _client(token, configured_url.rstrip("/"), verify, timeout)
    name, version = _name_version(basename)
    try:
        answer = api.download(owner, name, version, basename)
        if answer is None:
            raise UserError(f"{api.domain} serves no {owner}/{basename}")
        with answer, open(into, "wb") as handle:
            for chunk in answer.iter_content(1 << 20):
                handle.write(chunk)
    except (errors.BinstarError, requests.RequestException) as err:
        raise UserError(f"{api.domain} did not serve {owner}/{basename} ({type(err).__name__})") from None


def _name_version(basename: str) -> tuple[str, str]:
    """`linux-64/btrdb-5.2.2-py36_0.tar.bz2` -> ("btrdb", "5.2.2"): conda file names end in
    -VERSION-BUILD, and names may hold dashes."""
    stem = basename.rsplit("/", 1)[-1].removesuffix(".tar.bz2").removesuffix(".conda")
    name, version, _ = stem.rsplit("-", 2)
    return name, version


def held(name: str, version: str, subdir: str, filename: str, *, owner: str, token: str | None,
         timeout: float = 60) -> str | None:
    """The sha256 (or, from a server that gives none, the md5) of the file OWNER holds, or None."""
    api_url, verify = client_settings()
    api = _client(token, api_url.rstrip("/"), verify, timeout)
    try:
        remote = api.distribution(owner, name, version, f"{subdir}/{filename}")
    except errors.NotFound:
        return None
    except (errors.BinstarError, requests.RequestException) as err:
        raise UserError(f"could not ask {api.domain} about {owner}/{subdir}/{filename} "
                        f"({redact(err, token)}): check the server, or run `doit status` without --remote") from None
    return remote.get("sha256") or remote.get("md5")
