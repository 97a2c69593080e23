"""What both ways of linking share: checks on what providers hand us, and housekeeping."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from core.errors import InvalidInput, MalformedResponse

# Finished jobs and unused portal flows are forgotten after this long.
KEEP_FOR = timedelta(hours=1)

UrlForId = Callable[[str], str]


def checked_authorization_id(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidInput(
            "reconnect must be a SnapTrade authorization id (a UUID)", field="reconnect"
        ) from None


def checked_web_url(value: Any, what: str) -> str:
    """A provider URL we send the person to must be http(s), never ``javascript:``."""
    url = str(value or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MalformedResponse(
            f"the provider's {what} is not a web address",
            provider="plaid" if what == "hosted_link_url" else "snaptrade",
        )
    return url
