"""What a ``.part`` is a prefix of: a small sidecar ``<name>.part.validator`` written before the first body byte.

A ``.part`` is appended to only when its sidecar says it came from the same URL and the server still has the
same file: the sidecar's ETag (else Last-Modified) goes into ``If-Range`` (the server answers 206 for the same
file, 200 for a changed one), and a 206 whose ETag, Last-Modified or total size differs from the sidecar is not
spliced either. A ``.part`` without a sidecar (another tool's, an older fx's, a file copied there) or with
another URL's sidecar is fetched again from zero. Without any validator from the server, a resume is allowed only
when the row's sha256 will check the result (a mismatch then fetches once more from zero).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SUFFIX = ".validator"


def sidecar(part: Path) -> Path:
    return part.with_name(part.name + SUFFIX)


def is_sidecar(name: str) -> bool:
    return name.endswith(".part" + SUFFIX)


def url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]  # the URL itself may hold secrets: never stored


@dataclass
class Validator:
    url: str  # url_digest of the URL the bytes came from
    etag: str | None = None
    last_modified: str | None = None
    size: int | None = None  # the whole file's size, when the server said

    @property
    def strong_etag(self) -> str | None:
        return self.etag if self.etag and not self.etag.startswith("W/") else None

    def if_range(self) -> str | None:
        """The value for If-Range: a strong ETag, else the Last-Modified date (RFC 9110 13.1.5)."""
        return self.strong_etag or self.last_modified

    def same_file(self, other: Validator) -> bool:
        """False when a validator both sides know differs; sizes count only when neither ETag nor date is
        comparable (a server whose Content-Length lied once still has the same ETag)."""
        if self.url != other.url:
            return False
        pairs = [(a, b) for a, b in ((self.etag, other.etag), (self.last_modified, other.last_modified))
                 if a is not None and b is not None]
        if not pairs and self.size is not None and other.size is not None:
            pairs = [(self.size, other.size)]
        return all(a == b for a, b in pairs)


def read(part: Path) -> Validator | None:
    try:
        data = json.loads(sidecar(part).read_text())
        return Validator(**{k: data.get(k) for k in ("url", "etag", "last_modified", "size")})
    except (OSError, ValueError, TypeError):
        return None


def write(part: Path, validator: Validator) -> None:
    path = sidecar(part)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(validator)))
    os.replace(tmp, path)


def clear(part: Path) -> None:
    with contextlib.suppress(OSError):
        sidecar(part).unlink()


def usable(part: Path, url: str, have: int, verified: bool) -> Validator | None:
    """The sidecar of a ``.part`` that may be resumed, else None (the caller starts from zero)."""
    if not have:
        return None
    saved = read(part)
    if saved is None or saved.url != url_digest(url):
        return None
    if saved.if_range() is None and not verified:
        return None
    return saved


def restart(part: Path) -> None:
    """Throw a ``.part`` and its sidecar away: the bytes are not known to belong to this file."""
    part.unlink(missing_ok=True)
    clear(part)
