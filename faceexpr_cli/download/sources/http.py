"""HTTP(S) files: resume with Range requests, follow redirects, check Content-Length, hash while streaming.

A ``.part`` is continued with ``Range: bytes=N-`` only when its sidecar (``resume.py``) says it came from this URL;
the sidecar's ETag (else Last-Modified) goes into ``If-Range``. The reply decides what happens: 206 with the same
validators appends from N, 200 (the file changed, or the server ignores ranges) starts over, 416 with the full
size and the same validators means the part already holds the whole file. A ``.part`` without a sidecar, or a
206 for another file, is fetched again from zero, never spliced. A body shorter than its Content-Length is a
transient "truncated" error: the bytes that did arrive stay in the ``.part`` for the next attempt.
"""

from __future__ import annotations

import http.client
import os
import re
import threading

import requests
import urllib3
from requests.adapters import HTTPAdapter

from faceexpr_cli import __version__
from faceexpr_cli.console import log
from faceexpr_cli.download import resume
from faceexpr_cli.download.errors import PermanentError, TransientError, http_error
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.download.sources import SOURCES, Fetched, FetchJob
from faceexpr_cli.download.verify import HashingWriter, resume_digest, sha256_file

_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_TOTAL_ONLY = re.compile(r"bytes\s+\*/(\d+)")


class _Restart(Exception):
    """The server's reply shows the ``.part`` is not a prefix of its file: drop it and ask for all of it."""


def _network_error(exc: Exception) -> Exception:
    """requests/urllib3 exceptions as transient or permanent fetch errors."""
    name = type(exc).__name__
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return PermanentError("bad_url", f"{exc}")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return PermanentError("redirect_loop", "too many redirects")
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentError("tls", f"TLS error ({exc})")
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        return TransientError("timeout", "timed out")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in str(exc):
        return TransientError("truncated", "connection closed mid-body")
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError, OSError)):
        return TransientError("connection", f"connection failed ({name})")
    return TransientError("network", f"{name}: {exc}")


@SOURCES.register("http")
class HttpSource:
    """http:// and https:// files, one requests.Session (connection pool) per worker thread."""

    part_is_dir = False

    def __init__(self, options: DownloadOptions):
        self.options = options
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"User-Agent": f"fx/{__version__}", "Accept-Encoding": "identity"})
            if not _PROXY_VARS & {k.lower() for k in os.environ}:
                # Without proxy variables, skip requests' per-request environment scan (~1 ms a file);
                # keep the CA bundle it would have read from there.
                session.trust_env = False
                session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            self._local.session = session
        return session

    def fetch(self, job: FetchJob) -> Fetched:
        url, part, item = job.item.url, job.part, job.item
        have = part.stat().st_size if part.exists() else 0
        saved = resume.usable(part, url, have, item.sha256 is not None)
        if have and saved is None:
            log.debug("%s: .part has no matching validator; starting from zero", item.name)
            resume.restart(part)
            have = 0
        for _ in range(2):  # a second request only after the server showed the .part is not its file
            headers = {}
            if have:
                headers["Range"] = f"bytes={have}-"
                if saved is not None and saved.if_range():
                    headers["If-Range"] = saved.if_range()
            try:
                resp = self._session().get(url, headers=headers, stream=True,
                                           timeout=(min(10.0, self.options.timeout), self.options.timeout))
            except requests.RequestException as exc:
                raise _network_error(exc) from exc
            with resp:
                try:
                    return self._receive(job, resp, have, saved)
                except _Restart:
                    resume.restart(part)
                    have, saved = 0, None
        raise TransientError("stale_part", "the server kept answering a range of another file")

    def _receive(self, job: FetchJob, resp: requests.Response, have: int,
                 saved: resume.Validator | None) -> Fetched:
        url, part, item = job.item.url, job.part, job.item
        status = resp.status_code
        etag = resp.headers.get("ETag")
        if status == 416 and have:
            total = _TOTAL_ONLY.search(resp.headers.get("Content-Range", ""))
            if total and int(total.group(1)) == have and saved is not None and saved.same_file(
                    resume.Validator(saved.url, etag, resp.headers.get("Last-Modified"), have)):
                digest = sha256_file(part).hexdigest() if self.options.wants_hash(item.sha256) else None
                return Fetched([part], 0, have, digest, resp.url, 206, etag)  # the part already holds everything
            raise _Restart()
        if status >= 400:
            raise http_error(status, url, resp.headers.get("Retry-After"))
        length = resp.headers.get("Content-Length")
        body = int(length) if length and length.isdigit() else None
        start, total = 0, body
        if status == 206:
            m = _CONTENT_RANGE.search(resp.headers.get("Content-Range", ""))
            total = int(m.group(3)) if m and m.group(3) != "*" else None
            now = resume.Validator(resume.url_digest(url), etag, resp.headers.get("Last-Modified"), total)
            if not m or int(m.group(1)) != have or saved is None or not saved.same_file(now):
                raise _Restart()  # another range, or the file changed: never splice it onto this .part
            start = have
        else:  # 200: the whole file, whatever was asked; its validator goes next to the .part before any byte
            resume.write(part, resume.Validator(resume.url_digest(url), etag, resp.headers.get("Last-Modified"),
                                                body))
        if item.size is not None and total is not None and total != item.size:
            raise PermanentError("size_mismatch", f"server has {total} bytes, expected {item.size}")
        digest = resume_digest(part, start, self.options.wants_hash(item.sha256))
        fetched = Fetched([part], 0, start, None, resp.url, status, etag)
        mode = "r+b" if start else "wb"
        with open(part, mode) as fh:
            if start:
                fh.seek(start)
                fh.truncate()
            writer = HashingWriter(fh, digest, body, self.options.chunk)
            try:
                self._stream(job, resp, writer)
            except requests.RequestException as exc:
                raise _network_error(exc) from exc
            except OSError as exc:
                if isinstance(exc, (ConnectionError, TimeoutError)) or "IncompleteRead" in repr(exc):
                    raise _network_error(exc) from exc
                raise
            finally:
                fetched.transferred = writer.written
                fetched.sha256 = writer.close()
        if body is not None and writer.written != body:
            raise TransientError("truncated", f"got {writer.written} of {body} body bytes")
        return fetched

    def _stream(self, job: FetchJob, resp: requests.Response, writer: HashingWriter) -> None:
        meter = job.meter
        # urllib3 hands out a new bytes object per read; reading through its http.client response into reused
        # buffers is what keeps one big file at curl's speed. Anything unusual takes the plain public path.
        fp = getattr(resp.raw, "_fp", None)
        direct = isinstance(fp, http.client.HTTPResponse) and resp.headers.get("Content-Encoding", "identity") == "identity"
        try:
            if direct:
                while n := writer.fill(fp.readinto):
                    meter.add(n)
                resp.raw.release_conn()  # the body is read to its end: keep the connection for the next file
            else:
                while block := resp.raw.read1(self.options.chunk, decode_content=False):
                    writer.write(block)
                    meter.add(len(block))
        except (TimeoutError, urllib3.exceptions.ReadTimeoutError) as exc:
            raise TransientError("timeout", f"no data for {self.options.timeout:g} s") from exc
        except (http.client.HTTPException, ConnectionError, urllib3.exceptions.HTTPError) as exc:
            raise TransientError("truncated", f"connection closed mid-body ({type(exc).__name__})") from exc
