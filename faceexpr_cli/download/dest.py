"""Where finished files go: a local directory (renamed into place) or a bucket URL (uploaded through fsspec).

``.part`` files always live on a local disk: next to the final file for a local destination, so that the
rename is atomic, or in a staging directory for a bucket (``--staging``, default under ``FX_HOME``), because an
object store cannot append. A bucket object appears only once its upload completes, so nothing partial is ever
visible under a final name there either.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from faceexpr_cli.download import resume
from faceexpr_cli.download.errors import TransientError
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.paths import fx_home
from faceexpr_cli.runlock import ensure_out_dir


def is_remote(dest: str) -> bool:
    return "://" in dest and not dest.startswith("file://")


class Destination:
    def __init__(self, dest: str | Path, options: DownloadOptions | None = None):
        options = options or DownloadOptions()
        self.url = str(dest).rstrip("/")
        self.remote = is_remote(self.url)
        if self.remote:
            from faceexpr_cli.download.sources.filesystems import open_fs

            self.fs, self.root = open_fs(self.url, options)
            self.protocol = self.url.split("://", 1)[0]
            digest = hashlib.sha1(self.url.encode()).hexdigest()[:12]
            self.local = Path(options.staging or fx_home() / "download-staging" / digest).expanduser()
        else:
            self.fs, self.root = None, self.url.removeprefix("file://")
            self.local = Path(self.root).expanduser()
        ensure_out_dir(self.local, "--staging" if self.remote else "--out")  # a file there is a usage error

    def __str__(self) -> str:
        return self.url if self.remote else str(self.local)

    def part(self, name: str) -> Path:
        return self.local / f"{name}.part"

    def final(self, name: str) -> str:
        return f"{self.root}/{name}" if self.remote else str(self.local / name)

    def listing(self) -> dict[str, int]:
        """Finished files already at the destination (name -> size), in one listing call."""
        if not self.remote:
            return {e.name: e.stat().st_size for e in os.scandir(self.local)
                    if e.is_file() and not e.name.endswith(".part") and not resume.is_sidecar(e.name)}
        try:
            entries = self.fs.ls(self.root, detail=True, refresh=True)
        except FileNotFoundError:
            return {}
        return {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0) for e in entries if e.get("type") == "file"}

    def commit(self, src: Path, name: str) -> str:
        """Give a verified local file its final name; returns where it now is."""
        if not self.remote:
            target = self.local / name
            if src != target:
                os.replace(src, target)
            return str(target)
        target = self.final(name)
        try:
            self.fs.put_file(str(src), target)
        except Exception as exc:  # drivers raise their own client errors; the verified .part stays for a retry
            raise TransientError("upload", f"upload to {self.protocol}://{target} failed: {exc}") from exc
        src.unlink()
        return f"{self.protocol}://{target}"

    def discard(self, part: Path) -> None:
        """Remove an item's temporary file or staging directory (a permanent failure leaves nothing)."""
        if part.is_dir():
            shutil.rmtree(part, ignore_errors=True)
        else:
            part.unlink(missing_ok=True)
        resume.clear(part)

    def discard_if_empty(self, part: Path) -> None:
        """After a transient failure keep only a ``.part`` that holds something to resume from."""
        if part.is_dir():
            if not any(p.stat().st_size for p in part.rglob("*") if p.is_file()):
                shutil.rmtree(part, ignore_errors=True)
        elif part.exists() and part.stat().st_size == 0:
            part.unlink()
        if not part.exists():
            resume.clear(part)

    def read_bytes(self, name: str) -> bytes | None:
        try:
            if self.remote:
                return self.fs.cat_file(self.final(name))
            return (self.local / name).read_bytes()
        except FileNotFoundError:
            return None

    def publish(self, local: Path) -> None:
        """Copy a status file written locally to a bucket destination (a local one already has it in place)."""
        if self.remote and local.exists():
            self.fs.put_file(str(local), self.final(local.name))
