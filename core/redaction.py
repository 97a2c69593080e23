"""Keeping credentials out of logs, errors and tool results.

SnapTrade sends ``userSecret`` in the query string and urllib3 puts the whole
URL into its exception messages, so every text that leaves an adapter goes
through :func:`redact_text`. Values read from the secret store are also
registered here, so the logging filter masks them wherever they appear.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core.untrusted import log_safe

MASK = "[REDACTED]"

SENSITIVE_KEYS = frozenset(
    {
        "usersecret",
        "user_secret",
        "access_token",
        "public_token",
        "secret",
        "consumer_key",
        "consumerkey",
        "signature",
        "password",
        "plaid-secret",
    }
)

_KEY_VALUE = re.compile(
    r"(?i)(?P<key>[\"']?(?:userSecret|user_secret|access_token|public_token|secret|"
    r"consumer_?key|signature|password|plaid-secret)[\"']?\s*[=:]\s*[\"']?)(?P<value>[^&\s\"',;}]+)"
)
_PLAID_TOKEN = re.compile(r"\b(?:access|public)-(?:sandbox|development|production)-[\w-]+")

_known_secrets: set[str] = set()
_known_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a credential value so it is masked wherever it might be logged.

    Every adapter function registers the credentials it is handed, where they
    enter, so a provider that echoes one back cannot show it to anybody.
    """
    if isinstance(value, str) and len(value) >= 8:
        with _known_lock:
            _known_secrets.add(value)


def forget_registered_secrets() -> None:
    """Empty the registry (tests start each case from nothing, as a new process does)."""
    with _known_lock:
        _known_secrets.clear()


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (key, MASK if key.lower() in SENSITIVE_KEYS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]")))


def redact_text(text: str) -> str:
    text = _KEY_VALUE.sub(lambda m: m.group("key") + MASK, text)
    text = _PLAID_TOKEN.sub(MASK, text)
    with _known_lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks credentials in every record that passes through a handler, and keeps each record
    to its own lines: a provider's text with a line break or an ANSI escape in it (an error
    message, a name) is written escaped (``log_safe``), so it cannot forge another record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = log_safe(redact_text(message))
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(_traceback_text(record.exc_info))
            record.exc_info = None
        return True


def _traceback_text(exc_info: Any) -> str:
    """A traceback's own lines as Python writes them; the exception messages in it (which may
    quote a provider) each on one line, escaped like a record's message."""
    parts = traceback.format_exception(*exc_info)
    return "".join(
        part if part.startswith(_TRACEBACK_LINES) else log_safe(part.rstrip("\n")) + "\n"
        for part in parts
    ).rstrip("\n")


# How format_exception's own parts begin: the header, a frame, a chained exception's header.
_TRACEBACK_LINES = ("Traceback (most recent call last):", "  ", "\n")


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr only (stdout is the MCP wire), through the redacting filter."""
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # These log request bodies and URLs (SecretString, userSecret) at DEBUG; the
    # filter masks what it recognises, but they have nothing we need below INFO.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for noisy in ("botocore", "boto3", "urllib3", "snaptrade_client", "plaid"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
