"""Every page says so when it was opened on another origin than PUBLIC_BASE_URL.

Plaid's Hosted Link and SnapTrade's portal send the person back to PUBLIC_BASE_URL (built
from the setting, never from the request). Opened anywhere else (another port, ``localhost``
for ``127.0.0.1``, http for https), the person would finish linking on an address with no
session, or with nothing listening ("This site can't be reached"), and nothing would say
why. So each page shows a short notice naming both origins and the setting, and the log
says it once per origin in each process, the first time a page is served on it.

The origin is the request's as the browser sees it: scheme and ``Host``, with
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` believed only from the TRUSTED_PROXIES that
``create_app`` lets ProxyFix read. A default port (80, 443) is the same as none. With no
trusted proxy, plain http where PUBLIC_BASE_URL is https is taken for a TLS proxy in front:
only the host and port are compared.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, has_request_context, request

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
# Anybody can send any Host header: past this many, new origins are no longer remembered
# or logged one by one (each still gets its notice).
MAX_LOGGED_ORIGINS = 32
MAX_SHOWN_LENGTH = 100


def origin_of(scheme: str, netloc: str) -> str:
    """``scheme://host[:port]``, lower case, without a default port; an unreadable host
    comes back as it was sent, cut short."""
    scheme = scheme.lower()
    raw = f"{scheme}://{netloc}"
    try:
        parts = urlsplit(raw)
        host, port = parts.hostname, parts.port
    except ValueError:
        return raw.lower()[:MAX_SHOWN_LENGTH]
    if not host:
        return raw.lower()[:MAX_SHOWN_LENGTH]
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        shown += f":{port}"
    return f"{scheme}://{shown}"[:MAX_SHOWN_LENGTH]


def public_origin(public_base_url: str) -> str:
    """PUBLIC_BASE_URL's origin (it holds nothing else, a trailing slash at most)."""
    parts = urlsplit(public_base_url)
    return origin_of(parts.scheme, parts.netloc)


class OriginLog:
    """Which wrong origins this process has logged: each once, a bounded number."""

    def __init__(self, limit: int = MAX_LOGGED_ORIGINS) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._full = False
        self._lock = threading.Lock()

    def first_time(self, origin: str) -> bool:
        with self._lock:
            if origin in self._seen or self._full:
                return False
            if len(self._seen) >= self.limit:
                self._full = True
                log.warning(
                    "pages were served on more than %d origins other than PUBLIC_BASE_URL; "
                    "further ones are not logged",
                    self.limit,
                )
                return False
            self._seen.add(origin)
            return True


def origin_notice() -> dict[str, Any]:
    """What a page's notice shows: the origin it was opened on and PUBLIC_BASE_URL's, or
    None when they are the same."""
    public_base_url = current_app.config.get("PUBLIC_BASE_URL") or ""
    if not public_base_url or not has_request_context():
        return {"origin_notice": None}
    expected = public_origin(public_base_url)
    seen = origin_of(request.scheme, request.host)
    if seen == expected or _behind_an_untrusted_tls_proxy(expected):
        return {"origin_notice": None}
    if current_app.extensions["origin_log"].first_time(seen):
        log.warning(
            "a page was served on %s, but PUBLIC_BASE_URL is %s: Plaid and SnapTrade send "
            "people back to PUBLIC_BASE_URL, so linking from %s would fail; open the app at "
            "PUBLIC_BASE_URL, or set PUBLIC_BASE_URL=%s (logged once per origin)",
            seen,
            expected,
            seen,
            seen,
        )
    return {"origin_notice": {"seen": seen, "expected": expected}}


def _behind_an_untrusted_tls_proxy(expected: str) -> bool:
    """Plain http on PUBLIC_BASE_URL's https host and port, with no proxy trusted to say
    https: a TLS proxy in front, and the browser is on https all the same (plain http could
    not even log in: the session cookie is Secure)."""
    services = current_app.extensions.get("services")
    trusted_proxies = services.settings.trusted_proxies if services is not None else 0
    return (
        not trusted_proxies
        and request.scheme == "http"
        and origin_of("https", request.host) == expected
    )


def install_origin_notice(app: Flask) -> None:
    app.extensions["origin_log"] = OriginLog()
    app.context_processor(origin_notice)
