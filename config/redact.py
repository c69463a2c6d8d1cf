"""Redact credentials from URLs before they are printed (errors, logs, reports).

Rules (:func:`redact_url`):

1. The scheme, host, port and path are kept: they say *where* without saying *how to get in*.
2. Userinfo: with a password, the user name is kept and the password becomes ``***``
   (``https://u:***@host``); a user name alone is a token in many APIs
   (``https://TOKEN@host``), so it becomes ``***`` as a whole.
3. Query: every key is kept and every value becomes ``***`` (``?api_key=***&org=***``); a
   part without ``=`` is a bare value and becomes ``***``.
4. A fragment becomes ``***`` (tokens travel there too, e.g. ``#access_token=...``).
5. Text that cannot be taken apart as a URL keeps only what precedes the first ``@``,
   ``?`` or ``#`` that could start a secret; nothing after it is printed.

:func:`redact_urls` applies :func:`redact_url` to every ``scheme://...`` inside a longer
text (an exception message, a description). Neither function raises.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{}]+")


def redact_url(url: str) -> str:
    """``url`` with its password, query values and fragment replaced by ``***``.

    ``https://u:pw@host:9090/prom?api_key=SECRET&x`` becomes
    ``https://u:***@host:9090/prom?api_key=***&***``. Never raises; see the module rules.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        _ = parts.hostname, parts.port  # ValueError on a netloc like "[::1" or "h:x"
    except ValueError:
        return _fallback(text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}"
        else:
            netloc = f"{MASK}@{hostport}"
    query = (
        "&".join(_mask_query_part(part) for part in parts.query.split("&")) if parts.query else ""
    )
    fragment = MASK if parts.fragment else ""
    rebuilt = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    if parts.query == "" and text.rstrip().endswith("?"):
        rebuilt += "?"  # keep a trailing '?' as written (urlunsplit drops it)
    return rebuilt


def redact_urls(text: str) -> str:
    """``text`` with every ``scheme://...`` in it passed through :func:`redact_url`."""

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(".,;:!")  # sentence punctuation after a URL is not part of it
        return redact_url(url) + found[len(url) :]

    return _URL_IN_TEXT.sub(one, str(text))


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of ``url`` that :func:`redact_url` hides (password, a lone user name,
    query values, fragment), longest first, for scrubbing messages that may quote them
    in another form. Parts shorter than 4 characters are left out: replacing every
    ``1`` in a message would garble it without protecting anything."""
    text = str(url)
    rest = text.partition("://")[2] or text
    userinfo = rest.rpartition("@")[0].split("/")[-1] if "@" in rest else ""
    found = userinfo.split(":", 1) if userinfo else []
    tail = re.split(r"[?#]", rest, maxsplit=1)[1] if re.search(r"[?#]", rest) else ""
    for part in re.split(r"[&#]", tail):
        found.append(part.split("=", 1)[1] if "=" in part else part)
    if ":" in userinfo:
        found.remove(userinfo.split(":", 1)[0])  # the user name beside a password is kept
    return tuple(sorted({s for s in found if len(s) >= 4}, key=len, reverse=True))


def _mask_query_part(part: str) -> str:
    if "=" not in part:
        return MASK if part else part
    key = part.split("=", 1)[0]
    return f"{key}={MASK}"


def _fallback(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    userinfo = ""
    if "@" in rest:
        userinfo, rest = f"{MASK}@", rest.rpartition("@")[2]
    cuts = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    if cuts:
        cut = min(cuts)
        rest = f"{rest[:cut]}{rest[cut]}{MASK}"
    return f"{scheme}{sep}{userinfo}{rest}"
