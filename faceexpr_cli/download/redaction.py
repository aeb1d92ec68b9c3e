"""Keeping an item's URL secrets (``user:PASSWORD@``, signed-URL signatures and tokens) out of everything fx writes.

``faceexpr_cli.safety.redact`` catches secrets inside whole URLs; libraries also quote pieces of a URL without
its scheme (``Max retries exceeded with url: /a.bin?token=...``), so a ``Scrubber`` also knows the literal secret
values of one item's URL and blanks them wherever they appear. The real URL is only ever used for fetching.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from faceexpr_cli.safety import _secret_key, redact, redact_url

MASK = "***"
_MIN_SECRET = 3  # shorter values would blank unrelated text (and are no real secret)


def url_secrets(url: str) -> list[str]:
    """The secret strings inside ``url``: its password and the values of secret query keys, raw and decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: set[str] = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        if ":" in userinfo:
            found.add(userinfo.split(":", 1)[1])
    for raw in parts.query.split("&"):
        key, _, value = raw.partition("=")
        if value and _secret_key(unquote(key)):
            found.add(value)
    for _key, value in parse_qsl(parts.query, keep_blank_values=True):
        if value and _secret_key(_key):
            found.add(value)
    more = {unquote(s) for s in found} | {quote(s, safe="") for s in found}
    return sorted((s for s in found | more if len(s) >= _MIN_SECRET), key=len, reverse=True)


class Scrubber:
    """Blanks the secrets of one URL (and any URL's secrets) in text and in status records."""

    def __init__(self, *urls: str):
        self.secrets = sorted({s for u in urls if u for s in url_secrets(u)}, key=len, reverse=True)

    def text(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = redact(value)
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        for key, value in record.items():
            if isinstance(value, str):
                record[key] = redact_url(value) if key in ("url", "final_url", "key") else value
                record[key] = self.text(record[key])
            elif isinstance(value, list):
                record[key] = [self.text(v) for v in value]
        return record
