"""Guards for values that come from files or users and become paths, log lines or numbers.

- ``plain_name``: a name read from a checkpoint, card or manifest that becomes a file name must be a plain file name.
- ``redact_url`` / ``redact``: credentials in URLs (``user:pass@``) and signed-URL secrets never reach a log,
  a manifest or a table.
- ``check_number``: NaN, infinity and out-of-range numbers are usage errors (exit 2) before any work.
"""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from faceexpr_cli.errors import CheckpointError, FxError, UsageError

_PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def is_plain_name(value: object) -> bool:
    return isinstance(value, str) and bool(_PLAIN.fullmatch(value)) and value not in (".", "..")


def plain_name(value: object, what: str, *, source: str | None = None,
               error: type[FxError] = CheckpointError) -> str:
    """``value`` if it is a plain file name (letters, digits, ``._-``; no separator, no leading dot), else ``error``."""
    if is_plain_name(value):
        return value  # type: ignore[return-value]
    where = f" in {source}" if source else ""
    raise error(f"refusing {what} {value!r}{where}: not a plain file name",
                "names that become files may use only letters, digits, '.', '_' and '-', and not start with '.'")


# query keys whose values are secrets in signed URLs (S3, GCS, Azure SAS, generic tokens)
SECRET_KEYS = frozenset({
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    "signature", "sig", "token", "access_token", "key", "api_key", "apikey", "password", "secret", "se", "sv_sig",
})


def _secret_key(key: str) -> bool:
    k = key.lower()
    return k in SECRET_KEYS or k.endswith(("signature", "token", "secret", "password"))


def redact_url(url: str) -> str:
    """``url`` with the password of its user-info and the values of secret query keys replaced by ``***``."""
    if not isinstance(url, str) or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^/@:\s]*):[^/@\s]*@", r"//\1:***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_key(k) for k, _ in pairs):
            query = "&".join(f"{k}=***" if _secret_key(k) else (f"{k}={v}" if v or "=" in query else k)
                             for k, v in pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact(text: object) -> object:
    """Every URL inside free text (an error message, a log line) redacted; other values are returned as they are."""
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def check_number(value, flag: str, *, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None, below: float | None = None, hint: str | None = None):
    """``value`` if it is a finite number in range (``minimum``/``maximum`` inclusive, ``above``/``below``
    exclusive), else a UsageError naming ``flag``. ``None`` passes (an option left out)."""
    if value is None:
        return value
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if above is not None:
        bounds.append(f"> {above:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    if below is not None:
        bounds.append(f"< {below:g}")
    want = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} must be {want}, got {value!r}", hint) from None
    ok = math.isfinite(x)
    ok = ok and (minimum is None or x >= minimum) and (maximum is None or x <= maximum)
    ok = ok and (above is None or x > above) and (below is None or x < below)
    if not ok:
        raise UsageError(f"{flag} must be {want}, got {value!r}", hint)
    return value
