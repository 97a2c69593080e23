"""Moved to ``core.errors``; this path keeps working for code that imports it from here."""

from core.errors import *  # noqa: F403
