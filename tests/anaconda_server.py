"""A stand-in for anaconda.org on 127.0.0.1: the API anaconda-client's upload speaks, its S3-style
storage, a conda channel view of what it holds, and faults injected by a small scripted API.

Protocol (from binstar_client/__init__.py and commands/upload.py):
  HEAD /                                      the CLI's server check
  GET  /user, /user/{owner}                   who the token is; does the owner exist (404 if not)
  GET|DELETE /dist/{owner}/{pkg}/{ver}/{subdir}/{file}   a file's record (sha256, md5, size, ...)
  GET|POST|DELETE /package/{owner}/{pkg}      and /release/{owner}/{pkg}/{ver}
  POST /stage/{owner}/{pkg}/{ver}/{basename}  → {post_url, form_data, dist_id}; 409 if the file exists
  POST {post_url}                             multipart form (form_data + Content-MD5 + file) → 201
  POST /commit/{owner}/{pkg}/{ver}/{basename} {dist_id} → the file becomes visible
  GET  /download/{owner}/{pkg}/{ver}/{basename}
Channel view, as anaconda.org's conda channels lay it out: /{owner}/{subdir}/X (label main),
/{owner}/label/{label}/{subdir}/X and /{owner}/{label}/{subdir}/X, X = repodata.json or a file.

Faults: `server.inject(point, kind, ...)`, point one of POINTS.  kind "status" answers `status`
(before the work, or after it with after=True: the work is done, the answer is an error); "slow"
sleeps `delay` seconds (before the work, or after it: done, answered late); "reset" (storage)
reads part of the body and resets the connection; "unreachable" (storage) hands out a storage URL
where nothing listens.  Each fault fires `times` times.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

from conda_package_streaming.package_streaming import CondaComponent, stream_conda_component

POINTS = ("head", "user", "dist", "package", "release", "stage", "storage", "commit", "download", "channel")
KINDS = ("status", "slow", "reset", "unreachable")
_WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclasses.dataclass
class Fault:
    point: str
    kind: str = "status"
    status: int = 503
    after: bool = False
    delay: float = 0.0
    times: int = 1
    method: str | None = None


@dataclasses.dataclass
class Dist:
    """One committed file."""

    owner: str
    package: str
    version: str
    basename: str
    data: bytes
    labels: list[str]
    attrs: dict[str, Any]
    dependencies: Any
    index: dict[str, Any]
    dist_id: str
    upload_time: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.owner, self.package, self.version, self.basename

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def subdir(self) -> str:
        return self.basename.split("/", 1)[0]

    @property
    def filename(self) -> str:
        return self.basename.rsplit("/", 1)[-1]


@dataclasses.dataclass
class _Staged:
    owner: str
    package: str
    version: str
    basename: str
    sha256: str
    labels: list[str]
    attrs: dict[str, Any]
    dependencies: Any
    data: bytes | None = None


class _Reply(Exception):
    """Answer the request with this status and JSON error (or raw body)."""

    def __init__(self, status: int, error: str = "", body: bytes | None = None, ctype: str = "application/json"):
        super().__init__(status, error)
        self.status, self.error, self.body, self.ctype = status, error, body, ctype


class AnacondaServer:
    """The server: accounts, tokens, packages and files in memory; start() serves it on 127.0.0.1."""

    def __init__(self) -> None:
        self.accounts: dict[str, set[str]] = {}  # login -> members who may write (users: themselves)
        self.tokens: dict[str, str] = {}  # token -> login
        self.packages: dict[tuple[str, str], dict[str, Any]] = {}
        self.releases: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.dists: list[Dist] = []
        self.staged: dict[str, _Staged] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path, status) of every answered request
        self.package_bytes = 0  # request-body bytes received by storage: what uploads cost
        self.md5_only = False  # answer like a server that gives md5 but no sha256
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._dead = socket.socket()  # bound, never listening: connections to it are refused
        self._dead.bind(("127.0.0.1", 0))

    # -- set-up and inspection, for tests --------------------------------------------------------

    def add_user(self, login: str, token: str | None = None) -> None:
        with self._lock:
            self.accounts.setdefault(login, set()).add(login)
            if token:
                self.tokens[token] = login

    def add_org(self, org: str, members: Iterable[str]) -> None:
        with self._lock:
            self.accounts.setdefault(org, set()).update(members)

    def inject(self, point: str, kind: str = "status", *, status: int = 503, after: bool = False,
               delay: float = 0.0, times: int = 1, method: str | None = None) -> None:
        assert point in POINTS and kind in KINDS, (point, kind)
        with self._lock:
            self.faults.append(Fault(point, kind, status, after, delay, times, method))

    def copies(self, owner: str, basename: str) -> list[Dist]:
        """Every committed file of owner under this basename (`subdir/filename`)."""
        with self._lock:
            return [d for d in self.dists if d.owner == owner and d.basename == basename]

    def seed(self, owner: str, package: str, version: str, basename: str, data: bytes,
             labels: Iterable[str] = ("main",)) -> Dist:
        """Put a file on the server directly, as if uploaded earlier by someone else."""
        with self._lock:
            self.packages.setdefault((owner, package), {"name": package, "owner": owner, "package_types": ["conda"]})
            self.releases.setdefault((owner, package, version), {"version": version})
            dist = Dist(owner, package, version, basename, data, list(labels), {}, {}, _index(basename, data),
                        uuid.uuid4().hex, _now())
            self.dists.append(dist)
            return dist

    def calls(self, *, since: int = 0) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self.log[since:])

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def channel_url(self, owner: str, label: str = "main") -> str:
        return f"{self.url}/{owner}" if label == "main" else f"{self.url}/{owner}/label/{label}"

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> AnacondaServer:
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="anaconda-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self._dead.close()

    def __enter__(self) -> AnacondaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------------

    def _take(self, point: str, method: str, kinds: tuple[str, ...] = KINDS) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.point == point and fault.kind in kinds and fault.method in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- the API ---------------------------------------------------------------------------------

    def _who(self, headers: Any) -> str | None:
        """The login of the request's token; 401 for a token the server does not know."""
        auth = headers.get("Authorization", "")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        login = self.tokens.get(token) if scheme.lower() == "token" else None
        if login is None:
            raise _Reply(401, "Invalid or expired token")
        return login

    def _owner(self, owner: str) -> None:
        if owner not in self.accounts:
            raise _Reply(404, f'User "{owner}" does not exist')

    def _may_write(self, login: str | None, owner: str) -> None:
        if login is None:
            raise _Reply(401, "Authentication required")
        if login not in self.accounts.get(owner, set()):
            raise _Reply(403, f"{login} may not write to {owner}")

    def handle(self, point: str, method: str, parts: list[str], headers: Any, body: bytes) -> tuple[int, bytes, str]:
        """Answer one API request: (status, body, content type)."""
        with self._lock:
            login = self._who(headers) if point not in ("head", "storage", "channel", "download") else None
            handler = getattr(self, f"_{point}")
            return handler(method, parts, login, _json(body) if point not in ("storage",) else body, headers)

    def _head(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        return _ok({"status": "ok"})

    def _user(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        if not parts:
            if login is None:
                raise _Reply(401, "Authentication required")
            parts = [login]
        owner = parts[0]
        self._owner(owner)
        kind = "user" if self.accounts[owner] == {owner} else "org"
        return _ok({"login": owner, "user_type": kind, "name": owner})

    def _package(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        owner, name = parts[0], parts[1]
        self._owner(owner)
        key = (owner, name)
        if method == "GET":
            if key not in self.packages:
                raise _Reply(404, f"package {owner}/{name} does not exist")
            files = [self._dist_json(d) for d in self.dists if (d.owner, d.package) == key]
            return _ok({**self.packages[key], "files": files})
        self._may_write(login, owner)
        if method == "POST":
            if key in self.packages:
                raise _Reply(409, f"package {owner}/{name} exists")
            attrs = (payload or {}).get("public_attrs", {})
            self.packages[key] = {"name": name, "owner": owner, "summary": attrs.get("summary"),
                                  "package_types": attrs.get("package_types", []), "public": payload.get("public")}
            return _ok(self.packages[key])
        if method == "DELETE":
            self.packages.pop(key, None)
            return 201, b"{}", "application/json"
        raise _Reply(405, method)

    def _release(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        owner, name, version = parts[0], parts[1], parts[2]
        self._owner(owner)
        key = (owner, name, version)
        if method == "GET":
            if key not in self.releases:
                raise _Reply(404, f"release {owner}/{name}/{version} does not exist")
            dists = [self._dist_json(d) for d in self.dists if (d.owner, d.package, d.version) == key]
            return _ok({**self.releases[key], "distributions": dists})
        self._may_write(login, owner)
        if method == "POST":
            if (owner, name) not in self.packages:
                raise _Reply(404, f"package {owner}/{name} does not exist")
            self.releases[key] = {"version": version, "package": name, "owner": owner}
            return _ok(self.releases[key])
        if method == "DELETE":
            self.releases.pop(key, None)
            return 201, b"{}", "application/json"
        raise _Reply(405, method)

    def _dist(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        key = owner, name, version, basename = _file(parts)
        self._owner(owner)
        found = [d for d in self.dists if d.key == key]
        if not found:
            raise _Reply(404, f"file {owner}/{name}/{version}/{basename} does not exist")
        if method == "GET":
            return _ok(self._dist_json(found[0]))
        if method == "DELETE":
            self._may_write(login, owner)
            for dist in found:
                self.dists.remove(dist)
            return _ok(self._dist_json(found[0]))
        raise _Reply(405, method)

    def _channels(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        """POST /channels/{owner}/{label} {package, version, basename}: label one file (add_channel)."""
        owner, label = parts[0], parts[1]
        self._owner(owner)
        self._may_write(login, owner)
        key = (owner, payload.get("package"), payload.get("version"), payload.get("basename"))
        found = [d for d in self.dists if d.key == key]
        if method != "POST" or not found:
            raise _Reply(404 if method == "POST" else 405, f"no file {'/'.join(map(str, key))}")
        for dist in found:
            if label not in dist.labels:
                dist.labels.append(label)
        return 201, b"{}", "application/json"

    def _stage(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        owner, name, version, basename = _file(parts)
        self._owner(owner)
        self._may_write(login, owner)
        if (owner, name, version) not in self.releases:
            raise _Reply(404, f"release {owner}/{name}/{version} does not exist")
        if self.copies(owner, basename):
            raise _Reply(409, f"file {basename} already exists for package {name} version {version}")
        dist_id = uuid.uuid4().hex
        self.staged[dist_id] = _Staged(owner, name, version, basename, payload.get("sha256", ""),
                                       list(payload.get("channels") or ["main"]), payload.get("attrs") or {},
                                       payload.get("dependencies"))
        post_url = f"{self.url}/s3/upload"
        if self._take("storage", "POST", ("unreachable",)):
            post_url = f"http://127.0.0.1:{self._dead.getsockname()[1]}/s3/upload"
        form = {"key": f"{owner}/{dist_id}/{basename}", "acl": "private", "success_action_status": "201",
                "Content-Type": "application/octet-stream", "policy": "e30=", "signature": "stand-in"}
        return _ok({"post_url": post_url, "form_data": form, "dist_id": dist_id})

    def _storage(self, method: str, parts: list[str], login: str | None, body: bytes, headers: Any):
        fields = _multipart(headers.get("Content-Type", ""), body)
        key = fields.get("key", b"").decode()
        staged = self.staged.get(key.split("/")[1] if key.count("/") >= 2 else "")
        if staged is None or "file" not in fields:
            raise _Reply(403, body=_s3_error("AccessDenied", "no such upload"), ctype="application/xml")
        data = fields["file"]
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        if fields.get("Content-MD5", b"").decode() != md5:
            raise _Reply(400, body=_s3_error("InvalidDigest", "Content-MD5 mismatch"), ctype="application/xml")
        staged.data = data
        etag = hashlib.md5(data).hexdigest()
        xml = f'<PostResponse><Location>{self.url}/s3/{key}</Location><Key>{key}</Key><ETag>"{etag}"</ETag>'
        return 201, (xml + "</PostResponse>").encode(), "application/xml"

    def _commit(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        key = owner, name, version, basename = _file(parts)
        self._owner(owner)
        self._may_write(login, owner)
        staged = self.staged.get((payload or {}).get("dist_id", ""))
        if staged is None or (staged.owner, staged.package, staged.version, staged.basename) != key:
            raise _Reply(404, "no such staged upload")
        if staged.data is None:
            raise _Reply(400, "the file was never stored: upload it before committing")
        if hashlib.sha256(staged.data).hexdigest() != staged.sha256:
            raise _Reply(400, "the stored file does not match the staged sha256")
        if self.copies(owner, basename):
            raise _Reply(409, f"file {basename} already exists for package {name} version {version}")
        dist_id = payload["dist_id"]
        del self.staged[dist_id]
        self.dists.append(Dist(owner, name, version, basename, staged.data, staged.labels, staged.attrs,
                               staged.dependencies, _index(basename, staged.data), dist_id, _now()))
        return _ok({"url": f"{self.url}/{owner}/{name}", "dist_id": dist_id})

    def _download(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        key = _file(parts)
        for dist in self.dists:
            if dist.key == key:
                return 200, dist.data, "application/octet-stream"
        raise _Reply(404, "no such file")

    def _channel(self, method: str, parts: list[str], login: str | None, payload: Any, headers: Any):
        if len(parts) == 3:  # /{owner}/{subdir}/X is label main
            owner, label, subdir, leaf = parts[0], "main", parts[1], parts[2]
        elif len(parts) == 5 and parts[1] == "label":
            owner, label, subdir, leaf = parts[0], parts[2], parts[3], parts[4]
        elif len(parts) == 4:
            owner, label, subdir, leaf = parts
        else:
            raise _Reply(404, "not a channel path")
        self._owner(owner)
        held = [d for d in self.dists if d.owner == owner and d.subdir == subdir and label in d.labels]
        if leaf == "repodata.json":
            repodata: dict[str, Any] = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": {},
                                        "repodata_version": 1}
            for dist in held:
                group = "packages.conda" if dist.filename.endswith(".conda") else "packages"
                repodata[group][dist.filename] = {**dist.index, "md5": dist.md5, "sha256": dist.sha256,
                                                  "size": len(dist.data)}
            return _ok(repodata)
        for dist in held:
            if dist.filename == leaf:
                return 200, dist.data, "application/octet-stream"
        raise _Reply(404, f"{leaf} is not in {owner}/{label}/{subdir}")

    def _dist_json(self, dist: Dist) -> dict[str, Any]:
        host = self.url.split(":", 1)[1]  # anaconda.org answers scheme-relative URLs
        record = {
            "basename": dist.basename, "version": dist.version, "owner": dist.owner, "package": dist.package,
            "full_name": f"{dist.owner}/{dist.package}/{dist.version}/{dist.basename}",
            "distribution_type": "conda", "type": "conda", "labels": list(dist.labels), "attrs": dist.attrs,
            "dependencies": dist.dependencies, "md5": dist.md5, "sha256": dist.sha256, "size": len(dist.data),
            "upload_time": dist.upload_time, "ndownloads": 0, "description": None, "_id": dist.dist_id,
            "download_url": f"{host}/download/{dist.owner}/{dist.package}/{dist.version}/{dist.basename}",
        }
        if self.md5_only:
            del record["sha256"]
        return record


# -- the HTTP side ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions use it
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms delayed-ACK stalls
    app: AnacondaServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, ValueError):
            pass  # the client went away (a slow answer after its timeout, or a reset we caused)

    def do_HEAD(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        app, method = self.app, self.command
        split = urlsplit(self.path)
        segments = [unquote(s) for s in split.path.split("/") if s]
        point, parts = _route(segments)
        fault = app._take(point, method, ("status", "slow", "reset"))
        if fault and fault.kind == "reset":
            self._reset()
            return
        body = self._read_body()
        if point == "storage":
            with app._lock:
                app.package_bytes += len(body)
        if fault and not fault.after:
            if fault.kind == "slow":
                time.sleep(fault.delay)
            else:
                self._answer(point, fault.status, *_error_body(point, f"injected fault: HTTP {fault.status}"))
                return
        try:
            status, payload, ctype = app.handle(point, method, parts, self.headers, body)
        except _Reply as reply:
            status = reply.status
            payload, ctype = (reply.body, reply.ctype) if reply.body is not None else _error_body(point, reply.error)
        if fault and fault.after:
            if fault.kind == "slow":
                time.sleep(fault.delay)
            else:
                status, (payload, ctype) = fault.status, _error_body(point, f"injected fault: HTTP {fault.status}")
        self._answer(point, status, payload, ctype)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        """Read part of the request body, then reset the connection (RST, not a clean close)."""
        length = int(self.headers.get("Content-Length") or 0)
        got = self.rfile.read(max(1, length // 2)) if length else b""
        with self.app._lock:
            self.app.package_bytes += len(got)
            self.app.log.append((self.command, self.path, 0))
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _answer(self, point: str, status: int, payload: bytes, ctype: str) -> None:
        with self.app._lock:
            self.app.log.append((self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _route(segments: list[str]) -> tuple[str, list[str]]:
    if not segments:
        return "head", []
    first, rest = segments[0], segments[1:]
    if first == "s3":
        return "storage", rest
    if first in ("user", "dist", "package", "release", "stage", "commit", "download", "channels"):
        return first, rest
    return "channel", segments


def _file(parts: list[str]) -> tuple[str, str, str, str]:
    """owner, package, version, basename (`subdir/filename`) from a /dist, /stage, ... path."""
    if len(parts) < 4:
        raise _Reply(404, "expected /{owner}/{package}/{version}/{basename}")
    return parts[0], parts[1], parts[2], "/".join(parts[3:])


def _ok(data: Any) -> tuple[int, bytes, str]:
    return 200, json.dumps(data).encode(), "application/json"


def _error_body(point: str, message: str) -> tuple[bytes, str]:
    if point == "storage":  # S3 answers XML, and anaconda-client parses it
        return _s3_error("InternalError", message), "application/xml"
    return json.dumps({"error": message}).encode(), "application/json"


def _s3_error(code: str, message: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else {}
    except ValueError:
        raise _Reply(400, "the body is not JSON") from None


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Fields of a multipart/form-data body by name (values as bytes)."""
    marker = "boundary="
    if marker not in content_type:
        raise _Reply(400, body=_s3_error("MalformedPOSTRequest", "not multipart"), ctype="application/xml")
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        disposition = next((line for line in lines if line.lower().startswith(b"content-disposition")), b"")
        name = disposition.split(b'name="', 1)[1].split(b'"', 1)[0].decode() if b'name="' in disposition else ""
        fields[name] = value[:-2] if value.endswith(b"\r\n") else value
    return fields


def _index(basename: str, data: bytes) -> dict[str, Any]:
    """The package's own info/index.json, read from the stored bytes as a channel indexer does."""
    stream = stream_conda_component(basename.rsplit("/", 1)[-1], io.BytesIO(data), CondaComponent.info)
    for tar, member in stream:
        if member.name == "info/index.json":
            return json.loads(tar.extractfile(member).read())
    return {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
