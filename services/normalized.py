"""Moved to ``core.normalized``; this path keeps working for code that imports it from here."""

from core.normalized import *  # noqa: F403
