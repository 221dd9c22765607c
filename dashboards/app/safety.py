"""What the app does with text it did not write: alert annotations, notes, authors.

Alert annotations arrive from whoever could post to the receiver (or write a rule),
so the app never renders them as Markdown or HTML: they are shown as plain text,
and a link (``runbook_url``) only when it is an absolute ``http(s)`` URL.

>>> safe_link("https://runbooks.example/DriftdModelDrift")
'https://runbooks.example/DriftdModelDrift'
>>> safe_link("javascript:alert(document.cookie)") is None
True
>>> safe_link(" JaVaScRiPt:alert(1)") is None, safe_link("//evil.example/x") is None
(True, True)
>>> note_author({"X-Forwarded-User": "alice@example.com"}, "X-Forwarded-User", "mallory")
'alice@example.com'
>>> note_author({}, None, " bob ")
'bob'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from dashboards.app.params import AppError

__all__ = ["MAX_LINK_CHARS", "check_note", "note_author", "plain", "safe_link"]

MAX_LINK_CHARS = 2048
# Markdown and HTML specials, escaped so that st.markdown shows them as typed.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#!|~$&])")


def safe_link(url: object) -> str | None:
    """``url`` when it is an absolute http(s) URL with a host; None otherwise."""
    if not isinstance(url, str) or len(url) > MAX_LINK_CHARS:
        return None
    text = url.strip()
    if any(c.isspace() or not c.isprintable() for c in text):
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


def plain(text: object) -> str:
    """``text`` escaped for ``st.markdown``: no links, images, HTML or emphasis from it."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def note_author(headers: Mapping[str, str], header: str | None, typed: str) -> str:
    """Who writes a note: the trusted proxy header when configured, else the typed name.

    Raises
    ------
    AppError
        When ``app.author_header`` is set but the request does not carry it (the app
        is reached around the proxy, which must not let anyone write as anyone).
    """
    if header:
        value = next((v for k, v in headers.items() if k.lower() == header.lower()), None)
        if not value or not value.strip():
            raise AppError(
                f"notes need the {header} header from the sign-in proxy (app.author_header); "
                "open the app through the proxy"
            )
        return value.strip()[:128]
    return typed.strip()


def check_note(text: str, max_chars: int) -> str:
    """The note's text, or AppError naming the limit (``app.max_note_chars``)."""
    if len(text) > max_chars:
        raise AppError(f"note: {len(text)} characters, at most {max_chars} (app.max_note_chars)")
    return text
