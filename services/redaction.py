"""Moved to ``core.redaction``; this path keeps working for code that imports it from here."""

from core.redaction import *  # noqa: F403
