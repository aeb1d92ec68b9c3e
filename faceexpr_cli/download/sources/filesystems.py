"""Any fsspec URL (``s3://``, ``gs://``, ``file://``, local paths, ...): streamed into the ``.part`` with resume.

The object's size comes from ``fs.info`` before reading, so a short read is caught like a truncated HTTP body,
and a ``.part`` from an earlier attempt continues with a seek when its sidecar (``resume.py``) shows the same
object (ETag or modification time, and size); any other ``.part`` starts over. Cloud protocols need their fsspec driver
(``pip install faceexpr[s3]`` or ``[gcs]``); credentials and endpoints come from the usual environment or from
``--storage-option s3.endpoint_url=...``.
"""

from __future__ import annotations

from faceexpr_cli.download import resume
from faceexpr_cli.download.errors import FetchError, Interrupted, PermanentError, TransientError
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.download.sources import SOURCES, Fetched, FetchJob
from faceexpr_cli.download.verify import HashingWriter, resume_digest
from faceexpr_cli.errors import DependencyError

_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


def open_fs(url: str, options: DownloadOptions):
    """(filesystem, path) for a URL, with the protocol's storage options; a missing driver names its extra."""
    import fsspec

    protocol = url.split("://", 1)[0] if "://" in url else "file"
    try:
        return fsspec.core.url_to_fs(url, **options.for_protocol(protocol))
    except ImportError as exc:
        extra = _EXTRAS.get(protocol)
        hint = f"pip install 'faceexpr[{extra}]'" if extra else f"install the fsspec driver for {protocol}://"
        raise DependencyError(f"no filesystem driver for {protocol}:// ({exc})", hint) from exc
    except ValueError as exc:
        raise PermanentError("bad_url", f"{exc}") from exc


def fs_error(exc: Exception, url: str) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return PermanentError("not_found", "no such file or object")
    if isinstance(exc, (PermissionError, IsADirectoryError)):
        return PermanentError("forbidden", f"{type(exc).__name__}")
    return TransientError("storage", f"{type(exc).__name__}: {exc}")


def validator_of(info: dict, url: str) -> resume.Validator:
    """What identifies this version of an object: its ETag, else its modification time, and its size."""
    etag = info.get("ETag") or info.get("etag")
    changed = info.get("LastModified") or info.get("last_modified") or info.get("mtime") or info.get("updated")
    size = info.get("size")
    return resume.Validator(resume.url_digest(url), str(etag) if etag else None,
                            str(changed) if changed is not None else None, int(size) if size is not None else None)


@SOURCES.register("fsspec")
class FsspecSource:
    part_is_dir = False

    def __init__(self, options: DownloadOptions):
        self.options = options

    def fetch(self, job: FetchJob) -> Fetched:
        url, part = job.item.url, job.part
        fs, path = open_fs(url, self.options)
        try:
            info = fs.info(path)
        except Exception as exc:  # drivers raise FileNotFoundError, PermissionError or their own client errors
            raise fs_error(exc, url) from exc
        if info.get("type") == "directory":
            raise PermanentError("not_a_file", "is a directory")
        size = info.get("size")
        if job.item.size is not None and size is not None and size != job.item.size:
            raise PermanentError("size_mismatch", f"has {size} bytes, expected {job.item.size}")
        have = part.stat().st_size if part.exists() else 0
        now = validator_of(info, url)
        saved = resume.usable(part, url, have, job.item.sha256 is not None)
        if have and (saved is None or not saved.same_file(now) or (size is not None and have > size)):
            resume.restart(part)  # not known to be a prefix of this object
            have = 0
        if not have:
            resume.write(part, now)
        digest = resume_digest(part, have, self.options.wants_hash(job.item.sha256))
        fetched = Fetched([part], 0, have, None, url, None, info.get("ETag") or info.get("etag"))
        with open(part, "r+b" if have else "wb") as out:
            out.seek(have)
            writer = HashingWriter(out, digest, None if size is None else size - have, self.options.chunk)
            try:
                with fs.open(path, "rb") as src:
                    if have:
                        src.seek(have)
                    while n := writer.fill(src.readinto):
                        job.meter.add(n)
            except (FetchError, Interrupted):
                raise
            except Exception as exc:
                raise fs_error(exc, url) from exc
            finally:
                fetched.transferred = writer.written
                fetched.sha256 = writer.close()
        if size is not None and have + writer.written != size:
            raise TransientError("truncated", f"got {have + writer.written} of {size} bytes")
        return fetched
